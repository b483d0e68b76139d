/* SPDX-License-Identifier: Apache-2.0 */
/*
 * actions.c - node actions answered by the sensor (see actions.h): kill a
 * process through a pidfd after checking its start time, and kill, freeze
 * or thaw a container through its cgroup v2 directory.
 *
 * Whoever can publish on klaxon.node.<node>.action can ask for a kill, so
 * the request is parsed strictly, every id is checked for shape, and the
 * targets that would take the node (or the sensor) down are refused before
 * anything is touched. Strings that come from the kernel or from other
 * users (comm, exe, cgroup names) are reduced to printable ASCII before
 * they reach a reply or the log.
 *
 * Threads: kx_actions_handle() runs on the NATS subscription's own thread
 * (or a test's); a->lock serializes requests, so the container cache and
 * the kernel-side sequence of one action are never interleaved.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "actions.h"
#include "cgroup.h"
#include "log.h"
#include "util.h"

#define KX_PF_KTHREAD 0x00200000u             /* include/linux/sched.h: task is a kernel thread */
#define KX_RID_MAX 128                        /* request_id bytes */
#define KX_REASON_MAX 512                     /* reason bytes */
#define KX_PROCS_MAX (1024 * 1024)            /* cgroup.procs bytes read per cgroup */
#define KX_WALK_DEPTH 64                      /* cgroup levels walked below the mount */
#define KX_WALK_DIRS 50000                    /* cgroup directories walked at most (~2 s) */
#define KX_CACHE_MAX 16384                    /* containers remembered from a walk */
#define KX_FREE_WAIT_NS (5 * KX_NSEC_PER_SEC) /* kx_actions_free: in-flight request */
#define KX_SUB_PENDING_MSGS 64                /* requests queued in nats.c, then dropped */
#define KX_SUB_PENDING_BYTES (8 * 1024 * 1024)

enum act {
    ACT_NONE,
    ACT_KILL_PROCESS,
    ACT_KILL_CONTAINER,
    ACT_FREEZE,
    ACT_THAW,
};

static const char *const act_names[] = {
    [ACT_NONE] = "",
    [ACT_KILL_PROCESS] = "kill_process",
    [ACT_KILL_CONTAINER] = "kill_container",
    [ACT_FREEZE] = "freeze_container",
    [ACT_THAW] = "thaw_container",
};

/* A container's cgroup found by the walk. */
struct ctr_ent {
    char full_id[KX_CONTAINER_FULL_LEN + 1];
    char pod_uid[KX_POD_UID_LEN + 1];
    enum kx_runtime runtime;
    char *path; /* owned: "/a/b/cri-containerd-<id>.scope", relative to the mount */
};

struct kx_actions {
    pthread_mutex_t lock;  /* serializes kx_actions_handle */
    char *node;            /* owned, immutable */
    char subject[192];     /* immutable after start */
    char *cg_mnt;          /* owned: cgroup2 mount point, NULL if none; immutable */
    int cg_fd;             /* the mount's directory, -1 if none; immutable */
    bool no_cgroup_kill;   /* immutable */
    int64_t tick_ns;       /* ns per /proc clock tick; immutable */
    struct ctr_ent *cache; /* lock; containers of the last walk */
    size_t n_cache;        /* lock */

    natsSubscription *sub;   /* owned; NULL without NATS */
    pthread_mutex_t done_mu; /* guards sub_done */
    pthread_cond_t done_cv;  /* signalled when the subscription has completed */
    bool sub_done;           /* done_mu; no message callback runs or will run */
    bool complete_cb;        /* actions_on_complete is set on sub */
};

/* A parsed request. */
struct req {
    enum act act;
    bool has_pid, has_start, has_sig, has_cid, has_rid, has_reason;
    long long pid;
    uint64_t start_ns;
    int sig;
    const char *sig_name;                /* static, canonical "SIGKILL" */
    char cid[KX_CONTAINER_FULL_LEN + 1]; /* lowercase hex, 12 or 64 */
    char rid[KX_RID_MAX + 1];            /* printable ASCII */
    char reason[KX_REASON_MAX + 1];      /* no control characters */
};

/* The outcome of one request. */
struct result {
    const char *error;  /* NULL = ok; else an error code (static) */
    char text[1024];    /* detail when ok, message when not */
    cJSON *target;      /* owned, may be NULL */
    const char *method; /* kill_container: "cgroup.kill" | "signal" */
};

