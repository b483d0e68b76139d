/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pods.h - the sensor's pod cache: the pods scheduled on this node, kept up
 * to date by one thread ("kx-pods") that list+watches the Kubernetes API
 * (fieldSelector spec.nodeName=<node>), so an alert's pod UID / container id
 * (from the cgroup path, see cgroup.h) resolves to namespace, pod name,
 * labels and container name without any network call on the event path.
 *
 * Lookups only read the cache under a read lock: they never block on the
 * network. While the API is unreachable the cache stays as it was (empty
 * before the first sync) and lookups answer "unknown"; the watcher retries
 * with backoff and logs each state change once ("unreachable", "synced with
 * N pods"), not every retry. The cache holds at most KX_PODS_MAX pods; past
 * that the least recently added/updated one is evicted (counted).
 *
 * Wiring (sensor/main.c):
 *
 *   struct kx_k8s_opts ko;      // from kx_k8s_settings_opts(), or by hand
 *   char err[512];
 *   struct kx_pods *pods = kx_pods_start(&ko, node_name, err, sizeof(err));
 *   if (!pods && (errno == ENOTSUP || (errno == ENOENT && ko.mode == KX_K8S_MODE_AUTO)))
 *       kx_info("%s; pod metadata disabled", err);          // off / not in a cluster
 *   else if (!pods) -> fatal configuration error (err says what and where)
 *   ...
 *   struct kx_pod_info pi;
 *   if (kx_pods_lookup(pods, ct.pod_uid, ct.full_id, &pi) == 1) -> k8s.ns.name = pi.ns, ...
 *   ...
 *   kx_pods_free(pods);         // stops kx-pods within ~1 s
 */
#ifndef KX_SENSOR_PODS_H
#define KX_SENSOR_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s.h"

#define KX_PODS_MAX 4096        /* pods cached at most */
#define KX_POD_NS_MAX 63        /* DNS label */
#define KX_POD_NAME_MAX 253     /* DNS subdomain */
#define KX_POD_UID_MAX 36       /* dashed UUID */
#define KX_POD_CONTAINER_MAX 63 /* container names are DNS labels */
#define KX_POD_LABELS_MAX 1023  /* bytes of the k8s.pod.labels text */
#define KX_POD_CONTAINERS 64    /* container ids remembered per pod */

/*
 * What a lookup copies out: a fixed struct the caller provides (on its
 * stack), so nothing is shared with the cache after the call.
 */
struct kx_pod_info {
    char ns[KX_POD_NS_MAX + 1];               /* k8s.ns.name */
    char name[KX_POD_NAME_MAX + 1];           /* k8s.pod.name */
    char uid[KX_POD_UID_MAX + 1];             /* k8s.pod.uid (metadata.uid) */
    char container[KX_POD_CONTAINER_MAX + 1]; /* container name for the id asked; "" if
                                                 not asked or not in the pod's statuses */
    char labels[KX_POD_LABELS_MAX + 1];       /* k8s.pod.labels, Falco's shape
                                                 "app:web,tier:front" (sorted by key) */
    bool labels_truncated;                    /* whole labels were left out to fit */
};

/* Copies the value of label key out of info->labels into out ("" and
 * false when absent). */
bool kx_pod_info_label(const struct kx_pod_info *info, const char *key, char *out, size_t len);

struct kx_pods_stats {
    size_t pods;       /* cached now */
    bool synced;       /* a list has completed and the watch is (or was last) open */
    bool unreachable;  /* the last list/watch attempt failed */
    uint64_t lists;    /* LIST_BEGIN seen (initial + re-lists) */
    uint64_t events;   /* objects applied: list items and ADDED/MODIFIED/DELETED */
    uint64_t failures; /* failed list/watch attempts */
    uint64_t evicted;  /* pods dropped because the cache was full */
    uint64_t lookups;  /* kx_pods_lookup calls */
    uint64_t hits;     /* ... that found a pod */
};

struct kx_pods;

/*
 * Resolves the API configuration (o, see k8s.h) and starts the kx-pods
 * thread watching the pods on node_name (borrowed, copied). Returns at once;
 * the first sync happens in the background. Caller owns the result; NULL +
 * errno and err filled when it cannot start: ENOTSUP (mode off), ENOENT
 * (auto mode outside a cluster without kubeconfig, or missing files),
 * EINVAL (bad configuration or empty node name), ENOMEM, or pthread's error.
 */
struct kx_pods *kx_pods_start(const struct kx_k8s_opts *o, const char *node_name, char *err,
                              size_t errlen);

/* An empty cache without a watcher: kx_pods_apply() feeds it (tests, or a
 * caller with its own watch). Caller owns; NULL + errno. */
struct kx_pods *kx_pods_new(void);

/* Applies one list/watch event (what kx-pods does for each). Thread-safe. */
void kx_pods_apply(struct kx_pods *p, const struct kx_k8s_event *ev);

/*
 * Looks a pod up by pod_uid (cgroup form: dashed UUID, or the 32-hex config
 * hash of a static pod) and/or container_full_id (64 hex). Either may be
 * NULL or "". With both, the container decides when it is known (the pod is
 * the one that lists it); else the pod UID. out is always written (zeroed
 * when unknown). Returns 1 found, 0 unknown (also for NULL p: Kubernetes
 * disabled). Thread-safe, never blocks on the network.
 */
int kx_pods_lookup(struct kx_pods *p, const char *pod_uid, const char *container_full_id,
                   struct kx_pod_info *out);

void kx_pods_stats(struct kx_pods *p, struct kx_pods_stats *out); /* thread-safe */

/* Stops kx-pods (within ~1 s, also mid-request) and frees. No-op if NULL. */
void kx_pods_free(struct kx_pods *p);

#endif
