/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slack.c - Slack incoming webhooks: one message per alert, an attachment
 * with a colour bar for the priority, the rule, priority, source, host and
 * the alert's output fields as attachment fields; Falcosidekick's settings
 * (webhookurl, channel, username, icon, footer, outputformat, messageformat)
 * plus an optional mention per priority ("<!here>", "<@U123>").
 *
 * Mattermost and Rocket.Chat incoming webhooks take the same payload (their
 * "Slack-compatible" format): types mattermost and rocketchat are this
 * output under their own names, as Falcosidekick users know them.
 *
 * Slack answers 200 "ok"; 400 invalid_payload / no_text, 403
 * action_prohibited, 404 channel_not_found / no_service (permanent: the
 * body names the reason and goes to the dead-letter record); 429 with
 * Retry-After and 5xx are retried by the core.
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
#include "template.h"
#include "util.h"

struct slack_settings {
    char *webhookurl;             /* https://hooks.slack.com/services/..., a secret */
    char *channel;                /* override the webhook's channel; "" = its default */
    char *username;               /* "" = the webhook's name */
    char *icon;                   /* icon URL */
    char *footer;                 /* attachment footer */
    char *outputformat;           /* all | text | fields */
    char *messageformat;          /* template for the message text above the attachment */
    struct kx_strmap mentions;    /* priority -> mention, e.g. critical: "<!here>" */
    struct kx_httpout_conn http;  /* TLS and timeout */
};

struct slack_state {
    struct kx_httpout h;          /* client (url unused: the webhook URL is a setting) */
    struct kx_template *message;  /* owned, NULL without messageformat */
    int format;                   /* SLACK_ALL | SLACK_TEXT | SLACK_FIELDS */
};

enum { SLACK_ALL, SLACK_TEXT, SLACK_FIELDS };

#define S(field) offsetof(struct slack_settings, field)

static const struct kx_opt slack_opts[] = {
    {"webhookurl", KX_OPT_STR, NULL, S(webhookurl), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "Slack incoming webhook URL (env <NAME>_WEBHOOKURL, e.g. SLACK_WEBHOOKURL)"},
    {"channel", KX_OPT_STR, "", S(channel), 0, "channel override (#sec-alerts); \"\" = default"},
    {"username", KX_OPT_STR, "Klaxon", S(username), 0, "name the message is posted as"},
    {"icon", KX_OPT_STR, "", S(icon), 0, "icon URL of the poster"},
    {"footer", KX_OPT_STR, "https://github.com/klaxon", S(footer), 0, "attachment footer"},
    {"outputformat", KX_OPT_STR, "all", S(outputformat), 0,
     "all (text and fields), text (output line only) or fields (fields only)"},
    {"messageformat", KX_OPT_STR, "", S(messageformat), 0,
     "message text template above the attachment: \"Alert: %rule on %hostname\""},
    {"mentions", KX_OPT_STRMAP, NULL, S(mentions), 0,
     "mention per priority and above, e.g. {critical: \"<!here>\"}"},
    KX_HTTPOUT_OPTS(struct slack_settings),
    {0},
};

/* The attachment colour of a priority (the bar on the left of the message). */
static const char *slack_color(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT:
    case KX_PRI_CRITICAL: return "#e01e5a";
    case KX_PRI_ERROR: return "#f2711c";
    case KX_PRI_WARNING: return "#ecb22e";
    case KX_PRI_NOTICE: return "#2eb67d";
    case KX_PRI_INFORMATIONAL: return "#36c5f0";
    default: return "#cccccc";
    }
}

/* The mention for a's priority: the entry for the most severe configured
 * priority that a reaches ("critical" covers alert and emergency too). */
static const char *slack_mention(const struct slack_settings *s, enum kx_priority p)
{
    const char *best = NULL;
    enum kx_priority best_p = KX_PRI_DEBUG;

    for (size_t i = 0; i < s->mentions.n; i++) {
        enum kx_priority mp;

        if (kx_priority_parse(s->mentions.keys[i], &mp) == 0 && p <= mp &&
            (!best || mp < best_p)) {
            best = s->mentions.vals[i];
            best_p = mp;
        }
    }
    return best;
}

/* kx_httpout_field_fn: one attachment field; short ones go two per row. */
static int slack_on_field(void *ctx, const char *title, const char *value)
{
    cJSON *f = cJSON_CreateObject();

    if (!f || !cJSON_AddStringToObject(f, "title", title) ||
        !cJSON_AddStringToObject(f, "value", value && *value ? value : "<NA>") ||
        !cJSON_AddBoolToObject(f, "short", strcmp(title, "rule") != 0 && strlen(value) < 40)) {
        cJSON_Delete(f);
        return -ENOMEM;
    }
    cJSON_AddItemToArray(ctx, f);
    return 0;
}

/* Pure: the Slack payload for one alert into out (appended). message may be
 * NULL. 0 or -ENOMEM. */