static int fail(struct result *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the error of r; returns -1 so callers can "return fail(...)". */
static int fail(struct result *r, const char *code, const char *fmt, ...)
{
    va_list ap;

    r->error = code;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    return -1;
}

static void __attribute__((format(printf, 2, 3))) done(struct result *r, const char *fmt, ...)
{
    va_list ap;

    r->error = NULL;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* Printable ASCII only: comm, exe and cgroup names are chosen by others. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static void copy_sanitized(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
    sanitize(dst);
}

/* ------------------------------------------------------------ small I/O */

/* Reads at most cap-1 bytes of dirfd/path into buf (NUL terminated).
 * Returns the length or -errno. */
static ssize_t read_at(int dirfd, const char *path, char *buf, size_t cap)
{
    size_t len = 0;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            n = -errno;
            close(fd);
            return n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Writes s to dirfd/path in one write(2) (cgroup control files). 0 or -errno. */
static int write_at(int dirfd, const char *path, const char *s)
{
    size_t n = strlen(s);
    int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    if (write(fd, s, n) != (ssize_t)n)
        rc = errno ? -errno : -EIO;
    close(fd);
    return rc;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Milliseconds from now until deadline (monotonic ns), at least 0. */
static int ms_left(int64_t deadline)
{
    int64_t left = deadline - kx_monotonic_ns();

    return left <= 0 ? 0 : (int)((left + KX_NSEC_PER_MSEC - 1) / KX_NSEC_PER_MSEC);
}

/* ---------------------------------------------------------------- /proc */

struct proc_info {
    char comm[64];  /* sanitized */
    char state;     /* 'R', 'S', 'Z', ... */
    unsigned flags; /* PF_* */
    unsigned long long start_ticks;
};

/* /proc/<pid>/stat: comm (field 2), state (3), flags (9), starttime (22). */
static int proc_stat(pid_t pid, struct proc_info *pi)
{
    char path[64], buf[2048], *open_p, *close_p, *tok, *save = NULL;
    int field = 3;
    ssize_t n;

    memset(pi, 0, sizeof(*pi));
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    n = read_at(AT_FDCWD, path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    open_p = strchr(buf, '(');
    close_p = strrchr(buf, ')'); /* comm may itself contain ')' */
    if (!open_p || !close_p || close_p < open_p)
        return -EIO;
    *close_p = '\0';
    copy_sanitized(pi->comm, sizeof(pi->comm), open_p + 1);
    for (tok = strtok_r(close_p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 3)
            pi->state = tok[0];
        else if (field == 9)
            pi->flags = (unsigned)strtoul(tok, NULL, 10);
        else if (field == 22) {
            pi->start_ticks = strtoull(tok, NULL, 10);
            return 0;
        }
    }
    return -EIO;
}

/* Tgid of a pid or thread id from /proc/<pid>/status, or -errno. */
static int proc_tgid(pid_t pid)
{
    char path[64], buf[4096], *p;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    n = read_at(AT_FDCWD, path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    p = strstr(buf, "\nTgid:");
    return p ? atoi(p + 6) : -EIO;
}

/* The cgroup v2 path ("0::" line) of /proc/<who>/cgroup into buf. 0 or -errno
 * (-ENOENT when there is no v2 line). who: "self", "1", "self/task/123". */
static int proc_cgroup_v2(const char *who, char *buf, size_t len)
{
    char path[96], text[16384], *p;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%s/cgroup", who);
    ssize_t rc = read_at(AT_FDCWD, path, text, sizeof(text));
    if (rc < 0)
        return (int)rc;
    if (strncmp(text, "0::", 3) == 0)
        p = text + 3;
    else if ((p = strstr(text, "\n0::")))
        p += 4;
    else
        return -ENOENT;
    n = strcspn(p, "\n");
    if (n == 0 || n >= len)
        return -ENAMETOOLONG;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return 0;
}

/* --------------------------------------------------------------- request */

struct sig_name {
    const char *name;
    int sig;
};

static const struct sig_name signals[] = {
    {"SIGKILL", SIGKILL}, {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGHUP", SIGHUP},
    {"SIGQUIT", SIGQUIT}, {"SIGABRT", SIGABRT}, {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
    {"SIGSTOP", SIGSTOP}, {"SIGCONT", SIGCONT},
};

static const struct sig_name *find_signal(const char *s)
{
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < KX_ARRAY_SIZE(signals); i++)
        if (strcasecmp(s, signals[i].name + 3) == 0)
            return &signals[i];
    return NULL;
}

#define F_KP (1u << ACT_KILL_PROCESS)
#define F_CTR ((1u << ACT_KILL_CONTAINER) | (1u << ACT_FREEZE) | (1u << ACT_THAW))
#define F_ALL (F_KP | F_CTR)

static const struct {
    const char *name;
    unsigned acts; /* actions the field applies to */
} fields[] = {
    {"action", F_ALL},    {"request_id", F_ALL}, {"reason", F_ALL},       {"pid", F_KP},
    {"start_time", F_KP}, {"signal", F_KP},      {"container_id", F_CTR},
};

static bool printable(const char *s, bool ascii_only)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7e))
            return false;
    }
    return true;
}

/* A JSON number that is a whole number in [lo, hi]. */
static bool whole_number(const cJSON *v, double lo, double hi, double *out)
{
    double d;

    if (!cJSON_IsNumber(v))
        return false;
    d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi)
        return false;
    *out = d;
    return true;
}

/* "3ad7b26ded6d", 64 hex, or "containerd://<id>" as Kubernetes writes it. */
static bool parse_container_id(const char *s, char *out)
{
    const char *sep = strstr(s, "://");
    size_t n;

    if (sep)
        s = sep + 3;
    n = strlen(s);
    if (n != KX_CONTAINER_ID_LEN && n != KX_CONTAINER_FULL_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[n] = '\0';
    return true;
}

static int parse_value(const char *name, const cJSON *v, struct req *q, struct result *r)
{
    double d;

    if (strcmp(name, "pid") == 0) {
        if (!whole_number(v, -2147483648.0, 2147483647.0, &d))
            return fail(r, "bad_request", "\"pid\" must be an integer process id");
        q->pid = (long long)d;
        q->has_pid = true;
    } else if (strcmp(name, "start_time") == 0) {
        if (cJSON_IsString(v)) {
            const char *s = v->valuestring;
            char *end;

            errno = 0;
            q->start_ns = strtoull(s, &end, 10);
            if (!*s || *end || !isdigit((unsigned char)*s) || errno)
                return fail(r, "bad_request",
                            "\"start_time\" must be a non-negative integer (ns since boot)");
        } else if (whole_number(v, 0, 18446744073709549568.0, &d)) {
            q->start_ns = (uint64_t)d;
        } else {
            return fail(r, "bad_request",
                        "\"start_time\" must be a non-negative integer (ns since boot, as "
                        "/proc/<pid>/stat field 22 in ns)");
        }
        q->has_start = true;
    } else if (strcmp(name, "signal") == 0) {
        const struct sig_name *s = cJSON_IsString(v) ? find_signal(v->valuestring) : NULL;

        if (!s)
            return fail(r, "bad_request",
                        "\"signal\" must be one of SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, "
                        "SIGABRT, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT");
        q->sig = s->sig;
        q->sig_name = s->name;
        q->has_sig = true;
    } else if (strcmp(name, "container_id") == 0) {
        if (!cJSON_IsString(v) || !parse_container_id(v->valuestring, q->cid))
            return fail(r, "bad_request",
                        "\"container_id\" must be 12 or 64 hex digits (container.id or "
                        "container.full_id)");
        q->has_cid = true;
    } else if (strcmp(name, "reason") == 0) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) > KX_REASON_MAX ||
            !printable(v->valuestring, false))
            return fail(r, "bad_request",
                        "\"reason\" must be a string of at most %d bytes without control "
                        "characters",
                        KX_REASON_MAX);
        snprintf(q->reason, sizeof(q->reason), "%s", v->valuestring);
        q->has_reason = true;
    }
    /* action and request_id were taken in the first pass */
    return 0;
}

