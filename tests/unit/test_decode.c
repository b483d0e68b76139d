/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_decode.c - the sensor's record decoder and process table
 * (sensor/decode.c, sensor/proctable.c): Falco renderings of flags, path
 * joining, socket tuples, ancestors, pid reuse, linger and eviction.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../sensor/decode.h"
#include "../../sensor/proctable.h"

/* A record with its string slots, built the way the kernel side packs them. */
struct rec {
    union {
        struct kx_event e;
        char raw[KX_EVENT_MAX];
    };
    size_t len;
};

static void rec_init(struct rec *r, enum kx_kind kind, uint32_t tgid, uint32_t ppid,
                     const char *comm)
{
    memset(r, 0, sizeof(*r));
    r->e.hdr.type = KX_EVENT_RECORD;
    r->e.kind = kind;
    r->e.task.tgid = r->e.task.pid = tgid;
    r->e.task.ppid = ppid;
    r->e.task.start_ns = 1000ull * tgid;
    r->e.task.loginuid = UINT32_MAX;
    snprintf(r->e.task.comm, sizeof(r->e.task.comm), "%s", comm);
    r->len = KX_EVENT_FIXED;
    r->e.hdr.size = (uint32_t)r->len;
}

/* Appends slot i (slots must be added in order; NULL = absent). */
static void rec_str(struct rec *r, int i, const char *s, size_t n)
{
    if (!s)
        return;
    memcpy(r->raw + r->len, s, n);
    r->len += n;
    r->e.hdr.size = (uint32_t)r->len;
    r->e.str_len[i] = (uint16_t)n;
}

/* argv literal with its final NUL, as the kernel packs it */
#define ARGV(s) s, sizeof(s)

static void rec_cstr(struct rec *r, int i, const char *s)
{
    if (s)
        rec_str(r, i, s, strlen(s) + 1);
}

static const char *arg(const struct kx_sevent *ev, const char *name)
{
    for (size_t i = 0; i < ev->n_args; i++)
        if (strcmp(ev->args[i].name, name) == 0)
            return ev->args[i].value;
    return NULL;
}

struct fixture {
    struct kx_proctable *pt;
    struct kx_decode *dec;
    struct kx_sevent ev;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    /* an empty proc root: nothing is filled from the real /proc */
    f->pt = kx_proctable_new("/nonexistent-proc");
    f->dec = kx_decode_new("node-a", f->pt, NULL);
    assert_non_null(f->pt);
    assert_non_null(f->dec);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    kx_decode_free(f->dec);
    kx_proctable_free(f->pt);
    free(f);
    return 0;
}

static void exec_rec(struct rec *r, uint32_t tgid, uint32_t ppid, const char *comm,
                     const char *exe, const char *argv, size_t argv_len, const char *cwd)
{
    rec_init(r, KX_K_EXEC, tgid, ppid, comm);
    r->e.task.pstart_ns = 1000ull * ppid;
    rec_cstr(r, 0, exe);
    rec_str(r, 1, argv, argv_len);
    rec_cstr(r, 2, cwd);
    rec_cstr(r, 3, exe);
}

static void apply_decode(struct fixture *f, struct rec *r)
{
    kx_proctable_apply(f->pt, &r->e, r->len);
    assert_int_equal(kx_decode_event(f->dec, &r->e, r->len, &f->ev), 0);
}

