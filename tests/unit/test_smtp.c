/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_smtp.c - the SMTP output (outputs/smtp.c) without a mail server:
 * addresses, header safety (CR/LF injection, RFC 2047, folding),
 * quoted-printable, HTML escaping, whole MIME messages for one alert and
 * for a digest, outcome classification, settings checks, and deliver()
 * against a closed port and in digest (hold) mode. The integration test
 * (tests/integration/test_output_smtp.py) sends to a real aiosmtpd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"
#include "log.h"
#include "outputs.h"
#include "smtp.h"
#include "util.h"

extern const struct kx_output_ops kx_output_smtp; /* outputs/smtp.c */

#define T0 1795341662000000000LL /* 2026-11-22T10:01:02Z */

/* ---- decoding helpers (what a mail reader does) --------------------------- */

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Appends the base64 decoding of s[0..n). */
static void b64_decode(const char *s, size_t n, struct kx_buf *out)
{
    unsigned acc = 0;
    int bits = 0;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64val(s[i]);

        assert_true(v >= 0);
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            char c = (char)(acc >> (bits - 8) & 0xff);

            bits -= 8;
            assert_int_equal(kx_buf_append(out, &c, 1), 0);
        }
    }
}

/* Appends the quoted-printable decoding of s[0..n) ("\r\n" -> "\n"). */
static void qp_decode(const char *s, size_t n, struct kx_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2; /* soft break */
        } else if (s[i] == '=') {
            char hex[3] = {s[i + 1], s[i + 2], 0}, c;

            assert_true(i + 2 < n);
            c = (char)strtol(hex, NULL, 16);
            assert_int_equal(kx_buf_append(out, &c, 1), 0);
            i += 2;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            assert_int_equal(kx_buf_append(out, "\n", 1), 0);
            i++;
        } else {
            assert_int_equal(kx_buf_append(out, s + i, 1), 0);
        }
    }
}

/* Every line of msg: CRLF-terminated, no bare CR or LF, 7-bit, at most max
 * characters. */
static void assert_lines(const char *msg, size_t len, size_t max)
{
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];

        assert_true(c < 0x80);
        if (c == '\r') {
            assert_true(i + 1 < len && msg[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        assert_int_not_equal(c, '\n');
        col++;
        if (col > max)
            fail_msg("line longer than %zu at byte %zu: %.100s", max, i, msg + i + 1 - col);
    }
}

/* The value of header name in msg (unfolded, encoded-words decoded); static. */
static const char *header(const char *msg, const char *name)
{
    static char out[4096];
    struct kx_buf raw, dec;
    char key[64];
    const char *p, *end;

    snprintf(key, sizeof(key), "\r\n%s:", name);
    kx_buf_init(&raw, 1 << 16);
    kx_buf_init(&dec, 1 << 16);
    if (strncmp(msg, key + 2, strlen(key + 2)) == 0)
        p = msg + strlen(key + 2);
    else if ((p = strstr(msg, key)) != NULL)
        p += strlen(key);
    else
        return NULL;
    end = strstr(msg, "\r\n\r\n"); /* the header block ends there, or with msg */
    end = end ? end + 2 : msg + strlen(msg);
    if (p >= end)
        return NULL; /* only in the body */
    for (; p < end; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            if (p[2] != ' ' && p[2] != '\t')
                break;
            p++; /* unfold: drop the CRLF, keep the blank */
            continue;
        }
        assert_int_equal(kx_buf_append(&raw, p, 1), 0);
    }
    p = raw.data ? raw.data : "";
    while (*p == ' ')
        p++;
    while (*p) {
        const char *ew = strstr(p, "=?UTF-8?B?");

        if (!ew) {
            kx_buf_append(&dec, p, strlen(p));
            break;
        }
        kx_buf_append(&dec, p, (size_t)(ew - p));
        ew += 10;
        end = strstr(ew, "?=");
        assert_non_null(end);
        b64_decode(ew, (size_t)(end - ew), &dec);
        p = end + 2;
        /* blanks between adjacent encoded-words are not text (RFC 2047 6.2) */
        if (strncmp(p + strspn(p, " "), "=?UTF-8?B?", 10) == 0)
            p += strspn(p, " ");
    }
    snprintf(out, sizeof(out), "%s", dec.data ? dec.data : "");
    kx_buf_free(&raw);
    kx_buf_free(&dec);
    return out;
}

