/* SPDX-License-Identifier: Apache-2.0 */
/*
 * live.c - the live feed behind GET /ws and /api/v1/stats (see live.h).
 *
 * One ordered push consumer per hub follows KLAXON_EVENTS; nats.c calls
 * live_on_msg on its delivery thread for each event, in stream order.
 * Each event is parsed once, counted in h->stats, and, once the back-fill
 * is over, put in a ring of at most http.ws_buffer events (and
 * LIVE_RING_BYTES of text). WebSocket clients are a filter and an absolute
 * position in that ring: on each wake-up the kx-http thread asks every
 * client for a frame, and live_ws_writeable packs the events it has not
 * seen and wants into one message. A client the ring has overtaken is
 * moved to the oldest event still held and told how many it missed
 * ("skipped"), or closed when http.ws_slow is "drop"; either way it never
 * holds more than its position, so slow clients cost no memory.
 *
 * Locking: lock guards the ring (ring, head, tail, bytes, last_seq) and
 * the uuid index; the producer holds it only to swap an entry, the loop
 * while it packs one frame.
 */
#include "live.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "bus.h"
#include "filter.h"
#include "log.h"
#include "stats.h"

#define LIVE_RING_BYTES (64u << 20)  /* event text held for clients, at most */
#define LIVE_FRAME_BYTES (64u << 10) /* one "events" message, about */
#define LIVE_FRAME_EVENTS 512
#define LIVE_CTL_MAX 8                               /* control messages queued per client */
#define LIVE_INDEX_BITS 17                           /* uuid -> seq slots (a lossy cache) */
#define LIVE_WINDOW_NS (24 * 3600 * KX_NSEC_PER_SEC) /* stats back-fill */
#define LIVE_HEARTBEAT_NS (1 * KX_NSEC_PER_SEC)
#define LIVE_PENDING_MSGS 65536 /* nats.c buffer before the callback */
#define LIVE_PENDING_BYTES (256 << 20)

struct live_ev {
    uint64_t seq;       /* KLAXON_EVENTS stream sequence */
    unsigned kind;      /* KX_FILTER_ALERT or KX_FILTER_AUDIT */
    struct kx_alert *a; /* owned: parsed once, matched by every client */
    char *json;         /* owned: the stored text */
    size_t len;
};

/*
 * Clients at the same position with the same filter (most often: none)
 * want the same frame; the last one packed is kept so the next such
 * client copies it instead of matching and printing every event again.
 * Ring entries never change while held, so it stays right as long as the
 * ring still holds its first event.
 */
struct live_frame {
    bool valid;
    uint64_t pos, end;  /* ring indexes it covers: [pos, end) */
    uint64_t seen_seq;  /* stream sequence of the event at end - 1 */
    uint64_t fkey;      /* the filter's hash (live_client.fkey) */
    int n;              /* events in it; 0: none in [pos, end) matched */
    struct kx_buf text; /* the whole message */
};

struct live_slot {
    uint64_t hash; /* of the uuid; 0 = empty */
    uint64_t seq;
};

struct kx_live {
    struct kx_hub *h;      /* borrowed */
    natsSubscription *sub; /* owned */
    pthread_mutex_t lock;
    struct live_ev *ring; /* owned, cap entries (lock) */
    size_t cap;
    uint64_t head, tail;         /* absolute indexes: [tail, head) are held (lock) */
    size_t bytes;                /* text held (lock) */
    uint64_t last_seq;           /* newest stream sequence seen (lock) */
    uint64_t live_from;          /* events after this sequence go to the ring */
    bool cut;                    /* back-fill started short of 24 h */
    bool cut_noted;              /* (nats thread) */
    bool drop_slow;              /* http.ws_slow == "drop" */
    struct live_client *clients; /* open WebSocket clients (kx-http thread only) */
    struct live_frame last;      /* the last frame packed (kx-http thread only) */
    struct live_slot index[1u << LIVE_INDEX_BITS]; /* (lock) */
};

