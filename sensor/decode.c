/* SPDX-License-Identifier: Apache-2.0 */
/*
 * decode.c - kernel record -> struct kx_sevent (see decode.h).
 *
 * Falco's renderings are kept where rules test them as text: open flags
 * ("O_WRONLY|O_CREAT|O_TRUNC"), chmod modes ("S_IRUSR|...|S_ISUID"),
 * ptrace requests, signals, address families, clone flags, errno names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decode.h"
#include "probe.h"
#include "util.h"

#define KX_CCACHE 1024         /* cgroup id -> container, direct mapped */
#define KX_UCACHE 256          /* uid/gid -> name, direct mapped */
#define KX_ARG_LEN 256         /* bytes per rendered evt.arg value */
#define KX_JOIN_LEN (2 * KX_STR_MAX + 2)

struct ccache_slot {
    uint64_t id; /* 0 = empty */
    struct kx_container c;
};

struct ucache_slot {
    int64_t id; /* -1 = empty */
    bool known; /* a name exists */
    char name[64];
};

struct kx_decode {
    char *hostname;                 /* owned */
    struct kx_proctable *pt;        /* borrowed */
    struct kx_cgroup_resolver *cg;  /* borrowed, may be NULL */
    kx_decode_pod_fn pod_fn;        /* may be NULL */
    void *pod_ctx;                  /* borrowed */
    int64_t mono_to_real;           /* add to CLOCK_MONOTONIC for CLOCK_REALTIME */
    struct ccache_slot cc[KX_CCACHE];
    struct ucache_slot users[KX_UCACHE];
    struct ucache_slot groups[KX_UCACHE];

    /* scratch: the strings of the event being decoded */
    struct kx_container ctr;
    struct kx_sproc proc;
    char path[KX_JOIN_LEN];
    char path2[KX_JOIN_LEN];
    char fdname[160];
    char lip[INET6_ADDRSTRLEN], rip[INET6_ADDRSTRLEN];
    char res[32];
    char argv[KX_SEV_ARGS][KX_ARG_LEN];
};

/* ---- renderers -------------------------------------------------------- */

struct flag_name {
    uint64_t bit;
    const char *name;
};

static void render_bits(uint64_t v, const struct flag_name *t, size_t n, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        if ((v & t[i].bit) != t[i].bit || !t[i].bit)
            continue;
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "|" : "", t[i].name);
        v &= ~t[i].bit;
    }
    if (v && o + 1 < len)
        snprintf(buf + o, len - o, "%s0x%llx", o ? "|" : "", (unsigned long long)v);
}

