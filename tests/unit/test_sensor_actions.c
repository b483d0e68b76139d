/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sensor_actions.c - node actions (sensor/actions.c) without NATS:
 * strict request validation, pid-reuse protection with real children,
 * protected targets (pid 1, kernel threads, the test itself and its
 * threads, a cgroup holding the caller), and container kill / freeze /
 * thaw on real cgroup v2 directories named like containerd's under
 * /sys/fs/cgroup/unified/klaxon-test-actions.slice.
 *
 * Needs root and cgroup v2 at CGROUP2: the tests that need them FAIL when
 * they are missing, they never skip. Every cgroup created is removed in
 * the teardown (children killed and reaped first), also after a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

/* Relative to this file: hub/ and outputs/ are on the include path too. */
#include "../../sensor/actions.h"
#include "log.h"

#define CGROUP2 "/sys/fs/cgroup/unified"
#define SLICE CGROUP2 "/klaxon-test-actions.slice"

/* ------------------------------------------------------------- helpers */

static pid_t children[16]; /* killed and reaped in teardown */
static size_t n_children;
static char dirs[16][512]; /* cgroups to remove in teardown, in creation order */
static size_t n_dirs;

static void require_root(void)
{
    if (geteuid() != 0)
        fail_msg("this test creates cgroups and kills processes: run it as root");
    if (access(CGROUP2 "/cgroup.procs", F_OK) != 0)
        fail_msg("no cgroup v2 hierarchy at " CGROUP2);
}

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
        int e = errno;

        close(fd);
        fail_msg("write \"%s\" to %s: %s", s, path, strerror(e));
    }
    close(fd);
}

static char *read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    buf[0] = '\0';
    if (fd < 0)
        return buf;
    n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0 && n <= sizeof(b));
    assert_int_equal(read(fd, b, n), (ssize_t)n);
    close(fd);
    for (size_t i = 0; i < n; i++)
        out[i] = hex[b[i] & 15];
    out[n] = '\0';
}

/* mkdir and remember for teardown. */
static void make_cgroup(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", path, strerror(errno));
    assert_true(n_dirs < 16);
    snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s", path);
}

static void track_child(pid_t pid)
{
    assert_true(pid > 0);
    assert_true(n_children < 16);
    children[n_children++] = pid;
}

/* Reaps a tracked child (WNOHANG unless wait); returns its status or -1. */
static int reap(pid_t pid, bool wait)
{
    int st;

    if (waitpid(pid, &st, wait ? 0 : WNOHANG) != pid)
        return -1;
    for (size_t i = 0; i < n_children; i++)
        if (children[i] == pid)
            children[i] = 0;
    return st;
}

/* A child that sleeps until killed. */
static pid_t spawn_sleeper(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        for (;;)
            pause();
    }
    track_child(pid);
    return pid;
}

/* Moves every process out of path and removes it (and retries briefly:
 * a killed process leaves its cgroup a moment after it dies). */
static void remove_cgroup(const char *path)
{
    char procs[4096], buf[4096];

    for (int tries = 0; tries < 200; tries++) {
        snprintf(procs, sizeof(procs), "%s/cgroup.freeze", path);
        if (access(procs, F_OK) == 0)
            write_file(procs, "0");
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
        read_text(procs, buf, sizeof(buf));
        for (char *p = buf; *p;) {
            char *nl = strchr(p, '\n');
            int fd = open(CGROUP2 "/cgroup.procs", O_WRONLY | O_CLOEXEC);

            if (nl)
                *nl = '\0';
            if (fd >= 0) {
                ssize_t w = write(fd, p, strlen(p)); /* exited meanwhile: fine */

                (void)w;
                close(fd);
            }
            if (!nl)
                break;
            p = nl + 1;
        }
        if (rmdir(path) == 0 || errno == ENOENT)
            return;
        usleep(10000);
    }
    fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
}

