/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.c - the sensor's BPF lifecycle, configuration maps and ring buffer
 * polling with record validation (see probe.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "probe.h"
#include "sensor.skel.h"
#include "sevent.h"

#define KX_BTF_PATH "/sys/kernel/btf/vmlinux"
#define KX_ROOT_HINT "are you root? is " KX_BTF_PATH " present?"

/* Syscall tracepoint name -> kind: one enter/exit program pair each in
 * sensor.bpf.c (kx_enter_<name> / kx_exit_<name>). */
static const struct {
    const char *name;
    enum kx_kind kind;
} kx_probe_syscalls[] = {
    {"open", KX_K_OPEN},
    {"openat", KX_K_OPENAT},
    {"openat2", KX_K_OPENAT2},
    {"unlink", KX_K_UNLINK},
    {"unlinkat", KX_K_UNLINKAT},
    {"rename", KX_K_RENAME},
    {"renameat", KX_K_RENAMEAT},
    {"renameat2", KX_K_RENAMEAT2},
    {"symlink", KX_K_SYMLINK},
    {"symlinkat", KX_K_SYMLINKAT},
    {"link", KX_K_LINK},
    {"linkat", KX_K_LINKAT},
    {"chmod", KX_K_CHMOD},
    {"fchmod", KX_K_FCHMOD},
    {"fchmodat", KX_K_FCHMODAT},
    {"fchmodat2", KX_K_FCHMODAT},
    {"mount", KX_K_MOUNT},
    {"connect", KX_K_CONNECT},
    {"accept", KX_K_ACCEPT},
    {"accept4", KX_K_ACCEPT4},
    {"socket", KX_K_SOCKET},
    {"listen", KX_K_LISTEN},
    {"dup", KX_K_DUP},
    {"dup2", KX_K_DUP2},
    {"dup3", KX_K_DUP3},
    {"setuid", KX_K_SETUID},
    {"setgid", KX_K_SETGID},
    {"setreuid", KX_K_SETREUID},
    {"setregid", KX_K_SETREGID},
    {"setresuid", KX_K_SETRESUID},
    {"setresgid", KX_K_SETRESGID},
    {"capset", KX_K_CAPSET},
    {"unshare", KX_K_UNSHARE},
    {"setns", KX_K_SETNS},
    {"ptrace", KX_K_PTRACE},
    {"init_module", KX_K_INIT_MODULE},
    {"finit_module", KX_K_FINIT_MODULE},
    {"bpf", KX_K_BPF},
    {"memfd_create", KX_K_MEMFD_CREATE},
    {"kill", KX_K_KILL},
    {"tkill", KX_K_TKILL},
    {"tgkill", KX_K_TGKILL},
    {"process_vm_writev", KX_K_PROCESS_VM_WRITEV},
};

struct kx_probe {
    struct sensor_bpf *skel; /* owned: programs, maps */
    struct bpf_link **links; /* owned, one per attached program */
    size_t n_links;
    struct ring_buffer *rb; /* owned */
    kx_probe_fn on_event;   /* borrowed */
    void *ctx;              /* borrowed */
    bool loaded[KX_K_MAX];  /* the kind's programs are loaded */
    bool exec_loaded;       /* kx_on_exec is loaded (EXEC or enforcement) */
    uint64_t events;        /* poll thread */
    uint64_t bad_records;   /* poll thread */
};

/* ---- libbpf's messages ---------------------------------------------------- */

/* The tail of libbpf's warnings since the last reset: on a failed load it
 * holds the verifier's log, which is what explains the failure. libbpf's
 * print callback is process-wide and may run on any thread. */
static pthread_mutex_t probe_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char probe_log[16384]; /* probe_log_lock */
static size_t probe_log_len;  /* probe_log_lock */

static void probe_log_reset(void)
{
    pthread_mutex_lock(&probe_log_lock);
    probe_log_len = 0;
    probe_log[0] = '\0';
    pthread_mutex_unlock(&probe_log_lock);
}

static void probe_log_append(const char *s, size_t n)
{
    size_t cap = sizeof(probe_log) - 1;

    pthread_mutex_lock(&probe_log_lock);
    if (n >= cap) { /* keep the tail */
        s += n - cap;
        n = cap;
    }
    if (probe_log_len + n > cap) {
        size_t drop = probe_log_len + n - cap;

        memmove(probe_log, probe_log + drop, probe_log_len - drop);
        probe_log_len -= drop;
    }
    memcpy(probe_log + probe_log_len, s, n);
    probe_log_len += n;
    probe_log[probe_log_len] = '\0';
    pthread_mutex_unlock(&probe_log_lock);
}

static int probe_on_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    enum kx_log_level kl = level == LIBBPF_WARN ? KX_LOG_WARN : KX_LOG_DEBUG;
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);

    if (n < 0)
        return 0;
    if (level == LIBBPF_WARN)
        probe_log_append(msg, (size_t)n);
    /* a verifier log is long: it goes into the error message, and to the
     * log only at debug level */
    if (strstr(msg, "PROG LOAD LOG"))
        kl = KX_LOG_DEBUG;
    if (kx_log_enabled(kl)) {
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        if (n > 0)
            kx_log(kl, "%s%.*s",
                   strncmp(msg, "libbpf: ", 8) == 0 ? "" : "libbpf: ", n > 2000 ? 2000 : n, msg);
    }
    free(msg);
    return 0;
}

