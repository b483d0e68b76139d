/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_outputs.c - the console, file and webhook outputs and the registry:
 * pure formatters called directly, settings filled from YAML the way the
 * core does it, the file output rotating in a temporary directory, and the
 * webhook delivering to the hub's own HTTP server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "console.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "outputs.h"
#include "util.h"

extern const struct kx_output_ops kx_output_webhook; /* outputs/webhook.c */

static const char sample_json[] =
    "{\"uuid\":\"5b8c0f3e-8f0e-4d1a-9c1e-2f1d3c4b5a69\",\"time\":\"2026-11-22T10:01:02."
    "123456789Z\","
    "\"priority\":\"Critical\",\"rule\":\"Terminal shell in container\",\"source\":\"syscall\","
    "\"hostname\":\"node-a\",\"output\":\"10:01:02.123: Critical A shell was spawned in a "
    "container (user=root shell=bash)\",\"tags\":[\"container\",\"shell\"],"
    "\"output_fields\":{\"evt.type\":\"execve\",\"proc.name\":\"bash\",\"proc.pid\":4242,"
    "\"container.id\":\"3ad7b26ded6d\",\"k8s.ns.name\":\"shop\"}}";

static struct kx_alert *sample(void)
{
    char err[KX_ALERT_ERR_LEN] = "";
    struct kx_alert *a = kx_alert_parse(sample_json, strlen(sample_json), err, sizeof(err));

    if (a == NULL)
        fail_msg("sample alert: %s", err);
    return a;
}

/* An output instance configured from YAML the way the core does it. */
struct inst {
    struct kx_config_doc *doc;
    struct kx_output out;
    struct kx_diag d;
    int apply_rc, init_rc;
};

static void inst_init(struct inst *in, const struct kx_output_ops *ops, const char *yaml)
{
    memset(in, 0, sizeof(*in));
    in->doc = kx_config_load_string("test.yaml", yaml, &in->d);
    assert_non_null(in->doc);
    in->out.ops = ops;
    in->out.name = "t1";
    in->out.settings = calloc(1, ops->settings_size);
    in->apply_rc = kx_config_apply(ops->opts, in->doc->root, in->out.settings, NULL, &in->d);
    in->init_rc = in->apply_rc == 0 ? ops->init(&in->out, in->doc->root, &in->d) : in->apply_rc;
}

static void inst_free(struct inst *in)
{
    if (in->out.ops->destroy)
        in->out.ops->destroy(&in->out);
    kx_config_release(in->out.ops->opts, in->out.settings);
    free(in->out.settings);
    kx_config_free(in->doc);
    kx_diag_free(&in->d);
}

static const char *diag0(const struct inst *in)
{
    return in->d.n ? in->d.msgs[0] : "";
}

/* ---- formatters ---------------------------------------------------------- */

static void test_format_text(void **state)
{
    struct kx_alert *a = sample();
    struct kx_buf b;

    kx_buf_init(&b, 1 << 20);
    assert_int_equal(kx_console_format_text(a, &b), 0);
    assert_string_equal(b.data, "2026-11-22T10:01:02.123456789Z Critical Terminal shell in "
                                "container: 10:01:02.123: Critical A shell was spawned in a "
                                "container (user=root shell=bash) [host=node-a "
                                "container=3ad7b26ded6d]\n");
    /* Appends. */
    assert_int_equal(kx_console_format_text(a, &b), 0);
    {
        size_t first = (size_t)(strchr(b.data, '\n') - b.data) + 1;

        assert_int_equal(b.len, 2 * first);
        assert_memory_equal(b.data, b.data + first, first);
    }
    kx_buf_free(&b);
    kx_alert_free(a);
}

