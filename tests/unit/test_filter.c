/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_filter.c - the alert filter of the query API and the WebSocket feed
 * (hub/filter.c): every parameter, every error, %-encoding, defaults, the
 * JSON form, printing it back, and what matches.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "util.h"

#define NOW (1795521600LL * KX_NSEC_PER_SEC) /* 2026-11-24T12:00:00Z */
#define HOUR (3600 * KX_NSEC_PER_SEC)
#define UUID1 "5b8c0000-0000-4000-8000-000000000001"

static const char *alert_json =
    "{\"uuid\":\"" UUID1 "\",\"time\":\"2026-11-22T10:01:02.123Z\","
    "\"priority\":\"Warning\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"A shell was spawned (user=root)\","
    "\"tags\":[\"container\",\"shell\",\"T1059\"],"
    "\"output_fields\":{\"proc.name\":\"bash\",\"proc.pid\":4242,\"k8s.ns.name\":\"shop\","
    "\"k8s.pod.name\":\"web-1\",\"fd.ok\":true,\"user.name\":null,\"ratio\":0.5}}";

static const char *audit_json =
    "{\"uuid\":\"6b8c0000-0000-4000-8000-000000000002\",\"time\":\"2026-11-22T10:01:03Z\","
    "\"priority\":\"Notice\",\"rule\":\"Klaxon responder kill-shell\",\"source\":\"klaxon_audit\","
    "\"hostname\":\"node-a\",\"output\":\"kill-shell dry_run: pod shop/web-1\","
    "\"tags\":[\"klaxon_audit\"],"
    "\"output_fields\":{\"klaxon.responder\":\"kill-shell\",\"klaxon.result\":\"dry_run\","
    "\"klaxon.alert_uuid\":\"" UUID1 "\",\"k8s.ns.name\":\"shop\"}}";

static struct kx_alert *parse(const char *json)
{
    char err[256];
    struct kx_alert *a = kx_alert_parse(json, strlen(json), err, sizeof(err));

    assert_non_null(a);
    return a;
}

/* Parses query for use; asserts success. */
static void ok_q(struct kx_filter *f, const char *query, enum kx_filter_use use)
{
    char err[256] = "";
    int rc = kx_filter_from_query(f, query, use, NOW, err, sizeof(err));

    if (rc != 0)
        fail_msg("query \"%s\": %d %s", query, rc, err);
}

/* Parses query for use; asserts -EINVAL with exactly the message want. */
static void bad_q(const char *query, enum kx_filter_use use, const char *want)
{
    struct kx_filter f;
    char err[256] = "";
    int rc = kx_filter_from_query(&f, query, use, NOW, err, sizeof(err));

    if (rc != -EINVAL || strcmp(err, want) != 0)
        fail_msg("query \"%s\": rc %d, err \"%s\", want \"%s\"", query, rc, err, want);
    /* left empty: nothing to free, and freeing is harmless */
    assert_null(f.rules.v);
    assert_null(f.text);
    kx_filter_free(&f);
}

/* Does the filter from query (for use) match the alert in json? */
static bool q_match(const char *query, enum kx_filter_use use, const char *json)
{
    struct kx_filter f;
    struct kx_alert *a = parse(json);
    bool m;

    ok_q(&f, query, use);
    m = kx_filter_match(&f, a);
    kx_filter_free(&f);
    kx_alert_free(a);
    return m;
}

static void test_defaults(void **state)
{
    struct kx_filter f;

    (void)state;
    ok_q(&f, "", KX_FILTER_Q_ALERTS);
    assert_int_equal(f.limit, 100);
    assert_int_equal(f.kinds, KX_FILTER_ALERT);
    assert_true(f.since == NOW - 24 * HOUR);
    assert_true(f.until == 0);
    assert_true(f.cursor == 0);
    assert_false(f.has_priority);
    assert_null(f.text);
    assert_int_equal(f.rules.n + f.tags.n + f.nodes.n + f.namespaces.n + f.pods.n + f.sources.n, 0);
    kx_filter_free(&f);

    ok_q(&f, NULL, KX_FILTER_Q_AUDIT);
    assert_int_equal(f.kinds, KX_FILTER_AUDIT);
    assert_true(f.since == NOW - 24 * HOUR);
    assert_int_equal(f.limit, 100);
    kx_filter_free(&f);

    ok_q(&f, "", KX_FILTER_Q_WS);
    assert_int_equal(f.kinds, KX_FILTER_ALERT | KX_FILTER_AUDIT);
    assert_true(f.since == 0 && f.until == 0);
    kx_filter_free(&f);
}

