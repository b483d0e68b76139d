/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp.c - the email output: SMTP through libcurl, one mail per alert (as
 * Falcosidekick sends them) or, with `digest: 5m`, one mail per interval
 * listing every alert of that interval, so a flood is one email.
 *
 * Settings follow Falcosidekick's SMTP output (hostport, user, password,
 * from, to, outputformat, tls, authmechanism, ...); an instance named
 * "smtp" reads SMTP_HOSTPORT, SMTP_PASSWORD(_FILE), ... from the env.
 *
 * Transport security, decided once at init:
 *   hostport "smtps://host:port" or port 465  implicit TLS (smtps://)
 *   otherwise, tls: true (the default)        smtp:// and STARTTLS required
 *                                             (CURLUSESSL_ALL: no TLS, no mail)
 *   tls: false                                plain smtp://, no STARTTLS
 * So a Falcosidekick config with port 465 keeps its implicit TLS, and on
 * 587/25 tls: true insists on STARTTLS, which keeps the password off the
 * wire (a server without STARTTLS is a permanent, clearly named failure).
 *
 * Messages are 7-bit clean whatever the alert holds: headers are ASCII
 * (RFC 2047 encoded-words for UTF-8, CR/LF never reach a header line), both
 * bodies are quoted-printable, and every alert string in the HTML part is
 * escaped. A mail is multipart/alternative (text/plain + text/html) with
 * outputformat html (the default) and text/plain alone with text.
 *
 * All recipients or none: a refused RCPT fails the whole mail (libcurl's
 * default), so a retry never mails the accepted recipients twice and a
 * mistyped address shows up at once as a dead letter, not as silence.
 *
 * Outcomes: 4xx replies and connection trouble are retried by the core;
 * 5xx replies are permanent (dead-lettered with the server's reply); 535 is
 * reported as "authentication failed (535)". The password and token never
 * appear in errors or logs: only the verbs of our commands (never their
 * arguments) and the server's replies are kept for error messages.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alert.h"
#include "config.h"
#include "httpout.h"
#include "log.h"
#include "outputs.h"
#include "smtp.h"
#include "template.h"
#include "util.h"

#ifndef KX_VERSION
#define KX_VERSION "dev"
#endif

#define SMTP_LINE 76 /* longest line we write, CRLF not counted */
#define SMTP_DEFAULT_SUBJECT "[Klaxon] %priority %rule on %hostname"
#define SMTP_REPLY_SHOWN 160 /* bytes of a server reply in errors */

struct smtp_settings {
    char *hostport;              /* "smtp.example.com:587", or with smtp:// / smtps:// */
    char *user;                  /* SASL user; "" = no authentication */
    char *password;              /* a secret */
    char *token;                 /* OAuth bearer token (xoauth2/oauthbearer), a secret */
    char *identity;              /* SASL authorization identity (authzid), "" = none */
    char *authmechanism;         /* auto | plain | login | ... | none */
    bool tls;                    /* insist on TLS (implicit or STARTTLS) */
    char *from;                  /* "Klaxon <klaxon@example.com>" */
    struct kx_strlist to;        /* recipients */
    char *outputformat;          /* html (text + HTML parts) | text */
    char *subject;               /* template for one alert's subject */
    int64_t digest;              /* ns; 0 = one mail per alert */
    struct kx_httpout_conn http; /* checkcert, cafile, clientcert, clientkey, timeout */
};

#define S(field) offsetof(struct smtp_settings, field)

static const struct kx_opt smtp_opts[] = {
    {"hostport", KX_OPT_STR, NULL, S(hostport), KX_OPT_REQUIRED,
     "SMTP server \"host:port\" (env <NAME>_HOSTPORT, e.g. SMTP_HOSTPORT); port 465 or "
     "smtps://host:port = implicit TLS"},
    {"user", KX_OPT_STR, "", S(user), 0, "user to authenticate as; \"\" = no authentication"},
    {"password", KX_OPT_STR, "", S(password), KX_OPT_SECRET,
     "password of user (env SMTP_PASSWORD or SMTP_PASSWORD_FILE)"},
    {"token", KX_OPT_STR, "", S(token), KX_OPT_SECRET,
     "OAuth 2 bearer token for authmechanism xoauth2 or oauthbearer"},
    {"identity", KX_OPT_STR, "", S(identity), 0,
     "SASL authorization identity (act as this user); \"\" = user"},
    {"authmechanism", KX_OPT_STR, "auto", S(authmechanism), 0,
     "auto (the best the server offers), plain, login, cram-md5, digest-md5, ntlm, external, "
     "xoauth2, oauthbearer or none"},
    {"tls", KX_OPT_BOOL, "true", S(tls), 0,
     "require TLS: implicit on port 465/smtps://, else STARTTLS; false = plain SMTP"},
    {"from", KX_OPT_STR, NULL, S(from), KX_OPT_REQUIRED,
     "sender, \"Klaxon <klaxon@example.com>\" or an address"},
    {"to", KX_OPT_STRLIST, NULL, S(to), KX_OPT_REQUIRED,
     "recipients (list, or comma-separated: \"sec@example.com, oncall@example.com\")"},
    {"outputformat", KX_OPT_STR, "html", S(outputformat), 0,
     "html (a text and an HTML part) or text (plain text only)"},
    {"subject", KX_OPT_STR, SMTP_DEFAULT_SUBJECT, S(subject), 0,
     "subject template of one alert's mail (%field or {{field}})"},
    {"digest", KX_OPT_DURATION, "0", S(digest), 0,
     "one mail per interval listing its alerts (\"5m\"); 0 = one mail per alert"},
    KX_HTTPOUT_OPTS(struct smtp_settings),
    {0},
};

/* SASL mechanisms: the setting's spelling -> libcurl's CURLOPT_LOGIN_OPTIONS. */
static const struct {
    const char *name;
    const char *login_options; /* NULL: libcurl picks; "" = no authentication */
    bool bearer;               /* authenticates with the token, not the password */
} smtp_mechs[] = {
    {"auto", NULL, false},
    {"plain", "AUTH=PLAIN", false},
    {"login", "AUTH=LOGIN", false},
    {"cram-md5", "AUTH=CRAM-MD5", false},
    {"digest-md5", "AUTH=DIGEST-MD5", false},
    {"ntlm", "AUTH=NTLM", false},
    {"external", "AUTH=EXTERNAL", false},
    {"xoauth2", "AUTH=XOAUTH2", true},
    {"oauthbearer", "AUTH=OAUTHBEARER", true},
    {"none", "", false},
};

struct smtp_state {
    CURL *curl;              /* owned, reused: keeps the SMTP connection between mails */
    struct curl_slist *rcpt; /* owned: "<addr>" per recipient */
    char *url;               /* owned: "smtp://host:port" or "smtps://..." */
    char where[160];         /* "host:port" for messages */
    char envelope_from[KX_SMTP_ADDR_MAX + 2]; /* "<addr>" for MAIL FROM */
    struct kx_smtp_addr from;
    struct kx_smtp_addr *to; /* owned, n_to entries */
    size_t n_to;
    char domain[KX_SMTP_ADDR_MAX]; /* right side of our Message-IDs: from's domain */
    char slug[64];                 /* instance name as a Message-ID token */
    struct kx_template *subject;   /* owned */
    int mech;                      /* index in smtp_mechs */
    bool auth;                     /* send credentials */
    bool html;                     /* multipart/alternative; else text/plain only */
    bool fresh;                    /* the last send failed: do not reuse its connection */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- text helpers --------------------------------------------------------- */

/* s, or "" for NULL: string settings may be unset. */
static const char *smtp_str(const char *s)
{
    return s ? s : "";
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when the
 * bytes there are not one (overlong, surrogate, truncated, stray). */
static size_t smtp_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    uint32_t cp;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* The longest prefix of s[0..n) of at most max bytes that does not cut a
 * UTF-8 sequence in two. */
static size_t smtp_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/*
 * One-line header text from in: controls (CR, LF, tab, ...) and DEL become
 * blanks, blank runs collapse, leading/trailing blanks go, invalid UTF-8
 * bytes become '?', at most max bytes (whole characters) are kept.
 */
static int smtp_header_text(const char *in, size_t max, struct kx_buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), i = 0;
    bool blank = true; /* at the start: drop leading blanks */
    int rc = 0;

    while (i < n && rc == 0) {
        size_t k = smtp_utf8_seq(s + i, n - i);

        if (k == 0) {
            rc = out->len + 1 <= max ? kx_buf_append(out, "?", 1) : 1;
            blank = false;
            i++;
        } else if (k == 1 && (s[i] <= 0x20 || s[i] == 0x7f)) {
            if (!blank && out->len + 1 <= max)
                rc = kx_buf_append(out, " ", 1);
            blank = true;
            i++;
        } else {
            rc = out->len + k <= max ? kx_buf_append(out, s + i, k) : 1;
            blank = false;
            i += k;
        }
    }
    while (out->len > 0 && out->data[out->len - 1] == ' ')
        out->data[--out->len] = '\0';
    return rc < 0 ? rc : 0;
}

static bool smtp_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/*
 * Appends s as RFC 2047 "B" encoded-words, folding ("\r\n ") before a word
 * that would take the line past SMTP_LINE; *col is the current column.
 * Words hold whole UTF-8 characters (RFC 2047 5), and at most 45 bytes so
 * that a word stays within the 75 characters RFC 2047 allows.
 */
static int smtp_encoded_words(struct kx_buf *out, const char *s, size_t *col)
{
    static const char pre[] = "=?UTF-8?B?", post[] = "?=";
    const size_t overhead = sizeof(pre) - 1 + sizeof(post) - 1;
    size_t n = strlen(s), i = 0;
    int rc = 0;

    while (i < n && rc == 0) {
        size_t room = *col + overhead + 4 < SMTP_LINE ? SMTP_LINE - *col - overhead : 0;
        size_t bytes = room / 4 * 3, take = 0;
        char *b64;
        size_t b64len;

        if (bytes > 45)
            bytes = 45;
        while (i + take < n) {
            size_t k = smtp_utf8_seq((const unsigned char *)s + i + take, n - i - take);

            k = k ? k : 1;
            if (take + k > bytes)
                break;
            take += k;
        }
        if (take == 0) { /* not even one character fits: next line */
            if ((rc = kx_buf_append(out, "\r\n ", 3)) < 0)
                return rc;
            *col = 1;
            continue;
        }
        if (!(b64 = kx_base64_encode(s + i, take, &b64len)))
            return -ENOMEM;
        if ((rc = kx_buf_printf(out, "%s%s%s", pre, b64, post)) == 0)
            *col += overhead + b64len;
        free(b64);
        i += take;
        if (i < n && rc == 0) {
            rc = kx_buf_append(out, "\r\n ", 3);
            *col = 1;
        }
    }
    return rc;
}

/* Appends ASCII text s, folding at blanks to keep lines within SMTP_LINE.
 * The caller made sure no word is longer than a line. */
static int smtp_folded_ascii(struct kx_buf *out, const char *s, size_t *col)
{
    int rc = 0;

    while (*s && rc == 0) {
        size_t w = strcspn(s, " ");

        if (w == 0) {
            s++;
            continue;
        }
        if (*col + 1 + w > SMTP_LINE) {
            rc = kx_buf_append(out, "\r\n ", 3);
            *col = 1;
        } else if (rc == 0) {
            rc = kx_buf_append(out, " ", 1);
            *col += 1;
        }
        if (rc == 0 && (rc = kx_buf_append(out, s, w)) == 0)
            *col += w;
        s += w;
    }
    return rc;
}

int kx_smtp_header(struct kx_buf *out, const char *name, const char *value)
{
    struct kx_buf text;
    size_t col = strlen(name) + 1, before = out->len, longest = 0;
    bool encode;
    int rc;

    kx_buf_init(&text, KX_SMTP_SUBJECT_MAX + 1);
    if ((rc = smtp_header_text(value ? value : "", KX_SMTP_SUBJECT_MAX, &text)) < 0 ||
        (rc = kx_buf_printf(out, "%s:", name)) < 0)
        goto done;
    for (const char *p = text.data ? text.data : ""; *p;) {
        size_t w = strcspn(p, " ");

        longest = w > longest ? w : longest;
        p += w + (p[w] == ' ');
    }
    encode = text.len > 0 &&
             (!smtp_is_ascii(text.data) || strstr(text.data, "=?") || longest + 1 + 1 > SMTP_LINE);
    if (text.len == 0)
        rc = 0;
    else if (encode) {
        if ((rc = kx_buf_append(out, " ", 1)) == 0) {
            col++;
            rc = smtp_encoded_words(out, text.data, &col);
        }
    } else {
        rc = smtp_folded_ascii(out, text.data, &col);
    }
    if (rc == 0)
        rc = kx_buf_append(out, "\r\n", 2);
done:
    if (rc < 0 && out->len > before) { /* no half header */
        out->len = before;
        out->data[before] = '\0';
    }
    kx_buf_free(&text);
    return rc;
}

/* Characters that force a display name into a quoted-string (RFC 5322
 * specials; '.' too, as obsolete phrases are not for writing). */
static bool smtp_needs_quotes(const char *s)
{
    return strpbrk(s, "()<>[]:;@\\,.\"") != NULL;
}

/* One mailbox for a header, name quoted or encoded as needed, folding
 * before the address when the line would get too long; *col tracked. */
static int smtp_mailbox(struct kx_buf *out, const struct kx_smtp_addr *a, size_t *col)
{
    size_t before = out->len;
    int rc = 0;

    if (!a->name[0]) {
        if ((rc = kx_buf_printf(out, "%s", a->addr)) == 0)
            *col += strlen(a->addr);
        return rc;
    }
    if (!smtp_is_ascii(a->name) || strstr(a->name, "=?")) {
        rc = smtp_encoded_words(out, a->name, col);
    } else {
        bool quote = smtp_needs_quotes(a->name);

        rc = quote ? kx_buf_append(out, "\"", 1) : 0;
        for (const char *p = a->name; *p && rc == 0; p++)
            rc = kx_buf_printf(out, "%s%c", quote && (*p == '"' || *p == '\\') ? "\\" : "", *p);
        if (rc == 0 && quote)
            rc = kx_buf_append(out, "\"", 1);
        *col += out->len - before;
    }
    if (rc == 0 && *col + 3 + strlen(a->addr) > SMTP_LINE) {
        rc = kx_buf_append(out, "\r\n", 2);
        *col = 0;
    }
    if (rc == 0 && (rc = kx_buf_printf(out, " <%s>", a->addr)) == 0)
        *col += 3 + strlen(a->addr);
    return rc;
}

int kx_smtp_header_addrs(struct kx_buf *out, const char *name, const struct kx_smtp_addr *a,
                         size_t n)
{
    struct kx_buf one;
    size_t col = strlen(name) + 1, before = out->len;
    int rc = kx_buf_printf(out, "%s:", name);

    kx_buf_init(&one, 4096);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t c2 = col + 2, first;

        if (i > 0 && (rc = kx_buf_append(out, ",", 1)) < 0)
            break;
        kx_buf_reset(&one);
        if ((rc = smtp_mailbox(&one, &a[i], &c2)) < 0)
            break;
        first = strcspn(one.data, "\r");
        if (i > 0 && col + 2 + first > SMTP_LINE) { /* the next line is better */
            if ((rc = kx_buf_append(out, "\r\n", 2)) < 0)
                break;
            col = 0;
            c2 = 1;
            kx_buf_reset(&one);
            if ((rc = smtp_mailbox(&one, &a[i], &c2)) < 0)
                break;
        }
        if ((rc = kx_buf_printf(out, " %s", one.data)) == 0)
            col = c2;
    }
    if (rc == 0)
        rc = kx_buf_append(out, "\r\n", 2);
    if (rc < 0 && out->len > before) {
        out->len = before;
        out->data[before] = '\0';
    }
    kx_buf_free(&one);
    return rc;
}

int kx_smtp_addr_parse(const char *in, struct kx_smtp_addr *out)
{
    const char *lt, *gt, *b = in, *e;
    size_t an, nn, at_count = 0;
    const char *at = NULL;
    char addr[KX_SMTP_ADDR_MAX];

    memset(out, 0, sizeof(*out));
    if (!in)
        return -EINVAL;
    while (*b == ' ' || *b == '\t')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    lt = memchr(b, '<', (size_t)(e - b));
    if (lt) {
        const char *nb = b, *ne = lt;

        gt = memchr(lt, '>', (size_t)(e - lt));
        if (!gt || gt + 1 != e)
            return -EINVAL; /* "<a@b" or text after '>' */
        while (ne > nb && (ne[-1] == ' ' || ne[-1] == '\t'))
            ne--;
        if (ne - nb >= 2 && *nb == '"' && ne[-1] == '"')
            nb++, ne--;
        nn = (size_t)(ne - nb);
        if (nn >= sizeof(out->name))
            return -EINVAL;
        for (const char *p = nb; p < ne; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return -EINVAL;
        memcpy(out->name, nb, nn);
        b = lt + 1;
        e = gt;
    }
    an = (size_t)(e - b);
    if (an < 3 || an >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, b, an);
    addr[an] = '\0';
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c))
            return -EINVAL;
        if (c == '@')
            at_count++, at = p;
    }
    if (at_count != 1 || at == addr || at[1] == '\0' || at[1] == '.' || addr[an - 1] == '.')
        return -EINVAL;
    memcpy(out->addr, addr, an + 1);
    return 0;
}

