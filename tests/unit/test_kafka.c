/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_kafka.c - the Kafka output's real ops against librdkafka's built-in
 * mock cluster (a Kafka protocol server in-process, on loopback): records
 * consumed back and checked, a broker down then up, a transient broker
 * error retried inside librdkafka without a duplicate, permanent errors
 * (topic authorization, record too large, unknown topic, SASL), the local
 * size limit failing a whole batch, and settings refused at init with the
 * key named.
 *
 * One one-broker cluster serves all tests; each test has a topic of its
 * own and starts with no broker errors pending.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "alert.h"
#include "config.h"
#include "log.h"
#include "outputs.h"
#include "util.h"

extern const struct kx_output_ops kx_output_kafka; /* outputs/kafka.c */

#define API_PRODUCE 0 /* Kafka protocol ApiKeys (not in the public headers) */

/* ---- the mock cluster ----------------------------------------------------- */

/* One cluster for all tests (tearing one down takes a second); each test
 * produces to a topic of its own, and starts with no pending broker errors
 * and the broker up. Topics are created by the producer's first metadata
 * request (4 partitions), as a broker with auto.create.topics.enable does:
 * rd_kafka_mock_topic_create() on an idle cluster waits up to 1 s each. */
static struct {
    rd_kafka_t *owner; /* the handle the cluster lives in */
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[128];
    char topic[32]; /* the current test's */
    int seq;
} M;

static int cluster_start(void **state)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    if (!(M.owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) ||
        !(M.mc = rd_kafka_mock_cluster_new(M.owner, 1)))
        return -1;
    snprintf(M.bootstraps, sizeof(M.bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(M.mc));
    return 0;
}

static int cluster_stop(void **state)
{
    rd_kafka_mock_cluster_destroy(M.mc);
    rd_kafka_destroy(M.owner);
    return 0;
}

/* Per test: a topic no other test used, a clean broker. */
static int topic_fresh(void **state)
{
    snprintf(M.topic, sizeof(M.topic), "alerts-%d", ++M.seq);
    rd_kafka_mock_clear_request_errors(M.mc, API_PRODUCE);
    rd_kafka_mock_broker_set_up(M.mc, 1);
    return 0;
}

/* One consumed record. */
struct rec {
    char *key; /* NULL when the record has none */
    char *value;
    int32_t partition;
};

/* Reads the test's topic (all partitions, from offset 0) until want
 * records arrived and 300 ms more passed (to catch duplicates), or 5 s;
 * returns how many, filling recs[0..max). */
static size_t consume(struct rec *recs, size_t max, size_t want)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    int64_t end = kx_monotonic_ns() + 5 * KX_NSEC_PER_SEC;
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt;
    char err[256];
    size_t n = 0;
    int nparts;
    rd_kafka_t *c;

    rd_kafka_conf_set(conf, "bootstrap.servers", M.bootstraps, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "test", err, sizeof(err));
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!c)
        fail_msg("consumer: %s", err);
    rkt = rd_kafka_topic_new(c, M.topic, NULL);
    assert_int_equal(rd_kafka_metadata(c, 0, rkt, &md, 5000), 0);
    nparts = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    assert_true(nparts > 0);
    /* offset 0, not BEGINNING: the topic is new, and the lookup costs 0.5 s */
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, M.topic, p)->offset = 0;
    assert_int_equal(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    while (kx_monotonic_ns() < end) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 50);

        if (msg && !msg->err) {
            if (n < max) {
                recs[n].key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
                recs[n].value = strndup(msg->payload, msg->len);
                recs[n].partition = msg->partition;
            }
            if (++n == want)
                end = kx_monotonic_ns() + 300 * KX_NSEC_PER_MSEC;
        }
        if (msg)
            rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

static void recs_free(struct rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) { /* unfilled entries are zeroed */
        free(recs[i].key);
        free(recs[i].value);
    }
}

/* ---- an output instance, configured as the core does ---------------------- */

struct inst {
    struct kx_config_doc *doc;
    struct kx_output out;
    struct kx_diag d;
    int init_rc;
};

