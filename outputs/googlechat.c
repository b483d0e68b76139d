/* SPDX-License-Identifier: Apache-2.0 */
/*
 * googlechat.c - Google Chat incoming webhook: one message per alert, the
 * text line and (outputformat all) a card with the fields:
 *
 *   {"text":"*Critical* Terminal shell in container: <output>",
 *    "cardsV2":[{"cardId":"klaxon","card":{"header":{"title":"<rule>","subtitle":"Critical"},
 *      "sections":[{"widgets":[{"decoratedText":{"topLabel":"proc.name","text":"bash"}}]}]}}]}
 *
 * Google answers 200 with the created message; 400 {"error":{"status":
 * "INVALID_ARGUMENT",...}} and 403/404 are permanent; 429 is retried.
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

struct gchat_settings {
    char *webhookurl;   /* with key and token in its query: a secret */
    char *outputformat; /* all | text */
    struct kx_httpout_conn http;
};

#define C(field) offsetof(struct gchat_settings, field)

static const struct kx_opt gchat_opts[] = {
    {"webhookurl", KX_OPT_STR, NULL, C(webhookurl), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "Google Chat webhook URL (env <NAME>_WEBHOOKURL, e.g. GOOGLECHAT_WEBHOOKURL)"},
    {"outputformat", KX_OPT_STR, "all", C(outputformat), 0, "all (text and card) or text"},
    KX_HTTPOUT_OPTS(struct gchat_settings),
    {0},
};

static int gchat_on_widget(void *ctx, const char *name, const char *value)
{
    cJSON *w = cJSON_CreateObject(), *dt;

    if (!w || !(dt = cJSON_AddObjectToObject(w, "decoratedText")) ||
        !cJSON_AddStringToObject(dt, "topLabel", name) ||
        !cJSON_AddStringToObject(dt, "text", value && *value ? value : "<NA>")) {
        cJSON_Delete(w);
        return -ENOMEM;
    }
    cJSON_AddItemToArray(ctx, w);
    return 0;
}

static int gchat_format(struct kx_output *o, const struct kx_alert *a, struct kx_buf *out)
{
    const struct gchat_settings *s = o->settings;
    bool card = !s->outputformat || strcasecmp(s->outputformat, "text") != 0;
    cJSON *root = cJSON_CreateObject(), *cards, *c, *cd, *hdr, *secs, *sec, *widgets;
    char *text = NULL;
    int rc = -ENOMEM;

    if (asprintf(&text, "*%s* %s: %s", kx_priority_name(a->priority), a->rule, a->output) < 0)
        text = NULL;
    if (!root || !text || !cJSON_AddStringToObject(root, "text", text))
        goto cleanup;
    if (card) {
        if (!(cards = cJSON_AddArrayToObject(root, "cardsV2")) || !(c = cJSON_CreateObject()))
            goto cleanup;
        cJSON_AddItemToArray(cards, c);
        if (!cJSON_AddStringToObject(c, "cardId", "klaxon") ||
            !(cd = cJSON_AddObjectToObject(c, "card")) ||
            !(hdr = cJSON_AddObjectToObject(cd, "header")) ||
            !cJSON_AddStringToObject(hdr, "title", a->rule) ||
            !cJSON_AddStringToObject(hdr, "subtitle", kx_priority_name(a->priority)) ||
            !(secs = cJSON_AddArrayToObject(cd, "sections")) || !(sec = cJSON_CreateObject()))
            goto cleanup;
        cJSON_AddItemToArray(secs, sec);
        if (!(widgets = cJSON_AddArrayToObject(sec, "widgets")) ||
            kx_httpout_fields(a, gchat_on_widget, widgets) != 0)
            goto cleanup;
    }
    rc = kx_buf_append_json(out, root);
cleanup:
    free(text);
    cJSON_Delete(root);
    return rc;
}

static int gchat_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct gchat_settings *s = o->settings;
    struct kx_httpout *h;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "webhookurl", s->webhookurl,
                         "https://chat.googleapis.com/v1/spaces/...", d);
    if (s->outputformat && strcasecmp(s->outputformat, "all") != 0 &&
        strcasecmp(s->outputformat, "text") != 0)
        kx_diag_add(d, kx_config_get(cfg, "outputformat"),
                    "output %s: outputformat \"%s\": want all or text", o->name, s->outputformat);
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

static int gchat_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct gchat_settings *s = o->settings;
    struct kx_httpout *h = o->priv;

    return kx_httpout_each(o, h->http, s->webhookurl, "application/json; charset=UTF-8", NULL,
                           batch, n, gchat_format, "googlechat");
}

const struct kx_output_ops kx_output_googlechat = {
    .name = "googlechat",
    .desc = "Google Chat incoming webhook: text and a card with the fields",
    .opts = gchat_opts,
    .settings_size = sizeof(struct gchat_settings),
    .max_batch = 1,
    .init = gchat_init,
    .deliver = gchat_deliver,
    .destroy = kx_httpout_destroy,
};
