/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the hub's HTTP routes on the shared libwebsockets listener:
 *
 *   POST /                 Falco http_output / Falcosidekick-compatible ingest
 *   POST /api/v1/alerts    the same
 *   GET  /healthz          200 when NATS is connected, else 503
 *   GET  /ping             "pong" (Falcosidekick's liveness probe)
 *   GET  /readyz           200 when NATS is connected and every stream exists
 *   GET  /metrics          Prometheus text format
 *   POST /test             a test alert to every enabled output (Falcosidekick's /test)
 *   GET  /api/v1/...       queries, stats, output health (docs/api.md)
 *   GET  /ws               the WebSocket live feed (hub/live.c)
 *   GET  /ui/...           the web UI (hub/ui.c)
 *
 * api_on_request runs on the kx-http thread: auth, CORS, and every quick
 * route; routes that wait on NATS go to api_on_slow on a kx-http-w worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "auth.h"
#include "fanout.h"
#include "http.h"
#include "hub.h"
#include "live.h"
#include "log.h"
#include "query.h"
#include "stats.h"
#include "ui.h"

static void reply_json(struct kx_http_resp *r, int status, const char *key, const char *val,
                       const char *key2, const char *val2)
{
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;

    r->status = status;
    r->content_type = "application/json";
    if (o && cJSON_AddStringToObject(o, key, val) &&
        (!key2 || cJSON_AddStringToObject(o, key2, val2)))
        s = cJSON_PrintUnformatted(o);
    if (s) {
        kx_buf_append(&r->body, s, strlen(s));
        kx_buf_append(&r->body, "\n", 1);
    } else {
        r->status = 500;
    }
    cJSON_free(s);
    cJSON_Delete(o);
}

static void on_ingest(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    char uuid[KX_ALERT_UUID_LEN + 1] = "", err[512];
    int rc = kx_ingest_submit(h, req->body, req->body_len, uuid, err, sizeof(err));
    if (rc == 0) {
        reply_json(r, 200, "status", "accepted", "uuid", uuid);
    } else if (rc == -EINVAL) {
        kx_info("http: rejected alert from %s: %s", req->peer, err);
        reply_json(r, 400, "error", err, NULL, NULL);
    } else {
        kx_warn("http: cannot store alert from %s: %s", req->peer, err);
        reply_json(r, 503, "error", err, NULL, NULL);
    }
}

/*
 * POST /test: a "Test rule" alert (Debug, tag "test") straight onto
 * KLAXON_EVENTS, past dedupe, with header Klaxon-Test so every output's
 * worker delivers it whatever its minimumpriority and routes: the point is
 * to check each destination end to end, as Falcosidekick's /test does.
 */
static void on_test(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    char host[256] = "", err[512], subject[128];
    const char *name = h->cfg.hub_name && *h->cfg.hub_name ? h->cfg.hub_name : NULL;
    struct kx_alert *a;
    char *json = NULL;
    int rc = -ENOMEM;

    if (!name && gethostname(host, sizeof(host) - 1) == 0)
        name = host;
    a = kx_alert_new("Test rule", KX_PRI_DEBUG, "klaxon", name ? name : "klaxon-hub",
                     "This is a test from klaxon-hub: if you can read it, this output works", 0);
    if (a && kx_alert_add_tag(a, "test") == 0 && kx_alert_set_str(a, "klaxon.test", "true") == 0)
        json = kx_alert_to_json(a);
    snprintf(subject, sizeof(subject), KX_SUBJ_EVENTS ".debug.test_rule");
    if (json)
        rc = kx_bus_publish(h->bus, subject, json, strlen(json), a->uuid, KX_HDR_TEST, "1",
                            h->cfg.publish_timeout, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "out of memory");
    if (rc >= 0) {
        kx_info("http: test alert %s sent to every output (asked by %s)", a->uuid, req->peer);
        reply_json(r, 200, "status", "sent to every enabled output", "uuid", a->uuid);
    } else {
        kx_warn("http: cannot send the test alert: %s", err);
        reply_json(r, 503, "error", err, NULL, NULL);
    }
    free(json);
    kx_alert_free(a);
}

/* Is path "/api/v1/alerts/<something>"? Points *uuid at the something. */
static bool api_alert_path(const char *path, const char **uuid)
{
    static const char prefix[] = "/api/v1/alerts/";

    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0 || path[sizeof(prefix) - 1] == '\0')
        return false;
    *uuid = path + sizeof(prefix) - 1;
    return true;
}

/* GET /readyz: NATS connected and every stream there. Worker thread. */
static void on_readyz(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    char err[256];

    if (!kx_bus_connected(h->bus)) {
        reply_json(r, 503, "status", "not ready", "reason", "NATS is not connected");
        return;
    }
    if (kx_bus_streams_present(h->bus, err, sizeof(err)) < 0) {
        reply_json(r, 503, "status", "not ready", "reason", err);
        return;
    }
    (void)req;
    reply_json(r, 200, "status", "ready", "nats", "connected");
}

/* GET /api/v1/alerts/{uuid}. Worker thread. */
static void on_alert(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    const char *uuid = NULL;

    api_alert_path(req->path, &uuid);
    kx_api_alert(h, req, r, uuid);
}

typedef void (*api_route)(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);

/* The GET routes that wait on NATS, and who answers them; NULL for others. */
static api_route api_slow_route(const char *path)
{
    static const struct {
        const char *path;
        api_route fn;
    } routes[] = {
        {"/readyz", on_readyz},
        {"/api/v1/alerts", kx_api_alerts},
        {"/api/v1/audit", kx_api_audit},
        {"/api/v1/stats", kx_api_stats},
        {"/api/v1/outputs", kx_api_outputs},
    };
    const char *uuid;

    for (size_t i = 0; i < KX_ARRAY_SIZE(routes); i++)
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].fn;
    return api_alert_path(path, &uuid) ? on_alert : NULL;
}

