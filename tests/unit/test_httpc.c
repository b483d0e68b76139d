/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_httpc.c - lib/httpc.c against real local peers: the hub's own HTTP
 * server (hub/http.c) for statuses and bodies, and a scripted raw-socket
 * peer for exact request bytes, Retry-After, keep-alive and timeouts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "httpc.h"
#include "log.h"
#include "util.h"

/* ---- a scripted raw HTTP peer (thread "peer") --------------------------- */

struct peer {
    int lfd, port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards everything below */
    char response[4096];  /* full response bytes to send; "" = never answer */
    char last[16384];     /* last request, headers + body */
    size_t last_len;
    int accepts, requests;
};

static struct peer peer = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Reads one request from fd into buf; its length, 0 on EOF/stop, -1 error. */
static ssize_t peer_read_request(struct peer *p, int fd, char *buf, size_t len)
{
    size_t got = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char *eoh;
        ssize_t r;

        if (atomic_load(&p->stop))
            return 0;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        r = read(fd, buf + got, len - 1 - got);
        if (r <= 0)
            return r < 0 ? -1 : 0;
        got += (size_t)r;
        buf[got] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
        if (eoh) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            size_t want = (size_t)(eoh + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);

            if (got >= want || got == len - 1)
                return (ssize_t)got;
        }
        if (got == len - 1)
            return (ssize_t)got;
    }
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    char buf[sizeof(p->last)];

    while (!atomic_load(&p->stop)) {
        struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
        int fd;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&p->lock);
        p->accepts++;
        pthread_mutex_unlock(&p->lock);
        for (;;) {
            char resp[sizeof(p->response)];
            ssize_t n = peer_read_request(p, fd, buf, sizeof(buf));

            if (n <= 0)
                break;
            pthread_mutex_lock(&p->lock);
            memcpy(p->last, buf, (size_t)n + 1);
            p->last_len = (size_t)n;
            p->requests++;
            memcpy(resp, p->response, sizeof(resp));
            pthread_mutex_unlock(&p->lock);
            if (resp[0] == '\0') {
                /* Silent: hold the connection until the client gives up. */
                while (peer_read_request(p, fd, buf, sizeof(buf)) > 0)
                    ;
                break;
            }
            if (write(fd, resp, strlen(resp)) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void peer_start(struct peer *p)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 8), 0);
    getsockname(p->lfd, (struct sockaddr *)&sa, &sl);
    p->port = ntohs(sa.sin_port);
    atomic_store(&p->stop, false);
    p->accepts = p->requests = 0;
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    close(p->lfd);
}

static void peer_respond(struct peer *p, const char *resp)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->response, sizeof(p->response), "%s", resp);
    pthread_mutex_unlock(&p->lock);
}

