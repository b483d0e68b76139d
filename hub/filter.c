/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filter.c - the alert filter of the query API and the WebSocket feed:
 * parsing it from a query string or a JSON object, matching, printing.
 *
 * Both parsers go through one table of parameters (which request allows
 * which) and one setter, so a parameter means the same thing in a URL and in
 * a WebSocket message, and fails with the same words.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter.h"
#include "util.h"

#define DEFAULT_SINCE (24 * 3600 * KX_NSEC_PER_SEC)

enum fparam {
    P_SINCE,
    P_UNTIL,
    P_PRIORITY,
    P_RULE,
    P_TAG,
    P_NODE,
    P_NAMESPACE,
    P_POD,
    P_SOURCE,
    P_Q,
    P_KIND,
    P_LIMIT,
    P_CURSOR,
    P_RESPONDER,
    P_RESULT,
    P_ALERT_UUID,
    P_ACCESS_TOKEN,
    P_COUNT,
};

/* Where a parameter is allowed: the three query uses, and the WS JSON message. */
#define U_ALERTS (1u << KX_FILTER_Q_ALERTS)
#define U_AUDIT (1u << KX_FILTER_Q_AUDIT)
#define U_WS (1u << KX_FILTER_Q_WS)
#define U_JSON (1u << 3)
#define U_MATCH (U_ALERTS | U_WS | U_JSON) /* the alert conditions of /api/v1/alerts */

static const struct {
    const char *name;
    unsigned uses;
    bool list; /* may repeat: any of */
} params[P_COUNT] = {
    [P_SINCE] = {"since", U_ALERTS | U_AUDIT, false},
    [P_UNTIL] = {"until", U_ALERTS | U_AUDIT, false},
    [P_PRIORITY] = {"priority", U_MATCH, false},
    [P_RULE] = {"rule", U_MATCH, true},
    [P_TAG] = {"tag", U_MATCH, true},
    [P_NODE] = {"node", U_MATCH, true},
    [P_NAMESPACE] = {"namespace", U_MATCH, true},
    [P_POD] = {"pod", U_MATCH, true},
    [P_SOURCE] = {"source", U_MATCH, true},
    [P_Q] = {"q", U_MATCH, false},
    [P_KIND] = {"kind", U_WS | U_JSON, false},
    [P_LIMIT] = {"limit", U_ALERTS | U_AUDIT, false},
    [P_CURSOR] = {"cursor", U_ALERTS | U_AUDIT, false},
    [P_RESPONDER] = {"responder", U_AUDIT, true},
    [P_RESULT] = {"result", U_AUDIT, true},
    [P_ALERT_UUID] = {"alert_uuid", U_AUDIT, false},
    /* RFC 6750 §2.3: the auth layer reads it; a repeat is its business */
    [P_ACCESS_TOKEN] = {"access_token", U_WS, true},
};

static const char *const use_path[] = {
    [KX_FILTER_Q_ALERTS] = "/api/v1/alerts",
    [KX_FILTER_Q_AUDIT] = "/api/v1/audit",
    [KX_FILTER_Q_WS] = "/ws",
};

static const char *const audit_results[] = {"acted", "dry_run", "skipped", "failed"};

static struct kx_strlist *list_of(struct kx_filter *f, enum fparam p)
{
    switch (p) {
    case P_RULE:
        return &f->rules;
    case P_TAG:
        return &f->tags;
    case P_NODE:
        return &f->nodes;
    case P_NAMESPACE:
        return &f->namespaces;
    case P_POD:
        return &f->pods;
    case P_SOURCE:
        return &f->sources;
    case P_RESPONDER:
        return &f->responders;
    case P_RESULT:
        return &f->results;
    default:
        return NULL;
    }
}

void kx_filter_free(struct kx_filter *f)
{
    if (!f)
        return;
    for (int p = 0; p < P_COUNT; p++) {
        struct kx_strlist *l = list_of(f, (enum fparam)p);
        if (l)
            kx_strlist_free(l);
    }
    free(f->text);
    free(f->alert_uuid);
    memset(f, 0, sizeof(*f));
}