/*
 * Routes that wait on NATS: run on a kx-http-w worker so the loop (ingest,
 * WebSocket feed) never waits for them. Auth was checked on the loop.
 */
static void api_on_slow(void *ctx, const struct kx_http_req *req, struct kx_http_resp *r)
{
    api_route fn = api_slow_route(req->path);

    if (fn)
        fn(ctx, req, r);
    else
        reply_json(r, 404, "error", "not found", NULL, NULL);
}

/* Does a browser ask for a page (rather than a script asking for JSON)? */
static bool api_wants_html(const struct kx_http_req *req)
{
    return strstr(req->accept, "text/html") != NULL;
}

/* Runs on the kx-http thread. */
static void api_on_request(void *ctx, const struct kx_http_req *req, struct kx_http_resp *r)
{
    struct kx_hub *h = ctx;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    if (kx_auth_cors(h->auth, req, r))
        return; /* a preflight, answered */

    /* Probes: always open. */
    if (get && strcmp(req->path, "/healthz") == 0) {
        bool ok = kx_bus_connected(h->bus);
        reply_json(r, ok ? 200 : 503, "status", ok ? "ok" : "degraded", "nats",
                   ok ? "connected" : "disconnected");
        return;
    }
    if (get && strcmp(req->path, "/ping") == 0) {
        r->status = 200;
        r->content_type = "text/plain";
        kx_buf_append(&r->body, "pong\n", 5);
        return;
    }
    if (get && strcmp(req->path, "/readyz") == 0) {
        r->status = KX_HTTP_SLOW;
        return;
    }
    if (strcmp(req->path, "/api/v1/session") == 0) {
        if (post || strcmp(req->method, "DELETE") == 0)
            kx_auth_session(h->auth, req, r);
        else
            reply_json(r, 405, "error", "method not allowed: POST or DELETE /api/v1/session", NULL,
                       NULL);
        return;
    }

    /* Ingest: its own token, or the API's credentials, or open. */
    if (post && (strcmp(req->path, "/") == 0 || strcmp(req->path, "/api/v1/alerts") == 0)) {
        if (kx_auth_check(h->auth, KX_AUTH_INGEST, req, r) == 0)
            on_ingest(h, req, r);
        return;
    }

    if (get && strcmp(req->path, "/") == 0 && api_wants_html(req) && h->cfg.http_ui) {
        r->status = 302;
        kx_http_resp_header(r, "location", "/ui/");
        return;
    }

    if (kx_auth_check(h->auth, KX_AUTH_API, req, r) < 0)
        return;

    if (strcmp(req->path, "/ws") == 0) {
        if (!req->upgrade)
            reply_json(r, 400, "error", "GET /ws is a WebSocket: send Upgrade: websocket", NULL,
                       NULL);
        else if (!kx_auth_ws_origin_ok(h->auth, req))
            reply_json(r, 403, "error", "cross-origin WebSocket refused (http.cors_origins)", NULL,
                       NULL);
        else
            kx_live_ws_open(h, req, r);
        return;
    }
    if (req->upgrade) {
        reply_json(r, 404, "error", "no WebSocket here: use /ws", NULL, NULL);
        return;
    }

    if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/api/v1/alerts") == 0) {
        if (get && strcmp(req->path, "/") == 0)
            reply_json(r, 200, "name", "klaxon-hub", "version", KX_VERSION);
        else if (get)
            r->status = KX_HTTP_SLOW;
        else
            reply_json(r, 405, "error", "method not allowed: GET to query, POST a Falco alert",
                       NULL, NULL);
        return;
    }
    if (strcmp(req->path, "/test") == 0) {
        if (post)
            on_test(h, req, r);
        else
            reply_json(r, 405, "error", "method not allowed: POST /test", NULL, NULL);
        return;
    }
    if (strcmp(req->path, "/ui") == 0 || strncmp(req->path, "/ui/", 4) == 0) {
        if (!get)
            reply_json(r, 405, "error", "method not allowed", NULL, NULL);
        else if (!h->cfg.http_ui)
            reply_json(r, 404, "error", "the web UI is turned off (http.ui)", NULL, NULL);
        else
            kx_ui_serve(h->cfg.http_ui_dir, req, r);
        return;
    }
    if (get && strcmp(req->path, "/metrics") == 0) {
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4";
        if (kx_metrics_render(&h->metrics, &r->body))
            r->status = 500;
        return;
    }
    if (api_slow_route(req->path)) {
        if (get)
            r->status = KX_HTTP_SLOW;
        else
            reply_json(r, 405, "error", "method not allowed: GET", NULL, NULL);
        return;
    }
    reply_json(r, get ? 404 : 405, "error", get ? "not found" : "not found or method not allowed",
               NULL, NULL);
}

int kx_api_start(struct kx_hub *h, char *err, size_t errlen)
{
    struct kx_http_opts o = {
        .addr = h->cfg.http_listen,
        .port = (int)h->cfg.http_port,
        .max_body = (size_t)h->cfg.http_max_body,
        .handler = api_on_request,
        .slow_handler = api_on_slow,
        .workers = (int)h->cfg.http_workers,
        .ws = &kx_live_ws_ops,
        .tls_cert = h->cfg.http_tls_cert,
        .tls_key = h->cfg.http_tls_key,
        .ctx = h,
    };

    h->http = kx_http_start_opts(&o, err, errlen);
    return h->http ? 0 : -(errno ? errno : EIO);
}

void kx_api_stop(struct kx_hub *h)
{
    kx_http_stop(h->http);
    h->http = NULL;
}
