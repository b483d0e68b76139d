/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout.h - output instances and their workers.
 *
 * Each configured output is its own durable JetStream consumer on
 * KLAXON_EVENTS with its own worker thread, so a slow or failing endpoint
 * never delays another output. The worker filters, batches, calls the
 * plugin's deliver(), and turns the outcome into ack / nak-with-backoff /
 * dead-letter (klaxon.deadletter.<name>) after max_deliver attempts.
 */
#ifndef KX_HUB_FANOUT_H
#define KX_HUB_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "outputs.h"
#include "template.h"

#define KX_MAX_BACKOFF 16

/* Settings every output has, whatever its type. */
struct kx_output_common {
    char *name;                       /* instance name, unique */
    char *type;                       /* registry name: "webhook" */
    bool enabled;
    enum kx_priority minimumpriority; /* deliver alerts at least this severe */
    int64_t max_deliver;              /* attempts before dead-lettering */
    struct kx_strlist backoff;        /* delays between attempts, e.g. 1s,5s,30s */
    int64_t ack_wait;                 /* redelivery after a crash mid-delivery */
    int64_t batch_size;               /* alerts per deliver() call, <= ops->max_batch */
    int64_t batch_wait;               /* ns to wait for a batch to fill; 0 = send what is there */
    struct kx_strlist rules;          /* only these rules (globs); empty = all */
    struct kx_strlist tags;           /* only alerts with one of these tags; empty = all */
    struct kx_strlist sources;        /* only these sources ("syscall", "k8s_audit"); empty = all */
    struct kx_strlist namespaces;     /* only these k8s.ns.name; empty = all */
    struct kx_strmap customfields;    /* added to output_fields (Falcosidekick's customfields) */
    struct kx_strmap templatedfields; /* added, rendered from the alert (%field / {{field}}) */
};

struct kx_output_instance {
    struct kx_output_common common;
    const struct kx_output_ops *ops;  /* static registry entry */
    void *settings;                   /* owned: ops->settings_size bytes */
    int64_t backoff[KX_MAX_BACKOFF];  /* parsed common.backoff, ns */
    int nbackoff;
    struct kx_template **templated;   /* owned: one per common.templatedfields entry */
};

/* The option table of the settings every output has (static). */
const struct kx_opt *kx_output_common_opts(void);

/*
 * Whether the instance's rule/tag/source/namespace filters let a through
 * (minimumpriority is checked apart). Pure; both borrowed.
 */
bool kx_output_wants(const struct kx_output_instance *inst, const struct kx_alert *a);

/* Adds customfields and templatedfields to a's output_fields. 0 or -ENOMEM. */
int kx_output_decorate(const struct kx_output_instance *inst, struct kx_alert *a);

/* Parses one output map (common keys + the type's own keys, unknown keys
 * rejected). 0 or -EINVAL with diagnostics. Always release afterwards. */
int kx_output_instance_init(struct kx_output_instance *inst, const struct kx_config_node *map,
                            struct kx_diag *d);
void kx_output_instance_release(struct kx_output_instance *inst);

/* The delay before attempt number `delivered + 1` (delivered >= 1). */
int64_t kx_output_backoff(const struct kx_output_instance *inst, uint64_t delivered);

struct kx_hub;
/* Ensures one durable consumer per enabled output and starts the workers. */
int kx_fanout_start(struct kx_hub *h, char *err, size_t errlen);
/* Joins the workers (after h->stopping is set): in-flight batches finish. */
void kx_fanout_stop(struct kx_hub *h);

struct kx_http_req;
struct kx_http_resp;
/* GET /api/v1/outputs (docs/api.md): health, lag and last error of every
 * output consumer. Worker thread. */
void kx_api_outputs(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r);

#endif
