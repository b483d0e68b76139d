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

/* One raw alert of the batch being processed by kx-ingest. */
struct pending {
    natsMsg *raw;                    /* borrowed from the fetched list */
    char uuid[KX_ALERT_UUID_LEN + 1];
    int state;                       /* 0 waiting for the stream ack, 1 stored, -1 failed */
};

/* The batch in flight; results written by nats.c's ack thread under lock. */
static struct {
    pthread_mutex_t lock;
    struct pending *v;               /* fetch_batch entries */
    int n;
} batch = {.lock = PTHREAD_MUTEX_INITIALIZER};
static jsCtx *ingest_js;             /* own context: its async acks report to us */

/* Runs on a nats.c thread for every asynchronously published event. */
static void ingest_on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
    const char *id = NULL;
    natsMsgHeader_Get(msg, KX_HDR_MSG_ID, &id);
    pthread_mutex_lock(&batch.lock);
    for (int i = 0; id && i < batch.n; i++) {
        if (batch.v[i].state == 0 && strcmp(batch.v[i].uuid, id) == 0) {
            batch.v[i].state = pa ? 1 : -1;
            if (pae)
                kx_warn("ingest: event %s not stored: %s", id,
                        pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
            break;
        }
    }
    pthread_mutex_unlock(&batch.lock);
    natsMsg_Destroy(msg);
}

/* Starts the asynchronous publish of an accepted alert to KLAXON_EVENTS.
 * 1 in flight, or a negative errno. */
static int publish_event(natsMsg *msg, const struct kx_alert *a, struct pending *p,
                         int64_t timeout)
{
    char subject[200];
    natsMsg *ev = NULL;

    char *json = kx_alert_to_json(a);
    event_subject(a, subject, sizeof(subject));
    snprintf(p->uuid, sizeof(p->uuid), "%s", a->uuid);
    p->raw = msg;
    p->state = 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = p->uuid; /* a redelivered raw alert is stored once */
    po.MaxWait = timeout / KX_NSEC_PER_MSEC;
    natsStatus s = json ? natsMsg_Create(&ev, subject, NULL, json, (int)strlen(json))
                        : NATS_NO_MEMORY;
    if (s == NATS_OK)
        s = js_PublishMsgAsync(ingest_js, &ev, &po);
    natsMsg_Destroy(ev); /* no-op when the library took it */
    free(json);
    if (s != NATS_OK) {
        kx_warn("ingest: cannot publish event: %s", natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    return 1;
}

/*
 * Dedupes one parsed alert and starts the publish of an accepted one.
 * Returns 1 when the publish is in flight (the raw alert's ack waits for its
 * result), 0 when done (ack now), <0 to retry (nak). a stays the caller's.
 */
static int handle(struct kx_hub *h, natsMsg *msg, const struct kx_alert *a, struct pending *p)
{
    bool accept = true;
    int rc;

    if ((rc = kx_dedupe_check(h->dedupe, a, &accept)) < 0 || !accept) {
        if (rc == 0)
            kx_metric_inc(h->metrics.deduped);
        return rc;
    }
    rc = publish_event(msg, a, p, h->cfg.publish_timeout);
    if (rc < 0)
        kx_metric_inc(h->metrics.publish_errors);
    return rc;
}

/* Acts on handle()'s verdict for one raw alert. */
static void conclude(natsMsg *m, int rc, const struct pending *p)
{
    if (rc == 1) {
        pthread_mutex_lock(&batch.lock);
        batch.v[batch.n++] = *p;
        pthread_mutex_unlock(&batch.lock);
    } else if (rc == 0) {
        natsMsg_Ack(m, NULL);
    } else {
        natsMsg_NakWithDelay(m, 1000, NULL);
    }
}

/* Second half: wait for the stream's acks of the batch, then ack or nak
 * every raw alert whose event publish was started. */
static void settle_batch(struct kx_hub *h)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = h->cfg.publish_timeout / KX_NSEC_PER_MSEC;
    if (js_PublishAsyncComplete(ingest_js, &po) != NATS_OK) {
        /* Unanswered publishes: take them back; their raw alerts are
         * redelivered and the Nats-Msg-Id makes a late store harmless. */
        natsMsgList late = {0};
        if (js_PublishAsyncGetPendingList(&late, ingest_js) == NATS_OK)
            natsMsgList_Destroy(&late);
    }
    pthread_mutex_lock(&batch.lock);
    for (int i = 0; i < batch.n; i++) {
        struct pending *p = &batch.v[i];
        if (p->state == 1) {
            kx_metric_inc(h->metrics.accepted);
            natsMsg_Ack(p->raw, NULL);
        } else {
            kx_metric_inc(h->metrics.publish_errors);
            natsMsg_NakWithDelay(p->raw, 1000, NULL);
        }
    }
    batch.n = 0;
    pthread_mutex_unlock(&batch.lock);
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
            conclude(m, reject(h, m, err), NULL);
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
        struct pending p = {0};
        if (!it[i].alert || it[i].leader >= 0)
            continue;
        int r = h->dedupe ? ops[op_of[i]].result : 1;
        if (r == 1) {
            verdict[i] = publish_event(list->Msgs[i], it[i].alert, &p, h->cfg.publish_timeout);
            if (verdict[i] < 0)
                kx_metric_inc(h->metrics.publish_errors);
        } else if (r == 0) {
            kx_metric_inc(h->metrics.deduped);
            verdict[i] = 0;
        } else {
            verdict[i] = handle(h, list->Msgs[i], it[i].alert, &p);
        }
        conclude(list->Msgs[i], verdict[i], &p);
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
            struct pending p = {0};
            if (rc == -ESTALE) {
                conclude(list->Msgs[j], handle(h, list->Msgs[j], it[j].alert, &p), &p);
            } else {
                if (rc == 0)
                    kx_metric_inc(h->metrics.deduped);
                conclude(list->Msgs[j], rc, &p);
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
        /* Finish the fetched batch even when stopping: each is acked or
         * nak'ed, so a shutdown never waits for AckWait. */
        process_batch(h, &list);
        settle_batch(h);
        natsMsgList_Destroy(&list);
    }
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
        .max_ack_pending = 4 * h->cfg.fetch_batch + 64,
    };
    jsSubOptions so;
    jsErrCode code = 0;
    int rc;

    if ((rc = kx_bus_ensure_consumer(h->bus, &cs, err, errlen)))
        return rc;
    if (!(batch.v = calloc((size_t)h->cfg.fetch_batch, sizeof(*batch.v)))) {
        snprintf(err, errlen, "ingest: out of memory");
        return -ENOMEM;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = ingest_on_puback;
    jo.PublishAsync.MaxPending = h->cfg.fetch_batch;
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
    free(batch.v);
    batch.v = NULL;
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