int kx_smtp_qp_encode(struct kx_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        bool eol =
            i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
        char tok[3];
        size_t t = 1;

        if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            if (c == '\r')
                i++;
            rc = kx_buf_append(out, "\r\n", 2);
            col = 0;
            continue;
        }
        tok[0] = (char)c;
        /* '.' at a line start: a lone "." line would end the SMTP DATA if a
         * relay forgot to dot-stuff; escaping costs nothing. */
        if ((c < 33 && c != ' ' && c != '\t') || c > 126 || c == '=' ||
            ((c == ' ' || c == '\t') && eol) || (c == '.' && col == 0)) {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            t = 3;
        }
        /* Soft break so the line, its '=' included, stays within 76; the
         * last token of a line may use the column the '=' would need. */
        if (col + t > SMTP_LINE - 1 && !(eol && col + t <= SMTP_LINE)) {
            if ((rc = kx_buf_append(out, "=\r\n", 3)) < 0)
                break;
            col = 0;
        }
        if (col == 0 && c == '.' && t == 1) {
            /* a soft break just put this '.' at a line start */
            tok[0] = '=', tok[1] = '2', tok[2] = 'E', t = 3;
        }
        rc = kx_buf_append(out, tok, t);
        col += t;
    }
    return rc;
}

int kx_smtp_html_escape(struct kx_buf *out, const char *s, size_t n)
{
    size_t start = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *ent = NULL;

        switch (s[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        if ((rc = kx_buf_append(out, s + start, i - start)) == 0)
            rc = kx_buf_append(out, ent, strlen(ent));
        start = i + 1;
    }
    return rc ? rc : kx_buf_append(out, s + start, n - start);
}

/* kx_smtp_html_escape of a C string. */
static int smtp_esc(struct kx_buf *out, const char *s)
{
    return kx_smtp_html_escape(out, s ? s : "", s ? strlen(s) : 0);
}

void kx_smtp_date(int64_t ns, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ns / KX_NSEC_PER_SEC);
    struct tm tm;

    /* Names spelled here: strftime's %a/%b would follow the locale. */
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "2026-11-22 10:01:02 UTC" for subjects and digest tables. */
static void smtp_time_short(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / KX_NSEC_PER_SEC);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The body part headers and quoted-printable body of one MIME part. */
static int smtp_part(struct kx_buf *out, const char *type, const char *body)
{
    int rc = kx_buf_printf(out,
                           "Content-Type: %s; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                           type);

    return rc ? rc : kx_smtp_qp_encode(out, body ? body : "", body ? strlen(body) : 0);
}

int kx_smtp_message(const struct kx_smtp_mail *m, struct kx_buf *out)
{
    char date[64];
    size_t before = out->len;
    int rc;

    kx_smtp_date(m->date_ns, date, sizeof(date));
    if ((rc = kx_smtp_header_addrs(out, "From", m->from, 1)) < 0 ||
        (rc = kx_smtp_header_addrs(out, "To", m->to, m->n_to)) < 0 ||
        (rc = kx_smtp_header(out, "Subject", m->subject)) < 0 ||
        (rc = kx_buf_printf(out, "Date: %s\r\nMessage-ID: <%s>\r\n", date, m->message_id)) < 0 ||
        /* RFC 3834: keeps vacation responders from answering alerts. */
        (rc = kx_buf_printf(out, "Auto-Submitted: auto-generated\r\n"
                                 "X-Mailer: Klaxon/" KX_VERSION "\r\n")) < 0 ||
        (m->priority && (rc = kx_smtp_header(out, "X-Klaxon-Priority", m->priority)) < 0) ||
        (rc = kx_buf_printf(out, "MIME-Version: 1.0\r\n")) < 0)
        goto fail;
    if (!m->html) {
        rc = smtp_part(out, "text/plain", m->text);
    } else if ((rc = kx_buf_printf(out,
                                   "Content-Type: multipart/alternative;\r\n"
                                   " boundary=\"%s\"\r\n\r\n"
                                   "This is a multi-part message in MIME format.\r\n"
                                   "\r\n--%s\r\n",
                                   m->boundary, m->boundary)) == 0 &&
               (rc = smtp_part(out, "text/plain", m->text)) == 0 &&
               (rc = kx_buf_printf(out, "\r\n--%s\r\n", m->boundary)) == 0 &&
               (rc = smtp_part(out, "text/html", m->html)) == 0) {
        rc = kx_buf_printf(out, "\r\n--%s--\r\n", m->boundary);
    }
    if (rc == 0)
        return 0;
fail:
    if (out->len > before) {
        out->len = before;
        out->data[before] = '\0';
    }
    return rc;
}

/* ---- one alert's mail ------------------------------------------------------ */

/* The colour bar of a priority in the HTML part. */
static const char *smtp_color(enum kx_priority p)
{
    switch (p) {
    case KX_PRI_EMERGENCY:
    case KX_PRI_ALERT:
    case KX_PRI_CRITICAL:
        return "#e01e5a";
    case KX_PRI_ERROR:
        return "#f2711c";
    case KX_PRI_WARNING:
        return "#ecb22e";
    case KX_PRI_NOTICE:
        return "#2eb67d";
    case KX_PRI_INFORMATIONAL:
        return "#36c5f0";
    default:
        return "#999999";
    }
}

/* Appends s (at most max bytes, whole characters, "..." when cut) as text or
 * HTML-escaped. */
static int smtp_clip(struct kx_buf *out, const char *s, size_t max, bool html)
{
    size_t n = strlen(s), k = smtp_utf8_cut(s, n, max);
    int rc = html ? kx_smtp_html_escape(out, s, k) : kx_buf_append(out, s, k);

    return rc ? rc : k < n ? kx_buf_append(out, " [...]", 6) : 0;
}

struct smtp_fields {
    struct kx_buf *text;
    struct kx_buf *html;
};

/* kx_httpout_field_fn: one "name: value" line and one table row. */
static int smtp_on_field(void *ctx, const char *name, const char *value)
{
    struct smtp_fields *f = ctx;
    int rc;

    value = value && *value ? value : "<NA>";
    if ((rc = kx_buf_printf(f->text, "%-16s %s\n", name, value)) < 0 ||
        (rc = kx_buf_printf(f->html, "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;"
                                     "vertical-align:top\">")) < 0 ||
        (rc = smtp_esc(f->html, name)) < 0 ||
        (rc = kx_buf_printf(f->html, "</th><td style=\"padding:2px 0\">")) < 0 ||
        (rc = smtp_esc(f->html, value)) < 0)
        return rc;
    return kx_buf_printf(f->html, "</td></tr>\n");
}

/* Tags as "a, b, c" (empty without tags). */
static int smtp_tags(const struct kx_alert *a, struct kx_buf *out)
{
    const cJSON *tags = kx_alert_field(a, "tags"), *t;
    int rc = 0;

    if (!cJSON_IsArray(tags))
        return 0;
    cJSON_ArrayForEach(t, tags)
    {
        if (cJSON_IsString(t) && rc == 0)
            rc = kx_buf_printf(out, "%s%s", out->len ? ", " : "", t->valuestring);
    }
    return rc;
}

static const char smtp_html_head[] = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>";

/* The text and HTML bodies of one alert's mail. */
static int smtp_alert_bodies(const struct kx_output *o, const struct kx_alert *a,
                             const char *subject, struct kx_buf *text, struct kx_buf *html)
{
    struct smtp_fields f = {text, html};
    struct kx_buf tags;
    char ts[64];
    int rc;

    kx_buf_init(&tags, 64 * 1024);
    kx_time_format(a->time_ns, ts, sizeof(ts));
    if ((rc = smtp_tags(a, &tags)) < 0)
        goto done;
    /* text/plain */
    if ((rc = kx_buf_printf(text, "%s: %s\n\n", kx_priority_name(a->priority), a->rule)) < 0 ||
        (rc = smtp_clip(text, a->output, KX_SMTP_OUTPUT_MAX, false)) < 0 ||
        (rc = kx_buf_printf(text, "\n\n")) < 0)
        goto done;
    /* text/html: inline styles only, as mail clients drop <style> blocks */
    if ((rc = kx_buf_printf(html, "%s", smtp_html_head)) < 0 || (rc = smtp_esc(html, subject)) ||
        (rc = kx_buf_printf(html,
                            "</title></head>\n<body style=\"font-family:sans-serif;"
                            "font-size:14px;color:#222\">\n<div style=\"border-left:6px solid "
                            "%s;padding:4px 12px;margin-bottom:12px\">\n<h2 style=\"margin:0 0 "
                            "8px 0;font-size:18px\">",
                            smtp_color(a->priority))) < 0 ||
        (rc = smtp_esc(html, kx_priority_name(a->priority))) < 0 ||
        (rc = kx_buf_printf(html, ": ")) < 0 || (rc = smtp_esc(html, a->rule)) < 0 ||
        (rc = kx_buf_printf(html, "</h2>\n<div style=\"white-space:pre-wrap;"
                                  "font-family:monospace\">")) < 0 ||
        (rc = smtp_clip(html, a->output, KX_SMTP_OUTPUT_MAX, true)) < 0 ||
        (rc = kx_buf_printf(html, "</div>\n</div>\n<table style=\"border-collapse:collapse;"
                                  "font-size:13px\">\n")) < 0)
        goto done;
    if ((rc = kx_httpout_fields(a, smtp_on_field, &f)) != 0 ||
        (rc = smtp_on_field(&f, "time", ts)) < 0 ||
        (tags.len && (rc = smtp_on_field(&f, "tags", tags.data)) < 0) ||
        (rc = smtp_on_field(&f, "uuid", a->uuid)) < 0)
        goto done;
    if ((rc = kx_buf_printf(text, "\n-- \nKlaxon, output %s\n", o->name)) < 0 ||
        (rc = kx_buf_printf(html, "</table>\n<p style=\"color:#888;font-size:12px\">Klaxon, "
                                  "output ")) < 0 ||
        (rc = smtp_esc(html, o->name)) < 0)
        goto done;
    rc = kx_buf_printf(html, "</p>\n</body></html>\n");
done:
    kx_buf_free(&tags);
    return rc < 0 ? rc : 0;
}

/* A fresh multipart boundary. "=_" can never occur in quoted-printable
 * text ('=' is always followed by a hex digit or a line break there). */
static void smtp_boundary(char *buf, size_t len)
{
    char uuid[40], hex[40];
    size_t o = 0;

    kx_uuid4(uuid);
    for (const char *p = uuid; *p && o + 1 < sizeof(hex); p++)
        if (*p != '-')
            hex[o++] = *p;
    hex[o] = '\0';
    snprintf(buf, len, "=_klaxon_%s", hex);
}

int kx_smtp_format_alert(const struct kx_output *o, const struct kx_alert *a, int64_t now_ns,
                         struct kx_buf *out)
{
    const struct smtp_state *st = o->priv;
    struct kx_buf subject, text, html;
    char boundary[64], mid[KX_SMTP_ADDR_MAX + 128];
    int rc;

    kx_buf_init(&subject, 64 * 1024);
    kx_buf_init(&text, KX_SMTP_MESSAGE_MAX / 4);
    kx_buf_init(&html, KX_SMTP_MESSAGE_MAX / 4);
    if (kx_template_render(st->subject, a, &subject) < 0) {
        /* a huge field in the template: a plain subject still says what happened */
        kx_buf_reset(&subject);
        if ((rc = kx_buf_printf(&subject, "[Klaxon] %s %.200s", kx_priority_name(a->priority),
                                a->rule)) < 0)
            goto done;
    }
    if ((rc = smtp_alert_bodies(o, a, subject.data ? subject.data : "", &text, &html)) < 0)
        goto done;
    smtp_boundary(boundary, sizeof(boundary));
    /* Derived from the alert: a redelivered alert's mail has the same
     * Message-ID, so mail clients can fold the duplicate away. */
    snprintf(mid, sizeof(mid), "%s.%s@%s", a->uuid, st->slug, st->domain);
    rc = kx_smtp_message(&(struct kx_smtp_mail){.from = &st->from,
                                                .to = st->to,
                                                .n_to = st->n_to,
                                                .subject = subject.data ? subject.data : "",
                                                .date_ns = now_ns,
                                                .message_id = mid,
                                                .boundary = boundary,
                                                .priority = kx_priority_slug(a->priority),
                                                .text = text.data,
                                                .html = st->html ? html.data : NULL},
                         out);
done:
    kx_buf_free(&subject);
    kx_buf_free(&text);
    kx_buf_free(&html);
    return rc;
}

/* ---- digest ------------------------------------------------------------------ */

/* Alerts of one rule at one priority in a digest. */
struct smtp_group {
    const struct kx_alert *a; /* borrowed: the first alert of the group (rule, priority) */
    size_t count;
    int64_t first_ns, last_ns;
    size_t n_nodes;                          /* distinct hostnames */
    const char *nodes[KX_SMTP_DIGEST_NODES]; /* borrowed: the first few of them */
};

/* Sort order that makes groups contiguous: priority (most severe first),
 * rule, then hostname so that distinct nodes are adjacent. */
static int smtp_cmp_alert(const void *x, const void *y)
{
    const struct kx_alert *a = *(const struct kx_alert *const *)x;
    const struct kx_alert *b = *(const struct kx_alert *const *)y;
    int c;

    if (a->priority != b->priority)
        return a->priority < b->priority ? -1 : 1;
    if ((c = strcmp(a->rule, b->rule)) != 0)
        return c;
    return strcmp(a->hostname, b->hostname);
}

/* Summary rows: most severe first, then the noisiest. */
static int smtp_cmp_group(const void *x, const void *y)
{
    const struct smtp_group *a = x, *b = y;

    if (a->a->priority != b->a->priority)
        return a->a->priority < b->a->priority ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->a->rule, b->a->rule);
}

/* Groups held[0..n) by rule and priority into *groups (caller frees).
 * Returns the number of groups, or -ENOMEM. */
static long smtp_group(struct kx_alert *const *held, size_t n, struct smtp_group **groups)
{
    const struct kx_alert **v = malloc(n * sizeof(*v));
    struct smtp_group *g = calloc(n, sizeof(*g));
    size_t ng = 0;

    *groups = NULL;
    if (!v || !g) {
        free(v);
        free(g);
        return -ENOMEM;
    }
    memcpy(v, held, n * sizeof(*v));
    qsort(v, n, sizeof(*v), smtp_cmp_alert);
    for (size_t i = 0; i < n; i++) {
        const struct kx_alert *a = v[i];
        struct smtp_group *cur = ng ? &g[ng - 1] : NULL;

        if (!cur || cur->a->priority != a->priority || strcmp(cur->a->rule, a->rule) != 0) {
            cur = &g[ng++];
            cur->a = a;
            cur->first_ns = cur->last_ns = a->time_ns;
        }
        cur->count++;
        cur->first_ns = a->time_ns < cur->first_ns ? a->time_ns : cur->first_ns;
        cur->last_ns = a->time_ns > cur->last_ns ? a->time_ns : cur->last_ns;
        if (cur->count == 1 || strcmp(v[i - 1]->hostname, a->hostname) != 0) {
            if (cur->n_nodes < KX_SMTP_DIGEST_NODES)
                cur->nodes[cur->n_nodes] = a->hostname;
            cur->n_nodes++;
        }
    }
    free(v);
    qsort(g, ng, sizeof(*g), smtp_cmp_group);
    *groups = g;
    return (long)ng;
}

/* "node-a, node-b (+3 more)" as text or HTML. */
static int smtp_nodes(struct kx_buf *out, const struct smtp_group *g, bool html)
{
    size_t shown = g->n_nodes < KX_SMTP_DIGEST_NODES ? g->n_nodes : KX_SMTP_DIGEST_NODES;
    int rc = 0;

    for (size_t i = 0; i < shown && rc == 0; i++) {
        const char *h = g->nodes[i][0] ? g->nodes[i] : "-";

        if ((rc = kx_buf_printf(out, "%s", i ? ", " : "")) == 0)
            rc = html ? smtp_esc(out, h) : kx_buf_printf(out, "%s", h);
    }
    if (rc == 0 && g->n_nodes > shown)
        rc = kx_buf_printf(out, " (+%zu more)", g->n_nodes - shown);
    return rc;
}

static const char smtp_th[] = "<th style=\"text-align:left;padding:4px 8px;"
                              "border-bottom:1px solid #ccc\">";
static const char smtp_td[] = "<td style=\"padding:3px 8px;vertical-align:top;"
                              "border-bottom:1px solid #eee\">";

/* The digest's subject and both bodies. */
static int smtp_digest_bodies(const struct kx_output *o, struct kx_alert *const *held, size_t n,
                              struct kx_buf *subject, struct kx_buf *text, struct kx_buf *html)
{
    struct smtp_group *g = NULL;
    long ng = smtp_group(held, n, &g);
    size_t severe = 0, rows, details = n < KX_SMTP_DIGEST_DETAILS ? n : KX_SMTP_DIGEST_DETAILS;
    int64_t first = held[0]->time_ns, last = held[0]->time_ns;
    enum kx_priority top = KX_PRI_DEBUG;
    char t0[40], t1[40], span[96];
    int rc;

    if (ng < 0)
        return (int)ng;
    rows = (size_t)ng < KX_SMTP_DIGEST_GROUPS ? (size_t)ng : KX_SMTP_DIGEST_GROUPS;
    for (size_t i = 0; i < n; i++) {
        const struct kx_alert *a = held[i];

        severe += a->priority <= KX_PRI_CRITICAL;
        top = a->priority < top ? a->priority : top;
        first = a->time_ns < first ? a->time_ns : first;
        last = a->time_ns > last ? a->time_ns : last;
    }
    smtp_time_short(first, t0, sizeof(t0));
    smtp_time_short(last, t1, sizeof(t1));
    if (strcmp(t0, t1) == 0)
        snprintf(span, sizeof(span), "at %s", t0);
    else
        snprintf(span, sizeof(span), "from %.19s to %s", t0, t1);

    if (severe)
        rc = kx_buf_printf(subject, "[Klaxon] %zu alert%s (%zu critical) %s", n, n == 1 ? "" : "s",
                           severe, span);
    else
        rc = kx_buf_printf(subject, "[Klaxon] %zu alert%s (highest: %s) %s", n, n == 1 ? "" : "s",
                           kx_priority_slug(top), span);
    if (rc < 0)
        goto done;

    /* text/plain: summary, then the details */
    if ((rc = kx_buf_printf(text, "Klaxon digest: %zu alert%s %s\n\n", n, n == 1 ? "" : "s",
                            span)) < 0 ||
        (rc = kx_buf_printf(text, "Summary (%ld rule/priorit%s)\n\n", ng, ng == 1 ? "y" : "ies")) <
            0)
        goto done;
    for (size_t i = 0; i < rows; i++) {
        smtp_time_short(g[i].first_ns, t0, sizeof(t0));
        smtp_time_short(g[i].last_ns, t1, sizeof(t1));
        if ((rc = kx_buf_printf(
                 text, "%6zu x %-13s %s\n         first %s, last %s\n         nodes: ", g[i].count,
                 kx_priority_name(g[i].a->priority), g[i].a->rule, t0, t1)) < 0 ||
            (rc = smtp_nodes(text, &g[i], false)) < 0 || (rc = kx_buf_printf(text, "\n")) < 0)
            goto done;
    }
    if ((size_t)ng > rows &&
        (rc = kx_buf_printf(text, "   ... and %zu more rule/priorities\n", (size_t)ng - rows)) < 0)
        goto done;
    if ((rc = kx_buf_printf(text, "\nAlerts%s\n\n", n > details ? " (oldest first)" : "")) < 0)
        goto done;
    for (size_t i = 0; i < details; i++) {
        const struct kx_alert *a = held[i];
        char ts[64];

        kx_time_format(a->time_ns, ts, sizeof(ts));
        if ((rc = kx_buf_printf(text, "%s %s %s [%s]\n    ", ts, kx_priority_name(a->priority),
                                a->rule, *a->hostname ? a->hostname : "-")) < 0 ||
            (rc = smtp_clip(text, a->output, KX_SMTP_DIGEST_OUTPUT_MAX, false)) < 0 ||
            (rc = kx_buf_printf(text, "\n")) < 0)
            goto done;
    }
    if (n > details &&
        (rc = kx_buf_printf(text, "\n... and %zu more alerts not listed\n", n - details)) < 0)
        goto done;
    if ((rc = kx_buf_printf(text, "\n-- \nKlaxon, output %s\n", o->name)) < 0)
        goto done;

    /* text/html: the same as tables */
    if ((rc = kx_buf_printf(html, "%s", smtp_html_head)) < 0 ||
        (rc = smtp_esc(html, subject->data)) < 0 ||
        (rc = kx_buf_printf(html,
                            "</title></head>\n<body style=\"font-family:sans-serif;"
                            "font-size:14px;color:#222\">\n<h2 style=\"font-size:18px;border-left:"
                            "6px solid %s;padding:4px 12px\">Klaxon digest: %zu alert%s %s</h2>\n"
                            "<h3>Summary</h3>\n<table style=\"border-collapse:collapse;"
                            "font-size:13px\">\n<tr>%sCount</th>%sPriority</th>%sRule</th>%sFirst"
                            "</th>%sLast</th>%sNodes</th></tr>\n",
                            smtp_color(top), n, n == 1 ? "" : "s", span, smtp_th, smtp_th, smtp_th,
                            smtp_th, smtp_th, smtp_th)) < 0)
        goto done;
    for (size_t i = 0; i < rows; i++) {
        smtp_time_short(g[i].first_ns, t0, sizeof(t0));
        smtp_time_short(g[i].last_ns, t1, sizeof(t1));
        if ((rc = kx_buf_printf(html,
                                "<tr>%s%zu</td>%s<span style=\"color:%s\">&#9632;</span> "
                                "%s</td>%s",
                                smtp_td, g[i].count, smtp_td, smtp_color(g[i].a->priority),
                                kx_priority_name(g[i].a->priority), smtp_td)) < 0 ||
            (rc = smtp_esc(html, g[i].a->rule)) < 0 ||
            (rc = kx_buf_printf(html, "</td>%s%s</td>%s%s</td>%s", smtp_td, t0, smtp_td, t1,
                                smtp_td)) < 0 ||
            (rc = smtp_nodes(html, &g[i], true)) < 0 ||
            (rc = kx_buf_printf(html, "</td></tr>\n")) < 0)
            goto done;
    }
    if ((size_t)ng > rows &&
        (rc = kx_buf_printf(html,
                            "<tr>%s</td><td colspan=\"5\" style=\"padding:3px 8px\">... and "
                            "%zu more rule/priorities</td></tr>\n",
                            smtp_td, (size_t)ng - rows)) < 0)
        goto done;
    if ((rc = kx_buf_printf(html,
                            "</table>\n<h3>Alerts</h3>\n<table style=\"border-collapse:collapse;"
                            "font-size:13px\">\n<tr>%sTime</th>%sPriority</th>%sRule</th>%sHost"
                            "</th>%sOutput</th></tr>\n",
                            smtp_th, smtp_th, smtp_th, smtp_th, smtp_th)) < 0)
        goto done;
    for (size_t i = 0; i < details; i++) {
        const struct kx_alert *a = held[i];
        char ts[64];

        kx_time_format(a->time_ns, ts, sizeof(ts));
        if ((rc = kx_buf_printf(html, "<tr>%s%s</td>%s%s</td>%s", smtp_td, ts, smtp_td,
                                kx_priority_name(a->priority), smtp_td)) < 0 ||
            (rc = smtp_esc(html, a->rule)) < 0 ||
            (rc = kx_buf_printf(html, "</td>%s", smtp_td)) < 0 ||
            (rc = smtp_esc(html, *a->hostname ? a->hostname : "-")) < 0 ||
            (rc = kx_buf_printf(html, "</td>%s<span style=\"font-family:monospace\">", smtp_td)) <
                0 ||
            (rc = smtp_clip(html, a->output, KX_SMTP_DIGEST_OUTPUT_MAX, true)) < 0 ||
            (rc = kx_buf_printf(html, "</span></td></tr>\n")) < 0)
            goto done;
    }
    if ((rc = kx_buf_printf(html, "</table>\n")) < 0 ||
        (n > details && (rc = kx_buf_printf(html, "<p>... and %zu more alerts not listed</p>\n",
                                            n - details)) < 0) ||
        (rc = kx_buf_printf(html, "<p style=\"color:#888;font-size:12px\">Klaxon, output ")) < 0 ||
        (rc = smtp_esc(html, o->name)) < 0)
        goto done;
    rc = kx_buf_printf(html, "</p>\n</body></html>\n");
done:
    free(g);
    return rc;
}

int kx_smtp_format_digest(const struct kx_output *o, struct kx_alert *const *held, size_t n,
                          int64_t now_ns, struct kx_buf *out)
{
    const struct smtp_state *st = o->priv;
    struct kx_buf subject, text, html;
    char boundary[64], uuid[40], mid[KX_SMTP_ADDR_MAX + 128];
    enum kx_priority top = KX_PRI_DEBUG;
    int rc;

    if (n == 0)
        return -EINVAL;
    kx_buf_init(&subject, 4096);
    kx_buf_init(&text, KX_SMTP_MESSAGE_MAX / 4);
    kx_buf_init(&html, KX_SMTP_MESSAGE_MAX / 4);
    for (size_t i = 0; i < n; i++)
        top = held[i]->priority < top ? held[i]->priority : top;
    if ((rc = smtp_digest_bodies(o, held, n, &subject, &text, &html)) < 0)
        goto done;
    smtp_boundary(boundary, sizeof(boundary));
    kx_uuid4(uuid);
    snprintf(mid, sizeof(mid), "digest.%s.%s@%s", uuid, st->slug, st->domain);
    rc = kx_smtp_message(&(struct kx_smtp_mail){.from = &st->from,
                                                .to = st->to,
                                                .n_to = st->n_to,
                                                .subject = subject.data,
                                                .date_ns = now_ns,
                                                .message_id = mid,
                                                .boundary = boundary,
                                                .priority = kx_priority_slug(top),
                                                .text = text.data,
                                                .html = st->html ? html.data : NULL},
                         out);
done:
    kx_buf_free(&subject);
    kx_buf_free(&text);
    kx_buf_free(&html);
    return rc;
}

/* ---- outcome ----------------------------------------------------------------- */


/* What the failed command was for, in words. */
static const char *smtp_cmd_words(const char *cmd)
{
    static const struct {
        const char *cmd, *words;
    } map[] = {
        {"EHLO", "greeting (EHLO)"},    {"HELO", "greeting (HELO)"},
        {"STARTTLS", "STARTTLS"},       {"AUTH", "authentication"},
        {"MAIL", "sender (MAIL FROM)"}, {"RCPT", "recipient (RCPT TO)"},
        {"DATA", "message (DATA)"},
    };

    for (size_t i = 0; cmd && i < KX_ARRAY_SIZE(map); i++)
        if (strcmp(cmd, map[i].cmd) == 0)
            return map[i].words;
    return "connection";
}

int kx_smtp_outcome(int curl_rc, long reply, const char *cmd, const char *text,
                    const char *curl_msg, const char *where, char *err, size_t errlen)
{
    const char *sep = text && *text ? ": " : "";

    text = text ? text : "";
    where = where ? where : "?";
    if (curl_rc == CURLE_OK) {
        err[0] = '\0';
        return 0;
    }
    if (reply == 535 || reply == 530) {
        snprintf(err, errlen, "smtp %s: authentication %s (%ld)%s%s", where,
                 reply == 535 ? "failed" : "required", reply, sep, text);
        return -EACCES;
    }
    if (reply >= 400 && reply <= 499) {
        snprintf(err, errlen, "smtp %s: %s temporarily refused (%ld)%s%s", where,
                 smtp_cmd_words(cmd), reply, sep, text);
        return -EAGAIN;
    }
    if (reply >= 500 && reply <= 599) {
        snprintf(err, errlen, "smtp %s: %s rejected (%ld)%s%s", where, smtp_cmd_words(cmd), reply,
                 sep, text);
        return -EINVAL;
    }
    curl_msg = curl_msg && *curl_msg ? curl_msg : curl_easy_strerror((CURLcode)curl_rc);
    switch (curl_rc) {
    case CURLE_USE_SSL_FAILED:
        snprintf(err, errlen,
                 "smtp %s: the server does not offer STARTTLS; use smtps:// "
                 "(implicit TLS) or tls: false",
                 where);
        break;
    case CURLE_LOGIN_DENIED:
        snprintf(err, errlen, "smtp %s: authentication failed: %s (check authmechanism)", where,
                 curl_msg);
        return -EACCES;
    case CURLE_PEER_FAILED_VERIFICATION:
        snprintf(err, errlen,
                 "smtp %s: TLS certificate not trusted: %s (set cafile, or "
                 "checkcert: false)",
                 where, curl_msg);
        break;
    default:
        snprintf(err, errlen, "smtp %s: %s", where, curl_msg);
    }
    /* SMTP adds its own: the server refused the login, or the mail's size */
    return kx_httpc_curl_permanent(curl_rc) || curl_rc == CURLE_LOGIN_DENIED ||
                   curl_rc == CURLE_FILESIZE_EXCEEDED
               ? -EINVAL
               : -EAGAIN;
}

/* ---- transport --------------------------------------------------------------- */

/* The message being uploaded. */
struct smtp_upload {
    const char *data;
    size_t len, off;
};

static size_t smtp_on_read(char *p, size_t size, size_t n, void *ud)
{
    struct smtp_upload *u = ud;
    size_t take = size * n < u->len - u->off ? size * n : u->len - u->off;

    memcpy(p, u->data + u->off, take);
    u->off += take;
    return take;
}

/* What the protocol trace leaves for error messages. */
struct smtp_trace {
    char cmd[12];                 /* verb of our last command */
    char reply[SMTP_REPLY_SHOWN]; /* the server's last reply line, printable */
    bool quit;                    /* QUIT sent: later replies ("221 Bye") say nothing */
    const char *secrets[2];       /* borrowed: never kept in reply */
};

/* CURLOPT_DEBUGFUNCTION. Only the verb of a command is kept, and only a
 * known one: the arguments of AUTH and the lines after it are credentials,
 * and the message itself (DATA_OUT) is never looked at. */
static int smtp_on_debug(CURL *c, curl_infotype type, char *p, size_t n, void *ud)
{
    static const char *const verbs[] = {"EHLO", "HELO", "STARTTLS", "AUTH", "MAIL",
                                        "RCPT", "DATA", "RSET",     "NOOP"};
    struct smtp_trace *tr = ud;

    if (type == CURLINFO_HEADER_OUT) {
        size_t w = 0;

        while (w < n && w < sizeof(tr->cmd) - 1 && isalpha((unsigned char)p[w]))
            w++;
        if (w == 4 && strncasecmp(p, "QUIT", 4) == 0) {
            tr->quit = true; /* keep the failed command and its reply */
            return 0;
        }
        for (size_t i = 0; i < KX_ARRAY_SIZE(verbs); i++) {
            if (strlen(verbs[i]) == w && strncasecmp(p, verbs[i], w) == 0) {
                snprintf(tr->cmd, sizeof(tr->cmd), "%s", verbs[i]);
                tr->quit = false; /* that QUIT closed an older pooled connection */
                break;
            }
        }
    } else if (type == CURLINFO_HEADER_IN && !tr->quit) {
        size_t o = 0;

        /* the last line of a (multi-line) reply */
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
            n--;
        for (size_t i = n; i > 0; i--) {
            if (p[i - 1] == '\n') {
                p += i, n -= i;
                break;
            }
        }
        for (size_t i = 0; i < n && o + 1 < sizeof(tr->reply); i++)
            tr->reply[o++] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? ' ' : p[i];
        tr->reply[o] = '\0';
        for (size_t i = 0; i < KX_ARRAY_SIZE(tr->secrets); i++)
            if (tr->secrets[i] && strlen(tr->secrets[i]) >= 4 && strstr(tr->reply, tr->secrets[i]))
                snprintf(tr->reply, sizeof(tr->reply), "(reply withheld: it repeats a secret)");
    }
    return 0;
}

/* Output worker thread. Sends one message; the plugin outcome. */
static int smtp_send(struct kx_output *o, const struct kx_buf *msg)
{
    const struct smtp_settings *s = o->settings;
    struct smtp_state *st = o->priv;
    struct smtp_upload up = {msg->data, msg->len, 0};
    struct smtp_trace tr = {.secrets = {s->password, s->token}};
    long timeout_ms = (long)(s->http.timeout / KX_NSEC_PER_MSEC), reply = 0;
    CURL *c = st->curl;
    CURLcode rc;
    int ret;

    curl_easy_reset(c); /* keeps the connection cache: the next mail reuses it */
    st->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, st->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    /* Also bounds the QUIT curl sends when it closes a pooled connection
     * (120 s by default), which no transfer timeout covers. */
    curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT,
                     timeout_ms > 1000 ? timeout_ms / 1000 : 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, st->errbuf);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, st->fresh ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_USE_SSL, s->tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    if (!s->http.checkcert) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (s->http.cafile && *s->http.cafile)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->http.cafile);
    if (s->http.clientcert && *s->http.clientcert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, s->http.clientcert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, s->http.clientkey);
    }
    if (st->auth) {
        curl_easy_setopt(c, CURLOPT_USERNAME, smtp_str(s->user));
        if (smtp_mechs[st->mech].bearer)
            curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, s->token);
        else
            curl_easy_setopt(c, CURLOPT_PASSWORD, smtp_str(s->password));
        if (smtp_mechs[st->mech].login_options)
            curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, smtp_mechs[st->mech].login_options);
        if (s->identity && *s->identity)
            curl_easy_setopt(c, CURLOPT_SASL_AUTHZID, s->identity);
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, st->envelope_from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, st->rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, smtp_on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len);
    /* The trace is how we learn which command failed and the server's words. */
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, smtp_on_debug);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &tr);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);

    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
    /* up and tr die with this call. */
    curl_easy_setopt(c, CURLOPT_READDATA, NULL);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, NULL);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 0L);

    ret = kx_smtp_outcome((int)rc, reply, tr.cmd, tr.reply, st->errbuf, st->where, o->error,
                          sizeof(o->error));
    /* After any failure the next mail starts on a new connection: the old
     * one may be mid-command, or closed by a 421. */
    st->fresh = ret != 0;
    if (ret == 0)
        kx_debug("output %s: mail of %zu bytes accepted by %s", o->name, msg->len, st->where);
    return ret;
}

