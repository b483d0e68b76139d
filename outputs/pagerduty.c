/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pagerduty.c - PagerDuty Events API v2: one event per alert, POSTed to
 * https://events.pagerduty.com/v2/enqueue (events.eu.pagerduty.com for
 * region eu):
 *
 *   {"routing_key":"<32 chars>","event_action":"trigger",
 *    "dedup_key":"<Klaxon's dedupe key>",
 *    "payload":{"summary":"Critical Terminal shell in container: ...",
 *               "source":"node-a","severity":"critical",
 *               "timestamp":"2026-11-23T10:01:02.123456789Z",
 *               "class":"Terminal shell in container","group":"shop",
 *               "component":"3ad7b26ded6d","custom_details":{...}}}
 *
 * The dedup_key is the hub's dedupe key (rule, host, container, exe by
 * default), so repeats of one problem land in one incident. An alert whose
 * output_fields carry "klaxon.resolve": true (post one to the hub) sends
 * "resolve" for its dedup key instead. PagerDuty answers 202; 400 "invalid
 * event" is permanent; 429 and 5xx are retried by the core.
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
#include "httpc.h"
#include "httpout.h"
#include "outputs.h"
#include "util.h"

#define KX_PD_SUMMARY_MAX 1024 /* PagerDuty truncates longer summaries */

struct pd_settings {
    char *routingkey; /* integration key (32 chars), a secret */
    char *region;     /* us | eu */
    char *url;        /* override of the enqueue URL (proxies, tests) */
    struct kx_httpout_conn http;
};

#define P(field) offsetof(struct pd_settings, field)

static const struct kx_opt pd_opts[] = {
    {"routingkey", KX_OPT_STR, NULL, P(routingkey), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "Events API v2 integration key (env <NAME>_ROUTINGKEY, e.g. PAGERDUTY_ROUTINGKEY)"},
    {"region", KX_OPT_STR, "us", P(region), 0, "us or eu"},
    {"url", KX_OPT_STR, "", P(url), 0, "enqueue URL override; \"\" = the region's"},
    KX_HTTPOUT_OPTS(struct pd_settings),
    {0},
};

/* PagerDuty's four severities from Falco's eight priorities. */
static const char *pd_severity(enum kx_priority p)
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

/* Pure: the event for a into out. 0 or -ENOMEM. */
static int pd_event(const struct pd_settings *s, const struct kx_alert *a, struct kx_buf *out)
{
    cJSON *root = cJSON_CreateObject(), *payload, *details;
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");
    const cJSON *resolve = kx_alert_field(a, "klaxon.resolve");
    char summary[KX_PD_SUMMARY_MAX + 1], ts[64], buf[256], key[256];
    const char *dk = kx_alert_field_str(a, "klaxon.dedupe_key", key, sizeof(key));
    bool is_resolve = cJSON_IsTrue(resolve) ||
                      (cJSON_IsString(resolve) && strcmp(resolve->valuestring, "true") == 0);
    int rc = -ENOMEM;

    snprintf(summary, sizeof(summary), "%s %s: %s", kx_priority_name(a->priority), a->rule,
             a->output);
    kx_time_format(a->time_ns, ts, sizeof(ts));
    if (!root || !cJSON_AddStringToObject(root, "routing_key", s->routingkey) ||
        !cJSON_AddStringToObject(root, "event_action", is_resolve ? "resolve" : "trigger") ||
        !cJSON_AddStringToObject(root, "dedup_key", dk ? dk : a->uuid))
        goto cleanup;
    if (!is_resolve) { /* a resolve carries no payload */
        if (!(payload = cJSON_AddObjectToObject(root, "payload")) ||
            !cJSON_AddStringToObject(payload, "summary", summary) ||
            !cJSON_AddStringToObject(payload, "source", *a->hostname ? a->hostname : "klaxon") ||
            !cJSON_AddStringToObject(payload, "severity", pd_severity(a->priority)) ||
            !cJSON_AddStringToObject(payload, "timestamp", ts) ||
            !cJSON_AddStringToObject(payload, "class", a->rule))
            goto cleanup;
        if (kx_alert_field_str(a, "k8s.ns.name", buf, sizeof(buf)) &&
            !cJSON_AddStringToObject(payload, "group", buf))
            goto cleanup;
        if (kx_alert_field_str(a, "container.id", buf, sizeof(buf)) &&
            !cJSON_AddStringToObject(payload, "component", buf))
            goto cleanup;
        details = cJSON_IsObject(of) ? cJSON_Duplicate(of, true) : cJSON_CreateObject();
        if (!details)
            goto cleanup;
        cJSON_AddItemToObject(payload, "custom_details", details);
        if (cJSON_GetObjectItemCaseSensitive(a->doc, "tags"))
            cJSON_AddItemToObject(
                details, "tags",
                cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a->doc, "tags"), true));
    }
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int pd_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct pd_settings *s = o->settings;
    struct kx_httpout *h;
    const char *url = "https://events.pagerduty.com/v2/enqueue";
    size_t before = d->n;

    if (!s->routingkey || strlen(s->routingkey) != 32)
        kx_diag_add(d, kx_config_get(cfg, "routingkey"),
                    "output %s: routingkey must be the 32-character integration key", o->name);
    if (s->region && strcasecmp(s->region, "eu") == 0)
        url = "https://events.eu.pagerduty.com/v2/enqueue";
    else if (s->region && strcasecmp(s->region, "us") != 0)
        kx_diag_add(d, kx_config_get(cfg, "region"), "output %s: region \"%s\": want us or eu",
                    o->name, s->region);
    if (s->url && *s->url) {
        kx_httpout_check_url(o, cfg, "url", s->url, NULL, d);
        url = s->url;
    }
    if (d->n > before)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    o->priv = h;
    if (!(h->url = strdup(url)))
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

/* kx_httpout_format_fn. */
static int pd_on_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    return pd_event(o->settings, a, out);
}

/* Output worker thread. One event per alert (Events API v2 has no batch). */
static int pd_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, h->url, "application/json", NULL, batch, n,
                           pd_on_format, "pagerduty");
}


const struct kx_output_ops kx_output_pagerduty = {
    .name = "pagerduty",
    .desc = "PagerDuty Events API v2: trigger (and resolve) with Klaxon's dedupe key",
    .opts = pd_opts,
    .settings_size = sizeof(struct pd_settings),
    .max_batch = 1,
    .dedupe_key = true,
    .init = pd_init,
    .deliver = pd_deliver,
    .destroy = kx_httpout_destroy,
};
