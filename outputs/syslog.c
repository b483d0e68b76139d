/* SPDX-License-Identifier: Apache-2.0 */
/*
 * syslog.c - alerts to a syslog server (rsyslog, syslog-ng, a SIEM's
 * collector): RFC 5424 or RFC 3164 messages whose body is the alert as
 * JSON, as CEF or as LEEF 2.0, over UDP (RFC 5426), TCP (RFC 6587) or TLS
 * (RFC 5425). Settings keep Falcosidekick's names (host, port, protocol,
 * format: env SYSLOG_HOST, ... for an instance named "syslog").
 *
 *   <130>1 2026-11-22T10:01:02.123456Z node-a klaxon - syscall - CEF:0|Klaxon|...
 *
 * Transports:
 *  - udp: one datagram per alert, fire and forget. The socket is connected,
 *    so a port nobody listens on comes back as ECONNREFUSED on a later send
 *    and the batch is retried; the datagram that drew the ICMP is lost, as
 *    UDP syslog always allows.
 *  - tcp / tls: one connection kept open across deliveries; a whole batch is
 *    framed (octet counting "<len> <msg>" by default) and written at once.
 *    Syslog has no acknowledgement, so a batch counts as delivered once the
 *    kernel took it. To not write into a connection the server already
 *    closed (a restart), each batch first checks for the server's FIN and
 *    reconnects. A batch cut short by an error is retried whole, so a
 *    receiver may see a message twice (at least once, never lost silently).
 *
 * Size: a message over maxsize (default 8 KiB for udp - rsyslog's default
 * maxMessageSize, and larger datagrams get fragmented - 64 KiB for tcp/tls)
 * is cut at a UTF-8 boundary rather than refused: a syslog receiver would
 * cut it too, and a cut alert beats a dead-lettered one. Every cut is
 * counted and logged (at most every 10 s) with the running total.
 *
 * Failures (refused, reset, timeouts, DNS, TLS handshake or certificate
 * problems) are all -EAGAIN with the reason in o->error: the core retries
 * with backoff and dead-letters after max_deliver.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "alert.h"
#include "config.h"
#include "log.h"
#include "outputs.h"
#include "syslogout.h"
#include "util.h"

/* A formatted message before the cut may be 4 MiB: escaping can double a
 * 1 MiB alert. One write carries up to 16 MiB of frames; more = several. */
#define KX_SYSLOG_BATCH 500 /* alerts per deliver() at most */
#define KX_SYSLOG_MSG_MAX (4 << 20)
#define KX_SYSLOG_WRITE_MAX (16 << 20)
#define KX_SYSLOG_UDP_MAX 65507                       /* largest IPv4 UDP payload */
#define KX_SYSLOG_MIN_SIZE 480                        /* RFC 5426: every receiver takes this much */
#define KX_SYSLOG_TLS_SETTLE (250 * KX_NSEC_PER_MSEC) /* wait for a TLS 1.3 server's verdict */
#define KX_SYSLOG_VENDOR "Klaxon"
#define KX_SYSLOG_PRODUCT "Klaxon"

/* ------------------------------------------------------------ formatting */

int kx_syslog_severity(enum kx_priority p)
{
    return p >= KX_PRI_EMERGENCY && p <= KX_PRI_DEBUG ? (int)p : 7;
}

int kx_syslog_cef_severity(enum kx_priority p)
{
    /* ArcSight's bands: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high. */
    static const int sev[KX_PRI_COUNT] = {10, 9, 8, 7, 6, 4, 3, 0};

    return p >= KX_PRI_EMERGENCY && p <= KX_PRI_DEBUG ? sev[p] : 0;
}

static const char *const facility_names[24] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7",
};

int kx_syslog_facility_parse(const char *s)
{
    char *end;
    long n;

    if (!s || !*s)
        return -EINVAL;
    for (int i = 0; i < 24; i++) {
        if (strcasecmp(s, facility_names[i]) == 0)
            return i;
    }
    if (strcasecmp(s, "audit") == 0) /* the other name of 13 */
        return 13;
    n = strtol(s, &end, 10);
    return *end == '\0' && n >= 0 && n <= 23 ? (int)n : -EINVAL;
}

static int put_char(struct kx_buf *out, char c)
{
    return kx_buf_append(out, &c, 1);
}

int kx_syslog_cef_header(struct kx_buf *out, const char *s)
{
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        if (*p == '\\' || *p == '|')
            rc = kx_buf_append(out, *p == '\\' ? "\\\\" : "\\|", 2);
        else
            rc = put_char(out, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
    }
    return rc;
}

int kx_syslog_cef_value(struct kx_buf *out, const char *s)
{
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        switch (*p) {
        case '\\':
            rc = kx_buf_append(out, "\\\\", 2);
            break;
        case '=':
            rc = kx_buf_append(out, "\\=", 2);
            break;
        case '\n':
            rc = kx_buf_append(out, "\\n", 2);
            break;
        case '\r':
            rc = kx_buf_append(out, "\\r", 2);
            break;
        default:
            rc = put_char(out, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
        }
    }
    return rc;
}

int kx_syslog_leef_value(struct kx_buf *out, const char *s)
{
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++)
        rc = put_char(out, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
    return rc;
}

/*
 * Appends s as one syslog header token: at most max bytes of printable
 * US-ASCII (RFC 5424 PRINTUSASCII), anything else - spaces, controls,
 * UTF-8, and the bytes in `bad` - becomes '_'. Empty becomes "-" (NILVALUE).
 */
static int put_token(struct kx_buf *out, const char *s, size_t max, const char *bad)
{
    size_t n = 0;
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n < max && rc == 0;
         p++, n++)
        rc = put_char(out, *p < 33 || *p > 126 || (bad && strchr(bad, *p)) ? '_' : (char)*p);
    return rc == 0 && n == 0 ? put_char(out, '-') : rc;
}

