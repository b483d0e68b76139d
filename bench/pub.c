/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pub.c - publishes Falco-format alerts to NATS at a steady rate, as
 * sensors do, for the latency benchmark; in C so the load generator does
 * not take the CPU the hub and nats-server are being measured on.
 *
 * Each alert is distinct (its own uuid and container id) and carries
 * output_fields.bench_sent_ns, its send time, which bench/sink.c reads.
 *
 * Usage: pub NATS_URL SUBJECT RATE SECONDS [FIRST_ID]
 * Prints the achieved rate on stdout when done.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: pub NATS_URL SUBJECT RATE SECONDS [FIRST_ID]\n");
        return 2;
    }
    const char *subject = argv[2];
    long rate = atol(argv[3]), seconds = atol(argv[4]);
    long first = argc > 5 ? atol(argv[5]) : 0, total = rate * seconds;
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);

    if (s != NATS_OK || rate <= 0 || seconds <= 0) {
        fprintf(stderr, "pub: %s\n", s != NATS_OK ? natsStatus_GetText(s) : "bad rate/seconds");
        return 1;
    }
    /* send in 1 ms ticks: smooth enough, and cheap */
    int64_t t0 = now_ns(CLOCK_MONOTONIC), tick = 1000000;
    long sent = 0;
    for (int64_t k = 1; sent < total; k++) {
        long due = (long)((double)rate * (double)(k * tick) / 1e9);
        if (due > total)
            due = total;
        for (; sent < due && s == NATS_OK; sent++) {
            char buf[1024], ts[40], uuid[37];
            long id = first + sent;
            time_t wall = time(NULL);
            struct tm tm;
            int n;

            gmtime_r(&wall, &tm);
            strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(uuid, sizeof(uuid), "%08lx-0000-4000-8000-%012lx", (long)getpid(), id);
            n = snprintf(buf, sizeof(buf),
                         "{\"uuid\":\"%s\",\"time\":\"%s.123456789Z\",\"priority\":\"Critical\","
                         "\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
                         "\"hostname\":\"node-a\",\"output\":\"A shell was spawned in a container "
                         "(user=root shell=bash seq=%ld)\",\"tags\":[\"container\",\"shell\","
                         "\"mitre_execution\",\"T1059\"],\"output_fields\":{\"evt.type\":"
                         "\"execve\",\"proc.name\":\"bash\",\"proc.exepath\":\"/usr/bin/bash\","
                         "\"proc.pid\":%ld,\"container.id\":\"%012lx\",\"user.name\":\"root\","
                         "\"bench_sent_ns\":%lld}}",
                         uuid, ts, id, 4242 + id, id, (long long)now_ns(CLOCK_REALTIME));
            natsMsg *m = NULL;
            s = natsMsg_Create(&m, subject, NULL, buf, n);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(m, "Nats-Msg-Id", uuid);
            if (s == NATS_OK)
                s = natsConnection_PublishMsg(nc, m);
            natsMsg_Destroy(m);
        }
        if (s != NATS_OK) {
            fprintf(stderr, "pub: publish: %s\n", natsStatus_GetText(s));
            return 1;
        }
        int64_t wait = t0 + (k + 1) * tick - now_ns(CLOCK_MONOTONIC);
        if (wait > 0)
            usleep((useconds_t)(wait / 1000));
    }
    natsConnection_FlushTimeout(nc, 5000);
    double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    printf("%.0f\n", (double)sent / secs);
    natsConnection_Destroy(nc);
    return 0;
}
