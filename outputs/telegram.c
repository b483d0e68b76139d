/* SPDX-License-Identifier: Apache-2.0 */
/*
 * telegram.c - Telegram Bot API: sendMessage per alert to a chat, as HTML
 * (the only markup whose escaping is three characters: & < >):
 *
 *   POST https://api.telegram.org/bot<token>/sendMessage
 *   {"chat_id":"-1001234","parse_mode":"HTML","disable_web_page_preview":true,
 *    "text":"<b>Critical</b> Terminal shell in container\n<pre>...</pre>\nrule: ..."}
 *
 * Telegram answers 200 {"ok":true,...}; 400 {"ok":false,"error_code":400,
 * "description":"Bad Request: chat not found"} and 401/403 are permanent;
 * 429 {"parameters":{"retry_after":N}} with Retry-After is retried.
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

#define KX_TELEGRAM_TEXT_MAX 4096 /* Telegram's limit per message */

struct telegram_settings {
    char *token;   /* bot token, a secret */
    char *chatid;  /* chat id (-100...) or @channelname */
    char *apiurl;  /* https://api.telegram.org */
    struct kx_httpout_conn http;
};

#define G(field) offsetof(struct telegram_settings, field)

static const struct kx_opt telegram_opts[] = {
    {"token", KX_OPT_STR, NULL, G(token), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "bot token (env <NAME>_TOKEN, e.g. TELEGRAM_TOKEN)"},
    {"chatid", KX_OPT_STR, NULL, G(chatid), KX_OPT_REQUIRED, "chat id or @channel"},
    {"apiurl", KX_OPT_STR, "https://api.telegram.org", G(apiurl), 0, "Bot API base URL"},
    KX_HTTPOUT_OPTS(struct telegram_settings),
    {0},
};

/* Appends s HTML-escaped (& < >), as Telegram's HTML mode wants. */
static int html(struct kx_buf *b, const char *s)
{
    int rc = 0;

    for (; s && *s && rc == 0; s++) {
        if (*s == '&')
            rc = kx_buf_append(b, "&amp;", 5);
        else if (*s == '<')
            rc = kx_buf_append(b, "&lt;", 4);
        else if (*s == '>')
            rc = kx_buf_append(b, "&gt;", 4);
        else
            rc = kx_buf_append(b, s, 1);
    }
    return rc;
}

static int telegram_on_field(void *ctx, const char *name, const char *value)
{
    struct kx_buf *b = ctx;

    if (strcmp(name, "rule") == 0 || strcmp(name, "priority") == 0)
        return 0; /* already in the first line */
    if (kx_buf_append(b, "\n<b>", 4) || html(b, name) || kx_buf_append(b, "</b>: ", 6) ||
        html(b, value))
        return -ENOMEM;
    return 0;
}

static int telegram_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    const struct telegram_settings *s = o->settings;
    struct kx_buf text;
    cJSON *root = cJSON_CreateObject();
    int rc = -ENOMEM;

    /* A long alert is cut rather than refused; the cut can fall inside an
     * entity only in the fields part, which then loses its tail. */
    kx_buf_init(&text, KX_TELEGRAM_TEXT_MAX);
    if (kx_buf_append(&text, "<b>", 3) || html(&text, kx_priority_name(a->priority)) ||
        kx_buf_append(&text, "</b> ", 5) || html(&text, a->rule) ||
        kx_buf_append(&text, "\n<pre>", 6) || html(&text, a->output) ||
        kx_buf_append(&text, "</pre>", 6))
        goto cleanup;
    kx_httpout_fields(a, telegram_on_field, &text); /* E2BIG past 4096: keep what fits */
    if (!root || !cJSON_AddStringToObject(root, "chat_id", s->chatid) ||
        !cJSON_AddStringToObject(root, "parse_mode", "HTML") ||
        !cJSON_AddBoolToObject(root, "disable_web_page_preview", true) ||
        !cJSON_AddStringToObject(root, "text", text.data ? text.data : ""))
        goto cleanup;
    rc = kx_buf_append_json(out, root);
cleanup:
    cJSON_Delete(root);
    kx_buf_free(&text);
    return rc;
}

static int telegram_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct telegram_settings *s = o->settings;
    struct kx_httpout *h;
    char *path = NULL;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "apiurl", s->apiurl, "https://api.telegram.org", d);
    if (!s->token || !strchr(s->token, ':') || strpbrk(s->token, "/?# "))
        kx_diag_add(d, kx_config_get(cfg, "token"),
                    "output %s: token must be a bot token (<id>:<secret>)", o->name);
    if (!s->chatid || !*s->chatid)
        kx_diag_add(d, kx_config_get(cfg, "chatid"), "output %s: chatid is required", o->name);
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    if (asprintf(&path, "/bot%s/sendMessage", s->token) < 0)
        return -ENOMEM;
    h->url = kx_httpout_url(s->apiurl, path);
    explicit_bzero(path, strlen(path));
    free(path);
    if (!h->url)
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

static int telegram_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, h->url, "application/json", NULL, batch, n,
                           telegram_format, "telegram");
}

const struct kx_output_ops kx_output_telegram = {
    .name = "telegram",
    .desc = "Telegram Bot API sendMessage (HTML) to a chat",
    .opts = telegram_opts,
    .settings_size = sizeof(struct telegram_settings),
    .max_batch = 1,
    .init = telegram_init,
    .deliver = telegram_deliver,
    .destroy = kx_httpout_destroy,
};
