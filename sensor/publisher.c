/* SPDX-License-Identifier: Apache-2.0 */
/*
 * publisher.c - bounded alert queue + the kx-publish thread (see publisher.h).
 *
 * The queue is a ring of kx_pub_item. The thread takes the head out of the
 * ring while it publishes (so no lock is held across a network call) and, on
 * failure, puts it back at the head; if the ring filled up meanwhile, that
 * item is the oldest and is the one dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "log.h"
#include "publisher.h"
#include "util.h"

#define KX_PUB_MSGID_MAX 64
#define KX_PUB_WARN_EVERY (5 * KX_NSEC_PER_SEC) /* drop warnings at most this often */

struct kx_pub_item {
    char *json; /* owned, NULL when the slot is empty */
    size_t len;
    char msg_id[KX_PUB_MSGID_MAX];
};

struct kx_publisher {
    char *subject; /* owned, immutable after new */
    int64_t timeout, retry_min, retry_max;
    kx_publisher_send_fn send; /* immutable after new */
    kx_publisher_ready_fn ready;
    void *ctx;

    pthread_t thread; /* kx-publish */
    bool thread_started;

    pthread_mutex_t lock;
    pthread_cond_t wake;          /* lock; signalled on push and stop */
    struct kx_pub_item *ring;     /* lock; cap slots */
    size_t cap, head, count;      /* lock */
    bool inflight;                /* lock; the thread holds one item out of the ring */
    bool stopping;                /* lock */
    int64_t deadline;             /* lock; monotonic ns: give up draining after */
    int64_t last_drop_warn;       /* lock; monotonic ns */
    uint64_t drops_since_warn;    /* lock */
    struct kx_publisher_stats st; /* lock (depth computed on read) */
};

static void item_clear(struct kx_pub_item *it)
{
    free(it->json);
    memset(it, 0, sizeof(*it));
}

/* Caller holds lock. Counts (and warns about) one alert dropped because the
 * queue was full. */
static void count_drop_locked(struct kx_publisher *p)
{
    int64_t now = kx_monotonic_ns();

    p->st.dropped_full++;
    p->drops_since_warn++;
    if (p->last_drop_warn == 0 || now - p->last_drop_warn >= KX_PUB_WARN_EVERY) {
        kx_warn("publish queue full (%zu alerts, NATS slow or unreachable): dropped %llu "
                "oldest alert(s) since last warning, %llu in total",
                p->cap, (unsigned long long)p->drops_since_warn,
                (unsigned long long)p->st.dropped_full);
        p->last_drop_warn = now;
        p->drops_since_warn = 0;
    }
}

/* Caller holds lock. Drops the oldest queued item. */
static void drop_oldest_locked(struct kx_publisher *p)
{
    item_clear(&p->ring[p->head]);
    p->head = (p->head + 1) % p->cap;
    p->count--;
    count_drop_locked(p);
}

static int bus_send(void *ctx, const char *subject, const char *data, size_t len,
                    const char *msg_id, int64_t timeout, char *err, size_t errlen)
{
    return kx_bus_publish(ctx, subject, data, len, msg_id, NULL, NULL, timeout, err, errlen);
}

static bool bus_ready(void *ctx)
{
    return kx_bus_connected(ctx);
}

static bool always_ready(void *ctx)
{
    return true;
}

/* Caller holds lock: sleeps ns (monotonic clock), or less when stop is
 * requested meanwhile; pushes do not cut a backoff short. */
static void backoff_locked(struct kx_publisher *p, int64_t ns)
{
    int64_t until = kx_monotonic_ns() + ns;
    bool was_stopping = p->stopping;
    struct timespec ts;

    if (p->stopping && p->deadline < until)
        until = p->deadline; /* draining: never sleep past the drain deadline */
    ts.tv_sec = until / KX_NSEC_PER_SEC;
    ts.tv_nsec = until % KX_NSEC_PER_SEC;
    while (p->stopping == was_stopping && kx_monotonic_ns() < until)
        if (pthread_cond_timedwait(&p->wake, &p->lock, &ts) == ETIMEDOUT)
            break;
}