struct live_client {
    struct kx_live *l;               /* borrowed */
    struct kx_ws *ws;                /* the connection, once open */
    struct live_client *prev, *next; /* kx_live.clients */
    struct kx_filter f;              /* owned */
    uint64_t pos;                    /* next ring index to look at */
    uint64_t fkey;                   /* hash of the normalized filter: same key, same frames */
    uint64_t seen_seq;               /* stream sequence of the last event looked at */
    bool hello_sent;
    bool killed;             /* dropped for being slow, close() pending */
    char *ctl[LIVE_CTL_MAX]; /* owned: control messages to send first */
    int nctl;
};

/* (lock) The index slot of uuid; *hash gets the uuid's hash (never 0,
 * which marks an empty slot). */
static struct live_slot *live_slot_of(struct kx_live *l, const char *uuid, uint64_t *hash)
{
    uint64_t h = kx_hash64(uuid, strlen(uuid), 0x6b6c61786f6eULL);

    *hash = h ? h : 1;
    return &l->index[*hash & ((1u << LIVE_INDEX_BITS) - 1)];
}

/* (lock) */
static void live_evict_oldest(struct kx_live *l)
{
    struct live_ev *ev = &l->ring[l->tail % l->cap];

    l->bytes -= ev->len;
    kx_alert_free(ev->a);
    free(ev->json);
    memset(ev, 0, sizeof(*ev));
    l->tail++;
}

/* nats.c delivery thread: one event of KLAXON_EVENTS, in stream order. */
static void live_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    struct kx_live *l = closure;
    struct kx_hub *h = l->h;
    jsMsgMetaData *meta = NULL;
    char err[KX_ALERT_ERR_LEN];
    const char *data = natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    struct kx_alert *a;
    uint64_t seq;
    char *json = NULL;
    unsigned kind;

    (void)nc, (void)sub;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        natsMsg_Destroy(m);
        return;
    }
    seq = meta->Sequence.Stream;
    if (l->cut && !l->cut_noted) {
        kx_stats_set_complete_since(h->stats, meta->Timestamp);
        l->cut_noted = true;
    }
    jsMsgMetaData_Destroy(meta);

    a = kx_alert_parse(data, len, err, sizeof(err));
    if (!a) {
        /* Ingest validated it; only a foreign publisher can get here. */
        kx_debug("live: event %" PRIu64 " is not an alert: %s", seq, err);
        natsMsg_Destroy(m);
        return;
    }
    kind = kx_alert_is_audit(a) ? KX_FILTER_AUDIT : KX_FILTER_ALERT;
    kx_stats_add(h->stats, a);
    if (seq > l->live_from && (json = malloc(len + 1)) != NULL) {
        memcpy(json, data, len);
        json[len] = '\0';
    }
    natsMsg_Destroy(m);

    pthread_mutex_lock(&l->lock);
    if (seq > l->last_seq)
        l->last_seq = seq;
    if (kind == KX_FILTER_ALERT) {
        uint64_t hh;
        struct live_slot *slot = live_slot_of(l, a->uuid, &hh);

        slot->hash = hh;
        slot->seq = seq;
    }
    if (json) {
        struct live_ev *ev;

        while (l->head > l->tail &&
               (l->head - l->tail >= l->cap || l->bytes + len > LIVE_RING_BYTES))
            live_evict_oldest(l);
        ev = &l->ring[l->head % l->cap];
        *ev = (struct live_ev){.seq = seq, .kind = kind, .a = a, .json = json, .len = len};
        l->bytes += len;
        l->head++;
        a = NULL;
        kx_metric_inc(h->metrics.live_events);
    }
    pthread_mutex_unlock(&l->lock);
    kx_alert_free(a);
    if (json)
        kx_http_wake(h->http);
}

bool kx_live_lookup(struct kx_live *l, const char *uuid, uint64_t *seq)
{
    const struct live_slot *slot;
    uint64_t hh;
    bool found;

    if (!l || !uuid)
        return false;
    pthread_mutex_lock(&l->lock);
    slot = live_slot_of(l, uuid, &hh);
    found = slot->hash == hh;
    if (found)
        *seq = slot->seq;
    pthread_mutex_unlock(&l->lock);
    return found;
}

