/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout.c - one worker thread and one durable consumer per output.
 *
 * Delivery guarantees come from JetStream: a message is acked only after the
 * output took it (or after it was stored on the dead-letter subject); a hub
 * that dies mid-delivery leaves it unacked and AckWait brings it back.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedupe.h"
#include "fanout.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "util.h"

#define O(field) offsetof(struct kx_output_common, field)

static const struct kx_opt common_opts[] = {
    {"name", KX_OPT_STR, NULL, O(name), KX_OPT_REQUIRED, "instance name, unique"},
    {"type", KX_OPT_STR, NULL, O(type), KX_OPT_REQUIRED, "output type (webhook, console, ...)"},
    {"enabled", KX_OPT_BOOL, "true", O(enabled), 0, "turn the output on or off"},
    {"minimumpriority", KX_OPT_PRIORITY, "debug", O(minimumpriority), 0,
     "deliver alerts at least this severe"},
    {"max_deliver", KX_OPT_INT, "10", O(max_deliver), 0, "delivery attempts before dead-lettering"},
    {"backoff", KX_OPT_STRLIST, "1s,2s,5s,10s,30s,1m", O(backoff), 0,
     "delays between attempts (the last repeats)"},
    {"ack_wait", KX_OPT_DURATION, "30s", O(ack_wait), 0,
     "redeliver when a hub dies mid-delivery after this long"},
    {"batch_size", KX_OPT_INT, "0", O(batch_size), 0,
     "alerts per request (0 = the output's maximum)"},
    {"batch_wait", KX_OPT_DURATION, "0s", O(batch_wait), 0,
     "wait up to this long for a batch to fill (0 = send what is there)"},
    {"rules", KX_OPT_STRLIST, NULL, O(rules), 0,
     "only alerts of these rules (globs: \"Terminal shell*\"); empty = all"},
    {"tags", KX_OPT_STRLIST, NULL, O(tags), 0, "only alerts with one of these tags; empty = all"},
    {"sources", KX_OPT_STRLIST, NULL, O(sources), 0,
     "only alerts from these sources (syscall, k8s_audit, ...); empty = all"},
    {"namespaces", KX_OPT_STRLIST, NULL, O(namespaces), 0,
     "only alerts whose k8s.ns.name is one of these; empty = all"},
    {"customfields", KX_OPT_STRMAP, NULL, O(customfields), 0,
     "fields added to every alert's output_fields (env: \"k:v,k:v\")"},
    {"templatedfields", KX_OPT_STRMAP, NULL, O(templatedfields), 0,
     "fields added, rendered from the alert: {summary: \"%rule on %hostname\"}"},
    {0},
};

const struct kx_opt *kx_output_common_opts(void)
{
    return common_opts;
}

/* "my-hook.1" -> "MY_HOOK_1": Falcosidekick-style env prefix. */
static void env_prefix(const char *name, char *out, size_t len)
{
    size_t o = 0;
    for (; name && *name && o + 1 < len; name++)
        out[o++] = isalnum((unsigned char)*name) ? (char)toupper((unsigned char)*name) : '_';
    out[o] = '\0';
}

int kx_output_instance_init(struct kx_output_instance *inst, const struct kx_config_node *map,
                            struct kx_diag *d)
{
    size_t before = d->n;
    char prefix[80];

    memset(inst, 0, sizeof(*inst));
    if (!map || map->kind != KX_CFG_MAP) {
        kx_diag_add(d, map, "each output must be a map with at least name and type");
        return -EINVAL;
    }
    const struct kx_config_node *type = kx_config_get(map, "type");
    const struct kx_config_node *name = kx_config_get(map, "name");
    if (!type || !type->value) {
        kx_diag_add(d, map, "output: missing \"type\"");
        return -EINVAL;
    }
    inst->ops = kx_output_ops_find(type->value);
    if (!inst->ops) {
        char known[512] = "";
        size_t o = 0;
        for (int i = 0; kx_output_registry[i]; i++)
            o += (size_t)snprintf(known + o, o < sizeof(known) ? sizeof(known) - o : 0, "%s%s",
                                  i ? ", " : "", kx_output_registry[i]->name);
        kx_diag_add(d, type, "unknown output type \"%s\" (known: %s)", type->value, known);
        return -EINVAL;
    }
    env_prefix(name && name->value ? name->value : inst->ops->name, prefix, sizeof(prefix));
    if (inst->ops->settings_size && !(inst->settings = calloc(1, inst->ops->settings_size))) {
        kx_diag_add(d, map, "out of memory");
        return -ENOMEM;
    }
    struct kx_opt_set sets[2] = {{common_opts, &inst->common}, {inst->ops->opts, inst->settings}};
    kx_config_apply_sets(sets, inst->ops->opts ? 2 : 1, map, prefix, d);
    if (d->n > before)
        return -EINVAL;

