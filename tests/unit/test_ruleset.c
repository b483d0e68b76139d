/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ruleset.c - the rule engine (sensor/ruleset.c, rule_expr.c,
 * rule_fields.c, rule_output.c): Falco's condition language operator by
 * operator, lists/macros/append/override/exceptions, diagnostics with
 * file:line:col, kinds and per-kind dispatch, the open-filter and kill
 * analyses, output formatting and the alert's JSON shape, hostile input,
 * and Falco's own rules file (loaded leniently, with a micro-benchmark).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sensor/rule_expr.h"
#include "../../sensor/ruleset.h"
#include "util.h"

#define T0 1795428062123456789LL /* 2026-11-23T10:01:02.123456789Z */
#define ID64 "3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6c5"
#define ID12 "3ad7b26ded6d"
#define POD "1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5f"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

struct fx {
    struct kx_sevent ev;
    struct kx_sproc anc[4];
    const char *label_k[2];
    const char *label_v[2];
};

/* bash -i in a container, parent containerd-shim, with a tty */
static void fx_exec(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    f->anc[0] = (struct kx_sproc){.pid = 4200,
                                  .ppid = 4100,
                                  .name = "containerd-shim",
                                  .exe = "/usr/bin/containerd-shim",
                                  .exepath = "/usr/bin/containerd-shim",
                                  .cmdline = "containerd-shim -namespace k8s.io"};
    f->anc[1] = (struct kx_sproc){.pid = 4100,
                                  .ppid = 1,
                                  .name = "containerd",
                                  .exepath = "/usr/bin/containerd",
                                  .cmdline = "containerd"};
    f->anc[2] = (struct kx_sproc){.pid = 1,
                                  .ppid = 0,
                                  .name = "systemd",
                                  .exepath = "/usr/lib/systemd/systemd",
                                  .cmdline = "systemd"};
    f->label_k[0] = "app";
    f->label_v[0] = "web";
    f->label_k[1] = "tier";
    f->label_v[1] = "front";
    f->ev = (struct kx_sevent){
        .kind = KX_K_EXEC,
        .type = "execve",
        .dir = '<',
        .time_ns = T0,
        .res = 0,
        .res_str = "SUCCESS",
        .proc = {.pid = 4242,
                 .tid = 4242,
                 .ppid = 4200,
                 .start_ns = 123456789,
                 .name = "bash",
                 .exe = "bash",
                 .exepath = "/usr/bin/bash",
                 .args = "-i",
                 .cmdline = "bash -i",
                 .cwd = "/root/",
                 .tty = 34816,
                 .uid = 0,
                 .gid = 0,
                 .euid = 0,
                 .loginuid = -1,
                 .user = "root",
                 .group = "root",
                 .exe_upper_layer = true},
        .anc = {&f->anc[0], &f->anc[1], &f->anc[2]},
        .n_anc = 3,
        .fd_num = -1,
        .fd_sport = -1,
        .fd_cport = -1,
        .fd_lport = -1,
        .fd_rport = -1,
        .container_id = ID12,
        .container_full_id = ID64,
        .container_name = "web",
        .container_runtime = "containerd",
        .pod = {.ns = "shop",
                .name = "web-1",
                .uid = POD,
                .label_k = f->label_k,
                .label_v = f->label_v,
                .n_labels = 2},
        .hostname = "node-a",
    };
}

/* cat opening a path on the host */
static void fx_open(struct fx *f, const char *path, bool write)
{
    fx_exec(f);
    f->ev.kind = KX_K_OPENAT;
    f->ev.type = "openat";
    f->ev.res = 3;
    f->ev.proc.name = "cat";
    f->ev.proc.exe = "cat";
    f->ev.proc.exepath = "/usr/bin/cat";
    f->ev.proc.args = path;
    f->ev.proc.cmdline = "cat";
    f->ev.proc.tty = 0;
    f->ev.fd_name = path;
    f->ev.fd_num = 3;
    f->ev.fd_typechar = 'f';
    f->ev.fd_type = "file";
    f->ev.open_read = !write;
    f->ev.open_write = write;
    f->ev.flags = write ? KX_F_OPEN_WRITE : 0;
    f->ev.args[0] = (struct kx_sarg){"fd", "3"};
    f->ev.args[1] = (struct kx_sarg){"name", path};
    f->ev.args[2] = (struct kx_sarg){"flags", write ? "O_WRONLY|O_CREAT|O_TRUNC" : "O_RDONLY"};
    f->ev.n_args = 3;
    f->ev.container_id = "host";
    f->ev.container_full_id = "host";
    f->ev.container_name = NULL;
    f->ev.container_runtime = "";
    memset(&f->ev.pod, 0, sizeof(f->ev.pod));
}

static bool diag_has(const struct kx_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], needle))
            return true;
    return false;
}

static void diag_dump(const struct kx_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "  diag: %s\n", d->msgs[i]);
}

static struct kx_ruleset *load_ok(const char *yaml, unsigned flags)
{
    struct kx_diag d = {0};
    struct kx_ruleset *rs = NULL;
    int rc = kx_ruleset_load_string("t.yaml", yaml, flags, &rs, &d);

    if (rc != 0)
        diag_dump(&d);
    assert_int_equal(rc, 0);
    assert_non_null(rs);
    kx_diag_free(&d);
    return rs;
}

/* Loading must fail, with a diagnostic containing each of the needles. */
static void load_fails(const char *yaml, unsigned flags, ...)
{
    struct kx_diag d = {0};
    struct kx_ruleset *rs = NULL;
    int rc = kx_ruleset_load_string("t.yaml", yaml, flags, &rs, &d);
    va_list ap;
    const char *needle;
    bool ok = true;

    assert_true(rc < 0);
    assert_null(rs);
    va_start(ap, flags);
    while ((needle = va_arg(ap, const char *))) {
        if (!diag_has(&d, needle)) {
            fprintf(stderr, "  missing diagnostic \"%s\"\n", needle);
            ok = false;
        }
    }
    va_end(ap);
    if (!ok)
        diag_dump(&d);
    assert_true(ok);
    kx_diag_free(&d);
}

/* One rule with this condition (a literal block, so anything goes). */
static char *rule_yaml(const char *cond)
{
    char *y = NULL;

    assert_true(asprintf(&y,
                         "- rule: t\n"
                         "  desc: test\n"
                         "  condition: |\n"
                         "    %s\n"
                         "  output: out\n"
                         "  priority: notice\n",
                         cond) > 0);
    return y;
}

/* Does cond hold for ev (evt.type restriction aside: dispatch is tested
 * separately, here the compiled tree is evaluated directly)? */
static bool holds(const char *cond, const struct kx_sevent *ev)
{
    char *y = rule_yaml(cond);
    struct kx_ruleset *rs = load_ok(y, 0);
    const struct kx_rule *r = kx_ruleset_rule(rs, 0);

    assert_non_null(r);
    bool v = kx_expr_eval(r->cond, ev);
    kx_ruleset_free(rs);
    free(y);
    return v;
}

