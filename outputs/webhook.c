/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook.c - the "webhook" output (Falcosidekick's): each alert's JSON is
 * POSTed (or PUT) to a URL, with optional extra headers and mutual TLS.
 *
 * One alert per request (max_batch 1), so an ack or a retry always covers
 * exactly the alert the endpoint answered for. Transport, TLS and the
 * retry/permanent classification are outputs/httpout.c and lib/httpc.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"
#include "httpout.h"
#include "outputs.h"
#include "util.h"

struct webhook_settings {
    char *address; /* URL, required */
    char *method;  /* "POST" | "PUT" */
    struct kx_strmap customheaders;
    char *contenttype;
    struct kx_httpout_conn http;
};

struct webhook_state {
    struct kx_httpout out; /* first: kx_httpout_destroy frees it */
    const char *method;    /* static "POST" / "PUT" */
};

#define W(field) offsetof(struct webhook_settings, field)

static const struct kx_opt webhook_opts[] = {
    {"address", KX_OPT_STR, NULL, W(address), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "URL the alerts are sent to (http:// or https://)"},
    {"method", KX_OPT_STR, "POST", W(method), 0, "POST or PUT"},
    {"customheaders", KX_OPT_STRMAP, NULL, W(customheaders), KX_OPT_SECRET,
     "extra request headers, e.g. Authorization: Bearer ..."},
    KX_HTTPOUT_OPTS(struct webhook_settings),
    {"contenttype", KX_OPT_STR, "application/json", W(contenttype), 0, "Content-Type header"},
    {0},
};

/* Output worker thread. */
static int webhook_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct webhook_settings *s = o->settings;
    struct webhook_state *st;
    const char *method = NULL;
    size_t before = d->n;

    kx_httpout_check_url(o, cfg, "address", s->address, "https://example.internal/alerts", d);
    if (s->method == NULL || strcasecmp(s->method, "POST") == 0)
        method = "POST";
    else if (strcasecmp(s->method, "PUT") == 0)
        method = "PUT";
    else
        kx_diag_add(d, kx_config_get(cfg, "method"), "output %s: method \"%s\": want POST or PUT",
                    o->name, s->method);
    if (d->n > before)
        return -EINVAL;
    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    st->method = method;
    o->priv = st; /* destroy frees it */
    return kx_httpout_open(o, cfg, &s->http, 0, &st->out, d);
}

/* Output worker thread. One request per alert; the first failure ends the
 * batch and decides its outcome. */
static int webhook_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct webhook_settings *s = o->settings;
    struct webhook_state *st = o->priv;

    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *tmp;
        const char *json = kx_alert_json(batch[i], &len, &tmp);
        int rc;

        if (json == NULL) {
            snprintf(o->error, sizeof(o->error), "webhook: out of memory formatting alert");
            return -EAGAIN;
        }
        rc = kx_httpout_request(o, st->out.http, st->method, s->address, s->contenttype,
                                &s->customheaders, json, len, "webhook", NULL);
        free(tmp);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const struct kx_output_ops kx_output_webhook = {
    .name = "webhook",
    .desc = "POST each alert as JSON to an HTTP(S) endpoint",
    .opts = webhook_opts,
    .settings_size = sizeof(struct webhook_settings),
    .max_batch = 1,
    .init = webhook_init,
    .deliver = webhook_deliver,
    .destroy = kx_httpout_destroy,
};
