/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.c - raw alerts in, accepted alerts out.
 *
 * All raw alerts, from sensors and from HTTP, pass through KLAXON_ALERTS and
 * one durable pull consumer shared by every hub replica (a work queue). For
 * each: validate, dedupe, publish to KLAXON_EVENTS with Nats-Msg-Id = uuid,
 * and only then ack. A crash anywhere before the ack means redelivery, and
 * the stream's duplicate window makes the second publish a no-op.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedupe.h"
#include "hub.h"
#include "log.h"
#include "util.h"

static pthread_t ingest_thread;
static bool ingest_started;
static natsSubscription *ingest_sub;  /* used only by kx-ingest after start */

static void event_subject(const struct kx_alert *a, char *buf, size_t len)
{
    char slug[100];
    kx_slug(a->rule, slug, sizeof(slug));
    snprintf(buf, len, KX_SUBJ_EVENTS ".%s.%s", kx_priority_slug(a->priority), slug);
}

/* Invalid input is stored on klaxon.deadletter.ingest with the reason, so
 * nothing a sensor sent disappears. 0 when stored (ack), <0 to retry. */
static int reject(struct kx_hub *h, natsMsg *msg, const char *reason)
{
    char err[256];
    int len = natsMsg_GetDataLength(msg);
    kx_metric_inc(h->metrics.rejected[len > KX_ALERT_MAX_BYTES ? KX_REJECT_TOO_LARGE
                                                               : KX_REJECT_INVALID]);
    kx_warn("ingest: rejected alert from %s: %s", natsMsg_GetSubject(msg), reason);
    int rc = kx_bus_publish(h->bus, KX_SUBJ_DEADLETTER ".ingest", natsMsg_GetData(msg),
                            (size_t)len, NULL, KX_HDR_REASON, reason, h->cfg.publish_timeout, err,
                            sizeof(err));
    if (rc < 0)
        kx_warn("ingest: cannot store rejected alert: %s", err);
    return rc < 0 ? rc : 0;
}

/*
 * Raw alerts whose event publish is in flight. The stream's ack arrives on a
 * nats.c thread, which acks (or naks) the raw alert right there, so kx-ingest
 * goes on with the next batch instead of waiting for this one's acks. A slot
 * is found by its uuid (the event's Nats-Msg-Id) in an open-addressing table
 * of twice the in-flight bound.
 */
struct inflight {
    natsMsg *raw;                    /* owned while in the table; NULL = free slot */
    int64_t since;                   /* monotonic ns of the publish */
    char uuid[KX_ALERT_UUID_LEN + 1];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t freed;            /* signalled when a slot empties */
    struct inflight *v;              /* cap slots, under lock */
    size_t cap, n, max;              /* max: in flight at most (cap / 2) */
    struct kx_hub *hub;
} fl = {.lock = PTHREAD_MUTEX_INITIALIZER, .freed = PTHREAD_COND_INITIALIZER};
static jsCtx *ingest_js;             /* own context: its async acks report to us */

static size_t fl_hash(const char *uuid)
{
    size_t h = 1469598103934665603ULL;
    for (; *uuid; uuid++)
        h = (h ^ (unsigned char)*uuid) * 1099511628211ULL;
    return h;
}

/* Under fl.lock: the slot holding uuid, or NULL. */
static struct inflight *fl_find(const char *uuid)
{
    for (size_t i = fl_hash(uuid) % fl.cap, k = 0; k < fl.cap; i = (i + 1) % fl.cap, k++) {
        if (!fl.v[i].raw)
            return NULL;
        if (strcmp(fl.v[i].uuid, uuid) == 0)
            return &fl.v[i];
    }
    return NULL;
}

/* Under fl.lock: empties a slot and re-inserts the probe chain after it,
 * so later lookups never stop at the hole (linear-probing delete). */
static void fl_remove(struct inflight *e)
{
    size_t i = (size_t)(e - fl.v);

    memset(e, 0, sizeof(*e));
    fl.n--;
    for (size_t j = (i + 1) % fl.cap; fl.v[j].raw; j = (j + 1) % fl.cap) {
        struct inflight moved = fl.v[j];
        size_t k = fl_hash(moved.uuid) % fl.cap;

        memset(&fl.v[j], 0, sizeof(fl.v[j]));
        while (fl.v[k].raw)
            k = (k + 1) % fl.cap;
        fl.v[k] = moved;
    }
    pthread_cond_signal(&fl.freed);
}

