/* SPDX-License-Identifier: Apache-2.0 */
/*
 * elasticsearch.c - Elasticsearch / OpenSearch through the _bulk API: one
 * request per batch, NDJSON ("create" action + the alert, newline after
 * each line, the trailing one included), into an index named
 * <index>-<date suffix> from the alert's time (Falcosidekick's
 * daily/monthly/annually/none). Basic auth or an API key.
 *
 * Each document's _id is the alert's uuid and the action is "create", so a
 * batch retried after a partial failure cannot index an alert twice: what
 * went in the first time answers 409, which counts as delivered. Per-item
 * 429/5xx make the batch retry; any other per-item error is permanent and
 * its reason goes to the dead-letter record.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "config.h"
#include "httpc.h"
#include "outputs.h"
#include "util.h"

#define KX_ES_BATCH 500
#define KX_ES_BODY_MAX (16 << 20)
#define KX_ES_RESP_MAX (4 << 20)

struct es_settings {
    char *hostport;  /* https://es:9200 */
    char *index;     /* "falco" */
    char *suffix;    /* daily | monthly | annually | none */
    char *username;  /* basic auth */
    char *password;  /* secret */
    char *apikey;    /* secret: Authorization: ApiKey <apikey> */
    char *pipeline;  /* ingest pipeline, optional */
    bool checkcert;
    char *cafile;
    char *clientcert;
    char *clientkey;
    int64_t timeout; /* ns */
};

struct es_state {
    struct kx_httpc *http;    /* owned */
    char *url;                /* owned: <hostport>/_bulk[?pipeline=] */
    struct kx_strmap headers; /* owned: Authorization when configured */
    int suffix;               /* ES_DAILY ... */
};

enum { ES_DAILY, ES_MONTHLY, ES_ANNUALLY, ES_NONE };

#define E(field) offsetof(struct es_settings, field)

static const struct kx_opt es_opts[] = {
    {"hostport", KX_OPT_STR, NULL, E(hostport), KX_OPT_REQUIRED,
     "base URL, e.g. https://es:9200 (env <NAME>_HOSTPORT, e.g. ELASTICSEARCH_HOSTPORT)"},
    {"index", KX_OPT_STR, "falco", E(index), 0, "index name before the date suffix"},
    {"suffix", KX_OPT_STR, "daily", E(suffix), 0,
     "index date suffix from the alert's time: daily, monthly, annually or none"},
    {"username", KX_OPT_STR, "", E(username), 0, "basic auth user"},
    {"password", KX_OPT_STR, "", E(password), KX_OPT_SECRET, "basic auth password"},
    {"apikey", KX_OPT_STR, "", E(apikey), KX_OPT_SECRET, "API key (Authorization: ApiKey ...)"},
    {"pipeline", KX_OPT_STR, "", E(pipeline), 0, "ingest pipeline to run"},
    {"checkcert", KX_OPT_BOOL, "true", E(checkcert), 0, "verify the server's TLS certificate"},
    {"cafile", KX_OPT_STR, NULL, E(cafile), 0, "extra CA bundle (PEM)"},
    {"clientcert", KX_OPT_STR, NULL, E(clientcert), 0, "client certificate (PEM), mutual TLS"},
    {"clientkey", KX_OPT_STR, NULL, E(clientkey), 0, "client private key (PEM), mutual TLS"},
    {"timeout", KX_OPT_DURATION, "10s", E(timeout), 0, "whole-request timeout"},
    {0},
};

