/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_stats.c - the minute ring behind GET /api/v1/stats: bucketing by the
 * alert's own time, clamping, 24 h expiry and ring wrap, the per-minute key
 * cap and the string pool bound ("(other)"), audit records apart, top-N
 * merged across minutes, every parameter error, and the cost of one add.
 * Runs kx_api_stats on a fake hub with a fake clock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stats.h"
#include "util.h"

#define MIN (60 * KX_NSEC_PER_SEC)

static int64_t fake_now;
static int64_t clock_fake(void)
{
    return fake_now;
}

static int64_t T0; /* 2026-11-24T10:00:00Z */

static struct kx_hub hub;

static int setup(void **st)
{
    assert_int_equal(kx_time_parse("2026-11-24T10:00:00Z", &T0), 0);
    fake_now = T0 + 30 * KX_NSEC_PER_SEC;
    hub.stats = kx_stats_new();
    assert_non_null(hub.stats);
    kx_stats_set_clock(hub.stats, clock_fake);
    return 0;
}

static int teardown(void **st)
{
    kx_stats_free(hub.stats);
    hub.stats = NULL;
    return 0;
}

static void add(const char *rule, enum kx_priority p, const char *host, const char *ns,
                const char *pod, int64_t t)
{
    struct kx_alert *a = kx_alert_new(rule, p, "syscall", host, "out", t);

    assert_non_null(a);
    if (ns)
        assert_int_equal(kx_alert_set_str(a, "k8s.ns.name", ns), 0);
    if (pod)
        assert_int_equal(kx_alert_set_str(a, "k8s.pod.name", pod), 0);
    kx_stats_add(hub.stats, a);
    kx_alert_free(a);
}

/* GET /api/v1/stats?query: the status, and the parsed body (caller frees). */
static cJSON *get(const char *query, int *status)
{
    struct kx_http_req req = {.method = "GET", .path = "/api/v1/stats", .query = query};
    struct kx_http_resp r = {.status = 200};
    cJSON *j;

    kx_buf_init(&r.body, 64 << 20);
    kx_api_stats(&hub, &req, &r);
    *status = r.status;
    assert_non_null(r.body.data);
    j = cJSON_Parse(r.body.data);
    if (!j)
        fail_msg("not JSON: %s", r.body.data);
    kx_buf_free(&r.body);
    return j;
}

static cJSON *get_ok(const char *query)
{
    int status;
    cJSON *j = get(query, &status);

    if (status != 200)
        fail_msg("%s: status %d: %s", query, status,
                 cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")));
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

    assert_non_null(s);
    return s;
}

/* top.<dim>[i] */
static const cJSON *top(const cJSON *j, const char *dim, int i)
{
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "top"), dim);

    assert_true(cJSON_IsArray(t));
    return cJSON_GetArrayItem(t, i);
}

static int top_len(const cJSON *j, const char *dim)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "top"), dim));
}