static void test_format_text_one_line_and_optional_fields(void **state)
{
    struct kx_alert *a = kx_alert_new("Odd\nrule", KX_PRI_WARNING, "syscall", "",
                                      "line1\nline2\r\tend", 1795341662000000000LL);
    struct kx_buf b;

    assert_non_null(a);
    kx_buf_init(&b, 1 << 20);
    assert_int_equal(kx_console_format_text(a, &b), 0);
    assert_string_equal(b.data, "2026-11-22T10:01:02.000000000Z Warning Odd rule: line1 line2  "
                                "end\n");
    kx_buf_reset(&b);
    assert_int_equal(kx_alert_set_str(a, "container.id", "abc123"), 0);
    assert_int_equal(kx_console_format_text(a, &b), 0);
    assert_non_null(strstr(b.data, ": line1 line2  end [container=abc123]\n"));

    /* A buffer too small leaves it unchanged. */
    kx_buf_free(&b);
    kx_buf_init(&b, 20);
    assert_int_equal(kx_buf_append(&b, "keep", 4), 0);
    assert_int_equal(kx_console_format_text(a, &b), -E2BIG);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    kx_buf_free(&b);
    kx_alert_free(a);
}

static void test_format_json(void **state)
{
    struct kx_alert *a = sample(), *back;
    char *json = kx_alert_to_json(a), err[KX_ALERT_ERR_LEN];
    struct kx_buf b;

    kx_buf_init(&b, 1 << 20);
    assert_int_equal(kx_console_format_json(a, &b), 0);
    assert_int_equal(b.len, strlen(json) + 1);
    assert_memory_equal(b.data, json, strlen(json));
    assert_int_equal(b.data[b.len - 1], '\n');
    assert_null(memchr(b.data, '\n', b.len - 1)); /* one line */
    back = kx_alert_parse(b.data, b.len, err, sizeof(err));
    assert_non_null(back);
    assert_string_equal(back->rule, "Terminal shell in container");
    assert_string_equal(back->uuid, a->uuid);
    kx_alert_free(back);
    free(json);
    kx_buf_free(&b);
    kx_alert_free(a);
}

/* ---- console -------------------------------------------------------------- */

/* Runs deliver with stdout redirected to a file; returns what was printed
 * (caller frees). */
static char *capture_stdout(struct kx_output *o, struct kx_alert *const *batch, size_t n, int *rc)
{
    char path[] = "/tmp/kx-test-stdout-XXXXXX";
    int fd = mkstemp(path), saved;
    size_t len;
    char *out;

    assert_true(fd >= 0);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    *rc = o->ops->deliver(o, batch, n);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    out = kx_read_file(path, 1 << 20, &len);
    unlink(path);
    return out;
}

static void test_console_deliver(void **state)
{
    struct kx_alert *batch[2] = {sample(), sample()};
    struct inst in;
    char *out;
    int rc;

    inst_init(&in, &kx_output_console, "format: text\n");
    assert_int_equal(in.init_rc, 0);
    out = capture_stdout(&in.out, batch, 2, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "Critical Terminal shell in container: "));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out) / 2); /* two equal lines */
    free(out);
    inst_free(&in);

    inst_init(&in, &kx_output_console, "format: json\n");
    assert_int_equal(in.init_rc, 0);
    out = capture_stdout(&in.out, batch, 1, &rc);
    assert_int_equal(rc, 0);
    assert_true(out[0] == '{');
    assert_non_null(strstr(out, "\"rule\":\"Terminal shell in container\""));
    free(out);
    inst_free(&in);

    /* Default is text; a bad format is a config error with its position. */
    inst_init(&in, &kx_output_console, "{}\n");
    assert_int_equal(in.init_rc, 0);
    inst_free(&in);
    inst_init(&in, &kx_output_console, "format: xml\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:1:"));
    assert_non_null(strstr(diag0(&in), "want text or json"));
    inst_free(&in);
    kx_alert_free(batch[0]);
    kx_alert_free(batch[1]);
}

/* ---- file ------------------------------------------------------------------ */

static int count_lines(const char *path)
{
    size_t len;
    char *s = kx_read_file(path, 1 << 20, &len);
    int n = 0;

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    free(s);
    return n;
}

