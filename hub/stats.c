/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.c - the minute ring behind GET /api/v1/stats (see stats.h).
 *
 * Keys (rule, node, namespace, pod) are interned once in a pool of
 * reference-counted strings that all minutes share; each minute holds, per
 * dimension, a small open-addressing table of {string id, count} that grows
 * by doubling up to 2 * KX_STATS_KEYS slots, so it is never more than half
 * full. Counting an alert whose keys its minute has seen already costs four
 * hashes and four probes under the lock, and no allocation. A minute is
 * reset (its strings released, its tables kept for reuse) when the ring
 * comes round to it again or when it falls out of the last 24 h.
 *
 * Queries work in whole minutes: a minute is in since..until when it ends
 * after since and at or before until, both rounded up to the minute, so the
 * default since=1h gives the 60 minutes up to and including the current one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "util.h"

#define NSEC_PER_MIN (60 * KX_NSEC_PER_SEC)
#define MINUTE_NONE INT64_MIN
#define INDEX_SIZE (2 * KX_STATS_STRINGS) /* chain heads of the string pool; power of 2 */
#define SLOTS_MIN 8
#define DEFAULT_BUCKETS 60 /* the default bucket size gives at most this many */
#define DEFAULT_SINCE (3600 * KX_NSEC_PER_SEC)
#define DEFAULT_TOP 10
#define PARAM_MAX 64 /* bytes of one decoded query parameter */

_Static_assert((INDEX_SIZE & (INDEX_SIZE - 1)) == 0, "INDEX_SIZE must be a power of two");

enum dim { DIM_RULE, DIM_NODE, DIM_NS, DIM_POD, DIM_COUNT };

static const char *const dim_names[DIM_COUNT] = {"rules", "nodes", "namespaces", "pods"};

struct slot {
    uint32_t id;    /* string pool id; 0 = empty */
    uint32_t count; /* alerts in this minute: wraps only past ~70 M alerts/s */
};

/* One minute's counts for one dimension. */
struct dim_table {
    struct slot *slot; /* owned: cap slots, probed from the key's hash */
    uint32_t cap;      /* 0, or a power of two from SLOTS_MIN to 2 * KX_STATS_KEYS */
    uint32_t n;        /* keys held, at most KX_STATS_KEYS */
    uint32_t other;    /* alerts whose key did not fit: KX_STATS_OTHER */
};

struct minute {
    int64_t minute; /* minutes since the epoch counted here, or MINUTE_NONE */
    uint32_t prio[KX_PRI_COUNT];
    uint32_t audit;
    struct dim_table dim[DIM_COUNT];
};

/* An interned key. */
struct str {
    char *s;       /* owned, NUL-terminated; NULL when the id is free */
    uint64_t hash; /* kx_hash64 of s */
    uint32_t len;
    uint32_t refs; /* (minute, dimension) tables holding this id */
    uint32_t next; /* next id in its index chain, or in the free list */
};

