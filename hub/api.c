/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.c - the hub's HTTP routes on the shared libwebsockets listener:
 *
 *   POST /                 Falco http_output / Falcosidekick-compatible ingest
 *   POST /api/v1/alerts    the same
 *   GET  /healthz          200 when NATS is connected, else 503
 *   GET  /ping             "pong" (Falcosidekick's liveness probe)
 *   GET  /metrics          Prometheus text format
 *
 * Handlers run on the kx-http thread (see http.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
