/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bus.c - NATS connection and JetStream set-up shared by hub and sensor.
 *
 * Connections reconnect forever: a NATS restart must never need a Klaxon
 * restart. Stream and consumer creation is idempotent and converges existing
 * objects to the wanted settings, so every replica may call it at start-up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "util.h"

int kx_bus_errno(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_TIMEOUT:
        return -ETIMEDOUT;
    case NATS_NO_RESPONDERS:
    case NATS_NOT_FOUND:
        return -ENOENT;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
        return -ENOTCONN;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return -EINVAL;
    case NATS_MAX_PAYLOAD:
        return -E2BIG;
    default:
        return -EIO;
    }
}

/* nats.c callbacks run on the library's own threads. */
static void bus_on_disconnected(natsConnection *nc, void *closure)
{
    struct kx_bus *b = closure;
    if (!atomic_load(&b->closing))
        kx_warn("NATS connection lost; reconnecting (messages are kept by JetStream)");
}

/* With retry-on-failed-connect: the first connection came up. */
static void bus_on_connected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    kx_info("NATS connected to %s", url);
}

static void bus_on_reconnected(natsConnection *nc, void *closure)
{
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    kx_info("NATS reconnected to %s", url);
}

static void bus_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    kx_warn("NATS asynchronous error: %s", natsStatus_GetText(err));
}

