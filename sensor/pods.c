/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pods.c - the sensor's pod cache (see pods.h): one kx-pods thread runs
 * kx_k8s_watch() on the pods of this node and applies each event here;
 * lookups read under a read lock.
 *
 * Layout: each cached pod owns a small array of index keys - its UID, the
 * static-pod config hash when it has one, and the id of every container in
 * its statuses (current and last terminated, so the events of a container
 * that just restarted still resolve) - chained into two hash tables (pod
 * keys, container keys). A pod is built from its JSON outside the lock and
 * swapped in whole, so the write lock is held for pointer updates only.
 * Pods are also on an age list (oldest first) for eviction when full, and
 * carry the generation of the list that last saw them, so a re-list can
 * drop what disappeared meanwhile.
 */
#include "pods.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define PODS_UID_BUCKETS 8192  /* power of two, >= 2 * KX_PODS_MAX */
#define PODS_CID_BUCKETS 16384 /* power of two */
#define PODS_KEY_MAX 64        /* longest key: a container id */
#define PODS_LABELS_SORT 512   /* labels considered per pod */
#define PODS_CONFIG_HASH "kubernetes.io/config.hash"

struct pods_pod;

/* One way to reach a pod: by UID / config hash, or by container id. */
struct pods_key {
    struct pods_key *next;      /* hash chain */
    struct pods_pod *pod;       /* owner */
    char *cname;                /* owned: container name; NULL for pod keys */
    char key[PODS_KEY_MAX + 1]; /* lowercase */
};

struct pods_pod {
    struct pods_pod *older, *newer; /* age list (lock) */
    char *ns, *name, *uid, *labels; /* owned */
    bool labels_truncated;
    uint64_t gen;          /* list generation that last saw it (lock) */
    struct pods_key *keys; /* owned array: [0, npod) pod keys, then containers */
    size_t npod, nkeys;
};

struct kx_pods {
    pthread_rwlock_t lock;                     /* guards the fields marked "lock" */
    struct pods_key *by_uid[PODS_UID_BUCKETS]; /* lock */
    struct pods_key *by_cid[PODS_CID_BUCKETS]; /* lock */
    struct pods_pod *oldest, *newest;          /* lock: age list */
    size_t npods;                              /* lock */
    uint64_t gen;                              /* lock: generation of the current list */
    struct kx_pods_stats st;                   /* lock (pods/lookups/hits filled on read) */
    enum { PODS_STARTING, PODS_SYNCED, PODS_UNREACHABLE } state; /* lock */
    atomic_uint_fast64_t lookups, hits; /* lookups run concurrently under rdlock */

    struct kx_k8s *k8s; /* owned; used by kx-pods only (cancel: any thread) */
    char *node;         /* owned */
    char *query;        /* owned: fieldSelector=spec.nodeName%3D<node> */
    pthread_t thread;   /* kx-pods */
    bool thread_started;
};

/* ------------------------------------------------------------------------ */
/* Pods                                                                      */
/* ------------------------------------------------------------------------ */

static void pod_free(struct pods_pod *pod)
{
    if (!pod)
        return;
    for (size_t i = 0; i < pod->nkeys; i++)
        free(pod->keys[i].cname);
    free(pod->keys);
    free(pod->ns);
    free(pod->name);
    free(pod->uid);
    free(pod->labels);
    free(pod);
}

/* Lowercase copy of a key; false when empty or too long. */
static bool key_norm(const char *s, char out[PODS_KEY_MAX + 1])
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > PODS_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return true;
}

/* "containerd://<64 hex>" (cri-o://, docker://, any scheme) -> the hex id. */
static bool container_id(const char *s, char out[PODS_KEY_MAX + 1])
{
    const char *p = s ? strstr(s, "://") : NULL;

    p = p ? p + 3 : s;
    if (!p || strlen(p) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)p[i]))
            return false;
        out[i] = (char)tolower((unsigned char)p[i]);
    }
    out[64] = '\0';
    return true;
}

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int pod_add_key(struct pods_pod *pod, size_t cap, const char *key, const char *cname)
{
    struct pods_key *k;

    for (size_t i = 0; i < pod->nkeys; i++) {
        if (strcmp(pod->keys[i].key, key) == 0)
            return 0; /* the same id as current and last state */
    }
    if (pod->nkeys == cap)
        return 0; /* bounded; the rest stays unknown */
    k = &pod->keys[pod->nkeys];
    memset(k, 0, sizeof(*k));
    snprintf(k->key, sizeof(k->key), "%s", key);
    if (cname && !(k->cname = strdup(cname)))
        return -ENOMEM;
    k->pod = pod;
    pod->nkeys++;
    return 0;
}