static void test_every_parameter(void **state)
{
    struct kx_filter f;

    (void)state;
    ok_q(&f,
         "since=2026-11-24T10:00:00Z&until=2026-11-24T11:00:00.5%2B01:00&priority=Warning"
         "&rule=*shell*&rule=Read+sensitive+file&tag=T1059&node=node-*&namespace=shop"
         "&namespace=kube-*&pod=web-?&source=syscall&source=k8s_audit&q=user%3Droot"
         "&limit=250&cursor=18446744073709551615",
         KX_FILTER_Q_ALERTS);
    int64_t since, until;
    assert_int_equal(kx_time_parse("2026-11-24T10:00:00Z", &since), 0);
    assert_int_equal(kx_time_parse("2026-11-24T11:00:00.5+01:00", &until), 0);
    assert_true(f.since == since);
    assert_true(f.until == until);
    assert_true(f.has_priority);
    assert_int_equal(f.min_priority, KX_PRI_WARNING);
    assert_int_equal(f.rules.n, 2);
    assert_string_equal(f.rules.v[0], "*shell*");
    assert_string_equal(f.rules.v[1], "Read sensitive file");
    assert_int_equal(f.tags.n, 1);
    assert_string_equal(f.tags.v[0], "T1059");
    assert_string_equal(f.nodes.v[0], "node-*");
    assert_int_equal(f.namespaces.n, 2);
    assert_string_equal(f.namespaces.v[1], "kube-*");
    assert_string_equal(f.pods.v[0], "web-?");
    assert_int_equal(f.sources.n, 2);
    assert_string_equal(f.text, "user=root");
    assert_int_equal(f.limit, 250);
    assert_true(f.cursor == UINT64_MAX);
    kx_filter_free(&f);

    /* durations back from now; priority spellings */
    ok_q(&f, "since=1h30m&until=15m&priority=warn", KX_FILTER_Q_ALERTS);
    assert_true(f.since == NOW - 90 * 60 * KX_NSEC_PER_SEC);
    assert_true(f.until == NOW - 15 * 60 * KX_NSEC_PER_SEC);
    kx_filter_free(&f);
    ok_q(&f, "since=2h&until=1h&priority=INFO&limit=1&cursor=7", KX_FILTER_Q_ALERTS);
    assert_true(f.since == NOW - 2 * HOUR && f.until == NOW - HOUR);
    assert_int_equal(f.min_priority, KX_PRI_INFORMATIONAL);
    assert_int_equal(f.limit, 1);
    assert_true(f.cursor == 7);
    kx_filter_free(&f);
    ok_q(&f, "since=3600&limit=1000", KX_FILTER_Q_ALERTS); /* a bare number is seconds */
    assert_true(f.since == NOW - HOUR);
    assert_int_equal(f.limit, 1000);
    kx_filter_free(&f);
    ok_q(&f, "since=500000h", KX_FILTER_Q_ALERTS); /* before the epoch: from its start */
    assert_true(f.since == 1);
    kx_filter_free(&f);

    /* audit */
    ok_q(&f,
         "responder=kill-*&responder=isolate&result=acted&result=dry_run&result=skipped"
         "&result=failed&alert_uuid=" UUID1 "&since=1h&limit=5&cursor=10",
         KX_FILTER_Q_AUDIT);
    assert_int_equal(f.responders.n, 2);
    assert_int_equal(f.results.n, 4);
    assert_string_equal(f.alert_uuid, UUID1);
    assert_int_equal(f.kinds, KX_FILTER_AUDIT);
    assert_true(f.since == NOW - HOUR);
    kx_filter_free(&f);

    /* ws: kind, access_token ignored */
    ok_q(&f, "kind=alert&access_token=s3cret&access_token=again&priority=critical&q=x",
         KX_FILTER_Q_WS);
    assert_int_equal(f.kinds, KX_FILTER_ALERT);
    assert_int_equal(f.min_priority, KX_PRI_CRITICAL);
    kx_filter_free(&f);
    ok_q(&f, "kind=audit", KX_FILTER_Q_WS);
    assert_int_equal(f.kinds, KX_FILTER_AUDIT);
    kx_filter_free(&f);
    ok_q(&f, "kind=all&rule=a&tag=b&node=c&namespace=d&pod=e&source=f", KX_FILTER_Q_WS);
    assert_int_equal(f.kinds, KX_FILTER_ALERT | KX_FILTER_AUDIT);
    assert_int_equal(f.sources.n, 1);
    kx_filter_free(&f);
}

