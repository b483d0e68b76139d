/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - klaxon-sensor: command line, configuration, and the two threads:
 *
 *   main        polls the BPF ring buffer, attributes and matches events,
 *               queues alerts (never waits for NATS); handles SIGTERM/SIGINT
 *   kx-connect  connects to NATS (however long that takes), then ensures the
 *               stream if asked to, and exits
 *   kx-publish  publishes queued alerts to JetStream, retrying with the same
 *               Nats-Msg-Id (publisher.c)
 *
 * Shutdown: detach the BPF programs first (no new events), give the
 * publisher at most KX_DRAIN_NS to flush, report what was lost, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
 * The NATS connection, made on its own thread: with retry-on-failed-connect
 * and no connected callback, natsConnection_Connect() blocks until a server
 * answers, and the sensor must detect (and queue) from the first second
 * whether NATS is up or not. The publisher reaches the bus through
 * link_send/link_ready, which see "not connected" until it exists.
 */
struct sensor_link {
    struct kx_bus_opts opts; /* immutable; strings borrowed from the config */
    bool ensure_stream;      /* immutable */
    pthread_t thread;        /* kx-connect */
    bool started;            /* main thread only */
    pthread_mutex_t lock;
    struct kx_bus *bus; /* lock; owned, NULL until kx_bus_connect returned */
    bool done;          /* lock; the thread has finished */
    bool failed;        /* lock; kx_bus_connect failed for good (bad options) */
    bool stopping;      /* lock; main is shutting down */
};

static bool link_stopping(struct sensor_link *l)
{
    bool s;

    pthread_mutex_lock(&l->lock);
    s = l->stopping;
    pthread_mutex_unlock(&l->lock);
    return s;
}

/* Runs on kx-connect. */
static void *link_on_thread(void *arg)
{
    struct sensor_link *l = arg;
    struct timespec tick = {0, 100 * 1000 * 1000};
    struct kx_bus *bus;
    char err[512];

    bus = kx_bus_connect(&l->opts, err, sizeof(err));
    if (!bus) {
        kx_error("%s", err);
        pthread_mutex_lock(&l->lock);
        l->failed = l->done = true;
        pthread_mutex_unlock(&l->lock);
        return NULL;
    }
    pthread_mutex_lock(&l->lock);
    l->bus = bus;
    pthread_mutex_unlock(&l->lock);

    while (!kx_bus_connected(bus) && !link_stopping(l))
        nanosleep(&tick, NULL);
    if (kx_bus_connected(bus)) {
        kx_info("connected to NATS at %s", l->opts.url);
        if (l->ensure_stream) {
            struct kx_stream_spec ss = {
                .name = KX_STREAM_ALERTS,
                .subjects = KX_SUBJ_ALERTS ".>",
                .replicas = 1,
            };

            if (kx_bus_ensure_stream(bus, &ss, err, sizeof(err)) < 0)
                kx_warn("sensor.ensure_stream: cannot ensure stream %s: %s", KX_STREAM_ALERTS, err);
        }
    }
    pthread_mutex_lock(&l->lock);
    l->done = true;
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static struct kx_bus *link_bus(struct sensor_link *l)
{
    struct kx_bus *b;

    pthread_mutex_lock(&l->lock);
    b = l->bus;
    pthread_mutex_unlock(&l->lock);
    return b;
}

/* kx_publisher_ready_fn, on kx-publish. */
static bool link_ready(void *ctx)
{
    struct kx_bus *b = link_bus(ctx);

    return b && kx_bus_connected(b);
}

/* kx_publisher_send_fn, on kx-publish. */
static int link_send(void *ctx, const char *subject, const char *data, size_t len,
                     const char *msg_id, int64_t timeout, char *err, size_t errlen)
{
    struct kx_bus *b = link_bus(ctx);

    if (!b) {
        snprintf(err, errlen, "not connected to NATS yet");
        return -ENOTCONN;
    }
    return kx_bus_publish(b, subject, data, len, msg_id, NULL, NULL, timeout, err, errlen);
}

static int link_start(struct sensor_link *l)
{
    sigset_t all, old;
    int rc;

    pthread_mutex_init(&l->lock, NULL);
    sigfillset(&all); /* signals belong to the main thread */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&l->thread, NULL, link_on_thread, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pthread_setname_np(l->thread, "kx-connect");
    l->started = true;
    return 0;
}

/* After the publisher has stopped: joins kx-connect and closes the bus and
 * returns true, or, when the thread is still blocked connecting to a NATS
 * that never came, returns false: the caller then leaves with _exit(), as
 * the NATS library's exit handlers would wait for that thread. */
static bool link_stop(struct sensor_link *l)
{
    bool done = false;

    if (!l->started)
        return true;
    pthread_mutex_lock(&l->lock);
    l->stopping = true;
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < 3; i++) { /* the wait loop ticks every 100 ms */
        pthread_mutex_lock(&l->lock);
        done = l->done;
        pthread_mutex_unlock(&l->lock);
        if (done)
            break;
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    if (!done) {
        kx_warn("NATS at %s was never reached; abandoning the connection attempt", l->opts.url);
        return false;
    }
    pthread_join(l->thread, NULL);
    kx_bus_close(l->bus);
    l->bus = NULL;
    pthread_mutex_destroy(&l->lock);
    return true;
}

static bool link_failed(struct sensor_link *l)
{
    bool f;

    pthread_mutex_lock(&l->lock);
    f = l->failed;
    pthread_mutex_unlock(&l->lock);
    return f;
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
    struct sensor_link link = {0};
    struct kx_publisher *pub = NULL;
    struct kx_detect *det = NULL;
    struct kx_loader *loader = NULL;
    char node[256], node_tok[128], subject[192], err[512];
    uint64_t last_kernel = 0, last_bad = 0;
    int64_t next_stats;
    int rc = 1, opt, e;

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

    /* NATS may be down: kx-connect keeps trying while we detect and queue. */
    link.opts.url = cfg.nats.url;
    link.opts.name = cfg.nats.name;
    link.opts.retry_on_failed_connect = true;
    link.ensure_stream = cfg.sensor.ensure_stream;
    if ((e = link_start(&link)) < 0) {
        kx_error("cannot start the NATS connection thread: %s", strerror(-e));
        goto cleanup;
    }

    {
        struct kx_publisher_opts po = {
            .subject = subject,
            .queue_size = (size_t)cfg.sensor.queue_size,
            .publish_timeout = cfg.sensor.publish_timeout,
            .send = link_send,
            .ready = link_ready,
            .ctx = &link,
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
            link_ready(&link) ? "connected" : "not connected yet: queueing",
            (long long)cfg.sensor.queue_size);

    next_stats = kx_monotonic_ns() + KX_STATS_EVERY_NS;
    while (!kx_stop_signal) {
        int n = kx_loader_poll(loader, KX_POLL_MS);

        if (n < 0 && n != -EINTR) {
            kx_error("ring buffer poll failed: %s", strerror(-n));
            goto cleanup;
        }
        if (link_failed(&link))
            goto cleanup; /* bad NATS options: already logged */
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
    if (!link_stop(&link)) {
        fflush(NULL);
        _exit(rc);
    }
    kx_sensor_cfg_release(&cfg);
    kx_diag_free(&diag);
    return rc;
}
