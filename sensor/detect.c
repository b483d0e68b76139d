/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.c - kernel record -> process table -> decode -> rules -> alert ->
 * publisher queue (see detect.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "log.h"
#include "util.h"

#define KX_MAX_MATCHES 8
#define KX_POD_LABELS 64 /* labels of one pod the rules can see */

/* The pod of the event being decoded, in the shape struct kx_spod borrows. */
struct pod_view {
    struct kx_pods *pods; /* borrowed */
    struct kx_pod_info info;
    char labels[KX_POD_LABELS_MAX + 1]; /* info.labels split in place */
    const char *k[KX_POD_LABELS], *v[KX_POD_LABELS];
};

struct kx_detect {
    char *hostname;                /* owned */
    struct kx_publisher *pub;      /* borrowed */
    const struct kx_ruleset *rs;   /* borrowed */
    struct kx_cgroup_resolver *cg; /* owned */
    struct kx_proctable *pt;       /* owned */
    struct kx_decode *dec;         /* owned */
    struct kx_sevent ev;           /* scratch: the event being evaluated */
    bool wants[KX_K_MAX];          /* kinds some rule can match */
    struct pod_view pod;           /* scratch for the pod lookup */
    struct kx_detect_stats st;     /* poll thread */
};

struct kx_detect *kx_detect_new(const char *hostname, struct kx_publisher *pub,
                                const struct kx_ruleset *rs)
{
    struct kx_detect *d;

    if (!hostname || !pub || !rs) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->hostname = strdup(hostname);
    d->cg = kx_cgroup_resolver_new();
    d->pt = kx_proctable_new("/proc");
    if (d->hostname && d->cg && d->pt)
        d->dec = kx_decode_new(hostname, d->pt, d->cg);
    if (!d->dec) {
        kx_detect_free(d);
        errno = ENOMEM;
        return NULL;
    }
    d->pub = pub;
    d->rs = rs;
    kx_ruleset_kinds(rs, d->wants);
    return d;
}

void kx_detect_free(struct kx_detect *d)
{
    if (!d)
        return;
    kx_decode_free(d->dec);
    kx_proctable_free(d->pt);
    kx_cgroup_resolver_free(d->cg);
    free(d->hostname);
    free(d);
}

size_t kx_detect_scan(struct kx_detect *d)
{
    return kx_proctable_scan(d->pt);
}

/* kx_decode_pod_fn: the cache's copy, with "app:web,tier:front" split into
 * the key and value arrays the rules index. Poll thread. */
static int detect_on_pod(void *ctx, const char *pod_uid, const char *container_full_id,
                         struct kx_spod *out, const char **container_name)
{
    struct pod_view *pv = ctx;
    size_t n = 0;
    char *save = NULL, *tok;

    if (kx_pods_lookup(pv->pods, pod_uid, container_full_id, &pv->info) != 1)
        return 0;
    memcpy(pv->labels, pv->info.labels, sizeof(pv->labels));
    for (tok = strtok_r(pv->labels, ",", &save); tok && n < KX_POD_LABELS;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');

        if (!colon)
            continue;
        *colon = '\0';
        pv->k[n] = tok;
        pv->v[n] = colon + 1;
        n++;
    }
    out->ns = pv->info.ns[0] ? pv->info.ns : NULL;
    out->name = pv->info.name[0] ? pv->info.name : NULL;
    out->label_k = pv->k;
    out->label_v = pv->v;
    out->n_labels = n;
    *container_name = pv->info.container[0] ? pv->info.container : NULL;
    return 1;
}

void kx_detect_set_pods(struct kx_detect *d, struct kx_pods *pods)
{
    d->pod.pods = pods;
    kx_decode_set_pods(d->dec, pods ? detect_on_pod : NULL, &d->pod);
}

void kx_detect_tick(struct kx_detect *d)
{
    kx_proctable_sweep(d->pt, kx_monotonic_ns());
    kx_decode_sync_clock(d->dec);
}

void kx_detect_stats(const struct kx_detect *d, struct kx_detect_stats *out)
{
    if (d && out)
        *out = d->st;
}

void kx_detect_proc_stats(const struct kx_detect *d, struct kx_proctable_stats *out)
{
    kx_proctable_stats(d->pt, out);
}

static void publish(struct kx_detect *d, const struct kx_rule *r, const struct kx_sevent *ev)
{
    struct kx_alert *a = kx_rule_alert(r, ev);
    char *json = a ? kx_alert_to_json(a) : NULL;

    if (!json) {
        d->st.alert_errors++;
        kx_error("rule \"%s\": cannot build alert for pid %lld: %s", kx_rule_name(r),
                 (long long)ev->proc.pid, strerror(errno ? errno : ENOMEM));
        kx_alert_free(a);
        return;
    }
    kx_info("alert: %s: %s (%s pid=%lld %s container=%s)", kx_priority_name(kx_rule_priority(r)),
            kx_rule_name(r), ev->type, (long long)ev->proc.pid,
            ev->proc.name ? ev->proc.name : "?", ev->container_id);
    /* push takes json, also when it fails (only after stop). */
    if (kx_publisher_push(d->pub, &json, strlen(json), a->uuid) < 0)
        d->st.alert_errors++;
    else
        d->st.alerts++;
    kx_alert_free(a);
}

void kx_detect_on_event(void *ctx, const struct kx_event *e, size_t len)
{
    struct kx_detect *d = ctx;
    const struct kx_rule *matched[KX_MAX_MATCHES];
    size_t n;

    if (e->kind >= KX_K_MAX)
        return;
    d->st.events[e->kind]++;
    kx_proctable_apply(d->pt, e, len);
    if (!d->wants[e->kind])
        return; /* FORK/EXIT only feed the table, unless a rule asks for them */
    if (kx_decode_event(d->dec, e, len, &d->ev) < 0) {
        d->st.decode_errors++;
        return;
    }
    if (strcmp(d->ev.container_id, "host") != 0)
        d->st.in_container++;
    if (e->flags & KX_F_KILLED)
        d->st.killed++;
    n = kx_ruleset_match(d->rs, &d->ev, matched, KX_MAX_MATCHES);
    for (size_t i = 0; i < n; i++)
        publish(d, matched[i], &d->ev);
}