void kx_decode_open_flags(uint64_t flags, char *buf, size_t len)
{
    static const struct flag_name t[] = {
        {O_CREAT, "O_CREAT"},         {O_EXCL, "O_EXCL"},       {O_NOCTTY, "O_NOCTTY"},
        {O_TRUNC, "O_TRUNC"},         {O_APPEND, "O_APPEND"},   {O_NONBLOCK, "O_NONBLOCK"},
        {O_DSYNC, "O_DSYNC"},         {O_DIRECT, "O_DIRECT"},   {O_LARGEFILE, "O_LARGEFILE"},
        {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"}, {O_NOATIME, "O_NOATIME"},
        {O_CLOEXEC, "O_CLOEXEC"},     {O_PATH, "O_PATH"},       {__O_TMPFILE, "O_TMPFILE"},
    };
    const char *acc = (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
                      : (flags & O_ACCMODE) == O_RDWR ? "O_RDWR"
                                                      : "O_RDONLY";
    char rest[200];
    uint64_t f = flags & ~(uint64_t)O_ACCMODE;

    if (f & O_SYNC) /* O_SYNC includes O_DSYNC */
        f &= ~(uint64_t)O_SYNC, f |= O_DSYNC;
    render_bits(f, t, KX_ARRAY_SIZE(t), rest, sizeof(rest));
    snprintf(buf, len, "%s%s%s", acc, rest[0] ? "|" : "", rest);
}

void kx_decode_mode(uint64_t mode, char *buf, size_t len)
{
    static const struct flag_name t[] = {
        {S_IXOTH, "S_IXOTH"}, {S_IWOTH, "S_IWOTH"}, {S_IROTH, "S_IROTH"}, {S_IXGRP, "S_IXGRP"},
        {S_IWGRP, "S_IWGRP"}, {S_IRGRP, "S_IRGRP"}, {S_IXUSR, "S_IXUSR"}, {S_IWUSR, "S_IWUSR"},
        {S_IRUSR, "S_IRUSR"}, {S_ISVTX, "S_ISVTX"}, {S_ISGID, "S_ISGID"}, {S_ISUID, "S_ISUID"},
    };

    render_bits(mode & 07777, t, KX_ARRAY_SIZE(t), buf, len);
    if (!buf[0])
        snprintf(buf, len, "0");
}

void kx_decode_clone_flags(uint64_t flags, char *buf, size_t len)
{
    static const struct flag_name t[] = {
        {0x00000100, "CLONE_VM"},       {0x00000200, "CLONE_FS"},
        {0x00000400, "CLONE_FILES"},    {0x00000800, "CLONE_SIGHAND"},
        {0x00001000, "CLONE_PIDFD"},    {0x00002000, "CLONE_PTRACE"},
        {0x00004000, "CLONE_VFORK"},    {0x00008000, "CLONE_PARENT"},
        {0x00010000, "CLONE_THREAD"},   {0x00020000, "CLONE_NEWNS"},
        {0x00040000, "CLONE_SYSVSEM"},  {0x00080000, "CLONE_SETTLS"},
        {0x02000000, "CLONE_NEWCGROUP"}, {0x04000000, "CLONE_NEWUTS"},
        {0x08000000, "CLONE_NEWIPC"},   {0x10000000, "CLONE_NEWUSER"},
        {0x20000000, "CLONE_NEWPID"},   {0x40000000, "CLONE_NEWNET"},
        {0x00000080, "CLONE_NEWTIME"},
    };

    render_bits(flags, t, KX_ARRAY_SIZE(t), buf, len);
    if (!buf[0])
        snprintf(buf, len, "0");
}

const char *kx_decode_ptrace_req(int64_t req)
{
    switch (req) {
    case PTRACE_TRACEME: return "PTRACE_TRACEME";
    case PTRACE_PEEKTEXT: return "PTRACE_PEEKTEXT";
    case PTRACE_PEEKDATA: return "PTRACE_PEEKDATA";
    case PTRACE_PEEKUSER: return "PTRACE_PEEKUSR";
    case PTRACE_POKETEXT: return "PTRACE_POKETEXT";
    case PTRACE_POKEDATA: return "PTRACE_POKEDATA";
    case PTRACE_POKEUSER: return "PTRACE_POKEUSR";
    case PTRACE_CONT: return "PTRACE_CONT";
    case PTRACE_KILL: return "PTRACE_KILL";
    case PTRACE_SINGLESTEP: return "PTRACE_SINGLESTEP";
    case PTRACE_GETREGS: return "PTRACE_GETREGS";
    case PTRACE_SETREGS: return "PTRACE_SETREGS";
    case PTRACE_ATTACH: return "PTRACE_ATTACH";
    case PTRACE_DETACH: return "PTRACE_DETACH";
    case PTRACE_SYSCALL: return "PTRACE_SYSCALL";
    case PTRACE_SETOPTIONS: return "PTRACE_SETOPTIONS";
    case PTRACE_SEIZE: return "PTRACE_SEIZE";
    case PTRACE_INTERRUPT: return "PTRACE_INTERRUPT";
    case PTRACE_SETREGSET: return "PTRACE_SETREGSET";
    case PTRACE_GETREGSET: return "PTRACE_GETREGSET";
    default: return NULL;
    }
}

const char *kx_decode_signal(int64_t sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
        [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
        [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO", [SIGPWR] = "SIGPWR", [SIGSYS] = "SIGSYS",
    };

    if (sig <= 0 || (size_t)sig >= KX_ARRAY_SIZE(names))
        return NULL;
    return names[sig];
}

const char *kx_decode_family(int64_t af)
{
    switch (af) {
    case AF_UNIX: return "AF_UNIX";
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    case AF_UNSPEC: return "AF_UNSPEC";
    default: return NULL;
    }
}

void kx_decode_sock_type(uint64_t type, char *buf, size_t len)
{
    static const char *const base[] = {
        [SOCK_STREAM] = "SOCK_STREAM", [SOCK_DGRAM] = "SOCK_DGRAM", [SOCK_RAW] = "SOCK_RAW",
        [SOCK_RDM] = "SOCK_RDM",       [SOCK_SEQPACKET] = "SOCK_SEQPACKET",
        [SOCK_PACKET] = "SOCK_PACKET",
    };
    unsigned t = (unsigned)(type & 0xf);
    const char *b = t < KX_ARRAY_SIZE(base) && base[t] ? base[t] : NULL;
    char num[16];

    if (!b) {
        snprintf(num, sizeof(num), "%u", t);
        b = num;
    }
    snprintf(buf, len, "%s%s%s", b, (type & SOCK_NONBLOCK) ? "|SOCK_NONBLOCK" : "",
             (type & SOCK_CLOEXEC) ? "|SOCK_CLOEXEC" : "");
}

void kx_decode_addr(int family, const uint8_t addr[16], char *buf, size_t len)
{
    buf[0] = '\0';
    if (family == AF_INET)
        inet_ntop(AF_INET, addr, buf, (socklen_t)len);
    else if (family == AF_INET6) {
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

        if (memcmp(addr, v4mapped, 12) == 0) /* ::ffff:1.2.3.4 shows as 1.2.3.4 */
            inet_ntop(AF_INET, addr + 12, buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, addr, buf, (socklen_t)len);
    }
}

static const char *bpf_cmd_name(uint64_t cmd)
{
    static const char *const names[] = {
        "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET",
        "BPF_PROG_ATTACH", "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN",
    };

    return cmd < KX_ARRAY_SIZE(names) ? names[cmd] : NULL;
}

/* ---- helpers ----------------------------------------------------------- */

struct kx_decode *kx_decode_new(const char *hostname, struct kx_proctable *pt,
                                struct kx_cgroup_resolver *cg)
{
    struct kx_decode *d;

    if (!hostname || !pt) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->hostname = strdup(hostname);
    if (!d->hostname) {
        free(d);
        errno = ENOMEM;
        return NULL;
    }
    d->pt = pt;
    d->cg = cg;
    for (size_t i = 0; i < KX_UCACHE; i++)
        d->users[i].id = d->groups[i].id = -1;
    kx_decode_sync_clock(d);
    return d;
}

void kx_decode_free(struct kx_decode *d)
{
    if (!d)
        return;
    free(d->hostname);
    free(d);
}

void kx_decode_set_pods(struct kx_decode *d, kx_decode_pod_fn fn, void *ctx)
{
    d->pod_fn = fn;
    d->pod_ctx = ctx;
}

void kx_decode_sync_clock(struct kx_decode *d)
{
    d->mono_to_real = kx_now_ns() - kx_monotonic_ns();
}

/* String slot i of the record (validated by the probe), NULL when absent. */
static const char *str(const struct kx_event *e, int i)
{
    return kx_event_str(e, i, NULL);
}

/*
 * Joins base and rel (rel absolute: rel alone) and normalizes "." and ".."
 * and repeated slashes, as Falco shows fd.name. NULL when rel is NULL.
 */
static const char *join_path(const char *base, const char *rel, char *out, size_t len)
{
    char tmp[KX_JOIN_LEN];
    size_t o = 0;
    const char *p;

    if (!rel)
        return NULL;
    if (rel[0] == '/' || !base || !base[0])
        snprintf(tmp, sizeof(tmp), "%s", rel);
    else
        snprintf(tmp, sizeof(tmp), "%s/%s", base, rel);
    if (tmp[0] != '/') { /* relative without a base: leave as is */
        snprintf(out, len, "%s", tmp);
        return out;
    }
    p = tmp;
    out[o++] = '/';
    while (*p) {
        const char *s;
        size_t n;

        while (*p == '/')
            p++;
        s = p;
        while (*p && *p != '/')
            p++;
        n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (o > 1) {
                o--; /* the slash before the last component */
                while (o > 1 && out[o - 1] != '/')
                    o--;
                if (o > 1)
                    o--;
                if (o == 0)
                    o = 1;
            }
            if (o == 1)
                out[0] = '/';
            continue;
        }
        if (o > 1 && o + 1 < len)
            out[o++] = '/';
        if (o + n >= len)
            n = len - o - 1;
        memcpy(out + o, s, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

static const struct kx_container *container_of_cgroup(struct kx_decode *d, const struct kx_event *e)
{
    uint64_t id = e->task.cgroup_id;
    struct ccache_slot *s = &d->cc[(id * 0x9E3779B97F4A7C15ull) >> 54 & (KX_CCACHE - 1)];

    if (id && s->id == id)
        return &s->c;
    memset(&d->ctr, 0, sizeof(d->ctr));
    if (d->cg && kx_cgroup_resolve(d->cg, (pid_t)e->task.tgid, id, &d->ctr) < 0)
        memset(&d->ctr, 0, sizeof(d->ctr));
    if (id) { /* ids are never reused, so the cache needs no invalidation */
        s->id = id;
        s->c = d->ctr;
        return &s->c;
    }
    return &d->ctr;
}

static const char *id_name(struct ucache_slot *cache, int64_t id, bool group)
{
    struct ucache_slot *s = &cache[(uint64_t)id % KX_UCACHE];
    char buf[1024];

    if (id < 0)
        return NULL;
    if (s->id != id) {
        s->id = id;
        s->known = false;
        if (group) {
            struct group g, *gp = NULL;

            if (getgrgid_r((gid_t)id, &g, buf, sizeof(buf), &gp) == 0 && gp) {
                snprintf(s->name, sizeof(s->name), "%s", gp->gr_name);
                s->known = true;
            }
        } else {
            struct passwd pw, *pp = NULL;

            if (getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &pp) == 0 && pp) {
                snprintf(s->name, sizeof(s->name), "%s", pp->pw_name);
                s->known = true;
            }
        }
    }
    return s->known ? s->name : NULL;
}

/* Adds evt.arg.<name> with a printf-rendered value. */
static void __attribute__((format(printf, 4, 5)))
add_arg(struct kx_decode *d, struct kx_sevent *ev, const char *name, const char *fmt, ...)
{
    va_list ap;
    size_t i = ev->n_args;

    if (i >= KX_SEV_ARGS)
        return;
    va_start(ap, fmt);
    vsnprintf(d->argv[i], KX_ARG_LEN, fmt, ap);
    va_end(ap);
    ev->args[i].name = name;
    ev->args[i].value = d->argv[i];
    ev->n_args++;
}

static void add_arg_str(struct kx_decode *d, struct kx_sevent *ev, const char *name, const char *v)
{
    size_t i = ev->n_args;

    if (i >= KX_SEV_ARGS || !v)
        return;
    ev->args[i].name = name; /* long paths stay whole: no copy into argv[] */
    ev->args[i].value = v;
    ev->n_args++;
}

static const char *l4proto(const struct kx_sock *s)
{
    if (s->type == SOCK_RAW)
        return "raw";
    switch (s->protocol) {
    case 6: return "tcp";
    case 17: return "udp";
    case 1:
    case 58: return "icmp";
    default: return s->type == SOCK_STREAM ? "tcp" : s->type == SOCK_DGRAM ? "udp" : NULL;
    }
}

/* fd.* of a socket. server_is_remote: connect (we are the client). */
static void fill_sock(struct kx_decode *d, struct kx_sevent *ev, const struct kx_sock *s,
                      bool server_is_remote)
{
    kx_decode_addr(s->family, s->saddr, d->lip, sizeof(d->lip));
    kx_decode_addr(s->family, s->daddr, d->rip, sizeof(d->rip));
    if (s->family == AF_UNIX) {
        ev->fd_typechar = 'u';
        ev->fd_type = "unix";
        return;
    }
    if (s->family != AF_INET && s->family != AF_INET6)
        return;
    ev->fd_typechar = s->family == AF_INET ? '4' : '6';
    ev->fd_type = s->family == AF_INET ? "ipv4" : "ipv6";
    ev->fd_l4proto = l4proto(s);
    ev->fd_lip = d->lip;
    ev->fd_lport = s->sport;
    ev->fd_rip = d->rip;
    ev->fd_rport = s->dport;
    if (server_is_remote) {
        ev->fd_sip = d->rip, ev->fd_sport = s->dport;
        ev->fd_cip = d->lip, ev->fd_cport = s->sport;
    } else {
        ev->fd_sip = d->lip, ev->fd_sport = s->sport;
        ev->fd_cip = d->rip, ev->fd_cport = s->dport;
    }
    snprintf(d->fdname, sizeof(d->fdname), "%s:%lld->%s:%lld", ev->fd_cip,
             (long long)ev->fd_cport, ev->fd_sip, (long long)ev->fd_sport);
    ev->fd_name = d->fdname;
}

static void fill_open(struct kx_decode *d, const struct kx_event *e, struct kx_sevent *ev,
                      uint64_t flags, uint64_t mode)
{
    char buf[200];
    const char *p = str(e, 0), *base = (e->flags & KX_F_RESOLVED) ? NULL : str(e, 1);
    bool write = e->flags & KX_F_OPEN_WRITE;

    ev->fd_name = join_path(base, p, d->path, sizeof(d->path));
    ev->fd_typechar = 'f';
    ev->fd_type = "file";
    ev->fd_num = e->ret >= 0 ? e->ret : -1;
    ev->open_write = write;
    ev->open_read = (flags & O_ACCMODE) != O_WRONLY;
    ev->open_create = flags & O_CREAT;
    ev->open_exec = false;
    kx_decode_open_flags(flags, buf, sizeof(buf));
    add_arg(d, ev, "flags", "%s", buf);
    add_arg_str(d, ev, "name", ev->fd_name);
    add_arg(d, ev, "mode", "0%llo", (unsigned long long)mode);
    add_arg(d, ev, "fd", "%lld", (long long)e->ret);
}

static void fill_path(struct kx_decode *d, const struct kx_event *e, struct kx_sevent *ev,
                      const char *argname)
{
    ev->fd_name = join_path(str(e, 1), str(e, 0), d->path, sizeof(d->path));
    if (ev->fd_name) {
        ev->fd_typechar = 'f';
        ev->fd_type = "file";
    }
    add_arg_str(d, ev, argname, ev->fd_name);
}

/* Two-path calls: rename*, link*, symlink*. */
static void fill_two(struct kx_decode *d, const struct kx_event *e, struct kx_sevent *ev,
                     bool symlink)
{
    const char *oldp = symlink ? str(e, 0)
                               : join_path(str(e, 1), str(e, 0), d->path,
                                           sizeof(d->path));
    const char *newp = join_path(str(e, 3), str(e, 2), d->path2, sizeof(d->path2));

    ev->target = newp;
    if (symlink) {
        ev->fd_name = newp;
        add_arg_str(d, ev, "target", oldp);
        add_arg_str(d, ev, "linkpath", newp);
    } else {
        ev->fd_name = oldp;
        add_arg_str(d, ev, "oldpath", oldp);
        add_arg_str(d, ev, "newpath", newp);
    }
    if (ev->fd_name) {
        ev->fd_typechar = 'f';
        ev->fd_type = "file";
    }
}

static void fill_kind(struct kx_decode *d, const struct kx_event *e, struct kx_sevent *ev)
{
    const __u64 *a = e->args;
    char buf[200];
    const char *s;

    switch (e->kind) {
    case KX_K_EXEC:
        ev->fd_name = NULL;
        add_arg_str(d, ev, "exe", ev->proc.exepath);
        add_arg_str(d, ev, "filename", str(e, 3));
        break;
    case KX_K_FORK:
        add_arg(d, ev, "pid", "%lld", (long long)e->ret);
        break;
    case KX_K_EXIT:
        add_arg(d, ev, "status", "%lld", (long long)e->ret);
        break;
    case KX_K_OPEN:
        fill_open(d, e, ev, a[1], a[2]);
        break;
    case KX_K_OPENAT:
    case KX_K_OPENAT2: /* openat2: the kernel side puts how->flags/mode in args[2..3] */
        fill_open(d, e, ev, a[2], a[3]);
        break;
    case KX_K_UNLINK:
        fill_path(d, e, ev, "path");
        break;
    case KX_K_UNLINKAT:
        fill_path(d, e, ev, "name");
        add_arg(d, ev, "flags", "%s", (a[2] & 0x200) ? "AT_REMOVEDIR" : "0");
        break;
    case KX_K_RENAME:
    case KX_K_RENAMEAT:
    case KX_K_RENAMEAT2:
    case KX_K_LINK:
    case KX_K_LINKAT:
        fill_two(d, e, ev, false);
        break;
    case KX_K_SYMLINK:
    case KX_K_SYMLINKAT:
        fill_two(d, e, ev, true);
        break;
    case KX_K_CHMOD:
    case KX_K_FCHMOD:
    case KX_K_FCHMODAT:
        fill_path(d, e, ev, e->kind == KX_K_FCHMOD ? "fd" : "filename");
        kx_decode_mode(e->kind == KX_K_FCHMODAT ? a[2] : a[1], buf, sizeof(buf));
        add_arg(d, ev, "mode", "%s", buf);
        break;
    case KX_K_MOUNT:
        add_arg_str(d, ev, "dev", str(e, 0));
        ev->target = join_path(str(e, 3), str(e, 1), d->path2, sizeof(d->path2));
        add_arg_str(d, ev, "dir", ev->target);
        add_arg_str(d, ev, "type", str(e, 2));
        add_arg(d, ev, "flags", "0x%llx", (unsigned long long)a[3]);
        break;
    case KX_K_CONNECT:
    case KX_K_ACCEPT:
    case KX_K_ACCEPT4:
    case KX_K_LISTEN:
        ev->fd_num = e->kind == KX_K_CONNECT || e->kind == KX_K_LISTEN ? (int64_t)a[0] : e->ret;
        if (e->flags & KX_F_SOCK)
            fill_sock(d, ev, &e->sock, e->kind == KX_K_CONNECT);
        add_arg(d, ev, "fd", "%lld", (long long)ev->fd_num);
        if (ev->fd_name)
            add_arg_str(d, ev, "tuple", ev->fd_name);
        break;
    case KX_K_SOCKET:
        s = kx_decode_family((int64_t)a[0]);
        add_arg(d, ev, "domain", "%s", s ? s : "");
        if (!s)
            snprintf(d->argv[ev->n_args - 1], KX_ARG_LEN, "%llu", (unsigned long long)a[0]);
        kx_decode_sock_type(a[1], buf, sizeof(buf));
        add_arg(d, ev, "type", "%s", buf);
        add_arg(d, ev, "proto", "%llu", (unsigned long long)a[2]);
        ev->fd_num = e->ret;
        break;
    case KX_K_DUP:
    case KX_K_DUP2:
    case KX_K_DUP3:
        ev->fd_num = e->ret;
        if (e->flags & KX_F_SOCK)
            fill_sock(d, ev, &e->sock, e->sock.dport != 0);
        add_arg(d, ev, "oldfd", "%lld", (long long)a[0]);
        if (e->kind != KX_K_DUP)
            add_arg(d, ev, "newfd", "%lld", (long long)a[1]);
        break;
    case KX_K_SETUID:
    case KX_K_SETGID:
        add_arg(d, ev, e->kind == KX_K_SETUID ? "uid" : "gid", "%lld", (long long)(int32_t)a[0]);
        break;
    case KX_K_SETREUID:
    case KX_K_SETREGID:
    case KX_K_SETRESUID:
    case KX_K_SETRESGID:
        add_arg(d, ev, "ruid", "%lld", (long long)(int32_t)a[0]);
        add_arg(d, ev, "euid", "%lld", (long long)(int32_t)a[1]);
        break;
    case KX_K_CAPSET:
        add_arg(d, ev, "cap_effective", "0x%llx", (unsigned long long)e->aux);
        break;
    case KX_K_UNSHARE:
        kx_decode_clone_flags(a[0], buf, sizeof(buf));
        add_arg(d, ev, "flags", "%s", buf);
        break;
    case KX_K_SETNS:
        add_arg(d, ev, "fd", "%lld", (long long)a[0]);
        kx_decode_clone_flags(a[1], buf, sizeof(buf));
        add_arg(d, ev, "nstype", "%s", buf);
        break;
    case KX_K_PTRACE:
        s = kx_decode_ptrace_req((int64_t)a[0]);
        if (s)
            add_arg(d, ev, "request", "%s", s);
        else
            add_arg(d, ev, "request", "%llu", (unsigned long long)a[0]);
        add_arg(d, ev, "pid", "%lld", (long long)a[1]);
        break;
    case KX_K_INIT_MODULE:
        add_arg(d, ev, "len", "%llu", (unsigned long long)a[1]);
        add_arg_str(d, ev, "uargs", str(e, 0));
        break;
    case KX_K_FINIT_MODULE:
        add_arg(d, ev, "fd", "%lld", (long long)a[0]);
        add_arg_str(d, ev, "uargs", str(e, 0));
        ev->fd_name = str(e, 1);
        break;
    case KX_K_BPF:
        s = bpf_cmd_name(a[0]);
        if (s)
            add_arg(d, ev, "cmd", "%s", s);
        else
            add_arg(d, ev, "cmd", "%llu", (unsigned long long)a[0]);
        if (a[0] == 5)
            add_arg(d, ev, "prog_type", "%llu", (unsigned long long)e->aux);
        break;
    case KX_K_MEMFD_CREATE:
        add_arg_str(d, ev, "name", str(e, 0));
        add_arg(d, ev, "flags", "0x%llx", (unsigned long long)a[1]);
        ev->fd_num = e->ret;
        break;
    case KX_K_KILL:
    case KX_K_TKILL:
        add_arg(d, ev, "pid", "%lld", (long long)(int32_t)a[0]);
        s = kx_decode_signal((int64_t)a[1]);
        add_arg(d, ev, "sig", "%s", s ? s : "0");
        break;
    case KX_K_TGKILL:
        add_arg(d, ev, "pid", "%lld", (long long)(int32_t)a[0]);
        add_arg(d, ev, "tid", "%lld", (long long)(int32_t)a[1]);
        s = kx_decode_signal((int64_t)a[2]);
        add_arg(d, ev, "sig", "%s", s ? s : "0");
        break;
    case KX_K_PROCESS_VM_WRITEV:
        add_arg(d, ev, "pid", "%lld", (long long)(int32_t)a[0]);
        break;
    default:
        break;
    }
}

int kx_decode_event(struct kx_decode *d, const struct kx_event *e, size_t len,
                    struct kx_sevent *ev)
{
    const struct kx_sproc *self, *up;
    const struct kx_container *c;

    if (!d || !e || !ev || len < KX_EVENT_FIXED || e->hdr.size > len || e->kind >= KX_K_MAX)
        return -EINVAL;
    memset(ev, 0, sizeof(*ev));
    ev->kind = (enum kx_kind)e->kind;
    ev->type = (e->kind == KX_K_EXEC && (e->flags & KX_F_EXECVEAT)) ? "execveat"
                                                                     : kx_kind_name(ev->kind);
    ev->dir = '<';
    ev->time_ns = (int64_t)e->task.ktime_ns + d->mono_to_real;
    ev->res = e->ret;
    ev->flags = e->flags;
    ev->hostname = d->hostname;
    ev->fd_num = -1;
    ev->fd_sport = ev->fd_cport = ev->fd_lport = ev->fd_rport = -1;
    if (e->kind == KX_K_EXEC || e->kind == KX_K_FORK || e->kind == KX_K_EXIT || e->ret >= 0) {
        ev->res_str = "SUCCESS";
    } else {
        const char *n = strerrorname_np((int)-e->ret);

        snprintf(d->res, sizeof(d->res), "%s", n ? n : "E?");
        ev->res_str = d->res;
    }

    /* proc.*: the table's entry, with what the kernel says now on top */
    self = kx_proctable_get(d->pt, e->task.tgid, e->task.start_ns);
    memset(&d->proc, 0, sizeof(d->proc));
    if (self)
        d->proc = *self;
    d->proc.pid = e->task.tgid;
    d->proc.tid = e->task.pid;
    d->proc.ppid = e->task.ppid;
    d->proc.start_ns = (int64_t)e->task.start_ns;
    d->proc.name = e->task.comm;
    d->proc.uid = e->task.uid;
    d->proc.gid = e->task.gid;
    d->proc.euid = e->task.euid;
    d->proc.loginuid = e->task.loginuid == UINT32_MAX ? -1 : (int64_t)e->task.loginuid;
    d->proc.tty = e->task.tty;
    d->proc.user = id_name(d->users, d->proc.uid, false);
    d->proc.group = id_name(d->groups, d->proc.gid, true);
    if (e->kind == KX_K_EXEC) {
        d->proc.exe_upper_layer = e->flags & KX_F_EXE_UPPER;
        d->proc.exe_from_memfd = e->flags & KX_F_EXE_MEMFD;
    }
    ev->proc = d->proc;

    /* ancestors: parent by its start time, then up the table */
    up = kx_proctable_get(d->pt, e->task.ppid, e->task.pstart_ns);
    for (size_t i = 0; up && i < KX_SEV_ANCESTORS; i++) {
        ev->anc[ev->n_anc++] = up;
        if (up->ppid <= 0 || up->ppid == up->pid)
            break;
        up = kx_proctable_get(d->pt, (uint32_t)up->ppid, 0);
    }

    c = container_of_cgroup(d, e);
    if (c->runtime != KX_RUNTIME_NONE && c->id[0]) {
        ev->container_id = c->id;
        ev->container_full_id = c->full_id;
        ev->container_runtime = kx_runtime_name(c->runtime);
    } else {
        ev->container_id = ev->container_full_id = "host";
        ev->container_runtime = "";
    }
    if (c->pod_uid[0]) {
        ev->pod.uid = c->pod_uid;
        if (d->pod_fn) {
            const char *uid = ev->pod.uid, *cname = NULL;

            if (d->pod_fn(d->pod_ctx, c->pod_uid, c->full_id[0] ? c->full_id : NULL, &ev->pod,
                          &cname) == 1)
                ev->container_name = cname;
            ev->pod.uid = uid; /* the cgroup's uid is the authority */
        }
    }
    fill_kind(d, e, ev);
    return 0;
}
