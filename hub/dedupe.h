/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dedupe.h - cluster-wide repeat suppression on a NATS KV bucket.
 *
 * Each dedupe key (a hash of configured alert fields) has one KV entry: its
 * window's start, the repeat count, whether it is open, and the first
 * alert. All changes are compare-and-set on the entry's revision, so any
 * number of hub replicas agree on which alert opened a window and count every
 * repeat exactly once. When a window closes with repeats, one aggregate alert
 * is published with a Nats-Msg-Id derived from (key, start), so even two
 * replicas racing to close it store it once.
 *
 * Windows are closed by the replica that opened them (a local FIFO of
 * deadlines: all windows have the same length, so they expire in order), by
 * whichever replica sees the next alert with that key after expiry, and by a
 * periodic sweep of the bucket, which catches windows whose owner died.
 */
#ifndef KX_HUB_DEDUPE_H
#define KX_HUB_DEDUPE_H

#include <stdbool.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "util.h"

#define KX_DEDUPE_KEY_LEN 35   /* "d." + 32 hex + NUL */

/* The KV key for a: "d." + 128-bit hash of the field values (absent = "").
 * Pure; buf >= KX_DEDUPE_KEY_LEN. */
void kx_dedupe_key(const struct kx_alert *a, const struct kx_strlist *fields, char *buf);

struct kx_dedupe_state {
    bool open;
    int64_t start;          /* window start, ns since the epoch */
    uint64_t count;         /* repeats suppressed in this window */
    char uuid[40];          /* uuid of the alert that opened it */
    char owner[64];         /* replica that opened it */
    const char *first;      /* JSON of the alert that opened it (borrowed) */
    size_t first_len;
};

/* "v1 <open> <start> <count> <uuid> <owner>\n<first alert json>". 0 or -EINVAL. */
int kx_dedupe_state_parse(const char *v, size_t len, struct kx_dedupe_state *st);
/* Appends the encoding to b. 0 or -E2BIG/-ENOMEM. */
int kx_dedupe_state_format(const struct kx_dedupe_state *st, struct kx_buf *b);

enum kx_dedupe_step {
    KX_DEDUPE_OPEN,       /* no live window: open one, accept the alert */
    KX_DEDUPE_REPEAT,     /* inside a live window: count it, suppress */
    KX_DEDUPE_REDELIVERY, /* this very alert opened the window: accept again (idempotent) */
};

/*
 * The pure decision. cur NULL = no entry. uuid is the incoming alert's.
 * Sets *close_prev when an expired window with repeats must be aggregated
 * before it is replaced.
 */
enum kx_dedupe_step kx_dedupe_decide(const struct kx_dedupe_state *cur, const char *uuid,
                                     int64_t now, int64_t window, bool *close_prev);

/* The aggregate for a closed window (caller owns), or NULL on OOM/bad first. */
struct kx_alert *kx_dedupe_aggregate(const struct kx_dedupe_state *st, int64_t window);

struct kx_hub;
struct kx_dedupe;

/* Opens/creates the KV bucket and starts the kx-dedupe thread. */
int kx_dedupe_start(struct kx_hub *h, char *err, size_t errlen);
void kx_dedupe_stop(struct kx_hub *h);

/*
 * Runs a on the window logic one alert at a time: read the key's entry (or
 * the cached one), decide, compare-and-set, re-read on a lost race. The
 * slow path behind kx_dedupe_check_many. *accept tells whether to publish a.
 * 0, or a negative errno when the store could not be reached (retry the
 * alert later). Runs on the ingest thread.
 */
int kx_dedupe_check(struct kx_dedupe *d, const struct kx_alert *a, bool *accept);

/* One alert of a batch for kx_dedupe_check_many. */
struct kx_dedupe_op {
    const struct kx_alert *alert;     /* in, borrowed */
    char key[KX_DEDUPE_KEY_LEN];      /* in: kx_dedupe_key_of(alert) */
    uint64_t extra;                   /* in: repeats of this key behind it in the batch,
                                       * counted in the same write when it succeeds */
    bool counted;                     /* out: extra was counted */
    int result;                       /* out: 1 accept, 0 counted repeat, -EAGAIN: decide
                                       * with kx_dedupe_check (lost a race, no answer,
                                       * or an aggregate to emit first) */
    /* private to dedupe.c */
    struct kx_buf val;                /* the state written; init with kx_buf_init, free after */
    uint64_t expect;                  /* CAS: expected last sequence of the key, 0 = create */
    uint64_t stored_rev;              /* set by the ack: the new revision, 0 = not stored */
    int64_t start;
    bool opens;
    bool pending;                     /* waiting for its ack (under the dedupe's ops lock) */
};

/*
 * The first compare-and-set attempt for a batch of alerts with pairwise
 * distinct keys, written to NATS together instead of one round trip each.
 * Alerts whose attempt lost a race, needed an aggregate emitted first, or got
 * no answer come back with -EAGAIN for the one-by-one path. Runs on the
 * ingest thread.
 */
void kx_dedupe_check_many(struct kx_dedupe *d, struct kx_dedupe_op *ops, size_t n);

/* a's key under this hub's configured fields; key >= KX_DEDUPE_KEY_LEN. */
void kx_dedupe_key_of(const struct kx_dedupe *d, const struct kx_alert *a, char *key);

/*
 * Counts n more repeats in key's live window with one compare-and-set (used
 * for repeats that arrive together in one fetched batch). 0; -ESTALE when
 * there is no live window (check those alerts one by one instead); or another
 * negative errno when the store cannot be reached. Runs on the ingest thread.
 */
int kx_dedupe_add_repeats(struct kx_dedupe *d, const char *key, uint64_t n);

#endif
