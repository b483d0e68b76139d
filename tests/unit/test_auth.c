/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_auth.c - hub/auth.c without a network: open mode, bearer, basic,
 * session cookies (issue, expiry, tampering, other credentials), the
 * WebSocket access_token, the ingest token, 401 answers and the login page,
 * CORS and the WebSocket origin check. The same paths against a real hub:
 * tests/integration/test_api_auth.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "util.h"

#define TTL_S 3600

/* What a hub would be started with; NULL/0 = unset. */
struct settings {
    const char *token, *user, *password, *ingest;
    const char *cors[4]; /* NULL-terminated */
    bool tls;
    const char *ui_dir;
};

static struct kx_auth *mk(const struct settings *s)
{
    struct kx_hub_config c = {0};
    char *cors[4];
    char err[256] = "";
    struct kx_auth *a;
    size_t n = 0;

    while (n < 4 && s->cors[n]) {
        cors[n] = (char *)s->cors[n];
        n++;
    }
    c.http_token = (char *)s->token;
    c.http_basic_user = (char *)s->user;
    c.http_basic_password = (char *)s->password;
    c.http_ingest_token = (char *)s->ingest;
    c.http_cors_origins.v = cors;
    c.http_cors_origins.n = n;
    c.http_session_ttl = TTL_S * KX_NSEC_PER_SEC;
    c.http_tls_cert = s->tls ? "/etc/klaxon/tls.crt" : NULL;
    c.http_tls_key = s->tls ? "/etc/klaxon/tls.key" : NULL;
    c.http_ui = true;
    c.http_ui_dir = (char *)s->ui_dir;
    a = kx_auth_new(&c, err, sizeof(err));
    if (!a)
        fail_msg("kx_auth_new: %s", err);
    return a;
}

/* A request with every string "" (as lib/http.c hands them over). */
static struct kx_http_req rq(const char *method, const char *path)
{
    return (struct kx_http_req){.method = method,
                                .path = path,
                                .query = "",
                                .content_type = "",
                                .authorization = "",
                                .body = "",
                                .peer = "127.0.0.1",
                                .cookie = "",
                                .origin = "",
                                .host = "",
                                .accept = ""};
}

static struct kx_http_resp resp_new(void)
{
    struct kx_http_resp r = {.status = 200, .content_type = "application/json"};

    kx_buf_init(&r.body, 1 << 20);
    return r;
}

static void resp_free(struct kx_http_resp *r)
{
    kx_buf_free(&r->body);
    kx_buf_free(&r->headers);
    *r = resp_new();
}

static const char *body(const struct kx_http_resp *r)
{
    return r->body.len ? r->body.data : "";
}

static const char *hdrs(const struct kx_http_resp *r)
{
    return r->headers.len ? r->headers.data : "";
}

/* How many header lines "name: value" r carries exactly. */
static int hdr_count(const struct kx_http_resp *r, const char *name, const char *value)
{
    char line[1200];
    int n = 0;

    snprintf(line, sizeof(line), "%s: %s\r\n", name, value);
    for (const char *p = hdrs(r); (p = strstr(p, line)); p++)
        if (p == hdrs(r) || p[-1] == '\n')
            n++;
    return n;
}

/* The value of the first "name: " header into out ("" when absent). */
static const char *hdr_get(const struct kx_http_resp *r, const char *name, char *out, size_t len)
{
    char pfx[128];
    const char *p = hdrs(r), *e;

    out[0] = '\0';
    snprintf(pfx, sizeof(pfx), "%s: ", name);
    for (; (p = strstr(p, pfx)); p++) {
        if (p != hdrs(r) && p[-1] != '\n')
            continue;
        p += strlen(pfx);
        e = strstr(p, "\r\n");
        snprintf(out, len, "%.*s", (int)(e - p), p);
        break;
    }
    return out;
}

static char *b64(const char *s)
{
    char *e = kx_base64_encode(s, strlen(s), NULL);

    assert_non_null(e);
    return e;
}

/* Checks one request against a; 0 or the 401 with its reason. */
static int check(const struct kx_auth *a, enum kx_auth_scope scope, const struct kx_http_req *q,
                 const char *want_error)
{
    struct kx_http_resp r = resp_new();
    int rc = kx_auth_check(a, scope, q, &r);

    if (want_error) {
        assert_int_equal(rc, -EACCES);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.content_type, "application/json");
        char want[128];
        snprintf(want, sizeof(want), "{\"error\":\"%s\"}\n", want_error);
        assert_string_equal(body(&r), want);
        assert_int_equal(hdr_count(&r, "www-authenticate", "Bearer realm=\"klaxon\""), 1);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(r.body.len, 0);
        assert_int_equal(r.headers.len, 0);
    }
    resp_free(&r);
    return rc;
}

