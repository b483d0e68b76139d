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
#include <time.h>
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
#define HTTP_HDR_NAME_MAX 64         /* an extra header's name */
#define HTTP_EXTRA_HDRS_MAX 1024     /* all extra headers of one answer: fits HTTP_HDR_BUF */
#define HTTP_REFUSAL_BODY_MAX 4096   /* a refused WebSocket handshake's body */
#define HTTP_DRAIN_EXTRA (16u << 20) /* oversize bodies up to max_body + this are drained */
#define HTTP_KEEPALIVE_S 60          /* idle keep-alive (Falco and curl reuse connections) */
#define HTTP_WORKERS_MAX 16          /* slow-handler threads */
#define HTTP_QUEUE_MAX 64            /* slow requests waiting; more get 503 */
#define HTTP_SLOW_TIMEOUT_S 60       /* a slow request not answered by then is closed */

enum http_conn_state {
    HTTP_IDLE,       /* waiting for (the next) request */
    HTTP_RX_BODY,    /* collecting or discarding the request body */
    HTTP_TX_HEADERS, /* response ready, headers not written yet */
    HTTP_TX_BODY,    /* headers written, body pending from resp_off */
    HTTP_RAW_REPLY,  /* not HTTP lws understands: one canned answer, then close */
    HTTP_WAIT,       /* a worker is answering (job_id) */
    HTTP_WS,         /* a WebSocket connection (ws_conn) */
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
    char cookie[HTTP_AUTH_MAX];
    char origin[HTTP_CTYPE_MAX];
    char host[HTTP_CTYPE_MAX];
    char accept[HTTP_CTYPE_MAX];
    uint64_t content_length; /* declared request body size */
    bool too_big;            /* body over max_body: being discarded */
    bool head;               /* HEAD: headers only */
    bool close_after;        /* send "connection: close" and close */
    struct kx_buf body;      /* owned: request body, max = max_body */
    int status;              /* response status */
    const char *resp_type;   /* static string */
    struct kx_buf resp;      /* owned: response body */
    struct kx_buf resp_hdrs; /* owned: extra response header lines */
    size_t resp_off;         /* bytes of resp written so far */
    uint64_t job_id;         /* HTTP_WAIT: the job answering this request */
    void *ws_conn;           /* handshake accepted / HTTP_WS: the handler's state */
};

/* A request handed to the workers: owned copies of what the handler reads,
 * and the response they fill. */
struct http_job {
    uint64_t id;            /* matches http_conn.job_id while the client waits */
    struct kx_http_req req; /* strings below */
    char *strs;             /* owned: one block holding every req string */
    struct kx_http_resp resp;
    struct http_job *next;
};

