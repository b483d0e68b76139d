/* SPDX-License-Identifier: Apache-2.0 */
/*
 * alert.c - parse, validate, build and serialize Falco-compatible alerts.
 *
 * Validation is strict about the fields Klaxon routes on (rule, priority,
 * time) and about types, and lenient about everything else, which is kept
 * as-is so that a Falco alert posted to the hub leaves it unchanged.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alert.h"
#include "config.h"
#include "util.h"

static const char *const pri_names[KX_PRI_COUNT] = {
    "Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug",
};
static const char *const pri_slugs[KX_PRI_COUNT] = {
    "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug",
};

int kx_priority_parse(const char *s, enum kx_priority *out)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; i < KX_PRI_COUNT; i++) {
        if (strcasecmp(s, pri_slugs[i]) == 0) {
            *out = (enum kx_priority)i;
            return 0;
        }
    }
    if (strcasecmp(s, "info") == 0) {
        *out = KX_PRI_INFORMATIONAL;
        return 0;
    }
    if (strcasecmp(s, "warn") == 0) {
        *out = KX_PRI_WARNING;
        return 0;
    }
    return -EINVAL;
}

const char *kx_priority_name(enum kx_priority p)
{
    return (unsigned)p < KX_PRI_COUNT ? pri_names[p] : "Debug";
}

const char *kx_priority_slug(enum kx_priority p)
{
    return (unsigned)p < KX_PRI_COUNT ? pri_slugs[p] : "debug";
}

/* Fills the cached fields from a->doc; 0 or -EINVAL with err. */
static int alert_bind(struct kx_alert *a, char *err, size_t errlen)
{
    cJSON *doc = a->doc;
    char ex[64];

    cJSON *rule = cJSON_GetObjectItemCaseSensitive(doc, "rule");
    if (!rule) {
        kx_errf(err, errlen, "missing required field \"rule\"");
        return -EINVAL;
    }
    if (!cJSON_IsString(rule) || !rule->valuestring[0]) {
        kx_errf(err, errlen, "field \"rule\": must be a non-empty string");
        return -EINVAL;
    }
    a->rule = rule->valuestring;

    cJSON *pri = cJSON_GetObjectItemCaseSensitive(doc, "priority");
    if (!pri) {
        kx_errf(err, errlen, "missing required field \"priority\"");
        return -EINVAL;
    }
    if (!cJSON_IsString(pri)) {
        kx_errf(err, errlen, "field \"priority\": must be a string");
        return -EINVAL;
    }
    if (kx_priority_parse(pri->valuestring, &a->priority)) {
        kx_errf(err, errlen,
                "field \"priority\": unknown priority \"%s\" (want one of emergency, alert, "
                "critical, error, warning, notice, informational, debug)",
                kx_excerpt(pri->valuestring, ex, sizeof(ex)));
        return -EINVAL;
    }

    cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "time");
    if (!t) {
        kx_errf(err, errlen, "missing required field \"time\"");
        return -EINVAL;
    }
    if (!cJSON_IsString(t) || kx_time_parse(t->valuestring, &a->time_ns)) {
        kx_errf(err, errlen,
                "field \"time\": want an RFC 3339 timestamp such as "
                "\"2026-11-22T10:01:02.123456789Z\", got %s%s%s",
                cJSON_IsString(t) ? "\"" : "",
                cJSON_IsString(t) ? kx_excerpt(t->valuestring, ex, sizeof(ex)) : "a non-string",
                cJSON_IsString(t) ? "\"" : "");
        return -EINVAL;
    }

    static const char *const opt_strings[] = {"uuid", "source", "hostname", "output"};
    const char **slots[] = {&a->uuid, &a->source, &a->hostname, &a->output};
    for (size_t i = 0; i < KX_ARRAY_SIZE(opt_strings); i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, opt_strings[i]);
        if (v && !cJSON_IsString(v) && !cJSON_IsNull(v)) {
            kx_errf(err, errlen, "field \"%s\": must be a string", opt_strings[i]);
            return -EINVAL;
        }
        *slots[i] = cJSON_IsString(v) ? v->valuestring : NULL;
    }

    cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "tags");
    if (tags && !cJSON_IsNull(tags)) {
        if (!cJSON_IsArray(tags)) {
            kx_errf(err, errlen, "field \"tags\": must be an array of strings");
            return -EINVAL;
        }
        cJSON *tag;
        cJSON_ArrayForEach(tag, tags)
        {
            if (!cJSON_IsString(tag)) {
                kx_errf(err, errlen, "field \"tags\": must be an array of strings");
                return -EINVAL;
            }
        }
    }
    cJSON *of = cJSON_GetObjectItemCaseSensitive(doc, "output_fields");
    if (of && !cJSON_IsNull(of) && !cJSON_IsObject(of)) {
        kx_errf(err, errlen, "field \"output_fields\": must be an object");
        return -EINVAL;
    }
    return 0;
}

