/* SPDX-License-Identifier: Apache-2.0 */
/*
 * k8s_pod.c - the "k8s_pod" responder: act on the alert's pod through the
 * Kubernetes API (lib/k8s.h), as Falco Talon's kubernetes:* actionners do.
 *
 *   actions:
 *     - type: k8s_pod
 *       kubeconfig: /etc/klaxon/kubeconfig      # or mode: incluster (the default: auto)
 *       params: {action: terminate, min_healthy_replicas: "50%", grace_period_seconds: 5}
 *
 * params.action:
 *   delete     DELETE the pod with DeleteOptions {preconditions.uid}: a pod
 *              recreated under the same name is never hit (409 -> "replaced").
 *   evict      POST pods/{name}/eviction (same uid precondition). A refusal by a
 *              PodDisruptionBudget (429, cause DisruptionBudget) is a retry: the
 *              budget may allow it later; after the responder's max_deliver
 *              attempts it is a final failure naming the budget. With
 *              fallback_delete: true the pod is deleted instead, at once.
 *   label      merge-patch metadata.labels from params.labels (empty/null removes)
 *   annotate   the same with params.annotations
 *   isolate    label the pod with quarantine_label, then create the deny-all
 *              NetworkPolicy klaxon-quarantine-<pod> selecting that label
 *              (409 AlreadyExists: already isolated, fine)
 *   terminate  delete, only when the pod is run by a controller (Talon's
 *              kubernetes:terminate), with guards defaulting to
 *              ignore_daemonsets: true, ignore_statefulsets: false,
 *              ignore_standalone_pods: true (Talon's are all false; a
 *              DaemonSet's pod comes back on the same node at once, a bare
 *              pod never comes back).
 *
 * Guards (terminate; delete and evict when given): ignore_daemonsets,
 * ignore_statefulsets, ignore_standalone_pods, min_healthy_replicas ("N" or
 * "N%"). min_healthy_replicas counts the controller's healthy replicas
 * (min of ready and available; a ReplicaSet's Deployment when it has one)
 * *after* the action: minus one when the target pod is Ready itself. "N%"
 * is ceil(N * desired / 100), desired = spec.replicas (a DaemonSet's
 * desiredNumberScheduled). A guard that says no is result "skipped", not
 * a failure.
 *
 * The pod is the alert's k8s.ns.name / k8s.pod.name; its uid comes from
 * k8s.pod.uid, or from a GET of the pod. Patches carry metadata.uid too,
 * which the API refuses (422, uid immutable) for a recreated pod: also
 * "replaced". Outcomes: 2xx -> done; 404 -> done, "gone"; 401/403 ->
 * permanent (the message names the RBAC verb and resource); 422 and other
 * 4xx -> permanent; 429, 5xx, no connection -> retry (lib/k8s.c does not
 * retry by itself: the core's max_deliver and backoff do).
 *
 * After each change, a core/v1 Event (reason Klaxon<Action>, type Warning,
 * source klaxon) is created on the pod unless `events: false`; a failure
 * there is recorded in the audit ("event_error") and does not fail the
 * action. dry_run: the audit gets the exact requests ("requests"); only
 * the GETs the guards need are sent.
 *
 * Threads: kx-respond (one instance's calls one at a time; the client is
 * the instance's own).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "k8s.h"
#include "responders.h"
#include "util.h"

#define POD_NAME_MAX 253 /* DNS-1123 subdomain */
#define NS_NAME_MAX 63   /* DNS-1123 label */
#define POD_UID_MAX 64
#define POD_ERR_MAX 1536
#define POD_NP_NAME_MAX 63

struct pod_settings {
    struct kx_k8s_settings k8s; /* the connection, keys as in kx_k8s_settings_table */
    bool events;                /* create a core/v1 Event per change */
};

#define S(field) offsetof(struct pod_settings, field)
static const struct kx_opt pod_opts[] = {
    KX_K8S_OPTS(struct pod_settings, k8s),
    {"events", KX_OPT_BOOL, "true", S(events), 0,
     "create a Kubernetes Event on the pod for each change made"},
    {0},
};

enum pod_action { ACT_DELETE, ACT_EVICT, ACT_LABEL, ACT_ANNOTATE, ACT_ISOLATE, ACT_TERMINATE };

static const struct {
    const char *name;
    const char *reason; /* Event reason */
    const char *params; /* allowed besides "action", space separated */
} actions[] = {
    [ACT_DELETE] = {"delete", "KlaxonDeleted",
                    "grace_period_seconds propagation_policy ignore_daemonsets "
                    "ignore_statefulsets ignore_standalone_pods min_healthy_replicas"},
    [ACT_EVICT] = {"evict", "KlaxonEvicted",
                   "grace_period_seconds propagation_policy ignore_daemonsets "
                   "ignore_statefulsets ignore_standalone_pods min_healthy_replicas "
                   "fallback_delete"},
    [ACT_LABEL] = {"label", "KlaxonLabeled", "labels"},
    [ACT_ANNOTATE] = {"annotate", "KlaxonAnnotated", "annotations"},
    [ACT_ISOLATE] = {"isolate", "KlaxonIsolated", "quarantine_label"},
    [ACT_TERMINATE] = {"terminate", "KlaxonTerminated",
                       "grace_period_seconds propagation_policy ignore_daemonsets "
                       "ignore_statefulsets ignore_standalone_pods min_healthy_replicas"},
};

struct pod_guards {
    int ignore_ds;         /* 1 skip DaemonSet pods; 0 no; -1 not given */
    int ignore_sts;        /* same for StatefulSet pods */
    int ignore_standalone; /* same for pods without a controller */
    bool has_min;          /* min_healthy_replicas given */
    long min;              /* replicas, or percent when min_pct */
    bool min_pct;
};

