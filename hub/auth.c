/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c - the hub's HTTP authentication (see auth.h and docs/api.md
 * "Authentication").
 *
 * Secrets are compared as SHA-256 digests with CRYPTO_memcmp: the time a
 * comparison takes depends neither on where the first wrong byte is nor on
 * the configured secret's length. Nothing here sleeps (it runs on the event
 * loop) and nothing logs a presented or configured secret.
 */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "ui.h"
#include "util.h"

#define AUTH_MD_LEN 32                       /* SHA-256 */
#define AUTH_CRED_MAX 4096                   /* a decoded credential longer than this is wrong */
#define AUTH_CLOCK_SLACK 300                 /* s: replicas' clocks may differ this much */
#define AUTH_COOKIE_PREFIX "klaxon-session:" /* what the cookie's HMAC covers, before expiry */

struct kx_auth {
    bool has_token;                       /* http.token set */
    bool has_basic;                       /* http.basic_user + basic_password set */
    bool has_ingest;                      /* http.ingest_token set */
    unsigned char token_md[AUTH_MD_LEN];  /* SHA-256 of the token */
    unsigned char user_md[AUTH_MD_LEN];   /* ... of the basic user */
    unsigned char pass_md[AUTH_MD_LEN];   /* ... of the basic password */
    unsigned char ingest_md[AUTH_MD_LEN]; /* ... of the ingest token */
    unsigned char key[AUTH_MD_LEN];       /* session cookie HMAC key */
    char **cors;                          /* owned: allowed origins, "*" left out */
    size_t ncors;                         /* entries in cors */
    bool cors_any;                        /* "*" listed */
    int64_t ttl;                          /* session lifetime, s */
    bool secure;                          /* TLS configured: cookies get Secure */
    bool ui;                              /* the UI is served: refusals may show the login page */
    char *ui_dir;                         /* owned; NULL = the built-in UI files */
};

enum auth_result {
    AUTH_NONE, /* no credentials presented */
    AUTH_BAD,  /* something presented, nothing valid */
    AUTH_OK,
};

static void auth_digest(const void *p, size_t n, unsigned char md[AUTH_MD_LEN])
{
    if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
        memset(md, 0, AUTH_MD_LEN); /* cannot happen with the default provider */
}

/* Does p[0..n) equal the secret whose digest is md? Constant time in md. */
static bool auth_match(const unsigned char md[AUTH_MD_LEN], const char *p, size_t n)
{
    unsigned char got[AUTH_MD_LEN];
    bool eq;

    auth_digest(p, n, got);
    eq = CRYPTO_memcmp(got, md, AUTH_MD_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return eq;
}

/* One credential into the key: a presence byte and its length first, so that
 * ("ab","c") and ("a","bc") give different keys. */
static int auth_key_add(EVP_MD_CTX *ctx, const char *s)
{
    unsigned char hdr[9] = {s != NULL};
    uint64_t n = s ? strlen(s) : 0;

    for (int i = 0; i < 8; i++)
        hdr[1 + i] = (unsigned char)(n >> (8 * i));
    return EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 &&
                   (n == 0 || EVP_DigestUpdate(ctx, s, (size_t)n) == 1)
               ? 0
               : -EIO;
}

static int auth_derive_key(struct kx_auth *a, const struct kx_hub_config *c)
{
    static const char label[] = "klaxon-session-key-v1";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int rc = -EIO;

    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, label, sizeof(label)) == 1 && auth_key_add(ctx, c->http_token) == 0 &&
        auth_key_add(ctx, c->http_basic_user) == 0 &&
        auth_key_add(ctx, c->http_basic_password) == 0 &&
        EVP_DigestFinal_ex(ctx, a->key, &len) == 1 && len == AUTH_MD_LEN)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* "scheme://host[:port]" with nothing after: what a browser sends as Origin. */
static bool auth_origin_valid(const char *o)
{
    const char *sep = strstr(o, "://");

    return sep && sep > o && sep[3] != '\0' && strpbrk(sep + 3, "/?#@ ") == NULL;
}

void kx_auth_free(struct kx_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->ncors; i++)
        free(a->cors[i]);
    free(a->cors);
    free(a->ui_dir);
    OPENSSL_cleanse(a, sizeof(*a));
    free(a);
}

