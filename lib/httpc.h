/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc.h - the shared HTTP client (libcurl) with delivery classification, so
 * an output only formats its body and never repeats POST/retry logic.
 *
 *   2xx                          -> 0           (delivered)
 *   429, 5xx, timeout, refused   -> -EAGAIN     (retry; retry_after set if sent)
 *   other 4xx, bad URL           -> -EINVAL     (permanent; dead-letter)
 */
#ifndef KX_HTTPC_H
#define KX_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct kx_httpc_opts {
    int64_t timeout;            /* ns for the whole request; 0 = 10 s */
    bool insecure;              /* skip TLS verification (off by default) */
    const char *ca_file;        /* extra CA bundle, may be NULL */
    const char *client_cert;    /* mutual TLS, may be NULL */
    const char *client_key;
    size_t max_response;        /* keep up to this many body bytes in res->full; 0 = excerpt only */
};

struct kx_httpc;   /* one per thread: wraps a reusable CURL easy handle */

/* Caller owns; NULL + errno. opts is copied (strings too). */
struct kx_httpc *kx_httpc_new(const struct kx_httpc_opts *opts);
void kx_httpc_free(struct kx_httpc *c); /* no-op if NULL */

struct kx_http_result {
    long status;                /* HTTP status, 0 if no response */
    int64_t retry_after;        /* ns from Retry-After, 0 if none */
    char body[512];             /* response body excerpt, NUL-terminated */
    char error[256];            /* transport error or "HTTP 400: <body>" */
    char *full;                 /* owned: the whole body (NUL-terminated) when the client has
                                 * max_response; NULL otherwise. kx_http_result_release() */
    size_t full_len;
};

/* Frees res->full; the rest of res stays readable. */
void kx_http_result_release(struct kx_http_result *res);

/*
 * POSTs (method may be "PUT" etc.; NULL = POST) body to url with the given
 * content type and extra headers ("Name: value" each). Classifies the outcome
 * as described above; res is always filled.
 */
int kx_httpc_send(struct kx_httpc *c, const char *method, const char *url,
                  const char *content_type, const struct kx_strmap *headers,
                  const char *body, size_t len, struct kx_http_result *res);

/* A Retry-After header value (n bytes, delta-seconds or an HTTP-date) as ns
 * from now, capped at max; 0 when unusable. */
int64_t kx_httpc_retry_after(const char *v, size_t n, int64_t max);

/* Call once from main before threads exist / at exit. */
int kx_httpc_global_init(void);
void kx_httpc_global_cleanup(void);

/* Whether a libcurl failure (a CURLcode) will not go away by retrying the
 * same transfer: the request or our own TLS material is wrong. Pure. */
bool kx_httpc_curl_permanent(int rc);

#endif
