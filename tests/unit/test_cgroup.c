/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cgroup.c - container / pod attribution from cgroup paths
 * (sensor/cgroup.c): every runtime layout, /proc/<pid>/cgroup parsing, and
 * hostile names that must never be taken for a container.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* Relative to this file: hub/ and outputs/ are on the include path too. */
#include "../../sensor/cgroup.h"

#define ID64 "3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6c5"
#define ID12 "3ad7b26ded6d"
#define ID64B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define POD_US "1f0c7a2e_5b3d_4c1a_9e8f_0a1b2c3d4e5f"
#define POD_DASH "1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5f"

static void expect_container(const char *path, enum kx_runtime rt, const char *full,
                             const char *pod)
{
    struct kx_container c;
    int rc = kx_cgroup_parse_path(path, &c);

    if (rc != 1)
        fail_msg("expected a container in \"%s\", got rc=%d", path, rc);
    assert_int_equal(c.runtime, rt);
    assert_string_equal(c.full_id, full);
    assert_int_equal(strlen(c.id), KX_CONTAINER_ID_LEN);
    assert_memory_equal(c.id, full, KX_CONTAINER_ID_LEN);
    assert_string_equal(c.pod_uid, pod ? pod : "");
}

static void expect_none(const char *path)
{
    struct kx_container c;
    int rc = kx_cgroup_parse_path(path, &c);

    if (rc != 0)
        fail_msg("expected no container in \"%s\", got rc=%d (id=%s)", path, rc, c.id);
    assert_string_equal(c.id, "");
    assert_string_equal(c.full_id, "");
    assert_int_equal(c.runtime, KX_RUNTIME_NONE);
}

static void test_containerd_systemd(void **state)
{
    expect_container("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_US
                     ".slice/cri-containerd-" ID64 ".scope",
                     KX_RUNTIME_CONTAINERD, ID64, POD_DASH);
    expect_container("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_US
                     ".slice/cri-containerd-" ID64 ".scope",
                     KX_RUNTIME_CONTAINERD, ID64, POD_DASH);
    /* Guaranteed QoS: no QoS slice. */
    expect_container("/kubepods.slice/kubepods-pod" POD_US ".slice/cri-containerd-" ID64 ".scope",
                     KX_RUNTIME_CONTAINERD, ID64, POD_DASH);
    /* No pod around it (plain containerd / nerdctl). */
    expect_container("/system.slice/cri-containerd-" ID64 ".scope", KX_RUNTIME_CONTAINERD, ID64,
                     NULL);
    /* Our test layout. */
    expect_container("/klaxon-test.slice/cri-containerd-" ID64 ".scope", KX_RUNTIME_CONTAINERD,
                     ID64, NULL);
    /* A sub-cgroup inside the container still belongs to it. */
    expect_container("/kubepods.slice/cri-containerd-" ID64 ".scope/init.scope",
                     KX_RUNTIME_CONTAINERD, ID64, NULL);
}

static void test_crio(void **state)
{
    expect_container("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_US
                     ".slice/crio-" ID64 ".scope",
                     KX_RUNTIME_CRIO, ID64, POD_DASH);
    expect_container("/machine.slice/crio-" ID64 ".scope", KX_RUNTIME_CRIO, ID64, NULL);
    /* conmon's own scope is not the container. */
    expect_none("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_US
                ".slice/crio-conmon-" ID64 ".scope");
}

static void test_docker(void **state)
{
    expect_container("/system.slice/docker-" ID64 ".scope", KX_RUNTIME_DOCKER, ID64, NULL);
    expect_container("/docker/" ID64, KX_RUNTIME_DOCKER, ID64, NULL);
    expect_container("/docker/" ID64 "/", KX_RUNTIME_DOCKER, ID64, NULL);
    expect_container("//docker//" ID64, KX_RUNTIME_DOCKER, ID64, NULL);
    expect_container("/docker/" ID64 "/system.slice/cron.service", KX_RUNTIME_DOCKER, ID64, NULL);
    /* "/docker" must be the component right before the id. */
    expect_none("/docker/x/" ID64);
    expect_none("/mydocker/" ID64);
    expect_none("/docker");
    expect_none("/docker/");
}

static void test_podman(void **state)
{
    expect_container("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID64
                     ".scope",
                     KX_RUNTIME_PODMAN, ID64, NULL);
}