static int teardown(void **state)
{
    for (size_t i = 0; i < n_children; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    n_children = 0;
    while (n_dirs > 0)
        remove_cgroup(dirs[--n_dirs]);
    rmdir(SLICE); /* only when empty */
    return 0;
}

/* The start time of pid in ns since boot, as /proc/<pid>/stat field 22
 * gives it (+ half a tick, to exercise the tick-granular comparison). */
static unsigned long long start_ns(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ticks = 0;
    long tck = sysconf(_SC_CLK_TCK);
    int field = 3;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    read_text(path, buf, sizeof(buf));
    p = strrchr(buf, ')');
    assert_non_null(p);
    for (p = strtok(p + 1, " "); p; p = strtok(NULL, " "), field++)
        if (field == 22)
            ticks = strtoull(p, NULL, 10);
    assert_true(ticks > 0 || pid == 1);
    return ticks * (1000000000ull / (unsigned long long)tck) + 1000000000ull / (unsigned)tck / 2;
}

static char proc_state(pid_t pid)
{
    char path[64], buf[2048], *p;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    read_text(path, buf, sizeof(buf));
    p = strrchr(buf, ')');
    return p && p[1] ? p[2] : '?';
}

/* Sends one request; returns the parsed reply (caller deletes). */
static cJSON *__attribute__((format(printf, 2, 3))) call(struct kx_actions *a, const char *fmt, ...)
{
    char req[4096], *reply = NULL;
    size_t len = 0;
    va_list ap;
    cJSON *j;

    va_start(ap, fmt);
    vsnprintf(req, sizeof(req), fmt, ap);
    va_end(ap);
    assert_int_equal(kx_actions_handle(a, req, strlen(req), &reply, &len), 0);
    assert_non_null(reply);
    assert_int_equal(strlen(reply), len);
    j = cJSON_Parse(reply);
    if (!j)
        fail_msg("reply is not JSON: %s", reply);
    free(reply);
    return j;
}

static const char *str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void print_reply(const char *what, const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);

    fprintf(stderr, "%s: %s\n", what, s);
    free(s);
}

static void expect_ok(const cJSON *j)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
        print_reply("expected ok", j);
        fail_msg("expected ok=true, got error %s: %s", str(j, "error"), str(j, "message"));
    }
    assert_non_null(str(j, "detail"));
    assert_null(str(j, "error"));
}

static void expect_error(const cJSON *j, const char *code, const char *in_message)
{
    const char *e = str(j, "error"), *m = str(j, "message");

    if (!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "ok")) || !e || strcmp(e, code) != 0) {
        print_reply("unexpected reply", j);
        fail_msg("expected error %s", code);
    }
    assert_non_null(m);
    if (in_message && !strstr(m, in_message))
        fail_msg("message \"%s\" lacks \"%s\"", m, in_message);
    assert_null(str(j, "detail"));
}

static bool alive(pid_t pid)
{
    return reap(pid, false) == -1 && kill(pid, 0) == 0;
}

static struct kx_actions *new_actions(bool no_cgroup_kill)
{
    struct kx_actions_opts o = {.node_name = "node-a", .no_cgroup_kill = no_cgroup_kill};
    struct kx_actions *a = kx_actions_new(&o);

    assert_non_null(a);
    return a;
}

/* ------------------------------------------------------- JSON validation */

