/* SPDX-License-Identifier: Apache-2.0 */
/*
 * query.c - reading accepted alerts and audit records back out of the
 * streams, newest first: GET /api/v1/alerts, /api/v1/alerts/{uuid},
 * /api/v1/audit (docs/api.md).
 *
 * The streams are the only store, so a query is a bounded scan:
 *  1. stream info gives the first and last sequence;
 *  2. since/until become a sequence range by binary search on the stream's
 *     own timestamps (a few dozen direct gets), with slack for clocks and
 *     late arrivals, since the filter itself tests the alert's "time";
 *  3. windows [lo, hi) are read backwards from the top (or the cursor), each
 *     through a short-lived ephemeral pull consumer (no acks, memory
 *     storage, no filter subject), growing geometrically, so a page of
 *     recent alerts costs a few hundred messages and a selective filter
 *     still gets far;
 *  4. a message is parsed only when a cheap test on its subject and raw
 *     text leaves it a chance, and replies carry the stored text as is.
 * At most SCAN_BUDGET messages per request: past that the page says
 * "truncated" and its "next" cursor continues below what was read.
 *
 * Everything here runs on a kx-http-w worker thread, never the HTTP loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "alert.h"
#include "bus.h"
#include "filter.h"
#include "live.h"
#include "log.h"
#include "query.h"
#include "util.h"

#define SCAN_BUDGET 200000 /* messages read per request, at most */
#define WINDOW_MIN 256     /* first backwards window, at least */
#define WINDOW_MAX 50000   /* and at most: one consumer's worth */
#define FETCH_BATCH 1024
#define NATS_WAIT_MS 3000                /* one JetStream API call or fetch */
#define QUERY_TIME (5 * KX_NSEC_PER_SEC) /* past this, a page ends as truncated */
#define BODY_MAX (32u << 20)             /* stored alert text in one reply (HTTP allows 64 MiB) */
#define TRAIL_MAX 1000                   /* audit records in one alert's trail */
/* An alert is stored after it happened, but its clock (a sensor's) may run
 * ahead of the NATS server's: since looks this much further back. */
#define CLOCK_SKEW (60 * KX_NSEC_PER_SEC)
/* Alerts can reach the stream late (a sensor buffering through an outage,
 * a backlog behind a stopped hub): until looks this much further forward.
 * Later than that, an alert is found by since but not below until. */
#define LATE_ARRIVAL (10 * 60 * KX_NSEC_PER_SEC)

/* One message kept for the reply. */
struct hit {
    natsMsg *msg; /* owned */
    uint64_t seq;
};

/* State of one request's scan. */
struct scan {
    struct kx_hub *h;
    const char *stream;        /* KX_STREAM_EVENTS or KX_STREAM_AUDIT */
    const char *subject;       /* the stream's subjects, to bind the reader with */
    bool pri_in_subject;       /* klaxon.events.<priority>.<rule>: pre-check priority */
    const struct kx_filter *f; /* borrowed; unused when looking up uuid */
    const char *uuid;          /* borrowed: the alert looked up, or NULL */
    int64_t found_time;        /* the looked-up alert's time */
    /* the window being read: matches in a ring of the newest cap ones */
    struct hit *ring;
    size_t cap, n, head; /* head = the oldest entry when n == cap */
    bool overflow;       /* the ring dropped older matches */
    /* forward scans: matches appended, oldest first */
    struct hit *out;
    size_t nout, maxout;
    uint64_t scanned;
    int64_t deadline; /* monotonic ns */
    char err[256];
};

static void hits_free(struct hit *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        natsMsg_Destroy(v[i].msg);
}

static void scan_release(struct scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        natsMsg_Destroy(s->ring[i].msg);
    free(s->ring);
    s->ring = NULL;
    s->n = s->cap = s->head = 0;
}

static jsOptions *js_opts(jsOptions *o)
{
    jsOptions_Init(o);
    o->Wait = NATS_WAIT_MS;
    return o;
}