/* A CEF/LEEF extension key from a Falco field name: [A-Za-z0-9_.-], the
 * rest '_' ("proc.aname[2]" -> "proc.aname_2_"). */
static int put_key(struct kx_buf *out, const char *s)
{
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++)
        rc = put_char(out, isalnum(*p) || *p == '_' || *p == '.' || *p == '-' ? (char)*p : '_');
    return rc;
}

/* RFC 5424 SD-PARAM value: '"', '\' and ']' escaped; controls become spaces
 * so that a message never holds a LF (non-transparent framing). */
static int put_sd_value(struct kx_buf *out, const char *s)
{
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\' || *p == ']')
            rc = put_char(out, '\\');
        if (rc == 0)
            rc = put_char(out, *p < 0x20 || *p == 0x7f ? ' ' : (char)*p);
    }
    return rc;
}

static void split_time(int64_t ns, struct tm *tm, int *usec)
{
    time_t sec = (time_t)(ns / KX_NSEC_PER_SEC);
    int64_t rem = ns % KX_NSEC_PER_SEC;

    if (rem < 0) {
        rem += KX_NSEC_PER_SEC;
        sec--;
    }
    gmtime_r(&sec, tm);
    *usec = (int)(rem / 1000); /* 0..999999 */
}

/* A JSON scalar as text: returns the text (borrowed from v or num), or
 * *heap (caller frees) for arrays/objects; NULL for null. */
static const char *json_text(const cJSON *v, char *num, size_t len, char **heap)
{
    *heap = NULL;
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;

        if (d > -9e15 && d < 9e15 && d == (double)(long long)d) /* range first: no UB cast */
            snprintf(num, len, "%lld", (long long)d);
        else
            snprintf(num, len, "%.17g", d);
        return num;
    }
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return *heap = cJSON_PrintUnformatted(v);
    return NULL;
}

/* The alert's tags joined with ',' into out (reset first). */
static int tags_text(const struct kx_alert *a, struct kx_buf *out)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(a->doc, "tags"), *t;
    int rc = 0;

    kx_buf_reset(out);
    cJSON_ArrayForEach(t, tags)
    {
        if (!cJSON_IsString(t))
            continue;
        if (out->len && (rc = put_char(out, ',')) < 0)
            return rc;
        if ((rc = kx_buf_append(out, t->valuestring, strlen(t->valuestring))) < 0)
            return rc;
    }
    return 0;
}

/* One "key=value" of a CEF (sep ' ') or LEEF (sep '\t') extension. */
static int put_ext(struct kx_buf *out, enum kx_syslog_body body, bool first, const char *key,
                   const char *value, bool raw_key)
{
    int rc = first ? 0 : put_char(out, body == KX_SYSLOG_CEF ? ' ' : '\t');

    if (rc == 0)
        rc = raw_key ? kx_buf_append(out, key, strlen(key)) : put_key(out, key);
    if (rc == 0)
        rc = put_char(out, '=');
    if (rc == 0)
        rc = body == KX_SYSLOG_CEF ? kx_syslog_cef_value(out, value)
                                   : kx_syslog_leef_value(out, value);
    return rc;
}

/* Every non-null output field as an extension, under its Falco name. */
static int put_fields(struct kx_buf *out, enum kx_syslog_body body, const struct kx_alert *a)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields"), *f;
    char num[64], *heap;
    int rc = 0;

    cJSON_ArrayForEach(f, fields)
    {
        const char *text = json_text(f, num, sizeof(num), &heap);

        if (text && f->string && *f->string)
            rc = put_ext(out, body, false, f->string, text, false);
        cJSON_free(heap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * CEF:0|Klaxon|Klaxon|<version>|<rule slug>|<rule>|<0..10>|rt=<epoch ms> dvchost=<host>
 *     externalId=<uuid> cat=<source> cs1Label=priority cs1=<priority> cs2Label=tags cs2=<tags>
 *     <output fields...> msg=<output>
 */
static int format_cef(const struct kx_alert *a, struct kx_buf *out, struct kx_buf *tmp)
{
    char slug[128], v[64];
    int rc;

    kx_slug(a->rule, slug, sizeof(slug));
    if ((rc = kx_buf_printf(out, "CEF:0|%s|%s|%s|%s|", KX_SYSLOG_VENDOR, KX_SYSLOG_PRODUCT,
                            KX_VERSION, slug)) < 0 ||
        (rc = kx_syslog_cef_header(out, a->rule)) < 0 ||
        (rc = kx_buf_printf(out, "|%d|", kx_syslog_cef_severity(a->priority))) < 0)
        return rc;
    snprintf(v, sizeof(v), "%lld", (long long)(a->time_ns / KX_NSEC_PER_MSEC));
    if ((rc = put_ext(out, KX_SYSLOG_CEF, true, "rt", v, true)) < 0 ||
        (*a->hostname &&
         (rc = put_ext(out, KX_SYSLOG_CEF, false, "dvchost", a->hostname, true)) < 0) ||
        (rc = put_ext(out, KX_SYSLOG_CEF, false, "externalId", a->uuid, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_CEF, false, "cat", a->source, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_CEF, false, "cs1Label", "priority", true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_CEF, false, "cs1", kx_priority_name(a->priority), true)) < 0 ||
        (rc = tags_text(a, tmp)) < 0)
        return rc;
    if (tmp->len && ((rc = put_ext(out, KX_SYSLOG_CEF, false, "cs2Label", "tags", true)) < 0 ||
                     (rc = put_ext(out, KX_SYSLOG_CEF, false, "cs2", tmp->data, true)) < 0))
        return rc;
    if ((rc = put_fields(out, KX_SYSLOG_CEF, a)) < 0)
        return rc;
    return put_ext(out, KX_SYSLOG_CEF, false, "msg", a->output, true);
}

/*
 * LEEF:2.0|Klaxon|Klaxon|<version>|<rule slug>|x09|devTime=..<tab>devTimeFormat=..<tab>sev=8
 *     <tab>cat=<source><tab>rule=..<tab>priority=..<tab>hostname=..<tab>uuid=..<tab>tags=..
 *     <tab><output fields...><tab>msg=<output>
 * The header holds only constants and the slug, so it never needs escaping.
 */
static int format_leef(const struct kx_alert *a, struct kx_buf *out, struct kx_buf *tmp)
{
    char slug[128], t[96], sev[16];
    struct tm tm;
    int usec;
    int rc;

    kx_slug(a->rule, slug, sizeof(slug));
    split_time(a->time_ns, &tm, &usec);
    snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec / 1000);
    snprintf(sev, sizeof(sev), "%d", kx_syslog_cef_severity(a->priority));
    if ((rc = kx_buf_printf(out, "LEEF:2.0|%s|%s|%s|%s|x09|", KX_SYSLOG_VENDOR, KX_SYSLOG_PRODUCT,
                            KX_VERSION, slug)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, true, "devTime", t, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "devTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
                      true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "sev", sev, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "cat", a->source, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "rule", a->rule, true)) < 0 ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "priority", kx_priority_name(a->priority),
                      true)) < 0 ||
        (*a->hostname &&
         (rc = put_ext(out, KX_SYSLOG_LEEF, false, "hostname", a->hostname, true)) < 0) ||
        (rc = put_ext(out, KX_SYSLOG_LEEF, false, "uuid", a->uuid, true)) < 0 ||
        (rc = tags_text(a, tmp)) < 0 ||
        (tmp->len && (rc = put_ext(out, KX_SYSLOG_LEEF, false, "tags", tmp->data, true)) < 0) ||
        (rc = put_fields(out, KX_SYSLOG_LEEF, a)) < 0)
        return rc;
    return put_ext(out, KX_SYSLOG_LEEF, false, "msg", a->output, true);
}

