/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http.c - lib/http.c against real clients on loopback: libcurl for
 * HTTP(S) (methods, query, headers, exact bodies with NULs and 900 KB,
 * keep-alive, 413, 405, large responses, port conflicts, repeated
 * start/stop, extra response headers, slow requests answered by worker
 * threads and the 503 beyond their queue) and a minimal RFC 6455 client
 * written here over a plain or TLS socket for WebSocket (handshake
 * refusal, echo, fragments, 1009/1008 closes, close-once, wake-ups).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_BODY (1024 * 1024)

/* What the handler saw last; written on kx-http (or a worker), read by
 * the test thread. */
struct recorder {
    pthread_mutex_t lock;
    int calls;
    char method[16];
    char path[256];
    char query[256];
    char content_type[128];
    char authorization[128];
    char cookie[128];
    char origin[128];
    char host[128];
    char accept[128];
    char thread[16]; /* name of the thread the handler ran on */
    bool tls;
    bool upgrade;
    char *body; /* owned */
    size_t body_len;
};

/* The front handler's (kx-http) and the slow handler's (kx-http-w). */
static struct recorder rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
static struct recorder slow_rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A copy of a recorder taken under its lock, so that a failing assert
 * (which longjmps) never leaves the lock held. Body stays owned by seen. */
static struct recorder seen;

static void snapshot_of(struct recorder *r)
{
    free(seen.body);
    pthread_mutex_lock(&r->lock);
    seen = *r;
    seen.body = malloc(r->body_len + 1);
    if (r->body)
        memcpy(seen.body, r->body, r->body_len + 1);
    else
        seen.body[0] = '\0';
    pthread_mutex_unlock(&r->lock);
    memset(&seen.lock, 0, sizeof(seen.lock));
}

static void snapshot(void)
{
    snapshot_of(&rec);
}

/* Forgets what r saw (between tests). */
static void recorder_reset(struct recorder *r)
{
    pthread_mutex_lock(&r->lock);
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->calls = 0;
    pthread_mutex_unlock(&r->lock);
}

