/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_template.c - message templates (lib/template.c) and the filters and
 * added fields every output shares (hub/fanout.c: kx_output_wants,
 * kx_output_decorate).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../hub/fanout.h"
#include "template.h"

static const char *alert_json =
    "{\"uuid\":\"5b8c0000-0000-4000-8000-000000000001\",\"time\":\"2026-11-22T10:01:02.123Z\","
    "\"priority\":\"Critical\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"shell!\",\"tags\":[\"container\",\"shell\"],"
    "\"output_fields\":{\"proc.name\":\"bash\",\"proc.pid\":4242,\"k8s.ns.name\":\"shop\","
    "\"k8s.pod.name\":\"web-1\",\"user.name\":null,\"proc.aname[2]\":\"nginx\"}}";

static struct kx_alert *sample(void)
{
    char err[256];
    struct kx_alert *a = kx_alert_parse(alert_json, strlen(alert_json), err, sizeof(err));

    assert_non_null(a);
    return a;
}

/* Renders text against the sample alert; returns a static copy. */
static const char *render(const char *text)
{
    static char out[1024];
    char err[128];
    struct kx_template *t = kx_template_compile(text, err, sizeof(err));
    struct kx_alert *a = sample();
    struct kx_buf b;

    assert_non_null(t);
    kx_buf_init(&b, 4096);
    assert_int_equal(kx_template_render(t, a, &b), 0);
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    kx_buf_free(&b);
    kx_alert_free(a);
    kx_template_free(t);
    return out;
}

static void test_falco_style(void **state)
{
    (void)state;
    assert_string_equal(render("%rule on %hostname"), "Terminal shell in container on node-a");
    assert_string_equal(render("pid=%proc.pid."), "pid=4242.");  /* trailing dot is text */
    assert_string_equal(render("%(k8s.ns.name)/%(k8s.pod.name)"), "shop/web-1");
    assert_string_equal(render("g=%proc.aname[2]"), "g=nginx");
    assert_string_equal(render("100%% sure"), "100% sure");
    assert_string_equal(render("%user.name %no.such"), "<NA> <NA>"); /* null and absent */
    assert_string_equal(render("50% off"), "50% off");                /* lone % stays */
    assert_string_equal(render("%priority: %tags"), "Critical: container,shell");
    assert_string_equal(render("plain text"), "plain text");
    assert_string_equal(render(""), "");
}

static void test_mustache_style(void **state)
{
    char err[128];

    (void)state;
    assert_string_equal(render("{{k8s.ns.name}}/{{ k8s.pod.name }}"), "shop/web-1");
    assert_string_equal(render("{{ .Rule }} ({{ .Priority }})"),
                        "Terminal shell in container (Critical)");
    assert_string_equal(render("{{ .OutputFields.proc.name }}"), "bash");
    assert_string_equal(render("a{b}c"), "a{b}c");
    assert_null(kx_template_compile("x {{ proc.name", err, sizeof(err)));
    assert_non_null(strstr(err, "unterminated {{"));
    assert_null(kx_template_compile("{{ }}", err, sizeof(err)));
    assert_null(kx_template_compile("%(proc.name", err, sizeof(err)));
    assert_null(kx_template_compile(NULL, err, sizeof(err)));
    {
        char *big = malloc(KX_TEMPLATE_MAX + 2);

        memset(big, 'x', KX_TEMPLATE_MAX + 1);
        big[KX_TEMPLATE_MAX + 1] = '\0';
        assert_null(kx_template_compile(big, err, sizeof(err)));
        free(big);
    }
    kx_template_free(NULL);
}

static void test_render_bounded(void **state)
{
    char err[128];
    struct kx_template *t = kx_template_compile("%output %output %output", err, sizeof(err));
    struct kx_alert *a = sample();
    struct kx_buf b;

    (void)state;
    assert_int_equal(kx_template_fields(t), 3);
    kx_buf_init(&b, 8); /* smaller than the rendering */
    assert_true(kx_template_render(t, a, &b) < 0);
    kx_buf_free(&b);
    kx_alert_free(a);
    kx_template_free(t);
}