struct kx_auth *kx_auth_new(const struct kx_hub_config *c, char *err, size_t errlen)
{
    struct kx_auth *a = calloc(1, sizeof(*a));

    if (!a)
        goto nomem;
    /* An empty secret is a mistake (an empty HTTP_TOKEN variable), not a wish
     * for an open API: say so rather than open it or accept "Bearer ". */
    if (c->http_token && !*c->http_token) {
        snprintf(err, errlen, "http.token is empty: set a token, or unset it for an open API");
        goto fail;
    }
    if (c->http_ingest_token && !*c->http_ingest_token) {
        snprintf(err, errlen,
                 "http.ingest_token is empty: set a token, or unset it for an open ingest");
        goto fail;
    }
    if ((c->http_basic_user != NULL) != (c->http_basic_password != NULL)) {
        snprintf(err, errlen, "http.basic_user and http.basic_password go together: set both");
        goto fail;
    }
    if (c->http_basic_user &&
        (!*c->http_basic_user || strchr(c->http_basic_user, ':') || !*c->http_basic_password)) {
        snprintf(err, errlen,
                 "http.basic_user must be non-empty without ':', and "
                 "http.basic_password non-empty");
        goto fail;
    }
    if (c->http_session_ttl < KX_NSEC_PER_SEC) {
        snprintf(err, errlen, "http.session_ttl: must be at least 1s");
        goto fail;
    }
    a->has_token = c->http_token != NULL;
    a->has_basic = c->http_basic_user != NULL;
    a->has_ingest = c->http_ingest_token != NULL;
    if (a->has_token)
        auth_digest(c->http_token, strlen(c->http_token), a->token_md);
    if (a->has_basic) {
        auth_digest(c->http_basic_user, strlen(c->http_basic_user), a->user_md);
        auth_digest(c->http_basic_password, strlen(c->http_basic_password), a->pass_md);
    }
    if (a->has_ingest)
        auth_digest(c->http_ingest_token, strlen(c->http_ingest_token), a->ingest_md);
    if (auth_derive_key(a, c) < 0) {
        snprintf(err, errlen, "cannot derive the session key (OpenSSL SHA-256 failed)");
        goto fail;
    }
    a->ttl = c->http_session_ttl / KX_NSEC_PER_SEC;
    a->secure = c->http_tls_cert != NULL;
    a->ui = c->http_ui;
    if (c->http_ui_dir && *c->http_ui_dir && !(a->ui_dir = strdup(c->http_ui_dir)))
        goto nomem;
    if (c->http_cors_origins.n > 0 && !(a->cors = calloc(c->http_cors_origins.n, sizeof(*a->cors))))
        goto nomem;
    for (size_t i = 0; i < c->http_cors_origins.n; i++) {
        const char *o = c->http_cors_origins.v[i];

        if (strcmp(o, "*") == 0) {
            a->cors_any = true;
            continue;
        }
        if (!auth_origin_valid(o)) {
            snprintf(err, errlen,
                     "http.cors_origins: \"%s\" is not an origin: want scheme://host[:port] "
                     "without a path (e.g. https://ops.example.com), or *",
                     o);
            goto fail;
        }
        if (!(a->cors[a->ncors] = strdup(o)))
            goto nomem;
        a->ncors++;
    }
    return a;

nomem:
    snprintf(err, errlen, "out of memory");
    kx_auth_free(a);
    errno = ENOMEM;
    return NULL;
fail:
    kx_auth_free(a);
    errno = EINVAL;
    return NULL;
}

bool kx_auth_api_open(const struct kx_auth *a)
{
    return !a || (!a->has_token && !a->has_basic);
}

/* ------------------------------------------------------------ credentials */

static bool auth_basic_ok(const struct kx_auth *a, const char *b64, size_t n)
{
    char dec[AUTH_CRED_MAX];
    ssize_t len = kx_base64_decode(b64, n, false, dec, sizeof(dec));
    const char *colon = len > 0 ? memchr(dec, ':', (size_t)len) : NULL;
    bool ok = false;

    if (a->has_basic && colon) {
        /* Both compared every time: no hint which of the two was wrong. */
        bool u = auth_match(a->user_md, dec, (size_t)(colon - dec));
        bool p = auth_match(a->pass_md, colon + 1, (size_t)(dec + len - colon - 1));

        ok = u & p;
    }
    OPENSSL_cleanse(dec, sizeof(dec));
    return ok;
}