/*
 * The sequence of the first event at or after t (last + 1 when none): a
 * throw-away consumer that starts by time tells. The ordered consumer then
 * starts by sequence, because nats.c cannot recreate an ordered consumer
 * that was made by start time (after a NATS restart it keeps failing).
 */
static uint64_t live_seq_at(struct kx_hub *h, int64_t t, const jsStreamState *st)
{
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    jsMsgMetaData *meta = NULL;
    jsSubOptions so;
    uint64_t seq = st->LastSeq + 1;

    /* Nothing at or after t (an empty stream too): no consumer to wait on. */
    if (st->Msgs == 0 || st->LastTime < t)
        return seq;
    if (st->FirstTime >= t)
        return st->FirstSeq;
    jsSubOptions_Init(&so);
    so.Stream = KX_STREAM_EVENTS;
    so.Config.DeliverPolicy = js_DeliverByStartTime;
    so.Config.OptStartTime = t;
    so.Config.AckPolicy = js_AckNone;
    so.Config.MemoryStorage = true;
    so.Config.InactiveThreshold = 10 * KX_NSEC_PER_SEC;
    if (js_PullSubscribe(&sub, h->bus->js, KX_SUBJ_EVENTS ".>", NULL, NULL, &so, NULL) == NATS_OK &&
        natsSubscription_Fetch(&list, sub, 1, 2000, NULL) == NATS_OK && list.Count > 0 &&
        natsMsg_GetMetaData(&meta, list.Msgs[0]) == NATS_OK)
        seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    natsMsgList_Destroy(&list);
    if (sub)
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return seq;
}

int kx_live_start(struct kx_hub *h, char *err, size_t errlen)
{
    struct kx_live *l = calloc(1, sizeof(*l));
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsSubOptions so;
    jsOptions jo;
    natsStatus st;
    int64_t now = kx_now_ns();

    if (!l || !(l->ring = calloc((size_t)h->cfg.http_ws_buffer, sizeof(*l->ring)))) {
        free(l);
        snprintf(err, errlen, "live feed: out of memory");
        return -ENOMEM;
    }
    l->h = h;
    l->cap = (size_t)h->cfg.http_ws_buffer;
    l->drop_slow = h->cfg.http_ws_slow && strcmp(h->cfg.http_ws_slow, "drop") == 0;
    pthread_mutex_init(&l->lock, NULL);
    kx_buf_init(&l->last.text, KX_WS_TX_MAX);

    jsOptions_Init(&jo);
    jo.Wait = 5000;
    st = js_GetStreamInfo(&si, h->bus->js, KX_STREAM_EVENTS, &jo, &jerr);
    if (st != NATS_OK) {
        snprintf(err, errlen, "live feed: cannot read stream %s: %s (%d)", KX_STREAM_EVENTS,
                 natsStatus_GetText(st), (int)jerr);
        goto fail;
    }
    l->live_from = l->last_seq = si->State.LastSeq;

    /* Count the last 24 h, but read at most KX_LIVE_BACKFILL_MAX events to
     * do so: past that, start by sequence and say where counts begin. */
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Stream = KX_STREAM_EVENTS;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    /* A lost consumer (NATS restarted) shows as missed heartbeats, after
     * which nats.c recreates it from the last sequence seen: keep that
     * short. */
    so.Config.Heartbeat = LIVE_HEARTBEAT_NS;
    so.Config.OptStartSeq = live_seq_at(h, now - LIVE_WINDOW_NS, &si->State);
    if (si->State.LastSeq >= KX_LIVE_BACKFILL_MAX &&
        so.Config.OptStartSeq < si->State.LastSeq - KX_LIVE_BACKFILL_MAX + 1) {
        l->cut = true;
        so.Config.OptStartSeq = si->State.LastSeq - KX_LIVE_BACKFILL_MAX + 1;
    } else {
        kx_stats_set_complete_since(h->stats, now - LIVE_WINDOW_NS);
    }
    jsStreamInfo_Destroy(si);
    si = NULL;
    st = js_Subscribe(&l->sub, h->bus->js, KX_SUBJ_EVENTS ".>", live_on_msg, l, &jo, &so, &jerr);
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits(l->sub, LIVE_PENDING_MSGS, LIVE_PENDING_BYTES);
    if (st != NATS_OK) {
        snprintf(err, errlen, "live feed: cannot follow %s: %s (%d)", KX_STREAM_EVENTS,
                 natsStatus_GetText(st), (int)jerr);
        goto fail;
    }
    h->live = l;
    return 0;
fail:
    jsStreamInfo_Destroy(si);
    natsSubscription_Destroy(l->sub);
    pthread_mutex_destroy(&l->lock);
    free(l->ring);
    free(l);
    return -EIO;
}

