/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outputs.h - the output plugin interface.
 *
 * An output is an ops table plus a settings table (struct kx_opt) that the
 * core uses to fill the output's settings struct from its YAML map and env
 * (prefix = the instance name, uppercased: WEBHOOK_ADDRESS). The core owns
 * everything else: the durable JetStream consumer, filtering by priority,
 * batching, retries with backoff, dead-lettering and metrics. A plugin only
 * formats and delivers, and reports the outcome:
 *
 *     0              delivered (the batch is acked)
 *     KX_OUTPUT_HOLD held: the plugin will send it later, with others (digest)
 *     -EAGAIN        retry later (nak with backoff; dead-letter after max_deliver)
 *     other <0       permanent failure (dead-letter now)
 *
 * Holding (a digest: one mail per N minutes listing every alert). When
 * deliver() returns KX_OUTPUT_HOLD, the core keeps that batch's alerts and
 * leaves their messages un-acked (telling JetStream they are in progress, so
 * AckWait does not redeliver them). Once o->flush_at (monotonic ns, set by
 * the plugin) has passed, or KX_OUTPUT_HOLD_MAX alerts are held, the core
 * calls flush() with every held alert, oldest first, and settles them all
 * with its result as if deliver() had returned it. A hub that dies while
 * holding leaves the messages un-acked: they come back after AckWait.
 *
 * Threads: init/deliver/destroy of one instance all run on that instance's
 * worker thread, one call at a time, so a plugin needs no locking for its own
 * state. Settings must not change after init.
 *
 * Adding an output = one .c file defining a `const struct kx_output_ops`,
 * one line in outputs/registry.c, and its test.
 */
#ifndef KX_OUTPUTS_H
#define KX_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"

struct kx_output {
    const struct kx_output_ops *ops;
    const char *name;          /* borrowed from the core: instance name */
    void *settings;            /* ops->settings_size bytes, filled from ops->opts */
    void *priv;                /* plugin state, set by init, freed by destroy */
    int64_t retry_after;       /* ns; a plugin returning -EAGAIN may set it (Retry-After) */
    char error[256];           /* a plugin sets the reason of its last failure here */
    int64_t flush_at;          /* monotonic ns: when to flush() what is held; 0 = never */
};

#define KX_OUTPUT_HOLD 1          /* deliver(): keep these un-acked until flush() */
#define KX_OUTPUT_HOLD_MAX 10000  /* alerts held at most; reaching it flushes at once */

struct kx_output_ops {
    const char *name;                    /* type name in config: "webhook" */
    const char *desc;                    /* one line for --help */
    const struct kx_opt *opts;           /* settings table, may be NULL */
    size_t settings_size;                /* size of the settings struct */
    size_t max_batch;                    /* largest batch deliver() accepts (>= 1) */
    bool dedupe_key;                     /* the core adds output_fields["klaxon.dedupe_key"]:
                                          * the hub's dedupe key of the alert (hex) */
    /* cfg: the instance's YAML map (borrowed, may be NULL), for extra checks. */
    int (*init)(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d);
    int (*deliver)(struct kx_output *o, struct kx_alert *const *batch, size_t n);
    /* Required when deliver() may return KX_OUTPUT_HOLD: sends the held
     * alerts (borrowed; n >= 1). 0, -EAGAIN or <0, as deliver(); never HOLD. */
    int (*flush)(struct kx_output *o, struct kx_alert *const *held, size_t n);
    void (*destroy)(struct kx_output *o); /* may be NULL */
};

/* The registry (outputs/registry.c). NULL if unknown. */
const struct kx_output_ops *kx_output_ops_find(const char *type);
/* NULL-terminated list of all registered output types. */
extern const struct kx_output_ops *const kx_output_registry[];

#endif
