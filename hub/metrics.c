/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - Prometheus text exposition of the hub's counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>

#include "metrics.h"

static int counter(struct kx_buf *b, const char *name, const char *help, uint64_t v)
{
    return kx_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help,
                         name, name, v);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

int kx_metrics_render(const struct kx_metrics *m, struct kx_buf *b)
{
    int rc = 0;
    int n = atomic_load(&((struct kx_metrics *)m)->noutputs);

    rc |= kx_buf_printf(b, "# HELP klaxon_alerts_received_total Raw alerts received.\n"
                           "# TYPE klaxon_alerts_received_total counter\n"
                           "klaxon_alerts_received_total{source=\"nats\"} %" PRIu64 "\n"
                           "klaxon_alerts_received_total{source=\"http\"} %" PRIu64 "\n",
                        LOAD(m->received_nats), LOAD(m->received_http));
    rc |= counter(b, "klaxon_alerts_accepted_total", "Alerts accepted after dedupe.",
                  LOAD(m->accepted));
    rc |= counter(b, "klaxon_alerts_deduped_total", "Repeats suppressed within a window.",
                  LOAD(m->deduped));
    rc |= counter(b, "klaxon_alerts_aggregates_total", "Aggregate alerts emitted.",
                  LOAD(m->aggregates));
    rc |= kx_buf_printf(b, "# HELP klaxon_alerts_rejected_total Invalid alerts rejected.\n"
                           "# TYPE klaxon_alerts_rejected_total counter\n"
                           "klaxon_alerts_rejected_total{reason=\"invalid\"} %" PRIu64 "\n"
                           "klaxon_alerts_rejected_total{reason=\"too_large\"} %" PRIu64 "\n",
                        LOAD(m->rejected[KX_REJECT_INVALID]),
                        LOAD(m->rejected[KX_REJECT_TOO_LARGE]));
    rc |= counter(b, "klaxon_publish_errors_total", "Failed publishes to JetStream (retried).",
                  LOAD(m->publish_errors));
    rc |= counter(b, "klaxon_dedupe_errors_total", "Dedupe store errors (alert retried).",
                  LOAD(m->dedupe_errors));
    rc |= counter(b, "klaxon_dedupe_timer_overflow_total",
                  "Windows left to the periodic sweep because the timer queue was full.",
                  LOAD(m->dedupe_timer_overflow));

    static const struct {
        const char *name, *help;
        size_t off;
    } outs[] = {
        {"klaxon_output_delivered_total", "Alerts delivered by an output.",
         offsetof(struct kx_output_metrics, delivered)},
        {"klaxon_output_retried_total", "Deliveries scheduled for retry.",
         offsetof(struct kx_output_metrics, retried)},
        {"klaxon_output_failed_total", "Delivery attempts that failed.",
         offsetof(struct kx_output_metrics, failed)},
        {"klaxon_output_deadlettered_total", "Alerts sent to the dead-letter subject.",
         offsetof(struct kx_output_metrics, deadlettered)},
        {"klaxon_output_filtered_total", "Alerts skipped by an output's filters.",
         offsetof(struct kx_output_metrics, filtered)},
    };
    for (size_t k = 0; k < KX_ARRAY_SIZE(outs); k++) {
        rc |= kx_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", outs[k].name, outs[k].help,
                            outs[k].name);
        for (int i = 0; i < n; i++) {
            const struct kx_output_metrics *o = &m->outputs[i];
            const atomic_uint_fast64_t *v =
                (const atomic_uint_fast64_t *)((const char *)o + outs[k].off);
            rc |= kx_buf_printf(b, "%s{output=\"%s\"} %" PRIu64 "\n", outs[k].name, o->name,
                                (uint64_t)atomic_load_explicit(v, memory_order_relaxed));
        }
    }
    return rc ? -E2BIG : 0;
}
