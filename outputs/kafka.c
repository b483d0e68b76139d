/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka.c - Apache Kafka (librdkafka): each alert produced as one record on
 * a topic, its value the alert's JSON (as the NATS output sends it), its key
 * a template - by default the hub's dedupe key, so repeats of one problem
 * land on one partition, in order. Settings follow Falcosidekick's kafka
 * section (hostport, topic, sasl, username, password, tls, balancer,
 * compression, requiredacks, clientid); partitioner, key, TLS files and
 * maxmessagebytes are ours.
 *
 * Delivery: deliver() produces the whole batch, then polls until librdkafka
 * has a delivery report for every record of it. message.timeout.ms is the
 * `timeout` setting, so librdkafka gives up on a record (broker down, no
 * leader, ...) about when we stop waiting, and reports it. The batch is
 * delivered (0) only when every record was acknowledged per requiredacks.
 *
 * At-least-once, not exactly-once: a batch with one failed record is
 * reported failed as a whole and the core retries (or dead-letters) the
 * whole batch, so the records that did get through are produced again, and
 * a dead-lettered batch may hold alerts Kafka already has. Consumers should
 * dedupe on the alert's uuid. With requiredacks ALL the producer is
 * idempotent, so librdkafka's own internal retries never duplicate.
 *
 * Outcome per record: permanent errors (authorization, record too large,
 * unknown topic, bad record, SASL authentication failure) win over
 * retriable ones (timeouts, broker down, no leader, not enough replicas,
 * queue full), since retrying cannot fix the batch then. After an
 * authorization or unknown-topic error the next batch gets a new producer:
 * librdkafka would otherwise keep failing the topic until its next metadata
 * refresh, minutes after the ACL or the topic was fixed.
 *
 * The key template's default, {{klaxon.dedupe_key}}, is a field the core
 * adds to output_fields for this output (ops.dedupe_key), so the record's
 * value carries it too.
 *
 * Threads: init/deliver/destroy run on the output's worker thread; the
 * delivery-report and error callbacks are served by rd_kafka_poll() or
 * rd_kafka_flush() on that same thread, so they touch the batch state
 * without a lock. The log callback runs on librdkafka's internal threads
 * and reads only the state's own copies of the instance name and the
 * password (to scrub it), both fixed at init.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "config.h"
#include "log.h"
#include "outputs.h"
#include "template.h"
#include "util.h"

#define KX_KAFKA_BATCH 1000       /* records per deliver() at most; < 1 << KX_KAFKA_IDX_BITS */
#define KX_KAFKA_IDX_BITS 10      /* low bits of a record's opaque: its index in the batch */
#define KX_KAFKA_KEY_MAX 1024     /* bytes of rendered key at most */
#define KX_KAFKA_DR_GRACE_MS 2000 /* librdkafka scans for timed-out records once a second */
#define KX_KAFKA_FLUSH_MS 1000    /* destroy: how long requests in flight may take */

_Static_assert(KX_KAFKA_BATCH < (1 << KX_KAFKA_IDX_BITS), "batch index must fit the opaque");

struct kafka_settings {
    char *hostport;          /* bootstrap brokers, "host:port,host:port" */
    char *topic;             /* one topic for every alert */
    char *sasl;              /* "" | PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 */
    char *username;          /* SASL */
    char *password;          /* SASL, a secret */
    bool tls;                /* ssl / sasl_ssl */
    char *balancer;          /* Falcosidekick's names, mapped to a partitioner */
    char *partitioner;       /* librdkafka's names; wins when both are set */
    char *key;               /* template; "" = no key */
    char *compression;       /* none | gzip | snappy | lz4 | zstd */
    char *requiredacks;      /* NONE | ONE | ALL */
    char *clientid;          /* client.id */
    char *cafile;            /* PEM CA bundle */
    char *clientcert;        /* PEM, mutual TLS */
    char *clientkey;         /* PEM, mutual TLS */
    bool checkcert;          /* verify the broker's certificate and hostname */
    int64_t timeout;         /* ns: message.timeout.ms, and the wait per batch */
    int64_t maxmessagebytes; /* message.max.bytes */
};

