/* SPDX-License-Identifier: Apache-2.0 */
/*
 * telemetry.c - /metrics and heartbeat renderings of the sensor's counters
 * (see telemetry.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "sevent.h"
#include "telemetry.h"

struct kx_telemetry {
    char *node;                  /* owned */
    struct kx_http_server *http; /* owned, may be NULL */
    pthread_mutex_t lock;        /* guards snap */
    struct kx_telemetry_snap snap; /* lock */
};

static const char *const kx_drop_names[KX_DROP_REASONS] = {
    [KX_DROP_RINGBUF_FULL] = "ringbuf_full",
    [KX_DROP_INFLIGHT_FULL] = "inflight_full",
};

static const char *drop_name(int i)
{
    return i < KX_DROP_REASONS && kx_drop_names[i] ? kx_drop_names[i] : "other";
}

struct kx_telemetry *kx_telemetry_new(const char *node)
{
    struct kx_telemetry *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->node = strdup(node ? node : "");
    if (!t->node) {
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void kx_telemetry_free(struct kx_telemetry *t)
{
    if (!t)
        return;
    kx_http_stop(t->http);
    pthread_mutex_destroy(&t->lock);
    free(t->node);
    free(t);
}

void kx_telemetry_update(struct kx_telemetry *t, const struct kx_telemetry_snap *s)
{
    pthread_mutex_lock(&t->lock);
    t->snap = *s;
    pthread_mutex_unlock(&t->lock);
}

int64_t kx_telemetry_rss(void)
{
    long long size, rss;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (!f)
        return -1;
    n = fscanf(f, "%lld %lld", &size, &rss);
    fclose(f);
    return n == 2 ? rss * sysconf(_SC_PAGESIZE) : -1;
}

#define PROM(b, ...)                                                                              \
    do {                                                                                          \
        if (kx_buf_printf((b), __VA_ARGS__) < 0)                                                  \
            return -ENOMEM;                                                                       \
    } while (0)

int kx_telemetry_prometheus(const char *node, const struct kx_telemetry_snap *s, struct kx_buf *b)
{
    PROM(b, "# HELP klaxon_sensor_kernel_events_total Events the kernel side emitted, by kind.\n"
            "# TYPE klaxon_sensor_kernel_events_total counter\n");
    for (int k = 0; k < KX_K_MAX; k++)
        PROM(b, "klaxon_sensor_kernel_events_total{node=\"%s\",type=\"%s\"} %llu\n", node,
             kx_kind_name((enum kx_kind)k), (unsigned long long)s->kernel_events[k]);
    PROM(b, "# HELP klaxon_sensor_kernel_filtered_total Events the in-kernel prefilter skipped, "
            "by kind.\n# TYPE klaxon_sensor_kernel_filtered_total counter\n");
    for (int k = 0; k < KX_K_MAX; k++)
        if (s->kernel_filtered[k])
            PROM(b, "klaxon_sensor_kernel_filtered_total{node=\"%s\",type=\"%s\"} %llu\n", node,
                 kx_kind_name((enum kx_kind)k), (unsigned long long)s->kernel_filtered[k]);
    PROM(b, "# HELP klaxon_sensor_drops_total Events lost, by reason.\n"
            "# TYPE klaxon_sensor_drops_total counter\n");
    for (int i = 0; i < KX_DROP_REASONS; i++)
        PROM(b, "klaxon_sensor_drops_total{node=\"%s\",reason=\"%s\"} %llu\n", node, drop_name(i),
             (unsigned long long)s->kernel_drops[i]);
    PROM(b, "klaxon_sensor_drops_total{node=\"%s\",reason=\"bad_record\"} %llu\n", node,
         (unsigned long long)s->bad_records);
    PROM(b, "klaxon_sensor_drops_total{node=\"%s\",reason=\"queue_full\"} %llu\n", node,
         (unsigned long long)s->queue_dropped);
    PROM(b, "# HELP klaxon_sensor_events_total Records handled in user space, by kind.\n"
            "# TYPE klaxon_sensor_events_total counter\n");
    for (int k = 0; k < KX_K_MAX; k++)
        if (s->events[k])
            PROM(b, "klaxon_sensor_events_total{node=\"%s\",type=\"%s\"} %llu\n", node,
                 kx_kind_name((enum kx_kind)k), (unsigned long long)s->events[k]);
    PROM(b,
         "# TYPE klaxon_sensor_alerts_total counter\n"
         "klaxon_sensor_alerts_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_alert_errors_total counter\n"
         "klaxon_sensor_alert_errors_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_decode_errors_total counter\n"
         "klaxon_sensor_decode_errors_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_killed_total counter\n"
         "klaxon_sensor_killed_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_published_total counter\n"
         "klaxon_sensor_published_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_publish_failures_total counter\n"
         "klaxon_sensor_publish_failures_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_queue_depth gauge\n"
         "klaxon_sensor_queue_depth{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_processes gauge\n"
         "klaxon_sensor_processes{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_processes_evicted_total counter\n"
         "klaxon_sensor_processes_evicted_total{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_rules gauge\n"
         "klaxon_sensor_rules{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_pods gauge\n"
         "klaxon_sensor_pods{node=\"%s\"} %llu\n"
         "# TYPE klaxon_sensor_nats_connected gauge\n"
         "klaxon_sensor_nats_connected{node=\"%s\"} %d\n"
         "# TYPE klaxon_sensor_resident_memory_bytes gauge\n"
         "klaxon_sensor_resident_memory_bytes{node=\"%s\"} %lld\n"
         "# TYPE klaxon_sensor_uptime_seconds gauge\n"
         "klaxon_sensor_uptime_seconds{node=\"%s\"} %.3f\n",
         node, (unsigned long long)s->alerts, node, (unsigned long long)s->alert_errors, node,
         (unsigned long long)s->decode_errors, node, (unsigned long long)s->killed, node,
         (unsigned long long)s->published, node, (unsigned long long)s->publish_failures, node,
         (unsigned long long)s->queue_depth, node, (unsigned long long)s->proc_entries, node,
         (unsigned long long)s->proc_evicted, node, (unsigned long long)s->rules, node,
         (unsigned long long)s->pods, node, s->nats_connected, node, (long long)s->rss_bytes,
         node, (double)s->uptime_ns / 1e9);
    return 0;
}

int kx_telemetry_heartbeat(const char *node, const struct kx_telemetry_snap *s, struct kx_buf *b)
{
    char ts[64];
    uint64_t drops = s->bad_records + s->queue_dropped;
    bool first = true;

    for (int i = 0; i < KX_DROP_REASONS; i++)
        drops += s->kernel_drops[i];
    kx_time_format(s->time_ns, ts, sizeof(ts));
    PROM(b, "{\"node\":\"%s\",\"time\":\"%s\",\"uptime_s\":%.3f,\"events\":{", node, ts,
         (double)s->uptime_ns / 1e9);
    for (int k = 0; k < KX_K_MAX; k++) {
        if (!s->kernel_events[k])
            continue;
        PROM(b, "%s\"%s\":%llu", first ? "" : ",", kx_kind_name((enum kx_kind)k),
             (unsigned long long)s->kernel_events[k]);
        first = false;
    }
    PROM(b, "},\"drops\":{");
    for (int i = 0; i < KX_DROP_REASONS; i++)
        PROM(b, "\"%s\":%llu,", drop_name(i), (unsigned long long)s->kernel_drops[i]);
    PROM(b,
         "\"bad_record\":%llu,\"queue_full\":%llu},\"drops_total\":%llu,\"alerts\":%llu,"
         "\"killed\":%llu,\"published\":%llu,\"queue_depth\":%llu,\"processes\":%llu,"
         "\"rules\":%llu,\"pods\":%llu,\"rss_bytes\":%lld}",
         (unsigned long long)s->bad_records, (unsigned long long)s->queue_dropped,
         (unsigned long long)drops, (unsigned long long)s->alerts, (unsigned long long)s->killed,
         (unsigned long long)s->published, (unsigned long long)s->queue_depth,
         (unsigned long long)s->proc_entries, (unsigned long long)s->rules,
         (unsigned long long)s->pods, (long long)s->rss_bytes);
    return 0;
}

/* kx_http_handler, on the kx-http thread. */
static void telemetry_on_http(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    struct kx_telemetry *t = ctx;
    struct kx_telemetry_snap s;

    if (strcmp(req->method, "GET") != 0) {
        resp->status = 405;
        kx_buf_printf(&resp->body, "{\"error\":\"method not allowed\"}");
        return;
    }
    if (strcmp(req->path, "/healthz") == 0) {
        kx_buf_printf(&resp->body, "{\"status\":\"ok\"}");
        return;
    }
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        kx_buf_printf(&resp->body, "{\"error\":\"not found: try /metrics\"}");
        return;
    }
    pthread_mutex_lock(&t->lock);
    s = t->snap;
    pthread_mutex_unlock(&t->lock);
    resp->content_type = "text/plain; version=0.0.4";
    if (kx_telemetry_prometheus(t->node, &s, &resp->body) < 0) {
        resp->status = 500;
        kx_buf_reset(&resp->body);
    }
}

int kx_telemetry_listen(struct kx_telemetry *t, const char *addr, int port, char *err,
                        size_t errlen)
{
    t->http = kx_http_start(addr, port, 4096, telemetry_on_http, t, err, errlen);
    return t->http ? 0 : -EADDRINUSE;
}

int kx_telemetry_port(const struct kx_telemetry *t)
{
    return t && t->http ? kx_http_port(t->http) : 0;
}
