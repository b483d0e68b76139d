/* SPDX-License-Identifier: Apache-2.0 */
/*
 * k8s_node.c - the "k8s_node" responder: cordon, uncordon, taint or drain
 * the Kubernetes node an alert came from (output field k8s.node.name, else
 * the alert's hostname), through the API server (lib/k8s.h).
 *
 *   actions:
 *     - type: k8s_node
 *       mode: incluster                      # + kubeconfig, context, server, ... as
 *                                            # in sensor.yaml's kubernetes: section
 *       events: true                         # a core/v1 Event on the Node after acting
 *       params: {action: drain, timeout: 60s, exclude_namespaces: [monitoring]}
 *
 * cordon / uncordon: a JSON merge patch of spec.unschedulable (true, or
 * null as kubectl sends it). taint: the node is read, the taint merged into
 * spec.taints (unique by key and effect) and the whole list written back
 * with a strategic merge patch that carries the resourceVersion read, so a
 * concurrent change is a 409 and not a lost update: read again, merge again.
 * drain, as kubectl drain does it: cordon, list the node's pods, evict all
 * but mirror pods, DaemonSet pods and finished pods (and those in
 * params.exclude_namespaces), retry evictions a PodDisruptionBudget refuses
 * (429) every eviction_retry_interval, then wait until the evicted pods are
 * gone. Not done within params.timeout: -EAGAIN, the engine redelivers and
 * the next attempt carries on where this one stopped.
 *
 * Outcomes: 2xx -> 0; 401/403 -> permanent, with the RBAC verb and resource
 * from lib/k8s; node 404 -> permanent; 409 after retries, 429, 5xx and
 * connection failures -> -EAGAIN. A failed Event is noted in the audit and
 * never fails the action. In dry-run mode only GETs are sent; the audit's
 * "requests" holds each mutating request exactly as it would have gone out.
 *
 * Threads: kx-respond (init, act, destroy of one instance, one at a time).
 * A drain blocks that thread for up to params.timeout (plus its requests):
 * keep it under the engine's 60 s ack wait (hub/respond.c), or the alert
 * may be redelivered to another replica while this one is still draining.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "k8s.h"
#include "responders.h"
#include "util.h"

#define KN_NODE_MAX 253               /* a DNS subdomain */
#define KN_TAINT_ATTEMPTS 5           /* read-merge-write rounds on 409 */
#define KN_PODS_MAX 2000              /* pods of one node we track at most */
#define KN_PAGES_MAX 100              /* pages of the pod list at most */
#define KN_POLL (1 * KX_NSEC_PER_SEC) /* how often an evicted pod is looked at */
#define KN_MIRROR "kubernetes.io/config.mirror"
#define KN_DEFAULT_TAINT "klaxon.io/compromised"

enum kn_action { KN_CORDON, KN_UNCORDON, KN_TAINT, KN_DRAIN };

static const char *const kn_actions[] = {"cordon", "uncordon", "taint", "drain"};
static const char *const kn_reasons[] = {"KlaxonCordoned", "KlaxonUncordoned", "KlaxonTainted",
                                         "KlaxonDrained"};
static const char *const kn_effects[] = {"NoSchedule", "PreferNoSchedule", "NoExecute"};

/* The instance's settings, beside type and params in the action map: the
 * connection with the keys of the sensor's kubernetes: section, as k8s_pod. */
struct kn_settings {
    struct kx_k8s_settings k8s; /* owned strings, released by the engine */
    bool events;                /* create an Event on the Node after acting */
};

#define S(f) offsetof(struct kn_settings, f)
static const struct kx_opt kn_opts[] = {
    KX_K8S_OPTS(struct kn_settings, k8s),
    {"events", KX_OPT_BOOL, "true", S(events), 0,
     "create a Warning Event on the Node after acting"},
    {0},
};

/* params, checked once at init. */
struct kn_params {
    char *action;                         /* cordon | uncordon | taint | drain */
    char *key;                            /* taint key */
    char *value;                          /* taint value, "" = none */
    char *effect;                         /* taint effect */
    int64_t timeout;                      /* ns a drain may take */
    int64_t retry_interval;               /* ns between evictions of a refused pod */
    int64_t grace_period;                 /* ns, eviction grace period (has_grace) */
    struct kx_strlist exclude_namespaces; /* drain leaves these pods alone */
};

#define P(f) offsetof(struct kn_params, f)
static const struct kx_opt kn_param_opts[] = {
    {"action", KX_OPT_STR, NULL, P(action), 0, "cordon | uncordon | taint | drain"},
    {"key", KX_OPT_STR, KN_DEFAULT_TAINT, P(key), 0, "taint: the taint's key"},
    {"value", KX_OPT_STR, "", P(value), 0, "taint: the taint's value (none by default)"},
    {"effect", KX_OPT_STR, "NoSchedule", P(effect), 0,
     "taint: NoSchedule | PreferNoSchedule | NoExecute"},
    {"timeout", KX_OPT_DURATION, "60s", P(timeout), 0,
     "drain: how long evictions and the wait for the pods to go may take"},
    {"eviction_retry_interval", KX_OPT_DURATION, "5s", P(retry_interval), 0,
     "drain: wait between evictions of a pod a PodDisruptionBudget protects"},
    {"grace_period", KX_OPT_DURATION, NULL, P(grace_period), 0,
     "drain: the evicted pods' grace period (default: each pod's own)"},
    {"exclude_namespaces", KX_OPT_STRLIST, NULL, P(exclude_namespaces), 0,
     "drain: never evict pods in these namespaces"},
    {0},
};

