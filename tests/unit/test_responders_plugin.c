/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_responders_plugin.c - the "plugin" responder (the .so loader) and the
 * sample plugin: loading build/lib/klaxon-responder-sample.so and delegating
 * init/act/destroy to it (its settings through its own option table, its
 * audit, dry-run, two instances side by side, unloading), and refusing what
 * is not a usable plugin: bad paths, a file that is no library, a library
 * without the symbol (ours and the system's libm), an ABI mismatch, no
 * act(), an act() outside the return contract.
 *
 * The .so files are found next to this binary's build: <build>/lib/ (so the
 * same test works for build/ and build/san/), or in $KX_PLUGIN_DIR.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "util.h"
/* tests are not built with -Iresponders */
#include "responders.h"
#include "responder_harness.h"

extern const struct kx_responder_ops kx_responder_plugin_loader; /* responders/plugin.c */

static const char sample_json[] =
    "{\"uuid\":\"5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69\",\"time\":\"2026-11-22T10:01:02."
    "123456789Z\","
    "\"priority\":\"Critical\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"A shell was spawned in a container\","
    "\"output_fields\":{\"proc.name\":\"bash\",\"container.id\":\"3ad7b26ded6d\"}}";

static char tmpdir[] = "/tmp/kx-plugin-test-XXXXXX";
static char libdir[PATH_MAX + 8]; /* <build>/lib */
static char sample_so[PATH_MAX + 64];

static struct kx_alert *sample(void)
{
    char err[KX_ALERT_ERR_LEN] = "";
    struct kx_alert *a = kx_alert_parse(sample_json, strlen(sample_json), err, sizeof(err));

    if (a == NULL)
        fail_msg("sample alert: %s", err);
    return a;
}

static const char *tmp_path(const char *name)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static const char *test_so(const char *which)
{
    static char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/test/klaxon-responder-%s.so", libdir, which);
    return path;
}

/* A responder action built as the engine builds it (responder_harness.h). */
#define inst_init(in, ...) inst_initf(in, &kx_responder_plugin_loader, "p1", __VA_ARGS__)

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!cJSON_IsString(v))
        fail_msg("audit has no string \"%s\"", key);
    return v->valuestring;
}

static bool loaded(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);

    if (h)
        dlclose(h);
    return h != NULL;
}

static void expect_error(const char *yaml, const char *needle)
{
    struct inst in;

    inst_init(&in, "%s", yaml);
    assert_int_not_equal(in.init_rc, 0);
    if (!strstr(diag0(&in), needle))
        fail_msg("want \"%s\" in \"%s\"", needle, diag0(&in));
    inst_free(&in);
}

/* ---- the sample plugin, delegated to --------------------------------------------- */

static void test_sample_acts_and_audits(void **state)
{
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    char *got, want[512];

    unlink(tmp_path("labels.log"));
    inst_init(&in,
              "type: plugin\npath: %s\n"
              "settings:\n  file: %s\n  label: quarantine\n"
              "params: {note: on-call}\n",
              sample_so, tmp_path("labels.log"));
    if (in.init_rc != 0)
        fail_msg("init: %s", diag0(&in));
    assert_true(loaded(sample_so));
    for (int i = 0; i < 2; i++) {
        audit = cJSON_CreateObject();
        assert_int_equal(in.r.ops->act(&in.r, a, in.core.params, audit), 0);
        assert_string_equal(jstr(audit, "action"), "label");
        assert_string_equal(jstr(audit, "plugin"), "sample_label");
        assert_string_equal(jstr(audit, "target"), tmp_path("labels.log"));
        assert_string_equal(jstr(audit, "result"), "done");
        assert_string_equal(jstr(audit, "line"), "quarantine 5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69 "
                                                 "Critical Terminal shell in container "
                                                 "note=on-call");
        cJSON_Delete(audit);
    }
    got = kx_read_file(tmp_path("labels.log"), 4096, NULL);
    assert_non_null(got);
    snprintf(want, sizeof(want), "%s\n%s\n",
             "quarantine 5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69 Critical Terminal shell in container "
             "note=on-call",
             "quarantine 5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69 Critical Terminal shell in container "
             "note=on-call");
    assert_string_equal(got, want);
    free(got);
    inst_free(&in);
    /* destroy closed the library */
    assert_false(loaded(sample_so));
    kx_alert_free(a);
}

static void test_sample_defaults_and_dry_run(void **state)
{
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit;
    struct stat sb;

    unlink(tmp_path("dry.log"));
    inst_init(&in, "type: plugin\npath: %s\nsettings: {file: %s}\n", sample_so,
              tmp_path("dry.log"));
    assert_int_equal(in.init_rc, 0);
    /* the core decides dry-run; the loader passes it on at each act */
    in.r.dry_run = true;
    audit = cJSON_CreateObject();
    assert_int_equal(in.r.ops->act(&in.r, a, NULL, audit), 0);
    assert_string_equal(jstr(audit, "result"), "dry_run");
    assert_string_equal(jstr(audit, "line"),
                        "klaxon 5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69 Critical Terminal shell in "
                        "container");
    cJSON_Delete(audit);
    assert_int_equal(stat(tmp_path("dry.log"), &sb), 0); /* created at init, */
    assert_int_equal(sb.st_size, 0);                     /* but nothing written */
    inst_free(&in);
    kx_alert_free(a);
}