/* Runs on the kx-publish thread. */
static void *publisher_on_thread(void *arg)
{
    struct kx_publisher *p = arg;
    int64_t backoff = p->retry_min;
    uint64_t failed_in_row = 0;
    struct kx_pub_item cur;
    char err[256];

    pthread_mutex_lock(&p->lock);
    for (;;) {
        int64_t timeout = p->timeout;
        int rc;

        if (p->stopping && (p->count == 0 || kx_monotonic_ns() >= p->deadline))
            break;
        if (p->count == 0) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        cur = p->ring[p->head];
        memset(&p->ring[p->head], 0, sizeof(cur));
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->inflight = true;
        if (p->stopping && p->deadline - kx_monotonic_ns() < timeout)
            timeout = p->deadline - kx_monotonic_ns();
        pthread_mutex_unlock(&p->lock);

        err[0] = '\0';
        if (timeout <= 0)
            rc = -ETIMEDOUT;
        else if (!p->ready(p->ctx)) {
            snprintf(err, sizeof(err), "not connected to NATS");
            rc = -ENOTCONN;
        } else
            rc = p->send(p->ctx, p->subject, cur.json, cur.len, cur.msg_id, timeout, err,
                         sizeof(err));

        pthread_mutex_lock(&p->lock);
        p->inflight = false;
        if (rc >= 0) {
            p->st.published++;
            if (rc == 1)
                p->st.duplicates++;
            if (failed_in_row)
                kx_info("publishing to %s again after %llu failed attempt(s)", p->subject,
                        (unsigned long long)failed_in_row);
            failed_in_row = 0;
            backoff = p->retry_min;
            item_clear(&cur);
            continue;
        }

        p->st.failures++;
        if (failed_in_row++ == 0)
            kx_warn("cannot publish alert %s to %s: %s; keeping it and retrying (%zu queued)",
                    cur.msg_id, p->subject, err[0] ? err : strerror(-rc), p->count + 1);
        /* Back at the head; when pushes filled the ring meanwhile, cur is the
         * oldest alert and the one dropped (the slot before the head holds
         * the newest). */
        if (p->count == p->cap) {
            item_clear(&cur);
            count_drop_locked(p);
        } else {
            p->head = (p->head + p->cap - 1) % p->cap;
            p->ring[p->head] = cur;
            p->count++;
        }
        if (p->stopping && kx_monotonic_ns() >= p->deadline)
            continue; /* exits at the top */
        backoff_locked(p, backoff);
        backoff = backoff * 2 > p->retry_max ? p->retry_max : backoff * 2;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct kx_publisher *kx_publisher_new(const struct kx_publisher_opts *o)
{
    struct kx_publisher *p = NULL;
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc;

    if (!o || !o->subject || o->queue_size == 0 || (!o->send && !o->bus)) {
        errno = EINVAL;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cap = o->queue_size;
    p->ring = calloc(p->cap, sizeof(*p->ring));
    p->subject = strdup(o->subject);
    if (!p->ring || !p->subject) {
        rc = ENOMEM;
        goto fail;
    }
    p->timeout = o->publish_timeout > 0 ? o->publish_timeout : 2 * KX_NSEC_PER_SEC;
    p->retry_min = o->retry_min > 0 ? o->retry_min : 100 * KX_NSEC_PER_MSEC;
    p->retry_max = o->retry_max > 0 ? o->retry_max : KX_NSEC_PER_SEC;
    if (p->retry_max < p->retry_min)
        p->retry_max = p->retry_min;
    if (o->send) {
        p->send = o->send;
        p->ready = o->ready ? o->ready : always_ready;
        p->ctx = o->ctx;
    } else {
        p->send = bus_send;
        p->ready = o->ready ? o->ready : bus_ready;
        p->ctx = o->bus;
    }

    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);

    /* Signals belong to the main thread (it stops the sensor). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&p->thread, NULL, publisher_on_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        goto fail;
    }
    pthread_setname_np(p->thread, "kx-publish");
    p->thread_started = true;
    return p;

fail:
    free(p->ring);
    free(p->subject);
    free(p);
    errno = rc;
    return NULL;
}

int kx_publisher_push(struct kx_publisher *p, char **json, size_t len, const char *msg_id)
{
    struct kx_pub_item it = {0};
    int rc = 0;

    if (!p || !json || !*json) {
        if (json) {
            free(*json);
            *json = NULL;
        }
        return -EINVAL;
    }
    it.json = *json;
    it.len = len;
    *json = NULL;
    if (msg_id) {
        strncpy(it.msg_id, msg_id, sizeof(it.msg_id) - 1);
        it.msg_id[sizeof(it.msg_id) - 1] = '\0';
    }

    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        item_clear(&it);
        return -ESHUTDOWN;
    }
    if (p->count == p->cap) {
        drop_oldest_locked(p);
        rc = 1;
    }
    p->ring[(p->head + p->count) % p->cap] = it;
    p->count++;
    p->st.queued++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void kx_publisher_stats(struct kx_publisher *p, struct kx_publisher_stats *out)
{
    if (!p || !out)
        return;
    pthread_mutex_lock(&p->lock);
    *out = p->st;
    out->depth = p->count + (p->inflight ? 1 : 0);
    pthread_mutex_unlock(&p->lock);
}

size_t kx_publisher_stop(struct kx_publisher *p, int64_t drain_ns)
{
    size_t left;

    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    if (!p->stopping) {
        p->stopping = true;
        p->deadline = kx_monotonic_ns() + (drain_ns > 0 ? drain_ns : 0);
    }
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    if (p->thread_started) {
        pthread_join(p->thread, NULL);
        p->thread_started = false;
    }

    /* The thread is gone: no lock needed, but keep the counters coherent. */
    pthread_mutex_lock(&p->lock);
    left = p->count;
    while (p->count > 0) {
        item_clear(&p->ring[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->count--;
    }
    p->st.dropped_stop += left;
    pthread_mutex_unlock(&p->lock);
    return left;
}

void kx_publisher_free(struct kx_publisher *p)
{
    if (!p)
        return;
    kx_publisher_stop(p, 0);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->ring);
    free(p->subject);
    free(p);
}