/* The decoded body of the part of type ("text/html") in msg; caller frees. */
static char *part(const char *msg, const char *type)
{
    char key[64];
    const char *p, *body, *end;
    struct kx_buf dec;

    snprintf(key, sizeof(key), "Content-Type: %s; charset=utf-8\r\n", type);
    p = strstr(msg, key);
    if (!p)
        return NULL;
    assert_non_null(strstr(p, "Content-Transfer-Encoding: quoted-printable\r\n"));
    body = strstr(p, "\r\n\r\n") + 4;
    end = strstr(body, "\r\n--=_klaxon_");
    if (!end)
        end = body + strlen(body);
    kx_buf_init(&dec, 1 << 24);
    qp_decode(body, (size_t)(end - body), &dec);
    return dec.data ? dec.data : strdup("");
}

/* ---- addresses and headers ------------------------------------------------ */

static void test_addr_parse(void **state)
{
    struct kx_smtp_addr a;

    assert_int_equal(kx_smtp_addr_parse("klaxon@example.com", &a), 0);
    assert_string_equal(a.name, "");
    assert_string_equal(a.addr, "klaxon@example.com");
    assert_int_equal(kx_smtp_addr_parse("  Klaxon Alerts <klaxon@example.com> ", &a), 0);
    assert_string_equal(a.name, "Klaxon Alerts");
    assert_string_equal(a.addr, "klaxon@example.com");
    assert_int_equal(kx_smtp_addr_parse("\"Sec, Team\" <sec+k8s@example.com>", &a), 0);
    assert_string_equal(a.name, "Sec, Team");
    assert_string_equal(a.addr, "sec+k8s@example.com");
    assert_int_equal(kx_smtp_addr_parse("<a@b.c>", &a), 0);
    assert_string_equal(a.addr, "a@b.c");

    const char *bad[] = {"",
                         "nobody",
                         "a@",
                         "@b.c",
                         "a@b@c",
                         "a b@c.d",
                         "<a@b.c",
                         "a@b.c>",
                         "N <a@b.c> x",
                         "Evil\r\nBcc: x@y.z <a@b.c>",
                         "a@b.c\r\nBcc: x@y.z",
                         "a,b@c.d",
                         "a@b.",
                         "\xc3\xa9@b.c",
                         NULL};
    for (size_t i = 0; bad[i]; i++)
        if (kx_smtp_addr_parse(bad[i], &a) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(kx_smtp_addr_parse(NULL, &a), -EINVAL);
}

static void test_header_plain_and_injection(void **state)
{
    struct kx_buf b;

    kx_buf_init(&b, 1 << 16);
    assert_int_equal(kx_smtp_header(&b, "Subject", "[Klaxon] Critical shell on node-a"), 0);
    assert_string_equal(b.data, "Subject: [Klaxon] Critical shell on node-a\r\n");

    /* CR/LF can never start a new header: they become blanks */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", "hi\r\nBcc: victim@example.com\n\r\nbody"), 0);
    assert_string_equal(b.data, "Subject: hi Bcc: victim@example.com body\r\n");
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", "  tab\there\x01\x7f  end \r\n"), 0);
    assert_string_equal(b.data, "Subject: tab here end\r\n");

    /* empty and NULL */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", NULL), 0);
    assert_string_equal(b.data, "Subject:\r\n");
    kx_buf_free(&b);
}

static void test_header_rfc2047(void **state)
{
    static const char subj[] =
        "[Klaxon] Critical Terminal shell in container on n\xc5\x93ud-\xc3\xa9t\xc3\xa9 "
        "\xe2\x9a\xa0 \xf0\x9f\x94\xa5 (container \xe6\x97\xa5\xe6\x9c\xac)";
    struct kx_buf b;

    kx_buf_init(&b, 1 << 16);
    assert_int_equal(kx_smtp_header(&b, "Subject", subj), 0);
    assert_memory_equal(b.data, "Subject: =?UTF-8?B?", 19);
    assert_lines(b.data, b.len, 76);
    assert_string_equal(header(b.data, "Subject"), subj);
    /* each encoded-word at most 75 characters (RFC 2047 2) */
    for (const char *p = b.data; (p = strstr(p, "=?UTF-8?B?")); p++)
        assert_true(strstr(p, "?=") + 2 - p <= 75);

    /* text that looks like an encoded-word is encoded, so it reads back as is */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", "=?UTF-8?B?aGk=?= literally"), 0);
    assert_string_equal(header(b.data, "Subject"), "=?UTF-8?B?aGk=?= literally");

    /* invalid UTF-8 becomes '?' rather than breaking readers */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", "bad \xff\xc3 end \xed\xa0\x80"), 0);
    assert_string_equal(b.data, "Subject: bad ?? end ???\r\n");

    /* a very long subject is cut at KX_SMTP_SUBJECT_MAX on a character */
    {
        char big[3000];
        size_t o = 0;

        while (o + 2 < sizeof(big) - 1) {
            big[o++] = '\xc3';
            big[o++] = '\xa9';
        }
        big[o] = '\0';
        kx_buf_reset(&b);
        assert_int_equal(kx_smtp_header(&b, "Subject", big), 0);
        assert_lines(b.data, b.len, 76);
        assert_int_equal(strlen(header(b.data, "Subject")), KX_SMTP_SUBJECT_MAX);
    }
    kx_buf_free(&b);
}

static void test_header_folding_ascii(void **state)
{
    struct kx_buf b;
    char want[1024];
    size_t o = 0;

    kx_buf_init(&b, 1 << 16);
    for (int i = 0; i < 40; i++)
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%sword%d", i ? " " : "", i);
    assert_int_equal(kx_smtp_header(&b, "Subject", want), 0);
    assert_lines(b.data, b.len, 76);
    assert_non_null(strstr(b.data, "\r\n word"));         /* folded at a blank */
    assert_null(strstr(b.data, "=?"));                    /* plain ASCII stays readable */
    assert_string_equal(header(b.data, "Subject"), want); /* unfolds to the same text */

    /* a word too long for any line is encoded instead (and still <= 76) */
    memset(want, 'x', 200);
    want[200] = '\0';
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header(&b, "Subject", want), 0);
    assert_lines(b.data, b.len, 76);
    assert_string_equal(header(b.data, "Subject"), want);
    kx_buf_free(&b);
}

