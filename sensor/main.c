/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - klaxon-sensor: command line, configuration, and the threads:
 *
 *   main        polls the BPF ring buffer, keeps the process table, decodes
 *               and matches events, queues alerts (never waits for NATS),
 *               refreshes the telemetry snapshot and sends heartbeats;
 *               handles SIGTERM/SIGINT
 *   kx-publish  publishes queued alerts to JetStream, retrying with the same
 *               Nats-Msg-Id (publisher.c)
 *   kx-pods     list+watch of this node's pods, when a Kubernetes API is
 *               configured (pods.c)
 *   kx-http     GET /metrics (telemetry.c, lib/http.c)
 *   nats.c's    node actions: klaxon.node.<node>.action requests (actions.c)
 *
 * NATS may be down at start: kx_bus_connect() then returns at once and nats.c
 * keeps connecting on its own threads; until then the publisher keeps the
 * alerts queued. The Kubernetes API may be down too: alerts go out without
 * pod names rather than wait.
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

#include "actions.h"
#include "bus.h"
#include "config.h"
#include "detect.h"
#include "log.h"
#include "pods.h"
#include "probe.h"
#include "publisher.h"
#include "ruleset.h"
#include "settings.h"
#include "telemetry.h"
#include "util.h"

#define KX_DRAIN_NS (2 * KX_NSEC_PER_SEC) /* flush budget on shutdown */
/* The kernel side wakes us at most once per 10 ms and per 64 KiB of frequent
 * kinds (sensor.bpf.c, kx_wakeup_flags), so records can wait for our own
 * timeout: short while records flow (the tail of a burst is seen within
 * ~10 ms), long when idle. */
#define KX_POLL_MS 100
#define KX_POLL_BUSY_MS 10
#define KX_TICK_NS KX_NSEC_PER_SEC /* housekeeping and telemetry snapshot */

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
            "       klaxon-sensor --check-rules [FILE...]\n"
            "\n"
            "Klaxon's node sensor: eBPF (tracepoints) -> Falco-compatible rules -> alerts on\n"
            "NATS JetStream (subject " KX_SUBJ_ALERTS ".<node>). Runs as root.\n"
            "\n"
            "  -c, --config FILE   configuration (default " KX_SENSOR_DEFAULT_CONFIG "; built-in\n"
            "                      defaults when that file does not exist)\n"
            "      --check-config  validate the configuration and its rule files, print every\n"
            "                      problem as file:line:col, exit 1 on any, 0 if fine\n"
            "      --check-rules   report, per rule file (default: the configured ones), which\n"
            "                      rules load and which are skipped and why (Falco's own\n"
            "                      falco_rules.yaml included); exit 1 only when a file cannot\n"
            "                      be parsed at all\n"
            "      --version       print the version\n"
            "  -h, --help          this help\n"
            "\n"
            "Environment: NODE_NAME (node name), and every key as <SECTION>_<KEY>,\n"
            "e.g. NATS_URL, SENSOR_QUEUE_SIZE, SENSOR_ENFORCE, LOG_LEVEL, K8S_MODE.\n"
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

/*
 * A relative rule file is looked up in the working directory, then in the
 * source tree the binary was built in (<exe>/../../), so build/bin/klaxon-sensor
 * finds config/rules/ from anywhere. Rewrites the list in place.
 */
static void resolve_rule_paths(struct kx_strlist *l)
{
    char exe[4096], cand[8192];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return;
    exe[n] = '\0';
    for (int up = 0; up < 3 && (slash = strrchr(exe, '/')); up++)
        *slash = '\0'; /* <exe> -> bin -> build -> tree */
    for (size_t i = 0; i < l->n; i++) {
        char *dup;

        if (l->v[i][0] == '/' || access(l->v[i], F_OK) == 0)
            continue;
        snprintf(cand, sizeof(cand), "%s/%s", exe, l->v[i]);
        if (access(cand, F_OK) != 0 || !(dup = strdup(cand)))
            continue;
        free(l->v[i]);
        l->v[i] = dup;
    }
}

/* Loads the rules strictly (a rule the sensor cannot run is an error: the
 * user asked for it) and prints every problem. NULL on failure. */
static struct kx_ruleset *load_rules(const struct kx_sensor_cfg *cfg, bool quiet)
{
    struct kx_ruleset *rs = NULL;
    struct kx_diag d = {0};
    struct kx_kill_rule kill[KX_KILL_RULES];
    size_t nkill = 0;

