/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - klaxon-hub: command line, start-up order, signals, shutdown.
 *
 * Start-up binds the HTTP port before consuming anything, so a clear
 * "port in use" error never leaves half-processed alerts behind. Shutdown
 * stops intake first, then lets each worker finish its in-flight batch; what
 * is not acked is redelivered to the next hub.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedupe.h"
#include "fanout.h"
#include "http.h"
#include "httpc.h"
#include "hub.h"
#include "log.h"
#include "outputs.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: klaxon-hub [-c FILE] [--check-config] [--version] [--help]\n"
            "\n"
            "Klaxon's hub: ingests alerts from NATS JetStream (sensors) and HTTP (Falco\n"
            "http_output), dedupes them cluster-wide and fans them out to outputs.\n"
            "\n"
            "  -c, --config FILE   configuration (default: config/hub.yaml)\n"
            "      --check-config  validate the configuration, print every error, exit\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this help\n"
            "\n"
            "Output types:\n");
    for (int i = 0; kx_output_registry[i]; i++) {
        fprintf(out, "  %-10s %s\n", kx_output_registry[i]->name,
                kx_output_registry[i]->desc ? kx_output_registry[i]->desc : "");
        if (kx_output_registry[i]->opts)
            kx_config_print_opts(kx_output_registry[i]->opts, "      ");
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *path = "config/hub.yaml";
    bool check = false;
    struct kx_diag d = {0};
    static struct kx_hub hub;
    struct kx_hub *h = &hub;
    char err[512];
    int opt, rc = 1;

    while ((opt = getopt_long(argc, argv, "c:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'V':
            printf("klaxon-hub %s\n", KX_VERSION);
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
        fprintf(stderr, "klaxon-hub: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }

    if (kx_hub_config_load(&h->cfg, path, &d)) {
        kx_diag_print(&d, stderr);
        fprintf(stderr, "klaxon-hub: %zu error%s in %s\n", d.n, d.n == 1 ? "" : "s", path);
        kx_diag_free(&d);
        kx_hub_config_free(&h->cfg);
        return 1;
    }
    kx_diag_free(&d);
    if (check) {
        printf("%s: configuration OK\n", path);
        kx_hub_config_free(&h->cfg);
        return 0;
    }

    enum kx_log_level lvl = KX_LOG_INFO;
    kx_log_level_parse(h->cfg.log_level, &lvl);
    kx_log_init("klaxon-hub", lvl, strcmp(h->cfg.log_format, "json") == 0);
    if (!h->cfg.hub_name[0]) {
        char host[64] = "hub";
        gethostname(host, sizeof(host) - 1);
        free(h->cfg.hub_name);
        h->cfg.hub_name = strdup(host);
    }

    /* Every thread inherits this mask; main alone takes the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    kx_httpc_global_init();

    struct kx_bus_opts bo = {
        .url = h->cfg.nats_url,
        .name = "klaxon-hub",
        .token = h->cfg.nats_token,
        .creds_file = h->cfg.nats_creds,
    };
    if (!(h->bus = kx_bus_connect(&bo, err, sizeof(err)))) {
        kx_error("%s", err);
        goto out;
    }
    if (kx_bus_ensure_all_streams(h->bus, (int)h->cfg.replicas, h->cfg.alerts_max_age,
                                  h->cfg.events_max_age, err, sizeof(err)) ||
        kx_api_start(h, err, sizeof(err)) || kx_dedupe_start(h, err, sizeof(err)) ||
        kx_fanout_start(h, err, sizeof(err)) || kx_ingest_start(h, err, sizeof(err))) {
        kx_error("%s", err);
        atomic_store(&h->stopping, true);
        goto out;
    }
    kx_info("klaxon-hub %s (%s) running: NATS %s, HTTP %s:%d, dedupe %s (window %llds), "
            "%d output%s",
            KX_VERSION, h->cfg.hub_name, h->cfg.nats_url, h->cfg.http_listen,
            kx_http_port(h->http), h->cfg.dedupe_enabled ? "on" : "off",
            (long long)(h->cfg.dedupe_window / KX_NSEC_PER_SEC),
            atomic_load(&h->metrics.noutputs), atomic_load(&h->metrics.noutputs) == 1 ? "" : "s");

    int sig = 0;
    sigwait(&sigs, &sig);
    kx_info("%s received: finishing in-flight work", strsignal(sig));
    atomic_store(&h->stopping, true);
    rc = 0;

out:
    kx_api_stop(h);
    kx_ingest_stop(h);
    kx_dedupe_stop(h);
    kx_fanout_stop(h);
    kx_bus_close(h->bus);
    kx_httpc_global_cleanup();
    kx_hub_config_free(&h->cfg);
    if (rc == 0)
        kx_info("stopped");
    return rc;
}
