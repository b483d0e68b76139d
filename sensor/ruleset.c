/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ruleset.c - loading Falco rule files into a compiled ruleset, matching
 * events against it, and the analyses behind the kernel prefilters (see
 * ruleset.h for the contract).
 *
 * Loading has two phases, like Falco's:
 *  1. collect: every file, in order, is read into lists, macros and rules
 *     by name, applying redefinitions (replace), legacy "append: true" and
 *     "override:" (Falco >= 0.37) as they come, so later files change
 *     earlier ones;
 *  2. compile: lists are expanded (lists of lists), every macro is parsed
 *     once, then each enabled syscall rule's condition is parsed, extended
 *     with its exceptions ("and not (...)") and compiled with macros
 *     expanded; its output format and event kinds are derived.
 * Errors carry file:line:col of the offending YAML key or condition token.
 *
 * Semantics that differ from Falco on purpose: a list item names a list
 * wherever that list is defined (Falco: only earlier ones), and cycles are
 * errors; macros may use macros defined later (Falco: earlier only).
 *
 * Runs in one thread at start-up (or reload); the result is immutable.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rule_expr.h"
#include "ruleset.h"
#include "util.h"

#define KX_RULES_FILE_MAX (4u << 20) /* as lib/config.c: larger files are refused */
#define KX_LIST_MAX_DEPTH 256        /* lists naming lists naming lists ... */
#define KX_OPEN_KINDS ((1ull << KX_K_OPEN) | (1ull << KX_K_OPENAT) | (1ull << KX_K_OPENAT2))

/* ------------------------------------------------------------------------ */
/* Collected definitions                                                     */
/* ------------------------------------------------------------------------ */

struct src {
    char *text; /* owned: the file */
    size_t len;
    size_t *lines; /* owned: byte offset of each line start, built on demand */
    size_t nlines;
    struct kx_config_doc *doc; /* owned */
};

struct pos {
    const char *file; /* borrowed from a doc */
    int line, col;
};

/* A condition assembled from one or more scalars (appends). */
struct xcond {
    char *text; /* owned */
    size_t len;
    struct kx_srcfrag *frags; /* owned */
    size_t n;
};

struct xlist {
    char *name;   /* owned */
    char **items; /* owned, raw (may be quoted) */
    size_t n, cap;
    struct pos at;
    int state;          /* expansion: 0 new, 1 on the stack, 2 done */
    struct kx_list out; /* expanded, decoded items (owned) */
};

struct xmacro {
    char *name; /* owned */
    struct xcond cond;
    struct pos at;
    struct kx_srcmap map;
    struct kx_macro m;
    char *err; /* owned: parse error with position */
};

/* One element of an exception value: a scalar or a list of scalars. */
struct xitem {
    char *s;     /* owned, when !is_list */
    char **list; /* owned, when is_list */
    size_t n;
    bool is_list;
};

struct xexc {
    char *name;            /* owned */
    struct xitem fields;   /* scalar or list */
    struct xitem comps;    /* scalar or list; s == NULL && !is_list: not given */
    struct xitem *vals;    /* owned: single field: scalars; several fields: lists (tuples) */
    struct xitem **tuples; /* owned: for several fields, tuples[i][k] */
    size_t *ntuple;
    size_t nvals;
    bool has_fields;
    struct pos at;
};

struct xrule {
    char *name; /* owned */
    char *desc; /* owned */
    struct xcond cond;
    char *output; /* owned */
    struct pos out_at;
    enum kx_priority pri;
    char **tags; /* owned */
    size_t ntags;
    bool enabled;
    char *source;     /* owned; NULL = syscall */
    struct xexc *exc; /* owned */
    size_t nexc;
    bool kill;
    bool warn_evttypes;
    bool skip_unknown;
    struct pos at;
    const char *file; /* file of the last full definition */
};

/* name -> index into one of the arrays above */
struct nent {
    const char *key; /* borrowed from the element */
    uint32_t h;
    uint32_t idx;
};
struct nmap {
    struct nent *e;
    size_t cap, n;
};

struct loader {
    unsigned flags;
    struct kx_diag *d;
    int errors;
    struct src *srcs;
    size_t nsrcs;
    struct src *cur; /* the file being collected */
    struct xlist *lists;
    size_t nlists, caplists;
    struct nmap lmap;
    struct xmacro *macros;
    size_t nmacros, capmacros;
    struct nmap mmap;
    struct xrule *rules;
    size_t nrules, caprules;
    struct nmap rmap;
};

struct kx_ruleset {
    struct kx_arena arena;  /* owns every compiled rule and string */
    struct kx_rule **rules; /* arena; n of them, load order */
    size_t n;
    const struct kx_rule **by_kind[KX_K_MAX]; /* arena: rules that may match each kind */
    size_t nby[KX_K_MAX];
    struct kx_rule_note *notes; /* owned array; strings in the arena */
    size_t nnotes, capnotes;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static void __attribute__((format(printf, 3, 4)))
lerr(struct loader *L, const struct pos *at, const char *fmt, ...)
{
    char msg[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    L->errors++;
    if (at && at->file) {
        struct kx_config_node n = {.file = at->file, .line = at->line, .col = at->col};
        kx_diag_add(L->d, &n, "%s", msg);
    } else {
        kx_diag_add(L->d, NULL, "%s", msg);
    }
}

static struct pos pos_of(const struct kx_config_node *n)
{
    return (struct pos){.file = n ? n->file : NULL, .line = n ? n->line : 0, .col = n ? n->col : 0};
}

static uint32_t name_hash(const char *s)
{
    return kx_str_hash(s, strlen(s));
}

static long nmap_get(const struct nmap *m, const char *key)
{
    if (!m->cap || !key)
        return -1;
    uint32_t h = name_hash(key);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->e[i].key)
            return -1;
        if (m->e[i].h == h && strcmp(m->e[i].key, key) == 0)
            return m->e[i].idx;
    }
}

static int nmap_put(struct nmap *m, const char *key, uint32_t idx)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct nent *e = calloc(cap, sizeof(*e));
        if (!e)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key)
                continue;
            size_t j = m->e[i].h & (cap - 1);
            while (e[j].key)
                j = (j + 1) & (cap - 1);
            e[j] = m->e[i];
        }
        free(m->e);
        m->e = e;
        m->cap = cap;
    }
    uint32_t h = name_hash(key);
    size_t i = h & (m->cap - 1);
    while (m->e[i].key)
        i = (i + 1) & (m->cap - 1);
    m->e[i] = (struct nent){.key = key, .h = h, .idx = idx};
    m->n++;
    return 0;
}

static const char *scalar(const struct kx_config_node *n)
{
    return n && n->kind == KX_CFG_SCALAR ? n->value : NULL;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Byte offset of line `line` (1-based) in the current file. */
static const char *line_start(struct src *s, int line)
{
    if (!s->lines) {
        size_t n = 1;
        for (size_t i = 0; i < s->len; i++)
            n += s->text[i] == '\n';
        s->lines = malloc(n * sizeof(*s->lines));
        if (!s->lines)
            return NULL;
        s->nlines = 0;
        s->lines[s->nlines++] = 0;
        for (size_t i = 0; i < s->len; i++)
            if (s->text[i] == '\n')
                s->lines[s->nlines++] = i + 1;
    }
    if (line < 1 || (size_t)line > s->nlines)
        return NULL;
    return s->text + s->lines[line - 1];
}

/* The raw text of the scalar at node n (libyaml columns count characters). */
static const char *raw_at(struct src *s, int line, int col)
{
    const char *p = s ? line_start(s, line) : NULL, *end;

    if (!p)
        return NULL;
    end = s->text + s->len;
    for (int c = 1; c < col && p < end && *p != '\n'; c++) {
        p++;
        while (p < end && ((unsigned char)*p & 0xc0) == 0x80)
            p++;
    }
    return p;
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Where the key of value node n is written (the tree only keeps value
 * positions): the last "key:" on the value's line before it, or on one of
 * the few lines above for block values. Falls back to the value. */
static struct pos key_pos(struct loader *L, const struct kx_config_node *n)
{
    struct pos at = pos_of(n);
    size_t klen;

    if (!n || !n->key || !L->cur)
        return at;
    klen = strlen(n->key);
    for (int l = n->line; l >= 1 && l >= n->line - 8; l--) {
        const char *ls = line_start(L->cur, l), *le;
        if (!ls)
            continue;
        le = ls;
        while (le < L->cur->text + L->cur->len && *le != '\n')
            le++;
        const char *limit = l == n->line ? raw_at(L->cur, l, n->col) : le;
        if (!limit)
            continue;
        for (const char *p = limit - 1; p >= ls && (size_t)(limit - ls) >= klen; p--) {
            if ((size_t)(limit - p) < klen || memcmp(p, n->key, klen) != 0)
                continue;
            if (p > ls && ident_char(p[-1]))
                continue;
            const char *q = p + klen;
            if (q < le && (*q == '"' || *q == '\''))
                q++;
            while (q < le && (*q == ' ' || *q == '\t'))
                q++;
            if (q < le && *q == ':') {
                int col = 1;
                for (const char *c = ls; c < p; c++)
                    if (((unsigned char)*c & 0xc0) != 0x80)
                        col++;
                if (p > ls && (p[-1] == '"' || p[-1] == '\''))
                    col--;
                return (struct pos){.file = n->file, .line = l, .col = col};
            }
        }
    }
    return at;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), row[40], prev, tmp;

    if (na >= 40 || nb >= 40)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            tmp = row[j];
            row[j] = best;
            prev = tmp;
        }
    }
    return row[nb];
}

/* Checks that every key of item map is in allowed; reports the others. */
static bool check_keys(struct loader *L, const struct kx_config_node *item, const char *what,
                       const char *name, const char *const *allowed)
{
    bool ok = true;

    for (const struct kx_config_node *c = item->child; c; c = c->next) {
        bool known = false;
        const char *best = NULL;
        size_t best_d = 99;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, c->key) == 0) {
                known = true;
                break;
            }
            size_t dd = edit_distance(c->key, *a);
            if (dd < best_d) {
                best_d = dd;
                best = *a;
            }
        }
        if (known)
            continue;
        struct pos at = key_pos(L, c);
        if (best && best_d <= 2)
            lerr(L, &at, "unknown key '%.64s' in %s '%.100s' (did you mean '%s'?)", c->key, what,
                 name ? name : "", best);
        else
            lerr(L, &at, "unknown key '%.64s' in %s '%.100s'", c->key, what, name ? name : "");
        ok = false;
    }
    return ok;
}

/* A required non-empty scalar under key. */
static const char *need_scalar(struct loader *L, const struct kx_config_node *item, const char *key,
                               const char *what, const char *name)
{
    const struct kx_config_node *n = kx_config_get(item, key);
    const char *s = scalar(n);

    if (!n) {
        struct pos at = pos_of(item);
        lerr(L, &at, "%s '%.100s' has no '%s'", what, name ? name : "", key);
        return NULL;
    }
    if (!s || !*s) {
        struct pos at = pos_of(n);
        lerr(L, &at, "%s '%.100s': '%s' must be a non-empty string", what, name ? name : "", key);
        return NULL;
    }
    return s;
}