/* Fills err with "what: errno text (hint)" and, when libbpf logged a
 * verifier log, "; verifier: <its tail>". */
static void probe_err_with_log(char *err, size_t errlen, const char *what, int rc, const char *hint)
{
    char tail[1200] = "";
    const char *b, *e;

    pthread_mutex_lock(&probe_log_lock);
    /* the log's start may have scrolled out of probe_log: its end is what
     * says why */
    b = strstr(probe_log, "-- BEGIN PROG LOAD LOG --");
    b = b ? b + strlen("-- BEGIN PROG LOAD LOG --") : probe_log;
    e = strstr(b, "-- END PROG LOAD LOG --");
    if (e) {
        if ((size_t)(e - b) > sizeof(tail) - 1)
            b = e - (sizeof(tail) - 1);
        memcpy(tail, b, (size_t)(e - b));
        tail[e - b] = '\0';
    }
    pthread_mutex_unlock(&probe_log_lock);
    for (char *c = tail; *c; c++)
        if (*c == '\n')
            *c = ' ';
    snprintf(err, errlen, "%s: %s (%s)%s%s", what, strerror(rc < 0 ? -rc : rc), hint,
             tail[0] ? "; verifier: ..." : "", tail);
}

/* The program libbpf last reported as failing to load, from its log. */
static void probe_failed_prog(char *out, size_t len)
{
    const char *p, *last = NULL;

    snprintf(out, len, "?");
    pthread_mutex_lock(&probe_log_lock);
    for (p = probe_log; (p = strstr(p, "prog '")) != NULL; p++)
        if (strstr(p, "': failed to load") == strchr(p + 6, '\''))
            last = p;
    if (last) {
        const char *s = last + 6, *q = strchr(s, '\'');

        snprintf(out, len, "%.*s", (int)(q - s), s);
    }
    pthread_mutex_unlock(&probe_log_lock);
}

/* ---- tracefs -------------------------------------------------------------- */

static bool is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kx_probe_ensure_tracefs(char *err, size_t errlen)
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
        if (errno == EACCES) { /* mounted, but not for us */
            snprintf(err, errlen, "cannot read %s: %s (are you root?)", events, strerror(EACCES));
            return -EACCES;
        }
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

/* Does tracepoint "category/name" exist? (tracefs is mounted by now) */
static bool probe_tp_exists(const char *tp)
{
    static const char *const dirs[] = {"/sys/kernel/debug/tracing", "/sys/kernel/tracing"};
    char path[256];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/events/%s", dirs[i], tp);
        if (access(path, F_OK) == 0)
            return true;
    }
    return false;
}

static bool probe_syscall_tps(const char *name)
{
    char tp[128];

    snprintf(tp, sizeof(tp), "syscalls/sys_enter_%s", name);
    if (!probe_tp_exists(tp))
        return false;
    snprintf(tp, sizeof(tp), "syscalls/sys_exit_%s", name);
    return probe_tp_exists(tp);
}

/* ---- records -------------------------------------------------------------- */

