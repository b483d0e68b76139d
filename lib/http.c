/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - HTTP/1.1 listener on libwebsockets 4.1 (hub API, sensor metrics).
 *
 * One lws context with one vhost, serviced by one thread ("kx-http"). Each
 * connection carries a struct http_conn (lws per-session data, reused across
 * keep-alive requests): the request line and the few headers we care about
 * are copied out of lws's header table when LWS_CALLBACK_HTTP arrives, the
 * body is collected into a kx_buf bounded by max_body, and once the request
 * is complete the handler runs synchronously and fills a response that is
 * then written from LWS_CALLBACK_HTTP_WRITEABLE: headers first, then the
 * body in chunks, then the transaction is completed so keep-alive works.
 *
 * A body over max_body is read and discarded (so the client is not reset
 * while it is still sending and actually sees the answer), answered with 413
 * and a JSON reason, and the connection is closed. A body declared far beyond
 * the limit is refused at once instead of being drained.
 *
 * Two gaps in lws 4.1 are filled here: it does not answer "Expect:
 * 100-continue" (curl asks for bodies over 1 MiB and would stall a second),
 * and it answers unknown methods with an HTML 403; with
 * LWS_SERVER_OPTION_FALLBACK_TO_RAW such requests come back to us as raw
 * sockets and get a JSON 405 (or 400 for non-HTTP bytes).
 *
 * lws binds the listen socket itself and only logs why it could not, so
 * kx_http_start first binds a probe socket the same way to report a precise
 * "cannot listen on 127.0.0.1:2801: Address already in use".
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define HTTP_PATH_MAX 2048 /* path or query longer -> 414 */
#define HTTP_CTYPE_MAX 256
#define HTTP_AUTH_MAX 4096 /* bearer tokens / JWTs */
#define HTTP_PEER_MAX 64
#define HTTP_RESP_MAX (64u << 20)    /* bound on what a handler may append */
#define HTTP_CHUNK 16384             /* response bytes per writeable callback */
#define HTTP_HDR_BUF 2048            /* room for the response headers */
#define HTTP_DRAIN_EXTRA (16u << 20) /* oversize bodies up to max_body + this are drained */
#define HTTP_KEEPALIVE_S 60          /* idle keep-alive (Falco and curl reuse connections) */

enum http_conn_state {
    HTTP_IDLE,       /* waiting for (the next) request */
    HTTP_RX_BODY,    /* collecting or discarding the request body */
    HTTP_TX_HEADERS, /* response ready, headers not written yet */
    HTTP_TX_BODY,    /* headers written, body pending from resp_off */
    HTTP_RAW_REPLY,  /* not HTTP lws understands: one canned answer, then close */
};

/* Per connection (lws per-session data, zeroed by lws, reused across
 * keep-alive requests). Only touched on the kx-http thread. */
struct http_conn {
    enum http_conn_state state;
    const char *method; /* static string from http_methods */
    char path[HTTP_PATH_MAX];
    char query[HTTP_PATH_MAX];
    char content_type[HTTP_CTYPE_MAX];
    char authorization[HTTP_AUTH_MAX];
    char peer[HTTP_PEER_MAX];
    uint64_t content_length; /* declared request body size */
    bool too_big;            /* body over max_body: being discarded */
    bool head;               /* HEAD: headers only */
    bool close_after;        /* send "connection: close" and close */
    struct kx_buf body;      /* owned: request body, max = max_body */
    int status;              /* response status */
    const char *resp_type;   /* static string */
    struct kx_buf resp;      /* owned: response body */
    size_t resp_off;         /* bytes of resp written so far */
};

struct kx_http_server {
    struct lws_context *lws; /* owned */
    struct lws_vhost *vhost; /* owned by lws */
    struct lws_protocols protocols[2];
    pthread_t thread;
    bool thread_started;
    atomic_bool stopping; /* set by kx_http_stop on any thread */
    int port;             /* bound port */
    size_t max_body;
    kx_http_handler handler;
    void *ctx;     /* borrowed handler context */
    char addr[64]; /* as asked for, for messages */
};