    struct kx_output_common *c = &inst->common;
    if (!c->name[0] || strlen(c->name) > 48)
        kx_diag_add(d, name, "output name must be 1..48 characters");
    if (c->max_deliver < 1)
        kx_diag_add(d, kx_config_get(map, "max_deliver"), "max_deliver must be at least 1");
    if (c->backoff.n == 0 || c->backoff.n > KX_MAX_BACKOFF)
        kx_diag_add(d, kx_config_get(map, "backoff"), "backoff: want 1..%d durations",
                    KX_MAX_BACKOFF);
    for (size_t i = 0; i < c->backoff.n && i < KX_MAX_BACKOFF; i++) {
        if (kx_duration_parse(c->backoff.v[i], &inst->backoff[i]))
            kx_diag_add(d, kx_config_get(map, "backoff"), "backoff: bad duration \"%s\"",
                        c->backoff.v[i]);
        inst->nbackoff = (int)i + 1;
    }
    size_t max_batch = inst->ops->max_batch ? inst->ops->max_batch : 1;
    if (c->batch_size < 0 || (size_t)c->batch_size > max_batch)
        kx_diag_add(d, kx_config_get(map, "batch_size"),
                    "batch_size: output type %s takes 1..%zu alerts per request", inst->ops->name,
                    max_batch);
    if (c->batch_size == 0)
        c->batch_size = (int64_t)max_batch;
    if (c->ack_wait < KX_NSEC_PER_SEC)
        kx_diag_add(d, kx_config_get(map, "ack_wait"), "ack_wait must be at least 1s");
    if (c->batch_wait < 0 || c->batch_wait > 10 * KX_NSEC_PER_SEC)
        kx_diag_add(d, kx_config_get(map, "batch_wait"), "batch_wait must be 0..10s");
    if (c->templatedfields.n &&
        !(inst->templated = calloc(c->templatedfields.n, sizeof(*inst->templated))))
        kx_diag_add(d, map, "out of memory");
    for (size_t i = 0; inst->templated && i < c->templatedfields.n; i++) {
        char err[128];

        inst->templated[i] = kx_template_compile(c->templatedfields.vals[i], err, sizeof(err));
        if (!inst->templated[i])
            kx_diag_add(d, kx_config_get(map, "templatedfields"), "templatedfields.%s: %s",
                        c->templatedfields.keys[i], err);
    }
    return d->n > before ? -EINVAL : 0;
}

bool kx_output_wants(const struct kx_output_instance *inst, const struct kx_alert *a)
{
    const struct kx_output_common *c = &inst->common;
    char ns[256];

    if (!kx_alert_routed(a, &c->rules, &c->tags, &c->sources))
        return false;
    return !c->namespaces.n ||
           kx_strlist_has(&c->namespaces, kx_alert_field_str(a, "k8s.ns.name", ns, sizeof(ns)));
}

int kx_output_decorate(const struct kx_output_instance *inst, struct kx_alert *a)
{
    const struct kx_output_common *c = &inst->common;
    struct kx_buf b;
    int rc = 0;

    for (size_t i = 0; i < c->customfields.n && rc == 0; i++)
        rc = kx_alert_set_str(a, c->customfields.keys[i], c->customfields.vals[i]);
    kx_buf_init(&b, 64 * 1024);
    for (size_t i = 0; i < c->templatedfields.n && inst->templated && rc == 0; i++) {
        kx_buf_reset(&b);
        rc = kx_template_render(inst->templated[i], a, &b);
        if (rc == 0)
            rc = kx_alert_set_str(a, c->templatedfields.keys[i], b.data ? b.data : "");
    }
    kx_buf_free(&b);
    return rc;
}

void kx_output_instance_release(struct kx_output_instance *inst)
{
    for (size_t i = 0; inst->templated && i < inst->common.templatedfields.n; i++)
        kx_template_free(inst->templated[i]);
    free(inst->templated);
    if (inst->ops && inst->ops->opts && inst->settings)
        kx_config_release(inst->ops->opts, inst->settings);
    free(inst->settings);
    kx_config_release(common_opts, &inst->common);
    memset(inst, 0, sizeof(*inst));
}

int64_t kx_output_backoff(const struct kx_output_instance *inst, uint64_t delivered)
{
    if (inst->nbackoff == 0)
        return KX_NSEC_PER_SEC;
    uint64_t i = delivered ? delivered - 1 : 0;
    return inst->backoff[i < (uint64_t)inst->nbackoff ? i : (uint64_t)inst->nbackoff - 1];
}

/* ------------------------------------------------------------------------ */

#define FETCH_MAX 1024
#define QUEUE_DEPTH 1 /* one batch fetched ahead: enough to overlap fetch and send */

/* One fetched batch that passed the filters, for the sender. */
struct out_job {
    natsMsg **msgs;           /* owned, and each message */
    struct kx_alert **alerts; /* owned, and each alert */
    size_t n;
    int64_t touched; /* monotonic ns: fetched, or last marked in progress */
};

