/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - the hub's configuration: option tables for each section of
 * hub.yaml and validation of the outputs list (each output's own settings
 * are checked here too, so --check-config catches everything at once).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "fanout.h"
#include "hub.h"
#include "log.h"
#include "outputs.h"
#include "respond.h"

#define C(field) offsetof(struct kx_hub_config, field)

static const struct kx_opt log_opts[] = {
    {"level", KX_OPT_STR, "info", C(log_level), 0, "debug, info, warn or error"},
    {"format", KX_OPT_STR, "text", C(log_format), 0, "text or json (JSON lines)"},
    {0},
};

static const struct kx_opt nats_opts[] = {
    {"url", KX_OPT_STR, "nats://127.0.0.1:4222", C(nats_url), 0,
     "NATS server URL(s), comma-separated"},
    {"token", KX_OPT_STR, NULL, C(nats_token), KX_OPT_SECRET, "auth token"},
    {"creds", KX_OPT_STR, NULL, C(nats_creds), 0, "path of a .creds file"},
    {"replicas", KX_OPT_INT, "1", C(replicas), 0, "stream replicas (3 in a cluster)"},
    {"alerts_max_age", KX_OPT_DURATION, "168h", C(alerts_max_age), 0,
     "how long raw alerts are kept"},
    {"events_max_age", KX_OPT_DURATION, "168h", C(events_max_age), 0,
     "how long accepted alerts and audit records are kept"},
    {0},
};

static const struct kx_opt http_opts[] = {
    {"listen", KX_OPT_STR, "0.0.0.0", C(http_listen), 0, "address to bind"},
    {"port", KX_OPT_INT, "2801", C(http_port), 0, "HTTP port (Falcosidekick's)"},
    {"max_body", KX_OPT_SIZE, "1MiB", C(http_max_body), 0, "largest accepted request body"},
    {"token", KX_OPT_STR, NULL, C(http_token), KX_OPT_SECRET,
     "bearer token for the API, UI and WebSocket (unset, with no basic auth: open)"},
    {"basic_user", KX_OPT_STR, NULL, C(http_basic_user), 0, "HTTP basic auth user"},
    {"basic_password", KX_OPT_STR, NULL, C(http_basic_password), KX_OPT_SECRET,
     "HTTP basic auth password"},
    {"ingest_token", KX_OPT_STR, NULL, C(http_ingest_token), KX_OPT_SECRET,
     "bearer token for alert ingest (unset: ingest is open, as in Falcosidekick)"},
    {"cors_origins", KX_OPT_STRLIST, NULL, C(http_cors_origins), 0,
     "origins allowed cross-origin, or *; empty = CORS off"},
    {"session_ttl", KX_OPT_DURATION, "12h", C(http_session_ttl), 0,
     "lifetime of a browser session cookie"},
    {"tls_cert", KX_OPT_STR, NULL, C(http_tls_cert), 0, "PEM certificate (chain): serve HTTPS"},
    {"tls_key", KX_OPT_STR, NULL, C(http_tls_key), 0, "PEM private key of tls_cert"},
    {"ui", KX_OPT_BOOL, "true", C(http_ui), 0, "serve the web UI under /ui/"},
    {"ui_dir", KX_OPT_STR, NULL, C(http_ui_dir), 0,
     "serve the UI from this directory instead of the copy built into the binary"},
    {"ws_buffer", KX_OPT_INT, "8192", C(http_ws_buffer), 0,
     "live events kept for WebSocket clients; one further behind is skipped ahead"},
    {"ws_slow", KX_OPT_STR, "skip", C(http_ws_slow), 0,
     "a WebSocket client that falls behind: skip (ahead, telling it) or drop"},
    {"workers", KX_OPT_INT, "2", C(http_workers), 0, "threads answering API queries"},
    {0},
};

