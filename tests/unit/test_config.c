// SPDX-License-Identifier: Apache-2.0
/*
 * test_config.c - lib/config.c: the YAML tree with positions, every option
 * type, defaults, environment overrides, "<key>_file" secrets, and each error
 * path with its exact "file:line:col: message".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "util.h"

/* A webhook-like plugin config covering every option type. */
struct wh {
    char *address; /* owned */
    int64_t port;
    bool insecure;
    int64_t timeout;                    /* ns */
    int64_t maxsize;                    /* bytes */
    int minprio;                        /* enum kx_priority */
    struct kx_strlist tags;             /* owned */
    struct kx_strmap headers;           /* owned */
    char *token;                        /* owned; secret */
    int64_t pin;                        /* secret, to check hidden values */
    char *cafile;                       /* owned; key with '.' and '-' */
    const struct kx_config_node *extra; /* borrowed from the doc */
};

static const struct kx_opt wh_opts[] = {
    {"address", KX_OPT_STR, NULL, offsetof(struct wh, address), KX_OPT_REQUIRED, "URL to POST to"},
    {"port", KX_OPT_INT, "8080", offsetof(struct wh, port), 0, "port"},
    {"insecure", KX_OPT_BOOL, "false", offsetof(struct wh, insecure), 0, "skip TLS checks"},
    {"timeout", KX_OPT_DURATION, "5s", offsetof(struct wh, timeout), 0, "request timeout"},
    {"maxsize", KX_OPT_SIZE, "1MiB", offsetof(struct wh, maxsize), 0, "largest body"},
    {"minimumpriority", KX_OPT_PRIORITY, "debug", offsetof(struct wh, minprio), 0, "threshold"},
    {"tags", KX_OPT_STRLIST, "a, b", offsetof(struct wh, tags), 0, "tags"},
    {"headers", KX_OPT_STRMAP, NULL, offsetof(struct wh, headers), 0, "extra headers"},
    {"token", KX_OPT_STR, NULL, offsetof(struct wh, token), KX_OPT_SECRET, "bearer token"},
    {"pin", KX_OPT_INT, NULL, offsetof(struct wh, pin), KX_OPT_SECRET, "a secret number"},
    {"tls.ca-file", KX_OPT_STR, "", offsetof(struct wh, cafile), 0, "CA bundle"},
    {"extra", KX_OPT_NODE, NULL, offsetof(struct wh, extra), 0, "sub-tree"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static char tmpdir[64]; /* per-test scratch directory */

static const char *const env_vars[] = {
    "WEBHOOK_ADDRESS",     "WEBHOOK_PORT",    "WEBHOOK_INSECURE",
    "WEBHOOK_TIMEOUT",     "WEBHOOK_MAXSIZE", "WEBHOOK_MINIMUMPRIORITY",
    "WEBHOOK_TAGS",        "WEBHOOK_HEADERS", "WEBHOOK_TOKEN",
    "WEBHOOK_TOKEN_FILE",  "WEBHOOK_PIN",     "WEBHOOK_PIN_FILE",
    "WEBHOOK_TLS_CA_FILE", "WEBHOOK_EXTRA",   "CORE_NAME",
};

static int setup(void **state)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(env_vars); i++)
        unsetenv(env_vars[i]);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kx-test-config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    for (size_t i = 0; i < KX_ARRAY_SIZE(env_vars); i++)
        unsetenv(env_vars[i]);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes of data to <tmpdir>/name; the path goes to path. */
static const char *write_tmp(char *path, size_t len, const char *name, const char *data, size_t n)
{
    FILE *f;

    snprintf(path, len, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Fails, printing every diagnostic, unless one of them is exactly want. */
static void expect_diag(const struct kx_diag *d, const char *want)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->msgs[i], want) == 0)
            return;
    print_error("wanted diagnostic: %s\ngot %zu:\n", want, d->n);
    for (size_t i = 0; i < d->n; i++)
        print_error("  %s\n", d->msgs[i]);
    fail();
}

static void expect_only_diag(const struct kx_diag *d, const char *want)
{
    expect_diag(d, want);
    if (d->n != 1) {
        print_error("wanted exactly one diagnostic, got %zu:\n", d->n);
        for (size_t i = 0; i < d->n; i++)
            print_error("  %s\n", d->msgs[i]);
        fail();
    }
}

static void expect_no_diag(const struct kx_diag *d)
{
    if (d->n == 0)
        return;
    for (size_t i = 0; i < d->n; i++)
        print_error("unexpected: %s\n", d->msgs[i]);
    fail();
}

static struct kx_config_doc *load_ok(const char *yaml)
{
    struct kx_diag d = {0};
    struct kx_config_doc *doc = kx_config_load_string("t.yaml", yaml, &d);

    expect_no_diag(&d);
    assert_non_null(doc);
    kx_diag_free(&d);
    return doc;
}

/* Loads yaml expecting failure with exactly the one diagnostic want. */
static void load_fails(const char *yaml, const char *want)
{
    struct kx_diag d = {0};
    struct kx_config_doc *doc = kx_config_load_string("t.yaml", yaml, &d);

    assert_null(doc);
    expect_only_diag(&d, want);
    kx_diag_free(&d);
}

/* Applies wh_opts to yaml's root with prefix WEBHOOK; returns the result and
 * leaves diagnostics in d. *docp must be freed after kx_config_release. */
