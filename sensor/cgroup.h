/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup.h - container and pod attribution from cgroup paths.
 *
 * Container runtimes name the cgroup of each container after its 64-hex id,
 * and the kubelet names pod cgroups after the pod UID, so a process's cgroup
 * path tells which container and pod it runs in, without asking any runtime:
 *
 *   containerd (systemd driver) .../kubepods-burstable-pod<uid_>.slice/cri-containerd-<64hex>.scope
 *   CRI-O                        .../crio-<64hex>.scope
 *   Docker (systemd driver)      /system.slice/docker-<64hex>.scope
 *   Docker (cgroupfs driver)     /docker/<64hex>
 *   Podman                       .../libpod-<64hex>.scope
 *   kubelet, cgroupfs driver     /kubepods/burstable/pod<uid>/<64hex>
 *   kind / nested systemd        .../kubepods-besteffort-pod<uid_>.slice:cri-containerd:<64hex>
 *
 * kx_cgroup_parse_path() and kx_cgroup_parse_proc() are pure (no I/O) and
 * strict: an id must be exactly 64 lowercase hex digits in a component of the
 * right shape, a pod UID a 36-char UUID (or the 32-hex form of static pods);
 * anything else is "not a container". When several components match (a
 * container inside a container), the innermost wins.
 */
#ifndef KX_SENSOR_CGROUP_H
#define KX_SENSOR_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KX_CGROUP_PATH_MAX 4096  /* longer paths are rejected (-ENAMETOOLONG) */
#define KX_CGROUP_NAME_MAX 255   /* longest component kernfs allows */
#define KX_CONTAINER_ID_LEN 12   /* container.id: Falco's short id */
#define KX_CONTAINER_FULL_LEN 64 /* container.full_id */
#define KX_POD_UID_LEN 36        /* k8s.pod.uid, dashed UUID */

enum kx_runtime {
    KX_RUNTIME_NONE = 0,   /* not in a container */
    KX_RUNTIME_CONTAINERD, /* cri-containerd-<id>.scope, ":cri-containerd:<id>" */
    KX_RUNTIME_CRIO,       /* crio-<id>.scope, ":crio:<id>" */
    KX_RUNTIME_DOCKER,     /* docker-<id>.scope, /docker/<id>, ":docker:<id>" */
    KX_RUNTIME_PODMAN,     /* libpod-<id>.scope */
    KX_RUNTIME_KUBEPODS,   /* /kubepods/.../<id>: kubelet cgroupfs driver, runtime unknown */
};

struct kx_container {
    char id[KX_CONTAINER_ID_LEN + 1];        /* first 12 hex of full_id; "" if none */
    char full_id[KX_CONTAINER_FULL_LEN + 1]; /* 64 lowercase hex; "" if none */
    char pod_uid[KX_POD_UID_LEN + 1];        /* "xxxxxxxx-xxxx-..." or 32 hex; "" if none */
    enum kx_runtime runtime;                 /* KX_RUNTIME_NONE iff id is "" */
};

/* The first cgroup2 mount point in /proc/self/mountinfo (caller owns, malloc'd)
 * or NULL; *has_v1 (may be NULL) tells whether a cgroup v1 hierarchy is mounted. */
char *kx_cgroup2_mount(bool *has_v1);

/* "containerd", "cri-o", "docker", "podman", "kubepods", "" for none. */
const char *kx_runtime_name(enum kx_runtime r);

/*
 * Attributes one cgroup path ("/kubepods.slice/.../cri-containerd-<id>.scope").
 * path: borrowed, NUL-terminated. out is always fully written (zeroed first).
 * Returns 1 when a container was found, 0 when not (out->pod_uid may still
 * be set for a process in a pod-level cgroup), -EINVAL on NULL arguments,
 * -ENAMETOOLONG when path or one of its components is longer than the
 * kernel allows (hostile input, out stays empty).
 */
int kx_cgroup_parse_path(const char *path, struct kx_container *out);

/*
 * Attributes the text of /proc/<pid>/cgroup ("0::/path" for cgroup v2,
 * "N:controllers:/path" for v1; text need not be NUL-terminated). The v2
 * line is tried first, then the v1 lines in order (hybrid hosts where a
 * runtime uses only v1). Returns 1, 0 or -EINVAL as above; lines that are
 * malformed or too long are skipped.
 */
int kx_cgroup_parse_proc(const char *text, size_t len, struct kx_container *out);

/*
 * The I/O side. The cgroup v2 id the kernel captured at exec time is the
 * authority: it is resolved to a path with open_by_handle_at() on the
 * cgroup2 mount (and cached: ids are never reused), so a process that moved
 * cgroups after the exec (a shell that writes itself into a container's
 * cgroup.procs, then execs) is attributed to where it WAS, and one that has
 * exited already is still attributed. /proc/<pid>/cgroup is read only for
 * what v2 cannot tell: the v1 lines of hybrid hosts (runtimes on v1 only),
 * or everything when the id cannot be resolved (no cgroup2 mount, cgroup
 * removed). Thread-bound: one resolver per thread (the poll thread).
 */
struct kx_cgroup_resolver;

/* Finds the cgroup2 mount and whether v1 hierarchies exist (none of either
 * is fine). Caller owns; NULL + errno on OOM. */
struct kx_cgroup_resolver *kx_cgroup_resolver_new(void);
void kx_cgroup_resolver_free(struct kx_cgroup_resolver *r); /* no-op if NULL */

/* Returns 1 / 0 like kx_cgroup_parse_path, or a negative errno when neither
 * the cgroup id nor /proc/<pid>/cgroup could be read (out is then empty).
 * cgroup_id 0 = unknown. */
int kx_cgroup_resolve(struct kx_cgroup_resolver *r, pid_t pid, uint64_t cgroup_id,
                      struct kx_container *out);

/* The cgroup v2 path ("/a/b", relative to the cgroup2 mount) of cgroup_id,
 * into buf. 0, -ENOENT (no such cgroup, or no cgroup2 mount), -ENAMETOOLONG,
 * or another negative errno (EPERM without CAP_DAC_READ_SEARCH). */
int kx_cgroup_path_by_id(struct kx_cgroup_resolver *r, uint64_t cgroup_id, char *buf, size_t len);

#endif
