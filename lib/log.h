/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - leveled logging to stderr, as text or JSON lines.
 *
 * Thread-safe: one write(2) per line, so lines from several threads never
 * interleave. Call kx_log_init() once at start-up, before threads exist.
 */
#ifndef KX_LOG_H
#define KX_LOG_H

#include <stdbool.h>

enum kx_log_level {
    KX_LOG_DEBUG,
    KX_LOG_INFO,
    KX_LOG_WARN,
    KX_LOG_ERROR,
};

/* prog: borrowed, must outlive all logging (a string literal). */
void kx_log_init(const char *prog, enum kx_log_level level, bool json);
/* "debug" | "info" | "warn"/"warning" | "error"; 0 or -EINVAL. */
int kx_log_level_parse(const char *s, enum kx_log_level *out);
bool kx_log_enabled(enum kx_log_level level);
void kx_log(enum kx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kx_debug(...) kx_log(KX_LOG_DEBUG, __VA_ARGS__)
#define kx_info(...)  kx_log(KX_LOG_INFO, __VA_ARGS__)
#define kx_warn(...)  kx_log(KX_LOG_WARN, __VA_ARGS__)
#define kx_error(...) kx_log(KX_LOG_ERROR, __VA_ARGS__)

#endif