/* One library, two instances: each has its own settings and state. */
static void test_two_instances(void **state)
{
    struct kx_alert *a = sample();
    struct inst one, two;
    cJSON *audit;
    char *got;

    unlink(tmp_path("one.log"));
    unlink(tmp_path("two.log"));
    inst_init(&one, "type: plugin\npath: %s\nsettings: {file: %s, label: one}\n", sample_so,
              tmp_path("one.log"));
    inst_init(&two, "type: plugin\npath: %s\nsettings: {file: %s, label: two}\n", sample_so,
              tmp_path("two.log"));
    assert_int_equal(one.init_rc, 0);
    assert_int_equal(two.init_rc, 0);
    audit = cJSON_CreateObject();
    assert_int_equal(two.r.ops->act(&two.r, a, NULL, audit), 0);
    cJSON_Delete(audit);
    inst_free(&one);
    assert_true(loaded(sample_so)); /* still used by two */
    got = kx_read_file(tmp_path("two.log"), 4096, NULL);
    assert_non_null(got);
    assert_int_equal(strncmp(got, "two ", 4), 0);
    free(got);
    got = kx_read_file(tmp_path("one.log"), 4096, NULL);
    assert_non_null(got);
    assert_string_equal(got, "");
    free(got);
    inst_free(&two);
    assert_false(loaded(sample_so));
    kx_alert_free(a);
}

/* The sample's option table, applied by the loader; its init's reason,
 * reported through r->error. */
static void test_sample_settings_errors(void **state)
{
    char yaml[8192];

    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\nsettings: {label: x}\n", sample_so);
    expect_error(yaml, "missing required key \"file\"");
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\nsettings: {file: %s, colour: red}\n",
             sample_so, tmp_path("x.log"));
    expect_error(yaml, "unknown key");
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\nsettings: {file: rel.log}\n", sample_so);
    expect_error(yaml, "plugin sample_label");
    expect_error(yaml, "file \"rel.log\" must be an absolute path");
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\nsettings: {file: /nonexistent/x.log}\n",
             sample_so);
    expect_error(yaml, "cannot open /nonexistent/x.log");
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\nsettings: [a, b]\n", sample_so);
    expect_error(yaml, "settings must be a map");
    /* nothing stays loaded after a failed init */
    assert_false(loaded(sample_so));
}

/* ---- refusing what is not a plugin --------------------------------------------------- */

static void test_bad_paths(void **state)
{
    char yaml[8192];
    FILE *f;

    expect_error("type: plugin\n", "missing required key \"path\"");
    expect_error("type: plugin\npath: klaxon-responder-sample.so\n", "must be absolute");
    expect_error("type: plugin\npath: /nonexistent/x.so\n", strerror(ENOENT));
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", tmpdir);
    expect_error(yaml, "not a regular file");
    f = fopen(tmp_path("not-elf.so"), "w");
    assert_non_null(f);
    fputs("this is not a shared object\n", f);
    fclose(f);
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", tmp_path("not-elf.so"));
    expect_error(yaml, "cannot load");
    expect_error(yaml, tmp_path("not-elf.so")); /* dlerror() names the file */
}

static void test_missing_symbol(void **state)
{
    char yaml[8192];
    void *m;
    struct link_map *lm = NULL;

    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", test_so("nosym"));
    expect_error(yaml, "is not a Klaxon responder plugin: no symbol kx_responder_plugin");
    expect_error(yaml, "undefined symbol"); /* dlerror()'s own words */
    assert_false(loaded(test_so("nosym")));

    /* Any library at all, e.g. the system's libm. */
    m = dlopen("libm.so.6", RTLD_NOW);
    assert_non_null(m);
    assert_int_equal(dlinfo(m, RTLD_DI_LINKMAP, &lm), 0);
    assert_true(lm->l_name[0] == '/');
    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", lm->l_name);
    expect_error(yaml, "no symbol kx_responder_plugin");
    dlclose(m);
}

static void test_abi_mismatch(void **state)
{
    char yaml[8192], want[128];

    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", test_so("badabi"));
    snprintf(want, sizeof(want), "built for responder ABI %u, this hub speaks %u",
             KX_RESPONDER_ABI + 1, KX_RESPONDER_ABI);
    expect_error(yaml, want);
    expect_error(yaml, "rebuild it");
    assert_false(loaded(test_so("badabi")));
}

static void test_no_act(void **state)
{
    char yaml[8192];

    snprintf(yaml, sizeof(yaml), "type: plugin\npath: %s\n", test_so("noact"));
    expect_error(yaml, "has no act()");
}

/* act() returning 1 is never taken for done. */
static void test_act_outside_contract(void **state)
{
    struct kx_alert *a = sample();
    struct inst in;
    cJSON *audit = cJSON_CreateObject();

    inst_init(&in, "type: plugin\npath: %s\n", test_so("badrc"));
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(in.r.ops->act(&in.r, a, NULL, audit), -EIO);
    assert_string_equal(jstr(audit, "plugin"), "badrc");
    assert_non_null(strstr(jstr(audit, "reason"), "returned 1"));
    cJSON_Delete(audit);
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    const char *env = getenv("KX_PLUGIN_DIR");
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        snprintf(libdir, sizeof(libdir), "%s", env);
    } else {
        /* <build>/tests/test_responders_plugin -> <build>/lib */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
            return -1;
        exe[n] = '\0';
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');

            if (!slash)
                return -1;
            *slash = '\0';
        }
        snprintf(libdir, sizeof(libdir), "%s/lib", exe);
    }
    snprintf(sample_so, sizeof(sample_so), "%s/klaxon-responder-sample.so", libdir);
    if (access(sample_so, R_OK) != 0) {
        fprintf(stderr, "%s: %s (build it: make responder-plugins, or set KX_PLUGIN_DIR)\n",
                sample_so, strerror(errno));
        return -1;
    }
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_acts_and_audits),
        cmocka_unit_test(test_sample_defaults_and_dry_run),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_sample_settings_errors),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_abi_mismatch),
        cmocka_unit_test(test_no_act),
        cmocka_unit_test(test_act_outside_contract),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