struct pod_priv {
    struct kx_k8s *k8s; /* owned */
    enum pod_action action;
    long grace;              /* gracePeriodSeconds; -1 = not given */
    const char *propagation; /* static string or NULL */
    bool fallback_delete;    /* evict: delete when a PDB refuses */
    struct pod_guards g;
    cJSON *meta;              /* owned: labels/annotations map of the patch */
    char qkey[320], qval[64]; /* isolate: the quarantine label */
};

/* ------------------------------------------------------------------------ */
/* Params (kx-respond, start-up)                                             */
/* ------------------------------------------------------------------------ */

static const char *param(const struct kx_config_node *params, const char *key)
{
    const struct kx_config_node *n = params ? kx_config_get(params, key) : NULL;
    return n && n->value ? n->value : NULL;
}

static bool word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* 1 / 0, or -1 when s is not a bool. */
static int bool_of(const char *s)
{
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                             "0"};
    for (size_t i = 0; s && i < KX_ARRAY_SIZE(t); i++) {
        if (strcasecmp(s, t[i]) == 0)
            return 1;
        if (strcasecmp(s, f[i]) == 0)
            return 0;
    }
    return -1;
}


static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label value: empty, or <= 63 of [-_.A-Za-z0-9] starting and ending alphanumeric. */
static bool label_value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0)
        return true;
    if (n > 63 || !alnum(v[0]) || !alnum(v[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return false;
    return true;
}

/* A qualified name (label or annotation key): [prefix/]name, prefix a DNS
 * subdomain, name as a non-empty label value. */
static bool qualified_name_ok(const char *k)
{
    const char *slash = strchr(k, '/');
    const char *name = slash ? slash + 1 : k;

    if (slash) {
        size_t pl = (size_t)(slash - k);
        if (pl == 0 || pl > 253 || !alnum(k[0]) || !alnum(k[pl - 1]))
            return false;
        for (size_t i = 0; i < pl; i++)
            if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' ||
                  k[i] == '.'))
                return false;
    }
    return name[0] && !strchr(name, '/') && label_value_ok(name);
}

/* Names that go into a URL path: DNS-1123 characters only, so no escaping
 * is needed and nothing else can be addressed. */
static bool dns_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.'))
            return false;
    return true;
}

static bool uid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= POD_UID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* params.labels / params.annotations into p->meta ({key: value|null}). */
static void meta_map_parse(struct kx_responder *r, struct pod_priv *p,
                           const struct kx_config_node *params, const char *key, struct kx_diag *d)
{
    const struct kx_config_node *m = kx_config_get(params, key);
    bool labels = strcmp(key, "labels") == 0;

    if (!m || m->kind != KX_CFG_MAP || !m->child) {
        kx_diag_add(d, m ? m : params,
                    "responder %s: k8s_pod: params.%s must be a non-empty map (key: value; an "
                    "empty or null value removes the key)",
                    r->name, key);
        return;
    }
    if (!(p->meta = cJSON_CreateObject())) {
        kx_diag_add(d, m, "out of memory");
        return;
    }
    for (const struct kx_config_node *k = m->child; k; k = k->next) {
        if (!qualified_name_ok(k->key))
            kx_diag_add(d, k,
                        "responder %s: k8s_pod: \"%s\" is not a valid %s key ([prefix/]name, "
                        "name <= 63 characters of [-_.A-Za-z0-9] starting and ending "
                        "alphanumeric)",
                        r->name, k->key, labels ? "label" : "annotation");
        else if (k->kind != KX_CFG_SCALAR)
            kx_diag_add(d, k, "responder %s: k8s_pod: the value of %s.%s must be a string", r->name,
                        key, k->key);
        else if (labels && !label_value_ok(k->value))
            kx_diag_add(d, k,
                        "responder %s: k8s_pod: label value \"%s\" is not valid (<= 63 "
                        "characters of [-_.A-Za-z0-9] starting and ending alphanumeric)",
                        r->name, k->value);
        else if (k->value[0])
            cJSON_AddStringToObject(p->meta, k->key, k->value);
        else
            cJSON_AddNullToObject(p->meta, k->key);
    }
}

static void guards_parse(struct kx_responder *r, struct pod_priv *p,
                         const struct kx_config_node *params, struct kx_diag *d)
{
    static const char *const keys[] = {"ignore_daemonsets", "ignore_statefulsets",
                                       "ignore_standalone_pods"};
    int *dst[] = {&p->g.ignore_ds, &p->g.ignore_sts, &p->g.ignore_standalone};
    bool term = p->action == ACT_TERMINATE;
    const char *v;

    p->g.ignore_ds = term ? 1 : -1;
    p->g.ignore_sts = term ? 0 : -1;
    p->g.ignore_standalone = term ? 1 : -1;
    for (size_t i = 0; i < KX_ARRAY_SIZE(keys); i++) {
        if (!(v = param(params, keys[i])))
            continue;
        if ((*dst[i] = bool_of(v)) < 0)
            kx_diag_add(d, kx_config_get(params, keys[i]),
                        "responder %s: k8s_pod: %s must be true or false", r->name, keys[i]);
    }
    if ((v = param(params, "min_healthy_replicas"))) {
        size_t n = strlen(v);
        p->g.min_pct = n > 0 && v[n - 1] == '%';
        p->g.has_min =
            kx_small_uint(v, p->g.min_pct ? n - 1 : n, &p->g.min) && !(p->g.min_pct && p->g.min > 100);
        if (!p->g.has_min)
            kx_diag_add(d, kx_config_get(params, "min_healthy_replicas"),
                        "responder %s: k8s_pod: min_healthy_replicas must be a number of "
                        "replicas (\"2\") or a percentage of spec.replicas (\"50%%\", <= 100%%)",
                        r->name);
    }
    if ((v = param(params, "grace_period_seconds")) && !kx_small_uint(v, strlen(v), &p->grace))
        kx_diag_add(d, kx_config_get(params, "grace_period_seconds"),
                    "responder %s: k8s_pod: grace_period_seconds must be a number >= 0", r->name);
    if ((v = param(params, "propagation_policy"))) {
        static const char *const pol[] = {"Background", "Foreground", "Orphan"};
        for (size_t i = 0; i < KX_ARRAY_SIZE(pol); i++)
            if (strcasecmp(v, pol[i]) == 0)
                p->propagation = pol[i];
        if (!p->propagation)
            kx_diag_add(d, kx_config_get(params, "propagation_policy"),
                        "responder %s: k8s_pod: propagation_policy must be Background, "
                        "Foreground or Orphan",
                        r->name);
    }
    if ((v = param(params, "fallback_delete"))) {
        int b = bool_of(v);
        if (b < 0)
            kx_diag_add(d, kx_config_get(params, "fallback_delete"),
                        "responder %s: k8s_pod: fallback_delete must be true or false", r->name);
        p->fallback_delete = b == 1;
    }
}