#define REQUIRED "authentication required"
#define INVALID "invalid credentials"

/* POSTs body to /api/v1/session; the answer in *r (caller frees). */
static void login(const struct kx_auth *a, const char *ctype, const char *json,
                  struct kx_http_resp *r)
{
    struct kx_http_req q = rq("POST", "/api/v1/session");

    q.content_type = ctype;
    q.body = json;
    q.body_len = strlen(json);
    *r = resp_new();
    kx_auth_session(a, &q, r);
}

/* The klaxon_session value a successful login sets (into out). */
static void login_cookie(const struct kx_auth *a, const char *json, char *out, size_t len)
{
    struct kx_http_resp r;
    char sc[512];

    login(a, "application/json", json, &r);
    assert_int_equal(r.status, 204);
    hdr_get(&r, "set-cookie", sc, sizeof(sc));
    assert_memory_equal(sc, KX_AUTH_COOKIE "=", strlen(KX_AUTH_COOKIE) + 1);
    snprintf(out, len, "%.*s", (int)strcspn(sc + strlen(KX_AUTH_COOKIE) + 1, ";"),
             sc + strlen(KX_AUTH_COOKIE) + 1);
    resp_free(&r);
    kx_buf_free(&r.body);
}

/* ------------------------------------------------------------------ tests */

static void test_open(void **st)
{
    struct kx_auth *a = mk(&(struct settings){0});
    struct kx_http_req q = rq("GET", "/api/v1/alerts");
    struct kx_http_resp r;

    assert_true(kx_auth_api_open(a));
    check(a, KX_AUTH_API, &q, NULL);
    q.authorization = "Bearer whatever"; /* ignored: nothing to check against */
    check(a, KX_AUTH_API, &q, NULL);
    q = rq("POST", "/");
    check(a, KX_AUTH_INGEST, &q, NULL);
    /* NULL (no auth set up) behaves as open. */
    check(NULL, KX_AUTH_API, &q, NULL);
    /* Login: nothing to log in to, 204 without a cookie. */
    login(a, "application/json", "{\"token\":\"x\"}", &r);
    assert_int_equal(r.status, 204);
    assert_null(strstr(hdrs(&r), "set-cookie"));
    resp_free(&r);
    kx_buf_free(&r.body);
    /* No key to sign cookies with. */
    char v[KX_AUTH_COOKIE_MAX];
    assert_int_equal(kx_auth_cookie_make(a, 2000000000, v, sizeof(v)), -EINVAL);
    kx_auth_free(a);
    kx_auth_free(NULL);
}

static void test_bearer(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "s3cret-token"});
    struct kx_http_req q = rq("GET", "/api/v1/alerts");
    struct kx_http_resp r = resp_new();

    assert_false(kx_auth_api_open(a));
    check(a, KX_AUTH_API, &q, REQUIRED);
    q.authorization = "Bearer s3cret-token";
    check(a, KX_AUTH_API, &q, NULL);
    q.authorization = "bearer   s3cret-token  "; /* scheme case, spaces */
    check(a, KX_AUTH_API, &q, NULL);
    static const char *wrong[] = {
        "Bearer s3cret-toke",
        "Bearer s3cret-token2",
        "Bearer S3CRET-TOKEN",
        "Bearer ",
        "Bearer",
        "Token s3cret-token",
        "s3cret-token",
        "Basic czNjcmV0",
        "Bearers s3cret-token",
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(wrong); i++) {
        q.authorization = wrong[i];
        check(a, KX_AUTH_API, &q, INVALID);
    }
    /* Without basic auth configured: no Basic challenge. */
    q.authorization = "";
    assert_int_equal(kx_auth_check(a, KX_AUTH_API, &q, &r), -EACCES);
    assert_int_equal(hdr_count(&r, "www-authenticate", "Basic realm=\"klaxon\""), 0);
    /* Headers already there (CORS) are kept. */
    resp_free(&r);
    kx_http_resp_header(&r, "vary", "Origin");
    assert_int_equal(kx_auth_check(a, KX_AUTH_API, &q, &r), -EACCES);
    assert_int_equal(hdr_count(&r, "vary", "Origin"), 1);
    resp_free(&r);
    kx_buf_free(&r.body);
    kx_auth_free(a);
}

