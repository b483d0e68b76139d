/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.h - small shared helpers: clocks, RFC 3339 time, UUIDs, durations,
 * byte sizes, slugs, bounded string buffers, file reading.
 */
#ifndef KX_UTIL_H
#define KX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define KX_NSEC_PER_SEC 1000000000LL
#define KX_NSEC_PER_MSEC 1000000LL
#define KX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

int64_t kx_now_ns(void);       /* CLOCK_REALTIME, ns since the epoch */
int64_t kx_monotonic_ns(void); /* CLOCK_MONOTONIC */
/* The CLOCK_REALTIME instant ns from now, as pthread_cond_timedwait wants it. */
struct timespec kx_deadline_ts(int64_t ns);

/* "2026-11-22T10:01:02.123456789Z" (30 chars + NUL); buf >= 32 bytes. */
void kx_time_format(int64_t ns, char *buf, size_t len);
/* RFC 3339 with optional fraction and Z or +hh:mm offset; 0 or -EINVAL. */
int kx_time_parse(const char *s, int64_t *ns);

/* Random (v4) UUID, 36 chars + NUL; buf >= 37 bytes. */
void kx_uuid4(char *buf);

/* "250ms", "5s", "1m", "2h", "1h30m", plain integer = seconds; 0 or -EINVAL. */
int kx_duration_parse(const char *s, int64_t *ns);
/* "512", "64KiB", "1MiB", "1MB", "2G"; 0 or -EINVAL. */
int kx_size_parse(const char *s, int64_t *bytes);

/* Lowercase a-z0-9, runs of anything else become one '_', trimmed, at most
 * len-1 bytes; never empty ("unknown"). Safe as one NATS subject token. */
void kx_slug(const char *in, char *out, size_t len);

/*
 * A growable byte buffer with a hard maximum (curl's dynbuf idea): appends
 * past max fail with -E2BIG and leave the buffer unchanged. Always NUL
 * terminated when len > 0.
 */
struct kx_buf {
    char *data; /* owned */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};
void kx_buf_init(struct kx_buf *b, size_t max);
int kx_buf_append(struct kx_buf *b, const void *p, size_t n);
int kx_buf_printf(struct kx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kx_buf_reset(struct kx_buf *b); /* len = 0, keeps memory */
/* s[0..n) as a non-negative decimal of 1 to 9 digits (so below 10^9, no
 * sign, no spaces) into *out; false otherwise. Pure. */
bool kx_small_uint(const char *s, size_t n, long *out);
struct cJSON;
/* Appends v (borrowed) printed as compact JSON. 0, -ENOMEM or the append error. */
int kx_buf_append_json(struct kx_buf *b, const struct cJSON *v);
/* Appends s (NUL-terminated UTF-8, borrowed) as a quoted JSON string. 0 or the append error. */
int kx_buf_json_str(struct kx_buf *b, const char *s);
void kx_buf_free(struct kx_buf *b); /* releases memory; no-op on a zeroed buf */

/* Reads a whole file (at most max bytes) into a NUL-terminated malloc'd
 * string (caller owns). NULL and errno set on failure (E2BIG if too big). */
char *kx_read_file(const char *path, size_t max, size_t *len_out);

/* Standard base64 (with padding) of n bytes into a new NUL-terminated
 * string (caller frees), its length in *outlen (may be NULL). NULL on OOM. */
char *kx_base64_encode(const void *p, size_t n, size_t *outlen);
/* vsnprintf into err for one-line error messages; no-op when err is NULL. */
void kx_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* At most 40 printable bytes of s (others as '?', "..." when cut) in buf,
 * to quote a user's value back in an error. Returns buf. */
const char *kx_excerpt(const char *s, char *buf, size_t len);

/* "Not Found" for 404, ...; "Client Error"/"Server Error" for other 4xx/5xx. */
const char *kx_http_status_phrase(long status);

/*
 * Steps through a query string ("a=1&b=%26c"): the next non-empty
 * name=value pair from *q as raw (still %-encoded) spans; *val is NULL when
 * the pair has no '='. Advances *q; false at the end. Pure.
 */
bool kx_query_next(const char **q, const char **name, size_t *nlen, const char **val, size_t *vlen);

/* %-decodes s[0..n) ('+' is a space, as forms send it) into out (outlen
 * bytes, NUL-terminated): the length, or -EINVAL (a broken escape, an
 * encoded NUL, or out too small). Pure. */
ssize_t kx_url_decode(const char *s, size_t n, char *out, size_t outlen);

/* An RFC 3339 time, or a duration back from now ("15m"), as ns since the
 * epoch (at least 1). 0 or -EINVAL. Pure. */
int kx_when_parse(const char *s, int64_t now, int64_t *out);

/* Standard base64 of s[0..n) (padding optional; whitespace skipped when
 * skip_space) into out (outlen bytes, NUL-terminated). The decoded length,
 * or -EINVAL (not base64, or out too small). Pure. */
ssize_t kx_base64_decode(const char *s, size_t n, bool skip_space, char *out, size_t outlen);

/* 64-bit FNV-1a, for dedupe keys and hashing. */
uint64_t kx_hash64(const void *p, size_t n, uint64_t seed);

#endif