static int apply_wh(const char *yaml, struct wh *w, struct kx_config_doc **docp, struct kx_diag *d)
{
    *docp = load_ok(yaml);
    memset(w, 0, sizeof(*w));
    return kx_config_apply(wh_opts, (*docp)->root, w, "WEBHOOK", d);
}

/* Applies yaml expecting -EINVAL and exactly one diagnostic want. */
static void apply_fails(const char *yaml, const char *want)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    assert_int_equal(apply_wh(yaml, &w, &doc, &d), -EINVAL);
    expect_only_diag(&d, want);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    kx_diag_free(&d);
}

/* ------------------------------------------------------------------------ */

/* Same for a string. */
static const char *write_str(char *path, size_t len, const char *name, const char *data)
{
    return write_tmp(path, len, name, data, strlen(data));
}

static void test_tree_positions(void **state)
{
    struct kx_config_doc *doc = load_ok("name: hub\n"
                                        "nats:\n"
                                        "  url: nats://x:4222\n"
                                        "outputs:\n"
                                        "  - type: slack\n"
                                        "    channel: '#ops'\n"
                                        "  - type: webhook\n"
                                        "flow: {a: 1, b: [x, y]}\n");
    const struct kx_config_node *root = doc->root, *n, *c;

    assert_string_equal(doc->file, "t.yaml");
    assert_int_equal(root->kind, KX_CFG_MAP);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->col, 1);

    n = kx_config_get(root, "name");
    assert_int_equal(n->kind, KX_CFG_SCALAR);
    assert_string_equal(n->key, "name");
    assert_string_equal(n->value, "hub");
    assert_ptr_equal(n->file, doc->file);
    assert_int_equal(n->line, 1);
    assert_int_equal(n->col, 7);

    n = kx_config_get(kx_config_get(root, "nats"), "url");
    assert_string_equal(n->value, "nats://x:4222");
    assert_int_equal(n->line, 3);
    assert_int_equal(n->col, 8);

    n = kx_config_get(root, "outputs");
    assert_int_equal(n->kind, KX_CFG_SEQ);
    assert_null(n->value);
    assert_int_equal(n->line, 5);
    assert_int_equal(n->col, 3);
    c = n->child;
    assert_int_equal(c->kind, KX_CFG_MAP);
    assert_null(c->key);
    assert_int_equal(c->line, 5);
    assert_int_equal(c->col, 5);
    assert_string_equal(kx_config_get(c, "channel")->value, "#ops");
    assert_int_equal(kx_config_get(c, "channel")->line, 6);
    assert_int_equal(kx_config_get(c, "channel")->col, 14);
    c = c->next;
    assert_string_equal(kx_config_get(c, "type")->value, "webhook");
    assert_int_equal(kx_config_get(c, "type")->line, 7);
    assert_null(c->next);

    n = kx_config_get(root, "flow");
    assert_int_equal(n->kind, KX_CFG_MAP);
    assert_int_equal(n->col, 7);
    c = kx_config_get(n, "b");
    assert_int_equal(c->kind, KX_CFG_SEQ);
    assert_int_equal(c->col, 17);
    assert_string_equal(c->child->next->value, "y");
    assert_int_equal(c->child->next->col, 21);

    assert_null(kx_config_get(root, "missing"));
    assert_null(kx_config_get(kx_config_get(root, "name"), "x")); /* not a map */
    assert_null(kx_config_get(NULL, "x"));
    kx_config_free(doc);
    kx_config_free(NULL);
}

static void test_empty_and_null(void **state)
{
    static const char *const empties[] = {"", "\n\n", "# only a comment\n", "---\n", "~\n"};
    struct kx_config_doc *doc;

    for (size_t i = 0; i < KX_ARRAY_SIZE(empties); i++) {
        doc = load_ok(empties[i]);
        assert_null(doc->root);
        kx_config_free(doc);
    }

    /* Plain null spellings become "", quoted ones stay text. */
    doc = load_ok("a:\nb: ~\nc: null\nd: NULL\ne: 'null'\nf: \"\"\n");
    assert_string_equal(kx_config_get(doc->root, "a")->value, "");
    assert_string_equal(kx_config_get(doc->root, "b")->value, "");
    assert_string_equal(kx_config_get(doc->root, "c")->value, "");
    assert_string_equal(kx_config_get(doc->root, "d")->value, "");
    assert_string_equal(kx_config_get(doc->root, "e")->value, "null");
    assert_string_equal(kx_config_get(doc->root, "f")->value, "");
    kx_config_free(doc);
}

static void test_load_file(void **state)
{
    char path[256];
    struct kx_diag d = {0};
    struct kx_config_doc *doc;

    write_str(path, sizeof(path), "hub.yaml", "listen: ':2801'\n");
    doc = kx_config_load(path, &d);
    expect_no_diag(&d);
    assert_non_null(doc);
    assert_string_equal(doc->file, path);
    assert_string_equal(kx_config_get(doc->root, "listen")->value, ":2801");
    assert_string_equal(kx_config_get(doc->root, "listen")->file, path);
    kx_config_free(doc);

    /* A syntax error in a file names the file. */
    write_str(path, sizeof(path), "bad.yaml", "a: [1,\n");
    doc = kx_config_load(path, &d);
    assert_null(doc);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msgs[0], "/bad.yaml:2:1: "));
    assert_int_equal(strncmp(d.msgs[0], tmpdir, strlen(tmpdir)), 0);
    kx_diag_free(&d);
}