/* The outcome of one batch, filled by the delivery-report callback. */
struct kafka_batch {
    uint64_t id;                    /* this batch's id; older reports are stale */
    struct kx_alert *const *alerts; /* borrowed for the duration of deliver() */
    size_t pending;                 /* records produced, not yet reported */
    size_t failed;                  /* records reported failed (or not produced) */
    rd_kafka_resp_err_t perm_err;   /* first permanent error, or 0 */
    rd_kafka_resp_err_t retry_err;  /* first retriable error, or 0 */
    char perm_msg[200];             /* what perm_err was about */
    char retry_msg[200];            /* what retry_err was about */
    bool auth_failed;               /* error_cb saw a SASL failure during the batch */
};

struct kafka_state {
    struct kx_output *o;     /* borrowed: the instance (settings); worker thread only */
    char *name;              /* owned copy of o->name, for librdkafka's threads */
    char *password;          /* owned copy, wiped when freed: scrubbed from logs */
    rd_kafka_conf_t *conf;   /* owned: template for (re)creating rk */
    rd_kafka_t *rk;          /* owned; NULL when a reopen failed, until the next deliver() */
    rd_kafka_topic_t *rkt;   /* owned, of rk */
    struct kx_template *key; /* owned; NULL = records without a key */
    struct kafka_batch b;    /* worker thread only (deliver and the callbacks it polls) */
    bool reopen;             /* recreate the producer before the next batch */
    char reopen_msg[200];    /* why */
    char broker_err[200];    /* last error_cb reason, for o->error */
    size_t late;             /* records of abandoned batches delivered after all */
};

#define K(field) offsetof(struct kafka_settings, field)

static const struct kx_opt kafka_opts[] = {
    {"hostport", KX_OPT_STR, NULL, K(hostport), KX_OPT_REQUIRED,
     "bootstrap brokers, comma-separated host:port (env <NAME>_HOSTPORT, e.g. KAFKA_HOSTPORT)"},
    {"topic", KX_OPT_STR, NULL, K(topic), KX_OPT_REQUIRED, "topic the alerts are produced to"},
    {"sasl", KX_OPT_STR, "", K(sasl), 0,
     "SASL mechanism: \"\" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
    {"username", KX_OPT_STR, "", K(username), 0, "SASL username"},
    {"password", KX_OPT_STR, "", K(password), KX_OPT_SECRET, "SASL password"},
    {"tls", KX_OPT_BOOL, "false", K(tls), 0, "TLS to the brokers"},
    {"balancer", KX_OPT_STR, "", K(balancer), 0,
     "Falcosidekick's balancer, as a partitioner: round_robin, least_bytes (both random), "
     "hash (fnv1a_random), crc32 (consistent_random), murmur2 (murmur2_random)"},
    {"partitioner", KX_OPT_STR, "", K(partitioner), 0,
     "librdkafka partitioner: random, consistent, consistent_random, murmur2, murmur2_random, "
     "fnv1a, fnv1a_random; \"\" = balancer, else murmur2_random (the Java client's)"},
    {"key", KX_OPT_STR, "{{klaxon.dedupe_key}}", K(key), 0,
     "record key template; \"\" = no key (default: the hub's dedupe key)"},
    {"compression", KX_OPT_STR, "none", K(compression), 0, "none, gzip, snappy, lz4 or zstd"},
    {"requiredacks", KX_OPT_STR, "ALL", K(requiredacks), 0,
     "NONE (acks=0), ONE (acks=1) or ALL (acks=all, idempotent producer)"},
    {"clientid", KX_OPT_STR, "klaxon", K(clientid), 0, "client.id, for the brokers' logs"},
    {"cafile", KX_OPT_STR, "", K(cafile), 0, "CA bundle (PEM) to verify the brokers; tls only"},
    {"clientcert", KX_OPT_STR, "", K(clientcert), 0, "client certificate (PEM), mutual TLS"},
    {"clientkey", KX_OPT_STR, "", K(clientkey), 0, "client private key (PEM), mutual TLS"},
    {"checkcert", KX_OPT_BOOL, "true", K(checkcert), 0,
     "verify the brokers' certificates and host names"},
    {"timeout", KX_OPT_DURATION, "10s", K(timeout), 0,
     "how long a batch may take to be acknowledged (message.timeout.ms); keep it well "
     "below ack_wait"},
    {"maxmessagebytes", KX_OPT_SIZE, "1000000", K(maxmessagebytes), 0,
     "largest record produced (message.max.bytes); the topic's own limit applies too"},
    {0},
};

/* Falcosidekick's balancers (kafka-go) and the librdkafka partitioner that
 * behaves alike (null keys spread randomly in all of them). */
static const char *const kafka_balancers[][2] = {
    {"round_robin", "random"},      /* no round robin in librdkafka */
    {"least_bytes", "random"},      /* nor a least-bytes one */
    {"hash", "fnv1a_random"},       /* kafka-go's Hash: FNV-1a, as sarama */
    {"crc32", "consistent_random"}, /* kafka-go documents it as librdkafka's */
    {"murmur2", "murmur2_random"},  /* the Java client's */
};

static const char *const kafka_partitioners[] = {
    "random",         "consistent", "consistent_random", "murmur2",
    "murmur2_random", "fnv1a",      "fnv1a_random",
};

static const char *const kafka_codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};