static void test_bad_requests(void **state)
{
    static const struct {
        const char *req;
        const char *msg; /* substring of the message */
    } cases[] = {
        {"", "not valid JSON"},
        {"{", "not valid JSON"},
        {"kill it", "not valid JSON"},
        {"[]", "JSON object"},
        {"\"kill_process\"", "JSON object"},
        {"{} {}", "trailing data"},
        {"{}", "missing \"action\""},
        {"{\"action\":\"reboot\"}", "unknown action \"reboot\""},
        {"{\"action\":7}", "unknown action (not a string)"},
        {"{\"action\":\"kill_process\",\"pid\":42}", "needs \"pid\" and \"start_time\""},
        {"{\"action\":\"kill_process\",\"start_time\":5}", "needs \"pid\" and \"start_time\""},
        {"{\"action\":\"kill_process\",\"pid\":\"42\",\"start_time\":5}", "\"pid\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":4.5,\"start_time\":5}", "\"pid\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":1e12,\"start_time\":5}", "\"pid\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":-1}", "\"start_time\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":\"12x\"}",
         "\"start_time\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":\" 12\"}",
         "\"start_time\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":\"99999999999999999999999\"}",
         "\"start_time\" must be"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":5,\"signal\":\"SIGSEGV\"}",
         "\"signal\" must be one of"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":5,\"signal\":9}",
         "\"signal\" must be one of"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":5,\"sginal\":\"SIGTERM\"}",
         "unknown field \"sginal\""},
        {"{\"action\":\"kill_process\",\"pid\":42,\"pid\":43,\"start_time\":5}", "appears twice"},
        {"{\"action\":\"kill_process\",\"pid\":42,\"start_time\":5,\"container_id\":"
         "\"3ad7b26ded6d\"}",
         "does not apply to kill_process"},
        {"{\"action\":\"kill_container\",\"container_id\":\"3ad7b26ded6d\",\"signal\":"
         "\"SIGTERM\"}",
         "does not apply to kill_container"},
        {"{\"action\":\"freeze_container\"}", "needs \"container_id\""},
        {"{\"action\":\"freeze_container\",\"container_id\":\"3ad7b26ded6\"}", "12 or 64 hex"},
        {"{\"action\":\"freeze_container\",\"container_id\":\"3ad7b26ded6g\"}", "12 or 64 hex"},
        {"{\"action\":\"thaw_container\",\"container_id\":\"../../../../etc\"}", "12 or 64 hex"},
        {"{\"action\":\"thaw_container\",\"container_id\":12}", "12 or 64 hex"},
        {"{\"action\":\"thaw_container\",\"container_id\":\"3ad7b26ded6d\",\"request_id\":5}",
         "\"request_id\" must be"},
        {"{\"action\":\"thaw_container\",\"container_id\":\"3ad7b26ded6d\",\"request_id\":"
         "\"a\\nb\"}",
         "\"request_id\" must be"},
        {"{\"action\":\"thaw_container\",\"container_id\":\"3ad7b26ded6d\",\"reason\":"
         "\"x\\u0007\"}",
         "\"reason\" must be"},
    };
    struct kx_actions *a = new_actions(false);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = call(a, "%s", cases[i].req);

        if (!str(j, "error") || strcmp(str(j, "error"), "bad_request") != 0 ||
            !strstr(str(j, "message"), cases[i].msg)) {
            print_reply(cases[i].req, j);
            fail_msg("case %zu: expected bad_request with \"%s\"", i, cases[i].msg);
        }
        assert_string_equal(str(j, "node"), "node-a");
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "target"));
        cJSON_Delete(j);
    }
    kx_actions_free(a);
}

static void test_bad_request_echoes_and_bounds(void **state)
{
    struct kx_actions *a = new_actions(false);
    char *big, *reply = NULL;
    size_t len;
    cJSON *j;

    /* request_id and action are echoed in an error reply. */
    j = call(a, "{\"request_id\":\"r-1\",\"action\":\"kill_process\",\"pid\":42}");
    expect_error(j, "bad_request", "start_time");
    assert_string_equal(str(j, "request_id"), "r-1");
    assert_string_equal(str(j, "action"), "kill_process");
    cJSON_Delete(j);

    /* Oversize: refused before parsing, even when it is valid JSON. */
    len = KX_ACTIONS_REQ_MAX + 1;
    big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, "{\"action\":\"kill_process\"", 24);
    big[len - 1] = '}';
    assert_int_equal(kx_actions_handle(a, big, len, &reply, NULL), 0);
    j = cJSON_Parse(reply);
    expect_error(j, "bad_request", "at most 65536");
    cJSON_Delete(j);
    free(reply);
    free(big);

    /* Not NUL terminated: only len bytes count. */
    assert_int_equal(kx_actions_handle(a, "{\"action\":\"x\"}GARBAGE", 14, &reply, NULL), 0);
    j = cJSON_Parse(reply);
    expect_error(j, "bad_request", "unknown action \"x\"");
    cJSON_Delete(j);
    free(reply);

    assert_int_equal(kx_actions_handle(NULL, "{}", 2, &reply, NULL), -EINVAL);
    assert_int_equal(kx_actions_handle(a, "{}", 2, NULL, NULL), -EINVAL);
    assert_string_equal(kx_actions_subject(a), "");
    kx_actions_free(a);
    kx_actions_free(NULL);
}

