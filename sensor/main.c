/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - klaxon-sensor: command line, configuration, and the two threads:
 *
 *   main        polls the BPF ring buffer, attributes and matches events,
 *               queues alerts (never waits for NATS); handles SIGTERM/SIGINT
 *   kx-publish  publishes queued alerts to JetStream, retrying with the same
 *               Nats-Msg-Id (publisher.c)
 *
 * NATS may be down at start: kx_bus_connect() then returns at once and nats.c
 * keeps connecting on its own threads (logging when it gets through); until
 * then the publisher sees "not connected" and keeps the alerts queued.
 *
 * Shutdown: detach the BPF programs first (no new events), give the
 * publisher at most KX_DRAIN_NS to flush, report what was lost, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "detect.h"
#include "loader.h"
#include "log.h"
#include "publisher.h"
#include "settings.h"
#include "util.h"

#define KX_DRAIN_NS (2 * KX_NSEC_PER_SEC) /* flush budget on shutdown */
#define KX_POLL_MS 250
#define KX_STATS_EVERY_NS (10 * KX_NSEC_PER_SEC) /* drop checks */

static volatile sig_atomic_t kx_stop_signal; /* set by the handler, read by main */

static void sensor_on_signal(int sig)
{
    kx_stop_signal = sig;
}

/*
 * What kx-publish needs besides the queue. NATS may still be down when the
 * publisher starts, so KLAXON_ALERTS is ensured (sensor.ensure_stream) the
 * first time the publisher finds the bus connected, before its first publish.
 */
struct sensor_nats {
    struct kx_bus *bus; /* owned by main, closed after the publisher stopped */
    bool ensure_stream; /* kx-publish only: KLAXON_ALERTS still to be ensured */
};

/* kx_publisher_ready_fn, on kx-publish. */
static bool sensor_on_ready(void *ctx)
{
    struct sensor_nats *n = ctx;
    struct kx_stream_spec ss = {.name = KX_STREAM_ALERTS, .subjects = KX_SUBJ_ALERTS ".>"};
    char err[512];

    if (!kx_bus_connected(n->bus))
        return false;
    if (n->ensure_stream) {
        n->ensure_stream = false; /* once, as a hub would at its start */
        if (kx_bus_ensure_stream(n->bus, &ss, err, sizeof(err)) < 0)
            kx_warn("sensor.ensure_stream: %s", err);
    }
    return true;
}

/* kx_publisher_send_fn, on kx-publish. */
static int sensor_on_send(void *ctx, const char *subject, const char *data, size_t len,
                          const char *msg_id, int64_t timeout, char *err, size_t errlen)
{
    struct sensor_nats *n = ctx;

    return kx_bus_publish(n->bus, subject, data, len, msg_id, NULL, NULL, timeout, err, errlen);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: klaxon-sensor [-c FILE] [--check-config] [--version] [--help]\n"
            "\n"
            "Klaxon's node sensor: eBPF (tracepoints) -> rules -> alerts on NATS JetStream\n"
            "(subject " KX_SUBJ_ALERTS ".<node>). Runs as root.\n"
            "\n"
            "  -c, --config FILE   configuration (default " KX_SENSOR_DEFAULT_CONFIG "; built-in\n"
            "                      defaults when that file does not exist)\n"
            "      --check-config  validate the configuration, print every problem as\n"
            "                      file:line:col, exit 1 on any, 0 if fine\n"
            "      --version       print the version\n"
            "  -h, --help          this help\n"
            "\n"
            "Environment: NODE_NAME (node name), and every key as <SECTION>_<KEY>,\n"
            "e.g. NATS_URL, SENSOR_QUEUE_SIZE, LOG_LEVEL.\n"
            "\n"
            "Configuration keys:\n");
    if (out == stdout)
        kx_sensor_cfg_print_help();
}