/* Describes a NATS failure in s->err; returns the errno for the reply. */
static int nats_fail(struct scan *s, const char *what, natsStatus st)
{
    const char *last = nats_GetLastError(NULL);

    snprintf(s->err, sizeof(s->err), "NATS: cannot %s %s: %s%s%s", what, s->stream,
             natsStatus_GetText(st), last && *last ? ": " : "", last && *last ? last : "");
    return kx_bus_errno(st) ? kx_bus_errno(st) : -EIO;
}

/* First and last sequence and their times, from stream info. */
static int stream_bounds(struct scan *s, uint64_t *first, uint64_t *last, int64_t *first_t,
                         int64_t *last_t)
{
    jsStreamInfo *si = NULL;
    jsOptions o;
    jsErrCode code = 0;
    natsStatus st = js_GetStreamInfo(&si, s->h->bus->js, s->stream, js_opts(&o), &code);

    if (st != NATS_OK)
        return nats_fail(s, "read the state of", st);
    *first = si->State.FirstSeq;
    *last = si->State.LastSeq;
    *first_t = si->State.FirstTime;
    *last_t = si->State.LastTime;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* The first message at or after seq: its sequence and stream time. -ENOENT when none. */
static int msg_at(struct scan *s, uint64_t seq, uint64_t *mseq, int64_t *mtime)
{
    jsDirectGetMsgOptions dg;
    jsOptions o;
    natsMsg *m = NULL;
    natsStatus st;

    jsDirectGetMsgOptions_Init(&dg);
    dg.Sequence = seq;
    dg.NextBySubject = ">"; /* any: the stream has only its own subjects */
    st = js_DirectGetMsg(&m, s->h->bus->js, s->stream, js_opts(&o), &dg);
    if (st == NATS_NOT_FOUND)
        return -ENOENT;
    if (st != NATS_OK)
        return nats_fail(s, "read a message of", st);
    *mseq = natsMsg_GetSequence(m);
    *mtime = natsMsg_GetTime(m);
    natsMsg_Destroy(m);
    return 0;
}

/*
 * The first sequence in [lo, hi) from which on every message's stream time
 * is >= t (hi when none): a binary search, since stream times grow with
 * sequences. Deleted sequences count as their next message.
 */
static int seq_at_time(struct scan *s, uint64_t lo, uint64_t hi, int64_t t, uint64_t *out)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, mseq = 0;
        int64_t mtime = 0;
        int rc = msg_at(s, mid, &mseq, &mtime);

        if (rc == -ENOENT || (rc == 0 && (mseq >= hi || mtime >= t)))
            hi = mid;
        else if (rc == 0)
            lo = mseq + 1;
        else
            return rc;
    }
    *out = lo;
    return 0;
}

/* Does this stored message pass the filter (or is it the looked-up alert)? */
static bool scan_matches(struct scan *s, natsMsg *m)
{
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    struct kx_alert *a;
    bool ok;

    if (!data || len <= 0)
        return false;
    if (s->uuid) {
        if (!kx_filter_raw_has(data, (size_t)len, s->uuid))
            return false;
    } else {
        if (s->pri_in_subject && s->f->has_priority) {
            /* klaxon.events.<priority>.<rule_slug>: a less severe one is out */
            const char *subj = natsMsg_GetSubject(m), *p = subj ? strchr(subj, '.') : NULL;
            const char *p2 = p ? strchr(p + 1, '.') : NULL, *p3 = p2 ? strchr(p2 + 1, '.') : NULL;
            enum kx_priority pri;
            char tok[32];
            if (p3 && (size_t)(p3 - p2) < sizeof(tok)) {
                snprintf(tok, sizeof(tok), "%.*s", (int)(p3 - p2 - 1), p2 + 1);
                if (kx_priority_parse(tok, &pri) == 0 && pri > s->f->min_priority)
                    return false;
            }
        }
        if (!kx_filter_may_match_raw(s->f, data, (size_t)len))
            return false;
    }
    if (!(a = kx_alert_parse(data, (size_t)len, NULL, 0)))
        return false; /* not an alert: nothing a query can show */
    if (s->uuid) {
        if ((ok = strcasecmp(a->uuid, s->uuid) == 0))
            s->found_time = a->time_ns;
    } else {
        ok = kx_filter_match(s->f, a);
    }
    kx_alert_free(a);
    return ok;
}

