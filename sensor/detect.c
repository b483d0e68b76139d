/* SPDX-License-Identifier: Apache-2.0 */
/*
 * detect.c - kernel exec record -> attribution -> rules -> alert -> publisher
 * queue (see detect.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "detect.h"
#include "log.h"
#include "util.h"

#define KX_CMDLINE_RAW_MAX 4096 /* bytes of /proc/<pid>/cmdline read */
#define KX_CMDLINE_MAX 4096     /* bytes of proc.cmdline kept */
#define KX_MAX_MATCHES 8

struct kx_detect {
    char *hostname;                /* owned */
    struct kx_publisher *pub;      /* borrowed */
    struct kx_cgroup_resolver *cg; /* owned */
    struct kx_detect_stats st;     /* poll thread */
};

struct kx_detect *kx_detect_new(const char *hostname, struct kx_publisher *pub)
{
    struct kx_detect *d;

    if (!hostname || !pub) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->hostname = strdup(hostname);
    d->cg = kx_cgroup_resolver_new();
    if (!d->hostname || !d->cg) {
        kx_detect_free(d);
        errno = ENOMEM;
        return NULL;
    }
    d->pub = pub;
    return d;
}

void kx_detect_free(struct kx_detect *d)
{
    if (!d)
        return;
    kx_cgroup_resolver_free(d->cg);
    free(d->hostname);
    free(d);
}

void kx_detect_stats(const struct kx_detect *d, struct kx_detect_stats *out)
{
    if (d && out)
        *out = d->st;
}

void kx_detect_fill(const struct kx_exec_event *e, const struct kx_container *ctr,
                    int64_t mono_to_real_ns, struct kx_proc_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->evt_type = "execve"; /* sched_process_exec does not say execve or execveat */
    ev->time_ns = (int64_t)e->ktime_ns + mono_to_real_ns;
    ev->name = e->comm;
    ev->exepath = e->filename;
    ev->pid = e->tgid;
    ev->ppid = e->ppid;
    ev->pname = e->pcomm;
    ev->uid = e->uid;
    ev->ctr = ctr && ctr->runtime != KX_RUNTIME_NONE ? ctr : NULL;
}

/* proc.cmdline, best effort: the argv the kernel captured at exec when it
 * is complete, else /proc/<pid>/cmdline (longer), else the captured start
 * with "...", else "" (unknown). */
static void event_cmdline(const struct kx_exec_event *e, char *out, size_t outlen)
{
    char path[64], *raw;
    ssize_t n = -1;
    int fd;

    out[0] = '\0';
    if (e->args_len > 0 && !(e->flags & KX_EXEC_F_ARGS_TRUNC)) {
        kx_rules_format_cmdline(e->comm, e->args, e->args_len, out, outlen);
        return;
    }
    raw = malloc(KX_CMDLINE_RAW_MAX);
    if (raw) {
        snprintf(path, sizeof(path), "/proc/%u/cmdline", e->tgid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            n = read(fd, raw, KX_CMDLINE_RAW_MAX);
            close(fd);
        }
        if (n > 0)
            kx_rules_format_cmdline(e->comm, raw, (size_t)n, out, outlen);
        free(raw);
    }
    if (!out[0] && e->args_len > 0) {
        size_t len;

        kx_rules_format_cmdline(e->comm, e->args, e->args_len, out, outlen);
        len = strlen(out);
        if (len + 4 <= outlen && (len < 3 || strcmp(out + len - 3, "...") != 0))
            memcpy(out + len, "...", 4);
    }
}

/* user.name, best effort (NSS may not know container users). */
static void lookup_user(uid_t uid, char *out, size_t outlen)
{
    struct passwd pw, *res = NULL;
    char buf[1024];

    out[0] = '\0';
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
        snprintf(out, outlen, "%s", res->pw_name);
}

void kx_detect_on_exec(void *ctx, const struct kx_exec_event *e)
{
    struct kx_detect *d = ctx;
    const struct kx_rule *matched[KX_MAX_MATCHES];
    struct kx_container ctr;
    struct kx_proc_event ev;
    char *cmdline = NULL, user[64];
    size_t n;
    int rc;

    d->st.execs++;
    rc = kx_cgroup_resolve(d->cg, (pid_t)e->tgid, e->cgroup_id, &ctr);
    if (rc < 0)
        kx_debug("pid %u (%s): no cgroup attribution: %s", e->tgid, e->comm, strerror(-rc));
    else if (rc > 0)
        d->st.in_container++;

    kx_detect_fill(e, &ctr, kx_now_ns() - kx_monotonic_ns(), &ev);
    n = kx_rules_match(&ev, matched, KX_MAX_MATCHES);
    if (n == 0)
        return;

    cmdline = malloc(KX_CMDLINE_MAX);
    if (cmdline) {
        event_cmdline(e, cmdline, KX_CMDLINE_MAX);
        ev.cmdline = cmdline[0] ? cmdline : NULL;
    }
    lookup_user((uid_t)e->uid, user, sizeof(user));
    ev.user_name = user[0] ? user : NULL;

    for (size_t i = 0; i < n; i++) {
        struct kx_alert *a = kx_rules_alert(matched[i], &ev, d->hostname);
        char *json = a ? kx_alert_to_json(a) : NULL;

        if (!json) {
            d->st.alert_errors++;
            kx_error("rule \"%s\": cannot build alert for pid %u: %s", matched[i]->name, e->tgid,
                     strerror(errno ? errno : ENOMEM));
            kx_alert_free(a);
            continue;
        }
        kx_info("alert: %s: %s (pid=%u container=%s)", kx_priority_name(matched[i]->priority),
                matched[i]->name, e->tgid, ctr.id);
        /* push takes json, also when it fails (only after stop). */
        if (kx_publisher_push(d->pub, &json, strlen(json), a->uuid) < 0)
            d->st.alert_errors++;
        else
            d->st.alerts++;
        kx_alert_free(a);
    }
    free(cmdline);
}