/* Bearer s[0..n): the API token, or for ingest also the ingest token. */
static bool auth_bearer_ok(const struct kx_auth *a, enum kx_auth_scope scope, const char *s,
                           size_t n)
{
    bool api = a->has_token && auth_match(a->token_md, s, n);
    bool ingest = scope == KX_AUTH_INGEST && a->has_ingest && auth_match(a->ingest_md, s, n);

    return api | ingest;
}

/* The Authorization header (non-empty): "<scheme> <credentials>". */
static bool auth_header_ok(const struct kx_auth *a, enum kx_auth_scope scope, const char *h)
{
    const char *sp, *cred, *end;

    while (*h == ' ' || *h == '\t')
        h++;
    sp = strpbrk(h, " \t");
    if (!sp)
        return false;
    for (cred = sp; *cred == ' ' || *cred == '\t'; cred++)
        ;
    for (end = cred + strlen(cred); end > cred && (end[-1] == ' ' || end[-1] == '\t'); end--)
        ;
    if (end == cred)
        return false;
    if (sp - h == 6 && strncasecmp(h, "Bearer", 6) == 0)
        return auth_bearer_ok(a, scope, cred, (size_t)(end - cred));
    if (sp - h == 5 && strncasecmp(h, "Basic", 5) == 0)
        return auth_basic_ok(a, cred, (size_t)(end - cred));
    return false;
}

int kx_auth_cookie_make(const struct kx_auth *a, int64_t expiry, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char msg[64];
    int n, m;

    if (kx_auth_api_open(a) || expiry < 0 || len < KX_AUTH_COOKIE_MAX)
        return -EINVAL;
    n = snprintf(out, len, "%lld", (long long)expiry);
    m = snprintf(msg, sizeof(msg), AUTH_COOKIE_PREFIX "%s", out);
    if (!HMAC(EVP_sha256(), a->key, sizeof(a->key), (const unsigned char *)msg, (size_t)m, mac,
              &maclen) ||
        maclen != AUTH_MD_LEN)
        return -EIO;
    out[n++] = '.';
    for (unsigned int i = 0; i < maclen; i++) {
        out[n++] = hex[mac[i] >> 4];
        out[n++] = hex[mac[i] & 15];
    }
    out[n] = '\0';
    return 0;
}

/* One klaxon_session value v[0..n): signed by us and not expired? */
static bool auth_cookie_ok(const struct kx_auth *a, const char *v, size_t n, int64_t now)
{
    char want[KX_AUTH_COOKIE_MAX];
    const char *dot = memchr(v, '.', n);
    size_t digits = dot ? (size_t)(dot - v) : 0;
    int64_t expiry = 0;

    if (digits == 0 || digits > 18 || n != digits + 1 + 2 * AUTH_MD_LEN)
        return false;
    for (size_t i = 0; i < digits; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        expiry = expiry * 10 + (v[i] - '0');
    }
    if (kx_auth_cookie_make(a, expiry, want, sizeof(want)) < 0 || strlen(want) != n)
        return false; /* leading zeros: not a value we issue */
    if (CRYPTO_memcmp(want, v, n) != 0)
        return false;
    /* Not past its expiry, and not further ahead than a session lasts now:
     * shortening session_ttl shortens the sessions already out there. */
    return expiry > now && expiry <= now + a->ttl + AUTH_CLOCK_SLACK;
}

/* Every klaxon_session cookie in the Cookie header; *seen when any. */
static bool auth_cookies_ok(const struct kx_auth *a, const char *hdr, bool *seen)
{
    static const char name[] = KX_AUTH_COOKIE "=";
    int64_t now = kx_now_ns() / KX_NSEC_PER_SEC;
    const char *p = hdr;
    bool ok = false;

    while (*p) {
        const char *end = strchr(p, ';');
        const char *stop = end ? end : p + strlen(p);

        while (p < stop && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(stop - p) >= sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0) {
            const char *v = p + sizeof(name) - 1, *ve = stop;

            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *seen = true;
            ok |= auth_cookie_ok(a, v, (size_t)(ve - v), now);
        }
        p = end ? end + 1 : stop;
    }
    return ok;
}