static void test_renderers(void **state)
{
    char buf[256];

    (void)state;
    kx_decode_open_flags(O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, buf, sizeof(buf));
    assert_string_equal(buf, "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
    kx_decode_open_flags(O_RDONLY, buf, sizeof(buf));
    assert_string_equal(buf, "O_RDONLY");
    kx_decode_mode(04755, buf, sizeof(buf));
    assert_non_null(strstr(buf, "S_ISUID"));
    assert_null(strstr(buf, "S_ISGID"));
    assert_non_null(strstr(buf, "S_IXOTH"));
    kx_decode_mode(0, buf, sizeof(buf));
    assert_string_equal(buf, "0");
    kx_decode_clone_flags(0x10000000 | 0x00020000, buf, sizeof(buf));
    assert_string_equal(buf, "CLONE_NEWNS|CLONE_NEWUSER");
    kx_decode_clone_flags(0x1, buf, sizeof(buf));
    assert_string_equal(buf, "0x1");
    assert_string_equal(kx_decode_ptrace_req(16), "PTRACE_ATTACH");
    assert_null(kx_decode_ptrace_req(999));
    assert_string_equal(kx_decode_signal(9), "SIGKILL");
    assert_null(kx_decode_signal(0));
    assert_null(kx_decode_signal(1000));
    assert_string_equal(kx_decode_family(AF_PACKET), "AF_PACKET");
    kx_decode_sock_type(SOCK_RAW | SOCK_CLOEXEC, buf, sizeof(buf));
    assert_string_equal(buf, "SOCK_RAW|SOCK_CLOEXEC");
    {
        uint8_t a[16] = {127, 0, 0, 1}, m[16] = {0};

        kx_decode_addr(AF_INET, a, buf, sizeof(buf));
        assert_string_equal(buf, "127.0.0.1");
        m[10] = m[11] = 0xff, m[12] = 10, m[15] = 7;
        kx_decode_addr(AF_INET6, m, buf, sizeof(buf));
        assert_string_equal(buf, "10.0.0.7");
        m[10] = m[11] = m[12] = m[15] = 0, m[15] = 1;
        kx_decode_addr(AF_INET6, m, buf, sizeof(buf));
        assert_string_equal(buf, "::1");
        kx_decode_addr(AF_UNIX, m, buf, sizeof(buf));
        assert_string_equal(buf, "");
    }
}

static void test_format_args(void **state)
{
    char out[64];
    size_t a0;

    (void)state;
    a0 = kx_proctable_format_args("sh\0-c\0echo hi\0", 15, out, sizeof(out));
    assert_int_equal(a0, 2);
    assert_string_equal(out, "-c echo hi");
    a0 = kx_proctable_format_args("bash\0", 5, out, sizeof(out));
    assert_int_equal(a0, 4);
    assert_string_equal(out, "");
    kx_proctable_format_args("x\0a\nb\0", 6, out, sizeof(out));
    assert_string_equal(out, "a.b");
    kx_proctable_format_args("x\0abcdefgh", 10, out, 4);
    assert_string_equal(out, "abc");
    kx_proctable_format_args(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

static void test_exec_and_ancestors(void **state)
{
    struct fixture *f = *state;
    struct rec r;

    exec_rec(&r, 100, 1, "nginx", "/usr/sbin/nginx", ARGV("nginx\0-g\0daemon off;"), "/");
    apply_decode(f, &r);
    exec_rec(&r, 200, 100, "bash", "/usr/bin/bash", ARGV("bash\0-c\0id"), "/srv/www");
    apply_decode(f, &r);
    exec_rec(&r, 300, 200, "cat", "/usr/bin/cat", ARGV("cat\0/etc/shadow"), "/srv/www");
    r.e.task.uid = 0;
    r.e.task.tty = 34816;
    apply_decode(f, &r);

    assert_string_equal(f->ev.type, "execve");
    assert_int_equal(f->ev.dir, '<');
    assert_string_equal(f->ev.res_str, "SUCCESS");
    assert_string_equal(f->ev.proc.name, "cat");
    assert_string_equal(f->ev.proc.exepath, "/usr/bin/cat");
    assert_string_equal(f->ev.proc.exe, "cat");
    assert_string_equal(f->ev.proc.args, "/etc/shadow");
    assert_string_equal(f->ev.proc.cmdline, "cat /etc/shadow");
    assert_string_equal(f->ev.proc.cwd, "/srv/www/");
    assert_int_equal(f->ev.proc.tty, 34816);
    assert_int_equal(f->ev.proc.loginuid, -1);
    assert_string_equal(f->ev.proc.user, "root");
    assert_int_equal(f->ev.n_anc, 2);
    assert_string_equal(f->ev.anc[0]->name, "bash");
    assert_string_equal(f->ev.anc[0]->cmdline, "bash -c id");
    assert_string_equal(f->ev.anc[1]->name, "nginx");
    assert_string_equal(f->ev.container_id, "host");
    assert_string_equal(arg(&f->ev, "exe"), "/usr/bin/cat");

    /* execveat of a memfd */
    exec_rec(&r, 301, 200, "3", "/memfd:x (deleted)", ARGV("x\0"), "/");
    r.e.flags = KX_F_EXECVEAT | KX_F_EXE_MEMFD;
    apply_decode(f, &r);
    assert_string_equal(f->ev.type, "execveat");
    assert_true(f->ev.proc.exe_from_memfd);
    assert_false(f->ev.proc.exe_upper_layer);
}

static void test_fork_exit_linger(void **state)
{
    struct fixture *f = *state;
    const struct kx_sproc *p;
    struct rec r;

    exec_rec(&r, 100, 1, "python3", "/usr/bin/python3", ARGV("python3\0app.py"), "/app");
    kx_proctable_apply(f->pt, &r.e, r.len);
    rec_init(&r, KX_K_FORK, 100, 1, "python3");
    r.e.ret = 101;
    r.e.aux = 101000;
    kx_proctable_apply(f->pt, &r.e, r.len);
    p = kx_proctable_get(f->pt, 101, 101000);
    assert_non_null(p);
    assert_string_equal(p->exepath, "/usr/bin/python3"); /* the parent's image until exec */
    assert_string_equal(p->cmdline, "python3 app.py");
    assert_int_equal(p->ppid, 100);

    /* a reused pid (other start time) is not the old process */
    assert_null(kx_proctable_get(f->pt, 101, 999999));

    /* exit: still there while lingering, gone after */
    rec_init(&r, KX_K_EXIT, 100, 1, "python3");
    r.e.task.ktime_ns = 1000;
    kx_proctable_apply(f->pt, &r.e, r.len);
    assert_non_null(kx_proctable_get(f->pt, 100, 0));
    kx_proctable_sweep(f->pt, 1000 + KX_PROC_LINGER_NS / 2);
    assert_non_null(kx_proctable_get(f->pt, 100, 0));
    kx_proctable_sweep(f->pt, 1000 + KX_PROC_LINGER_NS + 1);
    assert_null(kx_proctable_get(f->pt, 100, 0));
}

static void test_open_paths(void **state)
{
    struct fixture *f = *state;
    struct rec r;

    /* success: the kernel's resolved path */
    rec_init(&r, KX_K_OPENAT, 500, 1, "cat");
    r.e.args[0] = (uint64_t)AT_FDCWD;
    r.e.args[2] = O_RDONLY;
    r.e.ret = 3;
    r.e.flags = KX_F_RESOLVED;
    rec_cstr(&r, 0, "/etc/shadow");
    apply_decode(f, &r);
    assert_string_equal(f->ev.type, "openat");
    assert_string_equal(f->ev.fd_name, "/etc/shadow");
    assert_int_equal(f->ev.fd_typechar, 'f');
    assert_int_equal(f->ev.fd_num, 3);
    assert_true(f->ev.open_read);
    assert_false(f->ev.open_write);
    assert_string_equal(arg(&f->ev, "flags"), "O_RDONLY");

    /* failure: relative path joined with its base and normalized */
    rec_init(&r, KX_K_OPENAT, 500, 1, "sh");
    r.e.args[2] = O_WRONLY | O_CREAT | O_TRUNC;
    r.e.ret = -13;
    r.e.flags = KX_F_OPEN_WRITE;
    rec_cstr(&r, 0, "../../etc/./passwd");
    rec_cstr(&r, 1, "/var/log");
    apply_decode(f, &r);
    assert_string_equal(f->ev.fd_name, "/etc/passwd");
    assert_int_equal(f->ev.fd_num, -1);
    assert_true(f->ev.open_write);
    assert_true(f->ev.open_create);
    assert_string_equal(f->ev.res_str, "EACCES");
    assert_int_equal(f->ev.res, -13);
    assert_string_equal(arg(&f->ev, "flags"), "O_WRONLY|O_CREAT|O_TRUNC");

    /* ".." above the root stays at the root */
    rec_init(&r, KX_K_UNLINK, 500, 1, "rm");
    rec_cstr(&r, 0, "../../../x//y/");
    rec_cstr(&r, 1, "/a");
    apply_decode(f, &r);
    assert_string_equal(f->ev.fd_name, "/x/y");
}

static void test_two_paths(void **state)
{
    struct fixture *f = *state;
    struct rec r;

    rec_init(&r, KX_K_SYMLINKAT, 600, 1, "ln");
    rec_cstr(&r, 0, "/etc/shadow");
    r.e.str_len[1] = 0;
    rec_cstr(&r, 2, "link");
    rec_cstr(&r, 3, "/tmp");
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "target"), "/etc/shadow");
    assert_string_equal(arg(&f->ev, "linkpath"), "/tmp/link");

    rec_init(&r, KX_K_LINKAT, 600, 1, "ln");
    rec_cstr(&r, 0, "shadow");
    rec_cstr(&r, 1, "/etc");
    rec_cstr(&r, 2, "/tmp/h");
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "oldpath"), "/etc/shadow");
    assert_string_equal(arg(&f->ev, "newpath"), "/tmp/h");
    assert_string_equal(f->ev.target, "/tmp/h");
}