struct kx_stats {
    pthread_mutex_t lock;
    int64_t (*now)(void);   /* set before sharing, then read-only */
    struct minute *min;     /* under lock; owned: KX_STATS_MINUTES, minute m at m % size */
    struct str *str;        /* under lock; owned: ids 1..KX_STATS_STRINGS, [0] unused */
    uint32_t *index;        /* under lock; owned: INDEX_SIZE chain heads by hash */
    uint32_t free_head;     /* under lock: a released id to reuse, 0 = none */
    uint32_t used;          /* under lock: ids handed out so far (free or not) */
    int64_t swept;          /* under lock: the minute of the last expiry sweep */
    int64_t complete_since; /* under lock: ns */
    uint64_t dropped;       /* under lock: alerts older than the ring */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

static int64_t minute_of(int64_t ns)
{
    return floor_div(ns, NSEC_PER_MIN);
}

/* The minute that ends at or after ns: ns rounded up to a whole minute. */
static int64_t minute_ceil(int64_t ns)
{
    return minute_of(ns - 1) + 1;
}

static struct minute *ring(struct kx_stats *s, int64_t m)
{
    return &s->min[m - floor_div(m, KX_STATS_MINUTES) * KX_STATS_MINUTES];
}

/* ------------------------------------------------------------ the pool */

/* A reference to key k (interned on first use); 0 when the pool is full. */
static uint32_t str_ref(struct kx_stats *s, const char *k, size_t len, uint64_t hash)
{
    uint32_t *head = &s->index[hash & (INDEX_SIZE - 1)];
    char *copy;
    uint32_t id;

    for (id = *head; id; id = s->str[id].next) {
        struct str *e = &s->str[id];
        if (e->hash == hash && e->len == len && memcmp(e->s, k, len) == 0) {
            e->refs++;
            return id;
        }
    }
    if (!s->free_head && s->used == KX_STATS_STRINGS)
        return 0;
    if (!(copy = malloc(len + 1)))
        return 0;
    memcpy(copy, k, len);
    copy[len] = '\0';
    if (s->free_head) {
        id = s->free_head;
        s->free_head = s->str[id].next;
    } else {
        id = ++s->used;
    }
    s->str[id] = (struct str){copy, hash, (uint32_t)len, 1, *head};
    *head = id;
    return id;
}

static void str_unref(struct kx_stats *s, uint32_t id)
{
    struct str *e = &s->str[id];

    if (--e->refs)
        return;
    uint32_t *p = &s->index[e->hash & (INDEX_SIZE - 1)];
    while (*p != id)
        p = &s->str[*p].next;
    *p = e->next;
    free(e->s);
    *e = (struct str){.next = s->free_head};
    s->free_head = id;
}

/* ---------------------------------------------------- one minute's keys */

/* The slot holding key k, or the empty slot where it goes. t->cap > 0, and
 * a table is at most half full, so the probe ends. */
static struct slot *dim_probe(const struct kx_stats *s, const struct dim_table *t, const char *k,
                              size_t len, uint64_t hash)
{
    uint32_t mask = t->cap - 1;

    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        struct slot *sl = &t->slot[i];
        const struct str *e = &s->str[sl->id];

        if (!sl->id || (e->hash == hash && e->len == len && memcmp(e->s, k, len) == 0))
            return sl;
    }
}

static int dim_grow(const struct kx_stats *s, struct dim_table *t)
{
    uint32_t cap = t->cap ? 2 * t->cap : SLOTS_MIN;
    struct slot *slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (!t->slot[i].id)
            continue;
        uint32_t j = (uint32_t)s->str[t->slot[i].id].hash & (cap - 1);
        while (slots[j].id)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slots;
    t->cap = cap;
    return 0;
}

static void dim_count(struct kx_stats *s, struct dim_table *t, const char *k, size_t len)
{
    uint64_t hash = kx_hash64(k, len, 0);
    struct slot *sl = t->cap ? dim_probe(s, t, k, len, hash) : NULL;
    uint32_t id;

    if (sl && sl->id) {
        sl->count++;
        return;
    }
    /* A key new to this minute: the only path that may allocate. */
    if (t->n >= KX_STATS_KEYS || (2 * (t->n + 1) > t->cap && dim_grow(s, t) < 0) ||
        !(id = str_ref(s, k, len, hash))) {
        t->other++;
        return;
    }
    *dim_probe(s, t, k, len, hash) = (struct slot){id, 1};
    t->n++;
}

/* Empties m (its strings released, its tables kept) and gives it to minute. */
static void minute_reset(struct kx_stats *s, struct minute *m, int64_t minute)
{
    for (int d = 0; d < DIM_COUNT; d++) {
        struct dim_table *t = &m->dim[d];

        for (uint32_t i = 0; i < t->cap && t->n; i++)
            if (t->slot[i].id)
                str_unref(s, t->slot[i].id);
        if (t->cap)
            memset(t->slot, 0, t->cap * sizeof(*t->slot));
        t->n = t->other = 0;
    }
    memset(m->prio, 0, sizeof(m->prio));
    m->audit = 0;
    m->minute = minute;
}