/* The methods lws's parser knows (LWS_WITH_HTTP_UNCOMMON_HEADERS is on in
 * Debian's build). lws turns CONNECT and unknown methods into raw
 * connections (http_on_raw); the entry is here in case it ever does not. */
static const struct {
    enum lws_token_indexes token;
    const char *name;
    bool allowed;
} http_methods[] = {
    {WSI_TOKEN_GET_URI, "GET", true},         {WSI_TOKEN_POST_URI, "POST", true},
    {WSI_TOKEN_PUT_URI, "PUT", true},         {WSI_TOKEN_DELETE_URI, "DELETE", true},
    {WSI_TOKEN_HEAD_URI, "HEAD", true},       {WSI_TOKEN_PATCH_URI, "PATCH", true},
    {WSI_TOKEN_OPTIONS_URI, "OPTIONS", true}, {WSI_TOKEN_CONNECT, "CONNECT", false},
};

/* lws logs through this (any thread that calls into lws): errors and
 * warnings go to our log so stderr keeps one format; the rest is dropped. */
static void http_on_lws_log(int level, const char *line)
{
    size_t n = strlen(line);

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    kx_log(level & LLL_ERR ? KX_LOG_ERROR : KX_LOG_WARN, "lws: %.*s", (int)n, line);
}

/* kx-http thread: releases both buffers (idle keep-alive connections hold
 * no body memory). */
static void http_conn_release(struct http_conn *c)
{
    kx_buf_free(&c->body);
    memset(&c->body, 0, sizeof(c->body));
    kx_buf_free(&c->resp);
    memset(&c->resp, 0, sizeof(c->resp));
    c->resp_off = 0;
}

/* kx-http thread: queues a response that the server itself composes. */
static int http_conn_reply(struct lws *wsi, struct http_conn *c, int status, bool close_after,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int http_conn_reply(struct lws *wsi, struct http_conn *c, int status, bool close_after,
                           const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    kx_buf_free(&c->resp);
    kx_buf_init(&c->resp, sizeof(msg) + 32);
    if (kx_buf_printf(&c->resp, "{\"error\":\"%s\"}", msg) < 0)
        return -1;
    c->status = status;
    c->resp_type = "application/json";
    c->close_after = c->close_after || close_after;
    c->resp_off = 0;
    c->state = HTTP_TX_HEADERS;
    lws_callback_on_writable(wsi);
    return 0;
}

/* kx-http thread: the request is complete; run the handler and queue its
 * response. */
static int http_conn_dispatch(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    struct kx_http_resp resp = {.status = 200, .content_type = "application/json"};
    struct kx_http_req req = {
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .content_type = c->content_type,
        .authorization = c->authorization,
        .body = c->body.len > 0 ? c->body.data : "",
        .body_len = c->body.len,
        .peer = c->peer,
    };

    kx_buf_init(&resp.body, HTTP_RESP_MAX);
    s->handler(s->ctx, &req, &resp);

    /* The request body is no longer needed; the handler's strings die here. */
    kx_buf_free(&c->body);
    memset(&c->body, 0, sizeof(c->body));

    kx_buf_free(&c->resp);
    c->resp = resp.body;
    c->resp_off = 0;
    /* Interim (1xx) or made-up codes cannot be a final answer. */
    c->status = resp.status >= 200 && resp.status <= 599 ? resp.status : 500;
    if (c->status == 204 || c->status == 304)
        kx_buf_free(&c->resp); /* these never carry a body */
    c->resp_type = resp.content_type ? resp.content_type : "application/json";
    c->state = HTTP_TX_HEADERS;
    lws_callback_on_writable(wsi);
    return 0;
}

/* kx-http thread: copies one header; -1 if it does not fit. Absent -> "". */
static int http_hdr(struct lws *wsi, enum lws_token_indexes tok, char *dst, size_t len)
{
    dst[0] = '\0';
    if (lws_hdr_total_length(wsi, tok) <= 0)
        return 0;
    if (lws_hdr_copy(wsi, dst, (int)len, tok) < 0) {
        dst[0] = '\0';
        return -1;
    }
    return 0;
}

/* Query characters passed through as they are; the rest is %-encoded. */
static bool http_query_plain(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("-._~:/,@!*'()", ch) != NULL);
}

