/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exec.c - the "exec" responder: runs an executable per alert, with the
 * alert's JSON on its stdin and the action's params in its environment.
 *
 *   actions:
 *     - type: exec
 *       path: /usr/local/bin/isolate-pod
 *       args: [--reason, klaxon]
 *       timeout: 10s
 *       env: {KUBECONFIG: /etc/klaxon/kubeconfig}
 *       params: {label: quarantine}
 *
 * The child gets a clean environment: PATH=/usr/sbin:/usr/bin:/sbin:/bin,
 * the `env` settings (which may replace PATH), KLAXON_PARAM_<KEY> per param
 * (uppercase, anything not alphanumeric becomes '_'; lists and maps as
 * JSON), KLAXON_RULE, KLAXON_PRIORITY, KLAXON_UUID, KLAXON_HOSTNAME and
 * KLAXON_RESPONDER. Nothing of the hub's own environment (tokens, NATS
 * credentials) reaches it.
 *
 * Outcome, in sysexits.h terms:
 *   exit 0                       done
 *   exit 75 (EX_TEMPFAIL)        retry (the core naks with backoff)
 *   timeout                      retry, after killing the process group
 *   any other exit, or a signal  permanent failure, the reason in the audit
 * In dry-run nothing runs: the audit says what would have.
 *
 * Containment: the child leads its own process group. On timeout the whole
 * group gets SIGTERM, then SIGKILL one second later; whatever the executable
 * leaves running in its group when it exits is killed too, so nothing
 * outlives its action (a helper that must can setsid()). Every child is
 * reaped by pid. No hub descriptor leaks into it: ours are all O_CLOEXEC,
 * and descriptors >= 3 are closed in the child anyway, against libraries
 * that forget. stdout and stderr are kept up to `maxoutput` bytes each; the
 * rest is still read (a chatty child never blocks on a full pipe), counted
 * and dropped.
 *
 * Threads: kx-respond (the responder worker thread), one act() at a time per
 * instance. posix_spawn() because fork() in a threaded process allows only
 * async-signal-safe calls before exec, and glibc's posix_spawn does the
 * setup (dup2, setpgid, signal reset, closefrom) safely with vfork speed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "responders.h"
#include "util.h"

#define EXEC_PATH_ENV "/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_PARAM_PREFIX "KLAXON_PARAM_"
#define EXEC_KILL_GRACE_NS KX_NSEC_PER_SEC           /* SIGTERM -> SIGKILL */
#define EXEC_MAX_TIMEOUT_NS (3600 * KX_NSEC_PER_SEC) /* a responder is not a batch job */
/* Both streams go into one audit record on NATS, whose default max_payload
 * is 1 MiB. */
#define EXEC_MAX_OUTPUT (256 * 1024)
#define EXEC_READ_CHUNK 16384
#define EXEC_WRITE_CHUNK 65536
#define EXEC_POLL_SLICE_MS 20 /* child-exit polling when pidfd_open is unavailable */
#define EXEC_REASON_LINE 200  /* stderr excerpt in a failure reason */

struct exec_settings {
    char *path;             /* absolute path of the executable */
    struct kx_strlist args; /* argv[1..] */
    int64_t timeout;        /* ns, from spawn to the end of its output */
    struct kx_strmap env;   /* fixed extra environment (may hold secrets: never audited) */
    int64_t maxoutput;      /* bytes of stdout, and of stderr, kept in the audit */
};

static const struct kx_opt exec_opts[] = {
    {"path", KX_OPT_STR, NULL, offsetof(struct exec_settings, path), KX_OPT_REQUIRED,
     "absolute path of the executable (checked at start-up: a regular, executable file)"},
    {"args", KX_OPT_STRLIST, NULL, offsetof(struct exec_settings, args), 0,
     "arguments after the program name"},
    {"timeout", KX_OPT_DURATION, "10s", offsetof(struct exec_settings, timeout), 0,
     "how long it may run; then its process group gets SIGTERM, SIGKILL 1s later, and the "
     "alert is retried"},
    {"env", KX_OPT_STRMAP, NULL, offsetof(struct exec_settings, env), 0,
     "extra environment variables (the child inherits nothing else from the hub)"},
    {"maxoutput", KX_OPT_SIZE, "64KiB", offsetof(struct exec_settings, maxoutput), 0,
     "stdout and stderr kept in the audit, each (at most 256KiB); the rest is counted and "
     "dropped"},
    {0},
};