/* Copy of the last request (caller frees) and the counters. */
static char *peer_last(struct peer *p, int *accepts, int *requests)
{
    char *s;

    pthread_mutex_lock(&p->lock);
    s = strdup(p->last);
    if (accepts)
        *accepts = p->accepts;
    if (requests)
        *requests = p->requests;
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* ---- the hub's server as a peer ----------------------------------------- */

struct seen {
    pthread_mutex_t lock;
    char method[16], content_type[128], authorization[128];
    char body[256];
};
static struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* kx-http thread. /status/N answers N with a small JSON body; /long with
 * 10000 bytes; anything else 200. */
static void hub_handler(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    pthread_mutex_lock(&seen.lock);
    snprintf(seen.method, sizeof(seen.method), "%s", req->method);
    snprintf(seen.content_type, sizeof(seen.content_type), "%s", req->content_type);
    snprintf(seen.authorization, sizeof(seen.authorization), "%s", req->authorization);
    snprintf(seen.body, sizeof(seen.body), "%.*s", (int)req->body_len, req->body);
    pthread_mutex_unlock(&seen.lock);

    if (strncmp(req->path, "/status/", 8) == 0) {
        resp->status = atoi(req->path + 8);
        kx_buf_printf(&resp->body, "{\"error\":\"bad\nalert %d\"}", resp->status);
    } else if (strcmp(req->path, "/long") == 0) {
        resp->status = 400;
        for (int i = 0; i < 10000; i++)
            kx_buf_append(&resp->body, "x", 1);
    } else {
        kx_buf_printf(&resp->body, "{\"ok\":true}");
    }
}

/* A copy taken under the lock, so a failing assert never leaves it held. */
static struct seen seen_now(void)
{
    struct seen out;

    pthread_mutex_lock(&seen.lock);
    out = seen;
    pthread_mutex_unlock(&seen.lock);
    return out;
}

struct fixture {
    struct kx_http_server *srv;
    struct kx_httpc *c;
    char base[64];
    char peer_base[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct kx_httpc_opts o = {.timeout = 2 * KX_NSEC_PER_SEC};
    char err[256];

    f->srv = kx_http_start("127.0.0.1", 0, 1 << 20, hub_handler, NULL, err, sizeof(err));
    assert_non_null(f->srv);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", kx_http_port(f->srv));
    f->c = kx_httpc_new(&o);
    assert_non_null(f->c);
    peer_start(&peer);
    snprintf(f->peer_base, sizeof(f->peer_base), "http://127.0.0.1:%d", peer.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    kx_httpc_free(f->c);
    kx_http_stop(f->srv);
    peer_stop(&peer);
    free(f);
    return 0;
}

static const char *u(const char *base, const char *path)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s%s", base, path);
    return buf;
}

static void test_2xx_delivered(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    struct seen now;
    char *keys[] = {"Authorization"}, *vals[] = {"Bearer s3cret"};
    struct kx_strmap hdrs = {.keys = keys, .vals = vals, .n = 1};
    const char *body = "{\"rule\":\"x\"}";

    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->base, "/in"), "application/json", &hdrs, body,
                                   strlen(body), &res),
                     0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"ok\":true}");
    assert_string_equal(res.error, "");
    assert_int_equal(res.retry_after, 0);
    now = seen_now();
    assert_string_equal(now.method, "POST");
    assert_string_equal(now.content_type, "application/json");
    assert_string_equal(now.authorization, "Bearer s3cret");
    assert_string_equal(now.body, body);

    /* PUT, and 201/204 count as delivered too. */
    assert_int_equal(
        kx_httpc_send(f->c, "PUT", u(f->base, "/status/201"), "text/plain", NULL, "a", 1, &res), 0);
    assert_int_equal(res.status, 201);
    now = seen_now();
    assert_string_equal(now.method, "PUT");
    assert_string_equal(now.content_type, "text/plain");
    assert_int_equal(
        kx_httpc_send(f->c, "POST", u(f->base, "/status/204"), NULL, NULL, NULL, 0, &res), 0);
}

static void test_4xx_permanent_with_excerpt(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    char want[256];
    char *keys[] = {"X-Token"}, *vals[] = {"TOPSECRET"};
    struct kx_strmap hdrs = {.keys = keys, .vals = vals, .n = 1};

    assert_int_equal(
        kx_httpc_send(f->c, NULL, u(f->base, "/status/400?token=abc"), NULL, &hdrs, "{}", 2, &res),
        -EINVAL);
    assert_int_equal(res.status, 400);
    /* Path and query hidden (tokens live there), newline in the body flattened. */
    snprintf(want, sizeof(want), "HTTP 400 from %s/...: {\"error\":\"bad alert 400\"}",
             f->base);
    assert_string_equal(res.error, want);
    assert_string_equal(res.body, "{\"error\":\"bad\nalert 400\"}");
    assert_null(strstr(res.error, "TOPSECRET"));
    assert_null(strstr(res.error, "abc"));

    assert_int_equal(
        kx_httpc_send(f->c, NULL, u(f->base, "/status/404"), NULL, NULL, "{}", 2, &res), -EINVAL);
    assert_int_equal(
        kx_httpc_send(f->c, NULL, u(f->base, "/status/401"), NULL, NULL, "{}", 2, &res), -EINVAL);
    /* A long body: excerpt bounded, error bounded. */
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->base, "/long"), NULL, NULL, "{}", 2, &res),
                     -EINVAL);
    assert_int_equal(strlen(res.body), sizeof(res.body) - 1);
    assert_true(strlen(res.error) < sizeof(res.error));
    assert_non_null(strstr(res.error, "HTTP 400 from "));
}