/* Which params make sense for which action (bit per enum kn_action). */
static const struct {
    const char *key;
    unsigned actions;
} kn_param_use[] = {
    {"action", 0xf},
    {"key", 1u << KN_TAINT},
    {"value", 1u << KN_TAINT},
    {"effect", 1u << KN_TAINT},
    {"timeout", 1u << KN_DRAIN},
    {"eviction_retry_interval", 1u << KN_DRAIN},
    {"grace_period", 1u << KN_DRAIN},
    {"exclude_namespaces", 1u << KN_DRAIN},
};

struct kn {
    struct kn_params p;
    enum kn_action action;
    bool has_grace;     /* params.grace_period given */
    struct kx_k8s *k8s; /* owned */
};

/* One act() call. */
struct kn_call {
    struct kx_responder *r;
    struct kn *k;
    const struct kx_alert *a;
    cJSON *audit;    /* borrowed */
    cJSON *requests; /* dry run: the mutating requests, owned by audit */
    char node[KN_NODE_MAX + 1];
    char node_path[KN_NODE_MAX + 32];
    char uid[128];  /* the Node's metadata.uid */
    char err[1024]; /* the last request's error text */
};

/* ------------------------------------------------------------------------ */
/* init / destroy                                                            */
/* ------------------------------------------------------------------------ */

static void kn_destroy(struct kx_responder *r)
{
    struct kn *k = r->priv;

    if (!k)
        return;
    kx_k8s_free(k->k8s);
    kx_config_release(kn_param_opts, &k->p);
    free(k);
    r->priv = NULL;
}

/* kx-respond (start-up, also under --check-config): params and settings are
 * checked here, once, and the client is made so that a bad kubeconfig shows
 * up before the first alert. */
static int kn_init_checked(struct kx_responder *r, const struct kx_config_node *cfg,
                           struct kx_diag *d)
{
    const struct kn_settings *s = r->settings;
    const struct kx_config_node *params = kx_config_get(cfg, "params");
    struct kn *k = calloc(1, sizeof(*k));
    size_t before = d->n;
    bool known = false, bad_key = false;
    char err[1024];

    if (!k) {
        kx_diag_add(d, cfg, "responder %s: k8s_node: out of memory", r->name);
        return -ENOMEM;
    }
    r->priv = k;
    for (const struct kx_config_node *c = params ? params->child : NULL; c; c = c->next) {
        bool ok = false;
        for (size_t i = 0; i < KX_ARRAY_SIZE(kn_param_use); i++)
            ok = ok || strcmp(c->key, kn_param_use[i].key) == 0;
        if (!ok) {
            kx_diag_add(d, c,
                        "responder %s: k8s_node: unknown param \"%s\" (want action, key, value, "
                        "effect, timeout, eviction_retry_interval, grace_period, "
                        "exclude_namespaces)",
                        r->name, c->key);
            bad_key = true;
        }
    }
    if (!bad_key)
        kx_config_apply(kn_param_opts, params, &k->p, NULL, d);
    for (size_t i = 0; k->p.action && i < KX_ARRAY_SIZE(kn_actions); i++) {
        if (strcmp(k->p.action, kn_actions[i]) == 0) {
            k->action = (enum kn_action)i;
            known = true;
        }
    }
    if (!known) {
        kx_diag_add(d,
                    kx_config_get(params, "action") ? kx_config_get(params, "action")
                    : params                        ? params
                                                    : cfg,
                    "responder %s: k8s_node: params.action must be cordon, uncordon, taint or "
                    "drain",
                    r->name);
    } else {
        for (size_t i = 0; i < KX_ARRAY_SIZE(kn_param_use); i++) {
            const struct kx_config_node *n = kx_config_get(params, kn_param_use[i].key);
            if (n && !(kn_param_use[i].actions & (1u << k->action)))
                kx_diag_add(d, n, "responder %s: k8s_node: param %s does not apply to %s", r->name,
                            kn_param_use[i].key, kn_actions[k->action]);
        }
    }
    if (k->action == KN_TAINT && d->n == before) {
        bool effect_ok = false;
        for (size_t i = 0; k->p.effect && i < KX_ARRAY_SIZE(kn_effects); i++)
            effect_ok = effect_ok || strcmp(k->p.effect, kn_effects[i]) == 0;
        if (!effect_ok)
            kx_diag_add(d, kx_config_get(params, "effect"),
                        "responder %s: k8s_node: effect must be NoSchedule, PreferNoSchedule or "
                        "NoExecute",
                        r->name);
        if (!k->p.key || !k->p.key[0] || strlen(k->p.key) > 316)
            kx_diag_add(d, kx_config_get(params, "key"),
                        "responder %s: k8s_node: key must be 1 to 316 characters "
                        "([prefix/]name, as a label key)",
                        r->name);
        if (k->p.value && strlen(k->p.value) > 63)
            kx_diag_add(d, kx_config_get(params, "value"),
                        "responder %s: k8s_node: value must be at most 63 characters", r->name);
    }
    if (k->action == KN_DRAIN && d->n == before) {
        if (k->p.timeout < KX_NSEC_PER_SEC || k->p.timeout > 3600 * KX_NSEC_PER_SEC)
            kx_diag_add(d, kx_config_get(params, "timeout"),
                        "responder %s: k8s_node: timeout must be between 1s and 1h", r->name);
        if (k->p.retry_interval < 100 * KX_NSEC_PER_MSEC)
            kx_diag_add(d, kx_config_get(params, "eviction_retry_interval"),
                        "responder %s: k8s_node: eviction_retry_interval >= 100ms", r->name);
        k->has_grace = kx_config_get(params, "grace_period") != NULL;
        if (k->has_grace && k->p.grace_period < 0)
            kx_diag_add(d, kx_config_get(params, "grace_period"),
                        "responder %s: k8s_node: grace_period >= 0", r->name);
    }

