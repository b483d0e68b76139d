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
#include "httpout.h"
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
    struct kx_httpout_conn http;
};

struct loki_state {
    struct kx_httpout h; /* first (kx_httpout_destroy); url: <hostport>/loki/api/v1/push */
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
    KX_HTTPOUT_OPTS(struct loki_settings),
    {0},
};

/* Output worker thread. */
static int loki_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct loki_settings *s = o->settings;
    struct loki_state *st;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "hostport", s->hostport, "http://loki:3100", d);
    if (s->format && strcasecmp(s->format, "json") != 0 && strcasecmp(s->format, "text") != 0)
        kx_diag_add(d, kx_config_get(cfg, "format"), "output %s: format \"%s\": want json or text",
                    o->name, s->format);
    if (d->n > before)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    o->priv = st;
    st->text = s->format && strcasecmp(s->format, "text") == 0;
    if (!(st->h.url = kx_httpout_url(s->hostport, "/loki/api/v1/push")))
        return -ENOMEM;
    if (s->tenant && *s->tenant &&
        kx_httpout_header(&st->h.headers, "X-Scope-OrgID", strdup(s->tenant)) < 0)
        return -ENOMEM;
    if (s->user && *s->user && kx_httpout_basic_auth(&st->h.headers, s->user, s->apikey) < 0)
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, &st->h, d);
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
        kx_httpout_label_name(s->extralabels.v[i], name, sizeof(name));
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
    struct kx_buf body;
    char *json = NULL;
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
    if (!(json = cJSON_PrintUnformatted(root)))
        goto oom;
    body = (struct kx_buf){.data = json, .len = strlen(json)};
    rc = kx_httpout_send(o, st->h.http, st->h.url, "application/json", &st->h.headers, &body, "loki",
                         NULL);
    cJSON_free(json);
    cJSON_Delete(root);
    return rc;
oom:
    cJSON_Delete(root);
    snprintf(o->error, sizeof(o->error), "loki: out of memory building the push");
    return -EAGAIN;
}


const struct kx_output_ops kx_output_loki = {
    .name = "loki",
    .desc = "Grafana Loki push API, batched, stream labels from fields",
    .opts = loki_opts,
    .settings_size = sizeof(struct loki_settings),
    .max_batch = KX_LOKI_BATCH,
    .init = loki_init,
    .deliver = loki_deliver,
    .destroy = kx_httpout_destroy,
};
