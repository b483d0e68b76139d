/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_probe.c - the sensor's kernel side for real (sensor/bpf/sensor.bpf.c
 * loaded by sensor/probe.c): each kind of event, done by children of this
 * process (the probe never reports its own process), must come back as a
 * record with the right task context, arguments, strings and flags; the
 * open prefilter and the kind switches must drop what nobody wants, and an
 * in-kernel kill rule must SIGKILL a matching exec inside a container
 * cgroup and spare it outside. Needs root; fails (does not skip) when the
 * programs cannot load.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sensor/probe.h"

#define WAIT_MS 3000
#define CG_ROOT "/sys/fs/cgroup/unified/klaxon-test-probe.slice"
#define CG_CTR                                                                                     \
    CG_ROOT "/cri-containerd-3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6c5."    \
            "scope"
#define CG_HEX CG_ROOT "/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CG_HOST CG_ROOT "/host-session.scope"

/* ---- records from our descendants ---------------------------------------- */

#define MAX_RECS 20000
#define MAX_PIDS 4096

static struct kx_event *recs[MAX_RECS];
static size_t n_recs;
static pid_t known[MAX_PIDS]; /* our descendants seen so far (FORK records) */
static size_t n_known;
static pid_t self_pid;

static bool is_known(pid_t pid)
{
    if (pid == self_pid)
        return true;
    for (size_t i = 0; i < n_known; i++)
        if (known[i] == pid)
            return true;
    return false;
}

static void add_known(pid_t pid)
{
    if (!is_known(pid) && n_known < MAX_PIDS)
        known[n_known++] = pid;
}

/* Keeps records of our children and their descendants (the machine's other
 * processes are reported too, and ignored here). */
static void on_event(void *ctx, const struct kx_event *e, size_t len)
{
    struct kx_event *c;

    (void)ctx;
    if (!is_known((pid_t)e->task.ppid) && !is_known((pid_t)e->task.tgid))
        return;
    add_known((pid_t)e->task.tgid);
    if (e->kind == KX_K_FORK)
        add_known((pid_t)e->ret);
    if (n_recs >= MAX_RECS)
        return;
    c = malloc(len);
    assert_non_null(c);
    memcpy(c, e, len);
    recs[n_recs++] = c;
}

static void clear_recs(void)
{
    for (size_t i = 0; i < n_recs; i++)
        free(recs[i]);
    n_recs = 0;
}

typedef bool (*rec_pred)(const struct kx_event *e, const void *arg);

static const struct kx_event *find_rec(int kind, pid_t tgid, rec_pred pred, const void *arg)
{
    for (size_t i = 0; i < n_recs; i++) {
        const struct kx_event *e = recs[i];

        if ((int)e->kind == kind && (tgid == 0 || (pid_t)e->task.tgid == tgid) &&
            (!pred || pred(e, arg)))
            return e;
    }
    return NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls p until a matching record arrives or timeout_ms passes. */
static const struct kx_event *wait_rec(struct kx_probe *p, int kind, pid_t tgid, rec_pred pred,
                                       const void *arg, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    const struct kx_event *e;

    for (;;) {
        e = find_rec(kind, tgid, pred, arg);
        if (e || now_ms() > end)
            return e;
        kx_probe_poll(p, 50);
    }
}

/* Drains p for ms milliseconds (records that should not come). */
static void drain(struct kx_probe *p, int ms)
{
    int64_t end = now_ms() + ms;

    while (now_ms() < end)
        kx_probe_poll(p, 20);
}

static const char *slot(const struct kx_event *e, int i)
{
    return kx_event_str(e, i, NULL);
}

static void assert_slot(const struct kx_event *e, int i, const char *want)
{
    const char *s = slot(e, i);

    if (!want) {
        if (s)
            fail_msg("kind %u slot %d: expected absent, got \"%s\"", e->kind, i, s);
        return;
    }
    if (!s)
        fail_msg("kind %u slot %d: expected \"%s\", got none", e->kind, i, want);
    assert_string_equal(s, want);
}

/* ---- children ------------------------------------------------------------ */

#define CHILD_CHECK(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "child %d: %s:%d: %s failed: %s\n", getpid(), __FILE__, __LINE__, #c,  \
                    strerror(errno));                                                              \
            _exit(99);                                                                             \
        }                                                                                          \
    } while (0)

/* Forks, runs fn(arg) in the child (which _exits 0 when fn returns). */
static pid_t spawn(void (*fn)(const void *), const void *arg)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    return pid;
}

