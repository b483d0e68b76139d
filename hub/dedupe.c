/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dedupe.c - see dedupe.h for the model. The pure functions at the top are
 * unit-tested; the KV and thread code below them is exercised by the
 * integration tests against a real nats-server with two hub replicas.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "dedupe.h"
#include "hub.h"
#include "log.h"
#include "util.h"

void kx_dedupe_key(const struct kx_alert *a, const struct kx_strlist *fields, char *buf)
{
    uint64_t h1 = 0, h2 = 0x9e3779b97f4a7c15ULL;
    char val[1024];

    for (size_t i = 0; i < fields->n; i++) {
        const char *v = kx_alert_field_str(a, fields->v[i], val, sizeof(val));
        if (!v)
            v = "";
        /* Field separator 0x1f cannot be confused with value bytes in a
         * way that matters: names are fixed by config, values are hashed
         * with their position. */
        h1 = kx_hash64(v, strlen(v), h1 ^ (i + 1));
        h1 = kx_hash64("\x1f", 1, h1);
        h2 = kx_hash64(v, strlen(v), h2 + i);
        h2 = kx_hash64("\x1f", 1, h2);
    }
    snprintf(buf, KX_DEDUPE_KEY_LEN, "d.%016" PRIx64 "%016" PRIx64, h1, h2);
}

int kx_dedupe_state_parse(const char *v, size_t len, struct kx_dedupe_state *st)
{
    char head[256];
    const char *nl = memchr(v, '\n', len);
    int open, n = 0;
    long long start;
    unsigned long long count;

    memset(st, 0, sizeof(*st));
    if (!nl || (size_t)(nl - v) >= sizeof(head))
        return -EINVAL;
    memcpy(head, v, (size_t)(nl - v));
    head[nl - v] = '\0';
    if (sscanf(head, "v1 %d %lld %llu %39s %63s%n", &open, &start, &count, st->uuid, st->owner,
               &n) != 5 ||
        head[n] != '\0' || (open != 0 && open != 1))
        return -EINVAL;
    /* Anyone with access to the bucket can write it: keep start + window
     * arithmetic far from overflow. */
    if (start < 0 || start > INT64_MAX / 2)
        return -EINVAL;
    st->open = open;
    st->start = start;
    st->count = count;
    st->first = nl + 1;
    st->first_len = len - (size_t)(nl + 1 - v);
    return 0;
}

int kx_dedupe_state_format(const struct kx_dedupe_state *st, struct kx_buf *b)
{
    int rc = kx_buf_printf(b, "v1 %d %lld %llu %s %s\n", st->open ? 1 : 0, (long long)st->start,
                           (unsigned long long)st->count, st->uuid[0] ? st->uuid : "-",
                           st->owner[0] ? st->owner : "-");
    return rc ? rc : kx_buf_append(b, st->first, st->first_len);
}

enum kx_dedupe_step kx_dedupe_decide(const struct kx_dedupe_state *cur, const char *uuid,
                                     int64_t now, int64_t window, bool *close_prev)
{
    *close_prev = false;
    if (!cur)
        return KX_DEDUPE_OPEN;
    if (strcmp(cur->uuid, uuid) == 0)
        return KX_DEDUPE_REDELIVERY;
    if (cur->open && now < cur->start + window)
        return KX_DEDUPE_REPEAT;
    *close_prev = cur->open && cur->count > 0;
    return KX_DEDUPE_OPEN;
}

struct kx_alert *kx_dedupe_aggregate(const struct kx_dedupe_state *st, int64_t window)
{
    char err[KX_ALERT_ERR_LEN], uuid[KX_ALERT_UUID_LEN + 1], ts[40];
    struct kx_alert *first = kx_alert_parse(st->first, st->first_len, err, sizeof(err));
    struct kx_buf out;