static int format_json(const struct kx_alert *a, struct kx_buf *out)
{
    size_t len;
    char *tmp;
    /* one line (kx_alert_json's promise): a newline in a string stays "\n" */
    const char *json = kx_alert_json(a, &len, &tmp);
    int rc = json ? kx_buf_append(out, json, len) : -ENOMEM;

    free(tmp);
    return rc;
}

/* [sdid uuid=".." rule=".." priority=".." source=".."] */
static int format_sd(const char *sdid, const struct kx_alert *a, struct kx_buf *out)
{
    const char *names[] = {"uuid", "rule", "priority", "source"};
    const char *vals[] = {a->uuid, a->rule, kx_priority_name(a->priority), a->source};
    int rc = put_char(out, '[');

    if (rc == 0)
        rc = put_token(out, sdid, 32, "=]\"");
    for (size_t i = 0; i < KX_ARRAY_SIZE(names) && rc == 0; i++) {
        if ((rc = kx_buf_printf(out, " %s=\"", names[i])) == 0 &&
            (rc = put_sd_value(out, vals[i])) == 0)
            rc = put_char(out, '"');
    }
    return rc == 0 ? put_char(out, ']') : rc;
}

int kx_syslog_format(const struct kx_syslog_fmt *f, const struct kx_alert *a, struct kx_buf *out)
{
    static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *app = f->appname && *f->appname ? f->appname : "klaxon";
    const char *host = f->hostname && *f->hostname ? f->hostname
                       : *a->hostname              ? a->hostname
                                                   : f->fallback_host;
    int pri = f->facility * 8 + kx_syslog_severity(a->priority);
    struct kx_buf tmp;
    struct tm tm;
    int usec;
    int rc;

    split_time(a->time_ns, &tm, &usec);
    if (f->rfc == KX_SYSLOG_RFC3164) {
        /* <PRI>Mmm dd hh:mm:ss HOSTNAME TAG: - in UTC (3164 has no zone) */
        rc = kx_buf_printf(out, "<%d>%s %2d %02d:%02d:%02d ", pri, months[tm.tm_mon], tm.tm_mday,
                           tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (rc == 0)
            rc = put_token(out, host, 255, NULL);
        if (rc == 0)
            rc = put_char(out, ' ');
        if (rc == 0)
            rc = put_token(out, app, 32, ":[]"); /* TAG: 32 chars, ends at ':' or '[' */
        if (rc == 0)
            rc = kx_buf_append(out, ": ", 2);
    } else {
        /* <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD */
        rc =
            kx_buf_printf(out, "<%d>1 %04d-%02d-%02dT%02d:%02d:%02d.%06dZ ", pri, tm.tm_year + 1900,
                          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
        if (rc == 0)
            rc = put_token(out, host, 255, NULL);
        if (rc == 0)
            rc = put_char(out, ' ');
        if (rc == 0)
            rc = put_token(out, app, 48, NULL);
        if (rc == 0)
            rc = kx_buf_append(out, " - ", 3); /* PROCID: the hub's pid means nothing here */
        if (rc == 0)
            rc = put_token(out, a->source, 32, NULL); /* MSGID: syscall, k8s_audit, ... */
        if (rc == 0)
            rc = put_char(out, ' ');
        if (rc == 0)
            rc = f->sdid && *f->sdid ? format_sd(f->sdid, a, out) : put_char(out, '-');
        if (rc == 0)
            rc = put_char(out, ' '); /* MSG: no BOM, many receivers show it as garbage */
    }
    if (rc < 0)
        return rc;
    kx_buf_init(&tmp, 1 << 20);
    switch (f->body) {
    case KX_SYSLOG_CEF:
        rc = format_cef(a, out, &tmp);
        break;
    case KX_SYSLOG_LEEF:
        rc = format_leef(a, out, &tmp);
        break;
    default:
        rc = format_json(a, out);
    }
    kx_buf_free(&tmp);
    return rc;
}

size_t kx_syslog_truncate(const char *msg, size_t len, size_t max)
{
    if (len <= max)
        return len;
    /* back off over continuation bytes (10xxxxxx) to the start of a character */
    while (max > 0 && ((unsigned char)msg[max] & 0xc0) == 0x80)
        max--;
    return max;
}

int kx_syslog_frame(struct kx_buf *out, const char *msg, size_t len, bool octet_counting)
{
    size_t before = out->len;
    int rc = octet_counting ? kx_buf_printf(out, "%zu ", len) : 0;

    if (rc == 0)
        rc = kx_buf_append(out, msg, len);
    if (rc == 0 && !octet_counting)
        rc = put_char(out, '\n');
    if (rc < 0) /* no half frame left behind */
        out->len = before;
    if (out->data && out->len < out->cap)
        out->data[out->len] = '\0';
    return rc;
}

/* ------------------------------------------------------------- settings */

struct syslog_settings {
    char *host;       /* syslog server */
    int64_t port;     /* 0 = 514 (udp, tcp) or 6514 (tls) */
    char *protocol;   /* udp | tcp | tls */
    char *format;     /* json | cef | leef */
    char *rfc;        /* 5424 | 3164 */
    char *facility;   /* name or number */
    char *appname;    /* APP-NAME / TAG */
    char *hostname;   /* "" = the alert's */
    char *sdid;       /* "" = no structured data */
    char *framing;    /* octet-counting | non-transparent (tcp/tls) */
    int64_t maxsize;  /* bytes per message; 0 = by protocol */
    bool checkcert;   /* verify the server's certificate and name */
    char *cafile;     /* CA bundle (PEM) instead of the system's */
    char *clientcert; /* PEM, mutual TLS */
    char *clientkey;  /* PEM, mutual TLS */
    int64_t timeout;  /* ns: connect + handshake, and each write */
};

#define S(field) offsetof(struct syslog_settings, field)

static const struct kx_opt syslog_opts[] = {
    {"host", KX_OPT_STR, NULL, S(host), KX_OPT_REQUIRED,
     "syslog server name or address (env <NAME>_HOST, e.g. SYSLOG_HOST)"},
    {"port", KX_OPT_INT, "0", S(port), 0, "server port; 0 = 514 (udp, tcp) or 6514 (tls)"},
    {"protocol", KX_OPT_STR, "tcp", S(protocol), 0, "udp, tcp or tls (RFC 5426/6587/5425)"},
    {"format", KX_OPT_STR, "json", S(format), 0, "message body: json (the alert), cef or leef"},
    {"rfc", KX_OPT_STR, "5424", S(rfc), 0, "syslog header: 5424 or 3164 (BSD)"},
    {"facility", KX_OPT_STR, "local0", S(facility), 0,
     "facility: kern, user, daemon, auth, ..., local0..local7, or 0..23"},
    {"appname", KX_OPT_STR, "klaxon", S(appname), 0, "APP-NAME (5424) / TAG (3164)"},
    {"hostname", KX_OPT_STR, "", S(hostname), 0,
     "HOSTNAME in the header; \"\" = the alert's hostname"},
    {"sdid", KX_OPT_STR, "", S(sdid), 0,
     "5424 structured data ID, e.g. klaxon@32473: adds [<sdid> uuid rule priority source]"},
    {"framing", KX_OPT_STR, "octet-counting", S(framing), 0,
     "tcp/tls framing: octet-counting (RFC 6587 \"<len> <msg>\") or non-transparent (LF)"},
    {"maxsize", KX_OPT_SIZE, "0", S(maxsize), 0,
     "longer messages are cut; 0 = 8KiB (udp) or 64KiB (tcp, tls)"},
    {"checkcert", KX_OPT_BOOL, "true", S(checkcert), 0,
     "tls: verify the server's certificate and host name"},
    {"cafile", KX_OPT_STR, NULL, S(cafile), 0,
     "tls: CA bundle (PEM) to verify the server, instead of the system's"},
    {"clientcert", KX_OPT_STR, NULL, S(clientcert), 0, "tls: client certificate (PEM), mutual TLS"},
    {"clientkey", KX_OPT_STR, NULL, S(clientkey), 0, "tls: client private key (PEM), mutual TLS"},
    {"timeout", KX_OPT_DURATION, "10s", S(timeout), 0,
     "connect (and TLS handshake) timeout, and for each write"},
    {0},
};

enum syslog_proto { PROTO_UDP, PROTO_TCP, PROTO_TLS };
static const char *const proto_names[] = {"udp", "tcp", "tls"};

struct syslog_state {
    struct kx_syslog_fmt fmt; /* strings borrowed from the settings / local_host */
    enum syslog_proto proto;
    bool octet_counting;
    size_t maxsize;
    char port[8];
    char peer[64];            /* "host:port" for messages (a long name is cut) */
    char local_host[256];     /* our own name, for alerts without one */
    bool host_is_ip;          /* verify an IP SAN, send no SNI */
    SSL_CTX *ctx;             /* owned; tls only */
    SSL *ssl;                 /* owned; the live TLS session or NULL */
    int fd;                   /* the socket, -1 when not connected */
    uint64_t truncated;       /* messages cut to maxsize so far */
    int64_t truncated_logged; /* monotonic ns of the last warning */
    struct kx_buf msg;        /* scratch: one formatted message */
    struct kx_buf out;        /* scratch: framed messages of one write */
};

/* --------------------------------------------------------------- network */

/* Waits until fd is ready for events or the deadline (monotonic ns) has
 * passed. 0 (ready, or an error the next call reports), -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - kx_monotonic_ns();
        struct pollfd p = {.fd = fd, .events = events};
        int rc;

        if (left <= 0)
            return -ETIMEDOUT;
        left = (left + KX_NSEC_PER_MSEC - 1) / KX_NSEC_PER_MSEC;
        rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

/* The most telling reason for a failed TLS call, into buf. */
static const char *tls_reason(struct syslog_state *st, int sslerr, int sys, char *buf, size_t len)
{
    long v = st->ssl ? SSL_get_verify_result(st->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();

    if (v != X509_V_OK)
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    else if (e && ERR_reason_error_string(e))
        snprintf(buf, len, "%s", ERR_reason_error_string(e));
    else if (e)
        ERR_error_string_n(e, buf, len);
    else if (sslerr == SSL_ERROR_ZERO_RETURN || (sslerr == SSL_ERROR_SYSCALL && sys == 0))
        snprintf(buf, len, "connection closed by the server");
    else
        snprintf(buf, len, "%s", strerror(sys ? sys : EIO));
    ERR_clear_error();
    return buf;
}

/* Output worker thread. graceful: the session is healthy, say goodbye. */
static void conn_close(struct syslog_state *st, bool graceful)
{
    if (st->ssl) {
        if (graceful)
            SSL_shutdown(st->ssl); /* best effort: non-blocking, no wait for the reply */
        SSL_free(st->ssl);
        st->ssl = NULL;
    }
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    ERR_clear_error();
}

/*
 * Output worker thread: reads whatever the server sent (TLS 1.3 session
 * tickets; syslog servers send no data) for wait ns, and says whether the
 * connection is still usable. A FIN, a reset or a TLS alert (a client
 * certificate refused after the handshake) all mean it is not; the reason
 * goes to why.
 */
static bool conn_check(struct syslog_state *st, int64_t wait, char *why, size_t len)
{
    int64_t deadline = kx_monotonic_ns() + wait;
    char scratch[4096];

    for (;;) {
        struct pollfd p = {.fd = st->fd, .events = POLLIN | POLLRDHUP};
        int rc = poll(&p, 1, 0);

        if (rc == 0) {
            /* quiet: usable, once the whole wait has passed */
            if (kx_monotonic_ns() >= deadline ||
                wait_fd(st->fd, POLLIN | POLLRDHUP, deadline) == -ETIMEDOUT)
                return true;
            continue;
        }
        if (rc < 0 && errno == EINTR)
            continue;
        if (st->ssl) {
            size_t n;
            int e;

            ERR_clear_error();
            errno = 0;
            if (SSL_read_ex(st->ssl, scratch, sizeof(scratch), &n) == 1)
                continue; /* application data from a syslog server: ignored */
            e = SSL_get_error(st->ssl, 0);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                continue; /* tickets processed; a FIN behind them shows next time round */
            tls_reason(st, e, errno, why, len);
            return false;
        } else {
            ssize_t n = recv(st->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

            if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
                continue;
            snprintf(why, len, "%s", n == 0 ? "connection closed by the server" : strerror(errno));
            return false;
        }
    }
}

/* Output worker thread: a TLS session on the connected st->fd. */
static int tls_open(struct kx_output *o, struct syslog_state *st, int64_t deadline)
{
    const struct syslog_settings *s = o->settings;
    char why[128];

    if (!(st->ssl = SSL_new(st->ctx)) || SSL_set_fd(st->ssl, st->fd) != 1) {
        snprintf(o->error, sizeof(o->error), "syslog: %s: cannot start TLS: %s", st->peer,
                 tls_reason(st, SSL_ERROR_SSL, 0, why, sizeof(why)));
        return -EAGAIN;
    }
    if (s->checkcert) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(st->ssl);
        int ok = st->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, s->host)
                                : SSL_set1_host(st->ssl, s->host);

        if (ok != 1) {
            snprintf(o->error, sizeof(o->error), "syslog: %s: cannot set the name to verify",
                     st->peer);
            return -EAGAIN;
        }
    }
    if (!st->host_is_ip)
        SSL_set_tlsext_host_name(st->ssl, s->host);
    for (;;) {
        int rc, e;

        ERR_clear_error();
        errno = 0;
        if ((rc = SSL_connect(st->ssl)) == 1)
            break;
        e = SSL_get_error(st->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(st->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == 0)
                continue;
            snprintf(o->error, sizeof(o->error), "syslog: TLS handshake with %s timed out",
                     st->peer);
            return -EAGAIN;
        }
        snprintf(o->error, sizeof(o->error), "syslog: TLS handshake with %s failed: %s", st->peer,
                 tls_reason(st, e, errno, why, sizeof(why)));
        return -EAGAIN;
    }
    /* TLS 1.3 finishes the client's handshake before the server has judged
     * our certificate: give it a moment to refuse, so that a refusal is not
     * mistaken for a delivered batch. */
    if (SSL_version(st->ssl) >= TLS1_3_VERSION &&
        !conn_check(st, KX_SYSLOG_TLS_SETTLE, why, sizeof(why))) {
        snprintf(o->error, sizeof(o->error),
                 "syslog: %s ended TLS right after the handshake: %.80s (client certificate "
                 "missing or refused?)",
                 st->peer, why);
        return -EAGAIN;
    }
    return 0;
}

/* Output worker thread: connects (and handshakes) to the server. 0 or
 * -EAGAIN with o->error set. */
static int conn_open(struct kx_output *o, struct syslog_state *st)
{
    const struct syslog_settings *s = o->settings;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = st->proto == PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM};
    struct addrinfo *res = NULL;
    int64_t deadline = kx_monotonic_ns() + s->timeout;
    int gai, err = 0;

    if ((gai = getaddrinfo(s->host, st->port, &hints, &res)) != 0) {
        snprintf(o->error, sizeof(o->error), "syslog: cannot resolve %s: %s", s->host,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -EAGAIN;
    }
    for (struct addrinfo *ai = res; ai && st->fd < 0; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        socklen_t elen = sizeof(err);

        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            err = 0;
        else if (errno != EINPROGRESS)
            err = errno;
        else if ((err = -wait_fd(fd, POLLOUT, deadline)) == 0 &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err == 0) {
            int one = 1;

            /* a server that vanished without a FIN is noticed eventually */
            if (st->proto != PROTO_UDP)
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
            st->fd = fd;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    if (st->fd < 0) {
        snprintf(o->error, sizeof(o->error), "syslog: cannot connect to %s (%s): %s", st->peer,
                 proto_names[st->proto],
                 err == ETIMEDOUT ? "timed out" : strerror(err ? err : EIO));
        return -EAGAIN;
    }
    if (st->proto == PROTO_TLS && tls_open(o, st, deadline) < 0) {
        conn_close(st, false);
        return -EAGAIN;
    }
    kx_info("output %s: connected to syslog server %s (%s)", o->name, st->peer,
            proto_names[st->proto]);
    return 0;
}

/* Output worker thread: writes all of p, or fails with o->error set (and
 * the connection closed: its framing is unknown now). 0 or -EAGAIN. */
static int conn_write(struct kx_output *o, struct syslog_state *st, const char *p, size_t len)
{
    int64_t deadline = kx_monotonic_ns() + ((const struct syslog_settings *)o->settings)->timeout;
    char why[128];

    while (len > 0) {
        short want = POLLOUT;
        int sys = 0, e = 0;

        if (st->ssl) {
            size_t n;

            ERR_clear_error();
            errno = 0;
            if (SSL_write_ex(st->ssl, p, len, &n) == 1) {
                p += n;
                len -= n;
                continue;
            }
            sys = errno;
            e = SSL_get_error(st->ssl, 0);
            if (e == SSL_ERROR_WANT_READ)
                want = POLLIN;
            else if (e != SSL_ERROR_WANT_WRITE) {
                snprintf(o->error, sizeof(o->error), "syslog: write to %s failed: %s", st->peer,
                         tls_reason(st, e, sys, why, sizeof(why)));
                conn_close(st, false);
                return -EAGAIN;
            }
        } else {
            /* MSG_NOSIGNAL: a reset connection is an error here, not SIGPIPE */
            ssize_t n = send(st->fd, p, len, MSG_NOSIGNAL);

            if (n >= 0) {
                p += n;
                len -= (size_t)n;
                continue;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                snprintf(o->error, sizeof(o->error), "syslog: %s to %s failed: %s",
                         st->proto == PROTO_UDP ? "send" : "write", st->peer,
                         errno == ECONNREFUSED ? "connection refused (is the server listening?)"
                                               : strerror(errno));
                if (st->proto != PROTO_UDP)
                    conn_close(st, false);
                return -EAGAIN;
            }
        }
        if (wait_fd(st->fd, want, deadline) == -ETIMEDOUT) {
            snprintf(o->error, sizeof(o->error), "syslog: write to %s timed out", st->peer);
            conn_close(st, false);
            return -EAGAIN;
        }
    }
    return 0;
}

/* Output worker thread: formats a into st->msg, cut to maxsize (counted).
 * Fails with -ENOMEM (worth a retry) or -E2BIG (never: a 1 MiB alert
 * formats to well under KX_SYSLOG_MSG_MAX; permanent if it ever did). */
static int build_msg(struct kx_output *o, struct syslog_state *st, const struct kx_alert *a)
{
    size_t len;
    int rc;

    kx_buf_reset(&st->msg);
    if ((rc = kx_syslog_format(&st->fmt, a, &st->msg)) < 0) {
        snprintf(o->error, sizeof(o->error), "syslog: cannot format alert %s: %s", a->uuid,
                 strerror(-rc));
        return rc;
    }
    len = kx_syslog_truncate(st->msg.data, st->msg.len, st->maxsize);
    if (len < st->msg.len) {
        int64_t now = kx_monotonic_ns();

        st->truncated++;
        if (!st->truncated_logged || now - st->truncated_logged >= 10 * KX_NSEC_PER_SEC) {
            kx_warn("output %s: alert %s: message of %zu bytes cut to maxsize %zu (%llu cut so "
                    "far); raise maxsize%s",
                    o->name, a->uuid, st->msg.len, st->maxsize, (unsigned long long)st->truncated,
                    st->proto == PROTO_UDP ? " or use protocol tcp" : "");
            st->truncated_logged = now;
        }
        st->msg.len = len;
    }
    return 0;
}

/* ------------------------------------------------------------- the plugin */

static bool one_of(const char *v, const char *const *names, size_t n, size_t *idx)
{
    for (size_t i = 0; v && i < n; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

static bool printusascii(const char *s, size_t max, const char *bad)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (*p < 33 || *p > 126 || (bad && strchr(bad, *p)))
            return false;
    }
    return n <= max;
}

/* Checks the settings; every problem goes to d at its key. */
static void syslog_check(struct kx_output *o, const struct kx_config_node *cfg,
                         struct syslog_state *st, struct kx_diag *d)
{
    static const char *const bodies[] = {"json", "cef", "leef"};
    static const char *const framings[] = {"octet-counting", "octet", "non-transparent", "lf"};
    const struct syslog_settings *s = o->settings;
    const char *sdat;
    size_t i = 0;
    int fac;

#define BAD(key, ...) kx_diag_add(d, kx_config_get(cfg, key), __VA_ARGS__)
    if (!s->host || !*s->host || strpbrk(s->host, " /"))
        BAD("host", "output %s: host must be a server name or address, e.g. syslog.example.com",
            o->name);
    if (!one_of(s->protocol, proto_names, 3, &i))
        BAD("protocol", "output %s: protocol \"%s\" is not udp, tcp or tls", o->name,
            s->protocol ? s->protocol : "");
    st->proto = (enum syslog_proto)i;
    if (!one_of(s->format, bodies, 3, &i))
        BAD("format", "output %s: format \"%s\" is not json, cef or leef", o->name,
            s->format ? s->format : "");
    st->fmt.body = (enum kx_syslog_body)i;
    if (s->rfc && (strcasecmp(s->rfc, "5424") == 0 || strcasecmp(s->rfc, "rfc5424") == 0))
        st->fmt.rfc = KX_SYSLOG_RFC5424;
    else if (s->rfc && (strcasecmp(s->rfc, "3164") == 0 || strcasecmp(s->rfc, "rfc3164") == 0))
        st->fmt.rfc = KX_SYSLOG_RFC3164;
    else
        BAD("rfc", "output %s: rfc \"%s\" is not 5424 or 3164", o->name, s->rfc ? s->rfc : "");
    if ((fac = kx_syslog_facility_parse(s->facility)) < 0)
        BAD("facility",
            "output %s: facility \"%s\" is not a syslog facility (local0..local7, "
            "daemon, auth, ... or 0..23)",
            o->name, s->facility ? s->facility : "");
    st->fmt.facility = fac < 0 ? 16 : fac;
    if (s->port < 0 || s->port > 65535)
        BAD("port", "output %s: port %lld is not 1..65535", o->name, (long long)s->port);
    if (!s->appname || !*s->appname || !printusascii(s->appname, 48, NULL))
        BAD("appname",
            "output %s: appname must be 1..48 printable ASCII characters without "
            "spaces",
            o->name);
    if (s->hostname && *s->hostname && !printusascii(s->hostname, 255, NULL))
        BAD("hostname",
            "output %s: hostname must be at most 255 printable ASCII characters "
            "without spaces",
            o->name);
    if (s->sdid && *s->sdid &&
        (!printusascii(s->sdid, 32, "=]\"") || !(sdat = strchr(s->sdid, '@')) || sdat == s->sdid ||
         !sdat[1] || strspn(sdat + 1, "0123456789.") != strlen(sdat + 1)))
        BAD("sdid",
            "output %s: sdid must look like name@<enterprise number>, e.g. "
            "klaxon@32473 (at most 32 characters)",
            o->name);
    if (!one_of(s->framing, framings, 4, &i))
        BAD("framing", "output %s: framing \"%s\" is not octet-counting or non-transparent",
            o->name, s->framing ? s->framing : "");
    st->octet_counting = i < 2;
    st->maxsize = s->maxsize ? (size_t)s->maxsize : st->proto == PROTO_UDP ? 8192 : 65536;
    if (s->maxsize < 0 || (s->maxsize && s->maxsize < KX_SYSLOG_MIN_SIZE) ||
        (st->proto == PROTO_UDP && st->maxsize > KX_SYSLOG_UDP_MAX) ||
        st->maxsize > KX_SYSLOG_MSG_MAX)
        BAD("maxsize", "output %s: maxsize must be %d..%d bytes for %s", o->name,
            KX_SYSLOG_MIN_SIZE, st->proto == PROTO_UDP ? KX_SYSLOG_UDP_MAX : KX_SYSLOG_MSG_MAX,
            st->proto == PROTO_UDP ? "udp" : "tcp and tls");
    if (s->timeout <= 0)
        BAD("timeout", "output %s: timeout must be positive", o->name);
    if ((s->clientcert && *s->clientcert) != (s->clientkey && *s->clientkey))
        BAD(s->clientcert && *s->clientcert ? "clientcert" : "clientkey",
            "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (st->proto != PROTO_TLS) {
        const char *tls_keys[] = {"cafile", "clientcert", "clientkey"};
        const char *tls_vals[] = {s->cafile, s->clientcert, s->clientkey};

        for (size_t k = 0; k < KX_ARRAY_SIZE(tls_keys); k++) {
            if (tls_vals[k] && *tls_vals[k])
                BAD(tls_keys[k], "output %s: %s is set but protocol is not tls", o->name,
                    tls_keys[k]);
        }
    }
#undef BAD
}

/* Output worker thread: the TLS context - CA, client certificate - made
 * once, so that a bad file is a config error at start, not a retry loop. */
static int syslog_tls_ctx(struct kx_output *o, const struct kx_config_node *cfg,
                          struct syslog_state *st, struct kx_diag *d)
{
    const struct syslog_settings *s = o->settings;
    char why[128];

    if (!(st->ctx = SSL_CTX_new(TLS_client_method())))
        return -ENOMEM;
    SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION);
    /* non-blocking writes are retried with the same buffer */
    SSL_CTX_set_mode(st->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(st->ctx, s->checkcert ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (s->cafile && *s->cafile) {
        if (SSL_CTX_load_verify_locations(st->ctx, s->cafile, NULL) != 1) {
            kx_diag_add(d, kx_config_get(cfg, "cafile"), "output %s: cannot load cafile %s: %s",
                        o->name, s->cafile, tls_reason(st, SSL_ERROR_SSL, 0, why, sizeof(why)));
            return -EINVAL;
        }
    } else if (SSL_CTX_set_default_verify_paths(st->ctx) != 1) {
        kx_diag_add(d, kx_config_get(cfg, "cafile"),
                    "output %s: cannot load the system's CA certificates: %s; set cafile", o->name,
                    tls_reason(st, SSL_ERROR_SSL, 0, why, sizeof(why)));
        return -EINVAL;
    }
    if (s->clientcert && *s->clientcert) {
        if (SSL_CTX_use_certificate_chain_file(st->ctx, s->clientcert) != 1) {
            kx_diag_add(d, kx_config_get(cfg, "clientcert"),
                        "output %s: cannot load clientcert %s: %s", o->name, s->clientcert,
                        tls_reason(st, SSL_ERROR_SSL, 0, why, sizeof(why)));
            return -EINVAL;
        }
        /* the key's path may be named, never its content */
        if (SSL_CTX_use_PrivateKey_file(st->ctx, s->clientkey, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(st->ctx) != 1) {
            kx_diag_add(d, kx_config_get(cfg, "clientkey"),
                        "output %s: cannot use clientkey %s with clientcert: %s", o->name,
                        s->clientkey, tls_reason(st, SSL_ERROR_SSL, 0, why, sizeof(why)));
            return -EINVAL;
        }
    }
    return 0;
}

/* Output worker thread. Does not connect: a server that is down at start
 * is retried by the core like any other outage. */
static int syslog_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct syslog_settings *s = o->settings;
    struct syslog_state *st;
    struct in6_addr a6;
    size_t before = d->n;

    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    st->fd = -1;
    o->priv = st; /* destroy frees what is made below */
    syslog_check(o, cfg, st, d);
    if (d->n > before)
        return -EINVAL;
    snprintf(st->port, sizeof(st->port), "%d",
             s->port                  ? (int)s->port
             : st->proto == PROTO_TLS ? 6514
                                      : 514);
    st->host_is_ip =
        inet_pton(AF_INET, s->host, &a6) == 1 || inet_pton(AF_INET6, s->host, &a6) == 1;
    snprintf(st->peer, sizeof(st->peer), strchr(s->host, ':') ? "[%s]:%s" : "%s:%s", s->host,
             st->port);
    if (gethostname(st->local_host, sizeof(st->local_host)) != 0 || !*st->local_host)
        snprintf(st->local_host, sizeof(st->local_host), "-");
    st->local_host[sizeof(st->local_host) - 1] = '\0';
    st->fmt.appname = s->appname;
    st->fmt.hostname = s->hostname;
    st->fmt.fallback_host = st->local_host;
    st->fmt.sdid = s->sdid;
    kx_buf_init(&st->msg, KX_SYSLOG_MSG_MAX);
    kx_buf_init(&st->out, KX_SYSLOG_WRITE_MAX);
    if (st->proto == PROTO_TLS)
        return syslog_tls_ctx(o, cfg, st, d);
    return 0;
}

/* Output worker thread: a datagram per alert. */
static int syslog_deliver_udp(struct kx_output *o, struct syslog_state *st,
                              struct kx_alert *const *batch, size_t n)
{
    int rc;

    if (st->fd < 0 && (rc = conn_open(o, st)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = build_msg(o, st, batch[i])) < 0)
            return rc == -E2BIG ? rc : -EAGAIN;
        if ((rc = conn_write(o, st, st->msg.data, st->msg.len)) < 0)
            return rc;
    }
    return 0;
}

/* Output worker thread: the batch framed, in as few writes as fit. */
static int syslog_deliver_stream(struct kx_output *o, struct syslog_state *st,
                                 struct kx_alert *const *batch, size_t n)
{
    char why[128];
    int rc;

    if (st->fd >= 0 && !conn_check(st, 0, why, sizeof(why))) {
        kx_info("output %s: syslog server %s: %s; reconnecting", o->name, st->peer, why);
        conn_close(st, false);
    }
    if (st->fd < 0 && (rc = conn_open(o, st)) < 0)
        return rc;
    kx_buf_reset(&st->out);
    for (size_t i = 0; i < n; i++) {
        if ((rc = build_msg(o, st, batch[i])) < 0)
            return rc == -E2BIG ? rc : -EAGAIN;
        if (kx_syslog_frame(&st->out, st->msg.data, st->msg.len, st->octet_counting) == 0)
            continue;
        /* the write buffer is full: send what it holds, then this frame */
        if ((rc = conn_write(o, st, st->out.data, st->out.len)) < 0)
            return rc;
        kx_buf_reset(&st->out);
        if (kx_syslog_frame(&st->out, st->msg.data, st->msg.len, st->octet_counting) < 0) {
            snprintf(o->error, sizeof(o->error), "syslog: out of memory framing alert %s",
                     batch[i]->uuid);
            return -EAGAIN;
        }
    }
    return st->out.len ? conn_write(o, st, st->out.data, st->out.len) : 0;
}

/* Output worker thread. */
static int syslog_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    struct syslog_state *st = o->priv;

    return st->proto == PROTO_UDP ? syslog_deliver_udp(o, st, batch, n)
                                  : syslog_deliver_stream(o, st, batch, n);
}

/* Output worker thread. */
static void syslog_destroy(struct kx_output *o)
{
    struct syslog_state *st = o->priv;

    if (!st)
        return;
    conn_close(st, true);
    SSL_CTX_free(st->ctx);
    kx_buf_free(&st->msg);
    kx_buf_free(&st->out);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_syslog = {
    .name = "syslog",
    .desc = "syslog (RFC 5424/3164) over udp, tcp or tls, with a JSON, CEF or LEEF body",
    .opts = syslog_opts,
    .settings_size = sizeof(struct syslog_settings),
    .max_batch = KX_SYSLOG_BATCH,
    .init = syslog_init,
    .deliver = syslog_deliver,
    .destroy = syslog_destroy,
};