/* Settles a raw alert whose publish ended: stored -> ack, else nak. */
static void fl_settle(natsMsg *raw, bool stored)
{
    if (stored) {
        kx_metric_inc(fl.hub->metrics.accepted);
        natsMsg_Ack(raw, NULL);
    } else {
        kx_metric_inc(fl.hub->metrics.publish_errors);
        natsMsg_NakWithDelay(raw, 1000, NULL);
    }
    natsMsg_Destroy(raw);
}

/* Runs on a nats.c thread for every asynchronously published event. */
static void ingest_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    const char *id = NULL;
    natsMsg *raw = NULL;

    natsMsgHeader_Get(msg, KX_HDR_MSG_ID, &id);
    pthread_mutex_lock(&fl.lock);
    struct inflight *e = id ? fl_find(id) : NULL;
    if (e) {
        raw = e->raw;
        fl_remove(e);
    }
    pthread_mutex_unlock(&fl.lock);
    if (pae)
        kx_warn("ingest: event %s not stored: %s", id ? id : "?",
                pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    /* Not found: it timed out and was already handed back (nak); the
     * redelivery's publish is a duplicate the stream ignores. */
    if (raw)
        fl_settle(raw, pa != NULL);
    natsMsg_Destroy(msg);
}

/*
 * Takes raw into the in-flight table (ownership moves), waiting while the
 * table is full. Returns the slot's uuid copy; NULL if the hub is stopping.
 * Runs on kx-ingest.
 */
static bool fl_add(natsMsg *raw, const char *uuid)
{
    pthread_mutex_lock(&fl.lock);
    while (fl.n >= fl.max && !atomic_load(&fl.hub->stopping)) {
        struct timespec ts = kx_deadline_ts(100 * KX_NSEC_PER_MSEC);
        pthread_cond_timedwait(&fl.freed, &fl.lock, &ts);
    }
    bool ok = fl.n < fl.max && !fl_find(uuid);
    if (ok) {
        size_t i = fl_hash(uuid) % fl.cap;
        while (fl.v[i].raw)
            i = (i + 1) % fl.cap;
        fl.v[i].raw = raw;
        fl.v[i].since = kx_monotonic_ns();
        snprintf(fl.v[i].uuid, sizeof(fl.v[i].uuid), "%s", uuid);
        fl.n++;
    }
    pthread_mutex_unlock(&fl.lock);
    return ok;
}

/* Takes raw back out after a failed publish start. The callback may have
 * run already (then it settled raw): returns whether we got it back. */
static bool fl_take_back(const char *uuid)
{
    pthread_mutex_lock(&fl.lock);
    struct inflight *e = fl_find(uuid);
    bool got = e != NULL;
    if (e)
        fl_remove(e);
    pthread_mutex_unlock(&fl.lock);
    return got;
}

/*
 * Hands back every raw alert whose publish has gone unanswered for longer
 * than `older` ns (0 = all): nak, so it is redelivered and published again;
 * the stream's duplicate window makes a late store harmless. Runs on
 * kx-ingest.
 */
static void fl_expire(int64_t older)
{
    int64_t now = kx_monotonic_ns();
    size_t expired = 0;

    pthread_mutex_lock(&fl.lock);
    for (size_t i = 0; i < fl.cap; i++) {
        struct inflight *e = &fl.v[i];
        if (e->raw && (older == 0 || now - e->since > older)) {
            natsMsg *raw = e->raw;
            fl_remove(e);
            fl_settle(raw, false);
            expired++;
            i--; /* fl_remove may have moved another entry into slot i */
        }
    }
    pthread_mutex_unlock(&fl.lock);
    if (expired) {
        kx_warn("ingest: %zu events unconfirmed by the stream; their raw alerts will be retried",
                expired);
        /* nats.c keeps them pending too: drop them there as well */
        natsMsgList late = {0};
        if (js_PublishAsyncGetPendingList(&late, ingest_js) == NATS_OK)
            natsMsgList_Destroy(&late);
    }
}

/* Starts the asynchronous publish of an accepted alert to KLAXON_EVENTS;
 * raw moves to the in-flight table. 1 in flight, or a negative errno (raw
 * stays the caller's). */