struct exec_state {
    char **argv; /* owned: path, args..., NULL */
};

/* ---- environment ---------------------------------------------------------- */

/* A NULL-terminated "NAME=value" vector; setting a name again replaces it. */
struct exec_env {
    char **v; /* owned strings */
    size_t n, cap;
};

static int exec_env_set(struct exec_env *e, const char *name, const char *value)
{
    size_t nl = strlen(name);
    char *kv;

    if (asprintf(&kv, "%s=%s", name, value ? value : "") < 0)
        return -ENOMEM;
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], name, nl) == 0 && e->v[i][nl] == '=') {
            free(e->v[i]);
            e->v[i] = kv;
            return 0;
        }
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        char **v = realloc(e->v, cap * sizeof(*v));

        if (!v) {
            free(kv);
            return -ENOMEM;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
    return 0;
}

static void exec_env_free(struct exec_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

/* A config sub-tree as JSON (the depth is bounded by the config loader). */
static cJSON *exec_node_json(const struct kx_config_node *n)
{
    cJSON *j;

    if (n->kind == KX_CFG_SCALAR)
        return cJSON_CreateString(n->value ? n->value : "");
    j = n->kind == KX_CFG_MAP ? cJSON_CreateObject() : cJSON_CreateArray();
    for (const struct kx_config_node *c = n->child; j && c; c = c->next) {
        cJSON *v = exec_node_json(c);

        if (!v) {
            cJSON_Delete(j);
            return NULL;
        }
        if (n->kind == KX_CFG_MAP)
            cJSON_AddItemToObject(j, c->key ? c->key : "", v);
        else
            cJSON_AddItemToArray(j, v);
    }
    return j;
}

/* KLAXON_PARAM_<KEY>=<value> for each param. A scalar param is passed as
 * is; a list or map as compact JSON, which a script can hand to jq. */
static int exec_env_params(struct exec_env *e, const struct kx_config_node *params)
{
    for (const struct kx_config_node *c = params->child; c; c = c->next) {
        const char *key = c->key ? c->key : "";
        size_t pl = strlen(EXEC_PARAM_PREFIX), kl = strlen(key);
        char *name = malloc(pl + kl + 1), *json = NULL;
        int rc;

        if (!name)
            return -ENOMEM;
        memcpy(name, EXEC_PARAM_PREFIX, pl);
        for (size_t i = 0; i < kl; i++) {
            unsigned char ch = (unsigned char)key[i];

            name[pl + i] = (ch < 0x80 && isalnum(ch)) ? (char)toupper(ch) : '_';
        }
        name[pl + kl] = '\0';
        if (c->kind != KX_CFG_SCALAR) {
            cJSON *j = exec_node_json(c);

            json = j ? cJSON_PrintUnformatted(j) : NULL;
            cJSON_Delete(j);
            if (!json) {
                free(name);
                return -ENOMEM;
            }
        }
        rc = exec_env_set(e, name, json ? json : c->value);
        free(json);
        free(name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The child's whole environment: later entries win, so the KLAXON_* names
 * (reserved, see init) always say what this alert is. */
static int exec_env_build(struct exec_env *e, const struct kx_responder *r,
                          const struct kx_alert *alert, const struct kx_config_node *params)
{
    const struct exec_settings *s = r->settings;
    int rc;

    if ((rc = exec_env_set(e, "PATH", EXEC_PATH_ENV)) < 0)
        return rc;
    for (size_t i = 0; i < s->env.n; i++)
        if ((rc = exec_env_set(e, s->env.keys[i], s->env.vals[i])) < 0)
            return rc;
    if (params && params->kind == KX_CFG_MAP && (rc = exec_env_params(e, params)) < 0)
        return rc;
    if ((rc = exec_env_set(e, "KLAXON_RULE", alert->rule)) < 0 ||
        (rc = exec_env_set(e, "KLAXON_PRIORITY", kx_priority_name(alert->priority))) < 0 ||
        (rc = exec_env_set(e, "KLAXON_UUID", alert->uuid)) < 0 ||
        (rc = exec_env_set(e, "KLAXON_HOSTNAME", alert->hostname)) < 0 ||
        (rc = exec_env_set(e, "KLAXON_RESPONDER", r->name ? r->name : "")) < 0)
        return rc;
    if (r->dry_run && (rc = exec_env_set(e, "KLAXON_DRY_RUN", "1")) < 0)
        return rc;
    return 0;
}

/* ---- audit text ------------------------------------------------------------ */

/*
 * n bytes of child output as a valid UTF-8 C string (caller frees): cJSON
 * copies bytes as they are, and one stray byte from a binary would make the
 * whole audit record invalid JSON downstream. Invalid sequences and NULs
 * become U+FFFD. NULL on OOM.
 */
static char *exec_clean_text(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    char *out = malloc(n * 3 + 1);
    size_t o = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c == 0                   ? 0
                     : c < 0x80               ? 1
                     : c >= 0xc2 && c <= 0xdf ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        bool ok = len > 0 && i + len <= n;

        for (size_t k = 1; ok && k < len; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
        if (ok && len == 3)
            ok = !(c == 0xe0 && s[i + 1] < 0xa0) && !(c == 0xed && s[i + 1] > 0x9f);
        if (ok && len == 4)
            ok = !(c == 0xf0 && s[i + 1] < 0x90) && !(c == 0xf4 && s[i + 1] > 0x8f);
        if (ok) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- running the child ------------------------------------------------------ */

struct exec_stream {
    int fd;             /* our read end, -1 at EOF */
    struct kx_buf kept; /* the first maxoutput bytes */
    uint64_t dropped;   /* bytes read past maxoutput */
};

struct exec_run {
    pid_t pid;
    int pidfd;      /* readable when the child exits; -1 without pidfd_open */
    int in_fd;      /* our write end of its stdin, -1 once all written or refused */
    const char *in; /* borrowed: the alert JSON */
    size_t in_len, in_off;
    bool epipe;  /* it closed stdin before reading everything (SIGPIPE raised) */
    bool exited; /* the leader is a zombie (not yet reaped: its pgid stays ours) */
    bool lost;   /* its status was reaped by someone else (SIGCHLD ignored?) */
    struct exec_stream out, err;
};

static void exec_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Moves a descriptor to >= 3, close-on-exec: when the hub runs with stdin,
 * stdout or stderr closed, a pipe could land on 0..2 and be clobbered by the
 * child's own dup2() onto them. */
static int exec_fd_high(int *fd)
{
    int nfd;

    if (*fd > 2)
        return 0;
    nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        return -errno;
    close(*fd);
    *fd = nfd;
    return 0;
}

static int exec_pipe(int p[2])
{
    int rc;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    if ((rc = exec_fd_high(&p[0])) < 0 || (rc = exec_fd_high(&p[1])) < 0) {
        exec_close(&p[0]);
        exec_close(&p[1]);
        return rc;
    }
    return 0;
}

/*
 * Starts the child with stdin/stdout/stderr on fresh pipes, in its own
 * process group, default signal dispositions, an empty signal mask (the
 * worker's mask, with SIGPIPE blocked, must not leak into it) and no other
 * descriptor. Returns 0 or a positive errno (posix_spawn's convention).
 */
static int exec_spawn(struct exec_run *run, char *const argv[], char *const envp[])
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int rc;

    if ((rc = exec_pipe(in)) < 0 || (rc = exec_pipe(out)) < 0 || (rc = exec_pipe(err)) < 0)
        goto out_pipes;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto out_pipes;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        rc = -rc;
        goto out_pipes;
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    /* dup2 clears close-on-exec on 0..2 only; our originals close at exec. */
    if ((rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2)) != 0 ||
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
#endif
        (rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0) {
        rc = -rc;
    } else {
        /* glibc reports a failed exec (ENOENT, EACCES, ENOEXEC) here. */
        rc = -posix_spawn(&run->pid, argv[0], &fa, &attr, argv, envp);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc < 0)
        goto out_pipes;

    exec_close(&in[0]);
    exec_close(&out[1]);
    exec_close(&err[1]);
    run->in_fd = in[1];
    run->out.fd = out[0];
    run->err.fd = err[0];
    /* Never block on the child: it may read no stdin and never close it. */
    fcntl(run->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(run->out.fd, F_SETFL, O_NONBLOCK);
    fcntl(run->err.fd, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
    /* Close-on-exec by definition. Works on a zombie too: we alone reap. */
    run->pidfd = (int)syscall(SYS_pidfd_open, run->pid, 0);
#endif
    return 0;

out_pipes:
    for (int i = 0; i < 2; i++) {
        exec_close(&in[i]);
        exec_close(&out[i]);
        exec_close(&err[i]);
    }
    return -rc;
}

static void exec_read(struct exec_stream *st, size_t max)
{
    char chunk[EXEC_READ_CHUNK];
    ssize_t n = read(st->fd, chunk, sizeof(chunk));

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            exec_close(&st->fd);
        return;
    }
    if (n == 0) {
        exec_close(&st->fd);
        return;
    }
    size_t keep = st->kept.len < max ? max - st->kept.len : 0;

    if (keep > (size_t)n)
        keep = (size_t)n;
    if (keep > 0 && kx_buf_append(&st->kept, chunk, keep) < 0)
        keep = 0; /* out of memory: counted as dropped, like the rest */
    st->dropped += (uint64_t)n - keep;
}

static void exec_write(struct exec_run *run)
{
    size_t n = run->in_len - run->in_off;
    ssize_t w;

    if (n > EXEC_WRITE_CHUNK)
        n = EXEC_WRITE_CHUNK;
    w = write(run->in_fd, run->in + run->in_off, n);
    if (w < 0) {
        if (errno == EPIPE)
            run->epipe = true;
        /* A child that stops reading its stdin is its own business. */
        if (errno != EAGAIN && errno != EINTR)
            exec_close(&run->in_fd);
        return;
    }
    run->in_off += (size_t)w;
    if (run->in_off == run->in_len)
        exec_close(&run->in_fd); /* EOF for the child */
}

/* Notes whether the leader has exited, without reaping it. */
static void exec_check_exit(struct exec_run *run)
{
    siginfo_t si;

    if (run->exited)
        return;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno == ECHILD)
            run->exited = run->lost = true;
        return;
    }
    if (si.si_pid == run->pid)
        run->exited = true;
}

static bool exec_finished(const struct exec_run *run)
{
    return run->exited && run->out.fd < 0 && run->err.fd < 0;
}

/*
 * Feeds stdin and drains stdout/stderr until the leader has exited and both
 * outputs are at EOF (a grandchild holding them open keeps it going), or
 * until deadline (monotonic ns). 0 when finished, -ETIMEDOUT, or -errno when
 * poll() itself fails.
 */
static int exec_pump(struct exec_run *run, int64_t deadline, size_t maxoutput)
{
    for (;;) {
        struct pollfd p[4];
        int in_i = -1, out_i = -1, err_i = -1, pid_i = -1, np = 0, ms;
        int64_t left;

        exec_check_exit(run);
        if (exec_finished(run))
            return 0;
        left = deadline - kx_monotonic_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        ms = (int)((left + KX_NSEC_PER_MSEC - 1) / KX_NSEC_PER_MSEC);
        if (run->in_fd >= 0) {
            in_i = np;
            p[np++] = (struct pollfd){.fd = run->in_fd, .events = POLLOUT};
        }
        if (run->out.fd >= 0) {
            out_i = np;
            p[np++] = (struct pollfd){.fd = run->out.fd, .events = POLLIN};
        }
        if (run->err.fd >= 0) {
            err_i = np;
            p[np++] = (struct pollfd){.fd = run->err.fd, .events = POLLIN};
        }
        if (!run->exited && run->pidfd >= 0) {
            pid_i = np;
            p[np++] = (struct pollfd){.fd = run->pidfd, .events = POLLIN};
        }
        if (!run->exited && run->pidfd < 0 && ms > EXEC_POLL_SLICE_MS)
            ms = EXEC_POLL_SLICE_MS;
        if (poll(p, (nfds_t)np, ms) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (in_i >= 0 && p[in_i].revents)
            exec_write(run);
        if (out_i >= 0 && p[out_i].revents)
            exec_read(&run->out, maxoutput);
        if (err_i >= 0 && p[err_i].revents)
            exec_read(&run->err, maxoutput);
        (void)pid_i; /* its readiness is read back by exec_check_exit() */
    }
}

/* Blocks SIGPIPE on this thread while we write to the child, so a child that
 * closes its stdin early cannot kill the hub (when it does not ignore
 * SIGPIPE itself, as in tests or embedders), and swallows the one we raised. */
struct exec_sigpipe {
    sigset_t set, old;
    bool was_pending;
};

static void exec_sigpipe_block(struct exec_sigpipe *sp)
{
    sigset_t pending;

    sigemptyset(&sp->set);
    sigaddset(&sp->set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    sp->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &sp->set, &sp->old);
}

static void exec_sigpipe_restore(struct exec_sigpipe *sp, bool raised)
{
    if (raised && !sp->was_pending) {
        struct timespec zero = {0, 0};

        while (sigtimedwait(&sp->set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

/* "SIGKILL" */
static void exec_signame(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);

    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "SIG%d", sig);
}

/* The last non-empty line of the captured stderr, for a failure reason. */
static void exec_last_line(const struct kx_buf *b, char *out, size_t len)
{
    size_t end = b->len, start;

    out[0] = '\0';
    while (end > 0 && (b->data[end - 1] == '\n' || b->data[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && b->data[start - 1] != '\n')
        start--;
    if (end > start) {
        char *t = exec_clean_text(b->data + start, end - start < len - 1 ? end - start : len - 1);

        if (t) {
            snprintf(out, len, "%s", t);
            free(t);
        }
    }
}

static void exec_audit_text(cJSON *audit, const char *key, const struct kx_buf *b)
{
    char *t = exec_clean_text(b->data ? b->data : "", b->len);

    cJSON_AddStringToObject(audit, key, t ? t : "");
    free(t);
}

static cJSON *exec_args_json(const struct exec_settings *s)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && i < s->args.n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s->args.v[i]));
    return a;
}

/* Dry-run: what would run, and with which KLAXON_* environment. The fixed
 * `env` settings are left out: they may hold secrets. */
static int exec_dry_run(const struct exec_settings *s, const struct exec_env *env, cJSON *audit)
{
    cJSON *e = cJSON_AddObjectToObject(audit, "env");

    for (size_t i = 0; e && i < env->n; i++) {
        const char *kv = env->v[i], *eq = strchr(kv, '=');
        char name[256];

        if (strncmp(kv, "KLAXON_", 7) != 0 || !eq || (size_t)(eq - kv) >= sizeof(name))
            continue;
        memcpy(name, kv, (size_t)(eq - kv));
        name[eq - kv] = '\0';
        cJSON_AddStringToObject(e, name, eq + 1);
    }
    cJSON_AddNumberToObject(audit, "timeout_ms", (double)(s->timeout / KX_NSEC_PER_MSEC));
    cJSON_AddBoolToObject(audit, "dry_run", true);
    cJSON_AddStringToObject(audit, "result", "dry_run");
    return 0;
}

static int exec_fail(cJSON *audit, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int exec_fail(cJSON *audit, int rc, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(audit, "result", rc == -EAGAIN ? "retry" : "failed");
    cJSON_AddStringToObject(audit, "reason", why);
    return rc;
}

/* Classifies how the run ended and completes the audit. */
static int exec_outcome(const struct exec_settings *s, const struct exec_run *run, int status,
                        bool timed_out, cJSON *audit)
{
    char line[EXEC_REASON_LINE], sig[32];
    int code;

    exec_last_line(&run->err.kept, line, sizeof(line));
    if (timed_out)
        return exec_fail(audit, -EAGAIN, "timed out after %lldms: its process group was killed",
                         (long long)(s->timeout / KX_NSEC_PER_MSEC));
    if (run->lost)
        return exec_fail(audit, -EIO,
                         "its exit status was lost: something else in the hub reaped it "
                         "(SIGCHLD ignored?)");
    if (WIFSIGNALED(status)) {
        exec_signame(WTERMSIG(status), sig, sizeof(sig));
        return exec_fail(audit, -EIO, "killed by %s%s%s%s", sig,
                         WCOREDUMP(status) ? " (core dumped)" : "", line[0] ? ": " : "", line);
    }
    code = WEXITSTATUS(status);
    if (code == 0) {
        cJSON_AddStringToObject(audit, "result", "done");
        return 0;
    }
    if (code == EX_TEMPFAIL)
        return exec_fail(audit, -EAGAIN, "exited with %d (EX_TEMPFAIL): will retry%s%s", code,
                         line[0] ? ": " : "", line);
    return exec_fail(audit, -EIO, "exited with %d%s%s", code, line[0] ? ": " : "", line);
}

/* kx-respond. */
static int exec_act(struct kx_responder *r, const struct kx_alert *alert,
                    const struct kx_config_node *params, cJSON *audit)
{
    const struct exec_settings *s = r->settings;
    const struct exec_state *st = r->priv;
    struct exec_run run = {.pid = -1, .pidfd = -1, .in_fd = -1, .out.fd = -1, .err.fd = -1};
    struct exec_env env = {0};
    struct exec_sigpipe sp;
    int64_t start, deadline;
    char *tmp = NULL;
    int status = 0, rc, prc;
    bool timed_out = false;

    cJSON_AddStringToObject(audit, "action", "exec");
    cJSON_AddStringToObject(audit, "path", s->path);
    cJSON_AddItemToObject(audit, "args", exec_args_json(s));
    if (params && !(params->kind == KX_CFG_MAP ||
                    (params->kind == KX_CFG_SCALAR && (!params->value || !params->value[0]))))
        return exec_fail(audit, -EINVAL, "params must be a map (name: value)");
    if (exec_env_build(&env, r, alert, params) < 0) {
        exec_env_free(&env);
        return exec_fail(audit, -EAGAIN, "out of memory");
    }
    if (r->dry_run) {
        rc = exec_dry_run(s, &env, audit);
        exec_env_free(&env);
        return rc;
    }
    run.in = kx_alert_json(alert, &run.in_len, &tmp);
    if (!run.in) {
        exec_env_free(&env);
        return exec_fail(audit, -EAGAIN, "out of memory");
    }
    kx_buf_init(&run.out.kept, (size_t)s->maxoutput);
    kx_buf_init(&run.err.kept, (size_t)s->maxoutput);

    exec_sigpipe_block(&sp);
    start = kx_monotonic_ns();
    rc = exec_spawn(&run, st->argv, env.v);
    if (rc != 0) {
        exec_sigpipe_restore(&sp, false);
        /* Resource shortage passes; a missing or broken executable does not. */
        rc = exec_fail(
            audit, rc == EAGAIN || rc == ENOMEM || rc == EMFILE || rc == ENFILE ? -EAGAIN : -EIO,
            "cannot run %s: %s", s->path, strerror(rc));
        goto out;
    }
    deadline = start + s->timeout;
    prc = exec_pump(&run, deadline, (size_t)s->maxoutput);
    if (prc != 0) {
        /* Timed out (or poll failed): ask the whole group to stop, keep
         * draining so it is not stuck on a full pipe while it does. */
        timed_out = prc == -ETIMEDOUT;
        if (prc != -ETIMEDOUT)
            kx_warn("responder %s: exec: poll: %s", r->name, strerror(-prc));
        kill(-run.pid, SIGTERM);
        exec_pump(&run, kx_monotonic_ns() + EXEC_KILL_GRACE_NS, (size_t)s->maxoutput);
    }
    /* Leftovers (and, after a timeout, whatever ignored SIGTERM). The leader
     * is not reaped yet, so its pid still names our group. */
    kill(-run.pid, SIGKILL);
    exec_close(&run.in_fd);
    exec_close(&run.out.fd);
    exec_close(&run.err.fd);
    exec_close(&run.pidfd);
    if (!run.lost) {
        while (waitpid(run.pid, &status, 0) < 0) {
            if (errno != EINTR) {
                run.lost = true;
                break;
            }
        }
    }
    exec_sigpipe_restore(&sp, run.epipe);

    cJSON_AddNumberToObject(audit, "duration_ms",
                            (double)((kx_monotonic_ns() - start) / KX_NSEC_PER_MSEC));
    if (!run.lost && WIFEXITED(status)) {
        cJSON_AddNumberToObject(audit, "exit_code", WEXITSTATUS(status));
    } else if (!run.lost && WIFSIGNALED(status)) {
        char sig[32];

        exec_signame(WTERMSIG(status), sig, sizeof(sig));
        cJSON_AddStringToObject(audit, "signal", sig);
    }
    cJSON_AddBoolToObject(audit, "timed_out", timed_out);
    exec_audit_text(audit, "stdout", &run.out.kept);
    exec_audit_text(audit, "stderr", &run.err.kept);
    cJSON_AddNumberToObject(audit, "stdout_dropped", (double)run.out.dropped);
    cJSON_AddNumberToObject(audit, "stderr_dropped", (double)run.err.dropped);
    rc = exec_outcome(s, &run, status, timed_out, audit);

out:
    kx_buf_free(&run.out.kept);
    kx_buf_free(&run.err.kept);
    free(tmp);
    exec_env_free(&env);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------- */

static void exec_destroy(struct kx_responder *r)
{
    struct exec_state *st = r->priv;

    if (!st)
        return;
    free(st->argv);
    free(st);
    r->priv = NULL;
}

/* kx-respond (start-up). A bad path fails here, at start, not per alert. */
static int exec_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct exec_settings *s = r->settings;
    const struct kx_config_node *at = kx_config_get(cfg, "path");
    const struct kx_config_node *params = kx_config_get(cfg, "params");
    const char *name = r->name ? r->name : "exec";
    struct exec_state *st;
    size_t before = d->n;
    struct stat sb;

    if (!s->path || !s->path[0]) {
        kx_diag_add(d, at ? at : cfg, "responder %s: exec: path is required", name);
    } else if (s->path[0] != '/') {
        kx_diag_add(d, at,
                    "responder %s: exec: path \"%s\" must be absolute (the child gets "
                    "its own PATH)",
                    name, s->path);
    } else if (stat(s->path, &sb) < 0) {
        kx_diag_add(d, at, "responder %s: exec: path %s: %s", name, s->path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        kx_diag_add(d, at, "responder %s: exec: path %s is not a regular file", name, s->path);
    } else if (!(sb.st_mode & 0111) || access(s->path, X_OK) < 0) {
        kx_diag_add(d, at, "responder %s: exec: path %s is not executable (chmod +x?)", name,
                    s->path);
    }
    if (s->timeout <= 0 || s->timeout > EXEC_MAX_TIMEOUT_NS)
        kx_diag_add(d, kx_config_get(cfg, "timeout"),
                    "responder %s: exec: timeout must be more than 0 and at most 1h", name);
    if (s->maxoutput < 0 || s->maxoutput > EXEC_MAX_OUTPUT)
        kx_diag_add(d, kx_config_get(cfg, "maxoutput"),
                    "responder %s: exec: maxoutput must be 0..256KiB (the audit record goes "
                    "through NATS)",
                    name);
    for (size_t i = 0; i < s->env.n; i++) {
        const char *k = s->env.keys[i];

        if (!k[0] || strchr(k, '='))
            kx_diag_add(d, kx_config_get(cfg, "env"),
                        "responder %s: exec: env: \"%s\" is not a variable name", name, k);
        else if (strncmp(k, "KLAXON_", 7) == 0)
            kx_diag_add(d, kx_config_get(cfg, "env"),
                        "responder %s: exec: env: %s: KLAXON_* names are set per alert", name, k);
    }
    if (params &&
        !(params->kind == KX_CFG_MAP || (params->kind == KX_CFG_SCALAR && !params->value[0])))
        kx_diag_add(d, params, "responder %s: exec: params must be a map (name: value)", name);
    if (d->n > before)
        return -EINVAL;

    st = calloc(1, sizeof(*st));
    if (!st || !(st->argv = calloc(s->args.n + 2, sizeof(*st->argv)))) {
        free(st);
        kx_diag_add(d, cfg, "responder %s: exec: out of memory", name);
        return -ENOMEM;
    }
    /* Borrowed from the settings, which outlive the instance's state. */
    st->argv[0] = s->path;
    for (size_t i = 0; i < s->args.n; i++)
        st->argv[i + 1] = s->args.v[i];
    r->priv = st;
    return 0;
}

const struct kx_responder_ops kx_responder_exec = {
    .abi = KX_RESPONDER_ABI,
    .name = "exec",
    .desc = "run an executable with the alert as JSON on stdin and the params in its environment",
    .opts = exec_opts,
    .settings_size = sizeof(struct exec_settings),
    .init = exec_init,
    .act = exec_act,
    .destroy = exec_destroy,
};