static bool kafka_set(const char *s)
{
    return s && *s;
}

/* "SCRAM_SHA256" (Falcosidekick), "scram-sha-256" -> librdkafka's spelling. */
static const char *kafka_sasl_mechanism(const char *s)
{
    char norm[32];
    size_t o = 0;

    for (; *s && o + 1 < sizeof(norm); s++)
        if (*s != '-' && *s != '_')
            norm[o++] = (char)toupper((unsigned char)*s);
    norm[o] = '\0';
    if (strcmp(norm, "PLAIN") == 0)
        return "PLAIN";
    if (strcmp(norm, "SCRAMSHA256") == 0)
        return "SCRAM-SHA-256";
    if (strcmp(norm, "SCRAMSHA512") == 0)
        return "SCRAM-SHA-512";
    return NULL;
}

/* NONE/ONE/ALL (also 0, 1, -1) -> librdkafka's acks value, or NULL. */
static const char *kafka_acks(const char *s)
{
    if (strcasecmp(s, "NONE") == 0 || strcmp(s, "0") == 0)
        return "0";
    if (strcasecmp(s, "ONE") == 0 || strcmp(s, "1") == 0)
        return "1";
    if (strcasecmp(s, "ALL") == 0 || strcmp(s, "-1") == 0)
        return "all";
    return NULL;
}

/* Kafka's topic name rules: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
static bool kafka_topic_ok(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-')
            return false;
    return true;
}

/* Copies src to dst with every occurrence of the password replaced by ***:
 * librdkafka does not log it, but its messages quote broker replies. */
static void kafka_scrub(const char *pw, const char *src, char *dst, size_t len)
{
    size_t pwlen = pw ? strlen(pw) : 0, o = 0;

    while (*src && o + 1 < len) {
        if (pwlen && strncmp(src, pw, pwlen) == 0) {
            for (int i = 0; i < 3 && o + 1 < len; i++)
                dst[o++] = '*';
            src += pwlen;
        } else {
            dst[o++] = *src++;
        }
    }
    dst[o] = '\0';
}

/* librdkafka's internal threads: syslog levels onto ours. Reads only what
 * st owns and init fixed: a producer that outlives its kx_output (a test
 * that failed half-way) must not read freed memory. */
static void kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kafka_state *st = rd_kafka_opaque(rk);
    enum kx_log_level lvl = level <= 2   ? KX_LOG_ERROR
                            : level <= 4 ? KX_LOG_WARN
                            : level <= 6 ? KX_LOG_INFO
                                         : KX_LOG_DEBUG;
    char line[512];

    if (!st || !kx_log_enabled(lvl))
        return;
    kafka_scrub(st->password, buf, line, sizeof(line));
    kx_log(lvl, "output %s: kafka: %s: %s", st->name, fac, line);
}

/* Worker thread (served by rd_kafka_poll/flush): broker and client errors
 * that are not about one record. Most are transient and librdkafka retries
 * them itself; we keep the last one to explain a timed-out batch. */
static void kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_state *st = opaque;
    char why[160]; /* fits broker_err and reopen_msg with their prefixes */

    kafka_scrub(st->password, reason, why, sizeof(why));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[160];

        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        kafka_scrub(st->password, fatal, why, sizeof(why));
        snprintf(st->reopen_msg, sizeof(st->reopen_msg), "fatal error: %s", why);
        st->reopen = true;
    }
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED)
        st->b.auth_failed = true;
    snprintf(st->broker_err, sizeof(st->broker_err), "%s", why);
    /* librdkafka's log already has the transport errors (kafka_on_log), and
     * a failed batch reports them: only what it will not say is a warning */
    kx_log(st->reopen || st->b.auth_failed ? KX_LOG_WARN : KX_LOG_DEBUG, "output %s: kafka: %s: %s",
           st->name, rd_kafka_err2name(err), why);
}