static void test_bucketing(void **st)
{
    add("A", KX_PRI_CRITICAL, "n1", NULL, NULL, T0 - 2 * MIN + 10 * KX_NSEC_PER_SEC);
    add("A", KX_PRI_CRITICAL, "n1", NULL, NULL, T0 - 2 * MIN + 11 * KX_NSEC_PER_SEC);
    add("B", KX_PRI_WARNING, "n2", NULL, NULL, T0 - 2 * MIN + 50 * KX_NSEC_PER_SEC);
    add("C", KX_PRI_NOTICE, "n1", NULL, NULL, T0 - 1);
    add("C", KX_PRI_NOTICE, "n1", NULL, NULL, T0 - MIN);
    add("C", KX_PRI_NOTICE, "n1", NULL, NULL, T0 - MIN + 1);
    add("D", KX_PRI_ERROR, "n3", NULL, NULL, T0 + 5 * KX_NSEC_PER_SEC);

    cJSON *j = get_ok("since=2026-11-24T09:58:00Z&until=2026-11-24T10:01:00Z");
    assert_string_equal(str(j, "since"), "2026-11-24T09:58:00Z");
    assert_string_equal(str(j, "until"), "2026-11-24T10:01:00Z");
    assert_string_equal(str(j, "bucket"), "1m");
    assert_int_equal(num(j, "total"), 7);
    assert_int_equal(num(j, "audit"), 0);
    const cJSON *bp = cJSON_GetObjectItem(j, "by_priority");
    assert_int_equal(cJSON_GetArraySize(bp), KX_PRI_COUNT); /* zeros included, in order */
    assert_string_equal(bp->child->string, "Emergency");
    assert_int_equal(num(bp, "Critical"), 2);
    assert_int_equal(num(bp, "Warning"), 1);
    assert_int_equal(num(bp, "Notice"), 3);
    assert_int_equal(num(bp, "Error"), 1);
    assert_int_equal(num(bp, "Debug"), 0);
    const cJSON *series = cJSON_GetObjectItem(j, "series");
    assert_int_equal(cJSON_GetArraySize(series), 3);
    const cJSON *s0 = cJSON_GetArrayItem(series, 0), *s1 = cJSON_GetArrayItem(series, 1);
    const cJSON *s2 = cJSON_GetArrayItem(series, 2);
    assert_string_equal(str(s0, "time"), "2026-11-24T09:58:00Z");
    assert_int_equal(num(cJSON_GetObjectItem(s0, "counts"), "Critical"), 2);
    assert_int_equal(num(cJSON_GetObjectItem(s0, "counts"), "Warning"), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s0, "counts")), 2); /* no zeros */
    assert_string_equal(str(s1, "time"), "2026-11-24T09:59:00Z");
    assert_int_equal(num(cJSON_GetObjectItem(s1, "counts"), "Notice"), 3);
    assert_string_equal(str(s2, "time"), "2026-11-24T10:00:00Z");
    assert_int_equal(num(cJSON_GetObjectItem(s2, "counts"), "Error"), 1);
    assert_string_equal(str(top(j, "rules", 0), "name"), "C");
    assert_string_equal(str(top(j, "nodes", 0), "name"), "n1");
    assert_int_equal(num(top(j, "nodes", 0), "count"), 5);
    assert_int_equal(top_len(j, "namespaces"), 0); /* no k8s fields, no keys */
    cJSON_Delete(j);

    /* Two-minute buckets start at since; the last one may run past until. */
    j = get_ok("since=2026-11-24T09:58:00Z&until=2026-11-24T10:01:00Z&bucket=2m");
    series = cJSON_GetObjectItem(j, "series");
    assert_int_equal(cJSON_GetArraySize(series), 2);
    assert_int_equal(num(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 0), "counts"), "Notice"),
                     3);
    assert_string_equal(str(cJSON_GetArrayItem(series, 1), "time"), "2026-11-24T10:00:00Z");
    assert_string_equal(str(j, "bucket"), "2m");
    cJSON_Delete(j);

    /* Defaults: the last hour in 60 one-minute buckets up to the current
     * minute, oldest first, empty ones included; top 10. */
    j = get_ok("");
    series = cJSON_GetObjectItem(j, "series");
    assert_int_equal(cJSON_GetArraySize(series), 60);
    assert_string_equal(str(j, "since"), "2026-11-24T09:01:00Z");
    assert_string_equal(str(j, "until"), "2026-11-24T10:01:00Z");
    assert_string_equal(str(cJSON_GetArrayItem(series, 59), "time"), "2026-11-24T10:00:00Z");
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 0), "counts")), 0);
    assert_int_equal(num(j, "total"), 7);
    cJSON_Delete(j);

    /* 24 h defaults to buckets that keep the series at 60 entries. */
    j = get_ok("since=24h");
    assert_string_equal(str(j, "bucket"), "24m");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "series")), 60);
    cJSON_Delete(j);
    j = get_ok("since=24h&bucket=1h30m");
    assert_string_equal(str(j, "bucket"), "1h30m");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "series")), 16);
    cJSON_Delete(j);

    /* A range inside one minute counts that minute. */
    j = get_ok("since=2026-11-24T09:59:10Z&until=2026-11-24T09:59:20Z");
    assert_int_equal(num(j, "total"), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "series")), 1);
    cJSON_Delete(j);
    /* %-encoded values, a "+hh:mm" offset (sent as %2B). */
    j = get_ok("since=2026-11-24T10%3A58%3A00%2B01%3A00&until=2026-11-24T10:59:00%2B01:00");
    assert_string_equal(str(j, "since"), "2026-11-24T09:58:00Z");
    assert_int_equal(num(j, "total"), 3);
    cJSON_Delete(j);
}

static void test_clamp_future(void **st)
{
    add("F", KX_PRI_ALERT, "n1", NULL, NULL, T0 + 3600 * KX_NSEC_PER_SEC);

    /* until in the future stops at the current minute */
    cJSON *j = get_ok("since=1m&until=2026-11-24T12:00:00Z");
    assert_string_equal(str(j, "until"), "2026-11-24T10:01:00Z");
    const cJSON *series = cJSON_GetObjectItem(j, "series");
    assert_int_equal(cJSON_GetArraySize(series), 1);
    assert_string_equal(str(cJSON_GetArrayItem(series, 0), "time"), "2026-11-24T10:00:00Z");
    assert_int_equal(num(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 0), "counts"), "Alert"), 1);
    cJSON_Delete(j);
}