static int slack_format(const struct slack_settings *s, const struct kx_template *message,
                    int format, const struct kx_alert *a, struct kx_buf *out)
{
    cJSON *root = cJSON_CreateObject(), *atts, *att, *fields;
    const char *mention = slack_mention(s, a->priority);
    struct kx_buf text;
    int rc = -ENOMEM;

    kx_buf_init(&text, 32 * 1024);
    if (mention && kx_buf_printf(&text, "%s ", mention) < 0)
        goto cleanup;
    if (message) {
        if (kx_template_render(message, a, &text) < 0)
            goto cleanup;
    } else if (kx_buf_printf(&text, "%s: %s", kx_priority_name(a->priority), a->rule) < 0) {
        goto cleanup;
    }
    if (!root || !cJSON_AddStringToObject(root, "text", text.data ? text.data : "") ||
        (s->channel && *s->channel && !cJSON_AddStringToObject(root, "channel", s->channel)) ||
        (s->username && *s->username && !cJSON_AddStringToObject(root, "username", s->username)) ||
        (s->icon && *s->icon && !cJSON_AddStringToObject(root, "icon_url", s->icon)) ||
        !(atts = cJSON_AddArrayToObject(root, "attachments")) || !(att = cJSON_CreateObject()))
        goto cleanup;
    cJSON_AddItemToArray(atts, att);
    if (!cJSON_AddStringToObject(att, "fallback", a->output) ||
        !cJSON_AddStringToObject(att, "color", slack_color(a->priority)) ||
        (format != SLACK_FIELDS && !cJSON_AddStringToObject(att, "text", a->output)) ||
        (s->footer && *s->footer && !cJSON_AddStringToObject(att, "footer", s->footer)) ||
        !cJSON_AddNumberToObject(att, "ts", (double)(a->time_ns / KX_NSEC_PER_SEC)))
        goto cleanup;
    if (format != SLACK_TEXT &&
        (!(fields = cJSON_AddArrayToObject(att, "fields")) ||
         kx_httpout_fields(a, slack_on_field, fields) != 0))
        goto cleanup;
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    kx_buf_free(&text);
    return rc;
}

/* Output worker thread. */
static int slack_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct slack_settings *s = o->settings;
    struct slack_state *st;
    size_t before = d->n;
    char err[128];
    int format = SLACK_ALL;

    kx_httpout_check_url(o, cfg, "webhookurl", s->webhookurl,
                         "https://hooks.slack.com/services/...", d);
    if (!s->outputformat || strcasecmp(s->outputformat, "all") == 0)
        format = SLACK_ALL;
    else if (strcasecmp(s->outputformat, "text") == 0)
        format = SLACK_TEXT;
    else if (strcasecmp(s->outputformat, "fields") == 0)
        format = SLACK_FIELDS;
    else
        kx_diag_add(d, kx_config_get(cfg, "outputformat"),
                    "output %s: outputformat \"%s\": want all, text or fields", o->name,
                    s->outputformat);
    for (size_t i = 0; i < s->mentions.n; i++) {
        enum kx_priority p;

        if (kx_priority_parse(s->mentions.keys[i], &p) < 0)
            kx_diag_add(d, kx_config_get(cfg, "mentions"),
                        "output %s: mentions: \"%s\" is not a priority", o->name,
                        s->mentions.keys[i]);
    }
    if (d->n > before)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    o->priv = st; /* destroy frees what is made below */
    st->format = format;
    if (s->messageformat && *s->messageformat &&
        !(st->message = kx_template_compile(s->messageformat, err, sizeof(err)))) {
        kx_diag_add(d, kx_config_get(cfg, "messageformat"), "output %s: messageformat: %s",
                    o->name, err);
        return -EINVAL;
    }
    return kx_httpout_open(o, cfg, &s->http, 0, &st->h, d);
}

/* kx_httpout_format_fn. */
static int slack_on_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    const struct slack_state *st = o->priv;

    return slack_format(o->settings, st->message, st->format, a, out);
}

/* Output worker thread. One message per alert (Slack has no batch API). */
static int slack_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct slack_settings *s = o->settings;
    struct slack_state *st = o->priv;

    return kx_httpout_each(o, st->h.http, s->webhookurl, "application/json", NULL, batch, n,
                           slack_on_format, "slack");
}

/* Output worker thread; also after a failed init. */
static void slack_destroy(struct kx_output *o)
{
    struct slack_state *st = o->priv;

    if (!st)
        return;
    kx_httpout_close(&st->h);
    kx_template_free(st->message);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_slack = {
    .name = "slack",
    .desc = "Slack incoming webhook: priority colour, rule and fields, mentions per priority",
    .opts = slack_opts,
    .settings_size = sizeof(struct slack_settings),
    .max_batch = 1,
    .init = slack_init,
    .deliver = slack_deliver,
    .destroy = slack_destroy,
};

const struct kx_output_ops kx_output_mattermost = {
    .name = "mattermost",
    .desc = "Mattermost incoming webhook (Slack-compatible attachments)",
    .opts = slack_opts,
    .settings_size = sizeof(struct slack_settings),
    .max_batch = 1,
    .init = slack_init,
    .deliver = slack_deliver,
    .destroy = slack_destroy,
};

const struct kx_output_ops kx_output_rocketchat = {
    .name = "rocketchat",
    .desc = "Rocket.Chat incoming webhook (Slack-compatible attachments)",
    .opts = slack_opts,
    .settings_size = sizeof(struct slack_settings),
    .max_batch = 1,
    .init = slack_init,
    .deliver = slack_deliver,
    .destroy = slack_destroy,
};