static void fails_with(const char *cond, const char *needle)
{
    char *y = rule_yaml(cond);
    load_fails(y, 0, needle, NULL);
    free(y);
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                 */
/* ------------------------------------------------------------------------ */

static void test_operators_strings(void **state)
{
    struct fx f;
    const struct kx_sevent *ev = &f.ev;

    fx_exec(&f);
    assert_true(holds("proc.name = bash", ev));
    assert_true(holds("proc.name == bash", ev));
    assert_false(holds("proc.name = bas", ev));
    assert_true(holds("proc.name != sh", ev));
    assert_false(holds("proc.name != bash", ev));
    assert_true(holds("proc.name < bat and proc.name > bas", ev));
    assert_true(holds("proc.name <= bash and proc.name >= bash", ev));
    assert_true(holds("proc.cmdline contains \"-i\"", ev));
    assert_false(holds("proc.cmdline contains -x", ev));
    assert_true(holds("proc.cmdline icontains BASH", ev));
    assert_true(holds("proc.exepath startswith /usr/", ev));
    assert_true(holds("proc.exepath endswith /bash", ev));
    assert_false(holds("proc.exepath endswith /sh", ev));
    assert_true(holds("proc.exepath glob '/usr/*/ba?h'", ev));
    assert_true(holds("proc.exepath glob '/usr/bin/[a-c]ash'", ev));
    assert_false(holds("proc.exepath glob '/usr/bin/[!b]ash'", ev));
    assert_true(holds("proc.exepath iglob '/USR/*/BASH'", ev));
    assert_false(holds("proc.exepath glob '/USR/*/BASH'", ev));
    assert_true(holds("proc.exepath pmatch (/usr/bin, /opt)", ev));
    assert_true(holds("proc.exepath pmatch (/usr/)", ev));
    assert_false(holds("proc.exepath pmatch (/usr/bi, /opt)", ev));
    assert_true(holds("proc.exepath pmatch (/usr/bin/bash)", ev));
    assert_true(holds("proc.exepath pmatch (/)", ev));
    assert_true(holds("proc.name in (sh, bash, zsh)", ev));
    assert_false(holds("proc.name in (sh, zsh)", ev));
    assert_true(holds("proc.name intersects (bash)", ev));
    assert_true(holds("proc.name bcontains 6173", ev));   /* "as" */
    assert_true(holds("proc.name bstartswith 6261", ev)); /* "ba" */
    assert_false(holds("proc.name bstartswith 6173", ev));
    assert_true(holds("proc.name exists", ev));
    /* quoted strings and escapes */
    assert_true(holds("proc.cmdline = \"bash -i\"", ev));
    assert_true(holds("proc.cmdline = 'bash -i'", ev));
    f.ev.proc.cmdline = "sh -c \"x\" 'y'";
    assert_true(holds("proc.cmdline = \"sh -c \\\"x\\\" 'y'\"", ev));
    assert_true(holds("proc.cmdline contains '\"x\"'", ev));
}

static void test_operators_numbers_bools(void **state)
{
    struct fx f;
    const struct kx_sevent *ev = &f.ev;

    fx_exec(&f);
    assert_true(holds("proc.pid = 4242", ev));
    assert_true(holds("proc.pid = 0x1092", ev));
    assert_true(holds("proc.pid != 1", ev));
    assert_true(holds("proc.pid > 4000 and proc.pid < 5000", ev));
    assert_true(holds("proc.pid >= 4242 and proc.pid <= 4242", ev));
    assert_true(holds("proc.pid in (1, 2, 4242)", ev));
    assert_false(holds("proc.pid in (1, 2)", ev));
    assert_true(holds("user.loginuid = -1", ev));
    assert_true(holds("proc.tty != 0", ev));
    assert_true(holds("proc.is_exe_upper_layer = true", ev));
    assert_true(holds("proc.is_exe_from_memfd = false", ev));
    assert_true(holds("proc.is_exe_from_memfd != true", ev));
    assert_true(holds("evt.failed = false", ev));
    assert_true(holds("evt.rawres >= 0", ev));
    assert_true(holds("evt.num > 0 and not evt.num = 0", ev)); /* never_true / always_true idioms */
    fails_with("proc.pid = abc", "invalid number \"abc\" for numeric field proc.pid");
    fails_with("proc.pid contains 1", "operator contains is not supported on numeric field");
    fails_with("proc.is_exe_upper_layer = maybe", "expected true or false");
    fails_with("proc.pid in (1, x)", "invalid number \"x\"");
    fails_with("proc.name bcontains 6", "hex");
}

static void test_operators_absent(void **state)
{
    struct fx f;
    const struct kx_sevent *ev = &f.ev;

    fx_exec(&f);
    f.ev.proc.user = NULL; /* user.name absent */
    f.ev.n_anc = 0;        /* no parent known */
    f.ev.fd_name = NULL;
    static const char *const ops[] = {
        "user.name = root",
        "user.name != root",
        "user.name < z",
        "user.name contains r",
        "user.name icontains R",
        "user.name startswith r",
        "user.name endswith t",
        "user.name glob '*'",
        "user.name pmatch (/)",
        "user.name in (root, x)",
        "user.name intersects (root)",
        "user.name exists",
        "proc.pname = x",
        "proc.pname != x",
        "proc.aname[1] = x",
        "proc.aname != x",
        "fd.name != /x",
        "fd.directory = /",
        "fd.sport = 22",
        "fd.sport != 22",
        "k8s.pod.label[nope] != x",
        "container.image.repository != x",
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (holds(ops[i], ev)) {
            fprintf(stderr, "  absent value made \"%s\" true\n", ops[i]);
            fail();
        }
    }
    assert_true(holds("not user.name exists", ev));
    assert_true(holds("not proc.pname exists", ev));
    assert_true(holds("not user.name = root", ev));
}

static void test_fields(void **state)
{
    struct fx f;
    const struct kx_sevent *ev = &f.ev;

    fx_exec(&f);
    assert_true(holds("proc.pname = containerd-shim", ev));
    assert_true(holds("proc.aname[0] = bash", ev));
    assert_true(holds("proc.aname[1] = containerd-shim", ev));
    assert_true(holds("proc.aname[2] = containerd", ev));
    assert_true(holds("proc.aname[3] = systemd", ev));
    assert_false(holds("proc.aname[4] exists", ev));
    assert_true(holds("proc.aname = systemd", ev)); /* any ancestor */
    assert_false(holds("proc.aname = bash", ev));   /* not the process itself */
    assert_true(holds("proc.aname in (nginx, containerd)", ev));
    assert_true(holds("proc.apid[2] = 4100", ev));
    assert_true(holds("proc.apid = 1", ev));
    assert_true(holds("proc.pexepath = /usr/bin/containerd-shim", ev));
    assert_true(holds("proc.pcmdline startswith containerd-shim", ev));
    assert_true(holds("proc.aexepath[3] = /usr/lib/systemd/systemd", ev));
    assert_true(holds("proc.exe = bash and proc.args = -i and proc.cwd = /root/", ev));
    assert_true(
        holds("user.uid = 0 and user.name = root and group.gid = 0 and group.name = root", ev));
    assert_true(holds("container.id = " ID12 " and container.full_id = " ID64, ev));
    assert_true(holds("container.id != host and container.name = web", ev));
    assert_true(holds("container.type = containerd", ev));
    assert_true(holds("k8s.ns.name = shop and k8s.pod.name = web-1 and k8s.pod.uid = " POD, ev));
    assert_true(holds("k8s.pod.label[app] = web and k8s.pod.label.tier = front", ev));
    assert_true(holds("k8s.pod.labels = app:web", ev));
    assert_true(holds("k8s.pod.labels in (tier:front)", ev));
    assert_true(holds("evt.type = execve and evt.dir = < and evt.res = SUCCESS", ev));
    assert_true(holds("evt.hostname = node-a", ev));
    assert_true(holds("proc.start_ns = 123456789", ev));

    fx_open(&f, "/etc/pam.d/sshd", false);
    assert_true(holds("fd.name = /etc/pam.d/sshd", ev));
    assert_true(holds("fd.directory = /etc/pam.d", ev));
    assert_true(holds("fd.filename = sshd", ev));
    assert_true(holds("fd.typechar = f and fd.typechar = 'f' and fd.type = file", ev));
    assert_true(holds("fd.num >= 0", ev));
    assert_true(holds("evt.is_open_read = true and evt.is_open_write = false", ev));
    assert_true(holds("evt.arg.flags contains O_RDONLY", ev));
    assert_true(holds("evt.arg[flags] = O_RDONLY", ev));
    assert_true(holds("evt.arg[1] = /etc/pam.d/sshd", ev));
    assert_true(holds("evt.arg.fd = 3 and evt.arg.fd = 03 and evt.arg.fd > 2", ev)); /* numeric */
    assert_false(holds("evt.arg.nope exists", ev));
    fx_open(&f, "/x", false);
    assert_true(holds("fd.directory = / and fd.filename = x", ev));

    /* sockets */
    fx_exec(&f);
    f.ev.kind = KX_K_CONNECT;
    f.ev.type = "connect";
    f.ev.fd_name = "10.0.0.1:40000->127.0.0.1:22";
    f.ev.fd_typechar = '4';
    f.ev.fd_type = "ipv4";
    f.ev.fd_cip = "10.0.0.1";
    f.ev.fd_cport = 40000;
    f.ev.fd_sip = "127.0.0.1";
    f.ev.fd_sport = 22;
    f.ev.fd_l4proto = "tcp";
    assert_true(holds("fd.sip = 127.0.0.1 and fd.sport = 22 and fd.sip.name = 127.0.0.1", ev));
    assert_true(holds("fd.cip = 10.0.0.1 and fd.cport = 40000 and fd.l4proto = tcp", ev));
    assert_true(holds("fd.ip = 127.0.0.1 and fd.ip = 10.0.0.1 and fd.port = 22", ev));
    assert_true(holds("fd.typechar = 4", ev));
    assert_false(holds("fd.directory exists or fd.filename exists", ev));
}

static void test_precedence(void **state)
{
    struct fx f;

    fx_exec(&f);
    /* not a and b or c  ==  ((not a) and b) or c */
    for (int m = 0; m < 8; m++) {
        bool a = m & 1, b = m & 2, c = m & 4;
        f.ev.proc.name = a ? "a" : "x";
        f.ev.proc.pid = b ? 1 : 2;
        f.ev.proc.uid = c ? 0 : 1000;
        bool want = (!a && b) || c;
        assert_int_equal(holds("not proc.name = a and proc.pid = 1 or user.uid = 0", &f.ev), want);
        assert_int_equal(holds("((not proc.name = a) and proc.pid = 1) or user.uid = 0", &f.ev),
                         want);
        /* explicit grouping changes it */
        assert_int_equal(holds("not (proc.name = a and proc.pid = 1 or user.uid = 0)", &f.ev),
                         !((a && b) || c));
        assert_int_equal(holds("not not proc.name = a", &f.ev), a);
        assert_int_equal(holds("not(proc.name = a)", &f.ev), !a);
    }
}

static void test_glob_match(void **state)
{
    assert_true(kx_glob_match("*", 1, "", 0, false));
    assert_true(kx_glob_match("a*b*c", 5, "aXXbYYc", 7, false));
    assert_false(kx_glob_match("a*b*c", 5, "aXXbYY", 6, false));
    assert_true(kx_glob_match("*../*../*", 9, "/x/../../etc", 12, false));
    assert_true(kx_glob_match("/home/*/.ssh/*", 14, "/home/u/.ssh/id_rsa", 19, false));
    assert_true(kx_glob_match("[]x]", 4, "]", 1, false));
    assert_true(kx_glob_match("[", 1, "[", 1, false)); /* no closing ']': a literal */
    assert_false(kx_glob_match("?", 1, "", 0, false));
}

/* ------------------------------------------------------------------------ */
/* Lists, macros, append, override, exceptions                               */
/* ------------------------------------------------------------------------ */

static void test_lists(void **state)
{
    struct fx f;
    fx_exec(&f);
    struct kx_ruleset *rs =
        load_ok("- list: a\n"
                "  items: [sh, '\"(systemd)\"']\n"
                "- list: b\n"
                "  items: [a, zsh, c]\n" /* c is defined later */
                "- list: c\n"
                "  items: [\"puma reactor\", 'ba\"sh']\n"
                "- list: empty\n"
                "  items: []\n"
                "- rule: r1\n"
                "  desc: d\n"
                "  condition: proc.name in (b, fish)\n"
                "  output: o\n"
                "  priority: notice\n"
                "- rule: r2\n"
                "  desc: d\n"
                "  condition: proc.name in (empty)\n"
                "  output: o\n"
                "  priority: notice\n"
                "- rule: r3\n"
                "  desc: d\n"
                "  condition: not proc.name in (empty) and proc.name in (\"b\")\n"
                "  output: o\n"
                "  priority: notice\n",
                0);
    const struct kx_rule *r1 = kx_ruleset_find(rs, "r1"), *r2 = kx_ruleset_find(rs, "r2"),
                         *r3 = kx_ruleset_find(rs, "r3");
    const char *yes[] = {"sh", "(systemd)", "zsh", "puma reactor", "ba\"sh", "fish"};
    const char *no[] = {"a", "b", "c", "bash", "\"(systemd)\""};
    for (size_t i = 0; i < 6; i++) {
        f.ev.proc.name = yes[i];
        if (!kx_expr_eval(r1->cond, &f.ev)) {
            fprintf(stderr, "  %s should be in the list\n", yes[i]);
            fail();
        }
    }
    for (size_t i = 0; i < 5; i++) {
        f.ev.proc.name = no[i];
        assert_false(kx_expr_eval(r1->cond, &f.ev));
    }
    assert_false(kx_expr_eval(r2->cond, &f.ev));
    f.ev.proc.name = "b"; /* a quoted value never names a list */
    assert_true(kx_expr_eval(r3->cond, &f.ev));
    kx_ruleset_free(rs);

    load_fails(
        "- list: x\n  items: [y]\n- list: y\n  items: [z, x]\n"
        "- rule: r\n  desc: d\n  condition: proc.name in (x)\n  output: o\n  priority: info\n",
        0, "includes itself", NULL);
    load_fails("- list: x\n  items: notalist\n", 0, "t.yaml:2:10: items must be a list", NULL);
}

static void test_macros(void **state)
{
    struct fx f;
    fx_exec(&f);
    struct kx_ruleset *rs = load_ok("- macro: shell\n"
                                    "  condition: proc.name in (bash, sh)\n"
                                    "- macro: in_ctr\n"
                                    "  condition: container.id != host\n"
                                    "- macro: shell_in_ctr\n"
                                    "  condition: shell and in_ctr and later\n"
                                    "- macro: later\n" /* defined after its use */
                                    "  condition: proc.tty != 0\n"
                                    "- rule: r\n"
                                    "  desc: d\n"
                                    "  condition: evt.type = execve and shell_in_ctr\n"
                                    "  output: o\n"
                                    "  priority: notice\n",
                                    0);
    const struct kx_rule *r = kx_ruleset_find(rs, "r");
    assert_true(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.tty = 0;
    assert_false(kx_expr_eval(r->cond, &f.ev));
    kx_ruleset_free(rs);

    load_fails("- macro: a\n  condition: b and proc.pid > 0\n"
               "- macro: b\n  condition: (c)\n"
               "- macro: c\n  condition: not a\n"
               "- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: info\n",
               0, "macro cycle: a -> b -> c -> a", NULL);
    load_fails("- rule: r\n  desc: d\n  condition: nope and proc.pid > 0\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:14: undefined macro 'nope'", NULL);
    load_fails("- macro: bad-name\n  condition: proc.pid > 0\n", 0, "invalid macro name", NULL);
    /* a macro with a syntax error is an error even when unused */
    load_fails("- macro: m\n  condition: proc.pid >\n", 0, "t.yaml:2:24: expected a value",
               "(macro 'm')", NULL);
}

static const char base_rules[] = "- list: shells\n"
                                 "  items: [bash]\n"
                                 "- macro: spawned\n"
                                 "  condition: evt.type = execve\n"
                                 "- rule: Shell\n"
                                 "  desc: a shell\n"
                                 "  condition: spawned and proc.name in (shells)\n"
                                 "  output: shell %proc.name\n"
                                 "  priority: notice\n"
                                 "  tags: [a, b]\n";

static struct kx_ruleset *load_with(const char *extra)
{
    char *y;
    assert_true(asprintf(&y, "%s%s", base_rules, extra) > 0);
    struct kx_ruleset *rs = load_ok(y, 0);
    free(y);
    return rs;
}

static void test_append_legacy(void **state)
{
    struct fx f;
    fx_exec(&f);
    f.ev.proc.name = "zsh";
    struct kx_ruleset *rs = load_with("- list: shells\n  items: [zsh]\n  append: true\n"
                                      "- macro: spawned\n  condition: and proc.tty != 0\n"
                                      "  append: true\n"
                                      "- rule: Shell\n  condition: and user.uid = 0\n"
                                      "  append: true\n");
    const struct kx_rule *r = kx_ruleset_find(rs, "Shell");
    assert_true(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.uid = 1;
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.uid = 0;
    f.ev.proc.tty = 0;
    assert_false(kx_expr_eval(r->cond, &f.ev));
    kx_ruleset_free(rs);

    load_fails("- list: nope\n  items: [x]\n  append: true\n", 0,
               "t.yaml:1:3: list 'nope' appends to a list that is not defined", NULL);
    char *y;
    assert_true(asprintf(&y, "%s- rule: Shell\n  append: true\n  output: x\n", base_rules) > 0);
    load_fails(y, 0, "only condition and exceptions", NULL);
    free(y);
}

static void test_override(void **state)
{
    struct fx f;
    fx_exec(&f);
    f.ev.proc.name = "zsh";
    struct kx_ruleset *rs = load_with("- list: shells\n  items: [zsh]\n"
                                      "  override:\n    items: append\n"
                                      "- rule: Shell\n"
                                      "  condition: and user.uid = 0\n"
                                      "  output: changed %user.name\n"
                                      "  priority: critical\n"
                                      "  tags: [c]\n"
                                      "  desc: new desc\n"
                                      "  override:\n"
                                      "    condition: append\n"
                                      "    output: replace\n"
                                      "    priority: replace\n"
                                      "    tags: append\n"
                                      "    desc: replace\n");
    const struct kx_rule *r = kx_ruleset_find(rs, "Shell");
    assert_true(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "bash";
    assert_true(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.uid = 5;
    assert_false(kx_expr_eval(r->cond, &f.ev));
    assert_int_equal(kx_rule_priority(r), KX_PRI_CRITICAL);
    assert_string_equal(kx_rule_desc(r), "new desc");
    assert_int_equal(r->ntags, 3);
    assert_string_equal(r->tags[2], "c");
    struct kx_alert *a = kx_rule_alert(r, &f.ev);
    assert_non_null(a);
    assert_non_null(strstr(a->output, "Critical changed root"));
    kx_alert_free(a);
    kx_ruleset_free(rs);

    /* replace */
    rs = load_with("- list: shells\n  items: [zsh]\n  override:\n    items: replace\n"
                   "- macro: spawned\n  condition: evt.type = open\n"
                   "  override:\n    condition: replace\n"
                   "- rule: Shell\n  tags: [z]\n  override:\n    tags: replace\n");
    r = kx_ruleset_find(rs, "Shell");
    f.ev.proc.name = "bash";
    f.ev.type = "open";
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "zsh";
    assert_true(kx_expr_eval(r->cond, &f.ev));
    assert_int_equal(r->ntags, 1);
    assert_string_equal(r->tags[0], "z");
    kx_ruleset_free(rs);

    char *y;
    assert_true(asprintf(&y,
                         "%s- rule: Shell\n  priority: info\n  override:\n    priority: append\n",
                         base_rules) > 0);
    load_fails(y, 0, "t.yaml:14:5: rule 'Shell': 'priority' cannot be appended to", NULL);
    free(y);
    assert_true(asprintf(&y,
                         "%s- rule: Shell\n  priority: info\n  output: x\n"
                         "  override:\n    priority: replace\n",
                         base_rules) > 0);
    load_fails(y, 0, "t.yaml:13:3: rule 'Shell': 'output' is given but not listed under override",
               NULL);
    free(y);
    assert_true(asprintf(&y, "%s- rule: Shell\n  override:\n    output: replace\n", base_rules) >
                0);
    load_fails(y, 0, "override of 'output' but the item has no 'output'", NULL);
    free(y);
    assert_true(asprintf(&y,
                         "%s- rule: Shell\n  append: true\n  condition: x\n"
                         "  override:\n    condition: append\n",
                         base_rules) > 0);
    load_fails(y, 0, "'append' and 'override' cannot be used together", NULL);
    free(y);
    load_fails("- rule: Nope\n  priority: info\n  override:\n    priority: replace\n", 0,
               "rule 'Nope' overrides a rule that is not defined", NULL);
}

static void test_enabled(void **state)
{
    struct kx_ruleset *rs = load_with("- rule: Shell\n  enabled: false\n");
    size_t n;
    const struct kx_rule_note *notes;

    assert_int_equal(kx_ruleset_count(rs), 0);
    notes = kx_ruleset_notes(rs, &n);
    assert_int_equal(n, 1);
    assert_int_equal(notes[0].kind, KX_NOTE_DISABLED);
    kx_ruleset_free(rs);

    rs = load_with("- rule: Shell\n  enabled: false\n- rule: Shell\n  enabled: true\n");
    assert_int_equal(kx_ruleset_count(rs), 1);
    kx_ruleset_free(rs);

    rs = load_with("- rule: Shell\n  enabled: false\n  override:\n    enabled: replace\n");
    assert_int_equal(kx_ruleset_count(rs), 0);
    kx_ruleset_free(rs);

    /* a rule defined disabled, enabled by a later file */
    rs = load_ok("- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n"
                 "  priority: info\n  enabled: false\n"
                 "- rule: R\n  enabled: true\n",
                 0);
    assert_int_equal(kx_ruleset_count(rs), 1);
    kx_ruleset_free(rs);

    /* redefinition replaces */
    rs = load_with("- rule: Shell\n  desc: d\n  condition: evt.type = open\n  output: o2\n"
                   "  priority: debug\n");
    assert_int_equal(kx_ruleset_count(rs), 1);
    assert_int_equal(kx_rule_priority(kx_ruleset_rule(rs, 0)), KX_PRI_DEBUG);
    kx_ruleset_free(rs);
}

static void test_exceptions(void **state)
{
    struct fx f;
    fx_exec(&f);
    struct kx_ruleset *rs = load_ok("- list: allowed\n  items: [sshd]\n"
                                    "- rule: R\n"
                                    "  desc: d\n"
                                    "  condition: evt.type = execve\n"
                                    "  output: o\n"
                                    "  priority: info\n"
                                    "  exceptions:\n"
                                    "    - name: by_name\n"
                                    "      fields: proc.name\n"
                                    "      values: [zsh, allowed]\n"
                                    "    - name: pairs\n"
                                    "      fields: [proc.name, proc.exepath]\n"
                                    "      comps: [=, startswith]\n"
                                    "      values:\n"
                                    "        - [bash, /opt/]\n"
                                    "        - [ksh, /usr/]\n"
                                    "    - name: dirs\n"
                                    "      fields: [proc.name, proc.cwd]\n"
                                    "      comps: [in, pmatch]\n"
                                    "      values:\n"
                                    "        - [[fish, tcsh], [/srv]]\n"
                                    "- rule: R\n"
                                    "  exceptions:\n"
                                    "    - name: pairs\n"
                                    "      values:\n"
                                    "        - [bash, /usr/bin/]\n"
                                    "  override:\n"
                                    "    exceptions: append\n",
                                    0);
    const struct kx_rule *r = kx_ruleset_find(rs, "R");
    assert_false(kx_expr_eval(r->cond, &f.ev)); /* bash in /usr/bin: appended exception */
    f.ev.proc.exepath = "/bin/bash";
    assert_true(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "zsh";
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "sshd"; /* a list name in values */
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "ksh";
    f.ev.proc.exepath = "/usr/bin/ksh";
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.name = "tcsh";
    f.ev.proc.cwd = "/srv/app";
    assert_false(kx_expr_eval(r->cond, &f.ev));
    f.ev.proc.cwd = "/srv2";
    assert_true(kx_expr_eval(r->cond, &f.ev));
    kx_ruleset_free(rs);

    load_fails(
        "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n"
        "  priority: info\n  exceptions:\n    - name: e\n      fields: [proc.name, proc.pid]\n"
        "      values:\n        - [bash]\n",
        0, "t.yaml:7:7: rule 'R': exception 'e': fields and values must have the same length",
        NULL);
    load_fails("- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n"
               "  priority: info\n  exceptions:\n    - name: e\n      fields: proc.name\n"
               "      comps: =\n      values: [bash]\n",
               0, "comps must be one of in, pmatch, intersects", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n"
               "  priority: info\n  exceptions:\n    - name: e\n      fields: proc.nmae\n"
               "      values: [bash]\n",
               0, "t.yaml:7:7: unknown field proc.nmae (did you mean proc.name?)", NULL);
}

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                               */
/* ------------------------------------------------------------------------ */

static void test_diagnostics(void **state)
{
    /* unknown field, single-line plain scalar: exact column */
    load_fails("- rule: R\n  desc: d\n  condition: evt.type = execve and proc.nmae = bash\n"
               "  output: o\n  priority: info\n",
               0, "t.yaml:3:36: unknown field proc.nmae (did you mean proc.name?)", NULL);
    /* literal block: exact line and column */
    load_fails("- rule: R\n  desc: d\n  condition: |\n    evt.type = execve\n"
               "      and fd.nmae = /x\n  output: o\n  priority: info\n",
               0, "t.yaml:5:11: unknown field fd.nmae (did you mean fd.name?)", NULL);
    /* folded block and a double-quoted scalar */
    load_fails(
        "- rule: R\n  desc: d\n  condition: >\n    evt.type = execve and\n"
        "    proc.name = bash and\n    proc.cmdline comtains x\n  output: o\n  priority: info\n",
        0, "t.yaml:6:18: unknown operator 'comtains' after proc.cmdline", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: \"proc.name = \\\"x\\\" and user.nmae = y\"\n"
               "  output: o\n  priority: info\n",
               0, "t.yaml:3:37: unknown field user.nmae", NULL);
    /* an error in an appended condition points into the appended scalar */
    load_fails("- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: o\n"
               "  priority: info\n"
               "- rule: R\n  condition: |\n    and proc.name = x\n    and fd.nmae = y\n"
               "  override:\n    condition: append\n",
               0, "t.yaml:9:9: unknown field fd.nmae", NULL);
    load_fails("- macro: m\n  condition: proc.pid > 0\n"
               "- macro: m\n  condition: or (proc.name = 'x\n  append: true\n",
               0, "t.yaml:4:30: unterminated quoted string", "(macro 'm')", NULL);
    /* unknown keys, with suggestions */
    load_fails("- rule: R\n  desc: d\n  condtion: evt.type = execve\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:3: unknown key 'condtion' in rule 'R' (did you mean 'condition'?)",
               NULL);
    load_fails("- macro: m\n  condition: proc.pid > 0\n  extra: 1\n", 0,
               "t.yaml:3:3: unknown key 'extra' in macro 'm'", NULL);
    load_fails("- lst: x\n  items: []\n", 0, "t.yaml:1:3: unknown item 'lst'", NULL);
    /* syntax errors */
    load_fails("- rule: R\n  desc: d\n  condition: proc.name = 'bash\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:26: unterminated quoted string", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: (proc.name = bash\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:14: missing ')' for this '('", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.name = bash)\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:30: unbalanced ')'", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.name in bash\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:27: operator 'in' takes a list", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.name = bash or\n  output: o\n"
               "  priority: info\n",
               0, "unexpected end of condition", NULL);
    /* unsupported constructs fail strict loads, with a reason */
    fails_with("toupper(proc.name) = BASH", "transformer toupper() is not supported");
    fails_with("proc.name regex 'ba.*'", "operator regex is not supported");
    fails_with("proc.name = val(proc.pname)", "field values as operands");
    fails_with("fd.nameraw = x", "unknown field fd.nameraw (not supported by klaxon-sensor)");
    /* bad values */
    load_fails("- rule: R\n  desc: d\n  condition: proc.pid > 0\n  output: o\n"
               "  priority: loud\n",
               0, "t.yaml:5:13: rule 'R': invalid priority 'loud'", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.pid > 0\n  output: o %proc.nmae\n"
               "  priority: info\n",
               0, "t.yaml:4:11: rule 'R': output: unknown field proc.nmae", NULL);
    load_fails("- rule: R\n  desc: d\n  output: o\n  priority: info\n", 0,
               "rule 'R' has no 'condition'", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.pid > 0\n  output: o\n"
               "  priority: info\n  action: explode\n",
               0, "unknown action 'explode'", NULL);
    load_fails("rule: x\n", 0, "a rules file is a list of items", NULL);
}

static void test_lenient(void **state)
{
    const char *y = "- macro: m\n  condition: fd.nameraw = x\n"
                    "- rule: Uses unknown\n  desc: d\n  condition: evt.type = execve and m\n"
                    "  output: o\n  priority: info\n"
                    "- rule: Fine\n  desc: d\n  condition: evt.type = execve\n"
                    "  output: o %proc.sname\n  priority: info\n"
                    "- rule: Plugin\n  desc: d\n  condition: ka.verb = get\n  output: o\n"
                    "  priority: info\n  source: k8s_audit\n"
                    "- rule: Skip flag\n  desc: d\n  condition: thread.cap_effective contains X\n"
                    "  output: o\n  priority: info\n  skip-if-unknown-filter: true\n";
    struct kx_ruleset *rs = load_ok(y, KX_RULES_LENIENT);
    size_t n;
    const struct kx_rule_note *notes = kx_ruleset_notes(rs, &n);
    assert_int_equal(kx_ruleset_count(rs), 1);
    int skipped = 0, warned = 0;
    for (size_t i = 0; i < n; i++) {
        skipped += notes[i].kind == KX_NOTE_SKIPPED;
        warned += notes[i].kind == KX_NOTE_WARNING;
        if (strcmp(notes[i].rule, "Uses unknown") == 0)
            assert_non_null(strstr(notes[i].msg, "t.yaml:2:14: unknown field fd.nameraw"));
        if (strcmp(notes[i].rule, "Plugin") == 0)
            assert_non_null(strstr(notes[i].msg, "source k8s_audit is not supported"));
        if (strcmp(notes[i].rule, "Fine") == 0)
            assert_non_null(strstr(notes[i].msg, "proc.sname"));
    }
    assert_int_equal(skipped, 3);
    assert_int_equal(warned, 1);
    kx_ruleset_free(rs);
    /* the same file, strictly: the unknown field is an error */
    load_fails(y, 0, "t.yaml:2:14: unknown field fd.nameraw", NULL);
}

/* ------------------------------------------------------------------------ */
/* Kinds and dispatch                                                        */
/* ------------------------------------------------------------------------ */

static uint64_t kinds_of(const char *cond)
{
    char *y = rule_yaml(cond);
    struct kx_ruleset *rs = load_ok(y, 0);
    uint64_t k = kx_ruleset_rule(rs, 0)->kinds;
    kx_ruleset_free(rs);
    free(y);
    return k;
}

#define K(x) (1ull << (x))

static void test_kinds(void **state)
{
    uint64_t open3 = K(KX_K_OPEN) | K(KX_K_OPENAT) | K(KX_K_OPENAT2);

    assert_int_equal(kinds_of("evt.type = execve"), K(KX_K_EXEC));
    assert_int_equal(kinds_of("evt.type in (execve, execveat) and evt.dir = <"), K(KX_K_EXEC));
    assert_int_equal(kinds_of("evt.type in (open, openat, openat2) and fd.name = /x"), open3);
    assert_int_equal(kinds_of("evt.type = connect or evt.type = accept"),
                     K(KX_K_CONNECT) | K(KX_K_ACCEPT));
    assert_int_equal(kinds_of("(evt.type = connect or proc.name = x) and evt.type = accept"),
                     K(KX_K_ACCEPT));
    assert_int_equal(kinds_of("evt.type != open"), KX_KINDS_ALL & ~K(KX_K_OPEN));
    /* execve != execveat: an EXEC event may still be of the other spelling */
    assert_int_equal(kinds_of("evt.type != execve"), KX_KINDS_ALL);
    assert_int_equal(kinds_of("not evt.type in (execve, execveat)"), KX_KINDS_ALL & ~K(KX_K_EXEC));
    assert_int_equal(kinds_of("not (evt.type = open and fd.name = /x)"), KX_KINDS_ALL);
    assert_int_equal(kinds_of("not (evt.type = open or evt.type = openat)"),
                     KX_KINDS_ALL & ~(K(KX_K_OPEN) | K(KX_K_OPENAT)));
    assert_int_equal(kinds_of("proc.name = bash"), KX_KINDS_ALL);
    assert_int_equal(kinds_of("evt.type = mkdir"), 0); /* never emitted by the sensor */
    assert_int_equal(kinds_of("evt.type in (mkdir, execve)"), K(KX_K_EXEC));

    /* warnings: no evt.type, and can never match */
    struct kx_ruleset *rs =
        load_ok("- rule: A\n  desc: d\n  condition: proc.name = bash\n"
                "  output: o\n  priority: info\n"
                "- rule: B\n  desc: d\n  condition: evt.type = mkdir\n"
                "  output: o\n  priority: info\n"
                "- rule: C\n  desc: d\n  condition: evt.type = ptrace and evt.dir = >\n"
                "  output: o\n  priority: info\n"
                "- rule: D\n  desc: d\n  condition: proc.name = x\n"
                "  output: o\n  priority: info\n  warn_evttypes: false\n",
                0);
    size_t n;
    const struct kx_rule_note *notes = kx_ruleset_notes(rs, &n);
    assert_int_equal(n, 3);
    assert_string_equal(notes[0].rule, "A");
    assert_non_null(strstr(notes[0].msg, "no evt.type restriction"));
    assert_string_equal(notes[1].rule, "B");
    assert_non_null(strstr(notes[1].msg, "can never match"));
    assert_string_equal(notes[2].rule, "C");
    assert_non_null(strstr(notes[2].msg, "evt.dir = >"));
    bool kinds[KX_K_MAX];
    kx_ruleset_kinds(rs, kinds);
    for (int k = 0; k < KX_K_MAX; k++)
        assert_true(kinds[k]); /* A (and D) need every kind */
    kx_ruleset_free(rs);
}

static void test_dispatch(void **state)
{
    struct fx f;
    const struct kx_rule *out[8];
    struct kx_ruleset *rs = load_ok("- rule: Open\n  desc: d\n"
                                    "  condition: evt.type = openat and proc.name exists\n"
                                    "  output: o\n  priority: info\n"
                                    "- rule: Exec\n  desc: d\n"
                                    "  condition: evt.type = execve and proc.name exists\n"
                                    "  output: o\n  priority: info\n"
                                    "- rule: Any\n  desc: d\n  condition: proc.name = bash\n"
                                    "  output: o\n  priority: info\n",
                                    0);
    bool kinds[KX_K_MAX];

    fx_exec(&f);
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 8), 2);
    assert_string_equal(kx_rule_name(out[0]), "Exec");
    assert_string_equal(kx_rule_name(out[1]), "Any");
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 1), 1);
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 0), 0);
    /* An EXEC-kind event whose evt.type text says "openat": the Open rule's
     * condition holds, but it is not a candidate for EXEC, so it is never
     * evaluated - dispatch is by kind. */
    f.ev.type = "openat";
    assert_true(kx_expr_eval(kx_ruleset_find(rs, "Open")->cond, &f.ev));
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 8), 1);
    assert_string_equal(kx_rule_name(out[0]), "Any");
    f.ev.kind = KX_K_MAX; /* out of range: nothing */
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 8), 0);

    kx_ruleset_free(rs);
    rs = load_ok("- rule: Open\n  desc: d\n  condition: evt.type = openat\n"
                 "  output: o\n  priority: info\n",
                 0);
    kx_ruleset_kinds(rs, kinds);
    for (int k = 0; k < KX_K_MAX; k++)
        assert_int_equal(kinds[k], k == KX_K_OPENAT);
    kx_ruleset_free(rs);
}

