/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sensor_settings.c - the sensor's configuration (sensor/settings.c):
 * defaults, the shipped config/sensor.yaml, every validation with its
 * file:line, environment overrides and the node name precedence.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Relative to this file: hub/ and outputs/ are on the include path too. */
#include "../../sensor/settings.h"
#include "util.h"

static const char *const kx_env_vars[] = {
    "NODE_NAME",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "NATS_URL",
    "NATS_NAME",
    "SENSOR_NODE_NAME",
    "SENSOR_QUEUE_SIZE",
    "SENSOR_PUBLISH_TIMEOUT",
    "SENSOR_ENSURE_STREAM",
};

static int clear_env(void **state)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_env_vars); i++)
        unsetenv(kx_env_vars[i]);
    return 0;
}

/* Loads yaml (named "t.yaml"), returns rc; diagnostics stay in d. */
static int load(const char *yaml, struct kx_sensor_cfg *c, struct kx_diag *d)
{
    struct kx_config_doc *doc = NULL;
    int rc;

    if (yaml) {
        doc = kx_config_load_string("t.yaml", yaml, d);
        if (!doc) {
            memset(c, 0, sizeof(*c));
            return -EINVAL;
        }
    }
    rc = kx_sensor_cfg_from_doc(doc, c, d);
    kx_config_free(doc);
    return rc;
}

static void expect_diag(const struct kx_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], needle))
            return;
    for (size_t i = 0; i < d->n; i++)
        print_message("diag: %s\n", d->msgs[i]);
    fail_msg("no diagnostic contains \"%s\"", needle);
}