static void test_encoding(void **state)
{
    struct kx_filter f;

    (void)state;
    /* what lib/http.c hands over: %-encoded, '+' a space too, either hex case */
    ok_q(&f, "rule=a%26c%20d&rule=x+y&rule=%2b%2B&rule=%c3%A9t%C3%A9&q=100%25", KX_FILTER_Q_ALERTS);
    assert_string_equal(f.rules.v[0], "a&c d");
    assert_string_equal(f.rules.v[1], "x y");
    assert_string_equal(f.rules.v[2], "++");
    assert_string_equal(f.rules.v[3], "\xc3\xa9t\xc3\xa9");
    assert_string_equal(f.text, "100%");
    kx_filter_free(&f);

    /* encoded names; empty pieces; a value with '=' in it */
    ok_q(&f, "&&%72ule=a=b&&limit=3&", KX_FILTER_Q_ALERTS);
    assert_string_equal(f.rules.v[0], "a=b");
    assert_int_equal(f.limit, 3);
    kx_filter_free(&f);

    /* an empty value (an empty form field) is no condition, not an error */
    ok_q(&f, "priority=&rule=&q=&since=&until=&limit=&cursor=&tag", KX_FILTER_Q_ALERTS);
    assert_false(f.has_priority);
    assert_int_equal(f.rules.n + f.tags.n, 0);
    assert_null(f.text);
    assert_int_equal(f.limit, 100);
    assert_true(f.since == NOW - 24 * HOUR); /* the default */
    kx_filter_free(&f);
    /* ... nor does it count as the one use of a single parameter */
    ok_q(&f, "limit=&limit=5", KX_FILTER_Q_ALERTS);
    assert_int_equal(f.limit, 5);
    kx_filter_free(&f);

    bad_q("rule=%zz", KX_FILTER_Q_ALERTS, "parameter \"rule\": bad %-encoding");
    bad_q("rule=abc%4", KX_FILTER_Q_ALERTS, "parameter \"rule\": bad %-encoding");
    bad_q("rule=abc%", KX_FILTER_Q_ALERTS, "parameter \"rule\": bad %-encoding");
    bad_q("rule=a%00b", KX_FILTER_Q_ALERTS, "parameter \"rule\": bad %-encoding");
    bad_q("ru%xxle=a", KX_FILTER_Q_ALERTS, "bad %-encoding in a parameter name");
    bad_q("r%00ule=a", KX_FILTER_Q_ALERTS, "bad %-encoding in a parameter name");
}

