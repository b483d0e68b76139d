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
 *     0         delivered (the batch is acked)
 *     -EAGAIN   retry later (nak with backoff; dead-letter after max_deliver)
 *     other <0  permanent failure (dead-letter now)
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
};

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
    void (*destroy)(struct kx_output *o); /* may be NULL */
};

/* The registry (outputs/registry.c). NULL if unknown. */
const struct kx_output_ops *kx_output_ops_find(const char *type);
/* NULL-terminated list of all registered output types. */
extern const struct kx_output_ops *const kx_output_registry[];

#endif