static void test_missing_file(void **state)
{
    struct kx_diag d = {0};

    errno = 0;
    assert_null(kx_config_load("/nonexistent/klaxon.yaml", &d));
    assert_int_equal(errno, ENOENT);
    expect_only_diag(&d, "/nonexistent/klaxon.yaml: cannot open: No such file or directory");
    kx_diag_free(&d);
}

static void test_file_too_big(void **state)
{
    char path[256];
    struct kx_diag d = {0};
    size_t n = 4 * 1024 * 1024;
    char *big = malloc(n + 1);
    struct kx_config_doc *doc;

    assert_non_null(big);
    /* Exactly 4 MiB is accepted: a comment line padded to size. */
    memset(big, ' ', n);
    big[0] = '#';
    memcpy(big + n - 6, "\na: 1\n", 6);
    write_tmp(path, sizeof(path), "max.yaml", big, n);
    doc = kx_config_load(path, &d);
    expect_no_diag(&d);
    assert_non_null(doc);
    assert_string_equal(kx_config_get(doc->root, "a")->value, "1");
    kx_config_free(doc);

    big[n] = '\n';
    write_tmp(path, sizeof(path), "big.yaml", big, n + 1);
    assert_null(kx_config_load(path, &d));
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msgs[0], "/big.yaml: file is larger than 4 MiB"));
    kx_diag_free(&d);

    /* Strings are held to the same bound. */
    big[n] = '\0';
    memset(big, 'x', n);
    big[n - 1] = '\0';
    doc = kx_config_load_string("s.yaml", big, &d);
    expect_no_diag(&d);
    kx_config_free(doc);
    char *bigger = malloc(n + 2);
    assert_non_null(bigger);
    memset(bigger, 'x', n + 1);
    bigger[n + 1] = '\0';
    assert_null(kx_config_load_string("s.yaml", bigger, &d));
    expect_only_diag(&d, "s.yaml: file is larger than 4 MiB");
    kx_diag_free(&d);
    free(bigger);
    free(big);
}

static void test_syntax_errors(void **state)
{
    load_fails("a: 1\nb: [1, 2\n", "t.yaml:3:1: did not find expected ',' or ']' "
                                   "(while parsing a flow sequence at line 2, column 4)");
    load_fails("a: 1\n  b: 2\n", "t.yaml:2:4: mapping values are not allowed in this context");
    load_fails("key: value\n- item\n", "t.yaml:2:1: did not find expected key "
                                       "(while parsing a block mapping at line 1, column 1)");
    load_fails("a: \"open\n", "t.yaml:2:1: found unexpected end of stream "
                              "(while scanning a quoted scalar at line 1, column 4)");
    /* Invalid UTF-8: the reader error is placed by its byte offset. */
    load_fails("a: 1\nb: \xff\n", "t.yaml:2:4: invalid leading UTF-8 octet (byte 0xff)");
}

static void test_duplicate_key(void **state)
{
    load_fails("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key \"a\" (first defined at line 1, "
                                     "column 1)");
    load_fails("outputs:\n  - name: a\n    url: x\n    name: b\n",
               "t.yaml:4:5: duplicate key \"name\" (first defined at line 2, column 5)");
    /* Same key in different maps is fine. */
    kx_config_free(load_ok("a: {x: 1}\nb: {x: 2}\n"));
}

static void test_structure_rejections(void **state)
{
    load_fails("? [a, b]\n: 1\n", "t.yaml:1:3: map keys must be scalars, not a list");
    load_fails("{a: 1}: 2\n", "t.yaml:1:1: map keys must be scalars, not a map");
    load_fails("a: &x 1\nb: *x\n",
               "t.yaml:1:4: anchor &x: anchors and aliases are not supported; repeat the "
               "value instead");
    load_fails("a: 1\n---\nb: 2\n",
               "t.yaml:2:1: more than one YAML document; a config file holds exactly one");
    load_fails("---\na: 1\n...\n---\nb: 2\n",
               "t.yaml:4:1: more than one YAML document; a config file holds exactly one");
    load_fails("a: \"x\\0y\"\n", "t.yaml:1:4: value contains a NUL character");
}

static void test_nesting_limit(void **state)
{
    char buf[512];
    size_t o = 0;
    struct kx_config_doc *doc;

    /* 64 nested lists are fine... */
    for (int i = 0; i < 64; i++)
        buf[o++] = '[';
    for (int i = 0; i < 64; i++)
        buf[o++] = ']';
    buf[o] = '\0';
    doc = load_ok(buf);
    assert_int_equal(doc->root->kind, KX_CFG_SEQ);
    kx_config_free(doc);

    /* ...the 65th is refused where it opens. */
    o = 0;
    for (int i = 0; i < 65; i++)
        buf[o++] = '[';
    for (int i = 0; i < 65; i++)
        buf[o++] = ']';
    buf[o] = '\0';
    load_fails(buf, "t.yaml:1:65: nesting deeper than 64 levels");

    /* Block maps count the same way: line i opens map i. */
    char *deep = malloc(8192);
    assert_non_null(deep);
    o = 0;
    for (int i = 0; i < 64; i++)
        o += (size_t)snprintf(deep + o, 8192 - o, "%*sk:\n", i, "");
    doc = load_ok(deep);
    kx_config_free(doc);
    o += (size_t)snprintf(deep + o, 8192 - o, "%*sk:\n", 64, "");
    load_fails(deep, "t.yaml:65:65: nesting deeper than 64 levels");
    free(deep);
}

