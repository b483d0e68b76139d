/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.c - the sensor's configuration (see settings.h): three option
 * tables applied with lib/config.h, then the checks the tables cannot
 * express (enumerations, ranges), each reported at the key's file:line.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"
#include "util.h"

static const struct kx_opt kx_sensor_log_opts[] = {
    {"level", KX_OPT_STR, "info", offsetof(struct kx_sensor_log_cfg, level), 0,
     "debug, info, warn or error"},
    {"format", KX_OPT_STR, "text", offsetof(struct kx_sensor_log_cfg, format), 0,
     "text or json (one JSON object per line)"},
    {0},
};

static const struct kx_opt kx_sensor_nats_opts[] = {
    {"url", KX_OPT_STR, "nats://127.0.0.1:4222", offsetof(struct kx_sensor_nats_cfg, url), 0,
     "NATS server URL(s), comma-separated"},
    {"name", KX_OPT_STR, "klaxon-sensor", offsetof(struct kx_sensor_nats_cfg, name), 0,
     "connection name shown by the server"},
    {0},
};

static const struct kx_opt kx_sensor_node_opts[] = {
    {"node_name", KX_OPT_STR, "", offsetof(struct kx_sensor_node_cfg, node_name), 0,
     "node name in alerts and subjects; env NODE_NAME wins, hostname if empty"},
    {"queue_size", KX_OPT_INT, "10000", offsetof(struct kx_sensor_node_cfg, queue_size), 0,
     "alerts kept while NATS is slow or down; the oldest are dropped beyond"},
    {"publish_timeout", KX_OPT_DURATION, "2s", offsetof(struct kx_sensor_node_cfg, publish_timeout),
     0, "how long one JetStream publish waits for its ack before a retry"},
    {"ensure_stream", KX_OPT_BOOL, "false", offsetof(struct kx_sensor_node_cfg, ensure_stream), 0,
     "create stream KLAXON_ALERTS if missing (normally the hub's job)"},
    {"rules_files", KX_OPT_STRLIST, KX_SENSOR_DEFAULT_RULES,
     offsetof(struct kx_sensor_node_cfg, rules_files), 0,
     "rule files (Falco's rule language), loaded in order: later ones tune earlier ones"},
    {"enforce", KX_OPT_BOOL, "false", offsetof(struct kx_sensor_node_cfg, enforce), 0,
     "apply rules' \"action: kill\" (SIGKILL in the kernel at exec); off = alert only"},
    {"heartbeat_interval", KX_OPT_DURATION, "30s",
     offsetof(struct kx_sensor_node_cfg, heartbeat_interval), 0,
     "how often counters are published on klaxon.heartbeat.<node>; 0 = never"},
    {"metrics_addr", KX_OPT_STR, "0.0.0.0", offsetof(struct kx_sensor_node_cfg, metrics_addr), 0,
     "address of the Prometheus /metrics listener"},
    {"metrics_port", KX_OPT_INT, "2802", offsetof(struct kx_sensor_node_cfg, metrics_port), 0,
     "port of the Prometheus /metrics listener; 0 = no listener"},
    {0},
};

struct kx_sensor_section {
    const char *key;        /* top-level YAML key */
    const char *env_prefix; /* LOG_LEVEL, NATS_URL, SENSOR_NODE_NAME */
    const struct kx_opt *opts;
    size_t offset; /* of the section struct in kx_sensor_cfg */
};

static const struct kx_sensor_section kx_sensor_sections[] = {
    {"log", "LOG", kx_sensor_log_opts, offsetof(struct kx_sensor_cfg, log)},
    {"nats", "NATS", kx_sensor_nats_opts, offsetof(struct kx_sensor_cfg, nats)},
    {"sensor", "SENSOR", kx_sensor_node_opts, offsetof(struct kx_sensor_cfg, sensor)},
    {"kubernetes", "K8S", kx_k8s_settings_table, offsetof(struct kx_sensor_cfg, kubernetes)},
};

