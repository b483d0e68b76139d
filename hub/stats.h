/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.h - counts of accepted alerts in one-minute buckets for the last
 * 24 h, fed by the live feed (hub/live.c), for GET /api/v1/stats.
 *
 * A ring of KX_STATS_MINUTES buckets keyed by minute: an alert is counted in
 * the minute of its own time (a future time counts as now; older than the
 * ring drops it), by priority and per rule, node, namespace and pod. Each
 * minute keeps at most KX_STATS_KEYS distinct keys per dimension and all
 * minutes together at most KX_STATS_STRINGS distinct strings; what does not
 * fit is counted under KX_STATS_OTHER, so memory is bounded whatever comes
 * in. Audit records (source "klaxon_audit") are counted apart.
 *
 * One mutex guards everything; kx_stats_add allocates only when a minute
 * meets a key it has not seen yet.
 */
#ifndef KX_HUB_STATS_H
#define KX_HUB_STATS_H

#include <stdint.h>

#include "alert.h"
#include "http.h"
#include "hub.h"

#define KX_STATS_MINUTES 1440  /* one bucket per minute: 24 h */
#define KX_STATS_KEYS 128      /* distinct keys per minute per dimension */
#define KX_STATS_STRINGS 32768 /* distinct keys alive over all minutes */
#define KX_STATS_KEY_MAX 255   /* bytes kept of one key (cut at a UTF-8 boundary) */
#define KX_STATS_TOP_MAX 100   /* the largest top= a query may ask for */
#define KX_STATS_OTHER "(other)"

/* Caller owns; NULL + errno on OOM. */
struct kx_stats *kx_stats_new(void);
void kx_stats_free(struct kx_stats *s); /* no-op if NULL */
/* Counts one accepted alert (audit records counted apart); a borrowed. Any
 * thread (own lock). */
void kx_stats_add(struct kx_stats *s, const struct kx_alert *a);
/* Counts before t_ns are known to be missing (back-fill cut). Any thread. */
void kx_stats_set_complete_since(struct kx_stats *s, int64_t t_ns);
/* Alerts not counted because they were older than the ring. Any thread. */
uint64_t kx_stats_dropped(struct kx_stats *s);
/* Replaces the clock (ns since the epoch; default kx_now_ns) for tests.
 * Call before s is shared. */
void kx_stats_set_clock(struct kx_stats *s, int64_t (*now_ns)(void));
/* GET /api/v1/stats. Worker thread. */
void kx_api_stats(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);

#endif
