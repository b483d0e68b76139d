/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_filter.c - libFuzzer target for the alert filter's two parsers
 * (hub/filter.c): a query string from any client (GET /api/v1/alerts,
 * /api/v1/audit, /ws) and a WebSocket client's {"filter":{...}}. Either is
 * refused with a reason, or gives a filter that prints, matches and, for
 * the live feed, reads back from its own printout to the same filter.
 *
 * The first byte picks the parser: 0..2 a query string for that use, else
 * the rest is JSON.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "util.h"

static const char *sample =
    "{\"uuid\":\"5b8c0000-0000-4000-8000-000000000001\",\"time\":\"2026-11-22T10:01:02Z\","
    "\"priority\":\"Warning\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"shell\",\"tags\":[\"shell\"],\"output_fields\":"
    "{\"k8s.ns.name\":\"shop\",\"k8s.pod.name\":\"web-1\",\"proc.pid\":42,\"x\":true,"
    "\"klaxon.responder\":\"kill\",\"klaxon.result\":\"acted\"}}";

/* Prints f, checks the printout reads back (live-feed filters), matches a sample. */
static void exercise(const struct kx_filter *f, bool ws)
{
    cJSON *o = kx_filter_to_json(f);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;

    if (ws && s) {
        struct kx_filter g;
        char err[256] = "";
        if (kx_filter_from_json(&g, o, err, sizeof(err)) != 0)
            abort(); /* what we print for /ws we must read back */
        cJSON *o2 = kx_filter_to_json(&g);
        char *s2 = o2 ? cJSON_PrintUnformatted(o2) : NULL;
        if (s2 && strcmp(s, s2) != 0)
            abort();
        free(s2);
        cJSON_Delete(o2);
        kx_filter_free(&g);
    }
    free(s);
    cJSON_Delete(o);

    char err[256];
    struct kx_alert *a = kx_alert_parse(sample, strlen(sample), err, sizeof(err));
    if (a) {
        bool m = kx_filter_match(f, a);
        /* the raw pre-check may only rule out what does not match */
        if (m && !kx_filter_may_match_raw(f, sample, strlen(sample)))
            abort();
    }
    kx_alert_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kx_filter f;
    char err[256] = "";
    char *text;
    int rc;

    if (size < 1)
        return 0;
    if (!(text = malloc(size)))
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] <= KX_FILTER_Q_WS) {
        enum kx_filter_use use = (enum kx_filter_use)data[0];
        rc = kx_filter_from_query(&f, text, use, 1795521600LL * KX_NSEC_PER_SEC, err, sizeof(err));
        if (rc == 0) {
            if (f.limit < 1 || f.limit > KX_FILTER_LIMIT_MAX ||
                (f.since && f.until && f.since > f.until))
                abort();
            exercise(&f, use == KX_FILTER_Q_WS);
        }
    } else {
        cJSON *o = cJSON_ParseWithLength((const char *)data + 1, size - 1);
        memset(&f, 0, sizeof(f));
        rc = o ? kx_filter_from_json(&f, o, err, sizeof(err)) : 0;
        if (o && rc == 0)
            exercise(&f, true);
        cJSON_Delete(o);
    }
    if (rc == -EINVAL && (!err[0] || strchr(err, '\n')))
        abort(); /* a refusal says why, on one line */
    kx_filter_free(&f);
    free(text);
    return 0;
}
