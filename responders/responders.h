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
 *
 * Threads: init/act/destroy of one instance all run on that instance's
 * responder worker thread, one call at a time, so a plugin needs no locking
 * for its own state; instances of one type may act concurrently on different
 * threads. Settings must not change after init. A plugin that starts
 * processes reaps them itself, by pid: nothing in the hub may wait for
 * children with waitpid(-1).
 *
 * Third-party plugins (responders/plugin.c loads them): a .so exporting
 *
 *     KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin = {
 *         .abi = KX_RESPONDER_ABI, .name = "label", .act = label_act, ...
 *     };
 *
 * The loader refuses a plugin whose abi differs from the hub's. The hub does
 * not export its own kx_* functions to plugins: a plugin uses libc and the
 * libraries it links itself (libcjson for the audit), walks its config
 * nodes directly, and reports a failed init through r->error. Its opts table
 * (if any) is applied by the loader to the instance's `settings` map.
 */
#ifndef KX_RESPONDERS_H
#define KX_RESPONDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "util.h"

struct kx_responder {
    const struct kx_responder_ops *ops;
    const char *name;          /* borrowed: instance name */
    void *settings;            /* ops->settings_size bytes, filled from ops->opts */
    void *priv;                /* plugin state */
    bool dry_run;              /* decide and audit, change nothing */
    void *nats;                /* borrowed natsConnection * of the hub, set before the first
                                * act (node-local actions are NATS requests to the sensor) */
    /* Added for .so plugins, which cannot call kx_diag_add (the hub does not
     * export it): init sets the reason of its failure here, and the loader
     * reports it. Plugins may also set it on an act failure; the audit
     * "reason" stays the place users look. */
    char error[256];
    /* ns: an act returning -EAGAIN may set it from the server's Retry-After;
     * the core waits at least this long before the next attempt */
    int64_t retry_after;
};

/* Version of this header's structs as seen by .so plugins. Bump it whenever
 * struct kx_responder, struct kx_responder_ops or anything they point to
 * changes layout or meaning; the loader refuses plugins built for another. */
#define KX_RESPONDER_ABI 2 /* 2: retry_after */

/* The one symbol a responder .so exports (a const struct kx_responder_ops). */
#define KX_RESPONDER_PLUGIN_SYMBOL "kx_responder_plugin"
/* Marks that symbol exported when the plugin is built -fvisibility=hidden. */
#define KX_RESPONDER_PLUGIN_EXPORT __attribute__((visibility("default")))

struct kx_responder_ops {
    /* KX_RESPONDER_ABI when built. First, so that the loader can read it
     * from a plugin built against any other layout. Built-in types set it
     * too; only .so plugins are checked. */
    unsigned abi;
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

/* The registry (responders/registry.c): the ops for a type name (case
 * insensitive; borrowed, static), or NULL when unknown or type is NULL. */
const struct kx_responder_ops *kx_responder_ops_find(const char *type);
/* NULL-terminated list of all registered responder types. */
extern const struct kx_responder_ops *const kx_responder_registry[];

#endif