/*
 * kx-http thread: rebuilds the query string. lws keeps each argument
 * url-decoded as a separate fragment, so they are joined with '&' again and
 * re-encoded (name=value split at the first '='): "a=1&b=%26c+d" reaches
 * the handler as "a=1&b=%26c%20d". -1 if it does not fit.
 */
static int http_query(struct lws *wsi, char *dst, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char frag[HTTP_PATH_MAX];
    size_t o = 0;

    dst[0] = '\0';
    for (int i = 0;; i++) {
        bool in_value = false;
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);

        if (n < 0) {
            if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
                return -1;
            break;
        }
        if (i > 0) {
            if (o + 1 >= len)
                return -1;
            dst[o++] = '&';
        }
        for (int k = 0; k < n; k++) {
            unsigned char ch = (unsigned char)frag[k];

            if (http_query_plain(ch) || (ch == '=' && !in_value)) {
                if (o + 1 >= len)
                    return -1;
                dst[o++] = (char)ch;
                in_value = in_value || ch == '=';
            } else {
                if (o + 3 >= len)
                    return -1;
                dst[o++] = '%';
                dst[o++] = hex[ch >> 4];
                dst[o++] = hex[ch & 15];
            }
        }
    }
    dst[o] = '\0';
    return 0;
}

/* kx-http thread: "Expect: 100-continue" present? */
static bool http_expects_continue(struct lws *wsi)
{
    char v[64];

    return http_hdr(wsi, WSI_TOKEN_HTTP_EXPECT, v, sizeof(v)) == 0 &&
           strcasecmp(v, "100-continue") == 0;
}

/* kx-http thread: the interim answer, written raw before any headers. */
static int http_send_continue(struct lws *wsi)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof(line)];

    memcpy(buf + LWS_PRE, line, sizeof(line) - 1);
    return lws_write(wsi, buf + LWS_PRE, sizeof(line) - 1, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

/* kx-http thread: LWS_CALLBACK_HTTP, the headers of a new request. */
static int http_on_request(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    char num[32];
    size_t i;
    int tok = -1;

    http_conn_release(c);
    c->state = HTTP_IDLE;
    c->method = "";
    c->path[0] = c->query[0] = c->content_type[0] = c->authorization[0] = '\0';
    c->content_length = 0;
    c->too_big = c->head = c->close_after = false;
    /* Once per connection: keep-alive requests share the peer. */
    if (c->peer[0] == '\0' && lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)) == NULL)
        snprintf(c->peer, sizeof(c->peer), "?");

    for (i = 0; i < KX_ARRAY_SIZE(http_methods); i++) {
        if (lws_hdr_total_length(wsi, http_methods[i].token) > 0) {
            tok = (int)i;
            break;
        }
    }
    if (http_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, num, sizeof(num)) < 0)
        return http_conn_reply(wsi, c, 400, true, "bad Content-Length");
    if (num[0] != '\0') {
        char *end;

        errno = 0;
        c->content_length = strtoull(num, &end, 10);
        if (errno != 0 || *end != '\0' || num[0] == '-')
            return http_conn_reply(wsi, c, 400, true, "bad Content-Length");
    }
    if (c->content_length > 0) {
        /* lws reads the declared body whatever the outcome: collect it,
         * or drain it when the request is going to be refused anyway. */
        c->state = HTTP_RX_BODY;
        if (c->content_length > s->max_body) {
            c->too_big = true;
            if (c->content_length - s->max_body > HTTP_DRAIN_EXTRA)
                return http_conn_reply(wsi, c, 413, true, "request body exceeds %zu bytes",
                                       s->max_body);
        }
    } else if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        return http_conn_reply(wsi, c, 411, true,
                               "chunked request bodies are not supported; "
                               "send Content-Length");
    }

    if (tok < 0 || !http_methods[tok].allowed) {
        if (c->state == HTTP_RX_BODY)
            c->close_after = true; /* answer after draining the body */
        else
            return http_conn_reply(wsi, c, 405, false, "method not allowed");
    } else {
        c->method = http_methods[tok].name;
        c->head = http_methods[tok].token == WSI_TOKEN_HEAD_URI;
        if (http_hdr(wsi, http_methods[tok].token, c->path, sizeof(c->path)) < 0 ||
            http_query(wsi, c->query, sizeof(c->query)) < 0)
            return http_conn_reply(wsi, c, 414, true, "request URI too long");
        if (http_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, c->content_type, sizeof(c->content_type)) <
                0 ||
            http_hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, c->authorization,
                     sizeof(c->authorization)) < 0)
            return http_conn_reply(wsi, c, 431, true, "request header too large");
    }

    if (c->state == HTTP_RX_BODY) {
        if (http_expects_continue(wsi)) {
            /* curl asks for large bodies (> 1 MiB) and waits a second for
             * the go-ahead; lws does not answer it, so we do. A refusal
             * goes out before the body is sent at all. */
            if (c->too_big)
                return http_conn_reply(wsi, c, 413, true, "request body exceeds %zu bytes",
                                       s->max_body);
            if (c->method[0] == '\0')
                return http_conn_reply(wsi, c, 405, true, "method not allowed");
            if (http_send_continue(wsi) < 0)
                return -1;
        }
        if (!c->too_big)
            kx_buf_init(&c->body, s->max_body);
        return 0;
    }
    return http_conn_dispatch(wsi, s, c);
}

