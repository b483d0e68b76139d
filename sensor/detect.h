/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.h - from kernel record to published alert: keeps the process
 * table, decodes each record into what the rules see (decode.h), runs the
 * rules that can match its kind, turns each match into a Falco-shaped alert
 * and hands it to the publisher queue. Runs entirely on the ring buffer
 * poll thread and never waits for NATS.
 */
#ifndef KX_SENSOR_DETECT_H
#define KX_SENSOR_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"
#include "event.h"
#include "pods.h"
#include "publisher.h"
#include "ruleset.h"

struct kx_detect_stats {
    uint64_t events[KX_K_MAX]; /* records seen per kind */
    uint64_t in_container;     /* ... attributed to a container */
    uint64_t alerts;           /* alerts queued for publishing */
    uint64_t alert_errors;     /* alerts that could not be built or serialized */
    uint64_t decode_errors;    /* records that could not be decoded */
    uint64_t killed;           /* execs an enforcement rule killed in the kernel */
};

struct kx_detect;

/* hostname (the node name; copied) goes into every alert; pub and rs are
 * borrowed and must outlive the detector. Caller owns; NULL + errno. */
struct kx_detect *kx_detect_new(const char *hostname, struct kx_publisher *pub,
                                const struct kx_ruleset *rs);
void kx_detect_free(struct kx_detect *d); /* no-op if NULL */

/* Seeds the process table from /proc (before the probe starts). */
size_t kx_detect_scan(struct kx_detect *d);

/* Attributes pods through the cache (borrowed, must outlive the detector):
 * k8s.ns.name, k8s.pod.name, k8s.pod.label[..], container.name. */
void kx_detect_set_pods(struct kx_detect *d, struct kx_pods *pods);

/* The kx_probe_fn: ctx is the struct kx_detect. Poll thread. */
void kx_detect_on_event(void *ctx, const struct kx_event *e, size_t len);

/* Housekeeping, about once a second on the poll thread: purges exited
 * processes, re-syncs the clock offset. */
void kx_detect_tick(struct kx_detect *d);

void kx_detect_stats(const struct kx_detect *d, struct kx_detect_stats *out);
void kx_detect_proc_stats(const struct kx_detect *d, struct kx_proctable_stats *out);

#endif
