/* SPDX-License-Identifier: Apache-2.0 */
/*
 * respond.c - the responder engine (see respond.h): match, guard, act,
 * audit, on one durable consumer all replicas share.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "hub.h"
#include "log.h"
#include "respond.h"
#include "responders.h"
#include "util.h"

#define RESPOND_FETCH 32
#define RESPOND_MAX 64      /* responders at most */
#define ACTIONS_MAX 16      /* actions per responder at most */

/* The match clause. */
struct match {
    struct kx_strlist rules;          /* globs; empty = any */
    enum kx_priority priority;        /* at least this severe */
    struct kx_strlist tags;           /* any of; empty = any */
    struct kx_strlist sources;        /* empty = any */
    struct kx_strmap fields;          /* output field -> glob, all must hold */
};

struct action {
    char *type;                       /* registry name */
    const struct kx_config_node *params; /* borrowed from the config document */
    const struct kx_responder_ops *ops;
    struct kx_responder r;            /* r.settings owned */
    bool live;                        /* init ran and succeeded: destroy is due */
};

struct responder {
    char *name;
    bool cont;                        /* `continue`: later responders still run */
    bool dry_run;
    struct kx_strlist exclude_namespaces;
    struct kx_strmap exclude_labels;  /* k8s.pod.label.<k> == v excludes the target */
    int64_t cooldown;                 /* ns per target; 0 = none */
    int64_t max_actions;              /* per window, cluster-wide; 0 = unlimited */
    int64_t window;                   /* ns */
    int64_t max_deliver;              /* attempts before a retried failure is final */
    const struct kx_config_node *match_node;   /* borrowed */
    const struct kx_config_node *actions_node; /* borrowed */
    struct match m;
    struct action a[ACTIONS_MAX];
    size_t na;
    char subject[128];                /* klaxon.audit.<slug> */
    char slug[64];
};

struct kx_respond {
    struct responder *v;
    size_t n;
    struct kx_hub *hub;               /* borrowed, set by start */
    natsSubscription *sub;            /* used by kx-respond only */
    kvStore *kv;
    pthread_t thread;
    bool started;
    int64_t retry_after;              /* kx-respond: the last -EAGAIN's wish, ns */
};

#define R(field) offsetof(struct responder, field)
static const struct kx_opt responder_opts[] = {
    {"name", KX_OPT_STR, NULL, R(name), KX_OPT_REQUIRED, "responder name, unique"},
    {"match", KX_OPT_NODE, NULL, R(match_node), 0,
     "rules (globs), priority (at least), tags (any), sources, fields (field: glob)"},
    {"actions", KX_OPT_NODE, NULL, R(actions_node), KX_OPT_REQUIRED,
     "ordered list of {type, params, <type settings>}"},
    {"continue", KX_OPT_BOOL, "false", R(cont), 0, "let later responders run too"},
    {"dry_run", KX_OPT_BOOL, "false", R(dry_run), 0, "decide and audit, change nothing"},
    {"exclude_namespaces", KX_OPT_STRLIST, "kube-system,klaxon", R(exclude_namespaces), 0,
     "never act on targets in these namespaces"},
    {"exclude_labels", KX_OPT_STRMAP, NULL, R(exclude_labels), 0,
     "never act on pods carrying one of these labels (key: value)"},
    {"cooldown", KX_OPT_DURATION, "0s", R(cooldown), 0,
     "after acting on a target, leave it alone this long (cluster-wide)"},
    {"max_actions", KX_OPT_INT, "0", R(max_actions), 0,
     "act at most this often per window, across all replicas; 0 = no limit"},
    {"window", KX_OPT_DURATION, "1m", R(window), 0, "the window of max_actions"},
    {"max_deliver", KX_OPT_INT, "5", R(max_deliver), 0,
     "attempts of an action that asks for a retry before the failure is final"},
    {0},
};

#define M(field) offsetof(struct match, field)
static const struct kx_opt match_opts[] = {
    {"rules", KX_OPT_STRLIST, NULL, M(rules), 0, "rule names or globs"},
    {"priority", KX_OPT_PRIORITY, "debug", M(priority), 0, "at least this severe"},
    {"tags", KX_OPT_STRLIST, NULL, M(tags), 0, "any of these tags"},
    {"sources", KX_OPT_STRLIST, NULL, M(sources), 0, "syscall, k8s_audit, ..."},
    {"fields", KX_OPT_STRMAP, NULL, M(fields), 0, "output field: glob, all must match"},
    {0},
};