    /* the connection, as the sensor's kubernetes: section */
    struct kx_k8s_opts o;
    const struct kx_config_node *mode = kx_config_get(cfg, "mode");
    if (kx_k8s_settings_opts(&s->k8s, &o, mode ? mode : cfg, d) < 0 || d->n > before)
        return -EINVAL;
    if (o.mode == KX_K8S_MODE_OFF) {
        kx_diag_add(d, mode,
                    "responder %s: k8s_node: mode is off: this responder needs the "
                    "Kubernetes API",
                    r->name);
        return -EINVAL;
    }
    if (!(k->k8s = kx_k8s_new(&o, err, sizeof(err)))) {
        kx_diag_add(d, cfg, "responder %s: k8s_node: %s", r->name, err);
        return -EINVAL;
    }
    return 0;
}

/* The engine calls destroy only after a successful init. */
static int kn_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    int rc = kn_init_checked(r, cfg, d);

    if (rc < 0)
        kn_destroy(r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

static void kn_sleep(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / KX_NSEC_PER_SEC, .tv_nsec = ns % KX_NSEC_PER_SEC};

    while (ns > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jget(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);
    return b ? cJSON_GetObjectItemCaseSensitive(v, b) : v;
}

/*
 * One request. body is borrowed. In dry-run mode a mutating request is not
 * sent: it goes into the audit's "requests" and the call returns 0 with res
 * zeroed. Returns what kx_k8s_request returns; c->err has the message.
 */
static int kn_request(struct kn_call *c, const char *method, const char *path, const char *ctype,
                      const cJSON *body, struct kx_k8s_result *res)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    int e;

    if (body && !text) {
        memset(res, 0, sizeof(*res));
        snprintf(c->err, sizeof(c->err), "%s %s: out of memory", method, path);
        return -ENOMEM;
    }
    if (c->r->dry_run && strcmp(method, "GET") != 0) {
        cJSON *q = cJSON_CreateObject();
        memset(res, 0, sizeof(*res));
        if (q) {
            cJSON_AddStringToObject(q, "method", method);
            cJSON_AddStringToObject(q, "path", path);
            cJSON_AddStringToObject(q, "content_type", ctype ? ctype : KX_K8S_JSON);
            if (body)
                cJSON_AddItemToObject(q, "body", cJSON_Duplicate(body, true));
            cJSON_AddItemToArray(c->requests, q);
        }
        free(text);
        return 0;
    }
    e = kx_k8s_request(c->k->k8s, method, path, ctype, text, res, c->err, sizeof(c->err));
    free(text);
    if (res->retry_after > c->r->retry_after) /* the engine waits this long before a retry */
        c->r->retry_after = res->retry_after;
    return e;
}

/* The engine's class of a request's failure: permanent or -EAGAIN. */
static int kn_class(int e)
{
    switch (e) {
    case -EAGAIN:
    case -EEXIST: /* 409: somebody else changed the object; a new attempt reads again */
    case -ESTALE:
    case -ENOMEM:
    case -ECANCELED:
        return -EAGAIN;
    default:
        return e < 0 ? e : -EIO;
    }
}

/* Sets the audit's reason to "<what>: <c->err>" and returns the class of e. */
static int kn_fail(struct kn_call *c, int e, const char *what)
{
    char why[1400];

    snprintf(why, sizeof(why), "%s: %s", what, c->err[0] ? c->err : strerror(-e));
    cJSON_DeleteItemFromObject(c->audit, "reason");
    cJSON_AddStringToObject(c->audit, "reason", why);
    return kn_class(e);
}

/* GETs the node into *node (caller owns); uid noted. 0 or the class of the
 * failure, reason in the audit. */
