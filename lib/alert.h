/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert.h - the one alert model: Falco-compatible JSON in and out.
 *
 * An alert keeps its parsed JSON document (cJSON) as the source of truth, so
 * fields we do not know survive a round trip untouched; the well-known fields
 * are validated on parse and cached for fast access.
 *
 *   {"uuid":"..","time":"2026-..Z","priority":"Critical","rule":"..",
 *    "source":"syscall","hostname":"node-a","output":"..","tags":[..],
 *    "output_fields":{"proc.name":"bash","container.id":"3ad7b26ded6d",..}}
 */
#ifndef KX_ALERT_H
#define KX_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

struct kx_strlist; /* config.h */

/* Falco's priorities, most severe first (syslog order): a lower value is
 * more severe, so "at least warning" is p <= KX_PRI_WARNING. */
enum kx_priority {
    KX_PRI_EMERGENCY,
    KX_PRI_ALERT,
    KX_PRI_CRITICAL,
    KX_PRI_ERROR,
    KX_PRI_WARNING,
    KX_PRI_NOTICE,
    KX_PRI_INFORMATIONAL,
    KX_PRI_DEBUG,
    KX_PRI_COUNT,
};

/* Case-insensitive; also accepts "info" and "warn". 0 or -EINVAL. */
int kx_priority_parse(const char *s, enum kx_priority *out);
/* "Critical", "Informational", ...: the spelling Falco emits. */
const char *kx_priority_name(enum kx_priority p);
/* "critical": lowercase, used in subjects and metrics labels. */
const char *kx_priority_slug(enum kx_priority p);

/* The source of the hub's responder audit records (hub/respond.c): they
 * travel like alerts, and readers tell them apart by this. */
#define KX_AUDIT_SOURCE "klaxon_audit"

#define KX_ALERT_MAX_BYTES   (1024 * 1024) /* default bound for one alert body */
#define KX_ALERT_UUID_LEN    36
#define KX_ALERT_ERR_LEN     256

struct kx_alert {
    cJSON *doc;                  /* owned: the whole JSON object */
    const char *uuid;            /* borrowed from doc */
    const char *rule;            /* borrowed from doc, non-empty */
    const char *source;          /* borrowed from doc; "syscall" if absent */
    const char *hostname;        /* borrowed from doc; "" if absent */
    const char *output;          /* borrowed from doc; "" if absent */
    enum kx_priority priority;
    int64_t time_ns;             /* parsed "time" */
    char *raw;                   /* owned: the text parse() read, kept while doc is unchanged
                                  * since, so it need not be printed again; else NULL */
    size_t raw_len;
};

/*
 * Parses and validates one alert. json need not be NUL-terminated. When the
 * alert has no uuid, a fresh one is assigned (Falco's http_output may omit
 * it). On failure returns NULL and writes a one-line reason to err (which the
 * hub sends back in HTTP 400 bodies), e.g. "field \"priority\": unknown
 * priority \"Loud\" (want emergency..debug)". Caller owns the result.
 */
struct kx_alert *kx_alert_parse(const char *json, size_t len, char *err, size_t errlen);

/* Builder for producers (sensor, aggregates): all strings are copied.
 * time_ns 0 means now. Caller owns the result; NULL + errno on OOM. */
struct kx_alert *kx_alert_new(const char *rule, enum kx_priority p, const char *source,
                              const char *hostname, const char *output, int64_t time_ns);
/* Output fields (copied). 0 or -ENOMEM. */
int kx_alert_set_str(struct kx_alert *a, const char *field, const char *value);
int kx_alert_set_int(struct kx_alert *a, const char *field, int64_t value);
int kx_alert_add_tag(struct kx_alert *a, const char *tag);

/* Deep copy; caller owns. NULL on OOM. */
struct kx_alert *kx_alert_dup(const struct kx_alert *a);

/*
 * Field lookup by Falco name: "rule", "priority", "hostname", "source",
 * "output", "uuid", "time" are top-level; anything else is looked up in
 * output_fields ("container.id", "proc.name", ...). Returns the JSON value
 * (borrowed) or NULL when absent.
 */
const cJSON *kx_alert_field(const struct kx_alert *a, const char *name);
/* The field as text (numbers and bools formatted, null/absent -> NULL):
 * returns buf or NULL. Strings longer than len-1 are truncated. */
const char *kx_alert_field_str(const struct kx_alert *a, const char *name, char *buf, size_t len);

/* Compact JSON; caller frees with free(). NULL on OOM. */
char *kx_alert_to_json(const struct kx_alert *a);

/*
 * The alert as one line of JSON text, without a copy when it can: the text
 * it was parsed from while the alert is unchanged since (changes go through
 * the setters above) and that text is one line, else printed compact into
 * *tmp, which the caller frees (NULL when not used). *len gets the length. NULL when out of memory. a borrowed; the
 * result lives as long as a and *tmp.
 */
const char *kx_alert_json(const struct kx_alert *a, size_t *len, char **tmp);

/*
 * The route filters outputs and responders share: a's rule matches one of
 * the globs, it carries one of the tags, it comes from one of the sources;
 * an empty (or NULL) list lets every alert through. Pure; all borrowed.
 */
bool kx_alert_routed(const struct kx_alert *a, const struct kx_strlist *rules,
                     const struct kx_strlist *tags, const struct kx_strlist *sources);

/* Is a a responder audit record (source KX_AUDIT_SOURCE)? Pure. */
bool kx_alert_is_audit(const struct kx_alert *a);

void kx_alert_free(struct kx_alert *a); /* no-op if NULL */

#endif