/* Copies a sequence of scalars; NULL/0 for an empty value. -EINVAL reported. */
static int copy_strseq(struct loader *L, const struct kx_config_node *n, const char *what,
                       char ***out, size_t *nout)
{
    size_t cnt = 0, i = 0;

    *out = NULL;
    *nout = 0;
    if (n->kind == KX_CFG_SCALAR && n->value[0] == '\0')
        return 0;
    if (n->kind != KX_CFG_SEQ) {
        struct pos at = pos_of(n);
        lerr(L, &at, "%s must be a list", what);
        return -EINVAL;
    }
    for (const struct kx_config_node *c = n->child; c; c = c->next) {
        if (c->kind != KX_CFG_SCALAR) {
            struct pos at = pos_of(c);
            lerr(L, &at, "%s: items must be strings", what);
            return -EINVAL;
        }
        cnt++;
    }
    if (cnt > KX_RULE_MAX_ITEMS) {
        struct pos at = pos_of(n);
        lerr(L, &at, "%s has more than %d items", what, KX_RULE_MAX_ITEMS);
        return -EINVAL;
    }
    if (!cnt)
        return 0;
    char **v = calloc(cnt, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (const struct kx_config_node *c = n->child; c; c = c->next) {
        if (!(v[i++] = strdup(c->value))) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return -ENOMEM;
        }
    }
    *out = v;
    *nout = cnt;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- conditions assembled from scalars ------------------------------------------ */

static void xcond_free(struct xcond *c)
{
    free(c->text);
    free(c->frags);
    memset(c, 0, sizeof(*c));
}

/* Appends scalar node n to c (with a space when c is not empty). */
static int xcond_add(struct loader *L, struct xcond *c, const struct kx_config_node *n)
{
    size_t add = strlen(n->value), sep = c->len ? 1 : 0;

    if (c->len + sep + add > KX_RULE_MAX_COND) {
        struct pos at = pos_of(n);
        lerr(L, &at, "condition is longer than %d bytes", KX_RULE_MAX_COND);
        return -EINVAL;
    }
    char *t = realloc(c->text, c->len + sep + add + 1);
    if (!t)
        return -ENOMEM;
    c->text = t;
    struct kx_srcfrag *f = realloc(c->frags, (c->n + 1) * sizeof(*f));
    if (!f)
        return -ENOMEM;
    c->frags = f;
    if (sep)
        t[c->len++] = ' ';
    memcpy(t + c->len, n->value, add + 1);
    const char *raw = raw_at(L->cur, n->line, n->col);
    f[c->n++] = (struct kx_srcfrag){.off = c->len,
                                    .file = n->file,
                                    .line = n->line,
                                    .col = n->col,
                                    .raw = raw,
                                    .raw_end = raw ? L->cur->text + L->cur->len : NULL};
    c->len += add;
    return 0;
}

static int xcond_set(struct loader *L, struct xcond *c, const struct kx_config_node *n)
{
    xcond_free(c);
    return xcond_add(L, c, n);
}

static void xcond_map(const struct xcond *c, struct kx_srcmap *m)
{
    *m = (struct kx_srcmap){.text = c->text, .len = c->len, .frags = c->frags, .n = c->n};
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                     */
/* ------------------------------------------------------------------------ */

static void xlist_free(struct xlist *l)
{
    free(l->name);
    free_strv(l->items, l->n);
    free_strv(l->out.items, l->out.n);
}

static int xlist_add_items(struct loader *L, struct xlist *l, char **items, size_t n,
                           const struct kx_config_node *at)
{
    if (l->n + n > KX_RULE_MAX_ITEMS) {
        struct pos p = pos_of(at);
        lerr(L, &p, "list '%.100s' has more than %d items", l->name, KX_RULE_MAX_ITEMS);
        free_strv(items, n);
        return -EINVAL;
    }
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 8;
        while (cap < l->n + n)
            cap *= 2;
        char **v = realloc(l->items, cap * sizeof(*v));
        if (!v) {
            free_strv(items, n);
            return -ENOMEM;
        }
        l->items = v;
        l->cap = cap;
    }
    if (n)
        memcpy(l->items + l->n, items, n * sizeof(*items));
    l->n += n;
    free(items);
    return 0;
}

/*
 * How a list or macro item changes an earlier definition: Falco's legacy
 * "append: true", or "override: {<field>: append|replace}" (not both).
 * *append is set; -EINVAL with a diagnostic on a bad value.
 */
static int parse_append(struct loader *L, const struct kx_config_node *app,
                        const struct kx_config_node *ovr, const char *kind, const char *field,
                        const char *name, bool *append)
{
    if (app && parse_bool(scalar(app), append) < 0) {
        struct pos at = pos_of(app);
        lerr(L, &at, "%s '%.100s': append must be true or false", kind, name);
        return -EINVAL;
    }
    if (ovr) {
        const struct kx_config_node *o = kx_config_get(ovr, field);
        const char *how = scalar(o);
        if (app) {
            struct pos at = key_pos(L, ovr);
            lerr(L, &at, "%s '%.100s': 'append' and 'override' cannot be used together", kind,
                 name);
            return -EINVAL;
        }
        if (ovr->kind != KX_CFG_MAP || !o || ovr->child->next || !how ||
            (strcmp(how, "append") != 0 && strcmp(how, "replace") != 0)) {
            struct pos at = pos_of(ovr);
            lerr(L, &at, "%s '%.100s': override must be {%s: append} or {%s: replace}", kind,
                 name, field, field);
            return -EINVAL;
        }
        *append = strcmp(how, "append") == 0;
    }
    return 0;
}

static int collect_list(struct loader *L, const struct kx_config_node *item)
{
    static const char *const keys[] = {"list", "items", "append", "override", NULL};
    const char *name = need_scalar(L, item, "list", "list", NULL);
    const struct kx_config_node *items = kx_config_get(item, "items");
    const struct kx_config_node *app = kx_config_get(item, "append");
    const struct kx_config_node *ovr = kx_config_get(item, "override");
    bool append = false;
    char **v;
    size_t n;
    int rc;

    if (!name)
        return -EINVAL;
    if (!check_keys(L, item, "list", name, keys))
        return -EINVAL;
    if (!items) {
        struct pos at = pos_of(item);
        lerr(L, &at, "list '%.100s' has no 'items'", name);
        return -EINVAL;
    }
    if (parse_append(L, app, ovr, "list", "items", name, &append) < 0)
        return -EINVAL;
    if ((rc = copy_strseq(L, items, "items", &v, &n)) < 0)
        return rc;

    long idx = nmap_get(&L->lmap, name);
    if (append) {
        if (idx < 0) {
            struct pos at = pos_of(item);
            lerr(L, &at, "list '%.100s' appends to a list that is not defined", name);
            free_strv(v, n);
            return -EINVAL;
        }
        return xlist_add_items(L, &L->lists[idx], v, n, items);
    }
    if (idx >= 0) {
        struct xlist *l = &L->lists[idx];
        free_strv(l->items, l->n);
        l->items = NULL;
        l->n = l->cap = 0;
        l->at = pos_of(kx_config_get(item, "list"));
        return xlist_add_items(L, l, v, n, items);
    }
    if (L->nlists == L->caplists) {
        size_t cap = L->caplists ? L->caplists * 2 : 32;
        struct xlist *nl = realloc(L->lists, cap * sizeof(*nl));
        if (!nl) {
            free_strv(v, n);
            return -ENOMEM;
        }
        L->lists = nl;
        L->caplists = cap;
    }
    struct xlist *l = &L->lists[L->nlists];
    memset(l, 0, sizeof(*l));
    if (!(l->name = strdup(name))) {
        free_strv(v, n);
        return -ENOMEM;
    }
    l->at = pos_of(kx_config_get(item, "list"));
    L->nlists++;
    if (nmap_put(&L->lmap, l->name, (uint32_t)(L->nlists - 1)) < 0) {
        free_strv(v, n);
        return -ENOMEM;
    }
    return xlist_add_items(L, l, v, n, items);
}

/* ------------------------------------------------------------------------ */
/* Macros                                                                    */
/* ------------------------------------------------------------------------ */

static bool valid_macro_name(const char *s)
{
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

static int collect_macro(struct loader *L, const struct kx_config_node *item)
{
    static const char *const keys[] = {"macro", "condition", "append", "override", NULL};
    const char *name = need_scalar(L, item, "macro", "macro", NULL);
    const struct kx_config_node *cond = kx_config_get(item, "condition");
    const struct kx_config_node *app = kx_config_get(item, "append");
    const struct kx_config_node *ovr = kx_config_get(item, "override");
    bool append = false;

    if (!name)
        return -EINVAL;
    if (!check_keys(L, item, "macro", name, keys))
        return -EINVAL;
    if (!valid_macro_name(name)) {
        struct pos at = pos_of(kx_config_get(item, "macro"));
        lerr(L, &at, "invalid macro name '%.100s': use letters, digits and '_'", name);
        return -EINVAL;
    }
    if (!need_scalar(L, item, "condition", "macro", name))
        return -EINVAL;
    if (parse_append(L, app, ovr, "macro", "condition", name, &append) < 0)
        return -EINVAL;

    long idx = nmap_get(&L->mmap, name);
    if (append) {
        if (idx < 0) {
            struct pos at = pos_of(item);
            lerr(L, &at, "macro '%.100s' appends to a macro that is not defined", name);
            return -EINVAL;
        }
        return xcond_add(L, &L->macros[idx].cond, cond);
    }
    if (idx >= 0) {
        L->macros[idx].at = pos_of(kx_config_get(item, "macro"));
        return xcond_set(L, &L->macros[idx].cond, cond);
    }
    if (L->nmacros == L->capmacros) {
        size_t cap = L->capmacros ? L->capmacros * 2 : 32;
        struct xmacro *nm = realloc(L->macros, cap * sizeof(*nm));
        if (!nm)
            return -ENOMEM;
        L->macros = nm;
        L->capmacros = cap;
    }
    struct xmacro *m = &L->macros[L->nmacros];
    memset(m, 0, sizeof(*m));
    if (!(m->name = strdup(name)))
        return -ENOMEM;
    m->at = pos_of(kx_config_get(item, "macro"));
    L->nmacros++;
    if (nmap_put(&L->mmap, m->name, (uint32_t)(L->nmacros - 1)) < 0)
        return -ENOMEM;
    return xcond_set(L, &m->cond, cond);
}

/* ------------------------------------------------------------------------ */
/* Exceptions                                                                */
/* ------------------------------------------------------------------------ */

static void xitem_free(struct xitem *it)
{
    free(it->s);
    free_strv(it->list, it->n);
    memset(it, 0, sizeof(*it));
}

static void xexc_free(struct xexc *e)
{
    free(e->name);
    xitem_free(&e->fields);
    xitem_free(&e->comps);
    for (size_t i = 0; i < e->nvals; i++) {
        if (e->vals)
            xitem_free(&e->vals[i]);
        if (e->tuples) {
            for (size_t k = 0; k < e->ntuple[i]; k++)
                xitem_free(&e->tuples[i][k]);
            free(e->tuples[i]);
        }
    }
    free(e->vals);
    free(e->tuples);
    free(e->ntuple);
    memset(e, 0, sizeof(*e));
}

static void xexcs_free(struct xexc *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xexc_free(&v[i]);
    free(v);
}

/* A scalar or a sequence of scalars into it. */
static int read_item(struct loader *L, const struct kx_config_node *n, const char *what,
                     struct xitem *it)
{
    memset(it, 0, sizeof(*it));
    if (n->kind == KX_CFG_SCALAR) {
        it->s = strdup(n->value);
        return it->s ? 0 : -ENOMEM;
    }
    it->is_list = true;
    return copy_strseq(L, n, what, &it->list, &it->n);
}

/* Appends the values of src to dst (same exception name). */
static int xexc_take_values(struct xexc *dst, struct xexc *src)
{
    size_t n = dst->nvals + src->nvals;

    if (src->nvals == 0)
        return 0;
    if (src->vals || dst->vals) {
        if (!src->vals || (dst->nvals && !dst->vals))
            return -EINVAL;
        struct xitem *v = realloc(dst->vals, n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        memcpy(v + dst->nvals, src->vals, src->nvals * sizeof(*v));
        dst->vals = v;
    } else {
        struct xitem **t = realloc(dst->tuples, n * sizeof(*t));
        if (!t)
            return -ENOMEM;
        dst->tuples = t;
        size_t *nt = realloc(dst->ntuple, n * sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        dst->ntuple = nt;
        memcpy(t + dst->nvals, src->tuples, src->nvals * sizeof(*t));
        memcpy(nt + dst->nvals, src->ntuple, src->nvals * sizeof(*nt));
    }
    dst->nvals = n;
    free(src->vals);
    free(src->tuples);
    free(src->ntuple);
    src->vals = NULL;
    src->tuples = NULL;
    src->ntuple = NULL;
    src->nvals = 0;
    return 0;
}

/* Reads a rule's "exceptions" list. appending: fields may be omitted. */
static int read_exceptions(struct loader *L, const struct kx_config_node *n, const char *rule,
                           struct xexc **out, size_t *nout)
{
    static const char *const keys[] = {"name", "fields", "comps", "values", NULL};
    size_t cnt = 0, i = 0;
    int rc = 0;

    *out = NULL;
    *nout = 0;
    if (n->kind == KX_CFG_SCALAR && n->value[0] == '\0')
        return 0;
    if (n->kind != KX_CFG_SEQ) {
        struct pos at = pos_of(n);
        lerr(L, &at, "rule '%.100s': exceptions must be a list", rule);
        return -EINVAL;
    }
    for (const struct kx_config_node *c = n->child; c; c = c->next)
        cnt++;
    if (!cnt)
        return 0;
    struct xexc *v = calloc(cnt, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (const struct kx_config_node *c = n->child; c; c = c->next, i++) {
        struct xexc *e = &v[i];
        struct pos at = pos_of(c);
        e->at = at;
        if (c->kind != KX_CFG_MAP) {
            lerr(L, &at, "rule '%.100s': each exception must be a map", rule);
            rc = -EINVAL;
            goto fail;
        }
        const char *name = need_scalar(L, c, "name", "exception of rule", rule);
        if (!name || !check_keys(L, c, "exception", name, keys)) {
            rc = -EINVAL;
            goto fail;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(v[k].name, name) == 0) {
                lerr(L, &at, "rule '%.100s': exception names must be unique ('%.100s')", rule,
                     name);
                rc = -EINVAL;
                goto fail;
            }
        if (!(e->name = strdup(name))) {
            rc = -ENOMEM;
            goto fail;
        }
        const struct kx_config_node *f = kx_config_get(c, "fields");
        const struct kx_config_node *cp = kx_config_get(c, "comps");
        const struct kx_config_node *vals = kx_config_get(c, "values");
        if (f) {
            e->has_fields = true;
            if ((rc = read_item(L, f, "exception fields", &e->fields)) < 0)
                goto fail;
        }
        if (cp && (rc = read_item(L, cp, "exception comps", &e->comps)) < 0)
            goto fail;
        if (!vals || (vals->kind == KX_CFG_SCALAR && vals->value[0] == '\0'))
            continue;
        if (vals->kind != KX_CFG_SEQ) {
            struct pos vat = pos_of(vals);
            lerr(L, &vat, "exception '%.100s': values must be a list", name);
            rc = -EINVAL;
            goto fail;
        }
        size_t nv = 0;
        for (const struct kx_config_node *x = vals->child; x; x = x->next)
            nv++;
        if (nv > KX_RULE_MAX_ITEMS) {
            struct pos vat = pos_of(vals);
            lerr(L, &vat, "exception '%.100s' has more than %d values", name, KX_RULE_MAX_ITEMS);
            rc = -EINVAL;
            goto fail;
        }
        /* A single field takes scalars; several fields take tuples. When
         * appending without fields, the shape of the first value decides. */
        bool tuples =
            e->has_fields ? e->fields.is_list : (vals->child && vals->child->kind == KX_CFG_SEQ);
        if (tuples) {
            e->tuples = calloc(nv ? nv : 1, sizeof(*e->tuples));
            e->ntuple = calloc(nv ? nv : 1, sizeof(*e->ntuple));
        } else {
            e->vals = calloc(nv ? nv : 1, sizeof(*e->vals));
        }
        if ((tuples && (!e->tuples || !e->ntuple)) || (!tuples && !e->vals)) {
            rc = -ENOMEM;
            goto fail;
        }
        for (const struct kx_config_node *x = vals->child; x; x = x->next) {
            struct pos xat = pos_of(x);
            if (!tuples) {
                if (x->kind != KX_CFG_SCALAR) {
                    lerr(L, &xat, "exception '%.100s': with a single field, values must be strings",
                         name);
                    rc = -EINVAL;
                    goto fail;
                }
                if ((rc = read_item(L, x, "exception value", &e->vals[e->nvals])) < 0)
                    goto fail;
                e->nvals++;
                continue;
            }
            if (x->kind != KX_CFG_SEQ) {
                lerr(L, &xat, "exception '%.100s': with several fields, each value must be a list",
                     name);
                rc = -EINVAL;
                goto fail;
            }
            size_t nt = 0;
            for (const struct kx_config_node *y = x->child; y; y = y->next)
                nt++;
            e->tuples[e->nvals] = calloc(nt ? nt : 1, sizeof(struct xitem));
            if (!e->tuples[e->nvals]) {
                rc = -ENOMEM;
                goto fail;
            }
            e->ntuple[e->nvals] = 0;
            e->nvals++;
            for (const struct kx_config_node *y = x->child; y; y = y->next) {
                struct xitem *it = &e->tuples[e->nvals - 1][e->ntuple[e->nvals - 1]];
                if ((rc = read_item(L, y, "exception value", it)) < 0)
                    goto fail;
                e->ntuple[e->nvals - 1]++;
            }
        }
    }
    *out = v;
    *nout = cnt;
    return 0;
fail:
    xexcs_free(v, cnt);
    return rc < 0 ? rc : -EINVAL;
}

/* Appends exceptions (by name: values join an existing exception). */
static int merge_exceptions(struct loader *L, struct xrule *r, struct xexc *add, size_t nadd)
{
    int rc = 0;

    for (size_t i = 0; i < nadd; i++) {
        struct xexc *e = &add[i];
        struct xexc *have = NULL;
        for (size_t k = 0; k < r->nexc; k++)
            if (strcmp(r->exc[k].name, e->name) == 0)
                have = &r->exc[k];
        if (have) {
            if (e->has_fields || e->comps.s || e->comps.is_list) {
                lerr(L, &e->at,
                     "rule '%.100s': exception '%.100s' exists; an append can only add values",
                     r->name, e->name);
                rc = -EINVAL;
                continue;
            }
            if (xexc_take_values(have, e) < 0) {
                lerr(L, &e->at, "rule '%.100s': exception '%.100s': values do not fit its fields",
                     r->name, e->name);
                rc = -EINVAL;
            }
            continue;
        }
        if (!e->has_fields) {
            lerr(L, &e->at, "rule '%.100s': new exception '%.100s' has no fields", r->name,
                 e->name);
            rc = -EINVAL;
            continue;
        }
        struct xexc *v = realloc(r->exc, (r->nexc + 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        r->exc = v;
        r->exc[r->nexc++] = *e;
        memset(e, 0, sizeof(*e));
    }
    xexcs_free(add, nadd);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Rules                                                                     */
/* ------------------------------------------------------------------------ */

static void xrule_free(struct xrule *r)
{
    free(r->name);
    free(r->desc);
    xcond_free(&r->cond);
    free(r->output);
    free_strv(r->tags, r->ntags);
    free(r->source);
    xexcs_free(r->exc, r->nexc);
}

static int set_str(char **dst, const char *s)
{
    char *c = strdup(s ? s : "");

    if (!c)
        return -ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

/* dst + " " + s */
static int append_str(char **dst, const char *s)
{
    char *c;

    if (!*dst || !**dst)
        return set_str(dst, s);
    if (asprintf(&c, "%s %s", *dst, s) < 0)
        return -ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

static int add_tags(struct loader *L, struct xrule *r, const struct kx_config_node *n, bool replace)
{
    char **v;
    size_t cnt;
    int rc = copy_strseq(L, n, "tags", &v, &cnt);

    if (rc < 0)
        return rc;
    if (replace) {
        free_strv(r->tags, r->ntags);
        r->tags = NULL;
        r->ntags = 0;
    }
    char **t = realloc(r->tags, (r->ntags + cnt + 1) * sizeof(*t));
    if (!t) {
        free_strv(v, cnt);
        return -ENOMEM;
    }
    r->tags = t;
    for (size_t i = 0; i < cnt; i++) {
        bool dup = false;
        for (size_t k = 0; k < r->ntags && !dup; k++)
            dup = strcmp(r->tags[k], v[i]) == 0;
        if (dup)
            free(v[i]);
        else
            r->tags[r->ntags++] = v[i];
    }
    free(v);
    return 0;
}

static int read_priority(struct loader *L, const struct kx_config_node *n, const char *rule,
                         enum kx_priority *out)
{
    if (kx_priority_parse(scalar(n), out) < 0) {
        struct pos at = pos_of(n);
        lerr(L, &at,
             "rule '%.100s': invalid priority '%.40s' (want emergency, alert, critical, error, "
             "warning, notice, informational or debug)",
             rule, scalar(n) ? scalar(n) : "");
        return -EINVAL;
    }
    return 0;
}

static int read_rule_bool(struct loader *L, const struct kx_config_node *n, const char *rule,
                          bool *out)
{
    if (parse_bool(scalar(n), out) < 0) {
        struct pos at = pos_of(n);
        lerr(L, &at, "rule '%.100s': %s must be true or false", rule, n->key);
        return -EINVAL;
    }
    return 0;
}

static int read_action(struct loader *L, const struct kx_config_node *n, const char *rule,
                       bool *kill)
{
    const char *s = scalar(n);

    if (s && strcmp(s, "kill") == 0) {
        *kill = true;
        return 0;
    }
    if (s && (strcmp(s, "none") == 0 || strcmp(s, "") == 0)) {
        *kill = false;
        return 0;
    }
    struct pos at = pos_of(n);
    lerr(L, &at, "rule '%.100s': unknown action '%.40s' (want kill)", rule, s ? s : "");
    return -EINVAL;
}

static struct xrule *rule_slot(struct loader *L, const char *name)
{
    if (L->nrules == L->caprules) {
        size_t cap = L->caprules ? L->caprules * 2 : 32;
        struct xrule *nr = realloc(L->rules, cap * sizeof(*nr));
        if (!nr)
            return NULL;
        L->rules = nr;
        L->caprules = cap;
    }
    struct xrule *r = &L->rules[L->nrules];
    memset(r, 0, sizeof(*r));
    if (!(r->name = strdup(name)))
        return NULL;
    L->nrules++;
    if (nmap_put(&L->rmap, r->name, (uint32_t)(L->nrules - 1)) < 0)
        return NULL;
    return r;
}

/* "override:" on a rule (Falco >= 0.37). */
static int rule_override(struct loader *L, const struct kx_config_node *item, struct xrule *r,
                         const struct kx_config_node *ovr)
{
    static const char *const appendable[] = {"condition", "output",     "desc",
                                             "tags",      "exceptions", NULL};
    static const char *const replaceable[] = {"condition",
                                              "output",
                                              "desc",
                                              "priority",
                                              "tags",
                                              "exceptions",
                                              "enabled",
                                              "warn_evttypes",
                                              "skip-if-unknown-filter",
                                              "action",
                                              NULL};
    int rc = 0;

    if (ovr->kind != KX_CFG_MAP) {
        struct pos at = pos_of(ovr);
        lerr(L, &at, "rule '%.100s': override must be a map of key: append|replace", r->name);
        return -EINVAL;
    }
    /* every overridden key is given, and every given key is overridden */
    for (const struct kx_config_node *o = ovr->child; o; o = o->next) {
        const char *how = scalar(o);
        bool app = how && strcmp(how, "append") == 0, rep = how && strcmp(how, "replace") == 0;
        bool can_app = false, can_rep = false;
        for (const char *const *k = appendable; *k; k++)
            can_app |= strcmp(*k, o->key) == 0;
        for (const char *const *k = replaceable; *k; k++)
            can_rep |= strcmp(*k, o->key) == 0;
        struct pos at = key_pos(L, o);
        if (!app && !rep) {
            lerr(L, &at, "rule '%.100s': override of '%.40s' must be append or replace", r->name,
                 o->key);
            rc = -EINVAL;
        } else if (!can_app && !can_rep) {
            lerr(L, &at, "rule '%.100s': '%.40s' cannot be overridden", r->name, o->key);
            rc = -EINVAL;
        } else if (app && !can_app) {
            lerr(L, &at, "rule '%.100s': '%.40s' cannot be appended to, use replace", r->name,
                 o->key);
            rc = -EINVAL;
        } else if (!kx_config_get(item, o->key)) {
            lerr(L, &at, "rule '%.100s': override of '%.40s' but the item has no '%.40s'", r->name,
                 o->key, o->key);
            rc = -EINVAL;
        }
    }
    for (const struct kx_config_node *c = item->child; c; c = c->next) {
        if (strcmp(c->key, "rule") == 0 || strcmp(c->key, "override") == 0)
            continue;
        if (!kx_config_get(ovr, c->key)) {
            struct pos at = key_pos(L, c);
            lerr(L, &at, "rule '%.100s': '%.40s' is given but not listed under override", r->name,
                 c->key);
            rc = -EINVAL;
        }
    }
    if (rc < 0)
        return rc;

    for (const struct kx_config_node *o = ovr->child; o && rc == 0; o = o->next) {
        const struct kx_config_node *v = kx_config_get(item, o->key);
        bool app = strcmp(o->value, "append") == 0;
        if (strcmp(o->key, "condition") == 0) {
            if (!scalar(v)) {
                struct pos at = pos_of(v);
                lerr(L, &at, "rule '%.100s': condition must be a string", r->name);
                return -EINVAL;
            }
            rc = app ? xcond_add(L, &r->cond, v) : xcond_set(L, &r->cond, v);
        } else if (strcmp(o->key, "output") == 0 || strcmp(o->key, "desc") == 0) {
            char **dst = o->key[0] == 'o' ? &r->output : &r->desc;
            if (!scalar(v)) {
                struct pos at = pos_of(v);
                lerr(L, &at, "rule '%.100s': %s must be a string", r->name, o->key);
                return -EINVAL;
            }
            rc = app ? append_str(dst, v->value) : set_str(dst, v->value);
            if (o->key[0] == 'o')
                r->out_at = pos_of(v);
        } else if (strcmp(o->key, "tags") == 0) {
            rc = add_tags(L, r, v, !app);
        } else if (strcmp(o->key, "exceptions") == 0) {
            struct xexc *e;
            size_t ne;
            if ((rc = read_exceptions(L, v, r->name, &e, &ne)) < 0)
                return rc;
            if (!app) {
                xexcs_free(r->exc, r->nexc);
                r->exc = NULL;
                r->nexc = 0;
            }
            rc = merge_exceptions(L, r, e, ne);
        } else if (strcmp(o->key, "priority") == 0) {
            rc = read_priority(L, v, r->name, &r->pri);
        } else if (strcmp(o->key, "enabled") == 0) {
            rc = read_rule_bool(L, v, r->name, &r->enabled);
        } else if (strcmp(o->key, "warn_evttypes") == 0) {
            rc = read_rule_bool(L, v, r->name, &r->warn_evttypes);
        } else if (strcmp(o->key, "skip-if-unknown-filter") == 0) {
            rc = read_rule_bool(L, v, r->name, &r->skip_unknown);
        } else if (strcmp(o->key, "action") == 0) {
            rc = read_action(L, v, r->name, &r->kill);
        }
    }
    return rc;
}

static int collect_rule(struct loader *L, const struct kx_config_node *item)
{
    static const char *const keys[] = {"rule",
                                       "desc",
                                       "condition",
                                       "output",
                                       "priority",
                                       "tags",
                                       "enabled",
                                       "source",
                                       "exceptions",
                                       "append",
                                       "override",
                                       "action",
                                       "warn_evttypes",
                                       "skip-if-unknown-filter",
                                       NULL};
    const char *name = need_scalar(L, item, "rule", "rule", NULL);
    const struct kx_config_node *cond = kx_config_get(item, "condition");
    const struct kx_config_node *out = kx_config_get(item, "output");
    const struct kx_config_node *desc = kx_config_get(item, "desc");
    const struct kx_config_node *pri = kx_config_get(item, "priority");
    const struct kx_config_node *app = kx_config_get(item, "append");
    const struct kx_config_node *ovr = kx_config_get(item, "override");
    const struct kx_config_node *en = kx_config_get(item, "enabled");
    bool append = false;
    int rc;

    if (!name)
        return -EINVAL;
    if (!check_keys(L, item, "rule", name, keys))
        return -EINVAL;
    if (app && parse_bool(scalar(app), &append) < 0) {
        struct pos at = pos_of(app);
        lerr(L, &at, "rule '%.100s': append must be true or false", name);
        return -EINVAL;
    }
    if (app && ovr) {
        struct pos at = key_pos(L, ovr);
        lerr(L, &at, "rule '%.100s': 'append' and 'override' cannot be used together", name);
        return -EINVAL;
    }
    long idx = nmap_get(&L->rmap, name);
    struct xrule *r = idx >= 0 ? &L->rules[idx] : NULL;

    if (ovr || append) {
        if (!r) {
            struct pos at = pos_of(item);
            lerr(L, &at, "rule '%.100s' %s a rule that is not defined", name,
                 ovr ? "overrides" : "appends to");
            return -EINVAL;
        }
        if (ovr)
            return rule_override(L, item, r, ovr);
        /* legacy append: condition and exceptions only */
        for (const struct kx_config_node *c = item->child; c; c = c->next) {
            if (strcmp(c->key, "rule") && strcmp(c->key, "append") && strcmp(c->key, "condition") &&
                strcmp(c->key, "exceptions")) {
                struct pos at = key_pos(L, c);
                lerr(L, &at,
                     "rule '%.100s': with append: true only condition and exceptions can be "
                     "given (use override: for '%.40s')",
                     name, c->key);
                return -EINVAL;
            }
        }
        if (cond) {
            if (!scalar(cond)) {
                struct pos at = pos_of(cond);
                lerr(L, &at, "rule '%.100s': condition must be a string", name);
                return -EINVAL;
            }
            if ((rc = xcond_add(L, &r->cond, cond)) < 0)
                return rc;
        }
        const struct kx_config_node *ex = kx_config_get(item, "exceptions");
        if (ex) {
            struct xexc *e;
            size_t ne;
            if ((rc = read_exceptions(L, ex, name, &e, &ne)) < 0)
                return rc;
            return merge_exceptions(L, r, e, ne);
        }
        return 0;
    }

    if (!cond && !out && !desc && !pri) {
        /* "- rule: X / enabled: false": toggles an existing rule */
        if (!en) {
            struct pos at = pos_of(item);
            lerr(L, &at, "rule '%.100s' has no condition, output or priority", name);
            return -EINVAL;
        }
        if (!r) {
            struct pos at = pos_of(item);
            lerr(L, &at, "rule '%.100s' sets enabled on a rule that is not defined", name);
            return -EINVAL;
        }
        for (const struct kx_config_node *c = item->child; c; c = c->next)
            if (strcmp(c->key, "rule") && strcmp(c->key, "enabled")) {
                struct pos at = key_pos(L, c);
                lerr(L, &at, "rule '%.100s': '%.40s' needs a full rule definition", name, c->key);
                return -EINVAL;
            }
        return read_rule_bool(L, en, name, &r->enabled);
    }

    /* a full definition (replacing an earlier one of the same name) */
    if (!need_scalar(L, item, "condition", "rule", name) ||
        !need_scalar(L, item, "output", "rule", name) ||
        !need_scalar(L, item, "priority", "rule", name))
        return -EINVAL;
    if (desc && !scalar(desc)) {
        struct pos at = pos_of(desc);
        lerr(L, &at, "rule '%.100s': desc must be a string", name);
        return -EINVAL;
    }
    if (r) {
        char *keep = r->name;
        r->name = NULL;
        xrule_free(r);
        memset(r, 0, sizeof(*r));
        r->name = keep;
    } else if (!(r = rule_slot(L, name))) {
        return -ENOMEM;
    }
    r->enabled = true;
    r->warn_evttypes = true;
    r->at = pos_of(kx_config_get(item, "rule"));
    r->file = L->cur && L->cur->doc ? L->cur->doc->file : NULL;
    r->out_at = pos_of(out);
    if ((rc = xcond_set(L, &r->cond, cond)) < 0 || (rc = set_str(&r->output, out->value)) < 0 ||
        (rc = set_str(&r->desc, desc ? desc->value : "")) < 0 ||
        (rc = read_priority(L, pri, name, &r->pri)) < 0)
        return rc;
    for (const struct kx_config_node *c = item->child; c; c = c->next) {
        if (strcmp(c->key, "tags") == 0)
            rc = add_tags(L, r, c, true);
        else if (strcmp(c->key, "enabled") == 0)
            rc = read_rule_bool(L, c, name, &r->enabled);
        else if (strcmp(c->key, "warn_evttypes") == 0)
            rc = read_rule_bool(L, c, name, &r->warn_evttypes);
        else if (strcmp(c->key, "skip-if-unknown-filter") == 0)
            rc = read_rule_bool(L, c, name, &r->skip_unknown);
        else if (strcmp(c->key, "action") == 0)
            rc = read_action(L, c, name, &r->kill);
        else if (strcmp(c->key, "source") == 0) {
            if (!scalar(c) || !*c->value) {
                struct pos at = pos_of(c);
                lerr(L, &at, "rule '%.100s': source must be a string", name);
                rc = -EINVAL;
            } else if (strcmp(c->value, "syscall") != 0) {
                rc = set_str(&r->source, c->value);
            }
        } else if (strcmp(c->key, "exceptions") == 0) {
            struct xexc *e;
            size_t ne;
            if ((rc = read_exceptions(L, c, name, &e, &ne)) == 0)
                rc = merge_exceptions(L, r, e, ne);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Collecting a file                                                         */
/* ------------------------------------------------------------------------ */

static int collect_doc(struct loader *L, const struct kx_config_doc *doc)
{
    static const char *const types[] = {
        "rule", "macro", "list", "required_engine_version", "required_plugin_versions", NULL};
    const struct kx_config_node *root = doc->root;

    if (!root)
        return 0;
    if (root->kind != KX_CFG_SEQ) {
        struct pos at = pos_of(root);
        lerr(L, &at, "a rules file is a list of items (- rule: ..., - macro: ..., - list: ...)");
        return -EINVAL;
    }
    for (const struct kx_config_node *item = root->child; item; item = item->next) {
        struct pos at = pos_of(item);
        const char *type = NULL;
        int ntypes = 0, rc = 0;

        if (item->kind == KX_CFG_SCALAR && item->value[0] == '\0')
            continue; /* "- " */
        if (item->kind != KX_CFG_MAP || !item->child) {
            lerr(L, &at, "each item must be a map (rule, macro or list)");
            continue;
        }
        for (const char *const *t = types; *t; t++)
            if (kx_config_get(item, *t)) {
                type = *t;
                ntypes++;
            }
        if (ntypes == 0) {
            struct pos kat = key_pos(L, item->child);
            lerr(L, &kat,
                 "unknown item '%.64s': expected rule, macro, list, required_engine_version or "
                 "required_plugin_versions",
                 item->child->key);
            continue;
        }
        if (ntypes > 1) {
            lerr(L, &at, "item mixes several of rule, macro and list");
            continue;
        }
        if (strcmp(type, "rule") == 0)
            rc = collect_rule(L, item);
        else if (strcmp(type, "macro") == 0)
            rc = collect_macro(L, item);
        else if (strcmp(type, "list") == 0)
            rc = collect_list(L, item);
        else {
            const char *const only[] = {type, NULL};
            check_keys(L, item, type, "", only);
        }
        if (rc == -ENOMEM) {
            lerr(L, &at, "out of memory");
            return rc;
        }
    }
    return 0;
}

static int collect_text(struct loader *L, const char *name, char *text, size_t len)
{
    struct src *s;

    struct src *v = realloc(L->srcs, (L->nsrcs + 1) * sizeof(*v));
    if (!v) {
        free(text);
        return -ENOMEM;
    }
    L->srcs = v;
    s = &L->srcs[L->nsrcs++];
    memset(s, 0, sizeof(*s));
    s->text = text;
    s->len = len;
    if (strlen(text) != len) {
        struct pos at = {.file = name, .line = 1, .col = 1};
        lerr(L, &at, "file contains a NUL byte");
        return -EINVAL;
    }
    int before = (int)(L->d ? L->d->n : 0);
    s->doc = kx_config_load_string(name, text, L->d);
    if (!s->doc) {
        if (!L->d || (int)L->d->n == before)
            kx_diag_add(L->d, NULL, "%s: cannot parse the file", name);
        L->errors++;
        return errno == ENOMEM ? -ENOMEM : -EINVAL;
    }
    L->cur = s;
    int rc = collect_doc(L, s->doc);
    L->cur = NULL;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Compiling                                                                 */
/* ------------------------------------------------------------------------ */

static const struct kx_list *env_list(void *ctx, const char *name)
{
    struct loader *L = ctx;
    long i = nmap_get(&L->lmap, name);

    return i >= 0 && L->lists[i].state == 2 ? &L->lists[i].out : NULL;
}

static struct kx_macro *env_macro(void *ctx, const char *name)
{
    struct loader *L = ctx;
    long i = nmap_get(&L->mmap, name);

    return i >= 0 ? &L->macros[i].m : NULL;
}

static bool item_quoted(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0];
}

static int out_push(struct kx_list *o, const char *s, size_t *cap)
{
    if (o->n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        char **v = realloc(o->items, c * sizeof(*v));
        if (!v)
            return -ENOMEM;
        o->items = v;
        *cap = c;
    }
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return -ENOMEM;
    kx_value_unquote(s, n, d);
    o->items[o->n++] = d;
    return 0;
}

/* Expands list i: items naming another list are replaced by its items. */
static int expand_list(struct loader *L, size_t i, int depth)
{
    struct xlist *l = &L->lists[i];
    size_t cap = 0;

    if (l->state == 2)
        return 0;
    if (l->state == 1) {
        lerr(L, &l->at, "list '%.100s' includes itself (through the lists it names)", l->name);
        return -EINVAL;
    }
    if (depth > KX_LIST_MAX_DEPTH) {
        lerr(L, &l->at, "lists nest deeper than %d levels", KX_LIST_MAX_DEPTH);
        return -EINVAL;
    }
    l->state = 1;
    l->out.name = l->name;
    for (size_t k = 0; k < l->n; k++) {
        long j = item_quoted(l->items[k]) ? -1 : nmap_get(&L->lmap, l->items[k]);
        if (j >= 0) {
            int rc = expand_list(L, (size_t)j, depth + 1);
            l = &L->lists[i];
            if (rc < 0) {
                l->state = 0;
                return rc;
            }
            const struct kx_list *sub = &L->lists[j].out;
            if (l->out.n + sub->n > KX_RULE_MAX_ITEMS) {
                lerr(L, &l->at, "list '%.100s' has more than %d items after expansion", l->name,
                     KX_RULE_MAX_ITEMS);
                l->state = 0;
                return -EINVAL;
            }
            for (size_t m = 0; m < sub->n; m++) {
                /* already decoded: copy as is */
                if (l->out.n == cap) {
                    size_t c = cap ? cap * 2 : 8;
                    char **v = realloc(l->out.items, c * sizeof(*v));
                    if (!v)
                        return -ENOMEM;
                    l->out.items = v;
                    cap = c;
                }
                if (!(l->out.items[l->out.n] = strdup(sub->items[m])))
                    return -ENOMEM;
                l->out.n++;
            }
            continue;
        }
        if (l->out.n + 1 > KX_RULE_MAX_ITEMS) {
            lerr(L, &l->at, "list '%.100s' has more than %d items after expansion", l->name,
                 KX_RULE_MAX_ITEMS);
            l->state = 0;
            return -EINVAL;
        }
        if (out_push(&l->out, l->items[k], &cap) < 0)
            return -ENOMEM;
    }
    l->state = 2;
    return 0;
}

/* Builds the AST of an exception value item: decoded, quoted when Falco
 * would quote it (spaces) so it never names a list. */
static int exc_add_value(struct kx_ast *a, const char *s, uint32_t off)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    int rc;

    if (!d)
        return -ENOMEM;
    bool q = item_quoted(s);
    size_t len = kx_value_unquote(s, n, d);
    rc = kx_ast_add_val(a, d, len, off, q || strchr(s, ' ') != NULL);
    free(d);
    return rc;
}

/* One "field comp value" term of an exception. */
static struct kx_ast *exc_term(const struct kx_srcmap *map, const char *field, int op,
                               const struct xitem *val, bool force_list)
{
    struct kx_ast *a = kx_ast_new(KX_A_CMP, 0, map);

    if (!a || !(a->name = strdup(field))) {
        kx_ast_free(a);
        return NULL;
    }
    a->op = (uint8_t)op;
    if (val->is_list) {
        a->list = true;
        for (size_t i = 0; i < val->n; i++)
            if (exc_add_value(a, val->list[i], 0) < 0) {
                kx_ast_free(a);
                return NULL;
            }
    } else {
        a->list = force_list;
        if (exc_add_value(a, val->s, 0) < 0) {
            kx_ast_free(a);
            return NULL;
        }
    }
    return a;
}

static bool list_op(int op)
{
    return op == KX_OP_IN || op == KX_OP_PMATCH || op == KX_OP_INTERSECTS;
}

/*
 * Falco's exception desugaring: the rule's condition becomes
 *   (cond) and not (f comp (v1, v2, ...))                      one field
 *   (cond) and not ((f1 c1 v11 and f2 c2 v12) or (...))        several
 * Returns the new root (taking cond), or NULL with an error reported.
 */
static struct kx_ast *apply_exceptions(struct loader *L, const struct xrule *r, struct kx_ast *cond,
                                       struct kx_srcmap *maps)
{
    struct kx_ast *root = kx_ast_new(KX_A_AND, 0, cond->map);

    if (!root || kx_ast_add_kid(root, cond) < 0) {
        if (!root)
            kx_ast_free(cond);
        kx_ast_free(root);
        return NULL;
    }
    for (size_t i = 0; i < r->nexc; i++) {
        const struct xexc *e = &r->exc[i];
        const struct kx_srcmap *map = &maps[i];
        struct kx_ast *ex = NULL;

        if (e->nvals == 0)
            continue;
        if (!e->fields.is_list) {
            const char *comp = e->comps.s ? e->comps.s : "in";
            int op = kx_op_from_name(comp);
            if (e->comps.is_list || !list_op(op)) {
                lerr(L, &e->at,
                     "rule '%.100s': exception '%.100s': with a single field, comps must be one "
                     "of in, pmatch, intersects",
                     r->name, e->name);
                goto fail;
            }
            if (!e->vals) {
                lerr(L, &e->at, "rule '%.100s': exception '%.100s': values must be strings",
                     r->name, e->name);
                goto fail;
            }
            ex = kx_ast_new(KX_A_CMP, 0, map);
            if (!ex || !(ex->name = strdup(e->fields.s)))
                goto oom;
            ex->op = (uint8_t)op;
            ex->list = true;
            for (size_t k = 0; k < e->nvals; k++) {
                if (e->vals[k].is_list) {
                    lerr(L, &e->at, "rule '%.100s': exception '%.100s': values must be strings",
                         r->name, e->name);
                    goto fail;
                }
                if (exc_add_value(ex, e->vals[k].s, 0) < 0)
                    goto oom;
            }
        } else {
            size_t nf = e->fields.n;
            int ops[64];
            if (nf == 0 || nf > 64) {
                lerr(L, &e->at, "rule '%.100s': exception '%.100s' needs 1 to 64 fields", r->name,
                     e->name);
                goto fail;
            }
            if ((e->comps.s || e->comps.is_list) && (!e->comps.is_list || e->comps.n != nf)) {
                lerr(L, &e->at,
                     "rule '%.100s': exception '%.100s': fields and comps must have the same "
                     "length",
                     r->name, e->name);
                goto fail;
            }
            for (size_t k = 0; k < nf; k++) {
                ops[k] = e->comps.is_list ? kx_op_from_name(e->comps.list[k]) : KX_OP_EQ;
                if (ops[k] < 0 || ops[k] == KX_OP_EXISTS) {
                    lerr(L, &e->at,
                         "rule '%.100s': exception '%.100s': '%.40s' is not a comparison operator",
                         r->name, e->name, e->comps.list[k]);
                    goto fail;
                }
            }
            if (!e->tuples) {
                lerr(L, &e->at, "rule '%.100s': exception '%.100s': each value must be a list",
                     r->name, e->name);
                goto fail;
            }
            ex = kx_ast_new(KX_A_OR, 0, map);
            if (!ex)
                goto oom;
            for (size_t v = 0; v < e->nvals; v++) {
                if (e->ntuple[v] != nf) {
                    lerr(L, &e->at,
                         "rule '%.100s': exception '%.100s': fields and values must have the "
                         "same length",
                         r->name, e->name);
                    goto fail;
                }
                struct kx_ast *and = kx_ast_new(KX_A_AND, 0, map);
                if (!and || kx_ast_add_kid(ex, and) < 0)
                    goto oom;
                for (size_t k = 0; k < nf; k++) {
                    struct kx_ast *t =
                        exc_term(map, e->fields.list[k], ops[k], &e->tuples[v][k], list_op(ops[k]));
                    if (!t || kx_ast_add_kid(and, t) < 0)
                        goto oom;
                    if (!list_op(ops[k]) && e->tuples[v][k].is_list) {
                        lerr(L, &e->at,
                             "rule '%.100s': exception '%.100s': a list value needs in, pmatch "
                             "or intersects",
                             r->name, e->name);
                        goto fail;
                    }
                }
            }
        }
        struct kx_ast *not = kx_ast_new(KX_A_NOT, 0, map);
        if (!not ) {
            kx_ast_free(ex);
            goto oom_root;
        }
        if (kx_ast_add_kid(not, ex) < 0) {
            kx_ast_free(not );
            goto oom_root;
        }
        if (kx_ast_add_kid(root, not ) < 0) /* frees not */
            goto oom_root;
        continue;
    oom:
        lerr(L, &e->at, "out of memory");
    fail:
        kx_ast_free(ex);
        kx_ast_free(root);
        return NULL;
    }
    return root;
oom_root:
    lerr(L, &r->at, "out of memory");
    kx_ast_free(root);
    return NULL;
}

static int add_note(struct kx_ruleset *rs, enum kx_rule_note_kind kind, const char *file,
                    const char *rule, const char *fmt, ...)
{
    char msg[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rs->nnotes == rs->capnotes) {
        size_t cap = rs->capnotes ? rs->capnotes * 2 : 16;
        struct kx_rule_note *v = realloc(rs->notes, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        rs->notes = v;
        rs->capnotes = cap;
    }
    struct kx_rule_note *n = &rs->notes[rs->nnotes];
    n->kind = kind;
    n->file = kx_arena_strndup(&rs->arena, file ? file : "", file ? strlen(file) : 0);
    n->rule = kx_arena_strndup(&rs->arena, rule, strlen(rule));
    n->msg = kx_arena_strndup(&rs->arena, msg, strlen(msg));
    if (!n->file || !n->rule || !n->msg)
        return -ENOMEM;
    rs->nnotes++;
    return 0;
}

static char *arena_str(struct kx_ruleset *rs, const char *s)
{
    return kx_arena_strndup(&rs->arena, s ? s : "", s ? strlen(s) : 0);
}

static const char *kinds_text(uint64_t k, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (int i = 0; i < KX_K_MAX && o + 20 < len; i++)
        if (k & (1ull << i))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
                                  kx_kind_name((enum kx_kind)i));
    return buf;
}

/* Whether n can be true given that every event the sensor emits is an
 * exit event (evt.dir = <): -1 never, 1 always, 0 depends. */
static int dir_truth(const struct kx_node *n)
{
    int v, any;

    switch (n->kind) {
    case KX_N_TRUE:
        return 1;
    case KX_N_FALSE:
        return -1;
    case KX_N_NOT:
        return -dir_truth(n->kids[0]);
    case KX_N_AND:
        any = 1;
        for (uint32_t i = 0; i < n->nkids; i++) {
            if ((v = dir_truth(n->kids[i])) < 0)
                return -1;
            if (v == 0)
                any = 0;
        }
        return any;
    case KX_N_OR:
        any = -1;
        for (uint32_t i = 0; i < n->nkids; i++) {
            if ((v = dir_truth(n->kids[i])) > 0)
                return 1;
            if (v == 0)
                any = 0;
        }
        return any;
    default:
        break;
    }
    if (n->f.id != KX_FLD_EVT_DIR)
        return 0;
    switch (n->op) {
    case KX_OP_EQ:
        return strcmp(n->str.s, "<") == 0 ? 1 : -1;
    case KX_OP_NE:
        return strcmp(n->str.s, "<") == 0 ? -1 : 1;
    case KX_OP_IN:
    case KX_OP_INTERSECTS:
        return kx_strset_has(&n->set, "<", 1) ? 1 : -1;
    case KX_OP_EXISTS:
        return 1;
    default:
        return 0;
    }
}

/* Compiles one collected rule into rs; notes skips and warnings. */
static int compile_rule(struct loader *L, struct kx_ruleset *rs, struct xrule *r,
                        struct kx_rule **out)
{
    bool lenient = (L->flags & KX_RULES_LENIENT) || r->skip_unknown;
    struct kx_srcmap map, *emaps = NULL;
    struct kx_srcfrag *efrags = NULL;
    struct kx_perr perr;
    struct kx_ast *ast;
    struct kx_cerr cerr;
    const char *unknown = NULL;
    char err[400];
    int rc = 0;

    *out = NULL;
    if (!r->enabled)
        return add_note(rs, KX_NOTE_DISABLED, r->file, r->name, "enabled: false");
    if (r->source)
        return add_note(rs, KX_NOTE_SKIPPED, r->file, r->name,
                        "source %s is not supported (only syscall rules load)", r->source);

    xcond_map(&r->cond, &map);
    ast = kx_ast_parse(map.text, map.len, &map, &perr);
    if (!ast) {
        const char *file;
        int line, col;
        kx_srcmap_pos(&map, perr.off, &file, &line, &col);
        struct pos at = {.file = file, .line = line, .col = col};
        lerr(L, &at, "%s (rule '%.100s')", perr.msg, r->name);
        return 0;
    }
    if (r->nexc) {
        emaps = calloc(r->nexc, sizeof(*emaps));
        efrags = calloc(r->nexc, sizeof(*efrags));
        if (!emaps || !efrags) {
            kx_ast_free(ast);
            rc = -ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < r->nexc; i++) {
            efrags[i] = (struct kx_srcfrag){
                .file = r->exc[i].at.file, .line = r->exc[i].at.line, .col = r->exc[i].at.col};
            emaps[i] = (struct kx_srcmap){.text = "", .frags = &efrags[i], .n = 1};
        }
        if (!(ast = apply_exceptions(L, r, ast, emaps)))
            goto done;
    }

    struct kx_compile_env env = {
        .arena = &rs->arena, .find_list = env_list, .find_macro = env_macro, .ctx = L};
    struct kx_node *cond = kx_expr_compile(ast, &env, &cerr);
    kx_ast_free(ast);
    if (!cond) {
        if (cerr.kind == KX_CERR_UNSUP && lenient) {
            rc = add_note(rs, KX_NOTE_SKIPPED, r->file, r->name, "%s", cerr.msg);
        } else {
            kx_diag_add(L->d, NULL, "%s (rule '%.100s')", cerr.msg, r->name);
            L->errors++;
        }
        goto done;
    }

    struct kx_rule *k = kx_arena_alloc(&rs->arena, sizeof(*k));
    if (!k) {
        rc = -ENOMEM;
        goto done;
    }
    int orc =
        kx_output_compile(r->output, &rs->arena, lenient, &k->out, &unknown, err, sizeof(err));
    if (orc == -ENOMEM) {
        rc = orc;
        goto done;
    }
    if (orc < 0) {
        lerr(L, &r->out_at, "rule '%.100s': %s", r->name, err);
        goto done;
    }
    k->name = arena_str(rs, r->name);
    k->desc = arena_str(rs, r->desc);
    k->priority = r->pri;
    k->cond = cond;
    k->kill = r->kill;
    k->file = arena_str(rs, r->at.file);
    k->line = r->at.line;
    k->col = r->at.col;
    if (r->ntags) {
        const char **t = kx_arena_alloc(&rs->arena, r->ntags * sizeof(*t));
        if (!t) {
            rc = -ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < r->ntags; i++)
            if (!(t[i] = arena_str(rs, r->tags[i]))) {
                rc = -ENOMEM;
                goto done;
            }
        k->tags = t;
        k->ntags = r->ntags;
    }
    if (!k->name || !k->desc || !k->file) {
        rc = -ENOMEM;
        goto done;
    }

    uint64_t t, f;
    kx_expr_kinds(cond, &t, &f);
    k->kinds = t;
    if (t == 0)
        rc = add_note(rs, KX_NOTE_WARNING, r->file, r->name,
                      "can never match: the sensor emits none of its event types");
    else if (dir_truth(cond) < 0)
        rc = add_note(rs, KX_NOTE_WARNING, r->file, r->name,
                      "can never match: it needs evt.dir = >, and the sensor emits exit "
                      "events (evt.dir = <) only");
    else if (t == KX_KINDS_ALL && r->warn_evttypes)
        rc = add_note(rs, KX_NOTE_WARNING, r->file, r->name,
                      "no evt.type restriction: evaluated for every event kind (Falco warns "
                      "too; add evt.type = ...)");
    if (rc == 0 && env.absent_field)
        rc = add_note(rs, KX_NOTE_WARNING, r->file, r->name,
                      "%s is not available to klaxon-sensor: always absent (<NA>)",
                      env.absent_field);
    if (rc == 0 && unknown)
        rc = add_note(rs, KX_NOTE_WARNING, r->file, r->name,
                      "output field %s is unknown to klaxon-sensor: printed <NA>", unknown);
    *out = k;
done:
    free(emaps);
    free(efrags);
    return rc;
}

static int build_index(struct kx_ruleset *rs)
{
    for (int k = 0; k < KX_K_MAX; k++) {
        size_t n = 0;
        for (size_t i = 0; i < rs->n; i++)
            n += (rs->rules[i]->kinds >> k) & 1;
        rs->nby[k] = n;
        if (!n)
            continue;
        rs->by_kind[k] = kx_arena_alloc(&rs->arena, n * sizeof(*rs->by_kind[k]));
        if (!rs->by_kind[k])
            return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < rs->n; i++)
            if ((rs->rules[i]->kinds >> k) & 1)
                rs->by_kind[k][n++] = rs->rules[i];
    }
    return 0;
}

static int compile_all(struct loader *L, struct kx_ruleset *rs)
{
    int rc;

    for (size_t i = 0; i < L->nlists; i++)
        if ((rc = expand_list(L, i, 0)) == -ENOMEM)
            return rc;

    for (size_t i = 0; i < L->nmacros; i++) {
        struct xmacro *m = &L->macros[i];
        struct kx_perr perr;
        m->m.name = m->name;
        xcond_map(&m->cond, &m->map);
        m->m.ast = kx_ast_parse(m->map.text, m->map.len, &m->map, &perr);
        if (!m->m.ast) {
            const char *file;
            int line, col;
            kx_srcmap_pos(&m->map, perr.off, &file, &line, &col);
            if (asprintf(&m->err, "%s:%d:%d: %s", file, line, col, perr.msg) < 0)
                m->err = NULL;
            m->m.err = m->err;
            struct pos at = {.file = file, .line = line, .col = col};
            lerr(L, &at, "%s (macro '%.100s')", perr.msg, m->name);
        }
    }

    rs->rules = kx_arena_alloc(&rs->arena, (L->nrules ? L->nrules : 1) * sizeof(*rs->rules));
    if (!rs->rules)
        return -ENOMEM;
    for (size_t i = 0; i < L->nrules; i++) {
        struct kx_rule *k;
        if ((rc = compile_rule(L, rs, &L->rules[i], &k)) < 0)
            return rc;
        if (k) {
            k->index = rs->n;
            rs->rules[rs->n++] = k;
        }
    }
    return build_index(rs);
}

static void loader_free(struct loader *L)
{
    for (size_t i = 0; i < L->nlists; i++)
        xlist_free(&L->lists[i]);
    for (size_t i = 0; i < L->nmacros; i++) {
        free(L->macros[i].name);
        xcond_free(&L->macros[i].cond);
        kx_ast_free(L->macros[i].m.ast);
        free(L->macros[i].err);
    }
    for (size_t i = 0; i < L->nrules; i++)
        xrule_free(&L->rules[i]);
    free(L->lists);
    free(L->macros);
    free(L->rules);
    free(L->lmap.e);
    free(L->mmap.e);
    free(L->rmap.e);
    for (size_t i = 0; i < L->nsrcs; i++) {
        free(L->srcs[i].text);
        free(L->srcs[i].lines);
        kx_config_free(L->srcs[i].doc);
    }
    free(L->srcs);
}

/* Loads the texts (taking ownership of each), compiles. */
static int load_texts(const char *const *names, char **texts, const size_t *lens, size_t n,
                      unsigned flags, struct kx_ruleset **out, struct kx_diag *d)
{
    struct loader L = {.flags = flags, .d = d};
    struct kx_ruleset *rs = NULL;
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        rc = collect_text(&L, names[i], texts[i], lens[i]);
        texts[i] = NULL;
        if (rc == -ENOMEM)
            goto done;
    }
    rc = 0;
    if (L.errors)
        goto done;
    rs = calloc(1, sizeof(*rs));
    if (!rs) {
        rc = -ENOMEM;
        goto done;
    }
    rc = compile_all(&L, rs);
done:
    if (rc == -ENOMEM)
        kx_diag_add(d, NULL, "out of memory loading rules");
    if (rc == 0 && L.errors)
        rc = -EINVAL;
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    loader_free(&L);
    if (rc < 0) {
        kx_ruleset_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

int kx_ruleset_load(const char *const *paths, size_t n, unsigned flags, struct kx_ruleset **out,
                    struct kx_diag *d)
{
    char **texts;
    size_t *lens;
    int rc = 0;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!paths && n) {
        kx_diag_add(d, NULL, "no rule files given");
        return -EINVAL;
    }
    texts = calloc(n ? n : 1, sizeof(*texts));
    lens = calloc(n ? n : 1, sizeof(*lens));
    if (!texts || !lens) {
        free(texts);
        free(lens);
        kx_diag_add(d, NULL, "out of memory loading rules");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = kx_read_file(paths[i], KX_RULES_FILE_MAX, &lens[i]);
        if (!texts[i]) {
            rc = -errno;
            if (errno == E2BIG)
                kx_diag_add(d, NULL, "%s: rules file is larger than %u MiB", paths[i],
                            KX_RULES_FILE_MAX >> 20);
            else
                kx_diag_add(d, NULL, "%s: cannot read: %s", paths[i], strerror(errno));
            break;
        }
    }
    if (rc == 0)
        rc = load_texts(paths, texts, lens, n, flags, out, d);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    return rc;
}

int kx_ruleset_load_string(const char *name, const char *yaml, unsigned flags,
                           struct kx_ruleset **out, struct kx_diag *d)
{
    const char *names[1] = {name ? name : "<string>"};
    char *texts[1];
    size_t lens[1];

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!yaml) {
        kx_diag_add(d, NULL, "%s: no input", names[0]);
        return -EINVAL;
    }
    lens[0] = strlen(yaml);
    if (lens[0] > KX_RULES_FILE_MAX) {
        kx_diag_add(d, NULL, "%s: rules file is larger than %u MiB", names[0],
                    KX_RULES_FILE_MAX >> 20);
        return -E2BIG;
    }
    if (!(texts[0] = strdup(yaml))) {
        kx_diag_add(d, NULL, "out of memory loading rules");
        return -ENOMEM;
    }
    return load_texts(names, texts, lens, 1, flags, out, d);
}

void kx_ruleset_free(struct kx_ruleset *rs)
{
    if (!rs)
        return;
    kx_arena_free(&rs->arena);
    free(rs->notes);
    free(rs);
}

/* ------------------------------------------------------------------------ */
/* Queries and matching                                                      */
/* ------------------------------------------------------------------------ */

size_t kx_ruleset_count(const struct kx_ruleset *rs)
{
    return rs ? rs->n : 0;
}

const struct kx_rule *kx_ruleset_rule(const struct kx_ruleset *rs, size_t i)
{
    return rs && i < rs->n ? rs->rules[i] : NULL;
}

const struct kx_rule *kx_ruleset_find(const struct kx_ruleset *rs, const char *name)
{
    if (!rs || !name)
        return NULL;
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->rules[i]->name, name) == 0)
            return rs->rules[i];
    return NULL;
}

const struct kx_rule_note *kx_ruleset_notes(const struct kx_ruleset *rs, size_t *n)
{
    if (n)
        *n = rs ? rs->nnotes : 0;
    return rs ? rs->notes : NULL;
}

const char *kx_rule_name(const struct kx_rule *r)
{
    return r ? r->name : NULL;
}

const char *kx_rule_desc(const struct kx_rule *r)
{
    return r ? r->desc : NULL;
}

enum kx_priority kx_rule_priority(const struct kx_rule *r)
{
    return r ? r->priority : KX_PRI_DEBUG;
}

bool kx_rule_kills(const struct kx_rule *r)
{
    return r && r->kill;
}

size_t kx_rule_index(const struct kx_rule *r)
{
    return r ? r->index : 0;
}

size_t kx_ruleset_match(const struct kx_ruleset *rs, const struct kx_sevent *ev,
                        const struct kx_rule **out, size_t max)
{
    size_t n = 0;

    if (!rs || !ev || !out || (unsigned)ev->kind >= KX_K_MAX)
        return 0;
    const struct kx_rule **cand = rs->by_kind[ev->kind];
    for (size_t i = 0; i < rs->nby[ev->kind] && n < max; i++)
        if (kx_expr_eval(cand[i]->cond, ev))
            out[n++] = cand[i];
    return n;
}

void kx_ruleset_kinds(const struct kx_ruleset *rs, bool kinds[KX_K_MAX])
{
    for (int k = 0; k < KX_K_MAX; k++)
        kinds[k] = rs && rs->nby[k] > 0;
}

/* ------------------------------------------------------------------------ */
/* Open prefilter analysis                                                   */
/* ------------------------------------------------------------------------ */

enum { P_EMPTY, P_UNB, P_SET };
enum { CLS_RO, CLS_W };

/* What a (sub)condition says about fd.name for opens of one class. */
struct pset {
    int kind; /* P_EMPTY: cannot be true; P_UNB: no bound; P_SET: fd.name starts with one of v */
    char **v; /* owned */
    size_t n;
};

static void pset_clear(struct pset *p)
{
    free_strv(p->v, p->n);
    p->v = NULL;
    p->n = 0;
}

static int pset_add(struct pset *p, const char *s, size_t len)
{
    char **v = realloc(p->v, (p->n + 1) * sizeof(*v));

    if (!v)
        return -ENOMEM;
    p->v = v;
    if (!(p->v[p->n] = strndup(s, len)))
        return -ENOMEM;
    p->n++;
    return 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Sorts, removes duplicates and entries covered by a shorter prefix. An
 * empty prefix makes the set unbounded. */
static void pset_normalize(struct pset *p)
{
    size_t o = 0;

    if (p->kind != P_SET)
        return;
    qsort(p->v, p->n, sizeof(*p->v), cmp_strp);
    for (size_t i = 0; i < p->n; i++) {
        if (o > 0 && has_prefix(p->v[i], p->v[o - 1])) {
            free(p->v[i]);
            continue;
        }
        p->v[o++] = p->v[i];
    }
    p->n = o;
    if (o > 0 && p->v[0][0] == '\0') {
        pset_clear(p);
        p->kind = P_UNB;
    }
}

/* a AND b, into a */
static int pset_and(struct pset *a, struct pset *b)
{
    if (a->kind == P_EMPTY || b->kind == P_UNB)
        return 0;
    if (b->kind == P_EMPTY || a->kind == P_UNB) {
        pset_clear(a);
        *a = *b;
        memset(b, 0, sizeof(*b));
        return 0;
    }
    if (a->n * b->n > 4096) { /* keep the smaller bound: still sound */
        if (b->n < a->n) {
            pset_clear(a);
            *a = *b;
            memset(b, 0, sizeof(*b));
        }
        return 0;
    }
    /* fd.name starts with some x in A and some y in B: then it starts with
     * the longer of x, y, and one must be a prefix of the other. */
    struct pset r = {.kind = P_SET};
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            const char *x = a->v[i], *y = b->v[j];
            if (has_prefix(x, y) || has_prefix(y, x)) {
                const char *longer = strlen(x) >= strlen(y) ? x : y;
                if (pset_add(&r, longer, strlen(longer)) < 0) {
                    pset_clear(&r);
                    return -ENOMEM;
                }
            }
        }
    pset_clear(a);
    *a = r;
    if (a->n == 0)
        a->kind = P_EMPTY;
    pset_normalize(a);
    return 0;
}

/* a OR b, into a */
static int pset_or(struct pset *a, struct pset *b)
{
    if (b->kind == P_EMPTY || a->kind == P_UNB)
        return 0;
    if (a->kind == P_EMPTY || b->kind == P_UNB) {
        pset_clear(a);
        *a = *b;
        memset(b, 0, sizeof(*b));
        return 0;
    }
    for (size_t i = 0; i < b->n; i++)
        if (pset_add(a, b->v[i], strlen(b->v[i])) < 0)
            return -ENOMEM;
    pset_normalize(a);
    return 0;
}

/* fd.name prefix for "fd.directory = d": "d/" ("/" stays "/"). */
static int add_dir_prefix(struct pset *p, const char *d, size_t len)
{
    char buf[KX_PREFIX_LEN * 4];

    while (len > 1 && d[len - 1] == '/')
        len--;
    if (len == 1 && d[0] == '/')
        return pset_add(p, "/", 1);
    if (len + 2 > sizeof(buf))
        len = sizeof(buf) - 2; /* shorter is still a sound prefix */
    memcpy(buf, d, len);
    buf[len] = '/';
    return pset_add(p, buf, len + 1);
}

static int analyze_open(const struct kx_node *n, int cls, bool neg, struct pset *out);

/* A leaf: the bound it puts on fd.name for class cls (negated when neg). */
static int analyze_leaf(const struct kx_node *n, int cls, bool neg, struct pset *out)
{
    const struct kx_fref *f = &n->f;

    out->kind = P_UNB;
    if (f->id == KX_FLD_EVT_TYPE && !(f->flags & KX_FLF_MULTI)) {
        uint64_t t, fl;
        kx_expr_kinds(n, &t, &fl);
        if (neg)
            t = fl;
        if (!(t & KX_OPEN_KINDS))
            out->kind = P_EMPTY;
        return 0;
    }
    if (f->type == KX_FT_BOOL && (n->op == KX_OP_EQ || n->op == KX_OP_NE)) {
        /* the value the leaf (as negated) requires the flag to have */
        bool want = (n->op == KX_OP_EQ ? n->num != 0 : n->num == 0) != neg;
        /* is_open_write / is_open_create imply a write-class open; a
         * read-only open always has is_open_read (O_RDONLY). The reverse
         * does not hold (O_RDWR opens are both), so nothing else prunes. */
        if ((f->id == KX_FLD_EVT_IS_OPEN_WRITE || f->id == KX_FLD_EVT_IS_OPEN_CREATE) && want &&
            cls == CLS_RO)
            out->kind = P_EMPTY;
        if (f->id == KX_FLD_EVT_IS_OPEN_READ && !want && cls == CLS_RO)
            out->kind = P_EMPTY;
        return 0;
    }
    if (neg || f->type != KX_FT_STR || (f->flags & KX_FLF_MULTI))
        return 0;
    if (f->id == KX_FLD_FD_NAME) {
        switch (n->op) {
        case KX_OP_EQ:
        case KX_OP_STARTSWITH:
            out->kind = P_SET;
            return pset_add(out, n->str.s, n->str.len);
        case KX_OP_IN:
        case KX_OP_INTERSECTS:
        case KX_OP_PMATCH:
            out->kind = P_SET;
            for (uint32_t i = 0; i < n->set.n; i++)
                if (pset_add(out, n->set.items[i].s, n->set.items[i].len) < 0)
                    return -ENOMEM;
            return 0;
        case KX_OP_GLOB: {
            size_t lit = strcspn(n->str.s, "*?[");
            if (lit > 0) {
                out->kind = P_SET;
                return pset_add(out, n->str.s, lit);
            }
            return 0;
        }
        default:
            return 0;
        }
    }
    if (f->id == KX_FLD_FD_DIRECTORY) {
        switch (n->op) {
        case KX_OP_EQ:
            out->kind = P_SET;
            return add_dir_prefix(out, n->str.s, n->str.len);
        case KX_OP_STARTSWITH:
            out->kind = P_SET;
            return pset_add(out, n->str.s, n->str.len);
        case KX_OP_IN:
        case KX_OP_INTERSECTS:
            out->kind = P_SET;
            for (uint32_t i = 0; i < n->set.n; i++)
                if (add_dir_prefix(out, n->set.items[i].s, n->set.items[i].len) < 0)
                    return -ENOMEM;
            return 0;
        case KX_OP_PMATCH:
            out->kind = P_SET;
            for (uint32_t i = 0; i < n->set.n; i++)
                if (pset_add(out, n->set.items[i].s, n->set.items[i].len) < 0)
                    return -ENOMEM;
            return 0;
        default:
            return 0;
        }
    }
    return 0;
}

static int analyze_open(const struct kx_node *n, int cls, bool neg, struct pset *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    switch (n->kind) {
    case KX_N_TRUE:
    case KX_N_FALSE:
        out->kind = (n->kind == KX_N_TRUE) != neg ? P_UNB : P_EMPTY;
        return 0;
    case KX_N_NOT:
        return analyze_open(n->kids[0], cls, !neg, out);
    case KX_N_AND:
    case KX_N_OR: {
        bool conj = (n->kind == KX_N_AND) != neg; /* De Morgan under negation */
        out->kind = conj ? P_UNB : P_EMPTY;
        for (uint32_t i = 0; i < n->nkids; i++) {
            struct pset k;
            if ((rc = analyze_open(n->kids[i], cls, neg, &k)) < 0) {
                pset_clear(&k);
                return rc;
            }
            rc = conj ? pset_and(out, &k) : pset_or(out, &k);
            pset_clear(&k);
            if (rc < 0)
                return rc;
        }
        pset_normalize(out);
        return 0;
    }
    default:
        rc = analyze_leaf(n, cls, neg, out);
        pset_normalize(out);
        return rc;
    }
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] == b[i])
        i++;
    return i;
}

/* Fits p into the kernel's table: prefixes cut to KX_PREFIX_LEN-1 bytes
 * (a shorter prefix still covers every path), then neighbours merged into
 * their common prefix until at most KX_PREFIX_MAX remain. */
static int pset_fit(struct pset *p)
{
    static const size_t cuts[] = {48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1};

    if (p->kind != P_SET)
        return 0;
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->v[i]) > KX_PREFIX_LEN - 1)
            p->v[i][KX_PREFIX_LEN - 1] = '\0';
    pset_normalize(p);
    for (size_t c = 0; p->kind == P_SET && p->n > 2048 && c < KX_ARRAY_SIZE(cuts); c++) {
        for (size_t i = 0; i < p->n; i++)
            if (strlen(p->v[i]) > cuts[c])
                p->v[i][cuts[c]] = '\0';
        pset_normalize(p);
    }
    while (p->kind == P_SET && p->n > KX_PREFIX_MAX) {
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i + 1 < p->n; i++) {
            size_t l = common_prefix(p->v[i], p->v[i + 1]);
            if (i == 0 || l > best_len) {
                best = i;
                best_len = l;
            }
        }
        p->v[best][best_len] = '\0';
        pset_normalize(p);
    }
    return 0;
}

int kx_ruleset_open_filter(const struct kx_ruleset *rs, struct kx_open_cfg *cfg,
                           char (*read)[KX_PREFIX_LEN], char (*write)[KX_PREFIX_LEN])
{
    struct pset acc[2] = {{.kind = P_EMPTY}, {.kind = P_EMPTY}};
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; rs && i < rs->n && rc == 0; i++) {
        const struct kx_rule *r = rs->rules[i];
        if (!(r->kinds & KX_OPEN_KINDS))
            continue;
        for (int cls = 0; cls < 2 && rc == 0; cls++) {
            struct pset p;
            if ((rc = analyze_open(r->cond, cls, false, &p)) == 0)
                rc = pset_or(&acc[cls], &p);
            pset_clear(&p);
        }
    }
    if (rc < 0) { /* out of memory: the safe answer is "everything" */
        cfg->read_all = cfg->write_all = 1;
        goto done;
    }
    for (int cls = 0; cls < 2; cls++) {
        pset_fit(&acc[cls]);
        char(*dst)[KX_PREFIX_LEN] = cls == CLS_RO ? read : write;
        if (acc[cls].kind == P_UNB || (acc[cls].kind == P_SET && !dst)) {
            if (cls == CLS_RO)
                cfg->read_all = 1;
            else
                cfg->write_all = 1;
            continue;
        }
        if (acc[cls].kind != P_SET)
            continue;
        for (size_t k = 0; k < acc[cls].n; k++)
            snprintf(dst[k], KX_PREFIX_LEN, "%s", acc[cls].v[k]);
        if (cls == CLS_RO)
            cfg->n_read = (__u32)acc[cls].n;
        else
            cfg->n_write = (__u32)acc[cls].n;
    }
done:
    pset_clear(&acc[0]);
    pset_clear(&acc[1]);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* In-kernel kill rules                                                      */
/* ------------------------------------------------------------------------ */

static void __attribute__((format(printf, 3, 4)))
kill_err(struct kx_diag *d, const struct kx_rule *r, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct kx_config_node at = {.file = r->file, .line = r->line, .col = r->col};
    kx_diag_add(d, r->file && r->file[0] ? &at : NULL, "rule '%.100s': action kill: %s", r->name,
                msg);
}

static bool is_full_path_set(const struct kx_node *n)
{
    if (n->op == KX_OP_IN || n->op == KX_OP_PMATCH || n->op == KX_OP_INTERSECTS) {
        for (uint32_t i = 0; i < n->set.n; i++)
            if (n->set.items[i].s[0] != '/')
                return false;
        return true;
    }
    return n->str.s && n->str.s[0] == '/';
}

static int kill_rule_of(const struct kx_rule *r, struct kx_kill_rule *k, struct kx_diag *d)
{
    const struct kx_node *root = r->cond;
    const struct kx_node *const *terms = &root;
    size_t nterms = 1;
    bool saw_type = false, saw_names = false, saw_paths = false;
    char desc[200];
    int rc = 0;

    memset(k, 0, sizeof(*k));
    k->active = 1;
    k->id = (__u32)r->index;
    if (root->kind == KX_N_AND) {
        terms = (const struct kx_node *const *)root->kids;
        nterms = root->nkids;
    }
    for (size_t i = 0; i < nterms; i++) {
        const struct kx_node *t = terms[i];
        const struct kx_fref *f = &t->f;

        if (t->kind == KX_N_TRUE)
            continue;
        if (t->kind != KX_N_CMP || (f->flags & KX_FLF_MULTI))
            goto undecidable;
        if (f->id == KX_FLD_EVT_TYPE && (t->op == KX_OP_EQ || t->op == KX_OP_IN)) {
            if (t->kinds != (1ull << KX_K_EXEC))
                goto undecidable;
            bool only_exec = true;
            if (t->op == KX_OP_EQ)
                only_exec = kx_kind_from_name(t->str.s) == KX_K_EXEC;
            for (uint32_t j = 0; t->op == KX_OP_IN && j < t->set.n; j++)
                only_exec &= kx_kind_from_name(t->set.items[j].s) == KX_K_EXEC;
            if (!only_exec)
                goto undecidable;
            saw_type = true;
            continue;
        }
        if (f->id == KX_FLD_EVT_DIR && t->op == KX_OP_EQ && strcmp(t->str.s, "<") == 0)
            continue;
        if (f->id == KX_FLD_CONTAINER_ID && t->op == KX_OP_NE && strcmp(t->str.s, "host") == 0) {
            k->need_container = 1;
            continue;
        }
        if (f->id == KX_FLD_PROC_NAME && (t->op == KX_OP_EQ || t->op == KX_OP_IN)) {
            if (saw_names) {
                kill_err(d, r, "only one proc.name term is supported");
                return -EINVAL;
            }
            saw_names = true;
            size_t cnt = t->op == KX_OP_EQ ? 1 : t->set.n;
            if (cnt > KX_KILL_NAMES) {
                kill_err(d, r, "more than %d process names", KX_KILL_NAMES);
                return -EINVAL;
            }
            for (size_t j = 0; j < cnt; j++) {
                const struct kx_str *s = t->op == KX_OP_EQ ? &t->str : &t->set.items[j];
                if (s->len == 0 || s->len >= KX_EVENT_COMM_LEN) {
                    kill_err(d, r,
                             "proc.name '%.60s' can never match: comm holds at most %d "
                             "characters",
                             s->s, KX_EVENT_COMM_LEN - 1);
                    return -EINVAL;
                }
                memcpy(k->names[j], s->s, s->len);
            }
            k->n_names = (__u32)cnt;
            continue;
        }
        if ((f->id == KX_FLD_PROC_EXEPATH || (f->id == KX_FLD_PROC_EXE && is_full_path_set(t))) &&
            (t->op == KX_OP_EQ || t->op == KX_OP_IN || t->op == KX_OP_STARTSWITH ||
             t->op == KX_OP_PMATCH)) {
            if (saw_paths) {
                kill_err(d, r, "only one proc.exepath term is supported");
                return -EINVAL;
            }
            saw_paths = true;
            size_t cnt = (t->op == KX_OP_EQ || t->op == KX_OP_STARTSWITH) ? 1 : t->set.n;
            size_t o = 0;
            for (size_t j = 0; j < cnt; j++) {
                const struct kx_str *s =
                    (t->op == KX_OP_EQ || t->op == KX_OP_STARTSWITH) ? &t->str : &t->set.items[j];
                /* pmatch X: exactly X, or anything below "X/" */
                bool pm = t->op == KX_OP_PMATCH, slash = s->len && s->s[s->len - 1] == '/';
                int parts = pm && !slash ? 2 : 1;
                for (int p = 0; p < parts; p++) {
                    bool prefix = t->op == KX_OP_STARTSWITH || (pm && (slash || p == 1));
                    size_t len = s->len + (pm && p == 1);
                    if (o >= KX_KILL_PATHS) {
                        kill_err(d, r, "more than %d executable paths (pmatch counts 2 each)",
                                 KX_KILL_PATHS);
                        return -EINVAL;
                    }
                    if (len == 0 || len >= KX_KILL_PATH_LEN) {
                        kill_err(d, r, "executable path '%.60s' is longer than %d bytes", s->s,
                                 KX_KILL_PATH_LEN - 1);
                        return -EINVAL;
                    }
                    memcpy(k->paths[o], s->s, s->len);
                    if (len > s->len)
                        k->paths[o][s->len] = '/';
                    if (prefix)
                        k->path_prefix |= 1u << o;
                    o++;
                }
            }
            k->n_paths = (__u32)o;
            continue;
        }
    undecidable:
        kx_expr_describe(t, desc, sizeof(desc));
        kill_err(d, r,
                 "the kernel cannot decide '%s' (allowed: evt.type = execve, evt.dir = <, "
                 "container.id != host, proc.name =/in, proc.exepath =/in/startswith/pmatch)",
                 desc);
        rc = -EINVAL;
    }
    if (rc == 0 && !saw_type) {
        kill_err(d, r, "the condition must restrict evt.type to execve/execveat");
        rc = -EINVAL;
    }
    return rc;
}

int kx_ruleset_kill_rules(const struct kx_ruleset *rs, struct kx_kill_rule *out, size_t max,
                          size_t *n, struct kx_diag *d)
{
    size_t cnt = 0;
    int rc = 0;

    if (n)
        *n = 0;
    for (size_t i = 0; rs && i < rs->n; i++) {
        const struct kx_rule *r = rs->rules[i];
        struct kx_kill_rule k;
        if (!r->kill)
            continue;
        if (kill_rule_of(r, &k, d) < 0) {
            rc = -EINVAL;
            continue;
        }
        if (cnt >= KX_KILL_RULES || cnt >= max) {
            kill_err(d, r, "more than %zu rules with action kill",
                     max < KX_KILL_RULES ? max : (size_t)KX_KILL_RULES);
            rc = -EINVAL;
            continue;
        }
        out[cnt++] = k;
    }
    if (n)
        *n = rc == 0 ? cnt : 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* --check-rules                                                             */
/* ------------------------------------------------------------------------ */

int kx_ruleset_check_files(const char *const *paths, size_t n, FILE *out)
{
    struct kx_diag d = {0};
    struct kx_ruleset *rs = NULL;
    int rc = kx_ruleset_load(paths, n, KX_RULES_LENIENT, &rs, &d);

    if (rc < 0) {
        kx_diag_print(&d, out);
        fprintf(out, "rules: %zu error%s, nothing loaded\n", d.n, d.n == 1 ? "" : "s");
        kx_diag_free(&d);
        return 1;
    }
    size_t nnotes;
    const struct kx_rule_note *notes = kx_ruleset_notes(rs, &nnotes);
    for (size_t fi = 0; fi < n; fi++) {
        size_t loaded = 0, skipped = 0, disabled = 0;
        for (size_t i = 0; i < rs->n; i++)
            loaded += strcmp(rs->rules[i]->file, paths[fi]) == 0;
        for (size_t i = 0; i < nnotes; i++) {
            if (strcmp(notes[i].file, paths[fi]) != 0)
                continue;
            skipped += notes[i].kind == KX_NOTE_SKIPPED;
            disabled += notes[i].kind == KX_NOTE_DISABLED;
        }
        fprintf(out, "%s: %zu rule%s loaded, %zu skipped, %zu disabled\n", paths[fi], loaded,
                loaded == 1 ? "" : "s", skipped, disabled);
        for (size_t i = 0; i < rs->n; i++) {
            const struct kx_rule *r = rs->rules[i];
            char kb[400];
            if (strcmp(r->file, paths[fi]) != 0)
                continue;
            fprintf(out, "  loaded    %s [%s%s] (%s)\n", r->name, kx_priority_slug(r->priority),
                    r->kill ? ", kill" : "",
                    r->kinds == KX_KINDS_ALL ? "every event"
                                             : kinds_text(r->kinds, kb, sizeof(kb)));
        }
        for (size_t i = 0; i < nnotes; i++) {
            static const char *const what[] = {"skipped ", "disabled", "warning "};
            if (strcmp(notes[i].file, paths[fi]) != 0)
                continue;
            fprintf(out, "  %s  %s: %s\n", what[notes[i].kind], notes[i].rule, notes[i].msg);
        }
    }
    kx_ruleset_free(rs);
    kx_diag_free(&d);
    return 0;
}
