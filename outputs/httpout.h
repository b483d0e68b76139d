/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpout.h - the plumbing HTTP outputs share, so each outputs/<service>.c
 * holds only its settings, its payload format and its service's rules:
 * URL checks, the libcurl client from the usual TLS settings, auth headers
 * (wiped when freed: they hold secrets), and the send that turns a result
 * into the plugin outcome (o->error, o->retry_after, 0 / -EAGAIN / <0).
 *
 * Threads: an output's worker thread, like the rest of the plugin.
 */
#ifndef KX_OUTPUTS_HTTPOUT_H
#define KX_OUTPUTS_HTTPOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"
#include "outputs.h"
#include "util.h"

/*
 * The connection settings every HTTP output has, embedded in its settings
 * struct as a field named `http`, with their option-table entries from
 * KX_HTTPOUT_OPTS(struct type):
 *   checkcert (true), cafile, clientcert, clientkey (mutual TLS), timeout (10s)
 */
struct kx_httpout_conn {
    bool checkcert;
    char *cafile;
    char *clientcert;
    char *clientkey;
    int64_t timeout; /* ns */
};

#define KX_HTTPOUT_OPTS(type)                                                                     \
    {"checkcert", KX_OPT_BOOL, "true", offsetof(type, http.checkcert), 0,                         \
     "verify the server's TLS certificate"},                                                      \
        {"cafile", KX_OPT_STR, NULL, offsetof(type, http.cafile), 0,                              \
         "extra CA bundle (PEM) to verify the server"},                                           \
        {"clientcert", KX_OPT_STR, NULL, offsetof(type, http.clientcert), 0,                      \
         "client certificate (PEM), mutual TLS"},                                                 \
        {"clientkey", KX_OPT_STR, NULL, offsetof(type, http.clientkey), 0,                        \
         "client private key (PEM), mutual TLS"},                                                 \
    {                                                                                             \
        "timeout", KX_OPT_DURATION, "10s", offsetof(type, http.timeout), 0,                       \
            "whole-request timeout"                                                               \
    }

/* What an HTTP output keeps between calls: its client, its URL and its
 * (secret-bearing) headers. Embedded first in the plugin's state. */
struct kx_httpout {
    struct kx_httpc *http;    /* owned */
    char *url;                /* owned */
    struct kx_strmap headers; /* owned; values wiped when freed */
};

/*
 * Checks the connection settings (both or neither of clientcert/clientkey,
 * a positive timeout) with diagnostics at cfg's keys, and creates h->http
 * with max_response (0 = excerpt only). 0, -EINVAL or -ENOMEM.
 */
int kx_httpout_open(struct kx_output *o, const struct kx_config_node *cfg,
                    const struct kx_httpout_conn *c, size_t max_response, struct kx_httpout *h,
                    struct kx_diag *d);
/* Frees what kx_httpout_open and the plugin put in h. No-op on a zeroed h. */
void kx_httpout_close(struct kx_httpout *h);
/* An ops->destroy for plugins whose state (o->priv, malloc'd) starts with a
 * struct kx_httpout and owns nothing else. */
void kx_httpout_destroy(struct kx_output *o);

/* Adds a diagnostic at cfg's key unless url is http:// or https://. The
 * URL itself is never repeated (it may carry a token). hint e.g.
 * "https://splunk:8088". Returns true when the URL is fine. */
bool kx_httpout_check_url(struct kx_output *o, const struct kx_config_node *cfg, const char *key,
                          const char *url, const char *hint, struct kx_diag *d);

/* "<base without trailing '/'><suffix>" (caller frees), NULL on OOM. */
char *kx_httpout_url(const char *base, const char *suffix);

/* Appends header name: value (value is taken over, also on failure). */
int kx_httpout_header(struct kx_strmap *m, const char *name, char *value);
/* Appends "Authorization: Basic base64(user:pass)". */
int kx_httpout_basic_auth(struct kx_strmap *m, const char *user, const char *pass);
/* Frees the headers, wiping the values first. No-op on a zeroed map. */
void kx_httpout_headers_free(struct kx_strmap *m);

/*
 * One request; on failure sets o->error ("<what>: <reason>") and
 * o->retry_after. Returns kx_httpc_send's outcome. res may be NULL when the
 * caller does not read the answer (then any res->full is released here).
 */
int kx_httpout_send(struct kx_output *o, struct kx_httpc *http, const char *url,
                    const char *content_type, const struct kx_strmap *headers,
                    const struct kx_buf *body, const char *what, struct kx_http_result *res);

/* The same with another method ("PUT") and a plain body (borrowed). */
int kx_httpout_request(struct kx_output *o, struct kx_httpc *http, const char *method,
                       const char *url, const char *content_type, const struct kx_strmap *headers,
                       const char *body, size_t len, const char *what,
                       struct kx_http_result *res);

/* A Prometheus/Loki label name from a Falco field name: "k8s.ns.name" ->
 * "k8s_ns_name" ([a-zA-Z_][a-zA-Z0-9_]*). At most len-1 bytes. */
void kx_httpout_label_name(const char *field, char *out, size_t len);

/* Calls fn for the alert's key fields as text, in a stable order: rule,
 * priority, source, hostname, then every non-null output field. Stops at
 * the first nonzero return and returns it. For chat messages' field lists. */
typedef int (*kx_httpout_field_fn)(void *ctx, const char *name, const char *value);
int kx_httpout_fields(const struct kx_alert *a, kx_httpout_field_fn fn, void *ctx);

/* Formats one alert's request body into out (appended). 0 or -errno. */
typedef int (*kx_httpout_format_fn)(struct kx_output *o, const struct kx_alert *a,
                                    struct kx_buf *out);

/* One request per alert, in order; stops at the first failure and returns
 * its outcome (services without a batch API: Slack, PagerDuty, ...). */
int kx_httpout_each(struct kx_output *o, struct kx_httpc *http, const char *url,
                    const char *content_type, const struct kx_strmap *headers,
                    struct kx_alert *const *batch, size_t n, kx_httpout_format_fn format,
                    const char *what);

#endif