static void test_expiry_and_wrap(void **st)
{
    int64_t oldest = T0 - (KX_STATS_MINUTES - 1) * MIN; /* the ring's first minute */

    add("too-old", KX_PRI_DEBUG, "n1", NULL, NULL, oldest - 1);
    assert_int_equal(kx_stats_dropped(hub.stats), 1);
    add("oldest", KX_PRI_DEBUG, "n1", NULL, NULL, oldest);
    assert_int_equal(kx_stats_dropped(hub.stats), 1);

    cJSON *j = get_ok("since=24h&bucket=1m");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "series")), KX_STATS_MINUTES);
    assert_string_equal(str(j, "since"), "2026-11-23T10:01:00Z");
    assert_int_equal(num(j, "total"), 1);
    assert_int_equal(
        num(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0), "counts"),
            "Debug"),
        1);
    /* Nothing is known from before the hub started (no back-fill yet). */
    assert_string_equal(str(j, "complete_since"), "2026-11-24T10:00:30Z");
    cJSON_Delete(j);
    kx_stats_set_complete_since(hub.stats, T0 - 48 * 60 * MIN);
    j = get_ok("since=24h");
    assert_string_equal(str(j, "complete_since"), "2026-11-23T10:01:00Z"); /* the ring's start */
    cJSON_Delete(j);

    /* A minute later the oldest minute has left the last 24 h. */
    fake_now += MIN;
    j = get_ok("since=24h");
    assert_int_equal(num(j, "total"), 0);
    assert_int_equal(top_len(j, "rules"), 0);
    cJSON_Delete(j);

    /* Ring wrap: the minute 24 h after another lands in its slot and
     * replaces what it held. */
    add("before", KX_PRI_INFORMATIONAL, "n1", "ns", "p", fake_now);
    fake_now += KX_STATS_MINUTES * MIN;
    add("after", KX_PRI_WARNING, "n2", "ns", "q", fake_now);
    j = get_ok("since=24h");
    assert_int_equal(num(j, "total"), 1);
    assert_int_equal(num(cJSON_GetObjectItem(j, "by_priority"), "Informational"), 0);
    assert_int_equal(top_len(j, "rules"), 1);
    assert_string_equal(str(top(j, "rules", 0), "name"), "after");
    assert_string_equal(str(top(j, "pods", 0), "name"), "ns/q");
    cJSON_Delete(j);
}

static void test_key_cap_and_other(void **st)
{
    char rule[32];

    for (int i = 0; i < 200; i++) {
        snprintf(rule, sizeof(rule), "r%03d", i);
        add(rule, KX_PRI_NOTICE, "n1", "shop", "web-1", T0);
    }
    for (int i = 0; i < 5; i++)
        add("r000", KX_PRI_NOTICE, "n1", "shop", "web-1", T0);
    cJSON *j = get_ok("since=1m&top=100");
    assert_int_equal(num(j, "total"), 205);
    assert_int_equal(top_len(j, "rules"), 100);
    /* 128 keys kept in the minute; the other 72 rules counted together. */
    assert_string_equal(str(top(j, "rules", 0), "name"), KX_STATS_OTHER);
    assert_int_equal(num(top(j, "rules", 0), "count"), 200 - KX_STATS_KEYS);
    assert_string_equal(str(top(j, "rules", 1), "name"), "r000");
    assert_int_equal(num(top(j, "rules", 1), "count"), 6);
    assert_string_equal(str(top(j, "rules", 2), "name"), "r001"); /* ties by name */
    assert_string_equal(str(top(j, "pods", 0), "name"), "shop/web-1");
    assert_int_equal(num(top(j, "pods", 0), "count"), 205);
    assert_string_equal(str(top(j, "namespaces", 0), "name"), "shop");
    cJSON_Delete(j);

    /* Long keys are cut at KX_STATS_KEY_MAX bytes without splitting UTF-8. */
    char longrule[400];
    memset(longrule, 'x', KX_STATS_KEY_MAX - 1);
    strcpy(longrule + KX_STATS_KEY_MAX - 1, "\xc3\xa9tail"); /* é straddles the cut */
    add(longrule, KX_PRI_NOTICE, "n1", NULL, NULL, T0 - MIN);
    j = get_ok("since=2m&until=1m&top=1");
    assert_int_equal(strlen(str(top(j, "rules", 0), "name")), KX_STATS_KEY_MAX - 1);
    cJSON_Delete(j);
}