static int publish_event(natsMsg *raw, const struct kx_alert *a, int64_t timeout)
{
    char subject[200];
    natsMsg *ev = NULL;
    char *tmp;
    size_t len = 0;
    const char *json = kx_alert_json(a, &len, &tmp);

    event_subject(a, subject, sizeof(subject));
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = a->uuid; /* a redelivered raw alert is stored once */
    po.MaxWait = timeout / KX_NSEC_PER_MSEC;
    natsStatus s = json ? natsMsg_Create(&ev, subject, NULL, json, (int)len) : NATS_NO_MEMORY;
    if (s == NATS_OK && !fl_add(raw, a->uuid))
        s = NATS_ILLEGAL_STATE; /* stopping, or this uuid is already in flight */
    else if (s == NATS_OK && (s = js_PublishMsgAsync(ingest_js, &ev, &po)) != NATS_OK &&
             !fl_take_back(a->uuid))
        s = NATS_OK; /* failed, but the callback already settled raw */
    natsMsg_Destroy(ev); /* no-op when the library took it */
    free(tmp);
    if (s != NATS_OK) {
        kx_warn("ingest: cannot publish event: %s", natsStatus_GetText(s));
        return kx_bus_errno(s) ? kx_bus_errno(s) : -EAGAIN;
    }
    return 1;
}

/*
 * Dedupes one parsed alert and starts the publish of an accepted one.
 * Returns 1 when the publish is in flight (raw moved to the in-flight
 * table), 0 when done (ack now), <0 to retry (nak). a stays the caller's.
 */
static int handle(struct kx_hub *h, natsMsg *msg, const struct kx_alert *a)
{
    bool accept = true;
    int rc;

    if ((rc = kx_dedupe_check(h->dedupe, a, &accept)) < 0 || !accept) {
        if (rc == 0)
            kx_metric_inc(h->metrics.deduped);
        return rc;
    }
    rc = publish_event(msg, a, h->cfg.publish_timeout);
    if (rc < 0)
        kx_metric_inc(h->metrics.publish_errors);
    return rc;
}

/* Acts on handle()'s verdict for raw alert i of the list; a raw alert in
 * flight is no longer the list's. */
static void conclude(natsMsgList *list, int i, int rc)
{
    if (rc == 1)
        list->Msgs[i] = NULL;
    else if (rc == 0)
        natsMsg_Ack(list->Msgs[i], NULL);
    else
        natsMsg_NakWithDelay(list->Msgs[i], 1000, NULL);
}

/* One fetched raw alert. */
struct item {
    struct kx_alert *alert;          /* owned; NULL when rejected */
    char key[KX_DEDUPE_KEY_LEN];
    int leader;                      /* index of the first alert with this key, or -1 */
};

/*
 * Handles a fetched batch. The first alert of each key in the batch (its
 * leader) gets its dedupe write sent together with the other leaders'
 * (kx_dedupe_check_many); the rest of that key's alerts (followers) are
 * counted in the same write. Only what that misses takes the one-by-one
 * path: kx_dedupe_check for a leader, kx_dedupe_add_repeats for followers,
 * one by one if their window ended meanwhile.
 */