/* --------------------------------------------------------- kill_process */

static void test_kill_process_stale_then_killed(void **state)
{
    struct kx_actions *a = new_actions(false);
    pid_t pid = spawn_sleeper();
    unsigned long long t = start_ns(pid);
    cJSON *j, *tg;
    int st;

    /* Start time 5 s off: the pid "was reused"; nothing may happen. */
    j = call(a,
             "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu,\"request_id\":\"r-7\"}",
             (int)pid, t + 5000000000ull);
    expect_error(j, "stale", "nothing was signalled");
    assert_string_equal(str(j, "request_id"), "r-7");
    tg = cJSON_GetObjectItemCaseSensitive(j, "target");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(tg, "pid")->valuedouble, pid);
    cJSON_Delete(j);
    /* One tick early is another tick: still stale. */
    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu}", (int)pid,
             t - 1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
    expect_error(j, "stale", NULL);
    cJSON_Delete(j);
    usleep(50000);
    assert_true(alive(pid));

    /* The right start time (given as an exact decimal string): killed. */
    j = call(a,
             "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":\"%llu\",\"request_id\":"
             "\"r-8\",\"reason\":\"test\"}",
             (int)pid, t);
    expect_ok(j);
    assert_string_equal(str(j, "action"), "kill_process");
    assert_string_equal(str(j, "request_id"), "r-8");
    assert_string_equal(str(j, "node"), "node-a");
    assert_non_null(strstr(str(j, "detail"), "killed pid"));
    tg = cJSON_GetObjectItemCaseSensitive(j, "target");
    {
        char comm[64];

        read_text("/proc/self/comm", comm, sizeof(comm)); /* the child's is the same */
        comm[strcspn(comm, "\n")] = '\0';
        assert_string_equal(str(tg, "comm"), comm);
    }
    assert_non_null(str(tg, "exe"));
    assert_true(cJSON_GetObjectItemCaseSensitive(tg, "start_time")->valuedouble > 0);
    cJSON_Delete(j);
    st = reap(pid, true);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);

    /* Gone now (reaped): not_found. */
    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu}", (int)pid, t);
    expect_error(j, "not_found", NULL);
    cJSON_Delete(j);
    kx_actions_free(a);
}

static void test_kill_process_other_signal(void **state)
{
    struct kx_actions *a = new_actions(false);
    pid_t pid = spawn_sleeper();
    cJSON *j;
    int st;

    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu,\"signal\":\"term\"}",
             (int)pid, start_ns(pid));
    expect_ok(j);
    assert_non_null(strstr(str(j, "detail"), "sent SIGTERM to pid"));
    cJSON_Delete(j);
    st = reap(pid, true);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    kx_actions_free(a);
}

static void *idle_thread(void *arg)
{
    pid_t *tid = arg;

    *tid = (pid_t)syscall(SYS_gettid);
    pause();
    return NULL;
}

