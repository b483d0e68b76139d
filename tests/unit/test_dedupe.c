/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dedupe.c - the pure half of dedupe: keys, the stored window state,
 * the window decision and the aggregate alert. The KV half runs against a
 * real nats-server in tests/integration/test_hub.py.
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

#include "dedupe.h"
#include "util.h"

static char *keys_v[] = {"rule", "hostname", "container.id", "proc.exepath"};
static const struct kx_strlist KEYS = {keys_v, 4};

static struct kx_alert *mk(const char *rule, const char *host, const char *cid, const char *exe)
{
    struct kx_alert *a = kx_alert_new(rule, KX_PRI_WARNING, NULL, host, "out", 0);
    assert_non_null(a);
    if (cid)
        assert_int_equal(kx_alert_set_str(a, "container.id", cid), 0);
    if (exe)
        assert_int_equal(kx_alert_set_str(a, "proc.exepath", exe), 0);
    kx_alert_set_int(a, "proc.pid", rand()); /* not a key field */
    return a;
}

static void test_key(void **st)
{
    char k1[KX_DEDUPE_KEY_LEN], k2[KX_DEDUPE_KEY_LEN], k3[KX_DEDUPE_KEY_LEN];
    struct kx_alert *a = mk("r", "n1", "c1", "/bin/sh");
    struct kx_alert *b = mk("r", "n1", "c1", "/bin/sh");
    struct kx_alert *c = mk("r", "n1", "c2", "/bin/sh");
    kx_dedupe_key(a, &KEYS, k1);
    kx_dedupe_key(b, &KEYS, k2);
    kx_dedupe_key(c, &KEYS, k3);
    assert_string_equal(k1, k2);           /* same fields, other pid/uuid/time */
    assert_string_not_equal(k1, k3);       /* one key field differs */
    assert_int_equal(strlen(k1), KX_DEDUPE_KEY_LEN - 1);
    assert_memory_equal(k1, "d.", 2);
    for (const char *p = k1 + 2; *p; p++)
        assert_non_null(strchr("0123456789abcdef", *p));

    /* Values are separated: ("ab","c") differs from ("a","bc"). */
    struct kx_alert *x = mk("r", "ab", "c", NULL), *y = mk("r", "a", "bc", NULL);
    kx_dedupe_key(x, &KEYS, k1);
    kx_dedupe_key(y, &KEYS, k2);
    assert_string_not_equal(k1, k2);
    /* An absent field equals an empty one, and differs from a present one. */
    struct kx_alert *z = mk("r", "n1", NULL, NULL), *w = mk("r", "n1", "", "");
    kx_dedupe_key(z, &KEYS, k1);
    kx_dedupe_key(w, &KEYS, k2);
    assert_string_equal(k1, k2);
    kx_alert_free(a); kx_alert_free(b); kx_alert_free(c);
    kx_alert_free(x); kx_alert_free(y); kx_alert_free(z); kx_alert_free(w);
}

