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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct kx_http_req {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* "/api/v1/alerts" (no query) */
    const char *query;         /* "a=1&b=2" or "" */
    const char *content_type;  /* "" if absent */
    const char *authorization; /* "" if absent */
    const char *body;          /* NUL-terminated, body_len bytes (may contain NULs) */
    size_t body_len;
    const char *peer;   /* client address, for logs */
    const char *cookie; /* "" if absent */
    const char *origin; /* "" if absent */
    const char *host;   /* "" if absent */
    const char *accept; /* "" if absent */
    bool tls;           /* arrived over TLS */
    bool upgrade;       /* a WebSocket handshake (GET /ws...) */
};

struct kx_http_resp {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    struct kx_buf body;       /* handler appends; freed by the server */
    struct kx_buf headers;    /* extra "name: value\r\n" lines (kx_http_resp_header) */
    void *ws_conn;            /* handshake accepted: the handler's connection state */
};

/* A handler sets resp->status to this to have the request answered by the
 * slow handler on a worker thread instead (routes that wait on NATS). */
#define KX_HTTP_SLOW 1

/* Adds a response header (name without ':', at most 64 characters; all
 * extra headers of one answer together at most 1 KiB). 0 or -E2BIG. */
int kx_http_resp_header(struct kx_http_resp *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs on the kx-http thread (or a worker for the slow handler). */
typedef void (*kx_http_handler)(void *ctx, const struct kx_http_req *req,
                                struct kx_http_resp *resp);

struct kx_http_server;

/*
 * WebSocket connections (RFC 6455) on the same listener. The handler sees
 * the handshake as a request with req->upgrade set: it refuses by setting a
 * status and body as usual, or accepts by leaving status 200 and setting
 * resp->ws_conn to its own per-connection state, which the ops below then
 * receive. Every op runs on the kx-http thread.
 */
struct kx_ws; /* one WebSocket connection, as a handle for kx_ws_kill */

struct kx_ws_ops {
    /* Optional: the handshake is done; ws stays valid until close(). */
    void (*open)(void *ctx, void *conn, struct kx_ws *ws);
    /* One whole text message from the client (at most KX_WS_RX_MAX bytes;
     * larger ones close the connection with 1009). */
    void (*message)(void *ctx, void *conn, const char *data, size_t len);
    /* The client can take data: append one text message to out and return 1,
     * or return 0 when there is nothing to send, or -1 to close the
     * connection with policy violation (1008) and the reason in out. */
    int (*writeable)(void *ctx, void *conn, struct kx_buf *out);
    /* The connection is gone; free conn. (On the thread calling
     * kx_http_stop for connections still open then.) */
    void (*close)(void *ctx, void *conn);
    /* The loop was woken by kx_http_wake(). */
    void (*wake)(void *ctx);
};

#define KX_WS_RX_MAX 16384      /* largest client message */
#define KX_WS_TX_MAX (1u << 20) /* largest message writeable() may build */

struct kx_http_opts {
    const char *addr;             /* "" or "0.0.0.0" = all IPv4, "::" = all */
    int port;                     /* 0 = any free port */
    size_t max_body;              /* larger request bodies get 413 */
    kx_http_handler handler;      /* kx-http thread */
    kx_http_handler slow_handler; /* worker threads: requests the handler marked KX_HTTP_SLOW */
    int workers;                  /* slow_handler threads (kx-http-w); 0 = 2 */
    const struct kx_ws_ops *ws;   /* NULL = no WebSocket */
    const char *tls_cert;         /* PEM files: both set = TLS only */
    const char *tls_key;
    void *ctx; /* borrowed, passed to every callback */
};

/* Like kx_http_start, with every option. */
struct kx_http_server *kx_http_start_opts(const struct kx_http_opts *o, char *err, size_t errlen);

/* Any thread: wakes the loop, which calls ws->wake once for any number of
 * calls made meanwhile (and at most every KX_WS_FLUSH_US). */
void kx_http_wake(struct kx_http_server *s);
#define KX_WS_FLUSH_US 10000

/* kx-http thread: closes ws at once, without waiting for it to drain (a
 * client that stopped reading); close() follows. */
void kx_ws_kill(struct kx_ws *ws);

/* kx-http thread: asks for writeable() on every WebSocket connection. */
void kx_http_ws_writeable_all(struct kx_http_server *s);

/*
 * Binds addr:port (addr "" or "0.0.0.0" = all IPv4, "::" = all) and starts the
 * thread (plain HTTP, no workers, no WebSocket). NULL on failure with err, e.g. "cannot listen on
 * 0.0.0.0:2801: Address already in use". Caller owns; ctx is borrowed.
 */
struct kx_http_server *kx_http_start(const char *addr, int port, size_t max_body,
                                     kx_http_handler handler, void *ctx, char *err, size_t errlen);
/* The bound port (useful when port 0 was asked for). */
int kx_http_port(const struct kx_http_server *s);
/* Stops the loop, joins the thread, frees. No-op if NULL. */
void kx_http_stop(struct kx_http_server *s);

#endif
