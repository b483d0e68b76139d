/* SPDX-License-Identifier: Apache-2.0 */
/*
 * opsgenie.c - Opsgenie Alert API v2: one POST per alert to
 * https://api.opsgenie.com/v2/alerts (api.eu.opsgenie.com for region eu)
 * with "Authorization: GenieKey <apikey>":
 *
 *   {"message":"<rule> (<host>)","alias":"<Klaxon's dedupe key>",
 *    "description":"<output>","priority":"P1".."P5","source":"klaxon",
 *    "tags":[...],"details":{"proc.name":"bash",...},"entity":"<host>"}
 *
 * The alias is the hub's dedupe key, so Opsgenie folds repeats of one
 * problem into one alert. Opsgenie answers 202; 401/403 (bad key) and 422
 * (validation) are permanent; 429 is retried.
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

#define KX_OG_MESSAGE_MAX 130 /* Opsgenie's limit; longer is cut */
#define KX_OG_DETAIL_MAX 8000

struct og_settings {
    char *apikey; /* a secret */
    char *region; /* us | eu */
    char *url;    /* override (proxies, tests) */
    struct kx_httpout_conn http;
};

#define G(field) offsetof(struct og_settings, field)

static const struct kx_opt og_opts[] = {
    {"apikey", KX_OPT_STR, NULL, G(apikey), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "API integration key (env <NAME>_APIKEY, e.g. OPSGENIE_APIKEY)"},
    {"region", KX_OPT_STR, "us", G(region), 0, "us or eu"},
    {"url", KX_OPT_STR, "", G(url), 0, "alerts API URL override; \"\" = the region's"},
    KX_HTTPOUT_OPTS(struct og_settings),
    {0},
};

/* Opsgenie's P1 (critical) .. P5 (informational). */
static const char *og_priority(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT: return "P1";
    case KX_PRI_CRITICAL: return "P2";
    case KX_PRI_ERROR: return "P3";
    case KX_PRI_WARNING: return "P4";
    default: return "P5";
    }
}

static int og_on_detail(void *ctx, const char *name, const char *value)
{
    char v[KX_OG_DETAIL_MAX + 1];

    snprintf(v, sizeof(v), "%s", value ? value : "");
    return cJSON_AddStringToObject(ctx, name, v) ? 0 : -ENOMEM;
}

static int og_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    cJSON *root = cJSON_CreateObject(), *details;
    const cJSON *tags = kx_alert_field(a, "tags");
    char msg[KX_OG_MESSAGE_MAX + 1], key[64];
    const char *alias = kx_alert_field_str(a, "klaxon.dedupe_key", key, sizeof(key));
    int rc = -ENOMEM;

    (void)o;
    snprintf(msg, sizeof(msg), "%s (%s)", a->rule, *a->hostname ? a->hostname : "?");
    if (!root || !cJSON_AddStringToObject(root, "message", msg) ||
        !cJSON_AddStringToObject(root, "alias", alias ? alias : a->uuid) ||
        !cJSON_AddStringToObject(root, "description", a->output) ||
        !cJSON_AddStringToObject(root, "priority", og_priority(a->priority)) ||
        !cJSON_AddStringToObject(root, "source", "klaxon") ||
        (*a->hostname && !cJSON_AddStringToObject(root, "entity", a->hostname)) ||
        (cJSON_IsArray(tags) &&
         !cJSON_AddItemToObject(root, "tags", cJSON_Duplicate(tags, true))) ||
        !(details = cJSON_AddObjectToObject(root, "details")) ||
        kx_httpout_fields(a, og_on_detail, details) != 0)
        goto cleanup;
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int og_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct og_settings *s = o->settings;
    const char *url = "https://api.opsgenie.com/v2/alerts";
    struct kx_httpout *h;
    char *auth = NULL;
    size_t before = d->n;

    if (!s->apikey || !*s->apikey || strpbrk(s->apikey, " \r\n"))
        kx_diag_add(d, kx_config_get(cfg, "apikey"), "output %s: apikey must be a GenieKey",
                    o->name);
    if (s->region && strcasecmp(s->region, "eu") == 0)
        url = "https://api.eu.opsgenie.com/v2/alerts";
    else if (s->region && strcasecmp(s->region, "us") != 0)
        kx_diag_add(d, kx_config_get(cfg, "region"), "output %s: region \"%s\": want us or eu",
                    o->name, s->region);
    if (s->url && *s->url) {
        kx_httpout_check_url(o, cfg, "url", s->url, NULL, d);
        url = s->url;
    }
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    if (!(h->url = strdup(url)) ||
        kx_httpout_header(&h->headers, "Authorization",
                          asprintf(&auth, "GenieKey %s", s->apikey) < 0 ? NULL : auth) < 0)
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

static int og_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, h->url, "application/json", &h->headers, batch,
                           n, og_format, "opsgenie");
}

const struct kx_output_ops kx_output_opsgenie = {
    .name = "opsgenie",
    .desc = "Opsgenie Alert API v2 with Klaxon's dedupe key as alias",
    .opts = og_opts,
    .settings_size = sizeof(struct og_settings),
    .max_batch = 1,
    .dedupe_key = true,
    .init = og_init,
    .deliver = og_deliver,
    .destroy = kx_httpout_destroy,
};
