/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook.c - the "webhook" output (Falcosidekick's): each alert's JSON is
 * POSTed (or PUT) to a URL, with optional extra headers and mutual TLS.
 *
 * One alert per request (max_batch 1), so an ack or a retry always covers
 * exactly the alert the endpoint answered for. Transport, TLS and the
 * retry/permanent classification are lib/httpc's.
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
#include "outputs.h"
#include "util.h"

struct webhook_settings {
    char *address; /* URL, required */
    char *method;  /* "POST" | "PUT" */
    struct kx_strmap customheaders;
    bool checkcert;
    char *cafile;
    char *clientcert; /* mutual TLS: both or neither */
    char *clientkey;
    int64_t timeout; /* ns */
    char *contenttype;
};

struct webhook_state {
    struct kx_httpc *http; /* owned; this worker thread's handle */
    const char *method;    /* static "POST" / "PUT" */
};

#define W(field) offsetof(struct webhook_settings, field)

static const struct kx_opt webhook_opts[] = {
    {"address", KX_OPT_STR, NULL, W(address), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "URL the alerts are sent to (http:// or https://)"},
    {"method", KX_OPT_STR, "POST", W(method), 0, "POST or PUT"},
    {"customheaders", KX_OPT_STRMAP, NULL, W(customheaders), KX_OPT_SECRET,
     "extra request headers, e.g. Authorization: Bearer ..."},
    {"checkcert", KX_OPT_BOOL, "true", W(checkcert), 0, "verify the server's TLS certificate"},
    {"cafile", KX_OPT_STR, NULL, W(cafile), 0, "extra CA bundle (PEM) to verify the server"},
    {"clientcert", KX_OPT_STR, NULL, W(clientcert), 0, "client certificate (PEM), mutual TLS"},
    {"clientkey", KX_OPT_STR, NULL, W(clientkey), 0, "client private key (PEM), mutual TLS"},
    {"timeout", KX_OPT_DURATION, "10s", W(timeout), 0, "whole-request timeout"},
    {"contenttype", KX_OPT_STR, "application/json", W(contenttype), 0, "Content-Type header"},
    {0},
};

/* Output worker thread. */
static int webhook_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct webhook_settings *s = o->settings;
    struct kx_httpc_opts hopts;
    struct webhook_state *st;
    const char *method = NULL;
    size_t before = d->n;

    if (s->address == NULL ||
        (strncasecmp(s->address, "http://", 7) != 0 && strncasecmp(s->address, "https://", 8) != 0))
        /* The URL may hold a token: not repeated here. */
        kx_diag_add(d, kx_config_get(cfg, "address"),
                    "output %s: address must be an http:// or https:// URL", o->name);
    if (s->method == NULL || strcasecmp(s->method, "POST") == 0)
        method = "POST";
    else if (strcasecmp(s->method, "PUT") == 0)
        method = "PUT";
    else
        kx_diag_add(d, kx_config_get(cfg, "method"), "output %s: method \"%s\": want POST or PUT",
                    o->name, s->method);
    if ((s->clientcert && s->clientcert[0]) != (s->clientkey && s->clientkey[0]))
        kx_diag_add(
            d, kx_config_get(cfg, s->clientcert && s->clientcert[0] ? "clientcert" : "clientkey"),
            "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (s->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;

    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    hopts = (struct kx_httpc_opts){
        .timeout = s->timeout,
        .insecure = !s->checkcert,
        .ca_file = s->cafile,
        .client_cert = s->clientcert,
        .client_key = s->clientkey,
    };
    st->http = kx_httpc_new(&hopts);
    if (st->http == NULL) {
        free(st);
        return -ENOMEM;
    }
    st->method = method;
    o->priv = st;
    return 0;
}

/* Output worker thread. One request per alert; the first failure ends the
 * batch and decides its outcome. */
static int webhook_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct webhook_settings *s = o->settings;
    struct webhook_state *st = o->priv;

    for (size_t i = 0; i < n; i++) {
        struct kx_http_result res;
        char *json = kx_alert_to_json(batch[i]);
        int rc;

        if (json == NULL) {
            snprintf(o->error, sizeof(o->error), "out of memory formatting alert");
            return -EAGAIN;
        }
        rc = kx_httpc_send(st->http, st->method, s->address, s->contenttype, &s->customheaders,
                           json, strlen(json), &res);
        free(json);
        if (rc != 0) {
            memcpy(o->error, res.error,
                   sizeof(o->error) < sizeof(res.error) ? sizeof(o->error) : sizeof(res.error));
            o->error[sizeof(o->error) - 1] = '\0';
            o->retry_after = res.retry_after;
            return rc;
        }
    }
    return 0;
}

/* Output worker thread; also after a failed init. */
static void webhook_destroy(struct kx_output *o)
{
    struct webhook_state *st = o->priv;

    if (st == NULL)
        return;
    kx_httpc_free(st->http);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_webhook = {
    .name = "webhook",
    .desc = "POST each alert as JSON to an HTTP(S) endpoint",
    .opts = webhook_opts,
    .settings_size = sizeof(struct webhook_settings),
    .max_batch = 1,
    .init = webhook_init,
    .deliver = webhook_deliver,
    .destroy = webhook_destroy,
};
