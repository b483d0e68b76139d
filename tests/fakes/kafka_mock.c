/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_mock.c - a Kafka broker for integration tests: librdkafka's mock
 * cluster (the Kafka protocol, in-process, on 127.0.0.1) plus a consumer
 * that reports every record it receives. Debian ships no Kafka broker.
 *
 *   kafka_mock [-t topic] [-p partitions] [-b brokers]
 *
 * stdout, one JSON object per line:
 *   {"bootstrap":"127.0.0.1:PORT"}                         first, once ready
 *   {"topic":"..","partition":0,"offset":0,"key":".."|null,"value":"..",
 *    "headers":{"name":"value"}}                            each record
 *   {"ok":"down 1"}                                         each command done
 * stdin, one command per line:
 *   down [ID]   up [ID]        broker ID (default: all) refuses / accepts
 *   error APIKEY CODE [COUNT]  the next COUNT requests of APIKEY fail with CODE
 * Runs until SIGTERM/SIGINT.
 *
 * Threads: main only (librdkafka runs its own); the signal handler sets a
 * flag.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = 1;
}

/* Prints obj as one line and frees it. */
static void emit(cJSON *obj)
{
    char *line = obj ? cJSON_PrintUnformatted(obj) : NULL;

    if (line) {
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    cJSON_free(line);
    cJSON_Delete(obj);
}

static void emit_record(const rd_kafka_message_t *m)
{
    cJSON *o = cJSON_CreateObject(), *h = cJSON_CreateObject();
    rd_kafka_headers_t *hdrs = NULL;
    char *key = m->key ? strndup(m->key, m->key_len) : NULL;
    char *value = strndup(m->payload ? m->payload : "", m->payload ? m->len : 0);

    cJSON_AddStringToObject(o, "topic", rd_kafka_topic_name(m->rkt));
    cJSON_AddNumberToObject(o, "partition", m->partition);
    cJSON_AddNumberToObject(o, "offset", (double)m->offset);
    cJSON_AddItemToObject(o, "key", key ? cJSON_CreateString(key) : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "value", value ? value : "");
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;

        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++) {
            char *v = strndup(val ? val : "", val ? len : 0);

            cJSON_AddStringToObject(h, name, v ? v : "");
            free(v);
        }
    }
    cJSON_AddItemToObject(o, "headers", h);
    free(key);
    free(value);
    emit(o);
}

static void command(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
    char verb[16] = "";
    int a = -1, b = 0, c = 1;
    int n = sscanf(line, "%15s %d %d %d", verb, &a, &b, &c);
    cJSON *o = cJSON_CreateObject();

    line[strcspn(line, "\r\n")] = '\0';
    if (n >= 1 && (strcmp(verb, "down") == 0 || strcmp(verb, "up") == 0)) {
        for (int id = 1; id <= brokers; id++)
            if (a < 0 || a == id)
                (strcmp(verb, "down") == 0 ? rd_kafka_mock_broker_set_down
                                           : rd_kafka_mock_broker_set_up)(mc, id);
        cJSON_AddStringToObject(o, "ok", line);
    } else if (n >= 3 && strcmp(verb, "error") == 0) {
        for (int i = 0; i < c; i++)
            rd_kafka_mock_push_request_errors(mc, (int16_t)a, 1, (rd_kafka_resp_err_t)b);
        cJSON_AddStringToObject(o, "ok", line);
    } else {
        cJSON_AddStringToObject(o, "error", line);
    }
    emit(o);
}

int main(int argc, char **argv)
{
    const char *topic = "falco";
    int partitions = 3, brokers = 1, opt;
    rd_kafka_conf_t *conf;
    rd_kafka_t *owner, *consumer;
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_topic_partition_list_t *parts;
    struct sigaction sa = {.sa_handler = on_signal};
    char err[512], in[1024];
    size_t inlen = 0;
    bool stdin_open = true;
    cJSON *hello;

    while ((opt = getopt(argc, argv, "t:p:b:")) != -1) {
        switch (opt) {
        case 't':
            topic = optarg;
            break;
        case 'p':
            partitions = atoi(optarg);
            break;
        case 'b':
            brokers = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: %s [-t topic] [-p partitions] [-b brokers]\n", argv[0]);
            return 2;
        }
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* The cluster lives in a handle of its own, which never produces (and
     * would warn that it has no bootstrap.servers). */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err));
    if (!(owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    if (!(mc = rd_kafka_mock_cluster_new(owner, brokers)) ||
        rd_kafka_mock_topic_create(mc, topic, partitions, brokers) != 0) {
        fprintf(stderr, "kafka_mock: cannot start the mock cluster\n");
        return 1;
    }

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), err,
                          sizeof(err)) ||
        rd_kafka_conf_set(conf, "group.id", "kafka_mock", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", err, sizeof(err)) ||
        !(consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
        fprintf(stderr, "kafka_mock: consumer: %s\n", err);
        return 1;
    }
    parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = 0; /* all of it */
    rd_kafka_assign(consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    hello = cJSON_CreateObject();
    cJSON_AddStringToObject(hello, "bootstrap", rd_kafka_mock_cluster_bootstraps(mc));
    emit(hello);

    while (!stopping) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        rd_kafka_message_t *m;

        /* read(2), not stdio: a buffered second line would wait unseen */
        if (stdin_open && poll(&pfd, 1, 0) > 0) {
            ssize_t r = read(STDIN_FILENO, in + inlen, sizeof(in) - 1 - inlen);
            char *nl;

            if (r <= 0) {
                stdin_open = false; /* EOF: records only from now on */
            } else {
                inlen += (size_t)r;
                in[inlen] = '\0';
                while ((nl = strchr(in, '\n'))) {
                    *nl = '\0';
                    command(mc, brokers, in);
                    inlen -= (size_t)(nl + 1 - in);
                    memmove(in, nl + 1, inlen + 1);
                }
                if (inlen == sizeof(in) - 1)
                    inlen = 0; /* a line that long is no command */
            }
        }
        if ((m = rd_kafka_consumer_poll(consumer, 50))) {
            if (!m->err)
                emit_record(m);
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
    return 0;
}