static void test_kubepods_cgroupfs(void **state)
{
    expect_container("/kubepods/burstable/pod" POD_DASH "/" ID64, KX_RUNTIME_KUBEPODS, ID64,
                     POD_DASH);
    expect_container("/kubepods/besteffort/pod" POD_DASH "/" ID64, KX_RUNTIME_KUBEPODS, ID64,
                     POD_DASH);
    expect_container("/kubepods/pod" POD_DASH "/" ID64, KX_RUNTIME_KUBEPODS, ID64, POD_DASH);
    /* Static pod: 32-hex UID. */
    expect_container("/kubepods/burstable/pod6a5d8d6ec0b5c8bd9a4fa93e65cd6b75/" ID64,
                     KX_RUNTIME_KUBEPODS, ID64, "6a5d8d6ec0b5c8bd9a4fa93e65cd6b75");
    /* A bare 64-hex component outside kubepods is not enough. */
    expect_none("/burstable/pod" POD_DASH "/" ID64);
    expect_none("/" ID64);
    expect_none("/system.slice/" ID64);
}

static void test_colon_form(void **state)
{
    expect_container("/system.slice/containerd.service/kubepods-burstable-pod" POD_US
                     ".slice:cri-containerd:" ID64,
                     KX_RUNTIME_CONTAINERD, ID64, POD_DASH);
    expect_container("/kubepods-besteffort-pod" POD_US ".slice:crio:" ID64, KX_RUNTIME_CRIO, ID64,
                     POD_DASH);
    expect_container("/foo.slice:docker:" ID64, KX_RUNTIME_DOCKER, ID64, NULL);
    expect_none("/kubepods-pod" POD_US ".slice:runc:" ID64);
    expect_none("/kubepods-pod" POD_US ".slice:cri-containerd:" ID64 ":x");
    expect_none("/kubepods-pod" POD_US ".slice:cri-containerd:" ID64 "0");
    expect_none("/x:cri-containerd");
}

static void test_pod_only(void **state)
{
    struct kx_container c;

    /* The pod cgroup itself (pause, or a process moved there): pod, no container. */
    assert_int_equal(kx_cgroup_parse_path("/kubepods.slice/kubepods-burstable.slice/"
                                          "kubepods-burstable-pod" POD_US ".slice",
                                          &c),
                     0);
    assert_string_equal(c.pod_uid, POD_DASH);
    assert_string_equal(c.id, "");
    assert_int_equal(kx_cgroup_parse_path("/kubepods/burstable/pod" POD_DASH, &c), 0);
    assert_string_equal(c.pod_uid, POD_DASH);
    /* "pod..." outside kubepods is just a name. */
    assert_int_equal(kx_cgroup_parse_path("/pod" POD_DASH, &c), 0);
    assert_string_equal(c.pod_uid, "");
}

static void test_bad_pod_uids(void **state)
{
    struct kx_container c;
    static const char *const bad[] = {
        /* wrong separators for the form */
        "/kubepods.slice/kubepods-pod" POD_DASH ".slice",
        "/kubepods/pod" POD_US,
        /* wrong length */
        "/kubepods/pod1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5",
        "/kubepods/pod1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5ff",
        "/kubepods/pod6a5d8d6ec0b5c8bd9a4fa93e65cd6b7",
        /* separators in the wrong place */
        "/kubepods/pod1f0c7a2e5-b3d-4c1a-9e8f-0a1b2c3d4e5f",
        /* not hex, uppercase */
        "/kubepods/pod1f0c7a2e-5b3d-4c1a-9e8f-0a1b2c3d4e5g",
        "/kubepods/pod1F0C7A2E-5B3D-4C1A-9E8F-0A1B2C3D4E5F",
        "/kubepods/pod",
        "/kubepods.slice/kubepods-pod.slice",
        "/kubepods.slice/kubepods-burstable-pod" POD_US ".slicex",
        "/kubepods.slice/kubepods-burstable-pod" POD_US "_.slice",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = kx_cgroup_parse_path(bad[i], &c);

        if (rc != 0 || c.pod_uid[0])
            fail_msg("pod uid accepted from \"%s\": \"%s\"", bad[i], c.pod_uid);
    }
}

