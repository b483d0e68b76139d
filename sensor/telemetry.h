/* SPDX-License-Identifier: Apache-2.0 */
/*
 * telemetry.h - the sensor's counters, exported two ways: Prometheus text on
 * GET /metrics (lib/http.h listener, its own thread) and a JSON heartbeat
 * published on klaxon.heartbeat.<node> every sensor.heartbeat_interval.
 *
 * The poll thread owns the live counters; about once a second it copies
 * them into a snapshot under kx_telemetry.lock, which is all the HTTP thread
 * ever reads.
 */
#ifndef KX_SENSOR_TELEMETRY_H
#define KX_SENSOR_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

#define KX_SUBJ_HEARTBEAT "klaxon.heartbeat" /* .<node> */

struct kx_telemetry_snap {
    int64_t time_ns;                      /* CLOCK_REALTIME of the snapshot */
    int64_t uptime_ns;
    uint64_t kernel_events[KX_K_MAX];     /* emitted by the kernel side */
    uint64_t kernel_filtered[KX_K_MAX];   /* dropped by the in-kernel prefilter */
    uint64_t kernel_drops[KX_DROP_REASONS];
    uint64_t bad_records;                 /* malformed ring buffer records */
    uint64_t events[KX_K_MAX];            /* records handled in user space */
    uint64_t alerts;                      /* alerts queued */
    uint64_t alert_errors;
    uint64_t decode_errors;
    uint64_t killed;                      /* execs killed in the kernel by a rule */
    uint64_t published, publish_failures, queue_dropped;
    uint64_t queue_depth;
    uint64_t proc_entries, proc_evicted;
    uint64_t rules;                       /* rules loaded */
    uint64_t pods;                        /* pods in the cache */
    int nats_connected;
    int64_t rss_bytes;                    /* VmRSS of the sensor */
};

struct kx_telemetry;

/* node (copied) labels everything. Caller owns; NULL + errno. */
struct kx_telemetry *kx_telemetry_new(const char *node);
void kx_telemetry_free(struct kx_telemetry *t); /* stops the listener; no-op if NULL */

/* Starts GET /metrics (and /healthz) on addr:port. 0 or -errno with err. */
int kx_telemetry_listen(struct kx_telemetry *t, const char *addr, int port, char *err,
                        size_t errlen);
int kx_telemetry_port(const struct kx_telemetry *t); /* bound port, 0 if none */

/* Replaces the snapshot (poll thread). s borrowed, copied. */
void kx_telemetry_update(struct kx_telemetry *t, const struct kx_telemetry_snap *s);

/* Pure renderers over a snapshot, into b (appended). 0 or -ENOMEM/-E2BIG. */
int kx_telemetry_prometheus(const char *node, const struct kx_telemetry_snap *s,
                            struct kx_buf *b);
int kx_telemetry_heartbeat(const char *node, const struct kx_telemetry_snap *s, struct kx_buf *b);

/* VmRSS of this process in bytes, from /proc/self/statm; -1 if unknown. */
int64_t kx_telemetry_rss(void);

#endif