/* All minutes together hold at most KX_STATS_STRINGS keys; more go to
 * "(other)" until old minutes expire and give theirs back. */
static void test_string_pool_bound(void **st)
{
    const int minutes = KX_STATS_STRINGS / KX_STATS_KEYS;
    char rule[32];

    /* the minutes before now full; the current one empty */
    for (int m = 0; m < minutes; m++)
        for (int k = 0; k < KX_STATS_KEYS; k++) {
            snprintf(rule, sizeof(rule), "m%d-k%d", m, k);
            add(rule, KX_PRI_NOTICE, "", NULL, NULL, T0 - (minutes - m) * MIN);
        }
    add("fresh", KX_PRI_NOTICE, "", NULL, NULL, T0);
    cJSON *j = get_ok("since=1m&top=1");
    assert_string_equal(str(top(j, "rules", 0), "name"), KX_STATS_OTHER);
    assert_int_equal(num(top(j, "rules", 0), "count"), 1);
    cJSON_Delete(j);

    /* The first minute expires: its 128 strings return to the pool. */
    fake_now += (KX_STATS_MINUTES - minutes) * MIN;
    add("fresh", KX_PRI_NOTICE, "", NULL, NULL, fake_now);
    j = get_ok("since=1m&top=1");
    assert_string_equal(str(top(j, "rules", 0), "name"), "fresh");
    cJSON_Delete(j);
}

static void test_audit_apart(void **st)
{
    struct kx_alert *a = kx_alert_new("Klaxon responder k8s", KX_PRI_NOTICE, KX_AUDIT_SOURCE,
                                      "hub-1", "acted", T0);
    assert_non_null(a);
    kx_stats_add(hub.stats, a);
    kx_stats_add(hub.stats, a);
    kx_alert_free(a);
    add("real", KX_PRI_NOTICE, "n1", NULL, NULL, T0);

    cJSON *j = get_ok("since=1m");
    assert_int_equal(num(j, "audit"), 2);
    assert_int_equal(num(j, "total"), 1);
    assert_int_equal(top_len(j, "rules"), 1);
    assert_string_equal(str(top(j, "rules", 0), "name"), "real");
    assert_int_equal(top_len(j, "nodes"), 1);
    cJSON_Delete(j);
}

static void test_top_merge(void **st)
{
    for (int i = 0; i < 3; i++) {
        add("A", KX_PRI_WARNING, "n1", "ns1", "a", T0 - 10 * MIN);
        add("A", KX_PRI_WARNING, "n2", "ns2", "a", T0 - 5 * MIN);
    }
    for (int i = 0; i < 5; i++)
        add("B", KX_PRI_WARNING, "n3", "ns1", "b", T0 - 10 * MIN);
    add("C", KX_PRI_WARNING, "n3", "ns3", "c", T0 - 30 * MIN); /* outside since=20m */

    cJSON *j = get_ok("since=20m&top=2");
    assert_int_equal(num(j, "total"), 11);
    assert_int_equal(top_len(j, "rules"), 2);
    assert_string_equal(str(top(j, "rules", 0), "name"), "A"); /* 3 + 3 beats 5 */
    assert_int_equal(num(top(j, "rules", 0), "count"), 6);
    assert_string_equal(str(top(j, "rules", 1), "name"), "B");
    assert_string_equal(str(top(j, "nodes", 0), "name"), "n3");
    assert_int_equal(num(top(j, "nodes", 0), "count"), 5);
    assert_string_equal(str(top(j, "nodes", 1), "name"), "n1"); /* 3 = 3: by name */
    assert_string_equal(str(top(j, "namespaces", 0), "name"), "ns1");
    assert_int_equal(num(top(j, "namespaces", 0), "count"), 8);
    assert_string_equal(str(top(j, "pods", 0), "name"), "ns1/b");
    cJSON_Delete(j);
    j = get_ok("since=1h&top=1");
    assert_int_equal(top_len(j, "rules"), 1);
    assert_int_equal(num(j, "total"), 12);
    cJSON_Delete(j);
}