/* Errors that retrying the same record cannot fix. Anything else (timeouts,
 * transport, leader changes, not enough replicas, throttling, unknown codes)
 * is retried by the core, which dead-letters after max_deliver. */
static bool kafka_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

/* Permanent errors librdkafka remembers: after TOPIC_AUTHORIZATION_FAILED
 * it fails every later record of the topic at once until its next metadata
 * refresh (5 min). A fresh producer for the next batch picks up a fix (an
 * ACL granted, the topic created) at once. */
static bool kafka_sticky(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        return true;
    default:
        return false;
    }
}

/* The negative errno deliver() returns for a permanent error. */
static int kafka_errno(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return -EACCES;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        return -EMSGSIZE;
    default:
        return -EINVAL;
    }
}

/* A hint for the permanent errors a user can fix. */
static const char *kafka_hint(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return " (grant the user WRITE on the topic)";
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return " (raise the topic's max.message.bytes and maxmessagebytes)";
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        return " (create the topic)";
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        return " (check sasl, username and password)";
    default:
        return "";
    }
}

/* o->error, truncated where it must be: it is a summary for the log. */
static void kafka_error(struct kx_output *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->error, sizeof(o->error), fmt, ap);
    va_end(ap);
}

/* Worker thread: records one failed record in the batch outcome. */
static void kafka_note(struct kafka_state *st, rd_kafka_resp_err_t err, size_t idx,
                       const char *detail)
{
    struct kafka_batch *b = &st->b;
    const char *uuid = b->alerts ? b->alerts[idx]->uuid : "?";
    bool perm = kafka_permanent(err);
    char *msg = perm ? b->perm_msg : b->retry_msg;
    rd_kafka_resp_err_t *slot = perm ? &b->perm_err : &b->retry_err;

    b->failed++;
    if (*slot)
        return; /* the first error of each kind explains the batch */
    *slot = err;
    snprintf(msg, sizeof(b->perm_msg), "alert %s: %s: %s%s", uuid, rd_kafka_err2name(err),
             detail ? detail : rd_kafka_err2str(err), perm ? kafka_hint(err) : "");
}

/* Worker thread, from rd_kafka_poll/flush: one record's fate. */
static void kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_state *st = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    size_t idx = tag & ((1u << KX_KAFKA_IDX_BITS) - 1);
    uintptr_t id = (uintptr_t)st->b.id & (UINTPTR_MAX >> KX_KAFKA_IDX_BITS); /* as tagged */

    if (tag >> KX_KAFKA_IDX_BITS != id || st->b.pending == 0) {
        /* a batch we gave up on, already reported for retry: if this record
         * made it after all, the retry duplicates it */
        st->late += !m->err;
        return;
    }
    st->b.pending--;
    if (m->err)
        kafka_note(st, m->err, idx, NULL);
}

/* Sets one librdkafka property, diagnosing at our key on failure. The
 * value is never repeated (it may be the password). */
static bool kafka_conf(struct kx_output *o, rd_kafka_conf_t *conf, const char *prop,
                       const char *value, const struct kx_config_node *cfg, const char *key,
                       struct kx_diag *d)
{
    char err[256];