static void test_429_5xx_retry(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    int codes[] = {429, 500, 502, 503, 504};

    for (size_t i = 0; i < KX_ARRAY_SIZE(codes); i++) {
        char path[32], want[32];

        snprintf(path, sizeof(path), "/status/%d", codes[i]);
        assert_int_equal(kx_httpc_send(f->c, NULL, u(f->base, path), NULL, NULL, "{}", 2, &res),
                         -EAGAIN);
        assert_int_equal(res.status, codes[i]);
        snprintf(want, sizeof(want), "HTTP %d from ", codes[i]);
        assert_non_null(strstr(res.error, want));
        assert_int_equal(res.retry_after, 0);
    }
}

static void test_retry_after(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    char resp[512], date[64];
    time_t when = time(NULL) + 120;
    struct tm tm;

    peer_respond(&peer, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
                        "Content-Length: 9\r\n\r\nslow down");
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->peer_base, "/x"), NULL, NULL, "{}", 2, &res),
                     -EAGAIN);
    assert_int_equal(res.status, 429);
    assert_int_equal(res.retry_after, 3 * KX_NSEC_PER_SEC);
    assert_non_null(strstr(res.error, ": slow down"));

    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 503 Service Unavailable\r\nretry-after:  %s \r\nContent-Length: 0\r\n\r\n",
             date);
    peer_respond(&peer, resp);
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->peer_base, "/x"), NULL, NULL, "{}", 2, &res),
                     -EAGAIN);
    assert_int_equal(res.status, 503);
    assert_true(res.retry_after > 110 * KX_NSEC_PER_SEC);
    assert_true(res.retry_after <= 120 * KX_NSEC_PER_SEC);

    /* Garbage and a past date give no hint. */
    peer_respond(&peer, "HTTP/1.1 503 X\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->peer_base, "/x"), NULL, NULL, "{}", 2, &res),
                     -EAGAIN);
    assert_int_equal(res.retry_after, 0);
    peer_respond(&peer, "HTTP/1.1 503 X\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                        "Content-Length: 0\r\n\r\n");
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->peer_base, "/x"), NULL, NULL, "{}", 2, &res),
                     -EAGAIN);
    assert_int_equal(res.retry_after, 0);
}

static void test_request_bytes_and_keepalive(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    char *keys[] = {"X-Custom", "Authorization"}, *vals[] = {"v 1", "Bearer tok"};
    struct kx_strmap hdrs = {.keys = keys, .vals = vals, .n = 2};
    int accepts = 0, requests = 0;
    char *req;

    peer_respond(&peer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(kx_httpc_send(f->c, "PUT", u(f->peer_base, "/hook"), "application/json",
                                       &hdrs, "{\"a\":1}", 7, &res),
                         0);
        assert_string_equal(res.body, "ok");
    }
    req = peer_last(&peer, &accepts, &requests);
    assert_int_equal(requests, 3);
    assert_int_equal(accepts, 1); /* one connection, kept alive */
    assert_true(strncmp(req, "PUT /hook HTTP/1.1\r\n", 20) == 0);
    assert_non_null(strcasestr(req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(req, "\r\nX-Custom: v 1\r\n"));
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer tok\r\n"));
    assert_non_null(strcasestr(req, "\r\nContent-Length: 7\r\n"));
    assert_null(strcasestr(req, "\r\nExpect:"));
    assert_non_null(strstr(req, "\r\n\r\n{\"a\":1}"));
    free(req);

    /* No content type: curl must not invent a form one. A custom
     * Content-Type replaces the argument. */
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->peer_base, "/raw"), NULL, NULL, "x", 1, &res),
                     0);
    req = peer_last(&peer, NULL, NULL);
    assert_null(strcasestr(req, "Content-Type"));
    free(req);
    keys[0] = "content-type";
    vals[0] = "text/x-custom";
    assert_int_equal(
        kx_httpc_send(f->c, NULL, u(f->peer_base, "/raw"), "application/json", &hdrs, "x", 1, &res),
        0);
    req = peer_last(&peer, NULL, NULL);
    assert_non_null(strstr(req, "\r\ncontent-type: text/x-custom\r\n"));
    assert_null(strcasestr(req, "application/json"));
    free(req);
}