static void quarantine_parse(struct kx_responder *r, struct pod_priv *p,
                             const struct kx_config_node *params, struct kx_diag *d)
{
    const char *v = param(params, "quarantine_label");
    const char *eq;

    if (!v || !v[0])
        v = "klaxon.io/quarantine=true";
    eq = strchr(v, '=');
    if (!eq || (size_t)(eq - v) >= sizeof(p->qkey) || strlen(eq + 1) >= sizeof(p->qval)) {
        kx_diag_add(d, kx_config_get(params, "quarantine_label"),
                    "responder %s: k8s_pod: quarantine_label must be key=value", r->name);
        return;
    }
    snprintf(p->qkey, sizeof(p->qkey), "%.*s", (int)(eq - v), v);
    snprintf(p->qval, sizeof(p->qval), "%s", eq + 1);
    if (!qualified_name_ok(p->qkey) || !label_value_ok(p->qval))
        kx_diag_add(d, kx_config_get(params, "quarantine_label"),
                    "responder %s: k8s_pod: quarantine_label \"%s\" is not a valid label "
                    "(key=value as in metadata.labels)",
                    r->name, v);
}

static void pod_destroy(struct kx_responder *r)
{
    struct pod_priv *p = r->priv;

    if (!p)
        return;
    kx_k8s_free(p->k8s);
    cJSON_Delete(p->meta);
    free(p);
    r->priv = NULL;
}

/* kx-respond (start-up): params are checked here, once, and the client is made. */
static int pod_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    struct pod_settings *s = r->settings;
    const struct kx_config_node *params = kx_config_get(cfg, "params");
    const char *action = param(params, "action");
    struct pod_priv *p = calloc(1, sizeof(*p));
    size_t before = d->n;
    bool known = false;
    struct kx_k8s_opts o;
    char err[1024];

    if (!p) {
        kx_diag_add(d, cfg, "out of memory");
        return -ENOMEM;
    }
    r->priv = p;
    p->grace = -1;
    for (size_t i = 0; action && i < KX_ARRAY_SIZE(actions); i++)
        if (strcmp(action, actions[i].name) == 0) {
            p->action = (enum pod_action)i;
            known = true;
        }
    if (!known) {
        kx_diag_add(d,
                    params
                        ? kx_config_get(params, "action") ? kx_config_get(params, "action") : params
                        : cfg,
                    "responder %s: k8s_pod: params.action must be delete, evict, label, "
                    "annotate, isolate or terminate",
                    r->name);
        goto out;
    }
    for (const struct kx_config_node *k = params ? params->child : NULL; k; k = k->next)
        if (strcmp(k->key, "action") != 0 && !word_in(actions[p->action].params, k->key))
            kx_diag_add(d, k, "responder %s: k8s_pod: unknown param \"%s\" for %s (want %s)",
                        r->name, k->key, action, actions[p->action].params);
    switch (p->action) {
    case ACT_DELETE:
    case ACT_EVICT:
    case ACT_TERMINATE:
        guards_parse(r, p, params, d);
        break;
    case ACT_LABEL:
        meta_map_parse(r, p, params, "labels", d);
        break;
    case ACT_ANNOTATE:
        meta_map_parse(r, p, params, "annotations", d);
        break;
    case ACT_ISOLATE:
        quarantine_parse(r, p, params, d);
        break;
    }
    if (kx_k8s_settings_opts(&s->k8s, &o,
                             kx_config_get(cfg, "mode") ? kx_config_get(cfg, "mode") : cfg, d) < 0)
        goto out;
    if (o.mode == KX_K8S_MODE_OFF) {
        kx_diag_add(d, kx_config_get(cfg, "mode"),
                    "responder %s: k8s_pod: mode off leaves nothing to act through", r->name);
        goto out;
    }
    if (s->k8s.timeout < 100 * KX_NSEC_PER_MSEC)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "responder %s: k8s_pod: timeout >= 100ms",
                    r->name);
    /* also after bad params: every problem of the file in one run */
    if (!(p->k8s = kx_k8s_new(&o, err, sizeof(err))))
        kx_diag_add(d, cfg, "responder %s: k8s_pod: %s", r->name, err);
