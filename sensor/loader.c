/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loader.c - BPF lifecycle and ring buffer polling (see loader.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "exec.skel.h"
#include "loader.h"
#include "log.h"

#define KX_BTF_PATH "/sys/kernel/btf/vmlinux"

struct kx_loader {
    struct exec_bpf *skel;     /* owned: programs, maps, links */
    struct ring_buffer *rb;    /* owned */
    kx_loader_exec_fn on_exec; /* borrowed */
    void *ctx;                 /* borrowed */
    uint64_t events;           /* poll thread */
    uint64_t bad_records;      /* poll thread */
};

/* libbpf's messages through our log: its warnings (verifier output, missing
 * BTF) are what explains a load failure. */
static int loader_on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    enum kx_log_level kl = level == LIBBPF_WARN ? KX_LOG_WARN : KX_LOG_DEBUG;
    char msg[1024];
    size_t n;

    if (!kx_log_enabled(kl))
        return 0;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    if (n > 0)
        kx_log(kl, "%s%s", strncmp(msg, "libbpf: ", 8) == 0 ? "" : "libbpf: ", msg);
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kx_loader_ensure_tracefs(char *err, size_t errlen)
{
    /* libbpf 1.1 looks in /sys/kernel/debug/tracing when that path exists
     * (debugfs mounted), else in /sys/kernel/tracing: make whichever it
     * will pick usable. */
    static const char *const dirs[] = {"/sys/kernel/debug/tracing", "/sys/kernel/tracing"};
    char events[64];
    int rc;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (!is_dir(dirs[i]))
            continue;
        snprintf(events, sizeof(events), "%s/events", dirs[i]);
        if (access(events, F_OK) == 0)
            return 0;
        if (mount("tracefs", dirs[i], "tracefs", 0, NULL) == 0) {
            if (access(events, F_OK) == 0) {
                kx_info("mounted tracefs at %s (needed to look up tracepoints)", dirs[i]);
                return 0;
            }
            errno = ENOENT;
        }
        rc = errno ? -errno : -ENOENT;
        snprintf(err, errlen,
                 "tracefs is not mounted and mounting it at %s failed: %s (mount tracefs "
                 "there on the host, or run the sensor privileged)",
                 dirs[i], strerror(-rc));
        return rc;
    }
    snprintf(err, errlen,
             "no tracefs directory (/sys/kernel/tracing): is this kernel built with "
             "CONFIG_TRACING and /sys mounted?");
    return -ENOENT;
}

/* Runs on the poll thread, once per ring buffer record. */
static int loader_on_record(void *ctx, void *data, size_t size)
{
    struct kx_loader *l = ctx;
    const struct kx_event_hdr *h = data;
    struct kx_exec_event e;

    if (size < sizeof(*h) || h->type != KX_EVENT_EXEC || h->size != sizeof(e) || size < sizeof(e)) {
        l->bad_records++;
        return 0; /* skip it, keep polling */
    }
    memcpy(&e, data, sizeof(e)); /* a private copy we can NUL-terminate */
    e.comm[sizeof(e.comm) - 1] = '\0';
    e.pcomm[sizeof(e.pcomm) - 1] = '\0';
    e.filename[sizeof(e.filename) - 1] = '\0';
    if (e.args_len > sizeof(e.args))
        e.args_len = sizeof(e.args);
    l->events++;
    l->on_exec(l->ctx, &e);
    return 0;
}

struct kx_loader *kx_loader_start(kx_loader_exec_fn on_exec, void *ctx, char *err, size_t errlen)
{
    struct kx_loader *l = NULL;
    int rc;

    if (!on_exec) {
        snprintf(err, errlen, "no event handler");
        errno = EINVAL;
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->on_exec = on_exec;
    l->ctx = ctx;
    libbpf_set_print(loader_on_libbpf_print);

    if (access(KX_BTF_PATH, R_OK) != 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "cannot read %s: %s (the sensor needs a kernel with CONFIG_DEBUG_INFO_BTF; "
                 "are you root?)",
                 KX_BTF_PATH, strerror(-rc));
        goto cleanup;
    }
    rc = kx_loader_ensure_tracefs(err, errlen);
    if (rc < 0)
        goto cleanup;

    l->skel = exec_bpf__open();
    if (!l->skel) {
        rc = -errno;
        snprintf(err, errlen, "cannot open BPF object exec.bpf.o: %s", strerror(-rc));
        goto cleanup;
    }
    /* rodata is frozen by load: set it now. */
    l->skel->rodata->kx_self_tgid = (__u32)getpid();

    rc = exec_bpf__load(l->skel);
    if (rc) {
        rc = rc < 0 ? rc : -EINVAL;
        snprintf(err, errlen, "cannot load BPF program: %s (are you root? is %s present?)",
                 strerror(-rc), KX_BTF_PATH);
        goto cleanup;
    }
    rc = exec_bpf__attach(l->skel);
    if (rc) {
        rc = rc < 0 ? rc : -EINVAL;
        snprintf(err, errlen,
                 "cannot attach BPF program to tracepoint sched:sched_process_exec: %s "
                 "(are you root? is tracefs mounted at /sys/kernel/tracing?)",
                 strerror(-rc));
        goto cleanup;
    }
    l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.kx_events), loader_on_record, l, NULL);
    if (!l->rb) {
        rc = -errno;
        snprintf(err, errlen, "cannot set up the BPF ring buffer: %s", strerror(-rc));
        goto cleanup;
    }
    return l;

cleanup:
    kx_loader_free(l);
    errno = -rc;
    return NULL;
}

int kx_loader_poll(struct kx_loader *l, int timeout_ms)
{
    int n;

    if (!l)
        return -EINVAL;
    n = ring_buffer__poll(l->rb, timeout_ms);
    return n;
}

void kx_loader_stats(struct kx_loader *l, struct kx_loader_stats *out)
{
    int ncpu = libbpf_num_possible_cpus();
    __u32 key = KX_DROP_RINGBUF_FULL;
    __u64 *vals;

    memset(out, 0, sizeof(*out));
    if (!l)
        return;
    out->events = l->events;
    out->bad_records = l->bad_records;
    if (ncpu <= 0)
        return;
    vals = calloc((size_t)ncpu, sizeof(*vals));
    if (!vals)
        return;
    if (bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.kx_drops), &key, vals) == 0)
        for (int i = 0; i < ncpu; i++)
            out->kernel_drops += vals[i];
    free(vals);
}

void kx_loader_free(struct kx_loader *l)
{
    if (!l)
        return;
    ring_buffer__free(l->rb);
    exec_bpf__destroy(l->skel); /* detaches, unloads; NULL-safe */
    free(l);
}