/* Keeps a match of a backwards window: the newest cap ones. Takes m. */
static void ring_push(struct scan *s, natsMsg *m, uint64_t seq)
{
    if (s->n < s->cap) {
        s->ring[s->n++] = (struct hit){m, seq};
        return;
    }
    natsMsg_Destroy(s->ring[s->head].msg);
    s->ring[s->head] = (struct hit){m, seq};
    s->head = (s->head + 1) % s->cap;
    s->overflow = true;
}

/* A match of a forward scan; true when enough. Takes m. */
static bool out_push(struct scan *s, natsMsg *m, uint64_t seq)
{
    s->out[s->nout++] = (struct hit){m, seq};
    return s->nout >= s->maxout;
}

/*
 * Reads the stream's messages in [lo, hi), oldest first, through one
 * ephemeral consumer, keeping the matches (ring, or out when forward).
 * Stops early when out is full. 0 or -errno with s->err.
 */
static int scan_range(struct scan *s, uint64_t lo, uint64_t hi, bool forward)
{
    natsSubscription *sub = NULL;
    jsConsumerInfo *ci = NULL;
    jsConsumerConfig cc;
    jsSubOptions so;
    jsOptions o;
    jsErrCode code = 0;
    uint64_t next = lo;
    bool done = false;
    int rc = 0;

    /*
     * An ephemeral consumer without a filter subject: the stream holds only
     * what we read anyway, and nats-server 2.9 delivers a wildcard-filtered
     * consumer that starts in an older block some 50 times slower (300 ms
     * per 1024 messages instead of 7). So it is created here, where the
     * subject can be left out, and the subscription binds to it.
     */
    jsConsumerConfig_Init(&cc);
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = lo;
    cc.AckPolicy = js_AckNone;
    cc.MemoryStorage = true;
    /* deleted below; should that fail, the server drops it soon */
    cc.InactiveThreshold = 30 * KX_NSEC_PER_SEC;
    natsStatus st = js_AddConsumer(&ci, s->h->bus->js, s->stream, &cc, js_opts(&o), &code);
    if (st != NATS_OK)
        return nats_fail(s, "create a reader on", st);
    jsSubOptions_Init(&so);
    so.Stream = s->stream;
    so.Consumer = ci->Name;
    so.Config = cc; /* nats.c checks that a bound consumer is the one asked for */
    st = js_PullSubscribe(&sub, s->h->bus->js, s->subject, NULL, js_opts(&o), &so, &code);
    if (st != NATS_OK) {
        rc = nats_fail(s, "bind a reader on", st);
        done = true;
    }

    while (!done && next < hi) {
        natsMsgList list = {0};
        jsFetchRequest fr;

        jsFetchRequest_Init(&fr);
        fr.Batch = (int)(hi - next < FETCH_BATCH ? hi - next : FETCH_BATCH);
        fr.NoWait = true; /* what the stream has now; a 404 says there is no more */
        fr.Expires = NATS_WAIT_MS * KX_NSEC_PER_MSEC;
        st = natsSubscription_FetchRequest(&list, sub, &fr);
        if (st == NATS_NOT_FOUND || (st == NATS_OK && list.Count == 0))
            break;
        if (st != NATS_OK) {
            rc = nats_fail(s, "read", st);
            break;
        }
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            jsMsgMetaData *meta = NULL;
            list.Msgs[i] = NULL;
            if (done || natsMsg_GetMetaData(&meta, m) != NATS_OK) {
                natsMsg_Destroy(m);
                continue;
            }
            uint64_t seq = meta->Sequence.Stream;
            done = meta->NumPending == 0 || seq + 1 >= hi;
            jsMsgMetaData_Destroy(meta);
            if (seq >= hi) {
                natsMsg_Destroy(m);
                continue;
            }
            next = seq + 1;
            s->scanned++;
            if (!scan_matches(s, m))
                natsMsg_Destroy(m);
            else if (!forward)
                ring_push(s, m, seq);
            else if (out_push(s, m, seq))
                done = true;
        }
        natsMsgList_Destroy(&list);
    }
    if (sub)
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_DeleteConsumer(s->h->bus->js, s->stream, ci->Name, js_opts(&o), NULL);
    jsConsumerInfo_Destroy(ci);
    return rc;
}