/* ---- the plugin ------------------------------------------------------------------ */

/* Splits hostport into the URL and the shown "host:port"; -EINVAL. */
static int smtp_url(const char *hostport, bool tls, char **url, char *where, size_t wlen,
                    bool *implicit)
{
    const char *hp = hostport;
    const char *scheme = NULL, *colon;
    long port = 25;
    char *end;

    if (strncasecmp(hp, "smtps://", 8) == 0)
        scheme = "smtps", hp += 8;
    else if (strncasecmp(hp, "smtp://", 7) == 0)
        scheme = "smtp", hp += 7;
    if (!*hp || strpbrk(hp, "/?#@ \t\r\n"))
        return -EINVAL;
    if (*hp == '[') { /* [IPv6]:port */
        const char *rb = strchr(hp, ']');

        if (!rb)
            return -EINVAL;
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] && !colon)
            return -EINVAL;
    } else {
        colon = strchr(hp, ':');
        if (colon && strchr(colon + 1, ':'))
            return -EINVAL; /* a bare IPv6 address needs brackets */
        if (colon == hp)
            return -EINVAL;
    }
    if (colon) {
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
            return -EINVAL;
    } else if (scheme && strcmp(scheme, "smtps") == 0) {
        port = 465;
    }
    /* 465 is implicit TLS ("submissions", RFC 8314) unless told otherwise. */
    if (!scheme)
        scheme = port == 465 && tls ? "smtps" : "smtp";
    *implicit = strcmp(scheme, "smtps") == 0;
    snprintf(where, wlen, "%.*s:%ld", (int)(colon ? (size_t)(colon - hp) : strlen(hp)), hp, port);
    if (asprintf(url, "%s://%s", scheme, where) < 0) {
        *url = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Output worker thread. */
static int smtp_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct smtp_settings *s = o->settings;
    struct smtp_state *st;
    size_t before = d->n;
    bool implicit = false;
    char err[128];
    int rc;

    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    o->priv = st; /* destroy frees what is made below, also after a failure */
    st->mech = -1;

    rc = smtp_url(s->hostport ? s->hostport : "", s->tls, &st->url, st->where, sizeof(st->where),
                  &implicit);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0 && s->hostport && strchr(s->hostport, '@'))
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must not carry credentials (not repeated here): "
                    "set user and password",
                    o->name);
    else if (rc < 0)
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport \"%s\": want host:port, e.g. smtp.example.com:587 "
                    "(or smtps://host:465)",
                    o->name, s->hostport ? s->hostport : "");
    else if (implicit && !s->tls)
        kx_diag_add(d, kx_config_get(cfg, "tls"),
                    "output %s: hostport smtps:// is TLS, but tls is false", o->name);

    if (!s->from || kx_smtp_addr_parse(s->from, &st->from) < 0)
        kx_diag_add(d, kx_config_get(cfg, "from"),
                    "output %s: from \"%s\": want an address, e.g. \"Klaxon "
                    "<klaxon@example.com>\"",
                    o->name, s->from ? s->from : "");
    if (s->to.n == 0)
        kx_diag_add(d, kx_config_get(cfg, "to"), "output %s: to: at least one recipient", o->name);
    else if (!(st->to = calloc(s->to.n, sizeof(*st->to))))
        return -ENOMEM;
    for (size_t i = 0; i < s->to.n; i++) {
        char rcpt[KX_SMTP_ADDR_MAX + 2];
        struct curl_slist *l;

        if (kx_smtp_addr_parse(s->to.v[i], &st->to[st->n_to]) < 0) {
            kx_diag_add(d, kx_config_get(cfg, "to"),
                        "output %s: to: \"%s\" is not an address (names with commas cannot be "
                        "used here)",
                        o->name, s->to.v[i]);
            continue;
        }
        snprintf(rcpt, sizeof(rcpt), "<%s>", st->to[st->n_to++].addr);
        if (!(l = curl_slist_append(st->rcpt, rcpt)))
            return -ENOMEM;
        st->rcpt = l;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(smtp_mechs); i++)
        if (strcasecmp(s->authmechanism ? s->authmechanism : "auto", smtp_mechs[i].name) == 0 ||
            (i == 0 && s->authmechanism && !*s->authmechanism))
            st->mech = (int)i;
    if (st->mech < 0) {
        kx_diag_add(d, kx_config_get(cfg, "authmechanism"),
                    "output %s: authmechanism \"%s\": want auto, plain, login, cram-md5, "
                    "digest-md5, ntlm, external, xoauth2, oauthbearer or none%s",
                    o->name, s->authmechanism,
                    strcasecmp(s->authmechanism, "anonymous") == 0
                        ? " (libcurl has no anonymous SASL)"
                        : "");
    } else if (smtp_mechs[st->mech].bearer && (!*smtp_str(s->token) || !*smtp_str(s->user))) {
        kx_diag_add(d, kx_config_get(cfg, "authmechanism"),
                    "output %s: authmechanism %s needs user and token", o->name,
                    smtp_mechs[st->mech].name);
    } else if (!smtp_mechs[st->mech].bearer && *smtp_str(s->password) && !*smtp_str(s->user)) {
        kx_diag_add(d, kx_config_get(cfg, "password"),
                    "output %s: password without user: set user too", o->name);
    }
    /* "none", or no user: no AUTH at all (curl authenticates when given a user) */
    st->auth =
        st->mech >= 0 && strcmp(smtp_mechs[st->mech].name, "none") != 0 && *smtp_str(s->user);

    if (!s->outputformat || strcasecmp(s->outputformat, "html") == 0)
        st->html = true;
    else if (strcasecmp(s->outputformat, "text") != 0)
        kx_diag_add(d, kx_config_get(cfg, "outputformat"),
                    "output %s: outputformat \"%s\": want html or text", o->name, s->outputformat);
    if (s->digest < 0)
        kx_diag_add(d, kx_config_get(cfg, "digest"), "output %s: digest must not be negative",
                    o->name);
    if ((s->http.clientcert && *s->http.clientcert) != (s->http.clientkey && *s->http.clientkey))
        kx_diag_add(d,
                    kx_config_get(cfg, s->http.clientcert && *s->http.clientcert ? "clientcert"
                                                                                 : "clientkey"),
                    "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (s->http.timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (!(st->subject = kx_template_compile(s->subject ? s->subject : SMTP_DEFAULT_SUBJECT, err,
                                            sizeof(err)))) {
        if (errno == ENOMEM)
            return -ENOMEM;
        kx_diag_add(d, kx_config_get(cfg, "subject"), "output %s: subject: %s", o->name, err);
    }
    if (d->n > before)
        return -EINVAL;

    snprintf(st->envelope_from, sizeof(st->envelope_from), "<%s>", st->from.addr);
    snprintf(st->domain, sizeof(st->domain), "%s", strchr(st->from.addr, '@') + 1);
    kx_slug(o->name, st->slug, sizeof(st->slug));
    if (st->auth && !s->tls)
        kx_warn("output %s: credentials will cross the network unencrypted (tls: false)", o->name);
    if (!(st->curl = curl_easy_init()))
        return -ENOMEM;
    kx_info("output %s: mail to %zu recipient%s via %s (%s)%s", o->name, st->n_to,
            st->n_to == 1 ? "" : "s", st->url,
            implicit ? "implicit TLS"
            : s->tls ? "STARTTLS required"
                     : "no TLS",
            s->digest ? ", digest mode" : "");
    return 0;
}

