/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wsclients.c - N WebSocket clients of the hub's live feed (GET /ws, see
 * docs/api.md) in one thread, for bench/ws_fanout.py: plain sockets and
 * epoll, the RFC 6455 client side written out (OpenSSL only for the
 * handshake's SHA-1 and base64), so that 50 clients cost little of the CPU
 * the hub is being measured on.
 *
 * Each client counts frames, messages, bytes and events (the {"seq":..}
 * items of "events" messages, found by scanning, not parsing), checks that
 * event sequences follow each other (without a filter the hub sends every
 * KLAXON_EVENTS sequence, and "skipped" notices say which it left out), and
 * records the latency from output_fields.bench_sent_ns (set by bench/pub.c)
 * to the event's arrival, when the alert carries it.
 *
 * With -s PERIOD one extra client is slow: its socket receive buffer is
 * 32 KiB and it reads at most 256 KiB every PERIOD seconds, so the hub has
 * to skip it ahead (or close it, with http.ws_slow: drop). Once the others
 * have all their events it reads freely, so that received + missed can be
 * checked against -e. It is left out of the others' figures and reported
 * on its own.
 *
 * Usage: wsclients [-n CLIENTS] [-d SECONDS] [-e EVENTS] [-q QUERY] [-t TOKEN]
 *                  [-s PERIOD] ws://HOST:PORT/ws
 * Prints "ready" once every client has its "hello", then one JSON line of
 * results when done: after -d seconds, once every client has accounted for
 * -e events (received, or missed by its "skipped" notices), or on SIGINT or
 * SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define RX_INIT (256u << 10)    /* receive buffer to start with */
#define RX_MAX (16u << 20)      /* largest frame accepted (the hub sends <= 1 MiB) */
#define MSG_MAX (16u << 20)     /* largest reassembled message */
#define TX_MAX (64u << 10)      /* pending writes: a request, pongs, a close */
#define SLOW_RCVBUF 32768       /* the slow client's socket receive buffer */
#define SLOW_BURST (256u << 10) /* what the slow client reads at each turn, at most */
#define LAT_BUCKET_US 100       /* latency histogram: 0.1 ms buckets ... */
#define LAT_BUCKETS 100000      /* ... up to 10 s, then one overflow bucket */
#define HDR_MAX 8192            /* handshake answer */

enum ws_state { WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_CLOSED };

struct wsc {
    int id;
    int fd;
    enum ws_state st;
    bool slow;         /* reads only every opt.slow_period */
    bool reading;      /* EPOLLIN armed (the slow client turns it off) */
    bool want_out;     /* EPOLLOUT armed */
    int64_t next_read; /* slow client: monotonic ns of its next turn */
    size_t budget;     /* slow client: bytes it may still read this turn */
    char key[32];      /* Sec-WebSocket-Key sent, base64 */
    unsigned char *rx; /* owned: bytes read, not yet parsed */
    size_t rx_len, rx_cap;
    char *msg; /* owned: a fragmented message being reassembled */
    size_t msg_len, msg_cap;
    bool in_msg;              /* a fragmented message is in progress */
    unsigned char tx[TX_MAX]; /* pending writes */
    size_t tx_len;
    /* results */
    bool hello;        /* got the "hello" message */
    bool have_seq;     /* last_seq is valid (from hello, skipped or an event) */
    uint64_t last_seq; /* newest stream sequence accounted for */
    uint64_t frames, msgs, evmsgs, events, bytes, gaps, skipped, missed, errors;
    int close_code; /* from the server's close frame; 0 = none */
    char fail[256]; /* why the client failed, "" = it did not */
};

static struct {
    int n;              /* clients, besides the slow one */
    double duration;    /* seconds after "ready"; 0 = until -e is met */
    uint64_t expect;    /* events per client; 0 = no target */
    const char *query;  /* extra query string */
    bool filtered;      /* the query has a filter: sequences may skip */
    const char *token;  /* bearer token */
    double slow_period; /* 0 = no slow client */
    char host[256], port[16], path[2048];
} opt = {.n = 1};

static volatile sig_atomic_t stop_flag;
static bool catch_up; /* the others are done: the slow client reads freely */
static uint32_t lat_hist[LAT_BUCKETS + 1];
static uint64_t lat_n;
static int64_t lat_max_us;
static int epfd;

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void wsc_fail(struct wsc *c, const char *fmt, const char *detail)
{
    if (c->fail[0] == '\0')
        snprintf(c->fail, sizeof(c->fail), fmt, detail);
    if (c->fd >= 0)
        close(c->fd); /* also drops it from the epoll set */
    c->fd = -1;
    c->st = WS_CLOSED;
}

static void wsc_arm(struct wsc *c)
{
    struct epoll_event ev = {.data.ptr = c};

    if (c->fd < 0)
        return;
    ev.events = (c->reading ? EPOLLIN : 0) | (c->want_out ? EPOLLOUT : 0);
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is pending; arms EPOLLOUT if the socket is full. */
static void wsc_flush(struct wsc *c)
{
    while (c->tx_len > 0 && c->fd >= 0) {
        ssize_t w = send(c->fd, c->tx, c->tx_len, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w <= 0) {
            wsc_fail(c, "send: %s", strerror(errno));
            return;
        }
        memmove(c->tx, c->tx + w, c->tx_len - (size_t)w);
        c->tx_len -= (size_t)w;
    }
    if (c->fd >= 0 && c->want_out != (c->tx_len > 0)) {
        c->want_out = c->tx_len > 0;
        wsc_arm(c);
    }
}

static void wsc_queue(struct wsc *c, const void *p, size_t len)
{
    if (c->fd < 0)
        return;
    if (len > TX_MAX - c->tx_len) {
        wsc_fail(c, "%s", "too much pending output (server not reading)");
        return;
    }
    memcpy(c->tx + c->tx_len, p, len);
    c->tx_len += len;
    wsc_flush(c);
}

/* A masked client frame (FIN set) with a payload of at most 125 bytes. */
static void wsc_send_frame(struct wsc *c, int opcode, const void *payload, size_t len)
{
    unsigned char f[2 + 4 + 125], mask[4];

    if (len > 125)
        len = 125;
    if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
        memset(mask, 0x5a, sizeof(mask));
    f[0] = 0x80 | (unsigned char)opcode;
    f[1] = 0x80 | (unsigned char)len;
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < len; i++)
        f[6 + i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
    wsc_queue(c, f, 6 + len);
}

static void wsc_send_close(struct wsc *c, int code)
{
    unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};

    wsc_send_frame(c, 0x8, p, sizeof(p));
}

/* --- the handshake ------------------------------------------------------ */

static void wsc_send_request(struct wsc *c)
{
    unsigned char raw[16];
    char req[4096];
    int n;

    if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
        wsc_fail(c, "getrandom: %s", strerror(errno));
        return;
    }
    EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                 opt.path, opt.host, opt.port, c->key, opt.token ? "Authorization: Bearer " : "",
                 opt.token ? opt.token : "", opt.token ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof(req)) {
        wsc_fail(c, "%s", "request too long");
        return;
    }
    c->st = WS_HANDSHAKE;
    wsc_queue(c, req, (size_t)n);
}

