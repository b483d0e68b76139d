/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.c - the built-in detection rules and their Falco-style alerts
 * (see rules.h).
 *
 * "Terminal shell in container" follows Falco's rule of that name, minus its
 * tty condition (the first cut: any shell binary exec'd inside a container
 * cgroup), with Falco's priority, tags and output field names, so tools that
 * already read Falco's alert read ours.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rules.h"
#include "util.h"

/* Falco's shell_binaries list. */
static const char *const kx_shell_binaries[] = {
    "ash", "bash", "csh", "ksh", "sh", "tcsh", "zsh", "dash", "fish",
};

bool kx_rules_is_shell(const char *name)
{
    if (!name)
        return false;
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_shell_binaries); i++)
        if (strcmp(name, kx_shell_binaries[i]) == 0)
            return true;
    return false;
}

bool kx_rules_in_container(const struct kx_proc_event *ev)
{
    return ev && ev->ctr && ev->ctr->runtime != KX_RUNTIME_NONE && ev->ctr->id[0];
}

static bool rule_shell_in_container(const struct kx_proc_event *ev)
{
    return ev->evt_type && strcmp(ev->evt_type, "execve") == 0 && kx_rules_in_container(ev) &&
           kx_rules_is_shell(ev->name);
}

static const char *const kx_tags_shell[] = {"container", "shell", "mitre_execution", "T1059", NULL};

static const struct kx_rule kx_builtin_rules[] = {
    {
        .name = "Terminal shell in container",
        .desc = "A shell binary was executed inside a container cgroup",
        .priority = KX_PRI_NOTICE,
        .source = "syscall",
        .tags = kx_tags_shell,
        .match = rule_shell_in_container,
        .message = "A shell was spawned in a container",
    },
};

const struct kx_rule *kx_rules_builtin(size_t *n)
{
    if (n)
        *n = KX_ARRAY_SIZE(kx_builtin_rules);
    return kx_builtin_rules;
}

size_t kx_rules_match(const struct kx_proc_event *ev, const struct kx_rule **out, size_t max)
{
    size_t n = 0;

    if (!ev || !out)
        return 0;
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_builtin_rules) && n < max; i++)
        if (kx_builtin_rules[i].match(ev))
            out[n++] = &kx_builtin_rules[i];
    return n;
}

/* Falco prints absent values as "<NA>". */
static const char *na(const char *s)
{
    return s && *s ? s : "<NA>";
}

struct cmd_writer {
    char *out;  /* borrowed */
    size_t cap; /* bytes in out, NUL included */
    size_t w;   /* bytes written */
    bool cut;   /* ran out of room */
};

static void cmd_put(struct cmd_writer *cw, char c)
{
    if (cw->cut)
        return;
    if (cw->w + 1 >= cw->cap) {
        cw->cut = true;
        return;
    }
    cw->out[cw->w++] = (c >= 0x20 && c < 0x7f) ? c : '.';
}

void kx_rules_format_cmdline(const char *name, const char *raw, size_t len, char *out,
                             size_t outlen)
{
    struct cmd_writer cw = {.out = out, .cap = outlen};
    size_t start = 0;

    if (!out || outlen == 0)
        return;
    if (!raw)
        len = 0;
    if (name)
        for (const char *p = name; *p; p++)
            cmd_put(&cw, *p);

    /* argv[0] is replaced by name, like Falco's proc.cmdline; each NUL ends
     * an argument, so a final NUL adds no empty argument. */
    for (size_t argi = 0; start < len && !cw.cut; argi++) {
        const char *nul = memchr(raw + start, '\0', len - start);
        size_t end = nul ? (size_t)(nul - raw) : len;

        if (argi > 0 || !name) {
            if (argi > 0)
                cmd_put(&cw, ' ');
            for (size_t i = start; i < end; i++)
                cmd_put(&cw, raw[i]);
        }
        start = end + 1;
    }
    if (cw.cut && outlen >= 4) {
        size_t at = cw.w < outlen - 4 ? cw.w : outlen - 4;

        memcpy(out + at, "...", 4);
        return;
    }
    out[cw.w] = '\0';
}