/* Every access_token=<%-encoded token> in the query; *seen when any. */
static bool auth_query_token_ok(const struct kx_auth *a, const char *q, bool *seen)
{
    static const char key[] = "access_token";
    char dec[AUTH_CRED_MAX];
    const char *name, *v;
    size_t nlen, vlen;
    bool ok = false;

    while (kx_query_next(&q, &name, &nlen, &v, &vlen)) {
        if (v && nlen == sizeof(key) - 1 && memcmp(name, key, nlen) == 0) {
            ssize_t n = kx_url_decode(v, vlen, dec, sizeof(dec));

            *seen = true;
            if (n > 0)
                ok |= a->has_token && auth_match(a->token_md, dec, (size_t)n);
        }
    }
    OPENSSL_cleanse(dec, sizeof(dec));
    return ok;
}

static enum auth_result auth_eval(const struct kx_auth *a, enum kx_auth_scope scope,
                                  const struct kx_http_req *req)
{
    bool seen = false, ok = false;

    if (*req->authorization) {
        seen = true;
        ok |= auth_header_ok(a, scope, req->authorization);
    }
    if (!kx_auth_api_open(a)) {
        if (*req->cookie)
            ok |= auth_cookies_ok(a, req->cookie, &seen);
        /* Browsers cannot set headers on a WebSocket; anywhere else a token
         * in the URL would end up in logs and histories (RFC 6750 2.3). */
        if (scope == KX_AUTH_API && req->upgrade && *req->query)
            ok |= auth_query_token_ok(a, req->query, &seen);
    }
    return ok ? AUTH_OK : seen ? AUTH_BAD : AUTH_NONE;
}

/* ---------------------------------------------------------------- answers */

static void auth_json_error(struct kx_http_resp *r, int status, const char *msg)
{
    r->status = status;
    r->content_type = "application/json";
    kx_buf_reset(&r->body);
    if (kx_buf_printf(&r->body, "{\"error\":") < 0 || kx_buf_json_str(&r->body, msg) < 0 ||
        kx_buf_printf(&r->body, "}\n") < 0)
        r->status = 500;
}

/* A browser (Accept: text/html) asking for a page of the UI? */
static bool auth_wants_ui_page(const struct kx_http_req *req)
{
    return (strcmp(req->path, "/ui") == 0 || strncmp(req->path, "/ui/", 4) == 0) &&
           strstr(req->accept, "text/html") != NULL;
}

static int auth_refuse(const struct kx_auth *a, enum kx_auth_scope scope,
                       const struct kx_http_req *req, struct kx_http_resp *r, enum auth_result res)
{
    const char *why = res == AUTH_NONE ? "authentication required" : "invalid credentials";

    if (res == AUTH_NONE)
        kx_debug("http: %s %s from %s: %s", req->method, req->path, req->peer, why);
    else
        kx_info("http: %s %s from %s: %s", req->method, req->path, req->peer, why);
    kx_http_resp_header(r, "www-authenticate", "Bearer realm=\"klaxon\"");
    if (a->has_basic)
        kx_http_resp_header(r, "www-authenticate", "Basic realm=\"klaxon\"");
    kx_buf_reset(&r->body);
    if (scope == KX_AUTH_API && a->ui && auth_wants_ui_page(req) &&
        kx_ui_file(a->ui_dir, "login.html", 401, r) == 0)
        return -EACCES;
    /* No login page (API client, or the file is missing): the JSON reason. */
    auth_json_error(r, 401, why);
    return -EACCES;
}

int kx_auth_check(const struct kx_auth *a, enum kx_auth_scope scope, const struct kx_http_req *req,
                  struct kx_http_resp *r)
{
    enum auth_result res;

    if (!a)
        return 0;
    /* Ingest without its own token stays open even when the API is
     * protected: senders configured for Falcosidekick send no credentials. */
    if (scope == KX_AUTH_INGEST ? !a->has_ingest : kx_auth_api_open(a))
        return 0;
    res = auth_eval(a, scope, req);
    if (res == AUTH_OK)
        return 0;
    return auth_refuse(a, scope, req, r, res);
}

/* --------------------------------------------------------------- sessions */