/*
 * Parses a request strictly. request_id and action are taken first, so an
 * error reply can still echo them; then every field is checked.
 */
static int parse_request(const char *req, size_t len, struct req *q, struct result *r)
{
    const char *end = NULL;
    cJSON *root, *v, *rid, *act;
    unsigned seen = 0;
    int rc = -1;

    memset(q, 0, sizeof(*q));
    q->sig = SIGKILL;
    q->sig_name = "SIGKILL";
    if (len > KX_ACTIONS_REQ_MAX)
        return fail(r, "bad_request", "request is %zu bytes; at most %d are accepted", len,
                    KX_ACTIONS_REQ_MAX);
    root = cJSON_ParseWithLengthOpts(req, len, &end, false);
    if (!root)
        return fail(r, "bad_request", "request is not valid JSON");
    while (end && end < req + len && isspace((unsigned char)*end))
        end++;
    if (end != req + len) {
        fail(r, "bad_request", "request has trailing data after the JSON object");
        goto cleanup;
    }
    if (!cJSON_IsObject(root)) {
        fail(r, "bad_request", "request must be a JSON object");
        goto cleanup;
    }

    rid = cJSON_GetObjectItemCaseSensitive(root, "request_id");
    if (rid) {
        if (!cJSON_IsString(rid) || strlen(rid->valuestring) > KX_RID_MAX ||
            !printable(rid->valuestring, true)) {
            fail(r, "bad_request",
                 "\"request_id\" must be a string of at most %d printable ASCII characters",
                 KX_RID_MAX);
            goto cleanup;
        }
        snprintf(q->rid, sizeof(q->rid), "%s", rid->valuestring);
        q->has_rid = true;
    }
    act = cJSON_GetObjectItemCaseSensitive(root, "action");
    if (!act) {
        fail(r, "bad_request",
             "missing \"action\" (kill_process, kill_container, freeze_container or "
             "thaw_container)");
        goto cleanup;
    }
    for (int i = ACT_KILL_PROCESS; i <= ACT_THAW; i++)
        if (cJSON_IsString(act) && strcmp(act->valuestring, act_names[i]) == 0)
            q->act = (enum act)i;
    if (q->act == ACT_NONE) {
        char shown[64] = "(not a string)";

        if (cJSON_IsString(act))
            snprintf(shown, sizeof(shown), "\"%.40s\"", act->valuestring);
        sanitize(shown);
        fail(r, "bad_request",
             "unknown action %s (kill_process, kill_container, freeze_container or "
             "thaw_container)",
             shown);
        goto cleanup;
    }

    cJSON_ArrayForEach(v, root)
    {
        char shown[48];
        size_t i;

        for (i = 0; i < KX_ARRAY_SIZE(fields); i++)
            if (v->string && strcmp(v->string, fields[i].name) == 0)
                break;
        copy_sanitized(shown, sizeof(shown), v->string ? v->string : "");
        if (i == KX_ARRAY_SIZE(fields)) {
            fail(r, "bad_request",
                 "unknown field \"%s\" (known: action, pid, start_time, signal, container_id, "
                 "request_id, reason)",
                 shown);
            goto cleanup;
        }
        if (seen & (1u << i)) {
            fail(r, "bad_request", "field \"%s\" appears twice", shown);
            goto cleanup;
        }
        seen |= 1u << i;
        if (!(fields[i].acts & (1u << q->act))) {
            fail(r, "bad_request", "field \"%s\" does not apply to %s", shown, act_names[q->act]);
            goto cleanup;
        }
        if (parse_value(fields[i].name, v, q, r) < 0)
            goto cleanup;
    }

    if (q->act == ACT_KILL_PROCESS && !(q->has_pid && q->has_start)) {
        fail(r, "bad_request",
             "kill_process needs \"pid\" and \"start_time\" (the process start time in ns "
             "since boot, so that a reused pid is never killed)");
        goto cleanup;
    }
    if (q->act != ACT_KILL_PROCESS && !q->has_cid) {
        fail(r, "bad_request", "%s needs \"container_id\" (12 or 64 hex digits)",
             act_names[q->act]);
        goto cleanup;
    }
    rc = 0;
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* ----------------------------------------------------------- kill_process */

static int kill_process(struct kx_actions *a, const struct req *q, struct result *r)
{
    pid_t pid = (pid_t)q->pid, self = getpid();
    unsigned long long want_ticks = q->start_ns / (uint64_t)a->tick_ns;
    struct proc_info pi;
    char exe_link[64], exe[1024];
    ssize_t n;
    int fd, rc, tgid;

    r->target = cJSON_CreateObject();
    cJSON_AddNumberToObject(r->target, "pid", (double)q->pid);
    {
        char num[24]; /* exact: a double would print 1.2e+17 past 11 days of uptime */

        snprintf(num, sizeof(num), "%llu", (unsigned long long)q->start_ns);
        cJSON_AddRawToObject(r->target, "start_time", num);
    }

    if (q->pid <= 1)
        return fail(r, "protected", "pid %lld: pids 0 and 1 (the host's init) are never killed",
                    q->pid);
    if (pid == self)
        return fail(r, "protected", "pid %d is klaxon-sensor itself", (int)pid);

    /* The pidfd first: from here on, a reused pid cannot be hit. */
    fd = pidfd_open_(pid);
    if (fd < 0) {
        int e = errno;

        if (e == ESRCH)
            return fail(r, "not_found", "no process with pid %d", (int)pid);
        /* A thread id that is not a process id: EINVAL, or ENOENT on newer
         * kernels (no PIDFD_THREAD asked for). */
        if ((e == EINVAL || e == ENOENT) && (tgid = proc_tgid(pid)) > 0 && tgid != pid) {
            if (tgid == self)
                return fail(r, "protected", "pid %d is a thread of klaxon-sensor", (int)pid);
            return fail(r, "bad_request",
                        "pid %d is a thread of process %d: ask for the process's pid", (int)pid,
                        tgid);
        }
        if (e == ENOSYS)
            return fail(r, "failed", "this kernel has no pidfd_open (Linux 5.3 or later needed)");
        return fail(r, "failed", "pidfd_open(%d): %s", (int)pid, strerror(e));
    }

    rc = proc_stat(pid, &pi);
    if (rc < 0) {
        rc = rc == -ENOENT || rc == -ESRCH
                 ? fail(r, "not_found", "pid %d has exited", (int)pid)
                 : fail(r, "failed", "cannot read /proc/%d/stat: %s", (int)pid, strerror(-rc));
        goto cleanup;
    }
    cJSON_AddStringToObject(r->target, "comm", pi.comm);
    if (pi.start_ticks != want_ticks) {
        rc = fail(r, "stale",
                  "pid %d (%s) started at %llu ns since boot (tick %llu), not at the requested "
                  "start_time %llu (tick %llu): the pid was reused; nothing was signalled",
                  (int)pid, pi.comm, pi.start_ticks * (unsigned long long)a->tick_ns,
                  pi.start_ticks, (unsigned long long)q->start_ns, want_ticks);
        goto cleanup;
    }
    if (pi.flags & KX_PF_KTHREAD) {
        rc = fail(r, "protected", "pid %d (%s) is a kernel thread", (int)pid, pi.comm);
        goto cleanup;
    }
    snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", (int)pid);
    n = readlink(exe_link, exe, sizeof(exe) - 1);
    if (n < 0 && pi.state == 'Z') {
        done(r,
             "pid %d (%s) has already exited (a zombie its parent has not reaped); nothing "
             "to signal",
             (int)pid, pi.comm);
        rc = 0;
        goto cleanup;
    }
    if (n < 0 && errno == ENOENT) {
        rc = fail(r, "protected", "pid %d (%s) has no executable (a kernel thread?)", (int)pid,
                  pi.comm);
        goto cleanup;
    }
    if (n >= 0) {
        exe[n] = '\0';
        sanitize(exe);
        cJSON_AddStringToObject(r->target, "exe", exe);
    }

    if (pidfd_signal(fd, q->sig) < 0) {
        rc = errno == ESRCH ? fail(r, "not_found", "pid %d (%s) exited before it was signalled",
                                   (int)pid, pi.comm)
                            : fail(r, "failed", "%s to pid %d (%s): %s", q->sig_name, (int)pid,
                                   pi.comm, strerror(errno));
        goto cleanup;
    }
    rc = 0;
    if (q->sig != SIGKILL) {
        done(r, "sent %s to pid %d (%s)", q->sig_name, (int)pid, pi.comm);
        goto cleanup;
    }
    /* A pidfd turns readable when the process has exited (zombie or reaped). */
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t deadline = kx_monotonic_ns() + KX_ACTIONS_WAIT_NS;
        int pr;

        do
            pr = poll(&p, 1, ms_left(deadline));
        while (pr < 0 && errno == EINTR);
        if (pr > 0)
            done(r, "killed pid %d (%s) with SIGKILL", (int)pid, pi.comm);
        else
            rc = fail(r, "timeout",
                      "sent SIGKILL to pid %d (%s) but it has not exited after %lld ms "
                      "(uninterruptible sleep?)",
                      (int)pid, pi.comm, (long long)(KX_ACTIONS_WAIT_NS / KX_NSEC_PER_MSEC));
    }
cleanup:
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ containers */

static void cache_clear(struct kx_actions *a)
{
    for (size_t i = 0; i < a->n_cache; i++)
        free(a->cache[i].path);
    free(a->cache);
    a->cache = NULL;
    a->n_cache = 0;
}

struct walk {
    struct ctr_ent *ents;
    size_t n, cap;
    size_t dirs;
    char path[KX_CGROUP_PATH_MAX + 1];
};

/* Records every directory whose path names a container that its parent's
 * path does not: the container's own cgroup, not its sub-cgroups. Takes
 * ownership of dfd. */
static void walk_dir(struct walk *w, int dfd, size_t plen, const char *parent_id, int depth)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;

    if (!d) {
        close(dfd);
        return;
    }
    while ((de = readdir(d)) && w->dirs < KX_WALK_DIRS) {
        size_t n = strlen(de->d_name);
        struct kx_container c;
        int cfd;

        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            plen + 1 + n > KX_CGROUP_PATH_MAX)
            continue;
        w->dirs++;
        w->path[plen] = '/';
        memcpy(w->path + plen + 1, de->d_name, n + 1);
        if (kx_cgroup_parse_path(w->path, &c) != 1)
            c.full_id[0] = '\0';
        if (c.full_id[0] && strcmp(c.full_id, parent_id) != 0 && w->n < KX_CACHE_MAX) {
            if (w->n == w->cap) {
                size_t ncap = w->cap ? w->cap * 2 : 64;
                struct ctr_ent *e = realloc(w->ents, ncap * sizeof(*e));

                if (!e)
                    break;
                w->ents = e;
                w->cap = ncap;
            }
            struct ctr_ent *e = &w->ents[w->n];

            e->path = strdup(w->path);
            if (e->path) {
                memcpy(e->full_id, c.full_id, sizeof(e->full_id));
                memcpy(e->pod_uid, c.pod_uid, sizeof(e->pod_uid));
                e->runtime = c.runtime;
                w->n++;
            }
        }
        if (depth < KX_WALK_DEPTH) {
            cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd >= 0) { /* gone meanwhile: skip */
                char id[KX_CONTAINER_FULL_LEN + 1];

                memcpy(id, c.full_id[0] ? c.full_id : parent_id, sizeof(id));
                walk_dir(w, cfd, plen + 1 + n, id, depth + 1);
            }
        }
        w->path[plen] = '\0';
    }
    closedir(d);
}

