/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_respond.c - the responder engine's configuration and matching,
 * without NATS (tests/integration/test_responders.py runs the rest).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"
#include "config.h"
#include "log.h"
#include "respond.h"

static struct kx_respond *parse(const char *yaml, struct kx_config_doc **doc, struct kx_diag *d)
{
    *doc = kx_config_load_string("test.yaml", yaml, d);
    assert_non_null(*doc);
    return kx_respond_parse(kx_config_get((*doc)->root, "responders"), d);
}

static struct kx_alert *alert(const char *rule, enum kx_priority p, const char *ns,
                              const char *tag)
{
    struct kx_alert *a = kx_alert_new(rule, p, "syscall", "node-a", "out", 0);
    assert_non_null(a);
    if (ns)
        assert_int_equal(kx_alert_set_str(a, "k8s.ns.name", ns), 0);
    if (tag)
        assert_int_equal(kx_alert_add_tag(a, tag), 0);
    return a;
}

static void test_match(void **st)
{
    struct kx_diag d = {0};
    struct kx_config_doc *doc;
    struct kx_respond *r = parse(
        "responders:\n"
        "  - name: shells\n"
        "    match: {rules: [\"Terminal shell*\"], priority: warning, tags: [shell],\n"
        "            fields: {k8s.ns.name: \"shop*\"}}\n"
        "    actions: [{type: node, params: {action: kill_process}}]\n"
        "  - name: anything\n"
        "    actions: [{type: node, params: {action: freeze_container}}]\n",
        &doc, &d);
    assert_non_null(r);
    assert_int_equal(d.n, 0);

    struct kx_alert *a = alert("Terminal shell in container", KX_PRI_CRITICAL, "shop-eu", "shell");
    assert_true(kx_respond_matches(r, 0, a));
    assert_true(kx_respond_matches(r, 1, a)); /* no match clause: every alert */
    kx_alert_free(a);
    /* each condition alone turns it off */
    a = alert("Terminal shell in container", KX_PRI_NOTICE, "shop-eu", "shell");
    assert_false(kx_respond_matches(r, 0, a)); /* below warning */
    kx_alert_free(a);
    a = alert("Read sensitive file", KX_PRI_CRITICAL, "shop-eu", "shell");
    assert_false(kx_respond_matches(r, 0, a)); /* rule glob */
    kx_alert_free(a);
    a = alert("Terminal shell in container", KX_PRI_CRITICAL, "shop-eu", "network");
    assert_false(kx_respond_matches(r, 0, a)); /* tags */
    kx_alert_free(a);
    a = alert("Terminal shell in container", KX_PRI_CRITICAL, "billing", "shell");
    assert_false(kx_respond_matches(r, 0, a)); /* field glob */
    kx_alert_free(a);
    a = alert("Terminal shell in container", KX_PRI_CRITICAL, NULL, "shell");
    assert_false(kx_respond_matches(r, 0, a)); /* field absent */
    kx_alert_free(a);

    kx_respond_free(r);
    kx_config_free(doc);
    kx_diag_free(&d);
}

static bool has(const struct kx_diag *d, const char *s)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], s))
            return true;
    return false;
}

static void test_config_errors(void **st)
{
    struct kx_diag d = {0};
    struct kx_config_doc *doc;
    struct kx_respond *r = parse(
        "responders:\n"
        "  - name: a\n"
        "    match: {priority: loud, colour: red}\n"
        "    actions:\n"
        "      - {type: node, params: {action: reboot}}\n"
        "      - {type: teleport}\n"
        "      - {type: node, params: {action: kill_container, signal: SIGTERM}}\n"
        "  - name: a\n"
        "    actions: [{type: node, params: {action: kill_process}, timeout: 1ms}]\n"
        "  - name: c\n"
        "    actions: []\n"
        "    window: 0s\n"
        "  - {actions: [{type: node}]}\n",
        &doc, &d);
    assert_null(r);
    assert_true(has(&d, "bad priority \"loud\""));
    assert_true(has(&d, "colour"));
    assert_true(has(&d, "test.yaml:5:"));
    assert_true(has(&d, "params.action must be kill_process"));
    assert_true(has(&d, "unknown action type \"teleport\" (known: node"));
    assert_true(has(&d, "signal applies to kill_process only"));
    assert_true(has(&d, "responder name \"a\" is used twice"));
    assert_true(has(&d, "timeout >= 100ms"));
    assert_true(has(&d, "responder c: actions must be a non-empty list"));
    assert_true(has(&d, "window must be at least 1s"));
    assert_true(has(&d, "name"));
    kx_config_free(doc);
    kx_diag_free(&d);

    /* not a list */
    r = parse("responders: {name: x}\n", &doc, &d);
    assert_null(r);
    assert_true(has(&d, "must be a list"));
    kx_config_free(doc);
    kx_diag_free(&d);

    /* none at all is fine */
    r = parse("log: {level: info}\n", &doc, &d);
    assert_non_null(r);
    assert_int_equal(d.n, 0);
    kx_respond_free(r);
    kx_config_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_config_errors),
    };
    kx_log_init("test_respond", KX_LOG_WARN, false);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