static void test_file_output(void **state)
{
    char dir[] = "/tmp/kx-test-file-XXXXXX", path[128], moved[160], yaml[256];
    struct kx_alert *batch[2] = {sample(), sample()};
    struct inst in;
    char *text, *line, *save = NULL, err[KX_ALERT_ERR_LEN];
    size_t len;
    int n = 0;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/alerts.jsonl", dir);
    snprintf(yaml, sizeof(yaml), "path: %s\n", path);
    inst_init(&in, &kx_output_file, yaml);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(in.out.ops->deliver(&in.out, batch, 2), 0);
    assert_int_equal(in.out.ops->deliver(&in.out, batch, 1), 0);

    text = kx_read_file(path, 1 << 20, &len);
    assert_non_null(text);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct kx_alert *a = kx_alert_parse(line, strlen(line), err, sizeof(err));

        assert_non_null(a);
        assert_string_equal(a->rule, "Terminal shell in container");
        kx_alert_free(a);
        n++;
    }
    assert_int_equal(n, 3);
    free(text);

    /* logrotate moves the file away: the next batch starts a new one. */
    snprintf(moved, sizeof(moved), "%s.1", path);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(in.out.ops->deliver(&in.out, batch, 1), 0);
    assert_int_equal(count_lines(path), 1);
    assert_int_equal(count_lines(moved), 3);
    inst_free(&in);

    /* A second instance appends, never truncates. */
    inst_init(&in, &kx_output_file, yaml);
    assert_int_equal(in.out.ops->deliver(&in.out, batch, 2), 0);
    assert_int_equal(count_lines(path), 3);
    inst_free(&in);

    unlink(path);
    unlink(moved);
    rmdir(dir);
    kx_alert_free(batch[0]);
    kx_alert_free(batch[1]);
}

static void test_file_errors(void **state)
{
    struct kx_alert *a = sample();
    struct inst in;

    /* A full disk is a retry, with the reason. */
    inst_init(&in, &kx_output_file, "path: /dev/full\n");
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "write /dev/full: No space left on device"));
    inst_free(&in);

    /* path is required; an unwritable one fails init with the reason. */
    inst_init(&in, &kx_output_file, "{}\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "path"));
    inst_free(&in);
    inst_init(&in, &kx_output_file, "path: /nonexistent-dir/x.jsonl\n");
    assert_int_equal(in.init_rc, -ENOENT);
    assert_non_null(strstr(diag0(&in), "open /nonexistent-dir/x.jsonl: No such file"));
    inst_free(&in);
    kx_alert_free(a);
}

/* ---- file rotation ----------------------------------------------------------- */

/* Alert number seq whose output is padded so that its JSON line is long or
 * short; lines of the same padding have the same length. */
static struct kx_alert *seq_alert(int seq, size_t pad)
{
    char output[4096];
    struct kx_alert *a;

    assert_true(pad < sizeof(output) - 16);
    snprintf(output, sizeof(output), "alert %03d %*s", seq, (int)pad, "");
    a = kx_alert_new("Rotation test", KX_PRI_WARNING, "syscall", "node-a", output,
                     1795341662000000000LL);
    assert_non_null(a);
    return a;
}

/* Length of a's line in the file. */
static size_t line_len(const struct kx_alert *a)
{
    char *json = kx_alert_to_json(a);
    size_t len = strlen(json) + 1;

    free(json);
    return len;
}

/* Delivers alerts first..first+n-1 (padding pad) in one batch; deliver's result. */
static int deliver_seq(struct inst *in, int first, int n, size_t pad)
{
    struct kx_alert *batch[16];
    int rc;

    assert_true(n <= (int)KX_ARRAY_SIZE(batch));
    for (int i = 0; i < n; i++)
        batch[i] = seq_alert(first + i, pad);
    rc = in->out.ops->deliver(&in->out, batch, (size_t)n);
    for (int i = 0; i < n; i++)
        kx_alert_free(batch[i]);
    return rc;
}

/* Asserts that "<dir>/alerts.jsonl<sfx>" holds exactly the whole lines of
 * alerts want[0..n), in order; n == -1: the file must not exist. */