#define A(field) offsetof(struct action, field)
static const struct kx_opt action_opts[] = {
    {"type", KX_OPT_STR, NULL, A(type), KX_OPT_REQUIRED, "responder type"},
    {"params", KX_OPT_NODE, NULL, A(params), 0, "the action's parameters"},
    {0},
};

static void action_release(struct action *a)
{
    if (a->live && a->ops->destroy)
        a->ops->destroy(&a->r);
    if (a->ops && a->ops->opts && a->r.settings)
        kx_config_release(a->ops->opts, a->r.settings);
    free(a->r.settings);
    kx_config_release(action_opts, a);
    memset(a, 0, sizeof(*a));
}

static void responder_release(struct responder *p)
{
    for (size_t i = 0; i < p->na; i++)
        action_release(&p->a[i]);
    kx_config_release(match_opts, &p->m);
    kx_config_release(responder_opts, p);
}

void kx_respond_free(struct kx_respond *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        responder_release(&r->v[i]);
    free(r->v);
    free(r);
}

/* One action map: {type, params, <the type's settings>}. */
static void action_parse(struct responder *p, struct action *a, const struct kx_config_node *map,
                         struct kx_diag *d)
{
    size_t before = d->n;
    char prefix[96];

    if (!map || map->kind != KX_CFG_MAP) {
        kx_diag_add(d, map, "responder %s: each action must be a map with a type", p->name);
        return;
    }
    const struct kx_config_node *t = kx_config_get(map, "type");
    if (!t || !t->value) {
        kx_diag_add(d, map, "responder %s: action without \"type\"", p->name);
        return;
    }
    if (!(a->ops = kx_responder_ops_find(t->value))) {
        char known[256] = "";
        size_t o = 0;
        for (int i = 0; kx_responder_registry[i]; i++)
            o += (size_t)snprintf(known + o, o < sizeof(known) ? sizeof(known) - o : 0, "%s%s",
                                  i ? ", " : "", kx_responder_registry[i]->name);
        kx_diag_add(d, t, "responder %s: unknown action type \"%s\" (known: %s)", p->name,
                    t->value, known);
        return;
    }
    if (a->ops->settings_size && !(a->r.settings = calloc(1, a->ops->settings_size))) {
        kx_diag_add(d, map, "out of memory");
        return;
    }
    /* env: RESPONDER_<NAME>_<TYPE>_<KEY>, so secrets can come from outside */
    snprintf(prefix, sizeof(prefix), "RESPONDER_%s_%s", p->slug, a->ops->name);
    for (char *c = prefix; *c; c++)
        *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
    struct kx_opt_set sets[2] = {{action_opts, a}, {a->ops->opts, a->r.settings}};
    kx_config_apply_sets(sets, a->ops->opts ? 2 : 1, map, prefix, d);
    if (a->params && a->params->kind != KX_CFG_MAP)
        kx_diag_add(d, a->params, "responder %s: params must be a map", p->name);
    if (d->n > before)
        return;
    /* init also when only checking: it validates params and settings (an exec
     * path, a plugin's symbol) the option tables cannot */
    a->r.ops = a->ops;
    a->r.name = p->name;
    a->r.dry_run = p->dry_run;
    if (a->ops->init && a->ops->init(&a->r, map, d) != 0) {
        if (d->n == before)
            kx_diag_add(d, map, "responder %s: action %s failed to start", p->name,
                        a->ops->name);
        return;
    }
    a->live = true;
}

