/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alertmanager.c - Prometheus Alertmanager API v2: a batch of alerts POSTed
 * as one JSON array to <hostport>/api/v2/alerts:
 *
 *   [{"labels":{"alertname":"Terminal shell in container","severity":"critical",
 *               "priority":"Critical","source":"syscall","hostname":"node-a",
 *               "k8s_ns_name":"shop"},
 *     "annotations":{"summary":"<output>","description":"<rule>: <output>"},
 *     "startsAt":"2026-11-23T10:01:02.123456789Z",
 *     "endsAt":"...",             (when expiresafter is set)
 *     "generatorURL":"..."}]
 *
 * Alertmanager groups and deduplicates by labels, so the labels are the
 * alert's identity: rule, priority, source, hostname and the output fields
 * named in extralabels (k8s.ns.name -> k8s_ns_name). Alertmanager answers
 * 200; 400 {"code":400,"message":...} is permanent.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"
#include "httpout.h"
#include "outputs.h"
#include "util.h"

#define KX_AM_BATCH 200

struct am_settings {
    char *hostport;                /* http://alertmanager:9093 */
    char *endpoint;                /* /api/v2/alerts */
    int64_t expiresafter;          /* ns; 0 = no endsAt (Alertmanager's resolve_timeout) */
    struct kx_strlist extralabels; /* output fields added as labels */
    char *generatorurl;            /* link back, e.g. the hub's UI */
    char *user;                    /* basic auth */
    char *password;                /* secret */
    struct kx_httpout_conn http;
};

#define A(field) offsetof(struct am_settings, field)

static const struct kx_opt am_opts[] = {
    {"hostport", KX_OPT_STR, NULL, A(hostport), KX_OPT_REQUIRED,
     "Alertmanager URL, e.g. http://alertmanager:9093 (env <NAME>_HOSTPORT)"},
    {"endpoint", KX_OPT_STR, "/api/v2/alerts", A(endpoint), 0, "API path"},
    {"expiresafter", KX_OPT_DURATION, "0s", A(expiresafter), 0,
     "set endsAt this long after the alert; 0 = let Alertmanager's resolve_timeout decide"},
    {"extralabels", KX_OPT_STRLIST, NULL, A(extralabels), 0,
     "output fields added as labels (k8s.ns.name -> k8s_ns_name)"},
    {"generatorurl", KX_OPT_STR, "", A(generatorurl), 0, "generatorURL of the alerts"},
    {"user", KX_OPT_STR, "", A(user), 0, "basic auth user"},
    {"password", KX_OPT_STR, "", A(password), KX_OPT_SECRET, "basic auth password"},
    KX_HTTPOUT_OPTS(struct am_settings),
    {0},
};

/* Prometheus' usual severities. */
static const char *am_severity(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT:
    case KX_PRI_CRITICAL: return "critical";
    case KX_PRI_ERROR: return "error";
    case KX_PRI_WARNING: return "warning";
    default: return "info";
    }
}

/* Pure: one alert object, added to arr. 0 or -ENOMEM. */
static int am_alert(const struct am_settings *s, const struct kx_alert *a, cJSON *arr)
{
    cJSON *al = cJSON_CreateObject(), *labels, *ann;
    char name[128], val[512], ts[64], *desc = NULL;

    if (!al)
        return -ENOMEM;
    cJSON_AddItemToArray(arr, al);
    kx_time_format(a->time_ns, ts, sizeof(ts));
    if (!(labels = cJSON_AddObjectToObject(al, "labels")) ||
        !cJSON_AddStringToObject(labels, "alertname", a->rule) ||
        !cJSON_AddStringToObject(labels, "severity", am_severity(a->priority)) ||
        !cJSON_AddStringToObject(labels, "priority", kx_priority_name(a->priority)) ||
        !cJSON_AddStringToObject(labels, "source", a->source) ||
        !cJSON_AddStringToObject(labels, "hostname", a->hostname))
        return -ENOMEM;
    for (size_t i = 0; i < s->extralabels.n; i++) {
        if (!kx_alert_field_str(a, s->extralabels.v[i], val, sizeof(val)))
            continue;
        kx_httpout_label_name(s->extralabels.v[i], name, sizeof(name));
        cJSON_DeleteItemFromObjectCaseSensitive(labels, name);
        if (!cJSON_AddStringToObject(labels, name, val))
            return -ENOMEM;
    }
    if (asprintf(&desc, "%s: %s", a->rule, a->output) < 0)
        return -ENOMEM;
    if (!(ann = cJSON_AddObjectToObject(al, "annotations")) ||
        !cJSON_AddStringToObject(ann, "summary", a->output) ||
        !cJSON_AddStringToObject(ann, "description", desc) ||
        !cJSON_AddStringToObject(al, "startsAt", ts)) {
        free(desc);
        return -ENOMEM;
    }
    free(desc);
    if (s->expiresafter > 0) {
        kx_time_format(a->time_ns + s->expiresafter, ts, sizeof(ts));
        if (!cJSON_AddStringToObject(al, "endsAt", ts))
            return -ENOMEM;
    }
    if (s->generatorurl && *s->generatorurl &&
        !cJSON_AddStringToObject(al, "generatorURL", s->generatorurl))
        return -ENOMEM;
    return 0;
}

static int am_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct am_settings *s = o->settings;
    struct kx_httpout *h;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "hostport", s->hostport, "http://alertmanager:9093", d);
    if (!s->endpoint || s->endpoint[0] != '/')
        kx_diag_add(d, kx_config_get(cfg, "endpoint"), "output %s: endpoint must start with /",
                    o->name);
    if (s->expiresafter < 0)
        kx_diag_add(d, kx_config_get(cfg, "expiresafter"),
                    "output %s: expiresafter must not be negative", o->name);
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    if (!(h->url = kx_httpout_url(s->hostport, s->endpoint)) ||
        (s->user && *s->user && kx_httpout_basic_auth(&h->headers, s->user, s->password) < 0))
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

/* Output worker thread: the batch as one array. */
static int am_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct am_settings *s = o->settings;
    struct kx_httpout *h = o->priv;
    cJSON *arr = cJSON_CreateArray();
    struct kx_buf body = {0};
    char *json = NULL;
    int rc = arr ? 0 : -ENOMEM;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = am_alert(s, batch[i], arr);
    if (rc == 0 && !(json = cJSON_PrintUnformatted(arr)))
        rc = -ENOMEM;
    cJSON_Delete(arr);
    if (rc < 0) {
        snprintf(o->error, sizeof(o->error), "alertmanager: out of memory building the batch");
        return -EAGAIN;
    }
    body.data = json;
    body.len = strlen(json);
    rc = kx_httpout_send(o, h->http, h->url, "application/json", &h->headers, &body,
                         "alertmanager", NULL);
    cJSON_free(json);
    return rc;
}

const struct kx_output_ops kx_output_alertmanager = {
    .name = "alertmanager",
    .desc = "Prometheus Alertmanager API v2, batched, labels from fields",
    .opts = am_opts,
    .settings_size = sizeof(struct am_settings),
    .max_batch = KX_AM_BATCH,
    .init = am_init,
    .deliver = am_deliver,
    .destroy = kx_httpout_destroy,
};
