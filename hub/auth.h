/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.h - who may use the hub's HTTP listener (docs/api.md
 * "Authentication"): bearer token, basic auth, signed session cookies for
 * the browser, the ingest token, CORS and the WebSocket origin check.
 *
 * The session cookie is stateless so that every replica accepts what any
 * other issued: "<expiry unix seconds>.<hex HMAC-SHA256(key, "klaxon-session:"
 * expiry)>", key = SHA-256 over the configured token, user and password, so
 * changing any of them logs everyone out. Nothing is stored per session;
 * logging out clears the browser's cookie only.
 *
 * A struct kx_auth is immutable after kx_auth_new: any thread may use it.
 * It keeps digests of the configured secrets, never the secrets themselves.
 */
#ifndef KX_HUB_AUTH_H
#define KX_HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "hub.h"

enum kx_auth_scope {
    KX_AUTH_API,    /* API, UI, /metrics, /test, WebSocket */
    KX_AUTH_INGEST, /* POST / and POST /api/v1/alerts */
};

#define KX_AUTH_COOKIE "klaxon_session"
/* Room for a cookie value: up to 20 digits, '.', 64 hex digits, NUL. */
#define KX_AUTH_COOKIE_MAX 96

/* From the http settings (copied; c is borrowed). NULL on error with err
 * (e.g. an empty token). Caller owns. */
struct kx_auth *kx_auth_new(const struct kx_hub_config *c, char *err, size_t errlen);
void kx_auth_free(struct kx_auth *a); /* no-op if NULL */

/* True when neither token nor basic auth is configured (the API is open). */
bool kx_auth_api_open(const struct kx_auth *a);

/*
 * kx-http thread. 0 when req may go on; otherwise -EACCES with r filled as
 * the refusal (401, WWW-Authenticate, JSON reason, or the login page for a
 * browser asking for a UI page). Headers already in r (CORS) are kept.
 * A NULL a is an open hub (nothing configured). Everything borrowed.
 */
int kx_auth_check(const struct kx_auth *a, enum kx_auth_scope scope, const struct kx_http_req *req,
                  struct kx_http_resp *r);

/*
 * POST / DELETE /api/v1/session. kx-http thread. POST takes
 * {"token":".."} or {"username":"..","password":".."} (application/json) and
 * answers 204 with the cookie, 400/415 for a malformed request, 401 for
 * wrong credentials; DELETE answers 204 clearing the cookie. Never sleeps.
 */
void kx_auth_session(const struct kx_auth *a, const struct kx_http_req *req,
                     struct kx_http_resp *r);

/*
 * kx-http thread. Adds CORS headers to r when req's Origin is allowed.
 * Returns true when it answered the request itself (an OPTIONS preflight).
 */
bool kx_auth_cors(const struct kx_auth *a, const struct kx_http_req *req, struct kx_http_resp *r);

/* kx-http thread. May a WebSocket handshake with this Origin go on? */
bool kx_auth_ws_origin_ok(const struct kx_auth *a, const struct kx_http_req *req);

/*
 * Signs a session cookie value valid until expiry (unix seconds) into out
 * (at least KX_AUTH_COOKIE_MAX bytes). For kx_auth_session, tests and tools.
 * 0, or -EINVAL when the API is open (there is no key) or out is too small.
 */
int kx_auth_cookie_make(const struct kx_auth *a, int64_t expiry, char *out, size_t len);

#endif