out:
    if (d->n > before) {
        pod_destroy(r);
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Acting (kx-respond)                                                       */
/* ------------------------------------------------------------------------ */

/* What one act works on. */
struct target {
    char ns[NS_NAME_MAX + 1];
    char pod[POD_NAME_MAX + 1];
    char uid[POD_UID_MAX];
    cJSON *obj;      /* owned: the pod as read, NULL when not read */
    cJSON *requests; /* borrowed from the audit: what was (or would be) sent */
};

/* Records a request in the audit's "requests" list. */
static void note_request(struct target *t, const char *method, const char *path, const char *ctype,
                         const cJSON *body)
{
    cJSON *q = cJSON_CreateObject();
    if (!q)
        return;
    cJSON_AddStringToObject(q, "method", method);
    cJSON_AddStringToObject(q, "path", path);
    if (body) {
        cJSON_AddStringToObject(q, "content_type", ctype ? ctype : KX_K8S_JSON);
        cJSON_AddItemToObject(q, "body", cJSON_Duplicate(body, true));
    }
    cJSON_AddItemToArray(t->requests, q);
}

/*
 * One API call. body (borrowed, may be NULL) is printed here. The request
 * is recorded in the audit (mutating ones only: GETs are not what the
 * action did). In dry run, mutating requests are only recorded: returns 1.
 */
static int call(struct kx_responder *r, struct target *t, const char *method, const char *path,
                const char *ctype, const cJSON *body, struct kx_k8s_result *res, char *err,
                size_t errlen)
{
    struct pod_priv *p = r->priv;
    bool get = strcmp(method, "GET") == 0;
    char *text = NULL;
    int rc;

    memset(res, 0, sizeof(*res));
    err[0] = '\0';
    if (!get)
        note_request(t, method, path, ctype, body);
    if (!get && r->dry_run)
        return 1;
    if (body && !(text = cJSON_PrintUnformatted(body))) {
        snprintf(err, errlen, "out of memory");
        return -EAGAIN;
    }
    rc = kx_k8s_request(p->k8s, method, path, ctype, text, res, err, errlen);
    free(text);
    if (res->retry_after > r->retry_after) /* the engine waits this long before a retry */
        r->retry_after = res->retry_after;
    return rc;
}

/* The outcome of a failed call for the core: retry or permanent, the
 * message in the audit. */
static int failed(cJSON *audit, int rc, const struct kx_k8s_result *res, const char *err)
{
    cJSON_AddStringToObject(audit, "reason", err[0] ? err : strerror(-rc));
    if (res->status)
        cJSON_AddNumberToObject(audit, "http_status", (double)res->status);
    if (rc == -EAGAIN || rc == -ECANCELED || rc == -ESTALE)
        return -EAGAIN;
    return rc < 0 ? rc : -EIO;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static long num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? (long)x->valuedouble : 0; /* omitempty: absent is 0 */
}

static bool pod_ready(const cJSON *pod)
{
    const cJSON *c, *conds = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(pod, "status"), "conditions");
    cJSON_ArrayForEach(c, conds)
    {
        const char *type = str_at(c, "type", NULL), *st = str_at(c, "status", NULL);
        if (type && st && strcmp(type, "Ready") == 0)
            return strcmp(st, "True") == 0;
    }
    return false;
}

/* The controller ownerReference of obj, or NULL. */
static const cJSON *controller_of(const cJSON *obj)
{
    const cJSON *o, *refs = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "ownerReferences");
    cJSON_ArrayForEach(
        o, refs) if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "controller"))) return o;
    return NULL;
}

/*
 * GETs the pod into t->obj (and its uid into t->uid when the alert had
 * none). 0 when read; 1 when the pod is gone or is another pod now (result
 * set in audit); <0 as failed().
 */
static int read_pod(struct kx_responder *r, struct target *t, cJSON *audit)
{
    struct kx_k8s_result res;
    char path[400], err[POD_ERR_MAX];
    int rc;

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", t->ns, t->pod);
    rc = call(r, t, "GET", path, NULL, NULL, &res, err, sizeof(err));
    if (rc == -ENOENT) {
        cJSON_AddStringToObject(audit, "result", "gone");
        cJSON_AddStringToObject(audit, "reason", "the pod is already gone");
        kx_k8s_result_release(&res);
        return 1;
    }
    if (rc < 0 || !cJSON_IsObject(res.json)) {
        if (rc == 0) {
            rc = -EIO;
            snprintf(err, sizeof(err), "GET %s: the answer is not a JSON object", path);
        }
        rc = failed(audit, rc, &res, err);
        kx_k8s_result_release(&res);
        return rc;
    }
    t->obj = res.json;
    res.json = NULL;
    kx_k8s_result_release(&res);
    const char *uid = str_at(t->obj, "metadata", "uid");
    if (!uid || !uid_ok(uid)) {
        cJSON_AddStringToObject(audit, "reason", "the pod read from the API has no valid uid");
        return -EIO;
    }
    if (!t->uid[0]) {
        snprintf(t->uid, sizeof(t->uid), "%s", uid);
        cJSON_AddStringToObject(cJSON_GetObjectItem(audit, "target"), "uid", t->uid);
    } else if (strcmp(uid, t->uid) != 0) {
        char why[600];
        snprintf(why, sizeof(why), "pod %s/%s is now another pod (uid %s, the alert's is %s)",
                 t->ns, t->pod, uid, t->uid);
        cJSON_AddStringToObject(audit, "result", "replaced");
        cJSON_AddStringToObject(audit, "reason", why);
        return 1;
    }
    return 0;
}