    if (kx_ruleset_load((const char *const *)cfg->sensor.rules_files.v,
                        cfg->sensor.rules_files.n, 0, &rs, &d) < 0 ||
        kx_ruleset_kill_rules(rs, kill, KX_KILL_RULES, &nkill, &d) < 0 || d.n > 0) {
        kx_diag_print(&d, stderr);
        fprintf(stderr, "klaxon-sensor: %zu problem(s) in the rule files\n", d.n ? d.n : 1);
        kx_diag_free(&d);
        kx_ruleset_free(rs);
        return NULL;
    }
    kx_diag_free(&d);
    if (!quiet) {
        size_t nn = 0;
        const struct kx_rule_note *notes = kx_ruleset_notes(rs, &nn);

        for (size_t i = 0; i < nn; i++)
            if (notes[i].kind == KX_NOTE_WARNING)
                kx_warn("rule \"%s\": %s", notes[i].rule, notes[i].msg);
    }
    return rs;
}

/*
 * Starts the probe configured from the rules: only the kinds they can match
 * (plus EXEC/FORK/EXIT for the process table), the open prefilter and the
 * kill rules.
 */
static struct kx_probe *start_probe(const struct kx_ruleset *rs, bool enforce,
                                    struct kx_detect *det, char *err, size_t errlen)
{
    static char readp[KX_PREFIX_MAX][KX_PREFIX_LEN], writep[KX_PREFIX_MAX][KX_PREFIX_LEN];
    const char *rptr[KX_PREFIX_MAX], *wptr[KX_PREFIX_MAX];
    struct kx_kill_rule kill[KX_KILL_RULES];
    bool kinds[KX_K_MAX];
    size_t nkill = 0, nk = 0;
    struct kx_probe_opts o = {.on_event = kx_detect_on_event, .ctx = det, .kinds = kinds};

    kx_ruleset_kinds(rs, kinds);
    kinds[KX_K_EXEC] = kinds[KX_K_FORK] = kinds[KX_K_EXIT] = true;
    if (kx_ruleset_open_filter(rs, &o.open, readp, writep) < 0) {
        o.open.read_all = o.open.write_all = 1; /* cannot say: let everything through */
        o.open.n_read = o.open.n_write = 0;
    }
    for (size_t i = 0; i < o.open.n_read && i < KX_PREFIX_MAX; i++)
        rptr[i] = readp[i];
    for (size_t i = 0; i < o.open.n_write && i < KX_PREFIX_MAX; i++)
        wptr[i] = writep[i];
    o.read_prefixes = rptr;
    o.n_read = o.open.n_read;
    o.write_prefixes = wptr;
    o.n_write = o.open.n_write;
    kx_ruleset_kill_rules(rs, kill, KX_KILL_RULES, &nkill, NULL);
    o.kill = kill;
    o.n_kill = nkill;
    o.enforce = enforce;
    for (int k = 0; k < KX_K_MAX; k++)
        nk += kinds[k];
    kx_info("rules need %zu event kinds; opens: reads %s, writes %s; %zu kill rule(s)%s", nk,
            o.open.read_all ? "all" : o.open.n_read ? "by prefix" : "none",
            o.open.write_all ? "all" : o.open.n_write ? "by prefix" : "none", nkill,
            nkill ? (enforce ? " enforced" : " NOT enforced (sensor.enforce is false)") : "");
    return kx_probe_start(&o, err, errlen);
}

struct sensor_counters {
    uint64_t kernel_drops; /* last reported totals, for the warnings */
    uint64_t bad_records;
};

/* Refreshes the telemetry snapshot; warns about new drops. Poll thread. */
static void snapshot(struct kx_telemetry_snap *s, int64_t start_mono, struct kx_probe *probe,
                     struct kx_detect *det, struct kx_publisher *pub, struct kx_pods *pods,
                     const struct kx_ruleset *rs, struct kx_bus *bus, struct sensor_counters *last)
{
    struct kx_probe_stats ps;
    struct kx_detect_stats ds;
    struct kx_publisher_stats qs;
    struct kx_proctable_stats ts;
    struct kx_pods_stats pods_st = {0};
    uint64_t drops = 0;

    kx_probe_stats(probe, &ps);
    kx_detect_stats(det, &ds);
    kx_publisher_stats(pub, &qs);
    kx_detect_proc_stats(det, &ts);
    if (pods)
        kx_pods_stats(pods, &pods_st);
    memset(s, 0, sizeof(*s));
    s->time_ns = kx_now_ns();
    s->uptime_ns = kx_monotonic_ns() - start_mono;
    memcpy(s->kernel_events, ps.emitted, sizeof(s->kernel_events));
    memcpy(s->kernel_filtered, ps.filtered, sizeof(s->kernel_filtered));
    memcpy(s->kernel_drops, ps.drops, sizeof(s->kernel_drops));
    s->bad_records = ps.bad_records;
    memcpy(s->events, ds.events, sizeof(s->events));
    s->alerts = ds.alerts;
    s->alert_errors = ds.alert_errors;
    s->decode_errors = ds.decode_errors;
    s->killed = ds.killed;
    s->published = qs.published;
    s->publish_failures = qs.failures;
    s->queue_dropped = qs.dropped_full;
    s->queue_depth = qs.depth;
    s->proc_entries = ts.entries;
    s->proc_evicted = ts.evicted;
    s->rules = kx_ruleset_count(rs);
    s->pods = pods_st.pods;
    s->nats_connected = kx_bus_connected(bus);
    s->rss_bytes = kx_telemetry_rss();

    for (int i = 0; i < KX_DROP_REASONS; i++)
        drops += ps.drops[i];
    if (drops > last->kernel_drops)
        kx_warn("%llu events dropped in the kernel (%llu in total): user space is too slow",
                (unsigned long long)(drops - last->kernel_drops), (unsigned long long)drops);
    if (ps.bad_records > last->bad_records)
        kx_warn("%llu malformed ring buffer records skipped (%llu in total)",
                (unsigned long long)(ps.bad_records - last->bad_records),
                (unsigned long long)ps.bad_records);
    last->kernel_drops = drops;
    last->bad_records = ps.bad_records;
}

