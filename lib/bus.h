/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bus.h - Klaxon on NATS JetStream: connection with endless reconnect, the
 * streams and subjects, and idempotent "ensure" helpers for streams and
 * durable consumers. A thin layer over nats.c: callers use the natsConnection
 * and jsCtx directly for publishing and fetching.
 */
#ifndef KX_BUS_H
#define KX_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nats/nats.h>

/* Streams and subjects (DESIGN.md "Data flow"). */
#define KX_STREAM_ALERTS     "KLAXON_ALERTS"     /* raw alerts from sensors / HTTP ingest */
#define KX_SUBJ_ALERTS       "klaxon.alerts"     /* .<node> */
#define KX_STREAM_EVENTS     "KLAXON_EVENTS"     /* accepted (deduped) alerts */
#define KX_SUBJ_EVENTS       "klaxon.events"     /* .<priority>.<rule_slug> */
#define KX_STREAM_AUDIT      "KLAXON_AUDIT"
#define KX_SUBJ_AUDIT        "klaxon.audit"      /* .<responder> */
#define KX_STREAM_DEADLETTER "KLAXON_DEADLETTER"
#define KX_SUBJ_DEADLETTER   "klaxon.deadletter" /* .<output> | .ingest */
#define KX_KV_DEDUPE         "KLAXON_DEDUPE"

#define KX_HDR_MSG_ID  "Nats-Msg-Id"
#define KX_HDR_REASON  "Klaxon-Reason"   /* on dead-lettered messages */
#define KX_HDR_TEST    "Klaxon-Test"     /* on POST /test alerts: every output delivers them */

struct kx_bus_opts {
    const char *url;         /* "nats://127.0.0.1:4222" (comma-separated list ok) */
    const char *name;        /* connection name shown by the server */
    const char *creds_file;  /* optional */
    const char *token;       /* optional */
    int64_t connect_timeout; /* ns; 0 = 2 s */
    bool retry_on_failed_connect; /* keep trying in the background (sensor) */
    int reconnect_buf;       /* bytes nats.c buffers while reconnecting; 0 = 8 MiB */
};

struct kx_bus {
    natsConnection *nc;      /* owned */
    jsCtx *js;               /* owned */
    natsOptions *opts;       /* owned */
    atomic_bool closing;     /* set by kx_bus_close: silences the disconnect log */
};

/* Connects (reconnecting forever afterwards). NULL on failure with a clear
 * message in err ("cannot reach NATS at nats://...: ..."). Caller owns. */
struct kx_bus *kx_bus_connect(const struct kx_bus_opts *o, char *err, size_t errlen);
void kx_bus_close(struct kx_bus *b); /* no-op if NULL; drains nothing */
bool kx_bus_connected(const struct kx_bus *b);

struct kx_stream_spec {
    const char *name;
    const char *subjects;    /* one wildcard subject, e.g. "klaxon.alerts.>" */
    int64_t max_age;         /* ns; 0 = unlimited */
    int64_t max_bytes;       /* 0 = unlimited */
    int64_t duplicates;      /* dedupe window for Nats-Msg-Id, ns; 0 = server default (2 min) */
    int replicas;            /* 1 on one node, 3 in a cluster */
    int32_t max_msg_size;    /* 0 = server default */
};

/* Creates the stream, or updates it when it exists with other settings.
 * 0 or a negative errno with err filled. */
int kx_bus_ensure_stream(struct kx_bus *b, const struct kx_stream_spec *s, char *err,
                         size_t errlen);
/* Ensures all of Klaxon's streams with the given replicas and retention. */
int kx_bus_ensure_all_streams(struct kx_bus *b, int replicas, int64_t alerts_max_age,
                              int64_t events_max_age, char *err, size_t errlen);

struct kx_consumer_spec {
    const char *stream;
    const char *durable;
    const char *filter;      /* subject filter, NULL = all */
    int64_t ack_wait;        /* ns */
    int64_t max_deliver;     /* -1 = unlimited */
    const int64_t *backoff;  /* ns each, may be NULL */
    int backoff_len;
    int64_t max_ack_pending; /* bounds in-flight messages per consumer */
    bool deliver_new;        /* start at new messages instead of all */
};

/* Creates the durable pull consumer or updates its settings. 0 or -errno. */
int kx_bus_ensure_consumer(struct kx_bus *b, const struct kx_consumer_spec *c, char *err,
                           size_t errlen);

/* Publishes data to subject through JetStream with Nats-Msg-Id msg_id (may be
 * NULL) and optional extra header (name/value may be NULL), waiting for the
 * stream's ack up to timeout ns. Returns 0, 1 if the stream reported a
 * duplicate, or a negative errno (-ETIMEDOUT, -ENOTCONN, -EIO) with err. */
int kx_bus_publish(struct kx_bus *b, const char *subject, const void *data, size_t len,
                   const char *msg_id, const char *hdr_name, const char *hdr_value,
                   int64_t timeout, char *err, size_t errlen);

/* Whether every Klaxon stream exists (GET /readyz). 0, or -ENOENT naming
 * the missing stream in err, or another -errno (NATS down). Any thread. */
int kx_bus_streams_present(struct kx_bus *b, char *err, size_t errlen);

/* nats.c status to a negative errno. */
int kx_bus_errno(natsStatus s);

#endif