struct out_worker {
    struct kx_hub *hub;             /* borrowed */
    struct kx_output_instance inst; /* owned */
    struct kx_output out;           /* the plugin's view */
    struct kx_output_metrics *m;    /* borrowed from hub->metrics */
    natsSubscription *sub;          /* owned, used only by the fetcher */
    char durable[96];
    char dl_subject[128];     /* klaxon.deadletter.<name> */
    pthread_t thread, sender; /* kx-out-<name> fetches, kx-snd-<name> delivers */
    bool started, sender_started;
    /* Fetched and parsed batches waiting for the sender: the next batch is
     * fetched while the endpoint answers the last one. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;           /* signalled on push, pop and done */
    struct out_job *q[QUEUE_DEPTH]; /* under qlock; FIFO of QUEUE_DEPTH */
    size_t qhead, qlen;             /* under qlock */
    bool fetch_done;                /* under qlock: the fetcher has exited */
    /* What deliver() asked to hold (KX_OUTPUT_HOLD), oldest first: the
     * messages stay un-acked until flush() settles them. Worker thread only. */
    natsMsg **held_msgs;    /* owned, and each message */
    struct kx_alert **held; /* owned, and each alert */
    size_t nheld, held_cap;
    int64_t held_touched; /* monotonic ns of the last in-progress */
    /* The outcome of the last delivery attempt, for GET /api/v1/outputs:
     * written by the sender (health_note), read by API workers. */
    pthread_mutex_t hlock;   /* initialised before w counts in f->n */
    bool failing;            /* under hlock: the last attempt failed */
    int64_t last_success;    /* under hlock: ns since the epoch, 0 = never */
    int64_t last_error_time; /* under hlock: ns since the epoch, 0 = never */
    char last_error[256];    /* under hlock: "" = never */
};

struct kx_fanout {
    struct out_worker *w; /* owned array */
    size_t n;
    atomic_size_t ready; /* w[0..ready) are set up: what the API may read */
};

static void health_note(struct out_worker *w, int rc);

/* Sleeps up to ns, waking early when the hub stops. */
static void nap(struct kx_hub *h, int64_t ns)
{
    int64_t end = kx_monotonic_ns() + ns;
    while (!atomic_load(&h->stopping)) {
        int64_t left = end - kx_monotonic_ns();
        if (left <= 0)
            break;
        usleep(
            (useconds_t)((left > 100 * KX_NSEC_PER_MSEC ? 100 * KX_NSEC_PER_MSEC : left) / 1000));
    }
}

/*
 * Stores msg on the dead-letter subject with the reason, then terminates it.
 * When the dead-letter publish itself fails the message is nak'ed instead, so
 * it is never lost. Runs on the worker thread.
 */
static void dead_letter(struct out_worker *w, natsMsg *msg, const char *uuid, const char *reason)
{
    char err[256], id[128];
    snprintf(id, sizeof(id), "%s.%s", uuid ? uuid : "", w->inst.common.name);
    int rc = kx_bus_publish(w->hub->bus, w->dl_subject, natsMsg_GetData(msg),
                            (size_t)natsMsg_GetDataLength(msg), uuid ? id : NULL, KX_HDR_REASON,
                            reason, w->hub->cfg.publish_timeout, err, sizeof(err));
    if (rc < 0) {
        kx_warn("output %s: cannot dead-letter %s (%s); will retry", w->inst.common.name,
                uuid ? uuid : "message", err);
        natsMsg_NakWithDelay(msg, 5 * KX_NSEC_PER_SEC / KX_NSEC_PER_MSEC, NULL);
        return;
    }
    kx_metric_inc(w->m->deadlettered);
    kx_warn("output %s: alert %s dead-lettered to %s: %s", w->inst.common.name, uuid ? uuid : "?",
            w->dl_subject, reason);
    natsMsg_Term(msg, NULL);
}

static uint64_t delivered_count(natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    uint64_t n = 1;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta)
        n = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
    return n;
}

/*
 * Handles the outcome of one deliver() or flush() call for msgs[0..n).
 * Returns the pause the worker should take before its next attempt (0 on
 * success).
 */
static int64_t settle(struct out_worker *w, natsMsg **msgs, struct kx_alert **alerts, size_t n,
                      int rc)
{
    const char *name = w->inst.common.name;
    int64_t pause = 0;

    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            natsMsg_Ack(msgs[i], NULL);
            kx_metric_inc(w->m->delivered);
            continue;
        }
        kx_metric_inc(w->m->failed);
        uint64_t tries = delivered_count(msgs[i]);
        if (rc != -EAGAIN) {
            dead_letter(w, msgs[i], alerts[i]->uuid,
                        w->out.error[0] ? w->out.error : "permanent failure");
        } else if ((int64_t)tries >= w->inst.common.max_deliver) {
            char reason[400];
            snprintf(reason, sizeof(reason), "gave up after %llu attempts: %s",
                     (unsigned long long)tries, w->out.error);
            dead_letter(w, msgs[i], alerts[i]->uuid, reason);
        } else {
            int64_t delay = kx_output_backoff(&w->inst, tries);
            if (w->out.retry_after > delay)
                delay = w->out.retry_after;
            natsMsg_NakWithDelay(msgs[i], delay / KX_NSEC_PER_MSEC, NULL);
            kx_metric_inc(w->m->retried);
            if (i == 0)
                kx_warn("output %s: delivery failed (attempt %llu of %lld), retry in %lld ms: %s",
                        name, (unsigned long long)tries, (long long)w->inst.common.max_deliver,
                        (long long)(delay / KX_NSEC_PER_MSEC), w->out.error);
            if (delay > pause)
                pause = delay;
        }
    }
    return pause;
}

