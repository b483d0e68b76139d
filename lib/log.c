/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - leveled logging to stderr. Each line is formatted into a local
 * buffer and written with a single write(2), so concurrent threads never
 * interleave within a line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *log_prog = "klaxon";  /* set once by kx_log_init */
static enum kx_log_level log_level = KX_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void kx_log_init(const char *prog, enum kx_log_level level, bool json)
{
    log_prog = prog;
    log_level = level;
    log_json = json;
}

int kx_log_level_parse(const char *s, enum kx_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < KX_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum kx_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = KX_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

bool kx_log_enabled(enum kx_log_level level)
{
    return level >= log_level;
}

/* Appends s to line as a JSON string body (without quotes), bounded. */
static size_t json_escape(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}

void kx_log(enum kx_log_level level, const char *fmt, ...)
{
    char msg[2048], line[4600], ts[40];
    int saved = errno;
    size_t n;

    if (level < log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kx_time_format(kx_now_ns(), ts, sizeof(ts));

    if (log_json) {
        char esc[4200];
        json_escape(esc, sizeof(esc), msg);
        n = (size_t)snprintf(line, sizeof(line),
                             "{\"time\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"msg\":\"%s\"}\n",
                             ts, level_names[level], log_prog, esc);
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %s %-5s %s\n", ts, log_prog,
                             level_names[level], msg);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}
