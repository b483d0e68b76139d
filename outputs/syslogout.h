/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syslogout.h - the pure half of the syslog output (outputs/syslog.c): one
 * alert as one syslog message, RFC 5424 or RFC 3164, with a JSON, CEF or
 * LEEF 2.0 body, and the RFC 6587 framing for stream transports. No
 * network here, so tests call it directly. (Not "syslog.h": with -Ioutputs
 * that name would shadow the system's <syslog.h>.)
 *
 * Threads: none of their own; every function is reentrant.
 */
#ifndef KX_OUTPUTS_SYSLOGOUT_H
#define KX_OUTPUTS_SYSLOGOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "alert.h"
#include "util.h"

enum kx_syslog_rfc { KX_SYSLOG_RFC5424, KX_SYSLOG_RFC3164 };
enum kx_syslog_body { KX_SYSLOG_JSON, KX_SYSLOG_CEF, KX_SYSLOG_LEEF };

/* How messages look. Strings are borrowed and must outlive the calls. */
struct kx_syslog_fmt {
    enum kx_syslog_rfc rfc;
    enum kx_syslog_body body;
    int facility;              /* 0..23 (16 = local0) */
    const char *appname;       /* APP-NAME (5424) / TAG (3164); NULL = "klaxon" */
    const char *hostname;      /* NULL or "" = the alert's hostname */
    const char *fallback_host; /* when the alert has none; NULL = "-" */
    const char *sdid;          /* NULL or "" = no SD element ("-"); else "name@pen" */
};

/* Syslog severity (RFC 5424 table 2, 0 = emergency .. 7 = debug) of a Falco
 * priority: the two scales are the same eight levels in the same order. */
int kx_syslog_severity(enum kx_priority p);
/* CEF / LEEF severity 0..10 (emergency 10, alert 9, critical 8, error 7,
 * warning 6, notice 4, informational 3, debug 0). */
int kx_syslog_cef_severity(enum kx_priority p);

/* Facility by name ("local0", "daemon", "auth", ...) or number 0..23;
 * -EINVAL otherwise. */
int kx_syslog_facility_parse(const char *s);

/* Appends s (borrowed, NULL = "") escaped as a CEF header field:
 * '\' -> "\\", '|' -> "\|"; CR, LF and other control characters (not
 * allowed in the header) become spaces. 0 or the kx_buf error. */
int kx_syslog_cef_header(struct kx_buf *out, const char *s);
/* Appends s escaped as a CEF extension value: '\' -> "\\", '=' -> "\=",
 * LF -> "\n", CR -> "\r"; other control characters become spaces. */
int kx_syslog_cef_value(struct kx_buf *out, const char *s);
/* Appends s as a LEEF attribute value. LEEF defines no escapes and events
 * are one line, so the delimiter (tab), CR, LF and other control
 * characters become spaces. */
int kx_syslog_leef_value(struct kx_buf *out, const char *s);

/*
 * Appends the whole message for a (borrowed) to out: header, then the
 * body. No trailing newline, no framing. 0, or -ENOMEM / -E2BIG (the
 * buffer's maximum; out may then hold part of the message).
 *
 *   5424: <PRI>1 2026-11-22T10:01:02.123456Z node-a klaxon - syscall - {...}
 *   3164: <PRI>Nov 22 10:01:02 node-a klaxon: {...}
 */
int kx_syslog_format(const struct kx_syslog_fmt *f, const struct kx_alert *a, struct kx_buf *out);

/* Cuts a message of len bytes to at most max bytes, never inside a UTF-8
 * sequence. Returns the new length (len when it fits). */
size_t kx_syslog_truncate(const char *msg, size_t len, size_t max);

/* Appends one frame for a stream transport: RFC 6587 octet counting
 * ("<len> <msg>") when octet_counting, else the message and a LF
 * (non-transparent framing; our messages never contain a LF). On failure
 * out is left as it was. */
int kx_syslog_frame(struct kx_buf *out, const char *msg, size_t len, bool octet_counting);

#endif
