/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader.h - loads, attaches and polls the sensor's BPF programs
 * (sensor/bpf/exec.bpf.c through its generated skeleton).
 *
 * Lifecycle (libbpf-bootstrap's): exec_bpf__open() -> rodata (own tgid) ->
 * exec_bpf__load() -> exec_bpf__attach() -> ring buffer; kx_loader_free()
 * detaches and unloads. Tracepoints only, so the kernel needs neither kprobes
 * nor BPF LSM; tracefs is mounted first when the host has not mounted it
 * (libbpf resolves tracepoint ids there).
 */
#ifndef KX_SENSOR_LOADER_H
#define KX_SENSOR_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* Called for each valid exec record, on the thread that calls
 * kx_loader_poll(). e is borrowed, valid only during the call. */
typedef void (*kx_loader_exec_fn)(void *ctx, const struct kx_exec_event *e);

struct kx_loader;

/*
 * Mounts tracefs at /sys/kernel/tracing unless tracefs is reachable there or
 * under /sys/kernel/debug/tracing. 0 (already there or mounted), or a
 * negative errno with err filled.
 */
int kx_loader_ensure_tracefs(char *err, size_t errlen);

/*
 * Opens, configures, loads and attaches the programs and sets up the ring
 * buffer. on_exec/ctx are borrowed. Caller owns the result; NULL on failure
 * with a message in err saying what failed and what to check, e.g.
 * "cannot load BPF program: Operation not permitted (are you root? is
 * /sys/kernel/btf/vmlinux present?)".
 */
struct kx_loader *kx_loader_start(kx_loader_exec_fn on_exec, void *ctx, char *err, size_t errlen);

/* Waits up to timeout_ms for records and dispatches them. Returns records
 * handled (>= 0), -EINTR when a signal interrupted the wait, or another
 * negative errno. Thread-bound: the poll thread only. */
int kx_loader_poll(struct kx_loader *l, int timeout_ms);

struct kx_loader_stats {
    uint64_t events;       /* records handled */
    uint64_t bad_records;  /* unknown type or wrong size (user space) */
    uint64_t kernel_drops; /* bpf_ringbuf_reserve failures, summed over CPUs */
};

/* Reads the counters (kernel_drops from the per-CPU map). Poll thread. */
void kx_loader_stats(struct kx_loader *l, struct kx_loader_stats *out);

/* Detaches and unloads. No-op if NULL. */
void kx_loader_free(struct kx_loader *l);

#endif