static void test_header_injection_refused(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;
    char *keys[] = {"X-Evil"}, *vals[] = {"a\r\nX-Other: b"};
    struct kx_strmap hdrs = {.keys = keys, .vals = vals, .n = 1};

    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->base, "/"), NULL, &hdrs, "{}", 2, &res),
                     -EINVAL);
    assert_non_null(strstr(res.error, "X-Evil"));
    assert_null(strstr(res.error, "X-Other"));
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    struct kx_httpc_opts o = {.timeout = 300 * KX_NSEC_PER_MSEC};
    struct kx_httpc *c = kx_httpc_new(&o);
    struct kx_http_result res;
    int64_t t0, dt;

    peer_respond(&peer, ""); /* never answers */
    t0 = kx_monotonic_ns();
    assert_int_equal(kx_httpc_send(c, NULL, u(f->peer_base, "/slow"), NULL, NULL, "{}", 2, &res),
                     -EAGAIN);
    dt = kx_monotonic_ns() - t0;
    assert_true(dt >= 250 * KX_NSEC_PER_MSEC);
    assert_true(dt < 5 * KX_NSEC_PER_SEC); /* the 10 s default would blow this */
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.error, "POST http://127.0.0.1:"));
    assert_non_null(strcasestr(res.error, "timed out"));
    kx_httpc_free(c);
}

static void test_refused_and_unresolvable(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    struct kx_http_result res;
    char url[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* A port that was just free: bound, never listened on, closed. */
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%d/in", ntohs(sa.sin_port));
    assert_int_equal(kx_httpc_send(f->c, NULL, url, NULL, NULL, "{}", 2, &res), -EAGAIN);
    assert_int_equal(res.status, 0);
    snprintf(url, sizeof(url), "POST http://127.0.0.1:%d/...: Connection refused",
             ntohs(sa.sin_port));
    assert_true(strncmp(res.error, url, strlen(url)) == 0);
    assert_null(strstr(res.error, "pw"));

    assert_int_equal(
        kx_httpc_send(f->c, NULL, "http://klaxon-test.invalid/x", NULL, NULL, "{}", 2, &res),
        -EAGAIN);
    assert_non_null(strstr(res.error, "POST http://klaxon-test.invalid/...: "));
    assert_null(strstr(res.error, "refused")); /* no stale errno from the last try */
}

static void test_bad_url_permanent(void **state)
{
    struct fixture *f = *state;
    struct kx_http_result res;

    assert_int_equal(kx_httpc_send(f->c, NULL, "ftp://127.0.0.1/x", NULL, NULL, "{}", 2, &res),
                     -EINVAL);
    assert_non_null(strstr(res.error, "POST ftp://127.0.0.1/...: "));
    assert_non_null(strstr(res.error, "not supported"));
    assert_int_equal(kx_httpc_send(f->c, NULL, "http://[::1/x", NULL, NULL, "{}", 2, &res),
                     -EINVAL);
    assert_int_equal(kx_httpc_send(f->c, NULL, "", NULL, NULL, "{}", 2, &res), -EINVAL);
    assert_int_equal(kx_httpc_send(f->c, NULL, NULL, NULL, NULL, "{}", 2, &res), -EINVAL);
    /* The handle still works afterwards. */
    assert_int_equal(kx_httpc_send(f->c, NULL, u(f->base, "/"), NULL, NULL, "{}", 2, &res), 0);
}

static void test_tls_options(void **state)
{
    struct kx_httpc_opts o = {.ca_file = "/nonexistent/ca.pem", .insecure = false};
    struct kx_httpc *c = kx_httpc_new(&o);
    struct kx_http_result res;

    assert_non_null(c);
    /* Plain http ignores the CA; https to a plain server fails, retryably. */
    assert_int_equal(
        kx_httpc_send(c, NULL, u(((struct fixture *)*state)->base, "/"), NULL, NULL, "{}", 2, &res),
        0);
    assert_int_not_equal(kx_httpc_send(c, NULL, "https://127.0.0.1:1/", NULL, NULL, "{}", 2, &res),
                         0);
    kx_httpc_free(c);
    kx_httpc_free(NULL);
}

/* ---- TLS against openssl s_server (the openssl CLI is a test dependency) --- */

struct tls_peer {
    pid_t pid;
    int port;
    char dir[64];
};

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A self-signed cert for 127.0.0.1 in a temp dir, and s_server answering
 * GET with a page; require_client: demand a client cert signed by it. */
static void tls_peer_start(struct tls_peer *t, bool require_client)
{
    char cmd[512], cert[96], key[96], accept[16];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int i;

    snprintf(t->dir, sizeof(t->dir), "/tmp/kx-test-tls-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", t->dir);
    snprintf(key, sizeof(key), "%s/key.pem", t->dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    t->port = free_port();
    snprintf(accept, sizeof(accept), "%d", t->port);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (require_client)
            execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", cert, "-key", key,
                   "-www", "-quiet", "-Verify", "1", "-CAfile", cert, (char *)NULL);
        else
            execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", cert, "-key", key,
                   "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    sa.sin_port = htons(t->port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (i = 0; i < 100; i++) { /* up to 5 s for s_server to listen */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

        close(fd);
        if (ok)
            break;
        usleep(50000);
    }
    assert_true(i < 100);
}