/* A page read newest first. */
struct page {
    struct hit *v; /* newest first, owned */
    size_t n;
    uint64_t next; /* cursor for the next page, 0 = none */
    bool truncated;
};

static void page_free(struct page *p)
{
    hits_free(p->v, p->n);
    free(p->v);
}

/*
 * Scans [lo, hi) backwards in growing windows for up to want matches,
 * newest first, within SCAN_BUDGET messages and QUERY_TIME.
 */
static int scan_back(struct scan *s, uint64_t lo, uint64_t hi, size_t want, struct page *p)
{
    uint64_t win = want * 2 + 16 > WINDOW_MIN ? want * 2 + 16 : WINDOW_MIN;
    size_t bytes = 0;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (!(p->v = calloc(want, sizeof(*p->v))) || !(s->ring = calloc(want, sizeof(*s->ring))))
        return -ENOMEM;
    while (hi > lo && p->n < want) {
        uint64_t left = SCAN_BUDGET > s->scanned ? SCAN_BUDGET - s->scanned : 0;
        if (left == 0 || kx_monotonic_ns() > s->deadline) {
            p->truncated = true;
            p->next = hi;
            break;
        }
        uint64_t size = win < left ? win : left, wlo = hi - lo > size ? hi - size : lo;

        s->cap = want - p->n;
        s->n = s->head = 0;
        s->overflow = false;
        if ((rc = scan_range(s, wlo, hi, false)) < 0)
            break;
        /* the window's matches, newest first */
        for (size_t k = 0; k < s->n; k++) {
            size_t idx = (s->head + s->n - 1 - k) % s->n;
            struct hit hit = s->ring[idx];
            size_t len = (size_t)natsMsg_GetDataLength(hit.msg);
            s->ring[idx].msg = NULL;
            if (p->n && bytes + len > BODY_MAX) {
                natsMsg_Destroy(hit.msg); /* the reply is full: the next page has it */
                s->overflow = true;
                continue;
            }
            bytes += len;
            p->v[p->n++] = hit;
        }
        s->n = 0;
        if (s->overflow || p->n >= want) {
            p->next = p->v[p->n - 1].seq; /* the next page reads below the oldest shown */
            break;
        }
        hi = wlo;
        win = win * 4 < WINDOW_MAX ? win * 4 : WINDOW_MAX;
    }
    if (p->next && p->next <= lo)
        p->next = 0; /* nothing older can match */
    scan_release(s);
    return rc;
}

/* 400/404/503 with {"error": why}. */
static void reply_error(struct kx_http_resp *r, int status, const char *why)
{
    r->status = status;
    r->content_type = "application/json";
    kx_buf_reset(&r->body);
    kx_buf_append(&r->body, "{\"error\":", 9);
    kx_buf_json_str(&r->body, why);
    kx_buf_append(&r->body, "}\n", 2);
}

static void reply_scan_error(struct kx_http_resp *r, struct scan *s, int rc)
{
    if (rc == -ENOMEM) {
        reply_error(r, 500, "out of memory");
        return;
    }
    kx_warn("query: %s", s->err);
    reply_error(r, 503, s->err[0] ? s->err : "NATS is not answering");
}