static int kn_get_node(struct kn_call *c, cJSON **node)
{
    struct kx_k8s_result res;
    int e = kn_request(c, "GET", c->node_path, NULL, NULL, &res);
    char what[KN_NODE_MAX + 64];

    *node = NULL;
    if (e == -ENOENT) {
        snprintf(what, sizeof(what), "node %s not found", c->node);
        cJSON_AddStringToObject(c->audit, "reason", what);
        kx_k8s_result_release(&res);
        return -ENOENT;
    }
    if (e == 0 && !cJSON_IsObject(res.json)) {
        snprintf(c->err, sizeof(c->err), "GET %s: the answer is not a JSON object", c->node_path);
        e = -EAGAIN;
    }
    if (e < 0) {
        snprintf(what, sizeof(what), "cannot read node %s", c->node);
        kx_k8s_result_release(&res);
        return kn_fail(c, e, what);
    }
    *node = res.json;
    res.json = NULL;
    kx_k8s_result_release(&res);
    const char *uid = jstr(jget(*node, "metadata", NULL), "uid");
    snprintf(c->uid, sizeof(c->uid), "%s", uid ? uid : "");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* cordon / uncordon / taint                                                 */
/* ------------------------------------------------------------------------ */

/* Sets spec.unschedulable of the node read into node (borrowed). *changed
 * says whether a patch was (or in dry-run mode would have been) sent. */
static int kn_unschedulable(struct kn_call *c, const cJSON *node, bool on, bool *changed)
{
    bool now = cJSON_IsTrue(jget(node, "spec", "unschedulable"));
    struct kx_k8s_result res;
    cJSON *patch, *spec;
    int e;

    *changed = false;
    if (now == on)
        return 0;
    if (!(patch = cJSON_CreateObject()) || !(spec = cJSON_AddObjectToObject(patch, "spec"))) {
        cJSON_Delete(patch);
        return -EAGAIN;
    }
    /* null, not false: as kubectl uncordon, the field is removed */
    if (on)
        cJSON_AddTrueToObject(spec, "unschedulable");
    else
        cJSON_AddNullToObject(spec, "unschedulable");
    e = kn_request(c, "PATCH", c->node_path, KX_K8S_MERGE_PATCH, patch, &res);
    cJSON_Delete(patch);
    kx_k8s_result_release(&res);
    if (e == -ENOENT) {
        char what[KN_NODE_MAX + 64];
        snprintf(what, sizeof(what), "node %s not found", c->node);
        cJSON_AddStringToObject(c->audit, "reason", what);
        return -ENOENT;
    }
    if (e < 0)
        return kn_fail(c, e, on ? "cannot cordon the node" : "cannot uncordon the node");
    *changed = true;
    return 0;
}

/* The taints of node with ours merged in (caller owns), or NULL when ours is
 * already there as wanted (*same) or on OOM. */
static cJSON *kn_taints_merged(const struct kn *k, const cJSON *node, bool *same)
{
    const cJSON *old = jget(node, "spec", "taints"), *t;
    const cJSON *olds = cJSON_IsArray(old) ? old : NULL;
    cJSON *list = cJSON_CreateArray();
    bool found = false;

    *same = false;
    if (!list)
        return NULL;
    cJSON_ArrayForEach(t, olds)
    {
        const char *key = jstr(t, "key"), *eff = jstr(t, "effect"), *val = jstr(t, "value");
        cJSON *copy = cJSON_Duplicate(t, true);
        if (!copy) {
            cJSON_Delete(list);
            return NULL;
        }
        if (key && eff && strcmp(key, k->p.key) == 0 && strcmp(eff, k->p.effect) == 0) {
            found = true;
            if (strcmp(val ? val : "", k->p.value) == 0) {
                *same = true;
                cJSON_Delete(copy);
                cJSON_Delete(list);
                return NULL;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(copy, "value");
            if (k->p.value[0])
                cJSON_AddStringToObject(copy, "value", k->p.value);
        }
        cJSON_AddItemToArray(list, copy);
    }
    if (!found) {
        cJSON *mine = cJSON_CreateObject();
        if (!mine) {
            cJSON_Delete(list);
            return NULL;
        }
        cJSON_AddStringToObject(mine, "key", k->p.key);
        if (k->p.value[0])
            cJSON_AddStringToObject(mine, "value", k->p.value);
        cJSON_AddStringToObject(mine, "effect", k->p.effect);
        if (strcmp(k->p.effect, "NoExecute") == 0) {
            char ts[32];
            time_t now = time(NULL);
            struct tm tm;
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
            cJSON_AddStringToObject(mine, "timeAdded", ts);
        }
        cJSON_AddItemToArray(list, mine);
    }
    return list;
}

/*
 * Read, merge, write with the resourceVersion read: a 409 means the node
 * changed in between, so read it again. *node is the node already read
 * (replaced by a fresh one on a conflict; caller owns it either way).
 */
static int kn_taint(struct kn_call *c, cJSON **node, bool *changed)
{
    char what[KN_NODE_MAX + 128];

    *changed = false;
    for (int attempt = 1; attempt <= KN_TAINT_ATTEMPTS; attempt++) {
        const char *rv = jstr(jget(*node, "metadata", NULL), "resourceVersion");
        struct kx_k8s_result res;
        bool same;
        cJSON *taints = kn_taints_merged(c->k, *node, &same), *patch, *meta, *spec;
        int e;

        if (same)
            return 0;
        if (!taints)
            return -EAGAIN;
        if (!(patch = cJSON_CreateObject()) ||
            !(meta = cJSON_AddObjectToObject(patch, "metadata")) ||
            !(spec = cJSON_AddObjectToObject(patch, "spec"))) {
            cJSON_Delete(taints);
            cJSON_Delete(patch);
            return -EAGAIN;
        }
        if (rv)
            cJSON_AddStringToObject(meta, "resourceVersion", rv);
        cJSON_AddItemToObject(spec, "taints", taints);
        e = kn_request(c, "PATCH", c->node_path, KX_K8S_STRATEGIC_MERGE_PATCH, patch, &res);
        cJSON_Delete(patch);
        kx_k8s_result_release(&res);
        if (e == 0) {
            *changed = true;
            cJSON_AddNumberToObject(c->audit, "attempts", attempt);
            return 0;
        }
        if (e == -ENOENT) {
            snprintf(what, sizeof(what), "node %s not found", c->node);
            cJSON_AddStringToObject(c->audit, "reason", what);
            return -ENOENT;
        }
        if (e != -EEXIST)
            return kn_fail(c, e, "cannot taint the node");
        /* somebody else changed the node since we read it */
        cJSON_Delete(*node);
        if ((e = kn_get_node(c, node)) < 0)
            return e;
    }
    snprintf(what, sizeof(what),
             "node %s changed under every one of %d attempts to taint it (409 Conflict)", c->node,
             KN_TAINT_ATTEMPTS);
    cJSON_AddStringToObject(c->audit, "reason", what);
    return -EAGAIN;
}

/* ------------------------------------------------------------------------ */
/* drain                                                                     */
/* ------------------------------------------------------------------------ */

enum kn_pod_state {
    KN_POD_SKIP,  /* not ours to evict */
    KN_POD_EVICT, /* to evict (again at next) */
    KN_POD_WAIT,  /* evicted or terminating: polled until gone */
    KN_POD_DONE,  /* gone, or failed for good */
};

struct kn_pod {
    char ns[64];
    char name[254];
    char uid[64];
    enum kn_pod_state state;
    const char *fate; /* static text for the audit */
    char msg[400];    /* the last refusal or error */
    int evictions;    /* eviction requests sent */
    bool failed;      /* DONE because the eviction failed for good */
    int64_t next;     /* monotonic ns of the next eviction or poll */
};

struct kn_drain {
    struct kn_pod *v;
    size_t n, cap;
};

static bool kn_owned_by_daemonset(const cJSON *pod)
{
    const cJSON *ref;

    cJSON_ArrayForEach(ref, jget(pod, "metadata", "ownerReferences"))
    {
        const char *kind = jstr(ref, "kind");
        if (kind && strcmp(kind, "DaemonSet") == 0)
            return true;
    }
    return false;
}

/* Adds one listed pod with its decision; -ENOMEM / -E2BIG. */
static int kn_drain_add(struct kn_call *c, struct kn_drain *dr, const cJSON *pod)
{
    const cJSON *meta = jget(pod, "metadata", NULL);
    const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name"), *uid = jstr(meta, "uid");
    const char *phase = jstr(jget(pod, "status", NULL), "phase");
    struct kn_pod *p;

    if (!ns || !name)
        return 0;
    if (dr->n == dr->cap) {
        size_t cap = dr->cap ? dr->cap * 2 : 32;
        struct kn_pod *v;
        if (dr->n >= KN_PODS_MAX)
            return -E2BIG;
        if (!(v = realloc(dr->v, cap * sizeof(*v))))
            return -ENOMEM;
        dr->v = v;
        dr->cap = cap;
    }
    p = &dr->v[dr->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->ns, sizeof(p->ns), "%s", ns);
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->uid, sizeof(p->uid), "%s", uid ? uid : "");
    p->state = KN_POD_SKIP;
    if (kx_strlist_has(&c->k->p.exclude_namespaces, ns))
        p->fate = "skipped_excluded_namespace";
    else if (cJSON_GetObjectItemCaseSensitive(jget(meta, "annotations", NULL), KN_MIRROR))
        p->fate = "skipped_mirror"; /* the kubelet's static pod: the API cannot remove it */
    else if (kn_owned_by_daemonset(pod))
        p->fate = "skipped_daemonset"; /* its controller ignores unschedulable anyway */
    else if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
        p->fate = "skipped_finished";
    else if (cJSON_IsString(jget(meta, "deletionTimestamp", NULL))) {
        p->fate = "terminating"; /* already going: wait for it, do not evict again */
        p->state = KN_POD_WAIT;
    } else {
        p->fate = "to_evict";
        p->state = KN_POD_EVICT;
    }
    return 0;
}

/* Lists the node's pods (all namespaces, paged) into dr. */
static int kn_drain_list(struct kn_call *c, struct kn_drain *dr)
{
    char sel[KN_NODE_MAX + 32], esc[3 * (KN_NODE_MAX + 32)], cont[2048] = "", econt[6144];
    char path[8192];
    int e = 0;

    snprintf(sel, sizeof(sel), "spec.nodeName=%s", c->node);
    if (kx_k8s_query_escape(sel, esc, sizeof(esc)) < 0)
        return -EINVAL;
    for (int page = 0; page < KN_PAGES_MAX; page++) {
        struct kx_k8s_result res;
        const cJSON *item;

        if (cont[0] && kx_k8s_query_escape(cont, econt, sizeof(econt)) < 0)
            return -E2BIG;
        snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=%s&limit=500%s%s", esc,
                 cont[0] ? "&continue=" : "", cont[0] ? econt : "");
        e = kn_request(c, "GET", path, NULL, NULL, &res);
        if (e == 0 && !cJSON_IsObject(res.json)) {
            snprintf(c->err, sizeof(c->err), "GET /api/v1/pods: the answer is not JSON");
            e = -EAGAIN;
        }
        if (e < 0) {
            kx_k8s_result_release(&res);
            return kn_fail(c, e, "cannot list the node's pods");
        }
        cJSON_ArrayForEach(item, jget(res.json, "items", NULL))
        {
            if ((e = kn_drain_add(c, dr, item)) < 0)
                break;
        }
        const char *next = jstr(jget(res.json, "metadata", NULL), "continue");
        snprintf(cont, sizeof(cont), "%s", next ? next : "");
        kx_k8s_result_release(&res);
        if (e == -E2BIG) {
            snprintf(c->err, sizeof(c->err), "more than %d pods on the node", KN_PODS_MAX);
            return kn_fail(c, -E2BIG, "cannot drain");
        }
        if (e < 0)
            return -EAGAIN;
        if (!cont[0])
            return 0;
    }
    snprintf(c->err, sizeof(c->err), "more than %d pages of pods", KN_PAGES_MAX);
    return kn_fail(c, -E2BIG, "cannot list the node's pods");
}