static void test_header_addrs(void **state)
{
    struct kx_smtp_addr a[8];
    struct kx_buf b;

    assert_int_equal(kx_smtp_addr_parse("Klaxon <klaxon@example.com>", &a[0]), 0);
    assert_int_equal(kx_smtp_addr_parse("\"Sec, \\Team\" <sec@example.com>", &a[1]), 0);
    assert_int_equal(kx_smtp_addr_parse("S\xc3\xa9"
                                        "curit\xc3\xa9 <secu@example.fr>",
                                        &a[2]),
                     0);
    for (int i = 3; i < 8; i++) {
        char s[64];

        snprintf(s, sizeof(s), "oncall-team-number-%d@example.com", i);
        assert_int_equal(kx_smtp_addr_parse(s, &a[i]), 0);
    }
    kx_buf_init(&b, 1 << 16);
    assert_int_equal(kx_smtp_header_addrs(&b, "From", a, 1), 0);
    assert_string_equal(b.data, "From: Klaxon <klaxon@example.com>\r\n");
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_header_addrs(&b, "To", a, 8), 0);
    assert_lines(b.data, b.len, 76);
    assert_non_null(strstr(b.data, "\"Sec, \\\\Team\" <sec@example.com>"));
    assert_non_null(strstr(b.data, "=?UTF-8?B?U8OpY3VyaXTDqQ==?= <secu@example.fr>"));
    assert_non_null(strstr(b.data, ",\r\n oncall-team-number-"));
    kx_buf_free(&b);
}

/* ---- bodies --------------------------------------------------------------- */

static void test_qp(void **state)
{
    struct kx_buf enc, dec;
    char in[5000];
    size_t n = 0;

    kx_buf_init(&enc, 1 << 20);
    kx_buf_init(&dec, 1 << 20);

    assert_int_equal(kx_smtp_qp_encode(&enc, "a=b \n.dot\nx\t\r\nend \xc3\xa9", 20), 0);
    assert_string_equal(enc.data, "a=3Db=20\r\n=2Edot\r\nx=09\r\nend =C3=A9");

    /* long lines, every byte value, blanks at soft-break positions */
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 256; c++)
            in[n++] = (char)c;
        memset(in + n, 'x', 300);
        n += 300;
        memset(in + n, ' ', 150);
        n += 150;
        in[n++] = '\n';
        for (int i = 0; i < 200; i++)
            in[n++] = (char)(i % 3 ? '.' : '=');
        in[n++] = '\n';
    }
    kx_buf_reset(&enc);
    assert_int_equal(kx_smtp_qp_encode(&enc, in, n), 0);
    assert_lines(enc.data, enc.len, 76);
    for (const char *p = enc.data; (p = strstr(p, " \r\n")); p++)
        fail_msg("blank before a line end: ...%.20s", p - 10);
    for (const char *p = enc.data; (p = strstr(p, "\r\n.")); p++)
        fail_msg("'.' at a line start");
    qp_decode(enc.data, enc.len, &dec);
    /* a bare CR (byte 13) is escaped, so it reads back as itself */
    assert_int_equal(dec.len, n);
    assert_memory_equal(dec.data, in, n);
    kx_buf_free(&enc);
    kx_buf_free(&dec);
}