/* ------------------------------------------------------------------------ */
/* Open prefilter                                                            */
/* ------------------------------------------------------------------------ */

struct ofilter {
    struct kx_open_cfg cfg;
    char rd[KX_PREFIX_MAX][KX_PREFIX_LEN];
    char wr[KX_PREFIX_MAX][KX_PREFIX_LEN];
};

static void ofilter_of(const struct kx_ruleset *rs, struct ofilter *o)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(kx_ruleset_open_filter(rs, &o->cfg, o->rd, o->wr), 0);
    assert_true(o->cfg.n_read <= KX_PREFIX_MAX && o->cfg.n_write <= KX_PREFIX_MAX);
}

/* What the kernel does with an open of this class and path. */
static bool ofilter_passes(const struct ofilter *o, bool write_class, const char *path)
{
    if (write_class ? o->cfg.write_all : o->cfg.read_all)
        return true;
    size_t n = write_class ? o->cfg.n_write : o->cfg.n_read;
    for (size_t i = 0; i < n; i++) {
        const char *p = write_class ? o->wr[i] : o->rd[i];
        if (strncmp(path, p, strlen(p)) == 0)
            return true;
    }
    return false;
}

static bool has_prefix_entry(const struct ofilter *o, bool write_class, const char *p)
{
    size_t n = write_class ? o->cfg.n_write : o->cfg.n_read;
    for (size_t i = 0; i < n; i++)
        if (strcmp(write_class ? o->wr[i] : o->rd[i], p) == 0)
            return true;
    return false;
}