static void tls_peer_stop(struct tls_peer *t)
{
    char path[128];

    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
    snprintf(path, sizeof(path), "%s/cert.pem", t->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/key.pem", t->dir);
    unlink(path);
    rmdir(t->dir);
}

static int tls_get(const struct kx_httpc_opts *o, int port, struct kx_http_result *res)
{
    struct kx_httpc *c = kx_httpc_new(o);
    char url[64];
    int rc;

    assert_non_null(c);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
    rc = kx_httpc_send(c, "GET", url, NULL, NULL, NULL, 0, res);
    kx_httpc_free(c);
    return rc;
}

static void test_tls_verify_and_cafile(void **state)
{
    struct tls_peer t;
    struct kx_http_result res;
    char cert[96];

    tls_peer_start(&t, false);
    snprintf(cert, sizeof(cert), "%s/cert.pem", t.dir);
    /* Self-signed: refused by default, retryable (the receiver may fix it). */
    assert_int_equal(tls_get(&(struct kx_httpc_opts){0}, t.port, &res), -EAGAIN);
    assert_non_null(strstr(res.error, "GET https://127.0.0.1:"));
    assert_non_null(strstr(res.error, "certificate"));
    /* checkcert: false, or the right CA. */
    assert_int_equal(tls_get(&(struct kx_httpc_opts){.insecure = true}, t.port, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(tls_get(&(struct kx_httpc_opts){.ca_file = cert}, t.port, &res), 0);
    /* Our own TLS material missing: a configuration error. */
    assert_int_equal(
        tls_get(&(struct kx_httpc_opts){.ca_file = "/nonexistent/ca.pem"}, t.port, &res), -EINVAL);
    tls_peer_stop(&t);
}

static void test_tls_mutual(void **state)
{
    struct tls_peer t;
    struct kx_http_result res;
    char cert[96], key[96];

    tls_peer_start(&t, true);
    snprintf(cert, sizeof(cert), "%s/cert.pem", t.dir);
    snprintf(key, sizeof(key), "%s/key.pem", t.dir);
    assert_int_not_equal(tls_get(&(struct kx_httpc_opts){.ca_file = cert}, t.port, &res), 0);
    assert_int_equal(
        tls_get(&(struct kx_httpc_opts){.ca_file = cert, .client_cert = cert, .client_key = key},
                t.port, &res),
        0);
    assert_int_equal(res.status, 200);
    assert_int_equal(tls_get(&(struct kx_httpc_opts){.ca_file = cert,
                                                     .client_cert = "/nonexistent.pem",
                                                     .client_key = key},
                             t.port, &res),
                     -EINVAL);
    assert_non_null(strstr(res.error, "/nonexistent.pem"));
    tls_peer_stop(&t);
}

/* Basic auth for outputs needs base64 (RFC 4648 test vectors). */
static void test_base64(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy"};
    size_t n;

    (void)state;
    for (size_t i = 0; i < 7; i++) {
        char *b = kx_base64_encode(in[i], strlen(in[i]), &n);

        assert_non_null(b);
        assert_string_equal(b, want[i]);
        assert_int_equal(n, strlen(want[i]));
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test_setup_teardown(test_2xx_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_4xx_permanent_with_excerpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_5xx_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bytes_and_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_injection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_unresolvable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_options, setup, teardown),
        cmocka_unit_test(test_tls_verify_and_cafile),
        cmocka_unit_test(test_tls_mutual),
    };
    int rc;

    kx_log_init("test_httpc", KX_LOG_WARN, false);
    assert_int_equal(kx_httpc_global_init(), 0);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    kx_httpc_global_cleanup();
    return rc;
}
