/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decode.h - from a kernel record (struct kx_event) to what the rules see
 * (struct kx_sevent): joins relative paths with their base, renders flags
 * the way Falco prints them (O_WRONLY|O_CREAT, S_ISUID, PTRACE_ATTACH,
 * AF_PACKET, CLONE_NEWUSER, SIGKILL, ENOENT), formats socket tuples, looks
 * up the process and its ancestors in the process table, the container from
 * the cgroup id, the user name from the uid and the pod from the pod cache.
 *
 * Thread-bound: the poll thread. The strings of a decoded event live in the
 * decoder and stay valid until the next kx_decode_event() call.
 */
#ifndef KX_SENSOR_DECODE_H
#define KX_SENSOR_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "event.h"
#include "proctable.h"
#include "sevent.h"

struct kx_decode;

/*
 * Pod lookup hook: fills out (all fields borrowed from storage the hook
 * owns until its next call on this thread) for a pod uid and container id.
 * Returns 1 when found, 0 when unknown. Must not block.
 */
typedef int (*kx_decode_pod_fn)(void *ctx, const char *pod_uid, const char *container_full_id,
                                struct kx_spod *out, const char **container_name);

/* hostname (copied) goes into every event; pt and cg are borrowed and must
 * outlive the decoder (cg may be NULL: no container attribution). Caller
 * owns; NULL + errno. */
struct kx_decode *kx_decode_new(const char *hostname, struct kx_proctable *pt,
                                struct kx_cgroup_resolver *cg);
void kx_decode_free(struct kx_decode *d); /* no-op if NULL */

/* Installs the pod hook (fn may be NULL = none); ctx borrowed. */
void kx_decode_set_pods(struct kx_decode *d, kx_decode_pod_fn fn, void *ctx);

/* Re-reads the CLOCK_MONOTONIC -> CLOCK_REALTIME offset (after a clock step). */
void kx_decode_sync_clock(struct kx_decode *d);

/*
 * Decodes e (len bytes, validated by the probe) into ev. The process table
 * must already have seen e (kx_proctable_apply). 0, or -EINVAL for a record
 * that cannot be decoded.
 */
int kx_decode_event(struct kx_decode *d, const struct kx_event *e, size_t len,
                    struct kx_sevent *ev);

/* Pure renderers, exposed for tests. Each writes at most len-1 bytes. */
void kx_decode_open_flags(uint64_t flags, char *buf, size_t len);
void kx_decode_mode(uint64_t mode, char *buf, size_t len);
void kx_decode_clone_flags(uint64_t flags, char *buf, size_t len);
const char *kx_decode_ptrace_req(int64_t req); /* "PTRACE_ATTACH"; NULL unknown */
const char *kx_decode_signal(int64_t sig);     /* "SIGKILL"; NULL unknown */
const char *kx_decode_family(int64_t af);      /* "AF_INET"; NULL unknown */
void kx_decode_sock_type(uint64_t type, char *buf, size_t len); /* "SOCK_RAW|SOCK_CLOEXEC" */
/* "1.2.3.4" / "::1" from a kx_sock address; "" when family is neither. */
void kx_decode_addr(int family, const uint8_t addr[16], char *buf, size_t len);

#endif