/* The value of header `name` in the answer's header block, trimmed. */
static bool hdr_value(const char *hdrs, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);

    for (const char *l = strstr(hdrs, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1, *e = strstr(v, "\r\n");
            size_t len;

            while (*v == ' ' || *v == '\t')
                v++;
            len = e ? (size_t)(e - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= outlen)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

/* Checks the answer once its headers are in; 1 = open, 0 = need more, -1 = failed. */
static int wsc_check_answer(struct wsc *c)
{
    char hdrs[HDR_MAX + 1], want[64], got[128], src[128];
    unsigned char sha[SHA_DIGEST_LENGTH];
    unsigned char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
    size_t hl;

    if (!end) {
        if (c->rx_len > HDR_MAX)
            wsc_fail(c, "%s", "handshake answer headers too long");
        return c->rx_len > HDR_MAX ? -1 : 0;
    }
    hl = (size_t)(end - c->rx) + 4;
    if (hl > HDR_MAX) {
        wsc_fail(c, "%s", "handshake answer headers too long");
        return -1;
    }
    memcpy(hdrs, c->rx, hl);
    hdrs[hl] = '\0';
    if (strncmp(hdrs, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(hdrs, "\r\n"), *body = (char *)c->rx + hl;
        size_t bl = c->rx_len - hl < 80 ? c->rx_len - hl : 80;

        *eol = '\0';
        snprintf(got, sizeof(got), "%.40s: %.*s", hdrs, (int)bl, body);
        wsc_fail(c, "handshake refused: %s", got);
        return -1;
    }
    snprintf(src, sizeof(src), "%s%s", c->key, WS_GUID);
    SHA1((const unsigned char *)src, strlen(src), sha);
    EVP_EncodeBlock((unsigned char *)want, sha, sizeof(sha));
    if (!hdr_value(hdrs, "Sec-WebSocket-Accept", got, sizeof(got)) || strcmp(got, want) != 0) {
        wsc_fail(c, "handshake: bad Sec-WebSocket-Accept \"%.64s\"", got);
        return -1;
    }
    /* What follows the headers is already frames. */
    memmove(c->rx, c->rx + hl, c->rx_len - hl);
    c->rx_len -= hl;
    c->st = WS_OPEN;
    return 1;
}

/* --- messages ----------------------------------------------------------- */

/* A decimal number at p (bounded by end); *ok cleared if there is none. */
static uint64_t scan_u64(const char *p, const char *end, bool *ok)
{
    uint64_t v = 0;
    const char *s = p;

    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == s)
        *ok = false;
    return v;
}

/* The number after "key": in [p, end); false if absent. */
static bool find_u64(const char *p, const char *end, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, (size_t)(end - p), key, kl);
    bool ok = true;

    if (!k)
        return false;
    *v = scan_u64(k + kl, end, &ok);
    return ok;
}

static void lat_add(int64_t us)
{
    size_t b;

    if (us < 0)
        us = 0;
    b = (size_t)(us / LAT_BUCKET_US);
    lat_hist[b < LAT_BUCKETS ? b : LAT_BUCKETS]++;
    lat_n++;
    if (us > lat_max_us)
        lat_max_us = us;
}

/* Accounts for event (or skipped range) sequence seq: a gap if it does not
 * follow the last one (only checked without a filter). */
static void seq_step(struct wsc *c, uint64_t first, uint64_t last)
{
    if (!opt.filtered && c->have_seq && first != c->last_seq + 1)
        c->gaps++;
    c->last_seq = last;
    c->have_seq = true;
}

/*
 * {"type":"events","events":[{"seq":N,"kind":..,"alert":{..}},{"seq":..}]}:
 * events are found as `{"seq":` right after the array opens and `},{"seq":`
 * between them (an alert object whose own first key is "seq" inside an
 * array of objects would fool it; Falco alerts have none).
 */
static void on_events(struct wsc *c, const char *m, const char *end, int64_t now_wall)
{
    static const char first[] = "\"events\":[{\"seq\":", next[] = "},{\"seq\":",
                      sent_key[] = "\"bench_sent_ns\":";
    const char *p = memmem(m, (size_t)(end - m), first, sizeof(first) - 1);
    /* the next bench_sent_ns at or after p: one pass over the message when
     * every event has one, as pub.c's do */
    const char *k = NULL;

    if (!p)
        return;
    p += sizeof(first) - 1;
    while (p) {
        const char *nx;
        bool seq_ok = true, sent_ok = true;
        uint64_t seq = scan_u64(p, end, &seq_ok), sent;

        if (!k || k < p)
            k = memmem(p, (size_t)(end - p), sent_key, sizeof(sent_key) - 1);
        nx = memmem(p, (size_t)((k ? k : end) - p), next, sizeof(next) - 1);
        if (!nx && k) {
            /* k is this event's: the next event starts after it */
            sent = scan_u64(k + sizeof(sent_key) - 1, end, &sent_ok);
            if (sent_ok && !c->slow)
                lat_add((now_wall - (int64_t)sent) / 1000);
            nx = memmem(k, (size_t)(end - k), next, sizeof(next) - 1);
        }
        if (!seq_ok) {
            c->errors++;
        } else {
            c->events++;
            seq_step(c, seq, seq);
        }
        p = nx ? nx + sizeof(next) - 1 : NULL;
    }
}

static void on_message(struct wsc *c, const char *m, size_t len, int64_t now_wall)
{
    const char *end = m + len, *t = memmem(m, len < 64 ? len : 64, "\"type\":\"", 8);
    uint64_t v, from, to;

    c->msgs++;
    if (!t) {
        c->errors++;
        return;
    }
    t += 8;
    if (end - t > 7 && memcmp(t, "events\"", 7) == 0) {
        c->evmsgs++;
        on_events(c, m, end, now_wall);
    } else if (end - t > 6 && memcmp(t, "hello\"", 6) == 0) {
        c->hello = true;
        if (find_u64(t, end, "\"seq\":", &v)) {
            c->last_seq = v;
            c->have_seq = true;
        }
    } else if (end - t > 8 && memcmp(t, "skipped\"", 8) == 0) {
        c->skipped++;
        if (find_u64(t, end, "\"missed\":", &v))
            c->missed += v;
        if (find_u64(t, end, "\"from\":", &from) && find_u64(t, end, "\"to\":", &to))
            seq_step(c, from, to);
    } else if (end - t > 6 && memcmp(t, "error\"", 6) == 0) {
        c->errors++;
    }
}

/* --- frames ------------------------------------------------------------- */

static int msg_append(struct wsc *c, const unsigned char *p, size_t len)
{
    if (c->msg_len + len > MSG_MAX) {
        wsc_fail(c, "%s", "message larger than 16 MiB");
        return -1;
    }
    if (c->msg_len + len > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : RX_INIT;
        char *n;

        while (cap < c->msg_len + len)
            cap *= 2;
        if (!(n = realloc(c->msg, cap))) {
            wsc_fail(c, "%s", "out of memory");
            return -1;
        }
        c->msg = n;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, p, len);
    c->msg_len += len;
    return 0;
}

/* Parses the complete frames in rx; keeps a partial one for later. */
static void wsc_parse(struct wsc *c)
{
    size_t off = 0;
    int64_t now_wall = now_ns(CLOCK_REALTIME);

    while (c->st == WS_OPEN && c->rx_len - off >= 2) {
        const unsigned char *f = c->rx + off;
        bool fin = f[0] & 0x80;
        int op = f[0] & 0x0f;
        uint64_t plen = f[1] & 0x7f;
        size_t hl = 2;

        if (f[1] & 0x80) {
            wsc_fail(c, "%s", "server sent a masked frame");
            return;
        }
        if (f[0] & 0x70) {
            wsc_fail(c, "%s", "server set RSV bits (no extension was agreed)");
            return;
        }
        if (plen == 126) {
            if (c->rx_len - off < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (c->rx_len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            hl = 10;
        }
        if (plen > RX_MAX - hl) {
            wsc_fail(c, "%s", "frame larger than 16 MiB");
            return;
        }
        if (c->rx_len - off < hl + plen) {
            /* Incomplete: make room for the whole frame, read the rest. */
            if (hl + plen > c->rx_cap) {
                size_t cap = c->rx_cap;
                unsigned char *n;

                while (cap < hl + plen)
                    cap *= 2;
                memmove(c->rx, c->rx + off, c->rx_len - off);
                c->rx_len -= off;
                off = 0;
                if (!(n = realloc(c->rx, cap))) {
                    wsc_fail(c, "%s", "out of memory");
                    return;
                }
                c->rx = n;
                c->rx_cap = cap;
            }
            break;
        }
        const unsigned char *pl = f + hl;

        c->frames++;
        off += hl + plen;
        switch (op) {
        case 0x0: /* continuation */
            if (!c->in_msg) {
                wsc_fail(c, "%s", "continuation frame without a message");
                return;
            }
            if (msg_append(c, pl, plen) < 0)
                return;
            if (fin) {
                on_message(c, c->msg, c->msg_len, now_wall);
                c->in_msg = false;
                c->msg_len = 0;
            }
            break;
        case 0x1: /* text */
        case 0x2: /* binary: counted as a message all the same */
            if (c->in_msg) {
                wsc_fail(c, "%s", "new message inside a fragmented one");
                return;
            }
            if (fin) {
                on_message(c, (const char *)pl, plen, now_wall);
            } else {
                c->in_msg = true;
                c->msg_len = 0;
                if (msg_append(c, pl, plen) < 0)
                    return;
            }
            break;
        case 0x8: /* close: answer with the same code, then we are done */
            c->close_code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
            wsc_send_close(c, plen >= 2 ? c->close_code : 1000);
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_WR);
            c->st = WS_CLOSED;
            break;
        case 0x9: /* ping */
            if (plen > 125 || !fin) {
                wsc_fail(c, "%s", "bad ping frame");
                return;
            }
            wsc_send_frame(c, 0xA, pl, plen);
            break;
        case 0xA: /* pong: unsolicited, ignored */
            break;
        default:
            wsc_fail(c, "%s", "unknown opcode");
            return;
        }
    }
    if (off > 0 && c->fd >= 0) {
        memmove(c->rx, c->rx + off, c->rx_len - off);
        c->rx_len -= off;
    }
}

/* Makes sure at least 4 KiB are free behind rx_len before a read. */
static int wsc_rx_room(struct wsc *c)
{
    unsigned char *n;

    if (c->rx_cap - c->rx_len >= 4096)
        return 0;
    if (c->rx_cap >= RX_MAX + 4096 || !(n = realloc(c->rx, c->rx_cap * 2))) {
        wsc_fail(c, "%s", "receive buffer: out of memory");
        return -1;
    }
    c->rx = n;
    c->rx_cap *= 2;
    return 0;
}

/* The slow client's turn is over: nothing read until the next one. */
static void wsc_slow_pause(struct wsc *c)
{
    c->reading = false;
    c->next_read = now_ns(CLOCK_MONOTONIC) + (int64_t)(opt.slow_period * 1e9);
    wsc_arm(c);
}

/* EPOLLIN: reads and parses. EPOLLIN is level-triggered, so a bounded
 * number of reads per wake-up keeps one busy client from starving the
 * others. The slow client reads at most its budget, then pauses. */
static void wsc_read(struct wsc *c)
{
    for (int i = 0; i < 16 && c->fd >= 0 && c->st != WS_CLOSED; i++) {
        size_t room;
        ssize_t r;

        if (wsc_rx_room(c) < 0)
            return;
        room = c->rx_cap - c->rx_len;
        if (c->slow && !catch_up && room > c->budget)
            room = c->budget;
        r = recv(c->fd, c->rx + c->rx_len, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            if (c->slow && !catch_up && c->st == WS_OPEN && c->hello)
                wsc_slow_pause(c);
            return;
        }
        if (r <= 0) {
            if (c->close_code)
                c->st = WS_CLOSED;
            else
                wsc_fail(c, "connection closed: %s", r == 0 ? "EOF" : strerror(errno));
            return;
        }
        c->bytes += (uint64_t)r;
        c->rx_len += (size_t)r;
        if (c->st == WS_HANDSHAKE && wsc_check_answer(c) <= 0)
            continue;
        wsc_parse(c);
        if (c->slow && !catch_up && c->hello && c->fd >= 0 && c->st == WS_OPEN) {
            c->budget -= (size_t)r;
            if (c->budget == 0) {
                wsc_slow_pause(c);
                return;
            }
        }
    }
}

static int wsc_connect(struct wsc *c, const struct addrinfo *ai)
{
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    int one = 1;

    c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (c->fd < 0) {
        wsc_fail(c, "socket: %s", strerror(errno));
        return -1;
    }
    if (c->slow) {
        int rcv = SLOW_RCVBUF;

        /* before connect, so the advertised window is small too */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        wsc_fail(c, "connect: %s", strerror(errno));
        return -1;
    }
    c->st = WS_CONNECTING;
    c->want_out = true;
    c->reading = false;
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void wsc_on_event(struct wsc *c, uint32_t events)
{
    if (c->st == WS_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t l = sizeof(err);

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            wsc_fail(c, "connect: %s", strerror(err));
            return;
        }
        c->reading = true;
        c->budget = SLOW_BURST;
        c->want_out = false;
        wsc_arm(c);
        wsc_send_request(c);
        return;
    }
    if (events & EPOLLOUT)
        wsc_flush(c);
    if (c->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        wsc_read(c);
}

/* --- the run ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double lat_quantile(double q)
{
    uint64_t want = (uint64_t)((double)lat_n * q), seen = 0;

    if (lat_n == 0)
        return 0;
    if (want >= lat_n)
        want = lat_n - 1;
    for (size_t b = 0; b <= LAT_BUCKETS; b++) {
        seen += lat_hist[b];
        if (seen > want && b < LAT_BUCKETS && (int64_t)((b + 1) * LAT_BUCKET_US) <= lat_max_us)
            return (double)(b * LAT_BUCKET_US + LAT_BUCKET_US / 2) / 1000.0;
        if (seen > want)
            break;
    }
    return (double)lat_max_us / 1000.0;
}

/* s as a JSON string (our own messages and short excerpts of the hub's). */
static void put_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void report(struct wsc *cs, int total, double secs, bool complete)
{
    uint64_t *ev = calloc((size_t)opt.n + 1, sizeof(*ev));
    uint64_t frames = 0, msgs = 0, evmsgs = 0, events = 0, bytes = 0, gaps = 0, skipped = 0,
             missed = 0, errors = 0;
    int connected = 0, failed = 0, closed = 0, k = 0;
    const char *first_fail = "";

    if (!ev) {
        printf("{\"error\":\"out of memory\"}\n");
        return;
    }
    for (int i = 0; i < total; i++) {
        struct wsc *c = &cs[i];

        connected += c->hello;
        if (c->fail[0]) {
            failed++;
            if (!first_fail[0])
                first_fail = c->fail;
        }
        closed += c->close_code != 0;
        if (c->slow)
            continue;
        ev[k++] = c->events;
        frames += c->frames;
        msgs += c->msgs;
        evmsgs += c->evmsgs;
        events += c->events;
        bytes += c->bytes;
        gaps += c->gaps;
        skipped += c->skipped;
        missed += c->missed;
        errors += c->errors;
    }
    qsort(ev, (size_t)k, sizeof(*ev), cmp_u64);
    printf("{\"clients\":%d,\"connected\":%d,\"failed\":%d,\"closed_by_server\":%d,"
           "\"seconds\":%.2f,\"expected\":%llu,\"complete\":%s,",
           opt.n, connected, failed, closed, secs, (unsigned long long)opt.expect,
           complete ? "true" : "false");
    printf("\"events_min\":%llu,\"events_median\":%llu,\"events_max\":%llu,",
           (unsigned long long)(k ? ev[0] : 0), (unsigned long long)(k ? ev[k / 2] : 0),
           (unsigned long long)(k ? ev[k - 1] : 0));
    printf("\"gaps\":%llu,\"skipped\":%llu,\"missed\":%llu,\"errors\":%llu,\"frames\":%llu,"
           "\"messages\":%llu,\"bytes\":%llu,\"frames_per_s_per_client\":%.1f,"
           "\"events_per_message\":%.1f,\"mib_per_s\":%.1f,",
           (unsigned long long)gaps, (unsigned long long)skipped, (unsigned long long)missed,
           (unsigned long long)errors, (unsigned long long)frames, (unsigned long long)msgs,
           (unsigned long long)bytes, secs > 0 && k > 0 ? (double)frames / secs / k : 0.0,
           evmsgs ? (double)events / (double)evmsgs : 0.0,
           secs > 0 ? (double)bytes / secs / 1048576 : 0.0);
    printf("\"latency_ms\":{\"n\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
           (unsigned long long)lat_n, lat_quantile(0.5), lat_quantile(0.99),
           (double)lat_max_us / 1000.0);
    for (int i = 0; i < total; i++) {
        struct wsc *c = &cs[i];

        if (!c->slow)
            continue;
        printf(",\"slow\":{\"period_s\":%.1f,\"events\":%llu,\"skipped\":%llu,\"missed\":%llu,"
               "\"gaps\":%llu,\"close_code\":%d,\"bytes\":%llu,\"failure\":",
               opt.slow_period, (unsigned long long)c->events, (unsigned long long)c->skipped,
               (unsigned long long)c->missed, (unsigned long long)c->gaps, c->close_code,
               (unsigned long long)c->bytes);
        put_json_str(c->fail);
        putchar('}');
    }
    printf(",\"first_failure\":");
    put_json_str(first_fail);
    printf("}\n");
    fflush(stdout);
    free(ev);
}

static int parse_url(const char *url)
{
    const char *p, *slash, *colon;

    if (strncmp(url, "ws://", 5) != 0)
        return -1;
    p = url + 5;
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    if (!colon || (size_t)(colon - p) >= sizeof(opt.host) ||
        (size_t)(slash - colon - 1) >= sizeof(opt.port))
        return -1;
    memcpy(opt.host, p, (size_t)(colon - p));
    memcpy(opt.port, colon + 1, (size_t)(slash - colon - 1));
    snprintf(opt.path, sizeof(opt.path), "%s%s%s", *slash ? slash : "/",
             opt.query ? (strchr(slash, '?') ? "&" : "?") : "", opt.query ? opt.query : "");
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: wsclients [-n CLIENTS] [-d SECONDS] [-e EVENTS] [-q QUERY] [-t TOKEN] "
                    "[-s PERIOD] ws://HOST:PORT/ws\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    struct epoll_event evs[64];
    struct wsc *cs;
    int total, o, rc;
    bool ready = false, complete = false;
    int64_t t_start, t_ready = 0, deadline, t_done = 0;

    while ((o = getopt(argc, argv, "n:d:e:q:t:s:")) != -1) {
        switch (o) {
        case 'n':
            opt.n = atoi(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'e':
            opt.expect = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            opt.query = optarg;
            break;
        case 't':
            opt.token = optarg;
            break;
        case 's':
            opt.slow_period = atof(optarg);
            break;
        default:
            usage();
        }
    }
    /* access_token alone is no filter */
    opt.filtered =
        opt.query && !(strncmp(opt.query, "access_token=", 13) == 0 && !strchr(opt.query, '&'));
    if (optind != argc - 1 || opt.n < 0 || opt.n > 10000 || parse_url(argv[optind]) < 0)
        usage();
    if ((rc = getaddrinfo(opt.host, opt.port, &hints, &ai)) != 0) {
        fprintf(stderr, "wsclients: %s:%s: %s\n", opt.host, opt.port, gai_strerror(rc));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    total = opt.n + (opt.slow_period > 0);
    cs = calloc((size_t)total, sizeof(*cs));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || epfd < 0) {
        fprintf(stderr, "wsclients: %s\n", strerror(errno));
        return 1;
    }
    t_start = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < total; i++) {
        cs[i].id = i;
        cs[i].fd = -1;
        cs[i].slow = i == opt.n;
        if (!(cs[i].rx = malloc(RX_INIT))) {
            fprintf(stderr, "wsclients: out of memory\n");
            return 1;
        }
        cs[i].rx_cap = RX_INIT;
        wsc_connect(&cs[i], ai);
    }
    freeaddrinfo(ai);
    /* No "ready" after 10 s: report what failed. */
    deadline = t_start + 10 * (int64_t)1000000000;

    while (!stop_flag) {
        int64_t now = now_ns(CLOCK_MONOTONIC), wait_ms = 100;
        int n;

        if (!ready) {
            int pending = 0;

            for (int i = 0; i < total; i++) {
                if (cs[i].fail[0])
                    goto out; /* the run is void: say why below */
                pending += !cs[i].hello;
            }
            if (pending == 0) {
                ready = true;
                t_ready = now;
                deadline = opt.duration > 0 ? now + (int64_t)(opt.duration * 1e9)
                           : opt.expect     ? now + (int64_t)600 * 1000000000 /* a safety net */
                                            : INT64_MAX;
                printf("ready\n");
                fflush(stdout);
            }
        } else if (opt.expect) {
            bool all = true, slow_done = true;

            for (int i = 0; i < total; i++) {
                if (cs[i].slow)
                    slow_done = cs[i].events + cs[i].missed >= opt.expect || cs[i].st == WS_CLOSED;
                else if (cs[i].events + cs[i].missed < opt.expect && cs[i].st != WS_CLOSED)
                    all = false;
            }
            if (all && !t_done) {
                t_done = now;
                catch_up = true;
            }
            /* the slow one gets a few of its periods to catch up */
            if (all && (slow_done || now - t_done > (int64_t)((3 * opt.slow_period + 2) * 1e9))) {
                complete = true;
                break;
            }
        }
        if (now >= deadline)
            break;
        /* the slow client: a turn every slow_period, or free reading at the end */
        for (int i = 0; i < total; i++) {
            struct wsc *c = &cs[i];

            if (!c->slow || c->st != WS_OPEN || !c->hello || c->reading)
                continue;
            if (catch_up || now >= c->next_read) {
                c->reading = true;
                c->budget = SLOW_BURST;
                wsc_arm(c);
            } else if ((c->next_read - now) / 1000000 < wait_ms) {
                wait_ms = (c->next_read - now) / 1000000 + 1;
            }
        }
        n = epoll_wait(epfd, evs, 64, (int)wait_ms);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "wsclients: epoll_wait: %s\n", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            wsc_on_event(evs[i].data.ptr, evs[i].events);
    }
out:
    if (!ready) {
        int nf = 0;

        for (int i = 0; i < total; i++)
            nf += cs[i].fail[0] != '\0' || !cs[i].hello;
        fprintf(stderr, "wsclients: %d of %d clients did not get their hello", nf, total);
        for (int i = 0; i < total; i++)
            if (cs[i].fail[0]) {
                fprintf(stderr, " (first: %s)", cs[i].fail);
                break;
            }
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < total; i++) {
        if (cs[i].st == WS_OPEN)
            wsc_send_close(&cs[i], 1000);
    }
    report(cs, total, ready ? (double)(now_ns(CLOCK_MONOTONIC) - t_ready) / 1e9 : 0, complete);
    for (int i = 0; i < total; i++) {
        if (cs[i].fd >= 0)
            close(cs[i].fd);
        free(cs[i].rx);
        free(cs[i].msg);
    }
    free(cs);
    close(epfd);
    return ready ? 0 : 1;
}