static const struct kx_opt hub_opts[] = {
    {"name", KX_OPT_STR, "", C(hub_name), 0, "replica name (default: hostname)"},
    {"fetch_batch", KX_OPT_INT, "128", C(fetch_batch), 0, "raw alerts fetched per pull"},
    {"publish_timeout", KX_OPT_DURATION, "5s", C(publish_timeout), 0, "wait for a JetStream ack"},
    {"ack_wait", KX_OPT_DURATION, "30s", C(ack_wait), 0,
     "raw alerts held by a replica that died are redelivered after this"},
    {0},
};

static const struct kx_opt dedupe_opts[] = {
    {"enabled", KX_OPT_BOOL, "true", C(dedupe_enabled), 0, "suppress repeats"},
    {"keys", KX_OPT_STRLIST, "rule,hostname,container.id,proc.exepath", C(dedupe_keys), 0,
     "fields that make two alerts the same"},
    {"window", KX_OPT_DURATION, "60s", C(dedupe_window), 0, "repeat window"},
    {"max_windows", KX_OPT_INT, "100000", C(dedupe_max_windows), 0,
     "open windows timed locally (beyond: closed by the sweep)"},
    {0},
};

static const struct kx_opt respond_opts[] = {
    {"max_actions", KX_OPT_INT, "0", C(respond_max_actions), 0,
     "actions per window over all responders, across every replica; 0 = no cap"},
    {"window", KX_OPT_DURATION, "1m", C(respond_window), 0, "the window of max_actions"},
    {0},
};

static const struct {
    const char *key;
    const struct kx_opt *opts;
    const char *env;
} sections[] = {
    {"log", log_opts, "LOG"},          {"nats", nats_opts, "NATS"},
    {"http", http_opts, "HTTP"},       {"hub", hub_opts, "HUB"},
    {"dedupe", dedupe_opts, "DEDUPE"}, {"respond", respond_opts, "RESPOND"},
};

static bool is_section(const char *key)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(sections); i++)
        if (strcmp(key, sections[i].key) == 0)
            return true;
    return strcmp(key, "outputs") == 0 || strcmp(key, "responders") == 0;
}

static void check_outputs(const struct kx_hub_config *c, struct kx_diag *d)
{
    const struct kx_config_node *seq = c->outputs;
    size_t n = 0;

    if (!seq)
        return;
    if (seq->kind != KX_CFG_SEQ) {
        kx_diag_add(d, seq, "\"outputs\" must be a list of {name, type, ...} maps");
        return;
    }
    for (const struct kx_config_node *it = seq->child; it; it = it->next, n++) {
        struct kx_output_instance inst;
        if (kx_output_instance_init(&inst, it, d) == 0) {
            for (const struct kx_config_node *prev = seq->child; prev != it; prev = prev->next) {
                const struct kx_config_node *pn = kx_config_get(prev, "name");
                if (pn && pn->value && strcmp(pn->value, inst.common.name) == 0)
                    kx_diag_add(d, kx_config_get(it, "name"),
                                "output name \"%s\" is used twice (first at line %d)",
                                inst.common.name, pn->line);
            }
        }
        kx_output_instance_release(&inst);
    }
    if (n > KX_METRICS_MAX_OUTPUTS)
        kx_diag_add(d, seq, "at most %d outputs are supported, got %zu", KX_METRICS_MAX_OUTPUTS, n);
}

