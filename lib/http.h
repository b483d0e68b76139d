/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - an HTTP listener on libwebsockets (one event loop for HTTP,
 * and later WebSocket and TLS).
 *
 * The server owns one thread ("kx-http") running the lws service loop. It
 * collects each request body up to max_body (answering 413 with a JSON reason
 * beyond), then calls the handler on that thread with the whole request; the
 * handler fills the response synchronously. Handlers must not block for long:
 * a JetStream publish with a short timeout is fine.
 */
#ifndef KX_HTTP_H
#define KX_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct kx_http_req {
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* "/api/v1/alerts" (no query) */
    const char *query;          /* "a=1&b=2" or "" */
    const char *content_type;   /* "" if absent */
    const char *authorization;  /* "" if absent */
    const char *body;           /* NUL-terminated, body_len bytes (may contain NULs) */
    size_t body_len;
    const char *peer;           /* client address, for logs */
};

struct kx_http_resp {
    int status;                 /* default 200 */
    const char *content_type;   /* static string; default "application/json" */
    struct kx_buf body;         /* handler appends; freed by the server */
};

/* Runs on the kx-http thread. */
typedef void (*kx_http_handler)(void *ctx, const struct kx_http_req *req,
                                struct kx_http_resp *resp);

struct kx_http_server;

/*
 * Binds addr:port (addr "" or "0.0.0.0" = all IPv4, "::" = all) and starts the
 * thread. NULL on failure with err, e.g. "cannot listen on 0.0.0.0:2801:
 * Address already in use". Caller owns; ctx is borrowed.
 */
struct kx_http_server *kx_http_start(const char *addr, int port, size_t max_body,
                                     kx_http_handler handler, void *ctx, char *err,
                                     size_t errlen);
/* The bound port (useful when port 0 was asked for). */
int kx_http_port(const struct kx_http_server *s);
/* Stops the loop, joins the thread, frees. No-op if NULL. */
void kx_http_stop(struct kx_http_server *s);

#endif
