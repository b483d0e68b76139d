/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rules.c - the sensor's built-in rule "Terminal shell in container"
 * (sensor/rules.c): matching, the Falco-shaped alert it builds, and the
 * proc.cmdline formatting.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Relative to this file: hub/ and outputs/ are on the include path too. */
#include "../../sensor/detect.h"
#include "../../sensor/rules.h"

#define ID64 "3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6c5"
#define ID12 "3ad7b26ded6d"
#define POD "1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5f"
#define T0 1795428062123456789LL /* 2026-11-23T10:01:02.123456789Z */

static struct kx_container ctr_of(const char *full, const char *pod)
{
    struct kx_container c;

    memset(&c, 0, sizeof(c));
    if (full) {
        snprintf(c.full_id, sizeof(c.full_id), "%s", full);
        memcpy(c.id, full, KX_CONTAINER_ID_LEN);
        c.runtime = KX_RUNTIME_CONTAINERD;
    }
    if (pod)
        snprintf(c.pod_uid, sizeof(c.pod_uid), "%s", pod);
    return c;
}

static struct kx_proc_event shell_event(const struct kx_container *ctr)
{
    struct kx_proc_event ev = {
        .evt_type = "execve",
        .time_ns = T0,
        .name = "sh",
        .exepath = "/bin/sh",
        .cmdline = "sh -c true",
        .pid = 4242,
        .ppid = 4200,
        .pname = "bash",
        .uid = 0,
        .user_name = "root",
        .ctr = ctr,
    };
    return ev;
}

static void test_shell_list(void **state)
{
    static const char *const yes[] = {"ash",  "bash", "csh",  "ksh", "sh",
                                      "tcsh", "zsh",  "dash", "fish"};
    static const char *const no[] = {"",        "bash5",   "shx",     "xsh", "SH",
                                     "Bash",    "busybox", "python3", "sh ", " sh",
                                     "/bin/sh", "sshd",    "zsh-5.9"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!kx_rules_is_shell(yes[i]))
            fail_msg("%s should be a shell", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (kx_rules_is_shell(no[i]))
            fail_msg("\"%s\" should not be a shell", no[i]);
    assert_false(kx_rules_is_shell(NULL));
}

static void test_builtin_table(void **state)
{
    size_t n = 0;
    const struct kx_rule *r = kx_rules_builtin(&n);

    assert_int_equal(n, 1);
    assert_string_equal(r[0].name, "Terminal shell in container");
    assert_int_equal(r[0].priority, KX_PRI_NOTICE);
    assert_string_equal(r[0].source, "syscall");
    assert_non_null(r[0].match);
}

static void test_match(void **state)
{
    struct kx_container in = ctr_of(ID64, NULL), host = ctr_of(NULL, NULL);
    struct kx_container pod_only = ctr_of(NULL, POD);
    const struct kx_rule *m[4];
    struct kx_proc_event ev;

    ev = shell_event(&in);
    assert_int_equal(kx_rules_match(&ev, m, 4), 1);
    assert_string_equal(m[0]->name, "Terminal shell in container");
    assert_true(kx_rules_in_container(&ev));

    /* Every shell binary, no tty needed. */
    ev.name = "fish";
    assert_int_equal(kx_rules_match(&ev, m, 4), 1);

    /* Not a shell. */
    ev.name = "python3";
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);
    /* A shell-named exe path does not matter, proc.name does. */
    ev.name = "cat";
    ev.exepath = "/bin/sh";
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);

    /* Outside any container: host, empty attribution, pod only. */
    ev = shell_event(NULL);
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);
    assert_false(kx_rules_in_container(&ev));
    ev = shell_event(&host);
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);
    ev = shell_event(&pod_only);
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);

    /* Other event types do not trigger a process-spawn rule. */
    ev = shell_event(&in);
    ev.evt_type = "open";
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);
    ev.evt_type = NULL;
    assert_int_equal(kx_rules_match(&ev, m, 4), 0);

    /* Bounds and NULLs. */
    ev = shell_event(&in);
    assert_int_equal(kx_rules_match(&ev, m, 0), 0);
    assert_int_equal(kx_rules_match(NULL, m, 4), 0);
    assert_int_equal(kx_rules_match(&ev, NULL, 4), 0);
}

static const char *field(struct kx_alert *a, const char *name, char *buf, size_t len)
{
    const char *v = kx_alert_field_str(a, name, buf, len);

    if (!v)
        fail_msg("alert has no field %s", name);
    return v;
}

