/* SPDX-License-Identifier: Apache-2.0 */
/*
 * query.h - reading accepted alerts and audit records back out of the
 * streams: GET /api/v1/alerts, /api/v1/alerts/{uuid}, /api/v1/audit
 * (docs/api.md). Each request is a bounded scan of KLAXON_EVENTS or
 * KLAXON_AUDIT (at most 200,000 messages, about 5 s), newest first, through
 * short-lived ephemeral consumers; see query.c for how.
 */
#ifndef KX_HUB_QUERY_H
#define KX_HUB_QUERY_H

#include "http.h"
#include "hub.h"

/* Worker thread (kx-http-w), never the HTTP loop: they wait on NATS. Fill r: 200 with
 * the JSON page, 400 (bad input), 404 (no such alert) or 503 (NATS down or not
 * answering) with {"error": reason}. h, req, uuid borrowed; r's body is appended to. */
void kx_api_alerts(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);
void kx_api_alert(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r,
                  const char *uuid);
void kx_api_audit(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);

#endif