static void test_all_types(void **state)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    assert_int_equal(apply_wh("address: http://example.com/hook\n"
                              "port: -9090\n"
                              "insecure: YES\n"
                              "timeout: 1m30s\n"
                              "maxsize: 64KiB\n"
                              "minimumpriority: Warning\n"
                              "tags: [x, 'y z']\n"
                              "headers:\n"
                              "  X-A: \"1\"\n"
                              "  Authorization: Bearer abc\n"
                              "token: t0k\n"
                              "pin: 1234\n"
                              "tls.ca-file: /etc/ca.pem\n"
                              "extra:\n"
                              "  - name: a\n"
                              "  - name: b\n",
                              &w, &doc, &d),
                     0);
    expect_no_diag(&d);
    assert_string_equal(w.address, "http://example.com/hook");
    assert_int_equal(w.port, -9090);
    assert_true(w.insecure);
    assert_int_equal(w.timeout, 90 * KX_NSEC_PER_SEC);
    assert_int_equal(w.maxsize, 64 * 1024);
    assert_int_equal(w.minprio, KX_PRI_WARNING);
    assert_int_equal(w.tags.n, 2);
    assert_string_equal(w.tags.v[0], "x");
    assert_string_equal(w.tags.v[1], "y z");
    assert_true(kx_strlist_has(&w.tags, "y z"));
    assert_false(kx_strlist_has(&w.tags, "y"));
    assert_int_equal(w.headers.n, 2);
    assert_string_equal(kx_strmap_get(&w.headers, "X-A"), "1");
    assert_string_equal(kx_strmap_get(&w.headers, "Authorization"), "Bearer abc");
    assert_null(kx_strmap_get(&w.headers, "x-a"));
    assert_string_equal(w.token, "t0k");
    assert_int_equal(w.pin, 1234);
    assert_string_equal(w.cafile, "/etc/ca.pem");
    assert_ptr_equal(w.extra, kx_config_get(doc->root, "extra"));
    assert_int_equal(w.extra->kind, KX_CFG_SEQ);

    /* Release clears, so a second call is harmless. */
    kx_config_release(wh_opts, &w);
    assert_null(w.address);
    assert_null(w.tags.v);
    assert_int_equal(w.tags.n, 0);
    assert_null(w.headers.keys);
    assert_null(w.extra);
    kx_config_release(wh_opts, &w);
    kx_config_release(NULL, &w);
    kx_config_free(doc);
}

static void test_scalar_spellings(void **state)
{
    static const struct {
        const char *text;
        bool val;
    } bools[] = {{"true", true}, {"False", false}, {"yes", true}, {"NO", false},
                 {"on", true},   {"Off", false},   {"1", true},   {"0", false}};
    char yaml[128];
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    for (size_t i = 0; i < KX_ARRAY_SIZE(bools); i++) {
        snprintf(yaml, sizeof(yaml), "address: x\ninsecure: %s\n", bools[i].text);
        assert_int_equal(apply_wh(yaml, &w, &doc, &d), 0);
        assert_int_equal(w.insecure, bools[i].val);
        kx_config_release(wh_opts, &w);
        kx_config_free(doc);
    }

    /* int64 limits are in range. */
    assert_int_equal(apply_wh("address: x\nport: 9223372036854775807\npin: -9223372036854775808\n",
                              &w, &doc, &d),
                     0);
    assert_true(w.port == INT64_MAX);
    assert_true(w.pin == INT64_MIN);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* A comma-separated scalar is a list; blanks are trimmed, empties skipped. */
    assert_int_equal(apply_wh("address: x\ntags: ' a ,b,, c d '\n", &w, &doc, &d), 0);
    assert_int_equal(w.tags.n, 3);
    assert_string_equal(w.tags.v[0], "a");
    assert_string_equal(w.tags.v[1], "b");
    assert_string_equal(w.tags.v[2], "c d");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* A map may also be given as "k:v" text; the first ':' splits. */
    assert_int_equal(apply_wh("address: x\nheaders: 'a: 1, url:http://h:80/'\n", &w, &doc, &d), 0);
    assert_int_equal(w.headers.n, 2);
    assert_string_equal(kx_strmap_get(&w.headers, "a"), "1");
    assert_string_equal(kx_strmap_get(&w.headers, "url"), "http://h:80/");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    expect_no_diag(&d);
}