/* The eviction of p; as a request body, caller owns. */
static cJSON *kn_eviction(const struct kn *k, const struct kn_pod *p)
{
    cJSON *ev = cJSON_CreateObject(), *meta;

    if (!ev || !(meta = cJSON_AddObjectToObject(ev, "metadata"))) {
        cJSON_Delete(ev);
        return NULL;
    }
    cJSON_AddStringToObject(ev, "apiVersion", "policy/v1");
    cJSON_AddStringToObject(ev, "kind", "Eviction");
    cJSON_AddStringToObject(meta, "name", p->name);
    cJSON_AddStringToObject(meta, "namespace", p->ns);
    if (k->has_grace) {
        cJSON *opts = cJSON_AddObjectToObject(ev, "deleteOptions");
        if (opts)
            cJSON_AddNumberToObject(opts, "gracePeriodSeconds",
                                    (double)(k->p.grace_period / KX_NSEC_PER_SEC));
    }
    return ev;
}

/* Evicts p once. 0 or, for a reason to stop the whole drain (RBAC), <0. */
static int kn_evict(struct kn_call *c, struct kn_pod *p, int64_t now)
{
    char path[512];
    struct kx_k8s_result res;
    cJSON *ev = kn_eviction(c->k, p);
    int e;

    if (!ev)
        return -ENOMEM;
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/eviction", p->ns, p->name);
    e = kn_request(c, "POST", path, KX_K8S_JSON, ev, &res);
    cJSON_Delete(ev);
    p->evictions++;
    if (e == 0) {
        p->fate = "evicted";
        p->state = KN_POD_WAIT;
        p->next = now; /* the kubelet may be quick: look at once */
        p->msg[0] = '\0';
    } else if (e == -ENOENT) {
        p->fate = "gone";
        p->state = KN_POD_DONE;
    } else if (e == -EACCES) {
        kx_k8s_result_release(&res);
        return e;
    } else if (res.status == 429) {
        /* a PodDisruptionBudget says not now: as kubectl, try again later */
        int64_t wait =
            res.retry_after > c->k->p.retry_interval ? res.retry_after : c->k->p.retry_interval;
        const cJSON *cause =
            cJSON_GetArrayItem(jget(jget(res.json, "details", NULL), "causes", NULL), 0);
        const char *detail = jstr(cause, "message"); /* which budget, how many healthy */
        p->fate = "refused_pdb";
        p->next = now + wait;
        snprintf(p->msg, sizeof(p->msg), "%.250s%s%.140s", c->err, detail ? " " : "",
                 detail ? detail : "");
    } else if (kn_class(e) == -EAGAIN) {
        p->fate = "eviction_error";
        p->next = now + c->k->p.retry_interval;
        snprintf(p->msg, sizeof(p->msg), "%.380s", c->err);
    } else {
        p->fate = "eviction_failed";
        p->state = KN_POD_DONE;
        p->failed = true;
        snprintf(p->msg, sizeof(p->msg), "%.380s", c->err);
    }
    kx_k8s_result_release(&res);
    return 0;
}

