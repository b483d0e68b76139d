// SPDX-License-Identifier: Apache-2.0
/*
 * config.c - YAML configuration on libyaml's event parser, with file:line:col
 * diagnostics and a declarative option table (see config.h for the contract).
 *
 * Loading builds a kx_config_node tree with an explicit stack (no recursion
 * on input), and rejects what would make a config ambiguous or unbounded:
 * more than one document, duplicate keys, non-scalar keys, anchors/aliases
 * (rejected, not resolved: they make "where did this value come from" hard to
 * answer and invite alias bombs), files over 4 MiB and nesting deeper than 64.
 * A plain (unquoted) "~" or "null" value is stored as "" so that "key:",
 * "key: ~" and "key: null" all mean "empty".
 *
 * Applying an option table picks, for each option, the first of:
 *   env <PREFIX>_<KEY>, env <PREFIX>_<KEY>_FILE (secrets), YAML key,
 *   YAML <key>_file (secrets), the option's default.
 * An environment variable set to "" counts as unset (as in viper). An empty
 * YAML value gives "" for a string, an empty list/map, and the default for
 * the other scalar types; for KX_OPT_REQUIRED options it is an error.
 * Every field of the table is written, even on -EINVAL (a bad value leaves
 * the default), so the caller always ends with kx_config_release(); dst
 * should start zeroed, as fields are overwritten, not freed.
 *
 * Not thread-safe (getenv, strerror): meant for start-up, before threads.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "alert.h"
#include "util.h"

#define KX_CONFIG_MAX_BYTES (4 * 1024 * 1024) /* larger config files are refused */
#define KX_CONFIG_MAX_DEPTH 64                /* nested maps/sequences */
#define KX_SECRET_MAX_BYTES (64 * 1024)       /* "<key>_file" contents */
#define KX_VALUE_SHOW 60                      /* bytes of a bad value quoted in a message */
#define KX_SUGGEST_MAX_LEN 64                 /* longer unknown keys get no suggestion */

/* ------------------------------------------------------------------------ */
/* Diagnostics                                                               */
/* ------------------------------------------------------------------------ */

/* Appends an already formatted message; takes ownership of msg. Messages are
 * dropped (and freed) only when the array itself cannot grow. */
static void diag_push(struct kx_diag *d, char *msg)
{
    if (!d) {
        free(msg);
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        char **m = realloc(d->msgs, cap * sizeof(*m));
        if (!m) {
            free(msg);
            return;
        }
        d->msgs = m;
        d->cap = cap;
    }
    d->msgs[d->n++] = msg;
}

static void diag_vadd(struct kx_diag *d, const struct kx_config_node *at, const char *fmt,
                      va_list ap)
{
    char *msg = NULL, *full = NULL;

    if (!d)
        return;
    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    if (at) {
        if (asprintf(&full, "%s:%d:%d: %s", at->file ? at->file : "<config>", at->line, at->col,
                     msg) < 0) {
            free(msg);
            return;
        }
        free(msg);
        msg = full;
    }
    diag_push(d, msg);
}

void kx_diag_add(struct kx_diag *d, const struct kx_config_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, at, fmt, ap);
    va_end(ap);
}

/* A diagnostic at a position that has no node (yet): file borrowed. */
static void __attribute__((format(printf, 5, 6)))
diag_pos(struct kx_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    struct kx_config_node pos = {.file = file, .line = line, .col = col};
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, &pos, fmt, ap);
    va_end(ap);
}

void kx_diag_print(const struct kx_diag *d, FILE *out)
{
    if (!d || !out)
        return;
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s\n", d->msgs[i]);
}

void kx_diag_free(struct kx_diag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->n = d->cap = 0;
}

/*
 * Quotes a value for a message into buf: at most KX_VALUE_SHOW bytes (cut on
 * a UTF-8 boundary, then "..."), control characters as '?', so one
 * diagnostic stays one line. Secrets are never shown.
 */
