/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sample_label.c - a sample third-party responder, built as a .so
 * (build/lib/klaxon-responder-sample.so) and loaded by the "plugin" type:
 * it appends one line per alert to a file, a stand-in for "label the
 * target somewhere", and says so in the audit.
 *
 *   actions:
 *     - type: plugin
 *       path: /usr/lib/klaxon/klaxon-responder-sample.so
 *       settings: {file: /var/log/klaxon/labels.log, label: quarantine}
 *       params: {note: "seen by on-call"}
 *
 * Line: "<label> <uuid> <priority> <rule>[ note=<note>]", control characters
 * turned into spaces so that one alert is one line.
 *
 * What it shows a plugin author: it uses only libc and libcjson (the hub
 * does not export its kx_* functions), reads its settings from the struct
 * the loader filled through its option table, walks config nodes directly,
 * reports a failed init through r->error, honours dry_run, and exports
 * exactly one symbol (built -fvisibility=hidden).
 *
 * Threads: kx-respond (the responder worker thread), one call at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "responders.h"

#define LABEL_LINE_MAX 4096

struct label_settings {
    char *file;  /* absolute path the lines are appended to */
    char *label; /* first word of each line */
};

static const struct kx_opt label_opts[] = {
    {"file", KX_OPT_STR, NULL, offsetof(struct label_settings, file), KX_OPT_REQUIRED,
     "absolute path of the file one line per alert is appended to"},
    {"label", KX_OPT_STR, "klaxon", offsetof(struct label_settings, label), 0,
     "first word of each line"},
    {0},
};

struct label_state {
    int fd; /* the file, O_APPEND */
};

/* A scalar param by key, walking the map (kx_config_get is the hub's). */
static const char *label_param(const struct kx_config_node *params, const char *key)
{
    if (!params || params->kind != KX_CFG_MAP)
        return NULL;
    for (const struct kx_config_node *c = params->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0 && c->kind == KX_CFG_SCALAR)
            return c->value;
    return NULL;
}

/* Appends s to buf at *o with control characters as spaces; truncates. */
static void label_put(char *buf, size_t len, size_t *o, const char *s)
{
    for (; s && *s && *o + 1 < len; s++)
        buf[(*o)++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    buf[*o] = '\0';
}

static const char *label_str(const struct kx_alert *a, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->doc, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

/* kx-respond (start-up). */
static int label_init(struct kx_responder *r, const struct kx_config_node *cfg, struct kx_diag *d)
{
    const struct label_settings *s = r->settings;
    struct label_state *st;

    if (!s->file || s->file[0] != '/') {
        snprintf(r->error, sizeof(r->error), "file \"%s\" must be an absolute path",
                 s->file ? s->file : "");
        return -EINVAL;
    }
    if (!(st = calloc(1, sizeof(*st)))) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        return -ENOMEM;
    }
    st->fd = open(s->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (st->fd < 0) {
        int e = errno;

        snprintf(r->error, sizeof(r->error), "cannot open %s: %s", s->file, strerror(e));
        free(st);
        return -e;
    }
    r->priv = st;
    return 0;
}

/* kx-respond. */
static int label_act(struct kx_responder *r, const struct kx_alert *alert,
                     const struct kx_config_node *params, cJSON *audit)
{
    const struct label_settings *s = r->settings;
    const struct label_state *st = r->priv;
    const char *note = label_param(params, "note");
    char line[LABEL_LINE_MAX];
    size_t o = 0;
    ssize_t w;

    label_put(line, sizeof(line), &o, s->label);
    label_put(line, sizeof(line), &o, " ");
    label_put(line, sizeof(line), &o, alert->uuid);
    label_put(line, sizeof(line), &o, " ");
    label_put(line, sizeof(line), &o, label_str(alert, "priority"));
    label_put(line, sizeof(line), &o, " ");
    label_put(line, sizeof(line), &o, alert->rule);
    if (note) {
        label_put(line, sizeof(line), &o, " note=");
        label_put(line, sizeof(line), &o, note);
    }
    cJSON_AddStringToObject(audit, "action", "label");
    cJSON_AddStringToObject(audit, "target", s->file);
    cJSON_AddStringToObject(audit, "label", s->label);
    cJSON_AddStringToObject(audit, "line", line);
    if (r->dry_run) {
        cJSON_AddStringToObject(audit, "result", "dry_run");
        return 0;
    }
    /* One write with O_APPEND: lines of several hubs never interleave. */
    line[o++] = '\n';
    w = write(st->fd, line, o);
    if (w != (ssize_t)o) {
        int e = w < 0 ? errno : EIO;
        char why[300];

        snprintf(why, sizeof(why), "cannot append to %s: %s", s->file,
                 w < 0 ? strerror(e) : "short write");
        cJSON_AddStringToObject(audit, "result", "failed");
        cJSON_AddStringToObject(audit, "reason", why);
        /* A full disk may clear up; anything else will not. */
        return e == ENOSPC || e == EINTR || e == EAGAIN ? -EAGAIN : -EIO;
    }
    cJSON_AddStringToObject(audit, "result", "done");
    return 0;
}

/* kx-respond (shutdown). */
static void label_destroy(struct kx_responder *r)
{
    struct label_state *st = r->priv;

    if (!st)
        return;
    close(st->fd);
    free(st);
    r->priv = NULL;
}

KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin = {
    .abi = KX_RESPONDER_ABI,
    .name = "sample_label",
    .desc = "append one line per alert to a file (sample plugin)",
    .opts = label_opts,
    .settings_size = sizeof(struct label_settings),
    .init = label_init,
    .act = label_act,
    .destroy = label_destroy,
};