struct inst_fx {
    struct kx_config_doc *doc;
    struct kx_diag d;
    struct kx_output_instance inst;
    int rc;
};

static void inst_load(struct inst_fx *f, const char *yaml)
{
    memset(f, 0, sizeof(*f));
    f->doc = kx_config_load_string("t.yaml", yaml, &f->d);
    assert_non_null(f->doc);
    f->rc = kx_output_instance_init(&f->inst, f->doc->root, &f->d);
}

static void inst_free(struct inst_fx *f)
{
    kx_output_instance_release(&f->inst);
    kx_config_free(f->doc);
    kx_diag_free(&f->d);
}

static void test_filters(void **state)
{
    struct inst_fx f;
    struct kx_alert *a = sample();

    (void)state;
    inst_load(&f, "name: x\ntype: console\n");
    assert_int_equal(f.rc, 0);
    assert_true(kx_output_wants(&f.inst, a)); /* no filters: everything */
    inst_free(&f);

    inst_load(&f, "name: x\ntype: console\nrules: [\"Terminal shell*\", Other]\n");
    assert_int_equal(f.rc, 0);
    assert_true(kx_output_wants(&f.inst, a));
    inst_free(&f);
    inst_load(&f, "name: x\ntype: console\nrules: [Other]\n");
    assert_false(kx_output_wants(&f.inst, a));
    inst_free(&f);

    inst_load(&f, "name: x\ntype: console\ntags: [network, shell]\n");
    assert_true(kx_output_wants(&f.inst, a));
    inst_free(&f);
    inst_load(&f, "name: x\ntype: console\ntags: [network]\n");
    assert_false(kx_output_wants(&f.inst, a));
    inst_free(&f);

    inst_load(&f, "name: x\ntype: console\nsources: [k8s_audit]\n");
    assert_false(kx_output_wants(&f.inst, a));
    inst_free(&f);

    inst_load(&f, "name: x\ntype: console\nnamespaces: [shop, kube-system]\n");
    assert_true(kx_output_wants(&f.inst, a));
    inst_free(&f);
    inst_load(&f, "name: x\ntype: console\nnamespaces: [prod]\n");
    assert_false(kx_output_wants(&f.inst, a));
    inst_free(&f);
    kx_alert_free(a);
}

static void test_decorate(void **state)
{
    struct inst_fx f;
    struct kx_alert *a = sample();
    char buf[256];

    (void)state;
    inst_load(&f, "name: x\ntype: console\ncustomfields: {env: prod, team: sec}\n"
                  "templatedfields: {summary: \"%rule in {{ k8s.ns.name }}\"}\n");
    assert_int_equal(f.rc, 0);
    assert_int_equal(kx_output_decorate(&f.inst, a), 0);
    assert_string_equal(kx_alert_field_str(a, "env", buf, sizeof(buf)), "prod");
    assert_string_equal(kx_alert_field_str(a, "team", buf, sizeof(buf)), "sec");
    assert_string_equal(kx_alert_field_str(a, "summary", buf, sizeof(buf)),
                        "Terminal shell in container in shop");
    inst_free(&f);
    kx_alert_free(a);

    /* a bad template is a config error at its key */
    inst_load(&f, "name: x\ntype: console\ntemplatedfields:\n  s: \"{{ oops\"\n");
    assert_int_equal(f.rc, -EINVAL);
    assert_true(f.d.n >= 1);
    assert_non_null(strstr(f.d.msgs[0], "templatedfields.s: unterminated {{"));
    inst_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_falco_style),   cmocka_unit_test(test_mustache_style),
        cmocka_unit_test(test_render_bounded), cmocka_unit_test(test_filters),
        cmocka_unit_test(test_decorate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
