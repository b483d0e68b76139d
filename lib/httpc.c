/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc.c - the shared HTTP client on libcurl, with delivery classification.
 *
 * One CURL easy handle per kx_httpc, reused for every request so that curl
 * keeps the connection (and TLS session) alive between deliveries. Options
 * are reset and set again for each request, which keeps the connection
 * cache but leaves nothing from a previous call behind.
 *
 * Error texts name the method, the URL without userinfo or query (both
 * often carry credentials) and the reason; header values never appear in
 * them, since they are typically tokens.
 */
#include "httpc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#ifndef KX_VERSION
#define KX_VERSION "dev"
#endif

#define HTTPC_DEFAULT_TIMEOUT (10 * KX_NSEC_PER_SEC)
#define HTTPC_MAX_RETRY_AFTER (24 * 3600 * KX_NSEC_PER_SEC) /* ignore absurd hints */
#define HTTPC_URL_SHOWN 160                                 /* URL bytes in errors */

struct kx_httpc {
    CURL *curl;      /* owned, reused: keeps connections alive */
    int64_t timeout; /* ns, > 0 */
    bool insecure;
    char *ca_file; /* owned copies, may be NULL */
    char *client_cert;
    char *client_key;
    size_t max_response; /* bytes of body kept whole, 0 = excerpt only */
    char errbuf[CURL_ERROR_SIZE]; /* curl's message for the last transfer */
};

int kx_httpc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void kx_httpc_global_cleanup(void)
{
    curl_global_cleanup();
}

/* res->error, truncated as needed (long URLs or curl messages). */
static void httpc_errorf(struct kx_http_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void httpc_errorf(struct kx_http_result *res, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
}

/* strdup that keeps NULL and reports failure; 0 or -ENOMEM. */
static int httpc_dup(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL || s[0] == '\0')
        return 0;
    *out = strdup(s);
    return *out ? 0 : -ENOMEM;
}

struct kx_httpc *kx_httpc_new(const struct kx_httpc_opts *opts)
{
    struct kx_httpc *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->timeout = opts && opts->timeout > 0 ? opts->timeout : HTTPC_DEFAULT_TIMEOUT;
    c->insecure = opts && opts->insecure;
    c->max_response = opts ? opts->max_response : 0;
    if (opts && (httpc_dup(opts->ca_file, &c->ca_file) < 0 ||
                 httpc_dup(opts->client_cert, &c->client_cert) < 0 ||
                 httpc_dup(opts->client_key, &c->client_key) < 0))
        goto fail;
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        goto fail;
    return c;
fail:
    kx_httpc_free(c);
    errno = ENOMEM;
    return NULL;
}

void kx_httpc_free(struct kx_httpc *c)
{
    if (c == NULL)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->ca_file);
    free(c->client_cert);
    free(c->client_key);
    free(c);
}

/* Response body sink: keeps the first sizeof(res->body)-1 bytes, and the
 * whole body up to max in res->full when max > 0. */
struct httpc_rx {
    struct kx_http_result *res;
    size_t len;
    size_t max; /* res->full bound; 0 = none */
    size_t cap;
};

static size_t httpc_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct httpc_rx *rx = ud;
    struct kx_http_result *res = rx->res;
    size_t total = size * n, room = sizeof(res->body) - 1 - rx->len;
    size_t take = total < room ? total : room;

    memcpy(res->body + rx->len, p, take);
    rx->len += take;
    res->body[rx->len] = '\0';
    if (rx->max && res->full_len + total <= rx->max) {
        if (res->full_len + total + 1 > rx->cap) {
            size_t cap = rx->cap ? rx->cap : 4096;
            char *nb;

            while (cap < res->full_len + total + 1)
                cap *= 2;
            if (!(nb = realloc(res->full, cap)))
                return 0; /* curl reports a write error */
            res->full = nb;
            rx->cap = cap;
        }
        memcpy(res->full + res->full_len, p, total);
        res->full_len += total;
        res->full[res->full_len] = '\0';
    } else if (rx->max) {
        return 0; /* over the bound: fail the transfer rather than keep half */
    }
    return total; /* without max, the rest is discarded, not an error */
}

void kx_http_result_release(struct kx_http_result *res)
{
    if (!res)
        return;
    free(res->full);
    res->full = NULL;
    res->full_len = 0;
}

int64_t kx_httpc_retry_after(const char *v, size_t n, int64_t max)
{
    char buf[64];
    int64_t ns = 0;

    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (strspn(buf, "0123456789") == n) {
        unsigned long long s = strtoull(buf, NULL, 10);

        ns = s > (unsigned long long)(max / KX_NSEC_PER_SEC) ? max : (int64_t)s * KX_NSEC_PER_SEC;
    } else {
        time_t when = curl_getdate(buf, NULL);

        if (when == (time_t)-1)
            return 0;
        ns = (int64_t)when * KX_NSEC_PER_SEC - kx_now_ns();
        if (ns < 0)
            ns = 0;
        if (ns > max)
            ns = max;
    }
    return ns;
}

/* Header sink: only Retry-After matters. A new status line (after a 100
 * Continue) starts over. */
static size_t httpc_on_header(char *p, size_t size, size_t n, void *ud)
{
    struct httpc_rx *rx = ud;
    size_t total = size * n;
    static const char name[] = "retry-after:";

    if (total >= 5 && memcmp(p, "HTTP/", 5) == 0)
        rx->res->retry_after = 0;
    else if (total > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0)
        rx->res->retry_after =
            kx_httpc_retry_after(p + sizeof(name) - 1, total - (sizeof(name) - 1),
                                 HTTPC_MAX_RETRY_AFTER);
    return total;
}

