/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_responders_exec.c - the "exec" responder and the responder registry,
 * against real /bin/sh scripts written into a temporary directory: exit
 * codes and their outcomes, the timeout killing a whole process group (a
 * grandchild included, even one ignoring SIGTERM), the environment built from
 * params, the alert JSON on stdin (larger than a pipe buffer, and refused),
 * output capture limits, dry-run, no descriptor leaking into the child, no
 * child left unreaped, and configuration errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "util.h"
/* tests are not built with -Iresponders */
#include "responders.h"
#include "responder_harness.h"

extern const struct kx_responder_ops kx_responder_exec;          /* responders/exec.c */
extern const struct kx_responder_ops kx_responder_plugin_loader; /* responders/plugin.c */

static const char sample_json[] =
    "{\"uuid\":\"5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69\",\"time\":\"2026-11-22T10:01:02."
    "123456789Z\","
    "\"priority\":\"Critical\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"A shell was spawned in a container\","
    "\"tags\":[\"container\",\"shell\"],"
    "\"output_fields\":{\"proc.name\":\"bash\",\"container.id\":\"3ad7b26ded6d\"}}";

static char tmpdir[] = "/tmp/kx-exec-test-XXXXXX";

static struct kx_alert *sample(void)
{
    char err[KX_ALERT_ERR_LEN] = "";
    struct kx_alert *a = kx_alert_parse(sample_json, strlen(sample_json), err, sizeof(err));

    if (a == NULL)
        fail_msg("sample alert: %s", err);
    return a;
}

/* Writes an executable #!/bin/sh script into tmpdir; returns its path (static). */
static const char *script(const char *name, const char *body)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

static char *tmp_path(const char *name)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* A responder action built as the engine builds it (responder_harness.h). */
#define inst_init(in, ...) inst_initf(in, &kx_responder_exec, "t1", __VA_ARGS__)

/* Every child reaped: the test process has none left at all. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static int act(struct inst *in, const struct kx_alert *a, cJSON **audit)
{
    int rc;

    assert_int_equal(in->init_rc, 0);
    *audit = cJSON_CreateObject();
    assert_non_null(*audit);
    rc = in->r.ops->act(&in->r, a, in->core.params, *audit);
    assert_no_children();
    return rc;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsString(v)) {
        char *s = cJSON_PrintUnformatted(o);

        fail_msg("audit has no string \"%s\": %s", key, s ? s : "?");
    }
    return v->valuestring;
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsNumber(v))
        fail_msg("audit has no number \"%s\"", key);
    return v->valuedouble;
}

static bool jbool(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsBool(v))
        fail_msg("audit has no bool \"%s\"", key);
    return cJSON_IsTrue(v);
}

/* Gone, or a zombie waiting for its (new) parent: either way not running. */
static bool pid_dead(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return true;
    buf[0] = '\0';
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    const char *rp = strrchr(buf, ')');
    return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
}

static pid_t read_pid(const char *name)
{
    char *s = kx_read_file(tmp_path(name), 64, NULL);
    pid_t pid;

    assert_non_null(s);
    pid = (pid_t)atoi(s);
    free(s);
    assert_true(pid > 1);
    return pid;
}

static void assert_dies(pid_t pid)
{
    for (int i = 0; i < 200 && !pid_dead(pid); i++)
        usleep(10000);
    assert_true(pid_dead(pid));
}

/* ---- registry ---------------------------------------------------------------- */

static void test_registry(void **state)
{
    assert_ptr_equal(kx_responder_ops_find("exec"), &kx_responder_exec);
    assert_ptr_equal(kx_responder_ops_find("EXEC"), &kx_responder_exec);
    assert_ptr_equal(kx_responder_ops_find("plugin"), &kx_responder_plugin_loader);
    assert_null(kx_responder_ops_find("no-such-type"));
    assert_null(kx_responder_ops_find(NULL));
    for (size_t i = 0; kx_responder_registry[i]; i++) {
        const struct kx_responder_ops *o = kx_responder_registry[i];

        assert_non_null(o->name);
        assert_non_null(o->desc);
        assert_non_null(o->act);
        assert_true(!o->opts || o->settings_size > 0);
        assert_ptr_equal(kx_responder_ops_find(o->name), o);
    }
}

/* ---- outcomes ------------------------------------------------------------------ */