static void test_html_escape(void **state)
{
    struct kx_buf b;
    const char *s = "<script>alert('x')</script> & \"q\" ok";

    kx_buf_init(&b, 1 << 16);
    assert_int_equal(kx_smtp_html_escape(&b, s, strlen(s)), 0);
    assert_string_equal(b.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                                "&quot;q&quot; ok");
    kx_buf_free(&b);
}

static void test_date(void **state)
{
    char d[64];

    kx_smtp_date(T0, d, sizeof(d));
    assert_string_equal(d, "Sun, 22 Nov 2026 10:01:02 +0000");
    kx_smtp_date(0, d, sizeof(d));
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
}

static void test_message(void **state)
{
    struct kx_smtp_addr from, to[2];
    struct kx_buf b;
    char *t, *h;

    assert_int_equal(kx_smtp_addr_parse("Klaxon <k@example.com>", &from), 0);
    assert_int_equal(kx_smtp_addr_parse("a@example.com", &to[0]), 0);
    assert_int_equal(kx_smtp_addr_parse("b@example.com", &to[1]), 0);
    kx_buf_init(&b, 1 << 20);
    assert_int_equal(kx_smtp_message(&(struct kx_smtp_mail){.from = &from,
                                                            .to = to,
                                                            .n_to = 2,
                                                            .subject = "S\xc3\xbc"
                                                                       "bject\r\nX: y",
                                                            .date_ns = T0,
                                                            .message_id = "id1@example.com",
                                                            .boundary = "=_klaxon_b1",
                                                            .priority = "critical",
                                                            .text = "plain\n",
                                                            .html = "<p>x</p>\n"},
                                     &b),
                     0);
    assert_lines(b.data, b.len, 76);
    assert_string_equal(header(b.data, "From"), "Klaxon <k@example.com>");
    assert_string_equal(header(b.data, "To"), "a@example.com, b@example.com");
    assert_string_equal(header(b.data, "Subject"), "S\xc3\xbc"
                                                   "bject X: y");
    assert_string_equal(header(b.data, "Date"), "Sun, 22 Nov 2026 10:01:02 +0000");
    assert_string_equal(header(b.data, "Message-ID"), "<id1@example.com>");
    assert_string_equal(header(b.data, "MIME-Version"), "1.0");
    assert_string_equal(header(b.data, "X-Klaxon-Priority"), "critical");
    assert_string_equal(header(b.data, "Auto-Submitted"), "auto-generated");
    assert_string_equal(header(b.data, "Content-Type"),
                        "multipart/alternative; boundary=\"=_klaxon_b1\"");
    assert_null(header(b.data, "X"));
    /* text first (least preferred), then HTML, then the closing delimiter */
    t = strstr(b.data, "\r\n--=_klaxon_b1\r\nContent-Type: text/plain");
    h = strstr(b.data, "\r\n--=_klaxon_b1\r\nContent-Type: text/html");
    assert_non_null(t);
    assert_non_null(h);
    assert_true(t < h);
    assert_non_null(strstr(h, "\r\n--=_klaxon_b1--\r\n"));
    t = part(b.data, "text/plain");
    h = part(b.data, "text/html");
    assert_string_equal(t, "plain\n");
    assert_string_equal(h, "<p>x</p>\n");
    free(t);
    free(h);

    /* text only */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_message(&(struct kx_smtp_mail){.from = &from,
                                                            .to = to,
                                                            .n_to = 1,
                                                            .subject = "s",
                                                            .date_ns = T0,
                                                            .message_id = "id2@example.com",
                                                            .boundary = "=_klaxon_b2",
                                                            .text = "only text"},
                                     &b),
                     0);
    assert_null(strstr(b.data, "multipart"));
    assert_null(strstr(b.data, "text/html"));
    t = part(b.data, "text/plain");
    assert_string_equal(t, "only text");
    free(t);
    kx_buf_free(&b);
}

/* ---- the output ------------------------------------------------------------ */

struct inst {
    struct kx_config_doc *doc;
    struct kx_output out;
    struct kx_diag d;
    int apply_rc, init_rc;
};

static void inst_init(struct inst *in, const char *yaml)
{
    memset(in, 0, sizeof(*in));
    in->doc = kx_config_load_string("test.yaml", yaml, &in->d);
    assert_non_null(in->doc);
    in->out.ops = &kx_output_smtp;
    in->out.name = "mail";
    in->out.settings = calloc(1, kx_output_smtp.settings_size);
    in->apply_rc =
        kx_config_apply(kx_output_smtp.opts, in->doc->root, in->out.settings, NULL, &in->d);
    in->init_rc =
        in->apply_rc == 0 ? kx_output_smtp.init(&in->out, in->doc->root, &in->d) : in->apply_rc;
}