static void test_protected_processes(void **state)
{
    struct kx_actions *a = new_actions(false);
    pid_t tid = 0, kthread = 0;
    pthread_t th;
    cJSON *j;

    /* pid 1, pid 0, negative pids: never. */
    j = call(a, "{\"action\":\"kill_process\",\"pid\":1,\"start_time\":%llu}", start_ns(1));
    expect_error(j, "protected", "init");
    cJSON_Delete(j);
    j = call(a, "{\"action\":\"kill_process\",\"pid\":0,\"start_time\":0}");
    expect_error(j, "protected", NULL);
    cJSON_Delete(j);
    j = call(a, "{\"action\":\"kill_process\",\"pid\":-1,\"start_time\":0}");
    expect_error(j, "protected", NULL);
    cJSON_Delete(j);

    /* The caller itself (here the test plays the sensor), and its threads. */
    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu}", (int)getpid(),
             start_ns(getpid()));
    expect_error(j, "protected", "klaxon-sensor itself");
    cJSON_Delete(j);
    assert_int_equal(pthread_create(&th, NULL, idle_thread, &tid), 0);
    while (__atomic_load_n(&tid, __ATOMIC_SEQ_CST) == 0)
        usleep(1000);
    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu}", (int)tid,
             start_ns(getpid()));
    expect_error(j, "protected", "thread of klaxon-sensor");
    cJSON_Delete(j);
    pthread_cancel(th);
    pthread_join(th, NULL);

    /* A kernel thread with its right start time. */
    for (pid_t p = 2; p < 4096 && !kthread; p++) {
        char path[64], buf[2048], *s;
        int field = 3;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
        if (!*read_text(path, buf, sizeof(buf)) || !(s = strrchr(buf, ')')))
            continue;
        for (s = strtok(s + 1, " "); s; s = strtok(NULL, " "), field++)
            if (field == 9 && (strtoul(s, NULL, 10) & 0x00200000u))
                kthread = p;
    }
    if (!kthread)
        fail_msg("no kernel thread found in /proc");
    j = call(a, "{\"action\":\"kill_process\",\"pid\":%d,\"start_time\":%llu}", (int)kthread,
             start_ns(kthread));
    expect_error(j, "protected", "kernel thread");
    cJSON_Delete(j);
    kx_actions_free(a);
}

/* ------------------------------------------------------------ containers */

/* A child spinning on a shared counter: its progress shows whether it runs. */
static pid_t spawn_spinner(volatile unsigned long *counter)
{
    pid_t pid = fork();

    if (pid == 0) {
        for (;;)
            (*counter)++;
    }
    track_child(pid);
    return pid;
}

static bool progresses(volatile unsigned long *counter)
{
    unsigned long before = *counter;

    usleep(100000);
    return *counter != before;
}

static void move_to(const char *cgroup, pid_t pid)
{
    char path[4096], num[16];

    snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
    snprintf(num, sizeof(num), "%d", (int)pid);
    write_file(path, num);
}

static void test_container_freeze_thaw_kill(void **state)
{
    struct kx_actions *a;
    char id[65], dir[512], path[4096], buf[256];
    volatile unsigned long *counter;
    cJSON *j, *tg;
    pid_t pid;
    int st;

    require_root();
    a = new_actions(false);
    counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(counter != MAP_FAILED);
    random_hex(id, 64);
    make_cgroup(SLICE);
    snprintf(dir, sizeof(dir), SLICE "/cri-containerd-%s.scope", id);
    make_cgroup(dir);
    pid = spawn_spinner(counter);
    move_to(dir, pid);
    assert_true(progresses(counter));

    /* Unknown container. */
    j = call(a, "{\"action\":\"freeze_container\",\"container_id\":\"%.11s0\"}", "ffffffffffff");
    expect_error(j, "not_found", "no cgroup v2 directory");
    cJSON_Delete(j);

    /* Freeze by the 12-hex prefix. */
    j = call(a,
             "{\"action\":\"freeze_container\",\"container_id\":\"%.12s\",\"request_id\":\"f1\"}",
             id);
    expect_ok(j);
    tg = cJSON_GetObjectItemCaseSensitive(j, "target");
    assert_string_equal(str(tg, "container_id"), id);
    assert_string_equal(str(tg, "runtime"), "containerd");
    assert_string_equal(str(tg, "cgroup"), dir + strlen(CGROUP2));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(tg, "pids")->valuedouble, 1);
    cJSON_Delete(j);
    snprintf(path, sizeof(path), "%s/cgroup.events", dir);
    assert_non_null(strstr(read_text(path, buf, sizeof(buf)), "frozen 1"));
    assert_int_equal(proc_state(pid), 'S'); /* a spinner is 'R' unless frozen */
    assert_false(progresses(counter));

    /* Freezing again is fine. */
    j = call(a, "{\"action\":\"freeze_container\",\"container_id\":\"%s\"}", id);
    expect_ok(j);
    cJSON_Delete(j);

    /* Thaw by the full id, as Kubernetes writes it. */
    j = call(a, "{\"action\":\"thaw_container\",\"container_id\":\"containerd://%s\"}", id);
    expect_ok(j);
    assert_non_null(strstr(str(j, "detail"), "thawed container"));
    cJSON_Delete(j);
    assert_non_null(strstr(read_text(path, buf, sizeof(buf)), "frozen 0"));
    assert_true(progresses(counter));

    /* Kill through cgroup.kill: the child dies of SIGKILL. */
    j = call(a, "{\"action\":\"kill_container\",\"container_id\":\"%s\"}", id);
    expect_ok(j);
    assert_string_equal(str(j, "method"), "cgroup.kill");
    assert_non_null(strstr(str(j, "detail"), "1 process(es) via cgroup.kill"));
    cJSON_Delete(j);
    st = reap(pid, true);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_non_null(strstr(read_text(path, buf, sizeof(buf)), "populated 0"));

    munmap((void *)counter, 4096);
    kx_actions_free(a);
}