/* Resets the minutes that fell out of the last 24 h, once per minute, so
 * their strings go back to the pool before the ring comes round. */
static void sweep(struct kx_stats *s, int64_t now_min)
{
    if (now_min == s->swept)
        return;
    s->swept = now_min;
    for (size_t i = 0; i < KX_STATS_MINUTES; i++) {
        struct minute *m = &s->min[i];
        if (m->minute != MINUTE_NONE && m->minute <= now_min - KX_STATS_MINUTES)
            minute_reset(s, m, MINUTE_NONE);
    }
}

/* strlen(k), cut to KX_STATS_KEY_MAX bytes without splitting a UTF-8 character. */
static size_t key_len(const char *k)
{
    size_t n = strnlen(k, KX_STATS_KEY_MAX + 1);

    if (n > KX_STATS_KEY_MAX)
        for (n = KX_STATS_KEY_MAX; n > 0 && ((unsigned char)k[n] & 0xC0) == 0x80; n--)
            ;
    return n;
}

/*
 * The non-empty string values of k8s.ns.name and k8s.pod.name (NULL when
 * absent), in one pass over output_fields: kx_alert_field would walk the
 * object once per name, which was a third of kx_stats_add's time.
 */
static void k8s_names(const struct kx_alert *a, const char **ns, const char **pod)
{
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");

    *ns = *pod = NULL;
    for (const cJSON *f = cJSON_IsObject(of) ? of->child : NULL; f; f = f->next) {
        const char **to = NULL;

        if (!f->string || strncmp(f->string, "k8s.", 4) != 0 || !cJSON_IsString(f) ||
            !f->valuestring[0])
            continue;
        if (strcmp(f->string + 4, "ns.name") == 0)
            to = ns;
        else if (strcmp(f->string + 4, "pod.name") == 0)
            to = pod;
        if (to && !*to) /* the first of duplicate keys, as cJSON's lookup */
            *to = f->valuestring;
    }
}

/* -------------------------------------------------------------- public */

struct kx_stats *kx_stats_new(void)
{
    struct kx_stats *s = calloc(1, sizeof(*s));