static void test_errors(void **state)
{
    char long_value[1100];

    (void)state;
    bad_q("foo=1", KX_FILTER_Q_ALERTS, "unknown parameter \"foo\"");
    bad_q("limit=5&Rule=x", KX_FILTER_Q_ALERTS, "unknown parameter \"Rule\"");
    bad_q("%0A=1", KX_FILTER_Q_ALERTS, "unknown parameter \"?\"");
    bad_q("since=1h", KX_FILTER_Q_WS, "parameter \"since\" does not apply to /ws");
    bad_q("limit=1", KX_FILTER_Q_WS, "parameter \"limit\" does not apply to /ws");
    bad_q("responder=x", KX_FILTER_Q_ALERTS,
          "parameter \"responder\" does not apply to /api/v1/alerts");
    bad_q("kind=alert", KX_FILTER_Q_ALERTS, "parameter \"kind\" does not apply to /api/v1/alerts");
    bad_q("access_token=x", KX_FILTER_Q_ALERTS,
          "parameter \"access_token\" does not apply to /api/v1/alerts");
    bad_q("rule=x", KX_FILTER_Q_AUDIT, "parameter \"rule\" does not apply to /api/v1/audit");
    bad_q("priority=loud", KX_FILTER_Q_ALERTS,
          "priority: unknown priority \"loud\" (want emergency, alert, critical, error, "
          "warning, notice, informational or debug)");
    bad_q("priority=warning&priority=error", KX_FILTER_Q_ALERTS,
          "parameter \"priority\" given more than once");
    bad_q("since=1h&since=2h", KX_FILTER_Q_ALERTS, "parameter \"since\" given more than once");
    bad_q("q=a&q=b", KX_FILTER_Q_WS, "parameter \"q\" given more than once");
    bad_q("since=yesterday", KX_FILTER_Q_ALERTS,
          "since: want an RFC 3339 time or a duration like 15m, got \"yesterday\"");
    bad_q("until=2026-13-01T00:00:00Z", KX_FILTER_Q_AUDIT,
          "until: want an RFC 3339 time or a duration like 15m, got \"2026-13-01T00:00:00Z\"");
    bad_q("since=-5m", KX_FILTER_Q_ALERTS,
          "since: want an RFC 3339 time or a duration like 15m, got \"-5m\"");
    bad_q("since=1h&until=2h", KX_FILTER_Q_ALERTS, "since is after until");
    bad_q("until=48h", KX_FILTER_Q_ALERTS, "since is after until (since is 24h ago unless given)");
    bad_q("limit=0", KX_FILTER_Q_ALERTS, "limit: want a number from 1 to 1000, got \"0\"");
    bad_q("limit=1001", KX_FILTER_Q_ALERTS, "limit: want a number from 1 to 1000, got \"1001\"");
    bad_q("limit=ten", KX_FILTER_Q_AUDIT, "limit: want a number from 1 to 1000, got \"ten\"");
    bad_q("limit=-1", KX_FILTER_Q_ALERTS, "limit: want a number from 1 to 1000, got \"-1\"");
    bad_q("cursor=0", KX_FILTER_Q_ALERTS,
          "cursor: want the \"next\" of a previous page, got \"0\"");
    bad_q("cursor=abc", KX_FILTER_Q_ALERTS,
          "cursor: want the \"next\" of a previous page, got \"abc\"");
    bad_q("cursor=18446744073709551616", KX_FILTER_Q_ALERTS,
          "cursor: want the \"next\" of a previous page, got \"18446744073709551616\"");
    bad_q("cursor=12+", KX_FILTER_Q_AUDIT,
          "cursor: want the \"next\" of a previous page, got \"12 \"");
    bad_q("result=done", KX_FILTER_Q_AUDIT,
          "result: want acted, dry_run, skipped or failed, got \"done\"");
    bad_q("alert_uuid=5b8c", KX_FILTER_Q_AUDIT,
          "alert_uuid: want a UUID (8-4-4-4-12 hex digits), got \"5b8c\"");
    bad_q("alert_uuid=" UUID1 "&alert_uuid=" UUID1, KX_FILTER_Q_AUDIT,
          "parameter \"alert_uuid\" given more than once");
    bad_q("kind=alerts", KX_FILTER_Q_WS, "kind: want alert, audit or all, got \"alerts\"");
    /* a long value is quoted back cut short and printable */
    bad_q("priority=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%0A", KX_FILTER_Q_WS,
          "priority: unknown priority \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (want "
          "emergency, alert, critical, error, warning, notice, informational or debug)");

    /* bounded: one value, and the values of one list */
    memset(long_value, 'x', sizeof(long_value));
    memcpy(long_value, "rule=", 5);
    long_value[sizeof(long_value) - 1] = '\0';
    bad_q(long_value, KX_FILTER_Q_ALERTS, "rule: longer than 1024 bytes");
    struct kx_buf b;
    kx_buf_init(&b, 4096);
    for (int i = 0; i < 65; i++)
        kx_buf_printf(&b, "tag=t%d&", i);
    bad_q(b.data, KX_FILTER_Q_ALERTS, "tag: more than 64 values");
    kx_buf_free(&b);
}

