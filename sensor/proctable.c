/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proctable.c - process table (see proctable.h).
 *
 * A chained hash on tgid plus an LRU list, one malloc per entry and one for
 * its strings, so an idle node with a few hundred processes costs a few
 * hundred KiB, and a busy one is capped by KX_PROC_MAX.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"
#include "proctable.h"
#include "util.h"

#define KX_PROC_BUCKETS 16384 /* power of two */

struct pentry {
    uint32_t tgid;
    uint32_t ppid;
    uint64_t start_ns;   /* ns since boot */
    bool from_proc;      /* start_ns has tick resolution only */
    bool dead;           /* EXIT seen; purged after KX_PROC_LINGER_NS */
    int64_t dead_at;     /* CLOCK_MONOTONIC of the EXIT */
    char comm[KX_EVENT_COMM_LEN];
    char *strs;          /* owned: exepath \0 exe \0 args \0 cmdline \0 cwd \0 */
    struct kx_sproc view;
    struct pentry *hnext;       /* hash chain */
    struct pentry *prev, *next; /* LRU list, most recent at head */
};

struct kx_proctable {
    char *root;                            /* owned: "/proc" */
    struct pentry *bucket[KX_PROC_BUCKETS];
    struct pentry *head, *tail;            /* LRU */
    int64_t tick_ns;                       /* ns per clock tick (/proc starttime) */
    struct kx_proctable_stats st;
};

static size_t hash_tgid(uint32_t tgid)
{
    return (tgid * 2654435761u) & (KX_PROC_BUCKETS - 1);
}

static void lru_unlink(struct kx_proctable *t, struct pentry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct kx_proctable *t, struct pentry *e)
{
    e->next = t->head;
    e->prev = NULL;
    if (t->head)
        t->head->prev = e;
    t->head = e;
    if (!t->tail)
        t->tail = e;
}

static struct pentry *find(struct kx_proctable *t, uint32_t tgid)
{
    for (struct pentry *e = t->bucket[hash_tgid(tgid)]; e; e = e->hnext)
        if (e->tgid == tgid)
            return e;
    return NULL;
}

static void entry_remove(struct kx_proctable *t, struct pentry *e)
{
    struct pentry **pp = &t->bucket[hash_tgid(e->tgid)];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(t, e);
    free(e->strs);
    free(e);
    t->st.entries--;
}

/* A fresh entry for tgid (replacing any existing one). NULL on OOM. */
static struct pentry *entry_new(struct kx_proctable *t, uint32_t tgid)
{
    struct pentry *e = find(t, tgid);
    size_t h;