static void assert_file_seqs(const char *dir, const char *sfx, const int *want, int n)
{
    char path[256], err[KX_ALERT_ERR_LEN], *text, *line, *save = NULL;
    size_t len;
    int got = 0;

    snprintf(path, sizeof(path), "%s/alerts.jsonl%s", dir, sfx);
    text = kx_read_file(path, 1 << 20, &len);
    if (n < 0) {
        if (text != NULL)
            fail_msg("%s exists", path);
        return;
    }
    if (text == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    assert_true(len == 0 || text[len - 1] == '\n'); /* no torn last line */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct kx_alert *a = kx_alert_parse(line, strlen(line), err, sizeof(err));
        int seq = -1;

        if (a == NULL)
            fail_msg("%s line %d: %s", path, got + 1, err);
        assert_int_equal(sscanf(a->output, "alert %d", &seq), 1);
        if (got >= n || seq != want[got])
            fail_msg("%s line %d: alert %d, want %d", path, got + 1, seq, got < n ? want[got] : -1);
        kx_alert_free(a);
        got++;
    }
    assert_int_equal(got, n);
    free(text);
}

#define ASSERT_SEQS(dir, sfx, ...)                                                                 \
    do {                                                                                           \
        const int want_[] = {__VA_ARGS__};                                                         \
        assert_file_seqs(dir, sfx, want_, (int)KX_ARRAY_SIZE(want_));                              \
    } while (0)

static int64_t file_size(const char *dir, const char *sfx)
{
    char path[256];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/alerts.jsonl%s", dir, sfx);
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* Files (and empty directories) in dir. */
static int dir_entries(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dp);
    return n;
}

static void rm_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;
    char path[512];

    assert_non_null(dp);
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) < 0)
            rmdir(path);
    }
    closedir(dp);
    assert_int_equal(rmdir(dir), 0);
}

/* A file output on "<dir>/alerts.jsonl" with the given extra settings. */
static void file_inst(struct inst *in, const char *dir, const char *extra)
{
    char yaml[512];

    snprintf(yaml, sizeof(yaml), "path: %s/alerts.jsonl\n%s", dir, extra);
    inst_init(in, &kx_output_file, yaml);
}

static void test_file_rotate_boundary(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", extra[128];
    struct kx_alert *a = seq_alert(0, 100);
    size_t l = line_len(a);
    struct inst in;

    kx_alert_free(a);
    assert_non_null(mkdtemp(dir));
    snprintf(extra, sizeof(extra), "maxsize: %zu\nmaxbackups: 5\n", 3 * l);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);

    /* Exactly maxsize is not past it. */
    assert_int_equal(deliver_seq(&in, 0, 3, 100), 0);
    assert_int_equal(file_size(dir, ""), (int64_t)(3 * l));
    assert_int_equal(dir_entries(dir), 1);

    /* One byte more would be: rotate first. */
    assert_int_equal(deliver_seq(&in, 3, 1, 100), 0);
    ASSERT_SEQS(dir, ".1", 0, 1, 2);
    ASSERT_SEQS(dir, "", 3);

    /* A batch that does not fit is split between files at a line boundary. */
    assert_int_equal(deliver_seq(&in, 4, 5, 100), 0);
    ASSERT_SEQS(dir, ".2", 0, 1, 2);
    ASSERT_SEQS(dir, ".1", 3, 4, 5);
    ASSERT_SEQS(dir, "", 6, 7, 8);
    assert_int_equal(dir_entries(dir), 3);

    /* logrotate moving the file away still works alongside. */
    {
        char from[256], to[256];

        snprintf(from, sizeof(from), "%s/alerts.jsonl", dir);
        snprintf(to, sizeof(to), "%s/alerts.jsonl.moved", dir);
        assert_int_equal(rename(from, to), 0);
    }
    assert_int_equal(deliver_seq(&in, 9, 3, 100), 0);
    ASSERT_SEQS(dir, "", 9, 10, 11);
    ASSERT_SEQS(dir, ".1", 3, 4, 5);
    ASSERT_SEQS(dir, ".moved", 6, 7, 8);
    inst_free(&in);
    rm_dir(dir);
}