    if (!first)
        return NULL;
    kx_buf_init(&out, 64 * 1024);
    long long secs = (long long)(window / KX_NSEC_PER_SEC);
    kx_time_format(st->start + window, ts, sizeof(ts));
    kx_uuid4(uuid);
    struct kx_alert *agg = kx_alert_new(first->rule, first->priority, first->source,
                                        first->hostname, NULL, st->start + window);
    if (!agg || kx_buf_printf(&out, "%s (repeated %llu times in %lld s)", first->output,
                              (unsigned long long)st->count, secs))
        goto fail;
    cJSON *of = cJSON_GetObjectItemCaseSensitive(first->doc, "output_fields");
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(first->doc, "tags");
    if (cJSON_IsObject(of)) {
        cJSON *copy = cJSON_Duplicate(of, true);
        if (!copy)
            goto fail;
        cJSON_ReplaceItemInObjectCaseSensitive(agg->doc, "output_fields", copy);
    }
    if (cJSON_IsArray(tags)) {
        cJSON *t;
        cJSON_ArrayForEach(t, tags) if (cJSON_IsString(t) && kx_alert_add_tag(agg, t->valuestring))
            goto fail;
    }
    cJSON *o = cJSON_CreateString(out.data);
    if (!o)
        goto fail;
    cJSON_ReplaceItemInObjectCaseSensitive(agg->doc, "output", o);
    agg->output = o->valuestring;
    if (kx_alert_add_tag(agg, "klaxon_aggregate") ||
        kx_alert_set_int(agg, "klaxon.repeats", (int64_t)st->count) ||
        kx_alert_set_int(agg, "klaxon.window_s", secs) ||
        kx_alert_set_str(agg, "klaxon.first_uuid", first->uuid) ||
        kx_alert_set_str(agg, "klaxon.first_time", ts))
        goto fail;
    kx_buf_free(&out);
    kx_alert_free(first);
    return agg;
fail:
    kx_buf_free(&out);
    kx_alert_free(first);
    kx_alert_free(agg);
    return NULL;
}

/* ------------------------------------------------------------------------ */

struct due {
    char key[KX_DEDUPE_KEY_LEN];
    int64_t start;
    int64_t deadline;    /* CLOCK_REALTIME ns */
};

/* The last entry this replica wrote for a key, so a repeat is one CAS round
 * trip instead of create-fail, get, update. A stale revision only costs a
 * failed CAS and a re-read, so the cache never decides anything alone. */
struct cached {
    char key[KX_DEDUPE_KEY_LEN]; /* "" = empty slot */
    uint64_t rev;
    struct kx_buf val;           /* the encoded state as stored */
};

#define CACHE_SLOTS 8192
#define CACHE_MAX_VALUE 4096   /* larger records are not cached: <= 32 MiB in all */

struct kx_dedupe {
    struct kx_hub *hub;          /* borrowed */
    struct cached *cache;        /* CACHE_SLOTS, direct-mapped; kx-ingest only */
    kvStore *kv;                 /* owned; nats.c's kvStore is thread-safe */
    jsCtx *js_async;             /* owned: batched CAS writes, acks to dedupe_on_puback */
    pthread_mutex_t ops_lock;    /* guards ops/nops while a batch is in flight */
    struct kx_dedupe_op *ops;    /* the batch in flight (borrowed from the caller) */
    size_t nops;
    int64_t window;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* FIFO of windows this replica opened, protected by lock. */
    struct due *ring;
    size_t head, count, cap;
    bool stop;                   /* protected by lock */
};

#define CAS_TRIES 16