static void test_defaults(void **state)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    /* Only the required key: everything else from kx_opt.def. */
    assert_int_equal(apply_wh("address: x\n", &w, &doc, &d), 0);
    expect_no_diag(&d);
    assert_int_equal(w.port, 8080);
    assert_false(w.insecure);
    assert_int_equal(w.timeout, 5 * KX_NSEC_PER_SEC);
    assert_int_equal(w.maxsize, 1024 * 1024);
    assert_int_equal(w.minprio, KX_PRI_DEBUG);
    assert_int_equal(w.tags.n, 2);
    assert_string_equal(w.tags.v[0], "a");
    assert_string_equal(w.tags.v[1], "b");
    assert_int_equal(w.headers.n, 0); /* def NULL: zero */
    assert_null(w.token);             /* def NULL: zero */
    assert_int_equal(w.pin, 0);
    assert_string_equal(w.cafile, ""); /* def "" */
    assert_null(w.extra);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* Empty values: default for scalar types, "" for strings, empty lists. */
    assert_int_equal(apply_wh("address: x\nport:\ntimeout: ~\ntags:\nheaders:\ntoken: ''\n"
                              "extra:\n",
                              &w, &doc, &d),
                     0);
    expect_no_diag(&d);
    assert_int_equal(w.port, 8080);
    assert_int_equal(w.timeout, 5 * KX_NSEC_PER_SEC);
    assert_int_equal(w.tags.n, 0);
    assert_int_equal(w.headers.n, 0);
    assert_string_equal(w.token, "");
    assert_null(w.extra);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* No map at all: defaults and environment only. */
    setenv("WEBHOOK_ADDRESS", "http://env/", 1);
    memset(&w, 0, sizeof(w));
    assert_int_equal(kx_config_apply(wh_opts, NULL, &w, "WEBHOOK", &d), 0);
    expect_no_diag(&d);
    assert_string_equal(w.address, "http://env/");
    assert_int_equal(w.port, 8080);
    kx_config_release(wh_opts, &w);

    /* "webhook:" with nothing under it is an empty map. */
    doc = load_ok("webhook:\n");
    memset(&w, 0, sizeof(w));
    assert_int_equal(
        kx_config_apply(wh_opts, kx_config_get(doc->root, "webhook"), &w, "WEBHOOK", &d), 0);
    expect_no_diag(&d);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
}

static void test_bad_default(void **state)
{
    struct {
        int64_t t;
    } s;
    static const struct kx_opt opts[] = {
        {"t", KX_OPT_DURATION, "soon", 0, 0, "bad default"},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    struct kx_diag d = {0};

    assert_int_equal(kx_config_apply(opts, NULL, &s, NULL, &d), -EINVAL);
    expect_only_diag(&d, "default of \"t\": bad duration \"soon\" (e.g. 250ms, 5s, 1m, 1h30m) "
                         "(bug in the option table)");
    assert_int_equal(s.t, 0);
    kx_diag_free(&d);
}

static void test_env_override(void **state)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    setenv("WEBHOOK_ADDRESS", "http://from-env/", 1);
    setenv("WEBHOOK_PORT", "7070", 1);
    setenv("WEBHOOK_INSECURE", "on", 1);
    setenv("WEBHOOK_TIMEOUT", "250ms", 1);
    setenv("WEBHOOK_MAXSIZE", "2MiB", 1);
    setenv("WEBHOOK_MINIMUMPRIORITY", "critical", 1);
    setenv("WEBHOOK_TAGS", "p, q ,r", 1);
    setenv("WEBHOOK_HEADERS", "X-A: 1, X-B:two", 1);
    setenv("WEBHOOK_TLS_CA_FILE", "/env/ca.pem", 1); /* '.' and '-' become '_' */
    setenv("WEBHOOK_TOKEN", "", 1);                  /* empty counts as unset */
    setenv("WEBHOOK_EXTRA", "ignored", 1);           /* a node has no env form */
    assert_int_equal(apply_wh("address: http://from-file/\n"
                              "port: 1\n"
                              "timeout: 1h\n"
                              "tags: [file]\n"
                              "headers: {X-C: 3}\n"
                              "token: from-file\n"
                              "tls.ca-file: /file/ca.pem\n",
                              &w, &doc, &d),
                     0);
    expect_no_diag(&d);
    assert_string_equal(w.address, "http://from-env/");
    assert_int_equal(w.port, 7070);
    assert_true(w.insecure);
    assert_int_equal(w.timeout, 250 * KX_NSEC_PER_MSEC);
    assert_int_equal(w.maxsize, 2 * 1024 * 1024);
    assert_int_equal(w.minprio, KX_PRI_CRITICAL);
    assert_int_equal(w.tags.n, 3);
    assert_string_equal(w.tags.v[2], "r");
    assert_int_equal(w.headers.n, 2);
    assert_string_equal(kx_strmap_get(&w.headers, "X-B"), "two");
    assert_null(kx_strmap_get(&w.headers, "X-C"));
    assert_string_equal(w.token, "from-file");
    assert_string_equal(w.cafile, "/env/ca.pem");
    assert_null(w.extra);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* Without a prefix the environment is not consulted. */
    doc = load_ok("address: http://from-file/\n");
    memset(&w, 0, sizeof(w));
    assert_int_equal(kx_config_apply(wh_opts, doc->root, &w, NULL, &d), 0);
    assert_string_equal(w.address, "http://from-file/");
    assert_int_equal(w.port, 8080);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    expect_no_diag(&d);
}

static void test_env_errors(void **state)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    setenv("WEBHOOK_TIMEOUT", "x", 1);
    setenv("WEBHOOK_PORT", "80a", 1);
    setenv("WEBHOOK_HEADERS", "ok:1,broken", 1);
    assert_int_equal(apply_wh("address: a\ntimeout: 1s\n", &w, &doc, &d), -EINVAL);
    expect_diag(&d, "environment WEBHOOK_TIMEOUT: bad duration \"x\" (e.g. 250ms, 5s, 1m, 1h30m)");
    expect_diag(&d, "environment WEBHOOK_PORT: bad integer \"80a\"");
    expect_diag(&d, "environment WEBHOOK_HEADERS: bad map entry \"broken\" "
                    "(want key:value,key2:value2)");
    assert_int_equal(d.n, 3);
    /* A bad value leaves the default, not the file's value. */
    assert_int_equal(w.timeout, 5 * KX_NSEC_PER_SEC);
    assert_int_equal(w.port, 8080);
    assert_int_equal(w.headers.n, 0);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    kx_diag_free(&d);
}

