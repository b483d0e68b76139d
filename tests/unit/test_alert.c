/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_alert.c - the alert model: priorities, parsing and validation of
 * Falco JSON (including malformed and hostile input), building, field
 * lookup and round trips.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alert.h"
#include "util.h"

static const char *FALCO =
    "{\"uuid\":\"5b8c1b7e-0000-4000-8000-000000000001\",\"time\":\"2026-11-22T10:01:02.123456789Z\","
    "\"priority\":\"Critical\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"A shell was spawned\","
    "\"tags\":[\"container\",\"shell\"],\"output_fields\":{\"evt.type\":\"execve\","
    "\"proc.pid\":4242,\"container.id\":\"3ad7b26ded6d\",\"fd.name\":null,\"evt.is_ok\":true,"
    "\"x.float\":1.5},\"unknown_top\":{\"kept\":[1,2]}}";

static struct kx_alert *parse(const char *s, char *err)
{
    return kx_alert_parse(s, strlen(s), err, KX_ALERT_ERR_LEN);
}

static void test_priority(void **st)
{
    enum kx_priority p;
    assert_int_equal(kx_priority_parse("CRITICAL", &p), 0);
    assert_int_equal(p, KX_PRI_CRITICAL);
    assert_int_equal(kx_priority_parse("informational", &p), 0);
    assert_int_equal(p, KX_PRI_INFORMATIONAL);
    assert_int_equal(kx_priority_parse("Info", &p), 0);
    assert_int_equal(p, KX_PRI_INFORMATIONAL);
    assert_int_equal(kx_priority_parse("warn", &p), 0);
    assert_int_equal(p, KX_PRI_WARNING);
    assert_int_equal(kx_priority_parse("loud", &p), -EINVAL);
    assert_int_equal(kx_priority_parse("", &p), -EINVAL);
    assert_int_equal(kx_priority_parse(NULL, &p), -EINVAL);
    assert_string_equal(kx_priority_name(KX_PRI_EMERGENCY), "Emergency");
    assert_string_equal(kx_priority_slug(KX_PRI_DEBUG), "debug");
    assert_true(KX_PRI_CRITICAL < KX_PRI_WARNING); /* more severe is lower */
}

static void test_parse_falco(void **st)
{
    char err[KX_ALERT_ERR_LEN] = "", buf[64];
    struct kx_alert *a = parse(FALCO, err);
    assert_non_null(a);
    assert_string_equal(a->rule, "Terminal shell in container");
    assert_int_equal(a->priority, KX_PRI_CRITICAL);
    assert_string_equal(a->hostname, "node-a");
    assert_string_equal(a->uuid, "5b8c1b7e-0000-4000-8000-000000000001");
    int64_t ns;
    assert_int_equal(kx_time_parse("2026-11-22T10:01:02.123456789Z", &ns), 0);
    assert_int_equal(a->time_ns, ns);
    assert_string_equal(kx_alert_field_str(a, "container.id", buf, sizeof(buf)), "3ad7b26ded6d");
    assert_string_equal(kx_alert_field_str(a, "proc.pid", buf, sizeof(buf)), "4242");
    assert_string_equal(kx_alert_field_str(a, "evt.is_ok", buf, sizeof(buf)), "true");
    assert_string_equal(kx_alert_field_str(a, "x.float", buf, sizeof(buf)), "1.5");
    assert_string_equal(kx_alert_field_str(a, "rule", buf, sizeof(buf)),
                        "Terminal shell in container");
    assert_null(kx_alert_field_str(a, "fd.name", buf, sizeof(buf)));  /* null */
    assert_null(kx_alert_field_str(a, "k8s.ns.name", buf, sizeof(buf))); /* absent */

    /* Unknown fields survive a round trip. */
    char *json = kx_alert_to_json(a);
    assert_non_null(strstr(json, "\"unknown_top\":{\"kept\":[1,2]}"));
    struct kx_alert *b = parse(json, err);
    assert_non_null(b);
    assert_string_equal(b->uuid, a->uuid);
    free(json);
    kx_alert_free(b);
    kx_alert_free(a);
}