static void auth_set_cookie(const struct kx_auth *a, struct kx_http_resp *r, const char *value,
                            int64_t max_age)
{
    kx_http_resp_header(r, "set-cookie",
                        KX_AUTH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
                        value, (long long)max_age, a && a->secure ? "; Secure" : "");
}

static bool auth_is_json(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof(want) - 1;

    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The login body's strings (borrowed from j), or a 400 reason in r. */
static int auth_login_parse(const cJSON *j, const char **token, const char **user,
                            const char **pass, struct kx_http_resp *r)
{
    const cJSON *it;

    if (!cJSON_IsObject(j)) {
        auth_json_error(r, 400,
                        "want a JSON object: {\"token\":\"...\"} or "
                        "{\"username\":\"...\",\"password\":\"...\"}");
        return -EINVAL;
    }
    cJSON_ArrayForEach(it, j)
    {
        const char **slot = strcmp(it->string, "token") == 0      ? token
                            : strcmp(it->string, "username") == 0 ? user
                            : strcmp(it->string, "password") == 0 ? pass
                                                                  : NULL;
        char msg[256];

        if (!slot) {
            snprintf(msg, sizeof(msg),
                     "unknown key \"%.64s\": want token, or username and password", it->string);
            auth_json_error(r, 400, msg);
            return -EINVAL;
        }
        if (*slot || !cJSON_IsString(it)) {
            snprintf(msg, sizeof(msg), "\"%s\" must be given once, as a string", it->string);
            auth_json_error(r, 400, msg);
            return -EINVAL;
        }
        *slot = it->valuestring;
    }
    if (*token ? *user || *pass : !*user || !*pass) {
        auth_json_error(r, 400, "want either \"token\", or \"username\" and \"password\"");
        return -EINVAL;
    }
    return 0;
}

/* Wipes the secrets a parsed login body holds before it is freed. */
static void auth_login_wipe(cJSON *j)
{
    cJSON *it;

    cJSON_ArrayForEach(it, j) if (cJSON_IsString(it) && it->valuestring)
        OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
}

static void auth_login(const struct kx_auth *a, const struct kx_http_req *req,
                       struct kx_http_resp *r)
{
    const char *token = NULL, *user = NULL, *pass = NULL;
    char value[KX_AUTH_COOKIE_MAX];
    cJSON *j;
    bool ok;

    if (kx_auth_api_open(a)) {
        r->status = 204; /* nothing to log in to */
        return;
    }
    /* Also keeps a plain HTML form on another site from logging a browser
     * in (such a form cannot send application/json without a preflight). */
    if (!auth_is_json(req->content_type)) {
        auth_json_error(r, 415, "want Content-Type: application/json");
        return;
    }
    j = cJSON_ParseWithLength(req->body, req->body_len);
    if (!j) {
        auth_json_error(r, 400, "invalid JSON");
        return;
    }
    if (auth_login_parse(j, &token, &user, &pass, r) < 0)
        goto out;
    if (token) {
        ok = a->has_token && auth_match(a->token_md, token, strlen(token));
    } else {
        bool u = a->has_basic && auth_match(a->user_md, user, strlen(user));
        bool p = a->has_basic && auth_match(a->pass_md, pass, strlen(pass));

        ok = u & p;
    }
    if (!ok) {
        kx_info("http: login from %s refused: invalid credentials (%s)", req->peer,
                token ? "token" : "username and password");
        /* Bearer only: a Basic challenge here would make the browser pop up
         * its own password dialog over the login page that sent this. */
        kx_http_resp_header(r, "www-authenticate", "Bearer realm=\"klaxon\"");
        auth_json_error(r, 401, "invalid credentials");
        goto out;
    }
    if (kx_auth_cookie_make(a, kx_now_ns() / KX_NSEC_PER_SEC + a->ttl, value, sizeof(value))) {
        auth_json_error(r, 500, "cannot sign the session cookie");
        goto out;
    }
    kx_info("http: session opened for %s (%s)", req->peer,
            token ? "token" : "username and password");
    auth_set_cookie(a, r, value, a->ttl);
    kx_http_resp_header(r, "cache-control", "no-store");
    r->status = 204;
out:
    auth_login_wipe(j);
    cJSON_Delete(j);
}

void kx_auth_session(const struct kx_auth *a, const struct kx_http_req *req, struct kx_http_resp *r)
{
    if (strcmp(req->method, "POST") == 0) {
        auth_login(a, req, r);
    } else if (strcmp(req->method, "DELETE") == 0) {
        /* Stateless sessions: the browser forgets the cookie; a copy taken
         * elsewhere stays valid until it expires or the credentials change. */
        auth_set_cookie(a, r, "", 0);
        r->status = 204;
    } else {
        kx_http_resp_header(r, "allow", "POST, DELETE");
        auth_json_error(r, 405, "method not allowed: POST or DELETE /api/v1/session");
    }
}

/* ------------------------------------------------------- CORS and origins */

static bool auth_origin_listed(const struct kx_auth *a, const char *origin)
{
    for (size_t i = 0; i < a->ncors; i++)
        if (strcmp(a->cors[i], origin) == 0)
            return true;
    return false;
}

bool kx_auth_cors(const struct kx_auth *a, const struct kx_http_req *req, struct kx_http_resp *r)
{
    bool exact;

    if (!a || (a->ncors == 0 && !a->cors_any) || !*req->origin)
        return false;
    exact = auth_origin_listed(a, req->origin);
    if (!exact && !a->cors_any)
        return false;
    if (exact) {
        kx_http_resp_header(r, "access-control-allow-origin", "%s", req->origin);
        kx_http_resp_header(r, "access-control-allow-credentials", "true");
    } else {
        /* "*": any page may read answers, but never with the browser's
         * cookies (browsers refuse credentials with a wildcard anyway). */
        kx_http_resp_header(r, "access-control-allow-origin", "*");
    }
    kx_http_resp_header(r, "vary", "Origin");
    if (strcmp(req->method, "OPTIONS") != 0)
        return false;
    kx_http_resp_header(r, "access-control-allow-methods", "GET, POST, DELETE, OPTIONS");
    kx_http_resp_header(r, "access-control-allow-headers", "Authorization, Content-Type");
    kx_http_resp_header(r, "access-control-max-age", "600");
    kx_buf_reset(&r->body);
    r->status = 204;
    return true;
}

/* "host[:port]" or "[v6]:port" s[0..n) into host (no brackets kept apart:
 * "[::1]" stays as written) and port (def when absent). 0 or -EINVAL. */
static int auth_hostport(const char *s, size_t n, const char **host, size_t *hlen, long *port,
                         long def)
{
    const char *colon = NULL;

    if (n == 0)
        return -EINVAL;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);

        if (!rb)
            return -EINVAL;
        if ((size_t)(rb + 1 - s) < n) {
            if (rb[1] != ':')
                return -EINVAL;
            colon = rb + 1;
        }
    } else {
        colon = memrchr(s, ':', n);
    }
    *host = s;
    *hlen = colon ? (size_t)(colon - s) : n;
    *port = def;
    if (*hlen == 0)
        return -EINVAL;
    if (colon && !kx_small_uint(colon + 1, (size_t)(s + n - colon - 1), port))
        return -EINVAL;
    return 0;
}