/* Publishes the aggregate of a closed window. 0 or -errno. */
static int emit_aggregate(struct kx_dedupe *d, const char *key, const struct kx_dedupe_state *st)
{
    struct kx_hub *h = d->hub;
    struct kx_alert *agg = kx_dedupe_aggregate(st, d->window);
    char subject[200], slug[100], msgid[96], err[256];
    int rc;

    if (!agg) {
        kx_warn("dedupe: cannot build aggregate for %s (stored alert unreadable)", key);
        return 0; /* nothing sensible to retry */
    }
    char *json = kx_alert_to_json(agg);
    if (!json) {
        kx_alert_free(agg);
        return -ENOMEM;
    }
    kx_slug(agg->rule, slug, sizeof(slug));
    snprintf(subject, sizeof(subject), KX_SUBJ_EVENTS ".%s.%s", kx_priority_slug(agg->priority),
             slug);
    snprintf(msgid, sizeof(msgid), "agg.%s.%lld", key, (long long)st->start);
    rc = kx_bus_publish(h->bus, subject, json, strlen(json), msgid, NULL, NULL,
                        h->cfg.publish_timeout, err, sizeof(err));
    if (rc == 0) {
        kx_metric_inc(h->metrics.aggregates);
        kx_info("dedupe: \"%s\" repeated %llu times in %lld s", agg->rule,
                (unsigned long long)st->count, (long long)(d->window / KX_NSEC_PER_SEC));
    } else if (rc < 0) {
        kx_warn("dedupe: aggregate for %s not published: %s", key, err);
    }
    free(json);
    kx_alert_free(agg);
    return rc < 0 ? rc : 0;
}

/* Reads the entry; 0 with *e set, 1 when absent, or -errno. */
static int kv_get(struct kx_dedupe *d, const char *key, kvEntry **e, struct kx_dedupe_state *st)
{
    natsStatus s = kvStore_Get(e, d->kv, key);
    if (s == NATS_NOT_FOUND)
        return 1;
    if (s != NATS_OK)
        return kx_bus_errno(s);
    if (kvEntry_Operation(*e) != kvOp_Put ||
        kx_dedupe_state_parse(kvEntry_Value(*e), (size_t)kvEntry_ValueLen(*e), st)) {
        /* A deleted or foreign value counts as absent, but keep the
         * revision so the CAS that replaces it is still checked. */
        return 2;
    }
    return 0;
}

/*
 * Closes the window of key if it is open and expired (and, when start is
 * non-zero, still the window that started then), emitting its aggregate.
 */
static int close_window(struct kx_dedupe *d, const char *key, int64_t start)
{
    struct kx_buf b;
    int rc = 0;

    kx_buf_init(&b, 2 * KX_ALERT_MAX_BYTES);
    for (int tries = 0; tries < CAS_TRIES; tries++) {
        kvEntry *e = NULL;
        struct kx_dedupe_state st;
        int g = kv_get(d, key, &e, &st);
        if (g != 0) {
            kvEntry_Destroy(e);
            rc = g < 0 ? g : 0;
            break;
        }
        if (!st.open || (start && st.start != start) || kx_now_ns() < st.start + d->window) {
            kvEntry_Destroy(e);
            break;
        }
        /* Aggregate first (idempotent by msg id), then mark closed: a crash
         * in between only means another replica emits the same id again. */
        if (st.count > 0 && (rc = emit_aggregate(d, key, &st)) < 0) {
            kvEntry_Destroy(e);
            break;
        }
        st.open = false;
        kx_buf_reset(&b);
        if ((rc = kx_dedupe_state_format(&st, &b))) {
            kvEntry_Destroy(e);
            break;
        }
        natsStatus s = kvStore_Update(NULL, d->kv, key, b.data, (int)b.len, kvEntry_Revision(e));
        kvEntry_Destroy(e);
        if (s == NATS_OK)
            break;
        rc = -EAGAIN; /* lost a race: read again */
    }
    kx_buf_free(&b);
    return rc;
}