/* Takes msgs/alerts[0..n) into the held set (ownership moves). 0 or -ENOMEM,
 * in which case nothing moved. */
static int hold(struct out_worker *w, natsMsg **msgs, struct kx_alert **alerts, size_t n)
{
    if (w->nheld + n > w->held_cap) {
        size_t cap = w->held_cap ? w->held_cap : 256;
        while (cap < w->nheld + n)
            cap *= 2;
        natsMsg **m = realloc(w->held_msgs, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        w->held_msgs = m;
        struct kx_alert **a = realloc(w->held, cap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        w->held = a;
        w->held_cap = cap;
    }
    if (w->nheld == 0)
        w->held_touched = kx_monotonic_ns();
    memcpy(w->held_msgs + w->nheld, msgs, n * sizeof(*msgs));
    memcpy(w->held + w->nheld, alerts, n * sizeof(*alerts));
    w->nheld += n;
    return 0;
}

/* Frees what is held; the messages are left to settle elsewhere or, with
 * nak, handed back at once (a stopping hub: the next one picks them up). */
static void held_clear(struct out_worker *w, bool nak)
{
    for (size_t i = 0; i < w->nheld; i++) {
        if (nak)
            natsMsg_Nak(w->held_msgs[i], NULL);
        natsMsg_Destroy(w->held_msgs[i]);
        kx_alert_free(w->held[i]);
    }
    w->nheld = 0;
}

/*
 * Runs flush() on what is held when it is due (or when the set is full),
 * and keeps the held messages alive on the server in between. Returns the
 * pause before the next fetch.
 */
static int64_t held_tick(struct out_worker *w, bool force)
{
    int64_t now = kx_monotonic_ns();

    if (w->nheld == 0)
        return 0;
    if (!force && w->nheld < KX_OUTPUT_HOLD_MAX && (!w->out.flush_at || now < w->out.flush_at)) {
        /* AckWait would redeliver what we hold: say we are still on it. */
        if (now - w->held_touched > w->inst.common.ack_wait / 3) {
            for (size_t i = 0; i < w->nheld; i++)
                natsMsg_InProgress(w->held_msgs[i], NULL);
            w->held_touched = now;
        }
        return 0;
    }
    w->out.error[0] = '\0';
    w->out.retry_after = 0;
    int rc = w->inst.ops->flush(&w->out, w->held, w->nheld);
    kx_metrics_latency(w->m, kx_monotonic_ns() - now);
    if (rc == KX_OUTPUT_HOLD) {
        snprintf(w->out.error, sizeof(w->out.error), "plugin bug: flush() returned HOLD");
        rc = -EINVAL;
    }
    health_note(w, rc);
    int64_t pause = settle(w, w->held_msgs, w->held, w->nheld, rc);
    held_clear(w, false);
    w->out.flush_at = 0;
    return pause;
}

/*
 * Parses and filters fetched messages (owned: each is destroyed, acked as
 * filtered, dead-lettered, or moved into the job). Returns the job, NULL
 * when nothing is left to deliver. Runs on the fetcher.
 */
static struct out_job *prepare(struct out_worker *w, natsMsg **all, size_t count)
{
    struct out_job *job = calloc(1, sizeof(*job));
    char err[KX_ALERT_ERR_LEN];

    if (job && (!(job->alerts = calloc(count, sizeof(*job->alerts))) ||
                !(job->msgs = calloc(count, sizeof(*job->msgs))))) {
        free(job->alerts);
        free(job);
        job = NULL;
    }
    if (!job) {
        /* out of memory: hand them all back for later */
        for (size_t i = 0; i < count; i++) {
            natsMsg_NakWithDelay(all[i], 1000, NULL);
            natsMsg_Destroy(all[i]);
        }
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        natsMsg *msg = all[i];
        struct kx_alert *a = kx_alert_parse(natsMsg_GetData(msg),
                                            (size_t)natsMsg_GetDataLength(msg), err, sizeof(err));
        if (!a) {
            /* Only the hub writes KLAXON_EVENTS, so this is someone else's
             * publish on our subjects: keep it for inspection. */
            dead_letter(w, msg, NULL, err);
            natsMsg_Destroy(msg);
            continue;
        }
        const char *test = NULL;

        natsMsgHeader_Get(msg, KX_HDR_TEST, &test);
        if (!test &&
            (a->priority > w->inst.common.minimumpriority || !kx_output_wants(&w->inst, a))) {
            kx_metric_inc(w->m->filtered);
            natsMsg_Ack(msg, NULL);
            natsMsg_Destroy(msg);
            kx_alert_free(a);
            continue;
        }
        if (w->inst.ops->dedupe_key && !kx_alert_field(a, "klaxon.dedupe_key")) {
            char key[KX_DEDUPE_KEY_LEN + 1];

            kx_dedupe_key(a, &w->hub->cfg.dedupe_keys, key);
            kx_alert_set_str(a, "klaxon.dedupe_key", key);
        }
        if (kx_output_decorate(&w->inst, a) < 0) {
            kx_alert_free(a); /* out of memory: leave it for redelivery */
            natsMsg_Nak(msg, NULL);
            natsMsg_Destroy(msg);
            continue;
        }
        job->alerts[job->n] = a;
        job->msgs[job->n++] = msg;
    }
    job->touched = kx_monotonic_ns();
    if (job->n == 0) {
        free(job->alerts);
        free(job->msgs);
        free(job);
        return NULL;
    }
    return job;
}

/*
 * Delivers a job in batch_size pieces and settles or holds each piece; frees
 * the job. Returns the pause before the next delivery. Runs on the sender.
 */
static int64_t deliver_job(struct out_worker *w, struct out_job *job)
{
    natsMsg **msgs = job->msgs;
    struct kx_alert **alerts = job->alerts;
    size_t n = job->n, batch = (size_t)w->inst.common.batch_size, done = 0;
    int64_t pause = 0;

    while (done < n) {
        size_t k = n - done < batch ? n - done : batch;
        bool held = false;

        /* Waiting in the queue or behind a slow endpoint: tell JetStream we
         * are still on the rest, or AckWait hands them to another replica. */
        if (kx_monotonic_ns() - job->touched > w->inst.common.ack_wait / 3) {
            for (size_t i = done; i < n; i++)
                natsMsg_InProgress(msgs[i], NULL);
            job->touched = kx_monotonic_ns();
        }
        if (pause > 0) {
            /* The endpoint is failing: return the rest for later instead of
             * hammering it; they come back after the same backoff. */
            w->out.error[0] = '\0';
            settle(w, msgs + done, alerts + done, n - done, -EAGAIN);
            k = n - done;
        } else {
            w->out.error[0] = '\0';
            w->out.retry_after = 0;
            int64_t t0 = kx_monotonic_ns();
            int rc = w->inst.ops->deliver(&w->out, alerts + done, k);

            if (rc == KX_OUTPUT_HOLD && !w->inst.ops->flush) {
                snprintf(w->out.error, sizeof(w->out.error), "plugin bug: HOLD without flush()");
                rc = -EINVAL;
            }
            if (rc == KX_OUTPUT_HOLD && hold(w, msgs + done, alerts + done, k) == 0) {
                held = true;
                if (w->nheld >= KX_OUTPUT_HOLD_MAX)
                    pause = held_tick(w, true);
            } else {
                if (rc == KX_OUTPUT_HOLD) /* could not keep them: try again later */
                    rc = -EAGAIN;
                else
                    kx_metrics_latency(w->m, kx_monotonic_ns() - t0);
                health_note(w, rc);
                pause = settle(w, msgs + done, alerts + done, k, rc);
            }
        }
        for (size_t i = done; !held && i < done + k; i++) {
            natsMsg_Destroy(msgs[i]);
            kx_alert_free(alerts[i]);
        }
        done += k;
    }
    free(job->alerts);
    free(job->msgs);
    free(job);
    /* Pause no longer than a few seconds: the next delivery is the probe. */
    return pause > 5 * KX_NSEC_PER_SEC ? 5 * KX_NSEC_PER_SEC : pause;
}

/*
 * Fetches up to `want` messages into out[] (ownership moves to the caller),
 * waiting up to `wait` ns for the first and then, with batch_wait set, up to
 * batch_wait for the batch to fill. Returns the count, or a negative
 * natsStatus-derived errno on a fetch error with nothing fetched.
 */
static int fetch(struct out_worker *w, natsMsg **out, int want, int64_t wait, natsStatus *status)
{
    int64_t deadline = 0;
    int got = 0;

    *status = NATS_OK;
    while (got < want) {
        natsMsgList list = {0};
        jsErrCode code = 0;
        int64_t t = got ? deadline - kx_monotonic_ns() : wait;

        if (t < KX_NSEC_PER_MSEC)
            break;
        natsStatus s =
            natsSubscription_Fetch(&list, w->sub, want - got, t / KX_NSEC_PER_MSEC, &code);
        if (s != NATS_OK) {
            if (!got)
                *status = s;
            break;
        }
        for (int i = 0; i < list.Count && got < want; i++) {
            out[got++] = list.Msgs[i];
            list.Msgs[i] = NULL;
        }
        natsMsgList_Destroy(&list);
        if (!deadline)
            deadline = kx_monotonic_ns() + w->inst.common.batch_wait;
        if (got >= w->inst.common.batch_size)
            break;
    }
    return got;
}

/* Queues a job, waiting while the queue is full (the sender always drains
 * it, even when stopping). Runs on the fetcher. */
static void queue_push(struct out_worker *w, struct out_job *job)
{
    pthread_mutex_lock(&w->qlock);
    while (w->qlen == QUEUE_DEPTH)
        pthread_cond_wait(&w->qcond, &w->qlock); /* the sender always drains */
    w->q[(w->qhead + w->qlen++) % QUEUE_DEPTH] = job;
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qlock);
}

/* The next job, waiting up to ns; NULL on timeout or when the fetcher is
 * done and the queue empty (*done set). */
static struct out_job *queue_pop(struct out_worker *w, int64_t ns, bool *done)
{
    struct timespec ts = kx_deadline_ts(ns);
    struct out_job *job = NULL;

    pthread_mutex_lock(&w->qlock);
    while (w->qlen == 0 && !w->fetch_done && pthread_cond_timedwait(&w->qcond, &w->qlock, &ts) == 0)
        ;
    if (w->qlen) {
        job = w->q[w->qhead];
        w->qhead = (w->qhead + 1) % QUEUE_DEPTH;
        w->qlen--;
        pthread_cond_broadcast(&w->qcond);
    }
    *done = !job && w->fetch_done;
    pthread_mutex_unlock(&w->qlock);
    return job;
}

/* Thread "kx-snd-<name>": delivers what the fetcher queued, and flushes
 * what is held when it is due. Finishes the queue after a stop. */
static void *sender_main(void *arg)
{
    struct out_worker *w = arg;
    char tname[16];
    bool done = false;

    snprintf(tname, sizeof(tname), "kx-snd-%.8s", w->inst.common.name);
    pthread_setname_np(pthread_self(), tname);
    while (!done) {
        int64_t wait = 500 * KX_NSEC_PER_MSEC, pause = 0;

        if (w->nheld && w->out.flush_at) {
            int64_t left = w->out.flush_at - kx_monotonic_ns();
            wait = left < wait ? (left < KX_NSEC_PER_MSEC ? KX_NSEC_PER_MSEC : left) : wait;
        }
        struct out_job *job = queue_pop(w, wait, &done);
        if (job) {
            pause = deliver_job(w, job);
            /* The acks are buffered by nats.c: push them out now, so a hub
             * killed right after does not deliver these again. */
            natsConnection_FlushTimeout(w->hub->bus->nc, 1000);
        }
        int64_t p = held_tick(w, false);
        if (p > pause)
            pause = p;
        if (pause > 0)
            nap(w->hub, pause);
    }
    held_clear(w, true);
    return NULL;
}

/* Thread "kx-out-<name>": fetches and parses the next batch while the
 * sender delivers the previous one. */
static void *worker_main(void *arg)
{
    struct out_worker *w = arg;
    struct kx_hub *h = w->hub;
    int64_t last_err_log = 0;
    natsMsg **msgs = calloc(FETCH_MAX, sizeof(*msgs));
    char tname[16];

    snprintf(tname, sizeof(tname), "kx-out-%.8s", w->inst.common.name);
    pthread_setname_np(pthread_self(), tname);

    while (msgs && !atomic_load(&h->stopping)) {
        natsStatus s;
        int want = (int)(w->inst.common.batch_size * 4);

        if (want > FETCH_MAX)
            want = FETCH_MAX;
        if (want < 16)
            want = 16;
        int n = fetch(w, msgs, want, 500 * KX_NSEC_PER_MSEC, &s);

        if (s != NATS_OK && s != NATS_TIMEOUT) {
            if (kx_monotonic_ns() - last_err_log > 10 * KX_NSEC_PER_SEC) {
                kx_warn("output %s: fetch failed: %s (retrying)", w->inst.common.name,
                        natsStatus_GetText(s));
                last_err_log = kx_monotonic_ns();
            }
            nap(h, 250 * KX_NSEC_PER_MSEC);
        }
        struct out_job *job = n > 0 ? prepare(w, msgs, (size_t)n) : NULL;
        if (job)
            queue_push(w, job);
    }
    free(msgs);
    pthread_mutex_lock(&w->qlock);
    w->fetch_done = true;
    pthread_cond_broadcast(&w->qcond);
    pthread_mutex_unlock(&w->qlock);
    return NULL;
}

static int worker_setup(struct out_worker *w, struct kx_hub *h, const struct kx_config_node *map,
                        int idx, char *err, size_t errlen)
{
    struct kx_diag d = {0};
    char slug[64];
    int rc;

    w->hub = h;
    if (kx_output_instance_init(&w->inst, map, &d)) {
        snprintf(err, errlen, "%s", d.n ? d.msgs[0] : "bad output");
        kx_diag_free(&d);
        return -EINVAL;
    }
    if (!w->inst.common.enabled)
        return 0;
    kx_slug(w->inst.common.name, slug, sizeof(slug));
    snprintf(w->durable, sizeof(w->durable), "klaxon-out-%s", slug);
    snprintf(w->dl_subject, sizeof(w->dl_subject), KX_SUBJ_DEADLETTER ".%s", slug);
    w->m = &h->metrics.outputs[idx];
    snprintf(w->m->name, sizeof(w->m->name), "%s", w->inst.common.name);

    w->out.ops = w->inst.ops;
    w->out.name = w->inst.common.name;
    w->out.settings = w->inst.settings;
    if (w->inst.ops->init && (rc = w->inst.ops->init(&w->out, map, &d)) != 0) {
        /* every problem, not just the first: one restart fixes them all */
        for (size_t i = 1; i < d.n; i++)
            kx_error("output %s: %s", w->inst.common.name, d.msgs[i]);
        snprintf(err, errlen, "output %s: %s", w->inst.common.name,
                 d.n ? d.msgs[0] : (w->out.error[0] ? w->out.error : strerror(-rc)));
        kx_diag_free(&d);
        return rc < 0 ? rc : -EINVAL;
    }
    kx_diag_free(&d);

    struct kx_consumer_spec cs = {
        .stream = KX_STREAM_EVENTS,
        .durable = w->durable,
        .filter = KX_SUBJ_EVENTS ".>",
        .ack_wait = w->inst.common.ack_wait,
        /* Unlimited on the server: the worker counts attempts itself and
         * dead-letters, so a message never silently stops being delivered. */
        .max_deliver = -1,
        /* a holding output keeps up to KX_OUTPUT_HOLD_MAX un-acked on purpose */
        .max_ack_pending =
            (QUEUE_DEPTH + 3) * FETCH_MAX + (w->inst.ops->flush ? KX_OUTPUT_HOLD_MAX : 0),
    };
    if ((rc = kx_bus_ensure_consumer(h->bus, &cs, err, errlen)))
        return rc;

    jsSubOptions so;
    jsErrCode code = 0;
    jsSubOptions_Init(&so);
    so.Stream = KX_STREAM_EVENTS;
    so.Consumer = w->durable;
    natsStatus s = js_PullSubscribe(&w->sub, h->bus->js, cs.filter, w->durable, NULL, &so, &code);
    if (s != NATS_OK) {
        snprintf(err, errlen, "output %s: cannot bind consumer %s: %s", w->inst.common.name,
                 w->durable, natsStatus_GetText(s));
        return kx_bus_errno(s);
    }
    return 0;
}

int kx_fanout_start(struct kx_hub *h, char *err, size_t errlen)
{
    struct kx_fanout *f = calloc(1, sizeof(*f));
    size_t n = 0;
    int rc = 0;

    if (!f)
        return -ENOMEM;
    /* API workers read h->fanout while this runs: publish it, then w[] via ready. */
    __atomic_store_n(&h->fanout, f, __ATOMIC_RELEASE);
    if (h->cfg.outputs)
        for (const struct kx_config_node *it = h->cfg.outputs->child; it; it = it->next)
            n++;
    if (n && !(f->w = calloc(n, sizeof(*f->w))))
        return -ENOMEM;

    for (const struct kx_config_node *it = h->cfg.outputs ? h->cfg.outputs->child : NULL; it;
         it = it->next) {
        struct out_worker *w = &f->w[f->n];
        int idx = atomic_load(&h->metrics.noutputs);

        pthread_mutex_init(&w->hlock, NULL); /* w is counted in f->n from here on */
        if ((rc = worker_setup(w, h, it, idx, err, errlen))) {
            f->n++; /* so stop() releases it */
            return rc;
        }
        f->n++;
        if (!w->inst.common.enabled)
            continue;
        atomic_fetch_add(&h->metrics.noutputs, 1);
        pthread_mutex_init(&w->qlock, NULL);
        pthread_cond_init(&w->qcond, NULL);
        if ((rc = pthread_create(&w->sender, NULL, sender_main, w))) {
            snprintf(err, errlen, "cannot start output thread: %s", strerror(rc));
            return -rc;
        }
        w->sender_started = true;
        if ((rc = pthread_create(&w->thread, NULL, worker_main, w))) {
            snprintf(err, errlen, "cannot start output thread: %s", strerror(rc));
            return -rc;
        }
        w->started = true;
        kx_info("output %s (%s) ready: consumer %s, minimumpriority %s", w->inst.common.name,
                w->inst.ops->name, w->durable, kx_priority_slug(w->inst.common.minimumpriority));
    }
    atomic_store(&f->ready, f->n);
    return 0;
}

void kx_fanout_stop(struct kx_hub *h)
{
    struct kx_fanout *f = h->fanout;
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        struct out_worker *w = &f->w[i];
        if (w->started) {
            pthread_join(w->thread, NULL);
        } else if (w->sender_started) { /* its fetcher never ran: release the sender */
            pthread_mutex_lock(&w->qlock);
            w->fetch_done = true;
            pthread_cond_broadcast(&w->qcond);
            pthread_mutex_unlock(&w->qlock);
        }
        if (w->sender_started) {
            pthread_join(w->sender, NULL);
            pthread_mutex_destroy(&w->qlock);
            pthread_cond_destroy(&w->qcond);
        }
    }
    for (size_t i = 0; i < f->n; i++) {
        struct out_worker *w = &f->w[i];
        natsSubscription_Destroy(w->sub);
        if (w->out.ops && w->out.ops->destroy)
            w->out.ops->destroy(&w->out);
        free(w->held_msgs);
        free(w->held);
        kx_output_instance_release(&w->inst);
        pthread_mutex_destroy(&w->hlock);
    }
    free(f->w);
    free(f);
    h->fanout = NULL;
}