const char *kx_event_str(const struct kx_event *e, int slot, size_t *len)
{
    size_t off = KX_EVENT_FIXED, n;
    const char *s;

    if (!e || slot < 0 || slot >= KX_STR_SLOTS || e->hdr.size > KX_EVENT_MAX)
        return NULL;
    for (int k = 0; k < slot; k++)
        off += e->str_len[k];
    n = e->str_len[slot];
    if (n == 0 || off + n > e->hdr.size)
        return NULL;
    s = (const char *)e + off;
    if (s[n - 1] != '\0')
        return NULL;
    if (len)
        *len = n - 1;
    return s;
}

/* Is the record whole and self-consistent? */
static bool probe_record_ok(const struct kx_event *e, size_t size)
{
    size_t off = KX_EVENT_FIXED;

    if (size < KX_EVENT_FIXED || e->hdr.type != KX_EVENT_RECORD || e->hdr.size < KX_EVENT_FIXED ||
        e->hdr.size > KX_EVENT_MAX || e->hdr.size > size || e->kind >= KX_K_MAX)
        return false;
    for (int k = 0; k < KX_STR_SLOTS; k++) {
        size_t n = e->str_len[k];

        if (n == 0)
            continue;
        if (off + n > e->hdr.size || ((const char *)e)[off + n - 1] != '\0')
            return false;
        off += n;
    }
    return true;
}

/* Runs on the poll thread, once per ring buffer record. */
static int probe_on_record(void *ctx, void *data, size_t size)
{
    struct kx_probe *p = ctx;
    const struct kx_event *e = data;

    if (!probe_record_ok(e, size)) {
        p->bad_records++;
        return 0; /* skip it, keep polling */
    }
    p->events++;
    p->on_event(p->ctx, e, e->hdr.size);
    return 0;
}

/* ---- configuration ---------------------------------------------------------- */

static int probe_put_prefixes(int fd, const char *const *list, size_t n, const char *what,
                              char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        struct kx_prefix v;
        __u32 key = (__u32)i;
        size_t len = list[i] ? strlen(list[i]) : 0;

        if (len == 0 || len >= KX_PREFIX_LEN) {
            snprintf(err, errlen, "%s prefix %zu (\"%.40s\") must be 1..%d bytes", what, i,
                     list[i] ? list[i] : "", KX_PREFIX_LEN - 1);
            return -EINVAL;
        }
        memset(&v, 0, sizeof(v));
        v.len = (__u32)len;
        memcpy(v.s, list[i], len);
        if (bpf_map_update_elem(fd, &key, &v, BPF_ANY) < 0) {
            int rc = -errno;

            snprintf(err, errlen, "cannot write the %s prefix map: %s", what, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Copies a rule zero-padded, as the kernel's word compares need; names are
 * cut at 15 bytes like the kernel's comm. */
static int probe_norm_rule(const struct kx_kill_rule *in, struct kx_kill_rule *out)
{
    memset(out, 0, sizeof(*out));
    if (in->n_names > KX_KILL_NAMES || in->n_paths > KX_KILL_PATHS)
        return -EINVAL;
    out->active = in->active ? 1 : 0;
    out->need_container = in->need_container ? 1 : 0;
    out->n_names = in->n_names;
    out->n_paths = in->n_paths;
    out->path_prefix = in->path_prefix & ((1u << KX_KILL_PATHS) - 1);
    out->id = in->id;
    for (__u32 i = 0; i < in->n_names; i++) {
        size_t n = strnlen(in->names[i], KX_EVENT_COMM_LEN - 1);

        if (n == 0)
            return -EINVAL;
        memcpy(out->names[i], in->names[i], n);
    }
    for (__u32 i = 0; i < in->n_paths; i++) {
        size_t n = strnlen(in->paths[i], KX_KILL_PATH_LEN);

        if (n == 0 || n >= KX_KILL_PATH_LEN)
            return -EINVAL;
        memcpy(out->paths[i], in->paths[i], n);
    }
    return 0;
}

int kx_probe_set_kill(struct kx_probe *p, const struct kx_kill_rule *rules, size_t n)
{
    int fd;

    if (!p || n > KX_KILL_RULES || (n && !rules))
        return -EINVAL;
    fd = bpf_map__fd(p->skel->maps.kx_kill);
    for (__u32 i = 0; i < KX_KILL_RULES; i++) {
        struct kx_kill_rule r;

        memset(&r, 0, sizeof(r));
        if (i < n && probe_norm_rule(&rules[i], &r) < 0)
            return -EINVAL;
        if (bpf_map_update_elem(fd, &i, &r, BPF_ANY) < 0)
            return -errno;
    }
    return 0;
}

int kx_probe_set_kind(struct kx_probe *p, enum kx_kind kind, bool on)
{
    __u32 key = (__u32)kind, v = on ? 1 : 0;

    if (!p || (unsigned)kind >= KX_K_MAX)
        return -EINVAL;
    if (on && !p->loaded[kind])
        return -EOPNOTSUPP;
    if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.kx_kind_on), &key, &v, BPF_ANY) < 0)
        return -errno;
    return 0;
}