    if (rd_kafka_conf_set(conf, prop, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
        return true;
    kx_diag_add(d, kx_config_get(cfg, key), "output %s: %s: %s", o->name, key,
                strcmp(prop, "sasl.password") == 0 ? "rejected by librdkafka" : err);
    return false;
}

/* Worker thread: the producer and its topic handle from st->conf. 0 or
 * -EINVAL with the reason in err. */
static int kafka_open(struct kafka_state *st, char *err, size_t errlen)
{
    const struct kafka_settings *s = st->o->settings;
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(st->conf);

    if (!conf) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* Connects lazily: brokers that are down now do not fail this. */
    if (!(st->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen))) {
        rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
        return -EINVAL;
    }
    if (!(st->rkt = rd_kafka_topic_new(st->rk, s->topic, NULL))) {
        snprintf(err, errlen, "topic %s: %s", s->topic, rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(st->rk);
        st->rk = NULL;
        return -EINVAL;
    }
    st->reopen = false;
    return 0;
}

/* Worker thread: drops the producer. Every record still in it belongs to a
 * batch already reported failed, which the core sends again: those still
 * queued are purged rather than sent late as duplicates; requests already
 * on the wire get flush_ms to be answered, so the brokers see a clean end. */
static void kafka_close(struct kafka_state *st, int flush_ms)
{
    if (st->rk) {
        rd_kafka_purge(st->rk, RD_KAFKA_PURGE_F_QUEUE);
        rd_kafka_flush(st->rk, flush_ms);
    }
    if (st->rkt)
        rd_kafka_topic_destroy(st->rkt);
    if (st->rk)
        rd_kafka_destroy(st->rk);
    st->rkt = NULL;
    st->rk = NULL;
}

/* The partitioner the settings ask for, or NULL with a diagnostic. */
static const char *kafka_partitioner(struct kx_output *o, const struct kafka_settings *s,
                                     const struct kx_config_node *cfg, struct kx_diag *d)
{
    const char *from_balancer = NULL;

    if (kafka_set(s->balancer)) {
        for (size_t i = 0; i < KX_ARRAY_SIZE(kafka_balancers); i++)
            if (strcasecmp(s->balancer, kafka_balancers[i][0]) == 0)
                from_balancer = kafka_balancers[i][1];
        if (!from_balancer) {
            kx_diag_add(d, kx_config_get(cfg, "balancer"),
                        "output %s: balancer \"%s\" is not one of round_robin, least_bytes, "
                        "hash, crc32, murmur2",
                        o->name, s->balancer);
            return NULL;
        }
    }
    if (!kafka_set(s->partitioner))
        return from_balancer ? from_balancer : "murmur2_random";
    for (size_t i = 0; i < KX_ARRAY_SIZE(kafka_partitioners); i++) {
        if (strcasecmp(s->partitioner, kafka_partitioners[i]) != 0)
            continue;
        if (from_balancer && strcmp(from_balancer, kafka_partitioners[i]) != 0) {
            kx_diag_add(d, kx_config_get(cfg, "partitioner"),
                        "output %s: balancer %s means partitioner %s, not %s: set one of them",
                        o->name, s->balancer, from_balancer, kafka_partitioners[i]);
            return NULL;
        }
        return kafka_partitioners[i];
    }
    kx_diag_add(d, kx_config_get(cfg, "partitioner"),
                "output %s: partitioner \"%s\" is not one of random, consistent, "
                "consistent_random, murmur2, murmur2_random, fnv1a, fnv1a_random",
                o->name, s->partitioner);
    return NULL;
}

/* Checks the settings that are ours to check; librdkafka checks the rest. */
static void kafka_check(struct kx_output *o, const struct kafka_settings *s,
                        const struct kx_config_node *cfg, struct kx_diag *d)
{
    bool codec = false;

    if (!kafka_set(s->hostport) || strpbrk(s->hostport, " \t\r\n"))
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must be a comma-separated list of host:port, "
                    "e.g. kafka-0:9092,kafka-1:9092",
                    o->name);
    if (!s->topic || !kafka_topic_ok(s->topic))
        kx_diag_add(d, kx_config_get(cfg, "topic"),
                    "output %s: topic \"%s\" is not a Kafka topic name (1..249 of a-z A-Z 0-9 "
                    ". _ -)",
                    o->name, s->topic ? s->topic : "");
    if (kafka_set(s->sasl) && !kafka_sasl_mechanism(s->sasl))
        kx_diag_add(d, kx_config_get(cfg, "sasl"),
                    "output %s: sasl \"%s\" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                    o->name, s->sasl);
    if (kafka_set(s->sasl) && (!kafka_set(s->username) || !kafka_set(s->password)))
        kx_diag_add(d, kx_config_get(cfg, "sasl"), "output %s: sasl %s needs username and password",
                    o->name, s->sasl);
    if (!kafka_set(s->sasl) && (kafka_set(s->username) || kafka_set(s->password)))
        kx_diag_add(d, kx_config_get(cfg, kafka_set(s->username) ? "username" : "password"),
                    "output %s: username/password are only used with sasl (PLAIN, "
                    "SCRAM-SHA-256, SCRAM-SHA-512)",
                    o->name);
    if (!s->requiredacks || !kafka_acks(s->requiredacks))
        kx_diag_add(d, kx_config_get(cfg, "requiredacks"),
                    "output %s: requiredacks \"%s\" is not one of NONE, ONE, ALL", o->name,
                    s->requiredacks ? s->requiredacks : "");
    for (size_t i = 0; s->compression && i < KX_ARRAY_SIZE(kafka_codecs); i++)
        codec |= strcasecmp(s->compression, kafka_codecs[i]) == 0;
    if (!codec)
        kx_diag_add(d, kx_config_get(cfg, "compression"),
                    "output %s: compression \"%s\" is not one of none, gzip, snappy, lz4, zstd",
                    o->name, s->compression ? s->compression : "");
    if (!s->tls && (kafka_set(s->cafile) || kafka_set(s->clientcert) || kafka_set(s->clientkey)))
        kx_diag_add(d, kx_config_get(cfg, kafka_set(s->cafile) ? "cafile" : "clientcert"),
                    "output %s: cafile, clientcert and clientkey need tls: true", o->name);
    if (kafka_set(s->clientcert) != kafka_set(s->clientkey))
        kx_diag_add(d, kx_config_get(cfg, kafka_set(s->clientcert) ? "clientcert" : "clientkey"),
                    "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (s->timeout < KX_NSEC_PER_MSEC || s->timeout / KX_NSEC_PER_MSEC > 3600 * 1000)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be 1ms..1h",
                    o->name);
    if (s->maxmessagebytes < 1000 || s->maxmessagebytes > 1000000000)
        kx_diag_add(d, kx_config_get(cfg, "maxmessagebytes"),
                    "output %s: maxmessagebytes must be 1000..1000000000", o->name);
}

/* Builds st->conf from the settings; diagnostics name our keys. */
static int kafka_configure(struct kx_output *o, struct kafka_state *st,
                           const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct kafka_settings *s = o->settings;
    const char *acks = kafka_acks(s->requiredacks), *part;
    const char *proto = kafka_set(s->sasl) ? (s->tls ? "sasl_ssl" : "sasl_plaintext")
                                           : (s->tls ? "ssl" : "plaintext");
    char codec[16], num[32];
    size_t before = d->n;
    rd_kafka_conf_t *c;

    if (!(part = kafka_partitioner(o, s, cfg, d)))
        return -EINVAL;
    if (!(c = st->conf = rd_kafka_conf_new()))
        return -ENOMEM;
    rd_kafka_conf_set_opaque(c, st);
    rd_kafka_conf_set_dr_msg_cb(c, kafka_on_delivery);
    rd_kafka_conf_set_error_cb(c, kafka_on_error);
    rd_kafka_conf_set_log_cb(c, kafka_on_log);
    for (size_t i = 0; i <= strlen(s->compression) && i < sizeof(codec); i++)
        codec[i] = (char)tolower((unsigned char)s->compression[i]);
    codec[sizeof(codec) - 1] = '\0';

    kafka_conf(o, c, "bootstrap.servers", s->hostport, cfg, "hostport", d);
    kafka_conf(o, c, "client.id", kafka_set(s->clientid) ? s->clientid : "klaxon", cfg, "clientid",
               d);
    kafka_conf(o, c, "acks", acks, cfg, "requiredacks", d);
    /* idempotence needs acks=all; it keeps librdkafka's retries duplicate-free */
    kafka_conf(o, c, "enable.idempotence", strcmp(acks, "all") == 0 ? "true" : "false", cfg,
               "requiredacks", d);
    /* librdkafka names an unsupported codec ("not built in") itself */
    kafka_conf(o, c, "compression.codec", codec, cfg, "compression", d);
    kafka_conf(o, c, "partitioner", part, cfg,
               kafka_set(s->partitioner) ? "partitioner" : "balancer", d);
    snprintf(num, sizeof(num), "%lld", (long long)(s->timeout / KX_NSEC_PER_MSEC));
    kafka_conf(o, c, "message.timeout.ms", num, cfg, "timeout", d);
    /* A topic missing from the metadata fails its records (permanently)
     * within the batch's time instead of after librdkafka's 30 s. */
    snprintf(num, sizeof(num), "%lld", (long long)(s->timeout / KX_NSEC_PER_MSEC / 2));
    kafka_conf(o, c, "topic.metadata.propagation.max.ms", num, cfg, "timeout", d);
    snprintf(num, sizeof(num), "%lld", (long long)s->maxmessagebytes);
    kafka_conf(o, c, "message.max.bytes", num, cfg, "maxmessagebytes", d);
    kafka_conf(o, c, "log.connection.close", "false", cfg, "hostport", d); /* idle closes */
    kafka_conf(o, c, "security.protocol", proto, cfg, kafka_set(s->sasl) ? "sasl" : "tls", d);
    if (kafka_set(s->sasl)) {
        kafka_conf(o, c, "sasl.mechanisms", kafka_sasl_mechanism(s->sasl), cfg, "sasl", d);
        kafka_conf(o, c, "sasl.username", s->username, cfg, "username", d);
        kafka_conf(o, c, "sasl.password", s->password, cfg, "password", d);
    }
    if (s->tls) {
        if (kafka_set(s->cafile))
            kafka_conf(o, c, "ssl.ca.location", s->cafile, cfg, "cafile", d);
        if (kafka_set(s->clientcert)) {
            kafka_conf(o, c, "ssl.certificate.location", s->clientcert, cfg, "clientcert", d);
            kafka_conf(o, c, "ssl.key.location", s->clientkey, cfg, "clientkey", d);
        }
        kafka_conf(o, c, "enable.ssl.certificate.verification", s->checkcert ? "true" : "false",
                   cfg, "checkcert", d);
        kafka_conf(o, c, "ssl.endpoint.identification.algorithm", s->checkcert ? "https" : "none",
                   cfg, "checkcert", d);
    }
    return d->n > before ? -EINVAL : 0;
}

/* Output worker thread. */
static int kafka_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct kafka_settings *s = o->settings;
    struct kafka_state *st;
    size_t before = d->n;
    char err[512];
    int rc;

    kafka_check(o, s, cfg, d);
    if (d->n > before)
        return -EINVAL;
    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    st->o = o;
    if (!(st->name = strdup(o->name)) || !(st->password = strdup(s->password ? s->password : "")))
        return -ENOMEM;
    o->priv = st; /* destroy frees what is made below */
    if (kafka_set(s->key) && !(st->key = kx_template_compile(s->key, err, sizeof(err)))) {
        kx_diag_add(d, kx_config_get(cfg, "key"), "output %s: key: %s", o->name, err);
        return -EINVAL;
    }
    if ((rc = kafka_configure(o, st, cfg, d)) != 0)
        return rc;
    if ((rc = kafka_open(st, err, sizeof(err))) != 0) {
        char why[sizeof(err)];

        /* e.g. unreadable TLS files, or settings librdkafka finds inconsistent */
        kafka_scrub(st->password, err, why, sizeof(why));
        kx_diag_add(d, cfg, "output %s: kafka: %s", o->name, why);
        return rc;
    }
    return 0;
}

/* Worker thread: produces one record, waiting while librdkafka's queue is
 * full (records of abandoned batches still in it) until deadline. Takes
 * ownership of json. */
static void kafka_produce(struct kafka_state *st, size_t idx, char *json, const struct kx_buf *key,
                          int64_t deadline)
{
    uintptr_t tag = ((uintptr_t)st->b.id << KX_KAFKA_IDX_BITS) | idx;
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(st->rk, RD_KAFKA_V_RKT(st->rkt),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                RD_KAFKA_V_VALUE(json, strlen(json)),
                                RD_KAFKA_V_KEY(key->len ? key->data : NULL, key->len),
                                RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || kx_monotonic_ns() >= deadline)
            break;
        rd_kafka_poll(st->rk, 50);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->b.pending++;
        return;
    }
    free(json); /* still ours when produce fails */
    kafka_note(st, err, idx,
               err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                   ? "the alert's JSON is larger than maxmessagebytes"
                   : NULL);
}