static void inst_free(struct inst *in)
{
    kx_output_smtp.destroy(&in->out);
    kx_config_release(kx_output_smtp.opts, in->out.settings);
    free(in->out.settings);
    kx_config_free(in->doc);
    kx_diag_free(&in->d);
}

static bool diag_has(const struct inst *in, const char *s)
{
    for (size_t i = 0; i < in->d.n; i++)
        if (strstr(in->d.msgs[i], s))
            return true;
    return false;
}

static const char base_yaml[] = "hostport: 127.0.0.1:2525\n"
                                "tls: false\n"
                                "from: Klaxon <klaxon@example.com>\n"
                                "to: sec@example.com, oncall@example.com\n";

static struct kx_alert *mk(const char *rule, enum kx_priority p, const char *host,
                           const char *output, int64_t t)
{
    struct kx_alert *a = kx_alert_new(rule, p, "syscall", host, output, t);

    assert_non_null(a);
    assert_int_equal(kx_alert_set_str(a, "proc.name", "bash"), 0);
    assert_int_equal(kx_alert_set_str(a, "container.id", "3ad7b26ded6d"), 0);
    assert_int_equal(kx_alert_add_tag(a, "container"), 0);
    return a;
}

static void test_format_alert(void **state)
{
    struct inst in;
    struct kx_alert *a;
    struct kx_buf b;
    char *text, *html, mid[128];

    inst_init(&in, base_yaml);
    assert_int_equal(in.init_rc, 0);
    a = mk("Terminal shell in container", KX_PRI_CRITICAL, "node-\xc3\xa9\r\nBcc: x@evil.test",
           "A shell <script>alert(1)</script> & \"quotes\" user=root\nsecond line "
           "\xe6\x97\xa5\xe6\x9c\xac",
           T0);
    kx_buf_init(&b, KX_SMTP_MESSAGE_MAX);
    assert_int_equal(kx_smtp_format_alert(&in.out, a, T0 + 5 * KX_NSEC_PER_SEC, &b), 0);
    assert_lines(b.data, b.len, 76);
    {
        /* the host's CR/LF reached no header (in the body it is just text) */
        char *hdrs = strndup(b.data, (size_t)(strstr(b.data, "\r\n\r\n") - b.data));

        assert_null(strstr(hdrs, "\r\nBcc:"));
        assert_null(header(b.data, "Bcc"));
        free(hdrs);
    }
    assert_string_equal(header(b.data, "Subject"),
                        "[Klaxon] Critical Terminal shell in container on node-\xc3\xa9 Bcc: "
                        "x@evil.test");
    assert_string_equal(header(b.data, "From"), "Klaxon <klaxon@example.com>");
    assert_string_equal(header(b.data, "To"), "sec@example.com, oncall@example.com");
    assert_string_equal(header(b.data, "Date"), "Sun, 22 Nov 2026 10:01:07 +0000");
    snprintf(mid, sizeof(mid), "<%s.mail@example.com>", a->uuid);
    assert_string_equal(header(b.data, "Message-ID"), mid);

    text = part(b.data, "text/plain");
    html = part(b.data, "text/html");
    assert_non_null(text);
    assert_non_null(html);
    assert_non_null(strstr(text, "Critical: Terminal shell in container\n"));
    assert_non_null(strstr(text, "<script>alert(1)</script>")); /* text is text */
    assert_non_null(strstr(text, "second line \xe6\x97\xa5\xe6\x9c\xac"));
    assert_non_null(strstr(text, "proc.name        bash\n"));
    assert_non_null(strstr(text, "tags             container\n"));
    assert_null(strstr(html, "<script>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
    assert_non_null(strstr(html, "<th style=\"text-align:left;padding:2px 12px 2px 0;"
                                 "vertical-align:top\">container.id</th>"));
    assert_non_null(strstr(html, "#e01e5a"));
    free(text);
    free(html);

    /* a huge output is cut in the mail, which stays well-formed */
    {
        char *big = malloc(200000);
        struct kx_alert *b2;

        memset(big, 'y', 199999);
        big[199999] = '\0';
        b2 = mk("Big", KX_PRI_WARNING, "node-b", big, T0);
        kx_buf_reset(&b);
        assert_int_equal(kx_smtp_format_alert(&in.out, b2, T0, &b), 0);
        assert_lines(b.data, b.len, 76);
        text = part(b.data, "text/plain");
        assert_non_null(strstr(text, " [...]"));
        assert_true(strlen(text) < KX_SMTP_OUTPUT_MAX + 2000);
        free(text);
        kx_alert_free(b2);
        free(big);
    }
    kx_buf_free(&b);
    kx_alert_free(a);
    inst_free(&in);
}

static void test_format_text_only_and_subject_template(void **state)
{
    struct inst in;
    struct kx_alert *a;
    struct kx_buf b;

    inst_init(&in, "hostport: mail.example.com:25\n"
                   "from: k@example.com\n"
                   "to: [sec@example.com]\n"
                   "outputformat: text\n"
                   "subject: \"ALERT {{ container.id }}: %rule\"\n");
    assert_int_equal(in.init_rc, 0);
    a = mk("Read sensitive file", KX_PRI_WARNING, "node-a", "cat /etc/shadow", T0);
    kx_buf_init(&b, KX_SMTP_MESSAGE_MAX);
    assert_int_equal(kx_smtp_format_alert(&in.out, a, T0, &b), 0);
    assert_string_equal(header(b.data, "Subject"), "ALERT 3ad7b26ded6d: Read sensitive file");
    assert_string_equal(header(b.data, "Content-Type"), "text/plain; charset=utf-8");
    assert_null(strstr(b.data, "text/html"));
    kx_buf_free(&b);
    kx_alert_free(a);
    inst_free(&in);
}

static void test_format_digest(void **state)
{
    struct kx_alert *held[250];
    struct inst in;
    struct kx_buf b;
    char *text, *html;
    size_t n = 0;

    inst_init(&in, base_yaml);
    assert_int_equal(in.init_rc, 0);
    /* 3 critical shells on 2 nodes, 7 warnings on 7 nodes, 10 notices on 1 node */
    for (int i = 0; i < 3; i++)
        held[n++] = mk("Terminal shell in container", KX_PRI_CRITICAL, i ? "node-b" : "node-a",
                       "shell", T0 + i * KX_NSEC_PER_SEC);
    for (int i = 0; i < 7; i++) {
        char host[32];

        snprintf(host, sizeof(host), "node-%d", i);
        held[n++] = mk("Write below <etc>", KX_PRI_WARNING, host, "write & run",
                       T0 + (10 + i) * KX_NSEC_PER_SEC);
    }
    for (int i = 0; i < 10; i++)
        held[n++] = mk("Outbound connection", KX_PRI_NOTICE, "node-z", "connect",
                       T0 + 60 * KX_NSEC_PER_SEC);
    kx_buf_init(&b, KX_SMTP_MESSAGE_MAX);
    assert_int_equal(kx_smtp_format_digest(&in.out, held, n, T0 + 120 * KX_NSEC_PER_SEC, &b), 0);
    assert_lines(b.data, b.len, 76);
    assert_string_equal(header(b.data, "Subject"),
                        "[Klaxon] 20 alerts (3 critical) from 2026-11-22 10:01:02 to "
                        "2026-11-22 10:02:02 UTC");
    assert_string_equal(header(b.data, "X-Klaxon-Priority"), "critical");
    assert_non_null(strstr(header(b.data, "Message-ID"), "<digest."));
    text = part(b.data, "text/plain");
    html = part(b.data, "text/html");
    /* summary: most severe first, counts, first/last, distinct nodes */
    assert_non_null(strstr(text, "     3 x Critical      Terminal shell in container\n"
                                 "         first 2026-11-22 10:01:02 UTC, last 2026-11-22 "
                                 "10:01:04 UTC\n         nodes: node-a, node-b\n"));
    assert_non_null(strstr(text, "     7 x Warning       Write below <etc>\n"));
    assert_non_null(strstr(text, "nodes: node-0, node-1, node-2, node-3, node-4 (+2 more)\n"));
    assert_non_null(strstr(text, "    10 x Notice        Outbound connection\n"));
    assert_true(strstr(text, "x Critical") < strstr(text, "x Warning"));
    assert_true(strstr(text, "x Warning") < strstr(text, "x Notice"));
    /* every alert listed in detail */
    assert_non_null(strstr(text, "2026-11-22T10:01:12.000000000Z Warning Write below <etc> "
                                 "[node-0]\n    write & run\n"));
    assert_null(strstr(text, "more alerts not listed"));
    assert_non_null(strstr(html, "<td style=\"padding:3px 8px;vertical-align:top;border-bottom:"
                                 "1px solid #eee\">Write below &lt;etc&gt;</td>"));
    assert_non_null(strstr(html, "write &amp; run"));
    assert_null(strstr(html, "<etc>"));
    free(text);
    free(html);

    /* a flood: the detailed list stops at KX_SMTP_DIGEST_DETAILS */
    while (n < 250)
        held[n++] = mk("Outbound connection", KX_PRI_INFORMATIONAL, "node-y", "c", T0);
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_format_digest(&in.out, held, n, T0, &b), 0);
    assert_lines(b.data, b.len, 76);
    text = part(b.data, "text/plain");
    html = part(b.data, "text/html");
    assert_non_null(strstr(text, "... and 50 more alerts not listed\n"));
    assert_non_null(strstr(html, "... and 50 more alerts not listed"));
    assert_string_equal(header(b.data, "Subject"),
                        "[Klaxon] 250 alerts (3 critical) from 2026-11-22 10:01:02 to "
                        "2026-11-22 10:02:02 UTC");
    free(text);
    free(html);

    /* one notice: singular, no critical */
    kx_buf_reset(&b);
    assert_int_equal(kx_smtp_format_digest(&in.out, held + 10, 1, T0, &b), 0);
    assert_string_equal(header(b.data, "Subject"),
                        "[Klaxon] 1 alert (highest: notice) at 2026-11-22 10:02:02 UTC");
    kx_buf_free(&b);
    for (size_t i = 0; i < n; i++)
        kx_alert_free(held[i]);
    inst_free(&in);
}

/* ---- outcomes, settings, delivery --------------------------------------------- */

static void test_outcome(void **state)
{
    char err[256];

    assert_int_equal(
        kx_smtp_outcome(CURLE_OK, 250, "DATA", "250 ok", NULL, "h:25", err, sizeof(err)), 0);
    assert_int_equal(kx_smtp_outcome(CURLE_LOGIN_DENIED, 535, "AUTH",
                                     "535 5.7.8 Authentication credentials invalid", NULL, "h:587",
                                     err, sizeof(err)),
                     -EACCES);
    assert_string_equal(err, "smtp h:587: authentication failed (535): 535 5.7.8 "
                             "Authentication credentials invalid");
    assert_int_equal(kx_smtp_outcome(CURLE_SEND_ERROR, 550, "RCPT", "550 5.1.1 no such user", NULL,
                                     "h:25", err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "smtp h:25: recipient (RCPT TO) rejected (550): 550 5.1.1 no such "
                             "user");
    for (long code = 421; code <= 452; code++) {
        if (code != 421 && code != 450 && code != 451 && code != 452)
            continue;
        assert_int_equal(kx_smtp_outcome(CURLE_SEND_ERROR, code, "MAIL", "try later", NULL, "h",
                                         err, sizeof(err)),
                         -EAGAIN);
        assert_non_null(strstr(err, "temporarily refused"));
    }
    assert_int_equal(kx_smtp_outcome(CURLE_WEIRD_SERVER_REPLY, 554, "DATA", "554 spam", NULL, "h",
                                     err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "message (DATA) rejected (554)"));
    assert_int_equal(kx_smtp_outcome(CURLE_COULDNT_CONNECT, 0, "", "", "Connection refused", "h",
                                     err, sizeof(err)),
                     -EAGAIN);
    assert_string_equal(err, "smtp h: Connection refused");
    assert_int_equal(
        kx_smtp_outcome(CURLE_OPERATION_TIMEDOUT, 0, "DATA", NULL, NULL, "h", err, sizeof(err)),
        -EAGAIN);
    assert_int_equal(
        kx_smtp_outcome(CURLE_USE_SSL_FAILED, 0, "STARTTLS", NULL, NULL, "h", err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "does not offer STARTTLS"));
    assert_int_equal(
        kx_smtp_outcome(CURLE_LOGIN_DENIED, 0, "EHLO", NULL, "no mechanism", "h", err, sizeof(err)),
        -EACCES);
    assert_int_equal(kx_smtp_outcome(CURLE_PEER_FAILED_VERIFICATION, 0, "", NULL, "bad cert", "h",
                                     err, sizeof(err)),
                     -EAGAIN);
    assert_non_null(strstr(err, "set cafile"));
}

static void test_config_errors(void **state)
{
    struct inst in;

    inst_init(&in, "hostport: \"smtp.example.com:99999\"\n"
                   "from: not-an-address\n"
                   "to: \"ok@example.com, Evil\\r\\nBcc: x <y@z.t>, bad\"\n"
                   "authmechanism: anonymous\n"
                   "outputformat: markdown\n"
                   "subject: \"{{ rule\"\n"
                   "clientcert: /tmp/c.pem\n"
                   "password: hunter2-secret\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_true(diag_has(&in, "hostport \"smtp.example.com:99999\": want host:port"));
    assert_true(diag_has(&in, "from \"not-an-address\""));
    assert_true(diag_has(&in, "to: \"Evil"));
    assert_true(diag_has(&in, "to: \"bad\" is not an address"));
    assert_true(diag_has(&in, "(libcurl has no anonymous SASL)"));
    assert_true(diag_has(&in, "outputformat \"markdown\""));
    assert_true(diag_has(&in, "subject:"));
    assert_true(diag_has(&in, "needs both clientcert and clientkey"));
    for (size_t i = 0; i < in.d.n; i++)
        assert_null(strstr(in.d.msgs[i], "hunter2"));
    inst_free(&in);

    /* credentials in the hostport: refused and not repeated */
    inst_init(&in, "hostport: smtp://u:pw-in-url@mail.example.com:25\nfrom: a@b.c\nto: d@e.f\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_true(diag_has(&in, "hostport must not carry credentials"));
    for (size_t i = 0; i < in.d.n; i++)
        assert_null(strstr(in.d.msgs[i], "pw-in-url"));
    inst_free(&in);

    inst_init(&in, "hostport: smtps://mail.example.com\ntls: false\nfrom: a@b.c\nto: d@e.f\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_true(diag_has(&in, "smtps:// is TLS, but tls is false"));
    inst_free(&in);

    inst_init(&in, "hostport: mail.example.com:587\nfrom: a@b.c\nto: d@e.f\n"
                   "authmechanism: xoauth2\nuser: u\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_true(diag_has(&in, "authmechanism xoauth2 needs user and token"));
    inst_free(&in);

    /* required settings */
    inst_init(&in, "tls: true\n");
    assert_int_equal(in.init_rc, -EINVAL);
    inst_free(&in);

    /* fine: IPv6, smtps, default port */
    const char *ok[] = {"hostport: \"[::1]:2525\"\n", "hostport: smtps://mail.example.com\n",
                        "hostport: mail.example.com\n", "hostport: mail.example.com:465\n", NULL};
    for (size_t i = 0; ok[i]; i++) {
        char y[256];

        snprintf(y, sizeof(y), "%sfrom: a@b.c\nto: d@e.f\nuser: u\npassword: p\n", ok[i]);
        inst_init(&in, y);
        if (in.init_rc != 0)
            fail_msg("%s: %s", ok[i], in.d.n ? in.d.msgs[0] : "?");
        inst_free(&in);
    }
}

/* A local port nobody listens on. */
static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_deliver_refused_and_digest_hold(void **state)
{
    struct kx_alert *a = mk("R", KX_PRI_ERROR, "n", "o", T0);
    struct inst in;
    char y[512];
    int64_t before;

    snprintf(y, sizeof(y),
             "hostport: 127.0.0.1:%d\nfrom: a@b.c\nto: d@e.f\nuser: u\npassword: s3cr3t-pw\n"
             "timeout: 2s\n",
             closed_port());
    inst_init(&in, y);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(kx_output_smtp.deliver(&in.out, &a, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "smtp 127.0.0.1:"));
    assert_null(strstr(in.out.error, "s3cr3t"));
    assert_int_equal(in.out.flush_at, 0);
    inst_free(&in);

    /* digest: hold, the interval starts with the first held alert */
    inst_init(&in, "hostport: 127.0.0.1:1\nfrom: a@b.c\nto: d@e.f\ndigest: 5m\n");
    assert_int_equal(in.init_rc, 0);
    assert_non_null(kx_output_smtp.flush);
    before = kx_monotonic_ns();
    assert_int_equal(kx_output_smtp.deliver(&in.out, &a, 1), KX_OUTPUT_HOLD);
    assert_true(in.out.flush_at >= before + 300 * KX_NSEC_PER_SEC);
    assert_true(in.out.flush_at <= kx_monotonic_ns() + 300 * KX_NSEC_PER_SEC);
    {
        int64_t first = in.out.flush_at;

        assert_int_equal(kx_output_smtp.deliver(&in.out, &a, 1), KX_OUTPUT_HOLD);
        assert_int_equal(in.out.flush_at, first); /* not pushed back by later alerts */
    }
    /* flush sends (here: fails to) and starts a new interval */
    assert_int_not_equal(kx_output_smtp.flush(&in.out, &a, 1), 0);
    assert_int_equal(in.out.flush_at, 0);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_registered(void **state)
{
    const struct kx_output_ops *ops = kx_output_ops_find("smtp");

    assert_ptr_equal(ops, &kx_output_smtp);
    assert_int_equal(ops->max_batch, 1);
    assert_non_null(ops->flush);
    assert_non_null(ops->destroy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_header_plain_and_injection),
        cmocka_unit_test(test_header_rfc2047),
        cmocka_unit_test(test_header_folding_ascii),
        cmocka_unit_test(test_header_addrs),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_format_alert),
        cmocka_unit_test(test_format_text_only_and_subject_template),
        cmocka_unit_test(test_format_digest),
        cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_deliver_refused_and_digest_hold),
        cmocka_unit_test(test_registered),
    };
    int rc;

    kx_log_init("test_smtp", KX_LOG_ERROR, false);
    kx_httpc_global_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    kx_httpc_global_cleanup();
    return rc;
}