/* Connections waiting for a worker's answer: job id -> wsi (kx-http thread). */
struct http_waiter {
    uint64_t id; /* 0 = free slot */
    struct lws *wsi;
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
    kx_http_handler slow_handler;
    const struct kx_ws_ops *ws;
    void *ctx;     /* borrowed handler context */
    char addr[64]; /* as asked for, for messages */
    /* Slow requests. jobs_lock guards queue, nqueued and done. */
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_cond;
    struct http_job *queue, *queue_tail; /* waiting for a worker (jobs_lock) */
    int nqueued;                         /* (jobs_lock) */
    struct http_job *done;               /* answered, for the loop (jobs_lock) */
    pthread_t workers[HTTP_WORKERS_MAX];
    int nworkers;
    uint64_t next_job_id;                                          /* kx-http thread */
    struct http_waiter waiters[HTTP_QUEUE_MAX + HTTP_WORKERS_MAX]; /* kx-http thread */
    /* WebSocket wake-ups. */
    atomic_bool wake_pending;         /* set by kx_http_wake, cleared by the loop */
    lws_sorted_usec_list_t flush_sul; /* kx-http thread: a deferred ws->wake */
    bool flush_scheduled;             /* kx-http thread */
    int64_t last_flush;               /* kx-http thread: monotonic ns of the last ws->wake */
    struct http_conn scratch;         /* kx-http thread: a WebSocket handshake's headers */
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
    kx_buf_free(&c->resp_hdrs);
    memset(&c->resp_hdrs, 0, sizeof(c->resp_hdrs));
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

/* kx-http thread: the request as the handler sees it. */
static struct kx_http_req http_conn_req(struct lws *wsi, struct http_conn *c)
{
    return (struct kx_http_req){
        .method = c->method,
        .path = c->path,
        .query = c->query,
        .content_type = c->content_type,
        .authorization = c->authorization,
        .body = c->body.len > 0 ? c->body.data : "",
        .body_len = c->body.len,
        .peer = c->peer,
        .cookie = c->cookie,
        .origin = c->origin,
        .host = c->host,
        .accept = c->accept,
        .tls = lws_is_ssl(wsi) != 0,
    };
}

/* kx-http thread: a handler's (or worker's) response becomes the one the
 * connection sends next. Takes ownership of resp's buffers. */
static void http_conn_take_resp(struct lws *wsi, struct http_conn *c, struct kx_http_resp *resp)
{
    kx_buf_free(&c->resp);
    c->resp = resp->body;
    kx_buf_free(&c->resp_hdrs);
    c->resp_hdrs = resp->headers;
    c->resp_off = 0;
    /* Interim (1xx) or made-up codes cannot be a final answer. */
    c->status = resp->status >= 200 && resp->status <= 599 ? resp->status : 500;
    if (c->status == 204 || c->status == 304)
        kx_buf_free(&c->resp); /* these never carry a body */
    c->resp_type = resp->content_type ? resp->content_type : "application/json";
    c->state = HTTP_TX_HEADERS;
    lws_callback_on_writable(wsi);
}

static void http_job_free(struct http_job *j)
{
    if (!j)
        return;
    free(j->strs);
    kx_buf_free(&j->resp.body);
    kx_buf_free(&j->resp.headers);
    free(j);
}

/* kx-http thread: copies req for a worker. NULL on OOM. */
static struct http_job *http_job_new(const struct kx_http_req *req)
{
    const char *src[] = {req->path,   req->query,  req->content_type, req->authorization, req->peer,
                         req->cookie, req->origin, req->host,         req->accept};
    const char **dst[KX_ARRAY_SIZE(src)];
    struct http_job *j = calloc(1, sizeof(*j));
    size_t total = req->body_len + 1, off = 0;
    char *p;

    if (!j)
        return NULL;
    j->req = *req;
    dst[0] = &j->req.path, dst[1] = &j->req.query, dst[2] = &j->req.content_type;
    dst[3] = &j->req.authorization, dst[4] = &j->req.peer, dst[5] = &j->req.cookie;
    dst[6] = &j->req.origin, dst[7] = &j->req.host, dst[8] = &j->req.accept;
    for (size_t i = 0; i < KX_ARRAY_SIZE(src); i++)
        total += strlen(src[i]) + 1;
    j->strs = p = malloc(total);
    if (!p) {
        free(j);
        return NULL;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(src); i++) {
        size_t n = strlen(src[i]) + 1;
        memcpy(p + off, src[i], n);
        *dst[i] = p + off;
        off += n;
    }
    memcpy(p + off, req->body, req->body_len);
    p[off + req->body_len] = '\0';
    j->req.body = p + off;
    j->resp.status = 200;
    j->resp.content_type = "application/json";
    kx_buf_init(&j->resp.body, HTTP_RESP_MAX);
    return j;
}

/* kx-http thread: hands the request to the workers; the connection waits
 * (HTTP_WAIT) until http_on_wake brings the answer. 0 or -1 (no room). */
static int http_conn_defer(struct lws *wsi, struct kx_http_server *s, struct http_conn *c,
                           const struct kx_http_req *req, struct kx_buf *headers)
{
    struct http_waiter *w = NULL;
    struct http_job *j;

    for (size_t i = 0; i < KX_ARRAY_SIZE(s->waiters) && !w; i++)
        if (s->waiters[i].id == 0)
            w = &s->waiters[i];
    pthread_mutex_lock(&s->jobs_lock);
    if (!w || s->nqueued >= HTTP_QUEUE_MAX || !(j = http_job_new(req))) {
        pthread_mutex_unlock(&s->jobs_lock);
        return -1;
    }
    j->id = ++s->next_job_id;
    /* Headers the loop's handler set already (CORS) go out with the answer. */
    j->resp.headers = *headers;
    memset(headers, 0, sizeof(*headers));
    if (s->queue_tail)
        s->queue_tail->next = j;
    else
        s->queue = j;
    s->queue_tail = j;
    s->nqueued++;
    pthread_cond_signal(&s->jobs_cond);
    pthread_mutex_unlock(&s->jobs_lock);

    w->id = j->id;
    w->wsi = wsi;
    c->job_id = j->id;
    c->state = HTTP_WAIT;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_SLOW_TIMEOUT_S);
    return 0;
}