static void test_file_rotate_maxbackups(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", extra[128], p[256];
    struct kx_alert *a = seq_alert(0, 10);
    size_t l = line_len(a);
    struct inst in;

    kx_alert_free(a);
    assert_non_null(mkdtemp(dir));
    /* One line per file, two backups: the oldest files go. */
    snprintf(extra, sizeof(extra), "maxsize: %zu\nmaxbackups: 2\n", l);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 0, 5, 10), 0);
    assert_int_equal(deliver_seq(&in, 5, 1, 10), 0);
    ASSERT_SEQS(dir, "", 5);
    ASSERT_SEQS(dir, ".1", 4);
    ASSERT_SEQS(dir, ".2", 3);
    assert_file_seqs(dir, ".3", NULL, -1);
    assert_int_equal(dir_entries(dir), 3);

    /* A rename that fails (a directory in the way) is a retry with the
     * reason; the alerts are all there once it is fixed. */
    snprintf(p, sizeof(p), "%s/alerts.jsonl.2", dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/alerts.jsonl.2/keep", dir);
    assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
    assert_int_equal(deliver_seq(&in, 6, 1, 10), -EAGAIN);
    assert_non_null(strstr(in.out.error, "rotate: rename "));
    assert_non_null(strstr(in.out.error, "/alerts.jsonl.1 to "));
    assert_non_null(strstr(in.out.error, "/alerts.jsonl.2: "));
    ASSERT_SEQS(dir, "", 5);
    ASSERT_SEQS(dir, ".1", 4);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/alerts.jsonl.2", dir);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(deliver_seq(&in, 6, 1, 10), 0);
    ASSERT_SEQS(dir, "", 6);
    ASSERT_SEQS(dir, ".1", 5);
    ASSERT_SEQS(dir, ".2", 4);
    inst_free(&in);
    rm_dir(dir);

    /* Shifting stops at the first free number: a stale later backup stays. */
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/kx-test-rot-XXXXXX")));
    snprintf(extra, sizeof(extra), "maxsize: %zu\n", l); /* maxbackups: default 5 */
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 0, 2, 10), 0);
    ASSERT_SEQS(dir, ".1", 0);
    snprintf(p, sizeof(p), "%s/alerts.jsonl.3", dir);
    assert_int_equal(close(open(p, O_WRONLY | O_CREAT, 0600)), 0);
    assert_int_equal(deliver_seq(&in, 2, 1, 10), 0);
    ASSERT_SEQS(dir, "", 2);
    ASSERT_SEQS(dir, ".1", 1);
    ASSERT_SEQS(dir, ".2", 0);
    assert_int_equal(file_size(dir, ".3"), 0);
    inst_free(&in);
    rm_dir(dir);
}

static void test_file_rotate_oversize_line(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", extra[128];
    struct kx_alert *small = seq_alert(0, 0), *big = seq_alert(0, 2000), *batch[3];
    size_t ls = line_len(small), lb = line_len(big);
    int64_t maxsize = (int64_t)(ls + ls / 2);
    struct inst in;

    kx_alert_free(small);
    kx_alert_free(big);
    assert_true((int64_t)lb > maxsize);
    assert_non_null(mkdtemp(dir));
    snprintf(extra, sizeof(extra), "maxsize: %lld\n", (long long)maxsize);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);

    /* Into an empty file: written whole, nothing rotated. */
    assert_int_equal(deliver_seq(&in, 0, 1, 2000), 0);
    ASSERT_SEQS(dir, "", 0);
    assert_int_equal(file_size(dir, ""), (int64_t)lb);
    assert_int_equal(dir_entries(dir), 1);

    /* After a small line: alone in a fresh file, and the next line too. */
    batch[0] = seq_alert(1, 0);
    batch[1] = seq_alert(2, 2000);
    batch[2] = seq_alert(3, 0);
    assert_int_equal(in.out.ops->deliver(&in.out, batch, 3), 0);
    ASSERT_SEQS(dir, ".3", 0);
    ASSERT_SEQS(dir, ".2", 1);
    ASSERT_SEQS(dir, ".1", 2);
    ASSERT_SEQS(dir, "", 3);
    assert_int_equal(file_size(dir, ".1"), (int64_t)lb);
    for (int i = 0; i < 3; i++)
        kx_alert_free(batch[i]);
    inst_free(&in);
    rm_dir(dir);
}