static void test_bad_ids(void **state)
{
    /* Too short, too long, uppercase, non-hex, empty, prefix/suffix games. */
    expect_none("/system.slice/cri-containerd-3ad7b26ded6d.scope");
    expect_none("/system.slice/cri-containerd-" ID64 "0.scope");
    expect_none("/system.slice/cri-containerd-" ID64 ".scop");
    expect_none("/system.slice/cri-containerd-" ID64);
    expect_none("/system.slice/cri-containerd-.scope");
    expect_none("/system.slice/cri-containerd-" ID64 ".scope.scope");
    expect_none("/system.slice/cri-containerd-3AD7B26DED6D7D04B1A4A9E1CBE5E8EF0E3CD1F6F0B3F5A8E2C"
                "1D0E9F8A7B6C5.scope");
    expect_none("/system.slice/cri-containerd-3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2"
                "c1d0e9f8a7b6cg.scope");
    expect_none("/system.slice/cri-containerd--" ID64 ".scope");
    expect_none("/system.slice/xcri-containerd-" ID64 ".scope");
    expect_none("/system.slice/docker-" ID64 ".service");
    expect_none("/system.slice/docker-" ID64 "-x.scope");
    expect_none("/system.slice/Docker-" ID64 ".scope");
    expect_none("/system.slice/containerd.service");
    expect_none("/docker/3ad7b26ded6d");
    expect_none("/docker/" ID64 "z");
    expect_none("/kubepods/burstable/pod" POD_DASH "/" ID64 "a");
    expect_none("/kubepods/burstable/pod" POD_DASH "/x" ID64);
    /* 64 chars but with a space / a dot inside */
    expect_none("/docker/3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6 5");
    expect_none("/docker/3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6.5");
    /* The memory controller path this very machine uses: 32 hex. */
    expect_none("/process_api/d327f5ea998693483bf0120d23fae804");
    expect_none("");
    expect_none("/");
    expect_none("////");
    expect_none("user.slice/user-0.slice/session-1.scope");
}

static void test_innermost_wins(void **state)
{
    expect_container("/docker/" ID64 "/docker/" ID64B, KX_RUNTIME_DOCKER, ID64B, NULL);
    expect_container("/docker/" ID64 "/kubepods/besteffort/pod" POD_DASH "/" ID64B,
                     KX_RUNTIME_KUBEPODS, ID64B, POD_DASH);
    expect_container("/system.slice/docker-" ID64B ".scope/kubepods.slice/cri-containerd-" ID64
                     ".scope",
                     KX_RUNTIME_CONTAINERD, ID64, NULL);
}

static void test_too_long(void **state)
{
    struct kx_container c;
    size_t n = KX_CGROUP_PATH_MAX + 100;
    char *p = malloc(n + 1);
    char comp[KX_CGROUP_NAME_MAX + 3];

    if (!p)
        fail();
    /* A path over PATH_MAX whose tail looks like a container: rejected. */
    memset(p, 'a', n);
    p[0] = '/';
    strcpy(p + n - strlen("/docker-" ID64 ".scope"), "/docker-" ID64 ".scope");
    assert_int_equal(kx_cgroup_parse_path(p, &c), -ENAMETOOLONG);
    assert_string_equal(c.id, "");

    /* Exactly at the limit is fine (and not a container). */
    memset(p, 'b', KX_CGROUP_PATH_MAX);
    p[0] = '/';
    for (size_t i = 200; i < KX_CGROUP_PATH_MAX; i += 200)
        p[i] = '/';
    p[KX_CGROUP_PATH_MAX] = '\0';
    assert_int_equal(kx_cgroup_parse_path(p, &c), 0);

    /* One component longer than NAME_MAX, even with a valid one after it. */
    comp[0] = '/';
    memset(comp + 1, 'c', KX_CGROUP_NAME_MAX + 1);
    comp[KX_CGROUP_NAME_MAX + 2] = '\0';
    snprintf(p, n, "%s/docker-" ID64 ".scope", comp);
    assert_int_equal(kx_cgroup_parse_path(p, &c), -ENAMETOOLONG);
    assert_string_equal(c.id, "");
    free(p);
}

static void test_null_args(void **state)
{
    struct kx_container c;

    assert_int_equal(kx_cgroup_parse_path(NULL, &c), -EINVAL);
    assert_int_equal(kx_cgroup_parse_path("/docker/" ID64, NULL), -EINVAL);
    assert_int_equal(kx_cgroup_parse_proc(NULL, 0, &c), -EINVAL);
    assert_int_equal(kx_cgroup_parse_proc("0::/", 4, NULL), -EINVAL);
}