/* Container keys from one of the *ContainerStatuses arrays. */
static int pod_add_statuses(struct pods_pod *pod, size_t cap, const cJSON *arr)
{
    const cJSON *st;
    char id[PODS_KEY_MAX + 1];

    cJSON_ArrayForEach(st, arr)
    {
        const char *name = jstr(st, "name");
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(st, "lastState");
        const cJSON *term = cJSON_GetObjectItemCaseSensitive(last, "terminated");

        if (!name)
            continue;
        if (container_id(jstr(st, "containerID"), id) && pod_add_key(pod, cap, id, name) < 0)
            return -ENOMEM;
        if (container_id(jstr(term, "containerID"), id) && pod_add_key(pod, cap, id, name) < 0)
            return -ENOMEM;
    }
    return 0;
}

struct label {
    const char *k, *v;
};

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->k, ((const struct label *)b)->k);
}

/* "k:v,k:v" sorted by key, whole labels only, at most KX_POD_LABELS_MAX. */
static char *labels_format(const cJSON *labels, bool *truncated)
{
    struct label *ls = calloc(PODS_LABELS_SORT, sizeof(*ls));
    char *out = malloc(KX_POD_LABELS_MAX + 1);
    const cJSON *l;
    size_t n = 0, o = 0;

    *truncated = false;
    if (!ls || !out) {
        free(ls);
        free(out);
        return NULL;
    }
    cJSON_ArrayForEach(l, labels)
    {
        if (!l->string || !cJSON_IsString(l))
            continue;
        if (n == PODS_LABELS_SORT) {
            *truncated = true;
            break;
        }
        ls[n++] = (struct label){l->string, l->valuestring};
    }
    qsort(ls, n, sizeof(*ls), label_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t need = strlen(ls[i].k) + 1 + strlen(ls[i].v) + (o ? 1 : 0);

        if (o + need > KX_POD_LABELS_MAX) {
            *truncated = true;
            continue; /* a shorter one later may still fit */
        }
        o += (size_t)snprintf(out + o, KX_POD_LABELS_MAX + 1 - o, "%s%s:%s", o ? "," : "", ls[i].k,
                              ls[i].v);
    }
    free(ls);
    return out;
}

/* A pod from its JSON, or NULL (not a usable pod, or ENOMEM). */
static struct pods_pod *pod_build(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    const char *uid = jstr(meta, "uid"), *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses",
                                        "ephemeralContainerStatuses"};
    char key[PODS_KEY_MAX + 1];
    struct pods_pod *pod;
    size_t cap = 2 + KX_POD_CONTAINERS;

    if (!key_norm(uid, key) || !name)
        return NULL;
    pod = calloc(1, sizeof(*pod));
    if (!pod)
        return NULL;
    pod->keys = calloc(cap, sizeof(*pod->keys));
    pod->uid = strdup(uid);
    pod->ns = strdup(ns ? ns : "");
    pod->name = strdup(name);
    pod->labels =
        labels_format(cJSON_GetObjectItemCaseSensitive(meta, "labels"), &pod->labels_truncated);
    if (!pod->keys || !pod->uid || !pod->ns || !pod->name || !pod->labels)
        goto fail;
    if (pod_add_key(pod, cap, key, NULL) < 0)
        goto fail;
    /* Static pods: the kubelet names the cgroup after the config hash, the
     * mirror pod in the API has its own UID. */
    if (key_norm(jstr(ann, PODS_CONFIG_HASH), key) && pod_add_key(pod, cap, key, NULL) < 0)
        goto fail;
    pod->npod = pod->nkeys;
    for (size_t i = 0; i < KX_ARRAY_SIZE(lists); i++) {
        if (pod_add_statuses(pod, cap, cJSON_GetObjectItemCaseSensitive(status, lists[i])) < 0)
            goto fail;
    }
    return pod;