static void test_file_rotate_restart(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", extra[128];
    struct kx_alert *a = seq_alert(0, 50);
    size_t l = line_len(a);
    struct inst in;

    kx_alert_free(a);
    assert_non_null(mkdtemp(dir));
    /* A hub without rotation leaves two lines. */
    file_inst(&in, dir, "");
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 0, 2, 50), 0);
    inst_free(&in);

    /* Restarted with maxsize: what is in the file counts. One more fits... */
    snprintf(extra, sizeof(extra), "maxsize: %zu\n", 3 * l);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 2, 1, 50), 0);
    ASSERT_SEQS(dir, "", 0, 1, 2);
    inst_free(&in);

    /* ...and after another restart, the next does not. */
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 3, 1, 50), 0);
    ASSERT_SEQS(dir, ".1", 0, 1, 2);
    ASSERT_SEQS(dir, "", 3);
    inst_free(&in);

    /* A file already past a (smaller) maxsize is rotated before the first line. */
    snprintf(extra, sizeof(extra), "maxsize: %zu\n", l / 2);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 4, 1, 50), 0);
    ASSERT_SEQS(dir, ".2", 0, 1, 2);
    ASSERT_SEQS(dir, ".1", 3);
    ASSERT_SEQS(dir, "", 4);
    inst_free(&in);
    rm_dir(dir);
}

static void test_file_rotate_maxbackups_zero(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", extra[128];
    struct kx_alert *a = seq_alert(0, 10);
    size_t l = line_len(a);
    struct inst in;

    kx_alert_free(a);
    assert_non_null(mkdtemp(dir));
    snprintf(extra, sizeof(extra), "maxsize: %zu\nmaxbackups: 0\n", 2 * l);
    file_inst(&in, dir, extra);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 0, 5, 10), 0);
    ASSERT_SEQS(dir, "", 4);
    assert_int_equal(dir_entries(dir), 1);
    assert_int_equal(deliver_seq(&in, 5, 1, 10), 0);
    ASSERT_SEQS(dir, "", 4, 5);
    inst_free(&in);
    rm_dir(dir);
}

/* Only regular files rotate: a FIFO (or /dev/stdout) is written to as is. */
static void test_file_rotate_not_regular(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX", path[256], buf[8192];
    struct inst in;
    int rfd;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/alerts.jsonl", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    file_inst(&in, dir, "maxsize: 1\nmaxbackups: 1\n");
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(deliver_seq(&in, 0, 2, 0), 0);
    assert_int_equal(deliver_seq(&in, 2, 1, 0), 0);
    assert_true(read(rfd, buf, sizeof(buf)) > 0);
    assert_int_equal(dir_entries(dir), 1);
    close(rfd);
    inst_free(&in);
    rm_dir(dir);
}

static void test_file_rotate_config_errors(void **state)
{
    char dir[] = "/tmp/kx-test-rot-XXXXXX";
    struct inst in;

    assert_non_null(mkdtemp(dir));
    file_inst(&in, dir, "maxbackups: -1\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:2:"));
    assert_non_null(strstr(diag0(&in), "output t1: maxbackups -1: want 0..1000"));
    inst_free(&in);

    file_inst(&in, dir, "maxsize: 1MiB\nmaxbackups: 1001\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:3:"));
    assert_non_null(strstr(diag0(&in), "maxbackups 1001: want 0..1000"));
    inst_free(&in);

    file_inst(&in, dir, "maxsize: -1\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:2:"));
    assert_non_null(strstr(diag0(&in), "maxsize"));
    inst_free(&in);

    file_inst(&in, dir, "maxsize: lots\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "bad size"));
    inst_free(&in);

    file_inst(&in, dir, "maxbackup: 3\n"); /* typo: unknown key */
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "maxbackup"));
    inst_free(&in);

    /* The bounds themselves are fine; no file is made before the first alert
     * but the one the output appends to. */
    file_inst(&in, dir, "maxsize: 10MiB\nmaxbackups: 1000\n");
    assert_int_equal(in.init_rc, 0);
    inst_free(&in);
    file_inst(&in, dir, "maxsize: 0\nmaxbackups: 0\n");
    assert_int_equal(in.init_rc, 0);
    inst_free(&in);
    assert_int_equal(dir_entries(dir), 1);
    rm_dir(dir);
}