static void test_param_errors(void **st)
{
    static const struct {
        const char *query, *says;
    } bad[] = {
        {"foo=1", "unknown parameter \"foo\""},
        {"since=1h&limit=5", "unknown parameter"},
        {"since=abc", "since: \"abc\": want an RFC 3339 time"},
        {"until=yesterday", "until:"},
        {"since=2026-13-01T00:00:00Z", "since:"},
        {"since=-5m", "since:"},
        {"since=1h&until=2h", "since must be before until"},
        {"since=2026-11-24T10:00:00Z&until=2026-11-24T10:00:00Z", "since must be before until"},
        {"since=48h&until=25h", "outside the last 24 h"},
        {"since=2026-11-25T10:00:00Z&until=2026-11-25T11:00:00Z", "outside the last 24 h"},
        {"bucket=90s", "bucket: \"90s\": want a whole number of minutes"},
        {"bucket=0", "bucket:"},
        {"bucket=0m", "bucket:"},
        {"bucket=25h", "bucket:"},
        {"bucket=x", "bucket:"},
        {"bucket=1h30", "bucket:"},
        {"top=0", "top: \"0\": want 1..100"},
        {"top=101", "top:"},
        {"top=abc", "top:"},
        {"top=-1", "top:"},
        {"top=1.5", "top:"},
        {"since=1h&since=2h", "parameter since given twice"},
        {"since=", "since: empty value"},
        {"since", "since: empty value"},
        {"since=%zz", "badly %-encoded"},
        {"since=%4", "badly %-encoded"},
        {"since=1h%00", "badly %-encoded"},
        {"since=1111111111111111111111111111111111111111111111111111111111111111111h",
         "value too long"},
    };

    for (size_t i = 0; i < KX_ARRAY_SIZE(bad); i++) {
        int status;
        cJSON *j = get(bad[i].query, &status);
        const char *e = cJSON_GetStringValue(cJSON_GetObjectItem(j, "error"));

        if (status != 400 || !e || !strstr(e, bad[i].says))
            fail_msg("%s: got %d %s, want 400 saying %s", bad[i].query, status, e ? e : "-",
                     bad[i].says);
        assert_int_equal(cJSON_GetArraySize(j), 1); /* just {"error":...} */
        cJSON_Delete(j);
    }
    /* Empty pieces are ignored; every parameter at once is fine. */
    cJSON_Delete(get_ok("&since=2h&&until=1h&bucket=5m&top=100&"));
}

static void test_no_stats(void **st)
{
    struct kx_stats *s = hub.stats;
    int status;

    hub.stats = NULL;
    cJSON *j = get("", &status);
    hub.stats = s;
    assert_int_equal(status, 503);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
}

/* What kx_stats_add costs on the live feed's thread: a realistic spread of
 * keys, most already known to their minute. Prints ns per call. */
static void test_add_cost(void **st)
{
    enum { NALERTS = 512, LOOPS = 2000 };
    struct kx_alert *a[NALERTS];
    char rule[64], host[32], ns[32], pod[32];

    kx_stats_set_clock(hub.stats, NULL); /* the real clock, as in the hub */
    for (int i = 0; i < NALERTS; i++) {
        snprintf(rule, sizeof(rule), "Some detection rule number %d", i % 40);
        snprintf(host, sizeof(host), "node-%d", i % 25);
        snprintf(ns, sizeof(ns), "team-%d", i % 12);
        snprintf(pod, sizeof(pod), "web-%d", i % 90);
        a[i] = kx_alert_new(rule, (enum kx_priority)(i % KX_PRI_COUNT), "syscall", host, "o",
                            kx_now_ns());
        assert_non_null(a[i]);
        assert_int_equal(kx_alert_set_str(a[i], "proc.name", "bash"), 0);
        assert_int_equal(kx_alert_set_str(a[i], "container.id", "3ad7b26ded6d"), 0);
        assert_int_equal(kx_alert_set_str(a[i], "k8s.ns.name", ns), 0);
        assert_int_equal(kx_alert_set_str(a[i], "k8s.pod.name", pod), 0);
    }
    int64_t t0 = kx_monotonic_ns();
    for (int l = 0; l < LOOPS; l++)
        for (int i = 0; i < NALERTS; i++)
            kx_stats_add(hub.stats, a[i]);
    int64_t ns_per = (kx_monotonic_ns() - t0) / (NALERTS * LOOPS);
    printf("kx_stats_add: %lld ns per call (%d calls)\n", (long long)ns_per, NALERTS * LOOPS);
    assert_true(ns_per < 10000); /* 20k alerts/s leaves 50 us each; we want far below */
    for (int i = 0; i < NALERTS; i++)
        kx_alert_free(a[i]);

    t0 = kx_monotonic_ns();
    cJSON_Delete(get_ok("since=24h&top=100"));
    printf("GET /api/v1/stats?since=24h&top=100: %lld us\n",
           (long long)((kx_monotonic_ns() - t0) / 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bucketing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clamp_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_cap_and_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_pool_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_top_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