static void test_basic(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.user = "ops", .password = "pa:ss word"});
    struct kx_http_req q = rq("GET", "/metrics");
    struct kx_http_resp r = resp_new();
    char hdr[256], *e;

    e = b64("ops:pa:ss word"); /* the password may hold ':' */
    snprintf(hdr, sizeof(hdr), "Basic %s", e);
    free(e);
    q.authorization = hdr;
    check(a, KX_AUTH_API, &q, NULL);
    static const char *wrong[] = {
        "ops:pa:ss wor", "ops:pa:ss word ", "Ops:pa:ss word", "ops", ":pa:ss word", "ops:", ""};
    for (size_t i = 0; i < KX_ARRAY_SIZE(wrong); i++) {
        e = b64(wrong[i]);
        snprintf(hdr, sizeof(hdr), "Basic %s", e);
        free(e);
        check(a, KX_AUTH_API, &q, INVALID);
    }
    /* Malformed base64. */
    static const char *bad[] = {"Basic b3BzOnBhOnNzIHdvcmQ", /* one char short of a group: ok */
                                "Basic !!!!",
                                "Basic b3Bz=OnBh",
                                "Basic b",
                                "Basic b3BzO===",
                                "Basic b3BzOnBhOnNzIHdvcmQ=x"};
    for (size_t i = 0; i < KX_ARRAY_SIZE(bad); i++) {
        q.authorization = bad[i];
        check(a, KX_AUTH_API, &q, i == 0 ? NULL : INVALID);
    }
    /* A bearer token is no use when only basic auth is configured. */
    q.authorization = "Bearer ops";
    check(a, KX_AUTH_API, &q, INVALID);
    /* The 401 asks for both, Basic on a second line. */
    q.authorization = "";
    assert_int_equal(kx_auth_check(a, KX_AUTH_API, &q, &r), -EACCES);
    assert_string_equal(hdrs(&r), "www-authenticate: Bearer realm=\"klaxon\"\r\n"
                                  "www-authenticate: Basic realm=\"klaxon\"\r\n");
    resp_free(&r);
    kx_buf_free(&r.body);
    kx_auth_free(a);
}

static void test_both(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "tok", .user = "u", .password = "p"});
    struct kx_http_req q = rq("GET", "/api/v1/stats");
    char hdr[64], *e = b64("u:p");

    snprintf(hdr, sizeof(hdr), "Basic %s", e);
    free(e);
    q.authorization = "Bearer tok";
    check(a, KX_AUTH_API, &q, NULL);
    q.authorization = hdr;
    check(a, KX_AUTH_API, &q, NULL);
    /* The password is not a token, nor the token a password. */
    q.authorization = "Bearer p";
    check(a, KX_AUTH_API, &q, INVALID);
    e = b64("u:tok");
    snprintf(hdr, sizeof(hdr), "Basic %s", e);
    free(e);
    q.authorization = hdr;
    check(a, KX_AUTH_API, &q, INVALID);
    kx_auth_free(a);
}