static void test_parse_assigns_uuid_and_source(void **st)
{
    char err[KX_ALERT_ERR_LEN];
    struct kx_alert *a = parse("{\"rule\":\"r\",\"priority\":\"warning\","
                               "\"time\":\"2026-01-01T00:00:00Z\"}", err);
    assert_non_null(a);
    assert_int_equal(strlen(a->uuid), 36);
    assert_string_equal(a->source, "syscall");
    assert_string_equal(a->hostname, "");
    char *json = kx_alert_to_json(a);
    assert_non_null(strstr(json, a->uuid));
    free(json);
    kx_alert_free(a);
}

struct bad_case {
    const char *json;
    const char *want; /* substring of the error */
};

static void test_parse_rejects(void **st)
{
    static const struct bad_case cases[] = {
        {"", "empty body"},
        {"{", "invalid JSON"},
        {"not json", "invalid JSON"},
        {"[1,2]", "got an array"},
        {"\"str\"", "got a scalar"},
        {"{\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"}", "missing required field \"rule\""},
        {"{\"rule\":\"\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"}", "non-empty string"},
        {"{\"rule\":5,\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"}", "non-empty string"},
        {"{\"rule\":\"r\",\"time\":\"2026-01-01T00:00:00Z\"}", "missing required field \"priority\""},
        {"{\"rule\":\"r\",\"priority\":\"Loud\",\"time\":\"2026-01-01T00:00:00Z\"}", "unknown priority \"Loud\""},
        {"{\"rule\":\"r\",\"priority\":3,\"time\":\"2026-01-01T00:00:00Z\"}", "\"priority\": must be a string"},
        {"{\"rule\":\"r\",\"priority\":\"Error\"}", "missing required field \"time\""},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"yesterday\"}", "RFC 3339"},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-02-30T00:00:00Z\"}", "RFC 3339"},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":12}", "non-string"},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\",\"tags\":\"x\"}", "\"tags\""},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\",\"tags\":[1]}", "\"tags\""},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\",\"output_fields\":[]}", "\"output_fields\""},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\",\"hostname\":{}}", "\"hostname\""},
        {"{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"} trailing", "after the object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[KX_ALERT_ERR_LEN] = "";
        struct kx_alert *a = parse(cases[i].json, err);
        if (a || !strstr(err, cases[i].want))
            fail_msg("case %zu (%s): got %s, error \"%s\", want \"%s\"", i, cases[i].json,
                     a ? "an alert" : "NULL", err, cases[i].want);
    }
}

static void test_parse_hostile(void **st)
{
    char err[KX_ALERT_ERR_LEN];

    /* Embedded NUL: length says more than strlen. */
    const char nul[] = "{\"rule\":\"r\0x\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"}";
    assert_null(kx_alert_parse(nul, sizeof(nul) - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "NUL"));

    /* Deep nesting must fail cleanly, not blow the stack. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    assert_null(parse(deep, err));
    free(deep);

    /* Over the size bound. */
    size_t big = KX_ALERT_MAX_BYTES + 10;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    assert_null(kx_alert_parse(huge, big, err, sizeof(err)));
    assert_non_null(strstr(err, "byte limit"));
    free(huge);

    /* Not NUL-terminated input is read only up to len. */
    const char *s = "{\"rule\":\"r\",\"priority\":\"Error\",\"time\":\"2026-01-01T00:00:00Z\"}GARBAGE";
    size_t len = strlen(s) - strlen("GARBAGE");
    struct kx_alert *a = kx_alert_parse(s, len, err, sizeof(err));
    assert_non_null(a);
    kx_alert_free(a);

    /* A long priority is excerpted, not copied whole into the error. */
    char longp[2000];
    snprintf(longp, sizeof(longp), "{\"rule\":\"r\",\"priority\":\"%01500d\",\"time\":\"2026-01-01T00:00:00Z\"}", 7);
    assert_null(parse(longp, err));
    assert_true(strlen(err) < KX_ALERT_ERR_LEN);

    /* A NULL error buffer is allowed. */
    assert_null(kx_alert_parse("{", 1, NULL, 0));
}

