/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.h - loads, configures, attaches and polls the sensor's kernel side
 * (sensor/bpf/sensor.bpf.c through its generated skeleton sensor.skel.h),
 * and validates every record before user space reads it.
 *
 * Lifecycle (libbpf-bootstrap's): sensor_bpf__open() -> rodata (own tgid)
 * and autoload (only the programs of wanted kinds that this kernel has a
 * tracepoint for) -> sensor_bpf__load() -> configuration maps -> attach each
 * program -> ring buffer. kx_probe_free() detaches and unloads. Tracepoints
 * only (plus the sched_process_fork raw tracepoint), so the kernel needs
 * neither kprobes nor BPF LSM; tracefs is mounted first when the host has
 * not mounted it (libbpf resolves tracepoint ids there).
 *
 * Threads: kx_probe_start(), kx_probe_poll() (which runs the callback),
 * kx_probe_stats() and kx_probe_free() belong to one thread, the poll
 * thread. kx_probe_set_kind(), kx_probe_set_enforce() and
 * kx_probe_set_kill() only write BPF maps and may be called from any
 * thread while it polls.
 */
#ifndef KX_SENSOR_PROBE_H
#define KX_SENSOR_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* Called for each record that passed validation (see kx_probe_start()), on
 * the poll thread. e is borrowed (it points into the ring buffer) and valid
 * only during the call; len is e->hdr.size. */
typedef void (*kx_probe_fn)(void *ctx, const struct kx_event *e, size_t len);

struct kx_probe_opts {
    kx_probe_fn on_event; /* required */
    void *ctx;            /* borrowed, passed to on_event */
    /* [KX_K_MAX]: kinds to report; NULL = all. Programs of kinds that are off
     * are not even loaded. The sensor keeps EXEC, FORK and EXIT on: they feed
     * its process table. Borrowed, read during kx_probe_start() only. */
    const bool *kinds;
    /* OPEN* prefilter: read_all/write_all; n_read/n_write are ignored (taken
     * from the lists below). An open that no list wants is not emitted and
     * is counted as filtered. */
    struct kx_open_cfg open;
    const char *const *read_prefixes; /* borrowed; each < KX_PREFIX_LEN bytes */
    size_t n_read;                    /* <= KX_PREFIX_MAX */
    const char *const *write_prefixes;
    size_t n_write;
    /* In-kernel kill rules (borrowed, copied): names and paths need not be
     * zero-padded, kx_probe_start() normalizes them. */
    const struct kx_kill_rule *kill;
    size_t n_kill; /* <= KX_KILL_RULES */
    bool enforce;  /* apply them (else they are loaded but inert) */
};

struct kx_probe;

/*
 * Mounts tracefs at /sys/kernel/tracing unless tracefs is reachable there or
 * under /sys/kernel/debug/tracing. 0 (already there or mounted), or a
 * negative errno with err filled.
 */
int kx_probe_ensure_tracefs(char *err, size_t errlen);

/*
 * Opens, configures, loads and attaches the programs and sets up the ring
 * buffer. o is borrowed (read during the call only; o->ctx is kept). Caller
 * owns the result; NULL on failure with errno set and a message in err that
 * names what failed (the program, the errno text, a hint such as "are you
 * root?" and the tail of the verifier's log when it refused a program).
 *
 * Records are validated before on_event sees them: hdr.type, hdr.size in
 * [KX_EVENT_FIXED, KX_EVENT_MAX] and within the ring buffer sample, kind
 * < KX_K_MAX, the string slots fit in hdr.size and each present slot ends
 * with a NUL. Anything else is skipped and counted in bad_records.
 */
struct kx_probe *kx_probe_start(const struct kx_probe_opts *o, char *err, size_t errlen);

/*
 * Waits up to timeout_ms for a wakeup, then dispatches every record that
 * waits. Returns records handled (>= 0), -EINTR when a signal interrupted
 * the wait, or another negative errno. Poll thread.
 *
 * The kernel wakes the poller at once for rare kinds (exec, privilege,
 * module, ptrace, ... events) but for the frequent ones (open*, socket
 * calls, dup*, fork, exit) only once 64 KiB wait, to save a wakeup per
 * record; their latency is bounded by timeout_ms, so keep it short
 * (<= 100 ms).
 */
int kx_probe_poll(struct kx_probe *p, int timeout_ms);

/* The ring buffer's epoll fd, readable on a wakeup (see kx_probe_poll()).
 * An event loop calls kx_probe_poll(p, 0) when it is readable and at least
 * every 100 ms. Owned by p. */
int kx_probe_fd(struct kx_probe *p);

struct kx_probe_stats {
    uint64_t emitted[KX_K_MAX];      /* records the kernel sent, per kind */
    uint64_t filtered[KX_K_MAX];     /* dropped by an in-kernel prefilter, per kind */
    uint64_t drops[KX_DROP_REASONS]; /* lost in the kernel, per enum kx_drop_reason */
    uint64_t events;                 /* records passed to on_event */
    uint64_t bad_records;            /* records that failed validation */
};

/* Reads the counters (kernel ones summed over CPUs). Poll thread. */
void kx_probe_stats(struct kx_probe *p, struct kx_probe_stats *out);

/* Whether the programs of kind are loaded (wanted, and this kernel has
 * their tracepoints). */
bool kx_probe_kind_loaded(const struct kx_probe *p, enum kx_kind kind);

/* Switches reporting of a kind at runtime. 0, -EINVAL (bad kind), or
 * -EOPNOTSUPP when turning on a kind whose programs were not loaded. */
int kx_probe_set_kind(struct kx_probe *p, enum kx_kind kind, bool on);

/* Enforcement on/off at runtime. 0, or -EOPNOTSUPP when the exec program is
 * not loaded (EXEC off and no kill rules at start). */
int kx_probe_set_enforce(struct kx_probe *p, bool on);

/* Replaces the kill rules (borrowed, copied and normalized). 0, -EINVAL
 * (n > KX_KILL_RULES or a rule out of bounds), or a negative errno. */
int kx_probe_set_kill(struct kx_probe *p, const struct kx_kill_rule *rules, size_t n);

/* Detaches and unloads. No-op if NULL. */
void kx_probe_free(struct kx_probe *p);

/*
 * String slot `slot` of a validated record (as given to on_event; bounded
 * by e->hdr.size): a pointer into e (borrowed) and, when len is not NULL,
 * the string's length without its NUL. NULL when the slot is absent or does
 * not fit in the record. Pure, any thread.
 */
const char *kx_event_str(const struct kx_event *e, int slot, size_t *len);

#endif