static int recorder_calls(struct recorder *r)
{
    int n;

    pthread_mutex_lock(&r->lock);
    n = r->calls;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Any thread: copies what the handler sees into r. */
static void record_req(struct recorder *r, const struct kx_http_req *req)
{
    pthread_mutex_lock(&r->lock);
    r->calls++;
    snprintf(r->method, sizeof(r->method), "%s", req->method);
    snprintf(r->path, sizeof(r->path), "%s", req->path);
    snprintf(r->query, sizeof(r->query), "%s", req->query);
    snprintf(r->content_type, sizeof(r->content_type), "%s", req->content_type);
    snprintf(r->authorization, sizeof(r->authorization), "%s", req->authorization);
    snprintf(r->cookie, sizeof(r->cookie), "%s", req->cookie);
    snprintf(r->origin, sizeof(r->origin), "%s", req->origin);
    snprintf(r->host, sizeof(r->host), "%s", req->host);
    snprintf(r->accept, sizeof(r->accept), "%s", req->accept);
    pthread_getname_np(pthread_self(), r->thread, sizeof(r->thread));
    r->tls = req->tls;
    r->upgrade = req->upgrade;
    free(r->body);
    r->body = malloc(req->body_len + 1);
    memcpy(r->body, req->body, req->body_len + 1);
    r->body_len = req->body_len;
    pthread_mutex_unlock(&r->lock);
}

/* kx_http_resp_header results of the last /hdr request (kx-http). */
static struct {
    pthread_mutex_t lock;
    int ok, crlf, lf, colon_name, space_name, too_long;
} hdr_rc = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Runs on kx-http. Routes:
 *   /echo          200, echoes the body (application/octet-stream)
 *   /big?n=N       200, N bytes of a known pattern
 *   /status/NNN    that status, {"status":NNN}
 *   /hdr[/NNN]     extra response headers (and refused ones), status NNN
 *   /hdr-longname  a header whose name is 200 characters
 *   /hdr-many      10 headers of 500 bytes each (5 KB in all)
 *   anything else  200 {"ok":true} */
static void record_handler(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    int *counter = ctx;

    record_req(&rec, req);
    if (counter)
        (*counter)++;

    if (strcmp(req->path, "/echo") == 0) {
        resp->content_type = "application/octet-stream";
        kx_buf_append(&resp->body, req->body, req->body_len);
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = strtoul(req->query + 2, NULL, 10);

        for (size_t i = 0; i < n; i++) {
            char ch = (char)('a' + i % 26);

            kx_buf_append(&resp->body, &ch, 1);
        }
        resp->content_type = "text/plain";
    } else if (strncmp(req->path, "/status/", 8) == 0) {
        resp->status = atoi(req->path + 8);
        kx_buf_printf(&resp->body, "{\"status\":%d}", resp->status);
    } else if (strncmp(req->path, "/hdr", 4) == 0 &&
               (req->path[4] == '\0' || req->path[4] == '/')) {
        char big[1100];
        int ok;

        memset(big, 'v', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        if (req->path[4] == '/')
            resp->status = atoi(req->path + 5);
        ok = kx_http_resp_header(resp, "x-klaxon-id", "%d-%s", 42, "abc");
        ok = ok ? ok : kx_http_resp_header(resp, "Cache-Control", "no-store");
        pthread_mutex_lock(&hdr_rc.lock);
        hdr_rc.ok = ok;
        hdr_rc.crlf = kx_http_resp_header(resp, "x-bad", "a\r\nx-injected: 1");
        hdr_rc.lf = kx_http_resp_header(resp, "x-bad-lf", "a\nx-injected-lf: 1");
        hdr_rc.colon_name = kx_http_resp_header(resp, "x-bad:name", "1");
        hdr_rc.space_name = kx_http_resp_header(resp, "x-bad name", "1");
        hdr_rc.too_long = kx_http_resp_header(resp, "x-too-long", "%s", big);
        pthread_mutex_unlock(&hdr_rc.lock);
        kx_buf_printf(&resp->body, "{\"hdr\":true}");
    } else if (strcmp(req->path, "/hdr-longname") == 0) {
        char name[201];

        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        pthread_mutex_lock(&hdr_rc.lock);
        hdr_rc.ok = kx_http_resp_header(resp, name, "1");
        pthread_mutex_unlock(&hdr_rc.lock);
        kx_buf_printf(&resp->body, "{\"ok\":true}");
    } else if (strcmp(req->path, "/hdr-many") == 0) {
        char val[501];
        int ok = 0;

        memset(val, 'm', sizeof(val) - 1);
        val[sizeof(val) - 1] = '\0';
        for (int i = 0; i < 10 && ok == 0; i++)
            ok = kx_http_resp_header(resp, "x-many", "%02d%s", i, val);
        pthread_mutex_lock(&hdr_rc.lock);
        hdr_rc.ok = ok;
        pthread_mutex_unlock(&hdr_rc.lock);
        kx_buf_printf(&resp->body, "{\"ok\":true}");
    } else {
        kx_buf_printf(&resp->body, "{\"ok\":true}");
    }
}

struct sink {
    char *data;
    size_t len;
};

static size_t sink_write(char *p, size_t sz, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t add = sz * n;

    s->data = realloc(s->data, s->len + add + 1);
    memcpy(s->data + s->len, p, add);
    s->len += add;
    s->data[s->len] = '\0';
    return add;
}

/* One request on handle h (reused by the caller for keep-alive), with
 * extra request header lines (NULL-terminated list, or NULL). */
static long request_hdrs(CURL *h, const char *method, const char *url, const char *ctype,
                         const void *body, size_t len, struct sink *out, const char *const *extra)
{
    struct curl_slist *hdrs = NULL;
    long status = 0;
    CURLcode rc;

    out->len = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "HEAD") != 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ||
                             strcmp(method, "HEAD") == 0
                         ? NULL
                         : method);
    if (ctype) {
        char line[160];

        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Authorization: Bearer t0ken");
    for (size_t i = 0; extra && extra[i]; i++)
        hdrs = curl_slist_append(hdrs, extra[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        print_message("curl: %s\n", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static long request(CURL *h, const char *method, const char *url, const char *ctype,
                    const void *body, size_t len, struct sink *out)
{
    return request_hdrs(h, method, url, ctype, body, len, out, NULL);
}

struct fixture {
    struct kx_http_server *srv;
    int calls;
    char base[64];
    CURL *h;
    struct sink out;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    f->srv = kx_http_start("127.0.0.1", 0, MAX_BODY, record_handler, &f->calls, err, sizeof(err));
    if (f->srv == NULL) {
        print_error("kx_http_start: %s\n", err);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", kx_http_port(f->srv));
    f->h = curl_easy_init();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    curl_easy_cleanup(f->h);
    kx_http_stop(f->srv);
    free(f->out.data);
    free(f);
    recorder_reset(&rec);
    recorder_reset(&slow_rec);
    free(seen.body);
    seen.body = NULL;
    return 0;
}

static char *url(struct fixture *f, const char *path)
{
    static char buf[512];

    snprintf(buf, sizeof(buf), "%s%s", f->base, path);
    return buf;
}

static void test_port_is_real(void **state)
{
    struct fixture *f = *state;

    assert_true(kx_http_port(f->srv) > 0);
    assert_int_equal(kx_http_port(NULL), -1);
}

static void test_get_with_query_and_headers(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(request(f->h, "GET", url(f, "/api/v1/x?a=1&b=2"), NULL, NULL, 0, &f->out),
                     200);
    assert_string_equal(f->out.data, "{\"ok\":true}");
    snapshot();
    assert_string_equal(seen.method, "GET");
    assert_string_equal(seen.path, "/api/v1/x");
    assert_string_equal(seen.query, "a=1&b=2");
    assert_string_equal(seen.authorization, "Bearer t0ken");
    assert_string_equal(seen.content_type, "");
    assert_int_equal(seen.body_len, 0);
    assert_string_equal(seen.body, "");

    assert_int_equal(request(f->h, "GET", url(f, "/plain"), NULL, NULL, 0, &f->out), 200);
    snapshot();
    assert_string_equal(seen.query, "");

    /* lws hands arguments over decoded; they come back re-encoded. */
    assert_int_equal(request(f->h, "GET", url(f, "/q?since=2026-11-22T10:01:02Z&r=a%26b+c&flag"),
                             NULL, NULL, 0, &f->out),
                     200);
    snapshot();
    assert_string_equal(seen.query, "since=2026-11-22T10:01:02Z&r=a%26b%20c&flag");
}

static void test_post_body_exact(void **state)
{
    struct fixture *f = *state;
    const char json[] = "{\"rule\":\"r\",\"priority\":\"Critical\"}";

    assert_int_equal(
        request(f->h, "POST", url(f, "/echo"), "application/json", json, strlen(json), &f->out),
        200);
    assert_int_equal(f->out.len, strlen(json));
    assert_memory_equal(f->out.data, json, strlen(json));
    snapshot();
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.content_type, "application/json");
    assert_int_equal(seen.body_len, strlen(json));
    assert_string_equal(seen.body, json); /* NUL-terminated */
}

static void test_post_body_with_nuls(void **state)
{
    struct fixture *f = *state;
    const char bin[] = {'a', 0, 'b', 0, 0, 'c', (char)0xff, 0};

    assert_int_equal(request(f->h, "POST", url(f, "/echo"), "application/octet-stream", bin,
                             sizeof(bin), &f->out),
                     200);
    assert_int_equal(f->out.len, sizeof(bin));
    assert_memory_equal(f->out.data, bin, sizeof(bin));
    snapshot();
    assert_int_equal(seen.body_len, sizeof(bin));
    assert_memory_equal(seen.body, bin, sizeof(bin));
    assert_int_equal(seen.body[sizeof(bin)], '\0');
}

static void test_post_900k(void **state)
{
    struct fixture *f = *state;
    size_t n = 900 * 1024;
    char *big = malloc(n);

    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7 + i / 251);
    assert_int_equal(request(f->h, "POST", url(f, "/echo"), NULL, big, n, &f->out), 200);
    assert_int_equal(f->out.len, n);
    assert_memory_equal(f->out.data, big, n);
    snapshot();
    assert_int_equal(seen.body_len, n);
    assert_memory_equal(seen.body, big, n);

    /* PUT with a body goes the same way. */
    assert_int_equal(request(f->h, "PUT", url(f, "/echo"), NULL, big, 1000, &f->out), 200);
    assert_int_equal(f->out.len, 1000);
    snapshot();
    assert_string_equal(seen.method, "PUT");
    free(big);
}

static void test_keepalive_one_connection(void **state)
{
    struct fixture *f = *state;
    long conns = -1, port1 = 0, port2 = 0;

    assert_int_equal(request(f->h, "POST", url(f, "/echo"), NULL, "x", 1, &f->out), 200);
    curl_easy_getinfo(f->h, CURLINFO_LOCAL_PORT, &port1);
    assert_int_equal(request(f->h, "GET", url(f, "/status/404"), NULL, NULL, 0, &f->out), 404);
    /* A made-up status from the handler becomes 500, on the same connection. */
    assert_int_equal(request(f->h, "GET", url(f, "/status/99"), NULL, NULL, 0, &f->out), 500);
    assert_int_equal(request(f->h, "POST", url(f, "/echo"), NULL, "yz", 2, &f->out), 200);
    assert_int_equal(f->out.len, 2);
    curl_easy_getinfo(f->h, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(f->h, CURLINFO_LOCAL_PORT, &port2);
    assert_int_equal(conns, 0); /* no new connection for the last request */
    assert_int_equal(port1, port2);
}

static void test_body_too_large_413(void **state)
{
    struct fixture *f = *state;
    size_t n = MAX_BODY + 1;
    char *big = calloc(1, n);
    int before;

    snapshot();
    before = seen.calls;
    /* A 10 s expect patience: ignoring "Expect: 100-continue" would show as
     * a 10 s request, an early 413 stays far below 5 s even under ASan. */
    curl_easy_setopt(f->h, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
    assert_int_equal(request(f->h, "POST", url(f, "/echo"), "application/json", big, n, &f->out),
                     413);
    assert_string_equal(f->out.data, "{\"error\":\"request body exceeds 1048576 bytes\"}");
    {
        double t = 0;

        /* curl sent "Expect: 100-continue" and got the 413 instead of
         * waiting out its expect timeout. */
        curl_easy_getinfo(f->h, CURLINFO_TOTAL_TIME, &t);
        assert_true(t < 5.0);
    }
    snapshot();
    assert_int_equal(seen.calls, before); /* handler never saw it */

    /* Exactly max_body is fine, and the server keeps serving. */
    assert_int_equal(request(f->h, "POST", url(f, "/echo"), NULL, big, MAX_BODY, &f->out), 200);
    assert_int_equal(f->out.len, MAX_BODY);
    assert_int_equal(request(f->h, "GET", url(f, "/"), NULL, NULL, 0, &f->out), 200);
    free(big);
}

/* Raw request on a fresh connection; returns what came back until EOF. */
static void raw_exchange(int port, const char *req, char *buf, size_t len)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 5};
    size_t got = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    while (got < len - 1 && (r = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
}

static void test_unknown_method_405(void **state)
{
    struct fixture *f = *state;
    const char *methods[] = {"FOO", "TRACE", "CONNECT"};
    char buf[1024];
    int before;

    snapshot();
    before = seen.calls;
    for (size_t i = 0; i < KX_ARRAY_SIZE(methods); i++) {
        CURL *h = curl_easy_init();

        assert_int_equal(request(h, methods[i], url(f, "/"), NULL, NULL, 0, &f->out), 405);
        assert_string_equal(f->out.data, "{\"error\":\"method not allowed\"}");
        curl_easy_cleanup(h);
    }
    raw_exchange(kx_http_port(f->srv), "\x01\x02 not http\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    assert_non_null(strstr(buf, "malformed HTTP request"));
    snapshot();
    assert_int_equal(seen.calls, before); /* the handler saw none of them */

    /* Known methods still reach the handler. */
    assert_int_equal(request(f->h, "DELETE", url(f, "/thing"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(request(f->h, "OPTIONS", url(f, "/thing"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(request(f->h, "PATCH", url(f, "/thing"), NULL, "p", 1, &f->out), 200);
    snapshot();
    assert_string_equal(seen.method, "PATCH");
    assert_string_equal(seen.body, "p");
}

/* A raw client declaring a huge body is refused without draining it. */
static void test_body_declared_huge_413(void **state)
{
    struct fixture *f = *state;
    char buf[1024];

    raw_exchange(kx_http_port(f->srv),
                 "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\nabc", buf,
                 sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_non_null(strstr(buf, "request body exceeds 1048576 bytes"));
    assert_int_equal(request(f->h, "GET", url(f, "/"), NULL, NULL, 0, &f->out), 200);
}

/* Bodies over 1 MiB: curl asks "Expect: 100-continue"; the server must say
 * yes promptly (lws alone does not), and the body arrives intact. */
static void test_expect_continue(void **state)
{
    char err[256] = "", u[64];
    struct kx_http_server *s =
        kx_http_start("127.0.0.1", 0, 4 * MAX_BODY, record_handler, NULL, err, sizeof(err));
    size_t n = 2 * MAX_BODY + 3;
    char *big = malloc(n);
    struct sink out = {0};
    CURL *h = curl_easy_init();
    double t = 0;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 253);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", kx_http_port(s));
    /* curl sends "Expect: 100-continue" for bodies this large. Give it a
     * 10 s patience: a server that ignored the header would take that long,
     * one that answers "100 Continue" takes far less even under sanitizers. */
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
    assert_int_equal(request(h, "POST", u, NULL, big, n, &out), 200);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
    assert_true(t < 5.0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, big, n);
    curl_easy_cleanup(h);
    free(out.data);
    free(big);
    kx_http_stop(s);
}

static void test_head(void **state)
{
    struct fixture *f = *state;
    curl_off_t cl = -1;

    assert_int_equal(request(f->h, "HEAD", url(f, "/big?n=1000"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(f->out.len, 0);
    curl_easy_getinfo(f->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    assert_int_equal(cl, 1000);
    /* The connection is still in a sane state. */
    assert_int_equal(request(f->h, "GET", url(f, "/big?n=10"), NULL, NULL, 0, &f->out), 200);
    assert_string_equal(f->out.data, "abcdefghij");
}

static void test_large_response(void **state)
{
    struct fixture *f = *state;
    size_t sizes[] = {65535, 65536, 65537, 700001, 3 * 1024 * 1024};

    for (size_t k = 0; k < KX_ARRAY_SIZE(sizes); k++) {
        char path[64];

        snprintf(path, sizeof(path), "/big?n=%zu", sizes[k]);
        assert_int_equal(request(f->h, "GET", url(f, path), NULL, NULL, 0, &f->out), 200);
        assert_int_equal(f->out.len, sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++) {
            if (f->out.data[i] != (char)('a' + i % 26))
                fail_msg("byte %zu of %zu differs", i, sizes[k]);
        }
    }
}

static void test_port_in_use(void **state)
{
    struct fixture *f = *state;
    char err[256] = "", want[64];
    struct kx_http_server *s2;

    s2 = kx_http_start("127.0.0.1", kx_http_port(f->srv), MAX_BODY, record_handler, NULL, err,
                       sizeof(err));
    assert_null(s2);
    snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%d: ", kx_http_port(f->srv));
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "Address already in use"));
    /* The first server is unaffected. */
    assert_int_equal(request(f->h, "GET", url(f, "/"), NULL, NULL, 0, &f->out), 200);
}

static void test_bad_address(void **state)
{
    char err[256] = "";

    assert_null(kx_http_start("not-an-ip", 0, MAX_BODY, record_handler, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot listen on not-an-ip:0"));
    /* 192.0.2.1 (TEST-NET) is not ours. */
    assert_null(kx_http_start("192.0.2.1", 0, MAX_BODY, record_handler, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "Cannot assign requested address"));
}

static void test_start_stop_repeatedly(void **state)
{
    for (int i = 0; i < 20; i++) {
        char err[256] = "", u[64];
        struct kx_http_server *s =
            kx_http_start("127.0.0.1", 0, 4096, record_handler, NULL, err, sizeof(err));
        struct sink out = {0};
        CURL *h = curl_easy_init();

        assert_non_null(s);
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", kx_http_port(s));
        if (i % 2 == 0) {
            assert_int_equal(request(h, "POST", u, NULL, "hi", 2, &out), 200);
            assert_string_equal(out.data, "hi");
        }
        /* Stop with the client's keep-alive connection still open. */
        kx_http_stop(s);
        curl_easy_cleanup(h);
        free(out.data);
    }
    kx_http_stop(NULL);
}

static void test_ipv6_any(void **state)
{
    char err[256] = "", u[64];
    struct kx_http_server *s = kx_http_start("::", 0, 4096, record_handler, NULL, err, sizeof(err));
    struct sink out = {0};
    CURL *h;

    if (s == NULL) {
        print_message("no IPv6 here (%s); skipped\n", err);
        return;
    }
    h = curl_easy_init();
    snprintf(u, sizeof(u), "http://[::1]:%d/", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);
    kx_http_stop(s);

    /* One IPv6 address only. */
    s = kx_http_start("::1", 0, 4096, record_handler, NULL, err, sizeof(err));
    assert_non_null(s);
    snprintf(u, sizeof(u), "http://[::1]:%d/status/204", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 204);
    assert_int_equal(out.len, 0); /* the handler's body is dropped for 204 */
    curl_easy_cleanup(h);
    free(out.data);
    kx_http_stop(s);
}

/* --- request fields, extra response headers ------------------------------ */

static void test_request_fields(void **state)
{
    struct fixture *f = *state;
    const char *const extra[] = {"Origin: https://ui.example:8443", "Accept: application/json",
                                 NULL};
    char host[64];

    curl_easy_setopt(f->h, CURLOPT_COOKIE, "kx_session=abc123; theme=dark");
    assert_int_equal(request_hdrs(f->h, "GET", url(f, "/fields"), NULL, NULL, 0, &f->out, extra),
                     200);
    snapshot();
    assert_string_equal(seen.cookie, "kx_session=abc123; theme=dark");
    assert_string_equal(seen.origin, "https://ui.example:8443");
    assert_string_equal(seen.accept, "application/json");
    snprintf(host, sizeof(host), "127.0.0.1:%d", kx_http_port(f->srv));
    assert_string_equal(seen.host, host);
    assert_false(seen.tls);
    assert_false(seen.upgrade);
    assert_string_equal(seen.thread, "kx-http");

    /* Absent headers are "", also on the next request of the same
     * connection (nothing left over from the previous one). */
    curl_easy_setopt(f->h, CURLOPT_COOKIE, NULL);
    {
        const char *const none[] = {"Accept:", NULL}; /* curl: drop its default */

        assert_int_equal(
            request_hdrs(f->h, "GET", url(f, "/fields2"), NULL, NULL, 0, &f->out, none), 200);
    }
    snapshot();
    assert_string_equal(seen.path, "/fields2");
    assert_string_equal(seen.cookie, "");
    assert_string_equal(seen.origin, "");
    assert_string_equal(seen.accept, "");
    assert_string_equal(seen.host, host);
}

static void test_resp_header(void **state)
{
    struct fixture *f = *state;
    struct sink hdrs = {0};
    const char *paths[] = {"/hdr", "/hdr/404", "/hdr/201"};
    const long want[] = {200, 404, 201};

    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, sink_write);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, &hdrs);
    for (size_t i = 0; i < KX_ARRAY_SIZE(paths); i++) {
        hdrs.len = 0;
        assert_int_equal(request(f->h, "GET", url(f, paths[i]), NULL, NULL, 0, &f->out), want[i]);
        assert_string_equal(f->out.data, "{\"hdr\":true}");
        assert_non_null(strcasestr(hdrs.data, "\r\nx-klaxon-id: 42-abc\r\n"));
        assert_non_null(strcasestr(hdrs.data, "\r\ncache-control: no-store\r\n"));
        /* Refused headers never reach the wire, not even in part. */
        assert_null(strcasestr(hdrs.data, "x-bad"));
        assert_null(strcasestr(hdrs.data, "x-injected"));
        assert_null(strcasestr(hdrs.data, "x-too-long"));
        pthread_mutex_lock(&hdr_rc.lock);
        int ok = hdr_rc.ok, crlf = hdr_rc.crlf, lf = hdr_rc.lf, colon = hdr_rc.colon_name,
            space = hdr_rc.space_name, too_long = hdr_rc.too_long;
        pthread_mutex_unlock(&hdr_rc.lock);
        assert_int_equal(ok, 0);
        assert_int_equal(crlf, -E2BIG);
        assert_int_equal(lf, -E2BIG);
        assert_int_equal(colon, -E2BIG);
        assert_int_equal(space, -E2BIG);
        assert_int_equal(too_long, -E2BIG);
    }
    /* HEAD carries them too. */
    hdrs.len = 0;
    assert_int_equal(request(f->h, "HEAD", url(f, "/hdr"), NULL, NULL, 0, &f->out), 200);
    assert_non_null(strcasestr(hdrs.data, "\r\nx-klaxon-id: 42-abc\r\n"));
    /* And the next answer on the connection does not. */
    hdrs.len = 0;
    assert_int_equal(request(f->h, "GET", url(f, "/plain"), NULL, NULL, 0, &f->out), 200);
    assert_null(strcasestr(hdrs.data, "x-klaxon-id"));
    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, NULL);
    free(hdrs.data);
}

/* Outside the handler: a fresh response struct, refusals leave it as is. */
static void test_resp_header_direct(void **state)
{
    struct kx_http_resp r = {.status = 200};

    assert_int_equal(kx_http_resp_header(&r, "x-a", "%s", "1"), 0);
    assert_int_equal(kx_http_resp_header(&r, "x-b", "two\r\nx-c: 3"), -E2BIG);
    assert_int_equal(kx_http_resp_header(&r, "x-b", "two\rthree"), -E2BIG);
    assert_int_equal(kx_http_resp_header(&r, "x\r\nb", "1"), -E2BIG);
    assert_int_equal(kx_http_resp_header(&r, "x-d", "%d", 4), 0);
    assert_int_equal(r.headers.len, strlen("x-a: 1\r\nx-d: 4\r\n"));
    assert_memory_equal(r.headers.data, "x-a: 1\r\nx-d: 4\r\n", r.headers.len);
    kx_buf_free(&r.headers);
}

/* --- slow requests on worker threads ------------------------------------- */

/* Holds /slow/block requests in the slow handler until opened. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int entered;  /* slow handlers that reached the gate */
    int answered; /* slow handlers that returned */
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void gate_reset(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = false;
    gate.entered = gate.answered = 0;
    pthread_mutex_unlock(&gate.lock);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.open = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
}

/* A thread: opens the gate after 100 ms. */
static void *gate_open_later(void *arg)
{
    usleep(100 * 1000);
    gate_open();
    return NULL;
}

static int gate_count(int *field)
{
    int n;

    pthread_mutex_lock(&gate.lock);
    n = *field;
    pthread_mutex_unlock(&gate.lock);
    return n;
}

/* kx-http: everything under /slow goes to the workers. The body this
 * handler wrote is dropped, its headers (CORS) go out with the answer. */
static void slow_front(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    record_handler(ctx, req, resp);
    if (strncmp(req->path, "/slow", 5) == 0) {
        kx_http_resp_header(resp, "x-front", "kept");
        resp->status = KX_HTTP_SLOW;
    }
}

/* kx-http-w. Routes:
 *   /slow/echo   202 text/plain "slow:<body>|<query>", header x-worker
 *   /slow/block  waits for the gate, then 200 "released:<query>"
 *   else         200 {"slow":true} */
static void slow_back(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    record_req(&slow_rec, req);
    if (strcmp(req->path, "/slow/echo") == 0) {
        resp->status = 202;
        resp->content_type = "text/plain";
        kx_buf_printf(&resp->body, "slow:");
        kx_buf_append(&resp->body, req->body, req->body_len);
        kx_buf_printf(&resp->body, "|%s", req->query);
        kx_http_resp_header(resp, "x-worker", "%s", "kx-http-w");
    } else if (strcmp(req->path, "/slow/block") == 0) {
        pthread_mutex_lock(&gate.lock);
        gate.entered++;
        while (!gate.open)
            pthread_cond_wait(&gate.cond, &gate.lock);
        gate.answered++;
        pthread_mutex_unlock(&gate.lock);
        kx_buf_printf(&resp->body, "released:%s", req->query);
    } else {
        kx_buf_printf(&resp->body, "{\"slow\":true}");
    }
}

static struct kx_http_server *start_slow(int workers, char *base, size_t baselen)
{
    struct kx_http_opts o = {.addr = "127.0.0.1",
                             .max_body = MAX_BODY,
                             .handler = slow_front,
                             .slow_handler = slow_back,
                             .workers = workers};
    char err[256] = "";
    struct kx_http_server *s = kx_http_start_opts(&o, err, sizeof(err));

    if (s == NULL)
        print_error("kx_http_start_opts: %s\n", err);
    else
        snprintf(base, baselen, "http://127.0.0.1:%d", kx_http_port(s));
    return s;
}

static int setup_slow(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    gate_reset();
    recorder_reset(&rec);
    recorder_reset(&slow_rec);
    f->srv = start_slow(4, f->base, sizeof(f->base));
    if (f->srv == NULL) {
        free(f);
        return -1;
    }
    f->h = curl_easy_init();
    *state = f;
    return 0;
}

static int teardown_slow(void **state)
{
    gate_open(); /* a failed test may have left workers waiting */
    return teardown(state);
}

static int64_t now_ms(void)
{
    return kx_monotonic_ns() / KX_NSEC_PER_MSEC;
}

/* Polls cond every millisecond for at most ms; its last value. */
#define WAIT_UNTIL(cond, ms)                                                                       \
    ({                                                                                             \
        int64_t end_ = now_ms() + (ms);                                                            \
        bool ok_;                                                                                  \
        while (!(ok_ = (cond)) && now_ms() < end_)                                                 \
            usleep(1000);                                                                          \
        ok_;                                                                                       \
    })

/* Concurrent requests through one curl multi handle. */
#define PAR_MAX 80
struct par {
    CURLM *m;
    int n, ndone;
    CURL *h[PAR_MAX];
    struct sink out[PAR_MAX];
    long status[PAR_MAX]; /* 0 = in progress, -1 = transport error */
};

static void par_init(struct par *p)
{
    memset(p, 0, sizeof(*p));
    p->m = curl_multi_init();
}

static int par_add(struct par *p, const char *u, long timeout_ms)
{
    int i = p->n++;
    CURL *h = curl_easy_init();

    p->h[i] = h;
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &p->out[i]);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)(intptr_t)i);
    curl_multi_add_handle(p->m, h);
    return i;
}

/* Drives the transfers for about ms milliseconds. */
static void par_pump(struct par *p, int ms)
{
    int64_t end = now_ms() + ms;

    do {
        int running, left;
        CURLMsg *msg;

        curl_multi_perform(p->m, &running);
        while ((msg = curl_multi_info_read(p->m, &left)) != NULL) {
            char *priv = NULL;
            int i;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            i = (int)(intptr_t)priv;
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &p->status[i]);
            else
                p->status[i] = -1;
            p->ndone++;
        }
        curl_multi_poll(p->m, NULL, 0, 2, NULL);
    } while (now_ms() < end);
}

/* Pumps until cond holds (checked every few ms) or ms pass; cond's value. */
#define PUMP_UNTIL(p, cond, ms)                                                                    \
    ({                                                                                             \
        int64_t end_ = now_ms() + (ms);                                                            \
        bool ok_;                                                                                  \
        while (!(ok_ = (cond)) && now_ms() < end_)                                                 \
            par_pump((p), 3);                                                                      \
        ok_;                                                                                       \
    })

static void par_free(struct par *p)
{
    for (int i = 0; i < p->n; i++) {
        curl_multi_remove_handle(p->m, p->h[i]);
        curl_easy_cleanup(p->h[i]);
        free(p->out[i].data);
    }
    curl_multi_cleanup(p->m);
    memset(p, 0, sizeof(*p));
}

static void test_slow_request_and_answer(void **state)
{
    struct fixture *f = *state;
    const char body[] = "{\"q\":\"rule = x\"}";
    const char *const extra[] = {"Origin: http://ui", "Accept: text/plain", "X-Other: 1", NULL};
    struct sink hdrs = {0};
    char *ctype = NULL;

    curl_easy_setopt(f->h, CURLOPT_COOKIE, "c=1");
    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, sink_write);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, &hdrs);
    assert_int_equal(request_hdrs(f->h, "POST", url(f, "/slow/echo?a=1&b=x%20y"),
                                  "application/json", body, strlen(body), &f->out, extra),
                     202);
    assert_string_equal(f->out.data, "slow:{\"q\":\"rule = x\"}|a=1&b=x%20y");
    curl_easy_getinfo(f->h, CURLINFO_CONTENT_TYPE, &ctype);
    assert_non_null(ctype);
    assert_string_equal(ctype, "text/plain");
    assert_non_null(strcasestr(hdrs.data, "\r\nx-worker: kx-http-w\r\n"));
    /* The front handler's header went out once, its body not at all. */
    assert_non_null(strcasestr(hdrs.data, "\r\nx-front: kept\r\n"));
    assert_null(strcasestr(strcasestr(hdrs.data, "x-front") + 1, "x-front"));
    assert_null(strstr(f->out.data, "\"ok\""));

    /* The front handler ran on the loop, the slow one on a worker, both
     * with the same request. */
    snapshot();
    assert_string_equal(seen.thread, "kx-http");
    snapshot_of(&slow_rec);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.thread, "kx-http-w");
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.path, "/slow/echo");
    assert_string_equal(seen.query, "a=1&b=x%20y");
    assert_string_equal(seen.content_type, "application/json");
    assert_string_equal(seen.authorization, "Bearer t0ken");
    assert_string_equal(seen.cookie, "c=1");
    assert_string_equal(seen.origin, "http://ui");
    assert_string_equal(seen.accept, "text/plain");
    assert_non_null(strstr(seen.host, "127.0.0.1:"));
    assert_false(seen.tls);
    assert_int_equal(seen.body_len, strlen(body));
    assert_string_equal(seen.body, body);

    /* A body with NULs arrives whole (the worker gets its own copy). */
    {
        const char bin[] = {'x', 0, 'y', 0};

        assert_int_equal(
            request(f->h, "POST", url(f, "/slow/echo"), NULL, bin, sizeof(bin), &f->out), 202);
        assert_int_equal(f->out.len, 5 + sizeof(bin) + 1);
        assert_memory_equal(f->out.data + 5, bin, sizeof(bin));
        snapshot_of(&slow_rec);
        assert_int_equal(seen.body_len, sizeof(bin));
        assert_memory_equal(seen.body, bin, sizeof(bin));
        assert_int_equal(seen.body[sizeof(bin)], '\0');
    }
    curl_easy_setopt(f->h, CURLOPT_COOKIE, NULL);
    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, NULL);
    free(hdrs.data);
}

static void test_slow_keepalive(void **state)
{
    struct fixture *f = *state;
    long conns = -1, port1 = 0, port2 = 0;
    struct sink hdrs = {0};

    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, sink_write);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, &hdrs);
    assert_int_equal(request(f->h, "GET", url(f, "/slow/x"), NULL, NULL, 0, &f->out), 200);
    assert_string_equal(f->out.data, "{\"slow\":true}");
    assert_non_null(strcasestr(hdrs.data, "\r\nx-front: kept\r\n"));
    curl_easy_getinfo(f->h, CURLINFO_LOCAL_PORT, &port1);
    hdrs.len = 0;
    assert_int_equal(request(f->h, "GET", url(f, "/fast"), NULL, NULL, 0, &f->out), 200);
    assert_string_equal(f->out.data, "{\"ok\":true}");
    assert_null(strcasestr(hdrs.data, "x-front")); /* nothing left from the slow answer */
    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, NULL);
    free(hdrs.data);
    curl_easy_getinfo(f->h, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 0);
    assert_int_equal(request(f->h, "POST", url(f, "/slow/echo"), NULL, "b", 1, &f->out), 202);
    assert_string_equal(f->out.data, "slow:b|");
    assert_int_equal(request(f->h, "POST", url(f, "/echo"), NULL, "fast", 4, &f->out), 200);
    assert_string_equal(f->out.data, "fast");
    assert_int_equal(request(f->h, "HEAD", url(f, "/slow/x"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(request(f->h, "GET", url(f, "/slow/x"), NULL, NULL, 0, &f->out), 200);
    curl_easy_getinfo(f->h, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(f->h, CURLINFO_LOCAL_PORT, &port2);
    assert_int_equal(conns, 0);
    assert_int_equal(port1, port2);
}

/* 8 slow requests with 4 workers: 4 are in the slow handler at once, and
 * every answer goes to its own client. */
static void test_slow_parallel(void **state)
{
    struct fixture *f = *state;
    struct par p;

    par_init(&p);
    for (int i = 0; i < 8; i++) {
        char path[64];

        snprintf(path, sizeof(path), "/slow/block?i=%d", i);
        par_add(&p, url(f, path), 10000);
    }
    assert_true(PUMP_UNTIL(&p, gate_count(&gate.entered) == 4 && recorder_calls(&rec) == 8, 5000));
    par_pump(&p, 20);
    assert_int_equal(gate_count(&gate.entered), 4); /* no more than 4 workers */
    /* A fast request is not held up by busy workers. */
    assert_int_equal(request(f->h, "GET", url(f, "/fast"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(p.ndone, 0);
    gate_open();
    assert_true(PUMP_UNTIL(&p, p.ndone == 8, 5000));
    for (int i = 0; i < 8; i++) {
        char want[32];

        snprintf(want, sizeof(want), "released:i=%d", i);
        assert_int_equal(p.status[i], 200);
        assert_string_equal(p.out[i].data, want);
    }
    par_free(&p);
}

/* Default workers (2) busy, 64 waiting: the next one gets 503 at once. */
static void test_slow_queue_full_503(void **state)
{
    char base[64], u[128];
    struct kx_http_server *s;
    struct par p;
    int extra;

    gate_reset();
    recorder_reset(&rec);
    s = start_slow(0, base, sizeof(base));
    assert_non_null(s);
    par_init(&p);
    for (int i = 0; i < 2; i++) {
        snprintf(u, sizeof(u), "%s/slow/block?i=%d", base, i);
        par_add(&p, u, 15000);
    }
    if (!PUMP_UNTIL(&p, gate_count(&gate.entered) == 2, 5000))
        goto fail;
    for (int i = 2; i < 2 + 64; i++) {
        snprintf(u, sizeof(u), "%s/slow/block?i=%d", base, i);
        par_add(&p, u, 15000);
    }
    /* All 66 reached the front handler: 2 run, 64 wait. */
    if (!PUMP_UNTIL(&p, recorder_calls(&rec) == 66, 5000))
        goto fail;
    snprintf(u, sizeof(u), "%s/slow/block?i=66", base);
    extra = par_add(&p, u, 15000);
    if (!PUMP_UNTIL(&p, p.ndone == 1, 5000))
        goto fail;
    assert_int_equal(p.status[extra], 503);
    assert_string_equal(p.out[extra].data, "{\"error\":\"too many queries in progress; retry\"}");
    assert_int_equal(gate_count(&gate.entered), 2); /* the slow handler never saw it */
    gate_open();
    if (!PUMP_UNTIL(&p, p.ndone == 67, 10000))
        goto fail;
    for (int i = 0; i < 66; i++) {
        char want[32];

        snprintf(want, sizeof(want), "released:i=%d", i);
        assert_int_equal(p.status[i], 200);
        assert_string_equal(p.out[i].data, want);
    }
    assert_int_equal(gate_count(&gate.answered), 66);
    par_free(&p);
    /* The queue is empty again. */
    {
        CURL *h = curl_easy_init();
        struct sink out = {0};

        snprintf(u, sizeof(u), "%s/slow/x", base);
        assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);
        curl_easy_cleanup(h);
        free(out.data);
    }
    kx_http_stop(s);
    return;
fail:
    gate_open();
    print_error("stuck: entered %d, front calls %d, done %d\n", gate_count(&gate.entered),
                recorder_calls(&rec), p.ndone);
    par_free(&p);
    kx_http_stop(s);
    fail();
}

/* Clients that hang up while their slow request runs or waits: the late
 * answers are dropped (no crash, no leak under ASan), and a client that
 * connected meanwhile gets its own answer. */
static void test_slow_client_disconnects(void **state)
{
    char base[64], u[128];
    struct kx_http_server *s;
    struct par p, keep;

    gate_reset();
    recorder_reset(&rec);
    s = start_slow(1, base, sizeof(base));
    assert_non_null(s);
    par_init(&p);
    par_init(&keep);
    /* One running (the only worker), two waiting; all three hang up. */
    for (int i = 0; i < 3; i++) {
        snprintf(u, sizeof(u), "%s/slow/block?gone=%d", base, i);
        par_add(&p, u, 300);
    }
    assert_true(PUMP_UNTIL(&p, p.ndone == 3, 5000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(p.status[i], -1); /* curl timed out and closed */
    assert_int_equal(gate_count(&gate.entered), 1);
    assert_int_equal(recorder_calls(&rec), 3);
    usleep(100 * 1000); /* the loop sees the hang-ups */
    /* New clients wait behind them, then the worker is let go. */
    snprintf(u, sizeof(u), "%s/slow/block?stay=1", base);
    par_add(&keep, u, 10000);
    snprintf(u, sizeof(u), "%s/slow/echo?stay=2", base);
    par_add(&keep, u, 10000);
    assert_true(PUMP_UNTIL(&keep, recorder_calls(&rec) == 5, 5000));
    gate_open();
    assert_true(PUMP_UNTIL(&keep, keep.ndone == 2, 5000));
    assert_int_equal(keep.status[0], 200);
    assert_string_equal(keep.out[0].data, "released:stay=1");
    assert_int_equal(keep.status[1], 202);
    assert_string_equal(keep.out[1].data, "slow:|stay=2");
    assert_int_equal(gate_count(&gate.answered), 4);
    par_free(&p);
    par_free(&keep);

    /* The same again with the hang-up after the answer is ready but
     * while the server is stopping: nothing is left behind. */
    gate_reset();
    par_init(&p);
    snprintf(u, sizeof(u), "%s/slow/block?late=1", base);
    par_add(&p, u, 10000);
    snprintf(u, sizeof(u), "%s/slow/block?late=2", base);
    par_add(&p, u, 10000);
    assert_true(PUMP_UNTIL(&p, gate_count(&gate.entered) == 1 && recorder_calls(&rec) == 7, 5000));
    {
        pthread_t t;

        /* Opens the gate while kx_http_stop waits for the worker: one job
         * answered but never delivered, one still queued. */
        assert_int_equal(pthread_create(&t, NULL, gate_open_later, NULL), 0);
        kx_http_stop(s);
        pthread_join(t, NULL);
    }
    par_free(&p);
}

/* --- WebSocket: the server side's state ---------------------------------- */

#define WS_SLOTS 64
#define WS_QUEUE 16
#define WS_WAKES 512

/* One accepted connection (the handler's ws_conn). Slots are never reused
 * within a test, so that a second close shows in closes. */
struct ws_slot {
    bool used;
    int closes;            /* close op calls */
    int messages;          /* message op calls */
    int writeables;        /* writeable op calls */
    size_t last_len;       /* length of the last message */
    bool kick;             /* the next writeable returns -1 */
    char *queue[WS_QUEUE]; /* owned: what writeable sends, oldest first */
    size_t queue_len[WS_QUEUE];
    int nqueue;
};

/* Written by the ops on kx-http, read by the test thread; all under lock. */
static struct {
    pthread_mutex_t lock;
    struct ws_slot slots[WS_SLOTS];
    int accepted;
    int closes;
    int bad_closes; /* close of a conn that is not ours */
    int wakes;
    int64_t wake_ns[WS_WAKES]; /* monotonic time of each wake op */
    char wake_thread[16];
    bool wake_writeable_all; /* the wake op calls kx_http_ws_writeable_all */
    struct kx_http_server *srv;
} ws = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void ws_reset(void)
{
    pthread_mutex_lock(&ws.lock);
    for (int i = 0; i < WS_SLOTS; i++)
        for (int k = 0; k < ws.slots[i].nqueue; k++)
            free(ws.slots[i].queue[k]);
    memset(ws.slots, 0, sizeof(ws.slots));
    ws.accepted = ws.closes = ws.bad_closes = ws.wakes = 0;
    ws.wake_thread[0] = '\0';
    ws.wake_writeable_all = false;
    ws.srv = NULL;
    pthread_mutex_unlock(&ws.lock);
}

/* ws.lock held. */
static void ws_push_locked(struct ws_slot *c, const char *data, size_t len)
{
    if (c->nqueue == WS_QUEUE)
        return;
    c->queue[c->nqueue] = malloc(len + 1);
    memcpy(c->queue[c->nqueue], data, len);
    c->queue[c->nqueue][len] = '\0';
    c->queue_len[c->nqueue++] = len;
}

static int ws_get(int *field)
{
    int n;

    pthread_mutex_lock(&ws.lock);
    n = *field;
    pthread_mutex_unlock(&ws.lock);
    return n;
}

/* kx-http: echoes every message; "kick" makes the next writeable refuse. */
static void ws_on_message(void *ctx, void *conn, const char *data, size_t len)
{
    struct ws_slot *c = conn;

    pthread_mutex_lock(&ws.lock);
    c->messages++;
    c->last_len = len;
    if (len == 4 && memcmp(data, "kick", 4) == 0)
        c->kick = true;
    else
        ws_push_locked(c, data, len);
    pthread_mutex_unlock(&ws.lock);
}

static int ws_on_writeable(void *ctx, void *conn, struct kx_buf *out)
{
    struct ws_slot *c = conn;
    int rc = 0;

    pthread_mutex_lock(&ws.lock);
    c->writeables++;
    if (c->kick) {
        kx_buf_printf(out, "kicked by test");
        rc = -1;
    } else if (c->nqueue > 0) {
        kx_buf_append(out, c->queue[0], c->queue_len[0]);
        free(c->queue[0]);
        memmove(c->queue, c->queue + 1, sizeof(c->queue[0]) * (size_t)(c->nqueue - 1));
        memmove(c->queue_len, c->queue_len + 1, sizeof(c->queue_len[0]) * (size_t)(c->nqueue - 1));
        c->nqueue--;
        rc = 1;
    }
    pthread_mutex_unlock(&ws.lock);
    return rc;
}

static void ws_on_close(void *ctx, void *conn)
{
    struct ws_slot *c = conn;

    pthread_mutex_lock(&ws.lock);
    if (c < ws.slots || c >= ws.slots + WS_SLOTS || !c->used) {
        ws.bad_closes++;
    } else {
        c->closes++;
        ws.closes++;
        for (int k = 0; k < c->nqueue; k++)
            free(c->queue[k]);
        c->nqueue = 0;
    }
    pthread_mutex_unlock(&ws.lock);
}

static void ws_on_wake(void *ctx)
{
    struct kx_http_server *srv = NULL;

    pthread_mutex_lock(&ws.lock);
    if (ws.wakes < WS_WAKES)
        ws.wake_ns[ws.wakes] = kx_monotonic_ns();
    ws.wakes++;
    pthread_getname_np(pthread_self(), ws.wake_thread, sizeof(ws.wake_thread));
    if (ws.wake_writeable_all)
        srv = ws.srv;
    pthread_mutex_unlock(&ws.lock);
    if (srv)
        kx_http_ws_writeable_all(srv);
}

static const struct kx_ws_ops ws_ops = {
    .message = ws_on_message,
    .writeable = ws_on_writeable,
    .close = ws_on_close,
    .wake = ws_on_wake,
};

/* kx-http. Plain requests as slow_front; handshakes:
 *   /ws/none        leaves 200 without ws_conn (404)
 *   /ws/bighdr      401 with 10 headers of 500 bytes (5 KB)
 *   without "Authorization: Bearer good"   401, JSON body, www-authenticate
 *   /ws/greet       accepted, "hello" queued at once
 *   else            accepted */
static void ws_handler(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    struct ws_slot *c = NULL;

    slow_front(ctx, req, resp);
    if (!req->upgrade)
        return;
    kx_buf_reset(&resp->body);
    if (strcmp(req->path, "/ws/none") == 0)
        return;
    if (strcmp(req->path, "/ws/bighdr") == 0) {
        char val[501];

        memset(val, 'm', sizeof(val) - 1);
        val[sizeof(val) - 1] = '\0';
        resp->status = 401;
        kx_buf_printf(&resp->body, "{\"error\":\"no\"}");
        for (int i = 0; i < 10; i++)
            kx_http_resp_header(resp, "x-many", "%02d%s", i, val);
        return;
    }
    if (strcmp(req->authorization, "Bearer good") != 0) {
        resp->status = 401;
        kx_buf_printf(&resp->body, "{\"error\":\"a valid token is required\"}");
        kx_http_resp_header(resp, "www-authenticate", "Bearer realm=\"klaxon\"");
        return;
    }
    pthread_mutex_lock(&ws.lock);
    for (int i = 0; i < WS_SLOTS && !c; i++)
        if (!ws.slots[i].used)
            c = &ws.slots[i];
    if (c) {
        c->used = true;
        ws.accepted++;
        if (strcmp(req->path, "/ws/greet") == 0)
            ws_push_locked(c, "hello", 5);
    }
    pthread_mutex_unlock(&ws.lock);
    if (c)
        resp->ws_conn = c;
    else
        resp->status = 503;
}

/* TLS files made once by main (tls_make_files). */
static char tls_dir[64], tls_cert[128], tls_key[128];

static struct kx_http_server *start_ws(bool tls, char *err, size_t errlen)
{
    struct kx_http_opts o = {.addr = "127.0.0.1",
                             .max_body = MAX_BODY,
                             .handler = ws_handler,
                             .slow_handler = slow_back,
                             .ws = &ws_ops,
                             .tls_cert = tls ? tls_cert : NULL,
                             .tls_key = tls ? tls_key : NULL};
    struct kx_http_server *s;

    ws_reset();
    s = kx_http_start_opts(&o, err, errlen);
    pthread_mutex_lock(&ws.lock);
    ws.srv = s;
    pthread_mutex_unlock(&ws.lock);
    return s;
}

static int setup_ws(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    gate_reset();
    recorder_reset(&rec);
    f->srv = start_ws(false, err, sizeof(err));
    if (f->srv == NULL) {
        print_error("kx_http_start_opts: %s\n", err);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", kx_http_port(f->srv));
    f->h = curl_easy_init();
    *state = f;
    return 0;
}

/* Stops the server, then checks that every accepted connection was closed
 * exactly once. */
static int teardown_ws(void **state)
{
    int rc = 0;

    gate_open();
    rc = teardown(state);
    pthread_mutex_lock(&ws.lock);
    if (ws.closes != ws.accepted || ws.bad_closes != 0) {
        print_error("after stop: %d accepted, %d closed, %d bad closes\n", ws.accepted, ws.closes,
                    ws.bad_closes);
        rc = -1;
    }
    for (int i = 0; i < WS_SLOTS; i++)
        if (ws.slots[i].used && ws.slots[i].closes != 1) {
            print_error("connection %d closed %d times\n", i, ws.slots[i].closes);
            rc = -1;
        }
    pthread_mutex_unlock(&ws.lock);
    ws_reset();
    return rc;
}

/* Options that cannot work are refused up front; KX_HTTP_SLOW without a
 * slow handler is not a status. */
static void test_opts_invalid(void **state)
{
    static const struct kx_ws_ops no_wake = {
        .message = ws_on_message, .writeable = ws_on_writeable, .close = ws_on_close};
    struct kx_http_opts o = {.addr = "127.0.0.1", .max_body = 4096, .handler = record_handler};
    char err[256], u[64];
    struct kx_http_server *s;
    struct sink out = {0};
    CURL *h;

    o.ws = &no_wake;
    errno = 0;
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:0: invalid arguments"));
    o.ws = NULL;
    o.workers = 17; /* more than HTTP_WORKERS_MAX */
    o.slow_handler = slow_back;
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid arguments"));
    o.workers = -1;
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    o.workers = 16;
    s = kx_http_start_opts(&o, err, sizeof(err));
    assert_non_null(s);
    kx_http_stop(s);

    o.workers = 0;
    o.slow_handler = NULL;
    s = kx_http_start_opts(&o, err, sizeof(err));
    assert_non_null(s);
    h = curl_easy_init();
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/status/%d", kx_http_port(s), KX_HTTP_SLOW);
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 500);
    curl_easy_cleanup(h);
    free(out.data);
    kx_http_stop(s);
    recorder_reset(&rec);
}

/* --- WebSocket: a minimal client (RFC 6455) ------------------------------ */

struct wsc {
    int fd;
    SSL_CTX *sctx; /* owned, TLS only */
    SSL *ssl;      /* owned, TLS only */
};

static int tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void wsc_close(struct wsc *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->sctx)
        SSL_CTX_free(c->sctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->sctx = NULL;
    c->fd = -1;
}

/* Connects (and does the TLS handshake, trusting only tls_cert). 0 or -1. */
static int wsc_connect(struct wsc *c, int port, bool tls)
{
    memset(c, 0, sizeof(*c));
    c->fd = tcp_connect(port);
    if (c->fd < 0 || !tls)
        return c->fd < 0 ? -1 : 0;
    c->sctx = SSL_CTX_new(TLS_client_method());
    if (!c->sctx || SSL_CTX_load_verify_locations(c->sctx, tls_cert, NULL) != 1)
        return -1;
    SSL_CTX_set_verify(c->sctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->sctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    return 0;
}

static int wsc_write(struct wsc *c, const void *p, size_t n)
{
    const char *b = p;

    while (n > 0) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, b, (int)n) : write(c->fd, b, n);

        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Exactly n bytes; -1 on EOF, error or the 5 s timeout. */
static int wsc_read(struct wsc *c, void *p, size_t n)
{
    char *b = p;

    while (n > 0) {
        ssize_t r = c->ssl ? SSL_read(c->ssl, b, (int)n) : read(c->fd, b, n);

        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Waits up to ms for the server to close the connection: true if it did
 * (EOF or reset), false if it stayed open or sent more. */
static bool wsc_sees_eof(struct wsc *c, int ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    char ch;

    if (poll(&pfd, 1, ms) <= 0)
        return false;
    return (c->ssl ? SSL_read(c->ssl, &ch, 1) : read(c->fd, &ch, 1)) <= 0;
}

/* base64(SHA-1(key + GUID)), the answer RFC 6455 wants. */
static void ws_accept_for(const char *key, char *out, size_t outlen)
{
    char buf[128];
    unsigned char md[20];
    unsigned int mdlen = 0;
    char *b64;

    snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha1(), NULL);
    b64 = kx_base64_encode(md, mdlen, NULL);
    snprintf(out, outlen, "%s", b64);
    free(b64);
}

/*
 * Sends the handshake for path with extra header lines ("Name: v\r\n"...,
 * or ""), reads the answer's head into head (and a body of content-length
 * bytes into body). The status, or -1. With key false, no
 * Sec-WebSocket-Key is sent (an invalid handshake).
 */
static int wsc_handshake(struct wsc *c, const char *path, const char *extra, bool key, char *head,
                         size_t headlen, char *body, size_t bodylen)
{
    unsigned char raw[16];
    char *k, req[1024], want[64];
    size_t got = 0;
    int status = -1;
    const char *cl;

    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)rand();
    k = kx_base64_encode(raw, sizeof(raw), NULL);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\n%s%s%sSec-WebSocket-Version: 13\r\n%s\r\n",
             path, key ? "Sec-WebSocket-Key: " : "", key ? k : "", key ? "\r\n" : "", extra);
    ws_accept_for(k, want, sizeof(want));
    free(k);
    body[0] = '\0';
    if (wsc_write(c, req, strlen(req)) < 0)
        return -1;
    /* Byte by byte, so that no frame after the head is read here. */
    while (got + 1 < headlen) {
        if (wsc_read(c, head + got, 1) < 0)
            return -1;
        got++;
        head[got] = '\0';
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (sscanf(head, "HTTP/1.1 %d ", &status) != 1)
        return -1;
    if (status == 101) {
        char line[128];

        snprintf(line, sizeof(line), "\r\nsec-websocket-accept: %s\r\n", want);
        if (!strcasestr(head, line)) {
            print_error("bad or missing Sec-WebSocket-Accept:\n%s\n", head);
            return -1;
        }
        return status;
    }
    cl = strcasestr(head, "\r\ncontent-length:");
    if (cl) {
        size_t n = strtoul(cl + 17, NULL, 10);

        if (n + 1 > bodylen || wsc_read(c, body, n) < 0)
            return -1;
        body[n] = '\0';
    }
    return status;
}

/* One client frame (masked, as RFC 6455 requires). 0 or -1. */
static int wsc_send(struct wsc *c, int opcode, bool fin, const void *data, size_t len)
{
    unsigned char *fr = malloc(len + 14), mask[4];
    const unsigned char *d = data;
    size_t h = 0;
    int rc;

    fr[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        fr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        fr[h++] = 0x80 | 126;
        fr[h++] = (unsigned char)(len >> 8);
        fr[h++] = (unsigned char)len;
    } else {
        fr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            fr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    for (int i = 0; i < 4; i++)
        mask[i] = fr[h++] = (unsigned char)rand();
    for (size_t i = 0; i < len; i++)
        fr[h + i] = d[i] ^ mask[i % 4];
    rc = wsc_write(c, fr, h + len);
    free(fr);
    return rc;
}

static int wsc_send_text(struct wsc *c, const char *s)
{
    return wsc_send(c, 1, true, s, strlen(s));
}

/* One server frame: opcode, FIN and payload (caller frees *data, always
 * NUL-terminated). 0, -1 (EOF, error, timeout) or -2 (masked: servers
 * must not mask). */
static int wsc_recv(struct wsc *c, int *opcode, bool *fin, char **data, size_t *len)
{
    unsigned char h[2], ext[8];
    uint64_t n;

    *data = NULL;
    if (wsc_read(c, h, 2) < 0)
        return -1;
    *fin = h[0] & 0x80;
    *opcode = h[0] & 0x0f;
    if (h[1] & 0x80)
        return -2;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (wsc_read(c, ext, 2) < 0)
            return -1;
        n = (uint64_t)ext[0] << 8 | ext[1];
    } else if (n == 127) {
        if (wsc_read(c, ext, 8) < 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | ext[i];
    }
    if (n > (64u << 20))
        return -1;
    *data = malloc(n + 1);
    if (wsc_read(c, *data, n) < 0) {
        free(*data);
        *data = NULL;
        return -1;
    }
    (*data)[n] = '\0';
    *len = n;
    return 0;
}

/* Expects one whole text message equal to want (pongs are skipped). */
static void wsc_expect_text(struct wsc *c, const char *want, size_t wantlen)
{
    int op;
    bool fin;
    char *d;
    size_t n;

    do {
        assert_int_equal(wsc_recv(c, &op, &fin, &d, &n), 0);
        if (op == 10)
            free(d);
    } while (op == 10);
    assert_int_equal(op, 1);
    assert_true(fin);
    assert_int_equal(n, wantlen);
    assert_memory_equal(d, want, wantlen);
    free(d);
}

/* Expects a close frame with that status and reason (NULL = any). */
static void wsc_expect_close(struct wsc *c, int status, const char *reason)
{
    int op;
    bool fin;
    char *d;
    size_t n;

    do {
        assert_int_equal(wsc_recv(c, &op, &fin, &d, &n), 0);
        if (op != 8)
            free(d);
    } while (op != 8);
    assert_true(n >= 2);
    assert_int_equal(((unsigned char)d[0] << 8) | (unsigned char)d[1], status);
    if (reason) {
        assert_int_equal(n - 2, strlen(reason));
        assert_memory_equal(d + 2, reason, n - 2);
    }
    free(d);
}

/* An accepted connection to path on f's server. */
static void wsc_open_ok(struct wsc *c, int port, bool tls, const char *path)
{
    char head[2048], body[512];

    assert_int_equal(wsc_connect(c, port, tls), 0);
    assert_int_equal(wsc_handshake(c, path, "Authorization: Bearer good\r\n", true, head,
                                   sizeof(head), body, sizeof(body)),
                     101);
}

/*
 * Whatever kx_http_resp_header accepts must reach the client, or be
 * refused by it: a response the server cannot write is a dropped
 * connection without any answer: a 200-character header name or 5 KB of
 * headers in all are refused by kx_http_resp_header itself, on plain
 * answers and on refused WebSocket handshakes alike.
 */
static void test_resp_header_accepted_is_sent(void **state)
{
    struct fixture *f = *state;
    const char *paths[] = {"/hdr-longname", "/hdr-many"};
    int failures = 0;

    for (size_t i = 0; i < KX_ARRAY_SIZE(paths); i++) {
        CURL *h = curl_easy_init();
        long status = request(h, "GET", url(f, paths[i]), NULL, NULL, 0, &f->out);
        int ok;

        pthread_mutex_lock(&hdr_rc.lock);
        ok = hdr_rc.ok;
        pthread_mutex_unlock(&hdr_rc.lock);
        curl_easy_cleanup(h);
        if (ok == 0 && status != 200) {
            print_error("%s: kx_http_resp_header returned 0 but the client got %ld\n", paths[i],
                        status);
            failures++;
        }
    }
    /* The same on a refused WebSocket handshake. */
    {
        char err[256] = "", head[8192], body[512];
        struct kx_http_server *s = start_ws(false, err, sizeof(err));
        struct wsc c;
        int status;

        assert_non_null(s);
        assert_int_equal(wsc_connect(&c, kx_http_port(s), false), 0);
        status = wsc_handshake(&c, "/ws/bighdr", "", true, head, sizeof(head), body, sizeof(body));
        wsc_close(&c);
        kx_http_stop(s);
        ws_reset();
        if (status != 401) {
            print_error("/ws/bighdr handshake: got %d instead of the handler's 401\n", status);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* --- WebSocket tests ----------------------------------------------------- */

/* A refused handshake: exactly the handler's status, body and header, and
 * the handler saw the handshake as a request. */
static void test_ws_refused(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    char head[2048], body[512], want[128];
    const char *want_body = "{\"error\":\"a valid token is required\"}";

    assert_int_equal(wsc_connect(&c, kx_http_port(f->srv), false), 0);
    assert_int_equal(wsc_handshake(&c, "/ws?since=5",
                                   "Authorization: Bearer bad\r\nOrigin: http://ui.example\r\n"
                                   "Cookie: kx_session=s1\r\n",
                                   true, head, sizeof(head), body, sizeof(body)),
                     401);
    assert_non_null(strstr(head, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_non_null(strcasestr(head, "\r\nwww-authenticate: Bearer realm=\"klaxon\"\r\n"));
    assert_non_null(strcasestr(head, "\r\ncontent-type: application/json\r\n"));
    snprintf(want, sizeof(want), "\r\ncontent-length: %zu\r\n", strlen(want_body));
    assert_non_null(strcasestr(head, want));
    assert_null(strcasestr(head, "upgrade: websocket"));
    assert_string_equal(body, want_body);
    snapshot();
    assert_true(seen.upgrade);
    assert_string_equal(seen.method, "GET");
    assert_string_equal(seen.path, "/ws");
    assert_string_equal(seen.query, "since=5");
    assert_string_equal(seen.authorization, "Bearer bad");
    assert_string_equal(seen.origin, "http://ui.example");
    assert_string_equal(seen.cookie, "kx_session=s1");
    assert_string_equal(seen.host, "127.0.0.1");
    assert_false(seen.tls);
    assert_string_equal(seen.thread, "kx-http");
    wsc_close(&c);
    assert_int_equal(ws_get(&ws.accepted), 0);

    /* Plain HTTP on the same path is an ordinary request. */
    assert_int_equal(request(f->h, "GET", url(f, "/ws"), NULL, NULL, 0, &f->out), 200);
    snapshot();
    assert_false(seen.upgrade);
}

/* The refusal says "connection: close", and the server does close once
 * the answer is out (clients that read the body to EOF rely on it). */
static void test_ws_refused_closes(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    char head[2048], body[512];

    assert_int_equal(wsc_connect(&c, kx_http_port(f->srv), false), 0);
    assert_int_equal(wsc_handshake(&c, "/ws", "", true, head, sizeof(head), body, sizeof(body)),
                     401);
    assert_non_null(strcasestr(head, "\r\nconnection: close\r\n"));
    assert_true(wsc_sees_eof(&c, 2000));
    wsc_close(&c);
}

static void test_ws_no_conn_404(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    char head[2048], body[512];

    assert_int_equal(wsc_connect(&c, kx_http_port(f->srv), false), 0);
    assert_int_equal(wsc_handshake(&c, "/ws/none", "Authorization: Bearer good\r\n", true, head,
                                   sizeof(head), body, sizeof(body)),
                     404);
    assert_non_null(strstr(head, "HTTP/1.1 404 Not Found\r\n"));
    assert_string_equal(body, "{\"error\":\"no WebSocket at /ws/none\"}");
    wsc_close(&c);
    assert_int_equal(ws_get(&ws.accepted), 0);

    /* A server without WebSocket ops refuses every handshake. */
    {
        char err[256] = "";
        struct kx_http_server *s =
            kx_http_start("127.0.0.1", 0, 4096, ws_handler, NULL, err, sizeof(err));

        assert_non_null(s);
        assert_int_equal(wsc_connect(&c, kx_http_port(s), false), 0);
        assert_int_equal(wsc_handshake(&c, "/ws", "Authorization: Bearer good\r\n", true, head,
                                       sizeof(head), body, sizeof(body)),
                         400);
        assert_string_equal(body, "{\"error\":\"only WebSocket upgrades are supported\"}");
        wsc_close(&c);
        kx_http_stop(s);
        assert_int_equal(ws_get(&ws.accepted), 0);
    }
}

static void test_ws_echo(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    char *mid = malloc(3000);

    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws/greet");
    wsc_expect_text(&c, "hello", 5); /* queued by the handler, sent unasked */
    snapshot();
    assert_true(seen.upgrade);
    assert_string_equal(seen.path, "/ws/greet");
    assert_int_equal(ws_get(&ws.accepted), 1);

    assert_int_equal(wsc_send_text(&c, "ping one"), 0);
    wsc_expect_text(&c, "ping one", 8);
    /* Several at once come back in order; 126..65535 bytes use the 16-bit
     * length form. */
    memset(mid, 'm', 3000);
    assert_int_equal(wsc_send_text(&c, "a"), 0);
    assert_int_equal(wsc_send(&c, 1, true, mid, 3000), 0);
    assert_int_equal(wsc_send_text(&c, "{\"sub\":\"alerts\"}"), 0);
    wsc_expect_text(&c, "a", 1);
    wsc_expect_text(&c, mid, 3000);
    wsc_expect_text(&c, "{\"sub\":\"alerts\"}", 16);

    /* A clean close: the server answers with a close frame, close op once. */
    assert_int_equal(wsc_send(&c, 8, true, "\x03\xe8", 2), 0);
    wsc_expect_close(&c, 1000, NULL);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 1, 3000));
    assert_int_equal(ws_get(&ws.slots[0].closes), 1);
    wsc_close(&c);
    free(mid);
}

/* FIN=0 + continuation arrive as one message, also with a ping between. */
static void test_ws_fragments(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    int op;
    bool fin;
    char *d;
    size_t n;

    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws");
    assert_int_equal(wsc_send(&c, 1, false, "hel", 3), 0);
    assert_int_equal(wsc_send(&c, 0, true, "lo world", 8), 0);
    wsc_expect_text(&c, "hello world", 11);
    assert_int_equal(ws_get(&ws.slots[0].messages), 1);

    assert_int_equal(wsc_send(&c, 1, false, "one,", 4), 0);
    assert_int_equal(wsc_send(&c, 0, false, "two,", 4), 0);
    assert_int_equal(wsc_send(&c, 9, true, "pp", 2), 0); /* control frames may interleave */
    assert_int_equal(wsc_send(&c, 0, true, "three", 5), 0);
    assert_int_equal(wsc_recv(&c, &op, &fin, &d, &n), 0);
    assert_int_equal(op, 10); /* the pong comes first */
    assert_string_equal(d, "pp");
    free(d);
    wsc_expect_text(&c, "one,two,three", 13);
    assert_int_equal(ws_get(&ws.slots[0].messages), 2);
    wsc_close(&c);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 1, 3000));
}

/* KX_WS_RX_MAX bytes pass; one more closes with 1009, in one frame or
 * split over fragments. */
static void test_ws_too_large_1009(void **state)
{
    struct fixture *f = *state;
    struct wsc c;
    size_t max = KX_WS_RX_MAX;
    char *big = malloc(max + 1);

    for (size_t i = 0; i <= max; i++)
        big[i] = (char)('A' + i % 26);
    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws");
    assert_int_equal(wsc_send(&c, 1, true, big, max), 0);
    wsc_expect_text(&c, big, max);
    assert_int_equal(wsc_send(&c, 1, true, big, max + 1), 0);
    wsc_expect_close(&c, 1009, NULL);
    wsc_close(&c);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 1, 3000));
    pthread_mutex_lock(&ws.lock);
    int messages = ws.slots[0].messages;
    size_t last = ws.slots[0].last_len;
    pthread_mutex_unlock(&ws.lock);
    assert_int_equal(messages, 1);
    assert_int_equal(last, max);

    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws");
    assert_int_equal(wsc_send(&c, 1, false, big, max / 2), 0);
    assert_int_equal(wsc_send(&c, 0, false, big, max / 2), 0);
    assert_int_equal(wsc_send(&c, 0, true, "x", 1), 0);
    wsc_expect_close(&c, 1009, NULL);
    wsc_close(&c);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 2, 3000));
    assert_int_equal(ws_get(&ws.slots[1].messages), 0);
    free(big);
}

/* writeable returning -1: close 1008 with the reason it wrote. */
static void test_ws_writeable_refuses_1008(void **state)
{
    struct fixture *f = *state;
    struct wsc c;

    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws");
    assert_int_equal(wsc_send_text(&c, "still fine"), 0);
    wsc_expect_text(&c, "still fine", 10);
    assert_int_equal(wsc_send_text(&c, "kick"), 0);
    wsc_expect_close(&c, 1008, "kicked by test");
    wsc_close(&c);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 1, 3000));
    assert_int_equal(ws_get(&ws.slots[0].closes), 1);
}

/* close runs once per accepted connection however it ends: the client
 * drops TCP, the handshake fails after the handler accepted it, the
 * server stops with connections open (checked by teardown_ws). */
static void test_ws_close_once(void **state)
{
    struct fixture *f = *state;
    struct wsc c[5], open1;
    char head[2048], body[512];

    for (int i = 0; i < 5; i++) {
        wsc_open_ok(&c[i], kx_http_port(f->srv), false, "/ws");
        assert_int_equal(wsc_send_text(&c[i], "x"), 0);
        wsc_expect_text(&c[i], "x", 1);
    }
    assert_int_equal(ws_get(&ws.accepted), 5);
    for (int i = 0; i < 5; i++)
        wsc_close(&c[i]); /* no close frame */
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 5, 3000));

    /* The handler accepts, lws then fails the handshake (no key). */
    assert_int_equal(wsc_connect(&c[0], kx_http_port(f->srv), false), 0);
    wsc_handshake(&c[0], "/ws", "Authorization: Bearer good\r\n", false, head, sizeof(head), body,
                  sizeof(body));
    wsc_close(&c[0]);
    assert_true(WAIT_UNTIL(ws_get(&ws.accepted) == 6, 3000));
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 6, 3000));

    /* One left open for kx_http_stop. */
    wsc_open_ok(&open1, kx_http_port(f->srv), false, "/ws");
    usleep(20 * 1000);
    assert_int_equal(ws_get(&ws.closes), 6);
    pthread_mutex_lock(&ws.lock);
    for (int i = 0; i < WS_SLOTS; i++)
        if (ws.slots[i].used && ws.slots[i].closes > 1)
            fail_msg("slot %d closed %d times", i, ws.slots[i].closes);
    pthread_mutex_unlock(&ws.lock);
    kx_http_stop(f->srv);
    f->srv = NULL;
    assert_int_equal(ws_get(&ws.closes), 7);
    assert_int_equal(ws_get(&ws.bad_closes), 0);
    wsc_close(&open1);
}

/* A thread that calls kx_http_wake n times. */
struct waker {
    struct kx_http_server *srv;
    int n;
    int gap_us;        /* pause between calls */
    int64_t last_call; /* monotonic ns just before the last call */
};

static void *waker_main(void *arg)
{
    struct waker *w = arg;

    for (int i = 0; i < w->n; i++) {
        if (i == w->n - 1)
            w->last_call = kx_monotonic_ns();
        kx_http_wake(w->srv);
        if (w->gap_us)
            usleep((useconds_t)w->gap_us);
    }
    return NULL;
}

static void test_ws_wake(void **state)
{
    struct fixture *f = *state;
    pthread_t t[4];
    struct waker w[4];
    int64_t t0, t1, last, last_call = 0;
    int before, n;

    /* One call, one wake, on the loop. */
    kx_http_wake(f->srv);
    assert_true(WAIT_UNTIL(ws_get(&ws.wakes) == 1, 2000));
    usleep(50 * 1000);
    assert_int_equal(ws_get(&ws.wakes), 1);
    pthread_mutex_lock(&ws.lock);
    assert_string_equal(ws.wake_thread, "kx-http");
    pthread_mutex_unlock(&ws.lock);

    /* 8000 calls from 4 threads at once coalesce into a handful, and the
     * last wake comes after the last call. */
    usleep(20 * 1000);
    before = ws_get(&ws.wakes);
    t0 = kx_monotonic_ns();
    for (int i = 0; i < 4; i++) {
        w[i] = (struct waker){.srv = f->srv, .n = 2000};
        assert_int_equal(pthread_create(&t[i], NULL, waker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (w[i].last_call > last_call)
            last_call = w[i].last_call;
    }
    t1 = kx_monotonic_ns();
    usleep(3 * KX_WS_FLUSH_US);
    pthread_mutex_lock(&ws.lock);
    n = ws.wakes - before;
    last = ws.wake_ns[ws.wakes - 1];
    pthread_mutex_unlock(&ws.lock);
    assert_true(n >= 1);
    if (n > 2 + 2 * (t1 - t0) / (KX_WS_FLUSH_US * 1000))
        fail_msg("%d wakes for a burst of %" PRId64 " us", n, (t1 - t0) / 1000);
    if (last < last_call)
        fail_msg("last wake %" PRId64 " us before the last call", (last_call - last) / 1000);

    /* Calls every 0.5 ms for 150 ms are throttled to about one wake per
     * KX_WS_FLUSH_US (not 300), and nothing is lost at the end. The exact
     * spacing is test_ws_wake_rate_limit's, which fails today; this bound
     * allows the stray second wake per period that it finds. */
    usleep(20 * 1000);
    before = ws_get(&ws.wakes);
    w[0] = (struct waker){.srv = f->srv, .n = 300, .gap_us = 500};
    t0 = kx_monotonic_ns();
    waker_main(&w[0]);
    t1 = kx_monotonic_ns();
    usleep(3 * KX_WS_FLUSH_US);
    pthread_mutex_lock(&ws.lock);
    n = ws.wakes - before;
    last = ws.wake_ns[ws.wakes - 1];
    pthread_mutex_unlock(&ws.lock);
    if (n > 2 + 2 * (t1 - t0) / (KX_WS_FLUSH_US * 1000))
        fail_msg("%d wakes in %" PRId64 " ms", n, (t1 - t0) / 1000000);
    if (n < (t1 - t0) / (4 * KX_WS_FLUSH_US * 1000))
        fail_msg("only %d wakes in %" PRId64 " ms", n, (t1 - t0) / 1000000);
    if (last < w[0].last_call)
        fail_msg("last wake %" PRId64 " us before the last call", (w[0].last_call - last) / 1000);

    /* Workers answering slow requests wake the loop too, but that is not
     * a kx_http_wake. */
    usleep(20 * 1000);
    before = ws_get(&ws.wakes);
    assert_int_equal(request(f->h, "GET", url(f, "/slow/x"), NULL, NULL, 0, &f->out), 200);
    assert_int_equal(request(f->h, "GET", url(f, "/slow/x"), NULL, NULL, 0, &f->out), 200);
    usleep(2 * KX_WS_FLUSH_US);
    assert_int_equal(ws_get(&ws.wakes), before);
    kx_http_wake(NULL); /* no-op */
}

/*
 * kx_http_wake called without pause for 300 ms: no two wakes closer than
 * KX_WS_FLUSH_US, also when a wake-up reaches the loop after the deferred
 * wake is due but before its timer ran (the timer's call covers it).
 */
static void test_ws_wake_rate_limit(void **state)
{
    struct fixture *f = *state;
    int64_t end, min_gap = INT64_MAX;
    int n, close_pairs = 0;

    end = kx_monotonic_ns() + 300 * KX_NSEC_PER_MSEC;
    while (kx_monotonic_ns() < end)
        kx_http_wake(f->srv);
    usleep(3 * KX_WS_FLUSH_US);
    pthread_mutex_lock(&ws.lock);
    n = ws.wakes < WS_WAKES ? ws.wakes : WS_WAKES;
    for (int i = 1; i < n; i++) {
        int64_t gap = ws.wake_ns[i] - ws.wake_ns[i - 1];

        if (gap < min_gap)
            min_gap = gap;
        close_pairs += gap < KX_WS_FLUSH_US * 1000 - 500 * 1000;
    }
    pthread_mutex_unlock(&ws.lock);
    if (close_pairs > 0)
        fail_msg("%d wakes in 300 ms, %d pairs closer than %d us, the closest %" PRId64 " us apart",
                 n, close_pairs, KX_WS_FLUSH_US, min_gap / 1000);
}

/* The usual hub pattern: another thread queues data and wakes the loop;
 * the wake op asks for writeable on every connection. */
static void test_ws_writeable_all(void **state)
{
    struct fixture *f = *state;
    struct wsc c[3];
    struct par p;
    char u[128];

    for (int i = 0; i < 3; i++)
        wsc_open_ok(&c[i], kx_http_port(f->srv), false, "/ws");
    /* An HTTP keep-alive connection and a slow request in progress on the
     * same listener are not disturbed. */
    assert_int_equal(request(f->h, "GET", url(f, "/a"), NULL, NULL, 0, &f->out), 200);
    par_init(&p);
    snprintf(u, sizeof(u), "%s/slow/block?during=bcast", f->base);
    par_add(&p, u, 10000);
    assert_true(PUMP_UNTIL(&p, gate_count(&gate.entered) == 1, 5000));

    pthread_mutex_lock(&ws.lock);
    ws.wake_writeable_all = true;
    for (int i = 0; i < WS_SLOTS; i++)
        if (ws.slots[i].used) {
            char msg[32];
            int len = snprintf(msg, sizeof(msg), "event for %d", i);

            ws_push_locked(&ws.slots[i], msg, (size_t)len);
            ws_push_locked(&ws.slots[i], "second", 6);
        }
    pthread_mutex_unlock(&ws.lock);
    kx_http_wake(f->srv);
    for (int i = 0; i < 3; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof(msg), "event for %d", i);

        wsc_expect_text(&c[i], msg, (size_t)len);
        wsc_expect_text(&c[i], "second", 6);
    }
    pthread_mutex_lock(&ws.lock);
    for (int i = 0; i < 3; i++)
        if (ws.slots[i].writeables < 2)
            fail_msg("connection %d: %d writeable calls", i, ws.slots[i].writeables);
    pthread_mutex_unlock(&ws.lock);

    assert_int_equal(p.ndone, 0);
    gate_open();
    assert_true(PUMP_UNTIL(&p, p.ndone == 1, 5000));
    assert_int_equal(p.status[0], 200);
    assert_string_equal(p.out[0].data, "released:during=bcast");
    par_free(&p);
    assert_int_equal(request(f->h, "GET", url(f, "/b"), NULL, NULL, 0, &f->out), 200);
    assert_string_equal(f->out.data, "{\"ok\":true}");
    for (int i = 0; i < 3; i++)
        wsc_close(&c[i]);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 3, 3000));
}

/*
 * An empty text message is a message: writeable returning 1 with nothing
 * appended should send an empty frame (or at least keep asking for the
 * queued ones behind it), never stall the queue.
 */
static void test_ws_empty_message(void **state)
{
    struct fixture *f = *state;
    struct wsc c;

    wsc_open_ok(&c, kx_http_port(f->srv), false, "/ws");
    pthread_mutex_lock(&ws.lock);
    ws_push_locked(&ws.slots[0], "", 0);
    ws_push_locked(&ws.slots[0], "after", 5);
    ws.wake_writeable_all = true;
    pthread_mutex_unlock(&ws.lock);
    kx_http_wake(f->srv);
    wsc_expect_text(&c, "", 0);
    wsc_expect_text(&c, "after", 5);
    wsc_close(&c);
}

/* --- TLS ----------------------------------------------------------------- */

/* Writes a self-signed EC certificate for 127.0.0.1 to a new directory. */
static int tls_make_files(void)
{
    char cmd[512];

    snprintf(tls_dir, sizeof(tls_dir), "/tmp/kx-test-http-XXXXXX");
    if (!mkdtemp(tls_dir))
        return -1;
    snprintf(tls_cert, sizeof(tls_cert), "%s/cert.pem", tls_dir);
    snprintf(tls_key, sizeof(tls_key), "%s/key.pem", tls_dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
             tls_key, tls_cert);
    return system(cmd) == 0 ? 0 : -1;
}

static void tls_remove_files(void)
{
    if (tls_dir[0] == '\0')
        return;
    unlink(tls_cert);
    unlink(tls_key);
    rmdir(tls_dir);
}

static void test_tls_https(void **state)
{
    char err[256] = "", u[128];
    struct kx_http_server *s = start_ws(true, err, sizeof(err));
    struct sink out = {0};
    CURL *h = curl_easy_init();
    long conns = -1;

    if (!s)
        fail_msg("kx_http_start_opts: %s", err);
    gate_open();
    curl_easy_setopt(h, CURLOPT_CAINFO, tls_cert);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/api/x?a=1", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);
    assert_string_equal(out.data, "{\"ok\":true}");
    snapshot();
    assert_true(seen.tls);
    assert_string_equal(seen.path, "/api/x");
    assert_string_equal(seen.query, "a=1");
    /* Bodies both ways, slow requests, keep-alive over TLS. */
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/echo", kx_http_port(s));
    assert_int_equal(request(h, "POST", u, NULL, "secret", 6, &out), 200);
    assert_string_equal(out.data, "secret");
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/big?n=100000", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);
    assert_int_equal(out.len, 100000);
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/slow/echo?t=1", kx_http_port(s));
    assert_int_equal(request(h, "POST", u, NULL, "s", 1, &out), 202);
    assert_string_equal(out.data, "slow:s|t=1");
    snapshot_of(&slow_rec);
    assert_true(seen.tls);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 0);

    /* Without the CA, curl refuses the certificate. */
    {
        CURL *h2 = curl_easy_init();

        snprintf(u, sizeof(u), "https://127.0.0.1:%d/", kx_http_port(s));
        assert_int_equal(request(h2, "GET", u, NULL, NULL, 0, &out), -1);
        curl_easy_cleanup(h2);
    }
    /* Plain HTTP to the TLS port gets nowhere, and the server goes on. */
    {
        CURL *h2 = curl_easy_init();
        long st;

        curl_easy_setopt(h2, CURLOPT_TIMEOUT_MS, 3000L);
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/", kx_http_port(s));
        st = request(h2, "GET", u, NULL, NULL, 0, &out);
        assert_true(st != 200);
        curl_easy_cleanup(h2);
    }
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/again", kx_http_port(s));
    assert_int_equal(request(h, "GET", u, NULL, NULL, 0, &out), 200);

    curl_easy_cleanup(h);
    free(out.data);
    kx_http_stop(s);
    recorder_reset(&rec);
    recorder_reset(&slow_rec);
}

static void test_tls_wss(void **state)
{
    char err[256] = "", head[2048], body[512];
    struct kx_http_server *s = start_ws(true, err, sizeof(err));
    struct wsc c;

    if (!s)
        fail_msg("kx_http_start_opts: %s", err);
    /* Refused over TLS, with its body. */
    assert_int_equal(wsc_connect(&c, kx_http_port(s), true), 0);
    assert_int_equal(wsc_handshake(&c, "/ws", "", true, head, sizeof(head), body, sizeof(body)),
                     401);
    assert_string_equal(body, "{\"error\":\"a valid token is required\"}");
    wsc_close(&c);
    /* Accepted, echo, greeting. */
    wsc_open_ok(&c, kx_http_port(s), true, "/ws/greet");
    snapshot();
    assert_true(seen.upgrade);
    assert_true(seen.tls);
    wsc_expect_text(&c, "hello", 5);
    assert_int_equal(wsc_send_text(&c, "over tls"), 0);
    wsc_expect_text(&c, "over tls", 8);
    wsc_close(&c);
    assert_true(WAIT_UNTIL(ws_get(&ws.closes) == 1, 3000));
    kx_http_stop(s);
    assert_int_equal(ws_get(&ws.closes), ws_get(&ws.accepted));
    ws_reset();
    recorder_reset(&rec);
}

static void test_tls_bad_files(void **state)
{
    struct kx_http_opts o = {.addr = "127.0.0.1", .max_body = 4096, .handler = record_handler};
    char err[256], junk[160];
    FILE *fp;

    /* Missing certificate: the message names it. */
    o.tls_cert = "/nonexistent/kx-cert.pem";
    o.tls_key = tls_key;
    snprintf(err, sizeof(err), "untouched");
    errno = 0;
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/kx-cert.pem"));
    assert_non_null(strstr(err, "certificate"));
    assert_non_null(strstr(err, "No such file"));
    assert_true(errno != 0);

    /* Missing key. */
    o.tls_cert = tls_cert;
    o.tls_key = "/nonexistent/kx-key.pem";
    snprintf(err, sizeof(err), "untouched");
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/kx-key.pem"));
    assert_non_null(strstr(err, "key"));

    /* A file that is not a certificate: lws refuses it. */
    snprintf(junk, sizeof(junk), "%s/junk.pem", tls_dir);
    fp = fopen(junk, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    o.tls_cert = junk;
    o.tls_key = tls_key;
    snprintf(err, sizeof(err), "untouched");
    assert_null(kx_http_start_opts(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:0"));
    assert_non_null(strstr(err, "TLS"));
    unlink(junk);
}

/*
 * A certificate without a key is a configuration error and must say so.
 * (A key without a certificate too.)
 */
static void test_tls_cert_without_key(void **state)
{
    struct kx_http_opts o = {
        .addr = "127.0.0.1", .max_body = 4096, .handler = record_handler, .tls_cert = tls_cert};
    char err[256];
    struct kx_http_server *s;

    snprintf(err, sizeof(err), "untouched");
    s = kx_http_start_opts(&o, err, sizeof(err));
    kx_http_stop(s);
    assert_null(s);
    if (strcmp(err, "untouched") == 0)
        fail_msg("kx_http_start_opts failed without a message");
    assert_non_null(strstr(err, "key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port_is_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_with_query_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body_with_nuls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_900k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_declared_huge_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head, setup, teardown),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test_setup_teardown(test_large_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_start_stop_repeatedly),
        cmocka_unit_test(test_ipv6_any),
        cmocka_unit_test_setup_teardown(test_request_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resp_header, setup, teardown),
        cmocka_unit_test(test_resp_header_direct),
        cmocka_unit_test_setup_teardown(test_resp_header_accepted_is_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_request_and_answer, setup_slow, teardown_slow),
        cmocka_unit_test_setup_teardown(test_slow_keepalive, setup_slow, teardown_slow),
        cmocka_unit_test_setup_teardown(test_slow_parallel, setup_slow, teardown_slow),
        cmocka_unit_test(test_slow_queue_full_503),
        cmocka_unit_test(test_slow_client_disconnects),
        cmocka_unit_test(test_opts_invalid),
        cmocka_unit_test_setup_teardown(test_ws_refused, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_refused_closes, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_no_conn_404, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_echo, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_fragments, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_too_large_1009, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_writeable_refuses_1008, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_close_once, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_wake, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_wake_rate_limit, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_writeable_all, setup_ws, teardown_ws),
        cmocka_unit_test_setup_teardown(test_ws_empty_message, setup_ws, teardown_ws),
        cmocka_unit_test(test_tls_https),
        cmocka_unit_test(test_tls_wss),
        cmocka_unit_test(test_tls_bad_files),
        cmocka_unit_test(test_tls_cert_without_key),
    };
    int rc;

    kx_log_init("test_http", KX_LOG_WARN, false);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)getpid());
    if (tls_make_files() < 0) {
        fprintf(stderr, "cannot make a test certificate with openssl in %s\n", tls_dir);
        tls_remove_files();
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    tls_remove_files();
    curl_global_cleanup();
    return rc;
}
