/* SPDX-License-Identifier: Apache-2.0 */
/*
 * live.h - the live feed: every hub follows KLAXON_EVENTS with an ordered
 * push consumer of its own (so each replica sees every accepted alert and
 * audit record, whoever published it), counts them for /api/v1/stats, and
 * keeps the newest ones in a bounded ring that the WebSocket clients of
 * GET /ws read from, each at its own position (docs/api.md "GET /ws").
 *
 * Memory stays bounded whatever the clients do: the ring holds at most
 * http.ws_buffer events, a client is only a position and a filter, and a
 * client that falls out of the ring is skipped ahead (or dropped).
 */
#ifndef KX_HUB_LIVE_H
#define KX_HUB_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "hub.h"

/* The WebSocket callbacks (ctx = the hub). */
extern const struct kx_ws_ops kx_live_ws_ops;

/*
 * Subscribes and starts counting: stats are back-filled from the stream
 * (the last 24 h, at most KX_LIVE_BACKFILL_MAX events). Sets h->live.
 * 0 or -errno with err. Call before the HTTP listener starts.
 */
#define KX_LIVE_BACKFILL_MAX 1000000
int kx_live_start(struct kx_hub *h, char *err, size_t errlen);
/* Unsubscribes and frees; after kx_api_stop (no client left). No-op if NULL. */
void kx_live_stop(struct kx_hub *h);

/*
 * kx-http thread: a WebSocket handshake on /ws. Parses the filter from the
 * query and accepts (r->ws_conn) or refuses with 400.
 */
void kx_live_ws_open(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);

/* The stream sequence of a recent alert, from the live index. Any thread. */
bool kx_live_lookup(struct kx_live *l, const char *uuid, uint64_t *seq);

#endif