static void schedule(struct kx_dedupe *d, const char *key, int64_t start)
{
    pthread_mutex_lock(&d->lock);
    if (d->count == d->cap) {
        pthread_mutex_unlock(&d->lock);
        kx_metric_inc(d->hub->metrics.dedupe_timer_overflow);
        return;
    }
    struct due *x = &d->ring[(d->head + d->count) % d->cap];
    snprintf(x->key, sizeof(x->key), "%s", key);
    x->start = start;
    x->deadline = start + d->window;
    if (d->count++ == 0)
        pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static struct cached *cache_slot(struct kx_dedupe *d, const char *key)
{
    return &d->cache[kx_hash64(key, strlen(key), 0) % CACHE_SLOTS];
}

static void cache_put(struct cached *c, const char *key, uint64_t rev, const struct kx_buf *b)
{
    kx_buf_reset(&c->val);
    if (kx_buf_append(&c->val, b->data, b->len)) {
        c->key[0] = '\0';
        return;
    }
    snprintf(c->key, sizeof(c->key), "%s", key);
    c->rev = rev;
}

int kx_dedupe_check(struct kx_dedupe *d, const struct kx_alert *a, bool *accept)
{
    char key[KX_DEDUPE_KEY_LEN];
    struct kx_buf b;
    struct kx_dedupe_state fresh = {.open = true};
    int rc = -EAGAIN;
    char *json = NULL;

    *accept = true;
    if (!d)
        return 0;
    kx_dedupe_key(a, &d->hub->cfg.dedupe_keys, key);
    kx_buf_init(&b, 2 * KX_ALERT_MAX_BYTES);
    snprintf(fresh.uuid, sizeof(fresh.uuid), "%s", a->uuid);
    snprintf(fresh.owner, sizeof(fresh.owner), "%s", d->hub->cfg.hub_name);
    if (!(json = kx_alert_to_json(a))) {
        rc = -ENOMEM;
        goto out;
    }
    fresh.first = json;
    fresh.first_len = strlen(json);

    struct cached *c = cache_slot(d, key);
    for (int tries = 0; tries < CAS_TRIES; tries++) {
        kvEntry *e = NULL;
        struct kx_dedupe_state cur;
        int64_t now = kx_now_ns();
        uint64_t rev = 0, new_rev = 0;
        int g;

        if (tries == 0 && strcmp(c->key, key) == 0 &&
            kx_dedupe_state_parse(c->val.data, c->val.len, &cur) == 0) {
            g = 0; /* cached: cur.first points into c->val until cache_put */
            rev = c->rev;
        } else {
            if ((g = kv_get(d, key, &e, &cur)) < 0) {
                rc = g;
                goto out;
            }
            rev = e ? kvEntry_Revision(e) : 0;
        }
        bool close_prev;
        enum kx_dedupe_step step = kx_dedupe_decide(g == 0 ? &cur : NULL, a->uuid, now,
                                                    d->window, &close_prev);
        if (step == KX_DEDUPE_REDELIVERY) {
            kvEntry_Destroy(e);
            *accept = true;
            rc = 0;
            goto out;
        }
        if (close_prev && (rc = emit_aggregate(d, key, &cur)) < 0) {
            kvEntry_Destroy(e);
            goto out;
        }
        struct kx_dedupe_state next = step == KX_DEDUPE_REPEAT ? cur : fresh;
        if (step == KX_DEDUPE_REPEAT)
            next.count++;
        else
            next.start = now;
        kx_buf_reset(&b);
        if ((rc = kx_dedupe_state_format(&next, &b))) {
            kvEntry_Destroy(e);
            goto out;
        }
        natsStatus s = rev ? kvStore_Update(&new_rev, d->kv, key, b.data, (int)b.len, rev)
                           : kvStore_Create(&new_rev, d->kv, key, b.data, (int)b.len);
        kvEntry_Destroy(e);
        if (s == NATS_OK) {
            cache_put(c, key, new_rev, &b);
            *accept = step == KX_DEDUPE_OPEN;
            if (*accept)
                schedule(d, key, next.start);
            rc = 0;
            goto out;
        }
        c->key[0] = '\0';
        if (s == NATS_TIMEOUT || kx_bus_errno(s) == -ENOTCONN) {
            rc = kx_bus_errno(s);
            goto out;
        }
        rc = -EAGAIN; /* CAS conflict with another replica: re-read */
    }
out:
    if (rc < 0)
        kx_metric_inc(d->hub->metrics.dedupe_errors);
    free(json);
    kx_buf_free(&b);
    return rc;
}

int kx_dedupe_add_repeats(struct kx_dedupe *d, const char *key, uint64_t n)
{
    struct cached *c = cache_slot(d, key);
    struct kx_buf b;
    int rc = -EAGAIN;

    kx_buf_init(&b, 2 * KX_ALERT_MAX_BYTES);
    for (int tries = 0; tries < CAS_TRIES; tries++) {
        kvEntry *e = NULL;
        struct kx_dedupe_state cur;
        uint64_t rev, new_rev = 0;

        if (tries == 0 && strcmp(c->key, key) == 0 &&
            kx_dedupe_state_parse(c->val.data, c->val.len, &cur) == 0) {
            rev = c->rev;
        } else {
            int g = kv_get(d, key, &e, &cur);
            if (g != 0) {
                kvEntry_Destroy(e);
                rc = g < 0 ? g : -ESTALE;
                break;
            }
            rev = kvEntry_Revision(e);
        }
        if (!cur.open || kx_now_ns() >= cur.start + d->window) {
            kvEntry_Destroy(e);
            rc = -ESTALE;
            break;
        }
        cur.count += n;
        kx_buf_reset(&b);
        rc = kx_dedupe_state_format(&cur, &b);
        natsStatus s = rc ? NATS_NO_MEMORY
                          : kvStore_Update(&new_rev, d->kv, key, b.data, (int)b.len, rev);
        kvEntry_Destroy(e);
        if (s == NATS_OK) {
            cache_put(c, key, new_rev, &b);
            rc = 0;
            break;
        }
        c->key[0] = '\0';
        rc = kx_bus_errno(s);
        if (rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -ENOMEM)
            break;
        rc = -EAGAIN; /* CAS conflict: re-read */
    }
    if (rc < 0 && rc != -ESTALE)
        kx_metric_inc(d->hub->metrics.dedupe_errors);
    kx_buf_free(&b);
    return rc;
}

void kx_dedupe_key_of(const struct kx_dedupe *d, const struct kx_alert *a, char *key)
{
    kx_dedupe_key(a, &d->hub->cfg.dedupe_keys, key);
}

/* Runs on a nats.c thread for every batched CAS write. Leaders of a batch
 * have distinct keys, so the subject identifies the op. */
static void dedupe_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    struct kx_dedupe *d = arg;
    const char *key = natsMsg_GetSubject(msg) + strlen("$KV." KX_KV_DEDUPE ".");

    pthread_mutex_lock(&d->ops_lock);
    for (size_t i = 0; i < d->nops; i++) {
        struct kx_dedupe_op *op = &d->ops[i];
        if (op->pending && strcmp(op->key, key) == 0) {
            op->pending = false;
            op->stored_rev = pa ? pa->Sequence : 0;
            break;
        }
    }
    pthread_mutex_unlock(&d->ops_lock);
    natsMsg_Destroy(msg);
}