bool kx_filter_uuid_ok(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < KX_ALERT_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return s[KX_ALERT_UUID_LEN] == '\0';
}

/* A positive decimal uint64 with nothing else around it. */
static int parse_cursor(const char *v, uint64_t *out)
{
    uint64_t n = 0;

    if (!*v || strlen(v) > 20)
        return -EINVAL;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - (uint64_t)(*v - '0')) / 10)
            return -EINVAL;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    if (n == 0)
        return -EINVAL;
    *out = n;
    return 0;
}

/*
 * Applies one non-empty value of parameter p. seen marks the parameters
 * given so far, so that a single-valued one given twice is refused.
 */
static int filter_set(struct kx_filter *f, enum fparam p, const char *v, int64_t now,
                      unsigned *seen, char *err, size_t errlen)
{
    const char *name = params[p].name;
    struct kx_strlist *l = list_of(f, p);
    char q[64];
    long n;

    if (!params[p].list && (*seen & (1u << p))) {
        kx_errf(err, errlen, "parameter \"%s\" given more than once", name);
        return -EINVAL;
    }
    *seen |= 1u << p;
    if (strlen(v) > KX_FILTER_VALUE_MAX) {
        kx_errf(err, errlen, "%s: longer than %d bytes", name, KX_FILTER_VALUE_MAX);
        return -EINVAL;
    }
    switch (p) {
    case P_SINCE:
    case P_UNTIL:
        if (kx_when_parse(v, now, p == P_SINCE ? &f->since : &f->until) == 0)
            return 0;
        kx_errf(err, errlen, "%s: want an RFC 3339 time or a duration like 15m, got \"%s\"", name,
                kx_excerpt(v, q, sizeof(q)));
        return -EINVAL;
    case P_PRIORITY:
        if (kx_priority_parse(v, &f->min_priority) == 0) {
            f->has_priority = true;
            return 0;
        }
        kx_errf(err, errlen,
                "priority: unknown priority \"%s\" (want emergency, alert, critical, error, "
                "warning, notice, informational or debug)",
                kx_excerpt(v, q, sizeof(q)));
        return -EINVAL;
    case P_Q:
        return (f->text = strdup(v)) ? 0 : -ENOMEM;
    case P_ALERT_UUID:
        if (!kx_filter_uuid_ok(v)) {
            kx_errf(err, errlen, "alert_uuid: want a UUID (8-4-4-4-12 hex digits), got \"%s\"",
                    kx_excerpt(v, q, sizeof(q)));
            return -EINVAL;
        }
        return (f->alert_uuid = strdup(v)) ? 0 : -ENOMEM;
    case P_KIND:
        if (strcmp(v, "alert") == 0)
            f->kinds = KX_FILTER_ALERT;
        else if (strcmp(v, "audit") == 0)
            f->kinds = KX_FILTER_AUDIT;
        else if (strcmp(v, "all") == 0)
            f->kinds = KX_FILTER_ALERT | KX_FILTER_AUDIT;
        else {
            kx_errf(err, errlen, "kind: want alert, audit or all, got \"%s\"",
                    kx_excerpt(v, q, sizeof(q)));
            return -EINVAL;
        }
        return 0;
    case P_LIMIT:
        if (!kx_small_uint(v, strlen(v), &n) || n < 1 || n > KX_FILTER_LIMIT_MAX) {
            kx_errf(err, errlen, "limit: want a number from 1 to %d, got \"%s\"",
                    KX_FILTER_LIMIT_MAX, kx_excerpt(v, q, sizeof(q)));
            return -EINVAL;
        }
        f->limit = (int)n;
        return 0;
    case P_CURSOR:
        if (parse_cursor(v, &f->cursor) == 0)
            return 0;
        kx_errf(err, errlen, "cursor: want the \"next\" of a previous page, got \"%s\"",
                kx_excerpt(v, q, sizeof(q)));
        return -EINVAL;
    case P_ACCESS_TOKEN:
        return 0;
    case P_RESULT: {
        bool known = false;
        for (size_t i = 0; i < KX_ARRAY_SIZE(audit_results); i++)
            known = known || strcmp(v, audit_results[i]) == 0;
        if (!known) {
            kx_errf(err, errlen, "result: want acted, dry_run, skipped or failed, got \"%s\"",
                    kx_excerpt(v, q, sizeof(q)));
            return -EINVAL;
        }
        break;
    }
    default:
        break;
    }
    if (!l)
        return -EINVAL; /* not reached: every other parameter is a list */
    if (l->n >= KX_FILTER_LIST_MAX) {
        kx_errf(err, errlen, "%s: more than %d values", name, KX_FILTER_LIST_MAX);
        return -EINVAL;
    }
    return kx_strlist_add(l, v, strlen(v));
}

