/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.h - node actions: the node half of automated response. The sensor
 * answers NATS requests on klaxon.node.<node_tok>.action (node_tok =
 * kx_slug(node name), as for klaxon.alerts.<node_tok>) by killing a process,
 * or killing, freezing or thawing a container's cgroup v2.
 *
 * Request (JSON object, at most KX_ACTIONS_REQ_MAX bytes):
 *
 *   {"action": "kill_process", "pid": 1234, "start_time": 98765430000000,
 *    "signal": "SIGKILL", "request_id": "r-1", "reason": "rule X"}
 *   {"action": "kill_container" | "freeze_container" | "thaw_container",
 *    "container_id": "<12 or 64 hex>", "request_id": "r-2"}
 *
 *   pid          kill_process only, required: a process (thread-group) id
 *   start_time   kill_process only, required: when that process started, in
 *                ns since boot, as an integer (or a decimal string, which is
 *                exact beyond 2^53). This is the clock of /proc/<pid>/stat
 *                field 22 (starttime, in clock ticks; ns = ticks * 1e9 /
 *                sysconf(_SC_CLK_TCK)), i.e. task->start_boottime, which
 *                equals task->start_time (CLOCK_MONOTONIC, what the sensor's
 *                BPF records carry as start_ns) on a host that has never
 *                been suspended. /proc has tick resolution, so the two match
 *                when floor(start_time / tick_ns) == starttime_ticks.
 *   signal       kill_process only, optional, default "SIGKILL": SIGKILL,
 *                SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2,
 *                SIGSTOP, SIGCONT (with or without "SIG", any case)
 *   container_id container actions only, required: 64 hex digits, or a
 *                unique 12-hex prefix (Falco's container.id); any case; a
 *                "<runtime>://" prefix as in Kubernetes' containerID is
 *                dropped
 *   request_id   optional string (<= 128 printable ASCII), echoed
 *   reason       optional string (<= 512 bytes), logged only
 * Any other field, a field of the wrong type, a field that does not apply to
 * the action, or a duplicate field is a bad_request: a misspelt "signal"
 * must not silently become SIGKILL.
 *
 * Reply (JSON object):
 *
 *   {"ok": true, "action": "kill_process", "request_id": "r-1", "node": "node-a",
 *    "target": {"pid": 1234, "start_time": 98765430000000, "comm": "bash",
 *               "exe": "/usr/bin/bash"},
 *    "detail": "killed pid 1234 (bash) with SIGKILL"}
 *   {"ok": true, "action": "kill_container", "request_id": "r-2", "node": "node-a",
 *    "target": {"container_id": "<64 hex>", "runtime": "containerd",
 *               "cgroup": "/kubepods.slice/.../cri-containerd-<64 hex>.scope",
 *               "pod_uid": "...", "pids": 3},
 *    "method": "cgroup.kill" | "signal",
 *    "detail": "killed container 3ad7b26ded6d: 3 process(es) via cgroup.kill"}
 *   {"ok": false, "action": "kill_process", "request_id": "r-1", "node": "node-a",
 *    "target": {"pid": 1234, "start_time": 98765430000000, "comm": "sleep"},
 *    "error": "stale", "message": "pid 1234 (sleep) started at ... ns since boot
 *    (tick ...), not at the requested start_time ...: the pid was reused;
 *    nothing was signalled"}
 *
 * kill_process with SIGKILL waits (KX_ACTIONS_WAIT_NS at most) until the
 * process has exited; other signals are only sent ("sent SIGTERM to pid
 * 1234 (bash)"). A zombie is reported ok without a signal. target.start_time
 * is the requested one, printed as an exact integer.
 *
 * "action", "request_id" and "target" appear in an error reply when they
 * were understood. Error codes:
 *
 *   bad_request  not JSON, not an object, unknown action or field, wrong
 *                type, oversize (> KX_ACTIONS_REQ_MAX), bad container id
 *   not_found    no such process, or no cgroup v2 directory for the container
 *   ambiguous    a 12-hex prefix matches several containers
 *   stale        the pid exists but started at another time (pid reused):
 *                nothing was signalled
 *   protected    pid <= 1, a kernel thread, the sensor or one of its threads;
 *                a cgroup that holds the sensor (its own or an ancestor of
 *                it), the host's init or is the root cgroup
 *   failed       the kernel refused (the errno's text is in message), or no
 *                cgroup v2 mount / no cgroup.freeze on this kernel
 *   timeout      SIGKILL was sent or cgroup.kill / cgroup.freeze written,
 *                but the process did not exit, or the cgroup did not become
 *                empty / frozen / thawed (cgroup.events), within
 *                KX_ACTIONS_WAIT_NS
 *
 * Containers: the cgroup v2 mount is found in /proc/self/mountinfo and
 * walked; a directory whose path kx_cgroup_parse_path() attributes to a
 * container its parent is not attributed to is that container's cgroup.
 * The result of the last walk is kept as id -> path; a request walks again
 * when its id is not in it, matches several, or its directory is gone
 * (~35 us per cgroup directory; 2000 containers: ~70 ms).
 *
 * Safety: kill_process opens a pidfd first, THEN reads /proc/<pid>/stat to
 * check the start time and that it is no kernel thread, THEN signals the
 * pidfd: a pid that is reused after the check cannot be hit, because the
 * pidfd still names the process that was checked. The fallback kill of a
 * container (no cgroup.kill, kernel < 5.14) does the same for each pid and
 * checks that it is still in the container's cgroup.
 *
 * Every request is logged once at info level with its result.
 */
#ifndef KX_SENSOR_ACTIONS_H
#define KX_SENSOR_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nats/nats.h>

#define KX_SUBJ_NODE_ACTION_PREFIX "klaxon.node" /* .<node_tok>.action */
#define KX_ACTIONS_REQ_MAX (64 * 1024)           /* larger requests: bad_request */
#define KX_ACTIONS_WAIT_NS (2 * 1000000000LL)    /* ns: freeze / thaw / kill confirmation */

struct kx_actions_opts {
    const char *node_name; /* borrowed, copied: the "node" of each reply; NULL = "" */
    bool no_cgroup_kill;   /* tests: act as if cgroup.kill did not exist (kernel < 5.14) */
};

struct kx_actions;

/* The handler without NATS (tests, or a caller with its own transport).
 * Caller owns; NULL + errno (ENOMEM) on failure. No cgroup2 mount is not an
 * error: container actions then fail with "failed". */
struct kx_actions *kx_actions_new(const struct kx_actions_opts *o);

/*
 * Handles one request: req (borrowed, len bytes, need not be NUL
 * terminated) -> *reply (caller owns, malloc'd, NUL terminated JSON,
 * *reply_len bytes without the NUL; reply_len may be NULL). Acts on the
 * kernel and logs the request once. Returns 0 whenever a reply was built
 * (also for ok=false replies), -EINVAL on NULL arguments, -ENOMEM (then
 * *reply is NULL). Requests are serialized (one lock), so a freeze that
 * waits KX_ACTIONS_WAIT_NS delays the next one; any thread may call it.
 */
int kx_actions_handle(struct kx_actions *a, const char *req, size_t len, char **reply,
                      size_t *reply_len);

/*
 * kx_actions_new() + a subscription to klaxon.node.<kx_slug(node_name)>.action
 * on nc (borrowed: must stay open until kx_actions_free) with a bounded
 * pending limit. Requests are handled on the subscription's own nats.c
 * thread, never on the caller's, and answered on the request's reply
 * subject (a request without one is still acted on, and logged). Works
 * while nc is still connecting (the subscription is sent on connect).
 * Caller owns; NULL with err filled on failure.
 */
struct kx_actions *kx_actions_start(natsConnection *nc, const char *node_name, char *err,
                                    size_t errlen);

/* The subject answered, "" for kx_actions_new(). Borrowed from a. */
const char *kx_actions_subject(const struct kx_actions *a);

/* Unsubscribes, waits (bounded) until a request being handled is done, and
 * frees. Call before the connection is closed. No-op if NULL. */
void kx_actions_free(struct kx_actions *a);

#endif