/* ---- webhook ---------------------------------------------------------------- */

struct hook_seen {
    pthread_mutex_t lock;
    int status; /* what to answer */
    char method[16], content_type[128], authorization[128];
    char body[4096];
    int calls;
};
static struct hook_seen hook = {.lock = PTHREAD_MUTEX_INITIALIZER, .status = 200};

/* kx-http thread. */
static void hook_handler(void *ctx, const struct kx_http_req *req, struct kx_http_resp *resp)
{
    pthread_mutex_lock(&hook.lock);
    hook.calls++;
    snprintf(hook.method, sizeof(hook.method), "%s", req->method);
    snprintf(hook.content_type, sizeof(hook.content_type), "%s", req->content_type);
    snprintf(hook.authorization, sizeof(hook.authorization), "%s", req->authorization);
    snprintf(hook.body, sizeof(hook.body), "%.*s", (int)req->body_len, req->body);
    resp->status = hook.status;
    pthread_mutex_unlock(&hook.lock);
    if (resp->status >= 400)
        kx_buf_printf(&resp->body, "{\"error\":\"rejected by test (%d)\"}", resp->status);
}

static struct hook_seen hook_now(void)
{
    struct hook_seen s;

    pthread_mutex_lock(&hook.lock);
    s = hook;
    pthread_mutex_unlock(&hook.lock);
    return s;
}

static void hook_answer(int status)
{
    pthread_mutex_lock(&hook.lock);
    hook.status = status;
    pthread_mutex_unlock(&hook.lock);
}

static void test_webhook_deliver(void **state)
{
    char err[256], yaml[512];
    struct kx_http_server *srv =
        kx_http_start("127.0.0.1", 0, 1 << 20, hook_handler, NULL, err, sizeof(err));
    struct kx_alert *a = sample();
    char *json = kx_alert_to_json(a);
    struct hook_seen seen;
    struct inst in;
    int port;

    assert_non_null(srv);
    port = kx_http_port(srv);
    snprintf(yaml, sizeof(yaml),
             "address: http://127.0.0.1:%d/hook\n"
             "customheaders:\n"
             "  Authorization: Bearer abc\n"
             "  X-Klaxon: \"1\"\n"
             "timeout: 2s\n",
             port);
    inst_init(&in, &kx_output_webhook, yaml);
    assert_int_equal(in.init_rc, 0);
    assert_int_equal(kx_output_webhook.max_batch, 1);

    hook_answer(200);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), 0);
    seen = hook_now();
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.content_type, "application/json");
    assert_string_equal(seen.authorization, "Bearer abc");
    assert_string_equal(seen.body, json);

    hook_answer(500);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "HTTP 500 from http://127.0.0.1:"));

    hook_answer(429);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), -EAGAIN);

    hook_answer(400);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), -EINVAL);
    assert_non_null(strstr(in.out.error, "HTTP 400 from http://127.0.0.1:"));
    /* the path is not shown: services keep tokens there */
    assert_non_null(strstr(in.out.error, "/...: {\"error\":\"rejected by test (400)\"}"));
    assert_null(strstr(in.out.error, "Bearer abc"));

    /* The endpoint goes away: retry later. */
    kx_http_stop(srv);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), -EAGAIN);
    assert_non_null(strstr(in.out.error, "Connection refused"));
    inst_free(&in);
    free(json);
    kx_alert_free(a);
}