    if (e)
        entry_remove(t, e);
    if (t->st.entries >= KX_PROC_MAX && t->tail) {
        entry_remove(t, t->tail);
        t->st.evicted++;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->tgid = tgid;
    h = hash_tgid(tgid);
    e->hnext = t->bucket[h];
    t->bucket[h] = e;
    lru_push(t, e);
    t->st.entries++;
    return e;
}

/* Copies s (at most KX_PROC_STR_MAX-1 bytes) to *p and advances it. */
static const char *put_str(char **p, const char *s)
{
    size_t n = s ? strnlen(s, KX_PROC_STR_MAX - 1) : 0;
    char *at = *p;

    memcpy(at, s ? s : "", n);
    at[n] = '\0';
    *p += n + 1;
    return at;
}

/* Sets the strings and rebuilds the view. cwd gets Falco's trailing '/'. */
static int entry_set_strs(struct pentry *e, const char *exepath, const char *exe,
                          const char *args, const char *cwd)
{
    char cmdline[KX_PROC_STR_MAX], cwdbuf[KX_PROC_STR_MAX];
    size_t need;
    char *p;

    snprintf(cmdline, sizeof(cmdline), "%s%s%s", e->comm, args && *args ? " " : "",
             args ? args : "");
    cwdbuf[0] = '\0';
    if (cwd && *cwd) {
        size_t n = strnlen(cwd, sizeof(cwdbuf) - 2);

        memcpy(cwdbuf, cwd, n);
        if (cwdbuf[n - 1] != '/')
            cwdbuf[n++] = '/';
        cwdbuf[n] = '\0';
    }
    need = strnlen(exepath ? exepath : "", KX_PROC_STR_MAX) +
           strnlen(exe ? exe : "", KX_PROC_STR_MAX) + strnlen(args ? args : "", KX_PROC_STR_MAX) +
           strlen(cmdline) + strlen(cwdbuf) + 5;
    p = malloc(need);
    if (!p)
        return -ENOMEM;
    free(e->strs);
    e->strs = p;
    e->view.exepath = put_str(&p, exepath);
    e->view.exe = put_str(&p, exe);
    e->view.args = put_str(&p, args);
    e->view.cmdline = put_str(&p, cmdline);
    e->view.cwd = cwdbuf[0] ? put_str(&p, cwdbuf) : NULL;
    if (!e->view.exepath[0])
        e->view.exepath = NULL;
    if (!e->view.exe[0])
        e->view.exe = NULL;
    e->view.name = e->comm;
    return 0;
}

static void entry_set_ids(struct pentry *e)
{
    e->view.pid = e->tgid;
    e->view.tid = e->tgid;
    e->view.ppid = e->ppid;
    e->view.start_ns = (int64_t)e->start_ns;
}

size_t kx_proctable_format_args(const char *raw, size_t len, char *out, size_t outlen)
{
    size_t argv0 = 0, o = 0, i = 0;

    if (!outlen)
        return 0;
    out[0] = '\0';
    if (!raw)
        return 0;
    while (argv0 < len && raw[argv0])
        argv0++;
    i = argv0 + 1;
    while (len > 0 && raw[len - 1] == '\0') /* trailing NULs */
        len--;
    for (; i < len && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)raw[i];

        out[o++] = c == '\0' ? ' ' : (c < 0x20 || c == 0x7f) ? '.' : (char)c;
    }
    out[o] = '\0';
    return argv0;
}

struct kx_proctable *kx_proctable_new(const char *proc_root)
{
    struct kx_proctable *t = calloc(1, sizeof(*t));
    long hz = sysconf(_SC_CLK_TCK);

    if (!t)
        return NULL;
    t->root = strdup(proc_root ? proc_root : "/proc");
    if (!t->root) {
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    t->tick_ns = KX_NSEC_PER_SEC / (hz > 0 ? hz : 100);
    return t;
}

void kx_proctable_free(struct kx_proctable *t)
{
    if (!t)
        return;
    while (t->head)
        entry_remove(t, t->head);
    free(t->root);
    free(t);
}

static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    return n;
}

/*
 * /proc/<pid>/stat: "pid (comm) state ppid pgrp session tty_nr ... starttime"
 * comm may contain spaces and ')', so parse from the last ')'.
 */
static int parse_stat(const char *text, char *comm, uint32_t *ppid, int64_t *tty,
                      uint64_t *start_ticks)
{
    const char *l = strchr(text, '('), *r = strrchr(text, ')');
    unsigned long long st = 0;
    long long tty_nr = 0;
    int pp = 0, n;
    size_t cl;

    if (!l || !r || r < l)
        return -EINVAL;
    cl = (size_t)(r - l - 1);
    if (cl >= KX_EVENT_COMM_LEN)
        cl = KX_EVENT_COMM_LEN - 1;
    memcpy(comm, l + 1, cl);
    comm[cl] = '\0';
    /* fields after ')': 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr, ... 22 starttime */
    n = sscanf(r + 2, "%*c %d %*d %*d %lld %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                      "%*d %llu",
               &pp, &tty_nr, &st);
    if (n != 3)
        return -EINVAL;
    *ppid = (uint32_t)pp;
    *tty = tty_nr;
    *start_ticks = st;
    return 0;
}

static void parse_ids(const char *status, struct kx_sproc *v)
{
    const char *u = strstr(status, "\nUid:"), *g = strstr(status, "\nGid:");
    long long ruid = -1, euid = -1, rgid = -1;

    if (u)
        sscanf(u + 5, "%lld %lld", &ruid, &euid);
    if (g)
        sscanf(g + 5, "%lld", &rgid);
    v->uid = ruid;
    v->euid = euid;
    v->gid = rgid;
}