/* ---------------------------------------------- GET /api/v1/outputs -- */

#define OUTPUTS_LAGGING 1000     /* docs/api.md: more waiting than this is "lagging" */
#define OUTPUTS_INFO_WAIT_MS 500 /* per consumer info request: an API answer, not a probe */

/* Records the outcome of one deliver() or flush() call. Sender thread. */
static void health_note(struct out_worker *w, int rc)
{
    int64_t now = kx_now_ns();

    pthread_mutex_lock(&w->hlock);
    w->failing = rc != 0;
    if (rc == 0) {
        w->last_success = now;
    } else {
        w->last_error_time = now;
        snprintf(w->last_error, sizeof(w->last_error), "%s",
                 w->out.error[0] ? w->out.error : strerror(-rc));
    }
    pthread_mutex_unlock(&w->hlock);
}

/* "key":"<RFC 3339>" or "key":null when ns is 0. */
static int outputs_time(struct kx_buf *b, const char *key, int64_t ns)
{
    char t[40];

    if (!ns)
        return kx_buf_printf(b, ",\"%s\":null", key);
    kx_time_format(ns, t, sizeof(t));
    return kx_buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

/*
 * One output's entry. *ask is cleared when JetStream does not answer, so a
 * NATS outage costs one timeout per request, not one per output.
 */
static int outputs_one(struct kx_hub *h, struct out_worker *w, bool *ask, struct kx_buf *b)
{
    jsConsumerInfo *ci = NULL;
    bool failing;
    int64_t last_success, last_error_time;
    char last_error[sizeof(w->last_error)];
    const char *status;
    int rc;

    if (*ask) {
        jsOptions o;
        jsErrCode code = 0;

        jsOptions_Init(&o);
        o.Wait = OUTPUTS_INFO_WAIT_MS;
        natsStatus s = js_GetConsumerInfo(&ci, h->bus->js, KX_STREAM_EVENTS, w->durable, &o, &code);
        if (s != NATS_OK) {
            kx_debug("output %s: no consumer info for %s: %s", w->inst.common.name, w->durable,
                     natsStatus_GetText(s));
            *ask = s == NATS_NOT_FOUND; /* that consumer is gone, the others may be there */
            ci = NULL;
        }
    }
    pthread_mutex_lock(&w->hlock);
    failing = w->failing;
    last_success = w->last_success;
    last_error_time = w->last_error_time;
    memcpy(last_error, w->last_error, sizeof(last_error));
    pthread_mutex_unlock(&w->hlock);

    if (!ci)
        status = "unknown";
    else if (failing)
        status = "failing";
    else if (ci->NumPending > OUTPUTS_LAGGING)
        status = "lagging";
    else
        status = "ok";
    rc = kx_buf_append(b, "{\"name\":", 8);
    if (rc == 0)
        rc = kx_buf_json_str(b, w->inst.common.name);
    if (rc == 0)
        rc = kx_buf_printf(b, ",\"type\":\"%s\",\"status\":\"%s\"", w->inst.ops->name, status);
    if (rc == 0 && ci)
        rc = kx_buf_printf(b, ",\"lag\":%llu,\"ack_pending\":%lld,\"redelivered\":%lld",
                           (unsigned long long)ci->NumPending, (long long)ci->NumAckPending,
                           (long long)ci->NumRedelivered);
    else if (rc == 0)
        rc = kx_buf_printf(b, ",\"lag\":null,\"ack_pending\":null,\"redelivered\":null");
    if (rc == 0)
        rc = kx_buf_printf(b, ",\"delivered\":%llu,\"failed\":%llu,\"deadlettered\":%llu",
                           (unsigned long long)atomic_load(&w->m->delivered),
                           (unsigned long long)atomic_load(&w->m->failed),
                           (unsigned long long)atomic_load(&w->m->deadlettered));
    if (rc == 0)
        rc = outputs_time(b, "last_success", last_success);
    if (rc == 0)
        rc = kx_buf_append(b, ",\"last_error\":", 14);
    if (rc == 0)
        rc = last_error[0] ? kx_buf_json_str(b, last_error) : kx_buf_append(b, "null", 4);
    if (rc == 0)
        rc = outputs_time(b, "last_error_time", last_error_time);
    if (rc == 0)
        rc = kx_buf_append(b, "}", 1);
    jsConsumerInfo_Destroy(ci);
    return rc;
}

void kx_api_outputs(struct kx_hub *h, const struct kx_http_req *req, struct kx_http_resp *r)
{
    struct kx_fanout *f = __atomic_load_n(&h->fanout, __ATOMIC_ACQUIRE);
    size_t n = f ? atomic_load(&f->ready) : 0;
    bool ask = kx_bus_connected(h->bus), first = true;
    int rc = kx_buf_append(&r->body, "{\"outputs\":[", 12);

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct out_worker *w = &f->w[i];

        if (!w->inst.common.enabled) /* no consumer, no worker */
            continue;
        if (!first)
            rc = kx_buf_append(&r->body, ",", 1);
        if (rc == 0)
            rc = outputs_one(h, w, &ask, &r->body);
        first = false;
    }
    if (rc == 0)
        rc = kx_buf_append(&r->body, "]}\n", 3);
    r->content_type = "application/json";
    r->status = 200;
    if (rc < 0) {
        kx_buf_reset(&r->body);
        r->status = 500;
        kx_buf_printf(&r->body, "{\"error\":\"cannot build the /api/v1/outputs answer: %s\"}\n",
                      strerror(-rc));
    }
}
