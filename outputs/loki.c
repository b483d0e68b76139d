/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loki.c - Grafana Loki push API: one POST to <hostport>/loki/api/v1/push
 * per batch, alerts grouped into streams by their label set:
 *
 *   {"streams":[{"stream":{"rule":"...","priority":"Critical","source":"syscall",
 *                          "hostname":"node-a","k8s_ns_name":"shop"},
 *                "values":[["1795428062123456789","<line>"], ...]}]}
 *
 * Timestamps are nanosecond strings, as Loki requires. Labels: rule,
 * priority, source, hostname, plus the output fields named in extralabels,
 * their names turned into Loki label names (k8s.ns.name -> k8s_ns_name).
 * The line is the alert's JSON (format: json) or its output text (text).
 * Multi-tenant Loki gets X-Scope-OrgID from tenant; basic auth optional.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"
#include "outputs.h"
#include "util.h"

#define KX_LOKI_BATCH 500
#define KX_LOKI_BODY_MAX (8 << 20)

struct loki_settings {
    char *hostport;               /* http://loki:3100 */
    struct kx_strlist extralabels; /* output fields added as labels */
    char *tenant;                 /* X-Scope-OrgID */
    char *user;                   /* basic auth */
    char *apikey;                 /* basic auth password, a secret */
    char *format;                 /* json | text */
    bool checkcert;
    char *cafile;
    int64_t timeout;
};

struct loki_state {
    struct kx_httpc *http;
    char *url;
    struct kx_strmap headers; /* owned: X-Scope-OrgID, Authorization */
    bool text;
};

#define L(field) offsetof(struct loki_settings, field)

static const struct kx_opt loki_opts[] = {
    {"hostport", KX_OPT_STR, NULL, L(hostport), KX_OPT_REQUIRED,
     "Loki base URL, e.g. http://loki:3100 (env <NAME>_HOSTPORT, e.g. LOKI_HOSTPORT)"},
    {"extralabels", KX_OPT_STRLIST, NULL, L(extralabels), 0,
     "output fields added as stream labels (k8s.ns.name -> k8s_ns_name)"},
    {"tenant", KX_OPT_STR, "", L(tenant), 0, "X-Scope-OrgID for multi-tenant Loki"},
    {"user", KX_OPT_STR, "", L(user), 0, "basic auth user"},
    {"apikey", KX_OPT_STR, "", L(apikey), KX_OPT_SECRET, "basic auth password / API key"},
    {"format", KX_OPT_STR, "json", L(format), 0, "log line: json (the alert) or text (output)"},
    {"checkcert", KX_OPT_BOOL, "true", L(checkcert), 0, "verify the server's TLS certificate"},
    {"cafile", KX_OPT_STR, NULL, L(cafile), 0, "extra CA bundle (PEM)"},
    {"timeout", KX_OPT_DURATION, "10s", L(timeout), 0, "whole-request timeout"},
    {0},
};

/* "k8s.ns.name" -> "k8s_ns_name": Loki label names are [a-zA-Z_][a-zA-Z0-9_]*. */
static void label_name(const char *in, char *out, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return;
    if (*in && isdigit((unsigned char)*in) && o + 1 < len)
        out[o++] = '_';
    for (; *in && o + 1 < len; in++)
        out[o++] = isalnum((unsigned char)*in) ? *in : '_';
    out[o] = '\0';
}

static int strmap_push(struct kx_strmap *m, const char *k, char *v /* takes ownership */)
{
    char **nk = realloc(m->keys, (m->n + 1) * sizeof(char *));
    char **nv;

    if (!nk) {
        free(v);
        return -ENOMEM;
    }
    m->keys = nk;
    nv = realloc(m->vals, (m->n + 1) * sizeof(char *));
    if (!nv) {
        free(v);
        return -ENOMEM;
    }
    m->vals = nv;
    if (!(m->keys[m->n] = strdup(k))) {
        free(v);
        return -ENOMEM;
    }
    m->vals[m->n++] = v;
    return 0;
}

/* Output worker thread. */
static int loki_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct loki_settings *s = o->settings;
    struct kx_httpc_opts hopts;
    struct loki_state *st;
    size_t before = d->n, len;

    if (!s->hostport || (strncasecmp(s->hostport, "https://", 8) != 0 &&
                         strncasecmp(s->hostport, "http://", 7) != 0))
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must be an http(s):// URL, e.g. http://loki:3100",
                    o->name);
    if (s->format && strcasecmp(s->format, "json") != 0 && strcasecmp(s->format, "text") != 0)
        kx_diag_add(d, kx_config_get(cfg, "format"), "output %s: format \"%s\": want json or text",
                    o->name, s->format);
    if (s->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    o->priv = st;
    st->text = s->format && strcasecmp(s->format, "text") == 0;
    len = strlen(s->hostport);
    while (len && s->hostport[len - 1] == '/')
        len--;
    if (asprintf(&st->url, "%.*s/loki/api/v1/push", (int)len, s->hostport) < 0) {
        st->url = NULL;
        return -ENOMEM;
    }
    if (s->tenant && *s->tenant && strmap_push(&st->headers, "X-Scope-OrgID", strdup(s->tenant)))
        return -ENOMEM;
    if (s->user && *s->user) {
        char *up = NULL, *b64, *hdr = NULL;

        if (asprintf(&up, "%s:%s", s->user, s->apikey ? s->apikey : "") < 0)
            return -ENOMEM;
        b64 = kx_base64_encode(up, strlen(up), NULL);
        explicit_bzero(up, strlen(up));
        free(up);
        if (!b64 || asprintf(&hdr, "Basic %s", b64) < 0) {
            free(b64);
            return -ENOMEM;
        }
        free(b64);
        if (strmap_push(&st->headers, "Authorization", hdr))
            return -ENOMEM;
    }
    hopts = (struct kx_httpc_opts){
        .timeout = s->timeout, .insecure = !s->checkcert, .ca_file = s->cafile};
    st->http = kx_httpc_new(&hopts);
    return st->http ? 0 : -ENOMEM;
}