/* kx-http thread: forgets the connection's waiting job (it closed). */
static void http_conn_unwait(struct kx_http_server *s, struct http_conn *c)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(s->waiters); i++)
        if (s->waiters[i].id == c->job_id)
            s->waiters[i] = (struct http_waiter){0};
    c->job_id = 0;
}

/* kx-http-w threads: answer slow requests one at a time. */
static void *http_worker_main(void *arg)
{
    struct kx_http_server *s = arg;

    for (;;) {
        struct http_job *j;

        pthread_mutex_lock(&s->jobs_lock);
        while (!s->queue && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->jobs_cond, &s->jobs_lock);
        if (atomic_load(&s->stopping)) {
            pthread_mutex_unlock(&s->jobs_lock);
            return NULL;
        }
        j = s->queue;
        s->queue = j->next;
        if (!s->queue)
            s->queue_tail = NULL;
        s->nqueued--;
        pthread_mutex_unlock(&s->jobs_lock);

        j->next = NULL;
        s->slow_handler(s->ctx, &j->req, &j->resp);

        pthread_mutex_lock(&s->jobs_lock);
        j->next = s->done;
        s->done = j;
        pthread_mutex_unlock(&s->jobs_lock);
        lws_cancel_service(s->lws);
    }
}

/* kx-http thread: the request is complete; run the handler and queue its
 * response (or hand it to a worker). */
static int http_conn_dispatch(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    struct kx_http_resp resp = {.status = 200, .content_type = "application/json"};
    struct kx_http_req req = http_conn_req(wsi, c);

    kx_buf_init(&resp.body, HTTP_RESP_MAX);
    s->handler(s->ctx, &req, &resp);
    if (resp.status == KX_HTTP_SLOW && s->slow_handler) {
        int rc = http_conn_defer(wsi, s, c, &req, &resp.headers);

        kx_buf_free(&resp.body);
        kx_buf_free(&c->body);
        memset(&c->body, 0, sizeof(c->body));
        if (rc == 0)
            return 0;
        /* Refused: the 503 still carries the loop's headers (CORS). */
        kx_buf_free(&c->resp_hdrs);
        c->resp_hdrs = resp.headers;
        return http_conn_reply(wsi, c, 503, false, "too many queries in progress; retry");
    }

    /* The request body is no longer needed; the handler's strings die here. */
    kx_buf_free(&c->body);
    memset(&c->body, 0, sizeof(c->body));
    http_conn_take_resp(wsi, c, &resp);
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

/* kx-http thread: copies the request line and the headers handlers read.
 * 0, -414 (URI too long) or -431 (a header too large). */
static int http_conn_read_headers(struct lws *wsi, struct http_conn *c,
                                  enum lws_token_indexes method_tok)
{
    if (http_hdr(wsi, method_tok, c->path, sizeof(c->path)) < 0 ||
        http_query(wsi, c->query, sizeof(c->query)) < 0)
        return -414;
    if (http_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, c->content_type, sizeof(c->content_type)) < 0 ||
        http_hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, c->authorization, sizeof(c->authorization)) <
            0 ||
        http_hdr(wsi, WSI_TOKEN_HTTP_COOKIE, c->cookie, sizeof(c->cookie)) < 0 ||
        http_hdr(wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin)) < 0 ||
        http_hdr(wsi, WSI_TOKEN_HOST, c->host, sizeof(c->host)) < 0 ||
        http_hdr(wsi, WSI_TOKEN_HTTP_ACCEPT, c->accept, sizeof(c->accept)) < 0)
        return -431;
    return 0;
}