/* Publishes the heartbeat (core NATS: a lost one is replaced by the next). */
static void heartbeat(struct kx_bus *bus, const char *subject, const char *node,
                      const struct kx_telemetry_snap *s)
{
    struct kx_buf b;

    if (!kx_bus_connected(bus))
        return;
    kx_buf_init(&b, 64 * 1024);
    if (kx_telemetry_heartbeat(node, s, &b) == 0)
        natsConnection_Publish(bus->nc, subject, b.data, (int)b.len);
    kx_buf_free(&b);
}

/* Starts the pod cache when a Kubernetes API is configured. NULL is fine:
 * alerts then carry the pod UID (from the cgroup) but no names. */
static struct kx_pods *start_pods(const struct kx_sensor_cfg *cfg, const char *node)
{
    char err[512];
    struct kx_pods *p;

    if (cfg->k8s.mode == KX_K8S_MODE_OFF)
        return NULL;
    p = kx_pods_start(&cfg->k8s, node, err, sizeof(err));
    if (!p) {
        if (cfg->k8s.mode == KX_K8S_MODE_AUTO && errno == ENOENT)
            kx_info("no Kubernetes API configured (%s): alerts carry pod UIDs, not names", err);
        else
            kx_warn("kubernetes: %s; alerts carry pod UIDs, not names", err);
    }
    return p;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"check-rules", no_argument, NULL, 'R'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *cfg_path = NULL;
    bool check = false, check_rules = false, cfg_given = false;
    struct kx_sensor_cfg cfg = {0};
    struct kx_diag diag = {0};
    struct kx_bus_opts bo = {0};
    struct sensor_nats nats = {0};
    struct kx_ruleset *rules = NULL;
    struct kx_publisher *pub = NULL;
    struct kx_detect *det = NULL;
    struct kx_probe *probe = NULL;
    struct kx_actions *actions = NULL;
    struct kx_pods *pods = NULL;
    struct kx_telemetry *tel = NULL;
    struct kx_telemetry_snap snap = {0};
    struct sensor_counters last = {0};
    char node[256], node_tok[128], subject[192], hb_subject[192], err[512];
    int64_t start_mono = kx_monotonic_ns(), next_tick, next_hb;
    int rc = 1, opt;
    bool busy = false; /* the last poll handled records */

    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cfg_path = optarg;
            cfg_given = true;
            break;
        case 'C':
            check = true;
            break;
        case 'R':
            check_rules = true;
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
    if (check_rules && optind < argc) /* explicit files: no configuration needed */
        return kx_ruleset_check_files((const char *const *)argv + optind, (size_t)(argc - optind),
                                      stdout);
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
    resolve_rule_paths(&cfg.sensor.rules_files);
    if (check_rules) {
        rc = kx_ruleset_check_files((const char *const *)cfg.sensor.rules_files.v,
                                    cfg.sensor.rules_files.n, stdout);
        goto cleanup;
    }
    rules = load_rules(&cfg, check);
    if (!rules)
        goto cleanup;
    if (check) {
        printf("%s: configuration OK; %zu rules loaded from %zu file(s)\n",
               cfg_path ? cfg_path : "(built-in defaults)", kx_ruleset_count(rules),
               cfg.sensor.rules_files.n);
        rc = 0;
        goto cleanup;
    }
    kx_log_init("klaxon-sensor", cfg.level, cfg.log_json);
    if (!cfg_path)
        kx_info("no %s: using built-in defaults and the environment", KX_SENSOR_DEFAULT_CONFIG);
    kx_info("%zu rules loaded from %zu file(s)", kx_ruleset_count(rules),
            cfg.sensor.rules_files.n);

