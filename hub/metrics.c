/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - Prometheus text exposition of the hub's counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>

#include "metrics.h"

/* Bucket upper bounds, ms: from a local sink to a slow SaaS API. */
static const double kx_latency_bounds_ms[KX_LATENCY_BUCKETS] = {1,   2.5, 5,   10,   25,   50,
                                                                100, 250, 500, 1000, 2500, 10000};

void kx_metrics_latency(struct kx_output_metrics *o, int64_t ns)
{
    double ms = (double)ns / 1e6;
    int k = 0;

    while (k < KX_LATENCY_BUCKETS && ms > kx_latency_bounds_ms[k])
        k++;
    atomic_fetch_add_explicit(&o->latency_bucket[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&o->latency_sum_us, (uint64_t)(ns > 0 ? ns / 1000 : 0),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&o->latency_count, 1, memory_order_relaxed);
}

static int counter(struct kx_buf *b, const char *name, const char *help, uint64_t v)
{
    return kx_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name,
                         name, v);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

int kx_metrics_render(const struct kx_metrics *m, struct kx_buf *b)
{
    int rc = 0;
    int n = atomic_load(&((struct kx_metrics *)m)->noutputs);

    rc |= kx_buf_printf(b,
                        "# HELP klaxon_alerts_received_total Raw alerts received.\n"
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
    rc |=
        kx_buf_printf(b,
                      "# HELP klaxon_alerts_rejected_total Invalid alerts rejected.\n"
                      "# TYPE klaxon_alerts_rejected_total counter\n"
                      "klaxon_alerts_rejected_total{reason=\"invalid\"} %" PRIu64 "\n"
                      "klaxon_alerts_rejected_total{reason=\"too_large\"} %" PRIu64 "\n",
                      LOAD(m->rejected[KX_REJECT_INVALID]), LOAD(m->rejected[KX_REJECT_TOO_LARGE]));
    rc |= counter(b, "klaxon_publish_errors_total", "Failed publishes to JetStream (retried).",
                  LOAD(m->publish_errors));
    rc |= counter(b, "klaxon_dedupe_errors_total", "Dedupe store errors (alert retried).",
                  LOAD(m->dedupe_errors));
    rc |= counter(b, "klaxon_dedupe_timer_overflow_total",
                  "Windows left to the periodic sweep because the timer queue was full.",
                  LOAD(m->dedupe_timer_overflow));
    rc |= counter(b, "klaxon_live_events_total",
                  "Events put in the live feed for WebSocket clients.", LOAD(m->live_events));
    rc |= kx_buf_printf(b,
                        "# HELP klaxon_ws_clients WebSocket clients connected.\n"
                        "# TYPE klaxon_ws_clients gauge\nklaxon_ws_clients %" PRId64 "\n",
                        (int64_t)atomic_load(&((struct kx_metrics *)m)->ws_clients));
    rc |= counter(b, "klaxon_ws_skipped_events_total",
                  "Events slow WebSocket clients missed (skipped ahead).", LOAD(m->ws_skipped));
    rc |= counter(b, "klaxon_ws_dropped_clients_total",
                  "Slow WebSocket clients closed (http.ws_slow: drop).", LOAD(m->ws_dropped));

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
    rc |= kx_buf_printf(b, "# HELP klaxon_output_delivery_seconds Time one delivery request "
                           "took (a batch or one alert).\n"
                           "# TYPE klaxon_output_delivery_seconds histogram\n");
    for (int i = 0; i < n; i++) {
        const struct kx_output_metrics *o = &m->outputs[i];
        uint64_t cum = 0;

        for (int k = 0; k <= KX_LATENCY_BUCKETS; k++) {
            cum += (uint64_t)atomic_load_explicit(&o->latency_bucket[k], memory_order_relaxed);
            if (k < KX_LATENCY_BUCKETS)
                rc |= kx_buf_printf(b,
                                    "klaxon_output_delivery_seconds_bucket{output=\"%s\","
                                    "le=\"%g\"} %" PRIu64 "\n",
                                    o->name, kx_latency_bounds_ms[k] / 1000.0, cum);
            else
                rc |= kx_buf_printf(b,
                                    "klaxon_output_delivery_seconds_bucket{output=\"%s\","
                                    "le=\"+Inf\"} %" PRIu64 "\n",
                                    o->name, cum);
        }
        rc |= kx_buf_printf(
            b,
            "klaxon_output_delivery_seconds_sum{output=\"%s\"} %.6f\n"
            "klaxon_output_delivery_seconds_count{output=\"%s\"} %" PRIu64 "\n",
            o->name, (double)atomic_load_explicit(&o->latency_sum_us, memory_order_relaxed) / 1e6,
            o->name, (uint64_t)atomic_load_explicit(&o->latency_count, memory_order_relaxed));
    }
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
