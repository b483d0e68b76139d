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
#include "httpout.h"
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
    struct kx_httpout_conn http;
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
    KX_HTTPOUT_OPTS(struct splunk_settings),
    {0},
};

/* Pure: appends one HEC envelope for a to out, the alert's JSON spliced in
 * as it is (no second print). 0 or the kx_buf error. */
static int splunk_envelope(const struct splunk_settings *s, const struct kx_alert *a,
                           struct kx_buf *out)
{
    size_t len;
    char *tmp;
    const char *json = kx_alert_json(a, &len, &tmp);

    if (!json)
        return -ENOMEM;
    /* HEC's time: epoch seconds with a fraction (ms precision is what it keeps) */
    int rc = kx_buf_printf(out, "{\"time\":%lld.%03lld,\"host\":",
                           (long long)(a->time_ns / KX_NSEC_PER_SEC),
                           (long long)(a->time_ns % KX_NSEC_PER_SEC / 1000000));
    if (rc == 0)
        rc = kx_buf_json_str(out, a->hostname);
    if (rc == 0)
        rc = kx_buf_append(out, ",\"source\":", 10);
    if (rc == 0)
        rc = kx_buf_json_str(out, s->source ? s->source : "klaxon");
    if (rc == 0)
        rc = kx_buf_append(out, ",\"sourcetype\":", 14);
    if (rc == 0)
        rc = kx_buf_json_str(out, s->sourcetype ? s->sourcetype : "falco");
    if (rc == 0 && s->index && *s->index) {
        rc = kx_buf_append(out, ",\"index\":", 9);
        if (rc == 0)
            rc = kx_buf_json_str(out, s->index);
    }
    if (rc == 0)
        rc = kx_buf_append(out, ",\"event\":", 9);
    if (rc == 0)
        rc = kx_buf_append(out, json, len);
    if (rc == 0)
        rc = kx_buf_append(out, "}", 1);
    free(tmp);
    return rc;
}

/* Output worker thread. */
static int splunk_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct splunk_settings *s = o->settings;
    struct kx_httpout *h; /* url: <hostport>/services/collector/event; Authorization */
    size_t before = d->n;
    char *auth = NULL;

    kx_httpout_check_url(o, cfg, "hostport", s->hostport, "https://splunk:8088", d);
    if (!s->token || !*s->token || strpbrk(s->token, " \r\n"))
        kx_diag_add(d, kx_config_get(cfg, "token"),
                    "output %s: token must be a non-empty HEC token without spaces", o->name);
    if (d->n > before)
        return -EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    o->priv = h; /* destroy frees what is made below */
    if (!(h->url = kx_httpout_url(s->hostport, "/services/collector/event")) ||
        kx_httpout_header(&h->headers, "Authorization",
                          asprintf(&auth, "Splunk %s", s->token) < 0 ? NULL : auth) < 0)
        return -ENOMEM;
    return kx_httpout_open(o, cfg, &s->http, 0, h, d);
}

/* Output worker thread: the whole batch in one request. */
static int splunk_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct splunk_settings *s = o->settings;
    struct kx_httpout *h = o->priv;
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
    rc = kx_httpout_send(o, h->http, h->url, "application/json", &h->headers, &b, "splunk HEC",
                         NULL);
    kx_buf_free(&b);
    return rc;
}


const struct kx_output_ops kx_output_splunk = {
    .name = "splunk",
    .desc = "Splunk HTTP Event Collector, batched (Authorization: Splunk <token>)",
    .opts = splunk_opts,
    .settings_size = sizeof(struct splunk_settings),
    .max_batch = KX_SPLUNK_BATCH,
    .init = splunk_init,
    .deliver = splunk_deliver,
    .destroy = kx_httpout_destroy,
};