static void skip(cJSON *audit, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(cJSON *audit, const char *fmt, ...)
{
    char why[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(audit, "result", "skipped");
    cJSON_AddStringToObject(audit, "reason", why);
}

/* GET apps/v1 <plural>/<name> in ns into *out (caller owns). */
static int read_apps(struct kx_responder *r, struct target *t, const char *plural, const char *name,
                     cJSON **out, cJSON *audit)
{
    struct kx_k8s_result res;
    char path[600], err[POD_ERR_MAX];
    int rc;

    *out = NULL;
    if (!dns_name_ok(name, POD_NAME_MAX)) {
        cJSON_AddStringToObject(audit, "reason", "an owner of the pod has an invalid name");
        return -EIO;
    }
    snprintf(path, sizeof(path), "/apis/apps/v1/namespaces/%s/%s/%s", t->ns, plural, name);
    rc = call(r, t, "GET", path, NULL, NULL, &res, err, sizeof(err));
    if (rc == 0 && cJSON_IsObject(res.json)) {
        *out = res.json;
        res.json = NULL;
    } else if (rc != -ENOENT) {
        rc = failed(audit, rc ? rc : -EIO, &res, err[0] ? err : "owner: not a JSON object");
    }
    kx_k8s_result_release(&res);
    return rc;
}

/*
 * The guards. 0 go on; 1 skipped (audit says why); <0 as failed(). Needs
 * t->obj.
 */
static int check_guards(struct kx_responder *r, struct target *t, cJSON *audit)
{
    const struct pod_guards *g = &((struct pod_priv *)r->priv)->g;
    const cJSON *ref = controller_of(t->obj);
    const char *kind = ref ? str_at(ref, "kind", NULL) : NULL;
    const char *name = ref ? str_at(ref, "name", NULL) : NULL;
    cJSON *owner = NULL, *top = NULL, *info;
    long desired, healthy, required, after;
    char what[400];
    int rc;

    if (!kind || !name) {
        if (g->ignore_standalone == 1) {
            skip(audit, "pod %s/%s has no controller (ignore_standalone_pods)", t->ns, t->pod);
            return 1;
        }
    } else if (strcmp(kind, "DaemonSet") == 0 && g->ignore_ds == 1) {
        skip(audit, "pod %s/%s belongs to DaemonSet %s (ignore_daemonsets)", t->ns, t->pod, name);
        return 1;
    } else if (strcmp(kind, "StatefulSet") == 0 && g->ignore_sts == 1) {
        skip(audit, "pod %s/%s belongs to StatefulSet %s (ignore_statefulsets)", t->ns, t->pod,
             name);
        return 1;
    }
    if (!g->has_min)
        return 0;

    /* min_healthy_replicas: the workload's counts, after this pod is gone */
    bool ready = pod_ready(t->obj);
    if (!kind || !name) {
        desired = 1;
        healthy = ready ? 1 : 0;
        snprintf(what, sizeof(what), "standalone pod %s/%s", t->ns, t->pod);
    } else {
        const char *plural = strcmp(kind, "ReplicaSet") == 0    ? "replicasets"
                             : strcmp(kind, "StatefulSet") == 0 ? "statefulsets"
                             : strcmp(kind, "DaemonSet") == 0   ? "daemonsets"
                                                                : NULL;
        const char *api = str_at(ref, "apiVersion", NULL);
        if (!plural || !api || strcmp(api, "apps/v1") != 0) {
            skip(audit,
                 "min_healthy_replicas: the pod's controller %s %s has no replica counts "
                 "Klaxon reads",
                 kind, name);
            return 1;
        }
        if ((rc = read_apps(r, t, plural, name, &owner, audit)) == -ENOENT) {
            skip(audit, "min_healthy_replicas: the pod's %s %s is not found", kind, name);
            return 1;
        }
        if (rc < 0)
            return rc;
        top = owner;
        const cJSON *up = controller_of(owner);
        const char *ukind = up ? str_at(up, "kind", NULL) : NULL;
        const char *uname = up ? str_at(up, "name", NULL) : NULL;
        if (strcmp(plural, "replicasets") == 0 && ukind && uname &&
            strcmp(ukind, "Deployment") == 0) {
            /* a Deployment counts across its ReplicaSets (rollouts) */
            rc = read_apps(r, t, "deployments", uname, &top, audit);
            if (rc == -ENOENT) {
                cJSON_Delete(owner);
                skip(audit, "min_healthy_replicas: the pod's Deployment %s is not found", uname);
                return 1;
            }
            if (rc < 0) {
                cJSON_Delete(owner);
                return rc;
            }
            kind = "Deployment";
            name = str_at(top, "metadata", "name") ? str_at(top, "metadata", "name") : uname;
        }
        if (strcmp(kind, "DaemonSet") == 0) {
            desired = num_at(top, "status", "desiredNumberScheduled");
            long a = num_at(top, "status", "numberAvailable"),
                 rr = num_at(top, "status", "numberReady");
            healthy = a < rr ? a : rr;
        } else {
            const cJSON *sr = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(top, "spec"), "replicas");
            desired = cJSON_IsNumber(sr) ? (long)sr->valuedouble : 1; /* the API's default */
            long a = num_at(top, "status", "availableReplicas"),
                 rr = num_at(top, "status", "readyReplicas");
            healthy = a < rr ? a : rr;
        }
        snprintf(what, sizeof(what), "%s %s/%s", kind, t->ns, name);
    }
    required = g->min_pct ? (g->min * desired + 99) / 100 : g->min;
    after = healthy - (ready && healthy > 0 ? 1 : 0);
    if ((info = cJSON_AddObjectToObject(audit, "owner"))) {
        cJSON_AddStringToObject(info, "workload", what);
        cJSON_AddNumberToObject(info, "desired", (double)desired);
        cJSON_AddNumberToObject(info, "healthy", (double)healthy);
        cJSON_AddNumberToObject(info, "healthy_after", (double)after);
        cJSON_AddNumberToObject(info, "min_healthy", (double)required);
    }
    if (top != owner)
        cJSON_Delete(top);
    cJSON_Delete(owner);
    if (after < required) {
        char min[32];
        if (g->min_pct)
            snprintf(min, sizeof(min), "%ld%% of %ld = %ld", g->min, desired, required);
        else
            snprintf(min, sizeof(min), "%ld", required);
        skip(audit, "min_healthy_replicas %s: %s has %ld healthy replica(s), %ld after this action",
             min, what, healthy, after);
        return 1;
    }
    return 0;
}

/* DeleteOptions with the uid precondition. Caller owns. */
static cJSON *delete_options(const struct pod_priv *p, const struct target *t, bool typed)
{
    cJSON *o = cJSON_CreateObject(), *pre;

    if (!o)
        return NULL;
    if (typed) {
        cJSON_AddStringToObject(o, "apiVersion", "v1");
        cJSON_AddStringToObject(o, "kind", "DeleteOptions");
    }
    if (p->grace >= 0)
        cJSON_AddNumberToObject(o, "gracePeriodSeconds", (double)p->grace);
    if (p->propagation)
        cJSON_AddStringToObject(o, "propagationPolicy", p->propagation);
    if ((pre = cJSON_AddObjectToObject(o, "preconditions")))
        cJSON_AddStringToObject(pre, "uid", t->uid);
    return o;
}

/* Result for a change that did not happen because the pod is not there
 * (404) or is another one (409 precondition, 422 uid immutable). 1 when
 * so (result set), 0 otherwise. */
static int not_ours(cJSON *audit, int rc, const struct kx_k8s_result *res, const char *err)
{
    if (rc == -ENOENT) {
        cJSON_AddStringToObject(audit, "result", "gone");
        cJSON_AddStringToObject(audit, "reason", "the pod is already gone");
        return 1;
    }
    bool uid_field = false;
    if (rc == -EINVAL && res->status == 422) {
        const cJSON *c, *causes = cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(res->json, "details"), "causes");
        cJSON_ArrayForEach(c, causes)
        {
            const char *f = str_at(c, "field", NULL);
            uid_field = uid_field || (f && strcmp(f, "metadata.uid") == 0);
        }
    }
    if ((rc == -EEXIST && res->status == 409) || uid_field) {
        char why[POD_ERR_MAX + 80];
        snprintf(why, sizeof(why), "the pod was replaced by another of the same name: %s", err);
        cJSON_AddStringToObject(audit, "result", "replaced");
        cJSON_AddStringToObject(audit, "reason", why);
        return 1;
    }
    return 0;
}

