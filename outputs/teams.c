/* SPDX-License-Identifier: Apache-2.0 */
/*
 * teams.c - Microsoft Teams incoming webhook: one MessageCard per alert
 * (the connector card format Teams webhooks and Falcosidekick use):
 *
 *   {"@type":"MessageCard","@context":"https://schema.org/extensions",
 *    "summary":"<Priority> <rule>","themeColor":"E01E5A","title":"<rule>",
 *    "sections":[{"activityTitle":"<Priority> on <host>","text":"<output>",
 *                 "facts":[{"name":"proc.name","value":"bash"}, ...]}]}
 *
 * Teams answers 200 "1"; 400 ("Summary or Text is required", bad JSON) is
 * permanent; 429 is retried.
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

struct teams_settings {
    char *webhookurl; /* a secret */
    char *outputformat; /* all | text | facts */
    struct kx_httpout_conn http;
};

#define T(field) offsetof(struct teams_settings, field)

static const struct kx_opt teams_opts[] = {
    {"webhookurl", KX_OPT_STR, NULL, T(webhookurl), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "Teams incoming webhook URL (env <NAME>_WEBHOOKURL, e.g. TEAMS_WEBHOOKURL)"},
    {"outputformat", KX_OPT_STR, "all", T(outputformat), 0, "all, text or facts"},
    KX_HTTPOUT_OPTS(struct teams_settings),
    {0},
};

static const char *teams_color(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT:
    case KX_PRI_CRITICAL: return "E01E5A";
    case KX_PRI_ERROR: return "F2711C";
    case KX_PRI_WARNING: return "ECB22E";
    case KX_PRI_NOTICE: return "2EB67D";
    default: return "36C5F0";
    }
}

static int teams_on_fact(void *ctx, const char *name, const char *value)
{
    cJSON *f = cJSON_CreateObject();

    if (!f || !cJSON_AddStringToObject(f, "name", name) ||
        !cJSON_AddStringToObject(f, "value", value && *value ? value : "<NA>")) {
        cJSON_Delete(f);
        return -ENOMEM;
    }
    cJSON_AddItemToArray(ctx, f);
    return 0;
}

static int teams_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    const struct teams_settings *s = o->settings;
    bool text = !s->outputformat || strcasecmp(s->outputformat, "facts") != 0;
    bool facts = !s->outputformat || strcasecmp(s->outputformat, "text") != 0;
    cJSON *root = cJSON_CreateObject(), *sections, *sec, *fa;
    char summary[512], act[512];
    int rc = -ENOMEM;

    snprintf(summary, sizeof(summary), "%s %s", kx_priority_name(a->priority), a->rule);
    snprintf(act, sizeof(act), "%s on %s", kx_priority_name(a->priority),
             *a->hostname ? a->hostname : "?");
    if (!root || !cJSON_AddStringToObject(root, "@type", "MessageCard") ||
        !cJSON_AddStringToObject(root, "@context", "https://schema.org/extensions") ||
        !cJSON_AddStringToObject(root, "summary", summary) ||
        !cJSON_AddStringToObject(root, "themeColor", teams_color(a->priority)) ||
        !cJSON_AddStringToObject(root, "title", a->rule) ||
        !(sections = cJSON_AddArrayToObject(root, "sections")) || !(sec = cJSON_CreateObject()))
        goto cleanup;
    cJSON_AddItemToArray(sections, sec);
    if (!cJSON_AddStringToObject(sec, "activityTitle", act) ||
        (text && !cJSON_AddStringToObject(sec, "text", a->output)) ||
        (facts && (!(fa = cJSON_AddArrayToObject(sec, "facts")) ||
                   kx_httpout_fields(a, teams_on_fact, fa) != 0)))
        goto cleanup;
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int teams_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct teams_settings *s = o->settings;
    struct kx_httpout *h;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "webhookurl", s->webhookurl, NULL, d);
    if (s->outputformat && strcasecmp(s->outputformat, "all") != 0 &&
        strcasecmp(s->outputformat, "text") != 0 && strcasecmp(s->outputformat, "facts") != 0)
        kx_diag_add(d, kx_config_get(cfg, "outputformat"),
                    "output %s: outputformat \"%s\": want all, text or facts", o->name,
                    s->outputformat);
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

static int teams_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct teams_settings *s = o->settings;
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, s->webhookurl, "application/json", NULL, batch, n,
                           teams_format, "teams");
}

const struct kx_output_ops kx_output_teams = {
    .name = "teams",
    .desc = "Microsoft Teams incoming webhook: a MessageCard per alert",
    .opts = teams_opts,
    .settings_size = sizeof(struct teams_settings),
    .max_batch = 1,
    .init = teams_init,
    .deliver = teams_deliver,
    .destroy = kx_httpout_destroy,
};