static void process_batch(struct kx_hub *h, natsMsgList *list)
{
    char err[KX_ALERT_ERR_LEN];
    struct item *it = calloc((size_t)list->Count, sizeof(*it));
    int *verdict = calloc((size_t)list->Count, sizeof(*verdict));
    int *op_of = calloc((size_t)list->Count, sizeof(*op_of));
    struct kx_dedupe_op *ops = calloc((size_t)list->Count, sizeof(*ops));

    if (!it || !verdict || !op_of || !ops) {
        for (int i = 0; i < list->Count; i++)
            natsMsg_NakWithDelay(list->Msgs[i], 1000, NULL);
        goto out;
    }
    for (int i = 0; i < list->Count; i++) {
        natsMsg *m = list->Msgs[i];
        kx_metric_inc(h->metrics.received_nats);
        it[i].leader = -1;
        it[i].alert = kx_alert_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), err,
                                     sizeof(err));
        if (!it[i].alert) {
            conclude(list, i, reject(h, m, err));
            continue;
        }
        if (!h->dedupe)
            continue;
        kx_dedupe_key_of(h->dedupe, it[i].alert, it[i].key);
        for (int j = 0; j < i; j++) {
            if (it[j].alert && it[j].leader < 0 && strcmp(it[j].key, it[i].key) == 0) {
                it[i].leader = j;
                break;
            }
        }
    }
    /* Leaders and singles, in order; their first dedupe attempt is written
     * to NATS for the whole batch at once. */
    int nops = 0;
    if (h->dedupe) {
        for (int i = 0; i < list->Count; i++) {
            if (!it[i].alert || it[i].leader >= 0)
                continue;
            ops[nops].alert = it[i].alert;
            memcpy(ops[nops].key, it[i].key, sizeof(ops[nops].key));
            for (int j = i + 1; j < list->Count; j++)
                ops[nops].extra += it[j].alert && it[j].leader == i;
            kx_buf_init(&ops[nops].val, 2 * KX_ALERT_MAX_BYTES);
            op_of[i] = nops++;
        }
        kx_dedupe_check_many(h->dedupe, ops, (size_t)nops);
    }
    for (int i = 0; i < list->Count; i++) {
        if (!it[i].alert || it[i].leader >= 0)
            continue;
        int r = h->dedupe ? ops[op_of[i]].result : 1;
        if (r == 1) {
            verdict[i] = publish_event(list->Msgs[i], it[i].alert, h->cfg.publish_timeout);
            if (verdict[i] < 0)
                kx_metric_inc(h->metrics.publish_errors);
        } else if (r == 0) {
            kx_metric_inc(h->metrics.deduped);
            verdict[i] = 0;
        } else {
            verdict[i] = handle(h, list->Msgs[i], it[i].alert);
        }
        conclude(list, i, verdict[i]);
    }
    for (int k = 0; k < nops; k++)
        kx_buf_free(&ops[k].val);
    /* Followers: one counted update per key, after its leader. */
    for (int i = 0; i < list->Count; i++) {
        if (!it[i].alert || it[i].leader >= 0)
            continue;
        uint64_t n = ops[op_of[i]].extra; /* followers exist only with dedupe on */
        if (n == 0)
            continue;
        /* Counted with the leader's write: done, even if the leader's own
         * publish failed (recounting them on redelivery would double them). */
        int rc = ops[op_of[i]].counted ? 0
                 : verdict[i] < 0      ? verdict[i]
                                       : kx_dedupe_add_repeats(h->dedupe, it[i].key, n);
        for (int j = i + 1; j < list->Count; j++) {
            if (!it[j].alert || it[j].leader != i)
                continue;
            if (rc == -ESTALE) {
                conclude(list, j, handle(h, list->Msgs[j], it[j].alert));
            } else {
                if (rc == 0)
                    kx_metric_inc(h->metrics.deduped);
                conclude(list, j, rc);
            }
        }
    }
out:
    for (int i = 0; it && i < list->Count; i++)
        kx_alert_free(it[i].alert);
    free(it);
    free(verdict);
    free(op_of);
    free(ops);
}

/* Thread kx-ingest. */
static void *ingest_main(void *arg)
{
    struct kx_hub *h = arg;
    int64_t last_err_log = 0;

    pthread_setname_np(pthread_self(), "kx-ingest");
    while (!atomic_load(&h->stopping)) {
        natsMsgList list = {0};
        jsErrCode code = 0;
        natsStatus s = natsSubscription_Fetch(&list, ingest_sub, (int)h->cfg.fetch_batch, 500,
                                              &code);
        fl_expire(h->cfg.publish_timeout);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            if (kx_monotonic_ns() - last_err_log > 10 * KX_NSEC_PER_SEC) {
                kx_warn("ingest: fetch failed: %s (retrying)", natsStatus_GetText(s));
                last_err_log = kx_monotonic_ns();
            }
            usleep(250 * 1000);
            continue;
        }
        /* Finish the fetched batch even when stopping: each is acked,
         * nak'ed or in flight, so a shutdown never waits for AckWait. */
        process_batch(h, &list);
        natsMsgList_Destroy(&list);
    }
    /* Let the last publishes be confirmed, then hand back what is left. */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = h->cfg.publish_timeout / KX_NSEC_PER_MSEC;
    js_PublishAsyncComplete(ingest_js, &po);
    fl_expire(0);
    return NULL;
}