/* Finds parameter name[0..n) among those allowed by uses; -1 if none. */
static int param_find(const char *name, size_t n, unsigned uses)
{
    for (int p = 0; p < P_COUNT; p++)
        if ((params[p].uses & uses) && strlen(params[p].name) == n &&
            memcmp(params[p].name, name, n) == 0)
            return p;
    return -1;
}

/*
 * Decodes s[0..n) ('+' and %XX) into a new string (caller frees). -EINVAL
 * for a broken or NUL escape, -ENOMEM.
 */
static int pct_decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);

    if (!d)
        return -ENOMEM;
    if (kx_url_decode(s, n, d, n + 1) < 0) {
        free(d);
        return -EINVAL;
    }
    *out = d;
    return 0;
}

/* Applies the defaults of use to a zeroed filter. */
static void filter_defaults(struct kx_filter *f, unsigned use_bit)
{
    f->limit = KX_FILTER_LIMIT_DEFAULT;
    if (use_bit == U_ALERTS)
        f->kinds = KX_FILTER_ALERT;
    else if (use_bit == U_AUDIT)
        f->kinds = KX_FILTER_AUDIT;
    else
        f->kinds = KX_FILTER_ALERT | KX_FILTER_AUDIT;
}

/* Checks what only the whole set can tell; fills the time default. */
static int filter_finish(struct kx_filter *f, unsigned use_bit, unsigned seen, int64_t now,
                         char *err, size_t errlen)
{
    if ((use_bit & (U_ALERTS | U_AUDIT)) && !(seen & (1u << P_SINCE)))
        f->since = now > DEFAULT_SINCE ? now - DEFAULT_SINCE : 1;
    if (f->since && f->until && f->since > f->until) {
        kx_errf(err, errlen, "since is after until%s",
                seen & (1u << P_SINCE) ? "" : " (since is 24h ago unless given)");
        return -EINVAL;
    }
    return 0;
}

int kx_filter_from_query(struct kx_filter *f, const char *query, enum kx_filter_use use,
                         int64_t now, char *err, size_t errlen)
{
    unsigned use_bit = 1u << use, seen = 0;
    const char *s = query ? query : "", *raw, *rawval;
    size_t nlen, vlen;
    int rc = 0;

    memset(f, 0, sizeof(*f));
    filter_defaults(f, use_bit);
    while (rc == 0 && kx_query_next(&s, &raw, &nlen, &rawval, &vlen)) {
        char *name = NULL, *val = NULL, q[64];

        if ((rc = pct_decode(raw, nlen, &name)) == 0 &&
            (rc = pct_decode(rawval ? rawval : "", vlen, &val)) < 0)
            kx_errf(err, errlen, "parameter \"%s\": bad %%-encoding",
                    kx_excerpt(name, q, sizeof(q)));
        else if (rc == -EINVAL)
            kx_errf(err, errlen, "bad %%-encoding in a parameter name");
        if (rc == 0) {
            int p = param_find(name, strlen(name), use_bit);
            if (p < 0 && param_find(name, strlen(name), U_ALERTS | U_AUDIT | U_WS) >= 0) {
                kx_errf(err, errlen, "parameter \"%s\" does not apply to %s", name, use_path[use]);
                rc = -EINVAL;
            } else if (p < 0) {
                kx_errf(err, errlen, "unknown parameter \"%s\"", kx_excerpt(name, q, sizeof(q)));
                rc = -EINVAL;
            } else if (val[0]) {
                rc = filter_set(f, (enum fparam)p, val, now, &seen, err, errlen);
            }
        }
        free(name);
        free(val);
    }
    if (rc == 0)
        rc = filter_finish(f, use_bit, seen, now, err, errlen);
    if (rc == -ENOMEM)
        kx_errf(err, errlen, "out of memory");
    if (rc)
        kx_filter_free(f);
    return rc;
}