static void test_sockets(void **state)
{
    struct fixture *f = *state;
    struct rec r;

    rec_init(&r, KX_K_CONNECT, 700, 1, "curl");
    r.e.args[0] = 5;
    r.e.ret = 0;
    r.e.flags = KX_F_SOCK;
    r.e.sock.family = AF_INET;
    r.e.sock.type = SOCK_STREAM;
    r.e.sock.protocol = 6;
    r.e.sock.sport = 40000;
    r.e.sock.dport = 6443;
    memcpy(r.e.sock.saddr, (uint8_t[]){10, 0, 0, 5}, 4);
    memcpy(r.e.sock.daddr, (uint8_t[]){10, 96, 0, 1}, 4);
    apply_decode(f, &r);
    assert_int_equal(f->ev.fd_typechar, '4');
    assert_string_equal(f->ev.fd_type, "ipv4");
    assert_string_equal(f->ev.fd_l4proto, "tcp");
    assert_string_equal(f->ev.fd_sip, "10.96.0.1");
    assert_int_equal(f->ev.fd_sport, 6443);
    assert_string_equal(f->ev.fd_cip, "10.0.0.5");
    assert_string_equal(f->ev.fd_rip, "10.96.0.1");
    assert_int_equal(f->ev.fd_lport, 40000);
    assert_string_equal(f->ev.fd_name, "10.0.0.5:40000->10.96.0.1:6443");
    assert_int_equal(f->ev.fd_num, 5);

    /* accept: we are the server */
    r.e.kind = KX_K_ACCEPT4;
    r.e.ret = 7;
    apply_decode(f, &r);
    assert_string_equal(f->ev.fd_sip, "10.0.0.5");
    assert_int_equal(f->ev.fd_sport, 40000);
    assert_string_equal(f->ev.fd_cip, "10.96.0.1");
    assert_int_equal(f->ev.fd_num, 7);

    /* socket(AF_PACKET, SOCK_RAW) */
    rec_init(&r, KX_K_SOCKET, 700, 1, "tcpdump");
    r.e.args[0] = AF_PACKET;
    r.e.args[1] = SOCK_RAW;
    r.e.args[2] = 768;
    r.e.ret = 3;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "domain"), "AF_PACKET");
    assert_string_equal(arg(&f->ev, "type"), "SOCK_RAW");
    r.e.args[0] = 99;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "domain"), "99");
}