static void test_json(void **state)
{
    struct kx_filter f;
    char err[256] = "";
    cJSON *o;

    (void)state;
    o = cJSON_Parse("{\"priority\":\"warning\",\"rule\":[\"*shell*\",\"\",\"x\"],\"tag\":[],"
                    "\"node\":\"node-a\",\"namespace\":null,\"pod\":[\"web-*\"],\"source\":[],"
                    "\"q\":\"\",\"kind\":\"alert\"}");
    assert_int_equal(kx_filter_from_json(&f, o, err, sizeof(err)), 0);
    assert_true(f.has_priority);
    assert_int_equal(f.min_priority, KX_PRI_WARNING);
    assert_int_equal(f.rules.n, 2); /* "" is no condition */
    assert_string_equal(f.nodes.v[0], "node-a");
    assert_int_equal(f.namespaces.n, 0);
    assert_string_equal(f.pods.v[0], "web-*");
    assert_null(f.text);
    assert_int_equal(f.kinds, KX_FILTER_ALERT);
    assert_true(f.since == 0 && f.until == 0);
    assert_int_equal(f.limit, 100);
    kx_filter_free(&f);
    cJSON_Delete(o);

    /* an empty object: everything, both kinds */
    o = cJSON_Parse("{}");
    assert_int_equal(kx_filter_from_json(&f, o, err, sizeof(err)), 0);
    assert_int_equal(f.kinds, KX_FILTER_ALERT | KX_FILTER_AUDIT);
    kx_filter_free(&f);
    cJSON_Delete(o);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"since\":\"1h\"}", "filter: unknown key \"since\""},
        {"{\"access_token\":\"x\"}", "filter: unknown key \"access_token\""},
        {"{\"rules\":[]}", "filter: unknown key \"rules\""},
        {"{\"rule\":5}", "rule: want a string or an array of strings"},
        {"{\"rule\":[\"a\",5]}", "rule: want strings only"},
        {"{\"priority\":[\"warning\"]}", "priority: want a string"},
        {"{\"q\":true}", "q: want a string"},
        {"{\"priority\":\"loud\"}",
         "priority: unknown priority \"loud\" (want emergency, alert, critical, error, warning, "
         "notice, informational or debug)"},
        {"{\"kind\":\"both\"}", "kind: want alert, audit or all, got \"both\""},
        {"{\"q\":\"a\",\"q\":\"b\"}", "parameter \"q\" given more than once"},
        {"[]", "filter: want an object"},
        {"\"rule\"", "filter: want an object"},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(bad); i++) {
        o = cJSON_Parse(bad[i].json);
        assert_non_null(o);
        err[0] = '\0';
        assert_int_equal(kx_filter_from_json(&f, o, err, sizeof(err)), -EINVAL);
        if (strcmp(err, bad[i].err) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, err, bad[i].err);
        assert_null(f.rules.v);
        kx_filter_free(&f);
        cJSON_Delete(o);
    }
    assert_int_equal(kx_filter_from_json(&f, NULL, err, sizeof(err)), -EINVAL);
}