/* Sets a string member, replacing any existing one; returns the stored copy. */
static const char *doc_set_str(cJSON *doc, const char *key, const char *value)
{
    cJSON *v = cJSON_CreateString(value);
    if (!v)
        return NULL;
    if (cJSON_GetObjectItemCaseSensitive(doc, key))
        cJSON_ReplaceItemInObjectCaseSensitive(doc, key, v);
    else
        cJSON_AddItemToObject(doc, key, v);
    return v->valuestring;
}

/* Fills defaults the hub relies on: a uuid, a source and a hostname. */
static int alert_fill_defaults(struct kx_alert *a)
{
    if (!a->uuid || !a->uuid[0]) {
        char id[KX_ALERT_UUID_LEN + 1];
        kx_uuid4(id);
        if (!(a->uuid = doc_set_str(a->doc, "uuid", id)))
            return -ENOMEM;
    }
    if (!a->source && !(a->source = doc_set_str(a->doc, "source", "syscall")))
        return -ENOMEM;
    if (!a->hostname)
        a->hostname = "";
    if (!a->output)
        a->output = "";
    return 0;
}

struct kx_alert *kx_alert_parse(const char *json, size_t len, char *err, size_t errlen)
{
    struct kx_alert *a = NULL;
    const char *end = NULL;
    cJSON *doc = NULL;

    if (!json || len == 0) {
        kx_errf(err, errlen, "empty body: want one JSON object (a Falco alert)");
        return NULL;
    }
    if (len > KX_ALERT_MAX_BYTES) {
        kx_errf(err, errlen, "alert is %zu bytes, over the %d byte limit", len, KX_ALERT_MAX_BYTES);
        return NULL;
    }
    if (memchr(json, '\0', len)) {
        kx_errf(err, errlen, "invalid JSON: NUL byte in the body");
        return NULL;
    }
    doc = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!doc) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        kx_errf(err, errlen, "invalid JSON at byte %zu", off);
        return NULL;
    }
    /* Trailing garbage after the object ("{...} x") is an error, whitespace is not. */
    for (const char *p = end; p && p < json + len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            kx_errf(err, errlen, "invalid JSON: unexpected data after the object at byte %zu",
                    (size_t)(p - json));
            goto fail;
        }
    }
    if (!cJSON_IsObject(doc)) {
        kx_errf(err, errlen, "want a JSON object (a Falco alert), got %s",
                cJSON_IsArray(doc) ? "an array" : "a scalar");
        goto fail;
    }
    if (!(a = calloc(1, sizeof(*a)))) {
        kx_errf(err, errlen, "out of memory");
        goto fail;
    }
    a->doc = doc;
    if (alert_bind(a, err, errlen))
        goto fail;
    bool complete = a->uuid && a->uuid[0] && a->source;
    if (alert_fill_defaults(a)) {
        kx_errf(err, errlen, "out of memory");
        goto fail;
    }
    /* Unchanged by the defaults: keep the text, the hub forwards it as is.
     * Only one-line text: outputs write JSON lines and syslog messages, and
     * a newline can only be whitespace between tokens (JSON strings cannot
     * hold one), so such text is printed compact when needed instead; so is
     * text there is no memory to copy. */
    if (complete && !memchr(json, '\n', len) && !memchr(json, '\r', len) &&
        (a->raw = malloc(len + 1))) {
        memcpy(a->raw, json, len);
        a->raw[len] = '\0';
        a->raw_len = len;
    }
    return a;

fail:
    if (a)
        a->doc = NULL;
    free(a);
    cJSON_Delete(doc);
    return NULL;
}

struct kx_alert *kx_alert_new(const char *rule, enum kx_priority p, const char *source,
                              const char *hostname, const char *output, int64_t time_ns)
{
    struct kx_alert *a = calloc(1, sizeof(*a));
    char ts[40], id[KX_ALERT_UUID_LEN + 1];

    if (!a || !(a->doc = cJSON_CreateObject()))
        goto oom;
    kx_uuid4(id);
    a->time_ns = time_ns ? time_ns : kx_now_ns();
    a->priority = (unsigned)p < KX_PRI_COUNT ? p : KX_PRI_DEBUG;
    kx_time_format(a->time_ns, ts, sizeof(ts));
    if (!(a->uuid = doc_set_str(a->doc, "uuid", id)) ||
        !(a->output = doc_set_str(a->doc, "output", output ? output : "")) ||
        !doc_set_str(a->doc, "priority", kx_priority_name(a->priority)) ||
        !(a->rule = doc_set_str(a->doc, "rule", rule ? rule : "")) ||
        !doc_set_str(a->doc, "time", ts) ||
        !(a->source = doc_set_str(a->doc, "source", source ? source : "syscall")) ||
        !(a->hostname = doc_set_str(a->doc, "hostname", hostname ? hostname : "")) ||
        !cJSON_AddArrayToObject(a->doc, "tags") ||
        !cJSON_AddObjectToObject(a->doc, "output_fields"))
        goto oom;
    return a;
oom:
    kx_alert_free(a);
    errno = ENOMEM;
    return NULL;
}