static void test_misc_kinds(void **state)
{
    struct fixture *f = *state;
    struct rec r;

    rec_init(&r, KX_K_PTRACE, 800, 1, "gdb");
    r.e.args[0] = 16;
    r.e.args[1] = 1234;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "request"), "PTRACE_ATTACH");
    assert_string_equal(arg(&f->ev, "pid"), "1234");

    rec_init(&r, KX_K_FCHMODAT, 800, 1, "chmod");
    r.e.args[2] = 02755;
    rec_cstr(&r, 0, "/tmp/x");
    apply_decode(f, &r);
    assert_non_null(strstr(arg(&f->ev, "mode"), "S_ISGID"));
    assert_string_equal(arg(&f->ev, "filename"), "/tmp/x");

    rec_init(&r, KX_K_UNSHARE, 800, 1, "unshare");
    r.e.args[0] = 0x10000000;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "flags"), "CLONE_NEWUSER");

    rec_init(&r, KX_K_BPF, 800, 1, "x");
    r.e.args[0] = 5;
    r.e.aux = 1;
    r.e.ret = -22;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "cmd"), "BPF_PROG_LOAD");
    assert_string_equal(arg(&f->ev, "prog_type"), "1");
    assert_string_equal(f->ev.res_str, "EINVAL");

    rec_init(&r, KX_K_FINIT_MODULE, 800, 1, "insmod");
    r.e.ret = -38;
    rec_cstr(&r, 0, "");
    rec_cstr(&r, 1, "/tmp/evil.ko");
    apply_decode(f, &r);
    assert_string_equal(f->ev.res_str, "ENOSYS");
    assert_string_equal(f->ev.fd_name, "/tmp/evil.ko");

    rec_init(&r, KX_K_TGKILL, 800, 1, "kill");
    r.e.args[0] = 10, r.e.args[1] = 11, r.e.args[2] = 9;
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "sig"), "SIGKILL");

    /* a truncated record (slot longer than the record) decodes without that slot */
    rec_init(&r, KX_K_MEMFD_CREATE, 800, 1, "x");
    rec_cstr(&r, 0, "payload");
    apply_decode(f, &r);
    assert_string_equal(arg(&f->ev, "name"), "payload");
    r.len -= 4;
    r.e.hdr.size = (uint32_t)r.len;
    kx_proctable_apply(f->pt, &r.e, r.len);
    assert_int_equal(kx_decode_event(f->dec, &r.e, r.len, &f->ev), 0);
    assert_null(arg(&f->ev, "name"));

    /* a header claiming more bytes than were received is refused */
    r.e.hdr.size = (uint32_t)r.len + 8;
    assert_int_equal(kx_decode_event(f->dec, &r.e, r.len, &f->ev), -EINVAL);
    r.e.hdr.size = (uint32_t)r.len;

    /* out-of-range kind */
    r.e.kind = KX_K_MAX;
    assert_int_equal(kx_decode_event(f->dec, &r.e, r.len, &f->ev), -EINVAL);
}

static void test_proc_fill(void **state)
{
    struct kx_proctable *pt = kx_proctable_new("/proc");
    const struct kx_sproc *p;
    char self[4096];
    ssize_t n;

    (void)state;
    assert_non_null(pt);
    assert_true(kx_proctable_scan(pt) > 0);
    p = kx_proctable_get(pt, (uint32_t)getpid(), 0);
    assert_non_null(p);
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    assert_string_equal(p->exepath, self);
    assert_int_equal(p->ppid, getppid());
    assert_int_equal(p->uid, getuid());
    assert_null(kx_proctable_get(pt, 0x7ffffff0u, 0)); /* no such pid */
    kx_proctable_free(pt);
    kx_proctable_free(NULL);
    kx_decode_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renderers),
        cmocka_unit_test(test_format_args),
        cmocka_unit_test_setup_teardown(test_exec_and_ancestors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_exit_linger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc_kinds, setup, teardown),
        cmocka_unit_test(test_proc_fill),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