static void test_to_json(void **state)
{
    struct kx_filter f, g;
    char err[256];
    cJSON *o, *o2;
    char *s, *s2;

    (void)state;
    ok_q(&f, "", KX_FILTER_Q_WS);
    o = kx_filter_to_json(&f);
    s = cJSON_PrintUnformatted(o);
    assert_string_equal(s, "{\"priority\":\"\",\"rule\":[],\"tag\":[],\"node\":[],\"namespace\":[],"
                           "\"pod\":[],\"source\":[],\"q\":\"\",\"kind\":\"all\"}");
    free(s);
    cJSON_Delete(o);
    kx_filter_free(&f);

    /* a /ws filter prints to what reads back to the same filter */
    ok_q(&f,
         "priority=ERROR&rule=*sh*&rule=b&tag=t&node=n*&namespace=shop&pod=web-1"
         "&source=syscall&q=Root+Shell&kind=audit",
         KX_FILTER_Q_WS);
    o = kx_filter_to_json(&f);
    s = cJSON_PrintUnformatted(o);
    assert_string_equal(s, "{\"priority\":\"error\",\"rule\":[\"*sh*\",\"b\"],\"tag\":[\"t\"],"
                           "\"node\":[\"n*\"],\"namespace\":[\"shop\"],\"pod\":[\"web-1\"],"
                           "\"source\":[\"syscall\"],\"q\":\"Root Shell\",\"kind\":\"audit\"}");
    assert_int_equal(kx_filter_from_json(&g, o, err, sizeof(err)), 0);
    o2 = kx_filter_to_json(&g);
    s2 = cJSON_PrintUnformatted(o2);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    cJSON_Delete(o);
    cJSON_Delete(o2);
    kx_filter_free(&f);
    kx_filter_free(&g);

    /* audit parameters and times only when set */
    ok_q(&f,
         "responder=kill&result=acted&alert_uuid=" UUID1 "&since=2026-11-24T10:00:00Z"
         "&until=2026-11-24T11:00:00Z",
         KX_FILTER_Q_AUDIT);
    o = kx_filter_to_json(&f);
    s = cJSON_PrintUnformatted(o);
    assert_non_null(strstr(s, "\"kind\":\"audit\",\"responder\":[\"kill\"],\"result\":[\"acted\"],"
                              "\"alert_uuid\":\"" UUID1 "\","
                              "\"since\":\"2026-11-24T10:00:00.000000000Z\","
                              "\"until\":\"2026-11-24T11:00:00.000000000Z\"}"));
    free(s);
    cJSON_Delete(o);
    kx_filter_free(&f);
}

static void test_match(void **state)
{
    const int A = KX_FILTER_Q_ALERTS, W = KX_FILTER_Q_WS, U = KX_FILTER_Q_AUDIT;

    (void)state;
    /* the sample is a Warning from 2026-11-22T10:01:02.123Z */
    assert_true(q_match("since=2026-11-22T10:00:00Z", A, alert_json));
    assert_true(q_match("", W, alert_json));
    assert_false(q_match("", A, alert_json)); /* older than the default 24 h */

    /* priority: at least this severe */
    assert_true(q_match("priority=warning", W, alert_json));
    assert_true(q_match("priority=debug", W, alert_json));
    assert_false(q_match("priority=error", W, alert_json));
    assert_false(q_match("priority=emergency", W, alert_json));

    /* time: inclusive at both ends */
    assert_true(
        q_match("since=2026-11-22T10:01:02.123Z&until=2026-11-22T10:01:02.123Z", A, alert_json));
    assert_false(q_match("since=2026-11-22T10:01:02.124Z", A, alert_json));
    assert_false(
        q_match("since=2026-11-22T00:00:00Z&until=2026-11-22T10:01:02.122Z", A, alert_json));

    /* rule: globs, any of; case matters as in outputs' route filters */
    assert_true(q_match("rule=*shell*", W, alert_json));
    assert_true(q_match("rule=nope&rule=Terminal+shell+in+container", W, alert_json));
    assert_false(q_match("rule=*Shell*", W, alert_json));
    assert_false(q_match("rule=Terminal", W, alert_json));
    /* tag and source: exact, any of */
    assert_true(q_match("tag=nope&tag=shell", W, alert_json));
    assert_false(q_match("tag=she*", W, alert_json));
    assert_true(q_match("source=k8s_audit&source=syscall", W, alert_json));
    assert_false(q_match("source=k8s_audit", W, alert_json));
    /* node, namespace, pod: globs; a missing field matches no glob */
    assert_true(q_match("node=node-?", W, alert_json));
    assert_false(q_match("node=node-b", W, alert_json));
    assert_true(q_match("namespace=sh*&pod=web-[0-9]", W, alert_json));
    assert_false(q_match("namespace=kube-system", W, alert_json));
    assert_false(q_match("pod=api-*", W, alert_json));
    const char *bare = "{\"time\":\"2026-11-22T10:01:02Z\",\"priority\":\"Error\",\"rule\":\"r\"}";
    assert_false(q_match("namespace=*", W, bare));
    assert_false(q_match("pod=*", W, bare));
    assert_true(q_match("node=*", W, bare)); /* hostname "" */
    assert_false(q_match("tag=x", W, bare));

    /* q: case-insensitive in rule, output, output field values (numbers, bools too) */
    assert_true(q_match("q=TERMINAL", W, alert_json));
    assert_true(q_match("q=was+spawned", W, alert_json));
    assert_true(q_match("q=BASH", W, alert_json));
    assert_true(q_match("q=424", W, alert_json));
    assert_true(q_match("q=0.5", W, alert_json));
    assert_true(q_match("q=true", W, alert_json));
    assert_false(q_match("q=proc.name", W, alert_json)); /* keys are not searched */
    assert_false(q_match("q=null", W, alert_json));
    assert_false(q_match("q=T1059", W, alert_json)); /* nor tags */
    assert_false(q_match("q=zsh", W, alert_json));

    /* kinds */
    assert_true(q_match("kind=audit", W, audit_json));
    assert_false(q_match("kind=alert", W, audit_json));
    assert_false(q_match("kind=audit", W, alert_json));
    assert_false(q_match("since=2026-11-22T10:00:00Z", A, audit_json));
    assert_true(q_match("since=2026-11-22T10:00:00Z", U, audit_json));
    assert_false(q_match("since=2026-11-22T10:00:00Z", U, alert_json));

    /* audit fields */
    assert_true(q_match("since=2026-11-22T10:00:00Z&responder=kill-*&result=acted&result=dry_run"
                        "&alert_uuid=" UUID1,
                        U, audit_json));
    assert_true(
        q_match("since=2026-11-22T10:00:00Z&alert_uuid=5B8C0000-0000-4000-8000-000000000001", U,
                audit_json));
    assert_false(q_match("since=2026-11-22T10:00:00Z&responder=isolate", U, audit_json));
    assert_false(q_match("since=2026-11-22T10:00:00Z&result=acted", U, audit_json));
    assert_false(
        q_match("since=2026-11-22T10:00:00Z&alert_uuid=6b8c0000-0000-4000-8000-000000000002", U,
                audit_json));

    /* everything ANDed */
    assert_true(q_match("priority=warning&rule=*shell*&tag=shell&node=node-a&namespace=shop"
                        "&pod=web-1&source=syscall&q=root&kind=alert",
                        W, alert_json));
    assert_false(q_match("priority=warning&rule=*shell*&tag=shell&node=node-a&namespace=shop"
                         "&pod=web-1&source=syscall&q=root&kind=audit",
                         W, alert_json));

    /* a zeroed filter matches everything */
    struct kx_filter z = {0};
    struct kx_alert *a = parse(alert_json), *b = parse(audit_json);
    assert_true(kx_filter_match(&z, a));
    assert_true(kx_filter_match(&z, b));
    kx_alert_free(a);
    kx_alert_free(b);
}