/* Output worker thread: the batch, then every delivery report of it. */
static int kafka_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct kafka_settings *s = o->settings;
    struct kafka_state *st = o->priv;
    int64_t start = kx_monotonic_ns(), end = start + s->timeout;
    uint64_t id = st->b.id + 1 ? st->b.id + 1 : 1;
    struct kx_buf key;
    char err[256];

    if (n > KX_KAFKA_BATCH) {
        snprintf(o->error, sizeof(o->error), "kafka: batch of %zu over %d", n, KX_KAFKA_BATCH);
        return -EINVAL;
    }
    if (st->reopen || !st->rk) {
        kx_info("output %s: kafka: new producer after %s", o->name, st->reopen_msg);
        kafka_close(st, 0);
        if (kafka_open(st, err, sizeof(err)) != 0) {
            kafka_error(o, "kafka: cannot recreate the producer: %s", err);
            return -EAGAIN;
        }
    }
    memset(&st->b, 0, sizeof(st->b));
    st->b.id = id;
    st->b.alerts = batch;
    st->broker_err[0] = '\0';
    kx_buf_init(&key, KX_KAFKA_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        char *json = kx_alert_to_json(batch[i]);
        int rc = 0;

        kx_buf_reset(&key);
        if (st->key && (rc = kx_template_render(st->key, batch[i], &key)) < 0) {
            free(json);
            if (rc == -E2BIG)
                kafka_note(st, RD_KAFKA_RESP_ERR__INVALID_ARG, i, "the rendered key is too long");
            else
                kafka_note(st, RD_KAFKA_RESP_ERR__FAIL, i, "out of memory rendering the key");
            continue;
        }
        if (!json) {
            kafka_note(st, RD_KAFKA_RESP_ERR__FAIL, i, "out of memory");
            continue;
        }
        kafka_produce(st, i, json, &key, end);
    }
    kx_buf_free(&key);

    /* Delivery reports arrive within the timeout (message.timeout.ms), plus
     * librdkafka's once-a-second scan for expired records. */
    end += KX_KAFKA_DR_GRACE_MS * KX_NSEC_PER_MSEC;
    /* A SASL failure will not heal within the batch: stop there. The
     * producer is replaced before the next batch, dropping these records. */
    for (int64_t now = start; st->b.pending > 0 && now < end && !st->b.auth_failed;
         now = kx_monotonic_ns()) {
        int64_t left = (end - now) / KX_NSEC_PER_MSEC;

        rd_kafka_poll(st->rk, (int)(left > 100 ? 100 : left + 1));
    }
    if (st->b.pending > 0) {
        /* Their reports come later, to kafka_on_delivery, which warns about
         * any that succeeded after all (the core's retry duplicates them). */
        size_t late = st->b.pending;

        st->b.pending = 0;
        st->b.failed += late;
        if (!st->b.retry_err) {
            st->b.retry_err = RD_KAFKA_RESP_ERR__TIMED_OUT;
            snprintf(st->b.retry_msg, sizeof(st->b.retry_msg),
                     "%zu records without a delivery report", late);
        }
    }
    st->b.alerts = NULL;
    if (st->late) {
        kx_warn("output %s: kafka: %zu records of a batch given up on were delivered late "
                "(duplicates); consider a longer timeout",
                o->name, st->late);
        st->late = 0;
    }
    if (!st->b.failed)
        return 0;
    /* SASL failures come through error_cb, the records merely time out */
    if (!st->b.perm_err && st->b.auth_failed) {
        st->b.perm_err = RD_KAFKA_RESP_ERR__AUTHENTICATION;
        snprintf(st->b.perm_msg, sizeof(st->b.perm_msg), "SASL authentication failed%s",
                 kafka_hint(RD_KAFKA_RESP_ERR__AUTHENTICATION));
    }
    if (st->b.perm_err && kafka_sticky(st->b.perm_err)) {
        st->reopen = true;
        snprintf(st->reopen_msg, sizeof(st->reopen_msg), "%s", rd_kafka_err2name(st->b.perm_err));
    }
    kafka_error(o, "kafka: topic %s: %zu of %zu alerts failed: %s%s%s", s->topic, st->b.failed, n,
                st->b.perm_err ? st->b.perm_msg : st->b.retry_msg,
                st->broker_err[0] ? "; last broker error: " : "", st->broker_err);
    return st->b.perm_err ? kafka_errno(st->b.perm_err) : -EAGAIN;
}

/* Output worker thread. */
static void kafka_destroy(struct kx_output *o)
{
    struct kafka_state *st = o->priv;

    if (!st)
        return;
    kafka_close(st, KX_KAFKA_FLUSH_MS);
    if (st->conf)
        rd_kafka_conf_destroy(st->conf);
    kx_template_free(st->key);
    if (st->password)
        explicit_bzero(st->password, strlen(st->password));
    free(st->password);
    free(st->name);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_kafka = {
    .name = "kafka",
    .desc = "Apache Kafka: each alert as a JSON record on a topic (librdkafka, idempotent)",
    .opts = kafka_opts,
    .settings_size = sizeof(struct kafka_settings),
    .max_batch = KX_KAFKA_BATCH,
    .dedupe_key = true,
    .init = kafka_init,
    .deliver = kafka_deliver,
    .destroy = kafka_destroy,
};
