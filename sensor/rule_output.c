/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule_output.c - a rule's output format (Falco's "%field" syntax) and the
 * Falco-shaped alert of a match (see ruleset.h, kx_rule_alert).
 *
 * Formats are compiled at load: %container.info becomes Falco's default
 * "container_id=%container.id container_name=%container.name", each %field is
 * resolved once, and the text between fields is kept as literal pieces.
 * A field reference is "%" followed by a field name (letters, digits, '_',
 * '.', then an optional "[arg]"), or "%(name)"; trailing dots belong to the
 * text ("file=%fd.name." ends with a period), "%%" is a literal '%'.
 *
 * Building an alert allocates (cJSON), so it runs only for matched rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rule_expr.h"
#include "ruleset.h"
#include "util.h"

#define KX_OUTPUT_MAX (64 * 1024)     /* bytes of a format, and of an alert's output line */
#define KX_JSON_EXACT_MAX (1ll << 53) /* larger integers are written as raw digits */

static const char kx_container_info[] = "%container.info";
static const char kx_container_info_sub[] =
    "container_id=%container.id container_name=%container.name";

/* ---- compiling a format --------------------------------------------------- */

struct seg_list {
    struct kx_oseg *v;
    size_t n, cap;
};

static struct kx_oseg *seg_push(struct seg_list *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct kx_oseg *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    return &l->v[l->n++];
}

static bool out_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
}

/* text with %container.info replaced; caller frees. */
static char *expand_container_info(const char *text)
{
    struct kx_buf b;
    const char *p = text, *hit;

    kx_buf_init(&b, 4 * KX_OUTPUT_MAX);
    while ((hit = strstr(p, kx_container_info))) {
        if (kx_buf_append(&b, p, (size_t)(hit - p)) < 0 ||
            kx_buf_append(&b, kx_container_info_sub, sizeof(kx_container_info_sub) - 1) < 0)
            goto fail;
        p = hit + sizeof(kx_container_info) - 1;
    }
    if (kx_buf_append(&b, p, strlen(p)) < 0)
        goto fail;
    if (!b.data)
        return strdup("");
    return b.data;
fail:
    kx_buf_free(&b);
    return NULL;
}