static void responder_parse(struct responder *p, const struct kx_config_node *map,
                            struct kx_diag *d)
{
    if (!map || map->kind != KX_CFG_MAP) {
        kx_diag_add(d, map, "each responder must be a map with name, match and actions");
        return;
    }
    kx_config_apply(responder_opts, map, p, NULL, d);
    kx_config_apply(match_opts, p->match_node, &p->m, NULL, d);
    if (!p->name)
        return;
    /* go on after a bad key: every problem of the file in one run */
    kx_slug(p->name, p->slug, sizeof(p->slug));
    snprintf(p->subject, sizeof(p->subject), KX_SUBJ_AUDIT ".%s", p->slug);
    if (p->match_node && p->match_node->kind != KX_CFG_MAP)
        kx_diag_add(d, p->match_node, "responder %s: match must be a map", p->name);
    if (p->max_actions < 0)
        kx_diag_add(d, kx_config_get(map, "max_actions"), "responder %s: max_actions >= 0",
                    p->name);
    if (p->window < KX_NSEC_PER_SEC || p->cooldown < 0)
        kx_diag_add(d, map, "responder %s: window must be at least 1s, cooldown >= 0",
                    p->name);
    if (p->max_deliver < 1)
        kx_diag_add(d, kx_config_get(map, "max_deliver"), "responder %s: max_deliver >= 1",
                    p->name);
    if (!p->actions_node || p->actions_node->kind != KX_CFG_SEQ || !p->actions_node->child) {
        kx_diag_add(d, p->actions_node ? p->actions_node : map,
                    "responder %s: actions must be a non-empty list", p->name);
        return;
    }
    for (const struct kx_config_node *it = p->actions_node->child; it; it = it->next) {
        if (p->na == ACTIONS_MAX) {
            kx_diag_add(d, it, "responder %s: at most %d actions", p->name, ACTIONS_MAX);
            break;
        }
        action_parse(p, &p->a[p->na++], it, d);
    }
}

struct kx_respond *kx_respond_parse(const struct kx_config_node *seq, struct kx_diag *d)
{
    struct kx_respond *r = calloc(1, sizeof(*r));
    size_t before = d->n, n = 0;