/* kx-http thread: LWS_CALLBACK_HTTP_BODY_COMPLETION. */
static int http_on_body_done(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    if (c->state != HTTP_RX_BODY)
        return 0; /* already answered (e.g. refused early) */
    if (c->too_big)
        return http_conn_reply(wsi, c, 413, true, "request body exceeds %zu bytes", s->max_body);
    if (c->method[0] == '\0')
        return http_conn_reply(wsi, c, 405, true, "method not allowed");
    return http_conn_dispatch(wsi, s, c);
}

/* kx-http thread: the response is out; returns what the lws callback
 * returns (-1 closes the connection). */
static int http_on_tx_done(struct lws *wsi, struct http_conn *c)
{
    bool close_after = c->close_after;

    http_conn_release(c);
    c->state = HTTP_IDLE;
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* kx-http thread: LWS_CALLBACK_HTTP_WRITEABLE. One lws_write per call, as
 * lws wants. A body up to HTTP_CHUNK goes out with the headers in a single
 * write (one segment for the usual small JSON answer); larger bodies
 * follow the headers in HTTP_CHUNK pieces, one per callback. */
static int http_on_writeable(struct lws *wsi, struct http_conn *c)
{
    if (c->state == HTTP_TX_HEADERS) {
        unsigned char buf[LWS_PRE + HTTP_HDR_BUF + HTTP_CHUNK];
        unsigned char *start = buf + LWS_PRE, *p = start, *end = start + HTTP_HDR_BUF - 1;
        bool with_body = !c->head && c->resp.len > 0 && c->resp.len <= HTTP_CHUNK;

        if (lws_add_http_common_headers(wsi, (unsigned int)c->status, c->resp_type,
                                        (lws_filepos_t)c->resp.len, &p, end))
            return -1;
        if (c->close_after &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                         5, &p, end))
            return -1;
        if (!with_body) {
            if (lws_finalize_write_http_header(wsi, start, &p, end))
                return -1;
            if (c->head || c->resp.len == 0)
                return http_on_tx_done(wsi, c);
            c->state = HTTP_TX_BODY;
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (lws_finalize_http_header(wsi, &p, end))
            return -1;
        memcpy(p, c->resp.data, c->resp.len);
        p += c->resp.len;
        if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < (int)(p - start))
            return -1;
        return http_on_tx_done(wsi, c);
    }
    if (c->state == HTTP_TX_BODY) {
        unsigned char buf[LWS_PRE + HTTP_CHUNK];
        size_t n = c->resp.len - c->resp_off;
        bool last = n <= HTTP_CHUNK;

        if (!last)
            n = HTTP_CHUNK;
        memcpy(buf + LWS_PRE, c->resp.data + c->resp_off, n);
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
        c->resp_off += n;
        if (last)
            return http_on_tx_done(wsi, c);
        lws_callback_on_writable(wsi);
        return 0;
    }
    return 0;
}