static void test_exit_zero_done(void **state)
{
    const char *p = script("ok.sh", "echo \"hello $1\"; echo warn >&2; exit 0");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;

    inst_init(&in, "type: exec\npath: %s\nargs: [world]\n", p);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(act(&in, a, &audit), 0);
    assert_string_equal(jstr(audit, "action"), "exec");
    assert_string_equal(jstr(audit, "path"), p);
    assert_string_equal(jstr(audit, "result"), "done");
    assert_int_equal((int)jnum(audit, "exit_code"), 0);
    assert_false(jbool(audit, "timed_out"));
    assert_string_equal(jstr(audit, "stdout"), "hello world\n");
    assert_string_equal(jstr(audit, "stderr"), "warn\n");
    assert_true(jnum(audit, "duration_ms") >= 0);
    assert_null(cJSON_GetObjectItem(audit, "signal"));
    assert_null(cJSON_GetObjectItem(audit, "reason"));
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(audit, "args"), 0)->valuestring,
                        "world");
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_exit_codes(void **state)
{
    const char *p = script("code.sh", "echo 'first line' >&2; echo \"boom: $2\" >&2; exit \"$1\"");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;

    /* EX_TEMPFAIL: the script asks to be retried. */
    inst_init(&in, "type: exec\npath: %s\nargs: ['75', busy]\n", p);
    assert_int_equal(act(&in, a, &audit), -EAGAIN);
    assert_int_equal((int)jnum(audit, "exit_code"), 75);
    assert_string_equal(jstr(audit, "result"), "retry");
    assert_non_null(strstr(jstr(audit, "reason"), "EX_TEMPFAIL"));
    cJSON_Delete(audit);
    inst_free(&in);

    /* Anything else: permanent, with the last line of stderr as the why. */
    inst_init(&in, "type: exec\npath: %s\nargs: ['3', no such pod]\n", p);
    assert_int_equal(act(&in, a, &audit), -EIO);
    assert_int_equal((int)jnum(audit, "exit_code"), 3);
    assert_string_equal(jstr(audit, "result"), "failed");
    assert_string_equal(jstr(audit, "reason"), "exited with 3: boom: no such pod");
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_killed_by_signal(void **state)
{
    const char *p = script("sig.sh", "kill -USR1 $$; sleep 5");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;

    inst_init(&in, "type: exec\npath: %s\n", p);
    assert_int_equal(act(&in, a, &audit), -EIO);
    assert_string_equal(jstr(audit, "signal"), "SIGUSR1");
    assert_null(cJSON_GetObjectItem(audit, "exit_code"));
    assert_false(jbool(audit, "timed_out"));
    assert_string_equal(jstr(audit, "reason"), "killed by SIGUSR1");
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

static void test_executable_gone_after_init(void **state)
{
    const char *p = script("gone.sh", "exit 0");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;

    inst_init(&in, "type: exec\npath: %s\n", p);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(act(&in, a, &audit), -EIO);
    assert_non_null(strstr(jstr(audit, "reason"), "cannot run"));
    assert_non_null(strstr(jstr(audit, "reason"), strerror(ENOENT)));
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- timeout and the process group --------------------------------------------- */

static void test_timeout_foreground(void **state)
{
    const char *p = script("slow.sh", "echo started; sleep 30");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    int64_t t0 = kx_monotonic_ns();

    inst_init(&in, "type: exec\npath: %s\ntimeout: 200ms\n", p);
    assert_int_equal(act(&in, a, &audit), -EAGAIN);
    assert_true(jbool(audit, "timed_out"));
    assert_string_equal(jstr(audit, "signal"), "SIGTERM");
    assert_string_equal(jstr(audit, "stdout"), "started\n");
    assert_string_equal(jstr(audit, "result"), "retry");
    assert_non_null(strstr(jstr(audit, "reason"), "timed out after 200ms"));
    /* everything stopped on SIGTERM: no need to wait out the grace second */
    assert_true(kx_monotonic_ns() - t0 < 900 * KX_NSEC_PER_MSEC);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* The child exits at once, but leaves a grandchild holding its stdout: the
 * run lasts until the timeout, and the group kill takes the grandchild. */
static void test_timeout_kills_grandchild(void **state)
{
    char body[600];
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    pid_t gc;

    snprintf(body, sizeof(body), "sleep 30 &\necho $! > %s/gc.pid\nexit 0", tmpdir);
    inst_init(&in, "type: exec\npath: %s\ntimeout: 300ms\n", script("gc.sh", body));
    assert_int_equal(act(&in, a, &audit), -EAGAIN);
    assert_true(jbool(audit, "timed_out"));
    assert_int_equal((int)jnum(audit, "exit_code"), 0); /* the leader itself was fine */
    gc = read_pid("gc.pid");
    assert_dies(gc);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* A grandchild ignoring SIGTERM gets SIGKILL after the grace second. */
static void test_timeout_escalates_to_sigkill(void **state)
{
    char body[600];
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    int64_t t0 = kx_monotonic_ns();
    pid_t gc;

    snprintf(body, sizeof(body),
             "sh -c 'trap \"\" TERM; exec sleep 30' &\necho $! > %s/gc2.pid\nexit 0", tmpdir);
    inst_init(&in, "type: exec\npath: %s\ntimeout: 200ms\n", script("gc2.sh", body));
    assert_int_equal(act(&in, a, &audit), -EAGAIN);
    assert_true(jbool(audit, "timed_out"));
    assert_true(kx_monotonic_ns() - t0 >= 1200 * KX_NSEC_PER_MSEC);
    assert_true(kx_monotonic_ns() - t0 < 5 * KX_NSEC_PER_SEC);
    gc = read_pid("gc2.pid");
    assert_dies(gc);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* Leftovers that closed their output do not hold the run open, and still do
 * not outlive it. */
static void test_leftovers_killed_on_exit(void **state)
{
    char body[600];
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    int64_t t0 = kx_monotonic_ns();

    snprintf(body, sizeof(body),
             "sleep 30 >/dev/null 2>&1 </dev/null &\necho $! > %s/left.pid\nexit 0", tmpdir);
    inst_init(&in, "type: exec\npath: %s\ntimeout: 5s\n", script("left.sh", body));
    assert_int_equal(act(&in, a, &audit), 0);
    assert_false(jbool(audit, "timed_out"));
    assert_true(kx_monotonic_ns() - t0 < 2 * KX_NSEC_PER_SEC);
    assert_dies(read_pid("left.pid"));
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- environment ---------------------------------------------------------------- */

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static void test_env_from_params(void **state)
{
    const char *p = script("env.sh", "exec /usr/bin/env");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    const char *out;

    setenv("KX_TEST_HUB_SECRET", "must-not-leak", 1);
    inst_init(&in,
              "type: exec\npath: %s\nenv: {FOO: bar}\n"
              "params:\n"
              "  namespace: shop\n"
              "  pod-name: web-1\n"
              "  count: 3\n"
              "  list: [a, b]\n"
              "  nested: {k: v}\n",
              p);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(act(&in, a, &audit), 0);
    out = jstr(audit, "stdout");
    assert_true(has_line(out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"));
    assert_true(has_line(out, "FOO=bar"));
    assert_true(has_line(out, "KLAXON_PARAM_NAMESPACE=shop"));
    assert_true(has_line(out, "KLAXON_PARAM_POD_NAME=web-1"));
    assert_true(has_line(out, "KLAXON_PARAM_COUNT=3"));
    assert_true(has_line(out, "KLAXON_PARAM_LIST=[\"a\",\"b\"]"));
    assert_true(has_line(out, "KLAXON_PARAM_NESTED={\"k\":\"v\"}"));
    assert_true(has_line(out, "KLAXON_RULE=Terminal shell in container"));
    assert_true(has_line(out, "KLAXON_PRIORITY=Critical"));
    assert_true(has_line(out, "KLAXON_UUID=5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69"));
    assert_true(has_line(out, "KLAXON_HOSTNAME=node-a"));
    assert_true(has_line(out, "KLAXON_RESPONDER=t1"));
    assert_null(strstr(out, "KLAXON_DRY_RUN"));
    assert_null(strstr(out, "must-not-leak"));
    assert_null(strstr(out, "HOME="));
    unsetenv("KX_TEST_HUB_SECRET");
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- stdin ----------------------------------------------------------------------- */

static void test_stdin_gets_alert_json(void **state)
{
    char body[600];
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    char *got;
    size_t len;

    snprintf(body, sizeof(body), "cat > %s/stdin.json", tmpdir);
    inst_init(&in, "type: exec\npath: %s\n", script("stdin.sh", body));
    assert_int_equal(act(&in, a, &audit), 0);
    got = kx_read_file(tmp_path("stdin.json"), 1 << 20, &len);
    assert_non_null(got);
    assert_string_equal(got, sample_json);
    free(got);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* Larger than a pipe buffer: written as the child reads, never blocking. */
static struct kx_alert *big_alert(size_t n)
{
    struct kx_alert *a = kx_alert_new("Big", KX_PRI_WARNING, "syscall", "node-b", "big", 0);
    char *s = malloc(n + 1);

    assert_non_null(a);
    assert_non_null(s);
    memset(s, 'x', n);
    s[n] = '\0';
    assert_int_equal(kx_alert_set_str(a, "big", s), 0);
    free(s);
    return a;
}

static void test_stdin_large(void **state)
{
    char body[600];
    struct kx_alert *a = big_alert(300 * 1024);
    char *want = kx_alert_to_json(a), *got;
    struct inst in;
    cJSON *audit;
    size_t len;

    snprintf(body, sizeof(body), "sleep 0.1; cat > %s/big.json", tmpdir);
    inst_init(&in, "type: exec\npath: %s\n", script("big.sh", body));
    assert_int_equal(act(&in, a, &audit), 0);
    got = kx_read_file(tmp_path("big.json"), 4 << 20, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
    free(want);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* A child that closes stdin unread: EPIPE for us, and the SIGPIPE that came
 * with it neither kills the test nor stays pending or blocked. */
static void test_stdin_refused(void **state)
{
    struct kx_alert *a = big_alert(300 * 1024);
    struct inst in;
    cJSON *audit;
    sigset_t pending, mask;

    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    inst_init(&in, "type: exec\npath: %s\n", script("noread.sh", "exec 0<&-; sleep 0.2; exit 0"));
    assert_int_equal(act(&in, a, &audit), 0);
    sigemptyset(&pending);
    assert_int_equal(sigpending(&pending), 0);
    assert_int_equal(sigismember(&pending, SIGPIPE), 0);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
    assert_int_equal(sigismember(&mask, SIGPIPE), 0);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- output capture -------------------------------------------------------------- */

static void test_output_limits(void **state)
{
    const char *p =
        script("loud.sh", "head -c 10000 /dev/zero | tr '\\0' a; printf err >&2; exit 0");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    const char *out;

    inst_init(&in, "type: exec\npath: %s\nmaxoutput: 1KiB\n", p);
    assert_int_equal(act(&in, a, &audit), 0);
    out = jstr(audit, "stdout");
    assert_int_equal(strlen(out), 1024);
    assert_int_equal(strspn(out, "a"), 1024);
    assert_int_equal((int)jnum(audit, "stdout_dropped"), 10000 - 1024);
    assert_string_equal(jstr(audit, "stderr"), "err");
    assert_int_equal((int)jnum(audit, "stderr_dropped"), 0);
    cJSON_Delete(audit);
    inst_free(&in);

    inst_init(&in, "type: exec\npath: %s\nmaxoutput: 0\n", p);
    assert_int_equal(act(&in, a, &audit), 0);
    assert_string_equal(jstr(audit, "stdout"), "");
    assert_int_equal((int)jnum(audit, "stdout_dropped"), 10000);
    assert_int_equal((int)jnum(audit, "stderr_dropped"), 3);
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* Binary output stays valid UTF-8 in the audit (NUL and stray bytes become
 * U+FFFD; valid multibyte text passes). */
static void test_output_not_utf8(void **state)
{
    const char *p = script("bin.sh", "printf '\\377ok\\000x \\303\\251'");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;

    inst_init(&in, "type: exec\npath: %s\n", p);
    assert_int_equal(act(&in, a, &audit), 0);
    assert_string_equal(jstr(audit, "stdout"), "\xef\xbf\xbdok\xef\xbf\xbdx \xc3\xa9");
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- dry-run ------------------------------------------------------------------------ */

static void test_dry_run_runs_nothing(void **state)
{
    char body[600];
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit, *env;
    struct stat sb;

    snprintf(body, sizeof(body), "touch %s/ran", tmpdir);
    inst_init(&in, "type: exec\npath: %s\nargs: [-x]\nenv: {TOKEN: s3cret}\nparams: {ns: shop}\n",
              script("dry.sh", body));
    in.r.dry_run = true;
    assert_int_equal(act(&in, a, &audit), 0);
    assert_int_equal(stat(tmp_path("ran"), &sb), -1);
    assert_true(jbool(audit, "dry_run"));
    assert_string_equal(jstr(audit, "result"), "dry_run");
    assert_string_equal(jstr(audit, "action"), "exec");
    assert_null(cJSON_GetObjectItem(audit, "exit_code"));
    env = cJSON_GetObjectItem(audit, "env");
    assert_non_null(env);
    assert_string_equal(jstr(env, "KLAXON_DRY_RUN"), "1");
    assert_string_equal(jstr(env, "KLAXON_PARAM_NS"), "shop");
    assert_string_equal(jstr(env, "KLAXON_RULE"), "Terminal shell in container");
    {
        char *s = cJSON_PrintUnformatted(audit);

        assert_null(strstr(s, "s3cret")); /* fixed env may hold secrets */
        free(s);
    }
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- descriptors ---------------------------------------------------------------------- */

static void test_no_fd_leak(void **state)
{
    struct kx_alert *a = sample();
    int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    int pfd[2];
    struct inst in;
    cJSON *audit;

    assert_true(leak >= 0);
    assert_int_equal(pipe(pfd), 0);
    /* No pipeline: sh would still hold the pipe while ls looks. */
    inst_init(&in, "type: exec\npath: /bin/sh\nargs: ['-c', 'ls /proc/$$/fd']\n");
    assert_int_equal(act(&in, a, &audit), 0);
    assert_string_equal(jstr(audit, "stdout"), "0\n1\n2\n");
    cJSON_Delete(audit);
    inst_free(&in);
    close(leak);
    close(pfd[0]);
    close(pfd[1]);
    kx_alert_free(a);
}

/* Many runs leave no descriptor of ours behind either. */
static int count_fds(void)
{
    int n = 0;
    char path[64];

    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n += access(path, F_OK) == 0;
    }
    return n;
}

static void test_no_fd_left_in_hub(void **state)
{
    const char *p = script("quick.sh", "echo hi; exit 0");
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    int before;

    inst_init(&in, "type: exec\npath: %s\n", p);
    before = count_fds();
    for (int i = 0; i < 20; i++) {
        assert_int_equal(act(&in, a, &audit), 0);
        cJSON_Delete(audit);
    }
    assert_int_equal(count_fds(), before);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- configuration --------------------------------------------------------------------- */

static void expect_config_error(const char *yaml, const char *needle)
{
    struct inst in;

    inst_init(&in, "%s", yaml);
    assert_int_not_equal(in.init_rc, 0);
    if (!strstr(diag0(&in), needle))
        fail_msg("want \"%s\" in \"%s\"", needle, diag0(&in));
    inst_free(&in);
}

static void test_bad_config(void **state)
{
    char yaml[1024];
    const char *ok = script("fine.sh", "exit 0");
    const char *plain = tmp_path("plain.txt");
    FILE *f = fopen(plain, "w");

    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(plain, 0644), 0);

    expect_config_error("type: exec\n", "missing required key \"path\"");
    expect_config_error("type: exec\npath: bin/true\n", "must be absolute");
    expect_config_error("type: exec\npath: /nonexistent/klaxon-x\n", strerror(ENOENT));
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\n", tmpdir);
    expect_config_error(yaml, "not a regular file");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\n", plain);
    expect_config_error(yaml, "not executable");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\ntimeout: 0s\n", ok);
    expect_config_error(yaml, "timeout");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\ntimeout: soon\n", ok);
    expect_config_error(yaml, "timeout");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\nmaxoutput: 1MiB\n", ok);
    expect_config_error(yaml, "maxoutput");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\nenv: {KLAXON_RULE: x}\n", ok);
    expect_config_error(yaml, "KLAXON_* names are set per alert");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\nparams: just-a-string\n", ok);
    expect_config_error(yaml, "params must be a map");
    snprintf(yaml, sizeof(yaml), "type: exec\npath: %s\nretries: 3\n", ok);
    expect_config_error(yaml, "unknown key");
    assert_int_equal(unlink(plain), 0);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_exit_zero_done),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_executable_gone_after_init),
        cmocka_unit_test(test_timeout_foreground),
        cmocka_unit_test(test_timeout_kills_grandchild),
        cmocka_unit_test(test_timeout_escalates_to_sigkill),
        cmocka_unit_test(test_leftovers_killed_on_exit),
        cmocka_unit_test(test_env_from_params),
        cmocka_unit_test(test_stdin_gets_alert_json),
        cmocka_unit_test(test_stdin_large),
        cmocka_unit_test(test_stdin_refused),
        cmocka_unit_test(test_output_limits),
        cmocka_unit_test(test_output_not_utf8),
        cmocka_unit_test(test_dry_run_runs_nothing),
        cmocka_unit_test(test_no_fd_leak),
        cmocka_unit_test(test_no_fd_left_in_hub),
        cmocka_unit_test(test_bad_config),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