static void test_alert(void **state)
{
    struct kx_container ctr = ctr_of(ID64, POD);
    struct kx_proc_event ev = shell_event(&ctr);
    const struct kx_rule *m[1];
    struct kx_alert *a, *back;
    char buf[512], err[KX_ALERT_ERR_LEN];
    const cJSON *tags;
    char *json;

    assert_int_equal(kx_rules_match(&ev, m, 1), 1);
    a = kx_rules_alert(m[0], &ev, "node-a");
    assert_non_null(a);
    json = kx_alert_to_json(a);
    assert_non_null(json);

    /* What the hub sees: parse the JSON back with the same model. */
    back = kx_alert_parse(json, strlen(json), err, sizeof(err));
    if (!back)
        fail_msg("sensor alert rejected by kx_alert_parse: %s\n%s", err, json);
    assert_string_equal(back->rule, "Terminal shell in container");
    assert_int_equal(back->priority, KX_PRI_NOTICE);
    assert_string_equal(back->source, "syscall");
    assert_string_equal(back->hostname, "node-a");
    assert_int_equal(back->time_ns, T0);
    assert_int_equal(strlen(back->uuid), KX_ALERT_UUID_LEN);
    assert_string_equal(back->uuid, a->uuid);
    assert_string_equal(back->output,
                        "10:01:02.123456789: Notice A shell was spawned in a container "
                        "(evt_type=execve user=root user_uid=0 process=sh proc_exepath=/bin/sh "
                        "parent=bash command=sh -c true container_id=" ID12
                        " container_full_id=" ID64 " k8s_pod_uid=" POD ")");

    tags = kx_alert_field(back, "tags");
    assert_non_null(tags);
    assert_int_equal(cJSON_GetArraySize(tags), 4);
    assert_string_equal(cJSON_GetArrayItem(tags, 0)->valuestring, "container");
    assert_string_equal(cJSON_GetArrayItem(tags, 1)->valuestring, "shell");
    assert_string_equal(cJSON_GetArrayItem(tags, 2)->valuestring, "mitre_execution");
    assert_string_equal(cJSON_GetArrayItem(tags, 3)->valuestring, "T1059");

    assert_string_equal(field(back, "evt.type", buf, sizeof(buf)), "execve");
    assert_string_equal(field(back, "proc.name", buf, sizeof(buf)), "sh");
    assert_string_equal(field(back, "proc.exepath", buf, sizeof(buf)), "/bin/sh");
    assert_string_equal(field(back, "proc.cmdline", buf, sizeof(buf)), "sh -c true");
    assert_string_equal(field(back, "proc.pname", buf, sizeof(buf)), "bash");
    assert_string_equal(field(back, "user.name", buf, sizeof(buf)), "root");
    assert_string_equal(field(back, "container.id", buf, sizeof(buf)), ID12);
    assert_string_equal(field(back, "container.full_id", buf, sizeof(buf)), ID64);
    assert_string_equal(field(back, "k8s.pod.uid", buf, sizeof(buf)), POD);
    /* Numbers are JSON numbers, as Falco sends them. */
    assert_true(cJSON_IsNumber(kx_alert_field(back, "proc.pid")));
    assert_int_equal(kx_alert_field(back, "proc.pid")->valuedouble, 4242);
    assert_int_equal(kx_alert_field(back, "proc.ppid")->valuedouble, 4200);
    assert_true(cJSON_IsNumber(kx_alert_field(back, "user.uid")));
    assert_int_equal(kx_alert_field(back, "user.uid")->valuedouble, 0);

    kx_alert_free(back);
    kx_alert_free(a);
    free(json);
}

static void test_alert_unknowns(void **state)
{
    struct kx_container ctr = ctr_of(ID64, NULL);
    struct kx_proc_event ev = shell_event(&ctr);
    const struct kx_rule *r = kx_rules_builtin(NULL);
    struct kx_alert *a;
    char buf[256];

    /* Unknown user and cmdline, no pod: Falco's "<NA>", no k8s.pod.uid. */
    ev.user_name = NULL;
    ev.cmdline = NULL;
    ev.uid = 1000;
    a = kx_rules_alert(r, &ev, "node-b");
    assert_non_null(a);
    assert_string_equal(field(a, "user.name", buf, sizeof(buf)), "<NA>");
    assert_string_equal(field(a, "proc.cmdline", buf, sizeof(buf)), "<NA>");
    assert_null(kx_alert_field(a, "k8s.pod.uid"));
    assert_non_null(strstr(a->output, "user=<NA> user_uid=1000 "));
    assert_null(strstr(a->output, "k8s_pod_uid"));
    kx_alert_free(a);

    /* time 0 = now; bad arguments fail with EINVAL. */
    ev.time_ns = 0;
    a = kx_rules_alert(r, &ev, "node-b");
    assert_non_null(a);
    assert_true(a->time_ns > T0 - 86400LL * 1000000000LL * 365);
    kx_alert_free(a);
    errno = 0;
    assert_null(kx_rules_alert(NULL, &ev, "n"));
    assert_int_equal(errno, EINVAL);
    assert_null(kx_rules_alert(r, NULL, "n"));
}