int kx_filter_from_json(struct kx_filter *f, const cJSON *obj, char *err, size_t errlen)
{
    unsigned seen = 0;
    const cJSON *it;
    char q[64];
    int rc = 0;

    memset(f, 0, sizeof(*f));
    filter_defaults(f, U_WS);
    if (!cJSON_IsObject(obj)) {
        kx_errf(err, errlen, "filter: want an object");
        return -EINVAL;
    }
    for (it = obj->child; it && rc == 0; it = it->next) {
        const char *key = it->string ? it->string : "";
        int p = param_find(key, strlen(key), U_JSON);

        if (p < 0) {
            kx_errf(err, errlen, "filter: unknown key \"%s\"", kx_excerpt(key, q, sizeof(q)));
            rc = -EINVAL;
        } else if (cJSON_IsString(it)) {
            if (it->valuestring[0])
                rc = filter_set(f, (enum fparam)p, it->valuestring, 0, &seen, err, errlen);
        } else if (cJSON_IsArray(it) && params[p].list) {
            const cJSON *v;
            cJSON_ArrayForEach(v, it)
            {
                if (!cJSON_IsString(v)) {
                    kx_errf(err, errlen, "%s: want strings only", key);
                    rc = -EINVAL;
                } else if (v->valuestring[0]) {
                    rc = filter_set(f, (enum fparam)p, v->valuestring, 0, &seen, err, errlen);
                }
                if (rc)
                    break;
            }
        } else if (!cJSON_IsNull(it)) {
            kx_errf(err, errlen, "%s: want a string%s", key,
                    params[p].list ? " or an array of strings" : "");
            rc = -EINVAL;
        }
    }
    if (rc == -ENOMEM)
        kx_errf(err, errlen, "out of memory");
    if (rc)
        kx_filter_free(f);
    return rc;
}

/* Does s match one of the globs? An empty list matches anything, NULL s nothing else. */
static bool glob_any(const struct kx_strlist *l, const char *s)
{
    if (!l->n)
        return true;
    if (!s)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], s, 0) == 0)
            return true;
    return false;
}

