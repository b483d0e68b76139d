/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responders.h - the responder plugin contract (mirrors outputs.h).
 *
 * A responder is a durable consumer on KLAXON_EVENTS, like an output, whose
 * plugin acts instead of notifying: delete or evict a pod, cordon a node,
 * kill a process through the node's sensor. Every decision (acted, skipped
 * and why, failed and why) is written into the audit record the core
 * publishes to klaxon.audit.<responder>. Implementations arrive with the
 * responders issue; this header fixes the shape the hub's consumer core and
 * third-party .so plugins (one exported `kx_responder_plugin` symbol) share.
 */
#ifndef KX_RESPONDERS_H
#define KX_RESPONDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "alert.h"
#include "config.h"
#include "util.h"

struct kx_responder {
    const struct kx_responder_ops *ops;
    const char *name;          /* borrowed: instance name */
    void *settings;            /* ops->settings_size bytes, filled from ops->opts */
    void *priv;                /* plugin state */
    bool dry_run;              /* decide and audit, change nothing */
};

struct kx_responder_ops {
    const char *name;                    /* type name in config: "k8s_pod" */
    const char *desc;
    const struct kx_opt *opts;
    size_t settings_size;
    int (*init)(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d);
    /*
     * Acts on one alert. params: the action's parameters (borrowed map, may
     * be NULL). audit: a JSON object (borrowed) the plugin fills with what it
     * did ("target", "result", "reason", ...). Returns 0 done, -EAGAIN retry,
     * other <0 permanent failure; like outputs, the core owns retries.
     */
    int (*act)(struct kx_responder *r, const struct kx_alert *alert,
               const struct kx_config_node *params, cJSON *audit);
    void (*destroy)(struct kx_responder *r);
};

#endif