static const char *const ofilter_paths[] = {
    "/etc/shadow",
    "/etc/sudoers",
    "/etc/pam.d/sshd",
    "/etc/sudoers.d/x",
    "/etc/passwd",
    "/etc",
    "/etcx/shadow",
    "/var/log/syslog",
    "/var/log/app/a.log",
    "/dev/log/x",
    "/root/.ssh/id_rsa",
    "/home/u/.ssh/authorized_keys",
    "/tmp/x",
    "/usr/bin/ls",
    "/",
    "/proc/1/environ",
    "/sys/fs/cgroup/release_agent",
    "/x/auth.log",
    "/opt/a/b/c",
    "/very/long/path/that/goes/on/and/on/and/on/beyond/the/sixty/three/byte/prefix/limit/file",
};

/* Every open some rule matches must pass the filter (soundness), over a
 * grid of paths x access modes x open kinds. Returns how many opens pass. */
static size_t check_ofilter_sound(const struct kx_ruleset *rs, const struct ofilter *o)
{
    /* {read, write, create, write-class}: flag combinations an open can have */
    static const bool modes[][4] = {
        {1, 0, 0, 0}, /* O_RDONLY */
        {0, 1, 0, 1}, /* O_WRONLY */
        {1, 1, 0, 1}, /* O_RDWR */
        {1, 0, 0, 1}, /* O_RDONLY|O_TRUNC */
        {0, 1, 1, 1}, /* O_WRONLY|O_CREAT */
        {1, 1, 1, 1}, /* O_RDWR|O_CREAT */
        {1, 0, 1, 1}, /* O_RDONLY|O_CREAT */
    };
    static const int kinds[] = {KX_K_OPEN, KX_K_OPENAT, KX_K_OPENAT2};
    const struct kx_rule *out[64];
    size_t passed = 0;
    struct fx f;

    for (size_t p = 0; p < sizeof(ofilter_paths) / sizeof(ofilter_paths[0]); p++)
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
            for (size_t k = 0; k < 3; k++)
                for (int failed = 0; failed < 2; failed++) {
                    fx_open(&f, ofilter_paths[p], modes[m][1]);
                    f.ev.kind = kinds[k];
                    f.ev.type = kx_kind_name(kinds[k]);
                    f.ev.open_read = modes[m][0];
                    f.ev.open_write = modes[m][1];
                    f.ev.open_create = modes[m][2];
                    f.ev.flags = modes[m][3] ? KX_F_OPEN_WRITE : 0;
                    f.ev.args[2].value = modes[m][3] ? "O_WRONLY|O_TRUNC" : "O_RDONLY";
                    if (failed) {
                        f.ev.res = -2;
                        f.ev.res_str = "ENOENT";
                        f.ev.fd_num = -1;
                    }
                    bool pass = ofilter_passes(o, modes[m][3], ofilter_paths[p]);
                    passed += pass;
                    size_t n = kx_ruleset_match(rs, &f.ev, out, 64);
                    if (n && !pass) {
                        fprintf(stderr, "  UNSOUND: rule '%s' matches %s open of %s, filtered\n",
                                kx_rule_name(out[0]), modes[m][3] ? "write" : "read",
                                ofilter_paths[p]);
                        fail();
                    }
                }
    return passed;
}