/* "falco-2026.11.23" for the alert's UTC date. */
static void es_index(const struct es_settings *s, int suffix, int64_t t_ns, char *out,
                     size_t len)
{
    time_t t = (time_t)(t_ns / KX_NSEC_PER_SEC);
    struct tm tm;

    gmtime_r(&t, &tm);
    switch (suffix) {
    case ES_DAILY:
        snprintf(out, len, "%s-%04d.%02d.%02d", s->index, tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
        break;
    case ES_MONTHLY:
        snprintf(out, len, "%s-%04d.%02d", s->index, tm.tm_year + 1900, tm.tm_mon + 1);
        break;
    case ES_ANNUALLY:
        snprintf(out, len, "%s-%04d", s->index, tm.tm_year + 1900);
        break;
    default:
        snprintf(out, len, "%s", s->index);
    }
}

static int add_header(struct kx_strmap *m, const char *name, const char *fmt, const char *a,
                      const char *b)
{
    char *v = NULL;

    if ((b ? asprintf(&v, fmt, a, b) : asprintf(&v, fmt, a)) < 0)
        return -ENOMEM;
    m->keys = calloc(1, sizeof(char *));
    m->vals = calloc(1, sizeof(char *));
    if (!m->keys || !m->vals || !(m->keys[0] = strdup(name))) {
        free(v);
        return -ENOMEM;
    }
    m->vals[0] = v;
    m->n = 1;
    return 0;
}

/* Output worker thread. */
static int es_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct es_settings *s = o->settings;
    struct kx_httpc_opts hopts;
    struct es_state *st;
    size_t before = d->n, len;
    int suffix = ES_DAILY, rc = 0;

    if (!s->hostport || (strncasecmp(s->hostport, "https://", 8) != 0 &&
                         strncasecmp(s->hostport, "http://", 7) != 0))
        kx_diag_add(d, kx_config_get(cfg, "hostport"),
                    "output %s: hostport must be an http(s):// URL, e.g. https://es:9200",
                    o->name);
    /* Elasticsearch's own rules for index names */
    if (!s->index || !*s->index || strpbrk(s->index, "\\/*?\"<>| ,#:") || s->index[0] == '_' ||
        s->index[0] == '-' || s->index[0] == '+')
        kx_diag_add(d, kx_config_get(cfg, "index"),
                    "output %s: index \"%s\" is not a valid index name", o->name,
                    s->index ? s->index : "");
    for (const char *p = s->index; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') {
            kx_diag_add(d, kx_config_get(cfg, "index"),
                        "output %s: index \"%s\" must be lowercase", o->name, s->index);
            break;
        }
    if (!s->suffix || strcasecmp(s->suffix, "daily") == 0)
        suffix = ES_DAILY;
    else if (strcasecmp(s->suffix, "monthly") == 0)
        suffix = ES_MONTHLY;
    else if (strcasecmp(s->suffix, "annually") == 0)
        suffix = ES_ANNUALLY;
    else if (strcasecmp(s->suffix, "none") == 0)
        suffix = ES_NONE;
    else
        kx_diag_add(d, kx_config_get(cfg, "suffix"),
                    "output %s: suffix \"%s\": want daily, monthly, annually or none", o->name,
                    s->suffix);
    if (s->apikey && *s->apikey && s->username && *s->username)
        kx_diag_add(d, kx_config_get(cfg, "apikey"),
                    "output %s: use either apikey or username/password, not both", o->name);
    if ((s->clientcert && *s->clientcert) != (s->clientkey && *s->clientkey))
        kx_diag_add(d, kx_config_get(cfg, "clientcert"),
                    "output %s: mutual TLS needs both clientcert and clientkey", o->name);
    if (s->timeout <= 0)
        kx_diag_add(d, kx_config_get(cfg, "timeout"), "output %s: timeout must be positive",
                    o->name);
    if (d->n > before)
        return -EINVAL;

    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    o->priv = st; /* destroy frees whatever is made below */
    st->suffix = suffix;
    len = strlen(s->hostport);
    while (len && s->hostport[len - 1] == '/')
        len--;
    if (asprintf(&st->url, "%.*s/_bulk%s%s", (int)len, s->hostport,
                 s->pipeline && *s->pipeline ? "?pipeline=" : "",
                 s->pipeline && *s->pipeline ? s->pipeline : "") < 0) {
        st->url = NULL;
        return -ENOMEM;
    }
    if (s->apikey && *s->apikey) {
        rc = add_header(&st->headers, "Authorization", "ApiKey %s", s->apikey, NULL);
    } else if (s->username && *s->username) {
        char *up = NULL, *b64;
        size_t n;

        if (asprintf(&up, "%s:%s", s->username, s->password ? s->password : "") < 0)
            return -ENOMEM;
        b64 = kx_base64_encode(up, strlen(up), &n);
        explicit_bzero(up, strlen(up));
        free(up);
        if (!b64)
            return -ENOMEM;
        rc = add_header(&st->headers, "Authorization", "Basic %s", b64, NULL);
        free(b64);
    }
    if (rc < 0)
        return rc;
    hopts = (struct kx_httpc_opts){.timeout = s->timeout,
                                   .insecure = !s->checkcert,
                                   .ca_file = s->cafile,
                                   .client_cert = s->clientcert,
                                   .client_key = s->clientkey,
                                   .max_response = KX_ES_RESP_MAX};
    st->http = kx_httpc_new(&hopts);
    return st->http ? 0 : -ENOMEM;
}

