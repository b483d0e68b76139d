/* SPDX-License-Identifier: Apache-2.0 */
/*
 * splunk.c - Splunk HTTP Event Collector: batches of alerts POSTed to
 * <hostport>/services/collector/event with "Authorization: Splunk <token>",
 * one event envelope per alert, envelopes concatenated as HEC expects:
 *
 *   {"time":1795428062.123,"host":"node-a","source":"klaxon","sourcetype":"falco",
 *    "index":"security","event":{...the alert...}}{"time":...}
 *
 * HEC answers 200 {"text":"Success","code":0}. 400 (bad format, incorrect
 * index), 401 (no token) and 403 (invalid token) are permanent: the batch is
 * dead-lettered with HEC's reason. 503 "Server is busy" and 429 are retried
 * by the core.
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
#include "outputs.h"
#include "util.h"

#define KX_SPLUNK_BATCH 500          /* alerts per request at most */
#define KX_SPLUNK_BODY_MAX (8 << 20) /* bytes per request at most (HEC's default limit is 1 MB
                                      * per event, 1 GB per request) */

struct splunk_settings {
    char *hostport;   /* https://splunk:8088 */
    char *token;      /* HEC token, a secret */
    char *index;      /* "" = the token's default index */
    char *sourcetype; /* "falco" */
    char *source;     /* "klaxon" */
    bool checkcert;
    char *cafile;
    char *clientcert;
    char *clientkey;
    int64_t timeout; /* ns */
};

struct splunk_state {
    struct kx_httpc *http;   /* owned */
    char *url;               /* owned: <hostport>/services/collector/event */
    struct kx_strmap headers; /* owned: Authorization */
};

#define S(field) offsetof(struct splunk_settings, field)

static const struct kx_opt splunk_opts[] = {
    {"hostport", KX_OPT_STR, NULL, S(hostport), KX_OPT_REQUIRED,
     "HEC base URL, e.g. https://splunk:8088 (env <NAME>_HOSTPORT)"},
    {"token", KX_OPT_STR, NULL, S(token), KX_OPT_REQUIRED | KX_OPT_SECRET,
     "HEC token, sent as Authorization: Splunk <token>"},
    {"index", KX_OPT_STR, "", S(index), 0, "target index; \"\" = the token's default"},
    {"sourcetype", KX_OPT_STR, "falco", S(sourcetype), 0, "sourcetype of the events"},
    {"source", KX_OPT_STR, "klaxon", S(source), 0, "source of the events"},
    {"checkcert", KX_OPT_BOOL, "true", S(checkcert), 0, "verify the server's TLS certificate"},
    {"cafile", KX_OPT_STR, NULL, S(cafile), 0, "extra CA bundle (PEM)"},
    {"clientcert", KX_OPT_STR, NULL, S(clientcert), 0, "client certificate (PEM), mutual TLS"},
    {"clientkey", KX_OPT_STR, NULL, S(clientkey), 0, "client private key (PEM), mutual TLS"},
    {"timeout", KX_OPT_DURATION, "10s", S(timeout), 0, "whole-request timeout"},
    {0},
};

/* Pure: appends one HEC envelope for a to out. 0 or the kx_buf error. */
static int splunk_envelope(const struct splunk_settings *s, const struct kx_alert *a,
                           struct kx_buf *out)
{
    cJSON *env = cJSON_CreateObject();
    char *json = NULL;
    int rc = -ENOMEM;

    /* HEC's time: epoch seconds with a fraction (ms precision is what it keeps) */
    if (env &&
        cJSON_AddRawToObject(env, "time", "0") && /* placeholder, replaced below */
        cJSON_AddStringToObject(env, "host", a->hostname) &&
        cJSON_AddStringToObject(env, "source", s->source ? s->source : "klaxon") &&
        cJSON_AddStringToObject(env, "sourcetype", s->sourcetype ? s->sourcetype : "falco") &&
        (!s->index || !*s->index || cJSON_AddStringToObject(env, "index", s->index))) {
        char t[48];

        snprintf(t, sizeof(t), "%lld.%03lld", (long long)(a->time_ns / KX_NSEC_PER_SEC),
                 (long long)(a->time_ns % KX_NSEC_PER_SEC / 1000000));
        cJSON_ReplaceItemInObject(env, "time", cJSON_CreateRaw(t));
        if (cJSON_AddItemReferenceToObject(env, "event", a->doc))
            json = cJSON_PrintUnformatted(env);
    }
    if (json)
        rc = kx_buf_append(out, json, strlen(json));
    cJSON_free(json);
    cJSON_Delete(env); /* the reference does not free a->doc */
    return rc;
}