    /* Large callocs are fresh zero pages: the pool costs memory as it fills. */
    if (!s || !(s->min = calloc(KX_STATS_MINUTES, sizeof(*s->min))) ||
        !(s->str = calloc(KX_STATS_STRINGS + 1, sizeof(*s->str))) ||
        !(s->index = calloc(INDEX_SIZE, sizeof(*s->index)))) {
        kx_stats_free(s);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->now = kx_now_ns;
    for (size_t i = 0; i < KX_STATS_MINUTES; i++)
        s->min[i].minute = MINUTE_NONE;
    s->swept = MINUTE_NONE;
    /* Until a back-fill says otherwise, nothing before start-up is known. */
    s->complete_since = s->now();
    return s;
}

void kx_stats_free(struct kx_stats *s)
{
    if (!s)
        return;
    if (s->index) /* fully built, lock included */
        pthread_mutex_destroy(&s->lock);
    for (size_t i = 0; s->min && i < KX_STATS_MINUTES; i++)
        for (int d = 0; d < DIM_COUNT; d++)
            free(s->min[i].dim[d].slot);
    for (uint32_t id = 1; s->str && id <= s->used; id++)
        free(s->str[id].s);
    free(s->index);
    free(s->str);
    free(s->min);
    free(s);
}

void kx_stats_set_clock(struct kx_stats *s, int64_t (*now_ns)(void))
{
    s->now = now_ns ? now_ns : kx_now_ns;
    s->complete_since = s->now(); /* start-up, by the new clock */
}

void kx_stats_add(struct kx_stats *s, const struct kx_alert *a)
{
    int64_t now = s->now();
    int64_t now_min = minute_of(now), m = minute_of(a->time_ns < now ? a->time_ns : now);
    bool audit = kx_alert_is_audit(a);
    const char *keys[DIM_COUNT] = {0};
    char pod[2 * KX_STATS_KEY_MAX + 2];

    /* The JSON lookups happen before the lock: the API may hold it a while. */
    if (!audit) {
        const char *ns, *name;

        k8s_names(a, &ns, &name);
        keys[DIM_RULE] = a->rule;
        keys[DIM_NODE] = a->hostname && a->hostname[0] ? a->hostname : NULL;
        keys[DIM_NS] = ns;
        if (ns && name) { /* "<ns>/<pod>", each part cut first; key_len cuts the whole */
            size_t n1 = key_len(ns), n2 = key_len(name);

            memcpy(pod, ns, n1);
            pod[n1] = '/';
            memcpy(pod + n1 + 1, name, n2);
            pod[n1 + 1 + n2] = '\0';
            keys[DIM_POD] = pod;
        }
    }
    pthread_mutex_lock(&s->lock);
    sweep(s, now_min);
    struct minute *b = ring(s, m);
    if (m <= now_min - KX_STATS_MINUTES || (b->minute != MINUTE_NONE && b->minute > m)) {
        /* older than the ring (or the clock went back a day): nowhere to count */
        s->dropped++;
    } else {
        if (b->minute != m)
            minute_reset(s, b, m);
        if (audit) {
            b->audit++;
        } else {
            if ((unsigned)a->priority < KX_PRI_COUNT)
                b->prio[a->priority]++;
            for (int d = 0; d < DIM_COUNT; d++)
                if (keys[d])
                    dim_count(s, &b->dim[d], keys[d], key_len(keys[d]));
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void kx_stats_set_complete_since(struct kx_stats *s, int64_t t_ns)
{
    pthread_mutex_lock(&s->lock);
    s->complete_since = t_ns;
    pthread_mutex_unlock(&s->lock);
}

uint64_t kx_stats_dropped(struct kx_stats *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->dropped;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ------------------------------------------------------------- the query */

struct stats_query {
    int64_t now_min;
    int64_t first, end; /* minutes since the epoch: [first, end), within the ring */
    int64_t bucket;     /* minutes per series entry */
    int top;
};

/* %-decodes src[0..n) into dst; false when it does not fit or an escape is bad. */
static bool url_decode(const char *src, size_t n, char *dst, size_t len)
{
    return kx_url_decode(src, n, dst, len) >= 0;
}

enum { P_SINCE, P_UNTIL, P_BUCKET, P_TOP, P_COUNT };
static const char *const param_names[P_COUNT] = {"since", "until", "bucket", "top"};

/* Splits and decodes the query string into val[] (seen[] says which came). */
static int query_split(const char *qs, char val[P_COUNT][PARAM_MAX + 1], bool seen[P_COUNT],
                       char *err, size_t errlen)
{
    const char *q = qs ? qs : "", *p, *v;
    size_t nlen, vlen;

    while (kx_query_next(&q, &p, &nlen, &v, &vlen)) {
        char name[PARAM_MAX + 1];
        bool ok;
        int i = 0;

        ok = url_decode(p, nlen, name, sizeof(name));
        for (; ok && i < P_COUNT && strcmp(name, param_names[i]) != 0; i++)
            ;
        if (!ok || i == P_COUNT) {
            snprintf(err, errlen, "unknown parameter \"%.*s\" (want since, until, bucket, top)",
                     (int)(nlen < 40 ? nlen : 40), p);
            return -EINVAL;
        }
        if (seen[i]) {
            snprintf(err, errlen, "parameter %s given twice", param_names[i]);
            return -EINVAL;
        }
        if (vlen == 0) {
            snprintf(err, errlen, "%s: empty value", param_names[i]);
            return -EINVAL;
        }
        if (!url_decode(v, vlen, val[i], PARAM_MAX + 1)) {
            snprintf(err, errlen, "%s: value too long or badly %%-encoded", param_names[i]);
            return -EINVAL;
        }
        seen[i] = true;
    }
    return 0;
}

/* Validates the parameters (docs/api.md) into q. 0 or -EINVAL with err. */
static int query_parse(const char *qs, int64_t now, struct stats_query *q, char *err, size_t errlen)
{
    static const char time_want[] =
        "want an RFC 3339 time (2026-11-24T10:00:00Z) or a duration back from now (15m, 24h)";
    char val[P_COUNT][PARAM_MAX + 1] = {{0}};
    bool seen[P_COUNT] = {0};
    int64_t since = now - DEFAULT_SINCE, until = now, v;
    long top = DEFAULT_TOP;

    if (query_split(qs, val, seen, err, errlen) < 0)
        return -EINVAL;
    for (int i = P_SINCE; i <= P_UNTIL; i++)
        if (seen[i] && kx_when_parse(val[i], now, i == P_SINCE ? &since : &until) < 0) {
            snprintf(err, errlen, "%s: \"%s\": %s", param_names[i], val[i], time_want);
            return -EINVAL;
        }
    if (since >= until) {
        snprintf(err, errlen, "since must be before until");
        return -EINVAL;
    }
    q->now_min = minute_of(now);
    q->first = minute_ceil(since);
    q->end = minute_ceil(until);
    if (q->first >= q->end) /* both inside one minute: that minute */
        q->first = q->end - 1;
    int64_t lo = q->now_min - KX_STATS_MINUTES + 1, hi = q->now_min + 1;
    if (q->end <= lo || q->first >= hi) {
        snprintf(err, errlen,
                 "since..until is outside the last 24 h: stats are kept in memory "
                 "for 24 h (use /api/v1/alerts for older alerts)");
        return -EINVAL;
    }
    q->first = q->first > lo ? q->first : lo;
    q->end = q->end < hi ? q->end : hi;

    int64_t n = q->end - q->first;
    q->bucket = (n + DEFAULT_BUCKETS - 1) / DEFAULT_BUCKETS;
    if (seen[P_BUCKET]) {
        if (kx_duration_parse(val[P_BUCKET], &v) < 0 || v <= 0 || v % NSEC_PER_MIN ||
            v > KX_STATS_MINUTES * NSEC_PER_MIN) {
            snprintf(err, errlen,
                     "bucket: \"%s\": want a whole number of minutes, 1m..24h "
                     "(5m, 1h)",
                     val[P_BUCKET]);
            return -EINVAL;
        }
        q->bucket = v / NSEC_PER_MIN;
    }
    if (seen[P_TOP] && (!kx_small_uint(val[P_TOP], strlen(val[P_TOP]), &top) || top < 1 ||
                        top > KX_STATS_TOP_MAX)) {
        snprintf(err, errlen, "top: \"%s\": want 1..%d", val[P_TOP], KX_STATS_TOP_MAX);
        return -EINVAL;
    }
    q->top = (int)top;
    return 0;
}

/* ------------------------------------------------------------- collecting */

struct top_cand {
    uint64_t count;
    uint32_t id; /* 0 = KX_STATS_OTHER */
};

struct top_item {
    uint64_t count;
    char name[KX_STATS_KEY_MAX + 1];
};

/* What one query found, copied out so the JSON is written without the lock. */
struct stats_result {
    uint64_t prio[KX_PRI_COUNT];
    uint64_t audit;
    uint64_t (*series)[KX_PRI_COUNT]; /* owned: nseries rows */
    size_t nseries;
    struct top_item top[DIM_COUNT][KX_STATS_TOP_MAX];
    size_t ntop[DIM_COUNT];
    int64_t complete_since;
    /* scratch for merging keys across minutes */
    struct top_cand *cand; /* owned: KX_STATS_STRINGS + 1 */
    uint32_t *pos;         /* owned: id -> index in cand + 1, 0 = not there yet */
};

static int top_cmp(const void *pa, const void *pb, void *ctx)
{
    const struct top_cand *a = pa, *b = pb;
    const struct str *str = ctx;

    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->id ? str[a->id].s : KX_STATS_OTHER, b->id ? str[b->id].s : KX_STATS_OTHER);
}

/* Merges dimension d over the range and keeps its top q->top. Under lock. */
static void collect_top(struct kx_stats *s, const struct stats_query *q, enum dim d,
                        struct stats_result *res)
{
    size_t nc = 0;
    uint64_t other = 0;

    for (int64_t m = q->first; m < q->end; m++) {
        const struct minute *b = ring(s, m);
        const struct dim_table *t = &b->dim[d];

        if (b->minute != m)
            continue;
        other += t->other;
        for (uint32_t i = 0; i < t->cap; i++) {
            uint32_t id = t->slot[i].id;

            if (!id)
                continue;
            if (!res->pos[id]) {
                res->cand[nc] = (struct top_cand){0, id};
                res->pos[id] = (uint32_t)++nc;
            }
            res->cand[res->pos[id] - 1].count += t->slot[i].count;
        }
    }
    if (other)
        res->cand[nc++] = (struct top_cand){other, 0};
    qsort_r(res->cand, nc, sizeof(*res->cand), top_cmp, s->str);
    for (size_t i = 0; i < nc; i++) {
        if (i < (size_t)q->top) {
            struct top_item *it = &res->top[d][res->ntop[d]++];
            it->count = res->cand[i].count;
            snprintf(it->name, sizeof(it->name), "%s",
                     res->cand[i].id ? s->str[res->cand[i].id].s : KX_STATS_OTHER);
        }
        if (res->cand[i].id)
            res->pos[res->cand[i].id] = 0;
    }
}

/* Fills res from the ring. Takes the lock. */
static void collect(struct kx_stats *s, const struct stats_query *q, struct stats_result *res)
{
    int64_t lo = (q->now_min - KX_STATS_MINUTES + 1) * NSEC_PER_MIN;

    pthread_mutex_lock(&s->lock);
    sweep(s, q->now_min);
    for (int64_t m = q->first; m < q->end; m++) {
        const struct minute *b = ring(s, m);
        uint64_t *row = res->series[(m - q->first) / q->bucket];

        if (b->minute != m)
            continue;
        for (int p = 0; p < KX_PRI_COUNT; p++) {
            row[p] += b->prio[p];
            res->prio[p] += b->prio[p];
        }
        res->audit += b->audit;
    }
    for (int d = 0; d < DIM_COUNT; d++)
        collect_top(s, q, (enum dim)d, res);
    res->complete_since = s->complete_since > lo ? s->complete_since : lo;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------- the answer */

/* "2026-11-24T10:00:00Z": whole seconds, as docs/api.md shows. */
static void time_str(int64_t ns, char out[32])
{
    kx_time_format(ns, out, 32);
    memcpy(out + 19, "Z", 2);
}

/* Appends to b unless an earlier append failed (*rc sticks). */
#define EMIT(rc, call)                                                                             \
    do {                                                                                           \
        if (*(rc) == 0)                                                                            \
            *(rc) = (call);                                                                        \
    } while (0)

static void emit_time(struct kx_buf *b, int *rc, const char *key, int64_t ns)
{
    char t[32];

    time_str(ns, t);
    EMIT(rc, kx_buf_printf(b, "\"%s\":\"%s\"", key, t));
}

static int render(struct kx_buf *b, const struct stats_query *q, const struct stats_result *res)
{
    uint64_t total = 0;
    int rc = 0;

    for (int p = 0; p < KX_PRI_COUNT; p++)
        total += res->prio[p];
    EMIT(&rc, kx_buf_append(b, "{", 1));
    emit_time(b, &rc, "since", q->first * NSEC_PER_MIN);
    EMIT(&rc, kx_buf_append(b, ",", 1));
    emit_time(b, &rc, "until", q->end * NSEC_PER_MIN);
    if (q->bucket % 60 == 0)
        EMIT(&rc, kx_buf_printf(b, ",\"bucket\":\"%lldh\"", (long long)(q->bucket / 60)));
    else if (q->bucket > 60)
        EMIT(&rc, kx_buf_printf(b, ",\"bucket\":\"%lldh%lldm\"", (long long)(q->bucket / 60),
                                (long long)(q->bucket % 60)));
    else
        EMIT(&rc, kx_buf_printf(b, ",\"bucket\":\"%lldm\"", (long long)q->bucket));
    EMIT(&rc, kx_buf_printf(b, ",\"total\":%llu,\"audit\":%llu,\"by_priority\":{",
                            (unsigned long long)total, (unsigned long long)res->audit));
    for (int p = 0; p < KX_PRI_COUNT; p++)
        EMIT(&rc, kx_buf_printf(b, "%s\"%s\":%llu", p ? "," : "", kx_priority_name(p),
                                (unsigned long long)res->prio[p]));
    EMIT(&rc, kx_buf_append(b, "},\"series\":[", 12));
    for (size_t i = 0; i < res->nseries; i++) {
        bool any = false;

        EMIT(&rc, kx_buf_append(b, i ? ",{" : "{", i ? 2 : 1));
        emit_time(b, &rc, "time", (q->first + (int64_t)i * q->bucket) * NSEC_PER_MIN);
        EMIT(&rc, kx_buf_append(b, ",\"counts\":{", 11));
        for (int p = 0; p < KX_PRI_COUNT; p++) {
            if (!res->series[i][p])
                continue;
            EMIT(&rc, kx_buf_printf(b, "%s\"%s\":%llu", any ? "," : "", kx_priority_name(p),
                                    (unsigned long long)res->series[i][p]));
            any = true;
        }
        EMIT(&rc, kx_buf_append(b, "}}", 2));
    }
    EMIT(&rc, kx_buf_append(b, "],\"top\":{", 9));
    for (int d = 0; d < DIM_COUNT; d++) {
        EMIT(&rc, kx_buf_printf(b, "%s\"%s\":[", d ? "," : "", dim_names[d]));
        for (size_t i = 0; i < res->ntop[d]; i++) {
            EMIT(&rc, kx_buf_append(b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8));
            EMIT(&rc, kx_buf_json_str(b, res->top[d][i].name));
            EMIT(&rc,
                 kx_buf_printf(b, ",\"count\":%llu}", (unsigned long long)res->top[d][i].count));
        }
        EMIT(&rc, kx_buf_append(b, "]", 1));
    }
    EMIT(&rc, kx_buf_append(b, "},", 2));
    emit_time(b, &rc, "complete_since", res->complete_since);
    EMIT(&rc, kx_buf_append(b, "}\n", 2));
    return rc;
}

static void reply_error(struct kx_http_resp *r, int status, const char *msg)
{
    r->status = status;
    r->content_type = "application/json";
    kx_buf_reset(&r->body);
    if (kx_buf_append(&r->body, "{\"error\":", 9) || kx_buf_json_str(&r->body, msg) ||
        kx_buf_append(&r->body, "}\n", 2))
        r->status = 500;
}

static void result_free(struct stats_result *res)
{
    if (!res)
        return;
    free(res->series);
    free(res->cand);
    free(res->pos);
    free(res);
}

void kx_api_stats(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    struct kx_stats *s = h->stats;
    struct stats_result *res = NULL;
    struct stats_query q;
    char err[512];

    if (!s) {
        reply_error(r, 503, "stats are not available: the hub's live feed is not running");
        return;
    }
    if (query_parse(req->query, s->now(), &q, err, sizeof(err)) < 0) {
        reply_error(r, 400, err);
        return;
    }
    /* Allocated outside the lock; the scratch is sized for every string. */
    if (!(res = calloc(1, sizeof(*res))) ||
        !(res->series = calloc((size_t)((q.end - q.first + q.bucket - 1) / q.bucket),
                               sizeof(*res->series))) ||
        !(res->cand = calloc(KX_STATS_STRINGS + 1, sizeof(*res->cand))) ||
        !(res->pos = calloc(KX_STATS_STRINGS + 1, sizeof(*res->pos)))) {
        result_free(res);
        reply_error(r, 503, "out of memory answering /api/v1/stats");
        return;
    }
    res->nseries = (size_t)((q.end - q.first + q.bucket - 1) / q.bucket);
    collect(s, &q, res);
    r->status = 200;
    r->content_type = "application/json";
    if (render(&r->body, &q, res) < 0)
        reply_error(r, 500, "cannot build the /api/v1/stats answer");
    result_free(res);
}
