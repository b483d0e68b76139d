/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.h - the sensor's configuration (config/sensor.yaml): option
 * tables, validation with file:line diagnostics, environment overrides and
 * the node name.
 *
 *   log:    {level: info, format: text}            env LOG_LEVEL, LOG_FORMAT
 *   nats:   {url: nats://127.0.0.1:4222, name: ..} env NATS_URL, NATS_NAME
 *   sensor: {node_name: "", queue_size: 10000,     env SENSOR_NODE_NAME, ...
 *            publish_timeout: 2s, ensure_stream: false,
 *            rules_files: [config/rules/klaxon_rules.yaml], enforce: false,
 *            heartbeat_interval: 30s, metrics_addr: 0.0.0.0, metrics_port: 2802}
 *   kubernetes: {mode: auto, kubeconfig: "", ...}  env K8S_MODE, K8S_KUBECONFIG, ...
 */
#ifndef KX_SENSOR_SETTINGS_H
#define KX_SENSOR_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "k8s.h"
#include "log.h"

#define KX_SENSOR_DEFAULT_CONFIG "config/sensor.yaml"
#define KX_SENSOR_DEFAULT_RULES "config/rules/klaxon_rules.yaml"
#define KX_SENSOR_QUEUE_MAX 10000000 /* upper bound accepted for sensor.queue_size */

struct kx_sensor_log_cfg {
    char *level;  /* owned: "debug" | "info" | "warn" | "error" */
    char *format; /* owned: "text" | "json" */
};

struct kx_sensor_nats_cfg {
    char *url;  /* owned: "nats://127.0.0.1:4222" (comma list ok) */
    char *name; /* owned: connection name shown by the server */
};

struct kx_sensor_node_cfg {
    char *node_name;         /* owned: "" = NODE_NAME env, else hostname */
    int64_t queue_size;      /* alerts buffered while NATS is slow or down */
    int64_t publish_timeout; /* ns per JetStream publish attempt */
    bool ensure_stream;      /* create KLAXON_ALERTS when missing (no hub yet) */
    struct kx_strlist rules_files; /* owned: rule files, loaded in order */
    bool enforce;            /* apply "action: kill" of rules (off: alert only) */
    int64_t heartbeat_interval; /* ns between heartbeats on klaxon.heartbeat.<node>; 0 = off */
    char *metrics_addr;      /* owned: address of the /metrics listener */
    int64_t metrics_port;    /* port of the /metrics listener; 0 = off */
};

struct kx_sensor_cfg {
    struct kx_sensor_log_cfg log;
    struct kx_sensor_nats_cfg nats;
    struct kx_sensor_node_cfg sensor;
    struct kx_k8s_settings kubernetes; /* pod attribution (lib/k8s.h) */
    struct kx_k8s_opts k8s;            /* resolved from kubernetes; borrows its strings */
    enum kx_log_level level; /* parsed log.level */
    bool log_json;           /* log.format == "json" */
};

/*
 * Fills c (zeroed first) from the YAML file at path, or from defaults and
 * the environment only when path is NULL. Every problem is added to d with
 * its file:line:col. Returns 0, or -EINVAL when any diagnostic was added.
 * Release c with kx_sensor_cfg_release() in both cases.
 */
int kx_sensor_cfg_load(const char *path, struct kx_sensor_cfg *c, struct kx_diag *d);

/* Same from an already parsed document (doc may be NULL; borrowed). */
int kx_sensor_cfg_from_doc(const struct kx_config_doc *doc, struct kx_sensor_cfg *c,
                           struct kx_diag *d);

void kx_sensor_cfg_release(struct kx_sensor_cfg *c); /* no-op on a zeroed struct */

/*
 * The node name: env NODE_NAME (the Kubernetes downward API), else
 * sensor.node_name, else the hostname. Written to out (at most len-1 bytes).
 * 0 or a negative errno.
 */
int kx_sensor_node_name(const struct kx_sensor_cfg *c, char *out, size_t len);

/* Prints the keys, types, defaults and descriptions (for --help). */
void kx_sensor_cfg_print_help(void);

#endif