/* Where to point a diagnostic about key: nowhere when the value came from
 * the environment (the message names the variable), else its node, else its
 * section's. */
static const struct kx_config_node *where(const struct kx_config_node *map, const char *env,
                                          const char *key)
{
    const struct kx_config_node *n = map ? kx_config_get(map, key) : NULL;
    const char *e = getenv(env);

    if (e && *e)
        return NULL;
    return n ? n : map;
}

/* " (environment LOG_LEVEL)" when env is set, else "". */
static const char *from_env(const char *env, char *buf, size_t len)
{
    const char *e = getenv(env);

    buf[0] = '\0';
    if (e && *e)
        snprintf(buf, len, " (environment %s)", env);
    return buf;
}

static void validate(struct kx_sensor_cfg *c, const struct kx_config_node *root, struct kx_diag *d)
{
    const struct kx_config_node *log = root ? kx_config_get(root, "log") : NULL;
    const struct kx_config_node *nats = root ? kx_config_get(root, "nats") : NULL;
    const struct kx_config_node *sensor = root ? kx_config_get(root, "sensor") : NULL;
    char src[64];

    if (log && log->kind != KX_CFG_MAP)
        log = NULL;
    if (nats && nats->kind != KX_CFG_MAP)
        nats = NULL;
    if (sensor && sensor->kind != KX_CFG_MAP)
        sensor = NULL;

    if (c->log.level && kx_log_level_parse(c->log.level, &c->level) < 0)
        kx_diag_add(d, where(log, "LOG_LEVEL", "level"),
                    "log.level: unknown level \"%s\"%s (want debug, info, warn or error)",
                    c->log.level, from_env("LOG_LEVEL", src, sizeof(src)));
    if (c->log.format && strcmp(c->log.format, "text") != 0 && strcmp(c->log.format, "json") != 0)
        kx_diag_add(d, where(log, "LOG_FORMAT", "format"),
                    "log.format: \"%s\"%s is neither text nor json", c->log.format,
                    from_env("LOG_FORMAT", src, sizeof(src)));
    c->log_json = c->log.format && strcmp(c->log.format, "json") == 0;

    if (!c->nats.url || !*c->nats.url)
        kx_diag_add(d, where(nats, "NATS_URL", "url"), "nats.url: must not be empty");
    if (c->sensor.queue_size < 1 || c->sensor.queue_size > KX_SENSOR_QUEUE_MAX)
        kx_diag_add(d, where(sensor, "SENSOR_QUEUE_SIZE", "queue_size"),
                    "sensor.queue_size: %lld%s is out of range (1..%d)",
                    (long long)c->sensor.queue_size,
                    from_env("SENSOR_QUEUE_SIZE", src, sizeof(src)), KX_SENSOR_QUEUE_MAX);
    kx_k8s_settings_opts(&c->kubernetes, &c->k8s,
                         root ? kx_config_get(root, "kubernetes") : NULL, d);
    if (c->sensor.metrics_port < 0 || c->sensor.metrics_port > 65535)
        kx_diag_add(d, where(sensor, "SENSOR_METRICS_PORT", "metrics_port"),
                    "sensor.metrics_port: %lld is not a port (0..65535; 0 = off)",
                    (long long)c->sensor.metrics_port);
    if (c->sensor.heartbeat_interval != 0 && c->sensor.heartbeat_interval < KX_NSEC_PER_SEC)
        kx_diag_add(d, where(sensor, "SENSOR_HEARTBEAT_INTERVAL", "heartbeat_interval"),
                    "sensor.heartbeat_interval: must be 0 (off) or at least 1s");
    if (c->sensor.rules_files.n == 0)
        kx_diag_add(d, where(sensor, "SENSOR_RULES_FILES", "rules_files"),
                    "sensor.rules_files: at least one rule file is needed");
    if (c->sensor.publish_timeout < KX_NSEC_PER_MSEC ||
        c->sensor.publish_timeout > 300 * KX_NSEC_PER_SEC)
        kx_diag_add(d, where(sensor, "SENSOR_PUBLISH_TIMEOUT", "publish_timeout"),
                    "sensor.publish_timeout%s: must be between 1ms and 5m",
                    from_env("SENSOR_PUBLISH_TIMEOUT", src, sizeof(src)));
}

