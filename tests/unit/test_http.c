/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http.c - hub/http.c against a real client (libcurl) on loopback:
 * methods, query, headers, exact bodies (NULs, 900 KB), keep-alive, 413,
 * 405, large responses, port conflicts and repeated start/stop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_BODY (1024 * 1024)

/* What the handler saw last; written on kx-http, read by the test thread. */
struct recorder {
    pthread_mutex_t lock;
    int calls;
    char method[16];
    char path[256];
    char query[256];
    char content_type[128];
    char authorization[128];
    char *body; /* owned */
    size_t body_len;
};

static struct recorder rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A copy of the recorder taken under its lock, so that a failing assert
 * (which longjmps) never leaves the lock held. Body stays owned by seen. */
static struct recorder seen;

static void snapshot(void)
{
    free(seen.body);
    pthread_mutex_lock(&rec.lock);
    seen.calls = rec.calls;
    memcpy(seen.method, rec.method, sizeof(seen.method));
    memcpy(seen.path, rec.path, sizeof(seen.path));
    memcpy(seen.query, rec.query, sizeof(seen.query));
    memcpy(seen.content_type, rec.content_type, sizeof(seen.content_type));
    memcpy(seen.authorization, rec.authorization, sizeof(seen.authorization));
    seen.body_len = rec.body_len;
    seen.body = malloc(rec.body_len + 1);
    if (rec.body)
        memcpy(seen.body, rec.body, rec.body_len + 1);
    else
        seen.body[0] = '\0';
    pthread_mutex_unlock(&rec.lock);
}

/* Runs on kx-http. Routes:
 *   /echo          200, echoes the body (application/octet-stream)
 *   /big?n=N       200, N bytes of a known pattern
 *   /status/NNN    that status, {"status":NNN}
 *   anything else  200 {"ok":true} */
static void record_handler(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    int *counter = ctx;

    pthread_mutex_lock(&rec.lock);
    rec.calls++;
    snprintf(rec.method, sizeof(rec.method), "%s", req->method);
    snprintf(rec.path, sizeof(rec.path), "%s", req->path);
    snprintf(rec.query, sizeof(rec.query), "%s", req->query);
    snprintf(rec.content_type, sizeof(rec.content_type), "%s", req->content_type);
    snprintf(rec.authorization, sizeof(rec.authorization), "%s", req->authorization);
    free(rec.body);
    rec.body = malloc(req->body_len + 1);
    memcpy(rec.body, req->body, req->body_len + 1);
    rec.body_len = req->body_len;
    pthread_mutex_unlock(&rec.lock);
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

/* One request on handle h (reused by the caller for keep-alive). */
static long request(CURL *h, const char *method, const char *url, const char *ctype,
                    const void *body, size_t len, struct sink *out)
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
    pthread_mutex_lock(&rec.lock);
    free(rec.body);
    rec.body = NULL;
    rec.body_len = 0;
    pthread_mutex_unlock(&rec.lock);
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
    };
    int rc;

    kx_log_init("test_http", KX_LOG_WARN, false);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
