/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpout.c - shared plumbing of the HTTP outputs (see httpout.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpout.h"

bool kx_httpout_check_url(struct kx_output *o, const struct kx_config_node *cfg, const char *key,
                          const char *url, const char *hint, struct kx_diag *d)
{
    if (url && (strncasecmp(url, "https://", 8) == 0 || strncasecmp(url, "http://", 7) == 0))
        return true;
    kx_diag_add(d, kx_config_get(cfg, key), "output %s: %s must be an http(s):// URL%s%s",
                o->name, key, hint ? ", e.g. " : "", hint ? hint : "");
    return false;
}

char *kx_httpout_url(const char *base, const char *suffix)
{
    size_t len = strlen(base);
    char *url = NULL;

    while (len && base[len - 1] == '/')
        len--;
    if (asprintf(&url, "%.*s%s", (int)len, base, suffix ? suffix : "") < 0)
        return NULL;
    return url;
}

int kx_httpout_header(struct kx_strmap *m, const char *name, char *value)
{
    char **nk, **nv;

    if (!value)
        return -ENOMEM;
    nk = realloc(m->keys, (m->n + 1) * sizeof(char *));
    if (nk)
        m->keys = nk;
    nv = nk ? realloc(m->vals, (m->n + 1) * sizeof(char *)) : NULL;
    if (nv)
        m->vals = nv;
    if (!nk || !nv || !(m->keys[m->n] = strdup(name))) {
        explicit_bzero(value, strlen(value));
        free(value);
        return -ENOMEM;
    }
    m->vals[m->n++] = value;
    return 0;
}

int kx_httpout_basic_auth(struct kx_strmap *m, const char *user, const char *pass)
{
    char *up = NULL, *b64, *hdr = NULL;

    if (asprintf(&up, "%s:%s", user ? user : "", pass ? pass : "") < 0)
        return -ENOMEM;
    b64 = kx_base64_encode(up, strlen(up), NULL);
    explicit_bzero(up, strlen(up));
    free(up);
    if (!b64 || asprintf(&hdr, "Basic %s", b64) < 0)
        hdr = NULL;
    if (b64)
        explicit_bzero(b64, strlen(b64));
    free(b64);
    return kx_httpout_header(m, "Authorization", hdr);
}

void kx_httpout_headers_free(struct kx_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        explicit_bzero(m->vals[i], strlen(m->vals[i]));
        free(m->vals[i]);
        free(m->keys[i]);
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

int kx_httpout_send(struct kx_output *o, struct kx_httpc *http, const char *url,
                    const char *content_type, const struct kx_strmap *headers,
                    const struct kx_buf *body, const char *what, struct kx_http_result *res)
{
    return kx_httpout_request(o, http, "POST", url, content_type, headers, body->data, body->len,
                              what, res);
}

int kx_httpout_request(struct kx_output *o, struct kx_httpc *http, const char *method,
                       const char *url, const char *content_type, const struct kx_strmap *headers,
                       const char *body, size_t len, const char *what,
                       struct kx_http_result *res)
{
    struct kx_http_result local;
    struct kx_http_result *r = res ? res : &local;
    int rc = kx_httpc_send(http, method, url, content_type, headers, body ? body : "", len, r);

    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "%s: %.230s", what, r->error);
        o->retry_after = r->retry_after;
    }
    if (!res)
        kx_http_result_release(&local);
    return rc;
}

int kx_httpout_each(struct kx_output *o, struct kx_httpc *http, const char *url,
                    const char *content_type, const struct kx_strmap *headers,
                    struct kx_alert *const *batch, size_t n, kx_httpout_format_fn format,
                    const char *what)
{
    struct kx_buf b;
    int rc = 0;

    kx_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < n && rc == 0; i++) {
        kx_buf_reset(&b);
        if ((rc = format(o, batch[i], &b)) < 0) {
            snprintf(o->error, sizeof(o->error), "%s: cannot format alert %s: %s", what,
                     batch[i]->uuid, strerror(-rc));
            rc = -EAGAIN; /* out of memory: try again later */
            break;
        }
        rc = kx_httpout_send(o, http, url, content_type, headers, &b, what, NULL);
    }
    kx_buf_free(&b);
    return rc;
}

int kx_httpout_open(struct kx_output *o, const struct kx_config_node *cfg,
                    const struct kx_httpout_conn *c, size_t max_response, struct kx_httpout *h,
                    struct kx_diag *d)
{
    struct kx_httpc_opts hopts;
    size_t before = d->n;

    if ((c->clientcert && *c->clientcert) != (c->clientkey && *c->clientkey))
        kx_diag_add(d, kx_config_get(cfg, c->clientcert && *c->clientcert ? "clientcert"
                                                                          : "clientkey"),
                    "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (c->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;
    hopts = (struct kx_httpc_opts){.timeout = c->timeout,
                                   .insecure = !c->checkcert,
                                   .ca_file = c->cafile,
                                   .client_cert = c->clientcert,
                                   .client_key = c->clientkey,
                                   .max_response = max_response};
    h->http = kx_httpc_new(&hopts);
    return h->http ? 0 : -ENOMEM;
}

void kx_httpout_close(struct kx_httpout *h)
{
    kx_httpc_free(h->http);
    free(h->url);
    kx_httpout_headers_free(&h->headers);
    memset(h, 0, sizeof(*h));
}

void kx_httpout_destroy(struct kx_output *o)
{
    struct kx_httpout *h = o->priv;

    if (!h)
        return;
    kx_httpout_close(h);
    free(h);
    o->priv = NULL;
}

void kx_httpout_label_name(const char *in, char *out, size_t len)
{
    size_t o = 0;

    if (len == 0)
        return;
    if (*in && isdigit((unsigned char)*in) && o + 1 < len)
        out[o++] = '_';
    for (; *in && o + 1 < len; in++)
        out[o++] = isalnum((unsigned char)*in) ? *in : '_';
    out[o] = '\0';
}

int kx_httpout_fields(const struct kx_alert *a, kx_httpout_field_fn fn, void *ctx)
{
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields"), *f;
    char buf[512];
    int rc;

    if ((rc = fn(ctx, "rule", a->rule)) || (rc = fn(ctx, "priority", kx_priority_name(a->priority))) ||
        (rc = fn(ctx, "source", a->source)) || (rc = fn(ctx, "hostname", a->hostname)))
        return rc;
    if (!cJSON_IsObject(of))
        return 0;
    cJSON_ArrayForEach(f, of)
    {
        if (!f->string || !kx_alert_field_str(a, f->string, buf, sizeof(buf)))
            continue; /* null fields add nothing */
        if ((rc = fn(ctx, f->string, buf)))
            return rc;
    }
    return 0;
}