static void test_new_and_fields(void **st)
{
    char buf[64], err[KX_ALERT_ERR_LEN];
    struct kx_alert *a = kx_alert_new("Terminal shell in container", KX_PRI_NOTICE, NULL, "node-b",
                                      "A shell", 0);
    assert_non_null(a);
    assert_int_equal(kx_alert_set_str(a, "proc.name", "sh"), 0);
    assert_int_equal(kx_alert_set_int(a, "proc.pid", 77), 0);
    assert_int_equal(kx_alert_set_str(a, "proc.name", "bash"), 0); /* replace */
    assert_int_equal(kx_alert_add_tag(a, "shell"), 0);
    assert_string_equal(kx_alert_field_str(a, "proc.name", buf, sizeof(buf)), "bash");
    assert_string_equal(kx_alert_field_str(a, "priority", buf, sizeof(buf)), "Notice");

    char *json = kx_alert_to_json(a);
    struct kx_alert *b = parse(json, err);
    assert_non_null(b);
    assert_string_equal(b->rule, a->rule);
    assert_int_equal(b->priority, KX_PRI_NOTICE);
    assert_int_equal(b->time_ns, a->time_ns);
    assert_string_equal(kx_alert_field_str(b, "proc.pid", buf, sizeof(buf)), "77");
    assert_string_equal(b->source, "syscall");
    free(json);

    struct kx_alert *c = kx_alert_dup(b);
    assert_non_null(c);
    assert_string_equal(c->uuid, b->uuid);
    assert_ptr_not_equal(c->doc, b->doc);
    kx_alert_free(c);
    kx_alert_free(b);
    kx_alert_free(a);
    kx_alert_free(NULL);
}