/* Replaces the cache with the containers found under the cgroup2 mount. */
static void cache_refresh(struct kx_actions *a)
{
    struct walk *w = calloc(1, sizeof(*w));
    int fd;

    cache_clear(a);
    if (!w)
        return;
    fd = openat(a->cg_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        walk_dir(w, fd, 0, "", 0);
    a->cache = w->ents;
    a->n_cache = w->n;
    free(w);
}

static size_t cache_matches(struct kx_actions *a, const char *id, struct ctr_ent **first)
{
    size_t len = strlen(id), n = 0;

    *first = NULL;
    for (size_t i = 0; i < a->n_cache; i++) {
        if (strncmp(a->cache[i].full_id, id, len) == 0) {
            if (!n)
                *first = &a->cache[i];
            n++;
        }
    }
    return n;
}

static bool cgroup_exists(struct kx_actions *a, const char *path)
{
    char rel[KX_CGROUP_PATH_MAX + 32];

    snprintf(rel, sizeof(rel), "%s/cgroup.procs", path + 1);
    return faccessat(a->cg_fd, rel, F_OK, 0) == 0;
}

/* The container's cgroup: from the cache when it is the only match and
 * still exists, else from a fresh walk. */
static int find_container(struct kx_actions *a, const char *id, struct ctr_ent **out,
                          struct result *r)
{
    size_t n = cache_matches(a, id, out);

    if (n == 1 && cgroup_exists(a, (*out)->path))
        return 0;
    cache_refresh(a);
    n = cache_matches(a, id, out);
    if (n == 0)
        return fail(r, "not_found",
                    "no cgroup v2 directory for container %s under %s (%zu containers on this "
                    "node)",
                    id, a->cg_mnt, a->n_cache);
    if (n > 1)
        return fail(r, "ambiguous",
                    "container id %s matches %zu containers: give the full 64-hex id", id, n);
    return 0;
}

/* path is path_of_other, or one of its ancestors. */
static bool same_or_ancestor(const char *path, const char *other)
{
    size_t n = strlen(path);

    if (strcmp(path, "/") == 0)
        return true;
    return strncmp(other, path, n) == 0 && (other[n] == '\0' || other[n] == '/');
}

/* Refuses the root cgroup and any cgroup holding the sensor (any of its
 * threads) or the host's init. id: the container's, for messages. */
static int check_cgroup_protected(const char *path, const char *id, struct result *r)
{
    char mine[KX_CGROUP_PATH_MAX + 1], who[64];
    DIR *d;
    struct dirent *de;
    int rc;

    if (strcmp(path, "/") == 0)
        return fail(r, "protected", "the root cgroup is never touched");
    rc = proc_cgroup_v2("self", mine, sizeof(mine));
    if (rc < 0)
        return fail(r, "protected",
                    "cannot tell which cgroup klaxon-sensor runs in (%s): refusing to act on "
                    "cgroups",
                    strerror(-rc));
    if (same_or_ancestor(path, mine)) {
        sanitize(mine);
        return fail(r, "protected",
                    "the cgroup of container %.12s holds klaxon-sensor (which runs in %.300s)", id,
                    mine);
    }
    d = opendir("/proc/self/task"); /* threads may sit in other (threaded) cgroups */
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(who, sizeof(who), "self/task/%.20s", de->d_name);
        if (proc_cgroup_v2(who, mine, sizeof(mine)) == 0 && same_or_ancestor(path, mine)) {
            closedir(d);
            return fail(r, "protected",
                        "the cgroup of container %.12s holds a thread of klaxon-sensor", id);
        }
    }
    if (d)
        closedir(d);
    if (proc_cgroup_v2("1", mine, sizeof(mine)) == 0 && same_or_ancestor(path, mine))
        return fail(r, "protected", "the cgroup of container %.12s holds the host's init (pid 1)",
                    id);
    return 0;
}