static void test_container_kill_fallback_signal(void **state)
{
    struct kx_actions *a;
    char id[65], dir[512], sub[600];
    pid_t p1, p2;
    cJSON *j;
    int st;

    require_root();
    a = new_actions(true); /* as on a kernel without cgroup.kill */
    random_hex(id, 64);
    make_cgroup(SLICE);
    snprintf(dir, sizeof(dir), SLICE "/crio-%s.scope", id);
    make_cgroup(dir);
    snprintf(sub, sizeof(sub), "%s/.inner", dir); /* recursive, even into a ".hidden" one */
    make_cgroup(sub);
    p1 = spawn_sleeper();
    p2 = spawn_sleeper();
    move_to(dir, p1);
    move_to(sub, p2);

    j = call(a, "{\"action\":\"kill_container\",\"container_id\":\"%s\"}", id);
    expect_ok(j);
    assert_string_equal(str(j, "method"), "signal");
    assert_non_null(strstr(str(j, "detail"), "2 process(es) by SIGKILL"));
    assert_non_null(strstr(str(j, "detail"), "no cgroup.kill"));
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(j, "target"), "runtime"), "cri-o");
    cJSON_Delete(j);
    st = reap(p1, true);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    st = reap(p2, true);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    kx_actions_free(a);
}

static void test_container_ambiguous_and_moved(void **state)
{
    struct kx_actions *a;
    char id1[65], id2[65], d1[512], d2[512], d3[1024], pa[256], pb[256];
    cJSON *j;

    require_root();
    a = new_actions(false);
    random_hex(id1, 64);
    memcpy(id2, id1, 12); /* same 12-hex prefix, another container */
    random_hex(id2 + 12, 52);
    make_cgroup(SLICE);
    snprintf(d1, sizeof(d1), SLICE "/docker-%s.scope", id1);
    snprintf(d2, sizeof(d2), SLICE "/docker-%s.scope", id2);
    make_cgroup(d1);
    make_cgroup(d2);

    j = call(a, "{\"action\":\"thaw_container\",\"container_id\":\"%.12s\"}", id1);
    expect_error(j, "ambiguous", "matches 2 containers");
    cJSON_Delete(j);
    j = call(a, "{\"action\":\"thaw_container\",\"container_id\":\"%s\"}", id2);
    expect_ok(j);
    cJSON_Delete(j);

    /* The cached directory disappears and the container shows up elsewhere:
     * the next request walks again and finds it. */
    snprintf(pa, sizeof(pa), SLICE "/a");
    snprintf(pb, sizeof(pb), SLICE "/b");
    make_cgroup(pa);
    make_cgroup(pb);
    snprintf(d3, sizeof(d3), "%s/cri-containerd-%s.scope", pa, id1);
    make_cgroup(d3);
    assert_int_equal(rmdir(d1), 0);
    j = call(a, "{\"action\":\"thaw_container\",\"container_id\":\"%s\"}", id1);
    expect_ok(j);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(j, "target"), "cgroup"),
                        d3 + strlen(CGROUP2));
    cJSON_Delete(j);
    assert_int_equal(rmdir(d3), 0);
    snprintf(d3, sizeof(d3), "%s/cri-containerd-%s.scope", pb, id1);
    make_cgroup(d3);
    j = call(a, "{\"action\":\"thaw_container\",\"container_id\":\"%s\"}", id1);
    expect_ok(j);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(j, "target"), "cgroup"),
                        d3 + strlen(CGROUP2));
    cJSON_Delete(j);
    kx_actions_free(a);
}