int kx_probe_set_enforce(struct kx_probe *p, bool on)
{
    if (!p)
        return -EINVAL;
    if (on && !p->exec_loaded)
        return -EOPNOTSUPP;
    __atomic_store_n(&p->skel->bss->kx_enforce, on ? 1u : 0u, __ATOMIC_RELAXED);
    return 0;
}

bool kx_probe_kind_loaded(const struct kx_probe *p, enum kx_kind kind)
{
    return p && (unsigned)kind < KX_K_MAX && p->loaded[kind];
}

/* ---- start ------------------------------------------------------------------ */

/* Decides which programs load: the wanted kinds, on the tracepoints this
 * kernel has. init_module/finit_module fall back to the raw_syscalls pair
 * when their own tracepoints are missing (kernels without CONFIG_MODULES). */
static int probe_pick_programs(struct kx_probe *p, const bool *want, bool kill, char *err,
                               size_t errlen)
{
    bool mod_wanted = want[KX_K_INIT_MODULE] || want[KX_K_FINIT_MODULE];
    bool mod_fallback =
        mod_wanted && (!probe_syscall_tps("init_module") || !probe_syscall_tps("finit_module"));
    struct bpf_program *prog;

    if (mod_fallback &&
        !probe_tp_exists("raw_syscalls/sys_enter"))
        mod_fallback = false;
    p->exec_loaded = want[KX_K_EXEC] || kill;

    bpf_object__for_each_program(prog, p->skel->obj)
    {
        const char *name = bpf_program__name(prog), *sc = NULL;
        bool load = false;
        int kind = -1;

        if (strcmp(name, "kx_on_exec") == 0) {
            load = p->exec_loaded;
        } else if (strcmp(name, "kx_enter_execveat_mark") == 0 ||
                   strcmp(name, "kx_exit_execveat_mark") == 0) {
            load = p->exec_loaded && probe_syscall_tps("execveat");
        } else if (strcmp(name, "kx_on_fork") == 0) {
            load = want[kind = KX_K_FORK];
        } else if (strcmp(name, "kx_on_exit") == 0) {
            load = want[kind = KX_K_EXIT];
        } else if (strcmp(name, "kx_raw_enter_module") == 0) {
            load = mod_fallback;
            if (load) {
                p->loaded[KX_K_INIT_MODULE] = want[KX_K_INIT_MODULE];
                p->loaded[KX_K_FINIT_MODULE] = want[KX_K_FINIT_MODULE];
            }
        } else if (strncmp(name, "kx_enter_", 9) == 0) {
            sc = name + 9;
        } else if (strncmp(name, "kx_exit_", 8) == 0) {
            sc = name + 8;
        } else {
            snprintf(err, errlen,
                     "BPF program %s: unknown to the loader (sensor.bpf.c and "
                     "probe.c out of step)",
                     name);
            return -EINVAL;
        }
        if (sc) {
            for (size_t i = 0; i < sizeof(kx_probe_syscalls) / sizeof(kx_probe_syscalls[0]); i++)
                if (strcmp(kx_probe_syscalls[i].name, sc) == 0)
                    kind = (int)kx_probe_syscalls[i].kind;
            if (kind < 0) {
                snprintf(err, errlen, "BPF program %s: no such syscall in the loader's table",
                         name);
                return -EINVAL;
            }
            load = want[kind] && probe_syscall_tps(sc);
            if (kind == KX_K_INIT_MODULE || kind == KX_K_FINIT_MODULE)
                load = load && !mod_fallback;
            if (want[kind] && !load && !mod_fallback)
                kx_debug("sensor: no tracepoint syscalls:sys_enter_%s on this kernel", sc);
        }
        if (load && kind >= 0)
            p->loaded[kind] = true;
        if (bpf_program__set_autoload(prog, load) < 0) {
            snprintf(err, errlen, "BPF program %s: cannot set autoload", name);
            return -EINVAL;
        }
    }
    p->loaded[KX_K_EXEC] = want[KX_K_EXEC] && p->exec_loaded;
    for (int k = 0; k < KX_K_MAX; k++)
        if (want[k] && !p->loaded[k])
            kx_warn("sensor: %s events are not available on this kernel (no tracepoint)",
                    kx_kind_name((enum kx_kind)k));
    return 0;
}