static void test_cookie(void **st)
{
    const struct settings s = {.token = "tok", .user = "u", .password = "p"};
    struct kx_auth *a = mk(&s), *replica = mk(&s);
    struct kx_auth *other_pw = mk(&(struct settings){.token = "tok", .user = "u", .password = "q"});
    struct kx_auth *other_tok =
        mk(&(struct settings){.token = "tok2", .user = "u", .password = "p"});
    struct kx_http_req q = rq("GET", "/api/v1/alerts");
    char v[KX_AUTH_COOKIE_MAX], cookie[512];
    int64_t now = kx_now_ns() / KX_NSEC_PER_SEC;

    /* From a login, sent back alone or among other cookies. */
    login_cookie(a, "{\"token\":\"tok\"}", v, sizeof(v));
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    q.cookie = cookie;
    check(a, KX_AUTH_API, &q, NULL);
    check(replica, KX_AUTH_API, &q, NULL); /* stateless: every replica accepts it */
    /* Changing any credential logs everyone out. */
    check(other_pw, KX_AUTH_API, &q, INVALID);
    check(other_tok, KX_AUTH_API, &q, INVALID);
    login_cookie(a, "{\"username\":\"u\",\"password\":\"p\"}", v, sizeof(v));
    snprintf(cookie, sizeof(cookie), "theme=dark; " KX_AUTH_COOKIE "=%s ;lang=en", v);
    check(a, KX_AUTH_API, &q, NULL);
    /* A stale copy next to a good one (two paths) is fine. */
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=1.00; " KX_AUTH_COOKIE "=%s", v);
    check(a, KX_AUTH_API, &q, NULL);

    /* Expired, and signed for longer than a session lasts. */
    assert_int_equal(kx_auth_cookie_make(a, now - 1, v, sizeof(v)), 0);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    check(a, KX_AUTH_API, &q, INVALID);
    assert_int_equal(kx_auth_cookie_make(a, now + 10 * TTL_S, v, sizeof(v)), 0);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    check(a, KX_AUTH_API, &q, INVALID);
    assert_int_equal(kx_auth_cookie_make(a, now + 60, v, sizeof(v)), 0);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    check(a, KX_AUTH_API, &q, NULL);

    /* Tampered: the expiry moved, one hex digit flipped, cut short, junk. */
    char t[KX_AUTH_COOKIE_MAX];
    snprintf(t, sizeof(t), "%lld%s", (long long)(now + 61), strchr(v, '.'));
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", t);
    check(a, KX_AUTH_API, &q, INVALID);
    snprintf(t, sizeof(t), "%s", v);
    t[strlen(t) - 1] = t[strlen(t) - 1] == '0' ? '1' : '0';
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", t);
    check(a, KX_AUTH_API, &q, INVALID);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%.*s", (int)strlen(v) - 1, v);
    check(a, KX_AUTH_API, &q, INVALID);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=0%s", v); /* leading zero */
    check(a, KX_AUTH_API, &q, INVALID);
    const char *junk[] = {KX_AUTH_COOKIE "=", KX_AUTH_COOKIE "=.", KX_AUTH_COOKIE "=abc.def",
                          KX_AUTH_COOKIE "=-1.00"};
    for (size_t i = 0; i < KX_ARRAY_SIZE(junk); i++) {
        q.cookie = junk[i];
        check(a, KX_AUTH_API, &q, INVALID);
    }
    /* Signed with other credentials. */
    assert_int_equal(kx_auth_cookie_make(other_pw, now + 60, v, sizeof(v)), 0);
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    q.cookie = cookie;
    check(a, KX_AUTH_API, &q, INVALID);
    /* Other cookies only: nothing presented. */
    q.cookie = "theme=dark; xklaxon_session=1";
    check(a, KX_AUTH_API, &q, REQUIRED);
    kx_auth_free(a);
    kx_auth_free(replica);
    kx_auth_free(other_pw);
    kx_auth_free(other_tok);
}

static void test_access_token(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "s3/cr t&x"});
    struct kx_http_req q = rq("GET", "/ws");

    /* As lib/http.c hands the query over: %-encoded. */
    q.query = "kind=all&access_token=s3/cr%20t%26x";
    check(a, KX_AUTH_API, &q, REQUIRED); /* not a WebSocket handshake: ignored */
    q.upgrade = true;
    check(a, KX_AUTH_API, &q, NULL);
    q.query = "access_token=s3%2Fcr%20t%26x&priority=warning";
    check(a, KX_AUTH_API, &q, NULL);
    q.query = "access_token=s3/cr%20t";
    check(a, KX_AUTH_API, &q, INVALID);
    q.query = "access_token=s3/cr%2";
    check(a, KX_AUTH_API, &q, INVALID);
    q.query = "access_token=";
    check(a, KX_AUTH_API, &q, INVALID);
    q.query = "xaccess_token=s3/cr%20t%26x";
    check(a, KX_AUTH_API, &q, REQUIRED);
    q.query = "";
    check(a, KX_AUTH_API, &q, REQUIRED);
    /* Never for ingest. */
    q = rq("POST", "/");
    q.upgrade = true;
    q.query = "access_token=s3/cr%20t%26x";
    struct kx_auth *b = mk(&(struct settings){.token = "s3/cr t&x", .ingest = "in"});
    check(b, KX_AUTH_INGEST, &q, REQUIRED);
    kx_auth_free(b);
    kx_auth_free(a);
}