static void inst_init(struct inst *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void inst_init(struct inst *in, const char *fmt, ...)
{
    char yaml[2048];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(yaml, sizeof(yaml), fmt, ap);
    va_end(ap);
    memset(in, 0, sizeof(*in));
    in->doc = kx_config_load_string("test.yaml", yaml, &in->d);
    assert_non_null(in->doc);
    in->out.ops = &kx_output_kafka;
    in->out.name = "kafka";
    in->out.settings = calloc(1, kx_output_kafka.settings_size);
    rc = kx_config_apply(kx_output_kafka.opts, in->doc->root, in->out.settings, NULL, &in->d);
    in->init_rc = rc ? rc : kx_output_kafka.init(&in->out, in->doc->root, &in->d);
}

static void inst_free(struct inst *in)
{
    kx_output_kafka.destroy(&in->out);
    kx_config_release(kx_output_kafka.opts, in->out.settings);
    free(in->out.settings);
    kx_config_free(in->doc);
    kx_diag_free(&in->d);
}

static bool diag_has(const struct inst *in, const char *needle)
{
    for (size_t i = 0; i < in->d.n; i++)
        if (strstr(in->d.msgs[i], needle))
            return true;
    return false;
}

/* An alert with the field the core adds for dedupe_key outputs. */
static struct kx_alert *alert(const char *container, size_t output_len)
{
    char *output = calloc(1, output_len + 1);
    struct kx_alert *a;

    assert_non_null(output);
    memset(output, 'x', output_len);
    a = kx_alert_new("Terminal shell in container", KX_PRI_CRITICAL, "syscall", "node-a",
                     output_len ? output : "a shell", 0);
    free(output);
    assert_non_null(a);
    assert_int_equal(kx_alert_set_str(a, "container.id", container), 0);
    assert_int_equal(kx_alert_set_str(a, "klaxon.dedupe_key", container), 0);
    return a;
}

static int deliver(struct inst *in, struct kx_alert **batch, size_t n)
{
    in->out.error[0] = '\0';
    return kx_output_kafka.deliver(&in->out, (struct kx_alert *const *)batch, n);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_batch_delivered_and_consumed(void **state)
{
    static const char *const containers[] = {"c0", "c1", "c2", "c0", "c1", "c2"};
    struct kx_alert *batch[6];
    int32_t partition[6];
    struct rec recs[12] = {{0}};
    struct inst in;
    size_t n;

    for (size_t i = 0; i < 6; i++)
        batch[i] = alert(containers[i], 0);
    inst_init(&in, "hostport: %s\ntopic: %s\ncompression: LZ4\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver(&in, batch, 6), 0);
    assert_string_equal(in.out.error, "");

    n = consume(recs, 12, 6);
    assert_int_equal(n, 6); /* each once */
    for (size_t i = 0; i < 6; i++) {
        size_t j;

        for (j = 0; j < 6 && !strstr(recs[i].value, batch[j]->uuid); j++)
            ;
        assert_true(j < 6);
        /* the value is the alert document, as other outputs send it ... */
        {
            char *want = kx_alert_to_json(batch[j]);

            assert_string_equal(recs[i].value, want);
            free(want);
        }
        /* ... keyed by its dedupe key, so one problem stays on one partition */
        assert_non_null(recs[i].key);
        assert_string_equal(recs[i].key, containers[j]);
        partition[j] = recs[i].partition;
    }
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(partition[i], partition[i + 3]);
    recs_free(recs, n);
    inst_free(&in);
    for (size_t i = 0; i < 6; i++)
        kx_alert_free(batch[i]);
}

static void test_no_key_and_acks_one(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct rec recs[2] = {{0}};
    struct inst in;

    inst_init(&in,
              "hostport: %s\ntopic: %s\nkey: \"\"\nrequiredacks: one\n"
              "balancer: crc32\n",
              M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver(&in, &a, 1), 0);
    assert_int_equal(consume(recs, 2, 1), 1);
    assert_null(recs[0].key);
    assert_non_null(strstr(recs[0].value, a->uuid));
    recs_free(recs, 1);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_broker_down_then_up(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct rec recs[4] = {{0}};
    struct inst in;
    int rc = 0;

    /* down before the first connection: init must not care */
    assert_int_equal(rd_kafka_mock_broker_set_down(M.mc, 1), 0);
    inst_init(&in, "hostport: %s\ntopic: %s\ntimeout: 500ms\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver(&in, &a, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "1 of 1 alerts failed"));
    assert_non_null(strstr(in.out.error, "MSG_TIMED_OUT"));

    assert_int_equal(rd_kafka_mock_broker_set_up(M.mc, 1), 0);
    /* as the core would: retry until it goes through (reconnect backoff) */
    for (int i = 0; i < 5 && (rc = deliver(&in, &a, 1)) == -EAGAIN; i++)
        ;
    assert_int_equal(rc, 0);
    assert_int_equal(consume(recs, 4, 1), 1);
    assert_non_null(strstr(recs[0].value, a->uuid));
    recs_free(recs, 1);
    inst_free(&in);
    kx_alert_free(a);
}

/* A retriable broker error is retried inside librdkafka; idempotence keeps
 * the record single. */
static void test_transient_error_retried_once(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct rec recs[4] = {{0}};
    struct inst in;

    inst_init(&in, "hostport: %s\ntopic: %s\ntimeout: 3s\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    rd_kafka_mock_push_request_errors(M.mc, API_PRODUCE, 2, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    assert_int_equal(deliver(&in, &a, 1), 0);
    assert_int_equal(consume(recs, 4, 1), 1);
    recs_free(recs, 1);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_topic_authorization_failed_is_permanent(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct inst in;
    int rc;

    inst_init(&in, "hostport: %s\ntopic: %s\ntimeout: 3s\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    rd_kafka_mock_push_request_errors(M.mc, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    rc = deliver(&in, &a, 1);
    assert_int_equal(rc, -EACCES);
    assert_non_null(strstr(in.out.error, "TOPIC_AUTHORIZATION_FAILED"));
    assert_non_null(strstr(in.out.error, a->uuid));
    assert_non_null(strstr(in.out.error, "grant the user WRITE"));
    /* the next batch goes through: nothing stuck */
    assert_int_equal(deliver(&in, &a, 1), 0);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_broker_says_too_large_is_permanent(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct inst in;

    inst_init(&in, "hostport: %s\ntopic: %s\ntimeout: 3s\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    rd_kafka_mock_push_request_errors(M.mc, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    assert_int_equal(deliver(&in, &a, 1), -EMSGSIZE);
    assert_non_null(strstr(in.out.error, "MSG_SIZE_TOO_LARGE"));
    inst_free(&in);
    kx_alert_free(a);
}

/* A topic the cluster does not have (and will not auto-create) fails the
 * batch within its timeout, not after librdkafka's 30 s. The timeout leaves
 * room for librdkafka's once-a-second scan to see the topic missing for half
 * of it before the record expires. */
static void test_unknown_topic_is_permanent(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct inst in;
    int64_t t0;

    rd_kafka_mock_topic_set_error(M.mc, "nosuch", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    inst_init(&in, "hostport: %s\ntopic: nosuch\ntimeout: 2500ms\n", M.bootstraps);
    assert_int_equal(in.init_rc, 0);
    t0 = kx_monotonic_ns();
    assert_int_equal(deliver(&in, &a, 1), -EINVAL);
    assert_true(kx_monotonic_ns() - t0 < 2500 * KX_NSEC_PER_MSEC);
    assert_non_null(strstr(in.out.error, "UNKNOWN_TOPIC"));
    assert_non_null(strstr(in.out.error, "create the topic"));
    inst_free(&in);
    kx_alert_free(a);
}

/* Over maxmessagebytes locally: refused at produce time. The small alert of
 * the same batch is still delivered, and the batch still reported failed. */
static void test_local_size_limit_fails_the_batch(void **state)
{
    struct kx_alert *batch[2] = {alert("big", 4000), alert("small", 0)};
    struct rec recs[4] = {{0}};
    struct inst in;

    inst_init(&in, "hostport: %s\ntopic: %s\nmaxmessagebytes: 2KiB\n", M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver(&in, batch, 2), -EMSGSIZE);
    assert_non_null(strstr(in.out.error, "1 of 2 alerts failed"));
    assert_non_null(strstr(in.out.error, batch[0]->uuid));
    assert_non_null(strstr(in.out.error, "larger than maxmessagebytes"));
    assert_int_equal(consume(recs, 4, 1), 1);
    assert_non_null(strstr(recs[0].value, batch[1]->uuid));
    recs_free(recs, 1);
    inst_free(&in);
    kx_alert_free(batch[0]);
    kx_alert_free(batch[1]);
}

/* The mock broker speaks no SASL: the handshake fails as with a broker
 * that refuses the mechanism or the credentials. */
static void test_sasl_failure_is_permanent(void **state)
{
    struct kx_alert *a = alert("c0", 0);
    struct inst in;
    int rc;

    inst_init(&in,
              "hostport: %s\ntopic: %s\ntimeout: 500ms\nsasl: SCRAM_SHA256\n"
              "username: klaxon\npassword: hunter2-secret\n",
              M.bootstraps, M.topic);
    assert_int_equal(in.init_rc, 0);
    rc = deliver(&in, &a, 1);
    assert_int_equal(rc, -EACCES);
    assert_non_null(strstr(in.out.error, "SASL authentication failed"));
    assert_null(strstr(in.out.error, "hunter2-secret"));
    inst_free(&in);
    kx_alert_free(a);
}

static void test_bad_settings_refused_at_init(void **state)
{
    static const struct {
        const char *yaml;
        const char *needle;
    } cases[] = {
        {"compression: brotli\n", "compression \"brotli\" is not one of"},
        {"requiredacks: MOST\n", "requiredacks \"MOST\""},
        {"sasl: PLAIN\n", "sasl PLAIN needs username and password"},
        {"sasl: GSSAPI\nusername: u\npassword: p\n", "sasl \"GSSAPI\""},
        {"password: p\n", "only used with sasl"},
        {"balancer: sticky\n", "balancer \"sticky\""},
        {"partitioner: crc\n", "partitioner \"crc\""},
        {"balancer: hash\npartitioner: murmur2\n", "set one of them"},
        {"cafile: /etc/ssl/ca.pem\n", "need tls: true"},
        {"tls: true\nclientcert: /x.pem\n", "both clientcert and clientkey"},
        {"timeout: 0s\n", "timeout must be"},
        {"maxmessagebytes: 10\n", "maxmessagebytes must be"},
        {"key: \"{{ rule\"\n", "key: "},
        /* librdkafka's own check, named under our key */
        {"tls: true\ncafile: /nonexistent/ca.pem\n", "kafka: "},
    };

    for (size_t i = 0; i < KX_ARRAY_SIZE(cases); i++) {
        struct inst in;

        inst_init(&in, "hostport: 127.0.0.1:1\ntopic: alerts\n%s", cases[i].yaml);
        if (in.init_rc != -EINVAL || !diag_has(&in, cases[i].needle))
            fail_msg("case %zu (%s): rc %d, diag: %s", i, cases[i].yaml, in.init_rc,
                     in.d.n ? in.d.msgs[0] : "(none)");
        /* no diagnostic ever carries the password */
        assert_false(diag_has(&in, "hunter2"));
        inst_free(&in);
    }
    {
        struct inst in;

        inst_init(&in, "hostport: 127.0.0.1:1\ntopic: \"bad topic\"\n");
        assert_int_equal(in.init_rc, -EINVAL);
        assert_true(diag_has(&in, "is not a Kafka topic name"));
        assert_true(diag_has(&in, "test.yaml:2:"));
        inst_free(&in);
    }
}

/* Falcosidekick's spellings are accepted; nothing connects at init. */
static void test_sidekick_settings_accepted(void **state)
{
    struct inst in;

    inst_init(&in, "hostport: 127.0.0.1:1,127.0.0.1:2\ntopic: falco\nsasl: SCRAM_SHA512\n"
                   "username: u\npassword: hunter2\ntls: true\ncheckcert: false\n"
                   "balancer: murmur2\ncompression: ZSTD\nrequiredacks: NONE\nclientid: sk\n");
    if (in.init_rc != 0)
        fail_msg("init: %s", in.d.n ? in.d.msgs[0] : "?");
    inst_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_batch_delivered_and_consumed, topic_fresh),
        cmocka_unit_test_setup(test_no_key_and_acks_one, topic_fresh),
        cmocka_unit_test_setup(test_broker_down_then_up, topic_fresh),
        cmocka_unit_test_setup(test_transient_error_retried_once, topic_fresh),
        cmocka_unit_test_setup(test_topic_authorization_failed_is_permanent, topic_fresh),
        cmocka_unit_test_setup(test_broker_says_too_large_is_permanent, topic_fresh),
        cmocka_unit_test_setup(test_unknown_topic_is_permanent, topic_fresh),
        cmocka_unit_test_setup(test_local_size_limit_fails_the_batch, topic_fresh),
        cmocka_unit_test_setup(test_sasl_failure_is_permanent, topic_fresh),
        cmocka_unit_test(test_bad_settings_refused_at_init),
        cmocka_unit_test(test_sidekick_settings_accepted),
    };
    int rc;

    kx_log_init("test_kafka", KX_LOG_WARN, false);
    rc = cmocka_run_group_tests(tests, cluster_start, cluster_stop);
    /* librdkafka frees some global state asynchronously */
    rd_kafka_wait_destroyed(5000);
    return rc;
}
