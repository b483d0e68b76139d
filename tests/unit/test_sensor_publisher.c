/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sensor_publisher.c - the sensor's bounded alert queue and publisher
 * thread (sensor/publisher.c), with a fake JetStream: ordering, retry with
 * the same Nats-Msg-Id, drop-oldest when full, bounded drain on stop, and a
 * push that never waits for a slow server.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

/* Relative to this file: hub/ and outputs/ are on the include path too. */
#include "../../sensor/publisher.h"
#include "util.h"

struct fake_js {
    pthread_mutex_t lock;
    bool ready;       /* "connected" */
    int fail_next;    /* this many sends fail with -EIO */
    int64_t delay_ns; /* each send takes this long */
    int calls;
    char ids[256][64]; /* msg ids of successful sends, in order */
    char data[256][32];
    size_t n;
    char last_subject[64];
};

static int fake_send(void *ctx, const char *subject, const char *data, size_t len,
                     const char *msg_id, int64_t timeout, char *err, size_t errlen)
{
    struct fake_js *f = ctx;
    int64_t delay;
    int rc = 0;

    pthread_mutex_lock(&f->lock);
    delay = f->delay_ns;
    pthread_mutex_unlock(&f->lock);
    if (delay) {
        struct timespec ts = {delay / KX_NSEC_PER_SEC, delay % KX_NSEC_PER_SEC};

        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&f->lock);
    f->calls++;
    snprintf(f->last_subject, sizeof(f->last_subject), "%s", subject);
    if (f->fail_next > 0) {
        f->fail_next--;
        snprintf(err, errlen, "fake: stream not ready");
        rc = -EIO;
    } else if (f->n < 256) {
        snprintf(f->ids[f->n], sizeof(f->ids[0]), "%s", msg_id);
        snprintf(f->data[f->n], sizeof(f->data[0]), "%.*s", (int)len, data);
        f->n++;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static bool fake_ready(void *ctx)
{
    struct fake_js *f = ctx;
    bool r;

    pthread_mutex_lock(&f->lock);
    r = f->ready;
    pthread_mutex_unlock(&f->lock);
    return r;
}

static struct fake_js *fake_new(bool ready)
{
    struct fake_js *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    pthread_mutex_init(&f->lock, NULL);
    f->ready = ready;
    return f;
}

static void fake_set_ready(struct fake_js *f, bool ready)
{
    pthread_mutex_lock(&f->lock);
    f->ready = ready;
    pthread_mutex_unlock(&f->lock);
}

static struct kx_publisher *pub_new(struct fake_js *f, size_t qsize)
{
    struct kx_publisher_opts o = {
        .subject = "klaxon.alerts.test_node",
        .queue_size = qsize,
        .publish_timeout = 500 * KX_NSEC_PER_MSEC,
        .retry_min = 1 * KX_NSEC_PER_MSEC,
        .retry_max = 5 * KX_NSEC_PER_MSEC,
        .send = fake_send,
        .ready = fake_ready,
        .ctx = f,
    };
    struct kx_publisher *p = kx_publisher_new(&o);

    assert_non_null(p);
    return p;
}

static int push(struct kx_publisher *p, const char *id)
{
    char *json = strdup(id);

    assert_non_null(json);
    return kx_publisher_push(p, &json, strlen(id), id);
}

static void wait_published(struct kx_publisher *p, uint64_t n)
{
    struct kx_publisher_stats st;
    int64_t end = kx_monotonic_ns() + 5 * KX_NSEC_PER_SEC;

    do {
        kx_publisher_stats(p, &st);
        if (st.published >= n)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    } while (kx_monotonic_ns() < end);
    fail_msg("published %llu, want %llu", (unsigned long long)st.published, (unsigned long long)n);
}

static void test_order_and_ids(void **state)
{
    struct fake_js *f = fake_new(true);
    struct kx_publisher *p = pub_new(f, 10);
    struct kx_publisher_stats st;
    char id[16];

    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        assert_int_equal(push(p, id), 0);
    }
    assert_int_equal(kx_publisher_stop(p, 2 * KX_NSEC_PER_SEC), 0);
    kx_publisher_stats(p, &st);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.published, 5);
    assert_int_equal(st.dropped_full + st.dropped_stop, 0);
    assert_int_equal(st.depth, 0);
    assert_int_equal(f->n, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "a%d", i + 1);
        assert_string_equal(f->ids[i], id);
        assert_string_equal(f->data[i], id);
    }
    assert_string_equal(f->last_subject, "klaxon.alerts.test_node");
    kx_publisher_free(p);
    free(f);
}