typedef void (*pid_fn)(pid_t pid, void *ctx);

/* Calls fn for every pid in the cgroup dfd and its descendants (borrowed dfd). */
static void for_each_pid(int dfd, int depth, pid_fn fn, void *ctx)
{
    char *buf = malloc(KX_PROCS_MAX);
    struct dirent *de;
    DIR *d;
    int fd;

    if (buf && read_at(dfd, "cgroup.procs", buf, KX_PROCS_MAX) > 0) {
        for (char *p = buf, *nl; *p; p = nl + 1) {
            long pid = strtol(p, &nl, 10);

            if (pid > 0)
                fn((pid_t)pid, ctx);
            nl = strchr(p, '\n');
            if (!nl)
                break;
        }
    }
    free(buf);
    if (depth >= KX_WALK_DEPTH || (fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    while ((de = readdir(d))) {
        int cfd;

        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
            strcmp(de->d_name, "..") == 0) /* ".hidden" cgroups are walked too */
            continue;
        cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd >= 0) {
            for_each_pid(cfd, depth + 1, fn, ctx);
            close(cfd);
        }
    }
    closedir(d);
}

static void count_pid(pid_t pid, void *ctx)
{
    (*(size_t *)ctx)++;
}

/* Reads "key N" from cgroup.events; -errno if unreadable or missing. */
static int events_value(int evfd, const char *key)
{
    char buf[256], *p;
    size_t kl = strlen(key);
    ssize_t n = pread(evfd, buf, sizeof(buf) - 1, 0);

    if (n < 0)
        return -errno;
    buf[n] = '\0';
    for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return atoi(p + kl + 1);
    return -ENOENT;
}