/* kx-http thread: LWS_CALLBACK_HTTP, the headers of a new request. */
static int http_on_request(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    char num[32];
    size_t i;
    int tok = -1, rc;

    http_conn_release(c);
    c->state = HTTP_IDLE;
    c->method = "";
    c->path[0] = c->query[0] = c->content_type[0] = c->authorization[0] = '\0';
    c->cookie[0] = c->origin[0] = c->host[0] = c->accept[0] = '\0';
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
        rc = http_conn_read_headers(wsi, c, http_methods[tok].token);
        if (rc == -414)
            return http_conn_reply(wsi, c, 414, true, "request URI too long");
        if (rc < 0)
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

/* kx-http thread: the handler's "name: value\r\n" lines into the header
 * block (lws wants the name with its colon). */
static int http_add_extra_headers(struct lws *wsi, const struct kx_buf *h, unsigned char **p,
                                  unsigned char *end)
{
    const char *line = h->data, *stop = h->data + h->len;

    while (h->len > 0 && line < stop) {
        const char *eol = memchr(line, '\r', (size_t)(stop - line));
        const char *colon = memchr(line, ':', (size_t)(stop - line));
        char name[HTTP_HDR_NAME_MAX + 2];
        size_t nlen;

        if (!eol || !colon || colon > eol || (size_t)(colon - line) + 2 > sizeof(name))
            return -1;
        nlen = (size_t)(colon - line) + 1;
        memcpy(name, line, nlen);
        name[nlen] = '\0';
        colon += 2; /* ": " */
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)colon, (int)(eol - colon), p, end))
            return -1;
        line = eol + 2;
    }
    return 0;
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
        if (http_add_extra_headers(wsi, &c->resp_hdrs, &p, end) < 0)
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

/*
 * kx-http thread: LWS_CALLBACK_HTTP_CONFIRM_UPGRADE. The handler decides on
 * the handshake like on any request; a refusal is written here as a whole
 * HTTP answer (lws then completes the transaction). Returns what the lws
 * callback returns: 0 go on, 1 refused and answered, -1 hang up.
 */
static int http_on_upgrade(struct lws *wsi, struct kx_http_server *s, struct http_conn *c,
                           const char *proto)
{
    struct kx_http_resp resp = {.status = 200, .content_type = "application/json"};
    struct kx_http_req req;
    unsigned char buf[LWS_PRE + HTTP_HDR_BUF + HTTP_REFUSAL_BODY_MAX];
    int n, rc;

    /* lws has not given the connection its session data yet here: the
     * handshake's headers go to a scratch copy. */
    (void)c;
    c = &s->scratch;
    http_conn_release(c);
    c->peer[0] = '\0';
    c->method = "GET";
    c->path[0] = c->query[0] = c->content_type[0] = c->authorization[0] = '\0';
    c->cookie[0] = c->origin[0] = c->host[0] = c->accept[0] = '\0';
    if (c->peer[0] == '\0' && lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)) == NULL)
        snprintf(c->peer, sizeof(c->peer), "?");
    rc = http_conn_read_headers(wsi, c, WSI_TOKEN_GET_URI);
    req = http_conn_req(wsi, c);
    req.upgrade = true;
    kx_buf_init(&resp.body, HTTP_REFUSAL_BODY_MAX);
    if (rc < 0) {
        resp.status = -rc;
        kx_buf_printf(&resp.body, "{\"error\":\"request header too large\"}");
    } else if (!s->ws || proto == NULL || strcmp(proto, "websocket") != 0) {
        resp.status = 400;
        kx_buf_printf(&resp.body, "{\"error\":\"only WebSocket upgrades are supported\"}");
    } else {
        s->handler(s->ctx, &req, &resp);
        if (resp.status == 200 && resp.ws_conn == NULL) {
            resp.status = 404;
            kx_buf_reset(&resp.body);
            kx_buf_printf(&resp.body, "{\"error\":\"no WebSocket at %s\"}", c->path);
        }
    }
    if (resp.status == 200) {
        /* Kept with the wsi itself, whatever lws does with the session
         * data across the upgrade. */
        lws_set_opaque_user_data(wsi, resp.ws_conn);
        kx_buf_free(&resp.body);
        kx_buf_free(&resp.headers);
        return 0;
    }
    if (resp.status < 400 || resp.status > 599)
        resp.status = 500;
    if (!resp.content_type)
        resp.content_type = "application/json";
    n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                 "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                 "connection: close\r\n%.*s\r\n%.*s",
                 resp.status, kx_http_status_phrase(resp.status), resp.content_type, resp.body.len,
                 (int)resp.headers.len, resp.headers.len ? resp.headers.data : "",
                 (int)resp.body.len, resp.body.len ? resp.body.data : "");
    kx_buf_free(&resp.body);
    kx_buf_free(&resp.headers);
    if (n < 0 || (size_t)n >= sizeof(buf) - LWS_PRE)
        return -1;
    if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL) < n)
        return -1;
    return 1;
}