/*
 * One change to the pod (DELETE or PATCH of body, which is freed) and its
 * outcome in audit: done (or dry_run) -> 0, the pod we meant is gone or
 * replaced -> 1, else failed()'s verdict. done may be NULL: no result set.
 */
static int pod_change(struct kx_responder *r, struct target *t, const char *method,
                      const char *ctype, cJSON *body, cJSON *audit, const char *done)
{
    struct kx_k8s_result res;
    char path[400], err[POD_ERR_MAX];
    int rc;

    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", t->ns, t->pod);
    rc = call(r, t, method, path, ctype, body, &res, err, sizeof(err));
    cJSON_Delete(body);
    if (rc >= 0) {
        if (done)
            cJSON_AddStringToObject(audit, "result", rc == 1 ? "dry_run" : done);
        rc = 0;
    } else if (not_ours(audit, rc, &res, err)) {
        rc = 1;
    } else {
        rc = failed(audit, rc, &res, err);
    }
    kx_k8s_result_release(&res);
    return rc;
}

static int do_delete(struct kx_responder *r, struct target *t, cJSON *audit, const char *done)
{
    cJSON *body = delete_options(r->priv, t, true);

    return body ? pod_change(r, t, "DELETE", KX_K8S_JSON, body, audit, done) : -EAGAIN;
}

/* The DisruptionBudget cause's message of a 429, or NULL when it is another 429. */
static const char *pdb_refusal(const struct kx_k8s_result *res)
{
    const cJSON *c, *causes = cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetObjectItemCaseSensitive(res->json, "details"), "causes");
    if (res->status != 429)
        return NULL;
    cJSON_ArrayForEach(c, causes)
    {
        const char *reason = str_at(c, "reason", NULL);
        if (reason && strcmp(reason, "DisruptionBudget") == 0) {
            const char *m = str_at(c, "message", NULL);
            return m ? m : "refused by a PodDisruptionBudget";
        }
    }
    return NULL;
}

static int do_evict(struct kx_responder *r, struct target *t, cJSON *audit, bool *deleted)
{
    struct pod_priv *p = r->priv;
    struct kx_k8s_result res;
    char path[400], err[POD_ERR_MAX];
    cJSON *body = cJSON_CreateObject(), *meta, *opts = delete_options(p, t, false);
    int rc;

    if (!body || !opts) {
        cJSON_Delete(body);
        cJSON_Delete(opts);
        return -EAGAIN;
    }
    cJSON_AddStringToObject(body, "apiVersion", "policy/v1");
    cJSON_AddStringToObject(body, "kind", "Eviction");
    if ((meta = cJSON_AddObjectToObject(body, "metadata"))) {
        cJSON_AddStringToObject(meta, "name", t->pod);
        cJSON_AddStringToObject(meta, "namespace", t->ns);
    }
    cJSON_AddItemToObject(body, "deleteOptions", opts);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/eviction", t->ns, t->pod);
    rc = call(r, t, "POST", path, KX_K8S_JSON, body, &res, err, sizeof(err));
    cJSON_Delete(body);
    if (rc >= 0) {
        cJSON_AddStringToObject(audit, "result", rc == 1 ? "dry_run" : "evicted");
        if (rc == 1 && p->fallback_delete)
            cJSON_AddStringToObject(audit, "note",
                                    "a refusal by a PodDisruptionBudget would be followed by "
                                    "a delete (fallback_delete)");
        rc = 0;
    } else if (not_ours(audit, rc, &res, err)) {
        rc = 1;
    } else if (pdb_refusal(&res)) {
        char why[POD_ERR_MAX + 200];
        snprintf(why, sizeof(why), "eviction refused by a PodDisruptionBudget: %s",
                 pdb_refusal(&res));
        cJSON_AddStringToObject(audit, p->fallback_delete ? "eviction_refused" : "reason", why);
        if (p->fallback_delete) {
            rc = do_delete(r, t, audit, "deleted");
            *deleted = rc == 0;
        } else {
            /* the budget may allow it once the workload is healthy again */
            cJSON_AddNumberToObject(audit, "http_status", 429);
            rc = -EAGAIN;
        }
    } else {
        rc = failed(audit, rc, &res, err);
    }
    kx_k8s_result_release(&res);
    return rc;
}