static void test_state_roundtrip(void **st)
{
    struct kx_dedupe_state s = {.open = true, .start = 1234567890123LL, .count = 57,
                                .uuid = "5b8c1b7e-0000-4000-8000-000000000001",
                                .owner = "hub-1", .first = "{\"a\":1}", .first_len = 7};
    struct kx_buf b;
    struct kx_dedupe_state r;
    kx_buf_init(&b, 4096);
    assert_int_equal(kx_dedupe_state_format(&s, &b), 0);
    assert_int_equal(kx_dedupe_state_parse(b.data, b.len, &r), 0);
    assert_true(r.open);
    assert_int_equal(r.start, s.start);
    assert_int_equal(r.count, 57);
    assert_string_equal(r.uuid, s.uuid);
    assert_string_equal(r.owner, "hub-1");
    assert_int_equal(r.first_len, 7);
    assert_memory_equal(r.first, "{\"a\":1}", 7);
    kx_buf_free(&b);

    static const char *bad[] = {"", "v1 1 2 3 u o", "v2 1 2 3 u o\n{}", "v1 7 2 3 u o\n{}",
                                "v1 1 x 3 u o\n{}", "v1 1 2 3 u o extra\n{}",
                                "v1 1 -5 3 u o\n{}", "v1 1 9223372036854775000 3 u o\n{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kx_dedupe_state_parse(bad[i], strlen(bad[i]), &r), -EINVAL);
}

static void test_decide(void **st)
{
    const int64_t W = 60 * KX_NSEC_PER_SEC, T0 = 1000 * KX_NSEC_PER_SEC;
    struct kx_dedupe_state cur = {.open = true, .start = T0, .count = 0, .uuid = "first"};
    bool close_prev;

    assert_int_equal(kx_dedupe_decide(NULL, "u", T0, W, &close_prev), KX_DEDUPE_OPEN);
    assert_false(close_prev);
    /* Inside the window: a repeat. */
    assert_int_equal(kx_dedupe_decide(&cur, "u2", T0 + W - 1, W, &close_prev), KX_DEDUPE_REPEAT);
    /* The opener redelivered (hub crashed before acking): accept again. */
    assert_int_equal(kx_dedupe_decide(&cur, "first", T0 + 5, W, &close_prev),
                     KX_DEDUPE_REDELIVERY);
    /* Window over, no repeats: a new window, nothing to aggregate. */
    assert_int_equal(kx_dedupe_decide(&cur, "u3", T0 + W, W, &close_prev), KX_DEDUPE_OPEN);
    assert_false(close_prev);
    /* Window over with repeats and still open (owner died): aggregate it. */
    cur.count = 3;
    assert_int_equal(kx_dedupe_decide(&cur, "u3", T0 + W + 1, W, &close_prev), KX_DEDUPE_OPEN);
    assert_true(close_prev);
    /* Already closed by its owner: a new window, no second aggregate. */
    cur.open = false;
    assert_int_equal(kx_dedupe_decide(&cur, "u3", T0 + 2, W, &close_prev), KX_DEDUPE_OPEN);
    assert_false(close_prev);
}

static void test_aggregate(void **st)
{
    char buf[128];
    struct kx_alert *a = mk("Terminal shell in container", "node-a", "3ad7b26ded6d", "/bin/sh");
    assert_int_equal(kx_alert_add_tag(a, "shell"), 0);
    char *json = kx_alert_to_json(a);
    struct kx_dedupe_state s = {.open = true, .start = 1000 * KX_NSEC_PER_SEC, .count = 57,
                                .first = json, .first_len = strlen(json)};
    struct kx_alert *agg = kx_dedupe_aggregate(&s, 60 * KX_NSEC_PER_SEC);
    assert_non_null(agg);
    assert_string_equal(agg->rule, a->rule);
    assert_int_equal(agg->priority, a->priority);
    assert_string_equal(agg->hostname, "node-a");
    assert_string_not_equal(agg->uuid, a->uuid);
    assert_string_equal(agg->output, "out (repeated 57 times in 60 s)");
    assert_int_equal(agg->time_ns, 1060 * KX_NSEC_PER_SEC);
    assert_string_equal(kx_alert_field_str(agg, "klaxon.repeats", buf, sizeof(buf)), "57");
    assert_string_equal(kx_alert_field_str(agg, "container.id", buf, sizeof(buf)), "3ad7b26ded6d");
    assert_string_equal(kx_alert_field_str(agg, "klaxon.first_uuid", buf, sizeof(buf)), a->uuid);
    char *out = kx_alert_to_json(agg);
    assert_non_null(strstr(out, "\"klaxon_aggregate\""));
    assert_non_null(strstr(out, "\"shell\""));
    free(out);
    kx_alert_free(agg);

    /* A corrupt stored alert yields no aggregate rather than a crash. */
    s.first = "{broken";
    s.first_len = 7;
    assert_null(kx_dedupe_aggregate(&s, 60 * KX_NSEC_PER_SEC));
    free(json);
    kx_alert_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
