/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the hub's HTTP routes on the shared libwebsockets listener:
 *
 *   POST /                 Falco http_output / Falcosidekick-compatible ingest
 *   POST /api/v1/alerts    the same
 *   GET  /healthz          200 when NATS is connected, else 503
 *   GET  /ping             "pong" (Falcosidekick's liveness probe)
 *   GET  /metrics          Prometheus text format
 *   POST /test             a test alert to every enabled output (Falcosidekick's /test)
 *
 * Handlers run on the kx-http thread (see http.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "http.h"
#include "hub.h"
#include "log.h"

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
                     "This is a test from klaxon-hub: if you can read it, this output works",
                     0);
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

/* Runs on the kx-http thread. */
static void api_on_request(void *ctx, const struct kx_http_req *req, struct kx_http_resp *r)
{
    struct kx_hub *h = ctx;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;

    if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/api/v1/alerts") == 0) {
        if (post)
            on_ingest(h, req, r);
        else if (get && strcmp(req->path, "/") == 0)
            reply_json(r, 200, "name", "klaxon-hub", "version", KX_VERSION);
        else
            reply_json(r, 405, "error", "method not allowed: POST a Falco JSON alert", NULL,
                       NULL);
        return;
    }
    if (strcmp(req->path, "/test") == 0) {
        if (post)
            on_test(h, req, r);
        else
            reply_json(r, 405, "error", "method not allowed: POST /test", NULL, NULL);
        return;
    }
    if (!get) {
        reply_json(r, strcmp(req->path, "/healthz") && strcmp(req->path, "/metrics") &&
                              strcmp(req->path, "/ping")
                          ? 404
                          : 405,
                   "error", "not found or method not allowed", NULL, NULL);
        return;
    }
    if (strcmp(req->path, "/healthz") == 0) {
        bool ok = kx_bus_connected(h->bus);
        reply_json(r, ok ? 200 : 503, "status", ok ? "ok" : "degraded", "nats",
                   ok ? "connected" : "disconnected");
    } else if (strcmp(req->path, "/ping") == 0) {
        r->status = 200;
        r->content_type = "text/plain";
        kx_buf_append(&r->body, "pong\n", 5);
    } else if (strcmp(req->path, "/metrics") == 0) {
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4";
        if (kx_metrics_render(&h->metrics, &r->body))
            r->status = 500;
    } else {
        reply_json(r, 404, "error", "not found", NULL, NULL);
    }
}

int kx_api_start(struct kx_hub *h, char *err, size_t errlen)
{
    h->http = kx_http_start(h->cfg.http_listen, (int)h->cfg.http_port,
                            (size_t)h->cfg.http_max_body, api_on_request, h, err, errlen);
    return h->http ? 0 : -EADDRINUSE;
}

void kx_api_stop(struct kx_hub *h)
{
    kx_http_stop(h->http);
    h->http = NULL;
}