/*
 * A cgroup holding the caller (here: a forked child playing the sensor,
 * sitting in a sub-cgroup of the container) is refused. The child reports
 * through its exit status; if the refusal failed it would kill or freeze
 * itself, which the parent sees too.
 */
static void test_container_holding_sensor_protected(void **state)
{
    char id[65], dir[512], sub[600];
    int pipefd[2], st;
    pid_t pid;

    require_root();
    random_hex(id, 64);
    make_cgroup(SLICE);
    snprintf(dir, sizeof(dir), SLICE "/cri-containerd-%s.scope", id);
    make_cgroup(dir);
    snprintf(sub, sizeof(sub), "%s/sensor", dir);
    make_cgroup(sub);
    assert_int_equal(pipe(pipefd), 0);

    pid = fork();
    if (pid == 0) {
        static const char *const acts[] = {"kill_container", "freeze_container"};
        char go, req[256], *reply = NULL;
        int bad = 0;

        close(pipefd[1]);
        if (read(pipefd[0], &go, 1) != 1) /* moved into sub by the parent */
            _exit(10);
        for (size_t i = 0; i < 2; i++) {
            struct kx_actions_opts o = {.node_name = "n"};
            struct kx_actions *a = kx_actions_new(&o);
            cJSON *j;

            snprintf(req, sizeof(req), "{\"action\":\"%s\",\"container_id\":\"%s\"}", acts[i], id);
            if (!a || kx_actions_handle(a, req, strlen(req), &reply, NULL) < 0)
                _exit(11);
            j = cJSON_Parse(reply);
            if (!j || !str(j, "error") || strcmp(str(j, "error"), "protected") != 0 ||
                !strstr(str(j, "message"), "holds klaxon-sensor")) {
                fprintf(stderr, "child got: %s\n", reply);
                bad = 1;
            }
            cJSON_Delete(j);
            free(reply);
            kx_actions_free(a);
        }
        _exit(bad);
    }
    track_child(pid);
    close(pipefd[0]);
    move_to(sub, pid);
    assert_int_equal(write(pipefd[1], "g", 1), 1);
    close(pipefd[1]);

    for (int i = 0; i < 500 && (st = reap(pid, false)) == -1; i++)
        usleep(10000);
    if (st == -1)
        fail_msg("the child did not finish (frozen by its own request?)");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the child was not refused with \"protected\" (status 0x%x)", st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_bad_request_echoes_and_bounds),
        cmocka_unit_test_teardown(test_kill_process_stale_then_killed, teardown),
        cmocka_unit_test_teardown(test_kill_process_other_signal, teardown),
        cmocka_unit_test(test_protected_processes),
        cmocka_unit_test_teardown(test_container_freeze_thaw_kill, teardown),
        cmocka_unit_test_teardown(test_container_kill_fallback_signal, teardown),
        cmocka_unit_test_teardown(test_container_ambiguous_and_moved, teardown),
        cmocka_unit_test_teardown(test_container_holding_sensor_protected, teardown),
    };

    kx_log_init("test_sensor_actions", KX_LOG_WARN, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