/* Prepares op's first attempt from the cache; false = leave it to the
 * synchronous path (cache miss handled as a create here). */
static bool op_prepare(struct kx_dedupe *d, struct kx_dedupe_op *op, int64_t now)
{
    struct cached *c = cache_slot(d, op->key);
    struct kx_dedupe_state cur, next = {.open = true, .start = now};
    enum kx_dedupe_step step = KX_DEDUPE_OPEN;
    bool close_prev = false;
    char *json = NULL;
    int rc;

    op->expect = 0;
    if (strcmp(c->key, op->key) == 0 && kx_dedupe_state_parse(c->val.data, c->val.len, &cur) == 0) {
        step = kx_dedupe_decide(&cur, op->alert->uuid, now, d->window, &close_prev);
        if (step == KX_DEDUPE_REDELIVERY) {
            op->result = 1;
            return true;
        }
        if (close_prev)
            return false; /* an aggregate to emit first: the careful path */
        op->expect = c->rev;
        if (step == KX_DEDUPE_REPEAT) {
            next = cur;
            next.count++;
        }
    }
    next.count += op->extra; /* a new window's count starts with them */
    op->opens = step == KX_DEDUPE_OPEN;
    op->start = next.start;
    kx_buf_reset(&op->val);
    if (op->opens) {
        snprintf(next.uuid, sizeof(next.uuid), "%s", op->alert->uuid);
        snprintf(next.owner, sizeof(next.owner), "%s", d->hub->cfg.hub_name);
        if (!(json = kx_alert_to_json(op->alert)))
            return false;
        next.first = json;
        next.first_len = strlen(json);
    }
    rc = kx_dedupe_state_format(&next, &op->val);
    free(json);
    return rc == 0;
}

