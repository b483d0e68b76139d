/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filter.h - the alert filter shared by the query API (GET /api/v1/alerts,
 * /api/v1/audit) and the WebSocket feed (GET /ws), docs/api.md.
 *
 * A filter is built once per request or per client (from the URL's query
 * string, or from a WebSocket client's {"filter":{...}} message) and then
 * matched against many alerts: kx_filter_match is pure and allocation-free,
 * since the live feed runs it for every client on every alert.
 */
#ifndef KX_HUB_FILTER_H
#define KX_HUB_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"

enum { KX_FILTER_ALERT = 1, KX_FILTER_AUDIT = 2 }; /* kinds */

/* Which request the parameters come from: each allows its own set. */
enum kx_filter_use { KX_FILTER_Q_ALERTS, KX_FILTER_Q_AUDIT, KX_FILTER_Q_WS };

#define KX_FILTER_LIMIT_DEFAULT 100
#define KX_FILTER_LIMIT_MAX 1000
#define KX_FILTER_VALUE_MAX 1024 /* bytes in one parameter value */
#define KX_FILTER_LIST_MAX 64    /* values of one list parameter */

/* Every member is owned by the filter; conditions are ANDed, a list is "any of". */
struct kx_filter {
    bool has_priority;
    enum kx_priority min_priority; /* at least this severe (lower enum = more severe) */
    struct kx_strlist rules;       /* globs on rule */
    struct kx_strlist tags;        /* carries one of these tags (exact) */
    struct kx_strlist nodes;       /* globs on hostname */
    struct kx_strlist namespaces;  /* globs on output field k8s.ns.name */
    struct kx_strlist pods;        /* globs on output field k8s.pod.name */
    struct kx_strlist sources;     /* source, exact ("syscall", "k8s_audit", ...) */
    struct kx_strlist responders;  /* audit: globs on output field klaxon.responder */
    struct kx_strlist results;     /* audit: output field klaxon.result, exact */
    char *text;                    /* q: case-insensitive (ASCII) substring of rule,
                                    * output or any output field value; NULL = none */
    char *alert_uuid;              /* audit: output field klaxon.alert_uuid; NULL = any */
    unsigned kinds;                /* KX_FILTER_ALERT | KX_FILTER_AUDIT; audit records
                                    * are those with source "klaxon_audit" */
    int64_t since, until;          /* on the alert's time, ns since epoch, inclusive;
                                    * 0 = open */
    int limit;                     /* 1..1000, default 100 (queries only) */
    uint64_t cursor;               /* 0 = none; else only stream sequences < cursor */
};

/*
 * Parses a query string as the HTTP layer hands it over ("a=1&b=%26c%20d":
 * %-encoded, '+' is a space too) for one use; the parameters each allows
 * are those of docs/api.md (/ws also accepts and ignores access_token). List
 * parameters repeat ("rule=a&rule=b"); the others may appear once. An empty
 * value is the same as leaving the parameter out (an empty form field).
 *
 * Defaults: /api/v1/alerts and /api/v1/audit look back 24 h (since = now -
 * 24h) with until open (0: "now", without hiding an alert stamped a little
 * ahead by a skewed clock), kinds alert resp. audit; /ws: no time range,
 * kinds both. limit 100. now is the current time in ns (relative since/until).
 *
 * *f is overwritten, not freed first. Returns 0, or -EINVAL with a one-line
 * reason in err (e.g. "unknown parameter \"foo\"", "priority: unknown
 * priority \"loud\" ...", "since: want an RFC 3339 time or a duration like
 * 15m") and *f left empty, or -ENOMEM. query, err borrowed.
 */
int kx_filter_from_query(struct kx_filter *f, const char *query, enum kx_filter_use use,
                         int64_t now, char *err, size_t errlen);

/*
 * The WebSocket client message's "filter" object: keys priority, rule, tag,
 * node, namespace, pod, source, q, kind (docs/api.md); missing, null or ""
 * = no condition; list keys take a string or an array of strings. Unknown
 * keys and bad values -> -EINVAL with err, and *f left empty. *f is
 * overwritten, not freed first; obj borrowed.
 */
int kx_filter_from_json(struct kx_filter *f, const cJSON *obj, char *err, size_t errlen);

/* Does a pass f? Pure, no allocation, any thread; f and a borrowed. */
bool kx_filter_match(const struct kx_filter *f, const struct kx_alert *a);

/*
 * Cheap test on an alert's raw JSON text before parsing it: false means
 * kx_filter_match cannot be true for it (a literal q, alert_uuid, result or
 * responder that the text does not contain); true means parse and match.
 */
bool kx_filter_may_match_raw(const struct kx_filter *f, const char *json, size_t len);

/*
 * The filter, normalized, for the WS "hello"/"filter" messages: always
 * priority ("" = any), rule, tag, node, namespace, pod, source, q ("" =
 * none), kind ("alert", "audit", "all"); responder, result, alert_uuid,
 * since, until (RFC 3339) only when set. What it prints for a /ws filter
 * kx_filter_from_json reads back to the same filter. Caller owns; NULL on OOM.
 */
cJSON *kx_filter_to_json(const struct kx_filter *f);

/* Frees the members and zeroes f; safe on a zeroed or partly filled filter. */
void kx_filter_free(struct kx_filter *f);

/* Is s a UUID in its 8-4-4-4-12 hex form (either case)? Pure. */
bool kx_filter_uuid_ok(const char *s);

/* Does raw[0..len) contain needle, ignoring ASCII case? Pure, no allocation. */
bool kx_filter_raw_has(const char *raw, size_t len, const char *needle);

#endif