static void test_ingest(void **st)
{
    struct kx_auth *a =
        mk(&(struct settings){.token = "api", .user = "u", .password = "p", .ingest = "ing"});
    struct kx_auth *open_ingest = mk(&(struct settings){.token = "api"});
    struct kx_auth *only_ingest = mk(&(struct settings){.ingest = "ing"});
    struct kx_http_req q = rq("POST", "/");
    char hdr[64], *e = b64("u:p");
    char v[KX_AUTH_COOKIE_MAX], cookie[256];

    check(a, KX_AUTH_INGEST, &q, REQUIRED);
    q.authorization = "Bearer ing";
    check(a, KX_AUTH_INGEST, &q, NULL);
    check(a, KX_AUTH_API, &q, INVALID); /* the ingest token opens ingest only */
    q.authorization = "Bearer api";
    check(a, KX_AUTH_INGEST, &q, NULL); /* the API credentials also do */
    snprintf(hdr, sizeof(hdr), "Basic %s", e);
    free(e);
    q.authorization = hdr;
    check(a, KX_AUTH_INGEST, &q, NULL);
    q.authorization = "";
    login_cookie(a, "{\"token\":\"api\"}", v, sizeof(v));
    snprintf(cookie, sizeof(cookie), KX_AUTH_COOKIE "=%s", v);
    q.cookie = cookie;
    check(a, KX_AUTH_INGEST, &q, NULL);
    q.cookie = "";
    q.authorization = "Bearer nope";
    check(a, KX_AUTH_INGEST, &q, INVALID);
    /* No ingest token: open, even though the API is protected. */
    check(open_ingest, KX_AUTH_INGEST, &q, NULL);
    q.authorization = "";
    check(open_ingest, KX_AUTH_INGEST, &q, NULL);
    /* Only an ingest token: the API is open, ingest is not. */
    check(only_ingest, KX_AUTH_API, &q, NULL);
    check(only_ingest, KX_AUTH_INGEST, &q, REQUIRED);
    q.authorization = "Bearer ing";
    check(only_ingest, KX_AUTH_INGEST, &q, NULL);
    kx_auth_free(a);
    kx_auth_free(open_ingest);
    kx_auth_free(only_ingest);
}