int kx_hub_config_load(struct kx_hub_config *c, const char *path, struct kx_diag *d)
{
    const struct kx_config_node *root = NULL;
    size_t before = d->n;

    memset(c, 0, sizeof(*c));
    if (path) {
        c->doc = kx_config_load(path, d);
        if (!c->doc)
            return -EINVAL;
        root = c->doc->root;
        if (root && root->kind != KX_CFG_MAP) {
            kx_diag_add(d, root, "the top level must be a map (log, nats, http, ...)");
            return -EINVAL;
        }
    }
    if (root) {
        for (const struct kx_config_node *k = root->child; k; k = k->next)
            if (!is_section(k->key))
                kx_diag_add(d, k,
                            "unknown section \"%s\" (want log, nats, http, hub, dedupe, "
                            "outputs, respond, responders)",
                            k->key);
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(sections); i++) {
        const struct kx_config_node *sec = root ? kx_config_get(root, sections[i].key) : NULL;
        if (sec && sec->kind != KX_CFG_MAP) {
            kx_diag_add(d, sec, "\"%s\" must be a map", sections[i].key);
            sec = NULL;
        }
        kx_config_apply(sections[i].opts, sec, c, sections[i].env, d);
    }
    c->outputs = root ? kx_config_get(root, "outputs") : NULL;
    c->responders = root ? kx_config_get(root, "responders") : NULL;

    enum kx_log_level lvl;
    if (c->log_level && kx_log_level_parse(c->log_level, &lvl))
        kx_diag_add(d, root ? kx_config_get(kx_config_get(root, "log"), "level") : NULL,
                    "log.level: want debug, info, warn or error, got \"%s\"", c->log_level);
    if (c->log_format && strcmp(c->log_format, "text") && strcmp(c->log_format, "json"))
        kx_diag_add(d, NULL, "log.format: want text or json, got \"%s\"", c->log_format);
    if (c->http_port < 0 || c->http_port > 65535)
        kx_diag_add(d, NULL, "http.port: %lld is not a TCP port", (long long)c->http_port);
    if ((c->http_tls_cert != NULL) != (c->http_tls_key != NULL))
        kx_diag_add(d, NULL, "http.tls_cert and http.tls_key go together");
    if ((c->http_basic_user != NULL) != (c->http_basic_password != NULL))
        kx_diag_add(d, NULL, "http.basic_user and http.basic_password go together");
    if (c->http_ws_buffer < 64 || c->http_ws_buffer > 1048576)
        kx_diag_add(d, NULL, "http.ws_buffer: want 64..1048576, got %lld",
                    (long long)c->http_ws_buffer);
    if (c->http_ws_slow && strcmp(c->http_ws_slow, "skip") && strcmp(c->http_ws_slow, "drop"))
        kx_diag_add(d, NULL, "http.ws_slow: want skip or drop, got \"%s\"", c->http_ws_slow);
    if (c->http_workers < 1 || c->http_workers > 16)
        kx_diag_add(d, NULL, "http.workers: want 1..16, got %lld", (long long)c->http_workers);
    if (c->http_session_ttl < KX_NSEC_PER_SEC)
        kx_diag_add(d, NULL, "http.session_ttl: must be at least 1s");
    if (c->replicas < 1 || c->replicas > 5)
        kx_diag_add(d, NULL, "nats.replicas: want 1..5, got %lld", (long long)c->replicas);
    if (c->fetch_batch < 1 || c->fetch_batch > 4096)
        kx_diag_add(d, NULL, "hub.fetch_batch: want 1..4096, got %lld", (long long)c->fetch_batch);
    if (c->dedupe_enabled && c->dedupe_keys.n == 0)
        kx_diag_add(d, NULL, "dedupe.keys: at least one field is needed when dedupe is on");
    if (c->dedupe_enabled && c->dedupe_window < KX_NSEC_PER_SEC)
        kx_diag_add(d, NULL, "dedupe.window: must be at least 1s");
    if (c->respond_max_actions < 0 || c->respond_window < KX_NSEC_PER_SEC)
        kx_diag_add(d, NULL, "respond: max_actions >= 0 and window >= 1s");
    check_outputs(c, d);
    kx_respond_free(kx_respond_parse(c->responders, d)); /* checked, not started */
    return d->n > before ? -EINVAL : 0;
}

void kx_hub_config_free(struct kx_hub_config *c)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(sections); i++)
        kx_config_release(sections[i].opts, c);
    kx_config_free(c->doc);
    memset(c, 0, sizeof(*c));
}