/* Appends the stored texts of v[0..n) as JSON array items. */
static int append_items(struct kx_buf *b, const struct hit *v, size_t n)
{
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = kx_buf_append(b, ",", 1);
        if (rc == 0)
            rc = kx_buf_append(b, natsMsg_GetData(v[i].msg),
                               (size_t)natsMsg_GetDataLength(v[i].msg));
    }
    return rc;
}

/* Sets [*lo, *hi) to the sequences that can hold f's matches: cursor, since, until. */
static int scan_bounds(struct scan *s, const struct kx_filter *f, uint64_t *lo, uint64_t *hi)
{
    uint64_t first, last;
    int64_t first_t, last_t;
    int rc = stream_bounds(s, &first, &last, &first_t, &last_t);

    if (rc)
        return rc;
    *lo = first ? first : 1;
    *hi = last + 1;
    if (f->cursor && f->cursor < *hi)
        *hi = f->cursor;
    if (*lo >= *hi || last == 0)
        return 0;
    if (f->since && first_t < f->since - CLOCK_SKEW &&
        (rc = seq_at_time(s, *lo, *hi, f->since - CLOCK_SKEW, lo)))
        return rc;
    if (f->until && f->until < INT64_MAX - LATE_ARRIVAL && last_t > f->until + LATE_ARRIVAL &&
        (rc = seq_at_time(s, *lo, *hi, f->until + LATE_ARRIVAL + 1, hi)))
        return rc;
    return 0;
}

/* GET /api/v1/alerts and /api/v1/audit: one page of stream, newest first. */
static void query_page(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r,
                       enum kx_filter_use use)
{
    bool audit = use == KX_FILTER_Q_AUDIT;
    struct scan s = {
        .h = h,
        .stream = audit ? KX_STREAM_AUDIT : KX_STREAM_EVENTS,
        .subject = audit ? KX_SUBJ_AUDIT ".>" : KX_SUBJ_EVENTS ".>",
        .pri_in_subject = !audit,
        .deadline = kx_monotonic_ns() + QUERY_TIME,
    };
    struct kx_filter f;
    struct page p = {0};
    uint64_t lo = 0, hi = 0;
    char err[256];
    int rc;

    if (kx_filter_from_query(&f, req->query, use, kx_now_ns(), err, sizeof(err)) < 0) {
        reply_error(r, 400, err);
        return;
    }
    s.f = &f;
    if (!kx_bus_connected(h->bus)) {
        reply_error(r, 503, "NATS is not connected");
        kx_filter_free(&f);
        return;
    }
    if ((rc = scan_bounds(&s, &f, &lo, &hi)) < 0 ||
        (rc = scan_back(&s, lo, hi, (size_t)f.limit, &p)) < 0) {
        reply_scan_error(r, &s, rc);
    } else {
        r->status = 200;
        r->content_type = "application/json";
        rc = kx_buf_printf(&r->body, "{\"%s\":[", audit ? "records" : "alerts");
        if (rc == 0)
            rc = append_items(&r->body, p.v, p.n);
        if (rc == 0 && p.next)
            rc = kx_buf_printf(&r->body, "],\"next\":\"%" PRIu64 "\"", p.next);
        else if (rc == 0)
            rc = kx_buf_printf(&r->body, "],\"next\":null");
        if (rc == 0)
            rc = kx_buf_printf(&r->body, ",\"scanned\":%" PRIu64 ",\"truncated\":%s}\n", s.scanned,
                               p.truncated ? "true" : "false");
        if (rc < 0)
            reply_error(r, 500, "reply too large");
    }
    page_free(&p);
    kx_filter_free(&f);
}

void kx_api_alerts(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    query_page(h, req, r, KX_FILTER_Q_ALERTS);
}

void kx_api_audit(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    query_page(h, req, r, KX_FILTER_Q_AUDIT);
}