/* Fills an entry for tgid from /proc. NULL when the process is gone. */
static struct pentry *fill_from_proc(struct kx_proctable *t, uint32_t tgid)
{
    char path[256], stat[1024], status[4096], exepath[KX_PROC_STR_MAX], cwd[KX_PROC_STR_MAX];
    char raw[KX_PROC_STR_MAX], args[KX_PROC_STR_MAX], exe[KX_PROC_STR_MAX], comm[KX_EVENT_COMM_LEN];
    uint64_t ticks;
    uint32_t ppid;
    int64_t tty;
    ssize_t n;
    size_t a0;
    struct pentry *e;

    snprintf(path, sizeof(path), "%s/%u/stat", t->root, tgid);
    if (read_small(path, stat, sizeof(stat)) <= 0 || parse_stat(stat, comm, &ppid, &tty, &ticks) < 0)
        return NULL;
    e = entry_new(t, tgid);
    if (!e)
        return NULL;
    memcpy(e->comm, comm, sizeof(e->comm));
    e->ppid = ppid;
    e->start_ns = ticks * (uint64_t)t->tick_ns;
    e->from_proc = true;
    e->view.tty = tty;
    e->view.loginuid = -1;
    snprintf(path, sizeof(path), "%s/%u/status", t->root, tgid);
    if (read_small(path, status, sizeof(status)) > 0)
        parse_ids(status, &e->view);
    snprintf(path, sizeof(path), "%s/%u/loginuid", t->root, tgid);
    if (read_small(path, raw, 32) > 0) {
        long long lu = strtoll(raw, NULL, 10);

        e->view.loginuid = lu == 4294967295LL ? -1 : lu;
    }
    snprintf(path, sizeof(path), "%s/%u/exe", t->root, tgid);
    n = readlink(path, exepath, sizeof(exepath) - 1);
    exepath[n > 0 ? n : 0] = '\0';
    snprintf(path, sizeof(path), "%s/%u/cwd", t->root, tgid);
    n = readlink(path, cwd, sizeof(cwd) - 1);
    cwd[n > 0 ? n : 0] = '\0';
    snprintf(path, sizeof(path), "%s/%u/cmdline", t->root, tgid);
    n = read_small(path, raw, sizeof(raw));
    a0 = kx_proctable_format_args(raw, n > 0 ? (size_t)n : 0, args, sizeof(args));
    snprintf(exe, sizeof(exe), "%.*s", (int)a0, n > 0 ? raw : "");
    e->view.exe_from_memfd = strncmp(exepath, "/memfd:", 7) == 0;
    if (entry_set_strs(e, exepath, exe, args, cwd) < 0) {
        entry_remove(t, e);
        return NULL;
    }
    entry_set_ids(e);
    t->st.proc_fill++;
    return e;
}

size_t kx_proctable_scan(struct kx_proctable *t)
{
    DIR *d = opendir(t->root);
    struct dirent *de;
    size_t n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        char *end;
        unsigned long pid = strtoul(de->d_name, &end, 10);

        if (*end || pid == 0 || pid > UINT32_MAX)
            continue;
        if (fill_from_proc(t, (uint32_t)pid))
            n++;
    }
    closedir(d);
    t->st.proc_fill -= n; /* seeding is not a miss */
    return n;
}

static void apply_exec(struct kx_proctable *t, const struct kx_event *e)
{
    char args[KX_PROC_STR_MAX], exe[KX_PROC_STR_MAX];
    const char *exepath, *argv, *cwd;
    size_t n_argv = 0, a0;
    struct pentry *ent = entry_new(t, e->task.tgid);

    if (!ent)
        return;
    memcpy(ent->comm, e->task.comm, sizeof(ent->comm));
    ent->comm[KX_EVENT_COMM_LEN - 1] = '\0';
    ent->ppid = e->task.ppid;
    ent->start_ns = e->task.start_ns;
    exepath = kx_event_str(e, 0, NULL);
    argv = kx_event_str(e, 1, &n_argv);
    cwd = kx_event_str(e, 2, NULL);
    a0 = kx_proctable_format_args(argv, n_argv, args, sizeof(args));
    snprintf(exe, sizeof(exe), "%.*s", (int)a0, argv ? argv : "");
    ent->view.uid = e->task.uid;
    ent->view.gid = e->task.gid;
    ent->view.euid = e->task.euid;
    ent->view.loginuid = e->task.loginuid == UINT32_MAX ? -1 : (int64_t)e->task.loginuid;
    ent->view.tty = e->task.tty;
    ent->view.exe_upper_layer = e->flags & KX_F_EXE_UPPER;
    ent->view.exe_from_memfd = e->flags & KX_F_EXE_MEMFD;
    if (entry_set_strs(ent, exepath, exe, args, cwd) < 0) {
        entry_remove(t, ent);
        return;
    }
    entry_set_ids(ent);
}