static void test_alert_huge_cmdline(void **state)
{
    struct kx_container ctr = ctr_of(ID64, NULL);
    struct kx_proc_event ev = shell_event(&ctr);
    const struct kx_rule *r = kx_rules_builtin(NULL);
    size_t n = 64 * 1024;
    char *big = malloc(n + 1), *buf = malloc(n + 1);
    struct kx_alert *a;

    assert_non_null(big);
    assert_non_null(buf);
    memset(big, 'x', n);
    big[n] = '\0';
    ev.cmdline = big;
    a = kx_rules_alert(r, &ev, "node-a");
    assert_non_null(a);
    /* The field keeps the whole command, the one-line output is bounded. */
    assert_string_equal(field(a, "proc.cmdline", buf, n + 1), big);
    assert_true(strlen(a->output) < 16 * 1024);
    assert_non_null(strstr(a->output, "container_id=" ID12));
    kx_alert_free(a);
    free(big);
    free(buf);
}

static void expect_cmdline(const char *name, const char *raw, size_t len, size_t outlen,
                           const char *want)
{
    char out[256];

    assert_true(outlen <= sizeof(out));
    memset(out, '#', sizeof(out));
    kx_rules_format_cmdline(name, raw, len, out, outlen);
    if (strcmp(out, want) != 0)
        fail_msg("cmdline: got \"%s\", want \"%s\"", out, want);
    assert_true(strlen(out) < outlen);
}

static void test_format_cmdline(void **state)
{
    static const char sh[] = "/bin/sh\0-c\0true\0";

    expect_cmdline("sh", sh, sizeof(sh) - 1, 256, "sh -c true");
    expect_cmdline(NULL, sh, sizeof(sh) - 1, 256, "/bin/sh -c true");
    /* No trailing NUL (cmdline rewritten by the process). */
    expect_cmdline("sh", sh, sizeof(sh) - 2, 256, "sh -c true");
    /* Only argv[0]. */
    expect_cmdline("bash", "bash\0", 5, 256, "bash");
    expect_cmdline("bash", "", 0, 256, "bash");
    expect_cmdline("bash", NULL, 10, 256, "bash");
    expect_cmdline(NULL, NULL, 0, 256, "");
    /* Empty arguments keep their place. */
    expect_cmdline("sh", "sh\0a\0\0b\0", 8, 256, "sh a  b");
    /* Spaces inside an argument are kept as is (Falco does not quote). */
    expect_cmdline("sh", "sh\0-c\0echo hi there\0", 20, 256, "sh -c echo hi there");
    /* Control and high bytes become '.'. */
    expect_cmdline("sh", "sh\0a\x01\x1b[31m\xff\0", 11, 256, "sh a..[31m.");
    expect_cmdline("s\n", "x\0", 2, 256, "s.");
    /* Truncated: ends in "..." within outlen. */
    expect_cmdline("sh", sh, sizeof(sh) - 1, 8, "sh -...");
    expect_cmdline("sh", sh, sizeof(sh) - 1, 11, "sh -c true");
    expect_cmdline("sh", sh, sizeof(sh) - 1, 10, "sh -c ...");
    expect_cmdline("abcdef", NULL, 0, 4, "...");
    expect_cmdline("abcdef", NULL, 0, 3, "ab");
    expect_cmdline("abcdef", NULL, 0, 1, "");
    /* outlen 0 and NULL out must not crash. */
    kx_rules_format_cmdline("sh", sh, sizeof(sh) - 1, NULL, 10);
}

static void test_detect_fill(void **state)
{
    struct kx_exec_event e;
    struct kx_container ctr = ctr_of(ID64, NULL), none = ctr_of(NULL, NULL);
    struct kx_proc_event ev;

    memset(&e, 0, sizeof(e));
    e.hdr.type = KX_EVENT_EXEC;
    e.hdr.size = sizeof(e);
    e.ktime_ns = 1000;
    e.pid = 11;
    e.tgid = 10;
    e.ppid = 9;
    e.uid = 1000;
    strcpy(e.comm, "sh");
    strcpy(e.pcomm, "runc");
    strcpy(e.filename, "/bin/sh");

    kx_detect_fill(&e, &ctr, T0, &ev);
    assert_string_equal(ev.evt_type, "execve");
    assert_int_equal(ev.time_ns, T0 + 1000);
    assert_string_equal(ev.name, "sh");
    assert_string_equal(ev.pname, "runc");
    assert_string_equal(ev.exepath, "/bin/sh");
    assert_int_equal(ev.pid, 10); /* the process, not the thread */
    assert_int_equal(ev.ppid, 9);
    assert_int_equal(ev.uid, 1000);
    assert_ptr_equal(ev.ctr, &ctr);
    assert_null(ev.cmdline);

    kx_detect_fill(&e, &none, 0, &ev);
    assert_null(ev.ctr);
    kx_detect_fill(&e, NULL, 0, &ev);
    assert_null(ev.ctr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_list),     cmocka_unit_test(test_builtin_table),
        cmocka_unit_test(test_match),          cmocka_unit_test(test_alert),
        cmocka_unit_test(test_alert_unknowns), cmocka_unit_test(test_alert_huge_cmdline),
        cmocka_unit_test(test_format_cmdline), cmocka_unit_test(test_detect_fill),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
