/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.c - two local outputs in one file, sharing the line formatters:
 *
 *   console  one line per alert on stdout, human text or JSON lines
 *   file     JSON lines appended to a file, rotated by size (path -> path.1 ->
 *            ... path.<maxbackups>) and reopened when logrotate moves it
 *
 * Each batch is formatted into one buffer and written with one call (and one
 * fflush for stdout; one call per file when a rotation falls mid-batch), so
 * lines of concurrent outputs never interleave and stdout buffering never
 * holds alerts back.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define CONSOLE_MAX_BATCH 64
#define CONSOLE_BUF_MAX (CONSOLE_MAX_BATCH * (KX_ALERT_MAX_BYTES + 1)) /* a full batch */
#define CONSOLE_FIELD_MAX 256                                          /* host, container */

/* ---- formatters ---------------------------------------------------------- */

/* Appends s with control characters turned into spaces (one line). */
static int console_put_text(struct kx_buf *out, const char *s)
{
    while (*s) {
        size_t run = 0;
        int rc;

        while (s[run] && (unsigned char)s[run] >= 0x20 && s[run] != 0x7f)
            run++;
        if (run > 0 && (rc = kx_buf_append(out, s, run)) < 0)
            return rc;
        s += run;
        if (*s) {
            if ((rc = kx_buf_append(out, " ", 1)) < 0)
                return rc;
            s++;
        }
    }
    return 0;
}