/*
 * The audit trail of an alert: KLAXON_AUDIT records naming it, oldest
 * first, read forward from the alert's time (decisions come after it).
 */
static int audit_trail(struct kx_hub *h, const char *uuid, int64_t since, struct scan *s)
{
    struct kx_filter f = {.kinds = KX_FILTER_AUDIT, .alert_uuid = (char *)uuid};
    uint64_t first, last, lo;
    int64_t first_t, last_t;
    int rc;

    *s = (struct scan){
        .h = h,
        .stream = KX_STREAM_AUDIT,
        .subject = KX_SUBJ_AUDIT ".>",
        .f = &f,
        .maxout = TRAIL_MAX,
        .deadline = kx_monotonic_ns() + QUERY_TIME,
    };
    if ((rc = stream_bounds(s, &first, &last, &first_t, &last_t)) < 0 || last == 0)
        return rc;
    lo = first ? first : 1;
    if (first_t < since - CLOCK_SKEW &&
        (rc = seq_at_time(s, lo, last + 1, since - CLOCK_SKEW, &lo)))
        return rc;
    if (!(s->out = calloc(TRAIL_MAX, sizeof(*s->out))))
        return -ENOMEM;
    return scan_range(s, lo, last + 1 - lo > SCAN_BUDGET ? lo + SCAN_BUDGET : last + 1, true);
}

void kx_api_alert(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r,
                  const char *uuid)
{
    struct kx_filter none = {0};
    struct scan s = {
        .h = h,
        .stream = KX_STREAM_EVENTS,
        .subject = KX_SUBJ_EVENTS ".>",
        .f = &none,
        .uuid = uuid,
        .deadline = kx_monotonic_ns() + QUERY_TIME,
    };
    struct scan t = {0};
    struct page p = {0};
    uint64_t lo = 0, hi = 0, seq = 0;
    char why[128];
    int rc;

    (void)req;
    if (!kx_filter_uuid_ok(uuid)) {
        reply_error(r, 400, "want /api/v1/alerts/<uuid> with a UUID (8-4-4-4-12 hex digits)");
        return;
    }
    if (!kx_bus_connected(h->bus)) {
        reply_error(r, 503, "NATS is not connected");
        return;
    }
    if ((rc = scan_bounds(&s, &none, &lo, &hi)) < 0) {
        reply_scan_error(r, &s, rc);
        goto out;
    }
    /* A recent alert: the live feed's index says where (the scan checks the
     * uuid, so a stale or colliding slot just falls back to the search). */
    if (kx_live_lookup(h->live, uuid, &seq) && seq >= lo && seq < hi &&
        scan_back(&s, seq, seq + 1, 1, &p) == 0 && p.n == 1) {
        rc = 0;
    } else {
        page_free(&p);
        memset(&p, 0, sizeof(p));
        rc = scan_back(&s, lo, hi, 1, &p);
    }
    if (rc < 0) {
        reply_scan_error(r, &s, rc);
    } else if (p.n == 0) {
        snprintf(why, sizeof(why), "no alert %s%s", uuid,
                 p.truncated ? " in the newest 200000 messages" : "");
        reply_error(r, 404, why);
    } else if ((rc = audit_trail(h, uuid, s.found_time, &t)) < 0) {
        reply_scan_error(r, &t, rc);
    } else {
        r->status = 200;
        r->content_type = "application/json";
        rc = kx_buf_append(&r->body, "{\"alert\":", 9);
        if (rc == 0)
            rc = append_items(&r->body, p.v, 1);
        if (rc == 0)
            rc = kx_buf_append(&r->body, ",\"audit\":[", 10);
        if (rc == 0)
            rc = append_items(&r->body, t.out, t.nout);
        if (rc == 0)
            rc = kx_buf_append(&r->body, "]}\n", 3);
        if (rc < 0)
            reply_error(r, 500, "reply too large");
    }
out:
    hits_free(t.out, t.nout);
    free(t.out);
    page_free(&p);
}