/*
 * The outcome of a 200 _bulk answer: 0 when every item is created (or was
 * already, 409), -EAGAIN when an item was rejected for load (429, 5xx),
 * -EPROTO with reason for any other item error.
 */
static int es_items(const char *body, size_t len, char *reason, size_t rlen)
{
    cJSON *root = cJSON_ParseWithLength(body, len), *items, *it;
    int rc = 0;

    if (!root) {
        snprintf(reason, rlen, "unreadable _bulk answer");
        return -EAGAIN;
    }
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "errors")))
        goto done;
    items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsArray(items))
        items = NULL;
    cJSON_ArrayForEach(it, items)
    {
        cJSON *op = it->child; /* {"create": {...}} */
        cJSON *st = op ? cJSON_GetObjectItemCaseSensitive(op, "status") : NULL;
        cJSON *err = op ? cJSON_GetObjectItemCaseSensitive(op, "error") : NULL;
        int status = cJSON_IsNumber(st) ? st->valueint : 0;

        if (status < 300 || status == 409)
            continue;
        if (status == 429 || status >= 500) {
            if (rc == 0)
                snprintf(reason, rlen, "item rejected with %d, will retry", status);
            rc = -EAGAIN;
            continue;
        }
        if (rc != -EAGAIN) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(err, "type");
            const cJSON *why = cJSON_GetObjectItemCaseSensitive(err, "reason");

            snprintf(reason, rlen, "item %d: %s: %s", status,
                     cJSON_IsString(type) ? type->valuestring : "error",
                     cJSON_IsString(why) ? why->valuestring : "");
            rc = -EPROTO;
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* Output worker thread. */
static int es_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct es_settings *s = o->settings;
    struct es_state *st = o->priv;
    struct kx_http_result res;
    struct kx_buf b;
    char index[300], reason[200];
    int rc = 0;

    kx_buf_init(&b, KX_ES_BODY_MAX);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *json = kx_alert_to_json(batch[i]);

        es_index(s, st->suffix, batch[i]->time_ns, index, sizeof(index));
        rc = json ? kx_buf_printf(&b, "{\"create\":{\"_index\":\"%s\",\"_id\":\"%s\"}}\n%s\n",
                                  index, batch[i]->uuid, json)
                  : -ENOMEM;
        free(json);
    }
    if (rc < 0) {
        snprintf(o->error, sizeof(o->error), "elasticsearch: cannot build the batch: %s",
                 strerror(-rc));
        kx_buf_free(&b);
        return -EAGAIN;
    }
    rc = kx_httpc_send(st->http, "POST", st->url, "application/x-ndjson", &st->headers, b.data,
                       b.len, &res);
    kx_buf_free(&b);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "elasticsearch: %.230s", res.error);
        o->retry_after = res.retry_after;
        kx_http_result_release(&res);
        return rc;
    }
    rc = es_items(res.full ? res.full : res.body, res.full ? res.full_len : strlen(res.body),
                  reason, sizeof(reason));
    kx_http_result_release(&res);
    if (rc != 0) {
        snprintf(o->error, sizeof(o->error), "elasticsearch _bulk: %s", reason);
        return rc == -EAGAIN ? -EAGAIN : -EPROTO;
    }
    return 0;
}

static void es_destroy(struct kx_output *o)
{
    struct es_state *st = o->priv;

    if (!st)
        return;
    kx_httpc_free(st->http);
    free(st->url);
    if (st->headers.n) {
        explicit_bzero(st->headers.vals[0], strlen(st->headers.vals[0]));
        free(st->headers.vals[0]);
        free(st->headers.keys[0]);
    }
    free(st->headers.vals);
    free(st->headers.keys);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_elasticsearch = {
    .name = "elasticsearch",
    .desc = "Elasticsearch / OpenSearch _bulk API, batched, dated index, basic or API-key auth",
    .opts = es_opts,
    .settings_size = sizeof(struct es_settings),
    .max_batch = KX_ES_BATCH,
    .init = es_init,
    .deliver = es_deliver,
    .destroy = es_destroy,
};