/* A string output field, or NULL (absent or another type). */
static const char *field_s(const struct kx_alert *a, const char *name)
{
    const cJSON *v = kx_alert_field(a, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* q in the rule, the output, or an output field's value (numbers as printed). */
static bool text_in(const struct kx_alert *a, const char *q)
{
    const cJSON *of, *v;
    char num[40];

    if (strcasestr(a->rule, q) || strcasestr(a->output, q))
        return true;
    of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");
    if (!cJSON_IsObject(of))
        return false;
    cJSON_ArrayForEach(v, of)
    {
        const char *s = NULL;
        if (cJSON_IsString(v)) {
            s = v->valuestring;
        } else if (cJSON_IsBool(v)) {
            s = cJSON_IsTrue(v) ? "true" : "false";
        } else if (cJSON_IsNumber(v)) {
            double d = v->valuedouble;
            if (d == (double)(int64_t)d)
                snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
            else
                snprintf(num, sizeof(num), "%.17g", d);
            s = num;
        }
        if (s && strcasestr(s, q))
            return true;
    }
    return false;
}

bool kx_filter_match(const struct kx_filter *f, const struct kx_alert *a)
{
    unsigned kinds = f->kinds ? f->kinds : KX_FILTER_ALERT | KX_FILTER_AUDIT;
    bool audit = kx_alert_is_audit(a);

    /* cheapest first: the live feed runs this per client per alert */
    if (f->has_priority && a->priority > f->min_priority)
        return false;
    if (!(kinds & (audit ? KX_FILTER_AUDIT : KX_FILTER_ALERT)))
        return false;
    if ((f->since && a->time_ns < f->since) || (f->until && a->time_ns > f->until))
        return false;
    if (!kx_alert_routed(a, &f->rules, &f->tags, &f->sources) || !glob_any(&f->nodes, a->hostname))
        return false;
    if ((f->namespaces.n && !glob_any(&f->namespaces, field_s(a, "k8s.ns.name"))) ||
        (f->pods.n && !glob_any(&f->pods, field_s(a, "k8s.pod.name"))))
        return false;
    if ((f->responders.n && !glob_any(&f->responders, field_s(a, "klaxon.responder"))) ||
        (f->results.n && !kx_strlist_has(&f->results, field_s(a, "klaxon.result"))))
        return false;
    if (f->alert_uuid) {
        const char *u = field_s(a, "klaxon.alert_uuid");
        if (!u || strcasecmp(u, f->alert_uuid) != 0)
            return false;
    }
    return !f->text || text_in(a, f->text);
}

/* kx_filter_raw_has for needle[0..m). */
static bool raw_has_n(const char *raw, size_t len, const char *needle, size_t m)
{
    int cl, cu;

    if (m == 0)
        return true;
    if (m > len)
        return false;
    /* memchr for either case of the first byte: this runs over every
     * message a query scans, and memchr is far faster than a byte loop */
    const char *end = raw + len - m + 1; /* where a match may start, exclusive */
    cl = tolower((unsigned char)needle[0]);
    cu = toupper((unsigned char)needle[0]);
    const char *nl = memchr(raw, cl, (size_t)(end - raw));
    const char *nu = cu != cl ? memchr(raw, cu, (size_t)(end - raw)) : NULL;
    while (nl || nu) {
        const char *c = !nu || (nl && nl < nu) ? nl : nu;
        if (strncasecmp(c + 1, needle + 1, m - 1) == 0)
            return true;
        if (c == nl)
            nl = memchr(c + 1, cl, (size_t)(end - c - 1));
        else
            nu = memchr(c + 1, cu, (size_t)(end - c - 1));
    }
    return false;
}

bool kx_filter_raw_has(const char *raw, size_t len, const char *needle)
{
    return raw_has_n(raw, len, needle, strlen(needle));
}

/*
 * Is s[0..n) written the same in any JSON text as in the string it is
 * part of? Not when it could need escaping ('"', '\\', '/', control and
 * non-ASCII bytes, and the <>& some encoders write as \u00XX). A producer
 * escaping plain letters as \u00XX is not worth a full parse of every
 * message.
 */
static bool json_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || strchr("\"\\/<>&", c))
            return false;
    }
    return true;
}

/* q can also match a number, whose text we print ourselves (1e3 vs 1000). */
static bool text_is_plain(const char *q)
{
    return json_plain(q, strlen(q)) && q[strspn(q, "0123456789.+-eE")] != '\0';
}

/*
 * Can the raw text hold a string matching glob g? No only when the
 * longest literal run of g (between * and ?) is missing from it; a bracket
 * expression or an escape gives up.
 */
static bool glob_may_match_raw(const char *g, const char *raw, size_t len)
{
    size_t best = 0, at = 0;

    if (strpbrk(g, "[\\"))
        return true;
    for (size_t i = 0, run; g[i]; i += run ? run : 1) {
        run = strcspn(g + i, "*?");
        if (run > best) {
            best = run;
            at = i;
        }
    }
    return !best || !json_plain(g + at, best) || raw_has_n(raw, len, g + at, best);
}