void kx_dedupe_check_many(struct kx_dedupe *d, struct kx_dedupe_op *ops, size_t n)
{
    char subject[64], seq[24];
    int64_t now = kx_now_ns();

    pthread_mutex_lock(&d->ops_lock);
    d->ops = ops;
    d->nops = n;
    pthread_mutex_unlock(&d->ops_lock);
    for (size_t i = 0; i < n; i++) {
        struct kx_dedupe_op *op = &ops[i];
        natsMsg *m = NULL;
        op->result = -EAGAIN;
        op->pending = false;
        op->stored_rev = 0;
        op->counted = false;
        if (!op_prepare(d, op, now) || op->result == 1)
            continue;
        snprintf(subject, sizeof(subject), "$KV." KX_KV_DEDUPE ".%s", op->key);
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)op->expect);
        pthread_mutex_lock(&d->ops_lock);
        op->pending = true;
        pthread_mutex_unlock(&d->ops_lock);
        natsStatus s = natsMsg_Create(&m, subject, NULL, op->val.data, (int)op->val.len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence", seq);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(d->js_async, &m, NULL);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
            pthread_mutex_lock(&d->ops_lock);
            op->pending = false;
            pthread_mutex_unlock(&d->ops_lock);
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = d->hub->cfg.publish_timeout / KX_NSEC_PER_MSEC;
    if (js_PublishAsyncComplete(d->js_async, &po) != NATS_OK) {
        natsMsgList late = {0};
        if (js_PublishAsyncGetPendingList(&late, d->js_async) == NATS_OK)
            natsMsgList_Destroy(&late);
    }
    pthread_mutex_lock(&d->ops_lock);
    for (size_t i = 0; i < n; i++) {
        struct kx_dedupe_op *op = &ops[i];
        struct cached *c = cache_slot(d, op->key);
        if (op->result == 1)
            continue; /* redelivery, decided without a write */
        if (op->pending || op->stored_rev == 0) {
            /* Lost the CAS (another replica wrote first) or no answer: the
             * synchronous path re-reads and decides. */
            op->pending = false;
            if (strcmp(c->key, op->key) == 0)
                c->key[0] = '\0';
            op->result = -EAGAIN;
            continue;
        }
        cache_put(c, op->key, op->stored_rev, &op->val);
        op->result = op->opens ? 1 : 0;
        op->counted = true;
    }
    d->ops = NULL;
    d->nops = 0;
    pthread_mutex_unlock(&d->ops_lock);
    for (size_t i = 0; i < n; i++)
        if (ops[i].result == 1 && ops[i].opens && ops[i].stored_rev)
            schedule(d, ops[i].key, ops[i].start);
}

/* Closes every expired open window in the bucket (orphans of dead replicas). */
static void sweep(struct kx_dedupe *d)
{
    kvKeysList keys = {0};
    if (kvStore_Keys(&keys, d->kv, NULL) != NATS_OK)
        return;
    for (int i = 0; i < keys.Count; i++)
        close_window(d, keys.Keys[i], 0);
    kvKeysList_Destroy(&keys);
}