/* Merge-patches metadata.<field> (labels or annotations) with map, uid included. */
static int do_patch(struct kx_responder *r, struct target *t, const char *field, const cJSON *map,
                    cJSON *audit, const char *done)
{
    cJSON *body = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(body, "metadata");

    if (!body || !meta) {
        cJSON_Delete(body);
        return -EAGAIN;
    }
    cJSON_AddStringToObject(meta, "uid", t->uid); /* a recreated pod refuses it (immutable) */
    cJSON_AddItemToObject(meta, field, cJSON_Duplicate(map, true));
    return pod_change(r, t, "PATCH", KX_K8S_MERGE_PATCH, body, audit, done);
}

/* klaxon-quarantine-<pod> as a DNS-1123 label (<= 63): other characters
 * become '-', and a name cut short gets a hash of the pod name. */
static void policy_name(const char *pod, char *out, size_t len)
{
    char buf[POD_NAME_MAX + 32];
    size_t n;

    snprintf(buf, sizeof(buf), "klaxon-quarantine-%s", pod);
    for (char *c = buf; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            *c = '-';
    n = strlen(buf);
    if (n > POD_NP_NAME_MAX) {
        snprintf(buf + POD_NP_NAME_MAX - 9, sizeof(buf) - (POD_NP_NAME_MAX - 9), "-%08x",
                 (unsigned)kx_hash64(pod, strlen(pod), 0));
        n = strlen(buf);
    }
    while (n > 0 && buf[n - 1] == '-')
        buf[--n] = '\0';
    snprintf(out, len, "%s", buf);
}

static int do_isolate(struct kx_responder *r, struct target *t, const struct kx_alert *a,
                      cJSON *audit)
{
    struct pod_priv *p = r->priv;
    struct kx_k8s_result res;
    char path[400], err[POD_ERR_MAX], name[POD_NP_NAME_MAX + 1];
    cJSON *labels = cJSON_CreateObject(), *np = cJSON_CreateObject(), *m, *spec, *sel, *types;
    int rc;

    if (!labels || !np) {
        rc = -EAGAIN;
        goto out;
    }
    cJSON_AddStringToObject(labels, p->qkey, p->qval);
    if ((rc = do_patch(r, t, "labels", labels, audit, NULL)) != 0)
        goto out; /* gone or replaced: nothing of ours to isolate */

    policy_name(t->pod, name, sizeof(name));
    cJSON_AddStringToObject(audit, "network_policy", name);
    cJSON_AddStringToObject(np, "apiVersion", "networking.k8s.io/v1");
    cJSON_AddStringToObject(np, "kind", "NetworkPolicy");
    m = cJSON_AddObjectToObject(np, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "namespace", t->ns);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "app.kubernetes.io/managed-by",
                            "klaxon");
    cJSON *ann = cJSON_AddObjectToObject(m, "annotations");
    cJSON_AddStringToObject(ann, "klaxon.io/pod", t->pod);
    cJSON_AddStringToObject(ann, "klaxon.io/rule", a->rule);
    cJSON_AddStringToObject(ann, "klaxon.io/responder", r->name);
    spec = cJSON_AddObjectToObject(np, "spec");
    sel = cJSON_AddObjectToObject(cJSON_AddObjectToObject(spec, "podSelector"), "matchLabels");
    cJSON_AddStringToObject(sel, p->qkey, p->qval);
    types = cJSON_AddArrayToObject(spec, "policyTypes");
    cJSON_AddItemToArray(types, cJSON_CreateString("Ingress"));
    cJSON_AddItemToArray(types, cJSON_CreateString("Egress")); /* no rules: deny all */
    snprintf(path, sizeof(path), "/apis/networking.k8s.io/v1/namespaces/%s/networkpolicies", t->ns);
    rc = call(r, t, "POST", path, KX_K8S_JSON, np, &res, err, sizeof(err));
    if (rc >= 0) {
        cJSON_AddStringToObject(audit, "result", rc == 1 ? "dry_run" : "isolated");
        rc = 0;
    } else if (rc == -EEXIST) {
        cJSON_AddStringToObject(audit, "result", "isolated");
        cJSON_AddStringToObject(audit, "note", "the NetworkPolicy already exists");
        rc = 0;
    } else {
        rc = failed(audit, rc, &res, err);
    }
    kx_k8s_result_release(&res);
out:
    cJSON_Delete(labels);
    cJSON_Delete(np);
    return rc;
}