static int install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sensor_on_signal; /* no SA_RESTART: the poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Warns when the kernel or the queue dropped events since the last call. */
static void report_drops(struct kx_loader *l, uint64_t *last_kernel, uint64_t *last_bad)
{
    struct kx_loader_stats ls;

    kx_loader_stats(l, &ls);
    if (ls.kernel_drops > *last_kernel)
        kx_warn("BPF ring buffer full: %llu exec events dropped in the kernel (%llu in total)",
                (unsigned long long)(ls.kernel_drops - *last_kernel),
                (unsigned long long)ls.kernel_drops);
    if (ls.bad_records > *last_bad)
        kx_warn("%llu malformed ring buffer records skipped (%llu in total)",
                (unsigned long long)(ls.bad_records - *last_bad),
                (unsigned long long)ls.bad_records);
    *last_kernel = ls.kernel_drops;
    *last_bad = ls.bad_records;
    /* queue drops are warned by the publisher itself */
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cfg_path = NULL;
    bool check = false, cfg_given = false;
    struct kx_sensor_cfg cfg = {0};
    struct kx_diag diag = {0};
    struct kx_bus_opts bo = {0};
    struct sensor_nats nats = {0};
    struct kx_publisher *pub = NULL;
    struct kx_detect *det = NULL;
    struct kx_loader *loader = NULL;
    char node[256], node_tok[128], subject[192], err[512];
    uint64_t last_kernel = 0, last_bad = 0;
    int64_t next_stats;
    int rc = 1, opt;

    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cfg_path = optarg;
            cfg_given = true;
            break;
        case 'C':
            check = true;
            break;
        case 'V':
            printf("klaxon-sensor %s\n", KX_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "klaxon-sensor: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if (!cfg_given)
        cfg_path = access(KX_SENSOR_DEFAULT_CONFIG, F_OK) == 0 ? KX_SENSOR_DEFAULT_CONFIG : NULL;

    /* Configuration first: it decides how we log. */
    if (kx_sensor_cfg_load(cfg_path, &cfg, &diag) < 0 || diag.n > 0) {
        kx_diag_print(&diag, stderr);
        fprintf(stderr, "klaxon-sensor: %zu problem(s) in the configuration%s%s\n", diag.n,
                cfg_path ? " " : "", cfg_path ? cfg_path : "");
        goto cleanup;
    }
    if (check) {
        printf("%s: configuration OK\n", cfg_path ? cfg_path : "(built-in defaults)");
        rc = 0;
        goto cleanup;
    }
    kx_log_init("klaxon-sensor", cfg.level, cfg.log_json);
    if (!cfg_path)
        kx_info("no %s: using built-in defaults and the environment", KX_SENSOR_DEFAULT_CONFIG);

    if (kx_sensor_node_name(&cfg, node, sizeof(node)) < 0) {
        kx_error("cannot determine the node name: set NODE_NAME or sensor.node_name");
        goto cleanup;
    }
    kx_slug(node, node_tok, sizeof(node_tok));
    snprintf(subject, sizeof(subject), "%s.%s", KX_SUBJ_ALERTS, node_tok);

    if (install_signals() < 0) {
        kx_error("cannot install signal handlers: %s", strerror(errno));
        goto cleanup;
    }

    /* NATS down is not an error: after one attempt (refused at once, or the
     * connect timeout) nats.c keeps trying in the background while we detect
     * and queue. Fails only on bad options. */
    bo.url = cfg.nats.url;
    bo.name = cfg.nats.name;
    bo.retry_on_failed_connect = true;
    nats.ensure_stream = cfg.sensor.ensure_stream;
    nats.bus = kx_bus_connect(&bo, err, sizeof(err));
    if (!nats.bus) {
        kx_error("%s", err);
        goto cleanup;
    }

    {
        struct kx_publisher_opts po = {
            .subject = subject,
            .queue_size = (size_t)cfg.sensor.queue_size,
            .publish_timeout = cfg.sensor.publish_timeout,
            .send = sensor_on_send,
            .ready = sensor_on_ready,
            .ctx = &nats,
        };

        pub = kx_publisher_new(&po);
        if (!pub) {
            kx_error("cannot start the publisher thread: %s", strerror(errno));
            goto cleanup;
        }
    }
    det = kx_detect_new(node, pub);
    if (!det) {
        kx_error("cannot create the detector: %s", strerror(errno));
        goto cleanup;
    }
    loader = kx_loader_start(kx_detect_on_exec, det, err, sizeof(err));
    if (!loader) {
        kx_error("%s", err);
        goto cleanup;
    }
    kx_info("attached to tracepoint sched:sched_process_exec; publishing alerts to %s on %s "
            "(node %s, %s, queue %lld)",
            subject, cfg.nats.url, node,
            kx_bus_connected(nats.bus) ? "connected" : "not connected yet: queueing",
            (long long)cfg.sensor.queue_size);

    next_stats = kx_monotonic_ns() + KX_STATS_EVERY_NS;
    while (!kx_stop_signal) {
        int n = kx_loader_poll(loader, KX_POLL_MS);

        if (n < 0 && n != -EINTR) {
            kx_error("ring buffer poll failed: %s", strerror(-n));
            goto cleanup;
        }
        if (kx_monotonic_ns() >= next_stats) {
            report_drops(loader, &last_kernel, &last_bad);
            next_stats = kx_monotonic_ns() + KX_STATS_EVERY_NS;
        }
    }
    kx_info("%s: stopping", strsignal(kx_stop_signal));
    rc = 0;

cleanup:
    if (loader) {
        struct kx_detect_stats ds;
        struct kx_loader_stats ls;

        report_drops(loader, &last_kernel, &last_bad);
        kx_loader_stats(loader, &ls);
        kx_detect_stats(det, &ds);
        kx_loader_free(loader); /* detach before draining: nothing new arrives */
        kx_info("detached: %llu execs seen (%llu in containers), %llu alerts, %llu dropped in "
                "the kernel",
                (unsigned long long)ds.execs, (unsigned long long)ds.in_container,
                (unsigned long long)ds.alerts, (unsigned long long)ls.kernel_drops);
    }
    if (pub) {
        struct kx_publisher_stats ps;
        size_t left = kx_publisher_stop(pub, KX_DRAIN_NS);

        kx_publisher_stats(pub, &ps);
        if (left)
            kx_warn("%zu alert(s) could not be published before shutdown and are lost", left);
        kx_info("publisher: %llu published (%llu duplicates), %llu failed attempts, %llu "
                "dropped (queue full), %zu lost at shutdown",
                (unsigned long long)ps.published, (unsigned long long)ps.duplicates,
                (unsigned long long)ps.failures, (unsigned long long)ps.dropped_full, left);
    }
    kx_detect_free(det);
    kx_publisher_free(pub);
    kx_bus_close(nats.bus); /* after the publisher: it borrows the bus */
    kx_sensor_cfg_release(&cfg);
    kx_diag_free(&diag);
    return rc;
}