/* kx-http thread: a frame (or part of one) from a WebSocket client. */
static int http_on_ws_rx(struct lws *wsi, struct kx_http_server *s, struct http_conn *c,
                         const void *in, size_t len)
{
    if (c == NULL || c->ws_conn == NULL)
        return -1;
    if (c->body.max == 0)
        kx_buf_init(&c->body, KX_WS_RX_MAX);
    if (kx_buf_append(&c->body, in, len) < 0) {
        static const char why[] = "message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof(why) - 1);
        return -1;
    }
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        s->ws->message(s->ctx, c->ws_conn, c->body.len ? c->body.data : "", c->body.len);
        kx_buf_reset(&c->body);
        lws_callback_on_writable(wsi); /* for the answer it may have queued */
    }
    return 0;
}

/* kx-http thread: a WebSocket client can take data. One lws_write per
 * callback; another callback is asked for while there may be more. */
static int http_on_ws_writeable(struct lws *wsi, struct kx_http_server *s, struct http_conn *c)
{
    static const unsigned char pre[LWS_PRE];
    size_t n;
    int rc;

    if (c == NULL || c->ws_conn == NULL)
        return 0;
    if (c->resp.max == 0)
        kx_buf_init(&c->resp, LWS_PRE + KX_WS_TX_MAX);
    kx_buf_reset(&c->resp);
    if (kx_buf_append(&c->resp, pre, LWS_PRE) < 0)
        return -1;
    rc = s->ws->writeable(s->ctx, c->ws_conn, &c->resp);
    n = c->resp.len - LWS_PRE;
    if (rc < 0) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)c->resp.data + LWS_PRE, n > 123 ? 123 : n);
        return -1;
    }
    if (rc == 0)
        return 0;
    if (lws_write(wsi, (unsigned char *)c->resp.data + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n)
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* kx-http thread: the deferred ws->wake. */
static void http_on_flush_timer(lws_sorted_usec_list_t *sul)
{
    struct kx_http_server *s = lws_container_of(sul, struct kx_http_server, flush_sul);

    s->flush_scheduled = false;
    s->last_flush = kx_monotonic_ns();
    atomic_store(&s->wake_pending, false);
    s->ws->wake(s->ctx);
}

/* kx-http thread: LWS_CALLBACK_EVENT_WAIT_CANCELLED. Workers' answers go
 * to their connections; a kx_http_wake() becomes one ws->wake, at most
 * every KX_WS_FLUSH_US so that events go out in batches. */
static void http_on_wake(struct kx_http_server *s)
{
    struct http_job *done;

    pthread_mutex_lock(&s->jobs_lock);
    done = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->jobs_lock);
    while (done) {
        struct http_job *j = done;

        done = j->next;
        for (size_t i = 0; i < KX_ARRAY_SIZE(s->waiters); i++) {
            struct http_waiter *w = &s->waiters[i];
            struct http_conn *c;

            if (w->id != j->id)
                continue;
            c = lws_wsi_user(w->wsi);
            if (c && c->state == HTTP_WAIT && c->job_id == j->id) {
                lws_set_timeout(w->wsi, NO_PENDING_TIMEOUT, 0);
                c->job_id = 0;
                http_conn_take_resp(w->wsi, c, &j->resp);
                memset(&j->resp.body, 0, sizeof(j->resp.body));
                memset(&j->resp.headers, 0, sizeof(j->resp.headers));
            }
            *w = (struct http_waiter){0};
        }
        http_job_free(j);
    }

    /* A timer already due to call ws->wake covers this wake-up too. */
    if (s->ws && !s->flush_scheduled && atomic_exchange(&s->wake_pending, false)) {
        int64_t now = kx_monotonic_ns(), due = s->last_flush + (int64_t)KX_WS_FLUSH_US * 1000;

        if (now >= due) {
            s->last_flush = now;
            s->ws->wake(s->ctx);
        } else if (!s->flush_scheduled) {
            s->flush_scheduled = true;
            lws_sul_schedule(s->lws, 0, &s->flush_sul, http_on_flush_timer,
                             (lws_usec_t)((due - now) / 1000));
        }
    }
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

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        s = lws_context_user(lws_get_context(wsi));
        return http_on_upgrade(wsi, s, c, in);

    case LWS_CALLBACK_ESTABLISHED:
        if (c == NULL || lws_get_opaque_user_data(wsi) == NULL)
            return -1;
        http_conn_release(c);
        c->ws_conn = lws_get_opaque_user_data(wsi);
        c->state = HTTP_WS;
        s = lws_context_user(lws_get_context(wsi));
        if (s->ws->open)
            s->ws->open(s->ctx, c->ws_conn, (struct kx_ws *)wsi);
        lws_callback_on_writable(wsi); /* the handler may have a greeting */
        return 0;

    case LWS_CALLBACK_RECEIVE:
        s = lws_context_user(lws_get_context(wsi));
        return http_on_ws_rx(wsi, s, c, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        s = lws_context_user(lws_get_context(wsi));
        return http_on_ws_writeable(wsi, s, c);

    case LWS_CALLBACK_CLOSED:
        s = lws_context_user(lws_get_context(wsi));
        if (c != NULL && c->ws_conn != NULL) {
            s->ws->close(s->ctx, c->ws_conn);
            c->ws_conn = NULL;
            lws_set_opaque_user_data(wsi, NULL);
        }
        if (c != NULL)
            http_conn_release(c);
        return 0;

    case LWS_CALLBACK_WSI_DESTROY:
        /* An accepted handshake that never became a WebSocket. */
        if (lws_get_opaque_user_data(wsi) != NULL) {
            s = lws_context_user(lws_get_context(wsi));
            s->ws->close(s->ctx, lws_get_opaque_user_data(wsi));
            lws_set_opaque_user_data(wsi, NULL);
        }
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        s = lws_context_user(lws_get_context(wsi));
        http_on_wake(s);
        return 0;

    case LWS_CALLBACK_RAW_ADOPT:
        return 0;
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
        return http_on_raw(wsi, reason, c, in, len);

    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_RAW_CLOSE:
        s = lws_context_user(lws_get_context(wsi));
        if (c != NULL && c->state == HTTP_WAIT)
            http_conn_unwait(s, c);
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
    struct kx_http_opts o = {
        .addr = addr, .port = port, .max_body = max_body, .handler = handler, .ctx = ctx};

    return kx_http_start_opts(&o, err, errlen);
}

/* Checks that a TLS file can be read, for a precise message. */
static int http_tls_file_ok(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");

    if (!f) {
        snprintf(err, errlen, "cannot read TLS %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

struct kx_http_server *kx_http_start_opts(const struct kx_http_opts *o, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    struct kx_http_server *s;
    const char *bind_addr, *addr = o->addr;
    int family = AF_INET, rc, port = o->port;
    size_t max_body = o->max_body;
    bool tls = o->tls_cert && *o->tls_cert;

    if (addr == NULL || addr[0] == '\0')
        addr = "0.0.0.0";
    if (port < 0 || port > 65535 || o->handler == NULL || max_body == 0 || o->workers < 0 ||
        o->workers > HTTP_WORKERS_MAX ||
        (o->ws && (!o->ws->message || !o->ws->writeable || !o->ws->close || !o->ws->wake))) {
        snprintf(err, errlen, "cannot listen on %s:%d: invalid arguments", addr, port);
        errno = EINVAL;
        return NULL;
    }
    if (tls != (o->tls_key && *o->tls_key)) {
        snprintf(err, errlen,
                 "cannot listen on %s:%d: a TLS certificate needs its key and "
                 "a key its certificate",
                 addr, port);
        errno = EINVAL;
        return NULL;
    }
    if (tls && (http_tls_file_ok("certificate", o->tls_cert, err, errlen) < 0 ||
                http_tls_file_ok("key", o->tls_key, err, errlen) < 0)) {
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
    s->handler = o->handler;
    s->slow_handler = o->slow_handler;
    s->ws = o->ws;
    s->ctx = o->ctx;
    atomic_init(&s->stopping, false);
    atomic_init(&s->wake_pending, false);
    pthread_mutex_init(&s->jobs_lock, NULL);
    pthread_cond_init(&s->jobs_cond, NULL);
    s->protocols[0] = (struct lws_protocols){
        .name = "kx-http",
        .callback = http_on_event,
        .per_session_data_size = sizeof(struct http_conn),
    };

    /* KX_LWS_DEBUG=1 shows lws's own notices and info, for debugging. */
    lws_set_log_level(getenv("KX_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
                                             : LLL_ERR | LLL_WARN,
                      http_on_lws_log);

    memset(&info, 0, sizeof(info));
    info.options =
        LWS_SERVER_OPTION_EXPLICIT_VHOSTS | (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
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
    if (tls) {
        /* lws looks for this flag on the vhost too before it uses TLS. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        /* HTTP/1.1 only: the writer here (raw 100-continue, canned
         * answers, WebSocket upgrades) is HTTP/1's. */
        info.alpn = "http/1.1";
        info.ssl_cert_filepath = o->tls_cert;
        info.ssl_private_key_filepath = o->tls_key;
    }
    s->vhost = lws_create_vhost(s->lws, &info);
    if (s->vhost == NULL || (s->port = lws_get_vhost_listen_port(s->vhost)) <= 0) {
        /* Lost a race for the port after the probe, or lws refused it. */
        if (http_probe(addr, port, &family, err, errlen) == 0)
            snprintf(err, errlen, "cannot listen on %s:%d: libwebsockets could not %s", addr, port,
                     tls ? "load the TLS certificate and key, or bind" : "bind");
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
    for (int i = 0; o->slow_handler && i < (o->workers ? o->workers : 2); i++) {
        if (pthread_create(&s->workers[i], NULL, http_worker_main, s) != 0) {
            snprintf(err, errlen, "cannot listen on %s:%d: cannot start a worker thread", addr,
                     port);
            kx_http_stop(s);
            errno = EAGAIN;
            return NULL;
        }
        pthread_setname_np(s->workers[i], "kx-http-w");
        s->nworkers++;
    }
    kx_debug("http: listening on %s:%d", s->addr, s->port);
    return s;
}

int kx_http_resp_header(struct kx_http_resp *r, const char *name, const char *fmt, ...)
{
    char val[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(val) || strpbrk(val, "\r\n") || strpbrk(name, ":\r\n ") ||
        strlen(name) > HTTP_HDR_NAME_MAX)
        return -E2BIG;
    if (r->headers.max == 0)
        kx_buf_init(&r->headers, HTTP_EXTRA_HDRS_MAX);
    return kx_buf_printf(&r->headers, "%s: %s\r\n", name, val) < 0 ? -E2BIG : 0;
}

void kx_http_wake(struct kx_http_server *s)
{
    if (s && !atomic_exchange(&s->wake_pending, true))
        lws_cancel_service(s->lws);
}

void kx_ws_kill(struct kx_ws *ws)
{
    lws_set_timeout((struct lws *)ws, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void kx_http_ws_writeable_all(struct kx_http_server *s)
{
    lws_callback_on_writable_all_protocol(s->lws, &s->protocols[0]);
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
    pthread_mutex_lock(&s->jobs_lock);
    pthread_cond_broadcast(&s->jobs_cond);
    pthread_mutex_unlock(&s->jobs_lock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    /* Closes every connection; their CLOSED_HTTP callbacks free buffers. */
    lws_context_destroy(s->lws);
    http_conn_release(&s->scratch);
    while (s->queue) {
        struct http_job *j = s->queue;
        s->queue = j->next;
        http_job_free(j);
    }
    while (s->done) {
        struct http_job *j = s->done;
        s->done = j->next;
        http_job_free(j);
    }
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_cond_destroy(&s->jobs_cond);
    free(s);
}