static cJSON *output_fields(struct kx_alert *a)
{
    cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");
    if (cJSON_IsObject(of))
        return of;
    if (of)
        cJSON_DeleteItemFromObjectCaseSensitive(a->doc, "output_fields");
    return cJSON_AddObjectToObject(a->doc, "output_fields");
}

/* The doc is about to change: the parsed text no longer says the same. */
static void alert_touch(struct kx_alert *a)
{
    free(a->raw);
    a->raw = NULL;
    a->raw_len = 0;
}

static int set_field(struct kx_alert *a, const char *field, cJSON *v)
{
    alert_touch(a);
    cJSON *of = output_fields(a);
    if (!of || !v) {
        cJSON_Delete(v);
        return -ENOMEM;
    }
    if (cJSON_GetObjectItemCaseSensitive(of, field))
        cJSON_ReplaceItemInObjectCaseSensitive(of, field, v);
    else
        cJSON_AddItemToObject(of, field, v);
    return 0;
}

int kx_alert_set_str(struct kx_alert *a, const char *field, const char *value)
{
    return set_field(a, field, value ? cJSON_CreateString(value) : cJSON_CreateNull());
}

int kx_alert_set_int(struct kx_alert *a, const char *field, int64_t value)
{
    return set_field(a, field, cJSON_CreateNumber((double)value));
}

int kx_alert_add_tag(struct kx_alert *a, const char *tag)
{
    alert_touch(a);
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(a->doc, "tags");
    if (!cJSON_IsArray(tags)) {
        cJSON_DeleteItemFromObjectCaseSensitive(a->doc, "tags");
        if (!(tags = cJSON_AddArrayToObject(a->doc, "tags")))
            return -ENOMEM;
    }
    cJSON *v = cJSON_CreateString(tag);
    if (!v)
        return -ENOMEM;
    cJSON_AddItemToArray(tags, v);
    return 0;
}

struct kx_alert *kx_alert_dup(const struct kx_alert *a)
{
    struct kx_alert *c = calloc(1, sizeof(*c));
    if (!c || !(c->doc = cJSON_Duplicate(a->doc, true)) || alert_bind(c, NULL, 0) ||
        alert_fill_defaults(c)) {
        kx_alert_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

const cJSON *kx_alert_field(const struct kx_alert *a, const char *name)
{
    static const char *const top[] = {"rule",   "priority", "hostname", "source",
                                      "output", "uuid",     "time",     "tags"};
    for (size_t i = 0; i < KX_ARRAY_SIZE(top); i++)
        if (strcmp(name, top[i]) == 0)
            return cJSON_GetObjectItemCaseSensitive(a->doc, name);
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");
    return cJSON_IsObject(of) ? cJSON_GetObjectItemCaseSensitive(of, name) : NULL;
}

const char *kx_alert_field_str(const struct kx_alert *a, const char *name, char *buf, size_t len)
{
    const cJSON *v = kx_alert_field(a, name);

    if (!v || cJSON_IsNull(v) || len == 0)
        return NULL;
    if (cJSON_IsString(v)) {
        snprintf(buf, len, "%s", v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(int64_t)d)
            snprintf(buf, len, "%" PRId64, (int64_t)d);
        else
            snprintf(buf, len, "%.17g", d);
    } else {
        char *s = cJSON_PrintUnformatted(v);
        if (!s)
            return NULL;
        snprintf(buf, len, "%s", s);
        free(s);
    }
    return buf;
}

char *kx_alert_to_json(const struct kx_alert *a)
{
    return a->raw ? strndup(a->raw, a->raw_len) : cJSON_PrintUnformatted(a->doc);
}

const char *kx_alert_json(const struct kx_alert *a, size_t *len, char **tmp)
{
    *tmp = NULL;
    if (a->raw) {
        *len = a->raw_len;
        return a->raw;
    }
    if (!(*tmp = cJSON_PrintUnformatted(a->doc)))
        return NULL;
    *len = strlen(*tmp);
    return *tmp;
}

bool kx_alert_routed(const struct kx_alert *a, const struct kx_strlist *rules,
                     const struct kx_strlist *tags, const struct kx_strlist *sources)
{
    if (rules && rules->n) {
        bool hit = false;
        for (size_t i = 0; i < rules->n && !hit; i++)
            hit = fnmatch(rules->v[i], a->rule, 0) == 0;
        if (!hit)
            return false;
    }
    if (tags && tags->n) {
        const cJSON *tv = kx_alert_field(a, "tags"), *t;
        bool hit = false;
        if (!cJSON_IsArray(tv))
            return false;
        cJSON_ArrayForEach(t, tv) hit =
            hit || (cJSON_IsString(t) && kx_strlist_has(tags, t->valuestring));
        if (!hit)
            return false;
    }
    return !(sources && sources->n && !kx_strlist_has(sources, a->source));
}

void kx_alert_free(struct kx_alert *a)
{
    if (!a)
        return;
    cJSON_Delete(a->doc);
    free(a->raw);
    free(a);
}

bool kx_alert_is_audit(const struct kx_alert *a)
{
    return a->source && strcmp(a->source, KX_AUDIT_SOURCE) == 0;
}