static void test_secret_files(void **state)
{
    char p1[256], p2[256];
    char yaml[512];
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    /* token_file in YAML: contents, trailing newline and blanks trimmed. */
    write_str(p1, sizeof(p1), "token", "  s3cret \t\r\n\n");
    snprintf(yaml, sizeof(yaml), "address: x\ntoken_file: %s\n", p1);
    assert_int_equal(apply_wh(yaml, &w, &doc, &d), 0);
    expect_no_diag(&d);
    assert_string_equal(w.token, "  s3cret");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* WEBHOOK_TOKEN_FILE beats the YAML; WEBHOOK_PIN_FILE for an int. */
    write_str(p2, sizeof(p2), "token2", "from-env-file\n");
    setenv("WEBHOOK_TOKEN_FILE", p2, 1);
    write_str(p1, sizeof(p1), "pin", "4321\n");
    setenv("WEBHOOK_PIN_FILE", p1, 1);
    assert_int_equal(apply_wh("address: x\ntoken: from-yaml\npin: 1\n", &w, &doc, &d), 0);
    expect_no_diag(&d);
    assert_string_equal(w.token, "from-env-file");
    assert_int_equal(w.pin, 4321);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);

    /* WEBHOOK_TOKEN beats everything, but not together with _FILE. */
    setenv("WEBHOOK_TOKEN", "direct", 1);
    unsetenv("WEBHOOK_TOKEN_FILE");
    assert_int_equal(apply_wh("address: x\n", &w, &doc, &d), 0);
    assert_string_equal(w.token, "direct");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    setenv("WEBHOOK_TOKEN_FILE", p2, 1);
    assert_int_equal(apply_wh("address: x\n", &w, &doc, &d), -EINVAL);
    expect_only_diag(&d, "environment WEBHOOK_TOKEN and WEBHOOK_TOKEN_FILE are both set; keep one");
    assert_null(w.token);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    kx_diag_free(&d);

    /* An empty key beside key_file is not a conflict (Helm renders those). */
    unsetenv("WEBHOOK_TOKEN");
    unsetenv("WEBHOOK_TOKEN_FILE");
    write_str(p1, sizeof(p1), "token", "abc");
    snprintf(yaml, sizeof(yaml), "address: x\ntoken: ''\ntoken_file: %s\n", p1);
    assert_int_equal(apply_wh(yaml, &w, &doc, &d), 0);
    expect_no_diag(&d);
    assert_string_equal(w.token, "abc");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
}