    if (!r || (seq && !(r->v = calloc(RESPOND_MAX, sizeof(*r->v))))) {
        kx_diag_add(d, seq, "out of memory");
        kx_respond_free(r);
        return NULL;
    }
    if (seq && seq->kind != KX_CFG_SEQ) {
        kx_diag_add(d, seq, "\"responders\" must be a list of {name, match, actions} maps");
        kx_respond_free(r);
        return NULL;
    }
    for (const struct kx_config_node *it = seq ? seq->child : NULL; it; it = it->next, n++) {
        if (n == RESPOND_MAX) {
            kx_diag_add(d, it, "at most %d responders are supported", RESPOND_MAX);
            break;
        }
        struct responder *p = &r->v[r->n++];
        responder_parse(p, it, d);
        for (size_t j = 0; p->name && j + 1 < r->n; j++)
            if (r->v[j].name && strcmp(r->v[j].name, p->name) == 0)
                kx_diag_add(d, kx_config_get(it, "name"), "responder name \"%s\" is used twice",
                            p->name);
    }
    if (d->n > before) {
        kx_respond_free(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------ */

bool kx_respond_matches(const struct kx_respond *r, size_t i, const struct kx_alert *a)
{
    const struct match *m = &r->v[i].m;
    char buf[512];

    if (a->priority > m->priority)
        return false;
    if (!kx_alert_routed(a, &m->rules, &m->tags, &m->sources))
        return false;
    for (size_t k = 0; k < m->fields.n; k++) {
        const char *v = kx_alert_field_str(a, m->fields.keys[k], buf, sizeof(buf));
        if (!v || fnmatch(m->fields.vals[k], v, 0) != 0)
            return false;
    }
    return true;
}

/*
 * The guards that need no store: "" when the responder may act, else why
 * not (into why). The target names what a cooldown is about: the pod when
 * the alert has one, else the container, else the node.
 */
static void target_of(const struct kx_alert *a, char *out, size_t len)
{
    char ns[128], pod[256], cid[80];

    if (kx_alert_field_str(a, "k8s.pod.name", pod, sizeof(pod)) && pod[0] &&
        kx_alert_field_str(a, "k8s.ns.name", ns, sizeof(ns)))
        snprintf(out, len, "pod %s/%s", ns, pod);
    else if (kx_alert_field_str(a, "container.id", cid, sizeof(cid)) && cid[0] &&
             strcmp(cid, "host") != 0)
        snprintf(out, len, "container %s on %s", cid, a->hostname);
    else
        snprintf(out, len, "node %s", a->hostname);
}

static bool excluded(const struct responder *p, const struct kx_alert *a, char *why, size_t len)
{
    char buf[256], key[300];
    const char *ns = kx_alert_field_str(a, "k8s.ns.name", buf, sizeof(buf));

    if (ns && kx_strlist_has(&p->exclude_namespaces, ns)) {
        snprintf(why, len, "namespace %s is excluded", ns);
        return true;
    }
    for (size_t i = 0; i < p->exclude_labels.n; i++) {
        snprintf(key, sizeof(key), "k8s.pod.label.%s", p->exclude_labels.keys[i]);
        const char *v = kx_alert_field_str(a, key, buf, sizeof(buf));
        if (v && strcmp(v, p->exclude_labels.vals[i]) == 0) {
            snprintf(why, len, "pod label %s=%s is excluded", p->exclude_labels.keys[i], v);
            return true;
        }
    }
    return false;
}

/* FNV-1a, for KV keys from free text. */
static uint64_t hash64(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/*
 * Claims the target's cooldown in the KV store: 1 claimed (act), 0 in
 * cooldown (why says until when), <0 store trouble. A redelivered alert
 * finds its own claim and goes on.
 */
static int cooldown_claim(struct kx_respond *r, const struct responder *p, const char *target,
                          const char *uuid, char *why, size_t len)
{
    char key[160], val[160];
    int64_t now = kx_now_ns();

    if (p->cooldown <= 0)
        return 1;
    snprintf(key, sizeof(key), "cd.%s.%016llx", p->slug, (unsigned long long)hash64(target));
    snprintf(val, sizeof(val), "%lld %s", (long long)(now + p->cooldown), uuid);
    for (int attempt = 0; attempt < 5; attempt++) {
        kvEntry *e = NULL;
        uint64_t rev = 0;
        natsStatus s = kvStore_Get(&e, r->kv, key);

        if (s == NATS_NOT_FOUND)
            s = kvStore_Create(&rev, r->kv, key, val, (int)strlen(val));
        else if (s == NATS_OK) {
            const char *cur = kvEntry_ValueString(e);
            long long until = cur ? strtoll(cur, NULL, 10) : 0;
            const char *owner = cur ? strchr(cur, ' ') : NULL;
            if (until > now && !(owner && strcmp(owner + 1, uuid) == 0)) {
                char ts[40];
                kx_time_format(until, ts, sizeof(ts));
                snprintf(why, len, "%.300s is in cooldown until %s", target, ts);
                kvEntry_Destroy(e);
                return 0;
            }
            s = kvStore_Update(&rev, r->kv, key, val, (int)strlen(val), kvEntry_Revision(e));
        }
        kvEntry_Destroy(e);
        if (s == NATS_OK)
            return 1;
        if (s != NATS_ERR && s != NATS_NOT_FOUND) /* a lost race is NATS_ERR: read again */
            return kx_bus_errno(s) ? kx_bus_errno(s) : -EIO;
    }
    return -EAGAIN;
}

/* Counts one action in scope's current window (a responder's slug, or
 * "_all" for the cap over every responder): 1 allowed, 0 over the cap (why
 * says so), <0 store trouble. */
static int rate_take(struct kx_respond *r, const char *scope, int64_t max, int64_t window,
                     char *why, size_t len)
{
    char key[128], val[32];
    int64_t widx = kx_now_ns() / window;

    if (max <= 0)
        return 1;
    snprintf(key, sizeof(key), "rl.%s.%lld", scope, (long long)widx);
    for (int attempt = 0; attempt < 10; attempt++) {
        kvEntry *e = NULL;
        uint64_t rev = 0;
        natsStatus s = kvStore_Get(&e, r->kv, key);
        long long n = 0;

        if (s == NATS_OK)
            n = strtoll(kvEntry_ValueString(e) ? kvEntry_ValueString(e) : "0", NULL, 10);
        else if (s != NATS_NOT_FOUND)
            return kx_bus_errno(s) ? kx_bus_errno(s) : -EIO;
        if (n >= max) {
            snprintf(why, len,
                     "rate limited: %lld actions in this %llds window (%smax_actions %lld)", n,
                     (long long)(window / KX_NSEC_PER_SEC),
                     strcmp(scope, "_all") == 0 ? "respond." : "", (long long)max);
            kvEntry_Destroy(e);
            return 0;
        }
        snprintf(val, sizeof(val), "%lld", n + 1);
        s = e ? kvStore_Update(&rev, r->kv, key, val, (int)strlen(val), kvEntry_Revision(e))
              : kvStore_Create(&rev, r->kv, key, val, (int)strlen(val));
        kvEntry_Destroy(e);
        if (s == NATS_OK)
            return 1;
    }
    return -EAGAIN;
}

/*
 * Publishes the audit record of one decision, shaped as an alert so every
 * output can carry it: rule "Klaxon responder <name>", the result and
 * reason in output_fields, the actions' own records under "actions".
 */
static int audit(struct kx_respond *r, const struct responder *p, const struct kx_alert *a,
                 const char *result, const char *reason, const char *target, cJSON *actions,
                 uint64_t attempt)
{
    struct kx_hub *h = r->hub;
    char rule[160], out[1024], id[200], err[256];
    enum kx_priority pri = strcmp(result, "failed") == 0 ? KX_PRI_WARNING : KX_PRI_NOTICE;

    snprintf(rule, sizeof(rule), "Klaxon responder %s", p->name);
    snprintf(out, sizeof(out), "%s %s: %s%s%s (alert %s: %s)", p->name, result, target,
             reason && reason[0] ? " - " : "", reason ? reason : "", a->uuid, a->rule);
    struct kx_alert *rec = kx_alert_new(rule, pri, KX_AUDIT_SOURCE, a->hostname, out, 0);
    if (!rec)
        return -ENOMEM;
    kx_alert_add_tag(rec, KX_AUDIT_SOURCE);
    kx_alert_set_str(rec, "klaxon.responder", p->name);
    kx_alert_set_str(rec, "klaxon.result", result);
    kx_alert_set_str(rec, "klaxon.reason", reason ? reason : "");
    kx_alert_set_str(rec, "klaxon.target", target);
    kx_alert_set_str(rec, "klaxon.alert_uuid", a->uuid);
    kx_alert_set_str(rec, "klaxon.alert_rule", a->rule);
    kx_alert_set_str(rec, "klaxon.replica", h->cfg.hub_name);
    kx_alert_set_int(rec, "klaxon.attempt", (int64_t)attempt);
    cJSON_AddBoolToObject(rec->doc, "dry_run", p->dry_run);
    if (actions)
        cJSON_AddItemReferenceToObject(rec->doc, "actions", actions);
    char *json = kx_alert_to_json(rec);
    if (actions)
        cJSON_DeleteItemFromObject(rec->doc, "actions"); /* the reference only */
    kx_alert_free(rec);
    if (!json)
        return -ENOMEM;
    /* one record per decision and attempt, even when the alert comes back */
    snprintf(id, sizeof(id), "%s.%s.%llu", a->uuid, p->slug, (unsigned long long)attempt);
    int rc = kx_bus_publish(h->bus, p->subject, json, strlen(json), id, NULL, NULL,
                            h->cfg.publish_timeout, err, sizeof(err));
    /* and into KLAXON_EVENTS, so outputs route it like any alert (on-call
     * reads "pod shop/web-1 deleted"); `sources: [klaxon_audit]` picks it */
    char evsubj[200];
    snprintf(evsubj, sizeof(evsubj), KX_SUBJ_EVENTS ".%s.klaxon_audit_%s", kx_priority_slug(pri),
             p->slug);
    if (rc >= 0)
        rc = kx_bus_publish(h->bus, evsubj, json, strlen(json), id, NULL, NULL,
                            h->cfg.publish_timeout, err, sizeof(err));
    if (rc < 0)
        kx_warn("responder %s: cannot publish the audit record: %s", p->name, err);
    else
        kx_info("responder %s: %s", p->name, out);
    free(json);
    return rc < 0 ? rc : 0;
}

/*
 * Runs one matching responder on a. Returns 0 when decided (acted,
 * skipped, failed for good), -EAGAIN when the alert must come back later.
 */
static int respond_one(struct kx_respond *r, struct responder *p, const struct kx_alert *a,
                       uint64_t attempt)
{
    char target[400], why[400] = "";
    cJSON *actions = cJSON_CreateArray();
    const char *result = p->dry_run ? "dry_run" : "acted";
    int rc = 0;

    target_of(a, target, sizeof(target));
    if (!actions)
        return -EAGAIN;
    if (excluded(p, a, why, sizeof(why))) {
        rc = audit(r, p, a, "skipped", why, target, NULL, attempt);
        goto out;
    }
    if (!p->dry_run) {
        int c = cooldown_claim(r, p, target, a->uuid, why, sizeof(why));
        const struct kx_hub_config *hc = &r->hub->cfg;
        if (c == 1 && attempt == 1)
            c = rate_take(r, "_all", hc->respond_max_actions, hc->respond_window, why,
                          sizeof(why));
        if (c == 1 && attempt == 1)
            c = rate_take(r, p->slug, p->max_actions, p->window, why, sizeof(why));
        if (c < 0) {
            snprintf(why, sizeof(why), "the KV store %s cannot be reached", KX_KV_RESPOND);
            rc = -EAGAIN;
            goto out;
        }
        if (c == 0) {
            rc = audit(r, p, a, "skipped", why, target, NULL, attempt);
            goto out;
        }
    }
    bool changed = false; /* some action changed something (or would, in a dry run) */
    for (size_t i = 0; i < p->na; i++) {
        struct action *ac = &p->a[i];
        cJSON *rec = cJSON_CreateObject();
        if (!rec) {
            rc = -EAGAIN;
            goto out;
        }
        cJSON_AddStringToObject(rec, "type", ac->ops->name);
        cJSON_AddItemToArray(actions, rec);
        ac->r.retry_after = 0;
        int arc = ac->ops->act(&ac->r, a, ac->params, rec);
        if (arc == -EAGAIN && ac->r.retry_after > r->retry_after)
            r->retry_after = ac->r.retry_after;
        if (!cJSON_GetObjectItem(rec, "result"))
            cJSON_AddStringToObject(rec, "result", arc == 0 ? (p->dry_run ? "dry_run" : "done")
                                                   : arc == -EAGAIN ? "retry"
                                                                    : "failed");
        const cJSON *rs = cJSON_GetObjectItem(rec, "reason");
        const cJSON *res = cJSON_GetObjectItem(rec, "result");
        if (arc == 0) {
            /* a guard said no, or the target was already gone: nothing changed */
            bool noop = cJSON_IsString(res) && (strcmp(res->valuestring, "skipped") == 0 ||
                                                strcmp(res->valuestring, "gone") == 0 ||
                                                strcmp(res->valuestring, "replaced") == 0);
            if (noop && !why[0])
                snprintf(why, sizeof(why), "action %zu (%s): %s", i + 1, ac->ops->name,
                         cJSON_IsString(rs) ? rs->valuestring : res->valuestring);
            changed = changed || !noop;
            continue;
        }
        snprintf(why, sizeof(why), "action %zu (%s): %s", i + 1, ac->ops->name,
                 cJSON_IsString(rs) ? rs->valuestring : strerror(arc < 0 ? -arc : EIO));
        if (arc == -EAGAIN && (int64_t)attempt < p->max_deliver) {
            char retry[480];
            snprintf(retry, sizeof(retry), "%s; attempt %llu of %lld, will retry", why,
                     (unsigned long long)attempt, (long long)p->max_deliver);
            audit(r, p, a, "failed", retry, target, actions, attempt);
            rc = -EAGAIN;
            goto out;
        }
        result = "failed";
        changed = true;
        break;
    }
    if (!changed)
        result = "skipped";
    else if (strcmp(result, "failed") != 0)
        why[0] = '\0'; /* acted: a no-op step on the way is in its own record */
    rc = audit(r, p, a, result, why, target, actions, attempt);
out:
    cJSON_Delete(actions);
    return rc < 0 ? -EAGAIN : rc; /* an unrecorded decision is made again later */
}

/* Runs the ordered responders on one alert. 0 done (ack), -EAGAIN later. */
static int respond_alert(struct kx_respond *r, const struct kx_alert *a, uint64_t attempt)
{
    for (size_t i = 0; i < r->n; i++) {
        if (!kx_respond_matches(r, i, a))
            continue;
        int rc = respond_one(r, &r->v[i], a, attempt);
        if (rc < 0)
            return rc;
        if (!r->v[i].cont)
            break;
    }
    return 0;
}

/* Thread kx-respond. */
static void *respond_main(void *arg)
{
    struct kx_respond *r = arg;
    struct kx_hub *h = r->hub;
    char err[KX_ALERT_ERR_LEN];

    pthread_setname_np(pthread_self(), "kx-respond");
    while (!atomic_load(&h->stopping)) {
        natsMsgList list = {0};
        jsErrCode code = 0;
        natsStatus s = natsSubscription_Fetch(&list, r->sub, RESPOND_FETCH, 500, &code);

        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            usleep(250 * 1000);
            continue;
        }
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            const char *test = NULL;
            jsMsgMetaData *meta = NULL;
            uint64_t attempt = 1;

            natsMsgHeader_Get(m, KX_HDR_TEST, &test);
            struct kx_alert *a = kx_alert_parse(natsMsg_GetData(m),
                                                (size_t)natsMsg_GetDataLength(m), err,
                                                sizeof(err));
            /* not an alert, POST /test's, or a responder's own audit record
             * (which also travels on KLAXON_EVENTS): nothing to act on */
            if (!a || test || kx_alert_is_audit(a)) {
                natsMsg_Ack(m, NULL);
                kx_alert_free(a);
                continue;
            }
            if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta)
                attempt = meta->NumDelivered;
            jsMsgMetaData_Destroy(meta);
            r->retry_after = 0;
            int rc = respond_alert(r, a, attempt);
            if (rc == -EAGAIN) {
                /* backoff 1s, 2s, ... 30s, or longer when the API asked */
                int64_t delay = (int64_t)attempt * KX_NSEC_PER_SEC;
                if (delay > 30 * KX_NSEC_PER_SEC)
                    delay = 30 * KX_NSEC_PER_SEC;
                if (r->retry_after > delay)
                    delay = r->retry_after;
                natsMsg_NakWithDelay(m, delay / KX_NSEC_PER_MSEC, NULL);
            } else {
                natsMsg_Ack(m, NULL);
            }
            kx_alert_free(a);
        }
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

int kx_respond_start(struct kx_hub *h, struct kx_respond *r, char *err, size_t errlen)
{
    kvConfig kc;
    natsStatus s;
    int rc;

    h->respond = r;
    r->hub = h;
    if (r->n == 0)
        return 0;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k < r->v[i].na; k++)
            r->v[i].a[k].r.nats = h->bus->nc;
    kvConfig_Init(&kc);
    kc.Bucket = KX_KV_RESPOND;
    kc.History = 1;
    kc.TTL = 24 * 3600 * KX_NSEC_PER_SEC; /* longer than any cooldown or window in use */
    kc.Replicas = (int)h->cfg.replicas;
    kc.StorageType = js_FileStorage;
    if ((s = js_CreateKeyValue(&r->kv, h->bus->js, &kc)) != NATS_OK)
        s = js_KeyValue(&r->kv, h->bus->js, KX_KV_RESPOND);
    if (s != NATS_OK) {
        snprintf(err, errlen, "responders: cannot open KV bucket %s: %s", KX_KV_RESPOND,
                 natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    struct kx_consumer_spec cs = {
        .stream = KX_STREAM_EVENTS,
        .durable = KX_RESPOND_DURABLE,
        .filter = KX_SUBJ_EVENTS ".>",
        /* actions take a while (a drain waits up to its timeout, 60s by
         * default): a replica acting must not see the alert handed on */
        .ack_wait = 5 * 60 * KX_NSEC_PER_SEC,
        .max_deliver = -1,
        .max_ack_pending = 4 * RESPOND_FETCH,
    };
    if ((rc = kx_bus_ensure_consumer(h->bus, &cs, err, errlen)))
        return rc;
    jsSubOptions so;
    jsErrCode code = 0;
    jsSubOptions_Init(&so);
    so.Stream = KX_STREAM_EVENTS;
    so.Consumer = KX_RESPOND_DURABLE;
    s = js_PullSubscribe(&r->sub, h->bus->js, cs.filter, KX_RESPOND_DURABLE, NULL, &so, &code);
    if (s != NATS_OK) {
        snprintf(err, errlen, "responders: cannot bind consumer %s: %s", KX_RESPOND_DURABLE,
                 natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    if ((rc = pthread_create(&r->thread, NULL, respond_main, r))) {
        snprintf(err, errlen, "responders: cannot start thread: %s", strerror(rc));
        return -rc;
    }
    r->started = true;
    for (size_t i = 0; i < r->n; i++)
        kx_info("responder %s ready: %zu action(s)%s", r->v[i].name, r->v[i].na,
                r->v[i].dry_run ? ", dry run" : "");
    return 0;
}

void kx_respond_stop(struct kx_hub *h)
{
    struct kx_respond *r = h->respond;

    if (!r)
        return;
    if (r->started)
        pthread_join(r->thread, NULL);
    natsSubscription_Destroy(r->sub);
    kvStore_Destroy(r->kv);
    kx_respond_free(r);
    h->respond = NULL;
}