/* Does the first line look like "METHOD target HTTP/x"? */
static bool http_looks_like_request(const char *in, size_t len)
{
    size_t i = 0, sp = 0;

    while (i < len && in[i] >= 'A' && in[i] <= 'Z')
        i++;
    if (i == 0 || i >= len || in[i] != ' ')
        return false;
    for (; i < len && in[i] != '\r' && in[i] != '\n'; i++)
        sp += in[i] == ' ';
    return sp == 2 && i >= 8 && memcmp(in + i - 8, "HTTP/1.", 7) == 0;
}

/*
 * kx-http thread: a connection lws's HTTP parser gave up on (a method it
 * does not know, CONNECT, garbage) arrives as a raw socket carrying the
 * bytes it read (LWS_SERVER_OPTION_FALLBACK_TO_RAW). It gets one JSON
 * answer (405 for a well-formed request line, else 400) and is closed.
 */
static int http_on_raw(struct lws *wsi, enum lws_callback_reasons reason, struct http_conn *c,
                       const char *in, size_t len)
{
    if (reason == LWS_CALLBACK_RAW_RX) {
        if (c == NULL)
            return -1;
        if (c->state != HTTP_RAW_REPLY) {
            c->state = HTTP_RAW_REPLY;
            c->status = http_looks_like_request(in, len) ? 405 : 400;
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    if (reason == LWS_CALLBACK_RAW_WRITEABLE && c != NULL && c->state == HTTP_RAW_REPLY) {
        unsigned char buf[LWS_PRE + 512];
        const char *body = c->status == 405 ? "{\"error\":\"method not allowed\"}"
                                            : "{\"error\":\"malformed HTTP request\"}";
        int n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                         "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                         "content-length: %zu\r\nconnection: close\r\n\r\n%s",
                         c->status, c->status == 405 ? "Method Not Allowed" : "Bad Request",
                         strlen(body), body);

        c->state = HTTP_IDLE;
        lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_RAW);
        return -1;
    }
    return 0;
}

/* kx-http thread: the one protocol callback. */
static int http_on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct http_conn *c = user;
    struct kx_http_server *s;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        s = lws_context_user(lws_get_context(wsi));
        return http_on_request(wsi, s, c) < 0 ? -1 : 0;

    case LWS_CALLBACK_HTTP_BODY:
        if (c == NULL || c->state != HTTP_RX_BODY || c->too_big || c->method[0] == '\0')
            return 0; /* drained */
        if (kx_buf_append(&c->body, in, len) < 0) {
            c->too_big = true;
            kx_buf_free(&c->body);
            memset(&c->body, 0, sizeof(c->body));
        }
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        s = lws_context_user(lws_get_context(wsi));
        return http_on_body_done(wsi, s, c) < 0 ? -1 : 0;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (c == NULL)
            return 0;
        return http_on_writeable(wsi, c);

    case LWS_CALLBACK_RAW_ADOPT:
        return 0;
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
        return http_on_raw(wsi, reason, c, in, len);

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_RAW_CLOSE:
        if (c != NULL) {
            http_conn_release(c);
            c->state = HTTP_IDLE;
        }
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* kx-http thread: the service loop. */
static void *http_thread_main(void *arg)
{
    struct kx_http_server *s = arg;

    while (!atomic_load(&s->stopping)) {
        if (lws_service(s->lws, 0) < 0)
            break;
    }
    return NULL;
}