/* Can the raw text hold a value one of l's globs (or exact names) matches? */
static bool list_may_match_raw(const struct kx_strlist *l, const char *raw, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (glob_may_match_raw(l->v[i], raw, len))
            return true;
    return l->n == 0;
}

bool kx_filter_may_match_raw(const struct kx_filter *f, const char *json, size_t len)
{
    if (f->alert_uuid && !kx_filter_raw_has(json, len, f->alert_uuid))
        return false;
    if (f->kinds == KX_FILTER_AUDIT && !kx_filter_raw_has(json, len, "\"" KX_AUDIT_SOURCE "\""))
        return false;
    if (f->text && text_is_plain(f->text) && !kx_filter_raw_has(json, len, f->text))
        return false;
    /* not sources: an alert without one is "syscall" without saying so */
    return list_may_match_raw(&f->rules, json, len) && list_may_match_raw(&f->tags, json, len) &&
           list_may_match_raw(&f->nodes, json, len) &&
           list_may_match_raw(&f->namespaces, json, len) &&
           list_may_match_raw(&f->pods, json, len) &&
           list_may_match_raw(&f->responders, json, len) &&
           list_may_match_raw(&f->results, json, len);
}

static int add_list(cJSON *o, const char *key, const struct kx_strlist *l, bool always)
{
    cJSON *arr;

    if (!always && !l->n)
        return 0;
    if (!(arr = cJSON_AddArrayToObject(o, key)))
        return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        cJSON *s = cJSON_CreateString(l->v[i]);
        if (!s)
            return -ENOMEM;
        cJSON_AddItemToArray(arr, s);
    }
    return 0;
}

static int add_time(cJSON *o, const char *key, int64_t t)
{
    char buf[40];

    if (!t)
        return 0;
    kx_time_format(t, buf, sizeof(buf));
    return cJSON_AddStringToObject(o, key, buf) ? 0 : -ENOMEM;
}

cJSON *kx_filter_to_json(const struct kx_filter *f)
{
    unsigned kinds = f->kinds ? f->kinds : KX_FILTER_ALERT | KX_FILTER_AUDIT;
    const char *kind = kinds == KX_FILTER_ALERT   ? "alert"
                       : kinds == KX_FILTER_AUDIT ? "audit"
                                                  : "all";
    cJSON *o = cJSON_CreateObject();
    int rc = o ? 0 : -ENOMEM;

    if (rc == 0 && !cJSON_AddStringToObject(
                       o, "priority", f->has_priority ? kx_priority_slug(f->min_priority) : ""))
        rc = -ENOMEM;
    if (rc == 0)
        rc = add_list(o, "rule", &f->rules, true);
    if (rc == 0)
        rc = add_list(o, "tag", &f->tags, true);
    if (rc == 0)
        rc = add_list(o, "node", &f->nodes, true);
    if (rc == 0)
        rc = add_list(o, "namespace", &f->namespaces, true);
    if (rc == 0)
        rc = add_list(o, "pod", &f->pods, true);
    if (rc == 0)
        rc = add_list(o, "source", &f->sources, true);
    if (rc == 0 && !cJSON_AddStringToObject(o, "q", f->text ? f->text : ""))
        rc = -ENOMEM;
    if (rc == 0 && !cJSON_AddStringToObject(o, "kind", kind))
        rc = -ENOMEM;
    if (rc == 0)
        rc = add_list(o, "responder", &f->responders, false);
    if (rc == 0)
        rc = add_list(o, "result", &f->results, false);
    if (rc == 0 && f->alert_uuid && !cJSON_AddStringToObject(o, "alert_uuid", f->alert_uuid))
        rc = -ENOMEM;
    if (rc == 0)
        rc = add_time(o, "since", f->since);
    if (rc == 0)
        rc = add_time(o, "until", f->until);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