int kx_sensor_cfg_from_doc(const struct kx_config_doc *doc, struct kx_sensor_cfg *c,
                           struct kx_diag *d)
{
    const struct kx_config_node *root = doc ? doc->root : NULL;
    size_t before = d->n;

    memset(c, 0, sizeof(*c));
    c->level = KX_LOG_INFO;

    if (root && root->kind != KX_CFG_MAP) {
        kx_diag_add(d, root, "expected a mapping with keys log, nats, sensor");
        root = NULL;
    }
    for (const struct kx_config_node *n = root ? root->child : NULL; n; n = n->next) {
        bool known = false;

        for (size_t i = 0; i < KX_ARRAY_SIZE(kx_sensor_sections); i++)
            known = known || (n->key && strcmp(n->key, kx_sensor_sections[i].key) == 0);
        if (!known)
            kx_diag_add(d, n, "unknown key \"%s\" (expected log, nats or sensor)",
                        n->key ? n->key : "");
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_sensor_sections); i++) {
        const struct kx_sensor_section *s = &kx_sensor_sections[i];
        const struct kx_config_node *map = root ? kx_config_get(root, s->key) : NULL;

        /* "log:" with nothing under it is an empty (null) scalar: defaults. */
        if (map && map->kind == KX_CFG_SCALAR && (!map->value || !*map->value))
            map = NULL;
        if (map && map->kind != KX_CFG_MAP) {
            kx_diag_add(d, map, "%s: expected a mapping", s->key);
            map = NULL;
        }
        kx_config_apply(s->opts, map, (char *)c + s->offset, s->env_prefix, d);
    }
    validate(c, root, d);
    return d->n > before ? -EINVAL : 0;
}

int kx_sensor_cfg_load(const char *path, struct kx_sensor_cfg *c, struct kx_diag *d)
{
    struct kx_config_doc *doc = NULL;
    size_t before = d->n;
    int rc;

    if (path) {
        doc = kx_config_load(path, d);
        if (!doc) {
            memset(c, 0, sizeof(*c));
            if (d->n == before)
                kx_diag_add(d, NULL, "%s: cannot load configuration", path);
            return -EINVAL;
        }
    }
    rc = kx_sensor_cfg_from_doc(doc, c, d);
    kx_config_free(doc);
    return rc;
}

void kx_sensor_cfg_release(struct kx_sensor_cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_sensor_sections); i++)
        kx_config_release(kx_sensor_sections[i].opts, (char *)c + kx_sensor_sections[i].offset);
}

int kx_sensor_node_name(const struct kx_sensor_cfg *c, char *out, size_t len)
{
    const char *env = getenv("NODE_NAME");
    const char *name = NULL;

    if (!out || len == 0)
        return -EINVAL;
    if (env && *env)
        name = env;
    else if (c && c->sensor.node_name && *c->sensor.node_name)
        name = c->sensor.node_name;
    if (name) {
        snprintf(out, len, "%s", name);
        return 0;
    }
    if (gethostname(out, len) < 0)
        return -errno;
    out[len - 1] = '\0';
    return out[0] ? 0 : -ENOENT;
}

void kx_sensor_cfg_print_help(void)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_sensor_sections); i++) {
        printf("  %s:   (env %s_<KEY>)\n", kx_sensor_sections[i].key,
               kx_sensor_sections[i].env_prefix);
        fflush(stdout);
        kx_config_print_opts(kx_sensor_sections[i].opts, "    ");
    }
}
