/* SPDX-License-Identifier: Apache-2.0 */
/*
 * discord.c - Discord webhooks: one message per alert with an embed whose
 * colour is the priority's, the output as description and the fields as
 * inline embed fields:
 *
 *   {"username":"Klaxon","content":"<mention>","embeds":[{"title":"<Priority> <rule>",
 *    "description":"<output>","color":14687834,"timestamp":"...",
 *    "fields":[{"name":"proc.name","value":"bash","inline":true}, ...]}]}
 *
 * Discord answers 204; 400 {"message":"Invalid Form Body","code":50035} is
 * permanent; 429 with Retry-After is retried. Discord allows 25 fields per
 * embed and 1024 characters per value: more are cut.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"
#include "httpout.h"
#include "outputs.h"
#include "util.h"

#define KX_DISCORD_FIELDS 25
#define KX_DISCORD_VALUE_MAX 1024

struct discord_settings {
    char *webhookurl; /* https://discord.com/api/webhooks/<id>/<token>: a secret */
    char *username;
    char *icon;       /* avatar_url */
    struct kx_httpout_conn http;
};

#define D(field) offsetof(struct discord_settings, field)

static const struct kx_opt discord_opts[] = {
    {"webhookurl", KX_OPT_STR, NULL, D(webhookurl), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "Discord webhook URL (env <NAME>_WEBHOOKURL, e.g. DISCORD_WEBHOOKURL)"},
    {"username", KX_OPT_STR, "Klaxon", D(username), 0, "name the message is posted as"},
    {"icon", KX_OPT_STR, "", D(icon), 0, "avatar URL"},
    KX_HTTPOUT_OPTS(struct discord_settings),
    {0},
};

/* The embed colour (decimal RGB) of a priority. */
static int discord_color(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT:
    case KX_PRI_CRITICAL: return 0xe01e5a;
    case KX_PRI_ERROR: return 0xf2711c;
    case KX_PRI_WARNING: return 0xecb22e;
    case KX_PRI_NOTICE: return 0x2eb67d;
    case KX_PRI_INFORMATIONAL: return 0x36c5f0;
    default: return 0xcccccc;
    }
}

/* kx_httpout_field_fn: one inline embed field, within Discord's limits. */
static int discord_on_field(void *ctx, const char *name, const char *value)
{
    cJSON *fields = ctx, *f;
    char v[KX_DISCORD_VALUE_MAX + 1];

    if (cJSON_GetArraySize(fields) >= KX_DISCORD_FIELDS)
        return 0;
    snprintf(v, sizeof(v), "%s", value && *value ? value : "<NA>");
    if (!(f = cJSON_CreateObject()) || !cJSON_AddStringToObject(f, "name", name) ||
        !cJSON_AddStringToObject(f, "value", v) || !cJSON_AddBoolToObject(f, "inline", true)) {
        cJSON_Delete(f);
        return -ENOMEM;
    }
    cJSON_AddItemToArray(fields, f);
    return 0;
}

/* kx_httpout_format_fn. */
static int discord_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    const struct discord_settings *s = o->settings;
    cJSON *root = cJSON_CreateObject(), *embeds, *e, *fields;
    char title[256], desc[4096], ts[64];
    int rc = -ENOMEM;

    snprintf(title, sizeof(title), "%s %s", kx_priority_name(a->priority), a->rule);
    snprintf(desc, sizeof(desc), "%s", a->output); /* Discord: 4096 characters at most */
    kx_time_format(a->time_ns, ts, sizeof(ts));
    if (!root || (s->username && *s->username &&
                  !cJSON_AddStringToObject(root, "username", s->username)) ||
        (s->icon && *s->icon && !cJSON_AddStringToObject(root, "avatar_url", s->icon)) ||
        !(embeds = cJSON_AddArrayToObject(root, "embeds")) || !(e = cJSON_CreateObject()))
        goto cleanup;
    cJSON_AddItemToArray(embeds, e);
    if (!cJSON_AddStringToObject(e, "title", title) ||
        !cJSON_AddStringToObject(e, "description", desc) ||
        !cJSON_AddNumberToObject(e, "color", discord_color(a->priority)) ||
        !cJSON_AddStringToObject(e, "timestamp", ts) ||
        !(fields = cJSON_AddArrayToObject(e, "fields")) ||
        kx_httpout_fields(a, discord_on_field, fields) != 0)
        goto cleanup;
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int discord_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct discord_settings *s = o->settings;
    struct kx_httpout *h;

    if (!kx_httpout_check_url(o, cfg, "webhookurl", s->webhookurl,
                              "https://discord.com/api/webhooks/<id>/<token>", d))
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

static int discord_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct discord_settings *s = o->settings;
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, s->webhookurl, "application/json", NULL, batch, n,
                           discord_format, "discord");
}

const struct kx_output_ops kx_output_discord = {
    .name = "discord",
    .desc = "Discord webhook: an embed per alert, priority colour, fields",
    .opts = discord_opts,
    .settings_size = sizeof(struct discord_settings),
    .max_batch = 1,
    .init = discord_init,
    .deliver = discord_deliver,
    .destroy = kx_httpout_destroy,
};