static int probe_configure(struct kx_probe *p, const struct kx_probe_opts *o, const bool *want,
                           char *err, size_t errlen)
{
    struct kx_open_cfg cfg = o->open;
    __u32 zero = 0;
    int rc;

    for (__u32 k = 0; k < KX_K_MAX; k++) {
        __u32 v = want[k] && p->loaded[k];

        if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.kx_kind_on), &k, &v, BPF_ANY) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot write the kind map: %s", strerror(-rc));
            return rc;
        }
    }
    if (o->n_read > KX_PREFIX_MAX || o->n_write > KX_PREFIX_MAX ||
        (o->n_read && !o->read_prefixes) || (o->n_write && !o->write_prefixes)) {
        snprintf(err, errlen, "at most %d read and %d write prefixes", KX_PREFIX_MAX,
                 KX_PREFIX_MAX);
        return -EINVAL;
    }
    rc = probe_put_prefixes(bpf_map__fd(p->skel->maps.kx_read_prefix), o->read_prefixes, o->n_read,
                            "read", err, errlen);
    if (rc < 0)
        return rc;
    rc = probe_put_prefixes(bpf_map__fd(p->skel->maps.kx_write_prefix), o->write_prefixes,
                            o->n_write, "write", err, errlen);
    if (rc < 0)
        return rc;
    cfg.read_all = cfg.read_all ? 1 : 0;
    cfg.write_all = cfg.write_all ? 1 : 0;
    cfg.n_read = (__u32)o->n_read;
    cfg.n_write = (__u32)o->n_write;
    if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.kx_open_cfg), &zero, &cfg, BPF_ANY) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot write the open prefilter map: %s", strerror(-rc));
        return rc;
    }
    rc = kx_probe_set_kill(p, o->kill, o->n_kill);
    if (rc < 0) {
        snprintf(err, errlen,
                 rc == -EINVAL ? "invalid kill rules (at most %d rules of %d names and %d "
                                 "paths, each path 1..%d bytes)"
                               : "cannot write the kill rule map (%d)",
                 KX_KILL_RULES, KX_KILL_NAMES, KX_KILL_PATHS, KX_KILL_PATH_LEN - 1);
        return rc;
    }
    p->skel->bss->kx_enforce = o->enforce && o->n_kill ? 1 : 0;
    return 0;
}

static int probe_attach(struct kx_probe *p, char *err, size_t errlen)
{
    struct bpf_program *prog;
    size_t n = 0;

    bpf_object__for_each_program(prog, p->skel->obj) n++;
    p->links = calloc(n, sizeof(*p->links));
    if (!p->links) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    bpf_object__for_each_program(prog, p->skel->obj)
    {
        struct bpf_link *l;

        if (!bpf_program__autoload(prog))
            continue;
        l = bpf_program__attach(prog);
        if (!l) {
            int rc = -errno;

            snprintf(err, errlen,
                     "cannot attach BPF program %s to %s: %s (are you root? is tracefs "
                     "mounted at /sys/kernel/tracing?)",
                     bpf_program__name(prog), bpf_program__section_name(prog), strerror(-rc));
            return rc ? rc : -EINVAL;
        }
        p->links[p->n_links++] = l;
    }
    return 0;
}

struct kx_probe *kx_probe_start(const struct kx_probe_opts *o, char *err, size_t errlen)
{
    struct kx_probe *p = NULL;
    bool want[KX_K_MAX];
    int rc;

    if (!o || !o->on_event) {
        snprintf(err, errlen, "no event handler");
        errno = EINVAL;
        return NULL;
    }
    if (o->n_kill > KX_KILL_RULES || (o->n_kill && !o->kill)) {
        snprintf(err, errlen, "at most %d kill rules", KX_KILL_RULES);
        errno = EINVAL;
        return NULL;
    }
    for (int k = 0; k < KX_K_MAX; k++)
        want[k] = o->kinds ? o->kinds[k] : true;
    p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->on_event = o->on_event;
    p->ctx = o->ctx;
    libbpf_set_print(probe_on_libbpf_print);
    probe_log_reset();

