/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - compiled %field / {{field}} templates (see template.h).
 *
 * A template is a list of segments, each either literal text or a field
 * name, held in one allocation; rendering walks it and looks each field up.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "template.h"

#define KX_TEMPLATE_NA "<NA>"
#define KX_FIELD_NAME_MAX 128

struct seg {
    bool field;      /* else literal */
    const char *s;   /* into kx_template.text: literal bytes or the field name */
    size_t len;
};

struct kx_template {
    char *text;      /* owned: literals and NUL-terminated field names */
    struct seg *seg; /* owned */
    size_t n;
    size_t fields;
};

/* Falco's field name characters: letters, digits, '_', '.', and a bracketed
 * argument as in proc.aname[2] or k8s.pod.label[app]. */
static size_t field_len(const char *p)
{
    size_t n = 0;

    while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.' || p[n] == '-') {
        if (p[n] == '.' && !(isalnum((unsigned char)p[n + 1]) || p[n + 1] == '_'))
            break; /* a trailing dot is punctuation: "%proc.name." */
        n++;
    }
    if (n && p[n] == '[') {
        const char *close = strchr(p + n, ']');

        if (close)
            n = (size_t)(close - p) + 1;
    }
    return n;
}

/* Falcosidekick's Go-template spellings: ".Rule" -> "rule",
 * ".OutputFields.user.name" -> "user.name". In place. */
static void normalize(char *name)
{
    static const char *const top[] = {"rule", "priority", "output", "source", "hostname",
                                      "time", "uuid", "tags"};

    if (name[0] != '.')
        return;
    memmove(name, name + 1, strlen(name));
    if (strncasecmp(name, "OutputFields.", 13) == 0) {
        memmove(name, name + 13, strlen(name + 13) + 1);
        return;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(top); i++)
        if (strcasecmp(name, top[i]) == 0)
            memcpy(name, top[i], strlen(top[i]) + 1);
}

struct kx_template *kx_template_compile(const char *text, char *err, size_t errlen)
{
    struct kx_template *t;
    size_t len, o = 0, cap;
    char *w;

    if (!text) {
        snprintf(err, errlen, "no template");
        errno = EINVAL;
        return NULL;
    }
    len = strlen(text);
    if (len > KX_TEMPLATE_MAX) {
        snprintf(err, errlen, "template longer than %d bytes", KX_TEMPLATE_MAX);
        errno = EINVAL;
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    cap = len + 1;
    if (t) {
        t->text = malloc(2 * len + 2); /* literals + NUL-terminated names never exceed this */
        t->seg = calloc(cap, sizeof(*t->seg));
    }
    if (!t || !t->text || !t->seg) {
        kx_template_free(t);
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    w = t->text;
    while (o < len) {
        const char *p = text + o;
        size_t nlen = 0, skip = 0;
        const char *name = NULL;

        if (p[0] == '%' && p[1] == '%') {
            name = NULL;
            skip = 2;
            memcpy(w, "%", 1);
            t->seg[t->n++] = (struct seg){false, w, 1};
            w += 1;
            o += skip;
            continue;
        }
        if (p[0] == '%' && p[1] == '(') {
            const char *close = strchr(p + 2, ')');

            if (!close) {
                snprintf(err, errlen, "unterminated %%( at offset %zu", o);
                goto fail;
            }
            name = p + 2;
            nlen = (size_t)(close - name);
            skip = nlen + 3;
        } else if (p[0] == '%' && (nlen = field_len(p + 1)) > 0) {
            name = p + 1;
            skip = nlen + 1;
        } else if (p[0] == '{' && p[1] == '{') {
            const char *close = strstr(p + 2, "}}");

            if (!close) {
                snprintf(err, errlen, "unterminated {{ at offset %zu", o);
                goto fail;
            }
            name = p + 2;
            nlen = (size_t)(close - name);
            skip = nlen + 4;
            while (nlen && isspace((unsigned char)*name))
                name++, nlen--;
            while (nlen && isspace((unsigned char)name[nlen - 1]))
                nlen--;
        }
        if (name) {
            if (nlen == 0 || nlen >= KX_FIELD_NAME_MAX) {
                snprintf(err, errlen, "empty or too long field name at offset %zu", o);
                goto fail;
            }
            memcpy(w, name, nlen);
            w[nlen] = '\0';
            normalize(w);
            t->seg[t->n++] = (struct seg){true, w, strlen(w)};
            w += nlen + 1;
            t->fields++;
            o += skip;
            continue;
        }
        /* literal run up to the next possible placeholder */
        size_t run = 1;

        while (o + run < len && text[o + run] != '%' && text[o + run] != '{')
            run++;
        if (t->n && !t->seg[t->n - 1].field && t->seg[t->n - 1].s + t->seg[t->n - 1].len == w) {
            memcpy(w, p, run); /* extend the previous literal */
            t->seg[t->n - 1].len += run;
        } else {
            memcpy(w, p, run);
            t->seg[t->n++] = (struct seg){false, w, run};
        }
        w += run;
        o += run;
    }
    return t;
fail:
    kx_template_free(t);
    errno = EINVAL;
    return NULL;
}

void kx_template_free(struct kx_template *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->seg);
    free(t);
}

size_t kx_template_fields(const struct kx_template *t)
{
    return t ? t->fields : 0;
}

int kx_template_render(const struct kx_template *t, const struct kx_alert *a, struct kx_buf *out)
{
    char buf[1024];
    int rc;

    for (size_t i = 0; i < t->n; i++) {
        const struct seg *s = &t->seg[i];

        if (!s->field) {
            rc = kx_buf_append(out, s->s, s->len);
        } else if (strcmp(s->s, "tags") == 0) {
            const cJSON *tags = kx_alert_field(a, "tags"), *tag;
            bool first = true;

            rc = 0;
            if (!cJSON_IsArray(tags) || cJSON_GetArraySize(tags) == 0)
                rc = kx_buf_append(out, KX_TEMPLATE_NA, strlen(KX_TEMPLATE_NA));
            cJSON_ArrayForEach(tag, tags)
            {
                if (rc == 0 && cJSON_IsString(tag)) {
                    if (!first)
                        rc = kx_buf_append(out, ",", 1);
                    if (rc == 0)
                        rc = kx_buf_append(out, tag->valuestring, strlen(tag->valuestring));
                    first = false;
                }
            }
        } else {
            const char *v = kx_alert_field_str(a, s->s, buf, sizeof(buf));

            if (!v)
                v = KX_TEMPLATE_NA;
            rc = kx_buf_append(out, v, strlen(v));
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
