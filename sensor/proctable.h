/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proctable.h - the sensor's view of the processes on the node: what each
 * one executes (exe path, argv, cwd at exec), who its parent is, and since
 * when it exists. Kept from EXEC / FORK / EXIT records, seeded from /proc at
 * start, and filled from /proc on a miss (a process older than the sensor
 * that the seed did not catch).
 *
 * It answers what a single kernel event cannot: proc.cmdline of a process
 * that opens a file, proc.pname / proc.aname[N] / proc.pcmdline of its
 * ancestors. Entries of exited processes linger KX_PROC_LINGER_NS so an
 * event racing its parent's exit still finds the parent.
 *
 * Bounded: at most KX_PROC_MAX entries; beyond that the least recently used
 * entry is evicted (counted). Thread-bound: the poll thread only.
 */
#ifndef KX_SENSOR_PROCTABLE_H
#define KX_SENSOR_PROCTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "sevent.h"

#define KX_PROC_MAX 65536                        /* entries kept */
#define KX_PROC_LINGER_NS (5 * 1000000000LL)     /* exited entries kept this long */
#define KX_PROC_STR_MAX 4096                     /* bytes kept per string */

struct kx_proctable;

struct kx_proctable_stats {
    uint64_t entries;   /* live + lingering */
    uint64_t evicted;   /* dropped because the table was full */
    uint64_t proc_fill; /* misses filled from /proc */
    uint64_t misses;    /* lookups that found nothing, even in /proc */
};

/* proc_root: "/proc" (tests may point elsewhere). Caller owns; NULL + errno. */
struct kx_proctable *kx_proctable_new(const char *proc_root);
void kx_proctable_free(struct kx_proctable *t); /* no-op if NULL */

/* Seeds the table from every process in proc_root. Returns entries added. */
size_t kx_proctable_scan(struct kx_proctable *t);

/* Applies an EXEC, FORK or EXIT record (others are ignored). e borrowed. */
void kx_proctable_apply(struct kx_proctable *t, const struct kx_event *e, size_t len);

/*
 * The process tgid as a struct kx_sproc (borrowed, valid until the next
 * call that changes the table). start_ns, when nonzero, must match the
 * entry's start time (tick granularity for /proc-filled entries), else the
 * entry is a reused pid and is refilled from /proc. NULL when unknown.
 */
const struct kx_sproc *kx_proctable_get(struct kx_proctable *t, uint32_t tgid, uint64_t start_ns);

/* Purges entries that exited more than KX_PROC_LINGER_NS ago (now_mono is
 * CLOCK_MONOTONIC ns). Call about once a second. */
void kx_proctable_sweep(struct kx_proctable *t, int64_t now_mono);

void kx_proctable_stats(const struct kx_proctable *t, struct kx_proctable_stats *out);

/*
 * Pure: formats argv as Falco's proc.args (argv[1..] joined by spaces) from a
 * NUL-separated buffer of len bytes. Non-printable bytes become '.'. Writes
 * at most outlen-1 bytes. Returns argv[0]'s length (bytes before the first
 * NUL).
 */
size_t kx_proctable_format_args(const char *raw, size_t len, char *out, size_t outlen);

#endif
