/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.h - from kernel record to published alert: attributes each exec to
 * its container and pod, runs the rules, fills the costly fields (cmdline,
 * user name) for matches only, serializes the alert and hands it to the
 * publisher queue. Runs entirely on the ring buffer poll thread and never
 * waits for NATS.
 */
#ifndef KX_SENSOR_DETECT_H
#define KX_SENSOR_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "event.h"
#include "publisher.h"
#include "rules.h"

struct kx_detect_stats {
    uint64_t execs;        /* exec records seen */
    uint64_t in_container; /* ... attributed to a container */
    uint64_t alerts;       /* alerts queued for publishing */
    uint64_t alert_errors; /* alerts that could not be built or serialized */
};

struct kx_detect;

/* hostname (the node name; copied) goes into every alert; pub is borrowed
 * and must outlive the detector. Caller owns; NULL + errno. */
struct kx_detect *kx_detect_new(const char *hostname, struct kx_publisher *pub);
void kx_detect_free(struct kx_detect *d); /* no-op if NULL */

/* The kx_loader_exec_fn: ctx is the struct kx_detect. Poll thread. */
void kx_detect_on_exec(void *ctx, const struct kx_exec_event *e);

void kx_detect_stats(const struct kx_detect *d, struct kx_detect_stats *out);

/*
 * Pure: the rule engine's view of an exec record. ctr (borrowed, may be
 * NULL) is the attribution; mono_to_real_ns converts the record's
 * CLOCK_MONOTONIC stamp to CLOCK_REALTIME. ev borrows e's strings.
 */
void kx_detect_fill(const struct kx_exec_event *e, const struct kx_container *ctr,
                    int64_t mono_to_real_ns, struct kx_proc_event *ev);

#endif