/* The URL as shown in errors: scheme://host[:port], and "/..." when there
 * is a path. Services put tokens in paths (Slack, Discord, Telegram
 * webhooks), in userinfo and in queries, so none of them is ever shown. */
static void httpc_url_shown(const char *url, char *out, size_t len)
{
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
    size_t auth = strcspn(host, "/?#");
    const char *at = memchr(host, '@', auth);
    size_t scheme = (size_t)(host - url), hlen;

    if (at)
        host = at + 1;
    hlen = strcspn(host, "/?#");
    if (hlen > HTTPC_URL_SHOWN)
        hlen = HTTPC_URL_SHOWN;
    snprintf(out, len, "%.*s%.*s%s", (int)scheme, url, (int)hlen, host,
             host[hlen] ? "/..." : "");
}

/* The body excerpt for an error: printable, one line. */
static void httpc_excerpt(const char *body, char *out, size_t len)
{
    size_t o = 0;

    for (; *body && o + 1 < len; body++) {
        unsigned char ch = (unsigned char)*body;

        out[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* Transport failures that will not go away by retrying the same request:
 * the request itself or our own TLS material is wrong. */
bool kx_httpc_curl_permanent(int rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_USE_SSL_FAILED: /* TLS was required and the server cannot do it */
        return true;
    default:
        return false;
    }
}

/* Appends one raw header line; 0 or -ENOMEM. */
static int httpc_add_line(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return -ENOMEM;
    *list = l;
    return 0;
}

/* Is name (any case) among the custom headers? */
static bool httpc_has_header(const struct kx_strmap *headers, const char *name)
{
    for (size_t i = 0; headers && i < headers->n; i++) {
        if (strcasecmp(headers->keys[i], name) == 0)
            return true;
    }
    return false;
}

/* Adds "Name: value"; -EINVAL for names or values that would inject
 * headers, -ENOMEM. The value is never echoed. */
static int httpc_add_header(struct curl_slist **list, const char *name, const char *value,
                            struct kx_http_result *res)
{
    char *line;
    int rc;

    if (name[0] == '\0' || strpbrk(name, ": \t\r\n") || strpbrk(value, "\r\n")) {
        httpc_errorf(res, "header \"%.64s\": name or value contains a forbidden character", name);
        return -EINVAL;
    }
    if (asprintf(&line, "%s: %s", name, value) < 0)
        return -ENOMEM;
    rc = httpc_add_line(list, line);
    free(line);
    return rc;
}

int kx_httpc_send(struct kx_httpc *c, const char *method, const char *url, const char *content_type,
                  const struct kx_strmap *headers, const char *body, size_t len,
                  struct kx_http_result *res)
{
    struct curl_slist *hdrs = NULL;
    struct httpc_rx rx = {.res = res, .max = c ? c->max_response : 0};
    char shown[HTTPC_URL_SHOWN + 64], excerpt[sizeof(res->error)];
    long timeout_ms;
    CURLcode rc;
    int ret;

    memset(res, 0, sizeof(*res));
    if (method == NULL || method[0] == '\0')
        method = "POST";
    if (c == NULL || url == NULL || url[0] == '\0') {
        httpc_errorf(res, "%s: no URL", method);
        return -EINVAL;
    }
    httpc_url_shown(url, shown, sizeof(shown));

    ret = 0;
    for (size_t i = 0; headers && i < headers->n; i++) {
        if ((ret = httpc_add_header(&hdrs, headers->keys[i], headers->vals[i], res)) < 0)
            goto out;
    }
    /* A Content-Type among the custom headers wins. Without any, "Name:"
     * stops curl from inventing application/x-www-form-urlencoded. */
    if (!httpc_has_header(headers, "Content-Type")) {
        if (content_type && content_type[0])
            ret = httpc_add_header(&hdrs, "Content-Type", content_type, res);
        else
            ret = httpc_add_line(&hdrs, "Content-Type:");
        if (ret < 0)
            goto out;
    }
    /* Never wait for a "100 Continue" that many receivers do not send. */
    if (!httpc_has_header(headers, "Expect") && (ret = httpc_add_line(&hdrs, "Expect:")) < 0)
        goto out;

    curl_easy_reset(c->curl);
    c->errbuf[0] = '\0';
    timeout_ms = (long)(c->timeout / KX_NSEC_PER_MSEC);
    if (timeout_ms <= 0)
        timeout_ms = 1;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "klaxon/" KX_VERSION);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, httpc_on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &rx);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, httpc_on_header);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &rx);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (c->insecure) {
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->ca_file)
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
    if (c->client_cert)
        curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->client_cert);
    if (c->client_key)
        curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->client_key);

    rc = curl_easy_perform(c->curl);
    /* Drop our pointers from the handle: hdrs and rx die with this call. */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);

    if (rc != CURLE_OK) {
        const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        long oserr = 0;

        /* The errno behind a socket failure ("Connection refused") says
         * more than curl's summary; it is stale for other failures. */
        if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR)
            curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        if (oserr != 0 && strstr(why, strerror((int)oserr)) == NULL)
            httpc_errorf(res, "%s %s: %s (%s)", method, shown, strerror((int)oserr), why);
        else
            httpc_errorf(res, "%s %s: %s", method, shown, why);
        ret = kx_httpc_curl_permanent(rc) ? -EINVAL : -EAGAIN;
        goto out;
    }

    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->status);
    if (res->status >= 200 && res->status <= 299) {
        ret = 0;
        goto out;
    }
    ret = res->status == 429 || (res->status >= 500 && res->status <= 599) ? -EAGAIN : -EINVAL;
    httpc_excerpt(res->body, excerpt, sizeof(excerpt));
    httpc_errorf(res, "HTTP %ld from %s%s%s", res->status, shown, excerpt[0] ? ": " : "", excerpt);
out:
    curl_slist_free_all(hdrs);
    return ret;
}