static void test_proc_v2(void **state)
{
    static const char text[] =
        "0::/kubepods.slice/kubepods-besteffort.slice/"
        "kubepods-besteffort-pod" POD_US ".slice/cri-containerd-" ID64 ".scope\n";
    struct kx_container c;

    assert_int_equal(kx_cgroup_parse_proc(text, strlen(text), &c), 1);
    assert_string_equal(c.id, ID12);
    assert_string_equal(c.full_id, ID64);
    assert_string_equal(c.pod_uid, POD_DASH);
    assert_int_equal(c.runtime, KX_RUNTIME_CONTAINERD);
    /* Without the final newline, and not NUL-terminated at len. */
    assert_int_equal(kx_cgroup_parse_proc(text, strlen(text) - 1, &c), 1);
    assert_string_equal(c.full_id, ID64);
}

static void test_proc_hybrid(void **state)
{
    /* This machine's layout: v1 controllers + "0::" for v2. The v2 line
     * wins, then v1 lines in order. */
    static const char host[] = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/"
                               "d327f5ea998693483bf0120d23fae804\n1:cpu:/\n0::/\n";
    static const char v1_docker[] = "12:pids:/docker/" ID64 "\n"
                                    "11:cpu,cpuacct:/docker/" ID64 "\n"
                                    "1:name=systemd:/docker/" ID64 "\n0::/\n";
    static const char both[] = "4:memory:/docker/" ID64B "\n"
                               "0::/system.slice/cri-containerd-" ID64 ".scope\n";
    static const char pod_then_ctr[] = "0::/kubepods/burstable/pod" POD_DASH "\n"
                                       "3:cpu:/kubepods/burstable/pod" POD_DASH "/" ID64 "\n";
    struct kx_container c;

    assert_int_equal(kx_cgroup_parse_proc(host, strlen(host), &c), 0);
    assert_string_equal(c.id, "");
    assert_int_equal(kx_cgroup_parse_proc(v1_docker, strlen(v1_docker), &c), 1);
    assert_string_equal(c.full_id, ID64);
    assert_int_equal(c.runtime, KX_RUNTIME_DOCKER);
    assert_int_equal(kx_cgroup_parse_proc(both, strlen(both), &c), 1);
    assert_string_equal(c.full_id, ID64);
    assert_int_equal(c.runtime, KX_RUNTIME_CONTAINERD);
    assert_int_equal(kx_cgroup_parse_proc(pod_then_ctr, strlen(pod_then_ctr), &c), 1);
    assert_string_equal(c.full_id, ID64);
    assert_string_equal(c.pod_uid, POD_DASH);
}

static void test_proc_hostile(void **state)
{
    struct kx_container c;
    static const char *const bad[] = {
        "",
        "\n\n\n",
        "garbage",
        "0:/docker/" ID64 "\n",     /* one colon: no path field */
        "x::/docker/" ID64 "\n",    /* hierarchy id not a number */
        ":pids:/docker/" ID64 "\n", /* empty hierarchy id */
        "0::\n",
        "0::/system.slice/cri-containerd-" ID64 "\n",
    };
    static char big[KX_CGROUP_PATH_MAX * 2 + 200];
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kx_cgroup_parse_proc(bad[i], strlen(bad[i]), &c) != 0 || c.id[0])
            fail_msg("container found in hostile /proc text #%zu", i);
    }
    /* An embedded NUL must not let a line "end early" into a valid path. */
    {
        static const char nul[] = "0::/docker/" ID64 "\0trailing\n";

        assert_int_equal(kx_cgroup_parse_proc(nul, sizeof(nul) - 1, &c), 0);
    }
    /* An oversize line is skipped; the good line after it still counts. */
    n = KX_CGROUP_PATH_MAX * 2;
    memcpy(big, "0::/", 4);
    memset(big + 4, 'a', n);
    snprintf(big + 4 + n, 200, "\n3:cpu:/docker/%s\n", ID64);
    assert_int_equal(kx_cgroup_parse_proc(big, strlen(big), &c), 1);
    assert_string_equal(c.full_id, ID64);
}

static void test_runtime_names(void **state)
{
    assert_string_equal(kx_runtime_name(KX_RUNTIME_CONTAINERD), "containerd");
    assert_string_equal(kx_runtime_name(KX_RUNTIME_CRIO), "cri-o");
    assert_string_equal(kx_runtime_name(KX_RUNTIME_DOCKER), "docker");
    assert_string_equal(kx_runtime_name(KX_RUNTIME_PODMAN), "podman");
    assert_string_equal(kx_runtime_name(KX_RUNTIME_KUBEPODS), "kubepods");
    assert_string_equal(kx_runtime_name(KX_RUNTIME_NONE), "");
}