/* The Event of a change on the pod; a failure only goes into the audit. */
static void post_event(struct kx_responder *r, struct target *t, const struct kx_alert *a,
                       const char *reason, const char *verb, cJSON *audit)
{
    struct kx_k8s_result res;
    char path[300], err[POD_ERR_MAX], name[POD_NAME_MAX + 1], ts[32], msg[1024];
    cJSON *ev = cJSON_CreateObject(), *m, *io;
    time_t now = time(NULL);
    struct tm tm;
    int rc;

    if (!ev)
        return;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* <pod>.<16 hex>, as the API's own recorders name events */
    snprintf(name, sizeof(name), "%.*s.%016llx", POD_NAME_MAX - 17, t->pod,
             (unsigned long long)(kx_hash64(a->uuid, strlen(a->uuid), (uint64_t)kx_now_ns()) ^
                                  kx_hash64(reason, strlen(reason), 0)));
    snprintf(msg, sizeof(msg), "Klaxon responder %s: %s (rule %s)", r->name, verb, a->rule);
    cJSON_AddStringToObject(ev, "apiVersion", "v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    m = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "namespace", t->ns);
    io = cJSON_AddObjectToObject(ev, "involvedObject");
    cJSON_AddStringToObject(io, "apiVersion", "v1");
    cJSON_AddStringToObject(io, "kind", "Pod");
    cJSON_AddStringToObject(io, "namespace", t->ns);
    cJSON_AddStringToObject(io, "name", t->pod);
    cJSON_AddStringToObject(io, "uid", t->uid);
    cJSON_AddStringToObject(ev, "reason", reason);
    cJSON_AddStringToObject(ev, "message", msg);
    cJSON_AddStringToObject(ev, "type", "Warning");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(ev, "source"), "component", "klaxon");
    cJSON_AddStringToObject(ev, "firstTimestamp", ts);
    cJSON_AddStringToObject(ev, "lastTimestamp", ts);
    cJSON_AddNumberToObject(ev, "count", 1);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", t->ns);
    rc = call(r, t, "POST", path, KX_K8S_JSON, ev, &res, err, sizeof(err));
    if (rc == 0)
        cJSON_AddStringToObject(audit, "event", name);
    else if (rc < 0)
        cJSON_AddStringToObject(audit, "event_error", err[0] ? err : strerror(-rc));
    kx_k8s_result_release(&res);
    cJSON_Delete(ev);
}

/* kx-respond. */
static int pod_act(struct kx_responder *r, const struct kx_alert *a,
                   const struct kx_config_node *params, cJSON *audit)
{
    struct pod_settings *s = r->settings;
    struct pod_priv *p = r->priv;
    struct target t = {0};
    char uid[POD_UID_MAX + 8];
    cJSON *tgt;
    bool deleted = false;
    int rc;

    if (!p || !p->k8s) {
        cJSON_AddStringToObject(audit, "reason", "the responder did not start");
        return -EINVAL;
    }
    cJSON_AddStringToObject(audit, "action", actions[p->action].name);
    if (!kx_alert_field_str(a, "k8s.ns.name", t.ns, sizeof(t.ns)) || !t.ns[0] ||
        !kx_alert_field_str(a, "k8s.pod.name", t.pod, sizeof(t.pod)) || !t.pod[0]) {
        cJSON_AddStringToObject(audit, "reason",
                                "the alert has no k8s.ns.name and k8s.pod.name: no pod to act on");
        return -EINVAL;
    }
    if (!dns_name_ok(t.ns, NS_NAME_MAX) || !dns_name_ok(t.pod, POD_NAME_MAX)) {
        cJSON_AddStringToObject(audit, "reason",
                                "the alert's k8s.ns.name or k8s.pod.name is not a valid "
                                "Kubernetes name");
        return -EINVAL;
    }
    if (kx_alert_field_str(a, "k8s.pod.uid", uid, sizeof(uid)) && uid_ok(uid))
        memcpy(t.uid, uid, strlen(uid) + 1); /* uid_ok: shorter than t.uid */
    if ((tgt = cJSON_AddObjectToObject(audit, "target"))) {
        cJSON_AddStringToObject(tgt, "namespace", t.ns);
        cJSON_AddStringToObject(tgt, "pod", t.pod);
        if (t.uid[0])
            cJSON_AddStringToObject(tgt, "uid", t.uid);
    }
    if (!(t.requests = cJSON_AddArrayToObject(audit, "requests")))
        return -EAGAIN;

    bool guarded =
        p->action == ACT_TERMINATE || ((p->action == ACT_DELETE || p->action == ACT_EVICT) &&
                                       (p->g.ignore_ds == 1 || p->g.ignore_sts == 1 ||
                                        p->g.ignore_standalone == 1 || p->g.has_min));
    if (!t.uid[0] || guarded) {
        if ((rc = read_pod(r, &t, audit)) != 0)
            goto out;
    }
    if (guarded && (rc = check_guards(r, &t, audit)) != 0)
        goto out;

    switch (p->action) {
    case ACT_DELETE:
        rc = do_delete(r, &t, audit, "deleted");
        break;
    case ACT_TERMINATE:
        rc = do_delete(r, &t, audit, "terminated");
        break;
    case ACT_EVICT:
        rc = do_evict(r, &t, audit, &deleted);
        break;
    case ACT_LABEL:
        rc = do_patch(r, &t, "labels", p->meta, audit, "labeled");
        break;
    case ACT_ANNOTATE:
        rc = do_patch(r, &t, "annotations", p->meta, audit, "annotated");
        break;
    case ACT_ISOLATE:
        rc = do_isolate(r, &t, a, audit);
        break;
    }
    if (rc == 0 && s->events)
        post_event(r, &t, a, deleted ? "KlaxonDeleted" : actions[p->action].reason,
                   deleted ? "delete (the eviction was refused by a PodDisruptionBudget)"
                           : actions[p->action].name,
                   audit);
out:
    cJSON_Delete(t.obj);
    if (rc == 1) /* gone, replaced, skipped: decided, nothing to do */
        rc = 0;
    if (rc < 0 && rc != -EAGAIN && !cJSON_GetObjectItem(audit, "reason"))
        cJSON_AddStringToObject(audit, "reason", strerror(-rc));
    return rc;
}

const struct kx_responder_ops kx_responder_k8s_pod = {
    .abi = KX_RESPONDER_ABI,
    .name = "k8s_pod",
    .desc = "delete, evict, label, annotate, isolate or terminate the alert's Kubernetes pod",
    .opts = pod_opts,
    .settings_size = sizeof(struct pod_settings),
    .init = pod_init,
    .act = pod_act,
    .destroy = pod_destroy,
};