/* Output worker thread. */
static int splunk_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct splunk_settings *s = o->settings;
    struct kx_httpc_opts hopts;
    struct splunk_state *st;
    size_t before = d->n, len;
    char *auth;

    if (!s->hostport || (strncasecmp(s->hostport, "https://", 8) != 0 &&
                         strncasecmp(s->hostport, "http://", 7) != 0))
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must be an http(s):// URL, e.g. https://splunk:8088",
                    o->name);
    if (!s->token || !*s->token || strpbrk(s->token, " \r\n"))
        kx_diag_add(d, kx_config_get(cfg, "token"),
                    "output %s: token must be a non-empty HEC token without spaces", o->name);
    if ((s->clientcert && *s->clientcert) != (s->clientkey && *s->clientkey))
        kx_diag_add(d, kx_config_get(cfg, "clientcert"),
                    "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (s->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;
    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    len = strlen(s->hostport);
    while (len && s->hostport[len - 1] == '/')
        len--;
    if (asprintf(&st->url, "%.*s/services/collector/event", (int)len, s->hostport) < 0)
        st->url = NULL;
    auth = NULL;
    if (asprintf(&auth, "Splunk %s", s->token) < 0)
        auth = NULL;
    st->headers.keys = calloc(1, sizeof(char *));
    st->headers.vals = calloc(1, sizeof(char *));
    hopts = (struct kx_httpc_opts){.timeout = s->timeout,
                                   .insecure = !s->checkcert,
                                   .ca_file = s->cafile,
                                   .client_cert = s->clientcert,
                                   .client_key = s->clientkey};
    st->http = kx_httpc_new(&hopts);
    if (!st->url || !auth || !st->headers.keys || !st->headers.vals || !st->http ||
        !(st->headers.keys[0] = strdup("Authorization"))) {
        free(auth);
        o->priv = st;
        return -ENOMEM; /* destroy frees what was made */
    }
    st->headers.vals[0] = auth;
    st->headers.n = 1;
    o->priv = st;
    return 0;
}

/* Output worker thread: the whole batch in one request. */
static int splunk_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct splunk_settings *s = o->settings;
    struct splunk_state *st = o->priv;
    struct kx_http_result res;
    struct kx_buf b;
    int rc = 0;

    kx_buf_init(&b, KX_SPLUNK_BODY_MAX);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = splunk_envelope(s, batch[i], &b);
    if (rc < 0) {
        snprintf(o->error, sizeof(o->error), "splunk: cannot build the batch: %s",
                 strerror(-rc));
        kx_buf_free(&b);
        return -EAGAIN;
    }
    rc = kx_httpc_send(st->http, "POST", st->url, "application/json", &st->headers, b.data,
                       b.len, &res);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "splunk HEC: %.240s", res.error);
        o->retry_after = res.retry_after;
    }
    kx_buf_free(&b);
    return rc;
}

static void splunk_destroy(struct kx_output *o)
{
    struct splunk_state *st = o->priv;

    if (!st)
        return;
    kx_httpc_free(st->http);
    free(st->url);
    if (st->headers.keys) {
        free(st->headers.keys[0]);
        free(st->headers.keys);
    }
    if (st->headers.vals) {
        if (st->headers.vals[0]) /* the token: wiped before it goes back to malloc */
            explicit_bzero(st->headers.vals[0], strlen(st->headers.vals[0]));
        free(st->headers.vals[0]);
        free(st->headers.vals);
    }
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_splunk = {
    .name = "splunk",
    .desc = "Splunk HTTP Event Collector, batched (Authorization: Splunk <token>)",
    .opts = splunk_opts,
    .settings_size = sizeof(struct splunk_settings),
    .max_batch = KX_SPLUNK_BATCH,
    .init = splunk_init,
    .deliver = splunk_deliver,
    .destroy = splunk_destroy,
};