int kx_output_compile(const char *text, struct kx_arena *a, bool lenient, struct kx_ofmt *out,
                      const char **unknown, char *err, size_t errlen)
{
    struct seg_list segs = {0};
    char *s = NULL;
    size_t lit = 0, i = 0, n;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (unknown)
        *unknown = NULL;
    if (strlen(text) > KX_OUTPUT_MAX) {
        snprintf(err, errlen, "output is longer than %d bytes", KX_OUTPUT_MAX);
        return -E2BIG;
    }
    if (!(s = expand_container_info(text))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    n = strlen(s);
    while (i <= n) {
        size_t name_at, name_len, next;

        if (i < n && s[i] != '%') {
            i++;
            continue;
        }
        if (i + 1 < n && s[i + 1] == '%') {
            /* "%%": keep one '%' as text */
            struct kx_oseg *g = seg_push(&segs);
            if (!g || !(g->lit = kx_arena_strndup(a, s + lit, i + 1 - lit)))
                goto oom;
            g->lit_len = i + 1 - lit;
            i += 2;
            lit = i;
            continue;
        }
        if (i < n && i + 1 < n && s[i + 1] == '(') {
            const char *close = strchr(s + i + 2, ')');
            if (!close) {
                i++;
                continue;
            }
            name_at = i + 2;
            name_len = (size_t)(close - (s + name_at));
            next = (size_t)(close - s) + 1;
        } else if (i < n) {
            name_at = i + 1;
            size_t j = name_at;
            while (j < n && out_name_char(s[j]))
                j++;
            if (j < n && s[j] == '[') {
                const char *close = memchr(s + j, ']', n - j);
                if (close)
                    j = (size_t)(close - s) + 1;
            }
            while (j > name_at && s[j - 1] == '.')
                j--;
            name_len = j - name_at;
            next = j;
        } else {
            name_at = n;
            name_len = 0;
            next = n + 1;
        }
        if (i < n && name_len == 0) {
            i++; /* a lone '%' is text */
            continue;
        }

        struct kx_oseg *g = seg_push(&segs);
        if (!g)
            goto oom;
        size_t lit_end = i < n ? i : n;
        if (!(g->lit = kx_arena_strndup(a, s + lit, lit_end - lit)))
            goto oom;
        g->lit_len = lit_end - lit;
        if (name_len > 0) {
            char ferr[300];
            g->has_field = true;
            rc = kx_field_resolve(s + name_at, name_len, a, &g->f, ferr, sizeof(ferr));
            if (rc == -ENOMEM)
                goto oom;
            if (rc < 0) {
                if (!lenient) {
                    snprintf(err, errlen, "output: %s", ferr);
                    goto fail;
                }
                rc = 0;
                g->known = false;
                if (!(g->fname = kx_arena_strndup(a, s + name_at, name_len)))
                    goto oom;
                if (unknown && !*unknown)
                    *unknown = g->fname;
            } else {
                g->known = true;
                g->fname = g->f.name;
            }
        }
        i = next;
        lit = next;
    }

    out->segs = kx_arena_alloc(a, (segs.n ? segs.n : 1) * sizeof(*out->segs));
    if (!out->segs)
        goto oom;
    memcpy(out->segs, segs.v, segs.n * sizeof(*segs.v));
    out->n = segs.n;
    free(segs.v);
    free(s);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    if (rc == 0)
        rc = -EINVAL;
    free(segs.v);
    free(s);
    return rc;
}

/* ---- the alert ---------------------------------------------------------------- */

/* "HH:MM:SS.nnnnnnnnn", UTC, like Falco's output prefix. */
static void format_clock(int64_t ns, char *buf, size_t len)
{
    time_t sec = (time_t)(ns / KX_NSEC_PER_SEC);
    int64_t frac = ns % KX_NSEC_PER_SEC;
    struct tm tm;

    if (frac < 0) {
        frac += KX_NSEC_PER_SEC;
        sec--;
    }
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%02d:%02d:%02d.%09lld", tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

/* Appends to a bounded output line; once full, ends it with "..." and
 * ignores the rest. */
struct line {
    struct kx_buf b;
    bool full;
};

static void line_put(struct line *l, const char *s, size_t n)
{
    if (l->full || n == 0)
        return;
    if (kx_buf_append(&l->b, s, n) == 0)
        return;
    size_t room = l->b.max > l->b.len + 3 ? l->b.max - l->b.len - 3 : 0;
    if (room > n)
        room = n;
    kx_buf_append(&l->b, s, room);
    kx_buf_append(&l->b, "...", 3);
    l->full = true;
}

/* The first present value of f in ev. */
static bool first_value(const struct kx_fref *f, const struct kx_sevent *ev, struct kx_fval *v,
                        char *buf)
{
    size_t cnt = kx_field_nvalues(f, ev);

    for (size_t i = 0; i < cnt; i++)
        if (kx_field_get(f, ev, i, v, buf))
            return true;
    return false;
}

static void put_value(struct line *l, const struct kx_fref *f, bool known,
                      const struct kx_sevent *ev)
{
    char buf[KX_FIELD_BUF], num[40];
    struct kx_fval v;

    if (!known || !first_value(f, ev, &v, buf)) {
        line_put(l, "<NA>", 4);
        return;
    }
    switch (f->type) {
    case KX_FT_STR:
        line_put(l, v.s, v.len);
        return;
    case KX_FT_BOOL:
        line_put(l, v.b ? "true" : "false", v.b ? 4 : 5);
        return;
    default:
        if (f->id == KX_FLD_EVT_TIME)
            format_clock(v.i, num, sizeof(num));
        else
            snprintf(num, sizeof(num), "%lld", (long long)v.i);
        line_put(l, num, strlen(num));
    }
}

/* Sets output_fields[name] (replacing), taking ownership of item. */
static int set_field(struct kx_alert *a, const char *name, cJSON *item)
{
    cJSON *of = cJSON_GetObjectItemCaseSensitive(a->doc, "output_fields");

    if (!item)
        return -ENOMEM;
    if (!cJSON_IsObject(of)) {
        cJSON_Delete(item);
        return -ENOMEM;
    }
    if (cJSON_GetObjectItemCaseSensitive(of, name))
        return cJSON_ReplaceItemInObjectCaseSensitive(of, name, item) ? 0 : -ENOMEM;
    cJSON_AddItemToObject(of, name, item);
    return 0;
}

static cJSON *json_int(int64_t v)
{
    char num[32];

    if (v <= KX_JSON_EXACT_MAX && v >= -KX_JSON_EXACT_MAX)
        return cJSON_CreateNumber((double)v);
    snprintf(num, sizeof(num), "%lld", (long long)v);
    return cJSON_CreateRaw(num);
}

static int put_json(struct kx_alert *a, const char *name, const struct kx_fref *f, bool known,
                    const struct kx_sevent *ev)
{
    char buf[KX_FIELD_BUF];
    struct kx_fval v;

    if (!known || !first_value(f, ev, &v, buf))
        return set_field(a, name, cJSON_CreateNull());
    switch (f->type) {
    case KX_FT_STR: {
        char *s = strndup(v.s, v.len);
        if (!s)
            return -ENOMEM;
        int rc = set_field(a, name, cJSON_CreateString(s));
        free(s);
        return rc;
    }
    case KX_FT_BOOL:
        return set_field(a, name, cJSON_CreateBool(v.b));
    default:
        return set_field(a, name, json_int(v.i));
    }
}

/* Fields every alert carries (besides the ones its output names). */
static const struct {
    const char *name;
    uint16_t id;
    uint8_t type;
    uint8_t when; /* 0 always, 1 in a container, 2 when present */
} kx_always[] = {
    {"evt.time", KX_FLD_EVT_TIME, KX_FT_INT, 0},
    {"evt.type", KX_FLD_EVT_TYPE, KX_FT_STR, 0},
    {"proc.pid", KX_FLD_PROC_PID, KX_FT_INT, 0},
    {"proc.ppid", KX_FLD_PROC_PPID, KX_FT_INT, 0},
    {"proc.name", KX_FLD_PROC_NAME, KX_FT_STR, 0},
    {"proc.exepath", KX_FLD_PROC_EXEPATH, KX_FT_STR, 0},
    {"proc.cmdline", KX_FLD_PROC_CMDLINE, KX_FT_STR, 0},
    {"proc.start_ns", KX_FLD_PROC_START_NS, KX_FT_INT, 0},
    {"user.uid", KX_FLD_USER_UID, KX_FT_INT, 0},
    {"user.name", KX_FLD_USER_NAME, KX_FT_STR, 0},
    {"container.id", KX_FLD_CONTAINER_ID, KX_FT_STR, 0},
    {"container.full_id", KX_FLD_CONTAINER_FULL_ID, KX_FT_STR, 1},
    {"k8s.ns.name", KX_FLD_K8S_NS_NAME, KX_FT_STR, 2},
    {"k8s.pod.name", KX_FLD_K8S_POD_NAME, KX_FT_STR, 2},
    {"k8s.pod.uid", KX_FLD_K8S_POD_UID, KX_FT_STR, 2},
};

struct kx_alert *kx_rule_alert(const struct kx_rule *r, const struct kx_sevent *ev)
{
    struct line l = {.full = false};
    struct kx_alert *a = NULL;
    char clock[40], buf[KX_FIELD_BUF];
    int64_t t;
    int rc = 0;

    if (!r || !ev) {
        errno = EINVAL;
        return NULL;
    }
    t = ev->time_ns ? ev->time_ns : kx_now_ns();
    format_clock(t, clock, sizeof(clock));
    kx_buf_init(&l.b, KX_OUTPUT_MAX);
    line_put(&l, clock, strlen(clock));
    line_put(&l, ": ", 2);
    const char *pri = kx_priority_name(r->priority);
    line_put(&l, pri, strlen(pri));
    line_put(&l, " ", 1);
    for (size_t i = 0; i < r->out.n; i++) {
        const struct kx_oseg *g = &r->out.segs[i];
        line_put(&l, g->lit, g->lit_len);
        if (g->has_field)
            put_value(&l, &g->f, g->known, ev);
    }
    if (!l.b.data) {
        rc = -ENOMEM;
        goto cleanup;
    }

    a = kx_alert_new(r->name, r->priority, "syscall", ev->hostname ? ev->hostname : "", l.b.data,
                     t);
    if (!a) {
        rc = -errno;
        goto cleanup;
    }
    for (size_t i = 0; i < r->ntags; i++)
        if ((rc = kx_alert_add_tag(a, r->tags[i])) < 0)
            goto cleanup;
    for (size_t i = 0; i < r->out.n; i++) {
        const struct kx_oseg *g = &r->out.segs[i];
        if (g->has_field && (rc = put_json(a, g->fname, &g->f, g->known, ev)) < 0)
            goto cleanup;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_always); i++) {
        struct kx_fref f = {
            .id = kx_always[i].id, .type = kx_always[i].type, .idx = -1, .name = kx_always[i].name};
        struct kx_fval v;
        bool present = kx_field_get(&f, ev, 0, &v, buf);
        if (kx_always[i].when == 1 &&
            !(ev->container_id && ev->container_id[0] && strcmp(ev->container_id, "host") != 0))
            continue;
        if (kx_always[i].when == 2 && !present)
            continue;
        if ((rc = put_json(a, kx_always[i].name, &f, true, ev)) < 0)
            goto cleanup;
    }
    if (r->kill) {
        if ((rc = kx_alert_set_str(a, "klaxon.action", "kill")) < 0 ||
            (rc = set_field(a, "klaxon.killed", cJSON_CreateBool((ev->flags & KX_F_KILLED) != 0))) <
                0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    kx_buf_free(&l.b);
    if (rc < 0) {
        kx_alert_free(a);
        errno = -rc;
        return NULL;
    }
    return a;
}

/* ---- proc.cmdline --------------------------------------------------------------- */

struct cmd_writer {
    char *out;  /* borrowed */
    size_t cap; /* bytes in out, NUL included */
    size_t w;   /* bytes written */
    bool cut;   /* ran out of room */
};

static void cmd_put(struct cmd_writer *cw, char c)
{
    if (cw->cut)
        return;
    if (cw->w + 1 >= cw->cap) {
        cw->cut = true;
        return;
    }
    cw->out[cw->w++] = (c >= 0x20 && c < 0x7f) ? c : '.';
}

void kx_ruleset_format_cmdline(const char *name, const char *raw, size_t len, char *out,
                               size_t outlen)
{
    struct cmd_writer cw = {.out = out, .cap = outlen};
    size_t start = 0;

    if (!out || outlen == 0)
        return;
    if (!raw)
        len = 0;
    if (name)
        for (const char *p = name; *p; p++)
            cmd_put(&cw, *p);

    /* argv[0] is replaced by name, like Falco's proc.cmdline; each NUL ends
     * an argument, so a final NUL adds no empty argument. */
    for (size_t argi = 0; start < len && !cw.cut; argi++) {
        const char *nul = memchr(raw + start, '\0', len - start);
        size_t end = nul ? (size_t)(nul - raw) : len;

        if (argi > 0 || !name) {
            if (argi > 0)
                cmd_put(&cw, ' ');
            for (size_t i = start; i < end; i++)
                cmd_put(&cw, raw[i]);
        }
        start = end + 1;
    }
    if (cw.cut && outlen >= 4) {
        size_t at = cw.w < outlen - 4 ? cw.w : outlen - 4;

        memcpy(out + at, "...", 4);
        return;
    }
    out[cw.w] = '\0';
}