static void test_session_login(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "tok", .user = "u", .password = "p"});
    struct kx_auth *tls = mk(&(struct settings){.token = "tok", .tls = true});
    struct kx_auth *tok_only = mk(&(struct settings){.token = "tok"});
    struct kx_http_resp r;
    char sc[512], want[512], v[KX_AUTH_COOKIE_MAX];
    long long exp;

    login(a, "application/json", "{\"token\":\"tok\"}", &r);
    assert_int_equal(r.status, 204);
    hdr_get(&r, "set-cookie", sc, sizeof(sc));
    assert_int_equal(sscanf(sc, KX_AUTH_COOKIE "=%lld.", &exp), 1);
    int64_t now = kx_now_ns() / KX_NSEC_PER_SEC;
    assert_true(exp >= now + TTL_S - 5 && exp <= now + TTL_S);
    snprintf(v, sizeof(v), "%.*s", (int)strcspn(sc + strlen(KX_AUTH_COOKIE) + 1, ";"),
             sc + strlen(KX_AUTH_COOKIE) + 1);
    snprintf(want, sizeof(want),
             KX_AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d", v, TTL_S);
    assert_string_equal(sc, want);
    assert_null(strstr(sc, "Secure"));
    assert_int_equal(hdr_count(&r, "cache-control", "no-store"), 1);
    resp_free(&r);
    kx_buf_free(&r.body);

    /* Under TLS the cookie is Secure. */
    login(tls, "application/json; charset=utf-8", "{\"token\":\"tok\"}", &r);
    assert_int_equal(r.status, 204);
    hdr_get(&r, "set-cookie", sc, sizeof(sc));
    assert_non_null(strstr(sc, "; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"));
    resp_free(&r);
    kx_buf_free(&r.body);

    /* Username and password. */
    login(a, "application/json", "{\"username\":\"u\",\"password\":\"p\"}", &r);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    kx_buf_free(&r.body);

    /* Wrong credentials: 401, at once, no Basic challenge (no browser dialog
     * over the login page). */
    static const char *bad[] = {
        "{\"token\":\"tok2\"}",
        "{\"token\":\"\"}",
        "{\"username\":\"u\",\"password\":\"q\"}",
        "{\"username\":\"v\",\"password\":\"p\"}",
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(bad); i++) {
        int64_t t0 = kx_monotonic_ns();
        login(a, "application/json", bad[i], &r);
        assert_true(kx_monotonic_ns() - t0 < 100 * KX_NSEC_PER_MSEC);
        assert_int_equal(r.status, 401);
        assert_string_equal(body(&r), "{\"error\":\"" INVALID "\"}\n");
        assert_null(strstr(hdrs(&r), "set-cookie"));
        assert_string_equal(hdrs(&r), "www-authenticate: Bearer realm=\"klaxon\"\r\n");
        resp_free(&r);
        kx_buf_free(&r.body);
    }
    /* Basic auth not configured: no username login. */
    login(tok_only, "application/json", "{\"username\":\"u\",\"password\":\"p\"}", &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    kx_buf_free(&r.body);

    /* Malformed requests: 400 (or 415) with a reason. */
    static const struct {
        const char *ctype, *json, *why;
        int status;
    } malformed[] = {
        {"application/json", "{\"token\":", "invalid JSON", 400},
        {"application/json", "", "invalid JSON", 400},
        {"application/json", "[\"tok\"]", "want a JSON object", 400},
        {"application/json", "{\"token\":\"tok\",\"remember\":true}",
         "unknown key \\\"remember\\\"", 400},
        {"application/json", "{\"token\":42}", "\\\"token\\\" must be given once, as a string",
         400},
        {"application/json", "{\"token\":\"tok\",\"token\":\"tok\"}", "given once", 400},
        {"application/json", "{\"token\":\"tok\",\"username\":\"u\"}", "want either", 400},
        {"application/json", "{\"username\":\"u\"}", "want either", 400},
        {"application/json", "{}", "want either", 400},
        {"text/plain", "{\"token\":\"tok\"}", "Content-Type: application/json", 415},
        {"", "{\"token\":\"tok\"}", "Content-Type: application/json", 415},
        {"application/jsonx", "{\"token\":\"tok\"}", "Content-Type: application/json", 415},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(malformed); i++) {
        login(a, malformed[i].ctype, malformed[i].json, &r);
        assert_int_equal(r.status, malformed[i].status);
        if (!strstr(body(&r), malformed[i].why))
            fail_msg("%s: want \"%s\" in %s", malformed[i].json, malformed[i].why, body(&r));
        assert_null(strstr(hdrs(&r), "set-cookie"));
        resp_free(&r);
        kx_buf_free(&r.body);
    }
    kx_auth_free(a);
    kx_auth_free(tls);
    kx_auth_free(tok_only);
}

static void test_session_logout(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "tok"});
    struct kx_auth *tls = mk(&(struct settings){.token = "tok", .tls = true});
    struct kx_http_req q = rq("DELETE", "/api/v1/session");
    struct kx_http_resp r = resp_new();
    char sc[256];

    kx_auth_session(a, &q, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(hdr_get(&r, "set-cookie", sc, sizeof(sc)),
                        KX_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    resp_free(&r);
    kx_auth_session(tls, &q, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(hdr_get(&r, "set-cookie", sc, sizeof(sc)),
                        KX_AUTH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure");
    resp_free(&r);
    q.method = "GET";
    kx_auth_session(a, &q, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    kx_buf_free(&r.body);
    kx_auth_free(a);
    kx_auth_free(tls);
}

static void test_login_page(void **st)
{
    char dir[] = "/tmp/klaxon-test-auth-XXXXXX", path[128];
    static const char page[] = "<!doctype html><title>Klaxon login</title>";
    struct kx_auth *a, *nopage;
    struct kx_http_req q = rq("GET", "/ui/");
    struct kx_http_resp r = resp_new();
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/login.html", dir);
    assert_non_null(f = fopen(path, "w"));
    fputs(page, f);
    fclose(f);
    a = mk(&(struct settings){.token = "tok", .user = "u", .password = "p", .ui_dir = dir});
    nopage = mk(&(struct settings){.token = "tok", .ui_dir = "/nonexistent/klaxon-ui"});

    q.accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    const char *paths[] = {"/ui", "/ui/", "/ui/index.html", "/ui/app.js"};
    for (size_t i = 0; i < KX_ARRAY_SIZE(paths); i++) {
        q.path = paths[i];
        assert_int_equal(kx_auth_check(a, KX_AUTH_API, &q, &r), -EACCES);
        assert_int_equal(r.status, 401);
        assert_string_equal(body(&r), page);
        assert_non_null(strstr(r.content_type, "text/html"));
        assert_int_equal(hdr_count(&r, "www-authenticate", "Bearer realm=\"klaxon\""), 1);
        assert_int_equal(hdr_count(&r, "www-authenticate", "Basic realm=\"klaxon\""), 1);
        resp_free(&r);
    }
    /* Wrong credentials: the login page again. */
    q.path = "/ui/";
    q.authorization = "Bearer nope";
    assert_int_equal(kx_auth_check(a, KX_AUTH_API, &q, &r), -EACCES);
    assert_string_equal(body(&r), page);
    resp_free(&r);
    q.authorization = "";
    /* Not a browser, not a UI page, or no login page: JSON. */
    q.accept = "application/json";
    check(a, KX_AUTH_API, &q, REQUIRED);
    q.accept = "text/html";
    q.path = "/api/v1/alerts";
    check(a, KX_AUTH_API, &q, REQUIRED);
    q.path = "/uix";
    check(a, KX_AUTH_API, &q, REQUIRED);
    q.path = "/ui/";
    check(nopage, KX_AUTH_API, &q, REQUIRED);
    q.path = "/";
    check(a, KX_AUTH_INGEST, &q, NULL);
    kx_buf_free(&r.body);
    kx_auth_free(a);
    kx_auth_free(nopage);
    unlink(path);
    rmdir(dir);
}

static void test_cors(void **st)
{
    struct kx_auth *off = mk(&(struct settings){.token = "tok"});
    struct kx_auth *on = mk(&(struct settings){
        .token = "tok", .cors = {"https://ops.example.com", "http://localhost:3000"}});
    struct kx_auth *any = mk(&(struct settings){.cors = {"*", "https://ops.example.com"}});
    struct kx_http_req q = rq("GET", "/api/v1/alerts");
    struct kx_http_resp r = resp_new();
    char v[256];

    /* Off: nothing added, preflights left to the router. */
    q.origin = "https://ops.example.com";
    assert_false(kx_auth_cors(off, &q, &r));
    assert_int_equal(r.headers.len, 0);
    q.method = "OPTIONS";
    assert_false(kx_auth_cors(off, &q, &r));
    assert_int_equal(r.headers.len, 0);
    assert_false(kx_auth_cors(NULL, &q, &r));

    /* On: a listed origin gets its answer with credentials. */
    q.method = "GET";
    assert_false(kx_auth_cors(on, &q, &r));
    assert_string_equal(hdr_get(&r, "access-control-allow-origin", v, sizeof(v)),
                        "https://ops.example.com");
    assert_int_equal(hdr_count(&r, "access-control-allow-credentials", "true"), 1);
    assert_int_equal(hdr_count(&r, "vary", "Origin"), 1);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* Not listed (nor a near miss), or no Origin: nothing. */
    const char *others[] = {"https://evil.example.com",
                            "https://ops.example.com:8443",
                            "http://ops.example.com",
                            "https://ops.example.com.evil.io",
                            "null",
                            ""};
    for (size_t i = 0; i < KX_ARRAY_SIZE(others); i++) {
        q.origin = others[i];
        q.method = "GET";
        assert_false(kx_auth_cors(on, &q, &r));
        q.method = "OPTIONS";
        assert_false(kx_auth_cors(on, &q, &r));
        assert_int_equal(r.headers.len, 0);
        assert_int_equal(r.status, 200);
    }
    /* Preflight from a listed origin: answered here. */
    q.origin = "http://localhost:3000";
    q.method = "OPTIONS";
    assert_true(kx_auth_cors(on, &q, &r));
    assert_int_equal(r.status, 204);
    assert_string_equal(hdr_get(&r, "access-control-allow-origin", v, sizeof(v)),
                        "http://localhost:3000");
    assert_int_equal(hdr_count(&r, "access-control-allow-methods", "GET, POST, DELETE, OPTIONS"),
                     1);
    assert_int_equal(hdr_count(&r, "access-control-allow-headers", "Authorization, Content-Type"),
                     1);
    assert_int_equal(hdr_count(&r, "access-control-max-age", "600"), 1);
    resp_free(&r);

    /* "*": any origin, without credentials; a listed one still gets them. */
    q.origin = "https://anything.example.net";
    q.method = "GET";
    assert_false(kx_auth_cors(any, &q, &r));
    assert_string_equal(hdr_get(&r, "access-control-allow-origin", v, sizeof(v)), "*");
    assert_null(strstr(hdrs(&r), "access-control-allow-credentials"));
    resp_free(&r);
    q.method = "OPTIONS";
    assert_true(kx_auth_cors(any, &q, &r));
    assert_int_equal(r.status, 204);
    resp_free(&r);
    q.origin = "https://ops.example.com";
    q.method = "GET";
    assert_false(kx_auth_cors(any, &q, &r));
    assert_string_equal(hdr_get(&r, "access-control-allow-origin", v, sizeof(v)),
                        "https://ops.example.com");
    assert_int_equal(hdr_count(&r, "access-control-allow-credentials", "true"), 1);
    resp_free(&r);
    kx_buf_free(&r.body);
    kx_auth_free(off);
    kx_auth_free(on);
    kx_auth_free(any);
}

static void test_ws_origin(void **st)
{
    struct kx_auth *a = mk(&(struct settings){.token = "tok", .cors = {"https://ops.example.com"}});
    struct kx_auth *any = mk(&(struct settings){.cors = {"*"}});
    struct kx_http_req q = rq("GET", "/ws");
    static const struct {
        const char *origin, *host;
        bool ok;
    } cases[] = {
        {"", "hub:2801", true}, /* not a browser */
        {"", "", true},
        {"http://hub:2801", "hub:2801", true},
        {"http://HUB:2801", "hub:2801", true},
        {"http://127.0.0.1:2801", "127.0.0.1:2801", true},
        {"http://[::1]:2801", "[::1]:2801", true},
        {"http://hub.example", "hub.example:80", true},
        {"https://hub.example", "hub.example", true},
        {"https://hub.example:443", "hub.example", true},
        {"https://ops.example.com", "hub:2801", true}, /* listed */
        {"http://hub:2802", "hub:2801", false},
        {"http://evil.example:2801", "hub:2801", false},
        {"http://hub", "hub:2801", false},
        {"https://hub.example", "hub.example:80", false},
        {"http://hub:2801/x", "hub:2801", false},
        {"null", "hub:2801", false},
        {"http://hub:2801", "", false},
        {"hub:2801", "hub:2801", false},
        {"http://[::1]:2801", "[::1]:2802", false},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(cases); i++) {
        q.origin = cases[i].origin;
        q.host = cases[i].host;
        if (kx_auth_ws_origin_ok(a, &q) != cases[i].ok)
            fail_msg("origin \"%s\" host \"%s\": want %s", cases[i].origin, cases[i].host,
                     cases[i].ok ? "ok" : "refused");
    }
    q.origin = "https://evil.example";
    q.host = "hub:2801";
    assert_true(kx_auth_ws_origin_ok(any, &q));
    assert_false(kx_auth_ws_origin_ok(NULL, &q));
    kx_auth_free(a);
    kx_auth_free(any);
}

static void test_new_refuses(void **st)
{
    static const struct {
        struct settings s;
        const char *why;
    } bad[] = {
        {{.token = ""}, "http.token is empty"},
        {{.ingest = ""}, "http.ingest_token is empty"},
        {{.user = "u"}, "go together"},
        {{.user = "a:b", .password = "p"}, "without ':'"},
        {{.user = "", .password = "p"}, "non-empty"},
        {{.cors = {"https://ops.example.com/"}}, "is not an origin"},
        {{.cors = {"ops.example.com"}}, "is not an origin"},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(bad); i++) {
        struct kx_hub_config c = {0};
        char *cors[1] = {(char *)bad[i].s.cors[0]};
        char err[256] = "";

        c.http_token = (char *)bad[i].s.token;
        c.http_basic_user = (char *)bad[i].s.user;
        c.http_basic_password = (char *)bad[i].s.password;
        c.http_ingest_token = (char *)bad[i].s.ingest;
        c.http_cors_origins.v = cors;
        c.http_cors_origins.n = cors[0] ? 1 : 0;
        c.http_session_ttl = KX_NSEC_PER_SEC;
        errno = 0;
        assert_null(kx_auth_new(&c, err, sizeof(err)));
        assert_int_equal(errno, EINVAL);
        if (!strstr(err, bad[i].why))
            fail_msg("case %zu: want \"%s\" in \"%s\"", i, bad[i].why, err);
    }
    /* The config's own loader gives a session_ttl; a zero one is refused. */
    struct kx_hub_config c = {.http_token = "t"};
    char err[256];
    assert_null(kx_auth_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "session_ttl"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),           cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_basic),          cmocka_unit_test(test_both),
        cmocka_unit_test(test_cookie),         cmocka_unit_test(test_access_token),
        cmocka_unit_test(test_ingest),         cmocka_unit_test(test_session_login),
        cmocka_unit_test(test_session_logout), cmocka_unit_test(test_login_page),
        cmocka_unit_test(test_cors),           cmocka_unit_test(test_ws_origin),
        cmocka_unit_test(test_new_refuses),
    };

    kx_log_init("test_auth", KX_LOG_ERROR, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