static void test_webhook_put_and_contenttype(void **state)
{
    char err[256], yaml[512];
    struct kx_http_server *srv =
        kx_http_start("127.0.0.1", 0, 1 << 20, hook_handler, NULL, err, sizeof(err));
    struct kx_alert *a = sample();
    struct hook_seen seen;
    struct inst in;

    assert_non_null(srv);
    snprintf(yaml, sizeof(yaml),
             "address: http://127.0.0.1:%d/put\nmethod: put\ncontenttype: application/x-falco\n"
             "checkcert: false\n",
             kx_http_port(srv));
    inst_init(&in, &kx_output_webhook, yaml);
    assert_int_equal(in.init_rc, 0);
    hook_answer(204);
    assert_int_equal(in.out.ops->deliver(&in.out, &a, 1), 0);
    seen = hook_now();
    assert_string_equal(seen.method, "PUT");
    assert_string_equal(seen.content_type, "application/x-falco");
    assert_string_equal(seen.authorization, "");
    inst_free(&in);
    kx_http_stop(srv);
    kx_alert_free(a);
}

static void test_webhook_config_errors(void **state)
{
    struct inst in;

    inst_init(&in, &kx_output_webhook, "method: POST\n");
    assert_int_equal(in.init_rc, -EINVAL); /* address is required */
    assert_non_null(strstr(diag0(&in), "address"));
    inst_free(&in);

    inst_init(&in, &kx_output_webhook, "address: ftp://x/y\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:1:"));
    assert_non_null(strstr(diag0(&in), "must be an http(s):// URL"));
    inst_free(&in);

    inst_init(&in, &kx_output_webhook, "address: http://x/y\nmethod: GET\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "test.yaml:2:"));
    assert_non_null(strstr(diag0(&in), "want POST or PUT"));
    inst_free(&in);

    inst_init(&in, &kx_output_webhook, "address: https://x/y\nclientcert: /c.pem\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "both clientcert and clientkey"));
    inst_free(&in);

    inst_init(&in, &kx_output_webhook, "address: https://x/y\nunknownkey: 1\n");
    assert_int_equal(in.init_rc, -EINVAL);
    assert_non_null(strstr(diag0(&in), "unknownkey"));
    inst_free(&in);
}

/* ---- registry ---------------------------------------------------------------- */

static void test_registry(void **state)
{
    const char *names[] = {"console", "file", "webhook"};
    size_t n = 0;

    for (size_t i = 0; i < KX_ARRAY_SIZE(names); i++) {
        const struct kx_output_ops *ops = kx_output_ops_find(names[i]);

        assert_non_null(ops);
        assert_string_equal(ops->name, names[i]);
    }
    assert_ptr_equal(kx_output_ops_find("webhook"), &kx_output_webhook);
    assert_null(kx_output_ops_find("slackk"));
    assert_null(kx_output_ops_find(""));
    assert_null(kx_output_ops_find(NULL));
    for (; kx_output_registry[n]; n++) {
        const struct kx_output_ops *ops = kx_output_registry[n];

        assert_non_null(ops->name);
        assert_non_null(ops->desc);
        assert_non_null(ops->init);
        assert_non_null(ops->deliver);
        assert_true(ops->max_batch >= 1);
        assert_true(ops->settings_size > 0);
        for (size_t k = 0; k < n; k++)
            assert_string_not_equal(kx_output_registry[k]->name, ops->name);
    }
    assert_true(n >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_text),
        cmocka_unit_test(test_format_text_one_line_and_optional_fields),
        cmocka_unit_test(test_format_json),
        cmocka_unit_test(test_console_deliver),
        cmocka_unit_test(test_file_output),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_rotate_boundary),
        cmocka_unit_test(test_file_rotate_maxbackups),
        cmocka_unit_test(test_file_rotate_oversize_line),
        cmocka_unit_test(test_file_rotate_restart),
        cmocka_unit_test(test_file_rotate_maxbackups_zero),
        cmocka_unit_test(test_file_rotate_not_regular),
        cmocka_unit_test(test_file_rotate_config_errors),
        cmocka_unit_test(test_webhook_deliver),
        cmocka_unit_test(test_webhook_put_and_contenttype),
        cmocka_unit_test(test_webhook_config_errors),
        cmocka_unit_test(test_registry),
    };
    int rc;

    kx_log_init("test_outputs", KX_LOG_WARN, false);
    kx_httpc_global_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    kx_httpc_global_cleanup();
    return rc;
}