static struct kx_ruleset *rule1(const char *cond)
{
    char *y = rule_yaml(cond);
    struct kx_ruleset *rs = load_ok(y, 0);
    free(y);
    return rs;
}

static void test_open_filter(void **state)
{
    struct ofilter o;
    struct kx_ruleset *rs;

    /* no open rule: every open can be dropped */
    rs = rule1("evt.type = execve");
    ofilter_of(rs, &o);
    assert_false(o.cfg.read_all || o.cfg.write_all || o.cfg.n_read || o.cfg.n_write);
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);

    /* writes only, under one directory */
    rs = rule1("evt.type in (open, openat, openat2) and evt.is_open_write = true and "
               "fd.name startswith /etc/");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.read_all, 0);
    assert_int_equal(o.cfg.n_read, 0);
    assert_int_equal(o.cfg.write_all, 0);
    assert_int_equal(o.cfg.n_write, 1);
    assert_string_equal(o.wr[0], "/etc/");
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);

    /* reads: O_RDWR opens are write-class and can be read opens too */
    rs = rule1("evt.type = openat and evt.is_open_read = true and "
               "(fd.name in (/etc/shadow, /etc/sudoers) or fd.directory in (/etc/pam.d))");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.n_read, 3);
    assert_true(has_prefix_entry(&o, false, "/etc/pam.d/"));
    assert_true(has_prefix_entry(&o, false, "/etc/shadow"));
    assert_int_equal(o.cfg.n_write, 3);
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);

    /* is_open_read = false: O_WRONLY, write class only */
    rs = rule1("evt.type = openat and evt.is_open_read = false and fd.name pmatch (/var/log)");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.n_read, 0);
    assert_false(o.cfg.read_all);
    assert_true(has_prefix_entry(&o, true, "/var/log"));
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);

    /* AND picks the tighter bound; OR with an unbounded side is unbounded */
    rs = rule1("evt.type = openat and fd.name startswith /etc and fd.name glob '/etc/ssh/*'");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.n_read, 1);
    assert_string_equal(o.rd[0], "/etc/ssh/");
    kx_ruleset_free(rs);
    rs = rule1("evt.type = openat and (fd.name startswith /etc or proc.name = cat)");
    ofilter_of(rs, &o);
    assert_true(o.cfg.read_all && o.cfg.write_all);
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);
    /* a branch that cannot be an open does not unbind the other */
    rs = rule1("(evt.type = openat and fd.name startswith /etc) or "
               "(evt.type = execve and proc.name = cat)");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.n_read, 1);
    assert_string_equal(o.rd[0], "/etc");
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);
    /* NOT gives no bound */
    rs = rule1("evt.type = openat and not fd.name startswith /tmp");
    ofilter_of(rs, &o);
    assert_true(o.cfg.read_all && o.cfg.write_all);
    kx_ruleset_free(rs);
    /* long prefixes are cut (still sound), many are merged */
    rs = rule1("evt.type = openat and fd.name startswith "
               "/very/long/path/that/goes/on/and/on/and/on/beyond/the/sixty/three/byte/prefix");
    ofilter_of(rs, &o);
    assert_int_equal(o.cfg.n_read, 1);
    assert_int_equal(strlen(o.rd[0]), KX_PREFIX_LEN - 1);
    check_ofilter_sound(rs, &o);
    kx_ruleset_free(rs);
    {
        char cond[8192];
        size_t w = (size_t)snprintf(cond, sizeof(cond), "evt.type = openat and fd.name in (");
        for (int i = 0; i < 100; i++)
            w +=
                (size_t)snprintf(cond + w, sizeof(cond) - w, "%s/data/d%03d/file", i ? "," : "", i);
        snprintf(cond + w, sizeof(cond) - w, ")");
        rs = rule1(cond);
        ofilter_of(rs, &o);
        assert_false(o.cfg.read_all);
        assert_true(o.cfg.n_read >= 1 && o.cfg.n_read <= KX_PREFIX_MAX);
        assert_true(ofilter_passes(&o, false, "/data/d042/file"));
        assert_true(ofilter_passes(&o, false, "/data/d099/file"));
        assert_false(ofilter_passes(&o, false, "/etc/shadow"));
        kx_ruleset_free(rs);
    }
    /* the same event checked through Falco's macros */
    rs = load_ok("- macro: open_write\n"
                 "  condition: (evt.type in (open,openat,openat2) and evt.is_open_write=true and "
                 "fd.typechar='f' and fd.num>=0)\n"
                 "- macro: open_read\n"
                 "  condition: (evt.type in (open,openat,openat2) and evt.is_open_read=true and "
                 "fd.typechar='f' and fd.num>=0)\n"
                 "- rule: W\n  desc: d\n  condition: open_write and fd.directory in (/var/log, "
                 "/dev/log) and evt.arg.flags contains O_TRUNC\n  output: o\n  priority: info\n"
                 "- rule: R\n  desc: d\n  condition: open_read and fd.name startswith /root/.ssh\n"
                 "  output: o\n  priority: info\n",
                 0);
    ofilter_of(rs, &o);
    assert_false(o.cfg.read_all || o.cfg.write_all);
    assert_int_equal(o.cfg.n_read, 1);
    assert_int_equal(o.cfg.n_write, 3);
    assert_true(check_ofilter_sound(rs, &o) > 0);
    kx_ruleset_free(rs);
}