    if (kx_sensor_node_name(&cfg, node, sizeof(node)) < 0) {
        kx_error("cannot determine the node name: set NODE_NAME or sensor.node_name");
        goto cleanup;
    }
    kx_slug(node, node_tok, sizeof(node_tok));
    snprintf(subject, sizeof(subject), "%s.%s", KX_SUBJ_ALERTS, node_tok);
    snprintf(hb_subject, sizeof(hb_subject), "%s.%s", KX_SUBJ_HEARTBEAT, node_tok);

    if (install_signals() < 0) {
        kx_error("cannot install signal handlers: %s", strerror(errno));
        goto cleanup;
    }
    tel = kx_telemetry_new(node);
    if (!tel) {
        kx_error("out of memory");
        goto cleanup;
    }
    if (cfg.sensor.metrics_port > 0) {
        if (kx_telemetry_listen(tel, cfg.sensor.metrics_addr, (int)cfg.sensor.metrics_port, err,
                                sizeof(err)) < 0) {
            kx_error("sensor.metrics_port: %s", err);
            goto cleanup;
        }
        kx_info("metrics on http://%s:%d/metrics", cfg.sensor.metrics_addr,
                kx_telemetry_port(tel));
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
    /* Node actions run on their own nats.c subscription thread. */
    actions = kx_actions_start(nats.bus->nc, node, err, sizeof(err));
    if (!actions) {
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
    pods = start_pods(&cfg, node);
    det = kx_detect_new(node, pub, rules);
    if (!det) {
        kx_error("cannot create the detector: %s", strerror(errno));
        goto cleanup;
    }
    if (pods)
        kx_detect_set_pods(det, pods);
    kx_detect_scan(det);
    probe = start_probe(rules, cfg.sensor.enforce, det, err, sizeof(err));
    if (!probe) {
        kx_error("%s", err);
        goto cleanup;
    }
    kx_info("attached to tracepoints; publishing alerts to %s on %s (node %s, %s, queue %lld); "
            "node actions on %s",
            subject, cfg.nats.url, node,
            kx_bus_connected(nats.bus) ? "connected" : "not connected yet: queueing",
            (long long)cfg.sensor.queue_size, kx_actions_subject(actions));

    next_tick = kx_monotonic_ns() + KX_TICK_NS;
    next_hb = cfg.sensor.heartbeat_interval ? kx_monotonic_ns() : INT64_MAX;
    while (!kx_stop_signal) {
        int n = kx_probe_poll(probe, busy ? KX_POLL_BUSY_MS : KX_POLL_MS);
        int64_t now;

        if (n < 0 && n != -EINTR) {
            kx_error("ring buffer poll failed: %s", strerror(-n));
            goto cleanup;
        }
        busy = n > 0;
        now = kx_monotonic_ns();
        if (now >= next_tick) {
            kx_detect_tick(det);
            snapshot(&snap, start_mono, probe, det, pub, pods, rules, nats.bus, &last);
            kx_telemetry_update(tel, &snap);
            next_tick = now + KX_TICK_NS;
            if (now >= next_hb) {
                heartbeat(nats.bus, hb_subject, node, &snap);
                next_hb = now + cfg.sensor.heartbeat_interval;
            }
        }
    }
    kx_info("%s: stopping", strsignal(kx_stop_signal));
    rc = 0;

cleanup:
    if (probe) {
        struct kx_detect_stats ds;
        uint64_t events = 0;

        snapshot(&snap, start_mono, probe, det, pub, pods, rules, nats.bus, &last);
        kx_detect_stats(det, &ds);
        kx_probe_free(probe); /* detach before draining: nothing new arrives */
        for (int k = 0; k < KX_K_MAX; k++)
            events += ds.events[k];
        kx_info("detached: %llu events seen (%llu in containers), %llu alerts, %llu dropped in "
                "the kernel",
                (unsigned long long)events, (unsigned long long)ds.in_container,
                (unsigned long long)ds.alerts, (unsigned long long)last.kernel_drops);
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
    kx_pods_free(pods);
    kx_publisher_free(pub);
    kx_actions_free(actions); /* before the bus: it subscribes on it */
    kx_bus_close(nats.bus);   /* after the publisher: it borrows the bus */
    kx_telemetry_free(tel);
    kx_ruleset_free(rules);
    kx_sensor_cfg_release(&cfg);
    kx_diag_free(&diag);
    return rc;
}
