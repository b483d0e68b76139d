/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sink.c - a fast HTTP/1.1 receiver for the output benchmark, so the sink
 * is never what limits the hub.
 *
 * One thread, epoll, keep-alive. Every POST body is scanned for the
 * "bench_sent_ns":<ns> field the benchmark puts into each alert; each one
 * found is an alert received, and now - sent is its end-to-end latency.
 * Answers like the service the path names: Splunk HEC on
 * /services/collector/event, 200 with an empty body elsewhere.
 *
 *   GET  /stats  -> {"alerts":N,"requests":N,"p50_ms":x,"p99_ms":x,"max_ms":x}
 *   POST /reset  -> forgets everything received
 *
 * Usage: sink PORT   (listens on 127.0.0.1 only)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAT (1 << 22) /* latencies kept: 4M alerts */
#define CONN_MAX (64 << 20)

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
};

static double *lat;
static size_t nlat, nalerts, nrequests;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void scan(const char *body, size_t len)
{
    static const char key[] = "\"bench_sent_ns\":";
    int64_t now = now_ns();
    const char *p = body, *end = body + len;

    while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
        p += sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == '"'))
            p++;
        int64_t sent = strtoll(p, NULL, 10);
        nalerts++;
        if (nlat < MAX_LAT && sent > 0)
            lat[nlat++] = (double)(now - sent) / 1e6;
    }
}

static void reply(int fd, const char *body)
{
    char hdr[256];
    size_t bl = strlen(body);
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     bl);
    /* small replies on a local socket: a short write is not expected */
    if (write(fd, hdr, (size_t)n) < 0 || (bl && write(fd, body, bl) < 0))
        perror("sink: write");
}

static void stats(int fd)
{
    char out[256];
    double p50 = 0, p99 = 0, max = 0;

    if (nlat) {
        qsort(lat, nlat, sizeof(*lat), cmp_double);
        p50 = lat[nlat / 2];
        p99 = lat[nlat * 99 / 100];
        max = lat[nlat - 1];
    }
    snprintf(out, sizeof(out),
             "{\"alerts\":%zu,\"requests\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}",
             nalerts, nrequests, p50, p99, max);
    reply(fd, out);
}

/* Handles every complete request in c->buf. -1 closes the connection. */
static int drain(struct conn *c)
{
    for (;;) {
        char *eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!eoh)
            return c->len > 65536 ? -1 : 0;
        size_t hlen = (size_t)(eoh - c->buf) + 4, clen = 0;
        const char *cl = memmem(c->buf, hlen, "Content-Length:", 15);
        if (!cl)
            cl = memmem(c->buf, hlen, "content-length:", 15);
        if (cl)
            clen = strtoull(cl + 15, NULL, 10);
        if (clen > CONN_MAX)
            return -1;
        if (c->len < hlen + clen)
            return 0;
        if (strncmp(c->buf, "GET /stats", 10) == 0) {
            stats(c->fd);
        } else if (strncmp(c->buf, "POST /reset", 11) == 0) {
            nlat = nalerts = nrequests = 0;
            reply(c->fd, "{}");
        } else {
            nrequests++;
            scan(c->buf + hlen, clen);
            reply(c->fd, strncmp(c->buf, "POST /services/collector", 24) == 0
                             ? "{\"text\":\"Success\",\"code\":0}"
                             : "");
        }
        memmove(c->buf, c->buf + hlen + clen, c->len - hlen - clen);
        c->len -= hlen + clen;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sink PORT\n");
        return 2;
    }
    lat = malloc(MAX_LAT * sizeof(*lat));
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!lat || ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 128)) {
        perror("sink");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                continue;
            }
            for (;;) {
                if (c->cap - c->len < 65536) {
                    c->cap = c->cap ? c->cap * 2 : 1 << 20;
                    c->buf = realloc(c->buf, c->cap);
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r > 0) {
                    c->len += (size_t)r;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR) || drain(c) < 0) {
                    close(c->fd);
                    free(c->buf);
                    free(c);
                }
                break;
            }
        }
    }
}
