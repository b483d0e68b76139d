/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c - clocks, RFC 3339 time, UUIDs, duration/size parsing, slugs, the
 * bounded buffer and whole-file reading. Everything here is pure or
 * thread-safe.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util.h"

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * KX_NSEC_PER_SEC + ts.tv_nsec;
}

int64_t kx_now_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t kx_monotonic_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

struct timespec kx_deadline_ts(int64_t ns)
{
    int64_t t = kx_now_ns() + ns;

    return (struct timespec){.tv_sec = t / KX_NSEC_PER_SEC, .tv_nsec = t % KX_NSEC_PER_SEC};
}

void kx_time_format(int64_t ns, char *buf, size_t len)
{
    time_t secs = (time_t)(ns / KX_NSEC_PER_SEC);
    long frac = (long)(ns % KX_NSEC_PER_SEC);
    struct tm tm;

    if (frac < 0) {
        frac += KX_NSEC_PER_SEC;
        secs--;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* Reads exactly n digits at *p; -1 when they are not there. */
static int take_digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int kx_time_parse(const char *s, int64_t *ns)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec;
    int64_t frac = 0;

    if (!s)
        return -EINVAL;
    if ((y = take_digits(&p, 4)) < 0 || *p++ != '-' || (mo = take_digits(&p, 2)) < 0 ||
        *p++ != '-' || (d = take_digits(&p, 2)) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if ((h = take_digits(&p, 2)) < 0 || *p++ != ':' || (mi = take_digits(&p, 2)) < 0 ||
        *p++ != ':' || (sec = take_digits(&p, 2)) < 0)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return -EINVAL;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -EINVAL;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if ((oh = take_digits(&p, 2)) < 0 || *p++ != ':' || (om = take_digits(&p, 2)) < 0 ||
            oh > 23 || om > 59)
            return -EINVAL;
        offset = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;

    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    /* int64 nanoseconds span 1677..2262: refuse what does not fit. */
    int64_t secs = (int64_t)t - offset;
    if (secs <= INT64_MIN / KX_NSEC_PER_SEC || secs >= INT64_MAX / KX_NSEC_PER_SEC)
        return -EINVAL;
    *ns = secs * KX_NSEC_PER_SEC + frac;
    return 0;
}

void kx_uuid4(char *buf)
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail on Linux >= 3.17 with a valid buffer;
             * fall back to a time-seeded value rather than abort. */
            for (size_t i = got; i < sizeof(b); i++)
                b[i] = (unsigned char)(kx_now_ns() >> (i % 8));
            break;
        }
        got += (size_t)r;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int kx_duration_parse(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", KX_NSEC_PER_MSEC},
        {"s", KX_NSEC_PER_SEC},
        {"m", 60 * KX_NSEC_PER_SEC},
        {"h", 3600 * KX_NSEC_PER_SEC},
    };
    const char *p = s;
    int64_t total = 0;

    if (!s || !*s)
        return -EINVAL;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0)
            return -EINVAL;
        p = end;
        if (*p == '\0') {
            /* A bare number is seconds, but only as the whole value. */
            if (p != s + strspn(s, "0123456789"))
                return -EINVAL;
            if (v > INT64_MAX / KX_NSEC_PER_SEC)
                return -EINVAL;
            *ns = (int64_t)v * KX_NSEC_PER_SEC;
            return 0;
        }
        size_t best = 0;
        int64_t mult = 0;
        for (size_t i = 0; i < KX_ARRAY_SIZE(units); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0 && ul > best) {
                best = ul;
                mult = units[i].mult;
            }
        }
        if (!best || v > (INT64_MAX - total) / mult)
            return -EINVAL;
        total += (int64_t)v * mult;
        p += best;
    }
    *ns = total;
    return 0;
}

int kx_size_parse(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"", 1},           {"b", 1},           {"k", 1000},        {"kb", 1000},
        {"kib", 1024},     {"m", 1000000},     {"mb", 1000000},    {"mib", 1 << 20},
        {"g", 1000000000}, {"gb", 1000000000}, {"gib", 1LL << 30},
    };
    char *end;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -EINVAL;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < KX_ARRAY_SIZE(units); i++) {
        if (strcasecmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].mult)
                return -EINVAL;
            *bytes = (int64_t)v * units[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

void kx_slug(const char *in, char *out, size_t len)
{
    size_t o = 0;
    bool pending_sep = false;

    if (len == 0)
        return;
    for (const char *p = in ? in : ""; *p && o + 1 < len; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c)) {
            if (pending_sep && o > 0 && o + 2 < len)
                out[o++] = '_';
            pending_sep = false;
            out[o++] = (char)tolower(c);
        } else {
            pending_sep = true;
        }
    }
    out[o] = '\0';
    if (o == 0)
        snprintf(out, len, "unknown");
}