static void test_retry_same_id(void **state)
{
    struct fake_js *f = fake_new(true);
    struct kx_publisher *p;
    struct kx_publisher_stats st;

    f->fail_next = 3;
    p = pub_new(f, 10);
    assert_int_equal(push(p, "X-1"), 0);
    wait_published(p, 1);
    kx_publisher_stats(p, &st);
    assert_int_equal(st.failures, 3);
    assert_int_equal(f->calls, 4);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->ids[0], "X-1");
    kx_publisher_free(p);
    free(f);
}

static void test_drop_oldest(void **state)
{
    struct fake_js *f = fake_new(false); /* NATS down */
    struct kx_publisher *p = pub_new(f, 3);
    struct kx_publisher_stats st;
    int dropped = 0;
    char id[16];

    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        int rc = push(p, id);

        assert_true(rc == 0 || rc == 1);
        dropped += rc;
    }
    /* Give the thread a few failed rounds while full. */
    struct timespec ts = {0, 30 * 1000000};
    nanosleep(&ts, NULL);
    kx_publisher_stats(p, &st);
    assert_int_equal(st.queued, 5);
    assert_int_equal(st.published, 0);
    assert_int_equal(st.dropped_full, 2);
    assert_true(dropped >= 1 && dropped <= 2); /* the in-flight one may be the 2nd */
    assert_int_equal(st.depth, 3);

    /* NATS back: the three newest go out, in order. */
    fake_set_ready(f, true);
    wait_published(p, 3);
    assert_int_equal(kx_publisher_stop(p, KX_NSEC_PER_SEC), 0);
    assert_int_equal(f->n, 3);
    assert_string_equal(f->ids[0], "m3");
    assert_string_equal(f->ids[1], "m4");
    assert_string_equal(f->ids[2], "m5");
    kx_publisher_free(p);
    free(f);
}

static void test_stop_bounded_when_down(void **state)
{
    struct fake_js *f = fake_new(false);
    struct kx_publisher *p = pub_new(f, 10);
    struct kx_publisher_stats st;
    int64_t t0, took;

    assert_int_equal(push(p, "d1"), 0);
    assert_int_equal(push(p, "d2"), 0);
    assert_int_equal(push(p, "d3"), 0);
    t0 = kx_monotonic_ns();
    assert_int_equal(kx_publisher_stop(p, 200 * KX_NSEC_PER_MSEC), 3);
    took = kx_monotonic_ns() - t0;
    assert_true(took >= 150 * KX_NSEC_PER_MSEC); /* it did try for the drain time */
    assert_true(took < 1500 * KX_NSEC_PER_MSEC);
    kx_publisher_stats(p, &st);
    assert_int_equal(st.dropped_stop, 3);
    assert_int_equal(st.published, 0);

    /* After stop: refused, and the string is still taken (and freed). */
    {
        char *json = strdup("late");

        assert_int_equal(kx_publisher_push(p, &json, 4, "late"), -ESHUTDOWN);
        assert_null(json);
    }
    assert_int_equal(kx_publisher_stop(p, 0), 0); /* idempotent */
    kx_publisher_free(p);
    free(f);
}

static void test_push_never_blocks(void **state)
{
    struct fake_js *f = fake_new(true);
    struct kx_publisher *p;
    int64_t t0, took;
    char id[16];

    f->delay_ns = 300 * KX_NSEC_PER_MSEC; /* a very slow server */
    p = pub_new(f, 1000);
    t0 = kx_monotonic_ns();
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        assert_int_equal(push(p, id), 0);
    }
    took = kx_monotonic_ns() - t0;
    assert_true(took < 100 * KX_NSEC_PER_MSEC);
    /* Stop without drain: one send may be in flight, the rest are counted. */
    size_t left = kx_publisher_stop(p, 0);
    assert_true(left >= 498 && left <= 500);
    kx_publisher_free(p);
    free(f);
}

static void test_bad_args(void **state)
{
    struct kx_publisher_opts o = {.subject = "s", .queue_size = 0, .send = fake_send};
    char *json = strdup("x");

    errno = 0;
    assert_null(kx_publisher_new(&o));
    assert_int_equal(errno, EINVAL);
    o.queue_size = 1;
    o.send = NULL; /* and no bus */
    assert_null(kx_publisher_new(&o));
    assert_null(kx_publisher_new(NULL));
    assert_int_equal(kx_publisher_push(NULL, &json, 1, "x"), -EINVAL);
    assert_null(json); /* taken even on error */
    kx_publisher_free(NULL);
    assert_int_equal(kx_publisher_stop(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ids),     cmocka_unit_test(test_retry_same_id),
        cmocka_unit_test(test_drop_oldest),       cmocka_unit_test(test_stop_bounded_when_down),
        cmocka_unit_test(test_push_never_blocks), cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
