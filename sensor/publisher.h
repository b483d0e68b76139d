/* SPDX-License-Identifier: Apache-2.0 */
/*
 * publisher.h - the sensor's alert publisher: a bounded queue drained by one
 * thread ("kx-publish") that publishes each alert to JetStream.
 *
 * The ring buffer poll loop must never wait for NATS, so it only pushes
 * serialized alerts here. The publisher thread sends them in order, each with
 * its uuid as Nats-Msg-Id: when NATS is down or an ack times out, the same
 * alert is retried with the same id (backoff), so the stream stores it once.
 * When the queue is full the OLDEST alert is dropped to make room and the
 * drop is counted (and logged, rate-limited): recent detections matter more
 * than old ones after a long outage.
 */
#ifndef KX_SENSOR_PUBLISHER_H
#define KX_SENSOR_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kx_bus;

/* One publish attempt: 0 stored, 1 duplicate (stored earlier), <0 failed
 * (retry). Runs on the kx-publish thread. */
typedef int (*kx_publisher_send_fn)(void *ctx, const char *subject, const char *data, size_t len,
                                    const char *msg_id, int64_t timeout, char *err, size_t errlen);
/* Whether an attempt is worth making now (connected). kx-publish thread. */
typedef bool (*kx_publisher_ready_fn)(void *ctx);

struct kx_publisher_opts {
    const char *subject;         /* "klaxon.alerts.<node>"; copied */
    size_t queue_size;           /* alerts held at most, >= 1 */
    int64_t publish_timeout;     /* ns per attempt; 0 = 2 s */
    int64_t retry_min;           /* ns, first backoff; 0 = 100 ms */
    int64_t retry_max;           /* ns, backoff cap; 0 = 1 s */
    struct kx_bus *bus;          /* borrowed, must outlive the publisher; used when send is NULL */
    kx_publisher_send_fn send;   /* NULL = kx_bus_publish() on bus (tests plug in fakes) */
    kx_publisher_ready_fn ready; /* NULL = kx_bus_connected() on bus, or always with send */
    void *ctx;                   /* borrowed, passed to send/ready */
};

struct kx_publisher_stats {
    uint64_t queued;       /* alerts accepted by push */
    uint64_t published;    /* acked by the stream (duplicates included) */
    uint64_t duplicates;   /* acked as duplicate: an earlier attempt had been stored */
    uint64_t failures;     /* failed attempts (each retried) */
    uint64_t dropped_full; /* oldest alerts dropped because the queue was full */
    uint64_t dropped_stop; /* alerts still unpublished when the drain time ran out */
    size_t depth;          /* alerts waiting now (in-flight one included) */
};

struct kx_publisher;

/* Creates the queue and starts the kx-publish thread. Caller owns; NULL +
 * errno (EINVAL on bad options, ENOMEM, or pthread_create's error). */
struct kx_publisher *kx_publisher_new(const struct kx_publisher_opts *o);

/*
 * Queues one alert. Takes ownership of *json (malloc'd, len bytes, NUL
 * terminated) and clears *json, also on error. msg_id (borrowed, copied, at
 * most 63 chars) becomes Nats-Msg-Id. Returns 0, 1 when the oldest queued
 * alert was dropped to make room, or -ESHUTDOWN after kx_publisher_stop().
 * Thread-safe; never blocks on NATS.
 */
int kx_publisher_push(struct kx_publisher *p, char **json, size_t len, const char *msg_id);

/* A consistent snapshot of the counters. Thread-safe. */
void kx_publisher_stats(struct kx_publisher *p, struct kx_publisher_stats *out);

/*
 * Stops accepting alerts, keeps publishing what is queued for at most
 * drain_ns, then joins the thread and frees what is left (counted in
 * dropped_stop). Returns the number of alerts left unpublished. Idempotent.
 */
size_t kx_publisher_stop(struct kx_publisher *p, int64_t drain_ns);

/* Stops (without draining) if still running, then frees. No-op if NULL. */
void kx_publisher_free(struct kx_publisher *p);

#endif