/* Looks whether p is gone (404, or a new pod of the same name). <0 only for
 * RBAC trouble. */
static int kn_poll(struct kn_call *c, struct kn_pod *p, int64_t now)
{
    char path[512];
    struct kx_k8s_result res;
    int e;

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", p->ns, p->name);
    e = kn_request(c, "GET", path, NULL, NULL, &res);
    if (e == -ENOENT ||
        (e == 0 && p->uid[0] &&
         strcmp(jstr(jget(res.json, "metadata", NULL), "uid") ?: "", p->uid) != 0)) {
        if (strcmp(p->fate, "terminating") == 0)
            p->fate = "gone";
        p->state = KN_POD_DONE;
    } else if (e == -EACCES) {
        kx_k8s_result_release(&res);
        return e;
    }
    p->next = now + KN_POLL;
    kx_k8s_result_release(&res);
    return 0;
}

/* Evicts and waits until every pod to go is gone or the timeout. 0, -EAGAIN
 * (timed out), or a permanent failure (reason in the audit). */
static int kn_drain_run(struct kn_call *c, struct kn_drain *dr)
{
    int64_t deadline = kx_monotonic_ns() + c->k->p.timeout;

    for (;;) {
        int64_t now = kx_monotonic_ns(), next = deadline;
        bool pending = false;

        for (size_t i = 0; i < dr->n; i++) {
            struct kn_pod *p = &dr->v[i];
            int e = 0;

            if (p->state == KN_POD_EVICT && now >= p->next)
                e = kn_evict(c, p, now);
            else if (p->state == KN_POD_WAIT && now >= p->next)
                e = kn_poll(c, p, now);
            if (e < 0) {
                char what[600];
                snprintf(what, sizeof(what), "cannot %s pod %s/%s",
                         p->state == KN_POD_EVICT ? "evict" : "read", p->ns, p->name);
                return kn_fail(c, e, what);
            }
            if (p->state == KN_POD_EVICT || p->state == KN_POD_WAIT) {
                pending = true;
                if (p->next < next)
                    next = p->next;
            }
        }
        if (!pending)
            return 0;
        now = kx_monotonic_ns();
        if (now >= deadline)
            return -EAGAIN;
        if (next > now)
            kn_sleep(next - now);
    }
}