static void test_raw_checks(void **state)
{
    struct kx_filter f;
    const char *raw = alert_json;
    size_t n = strlen(raw);

    (void)state;
    assert_true(kx_filter_raw_has(raw, n, "terminal SHELL"));
    assert_true(kx_filter_raw_has(raw, n, ""));
    assert_true(kx_filter_raw_has("abC", 3, "C"));
    assert_false(kx_filter_raw_has("abC", 2, "C"));
    assert_false(kx_filter_raw_has("ab", 2, "abc"));
    assert_true(kx_filter_raw_has("aaab", 4, "AAB"));
    assert_false(kx_filter_raw_has(raw, n, "zsh"));

    /* may_match_raw never says no to what would match */
    ok_q(&f, "q=SHELL", KX_FILTER_Q_WS);
    assert_true(kx_filter_may_match_raw(&f, raw, n));
    kx_filter_free(&f);
    ok_q(&f, "q=zsh", KX_FILTER_Q_WS);
    assert_false(kx_filter_may_match_raw(&f, raw, n));
    kx_filter_free(&f);
    ok_q(&f, "q=4242", KX_FILTER_Q_WS); /* could be a number printed otherwise: no pre-check */
    assert_true(kx_filter_may_match_raw(&f, "{}", 2));
    kx_filter_free(&f);
    ok_q(&f, "q=a%2Fb", KX_FILTER_Q_WS); /* '/' may be written \/ */
    assert_true(kx_filter_may_match_raw(&f, "{}", 2));
    kx_filter_free(&f);
    ok_q(&f, "kind=audit", KX_FILTER_Q_WS);
    assert_false(kx_filter_may_match_raw(&f, raw, n));
    assert_true(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "alert_uuid=" UUID1 "&result=failed&result=dry_run", KX_FILTER_Q_AUDIT);
    assert_true(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "result=failed", KX_FILTER_Q_AUDIT);
    assert_false(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "alert_uuid=6b8c0000-0000-4000-8000-00000000000f", KX_FILTER_Q_AUDIT);
    assert_false(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "responder=isolate&responder=kill-shell", KX_FILTER_Q_AUDIT);
    assert_true(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "responder=isolate", KX_FILTER_Q_AUDIT);
    assert_false(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "responder=iso*", KX_FILTER_Q_AUDIT); /* a glob's longest literal run */
    assert_false(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "responder=*ll-sh?ll", KX_FILTER_Q_AUDIT);
    assert_true(kx_filter_may_match_raw(&f, audit_json, strlen(audit_json)));
    kx_filter_free(&f);
    ok_q(&f, "responder=[a-z]ill-shell", KX_FILTER_Q_AUDIT); /* a bracket: cannot tell */
    assert_true(kx_filter_may_match_raw(&f, "\"klaxon_audit\"", 14));
    kx_filter_free(&f);

    /* every glob list, for the alert */
    static const struct {
        const char *query;
        bool may;
    } cases[] = {
        {"rule=*shell*", true},
        {"rule=*zsh*", false},
        {"rule=*zsh*&rule=Term*", true},
        {"rule=*", true},
        {"rule=a%2Fb*", true}, /* '/' may be written \/: cannot tell */
        {"tag=shell", true},
        {"tag=zsh", false},
        {"node=node-?", true},
        {"node=db-*", false},
        {"namespace=sh*", true},
        {"namespace=kube-*", false},
        {"pod=web-[0-9]", true},
        {"pod=api-*", false},
        {"source=syscall", true},
        {"source=k8s_audit", true}, /* never pre-checked */
        {"rule=*shell*&pod=api-*", false},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(cases); i++) {
        ok_q(&f, cases[i].query, KX_FILTER_Q_WS);
        if (kx_filter_may_match_raw(&f, raw, n) != cases[i].may)
            fail_msg("%s: want %d", cases[i].query, cases[i].may);
        kx_filter_free(&f);
    }
    /* an alert without a source is "syscall": the text cannot tell */
    const char *bare = "{\"time\":\"2026-11-22T10:01:02Z\",\"priority\":\"Error\",\"rule\":\"r\"}";
    ok_q(&f, "source=syscall", KX_FILTER_Q_WS);
    assert_true(kx_filter_may_match_raw(&f, bare, strlen(bare)));
    assert_true(q_match("source=syscall", KX_FILTER_Q_WS, bare));
    kx_filter_free(&f);
}

static void test_uuid_and_free(void **state)
{
    struct kx_filter f = {0};

    (void)state;
    assert_true(kx_filter_uuid_ok(UUID1));
    assert_true(kx_filter_uuid_ok("5B8C0000-AAAA-4000-8000-00000000000F"));
    assert_false(kx_filter_uuid_ok("5b8c0000-0000-4000-8000-00000000000"));
    assert_false(kx_filter_uuid_ok("5b8c0000-0000-4000-8000-0000000000011"));
    assert_false(kx_filter_uuid_ok("5b8c0000x0000-4000-8000-000000000001"));
    assert_false(kx_filter_uuid_ok("5b8c000g-0000-4000-8000-000000000001"));
    assert_false(kx_filter_uuid_ok(""));
    assert_false(kx_filter_uuid_ok(NULL));

    kx_filter_free(&f); /* zeroed */
    kx_filter_free(NULL);
    ok_q(&f, "rule=a&q=b", KX_FILTER_Q_ALERTS);
    kx_filter_free(&f);
    kx_filter_free(&f); /* zeroed again by the first */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_every_parameter),
        cmocka_unit_test(test_encoding),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_json),          cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_match),         cmocka_unit_test(test_raw_checks),
        cmocka_unit_test(test_uuid_and_free),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