static int reap(pid_t pid)
{
    int st = 0;

    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void run_ok(void (*fn)(const void *), const void *arg, pid_t *pid_out)
{
    pid_t pid = spawn(fn, arg);
    int st = reap(pid);

    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child %d failed: status 0x%x", pid, st);
    if (pid_out)
        *pid_out = pid;
}

/* ---- fixtures -------------------------------------------------------------- */

static struct kx_probe *probe; /* all kinds on, every open */
static struct kx_probe *extra; /* a test's own probe, freed by test_teardown() */
static char tmpdir[256];       /* realpath of our temp dir */
static char self_comm[32];

static void rm_rf(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static struct kx_probe *start_probe(const struct kx_probe_opts *o)
{
    char err[2048] = "";
    struct kx_probe *p = kx_probe_start(o, err, sizeof(err));

    if (!p)
        fail_msg("kx_probe_start: %s", err);
    return p;
}

static int group_setup(void **state)
{
    struct kx_probe_opts o = {.on_event = on_event};
    char tmpl[] = "/tmp/kx-probe-XXXXXX";
    FILE *f;

    (void)state;
    self_pid = getpid();
    f = fopen("/proc/self/comm", "r");
    if (f) {
        if (fgets(self_comm, sizeof(self_comm), f))
            self_comm[strcspn(self_comm, "\n")] = '\0';
        fclose(f);
    }
    if (!mkdtemp(tmpl) || !realpath(tmpl, tmpdir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    o.open.read_all = 1;
    o.open.write_all = 1;
    probe = start_probe(&o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kx_probe_free(probe);
    clear_recs();
    if (tmpdir[0])
        rm_rf(tmpdir);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    drain(probe, 0);
    clear_recs();
    return 0;
}

/* ---- exec, fork, exit -------------------------------------------------------- */

static void child_exec_true(const void *arg)
{
    (void)arg;
    CHILD_CHECK(setsid() >= 0); /* no controlling tty: tty must be 0 */
    CHILD_CHECK(chdir(tmpdir) == 0);
    execl("/bin/true", "true", "arg1", "arg two", (char *)NULL);
    _exit(98);
}

static void test_exec(void **state)
{
    static const char argv[] = "true\0arg1\0arg two";
    const struct kx_event *e;
    char exe[PATH_MAX];
    const char *s;
    struct stat st;
    size_t n;
    pid_t pid;

    (void)state;
    assert_non_null(realpath("/bin/true", exe));
    assert_int_equal(stat(exe, &st), 0);
    run_ok(child_exec_true, NULL, &pid);
    e = wait_rec(probe, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->hdr.type, KX_EVENT_RECORD);
    assert_int_equal(e->task.tgid, pid);
    assert_int_equal(e->task.pid, pid);
    assert_int_equal(e->task.ppid, self_pid);
    assert_int_equal(e->task.uid, getuid());
    assert_int_equal(e->task.euid, geteuid());
    assert_int_equal(e->task.tty, 0);
    assert_string_equal(e->task.comm, "true");
    assert_string_equal(e->pcomm, self_comm);
    assert_true(e->task.start_ns > 0 && e->task.pstart_ns > 0);
    assert_true(e->task.pstart_ns <= e->task.start_ns);
    assert_true(e->task.cgroup_id > 0);
    assert_int_equal(e->ret, 0);
    assert_int_equal(e->aux, st.st_ino);
    assert_int_equal(e->flags & (KX_F_EXECVEAT | KX_F_EXE_MEMFD | KX_F_KILLED | KX_F_TRUNC), 0);
    assert_slot(e, 0, exe);
    s = kx_event_str(e, 1, &n);
    assert_non_null(s);
    assert_int_equal(n, sizeof(argv) - 1);
    assert_memory_equal(s, argv, sizeof(argv));
    assert_slot(e, 2, tmpdir);
    assert_slot(e, 3, "/bin/true");
}

static void child_fork_exit(const void *arg)
{
    pid_t g;
    int st;
    int *out = (int *)arg;

    g = fork();
    CHILD_CHECK(g >= 0);
    if (g == 0)
        _exit(7);
    CHILD_CHECK(waitpid(g, &st, 0) == g);
    CHILD_CHECK(write(out[1], &g, sizeof(g)) == sizeof(g));
    _exit(3);
}

static bool ret_is(const struct kx_event *e, const void *arg)
{
    return e->ret == *(const int64_t *)arg;
}

static void test_fork_exit(void **state)
{
    const struct kx_event *e;
    int fds[2], st;
    int64_t want;
    pid_t pid, g;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = spawn(child_fork_exit, fds);
    st = reap(pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    assert_int_equal(read(fds[0], &g, sizeof(g)), sizeof(g));
    close(fds[0]);
    close(fds[1]);

    want = g;
    e = wait_rec(probe, KX_K_FORK, pid, ret_is, &want, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->task.ppid, self_pid);
    assert_true(e->aux >= e->task.start_ns); /* the child's start time */
    want = 7;
    e = wait_rec(probe, KX_K_EXIT, g, ret_is, &want, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->aux, 7 << 8);
    want = 3;
    assert_non_null(wait_rec(probe, KX_K_EXIT, pid, ret_is, &want, WAIT_MS));
    /* our own fork of pid is never reported: the probe skips its process */
    want = pid;
    assert_null(find_rec(KX_K_FORK, self_pid, ret_is, &want));
}

/* ---- files ----------------------------------------------------------------- */

static void child_opens(const void *arg)
{
    char path[PATH_MAX];
    int fd;

    (void)arg;
    fd = open("/etc/hostname", O_RDONLY);
    CHILD_CHECK(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/written", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHILD_CHECK(fd >= 0);
    close(fd);
    CHILD_CHECK(chdir(tmpdir) == 0);
    fd = open("relative", O_RDWR | O_CREAT, 0600);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(fchmod(fd, 0640) == 0);
    close(fd);
    CHILD_CHECK(open("missing", O_RDONLY) < 0 && errno == ENOENT);
}

static bool slot0_is(const struct kx_event *e, const void *arg)
{
    const char *s = slot(e, 0);

    return s && strcmp(s, (const char *)arg) == 0;
}

static void test_open(void **state)
{
    const struct kx_event *e;
    char path[PATH_MAX];
    pid_t pid;

    (void)state;
    run_ok(child_opens, NULL, &pid);

    e = wait_rec(probe, KX_K_OPENAT, pid, slot0_is, "/etc/hostname", WAIT_MS);
    assert_non_null(e);
    assert_true(e->ret >= 0);
    assert_true(e->flags & KX_F_RESOLVED);
    assert_false(e->flags & KX_F_OPEN_WRITE);
    assert_int_equal((int)e->args[0], AT_FDCWD);
    assert_int_equal(e->args[2] & O_ACCMODE, O_RDONLY);

    snprintf(path, sizeof(path), "%s/written", tmpdir);
    e = wait_rec(probe, KX_K_OPENAT, pid, slot0_is, path, WAIT_MS);
    assert_non_null(e);
    assert_true(e->flags & KX_F_RESOLVED);
    assert_true(e->flags & KX_F_OPEN_WRITE);
    assert_int_equal(e->args[2] & (O_CREAT | O_TRUNC), O_CREAT | O_TRUNC);
    assert_int_equal(e->args[3], 0600);

    snprintf(path, sizeof(path), "%s/relative", tmpdir);
    e = wait_rec(probe, KX_K_OPENAT, pid, slot0_is, path, WAIT_MS); /* resolved from the fd */
    assert_non_null(e);
    assert_true(e->flags & KX_F_OPEN_WRITE);
    assert_slot(e, 1, NULL);
    e = wait_rec(probe, KX_K_FCHMOD, pid, slot0_is, path, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[1], 0640);
    assert_true(e->flags & KX_F_RESOLVED);

    /* a failed open keeps the path as passed, plus its base directory */
    e = wait_rec(probe, KX_K_OPENAT, pid, slot0_is, "missing", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->ret, -ENOENT);
    assert_false(e->flags & KX_F_RESOLVED);
    assert_slot(e, 1, tmpdir);
}

static void child_paths(const void *arg)
{
    int dfd, fd;

    (void)arg;
    CHILD_CHECK(chdir(tmpdir) == 0);
    CHILD_CHECK(mkdir("sub", 0755) == 0);
    fd = open("a", O_CREAT | O_WRONLY, 0644);
    CHILD_CHECK(fd >= 0);
    close(fd);
    close(open("b", O_CREAT | O_WRONLY, 0644));
    close(open("sub/x", O_CREAT | O_WRONLY, 0644));
    CHILD_CHECK(syscall(SYS_unlink, "a") == 0);
    CHILD_CHECK(syscall(SYS_rename, "b", "c") == 0);
    CHILD_CHECK(syscall(SYS_symlink, "target-x", "lnk") == 0);
    CHILD_CHECK(syscall(SYS_link, "c", "hard") == 0);
    CHILD_CHECK(syscall(SYS_chmod, "c", 04755) == 0);
    dfd = open("sub", O_DIRECTORY | O_RDONLY);
    CHILD_CHECK(dfd >= 0);
    CHILD_CHECK(syscall(SYS_renameat2, dfd, "x", AT_FDCWD, "y", 0) == 0);
    CHILD_CHECK(syscall(SYS_fchmodat, dfd, "..", 0700) == 0);
    CHILD_CHECK(syscall(SYS_unlinkat, AT_FDCWD, "/nonexistent/kx-abs", 0) < 0);
    close(dfd);
}

static void test_paths(void **state)
{
    const struct kx_event *e;
    char sub[PATH_MAX];
    pid_t pid;

    (void)state;
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    run_ok(child_paths, NULL, &pid);

    e = wait_rec(probe, KX_K_UNLINK, pid, slot0_is, "a", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->ret, 0);
    assert_slot(e, 1, tmpdir);

    e = wait_rec(probe, KX_K_RENAME, pid, slot0_is, "b", WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 1, tmpdir);
    assert_slot(e, 2, "c");
    assert_slot(e, 3, tmpdir);

    e = wait_rec(probe, KX_K_SYMLINK, pid, slot0_is, "target-x", WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 1, NULL);
    assert_slot(e, 2, "lnk");
    assert_slot(e, 3, tmpdir);

    e = wait_rec(probe, KX_K_LINK, pid, slot0_is, "c", WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 2, "hard");

    e = wait_rec(probe, KX_K_CHMOD, pid, slot0_is, "c", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[1], 04755); /* the setuid bit is in the mode argument */
    assert_slot(e, 1, tmpdir);

    /* dirfd-relative: the base is the directory fd's own path */
    e = wait_rec(probe, KX_K_RENAMEAT2, pid, slot0_is, "x", WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 1, sub);
    assert_slot(e, 2, "y");
    assert_slot(e, 3, tmpdir);
    e = wait_rec(probe, KX_K_FCHMODAT, pid, slot0_is, "..", WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 1, sub);
    assert_int_equal(e->args[2], 0700);

    /* absolute, failed: no base */
    e = wait_rec(probe, KX_K_UNLINKAT, pid, slot0_is, "/nonexistent/kx-abs", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->ret, -ENOENT);
    assert_slot(e, 1, NULL);
}

/* A tmpfs mounted in a private mount namespace: the mount record, and a
 * path walked across the mount point. */
static void child_mount(const void *arg)
{
    char mnt[PATH_MAX], file[PATH_MAX + 16];
    int fd;

    (void)arg;
    snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
    snprintf(file, sizeof(file), "%s/inside", mnt);
    CHILD_CHECK(mkdir(mnt, 0755) == 0 || errno == EEXIST);
    CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
    CHILD_CHECK(chdir(tmpdir) == 0);
    CHILD_CHECK(mount("kx-src", "mnt", "tmpfs", 0, "size=64k") == 0);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    CHILD_CHECK(fd >= 0);
    close(fd);
}

static void test_mount(void **state)
{
    const struct kx_event *e;
    char file[PATH_MAX];
    int64_t ns = CLONE_NEWNS;
    pid_t pid;

    (void)state;
    run_ok(child_mount, NULL, &pid);
    assert_non_null(wait_rec(probe, KX_K_UNSHARE, pid, NULL, NULL, WAIT_MS));
    e = find_rec(KX_K_UNSHARE, pid, NULL, NULL);
    assert_int_equal(e->args[0], ns);
    e = wait_rec(probe, KX_K_MOUNT, pid, slot0_is, "kx-src", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->ret, 0);
    assert_slot(e, 1, "mnt");
    assert_slot(e, 2, "tmpfs");
    assert_slot(e, 3, tmpdir);
    snprintf(file, sizeof(file), "%s/mnt/inside", tmpdir);
    e = wait_rec(probe, KX_K_OPENAT, pid, slot0_is, file, WAIT_MS);
    assert_non_null(e);
    assert_true(e->flags & KX_F_RESOLVED);
}

/* ---- sockets ----------------------------------------------------------------- */

struct tcp_ctx {
    int port_pipe[2]; /* listener -> test: the port */
    int port;
};

static void child_listener(const void *arg)
{
    const struct tcp_ctx *t = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int s, c, one = 1;

    s = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(s >= 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    CHILD_CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHILD_CHECK(syscall(SYS_listen, s, 4) == 0);
    CHILD_CHECK(getsockname(s, (struct sockaddr *)&a, &al) == 0);
    CHILD_CHECK(write(t->port_pipe[1], &a.sin_port, sizeof(a.sin_port)) == sizeof(a.sin_port));
    c = (int)syscall(SYS_accept, s, NULL, NULL);
    CHILD_CHECK(c >= 0);
    CHILD_CHECK(read(c, &one, 1) == 1);
    close(c);
    close(s);
}

static void child_connector(const void *arg)
{
    const struct tcp_ctx *t = arg;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)t->port)};
    int s = socket(AF_INET, SOCK_STREAM, 0);

    CHILD_CHECK(s >= 0);
    CHILD_CHECK(connect(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    /* the reverse-shell move: the socket becomes stdout */
    CHILD_CHECK(syscall(SYS_dup2, s, 1) == 1);
    CHILD_CHECK(write(1, "x", 1) == 1);
}

static void test_tcp(void **state)
{
    static const uint8_t lo4[16] = {127, 0, 0, 1};
    struct tcp_ctx t;
    const struct kx_event *c, *a, *l, *d, *s;
    uint16_t nport;
    pid_t lp, cp;
    int st;

    (void)state;
    assert_int_equal(pipe(t.port_pipe), 0);
    lp = spawn(child_listener, &t);
    assert_int_equal(read(t.port_pipe[0], &nport, sizeof(nport)), sizeof(nport));
    t.port = ntohs(nport);
    run_ok(child_connector, &t, &cp);
    st = reap(lp);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(t.port_pipe[0]);
    close(t.port_pipe[1]);

    s = wait_rec(probe, KX_K_SOCKET, cp, NULL, NULL, WAIT_MS);
    assert_non_null(s);
    assert_int_equal(s->args[0], AF_INET);
    assert_int_equal(s->args[1] & 0xf, SOCK_STREAM);
    assert_true(s->ret >= 0);

    l = wait_rec(probe, KX_K_LISTEN, lp, NULL, NULL, WAIT_MS);
    assert_non_null(l);
    assert_true(l->flags & KX_F_SOCK);
    assert_int_equal(l->sock.family, AF_INET);
    assert_int_equal(l->sock.sport, t.port);

    c = wait_rec(probe, KX_K_CONNECT, cp, NULL, NULL, WAIT_MS);
    assert_non_null(c);
    assert_int_equal(c->ret, 0);
    assert_true(c->flags & KX_F_SOCK);
    assert_int_equal(c->sock.family, AF_INET);
    assert_int_equal(c->sock.type, SOCK_STREAM);
    assert_int_equal(c->sock.protocol, IPPROTO_TCP);
    assert_int_equal(c->sock.dport, t.port);
    assert_true(c->sock.sport > 0);
    assert_memory_equal(c->sock.saddr, lo4, sizeof(lo4)); /* IPv4: 4 bytes, then zeros */
    assert_memory_equal(c->sock.daddr, lo4, sizeof(lo4));

    a = wait_rec(probe, KX_K_ACCEPT, lp, NULL, NULL, WAIT_MS);
    assert_non_null(a);
    assert_true(a->ret >= 0);
    assert_true(a->flags & KX_F_SOCK);
    assert_int_equal(a->sock.sport, t.port);        /* our end: the listening port */
    assert_int_equal(a->sock.dport, c->sock.sport); /* the peer: the connector's port */
    assert_memory_equal(a->sock.daddr, lo4, sizeof(lo4));

    d = wait_rec(probe, KX_K_DUP2, cp, NULL, NULL, WAIT_MS);
    assert_non_null(d);
    assert_int_equal(d->ret, 1);
    assert_int_equal(d->args[1], 1);
    assert_true(d->flags & KX_F_SOCK);
    assert_int_equal(d->sock.dport, t.port);
}

static void child_packet(const void *arg)
{
    int s;

    (void)arg;
    s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    CHILD_CHECK(s >= 0);
    close(s);
}

static void test_packet_socket(void **state)
{
    const struct kx_event *e;
    pid_t pid;

    (void)state;
    run_ok(child_packet, NULL, &pid);
    e = wait_rec(probe, KX_K_SOCKET, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[0], AF_PACKET);
    assert_int_equal(e->args[1], SOCK_RAW);
    assert_true(e->ret >= 0);
}

/* ---- privileges, namespaces, other processes ----------------------------------- */

static void child_creds(const void *arg)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];

    (void)arg;
    CHILD_CHECK(syscall(SYS_setuid, 0) == 0);
    CHILD_CHECK(syscall(SYS_setresuid, 0, 0, 0) == 0);
    CHILD_CHECK(syscall(SYS_capget, &h, d) == 0);
    CHILD_CHECK(syscall(SYS_capset, &h, d) == 0);
    CHILD_CHECK(unshare(CLONE_NEWUTS) == 0);
}

static void test_creds_ns(void **state)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    const struct kx_event *e;
    pid_t pid;

    (void)state;
    assert_int_equal(syscall(SYS_capget, &h, d), 0);
    run_ok(child_creds, NULL, &pid);
    e = wait_rec(probe, KX_K_SETUID, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[0], 0);
    assert_int_equal(e->ret, 0);
    e = wait_rec(probe, KX_K_SETRESUID, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[1], 0);
    e = wait_rec(probe, KX_K_CAPSET, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->aux, ((uint64_t)d[1].effective << 32) | d[0].effective);
    e = wait_rec(probe, KX_K_UNSHARE, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[0], CLONE_NEWUTS);
    assert_int_equal(e->ret, 0);
}

static volatile int vm_target_var;

static void child_sleeper(const void *arg)
{
    (void)arg;
    for (;;)
        pause();
}

struct victim_ctx {
    pid_t target;
};

static void child_ptrace(const void *arg)
{
    const struct victim_ctx *v = arg;
    int st;

    CHILD_CHECK(ptrace(PTRACE_ATTACH, v->target, NULL, NULL) == 0);
    CHILD_CHECK(waitpid(v->target, &st, 0) == v->target);
    CHILD_CHECK(ptrace(PTRACE_DETACH, v->target, NULL, NULL) == 0);
}

static void child_vm_write_kill(const void *arg)
{
    const struct victim_ctx *v = arg;
    int val = 42;
    struct iovec local = {.iov_base = &val, .iov_len = sizeof(val)};
    struct iovec remote = {.iov_base = (void *)&vm_target_var, .iov_len = sizeof(val)};

    /* the target is a fork of the test, so &vm_target_var is valid there */
    CHILD_CHECK(process_vm_writev(v->target, &local, 1, &remote, 1, 0) == sizeof(val));
    CHILD_CHECK(kill(v->target, SIGTERM) == 0);
}

static bool arg0_is(const struct kx_event *e, const void *arg)
{
    return (int64_t)e->args[0] == *(const int64_t *)arg;
}

static void test_ptrace_vm_kill(void **state)
{
    struct victim_ctx v;
    const struct kx_event *e;
    int64_t want;
    pid_t tracer, writer;
    int st;

    (void)state;
    v.target = spawn(child_sleeper, NULL);
    run_ok(child_ptrace, &v, &tracer);
    run_ok(child_vm_write_kill, &v, &writer);
    st = reap(v.target);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

    want = PTRACE_ATTACH;
    e = wait_rec(probe, KX_K_PTRACE, tracer, arg0_is, &want, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[1], v.target);
    assert_int_equal(e->ret, 0);
    e = wait_rec(probe, KX_K_PROCESS_VM_WRITEV, writer, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[0], v.target);
    assert_int_equal(e->ret, sizeof(int));
    want = v.target;
    e = wait_rec(probe, KX_K_KILL, writer, arg0_is, &want, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[1], SIGTERM);
}

/* ---- memfd exec, modules, bpf --------------------------------------------------- */

static void child_memfd_exec(const void *arg)
{
    char *const argv[] = {"true", NULL};
    char *const envp[] = {NULL};
    char buf[65536];
    ssize_t n;
    int src, fd;

    (void)arg;
    fd = (int)syscall(SYS_memfd_create, "kx-true", 0);
    CHILD_CHECK(fd >= 0);
    src = open("/bin/true", O_RDONLY);
    CHILD_CHECK(src >= 0);
    while ((n = read(src, buf, sizeof(buf))) > 0)
        CHILD_CHECK(write(fd, buf, (size_t)n) == n);
    close(src);
    syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
    _exit(97);
}

static void test_memfd_execveat(void **state)
{
    const struct kx_event *e;
    pid_t pid;

    (void)state;
    run_ok(child_memfd_exec, NULL, &pid);
    e = wait_rec(probe, KX_K_MEMFD_CREATE, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_slot(e, 0, "kx-true");
    assert_true(e->ret >= 0);
    e = wait_rec(probe, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_true(e->flags & KX_F_EXECVEAT);
    assert_true(e->flags & KX_F_EXE_MEMFD);
    assert_false(e->flags & KX_F_EXE_UPPER);
    assert_slot(e, 0, "/memfd:kx-true");
}

static void child_modules(const void *arg)
{
    static char image[64] = "\177ELF not a module";
    /* On the stack, so their pages are present: where the kernel does not
     * copy the string itself (ENOSYS here), the probe cannot fault it in. */
    char p1[] = "kx_param=1", p2[] = "kx_param=2";
    int fd;

    (void)arg;
    CHILD_CHECK(syscall(SYS_init_module, image, sizeof(image), p1) < 0);
    fd = open("/etc/hostname", O_RDONLY);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(syscall(SYS_finit_module, fd, p2, 0) < 0);
    close(fd);
}

static void test_module_load(void **state)
{
    const struct kx_event *e;
    pid_t pid;

    (void)state;
    assert_true(kx_probe_kind_loaded(probe, KX_K_INIT_MODULE));
    run_ok(child_modules, NULL, &pid);
    e = wait_rec(probe, KX_K_INIT_MODULE, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e); /* an attempt is reported even when it fails (ENOSYS here) */
    assert_true(e->ret < 0);
    assert_int_equal(e->args[1], 64);
    assert_slot(e, 0, "kx_param=1");
    e = wait_rec(probe, KX_K_FINIT_MODULE, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_true(e->ret < 0);
    assert_slot(e, 0, "kx_param=2");
    assert_slot(e, 1, "/etc/hostname");
}

static void child_bpf(const void *arg)
{
    union bpf_attr attr;

    (void)arg;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insn_cnt = 0; /* invalid on purpose: an attempt, not a load */
    CHILD_CHECK(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)) < 0);
}

static void test_bpf_load(void **state)
{
    const struct kx_event *e;
    pid_t pid;

    (void)state;
    run_ok(child_bpf, NULL, &pid);
    e = wait_rec(probe, KX_K_BPF, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->args[0], BPF_PROG_LOAD);
    assert_int_equal(e->aux, BPF_PROG_TYPE_SOCKET_FILTER);
    assert_true(e->ret < 0);
}

/* ---- prefilters and switches ------------------------------------------------------ */

static void child_filtered_opens(const void *arg)
{
    char path[PATH_MAX];
    const char *mode = arg;
    int fd;

    close(open("/etc/hostname", O_RDONLY));
    if (strcmp(mode, "all") != 0)
        return;
    close(open("/etc/passwd", O_RDONLY)); /* read, not under a read prefix */
    close(open("/dev/null", O_WRONLY));   /* write, not under a write prefix */
    snprintf(path, sizeof(path), "%s/kept", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHILD_CHECK(fd >= 0);
    close(fd);
    CHILD_CHECK(open("/etc/hostname.kx-missing", O_RDONLY) < 0);
    execl("/bin/true", "true", (char *)NULL); /* EXEC is off in this probe */
    _exit(98);
}

static void test_open_prefilter_and_kinds(void **state)
{
    const char *reads[] = {"/etc/host"};
    const char *writes[] = {tmpdir};
    bool kinds[KX_K_MAX] = {[KX_K_OPENAT] = true};
    struct kx_probe_opts o = {.on_event = on_event,
                              .kinds = kinds,
                              .read_prefixes = reads,
                              .n_read = 1,
                              .write_prefixes = writes,
                              .n_write = 1};
    struct kx_probe_stats st0, st1;
    struct kx_probe *p;
    const struct kx_event *e;
    char path[PATH_MAX];
    pid_t pid;

    (void)state;
    p = extra = start_probe(&o);
    assert_true(kx_probe_kind_loaded(p, KX_K_OPENAT));
    assert_false(kx_probe_kind_loaded(p, KX_K_EXEC));
    assert_int_equal(kx_probe_set_kind(p, KX_K_EXEC, true), -EOPNOTSUPP);
    kx_probe_stats(p, &st0);

    run_ok(child_filtered_opens, "all", &pid);
    assert_non_null(wait_rec(p, KX_K_OPENAT, pid, slot0_is, "/etc/hostname", WAIT_MS));
    snprintf(path, sizeof(path), "%s/kept", tmpdir);
    e = wait_rec(p, KX_K_OPENAT, pid, slot0_is, path, WAIT_MS);
    assert_non_null(e);
    assert_true(e->flags & KX_F_OPEN_WRITE);
    /* failed: matched on the path as passed */
    e = wait_rec(p, KX_K_OPENAT, pid, slot0_is, "/etc/hostname.kx-missing", WAIT_MS);
    assert_non_null(e);
    assert_int_equal(e->ret, -ENOENT);
    drain(p, 100);
    assert_null(find_rec(KX_K_OPENAT, pid, slot0_is, "/etc/passwd"));
    assert_null(find_rec(KX_K_OPENAT, pid, slot0_is, "/dev/null"));
    for (size_t i = 0; i < n_recs; i++)
        if (recs[i]->kind != KX_K_OPENAT)
            fail_msg("kind %u reported by a probe with only openat on", recs[i]->kind);
    kx_probe_stats(p, &st1);
    assert_true(st1.filtered[KX_K_OPENAT] >= st0.filtered[KX_K_OPENAT] + 2);
    assert_true(st1.emitted[KX_K_OPENAT] >= st0.emitted[KX_K_OPENAT] + 3);
    assert_int_equal(st1.emitted[KX_K_EXEC], 0);
    assert_int_equal(st1.bad_records, 0);

    /* switched off at runtime: nothing more */
    clear_recs();
    assert_int_equal(kx_probe_set_kind(p, KX_K_OPENAT, false), 0);
    run_ok(child_filtered_opens, "one", &pid);
    drain(p, 200);
    assert_null(find_rec(KX_K_OPENAT, pid, NULL, NULL));
}

/* ---- enforcement --------------------------------------------------------------------- */

static void copy_exe(const char *from, const char *to)
{
    char cmd[3 * PATH_MAX + 64];

    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 755 '%s'", from, to, to);
    assert_int_equal(system(cmd), 0);
}

struct victim_run {
    const char *cgroup; /* move here before exec */
    const char *exe;
    const char *argv0;
};

static void child_victim(const void *arg)
{
    const struct victim_run *v = arg;
    char procs[PATH_MAX], pid[32];
    int fd;

    snprintf(procs, sizeof(procs), "%s/cgroup.procs", v->cgroup);
    snprintf(pid, sizeof(pid), "%d", getpid());
    fd = open(procs, O_WRONLY);
    CHILD_CHECK(fd >= 0);
    CHILD_CHECK(write(fd, pid, strlen(pid)) == (ssize_t)strlen(pid));
    close(fd);
    execl(v->exe, v->argv0, "0.1", (char *)NULL);
    _exit(98);
}

static void rmdir_retry(const char *dir)
{
    for (int i = 0; i < 100 && rmdir(dir) != 0 && errno == EBUSY; i++)
        usleep(10000);
}

static void cgroups_remove(void)
{
    rmdir_retry(CG_CTR);
    rmdir_retry(CG_HEX);
    rmdir_retry(CG_HOST);
    rmdir_retry(CG_ROOT);
}

/* Runs after every test that may have failed half-way: its own probe and
 * the cgroups go on every path. */
static int test_teardown(void **state)
{
    (void)state;
    kx_probe_free(extra);
    extra = NULL;
    cgroups_remove();
    return 0;
}

static int victim_status(const struct victim_run *v, pid_t *pid)
{
    *pid = spawn(child_victim, v);
    return reap(*pid);
}

static void test_enforce_kill(void **state)
{
    char victim[PATH_MAX], victim2[PATH_MAX], pfx[PATH_MAX], err[2048] = "";
    struct kx_kill_rule rules[3];
    bool kinds[KX_K_MAX] = {[KX_K_EXEC] = true};
    struct kx_probe_opts o = {
        .on_event = on_event, .kinds = kinds, .kill = rules, .n_kill = 3, .enforce = true};
    struct victim_run in_ctr, on_host;
    const struct kx_event *e;
    struct kx_probe *p;
    pid_t pid;
    int st;

    (void)state;
    snprintf(victim, sizeof(victim), "%s/kx-victim", tmpdir);
    snprintf(victim2, sizeof(victim2), "%s/kx-victim2", tmpdir);
    snprintf(pfx, sizeof(pfx), "%s/pfx-", tmpdir);
    copy_exe("/bin/sleep", victim);
    copy_exe("/bin/sleep", victim2);

    memset(rules, 0, sizeof(rules));
    rules[0] = (struct kx_kill_rule){.active = 1, .need_container = 1, .n_names = 1, .id = 42};
    strcpy(rules[0].names[0], "kx-victim");
    rules[1] = (struct kx_kill_rule){.active = 1, .n_paths = 2, .path_prefix = 2, .id = 7};
    assert_true(strlen(victim2) < KX_KILL_PATH_LEN && strlen(pfx) < KX_KILL_PATH_LEN);
    memcpy(rules[1].paths[0], victim2, strlen(victim2));    /* exact */
    memcpy(rules[1].paths[1], pfx, strlen(pfx));            /* prefix */
    rules[2] = (struct kx_kill_rule){.active = 0, .id = 9}; /* inactive: matches all */

    cgroups_remove();
    assert_true(mkdir(CG_ROOT, 0755) == 0 || errno == EEXIST);
    assert_true(mkdir(CG_CTR, 0755) == 0 || errno == EEXIST);
    assert_true(mkdir(CG_HEX, 0755) == 0 || errno == EEXIST);
    assert_true(mkdir(CG_HOST, 0755) == 0 || errno == EEXIST);
    p = extra = kx_probe_start(&o, err, sizeof(err));
    if (!p)
        fail_msg("kx_probe_start: %s", err);

    /* in a container cgroup, by name: killed before it runs */
    in_ctr = (struct victim_run){.cgroup = CG_CTR, .exe = victim, .argv0 = "kx-victim"};
    st = victim_status(&in_ctr, &pid);
    e = wait_rec(p, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || !e || !(e->flags & KX_F_KILLED))
        fail_msg("in a container: status 0x%x, record %p flags 0x%x", st, (void *)e,
                 e ? e->flags : 0);
    assert_int_equal(e->aux, 42);
    assert_string_equal(e->task.comm, "kx-victim");

    /* a cgroupfs-driver container: the leaf is the bare 64-hex id */
    in_ctr.cgroup = CG_HEX;
    st = victim_status(&in_ctr, &pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* same binary, host cgroup, rule needs a container: survives */
    on_host = (struct victim_run){.cgroup = CG_HOST, .exe = victim, .argv0 = "kx-victim"};
    st = victim_status(&on_host, &pid);
    e = wait_rec(p, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(e);
    assert_false(e->flags & KX_F_KILLED);

    /* by exact path, anywhere */
    on_host.exe = victim2;
    st = victim_status(&on_host, &pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    e = wait_rec(p, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_true(e->flags & KX_F_KILLED);
    assert_int_equal(e->aux, 7);

    /* by path prefix; and enforcement switched off at runtime spares it */
    snprintf(pfx, sizeof(pfx), "%s/pfx-sleep", tmpdir);
    copy_exe("/bin/sleep", pfx);
    on_host.exe = pfx;
    st = victim_status(&on_host, &pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(kx_probe_set_enforce(p, false), 0);
    st = victim_status(&on_host, &pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    e = wait_rec(p, KX_K_EXEC, pid, NULL, NULL, WAIT_MS);
    assert_non_null(e);
    assert_false(e->flags & KX_F_KILLED);
}

/* ---- pure helpers ---------------------------------------------------------------------- */

static void test_event_str(void **state)
{
    union {
        struct kx_event e;
        char raw[KX_EVENT_FIXED + 64];
    } u;
    size_t n;

    (void)state;
    memset(&u, 0, sizeof(u));
    memcpy(u.e.data, "abc\0\0xy", 7);
    u.e.str_len[0] = 4;
    u.e.str_len[1] = 1;
    u.e.str_len[2] = 2;
    u.e.hdr.size = KX_EVENT_FIXED + 8;
    assert_string_equal(kx_event_str(&u.e, 0, &n), "abc");
    assert_int_equal(n, 3);
    assert_string_equal(kx_event_str(&u.e, 1, &n), "");
    assert_int_equal(n, 0);
    assert_null(kx_event_str(&u.e, 2, &n)); /* "xy" lacks its NUL */
    assert_null(kx_event_str(&u.e, 3, &n)); /* absent */
    assert_null(kx_event_str(&u.e, 4, &n));
    assert_null(kx_event_str(&u.e, -1, &n));
    u.e.str_len[2] = 200; /* past hdr.size */
    assert_null(kx_event_str(&u.e, 2, &n));
}

static void test_stats(void **state)
{
    struct kx_probe_stats st;

    (void)state;
    kx_probe_stats(probe, &st);
    assert_true(st.events > 0);
    assert_int_equal(st.bad_records, 0);
    assert_int_equal(st.drops[KX_DROP_RINGBUF_FULL], 0);
    assert_true(st.emitted[KX_K_EXEC] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_str),
        cmocka_unit_test_setup(test_exec, test_setup),
        cmocka_unit_test_setup(test_fork_exit, test_setup),
        cmocka_unit_test_setup(test_open, test_setup),
        cmocka_unit_test_setup(test_paths, test_setup),
        cmocka_unit_test_setup(test_mount, test_setup),
        cmocka_unit_test_setup(test_tcp, test_setup),
        cmocka_unit_test_setup(test_packet_socket, test_setup),
        cmocka_unit_test_setup(test_creds_ns, test_setup),
        cmocka_unit_test_setup(test_ptrace_vm_kill, test_setup),
        cmocka_unit_test_setup(test_memfd_execveat, test_setup),
        cmocka_unit_test_setup(test_module_load, test_setup),
        cmocka_unit_test_setup(test_bpf_load, test_setup),
        cmocka_unit_test_setup_teardown(test_open_prefilter_and_kinds, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_enforce_kill, test_setup, test_teardown),
        cmocka_unit_test(test_stats),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