/* The drain's audit: each pod and its fate, the counts, what is left. */
static void kn_drain_audit(struct kn_call *c, const struct kn_drain *dr, char *left, size_t leftlen,
                           size_t *nleft, size_t *nfailed)
{
    cJSON *pods = cJSON_AddArrayToObject(c->audit, "pods");
    cJSON *rem = cJSON_AddArrayToObject(c->audit, "remaining");
    size_t evicted = 0, skipped = 0, o = 0;

    *nleft = *nfailed = 0;
    left[0] = '\0';
    for (size_t i = 0; i < dr->n; i++) {
        const struct kn_pod *p = &dr->v[i];
        cJSON *j = cJSON_CreateObject();
        char full[330];

        snprintf(full, sizeof(full), "%s/%s", p->ns, p->name);
        if (j) {
            cJSON_AddStringToObject(j, "namespace", p->ns);
            cJSON_AddStringToObject(j, "name", p->name);
            cJSON_AddStringToObject(j, "fate", p->fate);
            if (p->evictions)
                cJSON_AddNumberToObject(j, "evictions", p->evictions);
            if (p->msg[0])
                cJSON_AddStringToObject(j, "message", p->msg);
            if (p->state == KN_POD_DONE && strcmp(p->fate, "evicted") == 0)
                cJSON_AddBoolToObject(j, "gone", true);
            cJSON_AddItemToArray(pods, j);
        }
        if (p->state == KN_POD_SKIP)
            skipped++;
        else if (p->failed)
            (*nfailed)++;
        else if (p->evictions && p->state != KN_POD_EVICT)
            evicted++;
        if (p->state == KN_POD_EVICT || p->state == KN_POD_WAIT || p->failed) {
            if (!p->failed) {
                (*nleft)++;
                cJSON_AddItemToArray(rem, cJSON_CreateString(full));
            }
            if (o < leftlen)
                o += (size_t)snprintf(left + o, leftlen - o, "%s%s (%s%s%.200s)", o ? ", " : "",
                                      full, p->fate, p->msg[0] ? ": " : "", p->msg);
        }
    }
    cJSON_AddNumberToObject(c->audit, "evicted", (double)evicted);
    cJSON_AddNumberToObject(c->audit, "skipped", (double)skipped);
}

static int kn_drain(struct kn_call *c, const cJSON *node)
{
    struct kn_drain dr = {0};
    char left[1500], why[2400];
    size_t nleft, nfailed;
    bool changed;
    int e;

    if ((e = kn_unschedulable(c, node, true, &changed)) < 0)
        return e;
    cJSON_AddStringToObject(c->audit, "cordon",
                            changed ? (c->r->dry_run ? "dry_run" : "done") : "already");
    if ((e = kn_drain_list(c, &dr)) < 0) {
        free(dr.v);
        return e;
    }
    if (c->r->dry_run) {
        /* the evictions that would be sent; nothing waited for */
        for (size_t i = 0; i < dr.n; i++) {
            if (dr.v[i].state != KN_POD_EVICT)
                continue;
            struct kx_k8s_result res;
            cJSON *ev = kn_eviction(c->k, &dr.v[i]);
            char path[512];
            snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/eviction", dr.v[i].ns,
                     dr.v[i].name);
            if (ev)
                kn_request(c, "POST", path, KX_K8S_JSON, ev, &res);
            cJSON_Delete(ev);
            dr.v[i].fate = "would_evict";
            dr.v[i].state = KN_POD_SKIP; /* for the counts below */
        }
        kn_drain_audit(c, &dr, left, sizeof(left), &nleft, &nfailed);
        free(dr.v);
        return 0;
    }
    e = kn_drain_run(c, &dr);
    kn_drain_audit(c, &dr, left, sizeof(left), &nleft, &nfailed);
    free(dr.v);
    if (e == -EAGAIN) {
        snprintf(why, sizeof(why),
                 "drain of node %s not complete after %llds: %zu pod(s) still "
                 "there: %s",
                 c->node, (long long)(c->k->p.timeout / KX_NSEC_PER_SEC), nleft, left);
        cJSON_AddStringToObject(c->audit, "reason", why);
        return -EAGAIN;
    }
    if (e < 0)
        return e;
    if (nfailed) {
        snprintf(why, sizeof(why), "%zu pod(s) of node %s could not be evicted: %s", nfailed,
                 c->node, left);
        cJSON_AddStringToObject(c->audit, "reason", why);
        return -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Event                                                                     */
/* ------------------------------------------------------------------------ */

/* A Warning Event on the Node, for kubectl describe node; its outcome goes
 * into the audit's "event", it never fails the action. */
static void kn_event(struct kn_call *c)
{
    char name[KN_NODE_MAX + 40], msg[1024], ts[32];
    time_t now = time(NULL);
    struct tm tm;
    struct kx_k8s_result res;
    cJSON *ev = cJSON_CreateObject(), *meta, *io, *src, *rec;
    int e;

    if (!ev)
        return;
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    /* as client-go's recorder names them: <object>.<unix ns in hex> */
    snprintf(name, sizeof(name), "%s.%llx", c->node, (unsigned long long)kx_now_ns());
    snprintf(msg, sizeof(msg), "Klaxon responder %s: %s (rule %.700s)", c->r->name,
             kn_actions[c->k->action], c->a->rule);
    cJSON_AddStringToObject(ev, "apiVersion", "v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    meta = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", "default");
    io = cJSON_AddObjectToObject(ev, "involvedObject");
    cJSON_AddStringToObject(io, "apiVersion", "v1");
    cJSON_AddStringToObject(io, "kind", "Node");
    cJSON_AddStringToObject(io, "name", c->node);
    if (c->uid[0])
        cJSON_AddStringToObject(io, "uid", c->uid);
    cJSON_AddStringToObject(ev, "reason", kn_reasons[c->k->action]);
    cJSON_AddStringToObject(ev, "message", msg);
    cJSON_AddStringToObject(ev, "type", "Warning");
    src = cJSON_AddObjectToObject(ev, "source");
    cJSON_AddStringToObject(src, "component", "klaxon");
    cJSON_AddStringToObject(ev, "firstTimestamp", ts);
    cJSON_AddStringToObject(ev, "lastTimestamp", ts);
    cJSON_AddNumberToObject(ev, "count", 1);
    cJSON_AddStringToObject(ev, "reportingComponent", "klaxon");
    e = kn_request(c, "POST", "/api/v1/namespaces/default/events", KX_K8S_JSON, ev, &res);
    cJSON_Delete(ev);
    kx_k8s_result_release(&res);
    if (c->r->dry_run)
        return; /* it is in "requests" */
    if (!(rec = cJSON_AddObjectToObject(c->audit, "event")))
        return;
    cJSON_AddStringToObject(rec, "reason", kn_reasons[c->k->action]);
    if (e == 0) {
        cJSON_AddStringToObject(rec, "result", "created");
        cJSON_AddStringToObject(rec, "name", name);
    } else {
        cJSON_AddStringToObject(rec, "result", "failed");
        cJSON_AddStringToObject(rec, "error", c->err);
    }
}

/* ------------------------------------------------------------------------ */
/* act                                                                       */
/* ------------------------------------------------------------------------ */

/* A node name from the alert: k8s.node.name, else the hostname lowercased
 * (as the kubelet names its node). false when there is no valid one. */
static bool kn_node_name(const struct kx_alert *a, char *out, size_t len)
{
    char buf[KN_NODE_MAX + 2];
    const char *n = kx_alert_field_str(a, "k8s.node.name", buf, sizeof(buf));
    size_t l;

    if (!n || !n[0])
        n = a->hostname;
    l = strlen(n);
    if (l == 0 || l > KN_NODE_MAX || l >= len)
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = (char)tolower((unsigned char)n[i]);
        if (!(isalnum((unsigned char)ch) || ch == '-' || ch == '.'))
            return false;
        out[i] = ch;
    }
    out[l] = '\0';
    return isalnum((unsigned char)out[0]) && isalnum((unsigned char)out[l - 1]);
}