static void test_secret_errors(void **state)
{
    char p[256], yaml[512], want[512];
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    /* Both key and key_file in YAML. */
    apply_fails("address: x\ntoken: a\ntoken_file: /run/secret\n",
                "t.yaml:3:13: both \"token\" (line 2) and \"token_file\" are set; keep one");

    /* Unreadable secret file, from YAML and from the environment. */
    apply_fails("address: x\ntoken_file: /nonexistent/tok\n",
                "t.yaml:2:13: key \"token_file\": cannot read \"/nonexistent/tok\": No such file "
                "or directory");
    setenv("WEBHOOK_TOKEN_FILE", "/nonexistent/env-tok", 1);
    apply_fails("address: x\n", "environment WEBHOOK_TOKEN_FILE: cannot read "
                                "\"/nonexistent/env-tok\": No such file or directory");
    unsetenv("WEBHOOK_TOKEN_FILE");

    /* A directory is not a secret either. */
    snprintf(yaml, sizeof(yaml), "address: x\ntoken_file: %s\n", tmpdir);
    snprintf(want, sizeof(want),
             "t.yaml:2:13: key \"token_file\": cannot read \"%s\": Is a "
             "directory",
             tmpdir);
    apply_fails(yaml, want);

    /* Larger than 64 KiB. */
    char *big = malloc(64 * 1024 + 1);
    assert_non_null(big);
    memset(big, 'k', 64 * 1024 + 1);
    write_tmp(p, sizeof(p), "big", big, 64 * 1024 + 1);
    free(big);
    snprintf(yaml, sizeof(yaml), "address: x\ntoken_file: %s\n", p);
    snprintf(want, sizeof(want),
             "t.yaml:2:13: key \"token_file\": cannot read \"%s\": larger "
             "than 64 KiB",
             p);
    apply_fails(yaml, want);

    /* key_file must be a path, and a secret's bad value is never echoed. */
    apply_fails("address: x\ntoken_file: [a]\n",
                "t.yaml:2:13: key \"token_file\": expected a file path, got a list");
    apply_fails("address: x\npin: hunter2\n",
                "t.yaml:2:6: key \"pin\": bad integer (value hidden)");
    write_str(p, sizeof(p), "pin", "hunter2\n");
    snprintf(yaml, sizeof(yaml), "address: x\npin_file: %s\n", p);
    apply_fails(yaml, "t.yaml:2:11: key \"pin_file\": bad integer (value hidden)");

    /* Required secret: the hint names every way to provide it. */
    static const struct kx_opt req[] = {
        {"token", KX_OPT_STR, NULL, 0, KX_OPT_SECRET | KX_OPT_REQUIRED, "token"},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    char *tok = NULL;
    doc = load_ok("other: 1\n");
    assert_int_equal(kx_config_apply(req, doc->root, &tok, "SLACK", &d), -EINVAL);
    expect_diag(&d, "t.yaml:1:1: missing required key \"token\" (or \"token_file\", or environment "
                    "SLACK_TOKEN or SLACK_TOKEN_FILE)");
    expect_diag(&d, "t.yaml:1:8: unknown key \"other\"");
    kx_config_release(req, &tok);
    kx_config_free(doc);
    kx_diag_free(&d);
    (void)w;
}

static void test_unknown_keys(void **state)
{
    struct kx_config_doc *doc;
    struct kx_diag d = {0};
    struct wh w;

    apply_fails("address: x\nadress: y\n",
                "t.yaml:2:9: unknown key \"adress\" (did you mean \"address\"?)");
    apply_fails("address: x\ntiemout: 1s\n",
                "t.yaml:2:10: unknown key \"tiemout\" (did you mean \"timeout\"?)");
    apply_fails("address: x\ntoken_fiel: /x\n",
                "t.yaml:2:13: unknown key \"token_fiel\" (did you mean \"token_file\"?)");
    apply_fails("address: x\nprot: 1\n",
                "t.yaml:2:7: unknown key \"prot\" (did you mean \"port\"?)");
    /* Distance 2 still suggests, 3 does not. */
    apply_fails("address: x\nadres: y\n",
                "t.yaml:2:8: unknown key \"adres\" (did you mean \"address\"?)");
    apply_fails("address: x\naddrezzz: y\n", "t.yaml:2:11: unknown key \"addrezzz\"");
    apply_fails("address: x\nflavour: mint\n", "t.yaml:2:10: unknown key \"flavour\"");
    /* Only secrets take "<key>_file". */
    apply_fails("address: x\naddress_file: /x\n", "t.yaml:2:15: unknown key \"address_file\"");

    /* All unknown keys are reported, and known ones still applied. */
    assert_int_equal(apply_wh("address: x\nfoo: 1\nport: 1\nbar: 2\n", &w, &doc, &d), -EINVAL);
    assert_int_equal(d.n, 2);
    expect_diag(&d, "t.yaml:2:6: unknown key \"foo\"");
    expect_diag(&d, "t.yaml:4:6: unknown key \"bar\"");
    assert_int_equal(w.port, 1);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    kx_diag_free(&d);
}

static void test_wrong_types(void **state)
{
    apply_fails("address: {a: 1}\n", "t.yaml:1:10: key \"address\": expected a string, got a map");
    apply_fails("address: x\nport: abc\n", "t.yaml:2:7: key \"port\": bad integer \"abc\"");
    apply_fails("address: x\nport: 1.5\n", "t.yaml:2:7: key \"port\": bad integer \"1.5\"");
    apply_fails("address: x\nport: 99999999999999999999\n",
                "t.yaml:2:7: key \"port\": integer \"99999999999999999999\" out of range "
                "(-9223372036854775808..9223372036854775807)");
    apply_fails("address: x\nport: [1]\n", "t.yaml:2:7: key \"port\": expected an integer, got a "
                                           "list");
    apply_fails("address: x\ninsecure: maybe\n",
                "t.yaml:2:11: key \"insecure\": bad boolean \"maybe\" (want true/false, yes/no, "
                "on/off or 1/0)");
    apply_fails("address: x\ntimeout: 5 parsecs\n",
                "t.yaml:2:10: key \"timeout\": bad duration \"5 parsecs\" (e.g. 250ms, 5s, 1m, "
                "1h30m)");
    apply_fails("address: x\nmaxsize: huge\n",
                "t.yaml:2:10: key \"maxsize\": bad size \"huge\" (e.g. 512, 64KiB, 1MiB)");
    apply_fails("address: x\nminimumpriority: loud\n",
                "t.yaml:2:18: key \"minimumpriority\": bad priority \"loud\" (want emergency, "
                "alert, critical, error, warning, notice, informational or debug)");
    apply_fails("address: x\ntags: {a: 1}\n",
                "t.yaml:2:7: key \"tags\": expected a list or a comma-separated string, got a map");
    apply_fails("address: x\ntags:\n  - ok\n  - [nested]\n",
                "t.yaml:4:5: key \"tags\": item 2: expected a string, got a list");
    apply_fails("address: x\nheaders: [a, b]\n",
                "t.yaml:2:10: key \"headers\": expected a map, got a list");
    apply_fails("address: x\nheaders:\n  a: 1\n  b: {c: d}\n",
                "t.yaml:4:6: key \"headers\": value of \"b\": expected a string, got a map");
    /* Long values are cut, control characters masked: one line per message. */
    apply_fails("address: x\nport: \"1\\n23456789012345678901234567890123456789012345678901234567"
                "890xyz\"\n",
                "t.yaml:2:7: key \"port\": bad integer \"1?234567890123456789012345678901234567890"
                "1234567890123456789\"...");
}

static void test_required(void **state)
{
    struct kx_diag d = {0};
    struct wh w;

    apply_fails("port: 1\n", "t.yaml:1:1: missing required key \"address\" (or environment "
                             "WEBHOOK_ADDRESS)");
    apply_fails("port: 1\naddress: ''\n", "t.yaml:2:10: key \"address\": required, but empty");

    /* No map and no prefix: no position and no hint. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(kx_config_apply(wh_opts, NULL, &w, NULL, &d), -EINVAL);
    expect_only_diag(&d, "missing required key \"address\"");
    kx_config_release(wh_opts, &w);
    kx_diag_free(&d);

    /* Not a map at all. */
    struct kx_config_doc *doc = load_ok("webhook: [a]\nslack: off\n");
    memset(&w, 0, sizeof(w));
    assert_int_equal(kx_config_apply(wh_opts, kx_config_get(doc->root, "webhook"), &w, NULL, &d),
                     -EINVAL);
    expect_diag(&d, "t.yaml:1:10: expected a map of settings, got a list");
    kx_config_release(wh_opts, &w);
    kx_diag_free(&d);
    assert_int_equal(kx_config_apply(wh_opts, kx_config_get(doc->root, "slack"), &w, NULL, &d),
                     -EINVAL);
    expect_diag(&d, "t.yaml:2:8: expected a map of settings, got \"off\"");
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
    kx_diag_free(&d);
}

/* The core's part of an output block, split from the plugin's (wh_opts). */
struct core {
    char *name;    /* owned */
    int minprio;   /* enum kx_priority */
    char *address; /* owned; both tables want it */
};

static const struct kx_opt core_opts[] = {
    {"name", KX_OPT_STR, NULL, offsetof(struct core, name), KX_OPT_REQUIRED, "instance name"},
    {"minimumpriority", KX_OPT_PRIORITY, "debug", offsetof(struct core, minprio), 0, "threshold"},
    {"address", KX_OPT_STR, NULL, offsetof(struct core, address), 0, "for logs"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct kx_opt core_opts_short[] = {
    {"name", KX_OPT_STR, NULL, offsetof(struct core, name), KX_OPT_REQUIRED, "instance name"},
    {"type", KX_OPT_STR, NULL, offsetof(struct core, address), 0, "output type"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static void test_apply_sets(void **state)
{
    struct kx_config_doc *doc = load_ok("name: ops\n"
                                        "type: webhook\n"
                                        "address: http://h/\n"
                                        "timeout: 2s\n"
                                        "nmae: typo\n");
    struct core c;
    struct wh w;
    struct kx_diag d = {0};
    struct kx_opt_set sets[] = {{core_opts_short, &c}, {wh_opts, &w}};

    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    setenv("CORE_NAME", "from-env", 1);
    assert_int_equal(kx_config_apply_sets(sets, 2, doc->root, "WEBHOOK", &d), -EINVAL);
    /* Only the key neither table knows is unknown; suggestions span tables. */
    expect_only_diag(&d, "t.yaml:5:7: unknown key \"nmae\" (did you mean \"name\"?)");
    assert_string_equal(c.name, "ops"); /* prefix is WEBHOOK, so CORE_NAME is ignored */
    assert_string_equal(c.address, "webhook");
    assert_string_equal(w.address, "http://h/");
    assert_int_equal(w.timeout, 2 * KX_NSEC_PER_SEC);
    kx_config_release(core_opts_short, &c);
    kx_config_release(wh_opts, &w);
    kx_diag_free(&d);
    kx_config_free(doc);

    /* A key in both tables fills both structs. */
    doc = load_ok("name: ops\naddress: http://both/\nminimumpriority: error\n");
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    struct kx_opt_set both[] = {{core_opts, &c}, {wh_opts, &w}};
    assert_int_equal(kx_config_apply_sets(both, 2, doc->root, NULL, &d), 0);
    expect_no_diag(&d);
    assert_string_equal(c.address, "http://both/");
    assert_string_equal(w.address, "http://both/");
    assert_int_equal(c.minprio, KX_PRI_ERROR);
    assert_int_equal(w.minprio, KX_PRI_ERROR);
    kx_config_release(core_opts, &c);
    kx_config_release(wh_opts, &w);
    kx_config_free(doc);
}

static void test_diag_api(void **state)
{
    struct kx_diag d = {0};
    struct kx_config_node at = {.file = "f.yaml", .line = 3, .col = 9};
    char buf[256] = "";
    FILE *f = tmpfile();

    kx_diag_add(&d, &at, "bad %s %d", "thing", 7);
    kx_diag_add(&d, NULL, "no position");
    for (int i = 0; i < 20; i++)
        kx_diag_add(&d, NULL, "more %d", i);
    assert_int_equal(d.n, 22);
    assert_string_equal(d.msgs[0], "f.yaml:3:9: bad thing 7");
    assert_string_equal(d.msgs[1], "no position");
    assert_non_null(f);
    kx_diag_print(&d, f);
    rewind(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_string_equal(buf, "f.yaml:3:9: bad thing 7\n");
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_string_equal(buf, "no position\n");
    fclose(f);
    kx_diag_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.msgs);
    kx_diag_free(&d);
    kx_diag_add(NULL, NULL, "ignored");

    assert_null(kx_strmap_get(NULL, "x"));
    assert_false(kx_strlist_has(NULL, "x"));
}

static void test_print_opts(void **state)
{
    char path[256], *out;
    int fd, saved;

    snprintf(path, sizeof(path), "%s/opts.txt", tmpdir);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    kx_config_print_opts(wh_opts, "  ");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    out = kx_read_file(path, 65536, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "  address (str, required): URL to POST to\n"));
    assert_non_null(strstr(out, "  port (int, default 8080): port\n"));
    assert_non_null(strstr(out, "  timeout (duration, default 5s): request timeout\n"));
    assert_non_null(strstr(out, "  token (str, secret, or token_file): bearer token\n"));
    assert_non_null(strstr(out, "  tls.ca-file (str, default \"\"): CA bundle\n"));
    assert_non_null(strstr(out, "  extra (node): sub-tree\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structure_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nesting_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scalar_spellings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_opts, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