/* Thread kx-dedupe: closes this replica's windows on time, sweeps the rest. */
static void *dedupe_main(void *arg)
{
    struct kx_dedupe *d = arg;
    int64_t next_sweep = kx_monotonic_ns(); /* sweep once at start: orphans of a crash */

    pthread_setname_np(pthread_self(), "kx-dedupe");
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        if (kx_monotonic_ns() >= next_sweep) {
            pthread_mutex_unlock(&d->lock);
            sweep(d);
            pthread_mutex_lock(&d->lock);
            next_sweep = kx_monotonic_ns() + d->window;
            continue;
        }
        int64_t now = kx_now_ns();
        if (d->count && d->ring[d->head].deadline <= now) {
            struct due x = d->ring[d->head];
            d->head = (d->head + 1) % d->cap;
            d->count--;
            pthread_mutex_unlock(&d->lock);
            if (close_window(d, x.key, x.start) < 0)
                kx_warn("dedupe: closing window %s failed; the sweep will retry", x.key);
            pthread_mutex_lock(&d->lock);
            continue;
        }
        int64_t wake = d->count ? d->ring[d->head].deadline : now + KX_NSEC_PER_SEC;
        if (wake > now + KX_NSEC_PER_SEC)
            wake = now + KX_NSEC_PER_SEC;
        struct timespec ts = {.tv_sec = wake / KX_NSEC_PER_SEC, .tv_nsec = wake % KX_NSEC_PER_SEC};
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int kx_dedupe_start(struct kx_hub *h, char *err, size_t errlen)
{
    struct kx_dedupe *d;
    kvConfig kc;
    natsStatus s;

    if (!h->cfg.dedupe_enabled)
        return 0;
    if (!(d = calloc(1, sizeof(*d))))
        return -ENOMEM;
    d->hub = h;
    d->window = h->cfg.dedupe_window;
    d->cap = (size_t)(h->cfg.dedupe_max_windows > 0 ? h->cfg.dedupe_max_windows : 1);
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->ops_lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    h->dedupe = d; /* from here on kx_dedupe_stop() releases it */
    if (!(d->cache = calloc(CACHE_SLOTS, sizeof(*d->cache)))) {
        snprintf(err, errlen, "dedupe: out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        kx_buf_init(&d->cache[i].val, CACHE_MAX_VALUE);
    if (!(d->ring = calloc(d->cap, sizeof(*d->ring)))) {
        snprintf(err, errlen, "dedupe: cannot allocate %zu window timers", d->cap);
        return -ENOMEM;
    }

    kvConfig_Init(&kc);
    kc.Bucket = KX_KV_DEDUPE;
    kc.History = 1;
    /* Entries outlive their window so late repeats and the sweep still find
     * them; idle keys then expire on their own. */
    kc.TTL = 3 * d->window + 60 * KX_NSEC_PER_SEC;
    kc.Replicas = (int)h->cfg.replicas;
    kc.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&d->kv, h->bus->js, &kc);
    if (s != NATS_OK) {
        /* Exists already (possibly with another TTL): bind to it. */
        s = js_KeyValue(&d->kv, h->bus->js, KX_KV_DEDUPE);
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "dedupe: cannot open KV bucket %s: %s", KX_KV_DEDUPE,
                 natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = dedupe_on_puback;
    jo.PublishAsync.AckHandlerClosure = d;
    jo.PublishAsync.MaxPending = h->cfg.fetch_batch;
    if ((s = natsConnection_JetStream(&d->js_async, h->bus->nc, &jo)) != NATS_OK) {
        snprintf(err, errlen, "dedupe: cannot create JetStream context: %s",
                 natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    int rc = pthread_create(&d->thread, NULL, dedupe_main, d);
    if (rc) {
        snprintf(err, errlen, "dedupe: cannot start thread: %s", strerror(rc));
        return -rc;
    }
    d->started = true;
    return 0;
}

void kx_dedupe_stop(struct kx_hub *h)
{
    struct kx_dedupe *d = h->dedupe;
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (d->started)
        pthread_join(d->thread, NULL);
    kvStore_Destroy(d->kv);
    jsCtx_Destroy(d->js_async);
    pthread_mutex_destroy(&d->ops_lock);
    for (size_t i = 0; d->cache && i < CACHE_SLOTS; i++)
        kx_buf_free(&d->cache[i].val);
    free(d->cache);
    free(d->ring);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    free(d);
    h->dedupe = NULL;
}