static void test_time(void **st)
{
    int64_t ns;
    char buf[40];
    assert_int_equal(kx_time_parse("1970-01-01T00:00:01Z", &ns), 0);
    assert_int_equal(ns, KX_NSEC_PER_SEC);
    assert_int_equal(kx_time_parse("1970-01-01T01:00:01+01:00", &ns), 0);
    assert_int_equal(ns, KX_NSEC_PER_SEC);
    assert_int_equal(kx_time_parse("1970-01-01T00:00:00.5Z", &ns), 0);
    assert_int_equal(ns, KX_NSEC_PER_SEC / 2);
    assert_int_equal(kx_time_parse("2024-02-29T00:00:00Z", &ns), 0);
    assert_int_equal(kx_time_parse("2023-02-29T00:00:00Z", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("2026-11-22T10:01:02", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("2026-11-22T10:01:02.Z", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("2026-11-22T25:01:02Z", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("2026-11-22T10:01:02Zx", &ns), -EINVAL);
    /* Outside what int64 nanoseconds hold: refused, not overflowed. */
    assert_int_equal(kx_time_parse("9999-12-31T23:59:59Z", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("0000-01-01T00:00:00Z", &ns), -EINVAL);
    assert_int_equal(kx_time_parse("2262-01-01T00:00:00Z", &ns), 0);
    kx_time_format(1234567890123456789LL, buf, sizeof(buf));
    assert_string_equal(buf, "2009-02-13T23:31:30.123456789Z");
    assert_int_equal(kx_time_parse(buf, &ns), 0);
    assert_int_equal(ns, 1234567890123456789LL);
}

/* The parsed text is reused while the alert is unchanged, and never after. */
static void test_raw_text_kept_until_changed(void **st)
{
    static const char in[] = "{\"uuid\":\"6d1c0e37-0f5c-4c1a-9e0e-6f1b2b0c1d2e\","
                             "\"rule\":\"R\",\"priority\":\"Notice\",\"source\":\"syscall\","
                             "\"time\":\"2026-11-23T10:00:00.000000000Z\",\"output\":\"x\","
                             "\"output_fields\":{\"a\":1}}";
    char err[KX_ALERT_ERR_LEN], *tmp;
    size_t len;

    struct kx_alert *a = kx_alert_parse(in, sizeof(in) - 1, err, sizeof(err));
    assert_non_null(a);
    const char *j = kx_alert_json(a, &len, &tmp);
    assert_null(tmp);
    assert_int_equal(len, sizeof(in) - 1);
    assert_memory_equal(j, in, len);
    assert_int_equal(kx_alert_set_str(a, "b", "2"), 0);
    j = kx_alert_json(a, &len, &tmp);
    assert_non_null(tmp);
    assert_non_null(strstr(j, "\"b\":\"2\""));
    free(tmp);
    kx_alert_free(a);

    /* a uuid added by the parse: the text is not the alert, so it is printed */
    static const char bare[] = "{\"rule\":\"R\",\"priority\":\"Notice\","
                               "\"time\":\"2026-11-23T10:00:00Z\"}";
    a = kx_alert_parse(bare, sizeof(bare) - 1, err, sizeof(err));
    assert_non_null(a);
    j = kx_alert_json(a, &len, &tmp);
    assert_non_null(tmp);
    assert_non_null(strstr(j, "\"uuid\""));
    free(tmp);
    assert_int_equal(kx_alert_add_tag(a, "t"), 0); /* tags change it too */
    assert_null(a->raw);
    kx_alert_free(a);

    /* pretty-printed text (Falco over HTTP may send it): printed as one line,
     * so JSON-lines and syslog outputs never see a newline */
    static const char pretty[] = "{\n  \"uuid\": \"6d1c0e37-0f5c-4c1a-9e0e-6f1b2b0c1d2e\",\r\n"
                                 "  \"rule\": \"R\", \"priority\": \"Notice\",\n"
                                 "  \"source\": \"syscall\",\n"
                                 "  \"time\": \"2026-11-23T10:00:00Z\"\n}\n";
    a = kx_alert_parse(pretty, sizeof(pretty) - 1, err, sizeof(err));
    assert_non_null(a);
    j = kx_alert_json(a, &len, &tmp);
    assert_non_null(tmp);
    assert_null(memchr(j, '\n', len));
    assert_null(memchr(j, '\r', len));
    free(tmp);
    char *line = kx_alert_to_json(a);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    free(line);
    kx_alert_free(a);
}

static void test_small_uint(void **st)
{
    long v = -1;
    assert_true(kx_small_uint("0", 1, &v));
    assert_int_equal(v, 0);
    assert_true(kx_small_uint("999999999x", 9, &v)); /* only n bytes are read */
    assert_int_equal(v, 999999999);
    assert_false(kx_small_uint("1000000000", 10, &v)); /* 10 digits */
    assert_false(kx_small_uint("", 0, &v));
    assert_false(kx_small_uint("-1", 2, &v));
    assert_false(kx_small_uint(" 1", 2, &v));
    assert_false(kx_small_uint("1a", 2, &v));
}

static void test_json_str(void **st)
{
    struct kx_buf b;
    kx_buf_init(&b, 256);
    assert_int_equal(kx_buf_json_str(&b, "a\"b\\c\nd\x01\xc3\xa9"), 0);
    assert_int_equal(kx_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\"");
    kx_buf_reset(&b);
    assert_int_equal(kx_buf_json_str(&b, ""), 0);
    assert_int_equal(b.len, 2);
    kx_buf_free(&b);
    kx_buf_init(&b, 4);
    assert_int_equal(kx_buf_json_str(&b, "abcdef"), -E2BIG);
    kx_buf_free(&b);
}

static void test_util(void **st)
{
    int64_t v;
    char slug[16];
    assert_int_equal(kx_duration_parse("1m30s", &v), 0);
    assert_int_equal(v, 90 * KX_NSEC_PER_SEC);
    assert_int_equal(kx_duration_parse("250ms", &v), 0);
    assert_int_equal(v, 250 * KX_NSEC_PER_MSEC);
    assert_int_equal(kx_duration_parse("7", &v), 0);
    assert_int_equal(v, 7 * KX_NSEC_PER_SEC);
    assert_int_equal(kx_duration_parse("7x", &v), -EINVAL);
    assert_int_equal(kx_duration_parse("-1s", &v), -EINVAL);
    assert_int_equal(kx_duration_parse("", &v), -EINVAL);
    assert_int_equal(kx_duration_parse("99999999999999999999h", &v), -EINVAL);
    assert_int_equal(kx_size_parse("1MiB", &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(kx_size_parse("64kb", &v), 0);
    assert_int_equal(v, 64000);
    assert_int_equal(kx_size_parse("12 parsecs", &v), -EINVAL);
    kx_slug("Terminal shell in container!", slug, sizeof(slug));
    assert_string_equal(slug, "terminal_shelli"); /* bounded: len - 1 bytes */
    kx_slug("***", slug, sizeof(slug));
    assert_string_equal(slug, "unknown");
    kx_slug("a.b>c*d", slug, sizeof(slug));
    assert_string_equal(slug, "a_b_c_d");

    struct kx_buf b;
    kx_buf_init(&b, 8);
    assert_int_equal(kx_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(kx_buf_append(&b, "9", 1), -E2BIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    kx_buf_reset(&b);
    assert_int_equal(kx_buf_printf(&b, "%d", 123456789), -E2BIG);
    kx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_parse_falco),
        cmocka_unit_test(test_parse_assigns_uuid_and_source),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_new_and_fields),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_util),
        cmocka_unit_test(test_raw_text_kept_until_changed),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_small_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