/* Output worker thread. The outcome of formatting failures: out of memory
 * may pass, a message over the maximum never will. */
static int smtp_format_failed(struct kx_output *o, int rc, const char *what)
{
    snprintf(o->error, sizeof(o->error), "smtp: cannot build the %s: %s", what, strerror(-rc));
    return rc == -ENOMEM ? -EAGAIN : -EINVAL;
}

/* Output worker thread. One mail per alert, or hold it for the digest. */
static int smtp_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct smtp_settings *s = o->settings;
    struct kx_buf msg;
    int rc = 0;

    if (s->digest > 0) {
        if (o->flush_at == 0)
            o->flush_at = kx_monotonic_ns() + s->digest;
        return KX_OUTPUT_HOLD;
    }
    kx_buf_init(&msg, KX_SMTP_MESSAGE_MAX);
    for (size_t i = 0; i < n && rc == 0; i++) {
        kx_buf_reset(&msg);
        if ((rc = kx_smtp_format_alert(o, batch[i], kx_now_ns(), &msg)) < 0)
            rc = smtp_format_failed(o, rc, "mail");
        else
            rc = smtp_send(o, &msg);
    }
    kx_buf_free(&msg);
    return rc;
}

/* Output worker thread. The digest: one mail listing every held alert. */
static int smtp_flush(struct kx_output *o, struct kx_alert *const *held, size_t n)
{
    struct kx_buf msg;
    int rc;

    o->flush_at = 0; /* the next held alert starts the next interval */
    if (n == 0)
        return 0;
    kx_buf_init(&msg, KX_SMTP_MESSAGE_MAX);
    if ((rc = kx_smtp_format_digest(o, held, n, kx_now_ns(), &msg)) < 0)
        rc = smtp_format_failed(o, rc, "digest");
    else
        rc = smtp_send(o, &msg);
    if (rc == 0)
        kx_info("output %s: digest of %zu alert%s sent", o->name, n, n == 1 ? "" : "s");
    kx_buf_free(&msg);
    return rc;
}

/* Output worker thread; also after a failed init. */
static void smtp_destroy(struct kx_output *o)
{
    struct smtp_state *st = o->priv;

    if (!st)
        return;
    if (st->curl)
        curl_easy_cleanup(st->curl);
    curl_slist_free_all(st->rcpt);
    kx_template_free(st->subject);
    free(st->to);
    free(st->url);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_smtp = {
    .name = "smtp",
    .desc = "email over SMTP (STARTTLS/TLS, AUTH): text + HTML per alert, or a digest",
    .opts = smtp_opts,
    .settings_size = sizeof(struct smtp_settings),
    .max_batch = 1,
    .init = smtp_init,
    .deliver = smtp_deliver,
    .flush = smtp_flush,
    .destroy = smtp_destroy,
};