static void test_defaults(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    assert_int_equal(load(NULL, &c, &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(c.log.level, "info");
    assert_int_equal(c.level, KX_LOG_INFO);
    assert_false(c.log_json);
    assert_string_equal(c.nats.url, "nats://127.0.0.1:4222");
    assert_string_equal(c.nats.name, "klaxon-sensor");
    assert_int_equal(c.sensor.queue_size, 10000);
    assert_int_equal(c.sensor.publish_timeout, 2 * KX_NSEC_PER_SEC);
    assert_false(c.sensor.ensure_stream);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_shipped_file(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    /* Unit tests run from the repository root (make unit). */
    if (access(KX_SENSOR_DEFAULT_CONFIG, R_OK) != 0)
        skip();
    assert_int_equal(kx_sensor_cfg_load(KX_SENSOR_DEFAULT_CONFIG, &c, &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(c.nats.url, "nats://127.0.0.1:4222");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_full(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    assert_int_equal(load("log: {level: debug, format: json}\n"
                          "nats: {url: 'nats://10.0.0.1:4222,nats://10.0.0.2:4222', name: s1}\n"
                          "sensor:\n"
                          "  node_name: node-7\n"
                          "  queue_size: 5\n"
                          "  publish_timeout: 250ms\n"
                          "  ensure_stream: true\n",
                          &c, &d),
                     0);
    assert_int_equal(c.level, KX_LOG_DEBUG);
    assert_true(c.log_json);
    assert_string_equal(c.nats.url, "nats://10.0.0.1:4222,nats://10.0.0.2:4222");
    assert_string_equal(c.nats.name, "s1");
    assert_string_equal(c.sensor.node_name, "node-7");
    assert_int_equal(c.sensor.queue_size, 5);
    assert_int_equal(c.sensor.publish_timeout, 250 * KX_NSEC_PER_MSEC);
    assert_true(c.sensor.ensure_stream);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_empty_sections(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    assert_int_equal(load("log:\nnats:\nsensor:\n", &c, &d), 0);
    assert_int_equal(c.sensor.queue_size, 10000);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
    assert_int_equal(load("", &c, &d), 0);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_every_error_with_position(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    assert_int_equal(load("log:\n"
                          "  level: loud\n"
                          "  format: xml\n"
                          "nats:\n"
                          "  url: ''\n"
                          "  bogus: 1\n"
                          "sensor:\n"
                          "  queue_size: 0\n"
                          "  publish_timeout: 10m\n"
                          "outputs: []\n",
                          &c, &d),
                     -EINVAL);
    expect_diag(&d, "t.yaml:2:");
    expect_diag(&d, "unknown level \"loud\"");
    expect_diag(&d, "t.yaml:3:");
    expect_diag(&d, "\"xml\" is neither text nor json");
    expect_diag(&d, "t.yaml:5:");
    expect_diag(&d, "nats.url: must not be empty");
    expect_diag(&d, "t.yaml:6:");
    expect_diag(&d, "bogus");
    expect_diag(&d, "t.yaml:8:");
    expect_diag(&d, "queue_size: 0 is out of range");
    expect_diag(&d, "t.yaml:9:");
    expect_diag(&d, "publish_timeout");
    expect_diag(&d, "t.yaml:10:");
    expect_diag(&d, "unknown key \"outputs\"");
    assert_true(d.n >= 7);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_wrong_shapes(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    assert_int_equal(load("- a\n- b\n", &c, &d), -EINVAL);
    expect_diag(&d, "t.yaml:1:");
    expect_diag(&d, "expected a mapping");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    assert_int_equal(load("log: loud\nsensor: [1]\n", &c, &d), -EINVAL);
    expect_diag(&d, "t.yaml:1:");
    expect_diag(&d, "log: expected a mapping");
    expect_diag(&d, "t.yaml:2:");
    expect_diag(&d, "sensor: expected a mapping");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    assert_int_equal(load("sensor: {queue_size: many}\n", &c, &d), -EINVAL);
    expect_diag(&d, "t.yaml:1:");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

static void test_syntax_error(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};
    char path[] = "/tmp/kx-sensor-cfg-XXXXXX";
    int fd = mkstemp(path);
    static const char bad[] = "log:\n  level: info\nnats: [1\n";

    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
    close(fd);
    assert_int_equal(kx_sensor_cfg_load(path, &c, &d), -EINVAL);
    assert_true(d.n >= 1);
    expect_diag(&d, path);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    /* A missing file is a diagnostic, not a crash. */
    assert_int_equal(kx_sensor_cfg_load("/nonexistent/sensor.yaml", &c, &d), -EINVAL);
    expect_diag(&d, "/nonexistent/sensor.yaml");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
    unlink(path);
}

static void test_env_overrides(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};

    setenv("NATS_URL", "nats://127.0.0.1:4333", 1);
    setenv("SENSOR_QUEUE_SIZE", "7", 1);
    setenv("LOG_FORMAT", "json", 1);
    assert_int_equal(load("nats: {url: nats://file:4222}\nsensor: {queue_size: 100}\n", &c, &d), 0);
    assert_string_equal(c.nats.url, "nats://127.0.0.1:4333");
    assert_int_equal(c.sensor.queue_size, 7);
    assert_true(c.log_json);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    /* A bad value from the environment names the variable. */
    setenv("LOG_LEVEL", "shouty", 1);
    assert_int_equal(load("log: {level: info}\n", &c, &d), -EINVAL);
    expect_diag(&d, "environment LOG_LEVEL");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
    clear_env(NULL);
}

static void test_node_name(void **state)
{
    struct kx_sensor_cfg c;
    struct kx_diag d = {0};
    char name[256], host[256];

    assert_int_equal(load("sensor: {node_name: from-file}\n", &c, &d), 0);
    assert_int_equal(kx_sensor_node_name(&c, name, sizeof(name)), 0);
    assert_string_equal(name, "from-file");
    setenv("NODE_NAME", "from-env", 1);
    assert_int_equal(kx_sensor_node_name(&c, name, sizeof(name)), 0);
    assert_string_equal(name, "from-env");
    unsetenv("NODE_NAME");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    /* SENSOR_NODE_NAME is the config key's override. */
    setenv("SENSOR_NODE_NAME", "from-sensor-env", 1);
    assert_int_equal(load("sensor: {node_name: from-file}\n", &c, &d), 0);
    assert_int_equal(kx_sensor_node_name(&c, name, sizeof(name)), 0);
    assert_string_equal(name, "from-sensor-env");
    unsetenv("SENSOR_NODE_NAME");
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);

    /* Nothing set: the hostname. */
    assert_int_equal(load(NULL, &c, &d), 0);
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    assert_int_equal(kx_sensor_node_name(&c, name, sizeof(name)), 0);
    assert_string_equal(name, host);
    assert_int_equal(kx_sensor_node_name(&c, name, 0), -EINVAL);
    kx_sensor_cfg_release(&c);
    kx_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_shipped_file, clear_env),
        cmocka_unit_test_setup(test_full, clear_env),
        cmocka_unit_test_setup(test_empty_sections, clear_env),
        cmocka_unit_test_setup(test_every_error_with_position, clear_env),
        cmocka_unit_test_setup(test_wrong_shapes, clear_env),
        cmocka_unit_test_setup(test_syntax_error, clear_env),
        cmocka_unit_test_setup(test_env_overrides, clear_env),
        cmocka_unit_test_setup(test_node_name, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