    if (access(KX_BTF_PATH, R_OK) != 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "cannot read %s: %s (the sensor needs a kernel with CONFIG_DEBUG_INFO_BTF; "
                 "are you root?)",
                 KX_BTF_PATH, strerror(-rc));
        goto cleanup;
    }
    rc = kx_probe_ensure_tracefs(err, errlen);
    if (rc < 0)
        goto cleanup;

    p->skel = sensor_bpf__open();
    if (!p->skel) {
        rc = -errno;
        snprintf(err, errlen, "cannot open BPF object sensor.bpf.o: %s", strerror(-rc));
        goto cleanup;
    }
    /* rodata is frozen by load: set it now. */
    p->skel->rodata->kx_self_tgid = (__u32)getpid();
    rc = probe_pick_programs(p, want, o->n_kill > 0, err, errlen);
    if (rc < 0)
        goto cleanup;

    rc = sensor_bpf__load(p->skel);
    if (rc) {
        char prog[64], what[160];

        rc = rc < 0 ? rc : -EINVAL;
        probe_failed_prog(prog, sizeof(prog));
        snprintf(what, sizeof(what), "cannot load BPF program %s", prog);
        probe_err_with_log(err, errlen, what, rc, KX_ROOT_HINT);
        goto cleanup;
    }
    rc = probe_configure(p, o, want, err, errlen);
    if (rc < 0)
        goto cleanup;
    rc = probe_attach(p, err, errlen);
    if (rc < 0)
        goto cleanup;
    p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.kx_events), probe_on_record, p, NULL);
    if (!p->rb) {
        rc = -errno;
        snprintf(err, errlen, "cannot set up the BPF ring buffer: %s", strerror(-rc));
        goto cleanup;
    }
    return p;

cleanup:
    kx_probe_free(p);
    errno = rc < 0 ? -rc : EINVAL;
    return NULL;
}

int kx_probe_poll(struct kx_probe *p, int timeout_ms)
{
    int n, m;

    if (!p)
        return -EINVAL;
    n = ring_buffer__poll(p->rb, timeout_ms);
    if (n < 0)
        return n;
    /* Frequent kinds do not wake us for every record (sensor.bpf.c,
     * kx_wakeup_flags()): take whatever waits, woken or not. */
    m = ring_buffer__consume(p->rb);
    if (m < 0)
        return m;
    return n + m;
}

int kx_probe_fd(struct kx_probe *p)
{
    return p ? ring_buffer__epoll_fd(p->rb) : -EINVAL;
}

/* Sums n entries of a per-CPU u64 array map into out[]. */
static void probe_sum_percpu(struct bpf_map *map, uint32_t n, uint64_t *out, int ncpu,
                             uint64_t *vals)
{
    int fd = bpf_map__fd(map);

    for (uint32_t k = 0; k < n; k++) {
        out[k] = 0;
        if (bpf_map_lookup_elem(fd, &k, vals) == 0)
            for (int c = 0; c < ncpu; c++)
                out[k] += vals[c];
    }
}

void kx_probe_stats(struct kx_probe *p, struct kx_probe_stats *out)
{
    int ncpu = libbpf_num_possible_cpus();
    uint64_t *vals;

    memset(out, 0, sizeof(*out));
    if (!p)
        return;
    out->events = p->events;
    out->bad_records = p->bad_records;
    if (ncpu <= 0)
        return;
    vals = calloc((size_t)ncpu, sizeof(*vals));
    if (!vals)
        return;
    probe_sum_percpu(p->skel->maps.kx_counts, KX_K_MAX, out->emitted, ncpu, vals);
    probe_sum_percpu(p->skel->maps.kx_filtered, KX_K_MAX, out->filtered, ncpu, vals);
    probe_sum_percpu(p->skel->maps.kx_drops, KX_DROP_REASONS, out->drops, ncpu, vals);
    free(vals);
}

void kx_probe_free(struct kx_probe *p)
{
    if (!p)
        return;
    ring_buffer__free(p->rb);
    for (size_t i = 0; i < p->n_links; i++)
        bpf_link__destroy(p->links[i]);
    free(p->links);
    sensor_bpf__destroy(p->skel); /* unloads; NULL-safe */
    free(p);
}