/*
 * Binds (and closes) a socket on addr:port as lws is going to, so that a
 * busy port or a foreign address gives the exact reason. family gets the
 * address family. Calling thread.
 */
static int http_probe(const char *addr, int port, int *family, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[16];
    int fd = -1, one = 1, zero = 0, rc;

    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(addr, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: not a numeric IPv4/IPv6 address (%s)", addr,
                 port, gai_strerror(rc));
        return -EINVAL;
    }
    *family = ai->ai_family;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* lws sets SO_REUSEADDR too, so TIME_WAIT leftovers are no conflict. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    if (ai->ai_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
        goto fail;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        goto fail;
    close(fd);
    freeaddrinfo(ai);
    return 0;
fail:
    rc = errno;
    snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(rc));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -rc;
}

struct kx_http_server *kx_http_start(const char *addr, int port, size_t max_body,
                                     kx_http_handler handler, void *ctx, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    struct kx_http_server *s;
    const char *bind_addr;
    int family = AF_INET, rc;

    if (addr == NULL || addr[0] == '\0')
        addr = "0.0.0.0";
    if (port < 0 || port > 65535 || handler == NULL || max_body == 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: invalid arguments", addr, port);
        errno = EINVAL;
        return NULL;
    }
    rc = http_probe(addr, port, &family, err, errlen);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d: out of memory", addr, port);
        errno = ENOMEM;
        return NULL;
    }
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    s->max_body = max_body;
    s->handler = handler;
    s->ctx = ctx;
    atomic_init(&s->stopping, false);
    s->protocols[0] = (struct lws_protocols){
        .name = "kx-http",
        .callback = http_on_event,
        .per_session_data_size = sizeof(struct http_conn),
    };

    lws_set_log_level(LLL_ERR | LLL_WARN, http_on_lws_log);

    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.user = s;
    info.count_threads = 1;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 256;
    s->lws = lws_create_context(&info);
    if (s->lws == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d: cannot create the lws context", addr, port);
        free(s);
        errno = ENOMEM;
        return NULL;
    }

    /* iface NULL = all addresses of the enabled families. */
    bind_addr = strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0 ? NULL : s->addr;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "kx-http";
    info.port = port;
    info.iface = bind_addr;
    info.protocols = s->protocols;
    info.server_string = "klaxon";
    info.keepalive_timeout = HTTP_KEEPALIVE_S;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_FALLBACK_TO_RAW;
    if (family == AF_INET)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    s->vhost = lws_create_vhost(s->lws, &info);
    if (s->vhost == NULL || (s->port = lws_get_vhost_listen_port(s->vhost)) <= 0) {
        /* Lost a race for the port after the probe, or lws refused it. */
        if (http_probe(addr, port, &family, err, errlen) == 0)
            snprintf(err, errlen, "cannot listen on %s:%d: libwebsockets could not bind", addr,
                     port);
        lws_context_destroy(s->lws);
        free(s);
        errno = EADDRINUSE;
        return NULL;
    }

    rc = pthread_create(&s->thread, NULL, http_thread_main, s);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: cannot start thread: %s", addr, port,
                 strerror(rc));
        lws_context_destroy(s->lws);
        free(s);
        errno = rc;
        return NULL;
    }
    pthread_setname_np(s->thread, "kx-http");
    s->thread_started = true;
    kx_debug("http: listening on %s:%d", s->addr, s->port);
    return s;
}

int kx_http_port(const struct kx_http_server *s)
{
    return s ? s->port : -1;
}

void kx_http_stop(struct kx_http_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, true);
    if (s->thread_started) {
        /* The only lws call that is safe from another thread: wakes the
         * loop, which then sees the flag. */
        lws_cancel_service(s->lws);
        pthread_join(s->thread, NULL);
    }
    /* Closes every connection; their CLOSED_HTTP callbacks free buffers. */
    lws_context_destroy(s->lws);
    free(s);
}