/* ------------------------------------------------------------------------ */
/* Kill analysis                                                             */
/* ------------------------------------------------------------------------ */

static const char kill_prelude[] = "- macro: spawned_process\n"
                                   "  condition: (evt.type in (execve, execveat) and evt.dir=<)\n"
                                   "- macro: container\n"
                                   "  condition: (container.id != host)\n";

static struct kx_ruleset *kill_rs(const char *cond)
{
    char *y;
    assert_true(asprintf(&y,
                         "%s- rule: K\n  desc: d\n  condition: %s\n  output: o\n"
                         "  priority: critical\n  action: kill\n",
                         kill_prelude, cond) > 0);
    struct kx_ruleset *rs = load_ok(y, 0);
    free(y);
    return rs;
}

static void kill_rejects(const char *cond, const char *needle)
{
    struct kx_ruleset *rs = kill_rs(cond);
    struct kx_kill_rule k[KX_KILL_RULES];
    struct kx_diag d = {0};
    size_t n = 99;

    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), -EINVAL);
    assert_int_equal(n, 0);
    if (!diag_has(&d, needle)) {
        fprintf(stderr, "  missing \"%s\"\n", needle);
        diag_dump(&d);
        fail();
    }
    kx_diag_free(&d);
    kx_ruleset_free(rs);
}

static void test_kill(void **state)
{
    struct kx_kill_rule k[KX_KILL_RULES];
    struct kx_diag d = {0};
    struct kx_ruleset *rs;
    size_t n;

    rs = kill_rs("spawned_process and container and proc.name in (nc, ncat, socat)");
    assert_true(kx_rule_kills(kx_ruleset_rule(rs, 0)));
    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), 0);
    assert_int_equal(n, 1);
    assert_int_equal(k[0].active, 1);
    assert_int_equal(k[0].need_container, 1);
    assert_int_equal(k[0].n_names, 3);
    assert_string_equal(k[0].names[1], "ncat");
    assert_int_equal(k[0].n_paths, 0);
    assert_int_equal(k[0].id, 0);
    kx_ruleset_free(rs);

    rs = kill_rs("evt.type = execve and proc.exepath pmatch (/tmp, /dev/shm/)");
    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), 0);
    assert_int_equal(k[0].need_container, 0);
    assert_int_equal(k[0].n_paths, 3);
    assert_string_equal(k[0].paths[0], "/tmp");
    assert_string_equal(k[0].paths[1], "/tmp/");
    assert_string_equal(k[0].paths[2], "/dev/shm/");
    assert_int_equal(k[0].path_prefix, 0x6);
    kx_ruleset_free(rs);

    rs = kill_rs("spawned_process and proc.exe startswith /tmp/ and proc.name = xmrig");
    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), 0);
    assert_int_equal(k[0].n_paths, 1);
    assert_int_equal(k[0].path_prefix, 1);
    assert_int_equal(k[0].n_names, 1);
    kx_ruleset_free(rs);
    kx_diag_free(&d);

    /* Falco-style tuning macros (never_true) fold away and stay decidable */
    rs = kill_rs("spawned_process and proc.name = nc and not (evt.num=0) and evt.num >= 0");
    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), 0);
    assert_int_equal(n, 1);
    assert_int_equal(kx_ruleset_rule(rs, 0)->cond->nkids, 3); /* type, dir, name */
    kx_ruleset_free(rs);

    kill_rejects("spawned_process and fd.name startswith /tmp",
                 "t.yaml:5:9: rule 'K': action kill: the kernel cannot decide 'fd.name startswith "
                 "/tmp'");
    kill_rejects("proc.name = nc", "must restrict evt.type to execve");
    kill_rejects("evt.type in (execve, open) and proc.name = nc", "cannot decide 'evt.type in");
    kill_rejects("spawned_process and (proc.name = nc or user.uid = 0)", "cannot decide '(or of");
    kill_rejects("spawned_process and not proc.name = nc", "cannot decide 'not proc.name = nc'");
    kill_rejects("spawned_process and proc.name = averyveryverylongname",
                 "comm holds at most 15 characters");
    kill_rejects("spawned_process and proc.name in (a,b,c,d,e,f,g,h,i)",
                 "more than 8 process names");
    kill_rejects("spawned_process and proc.exe = bash", "cannot decide 'proc.exe = bash'");

    /* more kill rules than the kernel holds */
    struct kx_buf b;
    kx_buf_init(&b, 1 << 20);
    for (int i = 0; i <= KX_KILL_RULES; i++)
        kx_buf_printf(&b,
                      "- rule: K%d\n  desc: d\n  condition: evt.type = execve and proc.name = p%d\n"
                      "  output: o\n  priority: info\n  action: kill\n",
                      i, i);
    rs = load_ok(b.data, 0);
    assert_int_equal(kx_ruleset_kill_rules(rs, k, KX_KILL_RULES, &n, &d), -EINVAL);
    assert_true(diag_has(&d, "more than 8 rules with action kill"));
    kx_diag_free(&d);
    kx_ruleset_free(rs);
    kx_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Output and alerts                                                         */
/* ------------------------------------------------------------------------ */

static struct kx_alert *alert_for(const char *output, const char *extra, const struct kx_sevent *ev)
{
    char *y;
    assert_true(asprintf(&y,
                         "- rule: Shell in container\n  desc: d\n  condition: evt.type = execve\n"
                         "  output: |-\n    %s\n  priority: warning\n  tags: [container, shell, "
                         "T1059]\n%s",
                         output, extra ? extra : "") > 0);
    struct kx_ruleset *rs = load_ok(y, KX_RULES_LENIENT);
    free(y);
    struct kx_alert *a = kx_rule_alert(kx_ruleset_rule(rs, 0), ev);
    assert_non_null(a);
    kx_ruleset_free(rs); /* the alert owns its copies */
    return a;
}