/* Is the Origin ("scheme://host[:port]") the hub's own Host header? */
static bool auth_origin_is_host(const char *origin, const char *host_hdr)
{
    const char *sep = strstr(origin, "://"), *oh, *hh;
    size_t scheme, ohl, hhl;
    long def, op, hp;

    if (!sep || !*host_hdr || !auth_origin_valid(origin))
        return false;
    scheme = (size_t)(sep - origin);
    if ((scheme == 5 && strncasecmp(origin, "https", 5) == 0) ||
        (scheme == 3 && strncasecmp(origin, "wss", 3) == 0))
        def = 443;
    else
        def = 80;
    if (auth_hostport(sep + 3, strlen(sep + 3), &oh, &ohl, &op, def) < 0 ||
        auth_hostport(host_hdr, strlen(host_hdr), &hh, &hhl, &hp, def) < 0)
        return false;
    return ohl == hhl && strncasecmp(oh, hh, ohl) == 0 && op == hp;
}

bool kx_auth_ws_origin_ok(const struct kx_auth *a, const struct kx_http_req *req)
{
    if (!*req->origin)
        return true; /* not a browser: Origin is a browser's statement */
    if (auth_origin_is_host(req->origin, req->host))
        return true;
    return a && (a->cors_any || auth_origin_listed(a, req->origin));
}