/* "HH:MM:SS.nnnnnnnnn", UTC, like Falco's default output prefix. */
static void format_clock(int64_t ns, char *buf, size_t len)
{
    time_t s = (time_t)(ns / KX_NSEC_PER_SEC);
    struct tm tm;

    gmtime_r(&s, &tm);
    snprintf(buf, len, "%02d:%02d:%02d.%09lld", tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(ns % KX_NSEC_PER_SEC));
}

struct kx_alert *kx_rules_alert(const struct kx_rule *r, const struct kx_proc_event *ev,
                                const char *hostname)
{
    const struct kx_container *ctr = ev ? ev->ctr : NULL;
    char clock[32], pod[64] = "";
    struct kx_alert *a = NULL;
    struct kx_buf out;
    int64_t t;
    int rc;

    if (!r || !ev) {
        errno = EINVAL;
        return NULL;
    }
    t = ev->time_ns ? ev->time_ns : kx_now_ns();
    format_clock(t, clock, sizeof(clock));
    if (ctr && ctr->pod_uid[0])
        snprintf(pod, sizeof(pod), " k8s_pod_uid=%s", ctr->pod_uid);

    kx_buf_init(&out, 16 * 1024);
    rc = kx_buf_printf(&out,
                       "%s: %s %s (evt_type=%s user=%s user_uid=%lld process=%s "
                       "proc_exepath=%s parent=%s command=%s container_id=%s "
                       "container_full_id=%s%s)",
                       clock, kx_priority_name(r->priority), r->message, na(ev->evt_type),
                       na(ev->user_name), (long long)ev->uid, na(ev->name), na(ev->exepath),
                       na(ev->pname), na(ev->cmdline), ctr ? na(ctr->id) : "host",
                       ctr ? na(ctr->full_id) : "<NA>", pod);
    if (rc < 0) {
        /* A huge command line: keep the alert, shorten the text. */
        kx_buf_reset(&out);
        rc = kx_buf_printf(&out, "%s: %s %s (process=%s container_id=%s ...)", clock,
                           kx_priority_name(r->priority), r->message, na(ev->name),
                           ctr ? na(ctr->id) : "host");
        if (rc < 0)
            goto cleanup;
    }

    a = kx_alert_new(r->name, r->priority, r->source, hostname, out.data, t);
    if (!a) {
        rc = -errno;
        goto cleanup;
    }
    for (const char *const *tag = r->tags; tag && *tag; tag++)
        if ((rc = kx_alert_add_tag(a, *tag)) < 0)
            goto cleanup;

    if ((rc = kx_alert_set_str(a, "evt.type", na(ev->evt_type))) < 0 ||
        (rc = kx_alert_set_str(a, "proc.name", na(ev->name))) < 0 ||
        (rc = kx_alert_set_str(a, "proc.exepath", na(ev->exepath))) < 0 ||
        (rc = kx_alert_set_str(a, "proc.cmdline", na(ev->cmdline))) < 0 ||
        (rc = kx_alert_set_int(a, "proc.pid", ev->pid)) < 0 ||
        (rc = kx_alert_set_int(a, "proc.ppid", ev->ppid)) < 0 ||
        (rc = kx_alert_set_str(a, "proc.pname", na(ev->pname))) < 0 ||
        (rc = kx_alert_set_int(a, "user.uid", ev->uid)) < 0 ||
        (rc = kx_alert_set_str(a, "user.name", na(ev->user_name))) < 0 ||
        (rc = kx_alert_set_str(a, "container.id", ctr && ctr->id[0] ? ctr->id : "host")) < 0 ||
        (rc = kx_alert_set_str(a, "container.full_id", ctr ? na(ctr->full_id) : "<NA>")) < 0)
        goto cleanup;
    if (ctr && ctr->pod_uid[0] && (rc = kx_alert_set_str(a, "k8s.pod.uid", ctr->pod_uid)) < 0)
        goto cleanup;
    rc = 0;

cleanup:
    kx_buf_free(&out);
    if (rc < 0) {
        kx_alert_free(a);
        errno = -rc;
        return NULL;
    }
    return a;
}