int kx_console_format_text(const struct kx_alert *a, struct kx_buf *out)
{
    char when[40], container[CONSOLE_FIELD_MAX];
    const char *cid = kx_alert_field_str(a, "container.id", container, sizeof(container));
    const char *host = a->hostname ? a->hostname : "";
    size_t start = out->len;
    int rc;

    kx_time_format(a->time_ns, when, sizeof(when));
    if ((rc = kx_buf_printf(out, "%s %s ", when, kx_priority_name(a->priority))) < 0 ||
        (rc = console_put_text(out, a->rule)) < 0 || (rc = kx_buf_append(out, ": ", 2)) < 0 ||
        (rc = console_put_text(out, a->output ? a->output : "")) < 0)
        goto fail;
    if (host[0] || (cid && cid[0])) {
        if ((rc = kx_buf_append(out, " [", 2)) < 0)
            goto fail;
        if (host[0] &&
            ((rc = kx_buf_append(out, "host=", 5)) < 0 || (rc = console_put_text(out, host)) < 0))
            goto fail;
        if (cid && cid[0] &&
            ((rc = kx_buf_append(out, host[0] ? " container=" : "container=", host[0] ? 11 : 10)) <
                 0 ||
             (rc = console_put_text(out, cid)) < 0))
            goto fail;
        if ((rc = kx_buf_append(out, "]", 1)) < 0)
            goto fail;
    }
    if ((rc = kx_buf_append(out, "\n", 1)) < 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return rc;
}

int kx_console_format_json(const struct kx_alert *a, struct kx_buf *out)
{
    size_t start = out->len;
    char *json = kx_alert_to_json(a);
    int rc;

    if (json == NULL)
        return -ENOMEM;
    /* cJSON's compact output escapes control characters: one line. */
    rc = kx_buf_append(out, json, strlen(json));
    free(json);
    if (rc == 0 && (rc = kx_buf_append(out, "\n", 1)) < 0) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* Formats a batch into buf (reset first). 0 or the first error. */
static int console_format_batch(bool json, struct kx_alert *const *batch, size_t n,
                                struct kx_buf *buf, struct kx_output *o)
{
    kx_buf_reset(buf);
    for (size_t i = 0; i < n; i++) {
        int rc =
            json ? kx_console_format_json(batch[i], buf) : kx_console_format_text(batch[i], buf);

        if (rc < 0) {
            /* Cannot get better by retrying. */
            snprintf(o->error, sizeof(o->error), "cannot format alert %s: %s",
                     batch[i]->uuid ? batch[i]->uuid : "?", strerror(-rc));
            return rc == -ENOMEM ? -EAGAIN : -EINVAL;
        }
    }
    return 0;
}

/* ---- console ------------------------------------------------------------- */

struct console_settings {
    char *format; /* "text" | "json" */
};

struct console_state {
    bool json;
    struct kx_buf buf; /* one batch of lines, reused */
};

static const struct kx_opt console_opts[] = {
    {"format", KX_OPT_STR, "text", offsetof(struct console_settings, format), 0,
     "text (one readable line per alert) or json (JSON lines)"},
    {0},
};

/* Output worker thread. */
static int console_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct console_settings *s = o->settings;
    struct console_state *st;
    bool json;

    if (s->format == NULL || strcasecmp(s->format, "text") == 0) {
        json = false;
    } else if (strcasecmp(s->format, "json") == 0) {
        json = true;
    } else {
        kx_diag_add(d, kx_config_get(cfg, "format"), "output %s: format \"%s\": want text or json",
                    o->name, s->format);
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    st->json = json;
    kx_buf_init(&st->buf, CONSOLE_BUF_MAX);
    o->priv = st;
    return 0;
}

/* Output worker thread. stdout's own lock keeps batches of several console
 * outputs from interleaving. */
static int console_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    struct console_state *st = o->priv;
    int rc = console_format_batch(st->json, batch, n, &st->buf, o);

    if (rc < 0)
        return rc;
    if (st->buf.len == 0)
        return 0;
    if (fwrite(st->buf.data, 1, st->buf.len, stdout) != st->buf.len || fflush(stdout) != 0) {
        snprintf(o->error, sizeof(o->error), "write to stdout: %s", strerror(errno));
        clearerr(stdout);
        return -EAGAIN;
    }
    return 0;
}

/* Output worker thread; also after a failed init. */
static void console_destroy(struct kx_output *o)
{
    struct console_state *st = o->priv;

    if (st == NULL)
        return;
    kx_buf_free(&st->buf);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_console = {
    .name = "console",
    .desc = "print alerts on stdout, as text lines or JSON lines",
    .opts = console_opts,
    .settings_size = sizeof(struct console_settings),
    .max_batch = CONSOLE_MAX_BATCH,
    .init = console_init,
    .deliver = console_deliver,
    .destroy = console_destroy,
};

/* ---- file ---------------------------------------------------------------- */

#define FILE_MAX_BACKUPS 1000

struct file_settings {
    char *path;         /* required */
    int64_t maxsize;    /* bytes; 0 = no built-in rotation */
    int64_t maxbackups; /* rotated files kept, 0..FILE_MAX_BACKUPS */
};

struct file_state {
    int fd;    /* owned, O_APPEND; -1 after a failed reopen */
    dev_t dev; /* identity of the open file, to notice rotation */
    ino_t ino;
    int64_t size;      /* bytes in the open file: fstat at open + what we wrote */
    bool regular;      /* a regular file: only those are rotated (not /dev/stdout) */
    struct kx_buf buf; /* one batch of JSON lines, reused */
};

static const struct kx_opt file_opts[] = {
    {"path", KX_OPT_STR, NULL, offsetof(struct file_settings, path), KX_OPT_REQUIRED,
     "file to append JSON lines to (created 0640 if missing)"},
    {"maxsize", KX_OPT_SIZE, "0", offsetof(struct file_settings, maxsize), 0,
     "rotate before the file would grow past this size (0 = never; a longer line gets a file "
     "of its own)"},
    {"maxbackups", KX_OPT_INT, "5", offsetof(struct file_settings, maxbackups), 0,
     "rotated files kept, path.1 (newest) .. path.N (0..1000; 0 = delete at rotation)"},
    {0},
};

/* (Re)opens path for appending; 0 or -errno with o->error set. */
static int file_open(struct kx_output *o, struct file_state *st, const char *path)
{
    struct stat sb;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0 || fstat(fd, &sb) < 0) {
        int err = errno;

        snprintf(o->error, sizeof(o->error), "open %s: %s", path, strerror(err));
        if (fd >= 0)
            close(fd);
        return -err;
    }
    if (st->fd >= 0)
        close(st->fd);
    st->fd = fd;
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size; /* a restarted hub appends to what is there */
    st->regular = S_ISREG(sb.st_mode);
    return 0;
}

/* ".<i>" for backup i, "" for the live file (i == 0). */
static void file_suffix(char sfx[24], int64_t i)
{
    if (i == 0)
        sfx[0] = '\0';
    else
        snprintf(sfx, 24, ".%lld", (long long)i);
}

/* Moves path.(k-1) -> path.k ... path -> path.1 and opens a new file at path,
 * k being the first free backup number, or maxbackups, whose file the rename
 * replaces (the oldest goes). Stopping at the first hole means a rotation that
 * failed half-way and is retried moves each file once: no backup is lost.
 * 0 or -errno with o->error set; on failure the open file stays in use. */
static int file_rotate(struct kx_output *o, struct file_state *st)
{
    const struct file_settings *s = o->settings;
    /* path fits in PATH_MAX (open() accepted it), so path + suffix fits here. */
    char from[PATH_MAX + 24], to[PATH_MAX + 24], sfrom[24], sto[24];
    int64_t k = 1;

    if (s->maxbackups == 0) {
        if (unlink(s->path) < 0 && errno != ENOENT) {
            int err = errno;

            snprintf(o->error, sizeof(o->error), "rotate: unlink %s: %s", s->path, strerror(err));
            return -err;
        }
        return file_open(o, st, s->path);
    }
    for (; k < s->maxbackups; k++) {
        file_suffix(sto, k);
        snprintf(to, sizeof(to), "%s%s", s->path, sto);
        if (access(to, F_OK) < 0)
            break;
    }
    for (; k >= 1; k--) {
        file_suffix(sfrom, k - 1);
        file_suffix(sto, k);
        snprintf(from, sizeof(from), "%s%s", s->path, sfrom);
        snprintf(to, sizeof(to), "%s%s", s->path, sto);
        if (rename(from, to) < 0 && errno != ENOENT) {
            int err = errno;

            snprintf(o->error, sizeof(o->error), "rotate: rename %s%s to %s%s: %s", s->path, sfrom,
                     s->path, sto, strerror(err));
            return -err;
        }
    }
    return file_open(o, st, s->path);
}

/* End of the line that starts at buf[off], its '\n' included. */
static size_t file_line_end(const struct kx_buf *buf, size_t off)
{
    const char *nl = memchr(buf->data + off, '\n', buf->len - off);

    return nl ? (size_t)(nl - buf->data) + 1 : buf->len;
}

/* End of the longest run of whole lines from buf[off] that still fits in the
 * file (all of them without maxsize); off when not even one line fits. */
static size_t file_fit(const struct file_settings *s, const struct file_state *st,
                       const struct kx_buf *buf, size_t off)
{
    int64_t room = s->maxsize - st->size;
    size_t end = off;

    if (s->maxsize == 0 || !st->regular)
        return buf->len;
    while (end < buf->len) {
        size_t next = file_line_end(buf, end);

        if ((int64_t)(next - off) > room)
            break;
        end = next;
    }
    return end;
}

/* Writes all of data[0..len); 0 or -EAGAIN with o->error set. */
static int file_write(struct kx_output *o, struct file_state *st, const char *data, size_t len)
{
    const struct file_settings *s = o->settings;
    size_t off = 0;

    while (off < len) {
        ssize_t w = write(st->fd, data + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(o->error, sizeof(o->error), "write %s: %s", s->path, strerror(errno));
            return -EAGAIN;
        }
        off += (size_t)w;
        st->size += w;
    }
    return 0;
}

/* Output worker thread. */
static int file_init(struct kx_output *o, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct file_settings *s = o->settings;
    struct file_state *st;
    int rc;

    if (s->path == NULL || s->path[0] == '\0') {
        kx_diag_add(d, kx_config_get(cfg, "path"), "output %s: path must not be empty", o->name);
        return -EINVAL;
    }
    if (s->maxsize < 0) {
        kx_diag_add(d, kx_config_get(cfg, "maxsize"),
                    "output %s: maxsize must be >= 0 (0 = never rotate)", o->name);
        return -EINVAL;
    }
    if (s->maxbackups < 0 || s->maxbackups > FILE_MAX_BACKUPS) {
        kx_diag_add(d, kx_config_get(cfg, "maxbackups"), "output %s: maxbackups %lld: want 0..%d",
                    o->name, (long long)s->maxbackups, FILE_MAX_BACKUPS);
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -ENOMEM;
    st->fd = -1;
    if ((rc = file_open(o, st, s->path)) < 0) {
        kx_diag_add(d, kx_config_get(cfg, "path"), "output %s: %s", o->name, o->error);
        free(st);
        return rc;
    }
    kx_buf_init(&st->buf, CONSOLE_BUF_MAX);
    o->priv = st;
    return 0;
}

/* Output worker thread. A batch that does not fit goes out in runs of whole
 * lines, each run in the current file while it has room, a rotation between
 * runs. When a rotation fails after some runs were written, the retry writes
 * those lines again: at least once, never lost. */
static int file_deliver(struct kx_output *o, struct kx_alert *const *batch, size_t n)
{
    const struct file_settings *s = o->settings;
    struct file_state *st = o->priv;
    struct stat sb;
    size_t off = 0;
    int rc = console_format_batch(true, batch, n, &st->buf, o);

    if (rc < 0)
        return rc;
    /* Moved away or deleted (logrotate): start a new file at path. */
    if (st->fd < 0 || stat(s->path, &sb) < 0 || sb.st_dev != st->dev || sb.st_ino != st->ino) {
        if (file_open(o, st, s->path) < 0)
            return -EAGAIN;
    }
    while (off < st->buf.len) {
        size_t end = file_fit(s, st, &st->buf, off);

        if (end == off && st->size > 0) {
            if (file_rotate(o, st) < 0)
                return -EAGAIN;
            continue;
        }
        if (end == off) /* one line longer than maxsize: alone in a fresh file */
            end = file_line_end(&st->buf, off);
        if ((rc = file_write(o, st, st->buf.data + off, end - off)) < 0)
            return rc;
        off = end;
    }
    return 0;
}

/* Output worker thread; also after a failed init. */
static void file_destroy(struct kx_output *o)
{
    struct file_state *st = o->priv;

    if (st == NULL)
        return;
    if (st->fd >= 0)
        close(st->fd);
    kx_buf_free(&st->buf);
    free(st);
    o->priv = NULL;
}

const struct kx_output_ops kx_output_file = {
    .name = "file",
    .desc = "append alerts to a file as JSON lines",
    .opts = file_opts,
    .settings_size = sizeof(struct file_settings),
    .max_batch = CONSOLE_MAX_BATCH,
    .init = file_init,
    .deliver = file_deliver,
    .destroy = file_destroy,
};