static void test_output_format(void **state)
{
    struct fx f;
    struct kx_alert *a;

    fx_exec(&f);
    f.ev.proc.user = NULL;
    a = alert_for("shell %proc.name (user=%user.name uid=%user.uid gp=%proc.aname[2] "
                  "app=%k8s.pod.label[app] tier=%k8s.pod.label.tier up=%proc.is_exe_upper_layer "
                  "at %evt.time, %fd.name. 100% %%proc.name %(proc.pid) %container.info "
                  "fd_proto=fd.l4proto unknown=%proc.sname)",
                  NULL, &f.ev);
    assert_string_equal(a->output,
                        "10:01:02.123456789: Warning shell bash (user=<NA> uid=0 gp=containerd "
                        "app=web tier=front up=true at 10:01:02.123456789, <NA>. 100% %proc.name "
                        "4242 container_id=" ID12 " container_name=web fd_proto=fd.l4proto "
                        "unknown=<NA>)");
    kx_alert_free(a);

    /* a huge value is cut, not dropped */
    char *big = malloc(200000);
    memset(big, 'x', 199999);
    big[199999] = '\0';
    f.ev.proc.cmdline = big;
    a = alert_for("cmd=%proc.cmdline end", NULL, &f.ev);
    assert_true(strlen(a->output) <= 64 * 1024);
    assert_non_null(strstr(a->output, "xxx..."));
    kx_alert_free(a);
    free(big);
}

static void test_alert_json(void **state)
{
    struct fx f;
    char buf[128];
    struct kx_alert *a;

    fx_exec(&f);
    f.ev.flags = KX_F_KILLED;
    a = alert_for("A shell (user=%user.name shell=%proc.name parent=%proc.pname fd=%fd.name "
                  "up=%proc.is_exe_upper_layer gp=%proc.aname[2])",
                  "  action: kill\n", &f.ev);
    assert_string_equal(a->rule, "Shell in container");
    assert_string_equal(a->source, "syscall");
    assert_string_equal(a->hostname, "node-a");
    assert_int_equal(a->priority, KX_PRI_WARNING);
    assert_int_equal(a->time_ns, T0);
    assert_int_equal(strlen(a->uuid), 36);
    assert_non_null(strstr(a->output, "10:01:02.123456789: Warning A shell (user=root"));

    char *json = kx_alert_to_json(a);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"time\":\"2026-11-23T10:01:02.123456789Z\""));
    assert_non_null(strstr(json, "\"tags\":[\"container\",\"shell\",\"T1059\"]"));
    assert_non_null(strstr(json, "\"evt.time\":1795428062123456789")); /* exact, not a double */
    assert_non_null(strstr(json, "\"proc.pid\":4242,"));
    assert_non_null(strstr(json, "\"fd.name\":null"));
    assert_non_null(strstr(json, "\"proc.is_exe_upper_layer\":true"));
    assert_non_null(strstr(json, "\"klaxon.killed\":true"));
    free(json);

    /* parse it back as the hub would */
    json = kx_alert_to_json(a);
    char err[256];
    struct kx_alert *b = kx_alert_parse(json, strlen(json), err, sizeof(err));
    assert_non_null(b);
    assert_string_equal(b->rule, "Shell in container");
    kx_alert_free(b);
    free(json);

    static const struct {
        const char *field, *want;
    } want[] = {
        {"evt.type", "execve"},
        {"proc.pid", "4242"},
        {"proc.ppid", "4200"},
        {"proc.name", "bash"},
        {"proc.exepath", "/usr/bin/bash"},
        {"proc.cmdline", "bash -i"},
        {"proc.start_ns", "123456789"},
        {"user.uid", "0"},
        {"user.name", "root"},
        {"container.id", ID12},
        {"container.full_id", ID64},
        {"k8s.ns.name", "shop"},
        {"k8s.pod.name", "web-1"},
        {"k8s.pod.uid", POD},
        {"proc.pname", "containerd-shim"},
        {"proc.aname[2]", "containerd"},
        {"klaxon.action", "kill"},
        {"klaxon.killed", "true"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *got = kx_alert_field_str(a, want[i].field, buf, sizeof(buf));
        if (!got || strcmp(got, want[i].want) != 0) {
            fprintf(stderr, "  %s = %s, want %s\n", want[i].field, got ? got : "(absent)",
                    want[i].want);
            fail();
        }
    }
    const cJSON *v = kx_alert_field(a, "proc.pid");
    assert_true(cJSON_IsNumber(v));
    v = kx_alert_field(a, "fd.name");
    assert_true(cJSON_IsNull(v));
    kx_alert_free(a);

    /* on the host: no container.full_id, no k8s fields, no kill fields */
    fx_open(&f, "/etc/shadow", false);
    f.ev.kind = KX_K_EXEC;
    f.ev.type = "execve";
    a = alert_for("x %fd.name", NULL, &f.ev);
    assert_string_equal(kx_alert_field_str(a, "container.id", buf, sizeof(buf)), "host");
    assert_null(kx_alert_field(a, "container.full_id"));
    assert_null(kx_alert_field(a, "k8s.pod.uid"));
    assert_null(kx_alert_field(a, "klaxon.action"));
    assert_string_equal(kx_alert_field_str(a, "fd.name", buf, sizeof(buf)), "/etc/shadow");
    kx_alert_free(a);

    assert_null(kx_rule_alert(NULL, &f.ev));
}

static void test_format_cmdline(void **state)
{
    char out[64];
    static const char raw[] = "/bin/sh\0-c\0echo hi\0";

    kx_ruleset_format_cmdline("sh", raw, sizeof(raw) - 1, out, sizeof(out));
    assert_string_equal(out, "sh -c echo hi");
    kx_ruleset_format_cmdline(NULL, raw, sizeof(raw) - 1, out, sizeof(out));
    assert_string_equal(out, "/bin/sh -c echo hi");
    kx_ruleset_format_cmdline("sh", "a\0b\x01", 4, out, sizeof(out));
    assert_string_equal(out, "sh b.");
    kx_ruleset_format_cmdline("sh", raw, sizeof(raw) - 1, out, 8);
    assert_string_equal(out, "sh -...");
}

/* ------------------------------------------------------------------------ */
/* Hostile input                                                             */
/* ------------------------------------------------------------------------ */