/* Waits until cgroup.events shows "key want", at most until deadline.
 * 0, -ETIMEDOUT, or -errno. The kernel notifies POLLPRI on changes; the
 * poll is also capped at 50 ms in case a change slips between read and poll. */
static int events_wait(int dfd, const char *key, int want, int64_t deadline)
{
    int fd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC), v, rc;

    if (fd < 0)
        return -errno;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLPRI};
        int ms;

        v = events_value(fd, key);
        if (v < 0 || v == want) {
            rc = v < 0 ? v : 0;
            break;
        }
        ms = ms_left(deadline);
        if (ms == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        poll(&p, 1, ms < 50 ? ms : 50);
    }
    close(fd);
    return rc;
}

struct sigkill_ctx {
    const char *path; /* the container's cgroup, relative to the mount */
    pid_t self;
    size_t killed, errors;
};

/* The fallback's kill of one pid: pidfd, then the pid's cgroup is checked
 * to still be (under) the container's, then the signal. */
static void sigkill_pid(pid_t pid, void *ctx)
{
    struct sigkill_ctx *k = ctx;
    char who[16], cg[KX_CGROUP_PATH_MAX + 1];
    int fd;

    if (pid <= 1 || pid == k->self)
        return;
    fd = pidfd_open_(pid);
    if (fd < 0)
        return; /* exited */
    snprintf(who, sizeof(who), "%d", (int)pid);
    if (proc_cgroup_v2(who, cg, sizeof(cg)) == 0 && same_or_ancestor(k->path, cg)) {
        if (pidfd_signal(fd, SIGKILL) == 0)
            k->killed++;
        else if (errno != ESRCH)
            k->errors++;
    }
    close(fd);
}

static cJSON *container_target(const struct ctr_ent *e, size_t pids)
{
    cJSON *t = cJSON_CreateObject();
    char path[KX_CGROUP_PATH_MAX + 1];

    copy_sanitized(path, sizeof(path), e->path);
    cJSON_AddStringToObject(t, "container_id", e->full_id);
    cJSON_AddStringToObject(t, "runtime", kx_runtime_name(e->runtime));
    cJSON_AddStringToObject(t, "cgroup", path);
    if (e->pod_uid[0])
        cJSON_AddStringToObject(t, "pod_uid", e->pod_uid);
    cJSON_AddNumberToObject(t, "pids", (double)pids);
    return t;
}

static int kill_container(struct kx_actions *a, int dfd, const struct ctr_ent *e, size_t pids,
                          struct result *r)
{
    int64_t deadline = kx_monotonic_ns() + KX_ACTIONS_WAIT_NS;
    char short_id[KX_CONTAINER_ID_LEN + 1];
    int rc;

    memcpy(short_id, e->full_id, KX_CONTAINER_ID_LEN);
    short_id[KX_CONTAINER_ID_LEN] = '\0';
    if (!a->no_cgroup_kill && faccessat(dfd, "cgroup.kill", F_OK, 0) == 0) {
        r->method = "cgroup.kill";
        rc = write_at(dfd, "cgroup.kill", "1");
        if (rc < 0)
            return fail(r, "failed", "writing cgroup.kill of %s: %s", short_id, strerror(-rc));
        rc = events_wait(dfd, "populated", 0, deadline);
        if (rc == -ETIMEDOUT)
            return fail(r, "timeout",
                        "wrote cgroup.kill of container %s, but it still has processes after "
                        "%lld ms (uninterruptible sleep?)",
                        short_id, (long long)(KX_ACTIONS_WAIT_NS / KX_NSEC_PER_MSEC));
        if (rc < 0)
            return fail(r, "failed", "reading cgroup.events of %s: %s", short_id, strerror(-rc));
        done(r, "killed container %s: %zu process(es) via cgroup.kill", short_id, pids);
        return 0;
    }

    /* No cgroup.kill (kernel < 5.14): freeze so nothing forks meanwhile
     * (frozen tasks still die of SIGKILL), then signal every pid, again
     * until the cgroup is empty. */
    struct sigkill_ctx k = {.path = e->path, .self = getpid()};
    bool froze = false;

    char was[8] = "";

