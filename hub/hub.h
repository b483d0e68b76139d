/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hub.h - the hub's configuration and shared state.
 *
 * Threads of one hub process:
 *   main      start-up, signals, shutdown
 *   kx-ingest fetches raw alerts from KLAXON_ALERTS, dedupes, publishes
 *             accepted ones to KLAXON_EVENTS, acks (hub/ingest.c)
 *   kx-dedupe closes dedupe windows and emits aggregates (hub/dedupe.c)
 *   kx-out-*  one pair per output (fetcher kx-out-*, sender kx-snd-*): its
 *             own durable consumer on KLAXON_EVENTS (hub/fanout.c)
 *   kx-respond the responders: one durable consumer all replicas share
 *             (hub/respond.c)
 *   kx-http   the libwebsockets loop: HTTP ingest, health, metrics, UI, the
 *             WebSocket feed (hub/api.c, hub/live.c)
 *   kx-http-w workers answering API queries that read NATS (hub/query.c, ...)
 *   (nats.c)  the live feed's ordered consumer callback (hub/live.c)
 */
#ifndef KX_HUB_H
#define KX_HUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "metrics.h"

#define KX_HUB_DURABLE "klaxon-hub" /* the ingest consumer shared by all replicas */

struct kx_hub_config {
    struct kx_config_doc *doc; /* owned: keeps the nodes referenced below alive */
    /* log: */
    char *log_level;
    char *log_format;
    /* nats: */
    char *nats_url;
    char *nats_token;
    char *nats_creds;
    int64_t replicas;
    int64_t alerts_max_age;
    int64_t events_max_age;
    /* http: */
    char *http_listen;
    int64_t http_port;
    int64_t http_max_body;
    char *http_token; /* bearer token for API, UI, WebSocket (docs/api.md) */
    char *http_basic_user;
    char *http_basic_password;
    char *http_ingest_token;             /* ingest's own token; NULL = ingest open */
    struct kx_strlist http_cors_origins; /* empty = CORS off */
    int64_t http_session_ttl;            /* browser session cookie lifetime, ns */
    char *http_tls_cert;                 /* PEM paths; both set = HTTPS/WSS */
    char *http_tls_key;
    bool http_ui;           /* serve the web UI under /ui/ */
    char *http_ui_dir;      /* serve the UI from this directory instead of the binary */
    int64_t http_ws_buffer; /* live events kept for WebSocket clients */
    char *http_ws_slow;     /* "skip" or "drop" a client that falls behind */
    int64_t http_workers;   /* threads answering queries (API reads of NATS) */
    /* hub: */
    char *hub_name; /* replica name; hostname when empty */
    int64_t fetch_batch;
    int64_t publish_timeout;
    int64_t ack_wait; /* redelivery of raw alerts held by a dead replica */
    /* dedupe: */
    bool dedupe_enabled;
    struct kx_strlist dedupe_keys;
    int64_t dedupe_window;
    int64_t dedupe_max_windows; /* local timer bound; beyond it the sweep closes windows */
    /* outputs: */
    const struct kx_config_node *outputs;    /* borrowed from doc: a sequence of maps */
    const struct kx_config_node *responders; /* borrowed from doc: a sequence of maps */
    /* respond: */
    int64_t respond_max_actions; /* actions per window over all responders, cluster-wide */
    int64_t respond_window;
};

/* Loads path (NULL = built-in defaults only) and validates everything,
 * including each output's settings. 0 or -EINVAL with every problem in d. */
int kx_hub_config_load(struct kx_hub_config *c, const char *path, struct kx_diag *d);
void kx_hub_config_free(struct kx_hub_config *c);

struct kx_dedupe;
struct kx_fanout;
struct kx_http_server;
struct kx_respond;
struct kx_stats;
struct kx_live;
struct kx_auth;

struct kx_hub {
    struct kx_hub_config cfg;
    struct kx_bus *bus; /* thread-safe (nats.c) */
    struct kx_dedupe *dedupe;
    struct kx_fanout *fanout;
    struct kx_respond *respond;          /* hub/respond.c; NULL when none are configured */
    struct kx_http_server *_Atomic http; /* set once the listener runs (the live feed wakes it) */
    struct kx_auth *auth;                /* hub/auth.c: immutable after start */
    struct kx_stats *stats;              /* hub/stats.c: counts for /api/v1/stats (own lock) */
    struct kx_live *live;                /* hub/live.c: the live feed for /ws and stats */
    struct kx_metrics metrics;           /* atomics, no lock */
    atomic_bool stopping;                /* set once by main on SIGTERM/SIGINT */
};

/* hub/ingest.c */
/* Starts the kx-ingest thread. 0 or -errno with err. */
int kx_ingest_start(struct kx_hub *h, char *err, size_t errlen);
void kx_ingest_stop(struct kx_hub *h); /* joins; call after setting stopping */
/*
 * Validates a raw alert body and stores it in KLAXON_ALERTS (HTTP ingest).
 * Returns 0 with the alert's uuid in uuid_out, -EINVAL with a reason in err
 * (bad input, HTTP 400), or another negative errno (NATS trouble, HTTP 503).
 */
int kx_ingest_submit(struct kx_hub *h, const char *body, size_t len, char *uuid_out, char *err,
                     size_t errlen);

/* hub/api.c */
int kx_api_start(struct kx_hub *h, char *err, size_t errlen);
void kx_api_stop(struct kx_hub *h);

#endif