/* The stream labels of a, as a JSON object (caller owns). NULL on OOM. */
static cJSON *loki_labels(const struct loki_settings *s, const struct kx_alert *a)
{
    cJSON *l = cJSON_CreateObject();
    char name[128], val[512];

    if (!l || !cJSON_AddStringToObject(l, "rule", a->rule) ||
        !cJSON_AddStringToObject(l, "priority", kx_priority_name(a->priority)) ||
        !cJSON_AddStringToObject(l, "source", a->source) ||
        !cJSON_AddStringToObject(l, "hostname", a->hostname)) {
        cJSON_Delete(l);
        return NULL;
    }
    for (size_t i = 0; i < s->extralabels.n; i++) {
        const char *v = kx_alert_field_str(a, s->extralabels.v[i], val, sizeof(val));

        if (!v)
            continue; /* Loki drops empty labels anyway */
        label_name(s->extralabels.v[i], name, sizeof(name));
        cJSON_DeleteItemFromObjectCaseSensitive(l, name);
        if (!cJSON_AddStringToObject(l, name, v)) {
            cJSON_Delete(l);
            return NULL;
        }
    }
    return l;
}

/* Output worker thread: one push for the batch, grouped by label set. */
static int loki_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct loki_settings *s = o->settings;
    struct loki_state *st = o->priv;
    cJSON *root = cJSON_CreateObject(), *streams;
    struct kx_http_result res;
    char *body = NULL;
    int rc = -ENOMEM;

    if (!root || !(streams = cJSON_AddArrayToObject(root, "streams")))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        cJSON *labels = loki_labels(s, batch[i]), *stream = NULL, *it, *values, *pair;
        char ts[32];
        char *line;

        if (!labels)
            goto oom;
        cJSON_ArrayForEach(it, streams) /* batches are small: a linear search is fine */
        {
            if (cJSON_Compare(cJSON_GetObjectItemCaseSensitive(it, "stream"), labels, true)) {
                stream = it;
                break;
            }
        }
        if (!stream) {
            if (!(stream = cJSON_CreateObject())) {
                cJSON_Delete(labels);
                goto oom;
            }
            cJSON_AddItemToArray(streams, stream);
            cJSON_AddItemToObject(stream, "stream", labels);
            if (!cJSON_AddArrayToObject(stream, "values"))
                goto oom;
        } else {
            cJSON_Delete(labels);
        }
        values = cJSON_GetObjectItemCaseSensitive(stream, "values");
        snprintf(ts, sizeof(ts), "%lld", (long long)batch[i]->time_ns);
        line = st->text ? strdup(batch[i]->output) : kx_alert_to_json(batch[i]);
        pair = cJSON_CreateArray();
        if (!line || !pair) {
            free(line);
            cJSON_Delete(pair);
            goto oom;
        }
        cJSON_AddItemToArray(pair, cJSON_CreateString(ts));
        cJSON_AddItemToArray(pair, cJSON_CreateString(line));
        free(line);
        cJSON_AddItemToArray(values, pair);
    }
    if (!(body = cJSON_PrintUnformatted(root)))
        goto oom;
    rc = kx_httpc_send(st->http, "POST", st->url, "application/json", &st->headers, body,
                       strlen(body), &res);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "loki: %.240s", res.error);
        o->retry_after = res.retry_after;
    }
    cJSON_free(body);
    cJSON_Delete(root);
    return rc;
oom:
    cJSON_Delete(root);
    snprintf(o->error, sizeof(o->error), "loki: out of memory building the push");
    return -EAGAIN;
}

static void loki_destroy(struct kx_output *o)
{
    struct loki_state *st = o->priv;

    if (!st)
        return;
    kx_httpc_free(st->http);
    free(st->url);
    for (size_t i = 0; i < st->headers.n; i++) {
        explicit_bzero(st->headers.vals[i], strlen(st->headers.vals[i]));
        free(st->headers.vals[i]);
        free(st->headers.keys[i]);
    }
    free(st->headers.keys);
    free(st->headers.vals);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_loki = {
    .name = "loki",
    .desc = "Grafana Loki push API, batched, stream labels from fields",
    .opts = loki_opts,
    .settings_size = sizeof(struct loki_settings),
    .max_batch = KX_LOKI_BATCH,
    .init = loki_init,
    .deliver = loki_deliver,
    .destroy = loki_destroy,
};
