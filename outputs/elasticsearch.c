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
#include "httpout.h"
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
    struct kx_httpout_conn http;
};

struct es_state {
    struct kx_httpout h; /* first (kx_httpout_destroy); url: <hostport>/_bulk[?pipeline=] */
    int suffix;          /* ES_DAILY ... */
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
    KX_HTTPOUT_OPTS(struct es_settings),
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

/* Output worker thread. */
static int es_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct es_settings *s = o->settings;
    struct es_state *st;
    size_t before = d->n;
    int suffix = ES_DAILY, rc = 0;

    kx_httpout_check_url(o, cfg, "hostport", s->hostport, "https://es:9200", d);
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
    if (d->n > before)
        return -EINVAL;

    st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    o->priv = st; /* destroy frees whatever is made below */
    st->suffix = suffix;
    st->h.url = kx_httpout_url(s->hostport, "/_bulk");
    if (st->h.url && s->pipeline && *s->pipeline) {
        char *u = NULL;

        if (asprintf(&u, "%s?pipeline=%s", st->h.url, s->pipeline) < 0)
            u = NULL;
        free(st->h.url);
        st->h.url = u;
    }
    if (!st->h.url)
        return -ENOMEM;
    if (s->apikey && *s->apikey) {
        char *v = NULL;

        rc = kx_httpout_header(&st->h.headers, "Authorization",
                               asprintf(&v, "ApiKey %s", s->apikey) < 0 ? NULL : v);
    } else if (s->username && *s->username) {
        rc = kx_httpout_basic_auth(&st->h.headers, s->username, s->password);
    }
    if (rc < 0)
        return rc;
    return kx_httpout_open(o, cfg, &s->http, KX_ES_RESP_MAX, &st->h, d);
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
    rc = kx_httpout_send(o, st->h.http, st->h.url, "application/x-ndjson", &st->h.headers, &b,
                         "elasticsearch", &res);
    kx_buf_free(&b);
    if (rc != 0) {
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


const struct kx_output_ops kx_output_elasticsearch = {
    .name = "elasticsearch",
    .desc = "Elasticsearch / OpenSearch _bulk API, batched, dated index, basic or API-key auth",
    .opts = es_opts,
    .settings_size = sizeof(struct es_settings),
    .max_batch = KX_ES_BATCH,
    .init = es_init,
    .deliver = es_deliver,
    .destroy = kx_httpout_destroy,
};