/* The I/O side on this machine: our own process (not in a container), and
 * a cgroup we create, found again from its id alone. Needs root and a
 * cgroup2 mount; skipped otherwise (the integration test covers it too). */
static void test_resolver_live(void **state)
{
    struct kx_cgroup_resolver *r = kx_cgroup_resolver_new();
    char dir[256], path[KX_CGROUP_PATH_MAX + 1], want[128];
    struct kx_container c, c2, c3;
    const char *mnt = "/sys/fs/cgroup/unified";
    char procs[KX_CGROUP_PATH_MAX + 32], pidbuf[32];
    int rc, rc_root, rc_ctr, rc_unknown, fd, n;
    uint64_t ctr_id, root_id;
    struct stat st;
    pid_t child;

    assert_non_null(r);
    rc = kx_cgroup_resolve(r, getpid(), 0, &c);
    assert_true(rc >= 0);
    if (geteuid() != 0 || stat(mnt, &st) != 0) {
        kx_cgroup_resolver_free(r);
        skip();
    }
    snprintf(want, sizeof(want), "/klaxon-unit-%d.slice", (int)getpid());
    snprintf(dir, sizeof(dir), "%s%s", mnt, want);
    if (mkdir(dir, 0755) != 0) {
        kx_cgroup_resolver_free(r);
        skip();
    }
    assert_int_equal(stat(dir, &st), 0);
    rc = kx_cgroup_path_by_id(r, (uint64_t)st.st_ino, path, sizeof(path));
    rmdir(dir);
    if (rc != 0)
        fail_msg("kx_cgroup_path_by_id(%llu): %s", (unsigned long long)st.st_ino, strerror(-rc));
    assert_string_equal(path, want);
    /* A dead pid and an unknown id: an error, never a container. */
    rc = kx_cgroup_resolve(r, 0x3fffffff, 0xfffffffffffffull, &c);
    assert_true(rc < 0);
    assert_string_equal(c.id, "");

    /* A process that is gone already: attributed from the cgroup id. */
    snprintf(dir, sizeof(dir), "%s/klaxon-unit-%d.slice", mnt, (int)getpid());
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/cri-containerd-%s.scope", dir, ID64);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(stat(path, &st), 0);
    ctr_id = (uint64_t)st.st_ino;
    rc = kx_cgroup_resolve(r, 0x3fffffff, ctr_id, &c);
    assert_int_equal(rc, 1);
    assert_string_equal(c.id, ID12);
    assert_int_equal(c.runtime, KX_RUNTIME_CONTAINERD);

    /* A process that moved into the container cgroup AFTER its exec (the
     * shell that writes itself into cgroup.procs, then execs): the id the
     * kernel captured at exec (the root cgroup) wins over /proc's "now". */
    assert_int_equal(stat(mnt, &st), 0);
    root_id = (uint64_t)st.st_ino;
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
    fd = open(procs, O_WRONLY);
    assert_true(fd >= 0);
    n = snprintf(pidbuf, sizeof(pidbuf), "%d", (int)child);
    assert_int_equal(write(fd, pidbuf, (size_t)n), n);
    close(fd);
    rc_root = kx_cgroup_resolve(r, child, root_id, &c);
    rc_ctr = kx_cgroup_resolve(r, child, ctr_id, &c2);
    rc_unknown = kx_cgroup_resolve(r, child, 0, &c3); /* no id: /proc as it is now */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    rmdir(path);
    rmdir(dir);
    assert_int_equal(rc_root, 0);
    assert_string_equal(c.id, "");
    assert_int_equal(rc_ctr, 1);
    assert_string_equal(c2.id, ID12);
    assert_int_equal(rc_unknown, 1);
    assert_string_equal(c3.id, ID12);
    /* Cached: the removed cgroup's id still attributes (ids are unique). */
    assert_int_equal(kx_cgroup_resolve(r, 0x3fffffff, ctr_id, &c), 1);
    kx_cgroup_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_containerd_systemd),
        cmocka_unit_test(test_crio),
        cmocka_unit_test(test_docker),
        cmocka_unit_test(test_podman),
        cmocka_unit_test(test_kubepods_cgroupfs),
        cmocka_unit_test(test_colon_form),
        cmocka_unit_test(test_pod_only),
        cmocka_unit_test(test_bad_pod_uids),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_innermost_wins),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_proc_v2),
        cmocka_unit_test(test_proc_hybrid),
        cmocka_unit_test(test_proc_hostile),
        cmocka_unit_test(test_runtime_names),
        cmocka_unit_test(test_resolver_live),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