struct kx_bus *kx_bus_connect(const struct kx_bus_opts *o, char *err, size_t errlen)
{
    struct kx_bus *b = calloc(1, sizeof(*b));
    natsStatus s;
    const char *what = "create options";

    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((s = natsOptions_Create(&b->opts)) != NATS_OK)
        goto fail;
    what = "set options";
    if ((s = natsOptions_SetURL(b->opts, o->url)) != NATS_OK ||
        (s = natsOptions_SetName(b->opts, o->name ? o->name : "klaxon")) != NATS_OK ||
        (s = natsOptions_SetTimeout(
             b->opts, (o->connect_timeout ? o->connect_timeout : 2 * KX_NSEC_PER_SEC) /
                          KX_NSEC_PER_MSEC)) != NATS_OK ||
        (s = natsOptions_SetMaxReconnect(b->opts, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(b->opts, 250)) != NATS_OK ||
        (s = natsOptions_SetReconnectJitter(b->opts, 100, 1000)) != NATS_OK ||
        (s = natsOptions_SetReconnectBufSize(b->opts, o->reconnect_buf ? o->reconnect_buf
                                                                       : 8 << 20)) != NATS_OK ||
        (s = natsOptions_SetMaxPendingMsgs(b->opts, 65536)) != NATS_OK ||
        (s = natsOptions_SetDisconnectedCB(b->opts, bus_on_disconnected, b)) != NATS_OK ||
        (s = natsOptions_SetReconnectedCB(b->opts, bus_on_reconnected, NULL)) != NATS_OK ||
        (s = natsOptions_SetErrorHandler(b->opts, bus_on_error, NULL)) != NATS_OK)
        goto fail;
    if (o->token && *o->token && (s = natsOptions_SetToken(b->opts, o->token)) != NATS_OK)
        goto fail;
    if (o->creds_file && *o->creds_file &&
        (s = natsOptions_SetUserCredentialsFromFiles(b->opts, o->creds_file, NULL)) != NATS_OK)
        goto fail;
    if (o->retry_on_failed_connect &&
        /* With a callback, Connect returns at once and keeps trying in
         * the background; without one it would block until a server answers. */
        (s = natsOptions_SetRetryOnFailedConnect(b->opts, true, bus_on_connected, b)) != NATS_OK)
        goto fail;

    what = "connect";
    s = natsConnection_Connect(&b->nc, b->opts);
    /* With retry-on-failed-connect, NATS_NOT_YET_CONNECTED means "retrying in
     * the background", which is what the caller asked for. */
    if (s != NATS_OK && !(o->retry_on_failed_connect && s == NATS_NOT_YET_CONNECTED))
        goto fail;
    what = "create JetStream context";
    if ((s = natsConnection_JetStream(&b->js, b->nc, NULL)) != NATS_OK)
        goto fail;
    return b;

fail:
    if (strcmp(what, "connect") == 0)
        snprintf(err, errlen, "cannot reach NATS at %s: %s (is nats-server running with -js?)",
                 o->url, natsStatus_GetText(s));
    else
        snprintf(err, errlen, "NATS: cannot %s: %s", what, natsStatus_GetText(s));
    kx_bus_close(b);
    return NULL;
}

void kx_bus_close(struct kx_bus *b)
{
    if (!b)
        return;
    atomic_store(&b->closing, true);
    jsCtx_Destroy(b->js);
    if (b->nc) {
        natsConnection_Close(b->nc);
        natsConnection_Destroy(b->nc);
    }
    natsOptions_Destroy(b->opts);
    free(b);
}

bool kx_bus_connected(const struct kx_bus *b)
{
    return b && b->nc && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* Formats a JetStream failure: the server's text when there is one. */
static int js_fail(char *err, size_t errlen, const char *what, const char *name, natsStatus s,
                   jsErrCode code)
{
    const char *last = nats_GetLastError(NULL);
    snprintf(err, errlen, "JetStream: cannot %s %s: %s%s%s (code %d)", what, name,
             natsStatus_GetText(s), last ? ": " : "", last ? last : "", (int)code);
    return kx_bus_errno(s) ? kx_bus_errno(s) : -EIO;
}

int kx_bus_ensure_stream(struct kx_bus *b, const struct kx_stream_spec *sp, char *err,
                         size_t errlen)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode code = 0;
    const char *subjects[1] = {sp->subjects};

    jsStreamConfig_Init(&cfg);
    cfg.Name = sp->name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.MaxAge = sp->max_age;
    cfg.MaxBytes = sp->max_bytes ? sp->max_bytes : -1;
    cfg.Duplicates = sp->duplicates;
    cfg.Replicas = sp->replicas > 0 ? sp->replicas : 1;
    cfg.MaxMsgSize = sp->max_msg_size ? sp->max_msg_size : -1;
    cfg.AllowDirect = true;

    natsStatus s = js_AddStream(&si, b->js, &cfg, NULL, &code);
    if (s != NATS_OK && code == JSStreamNameExistErr) {
        /* Exists with other settings: converge (e.g. a changed max_age). */
        code = 0;
        s = js_UpdateStream(&si, b->js, &cfg, NULL, &code);
    }
    jsStreamInfo_Destroy(si);
    return s == NATS_OK ? 0 : js_fail(err, errlen, "create stream", sp->name, s, code);
}

int kx_bus_ensure_all_streams(struct kx_bus *b, int replicas, int64_t alerts_max_age,
                              int64_t events_max_age, char *err, size_t errlen)
{
    const int64_t week = 7 * 24 * 3600 * KX_NSEC_PER_SEC;
    const struct kx_stream_spec specs[] = {
        {KX_STREAM_ALERTS, KX_SUBJ_ALERTS ".>", alerts_max_age ? alerts_max_age : week, 0,
         2 * 60 * KX_NSEC_PER_SEC, replicas, 0},
        {KX_STREAM_EVENTS, KX_SUBJ_EVENTS ".>", events_max_age ? events_max_age : week, 0,
         2 * 60 * KX_NSEC_PER_SEC, replicas, 0},
        {KX_STREAM_AUDIT, KX_SUBJ_AUDIT ".>", events_max_age ? events_max_age : week, 0, 0,
         replicas, 0},
        {KX_STREAM_DEADLETTER, KX_SUBJ_DEADLETTER ".>", 4 * week, 0, 0, replicas, 0},
    };
    for (size_t i = 0; i < KX_ARRAY_SIZE(specs); i++) {
        int rc = kx_bus_ensure_stream(b, &specs[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int kx_bus_ensure_consumer(struct kx_bus *b, const struct kx_consumer_spec *c, char *err,
                           size_t errlen)
{
    jsConsumerConfig cfg;
    jsConsumerInfo *ci = NULL;
    jsErrCode code = 0;

    jsConsumerConfig_Init(&cfg);
    cfg.Durable = c->durable;
    cfg.AckPolicy = js_AckExplicit;
    cfg.DeliverPolicy = c->deliver_new ? js_DeliverNew : js_DeliverAll;
    cfg.AckWait = c->ack_wait;
    cfg.MaxDeliver = c->max_deliver ? c->max_deliver : -1;
    cfg.BackOff = (int64_t *)c->backoff;
    cfg.BackOffLen = c->backoff_len;
    cfg.FilterSubject = c->filter;
    cfg.MaxAckPending = c->max_ack_pending ? c->max_ack_pending : 1000;

    natsStatus s = js_AddConsumer(&ci, b->js, c->stream, &cfg, NULL, &code);
    if (s != NATS_OK && code != 0) {
        /* An existing durable with other settings: update what may change. */
        jsErrCode code2 = 0;
        s = js_UpdateConsumer(&ci, b->js, c->stream, &cfg, NULL, &code2);
        code = code2;
    }
    jsConsumerInfo_Destroy(ci);
    return s == NATS_OK ? 0 : js_fail(err, errlen, "create consumer", c->durable, s, code);
}

int kx_bus_publish(struct kx_bus *b, const char *subject, const void *data, size_t len,
                   const char *msg_id, const char *hdr_name, const char *hdr_value, int64_t timeout,
                   char *err, size_t errlen)
{
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    jsPubOptions po;
    jsErrCode code = 0;
    natsStatus s;
    int rc;

    if (len > INT32_MAX) {
        snprintf(err, errlen, "message of %zu bytes is too large", len);
        return -E2BIG;
    }
    s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s == NATS_OK && hdr_name && hdr_value) {
        /* A header value is one line: fold CR/LF from error texts. */
        char clean[1024];
        size_t i = 0;
        for (; hdr_value[i] && i + 1 < sizeof(clean); i++)
            clean[i] = (hdr_value[i] == '\r' || hdr_value[i] == '\n') ? ' ' : hdr_value[i];
        clean[i] = '\0';
        s = natsMsgHeader_Set(msg, hdr_name, clean);
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "cannot build message for %s: %s", subject, natsStatus_GetText(s));
        natsMsg_Destroy(msg);
        return kx_bus_errno(s);
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = (timeout > 0 ? timeout : 5 * KX_NSEC_PER_SEC) / KX_NSEC_PER_MSEC;

    s = js_PublishMsg(&ack, b->js, msg, &po, &code);
    if (s == NATS_OK) {
        rc = ack && ack->Duplicate ? 1 : 0;
    } else {
        const char *last = nats_GetLastError(NULL);
        snprintf(err, errlen, "publish to %s failed: %s%s%s", subject, natsStatus_GetText(s),
                 last ? ": " : "", last ? last : "");
        rc = kx_bus_errno(s);
    }
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return rc;
}

/* Asks for each stream's info within one budget: /readyz answers a probe
 * that gives up after a second (Kubernetes' default timeoutSeconds). */
#define STREAMS_PRESENT_BUDGET (750 * KX_NSEC_PER_MSEC)

int kx_bus_streams_present(struct kx_bus *b, char *err, size_t errlen)
{
    static const char *const streams[] = {KX_STREAM_ALERTS, KX_STREAM_EVENTS, KX_STREAM_AUDIT,
                                          KX_STREAM_DEADLETTER};
    int64_t deadline = kx_monotonic_ns() + STREAMS_PRESENT_BUDGET;

    if (!kx_bus_connected(b)) {
        snprintf(err, errlen, "NATS is not connected");
        return -ENOTCONN;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(streams); i++) {
        int64_t left = deadline - kx_monotonic_ns();
        jsStreamInfo *si = NULL;
        jsErrCode code = 0;
        jsOptions o;

        if (left < KX_NSEC_PER_MSEC) {
            snprintf(err, errlen, "JetStream: no answer about stream %s within %lld ms", streams[i],
                     (long long)(STREAMS_PRESENT_BUDGET / KX_NSEC_PER_MSEC));
            return -ETIMEDOUT;
        }
        jsOptions_Init(&o);
        o.Wait = left / KX_NSEC_PER_MSEC;
        natsStatus s = js_GetStreamInfo(&si, b->js, streams[i], &o, &code);
        jsStreamInfo_Destroy(si);
        if (s == NATS_OK)
            continue;
        if (code == JSStreamNotFoundErr || (s == NATS_NOT_FOUND && code == 0)) {
            snprintf(err, errlen, "stream %s is missing (a hub restart re-creates it)", streams[i]);
            return -ENOENT;
        }
        /* -ENOENT means a missing stream to the caller: "no responders"
         * (JetStream off) is a NATS failure. */
        int rc = js_fail(err, errlen, "get info of stream", streams[i], s, code);
        return rc == -ENOENT ? -EIO : rc;
    }
    return 0;
}