static void apply_fork(struct kx_proctable *t, const struct kx_event *e)
{
    uint32_t child = (uint32_t)e->ret;
    struct pentry *parent = find(t, e->task.tgid), *c;
    struct kx_sproc pv;

    if (!parent)
        parent = fill_from_proc(t, e->task.tgid);
    c = entry_new(t, child); /* may evict; parent re-looked up below */
    if (!c)
        return;
    parent = find(t, e->task.tgid);
    memcpy(c->comm, e->task.comm, sizeof(c->comm));
    c->comm[KX_EVENT_COMM_LEN - 1] = '\0';
    c->ppid = e->task.tgid;
    c->start_ns = e->aux;
    if (parent) {
        pv = parent->view; /* the child runs the parent's image until it execs */
        c->view = pv;
        if (entry_set_strs(c, pv.exepath, pv.exe, pv.args, pv.cwd) < 0) {
            entry_remove(t, c);
            return;
        }
    } else {
        c->view.loginuid = e->task.loginuid == UINT32_MAX ? -1 : (int64_t)e->task.loginuid;
        if (entry_set_strs(c, NULL, NULL, NULL, NULL) < 0) {
            entry_remove(t, c);
            return;
        }
    }
    c->view.uid = e->task.uid;
    c->view.gid = e->task.gid;
    c->view.euid = e->task.euid;
    c->view.tty = e->task.tty;
    entry_set_ids(c);
}

void kx_proctable_apply(struct kx_proctable *t, const struct kx_event *e, size_t len)
{
    struct pentry *ent;

    if (!t || !e || len < KX_EVENT_FIXED || e->hdr.size > len)
        return;
    switch (e->kind) {
    case KX_K_EXEC:
        apply_exec(t, e);
        break;
    case KX_K_FORK:
        apply_fork(t, e);
        break;
    case KX_K_EXIT:
        ent = find(t, e->task.tgid);
        if (ent && !ent->dead) {
            ent->dead = true;
            ent->dead_at = (int64_t)e->task.ktime_ns;
        }
        break;
    default:
        break;
    }
}

static bool start_matches(const struct kx_proctable *t, const struct pentry *e, uint64_t start_ns)
{
    if (!start_ns || !e->start_ns)
        return true;
    if (e->from_proc)
        return start_ns / (uint64_t)t->tick_ns == e->start_ns / (uint64_t)t->tick_ns;
    return e->start_ns == start_ns;
}

const struct kx_sproc *kx_proctable_get(struct kx_proctable *t, uint32_t tgid, uint64_t start_ns)
{
    struct pentry *e;

    if (!t || !tgid)
        return NULL;
    e = find(t, tgid);
    if (e && !start_matches(t, e, start_ns))
        e = NULL; /* a reused pid: the entry is an older process */
    if (!e)
        e = fill_from_proc(t, tgid);
    if (!e) {
        t->st.misses++;
        return NULL;
    }
    if (t->head != e) {
        lru_unlink(t, e);
        lru_push(t, e);
    }
    return &e->view;
}

void kx_proctable_sweep(struct kx_proctable *t, int64_t now_mono)
{
    struct pentry *e, *prev;

    if (!t)
        return;
    /* Dead entries stop being touched, so they drift to the LRU tail; a
     * full walk is still cheap at one per second. */
    for (e = t->tail; e; e = prev) {
        prev = e->prev;
        if (e->dead && now_mono - e->dead_at > KX_PROC_LINGER_NS)
            entry_remove(t, e);
    }
}

void kx_proctable_stats(const struct kx_proctable *t, struct kx_proctable_stats *out)
{
    if (t && out)
        *out = t->st;
}