static const char *show(char *buf, size_t len, const char *s, bool hide)
{
    size_t n = 0, o = 0, max;

    if (hide) {
        snprintf(buf, len, "(value hidden)");
        return buf;
    }
    max = strlen(s);
    if (max > KX_VALUE_SHOW) {
        max = KX_VALUE_SHOW;
        while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
            max--;
    }
    if (len < 8)
        return "";
    buf[o++] = '"';
    for (n = 0; n < max && o + 6 < len; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o++] = '"';
    if (n < strlen(s)) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Tree                                                                      */
/* ------------------------------------------------------------------------ */

/* Frees a node, its children and its siblings. Recursion only goes as deep
 * as the nesting, which the loader bounds at KX_CONFIG_MAX_DEPTH. */
static void node_free(struct kx_config_node *n)
{
    while (n) {
        struct kx_config_node *next = n->next;
        node_free(n->child);
        free(n->key);
        free(n->value);
        free(n);
        n = next;
    }
}

void kx_config_free(struct kx_config_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

const struct kx_config_node *kx_config_get(const struct kx_config_node *map, const char *key)
{
    if (!map || map->kind != KX_CFG_MAP || !key)
        return NULL;
    for (const struct kx_config_node *c = map->child; c; c = c->next)
        if (c->key && strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

static const char *kind_name(enum kx_config_kind k)
{
    switch (k) {
    case KX_CFG_MAP:
        return "a map";
    case KX_CFG_SEQ:
        return "a list";
    default:
        return "a scalar";
    }
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */
/* ------------------------------------------------------------------------ */

struct key_pos {
    const char *key; /* borrowed from the node */
    int line, col;   /* position of the key itself */
};

struct load_frame {
    struct kx_config_node *node;  /* collection being filled; NULL at document level */
    struct kx_config_node **tail; /* where the next child is linked */
    char *key;                    /* owned: a map's key awaiting its value */
    int key_line, key_col;
    struct key_pos *keys; /* owned: a map's keys, for the duplicate check */
    size_t nkeys, capkeys;
};

struct loader {
    const char *file; /* borrowed: doc->file */
    const char *buf;  /* borrowed: the input, for reader-error positions */
    size_t len;
    struct kx_diag *d;
    struct load_frame frames[KX_CONFIG_MAX_DEPTH + 1]; /* [0] = document level */
    int depth;
    int ndocs;
};

static void frame_clear(struct load_frame *f)
{
    free(f->key);
    free(f->keys);
    memset(f, 0, sizeof(*f));
}

static int key_pos_cmp(const void *a, const void *b)
{
    const struct key_pos *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->col < y->col ? -1 : (x->col > y->col);
}

/* Sorting instead of comparing every pair keeps a 4 MiB map of tiny keys
 * from costing O(n^2). Reports every duplicate; -EINVAL if any. */
static int check_duplicates(struct loader *l, struct load_frame *f)
{
    char kb[96];
    int ret = 0;

    if (f->nkeys < 2)
        return 0;
    qsort(f->keys, f->nkeys, sizeof(*f->keys), key_pos_cmp);
    for (size_t i = 1; i < f->nkeys; i++) {
        const struct key_pos *first = &f->keys[i - 1], *dup = &f->keys[i];
        if (strcmp(first->key, dup->key) != 0)
            continue;
        /* For three copies, name the first each time. */
        size_t j = i - 1;
        while (j > 0 && strcmp(f->keys[j - 1].key, dup->key) == 0)
            j--;
        diag_pos(l->d, l->file, dup->line, dup->col,
                 "duplicate key %s (first defined at line %d, column %d)",
                 show(kb, sizeof(kb), dup->key, false), f->keys[j].line, f->keys[j].col);
        ret = -EINVAL;
    }
    return ret;
}

static void diag_parser_error(struct loader *l, const yaml_parser_t *p)
{
    int line, col;

    if (p->error == YAML_MEMORY_ERROR) {
        diag_pos(l->d, l->file, 1, 1, "out of memory while parsing");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        size_t off = p->problem_offset < l->len ? p->problem_offset : l->len;
        line = 1;
        col = 1;
        for (size_t i = 0; i < off; i++) {
            if (l->buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (p->problem_value >= 0)
            diag_pos(l->d, l->file, line, col, "%s (byte 0x%02x)",
                     p->problem ? p->problem : "cannot read input", p->problem_value & 0xff);
        else
            diag_pos(l->d, l->file, line, col, "%s", p->problem ? p->problem : "cannot read input");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        diag_pos(l->d, l->file, line, col, "%s (%s at line %d, column %d)",
                 p->problem ? p->problem : "syntax error", p->context,
                 (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    else
        diag_pos(l->d, l->file, line, col, "%s", p->problem ? p->problem : "syntax error");
}

static bool plain_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
            strcmp(v, "NULL") == 0);
}

/* Handles a scalar, alias, mapping-start or sequence-start event. */
static int load_node_event(struct loader *l, const yaml_event_t *ev)
{
    struct load_frame *f = &l->frames[l->depth];
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    const yaml_char_t *anchor = NULL;
    struct kx_config_node *n;

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        diag_pos(l->d, l->file, line, col,
                 "alias *%s: anchors and aliases are not supported; repeat the value instead",
                 (const char *)ev->data.alias.anchor);
        return -EINVAL;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        break;
    default:
        return 0;
    }
    if (anchor) {
        diag_pos(l->d, l->file, line, col,
                 "anchor &%s: anchors and aliases are not supported; repeat the value instead",
                 (const char *)anchor);
        return -EINVAL;
    }
    if (ev->type == YAML_SCALAR_EVENT &&
        memchr(ev->data.scalar.value, '\0', ev->data.scalar.length)) {
        diag_pos(l->d, l->file, line, col, "value contains a NUL character");
        return -EINVAL;
    }

    if (f->node && f->node->kind == KX_CFG_MAP && !f->key) {
        if (ev->type != YAML_SCALAR_EVENT) {
            diag_pos(l->d, l->file, line, col, "map keys must be scalars, not %s",
                     ev->type == YAML_MAPPING_START_EVENT ? "a map" : "a list");
            return -EINVAL;
        }
        f->key = strdup((const char *)ev->data.scalar.value);
        if (!f->key)
            return -ENOMEM;
        f->key_line = line;
        f->key_col = col;
        return 0;
    }

    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->file = l->file;
    n->line = line;
    n->col = col;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = KX_CFG_SCALAR;
        n->value = strdup(plain_null(ev) ? "" : (const char *)ev->data.scalar.value);
        if (!n->value) {
            free(n);
            return -ENOMEM;
        }
    } else {
        n->kind = ev->type == YAML_MAPPING_START_EVENT ? KX_CFG_MAP : KX_CFG_SEQ;
    }
    n->key = f->key; /* moves ownership; NULL in sequences and at the top */
    f->key = NULL;
    *f->tail = n;
    f->tail = &n->next;

    if (f->node && f->node->kind == KX_CFG_MAP) {
        if (f->nkeys == f->capkeys) {
            size_t cap = f->capkeys ? f->capkeys * 2 : 8;
            struct key_pos *k = realloc(f->keys, cap * sizeof(*k));
            if (!k)
                return -ENOMEM;
            f->keys = k;
            f->capkeys = cap;
        }
        f->keys[f->nkeys++] = (struct key_pos){n->key, f->key_line, f->key_col};
    }

    if (n->kind != KX_CFG_SCALAR) {
        if (l->depth >= KX_CONFIG_MAX_DEPTH) {
            diag_pos(l->d, l->file, line, col, "nesting deeper than %d levels",
                     KX_CONFIG_MAX_DEPTH);
            return -EINVAL;
        }
        l->depth++;
        f = &l->frames[l->depth];
        memset(f, 0, sizeof(*f));
        f->node = n;
        f->tail = &n->child;
    }
    return 0;
}

/* Parses buf (len bytes) into doc->root. 0, -EINVAL (diagnosed) or -ENOMEM. */
static int load_buf(struct kx_config_doc *doc, const char *buf, size_t len, struct kx_diag *d)
{
    struct loader *l;
    yaml_parser_t p;
    int ret = 0;
    bool done = false;

    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->file = doc->file;
    l->buf = buf;
    l->len = len;
    l->d = d;
    l->frames[0].tail = &doc->root;

    if (!yaml_parser_initialize(&p)) {
        free(l);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

    while (!done && ret == 0) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&p, &ev)) {
            diag_parser_error(l, &p);
            ret = p.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (l->ndocs++ > 0) {
                diag_pos(d, l->file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                         "more than one YAML document; a config file holds exactly one");
                ret = -EINVAL;
            }
            break;
        case YAML_MAPPING_END_EVENT:
            ret = check_duplicates(l, &l->frames[l->depth]);
            frame_clear(&l->frames[l->depth]);
            l->depth--;
            break;
        case YAML_SEQUENCE_END_EVENT:
            frame_clear(&l->frames[l->depth]);
            l->depth--;
            break;
        default:
            ret = load_node_event(l, &ev);
            break;
        }
        yaml_event_delete(&ev);
    }
    for (int i = 0; i <= l->depth && i <= KX_CONFIG_MAX_DEPTH; i++)
        frame_clear(&l->frames[i]);
    yaml_parser_delete(&p);
    free(l);

    /* A document that is only "---" (or "~") is as empty as an empty file. */
    if (ret == 0 && doc->root && doc->root->kind == KX_CFG_SCALAR && doc->root->value[0] == '\0') {
        node_free(doc->root);
        doc->root = NULL;
    }
    return ret;
}

static struct kx_config_doc *doc_new(const char *name)
{
    struct kx_config_doc *doc = calloc(1, sizeof(*doc));

    if (!doc)
        return NULL;
    doc->file = strdup(name ? name : "<string>");
    if (!doc->file) {
        free(doc);
        return NULL;
    }
    return doc;
}

/* Parses and returns the doc or NULL (errno set); buf stays the caller's. */
static struct kx_config_doc *load_common(const char *name, const char *buf, size_t len,
                                         struct kx_diag *d)
{
    struct kx_config_doc *doc;
    int ret;

    if (len > KX_CONFIG_MAX_BYTES) {
        kx_diag_add(d, NULL, "%s: file is larger than %d MiB", name,
                    KX_CONFIG_MAX_BYTES / (1024 * 1024));
        errno = E2BIG;
        return NULL;
    }
    doc = doc_new(name);
    if (!doc) {
        kx_diag_add(d, NULL, "%s: out of memory", name);
        errno = ENOMEM;
        return NULL;
    }
    ret = load_buf(doc, buf, len, d);
    if (ret < 0) {
        if (ret == -ENOMEM)
            kx_diag_add(d, NULL, "%s: out of memory", name);
        kx_config_free(doc);
        errno = -ret;
        return NULL;
    }
    return doc;
}

struct kx_config_doc *kx_config_load_string(const char *name, const char *yaml, struct kx_diag *d)
{
    if (!name)
        name = "<string>";
    if (!yaml) {
        kx_diag_add(d, NULL, "%s: no input", name);
        errno = EINVAL;
        return NULL;
    }
    return load_common(name, yaml, strlen(yaml), d);
}

struct kx_config_doc *kx_config_load(const char *path, struct kx_diag *d)
{
    struct kx_config_doc *doc;
    size_t len = 0;
    char *buf;
    int err;

    if (!path) {
        kx_diag_add(d, NULL, "config: no path given");
        errno = EINVAL;
        return NULL;
    }
    buf = kx_read_file(path, KX_CONFIG_MAX_BYTES, &len);
    if (!buf) {
        err = errno;
        if (err == E2BIG)
            kx_diag_add(d, NULL, "%s: file is larger than %d MiB", path,
                        KX_CONFIG_MAX_BYTES / (1024 * 1024));
        else
            kx_diag_add(d, NULL, "%s: cannot open: %s", path, strerror(err));
        errno = err;
        return NULL;
    }
    doc = load_common(path, buf, len, d);
    err = errno;
    free(buf);
    errno = err;
    return doc;
}

/* ------------------------------------------------------------------------ */
/* Applying option tables                                                    */
/* ------------------------------------------------------------------------ */

union kx_val {
    char *s;                           /* KX_OPT_STR */
    int64_t i;                         /* INT, DURATION, SIZE */
    bool b;                            /* BOOL */
    int pri;                           /* PRIORITY */
    struct kx_strlist l;               /* STRLIST */
    struct kx_strmap m;                /* STRMAP */
    const struct kx_config_node *node; /* NODE (borrowed) */
};

static const char *type_name(enum kx_opt_type t)
{
    static const char *const names[] = {
        [KX_OPT_STR] = "str",           [KX_OPT_INT] = "int",    [KX_OPT_BOOL] = "bool",
        [KX_OPT_DURATION] = "duration", [KX_OPT_SIZE] = "size",  [KX_OPT_PRIORITY] = "priority",
        [KX_OPT_STRLIST] = "list",      [KX_OPT_STRMAP] = "map", [KX_OPT_NODE] = "node",
    };
    return (unsigned)t < KX_ARRAY_SIZE(names) && names[t] ? names[t] : "?";
}

/* "expected a duration, got ..." */
static const char *type_article(enum kx_opt_type t)
{
    switch (t) {
    case KX_OPT_STR:
        return "a string";
    case KX_OPT_INT:
        return "an integer";
    case KX_OPT_BOOL:
        return "a boolean";
    case KX_OPT_DURATION:
        return "a duration";
    case KX_OPT_SIZE:
        return "a size";
    case KX_OPT_PRIORITY:
        return "a priority";
    case KX_OPT_STRLIST:
        return "a list or a comma-separated string";
    case KX_OPT_STRMAP:
        return "a map";
    default:
        return "a value";
    }
}

/* Types for which an empty value ("key:") means "use the default"; a string
 * takes "" and a list or map is empty instead. */
static bool empty_is_default(enum kx_opt_type t)
{
    return t == KX_OPT_INT || t == KX_OPT_BOOL || t == KX_OPT_DURATION || t == KX_OPT_SIZE ||
           t == KX_OPT_PRIORITY || t == KX_OPT_NODE;
}

void kx_strlist_free(struct kx_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void strmap_free(struct kx_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    m->keys = m->vals = NULL;
    m->n = 0;
}

static void val_free(enum kx_opt_type t, union kx_val *v)
{
    if (t == KX_OPT_STR)
        free(v->s);
    else if (t == KX_OPT_STRLIST)
        kx_strlist_free(&v->l);
    else if (t == KX_OPT_STRMAP)
        strmap_free(&v->m);
    memset(v, 0, sizeof(*v));
}

int kx_strlist_add(struct kx_strlist *l, const char *s, size_t n)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (!v)
        return -ENOMEM;
    l->v = v;
    l->v[l->n] = strndup(s, n);
    if (!l->v[l->n])
        return -ENOMEM;
    l->n++;
    return 0;
}

/* Appends copies of k and v. 0 or -ENOMEM. */
static int strmap_add(struct kx_strmap *m, const char *k, size_t kn, const char *v, size_t vn)
{
    char **keys = realloc(m->keys, (m->n + 1) * sizeof(*keys));
    char **vals;

    if (!keys)
        return -ENOMEM;
    m->keys = keys;
    vals = realloc(m->vals, (m->n + 1) * sizeof(*vals));
    if (!vals)
        return -ENOMEM;
    m->vals = vals;
    m->keys[m->n] = strndup(k, kn);
    m->vals[m->n] = strndup(v, vn);
    if (!m->keys[m->n] || !m->vals[m->n]) {
        free(m->keys[m->n]);
        free(m->vals[m->n]);
        return -ENOMEM;
    }
    m->n++;
    return 0;
}

/* Trims s[*b..*e) of leading and trailing whitespace. */
static void trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && isspace((unsigned char)s[*b]))
        (*b)++;
    while (*e > *b && isspace((unsigned char)s[*e - 1]))
        (*e)--;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < KX_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * Parses text s as option type t into v (caller owns v's contents; on error v
 * is left empty). On -EINVAL writes the problem ("bad duration \"x\" ...") to
 * err. hide: never echo the value (secrets).
 */
static int parse_text(enum kx_opt_type t, const char *s, bool hide, union kx_val *v, char *err,
                      size_t errlen)
{
    char q[KX_VALUE_SHOW + 16];
    int ret = 0;

    memset(v, 0, sizeof(*v));
    switch (t) {
    case KX_OPT_STR:
        v->s = strdup(s);
        return v->s ? 0 : -ENOMEM;
    case KX_OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || *end != '\0' || isspace((unsigned char)*s)) {
            snprintf(err, errlen, "bad integer %s", show(q, sizeof(q), s, hide));
            return -EINVAL;
        }
        if (errno == ERANGE) {
            snprintf(err, errlen, "integer %s out of range (%lld..%lld)",
                     show(q, sizeof(q), s, hide), (long long)INT64_MIN, (long long)INT64_MAX);
            return -EINVAL;
        }
        v->i = x;
        return 0;
    }
    case KX_OPT_BOOL:
        if (parse_bool(s, &v->b) < 0) {
            snprintf(err, errlen, "bad boolean %s (want true/false, yes/no, on/off or 1/0)",
                     show(q, sizeof(q), s, hide));
            return -EINVAL;
        }
        return 0;
    case KX_OPT_DURATION:
        if (kx_duration_parse(s, &v->i) < 0) {
            snprintf(err, errlen, "bad duration %s (e.g. 250ms, 5s, 1m, 1h30m)",
                     show(q, sizeof(q), s, hide));
            v->i = 0;
            return -EINVAL;
        }
        return 0;
    case KX_OPT_SIZE:
        if (kx_size_parse(s, &v->i) < 0) {
            snprintf(err, errlen, "bad size %s (e.g. 512, 64KiB, 1MiB)",
                     show(q, sizeof(q), s, hide));
            v->i = 0;
            return -EINVAL;
        }
        return 0;
    case KX_OPT_PRIORITY: {
        enum kx_priority p;
        if (kx_priority_parse(s, &p) < 0) {
            snprintf(err, errlen,
                     "bad priority %s (want emergency, alert, critical, error, warning, notice, "
                     "informational or debug)",
                     show(q, sizeof(q), s, hide));
            return -EINVAL;
        }
        v->pri = (int)p;
        return 0;
    }
    case KX_OPT_STRLIST: {
        /* "a, b,c" -> {"a","b","c"}; empty items are skipped. */
        size_t i = 0, len = strlen(s);
        while (i <= len && ret == 0) {
            size_t b = i, e = i;
            while (e < len && s[e] != ',')
                e++;
            i = e + 1;
            trim(s, &b, &e);
            if (e > b)
                ret = kx_strlist_add(&v->l, s + b, e - b);
        }
        break;
    }
    case KX_OPT_STRMAP: {
        /* "k:v, k2:v2"; the first ':' splits, so values may hold ':' (URLs). */
        size_t i = 0, len = strlen(s);
        while (i <= len && ret == 0) {
            size_t b = i, e = i, kb, ke, vb, ve;
            const char *colon;
            while (e < len && s[e] != ',')
                e++;
            i = e + 1;
            trim(s, &b, &e);
            if (e == b)
                continue;
            colon = memchr(s + b, ':', e - b);
            if (!colon || colon == s + b) {
                char item[KX_VALUE_SHOW + 1];
                snprintf(item, sizeof(item), "%.*s", (int)(e - b), s + b);
                snprintf(err, errlen, "bad map entry %s (want key:value,key2:value2)",
                         show(q, sizeof(q), item, hide));
                ret = -EINVAL;
                break;
            }
            kb = b;
            ke = (size_t)(colon - s);
            vb = ke + 1;
            ve = e;
            trim(s, &kb, &ke);
            trim(s, &vb, &ve);
            for (size_t k = 0; k < v->m.n; k++) {
                if (strlen(v->m.keys[k]) == ke - kb && memcmp(v->m.keys[k], s + kb, ke - kb) == 0) {
                    snprintf(err, errlen, "duplicate map key %s",
                             show(q, sizeof(q), v->m.keys[k], hide));
                    ret = -EINVAL;
                    break;
                }
            }
            if (ret == 0)
                ret = strmap_add(&v->m, s + kb, ke - kb, s + vb, ve - vb);
        }
        break;
    }
    case KX_OPT_NODE:
        snprintf(err, errlen, "a YAML value is needed here, not text");
        return -EINVAL;
    }
    if (ret < 0)
        val_free(t, v);
    return ret;
}

/*
 * Where one option's value comes from. what prefixes every diagnostic about
 * it ("key \"timeout\"", "environment WEBHOOK_TIMEOUT"); at gives the position
 * (NULL for the environment).
 */
struct src {
    const struct kx_config_node *node; /* YAML value (borrowed), or NULL for text */
    const char *text;                  /* text value (borrowed or == owned) */
    char *owned;                       /* owned: contents of a secret file */
    const struct kx_config_node *at;   /* position for diagnostics; may be NULL */
    char what[320];
};

static bool src_empty(const struct src *s)
{
    if (s->node)
        return s->node->kind == KX_CFG_SCALAR && s->node->value[0] == '\0';
    return s->text && s->text[0] == '\0';
}

/* A YAML value that is present and not an empty scalar. */
static bool yaml_set(const struct kx_config_node *n)
{
    return n && !(n->kind == KX_CFG_SCALAR && n->value[0] == '\0');
}

/* The "<key>_file" entry of map (borrowed) or NULL. */
static const struct kx_config_node *file_node(const struct kx_config_node *map, const char *key)
{
    char name[256];

    if (snprintf(name, sizeof(name), "%s_file", key) >= (int)sizeof(name))
        return NULL;
    return kx_config_get(map, name);
}

/* "<PREFIX>_<KEY><suffix>", uppercase, '.' and '-' as '_'. -ENAMETOOLONG if
 * it does not fit buf. */
static int env_name(char *buf, size_t len, const char *prefix, const char *key, const char *suffix)
{
    int n = snprintf(buf, len, "%s_%s%s", prefix, key, suffix);

    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    for (char *p = buf; *p; p++)
        *p = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
    return 0;
}

/* Reads a secret file into s->owned, trailing whitespace trimmed. On failure
 * diagnoses "<what>: cannot read \"path\": <errno text>" and returns < 0. */
static int read_secret(struct src *s, const char *path, struct kx_diag *d)
{
    char q[KX_VALUE_SHOW + 16];
    size_t len = 0;
    char *buf = kx_read_file(path, KX_SECRET_MAX_BYTES, &len);

    if (!buf) {
        int err = errno;
        if (err == E2BIG)
            kx_diag_add(d, s->at, "%s: cannot read %s: larger than %d KiB", s->what,
                        show(q, sizeof(q), path, false), KX_SECRET_MAX_BYTES / 1024);
        else
            kx_diag_add(d, s->at, "%s: cannot read %s: %s", s->what,
                        show(q, sizeof(q), path, false), strerror(err));
        return err == ENOMEM ? -ENOMEM : -EINVAL;
    }
    if (strlen(buf) != len) {
        kx_diag_add(d, s->at, "%s: %s contains a NUL byte", s->what,
                    show(q, sizeof(q), path, false));
        free(buf);
        return -EINVAL;
    }
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        buf[--len] = '\0';
    s->owned = buf;
    s->text = buf;
    return 0;
}

/*
 * Converts a YAML node into v for option o. Diagnoses at the offending node
 * (the value, a list item or a map value) and returns -EINVAL, or -ENOMEM.
 */
static int parse_node(const struct kx_opt *o, const struct src *s, union kx_val *v,
                      struct kx_diag *d)
{
    const struct kx_config_node *n = s->node, *c;
    bool hide = o->flags & KX_OPT_SECRET;
    char err[512], q[KX_VALUE_SHOW + 16];
    size_t i = 0;
    int ret;

    memset(v, 0, sizeof(*v));
    if (o->type == KX_OPT_NODE) {
        v->node = n;
        return 0;
    }
    if (n->kind == KX_CFG_SCALAR) {
        ret = parse_text(o->type, n->value, hide, v, err, sizeof(err));
        if (ret == -EINVAL)
            kx_diag_add(d, n, "%s: %s", s->what, err);
        return ret;
    }
    if (o->type == KX_OPT_STRLIST && n->kind == KX_CFG_SEQ) {
        for (c = n->child; c; c = c->next, i++) {
            if (c->kind != KX_CFG_SCALAR) {
                kx_diag_add(d, c, "%s: item %zu: expected a string, got %s", s->what, i + 1,
                            kind_name(c->kind));
                val_free(o->type, v);
                return -EINVAL;
            }
            if ((ret = kx_strlist_add(&v->l, c->value, strlen(c->value))) < 0) {
                val_free(o->type, v);
                return ret;
            }
        }
        return 0;
    }
    if (o->type == KX_OPT_STRMAP && n->kind == KX_CFG_MAP) {
        for (c = n->child; c; c = c->next) {
            if (c->kind != KX_CFG_SCALAR) {
                kx_diag_add(d, c, "%s: value of %s: expected a string, got %s", s->what,
                            show(q, sizeof(q), c->key, false), kind_name(c->kind));
                val_free(o->type, v);
                return -EINVAL;
            }
            ret = strmap_add(&v->m, c->key, strlen(c->key), c->value, strlen(c->value));
            if (ret < 0) {
                val_free(o->type, v);
                return ret;
            }
        }
        return 0;
    }
    kx_diag_add(d, n, "%s: expected %s, got %s", s->what, type_article(o->type),
                kind_name(n->kind));
    return -EINVAL;
}

static void val_store(const struct kx_opt *o, void *dst, const union kx_val *v)
{
    char *field = (char *)dst + o->offset;

    switch (o->type) {
    case KX_OPT_STR:
        memcpy(field, &v->s, sizeof(v->s));
        break;
    case KX_OPT_INT:
    case KX_OPT_DURATION:
    case KX_OPT_SIZE:
        memcpy(field, &v->i, sizeof(v->i));
        break;
    case KX_OPT_BOOL:
        memcpy(field, &v->b, sizeof(v->b));
        break;
    case KX_OPT_PRIORITY:
        memcpy(field, &v->pri, sizeof(v->pri));
        break;
    case KX_OPT_STRLIST:
        memcpy(field, &v->l, sizeof(v->l));
        break;
    case KX_OPT_STRMAP:
        memcpy(field, &v->m, sizeof(v->m));
        break;
    case KX_OPT_NODE:
        memcpy(field, &v->node, sizeof(v->node));
        break;
    }
}

/* The option's default into v; a bad default is a bug in the table, but is
 * still reported rather than trusted. */
static int parse_default(const struct kx_opt *o, union kx_val *v, struct kx_diag *d, unsigned *nerr)
{
    char err[512];
    int ret;

    memset(v, 0, sizeof(*v));
    if (!o->def || o->type == KX_OPT_NODE)
        return 0;
    ret = parse_text(o->type, o->def, false, v, err, sizeof(err));
    if (ret == -EINVAL) {
        kx_diag_add(d, NULL, "default of \"%s\": %s (bug in the option table)", o->key, err);
        (*nerr)++;
        return 0;
    }
    return ret;
}

/*
 * Resolves, parses and stores one option. Diagnostics bump *nerr; the field
 * then gets the default. Returns 0 or -ENOMEM (the field is then zero).
 */
static int apply_one(const struct kx_opt *o, const struct kx_config_node *map, void *dst,
                     const char *prefix, struct kx_diag *d, unsigned *nerr)
{
    const bool secret = (o->flags & KX_OPT_SECRET) && o->type != KX_OPT_NODE;
    const struct kx_config_node *node = kx_config_get(map, o->key);
    const struct kx_config_node *fnode = secret ? file_node(map, o->key) : NULL;
    char ename[256] = "", fname[256] = "", err[512];
    const char *eval = NULL, *fval = NULL;
    struct src s = {0};
    union kx_val v = {0};
    bool have = false, failed = false;
    int ret = 0;

    if (yaml_set(node) && yaml_set(fnode)) {
        kx_diag_add(d, fnode, "both \"%s\" (line %d) and \"%s_file\" are set; keep one", o->key,
                    node->line, o->key);
        (*nerr)++;
        failed = true;
    }
    if (fnode && fnode->kind != KX_CFG_SCALAR) {
        kx_diag_add(d, fnode, "key \"%s_file\": expected a file path, got %s", o->key,
                    kind_name(fnode->kind));
        (*nerr)++;
        failed = true;
    }

    if (prefix && o->type != KX_OPT_NODE) {
        if (env_name(ename, sizeof(ename), prefix, o->key, "") < 0 ||
            (secret && env_name(fname, sizeof(fname), prefix, o->key, "_FILE") < 0)) {
            kx_diag_add(d, NULL, "environment name for \"%s\" is too long", o->key);
            (*nerr)++;
            failed = true;
        } else {
            eval = getenv(ename);
        }
        if (eval && !*eval)
            eval = NULL;
        if (secret && !failed) {
            fval = getenv(fname);
            if (fval && !*fval)
                fval = NULL;
        }
        if (eval && fval) {
            kx_diag_add(d, NULL, "environment %s and %s are both set; keep one", ename, fname);
            (*nerr)++;
            failed = true;
        }
    }

    if (!failed) {
        if (eval) {
            snprintf(s.what, sizeof(s.what), "environment %s", ename);
            s.text = eval;
        } else if (fval) {
            snprintf(s.what, sizeof(s.what), "environment %s", fname);
            if ((ret = read_secret(&s, fval, d)) < 0)
                failed = true;
        } else if (yaml_set(node) || (node && !yaml_set(fnode))) {
            snprintf(s.what, sizeof(s.what), "key \"%s\"", o->key);
            s.node = node;
            s.at = node;
        } else if (yaml_set(fnode)) {
            s.at = fnode;
            snprintf(s.what, sizeof(s.what), "key \"%s_file\"", o->key);
            if ((ret = read_secret(&s, fnode->value, d)) < 0)
                failed = true;
        }
        if (failed) {
            (*nerr)++;
            if (ret == -ENOMEM)
                goto out;
            ret = 0;
        }
    }

    if (!failed && (o->flags & KX_OPT_REQUIRED)) {
        if (!s.node && !s.text) {
            char hint[600] = "";
            if (secret && prefix)
                snprintf(hint, sizeof(hint), " (or \"%s_file\", or environment %s or %s)", o->key,
                         ename, fname);
            else if (secret)
                snprintf(hint, sizeof(hint), " (or \"%s_file\")", o->key);
            else if (prefix)
                snprintf(hint, sizeof(hint), " (or environment %s)", ename);
            kx_diag_add(d, map, "missing required key \"%s\"%s", o->key, hint);
            (*nerr)++;
            failed = true;
        } else if (src_empty(&s)) {
            kx_diag_add(d, s.at, "%s: required, but empty", s.what);
            (*nerr)++;
            failed = true;
        }
    }

    if (!failed && (s.node || s.text) && !(src_empty(&s) && empty_is_default(o->type))) {
        if (s.node) {
            ret = parse_node(o, &s, &v, d);
        } else {
            ret = parse_text(o->type, s.text, secret, &v, err, sizeof(err));
            if (ret == -EINVAL)
                kx_diag_add(d, s.at, "%s: %s", s.what, err);
        }
        if (ret == -ENOMEM)
            goto out;
        if (ret == 0)
            have = true;
        else
            (*nerr)++;
        ret = 0;
    }
    if (!have)
        ret = parse_default(o, &v, d, nerr);
out:
    /* Even after -ENOMEM v is valid (zeroed), so the field is never garbage. */
    val_store(o, dst, &v);
    free(s.owned);
    return ret;
}

/* Optimal string alignment distance (Levenshtein plus transpositions),
 * both strings at most KX_SUGGEST_MAX_LEN bytes. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int rows[3][KX_SUGGEST_MAX_LEN + 1];
    int *pp = rows[0], *p = rows[1], *c = rows[2];

    if (la > KX_SUGGEST_MAX_LEN || lb > KX_SUGGEST_MAX_LEN)
        return INT_MAX;
    for (size_t j = 0; j <= lb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = p[j] + 1;
            if (c[j - 1] + 1 < best)
                best = c[j - 1] + 1;
            if (p[j - 1] + cost < best)
                best = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            c[j] = best;
        }
        int *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}

/* Whether key names an option (or a secret's "<key>_file") in any set. */
static bool key_known(const struct kx_opt_set *sets, size_t nsets, const char *key)
{
    for (size_t i = 0; i < nsets; i++) {
        for (const struct kx_opt *o = sets[i].opts; o && o->key; o++) {
            size_t n = strlen(o->key);
            if (strcmp(o->key, key) == 0)
                return true;
            if ((o->flags & KX_OPT_SECRET) && strncmp(o->key, key, n) == 0 &&
                strcmp(key + n, "_file") == 0)
                return true;
        }
    }
    return false;
}

static void diag_unknown(const struct kx_opt_set *sets, size_t nsets,
                         const struct kx_config_node *c, struct kx_diag *d)
{
    char q[KX_VALUE_SHOW + 16], cand[KX_SUGGEST_MAX_LEN + 8];
    const char *best = NULL;
    bool best_file = false;
    int bestd = 3, len = (int)strlen(c->key);

    for (size_t i = 0; i < nsets; i++) {
        for (const struct kx_opt *o = sets[i].opts; o && o->key; o++) {
            int dist = edit_distance(c->key, o->key);
            if (dist < bestd && dist < len) {
                bestd = dist;
                best = o->key;
                best_file = false;
            }
            if ((o->flags & KX_OPT_SECRET) &&
                snprintf(cand, sizeof(cand), "%s_file", o->key) < (int)sizeof(cand)) {
                dist = edit_distance(c->key, cand);
                if (dist < bestd && dist < len) {
                    bestd = dist;
                    best = o->key;
                    best_file = true;
                }
            }
        }
    }
    if (best)
        kx_diag_add(d, c, "unknown key %s (did you mean \"%s%s\"?)",
                    show(q, sizeof(q), c->key, false), best, best_file ? "_file" : "");
    else
        kx_diag_add(d, c, "unknown key %s", show(q, sizeof(q), c->key, false));
}

int kx_config_apply_sets(const struct kx_opt_set *sets, size_t nsets,
                         const struct kx_config_node *map, const char *env_prefix,
                         struct kx_diag *d)
{
    unsigned nerr = 0;
    int ret;

    if (!sets && nsets)
        return -EINVAL;
    for (size_t i = 0; i < nsets; i++)
        if (!sets[i].dst || !sets[i].opts)
            return -EINVAL;
    /* "webhook:" with nothing under it: no settings, not a type error. */
    if (map && map->kind == KX_CFG_SCALAR && map->value[0] == '\0')
        map = NULL;
    if (map && map->kind != KX_CFG_MAP) {
        char q[KX_VALUE_SHOW + 16];
        kx_diag_add(d, map, "expected a map of settings, got %s",
                    map->kind == KX_CFG_SCALAR ? show(q, sizeof(q), map->value, false)
                                               : kind_name(map->kind));
        nerr++;
        map = NULL;
    }
    for (const struct kx_config_node *c = map ? map->child : NULL; c; c = c->next) {
        if (c->key && !key_known(sets, nsets, c->key)) {
            diag_unknown(sets, nsets, c, d);
            nerr++;
        }
    }
    for (size_t i = 0; i < nsets; i++) {
        for (const struct kx_opt *o = sets[i].opts; o->key; o++) {
            ret = apply_one(o, map, sets[i].dst, env_prefix, d, &nerr);
            if (ret < 0) {
                kx_diag_add(d, NULL, "config: out of memory");
                return ret;
            }
        }
    }
    return nerr ? -EINVAL : 0;
}

int kx_config_apply(const struct kx_opt *opts, const struct kx_config_node *map, void *dst,
                    const char *env_prefix, struct kx_diag *d)
{
    struct kx_opt_set set = {.opts = opts, .dst = dst};

    return kx_config_apply_sets(&set, 1, map, env_prefix, d);
}

void kx_config_release(const struct kx_opt *opts, void *dst)
{
    if (!opts || !dst)
        return;
    for (const struct kx_opt *o = opts; o->key; o++) {
        char *field = (char *)dst + o->offset;
        union kx_val v;

        switch (o->type) {
        case KX_OPT_STR:
            memcpy(&v.s, field, sizeof(v.s));
            free(v.s);
            v.s = NULL;
            memcpy(field, &v.s, sizeof(v.s));
            break;
        case KX_OPT_STRLIST:
            kx_strlist_free((struct kx_strlist *)(void *)field);
            break;
        case KX_OPT_STRMAP:
            strmap_free((struct kx_strmap *)(void *)field);
            break;
        case KX_OPT_NODE:
            /* Borrowed from the document: only forget it. */
            v.node = NULL;
            memcpy(field, &v.node, sizeof(v.node));
            break;
        default:
            break;
        }
    }
}

void kx_config_print_opts(const struct kx_opt *opts, const char *indent)
{
    if (!opts)
        return;
    for (const struct kx_opt *o = opts; o->key; o++) {
        printf("%s%s (%s", indent ? indent : "", o->key, type_name(o->type));
        if (o->flags & KX_OPT_REQUIRED)
            printf(", required");
        if (o->flags & KX_OPT_SECRET)
            printf(", secret, or %s_file", o->key);
        if (o->def)
            printf(", default %s", o->def[0] ? o->def : "\"\"");
        printf("): %s\n", o->desc ? o->desc : "");
    }
}

void kx_config_print_opts_md(const struct kx_opt *opts, const char *env_prefix, FILE *out)
{
    fprintf(out, "| key | env | type | default | |\n|---|---|---|---|---|\n");
    for (const struct kx_opt *o = opts; o && o->key; o++) {
        char env[128];
        size_t n = 0;

        for (const char *p = env_prefix; p && *p && n + 1 < sizeof(env); p++)
            env[n++] = *p;
        if (env_prefix && n + 1 < sizeof(env))
            env[n++] = '_';
        for (const char *p = o->key; *p && n + 1 < sizeof(env); p++)
            env[n++] = (char)toupper((unsigned char)*p);
        env[n] = '\0';
        fprintf(out, "| `%s` | `%s`%s | %s | ", o->key, env,
                o->flags & KX_OPT_SECRET ? " (or `_FILE`)" : "", type_name(o->type));
        if (o->flags & KX_OPT_REQUIRED)
            fprintf(out, "**required**");
        else if (o->def)
            fprintf(out, o->def[0] ? "`%s`" : "\"\"", o->def);
        fprintf(out, " | ");
        /* a pipe in a description would end the table cell */
        for (const char *p = o->desc ? o->desc : ""; *p; p++) {
            if (*p == '|')
                fputc('\\', out);
            fputc(*p, out);
        }
        fprintf(out, "%s |\n", o->flags & KX_OPT_SECRET ? " (secret: never logged)" : "");
    }
}

const char *kx_strmap_get(const struct kx_strmap *m, const char *key)
{
    if (!m || !key)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    return NULL;
}

bool kx_strlist_has(const struct kx_strlist *l, const char *s)
{
    if (!l || !s)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}