void kx_live_stop(struct kx_hub *h)
{
    struct kx_live *l = h->live;

    if (!l)
        return;
    natsSubscription_Unsubscribe(l->sub);
    natsSubscription_Destroy(l->sub); /* waits for a callback in progress */
    while (l->head > l->tail)
        live_evict_oldest(l);
    kx_buf_free(&l->last.text);
    pthread_mutex_destroy(&l->lock);
    free(l->ring);
    free(l);
    h->live = NULL;
}

/* --- WebSocket clients (kx-http thread) -------------------------------- */

/* Queues one control message (a cJSON object, consumed). */
static void live_ctl(struct live_client *c, cJSON *msg)
{
    char *s = msg ? cJSON_PrintUnformatted(msg) : NULL;

    cJSON_Delete(msg);
    if (!s)
        return;
    if (c->nctl == LIVE_CTL_MAX) {
        /* A client flooding us with messages loses the oldest answers. */
        free(c->ctl[0]);
        memmove(c->ctl, c->ctl + 1, sizeof(c->ctl[0]) * (LIVE_CTL_MAX - 1));
        c->nctl--;
    }
    c->ctl[c->nctl++] = s;
}

static cJSON *live_typed(const char *type)
{
    cJSON *o = cJSON_CreateObject();

    if (o && !cJSON_AddStringToObject(o, "type", type)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void live_ctl_error(struct live_client *c, const char *why)
{
    cJSON *o = live_typed("error");

    if (o)
        cJSON_AddStringToObject(o, "error", why);
    live_ctl(c, o);
}

static void live_ctl_filter(struct live_client *c, const char *type, uint64_t seq, bool with_seq)
{
    cJSON *o = live_typed(type), *f = kx_filter_to_json(&c->f);

    if (o && with_seq)
        cJSON_AddNumberToObject(o, "seq", (double)seq);
    if (o && f)
        cJSON_AddItemToObject(o, "filter", f);
    else
        cJSON_Delete(f);
    live_ctl(c, o);
}

/* The filter's identity, from its normalized form. */
static uint64_t live_filter_key(const struct kx_filter *f)
{
    cJSON *j = kx_filter_to_json(f);
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    uint64_t k = s ? kx_hash64(s, strlen(s), 0) : 0;

    cJSON_Delete(j);
    cJSON_free(s);
    return k; /* 0 (out of memory) never matches: see live_ws_writeable */
}

void kx_live_ws_open(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    struct live_client *c;
    char err[256];

    if (!h->live) {
        r->status = 503;
        kx_buf_printf(&r->body, "{\"error\":\"the live feed is not running\"}");
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        r->status = 503;
        kx_buf_printf(&r->body, "{\"error\":\"out of memory\"}");
        return;
    }
    if (kx_filter_from_query(&c->f, req->query, KX_FILTER_Q_WS, kx_now_ns(), err, sizeof(err)) <
        0) {
        kx_filter_free(&c->f);
        free(c);
        r->status = 400;
        kx_buf_reset(&r->body);
        kx_buf_append(&r->body, "{\"error\":", 9);
        kx_buf_json_str(&r->body, err);
        kx_buf_append(&r->body, "}", 1);
        return;
    }
    c->l = h->live;
    c->fkey = live_filter_key(&c->f);
    pthread_mutex_lock(&c->l->lock);
    c->pos = c->l->head; /* from now on */
    c->seen_seq = c->l->last_seq;
    pthread_mutex_unlock(&c->l->lock);
    atomic_fetch_add(&h->metrics.ws_clients, 1);
    kx_info("ws: client %s connected (%s)", req->peer, req->query[0] ? "filtered" : "everything");
    r->ws_conn = c;
}

static void live_ws_open(void *ctx, void *conn, struct kx_ws *ws)
{
    struct live_client *c = conn;

    (void)ctx;
    c->ws = ws;
    c->next = c->l->clients;
    if (c->next)
        c->next->prev = c;
    c->l->clients = c;
}

static void live_ws_message(void *ctx, void *conn, const char *data, size_t len)
{
    struct live_client *c = conn;
    cJSON *msg = cJSON_ParseWithLength(data, len), *f;
    struct kx_filter nf = {0};
    char err[256];

    (void)ctx;
    if (!msg || !cJSON_IsObject(msg)) {
        live_ctl_error(c, "want a JSON object like {\"filter\":{...}}");
        goto out;
    }
    for (cJSON *k = msg->child; k; k = k->next) {
        if (strcmp(k->string, "filter") != 0) {
            snprintf(err, sizeof(err), "unknown key \"%.64s\" (want filter)", k->string);
            live_ctl_error(c, err);
            goto out;
        }
    }
    f = cJSON_GetObjectItemCaseSensitive(msg, "filter");
    if (!f || !cJSON_IsObject(f)) {
        live_ctl_error(c, "\"filter\" must be an object");
        goto out;
    }
    if (kx_filter_from_json(&nf, f, err, sizeof(err)) < 0) {
        kx_filter_free(&nf);
        live_ctl_error(c, err);
        goto out;
    }
    kx_filter_free(&c->f);
    c->f = nf;
    c->fkey = live_filter_key(&c->f);
    live_ctl_filter(c, "filter", 0, false);
out:
    cJSON_Delete(msg);
}

/* (lock) Appends the events c wants from its position on, up to one
 * frame. Returns how many. */
static int live_pack(struct live_client *c, struct kx_buf *out)
{
    struct kx_live *l = c->l;
    int n = 0;

    while (c->pos < l->head && n < LIVE_FRAME_EVENTS && out->len < LIVE_FRAME_BYTES) {
        const struct live_ev *ev = &l->ring[c->pos % l->cap];

        c->pos++;
        c->seen_seq = ev->seq;
        if (!(c->f.kinds & ev->kind) || !kx_filter_match(&c->f, ev->a))
            continue;
        if (kx_buf_printf(out, "%s{\"seq\":%" PRIu64 ",\"kind\":\"%s\",\"alert\":", n ? "," : "",
                          ev->seq, ev->kind == KX_FILTER_AUDIT ? "audit" : "alert") < 0 ||
            kx_buf_append(out, ev->json, ev->len) < 0 || kx_buf_append(out, "}", 1) < 0) {
            c->pos--; /* no room: it goes first in the next frame */
            break;
        }
        n++;
    }
    return n;
}

static int live_ws_writeable(void *ctx, void *conn, struct kx_buf *out)
{
    struct kx_hub *h = ctx;
    struct live_client *c = conn;
    struct kx_live *l = c->l;
    size_t start = out->len;
    int n;

    if (!c->hello_sent) {
        c->hello_sent = true;
        live_ctl_filter(c, "hello", c->seen_seq, true);
    }
    if (c->nctl > 0) {
        int rc = kx_buf_append(out, c->ctl[0], strlen(c->ctl[0]));

        free(c->ctl[0]);
        memmove(c->ctl, c->ctl + 1, sizeof(c->ctl[0]) * (size_t)(LIVE_CTL_MAX - 1));
        c->nctl--;
        return rc < 0 ? 0 : 1;
    }

    pthread_mutex_lock(&l->lock);
    if (c->pos < l->tail) {
        uint64_t missed = l->tail - c->pos, from = c->seen_seq + 1,
                 to = l->ring[l->tail % l->cap].seq - 1;

        c->pos = l->tail;
        c->seen_seq = to;
        pthread_mutex_unlock(&l->lock);
        if (l->drop_slow) {
            c->killed = true;
            atomic_fetch_add(&h->metrics.ws_dropped, 1);
            kx_buf_printf(out, "too slow: %" PRIu64 " events behind", missed);
            return -1;
        }
        atomic_fetch_add(&h->metrics.ws_skipped, missed);
        kx_buf_printf(out,
                      "{\"type\":\"skipped\",\"missed\":%" PRIu64 ",\"from\":%" PRIu64
                      ",\"to\":%" PRIu64 "}",
                      missed, from, to);
        return 1;
    }
    if (l->last.valid && l->last.pos == c->pos && l->last.fkey == c->fkey && c->fkey &&
        l->tail <= l->last.pos) {
        pthread_mutex_unlock(&l->lock);
        c->pos = l->last.end;
        c->seen_seq = l->last.seen_seq;
        if (l->last.n == 0)
            return 0;
        return kx_buf_append(out, l->last.text.data, l->last.text.len) < 0 ? -1 : 1;
    }
    l->last.valid = false;
    l->last.pos = c->pos;
    kx_buf_append(out, "{\"type\":\"events\",\"events\":[", 27);
    n = live_pack(c, out);
    pthread_mutex_unlock(&l->lock);
    if (n > 0 && kx_buf_append(out, "]}", 2) < 0)
        return -1;
    kx_buf_reset(&l->last.text);
    if (c->pos > l->last.pos &&
        (n == 0 || kx_buf_append(&l->last.text, out->data + start, out->len - start) == 0)) {
        l->last.valid = true;
        l->last.end = c->pos;
        l->last.seen_seq = c->seen_seq;
        l->last.fkey = c->fkey;
        l->last.n = n;
    }
    if (n == 0) {
        out->len = start;
        out->data[start] = '\0';
        return 0;
    }
    return 1;
}

static void live_ws_close(void *ctx, void *conn)
{
    struct kx_hub *h = ctx;
    struct live_client *c = conn;

    if (c->ws) {
        if (c->prev)
            c->prev->next = c->next;
        else
            c->l->clients = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    kx_filter_free(&c->f);
    for (int i = 0; i < c->nctl; i++)
        free(c->ctl[i]);
    free(c);
    atomic_fetch_sub(&h->metrics.ws_clients, 1);
}

/*
 * A client whose socket is full gets no writeable() call, so with
 * ws_slow "drop" the ring's overtaking it is noticed here, on each wake.
 */
static void live_drop_overtaken(struct kx_hub *h, struct kx_live *l)
{
    uint64_t tail;

    pthread_mutex_lock(&l->lock);
    tail = l->tail;
    pthread_mutex_unlock(&l->lock);
    for (struct live_client *c = l->clients; c; c = c->next) {
        if (c->pos < tail && !c->killed) {
            c->killed = true;
            atomic_fetch_add(&h->metrics.ws_dropped, 1);
            kx_info("ws: dropping a client that stopped reading (%" PRIu64 " events behind)",
                    tail - c->pos);
            kx_ws_kill(c->ws);
        }
    }
}

static void live_ws_wake(void *ctx)
{
    struct kx_hub *h = ctx;

    if (h->live && h->live->drop_slow)
        live_drop_overtaken(h, h->live);
    kx_http_ws_writeable_all(h->http);
}

const struct kx_ws_ops kx_live_ws_ops = {
    .open = live_ws_open,
    .message = live_ws_message,
    .writeable = live_ws_writeable,
    .close = live_ws_close,
    .wake = live_ws_wake,
};