int kx_ingest_start(struct kx_hub *h, char *err, size_t errlen)
{
    struct kx_consumer_spec cs = {
        .stream = KX_STREAM_ALERTS,
        .durable = KX_HUB_DURABLE,
        .filter = KX_SUBJ_ALERTS ".>",
        .ack_wait = h->cfg.ack_wait,
        .max_deliver = -1,
        /* the fetched batch plus the in-flight table */
        .max_ack_pending = 6 * h->cfg.fetch_batch + 64,
    };
    jsSubOptions so;
    jsErrCode code = 0;
    int rc;

    if ((rc = kx_bus_ensure_consumer(h->bus, &cs, err, errlen)))
        return rc;
    /* in flight: up to 4 batches, so several are pipelined */
    fl.hub = h;
    fl.max = 4 * (size_t)h->cfg.fetch_batch;
    fl.cap = 2 * fl.max;
    fl.n = 0;
    if (!(fl.v = calloc(fl.cap, sizeof(*fl.v)))) {
        snprintf(err, errlen, "ingest: out of memory");
        return -ENOMEM;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = ingest_on_puback;
    jo.PublishAsync.MaxPending = (int64_t)fl.max;
    natsStatus js_s = natsConnection_JetStream(&ingest_js, h->bus->nc, &jo);
    if (js_s != NATS_OK) {
        snprintf(err, errlen, "ingest: cannot create JetStream context: %s",
                 natsStatus_GetText(js_s));
        return kx_bus_errno(js_s);
    }
    jsSubOptions_Init(&so);
    so.Stream = KX_STREAM_ALERTS;
    so.Consumer = KX_HUB_DURABLE;
    natsStatus s = js_PullSubscribe(&ingest_sub, h->bus->js, cs.filter, KX_HUB_DURABLE, NULL,
                                    &so, &code);
    if (s != NATS_OK) {
        snprintf(err, errlen, "ingest: cannot bind consumer %s: %s", KX_HUB_DURABLE,
                 natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    if ((rc = pthread_create(&ingest_thread, NULL, ingest_main, h))) {
        snprintf(err, errlen, "ingest: cannot start thread: %s", strerror(rc));
        return -rc;
    }
    ingest_started = true;
    return 0;
}

void kx_ingest_stop(struct kx_hub *h)
{
    if (ingest_started)
        pthread_join(ingest_thread, NULL);
    ingest_started = false;
    natsSubscription_Destroy(ingest_sub);
    ingest_sub = NULL;
    jsCtx_Destroy(ingest_js);
    ingest_js = NULL;
    free(fl.v);
    fl.v = NULL;
}

int kx_ingest_submit(struct kx_hub *h, const char *body, size_t len, char *uuid_out, char *err,
                     size_t errlen)
{
    char subject[160], host[80];
    struct kx_alert *a;
    int rc;

    kx_metric_inc(h->metrics.received_http);
    if (len > KX_ALERT_MAX_BYTES) {
        kx_metric_inc(h->metrics.rejected[KX_REJECT_TOO_LARGE]);
        snprintf(err, errlen, "alert is %zu bytes, over the %d byte limit", len,
                 KX_ALERT_MAX_BYTES);
        return -EINVAL;
    }
    if (!(a = kx_alert_parse(body, len, err, errlen))) {
        kx_metric_inc(h->metrics.rejected[KX_REJECT_INVALID]);
        return -EINVAL;
    }
    /* Re-serialize: the parse may have added the uuid the ingest path and
     * Nats-Msg-Id rely on. */
    char *json = kx_alert_to_json(a);
    if (!json) {
        kx_alert_free(a);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* The publish below runs on the HTTP thread: while NATS is away, answer
     * 503 at once instead of stalling every request (health, metrics) for
     * publish_timeout. The sender may retry; nothing was stored. */
    if (!kx_bus_connected(h->bus)) {
        free(json);
        kx_alert_free(a);
        kx_metric_inc(h->metrics.publish_errors);
        snprintf(err, errlen, "NATS is not connected; the alert was not stored, retry later");
        return -ENOTCONN;
    }
    kx_slug(a->hostname[0] ? a->hostname : "http", host, sizeof(host));
    snprintf(subject, sizeof(subject), KX_SUBJ_ALERTS ".%s", host);
    rc = kx_bus_publish(h->bus, subject, json, strlen(json), a->uuid, NULL, NULL,
                        h->cfg.publish_timeout, err, errlen);
    if (rc >= 0) {
        snprintf(uuid_out, KX_ALERT_UUID_LEN + 1, "%s", a->uuid);
        rc = 0;
    } else {
        kx_metric_inc(h->metrics.publish_errors);
    }
    free(json);
    kx_alert_free(a);
    return rc;
}
