/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp.h - the pure parts of the SMTP (email) output, exported so that unit
 * tests can build and check messages without a mail server: addresses,
 * header encoding (RFC 2047, folding, no injection), quoted-printable
 * bodies, HTML escaping, whole MIME messages for one alert or a digest, and
 * the classification of an SMTP outcome.
 *
 * None of these does I/O or keeps state; any thread may call them (the
 * format functions only read the output's settings and state).
 */
#ifndef KX_OUTPUTS_SMTP_H
#define KX_OUTPUTS_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "outputs.h"
#include "util.h"

#define KX_SMTP_ADDR_MAX 256            /* bytes of one address (RFC 5321: 254) + NUL */
#define KX_SMTP_NAME_MAX 128            /* bytes of a display name + NUL */
#define KX_SMTP_SUBJECT_MAX 400         /* bytes of subject text kept (UTF-8 safe cut) */
#define KX_SMTP_OUTPUT_MAX 8192         /* bytes of an alert's output line in its own mail */
#define KX_SMTP_DIGEST_OUTPUT_MAX 1024  /* ... and in a digest's detail list */
#define KX_SMTP_DIGEST_DETAILS 200      /* alerts listed in detail in a digest */
#define KX_SMTP_DIGEST_GROUPS 500       /* rule/priority rows in a digest's summary */
#define KX_SMTP_DIGEST_NODES 5          /* node names shown per summary row */
#define KX_SMTP_MESSAGE_MAX (16u << 20) /* a whole message, encoded */

/* A mailbox: "Name <addr>" or a bare address (name ""). */
struct kx_smtp_addr {
    char name[KX_SMTP_NAME_MAX]; /* display name, UTF-8, may be "" */
    char addr[KX_SMTP_ADDR_MAX]; /* local@domain, ASCII */
};

/*
 * Parses "Klaxon <klaxon@example.com>", "\"Sec, Team\" <a@b.c>" or
 * "a@b.c" (surrounding blanks ignored). The address must be plain ASCII
 * local@domain without blanks, controls or any of <>()[]\,;:"; the name
 * must have no control characters (CR/LF would inject headers).
 * 0 or -EINVAL (out unspecified).
 */
int kx_smtp_addr_parse(const char *in, struct kx_smtp_addr *out);

/*
 * Appends "Name: value\r\n" with value made safe and standard: CR, LF,
 * tabs and other controls become blanks (no header injection), runs of
 * blanks collapse, invalid UTF-8 becomes '?', the text is cut at
 * KX_SMTP_SUBJECT_MAX bytes; non-ASCII text (or text with "=?") is written
 * as RFC 2047 UTF-8 "B" encoded-words; every line, folds included, is at
 * most 76 characters. 0, -ENOMEM or -E2BIG (out's maximum).
 */
int kx_smtp_header(struct kx_buf *out, const char *name, const char *value);

/* Appends "Name: mailbox, mailbox...\r\n", display names quoted or RFC 2047
 * encoded as needed, folded after commas. */
int kx_smtp_header_addrs(struct kx_buf *out, const char *name, const struct kx_smtp_addr *a,
                         size_t n);

/*
 * Quoted-printable (RFC 2045 6.7) of s[0..n), appended. "\n" and "\r\n"
 * in s are line breaks and become CRLF; any other CR, '=', controls, bytes
 * >= 0x80, blanks at the end of a line and '.' at the start of one are
 * =XX escaped; soft breaks keep every line at most 76 characters.
 */
int kx_smtp_qp_encode(struct kx_buf *out, const char *s, size_t n);

/* Appends s[0..n) with & < > " ' as HTML entities. */
int kx_smtp_html_escape(struct kx_buf *out, const char *s, size_t n);

/* RFC 5322 date of ns since the epoch, in UTC: "Tue, 24 Nov 2026 10:01:02
 * +0000". buf >= 32 bytes. */
void kx_smtp_date(int64_t ns, char *buf, size_t len);

/* One message's parts; all borrowed. */
struct kx_smtp_mail {
    const struct kx_smtp_addr *from;
    const struct kx_smtp_addr *to; /* n_to entries */
    size_t n_to;
    const char *subject;    /* raw text (rendered template): made safe here */
    int64_t date_ns;        /* realtime ns for the Date header */
    const char *message_id; /* without the angle brackets */
    const char *boundary;   /* multipart boundary, must start with "=_" (it can
                             * then never occur in quoted-printable text) */
    const char *priority;   /* X-Klaxon-Priority value, may be NULL */
    const char *text;       /* text/plain body, UTF-8, "\n" line breaks */
    const char *html;       /* text/html body; NULL = a text/plain message only */
};

/* The whole RFC 5322 / MIME message (CRLF lines) appended to out. */
int kx_smtp_message(const struct kx_smtp_mail *m, struct kx_buf *out);

/*
 * The message for one alert (borrowed) / for a digest of held[0..n) as the
 * initialized smtp output o would send it, with now_ns (realtime) as the
 * Date. 0, -ENOMEM or -E2BIG.
 */
int kx_smtp_format_alert(const struct kx_output *o, const struct kx_alert *a, int64_t now_ns,
                         struct kx_buf *out);
int kx_smtp_format_digest(const struct kx_output *o, struct kx_alert *const *held, size_t n,
                          int64_t now_ns, struct kx_buf *out);

/*
 * The plugin outcome of one SMTP transaction: curl_rc is the CURLcode,
 * reply the last SMTP reply code (CURLINFO_RESPONSE_CODE, 0 = none), cmd
 * the last command sent ("RCPT", "AUTH", ... or ""), text the server's last
 * reply line and curl_msg curl's error text (both may be NULL). where names
 * the server ("smtp.example.com:587"). Writes the reason to err and returns
 *   0         delivered
 *   -EAGAIN   4xx replies (421, 450, 451, 452, ...), refused/timed out/dropped
 *             connections: try again later
 *   -EACCES   535 authentication failed, 530 authentication required
 *   -EINVAL   other 5xx replies and failures retrying cannot fix
 */
int kx_smtp_outcome(int curl_rc, long reply, const char *cmd, const char *text,
                    const char *curl_msg, const char *where, char *err, size_t errlen);

#endif