/* kx-respond. */
static int kn_act(struct kx_responder *r, const struct kx_alert *a,
                  const struct kx_config_node *params, cJSON *audit)
{
    const struct kn_settings *s = r->settings;
    struct kn_call c = {.r = r, .k = r->priv, .a = a, .audit = audit};
    cJSON *node = NULL;
    bool changed = false;
    int e;

    (void)params; /* parsed at init */
    if (!c.k || !c.k->k8s) {
        cJSON_AddStringToObject(audit, "reason", "k8s_node: not initialized");
        return -EINVAL;
    }
    cJSON_AddStringToObject(audit, "action", kn_actions[c.k->action]);
    if (!kn_node_name(a, c.node, sizeof(c.node))) {
        cJSON_AddStringToObject(audit, "reason",
                                "the alert has no k8s.node.name and its hostname is not a valid "
                                "node name: no node to act on");
        return -EINVAL;
    }
    cJSON_AddStringToObject(audit, "node", c.node);
    snprintf(c.node_path, sizeof(c.node_path), "/api/v1/nodes/%s", c.node);
    if (r->dry_run && !(c.requests = cJSON_AddArrayToObject(audit, "requests")))
        return -EAGAIN;
    if ((e = kn_get_node(&c, &node)) < 0)
        return e;
    switch (c.k->action) {
    case KN_CORDON:
    case KN_UNCORDON:
        e = kn_unschedulable(&c, node, c.k->action == KN_CORDON, &changed);
        break;
    case KN_TAINT:
        cJSON_AddStringToObject(audit, "taint", c.k->p.key);
        cJSON_AddStringToObject(audit, "effect", c.k->p.effect);
        e = kn_taint(&c, &node, &changed);
        break;
    case KN_DRAIN:
        e = kn_drain(&c, node);
        changed = e == 0;
        break;
    }
    cJSON_Delete(node);
    if (e < 0)
        return e;
    if (c.k->action != KN_DRAIN)
        cJSON_AddBoolToObject(audit, "changed", changed);
    /* an Event when something happened, not for every repeat of a no-op */
    if (s->events && (changed || c.k->action == KN_DRAIN))
        kn_event(&c);
    return 0;
}

const struct kx_responder_ops kx_responder_k8s_node = {
    .abi = KX_RESPONDER_ABI,
    .name = "k8s_node",
    .desc = "cordon, uncordon, taint or drain the alert's Kubernetes node",
    .opts = kn_opts,
    .settings_size = sizeof(struct kn_settings),
    .init = kn_init,
    .act = kn_act,
    .destroy = kn_destroy,
};