fail:
    pod_free(pod);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Index (all under the write lock)                                          */
/* ------------------------------------------------------------------------ */

static struct pods_key **bucket(struct kx_pods *p, bool container, const char *key)
{
    uint64_t h = kx_hash64(key, strlen(key), 0);

    return container ? &p->by_cid[h & (PODS_CID_BUCKETS - 1)]
                     : &p->by_uid[h & (PODS_UID_BUCKETS - 1)];
}

static struct pods_key *find(struct kx_pods *p, bool container, const char *key)
{
    for (struct pods_key *k = *bucket(p, container, key); k; k = k->next) {
        if (strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

static void unlink_pod(struct kx_pods *p, struct pods_pod *pod)
{
    for (size_t i = 0; i < pod->nkeys; i++) {
        struct pods_key **pp = bucket(p, i >= pod->npod, pod->keys[i].key);

        for (; *pp; pp = &(*pp)->next) {
            if (*pp == &pod->keys[i]) {
                *pp = pod->keys[i].next;
                break;
            }
        }
    }
    if (pod->older)
        pod->older->newer = pod->newer;
    else
        p->oldest = pod->newer;
    if (pod->newer)
        pod->newer->older = pod->older;
    else
        p->newest = pod->older;
    p->npods--;
}

static void link_pod(struct kx_pods *p, struct pods_pod *pod)
{
    for (size_t i = 0; i < pod->nkeys; i++) {
        struct pods_key **b = bucket(p, i >= pod->npod, pod->keys[i].key);

        /* Prepended: when another pod holds the same key (a config hash
         * shared with the static pod being replaced), the newest report
         * wins, since lookups stop at the first match. */
        pod->keys[i].next = *b;
        *b = &pod->keys[i];
    }
    pod->older = p->newest;
    pod->newer = NULL;
    if (p->newest)
        p->newest->newer = pod;
    else
        p->oldest = pod;
    p->newest = pod;
    p->npods++;
}

/* The pod whose UID is uid (its first key), or NULL. */
static struct pods_pod *find_uid(struct kx_pods *p, const char *uid)
{
    for (struct pods_key *k = *bucket(p, false, uid); k; k = k->next) {
        if (k == &k->pod->keys[0] && strcmp(k->key, uid) == 0)
            return k->pod;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

static void pods_upsert(struct kx_pods *p, struct pods_pod *pod)
{
    struct pods_pod *old, *evict = NULL;

    pthread_rwlock_wrlock(&p->lock);
    old = find_uid(p, pod->keys[0].key);
    if (old)
        unlink_pod(p, old);
    if (!old && p->npods >= KX_PODS_MAX) {
        evict = p->oldest;
        unlink_pod(p, evict);
        p->st.evicted++;
    }
    pod->gen = p->gen;
    link_pod(p, pod);
    p->st.events++;
    pthread_rwlock_unlock(&p->lock);
    pod_free(old);
    if (evict)
        kx_debug("pods: cache full (%d pods): evicted %s/%s", KX_PODS_MAX, evict->ns, evict->name);
    pod_free(evict);
}

static void pods_delete(struct kx_pods *p, const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    char key[PODS_KEY_MAX + 1];
    struct pods_pod *old;

    if (!key_norm(jstr(meta, "uid"), key))
        return;
    pthread_rwlock_wrlock(&p->lock);
    old = find_uid(p, key);
    if (old)
        unlink_pod(p, old);
    p->st.events++;
    pthread_rwlock_unlock(&p->lock);
    pod_free(old);
}

/* End of a list: drop the pods it did not contain. Returns the count. */
static size_t pods_sweep(struct kx_pods *p)
{
    struct pods_pod *gone = NULL, *pod, *next;
    size_t n;

    pthread_rwlock_wrlock(&p->lock);
    for (pod = p->oldest; pod; pod = next) {
        next = pod->newer;
        if (pod->gen != p->gen) {
            unlink_pod(p, pod);
            pod->newer = gone; /* reuse the link for the free list */
            gone = pod;
        }
    }
    n = p->npods;
    pthread_rwlock_unlock(&p->lock);
    for (pod = gone; pod; pod = next) {
        next = pod->newer;
        pod_free(pod);
    }
    return n;
}

void kx_pods_apply(struct kx_pods *p, const struct kx_k8s_event *ev)
{
    struct pods_pod *pod;
    bool resumed;
    int prev;
    size_t n;

    if (!p || !ev)
        return;
    switch (ev->type) {
    case KX_K8S_LIST_BEGIN:
        pthread_rwlock_wrlock(&p->lock);
        p->gen++;
        p->st.lists++;
        pthread_rwlock_unlock(&p->lock);
        break;
    case KX_K8S_ADDED:
    case KX_K8S_MODIFIED:
        pod = pod_build(ev->object);
        if (pod)
            pods_upsert(p, pod);
        break;
    case KX_K8S_DELETED:
        pods_delete(p, ev->object);
        break;
    case KX_K8S_SYNCED:
        n = pods_sweep(p);
        pthread_rwlock_wrlock(&p->lock);
        prev = p->state;
        p->state = PODS_SYNCED;
        p->st.synced = true;
        p->st.unreachable = false;
        pthread_rwlock_unlock(&p->lock);
        if (prev != PODS_SYNCED)
            kx_info("pods: synced with %zu pods%s%s", n, p->node ? " on node " : "",
                    p->node ? p->node : "");
        else
            kx_debug("pods: listed again: %zu pods", n);
        break;
    case KX_K8S_WATCHING:
        pthread_rwlock_wrlock(&p->lock);
        prev = p->state;
        resumed = prev == PODS_UNREACHABLE && p->st.synced;
        if (resumed) {
            p->state = PODS_SYNCED;
            p->st.unreachable = false;
        }
        n = p->npods;
        pthread_rwlock_unlock(&p->lock);
        if (resumed)
            kx_info("pods: watch resumed with %zu cached pods", n);
        break;
    case KX_K8S_FAILED:
        pthread_rwlock_wrlock(&p->lock);
        prev = p->state;
        p->state = PODS_UNREACHABLE;
        p->st.unreachable = true;
        p->st.failures++;
        n = p->npods;
        pthread_rwlock_unlock(&p->lock);
        if (prev != PODS_UNREACHABLE)
            kx_warn("pods: cannot list/watch pods: %s; lookups use the %zu cached pods "
                    "meanwhile, retrying with backoff",
                    ev->message ? ev->message : "?", n);
        else
            kx_debug("pods: still failing (next try in %lld ms): %s",
                     (long long)(ev->retry_in / KX_NSEC_PER_MSEC), ev->message ? ev->message : "?");
        break;
    case KX_K8S_BOOKMARK:
        break;
    }
}

static void pods_on_event(void *ctx, const struct kx_k8s_event *ev)
{
    kx_pods_apply(ctx, ev);
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */
/* ------------------------------------------------------------------------ */

int kx_pods_lookup(struct kx_pods *p, const char *pod_uid, const char *container_full_id,
                   struct kx_pod_info *out)
{
    char uid[PODS_KEY_MAX + 1], cid[PODS_KEY_MAX + 1];
    bool have_uid, have_cid;
    struct pods_key *k = NULL;
    struct pods_pod *pod = NULL;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!p || !out)
        return 0;
    have_uid = key_norm(pod_uid, uid);
    have_cid = key_norm(container_full_id, cid);
    atomic_fetch_add(&p->lookups, 1);
    pthread_rwlock_rdlock(&p->lock);
    if (have_cid && (k = find(p, true, cid)))
        pod = k->pod;
    if (!pod && have_uid) {
        struct pods_key *u = find(p, false, uid);

        pod = u ? u->pod : NULL;
    }
    if (pod) {
        snprintf(out->ns, sizeof(out->ns), "%s", pod->ns);
        snprintf(out->name, sizeof(out->name), "%s", pod->name);
        snprintf(out->uid, sizeof(out->uid), "%s", pod->uid);
        snprintf(out->labels, sizeof(out->labels), "%s", pod->labels);
        out->labels_truncated = pod->labels_truncated;
        if (k && k->cname)
            snprintf(out->container, sizeof(out->container), "%s", k->cname);
    }
    pthread_rwlock_unlock(&p->lock);
    if (pod)
        atomic_fetch_add(&p->hits, 1);
    return pod ? 1 : 0;
}

bool kx_pod_info_label(const struct kx_pod_info *info, const char *key, char *out, size_t len)
{
    size_t klen = key ? strlen(key) : 0;

    if (out && len)
        out[0] = '\0';
    if (!info || !klen)
        return false;
    for (const char *s = info->labels; *s;) {
        size_t n = strcspn(s, ",");

        if (n > klen && strncmp(s, key, klen) == 0 && s[klen] == ':') {
            if (out && len)
                snprintf(out, len, "%.*s", (int)(n - klen - 1), s + klen + 1);
            return true;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return false;
}

void kx_pods_stats(struct kx_pods *p, struct kx_pods_stats *out)
{
    if (!p || !out)
        return;
    pthread_rwlock_rdlock(&p->lock);
    *out = p->st;
    out->pods = p->npods;
    pthread_rwlock_unlock(&p->lock);
    out->lookups = atomic_load(&p->lookups);
    out->hits = atomic_load(&p->hits);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

struct kx_pods *kx_pods_new(void)
{
    struct kx_pods *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return NULL;
    if ((rc = pthread_rwlock_init(&p->lock, NULL)) != 0) {
        free(p);
        errno = rc;
        return NULL;
    }
    atomic_init(&p->lookups, 0);
    atomic_init(&p->hits, 0);
    return p;
}

/* kx-pods: list+watch until kx_k8s_cancel(). */
static void *pods_main(void *arg)
{
    struct kx_pods *p = arg;
    struct kx_k8s_watch_opts w = {
        .path = "/api/v1/pods",
        .query = p->query,
        .cb = pods_on_event,
        .ctx = p,
    };

    kx_k8s_watch(p->k8s, &w);
    return NULL;
}

struct kx_pods *kx_pods_start(const struct kx_k8s_opts *o, const char *node_name, char *err,
                              size_t errlen)
{
    char sel[600], esc[2048];
    struct kx_pods *p;
    sigset_t all, old;
    int rc;

    if (!node_name || !node_name[0] || strlen(node_name) > KX_POD_NAME_MAX) {
        snprintf(err, errlen, "pods: the node name must be 1 to %d characters", KX_POD_NAME_MAX);
        errno = EINVAL;
        return NULL;
    }
    if (!(p = kx_pods_new())) {
        snprintf(err, errlen, "pods: out of memory");
        return NULL;
    }
    p->k8s = kx_k8s_new(o, err, errlen);
    if (!p->k8s) {
        rc = errno;
        kx_pods_free(p);
        errno = rc;
        return NULL;
    }
    snprintf(sel, sizeof(sel), "spec.nodeName=%s", node_name);
    kx_k8s_query_escape(sel, esc, sizeof(esc));
    p->node = strdup(node_name);
    if (!p->node || asprintf(&p->query, "fieldSelector=%s", esc) < 0) {
        p->query = NULL;
        kx_pods_free(p);
        snprintf(err, errlen, "pods: out of memory");
        errno = ENOMEM;
        return NULL;
    }

    /* Signals belong to the main thread (it stops the sensor). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->thread, NULL, pods_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        kx_pods_free(p);
        snprintf(err, errlen, "pods: cannot start the kx-pods thread: %s", strerror(rc));
        errno = rc;
        return NULL;
    }
    pthread_setname_np(p->thread, "kx-pods");
    p->thread_started = true;
    kx_info("pods: watching the pods of node %s at %s (%s)", node_name, kx_k8s_server(p->k8s),
            kx_k8s_source(p->k8s));
    return p;
}

void kx_pods_free(struct kx_pods *p)
{
    struct pods_pod *pod, *next;

    if (!p)
        return;
    if (p->thread_started) {
        kx_k8s_cancel(p->k8s);
        pthread_join(p->thread, NULL);
    }
    kx_k8s_free(p->k8s);
    for (pod = p->oldest; pod; pod = next) {
        next = pod->newer;
        pod_free(pod);
    }
    pthread_rwlock_destroy(&p->lock);
    free(p->node);
    free(p->query);
    free(p);
}
