/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the hub's counters, exported in Prometheus text format.
 * Plain atomics: any thread may bump them, /metrics reads them lock-free.
 */
#ifndef KX_HUB_METRICS_H
#define KX_HUB_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util.h"

#define KX_METRICS_MAX_OUTPUTS 64
#define KX_LATENCY_BUCKETS 12 /* upper bounds in kx_latency_bounds_ms, then +Inf */

enum kx_reject_reason {
    KX_REJECT_INVALID,   /* failed validation (bad JSON, fields) */
    KX_REJECT_TOO_LARGE, /* over the size bound */
    KX_REJECT_COUNT,
};

struct kx_output_metrics {
    char name[64]; /* set before the output's thread starts */
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t retried;
    atomic_uint_fast64_t failed; /* deliveries that did not succeed */
    atomic_uint_fast64_t deadlettered;
    atomic_uint_fast64_t filtered; /* below minimumpriority */
    /* deliver() call durations (one per request, batch or single alert) */
    atomic_uint_fast64_t latency_bucket[KX_LATENCY_BUCKETS + 1]; /* non-cumulative */
    atomic_uint_fast64_t latency_sum_us;
    atomic_uint_fast64_t latency_count;
};

/* Records one deliver() duration in ns. Any thread. */
void kx_metrics_latency(struct kx_output_metrics *o, int64_t ns);

struct kx_metrics {
    atomic_uint_fast64_t received_nats;
    atomic_uint_fast64_t received_http;
    atomic_uint_fast64_t accepted;
    atomic_uint_fast64_t deduped;
    atomic_uint_fast64_t aggregates;
    atomic_uint_fast64_t rejected[KX_REJECT_COUNT];
    atomic_uint_fast64_t publish_errors;
    atomic_uint_fast64_t dedupe_errors;
    atomic_uint_fast64_t dedupe_timer_overflow;
    atomic_uint_fast64_t live_events; /* events put in the live feed's ring */
    atomic_int_fast64_t ws_clients;   /* WebSocket clients connected now */
    atomic_uint_fast64_t ws_skipped;  /* events slow WebSocket clients missed */
    atomic_uint_fast64_t ws_dropped;  /* slow WebSocket clients closed (ws_slow: drop) */
    struct kx_output_metrics outputs[KX_METRICS_MAX_OUTPUTS];
    atomic_int noutputs;
};

#define kx_metric_inc(field) atomic_fetch_add_explicit(&(field), 1, memory_order_relaxed)

/* Appends the Prometheus exposition text to b. 0 or -E2BIG/-ENOMEM. */
int kx_metrics_render(const struct kx_metrics *m, struct kx_buf *b);

#endif