void kx_buf_init(struct kx_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static int buf_reserve(struct kx_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return -E2BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int kx_buf_append(struct kx_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kx_buf_printf(struct kx_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return kx_buf_append(b, small, (size_t)n);

    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void kx_buf_reset(struct kx_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void kx_buf_free(struct kx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *kx_read_file(const char *path, size_t max, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *data = NULL;
    size_t len = 0, cap = 0;

    if (fd < 0)
        return NULL;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            if (ncap > max + 1)
                ncap = max + 1;
            if (ncap <= len) {
                /* The file has more than max bytes. */
                free(data);
                close(fd);
                errno = E2BIG;
                return NULL;
            }
            char *d = realloc(data, ncap);
            if (!d) {
                free(data);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            data = d;
            cap = ncap;
        }
        ssize_t r = read(fd, data + len, cap - 1 - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(data);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap - 1 && cap == max + 1) {
            /* Full at the bound: probe for one more byte. */
            char c;
            ssize_t more = read(fd, &c, 1);
            if (more > 0) {
                free(data);
                close(fd);
                errno = E2BIG;
                return NULL;
            }
            break;
        }
    }
    close(fd);
    if (!data && !(data = malloc(1))) {
        errno = ENOMEM;
        return NULL;
    }
    data[len] = '\0';
    if (len_out)
        *len_out = len;
    return data;
}

uint64_t kx_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

char *kx_base64_encode(const void *p, size_t n, size_t *outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = p;
    size_t len = (n + 2) / 3 * 4, o = 0;
    char *out = malloc(len + 1);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);

        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

void kx_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *kx_excerpt(const char *s, char *buf, size_t len)
{
    size_t o = 0;

    for (; *s && o + 4 < len && o < 40; s++)
        buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (*s && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

const char *kx_http_status_phrase(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "";
    }
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)(ch | 0x20);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

bool kx_query_next(const char **q, const char **name, size_t *nlen, const char **val, size_t *vlen)
{
    const char *s = *q, *eq;
    size_t len;

    while (*s == '&')
        s++;
    if (*s == '\0') {
        *q = s;
        return false;
    }
    len = strcspn(s, "&");
    eq = memchr(s, '=', len);
    *name = s;
    *nlen = eq ? (size_t)(eq - s) : len;
    *val = eq ? eq + 1 : NULL;
    *vlen = eq ? len - *nlen - 1 : 0;
    *q = s + len;
    return true;
}

ssize_t kx_url_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex_value((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value((unsigned char)s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) /* cut short, not hex, or a NUL */
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= outlen)
            return -EINVAL;
        out[o++] = c;
    }
    if (outlen == 0)
        return -EINVAL;
    out[o] = '\0';
    return (ssize_t)o;
}

int kx_when_parse(const char *s, int64_t now, int64_t *out)
{
    int64_t d;

    if (kx_time_parse(s, out) == 0)
        return 0;
    if (kx_duration_parse(s, &d) < 0)
        return -EINVAL;
    *out = d < now ? now - d : 1; /* not before the epoch's first ns (0 means "open") */
    return 0;
}

static int base64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

ssize_t kx_base64_decode(const char *s, size_t n, bool skip_space, char *out, size_t outlen)
{
    uint32_t acc = 0;
    size_t o = 0, chars = 0;
    int bits = 0;
    bool pad = false;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int v;

        if (skip_space && isspace(ch))
            continue;
        if (ch == '=') {
            pad = true;
            continue;
        }
        v = base64_value(ch);
        if (v < 0 || pad) /* not base64, or data after the padding */
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        chars++;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return -EINVAL;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (chars % 4 == 1 || outlen == 0)
        return -EINVAL;
    out[o] = '\0';
    return (ssize_t)o;
}

int kx_buf_json_str(struct kx_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    int rc = kx_buf_append(b, "\"", 1);

    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 0};
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rc = kx_buf_append(b, run, (size_t)(s - run));
        if (rc == 0)
            rc = kx_buf_append(b, esc, n);
        run = s + 1;
    }
    if (rc == 0)
        rc = kx_buf_append(b, run, (size_t)(s - run));
    return rc ? rc : kx_buf_append(b, "\"", 1);
}

bool kx_small_uint(const char *s, size_t n, long *out)
{
    long v = 0;

    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int kx_buf_append_json(struct kx_buf *b, const struct cJSON *v)
{
    char *json = cJSON_PrintUnformatted(v);
    int rc = json ? kx_buf_append(b, json, strlen(json)) : -ENOMEM;

    cJSON_free(json);
    return rc;
}