    r->method = "signal";
    if (read_at(dfd, "cgroup.freeze", was, sizeof(was)) > 0 && was[0] == '0' &&
        write_at(dfd, "cgroup.freeze", "1") == 0)
        froze = true; /* else: no freezer, or frozen already (and left so) */
    for (;;) {
        int evfd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        int populated = evfd >= 0 ? events_value(evfd, "populated") : -ENOENT;
        size_t left = 0;

        if (evfd >= 0)
            close(evfd);
        if (populated < 0) /* no cgroup.events: count the pids */
            for_each_pid(dfd, 0, count_pid, &left);
        if (populated == 0 || (populated < 0 && left == 0)) {
            rc = 0;
            break;
        }
        if (ms_left(deadline) == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        for_each_pid(dfd, 0, sigkill_pid, &k);
        poll(NULL, 0, 10);
    }
    if (froze)
        write_at(dfd, "cgroup.freeze", "0"); /* leave the (now empty) cgroup as it was */
    if (rc == -ETIMEDOUT)
        return fail(r, "timeout",
                    "no cgroup.kill on this kernel: sent SIGKILL to %zu process(es) of container "
                    "%s, but it still has processes after %lld ms",
                    k.killed, short_id, (long long)(KX_ACTIONS_WAIT_NS / KX_NSEC_PER_MSEC));
    done(r,
         "killed container %s: %zu process(es) by SIGKILL, pid by pid (no cgroup.kill on "
         "this kernel)",
         short_id, pids > k.killed ? k.killed : pids); /* a slow one may get 2 signals */
    return 0;
}

static int freeze_container(struct kx_actions *a, int dfd, const struct ctr_ent *e, bool freeze,
                            size_t pids, struct result *r)
{
    int64_t deadline = kx_monotonic_ns() + KX_ACTIONS_WAIT_NS;
    const char *verb = freeze ? "froze" : "thawed";
    char short_id[KX_CONTAINER_ID_LEN + 1];
    int rc;

    memcpy(short_id, e->full_id, KX_CONTAINER_ID_LEN);
    short_id[KX_CONTAINER_ID_LEN] = '\0';
    if (faccessat(dfd, "cgroup.freeze", F_OK, 0) < 0)
        return fail(r, "failed",
                    "this kernel has no cgroup.freeze (Linux 5.2 or later needed) for container %s",
                    short_id);
    rc = write_at(dfd, "cgroup.freeze", freeze ? "1" : "0");
    if (rc < 0)
        return fail(r, "failed", "writing cgroup.freeze of %s: %s", short_id, strerror(-rc));
    rc = events_wait(dfd, "frozen", freeze ? 1 : 0, deadline);
    if (rc == -ETIMEDOUT)
        return fail(r, "timeout",
                    "wrote cgroup.freeze of container %s, but it is %s after %lld ms%s", short_id,
                    freeze ? "not frozen" : "still frozen",
                    (long long)(KX_ACTIONS_WAIT_NS / KX_NSEC_PER_MSEC),
                    freeze ? "" : " (is a parent cgroup frozen?)");
    if (rc < 0)
        return fail(r, "failed", "reading cgroup.events of %s: %s", short_id, strerror(-rc));
    done(r, "%s container %s: %zu process(es)", verb, short_id, pids);
    return 0;
}

static int container_action(struct kx_actions *a, const struct req *q, struct result *r)
{
    struct ctr_ent *e, ent;
    size_t pids = 0;
    int dfd, rc;

    r->target = cJSON_CreateObject();
    cJSON_AddStringToObject(r->target, "container_id", q->cid);
    if (a->cg_fd < 0)
        return fail(r, "failed", "no cgroup v2 hierarchy is mounted on this node");
    if (find_container(a, q->cid, &e, r) < 0)
        return -1;
    ent = *e; /* ent.path stays owned by the cache, which is not refreshed again here */
    cJSON_Delete(r->target);
    r->target = container_target(&ent, 0);
    if (check_cgroup_protected(ent.path, ent.full_id, r) < 0)
        return -1;

    dfd = openat(a->cg_fd, ent.path + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return fail(r, errno == ENOENT ? "not_found" : "failed", "cgroup of container %s: %s",
                    q->cid, errno == ENOENT ? "removed meanwhile" : strerror(errno));
    for_each_pid(dfd, 0, count_pid, &pids);
    cJSON_ReplaceItemInObject(r->target, "pids", cJSON_CreateNumber((double)pids));
    if (q->act == ACT_KILL_CONTAINER)
        rc = kill_container(a, dfd, &ent, pids, r);
    else
        rc = freeze_container(a, dfd, &ent, q->act == ACT_FREEZE, pids, r);
    close(dfd);
    return rc;
}

/* -------------------------------------------------------------- requests */

static char *build_reply(struct kx_actions *a, const struct req *q, struct result *r, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    char *out;

    if (!root)
        return NULL;
    cJSON_AddBoolToObject(root, "ok", r->error == NULL);
    if (q->act != ACT_NONE)
        cJSON_AddStringToObject(root, "action", act_names[q->act]);
    if (q->has_rid)
        cJSON_AddStringToObject(root, "request_id", q->rid);
    cJSON_AddStringToObject(root, "node", a->node);
    if (r->target) {
        cJSON_AddItemToObject(root, "target", r->target);
        r->target = NULL;
    }
    if (r->error) {
        cJSON_AddStringToObject(root, "error", r->error);
        cJSON_AddStringToObject(root, "message", r->text);
    } else {
        if (r->method)
            cJSON_AddStringToObject(root, "method", r->method);
        cJSON_AddStringToObject(root, "detail", r->text);
    }
    out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (out && len)
        *len = strlen(out);
    return out;
}

static void log_request(const struct req *q, const struct result *r, int64_t t0)
{
    char what[256] = "";

    if (q->act == ACT_KILL_PROCESS && q->has_pid && q->has_start)
        snprintf(what, sizeof(what), " pid=%lld start_time=%llu signal=%s", q->pid,
                 (unsigned long long)q->start_ns, q->sig_name);
    else if (q->act == ACT_KILL_PROCESS && q->has_pid)
        snprintf(what, sizeof(what), " pid=%lld", q->pid);
    else if (q->act != ACT_NONE && q->has_cid)
        snprintf(what, sizeof(what), " container_id=%s", q->cid);
    kx_info("node action %s%s%s%s%s%s%s: %s: %s (%.1f ms)",
            q->act != ACT_NONE ? act_names[q->act] : "(invalid request)", what,
            q->has_rid ? " request_id=" : "", q->has_rid ? q->rid : "",
            q->has_reason ? " reason=\"" : "", q->has_reason ? q->reason : "",
            q->has_reason ? "\"" : "", r->error ? r->error : "ok", r->text,
            (double)(kx_monotonic_ns() - t0) / 1e6);
}

int kx_actions_handle(struct kx_actions *a, const char *req, size_t len, char **reply,
                      size_t *reply_len)
{
    struct result r = {0};
    struct req q;
    int64_t t0 = kx_monotonic_ns();

    if (!a || !reply || (!req && len))
        return -EINVAL;
    *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    pthread_mutex_lock(&a->lock);
    if (parse_request(req ? req : "", len, &q, &r) == 0) {
        if (q.act == ACT_KILL_PROCESS)
            kill_process(a, &q, &r);
        else
            container_action(a, &q, &r);
    }
    log_request(&q, &r, t0);
    *reply = build_reply(a, &q, &r, reply_len);
    cJSON_Delete(r.target);
    pthread_mutex_unlock(&a->lock);
    return *reply ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------ lifecycle */

struct kx_actions *kx_actions_new(const struct kx_actions_opts *o)
{
    struct kx_actions *a = calloc(1, sizeof(*a));
    long tck = sysconf(_SC_CLK_TCK);

    if (!a) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->done_mu, NULL);
    pthread_cond_init(&a->done_cv, NULL);
    a->cg_fd = -1;
    a->tick_ns = KX_NSEC_PER_SEC / (tck > 0 ? tck : 100);
    a->no_cgroup_kill = o && o->no_cgroup_kill;
    a->node = strdup(o && o->node_name ? o->node_name : "");
    a->cg_mnt = kx_cgroup2_mount(NULL);
    if (!a->node) {
        kx_actions_free(a);
        errno = ENOMEM;
        return NULL;
    }
    if (a->cg_mnt)
        a->cg_fd = open(a->cg_mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->cg_fd < 0)
        kx_warn("node actions: no cgroup v2 hierarchy found; container actions will fail");
    return a;
}

/* natsMsgHandler, on the subscription's own nats.c thread. */
static void actions_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct kx_actions *a = closure;
    const char *reply_to = natsMsg_GetReply(msg);
    char *out = NULL;
    size_t n = 0;

    if (kx_actions_handle(a, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &out, &n) <
        0) {
        kx_error("node actions: out of memory building a reply");
    } else if (reply_to && *reply_to) {
        natsStatus s = natsConnection_Publish(nc, reply_to, out, (int)n);

        if (s != NATS_OK)
            kx_warn("node actions: cannot send the reply to %s: %s", reply_to,
                    natsStatus_GetText(s));
    } else {
        kx_info("node actions: the request had no reply subject; result not sent");
    }
    free(out);
    natsMsg_Destroy(msg);
}

/* natsOnCompleteCB: the last message callback has returned. */
static void actions_on_complete(void *closure)
{
    struct kx_actions *a = closure;

    pthread_mutex_lock(&a->done_mu);
    a->sub_done = true;
    pthread_cond_broadcast(&a->done_cv);
    pthread_mutex_unlock(&a->done_mu);
}

struct kx_actions *kx_actions_start(natsConnection *nc, const char *node_name, char *err,
                                    size_t errlen)
{
    struct kx_actions_opts o = {.node_name = node_name};
    struct kx_actions *a;
    char tok[128];
    natsStatus s;

    if (!nc || !node_name) {
        snprintf(err, errlen, "node actions: no NATS connection or node name");
        return NULL;
    }
    a = kx_actions_new(&o);
    if (!a) {
        snprintf(err, errlen, "node actions: out of memory");
        return NULL;
    }
    kx_slug(node_name, tok, sizeof(tok));
    snprintf(a->subject, sizeof(a->subject), "%s.%s.action", KX_SUBJ_NODE_ACTION_PREFIX, tok);
    s = natsConnection_Subscribe(&a->sub, nc, a->subject, actions_on_msg, a);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(a->sub, actions_on_complete, a);
    if (s == NATS_OK)
        a->complete_cb = true;
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(a->sub, KX_SUB_PENDING_MSGS, KX_SUB_PENDING_BYTES);
    if (s != NATS_OK) {
        snprintf(err, errlen, "node actions: cannot subscribe to %s: %s", a->subject,
                 natsStatus_GetText(s));
        kx_actions_free(a);
        return NULL;
    }
    kx_info("node actions: answering requests on %s", a->subject);
    return a;
}

const char *kx_actions_subject(const struct kx_actions *a)
{
    return a ? a->subject : "";
}

void kx_actions_free(struct kx_actions *a)
{
    if (!a)
        return;
    if (a->sub) {
        struct timespec ts;
        bool completed;
        int rc = 0;

        natsSubscription_Unsubscribe(a->sub); /* fails if already closed: fine */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += KX_FREE_WAIT_NS / KX_NSEC_PER_SEC;
        pthread_mutex_lock(&a->done_mu);
        while (a->complete_cb && !a->sub_done && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&a->done_cv, &a->done_mu, &ts);
        completed = a->sub_done || !a->complete_cb; /* without: failed start, nothing ran */
        pthread_mutex_unlock(&a->done_mu);
        if (!completed) {
            /* A request is still being handled: freeing would pull its
             * memory away. Leak instead; we are shutting down anyway. */
            kx_warn("node actions: a request is still running at shutdown; not freeing it");
            return;
        }
        natsSubscription_Destroy(a->sub);
    }
    cache_clear(a);
    if (a->cg_fd >= 0)
        close(a->cg_fd);
    free(a->cg_mnt);
    free(a->node);
    pthread_cond_destroy(&a->done_cv);
    pthread_mutex_destroy(&a->done_mu);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