static char *repeat(const char *s, size_t n)
{
    size_t l = strlen(s);
    char *o = malloc(l * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(o + i * l, s, l);
    o[l * n] = '\0';
    return o;
}

static void load_fails_cond(const char *cond, const char *needle)
{
    char *y;
    assert_true(asprintf(&y,
                         "- rule: R\n  desc: d\n  condition: '%s'\n  output: o\n  priority: info\n",
                         cond) > 0);
    load_fails(y, KX_RULES_LENIENT, needle, NULL);
    free(y);
}

static void test_hostile(void **state)
{
    char *open = repeat("(", 10000), *close = repeat(")", 10000), *cond;

    /* 10k nested parentheses, 10k nots */
    assert_true(asprintf(&cond, "%sproc.pid > 0%s", open, close) > 0);
    load_fails_cond(cond, "condition nests deeper than 256 levels");
    free(cond);
    char *nots = repeat("not ", 10000);
    assert_true(asprintf(&cond, "%sproc.pid > 0", nots) > 0);
    load_fails_cond(cond, "condition nests deeper than 256 levels");
    free(cond);
    free(nots);
    free(open);
    free(close);

    /* 300 macros each calling the next: too deep after expansion */
    struct kx_buf b;
    kx_buf_init(&b, 8 << 20);
    for (int i = 0; i < 300; i++)
        kx_buf_printf(&b, "- macro: m%d\n  condition: m%d\n", i, i + 1);
    kx_buf_printf(&b, "- macro: m300\n  condition: proc.pid > 0\n"
                      "- rule: R\n  desc: d\n  condition: m0\n  output: o\n  priority: info\n");
    load_fails(b.data, 0, "nests deeper than 256 levels (macros and parentheses included)", NULL);
    kx_buf_reset(&b);

    /* exponential macro expansion */
    kx_buf_printf(&b, "- macro: b0\n  condition: proc.pid > 0\n");
    for (int i = 1; i <= 40; i++)
        kx_buf_printf(&b, "- macro: b%d\n  condition: b%d and b%d\n", i, i - 1, i - 1);
    kx_buf_printf(&b, "- rule: R\n  desc: d\n  condition: b40\n  output: o\n  priority: info\n");
    load_fails(b.data, 0, "more than 100000 terms after macro expansion", NULL);
    kx_buf_reset(&b);

    /* a 200k-item list, in YAML and in a condition */
    kx_buf_printf(&b, "- list: big\n  items: [");
    for (int i = 0; i < 200000; i++)
        kx_buf_printf(&b, "%si%d", i ? "," : "", i);
    kx_buf_printf(&b, "]\n");
    load_fails(b.data, 0, "items has more than 100000 items", NULL);
    kx_buf_reset(&b);
    kx_buf_printf(&b, "- rule: R\n  desc: d\n  condition: proc.name in (");
    for (int i = 0; i < 100001; i++) /* within the condition length limit */
        kx_buf_printf(&b, "%sx", i ? "," : "");
    kx_buf_printf(&b, ")\n  output: o\n  priority: info\n");
    load_fails(b.data, 0, "list has more than 100000 items", NULL);
    kx_buf_reset(&b);
    /* lists of lists that multiply */
    kx_buf_printf(&b, "- list: l0\n  items: [");
    for (int i = 0; i < 1000; i++)
        kx_buf_printf(&b, "%sx%d", i ? "," : "", i);
    kx_buf_printf(&b, "]\n");
    for (int i = 1; i < 8; i++)
        kx_buf_printf(&b, "- list: l%d\n  items: [l%d, l%d, l%d, l%d]\n", i, i - 1, i - 1, i - 1,
                      i - 1);
    load_fails(b.data, 0, "has more than 100000 items after expansion", NULL);
    kx_buf_reset(&b);
    /* a list used by many terms */
    kx_buf_printf(&b, "- list: l\n  items: [");
    for (int i = 0; i < 90000; i++)
        kx_buf_printf(&b, "%sx%d", i ? "," : "", i);
    kx_buf_printf(&b, "]\n- rule: R\n  desc: d\n  condition: proc.name in (l)");
    for (int i = 0; i < 20; i++)
        kx_buf_printf(&b, " or proc.exe in (l)");
    kx_buf_printf(&b, "\n  output: o\n  priority: info\n");
    load_fails(b.data, 0, "more than 1000000 list items after expansion", NULL);
    kx_buf_free(&b);

    /* a 1 MB condition */
    char *clause = repeat("proc.pid > 0 and ", 1024 * 1024 / 17 + 1);
    assert_true(asprintf(&cond, "%sproc.pid > 1", clause) > 0);
    load_fails_cond(cond, "condition is longer than 262144 bytes");
    free(cond);
    free(clause);

    /* invalid UTF-8, NUL, control bytes */
    load_fails("- rule: R\n  desc: \xff\xfe\n  condition: proc.pid > 0\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:2:", NULL);
    load_fails("- rule: R\n  desc: d\n  condition: proc.name = \"\xc3\x28\"\n  output: o\n"
               "  priority: info\n",
               0, "t.yaml:3:", NULL);
    /* unterminated things */
    load_fails_cond("proc.name = \"bash", "unterminated quoted string");
    load_fails_cond("proc.name in (a, b", "unterminated list");
    load_fails_cond("proc.aname[2 = x", "expected an operator after proc.aname");
    load_fails_cond("((((", "unexpected end of condition");
    load_fails_cond("and", "expected a field, a macro or '('");
    load_fails_cond("proc.name = ", "expected a value");
}

static void test_empty_and_misc(void **state)
{
    struct kx_ruleset *rs = NULL;
    struct kx_diag d = {0};

    assert_int_equal(kx_ruleset_load_string("e.yaml", "", 0, &rs, &d), 0);
    assert_int_equal(kx_ruleset_count(rs), 0);
    kx_ruleset_free(rs);
    rs = load_ok("- required_engine_version: 26\n"
                 "- required_plugin_versions:\n  - name: k8saudit\n    version: 0.1.0\n",
                 0);
    assert_int_equal(kx_ruleset_count(rs), 0);
    kx_ruleset_free(rs);
    kx_ruleset_free(NULL);
    assert_int_equal(kx_ruleset_count(NULL), 0);
    assert_null(kx_ruleset_rule(NULL, 0));
    const char *missing[] = {"/nonexistent/rules.yaml"};
    assert_int_equal(kx_ruleset_load(missing, 1, 0, &rs, &d), -ENOENT);
    assert_null(rs);
    assert_true(diag_has(&d, "/nonexistent/rules.yaml: cannot read"));
    kx_diag_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Falco's own rules                                                         */
/* ------------------------------------------------------------------------ */

static const char *falco_path(void)
{
    static char path[512];
    const char *here = __FILE__, *slash = strrchr(here, '/');

    if (access("tests/data/falco_rules.yaml", R_OK) == 0)
        return "tests/data/falco_rules.yaml";
    snprintf(path, sizeof(path), "%.*s/../data/falco_rules.yaml", slash ? (int)(slash - here) : 1,
             slash ? here : ".");
    return path;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double bench(const struct kx_ruleset *rs, const struct kx_sevent *ev, size_t *matched)
{
    const struct kx_rule *out[32];
    const int iters = 200000;
    size_t m = 0;

    for (int i = 0; i < 1000; i++)
        m += kx_ruleset_match(rs, ev, out, 32);
    int64_t t0 = now_ns();
    for (int i = 0; i < iters; i++)
        m += kx_ruleset_match(rs, ev, out, 32);
    int64_t t1 = now_ns();
    *matched = kx_ruleset_match(rs, ev, out, 32);
    (void)m;
    return (double)(t1 - t0) / iters;
}

static void test_falco_rules(void **state)
{
    const char *paths[] = {falco_path()};
    struct kx_ruleset *rs = NULL;
    struct kx_diag d = {0};
    const struct kx_rule *out[32];
    struct fx f;
    size_t nnotes, skipped = 0, warnings = 0;

    int rc = kx_ruleset_load(paths, 1, KX_RULES_LENIENT, &rs, &d);
    if (rc)
        diag_dump(&d);
    assert_int_equal(rc, 0);
    const struct kx_rule_note *notes = kx_ruleset_notes(rs, &nnotes);
    for (size_t i = 0; i < nnotes; i++) {
        skipped += notes[i].kind == KX_NOTE_SKIPPED;
        warnings += notes[i].kind == KX_NOTE_WARNING;
    }
    printf("[ falco  ] %s: %zu rules loaded, %zu skipped, %zu warnings\n", paths[0],
           kx_ruleset_count(rs), skipped, warnings);
    for (size_t i = 0; i < nnotes; i++)
        if (notes[i].kind == KX_NOTE_SKIPPED)
            printf("[ falco  ]   skipped %s: %s\n", notes[i].rule, notes[i].msg);
    assert_true(kx_ruleset_count(rs) >= 15);
    assert_true(kx_ruleset_count(rs) > 2 * skipped);
    for (size_t i = 0; i < nnotes; i++)
        if (notes[i].kind == KX_NOTE_SKIPPED)
            assert_non_null(strstr(notes[i].msg, "falco_rules.yaml:"));

    /* it detects what it should */
    fx_exec(&f);
    size_t n = kx_ruleset_match(rs, &f.ev, out, 32);
    bool terminal = false;
    for (size_t i = 0; i < n; i++)
        terminal |= strcmp(kx_rule_name(out[i]), "Terminal shell in container") == 0;
    assert_true(terminal);
    struct kx_alert *a = kx_rule_alert(kx_ruleset_find(rs, "Terminal shell in container"), &f.ev);
    assert_non_null(a);
    assert_non_null(strstr(a->output, "Notice A shell was spawned in a container with an attached "
                                      "terminal (evt_type=execve user=root user_uid=0"));
    assert_non_null(strstr(a->output, "container_id=" ID12 " container_name=web)"));
    kx_alert_free(a);
    f.ev.proc.tty = 0;
    n = kx_ruleset_match(rs, &f.ev, out, 32);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(kx_rule_name(out[i]), "Terminal shell in container");

    fx_open(&f, "/etc/shadow", false);
    n = kx_ruleset_match(rs, &f.ev, out, 32);
    assert_int_equal(n, 1);
    assert_string_equal(kx_rule_name(out[0]), "Read sensitive file untrusted");
    f.ev.proc.name = "sshd"; /* trusted */
    assert_int_equal(kx_ruleset_match(rs, &f.ev, out, 32), 0);
    fx_open(&f, "/var/log/syslog", true);
    n = kx_ruleset_match(rs, &f.ev, out, 32);
    assert_int_equal(n, 1);
    assert_string_equal(kx_rule_name(out[0]), "Clear Log Activities");

    /* the prefilters it implies */
    struct ofilter o;
    ofilter_of(rs, &o);
    printf("[ falco  ] open filter: read_all=%u (%u prefixes) write_all=%u (%u prefixes):",
           o.cfg.read_all, o.cfg.n_read, o.cfg.write_all, o.cfg.n_write);
    for (size_t i = 0; i < o.cfg.n_read; i++)
        printf(" r:%s", o.rd[i]);
    for (size_t i = 0; i < o.cfg.n_write; i++)
        printf(" w:%s", o.wr[i]);
    printf("\n");
    assert_false(o.cfg.read_all);
    check_ofilter_sound(rs, &o);
    bool kinds[KX_K_MAX];
    kx_ruleset_kinds(rs, kinds);
    printf("[ falco  ] kinds:");
    for (int k = 0; k < KX_K_MAX; k++)
        if (kinds[k])
            printf(" %s", kx_kind_name((enum kx_kind)k));
    printf("\n");

    /* evaluation cost */
    size_t me, mo, mn;
    fx_exec(&f);
    double exec_ns = bench(rs, &f.ev, &me);
    f.ev.proc.name = "ls";
    f.ev.proc.tty = 0;
    f.ev.container_id = "host";
    double exec_plain_ns = bench(rs, &f.ev, &mn);
    fx_open(&f, "/usr/lib/x86_64-linux-gnu/libc.so.6", false);
    double open_ns = bench(rs, &f.ev, &mo);
    printf("[ bench  ] falco rules: exec (shell in container, %zu match) %.0f ns/event, "
           "exec (ls on host, %zu match) %.0f ns/event, open (library read, %zu match) "
           "%.0f ns/event\n",
           me, exec_ns, mn, exec_plain_ns, mo, open_ns);

    kx_ruleset_free(rs);
    kx_diag_free(&d);

    /* strictly, Falco's file does not load (fields the sensor lacks) */
    rs = NULL;
    assert_true(kx_ruleset_load(paths, 1, 0, &rs, &d) < 0);
    assert_true(diag_has(&d, "unknown field"));
    kx_diag_free(&d);
}

static void test_check_files(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    const char *paths[] = {falco_path()};

    assert_non_null(out);
    assert_int_equal(kx_ruleset_check_files(paths, 1, out), 0);
    fclose(out);
    assert_non_null(strstr(buf, "rules loaded"));
    assert_non_null(strstr(buf, "  loaded    Terminal shell in container [notice] (execve)"));
    assert_non_null(strstr(buf, "  skipped   Directory traversal monitored file read: "));
    free(buf);

    char tmp[] = "/tmp/kx_rules_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    const char bad[] = "- rule: R\n  desc: d\n  condition: proc.name = (\n  output: o\n"
                       "  priority: info\n";
    assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
    close(fd);
    const char *two[] = {paths[0], tmp};
    out = open_memstream(&buf, &len);
    assert_int_equal(kx_ruleset_check_files(two, 2, out), 1);
    fclose(out);
    assert_non_null(strstr(buf, ":3:"));
    free(buf);
    unlink(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators_strings),
        cmocka_unit_test(test_operators_numbers_bools),
        cmocka_unit_test(test_operators_absent),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_glob_match),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_macros),
        cmocka_unit_test(test_append_legacy),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_enabled),
        cmocka_unit_test(test_exceptions),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_lenient),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_open_filter),
        cmocka_unit_test(test_kill),
        cmocka_unit_test(test_output_format),
        cmocka_unit_test(test_alert_json),
        cmocka_unit_test(test_format_cmdline),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_empty_and_misc),
        cmocka_unit_test(test_falco_rules),
        cmocka_unit_test(test_check_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
