/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule_expr.c - Falco conditions: parser, compiler and evaluator (see
 * rule_expr.h for the two stages and the bounds).
 *
 * The grammar is Falco's (libsinsp filter syntax), precedence not > and > or:
 *
 *   expr    := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | check
 *   check   := "(" expr ")" | MACRO | FIELD "exists" | FIELD op value
 *            | FIELD listop "(" [value ("," value)*] ")"
 *   value   := 'quoted' | "quoted" | bare          bare = [^()"'\s=,]+
 *
 * Operators are read before values so that Falco's "evt.dir=<" and
 * "evt.dir=>" parse the way Falco parses them. Bare words inside "(...)"
 * that name a list are replaced by the list's items at compile time.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rule_expr.h"
#include "util.h"

_Static_assert(KX_K_MAX < 64, "kinds fit a 64-bit mask");

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */
/* ------------------------------------------------------------------------ */

#define KX_ARENA_CHUNK (64 * 1024)

struct kx_arena_chunk {
    struct kx_arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *kx_arena_alloc(struct kx_arena *a, size_t n)
{
    struct kx_arena_chunk *c = a->head;

    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > KX_ARENA_CHUNK / 4 ? n : KX_ARENA_CHUNK;
        if (cap > KX_RULE_MAX_ARENA || a->total + cap > KX_RULE_MAX_ARENA)
            return NULL;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        a->total += cap;
        if (cap == n && a->head) {
            /* A big block: keep filling the current chunk afterwards. */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *kx_arena_strndup(struct kx_arena *a, const char *s, size_t n)
{
    char *p = kx_arena_alloc(a, n + 1);

    if (p && n)
        memcpy(p, s, n);
    return p;
}

void kx_arena_free(struct kx_arena *a)
{
    struct kx_arena_chunk *c = a ? a->head : NULL;

    while (c) {
        struct kx_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    if (a) {
        a->head = NULL;
        a->total = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                 */
/* ------------------------------------------------------------------------ */

static const char *const kx_op_names[KX_OP_COUNT] = {
    [KX_OP_EQ] = "=",
    [KX_OP_NE] = "!=",
    [KX_OP_LT] = "<",
    [KX_OP_LE] = "<=",
    [KX_OP_GT] = ">",
    [KX_OP_GE] = ">=",
    [KX_OP_CONTAINS] = "contains",
    [KX_OP_ICONTAINS] = "icontains",
    [KX_OP_BCONTAINS] = "bcontains",
    [KX_OP_STARTSWITH] = "startswith",
    [KX_OP_BSTARTSWITH] = "bstartswith",
    [KX_OP_ENDSWITH] = "endswith",
    [KX_OP_GLOB] = "glob",
    [KX_OP_IGLOB] = "iglob",
    [KX_OP_PMATCH] = "pmatch",
    [KX_OP_IN] = "in",
    [KX_OP_INTERSECTS] = "intersects",
    [KX_OP_EXISTS] = "exists",
    [KX_OP_REGEX] = "regex",
};

const char *kx_op_name(enum kx_op op)
{
    return (unsigned)op < KX_OP_COUNT ? kx_op_names[op] : "?";
}

int kx_op_from_name(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "==") == 0)
        return KX_OP_EQ;
    for (int i = 0; i < KX_OP_COUNT; i++)
        if (strcmp(kx_op_names[i], s) == 0)
            return i;
    return -1;
}

static bool op_takes_list(int op)
{
    return op == KX_OP_IN || op == KX_OP_INTERSECTS || op == KX_OP_PMATCH;
}

/* ------------------------------------------------------------------------ */
/* Source positions                                                          */
/* ------------------------------------------------------------------------ */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Walks the raw YAML text of one scalar alongside its value to find where
 * value byte `target` sits in the file. Whitespace runs in the value match
 * whitespace runs in the raw text (line folding, block indentation); in
 * quoted scalars escapes are skipped. Stops at the first disagreement and
 * returns the position reached, which is right for every literal and
 * single-line scalar.
 */
static void map_in_scalar(const struct kx_srcfrag *f, const char *val, size_t vlen, size_t target,
                          int *line, int *col)
{
    const char *r = f->raw, *end = f->raw_end;
    int l = f->line, c = f->col;
    char quote = 0;

    if (!r || r >= end) {
        *line = l;
        *col = c;
        return;
    }
    if (*r == '|' || *r == '>') {
        while (r < end && *r != '\n')
            r++;
        if (r < end) {
            r++;
            l++;
            c = 1;
        }
        while (r < end && (*r == ' ' || *r == '\t')) {
            r++;
            c++;
        }
    } else if (*r == '"' || *r == '\'') {
        quote = *r++;
        c++;
    }
    for (size_t i = 0; i < target && i < vlen && r < end;) {
        if (is_ws(val[i])) {
            while (i < target && i < vlen && is_ws(val[i]))
                i++;
            if (!is_ws(*r))
                break;
            while (r < end && is_ws(*r)) {
                if (*r == '\n') {
                    l++;
                    c = 1;
                } else {
                    c++;
                }
                r++;
            }
            continue;
        }
        if (*r == val[i]) {
            r++;
            c++;
            i++;
            continue;
        }
        if (quote == '"' && *r == '\\' && r + 1 < end) {
            r += 2;
            c += 2;
            i++;
            continue;
        }
        if (quote == '\'' && *r == '\'' && r + 1 < end && r[1] == '\'') {
            r += 2;
            c += 2;
            i++;
            continue;
        }
        break;
    }
    *line = l;
    *col = c;
}

void kx_srcmap_pos(const struct kx_srcmap *m, size_t off, const char **file, int *line, int *col)
{
    size_t k = 0;

    *file = "<rules>";
    *line = 1;
    *col = 1;
    if (!m || m->n == 0)
        return;
    while (k + 1 < m->n && m->frags[k + 1].off <= off)
        k++;
    const struct kx_srcfrag *f = &m->frags[k];
    size_t end = k + 1 < m->n ? m->frags[k + 1].off : m->len;
    *file = f->file ? f->file : "<rules>";
    if (off < f->off)
        off = f->off;
    map_in_scalar(f, m->text + f->off, end - f->off, off - f->off, line, col);
}

/* ------------------------------------------------------------------------ */
/* AST                                                                       */
/* ------------------------------------------------------------------------ */

struct kx_ast *kx_ast_new(int kind, uint32_t off, const struct kx_srcmap *map)
{
    struct kx_ast *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->kind = (uint8_t)kind;
    a->off = off;
    a->map = map;
    return a;
}

void kx_ast_free(struct kx_ast *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->nkids; i++)
        kx_ast_free(a->kids[i]);
    for (uint32_t i = 0; i < a->nvals; i++)
        free(a->vals[i].s);
    free(a->kids);
    free(a->vals);
    free(a->name);
    free(a->unsup);
    free(a);
}

int kx_ast_add_kid(struct kx_ast *parent, struct kx_ast *kid)
{
    if (parent->nkids == parent->capkids) {
        uint32_t cap = parent->capkids ? parent->capkids * 2 : 2;
        struct kx_ast **k = realloc(parent->kids, cap * sizeof(*k));
        if (!k) {
            kx_ast_free(kid);
            return -ENOMEM;
        }
        parent->kids = k;
        parent->capkids = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return 0;
}

int kx_ast_add_val(struct kx_ast *a, const char *s, size_t n, uint32_t off, bool quoted)
{
    if (a->nvals == a->capvals) {
        uint32_t cap = a->capvals ? a->capvals * 2 : 4;
        struct kx_aval *v = realloc(a->vals, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->vals = v;
        a->capvals = cap;
    }
    char *copy = strndup(s, n);
    if (!copy)
        return -ENOMEM;
    a->vals[a->nvals++] = (struct kx_aval){.s = copy, .off = off, .quoted = quoted};
    return 0;
}

static char unescape_char(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    default:
        return c;
    }
}

size_t kx_value_unquote(const char *s, size_t n, char *dst)
{
    size_t o = 0;

    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        for (size_t i = 1; i + 1 < n; i++) {
            if (s[i] == '\\' && i + 2 < n)
                dst[o++] = unescape_char(s[++i]);
            else
                dst[o++] = s[i];
        }
    } else {
        memcpy(dst, s, n);
        o = n;
    }
    dst[o] = '\0';
    return o;
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */
/* ------------------------------------------------------------------------ */

struct parser {
    const char *s;
    size_t n, pos;
    const struct kx_srcmap *map;
    struct kx_perr *err;
    int depth;
    bool failed;
};

static void __attribute__((format(printf, 3, 4)))
perr(struct parser *p, size_t off, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    p->err->off = off;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->n && is_ws(p->s[p->pos]))
        p->pos++;
}

/* A short, printable excerpt of the text at off for messages. */
static const char *excerpt(const struct parser *p, size_t off, char *buf, size_t len)
{
    size_t o = 0;

    if (off >= p->n)
        return "end of condition";
    buf[o++] = '\'';
    for (size_t i = off; i < p->n && o + 5 < len && i < off + 24; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (is_ws((char)c) && i > off)
            break;
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

static bool word_end(const struct parser *p, size_t at)
{
    return at >= p->n || is_ws(p->s[at]) || p->s[at] == '(' || p->s[at] == ')';
}

/* Matches keyword kw at the current position (after blanks) as a whole word. */
static bool match_kw(struct parser *p, const char *kw)
{
    size_t l = strlen(kw);

    skip_ws(p);
    if (p->pos + l <= p->n && memcmp(p->s + p->pos, kw, l) == 0 && word_end(p, p->pos + l)) {
        p->pos += l;
        return true;
    }
    return false;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

static bool is_bare_char(char c)
{
    return c && !is_ws(c) && c != '(' && c != ')' && c != ',' && c != '"' && c != '\'' && c != '=';
}

/* Reads a field or macro name ("proc.aname[2]", "k8s.pod.label[app]"). */
static size_t read_name(struct parser *p)
{
    size_t start = p->pos;

    while (p->pos < p->n && is_ident_char(p->s[p->pos]))
        p->pos++;
    if (p->pos < p->n && p->s[p->pos] == '[') {
        size_t q = p->pos + 1;
        while (q < p->n && p->s[q] != ']' && p->s[q] != '\n' && q - p->pos < 300)
            q++;
        if (q < p->n && p->s[q] == ']')
            p->pos = q + 1;
    }
    return p->pos - start;
}

static const struct {
    const char *word;
    enum kx_op op;
} kx_word_ops[] = {
    {"contains", KX_OP_CONTAINS},
    {"icontains", KX_OP_ICONTAINS},
    {"bcontains", KX_OP_BCONTAINS},
    {"startswith", KX_OP_STARTSWITH},
    {"bstartswith", KX_OP_BSTARTSWITH},
    {"endswith", KX_OP_ENDSWITH},
    {"glob", KX_OP_GLOB},
    {"iglob", KX_OP_IGLOB},
    {"pmatch", KX_OP_PMATCH},
    {"in", KX_OP_IN},
    {"intersects", KX_OP_INTERSECTS},
    {"exists", KX_OP_EXISTS},
    {"regex", KX_OP_REGEX},
};

/* Reads an operator at the current position; -1 when there is none. */
static int read_op(struct parser *p)
{
    const char *s = p->s + p->pos;
    size_t left = p->n - p->pos;

    skip_ws(p);
    s = p->s + p->pos;
    left = p->n - p->pos;
    if (left == 0)
        return -1;
    switch (s[0]) {
    case '=':
        p->pos += (left > 1 && s[1] == '=') ? 2 : 1;
        return KX_OP_EQ;
    case '!':
        if (left > 1 && s[1] == '=') {
            p->pos += 2;
            return KX_OP_NE;
        }
        return -1;
    case '<':
        if (left > 1 && s[1] == '=') {
            p->pos += 2;
            return KX_OP_LE;
        }
        p->pos++;
        return KX_OP_LT;
    case '>':
        if (left > 1 && s[1] == '=') {
            p->pos += 2;
            return KX_OP_GE;
        }
        p->pos++;
        return KX_OP_GT;
    default:
        break;
    }
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_word_ops); i++) {
        size_t l = strlen(kx_word_ops[i].word);
        if (left >= l && memcmp(s, kx_word_ops[i].word, l) == 0 && word_end(p, p->pos + l)) {
            p->pos += l;
            return kx_word_ops[i].op;
        }
    }
    return -1;
}

/* Reads a quoted string starting at the quote; appends it to a. */
static bool read_quoted(struct parser *p, struct kx_ast *a)
{
    size_t start = p->pos;
    char q = p->s[p->pos++];
    char *buf;
    size_t o = 0;

    size_t end = p->pos;
    while (end < p->n && p->s[end] != q) {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->n) {
        perr(p, start, "unterminated quoted string");
        return false;
    }
    buf = malloc(end - p->pos + 1);
    if (!buf) {
        perr(p, start, "out of memory");
        return false;
    }
    for (size_t i = p->pos; i < end; i++) {
        if (p->s[i] == '\\' && i + 1 < end)
            buf[o++] = unescape_char(p->s[++i]);
        else
            buf[o++] = p->s[i];
    }
    p->pos = end + 1;
    if (kx_ast_add_val(a, buf, o, (uint32_t)start, true) < 0) {
        free(buf);
        perr(p, start, "out of memory");
        return false;
    }
    free(buf);
    return true;
}

static const char *const kx_transformers[] = {"toupper",  "tolower", "b64",
                                              "basename", "len",     "val"};

static bool is_transformer(const char *s, size_t n)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_transformers); i++)
        if (strlen(kx_transformers[i]) == n && memcmp(kx_transformers[i], s, n) == 0)
            return true;
    return false;
}

/* Marks a as unsupported (first reason wins). */
static void set_unsup(struct parser *p, struct kx_ast *a, const char *fmt, ...)
{
    va_list ap;
    char buf[256];

    if (a->unsup)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    a->unsup = strdup(buf);
    if (!a->unsup)
        perr(p, a->off, "out of memory");
}

/* Skips a balanced "(...)" at the current position (for unsupported
 * val(...) operands). */
static bool skip_parens(struct parser *p)
{
    size_t start = p->pos;
    int depth = 0;

    while (p->pos < p->n) {
        char c = p->s[p->pos++];
        if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            return true;
    }
    perr(p, start, "unbalanced '('");
    return false;
}

/* One value (quoted or bare) into a. */
static bool read_value(struct parser *p, struct kx_ast *a, bool in_list)
{
    char b[40];

    skip_ws(p);
    if (p->pos >= p->n) {
        perr(p, p->pos, "expected a value after '%s', found end of condition",
             kx_op_name((enum kx_op)a->op));
        return false;
    }
    if (p->s[p->pos] == '"' || p->s[p->pos] == '\'')
        return read_quoted(p, a);
    size_t start = p->pos;
    while (p->pos < p->n && is_bare_char(p->s[p->pos]))
        p->pos++;
    if (p->pos == start) {
        perr(p, start, "expected a value after '%s', found %s", kx_op_name((enum kx_op)a->op),
             excerpt(p, start, b, sizeof(b)));
        return false;
    }
    if (!in_list && p->pos < p->n && p->s[p->pos] == '(' &&
        is_transformer(p->s + start, p->pos - start)) {
        set_unsup(p, a, "field values as operands (%.*s(...)) are not supported",
                  (int)(p->pos - start), p->s + start);
        return skip_parens(p);
    }
    if (kx_ast_add_val(a, p->s + start, p->pos - start, (uint32_t)start, false) < 0) {
        perr(p, start, "out of memory");
        return false;
    }
    return true;
}

static bool read_list(struct parser *p, struct kx_ast *a)
{
    char b[40];
    size_t open;

    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '(') {
        perr(p, p->pos, "operator '%s' takes a list: (a, b, ...), found %s",
             kx_op_name((enum kx_op)a->op), excerpt(p, p->pos, b, sizeof(b)));
        return false;
    }
    open = p->pos++;
    a->list = true;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ')') {
        p->pos++;
        return true;
    }
    for (;;) {
        if (a->nvals >= KX_RULE_MAX_ITEMS) {
            perr(p, open, "list has more than %d items", KX_RULE_MAX_ITEMS);
            return false;
        }
        if (!read_value(p, a, true))
            return false;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == ')') {
            p->pos++;
            return true;
        }
        if (p->pos >= p->n)
            perr(p, open, "unterminated list: missing ')'");
        else
            perr(p, p->pos, "expected ',' or ')' in list, found %s",
                 excerpt(p, p->pos, b, sizeof(b)));
        return false;
    }
}

static struct kx_ast *parse_or(struct parser *p);

static struct kx_ast *parse_check(struct parser *p)
{
    char b[40];

    skip_ws(p);
    if (p->pos >= p->n) {
        perr(p, p->pos, "unexpected end of condition");
        return NULL;
    }
    if (p->s[p->pos] == '(') {
        size_t open = p->pos++;
        if (++p->depth > KX_RULE_MAX_DEPTH) {
            perr(p, open, "condition nests deeper than %d levels", KX_RULE_MAX_DEPTH);
            return NULL;
        }
        struct kx_ast *e = parse_or(p);
        p->depth--;
        if (!e)
            return NULL;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ')') {
            kx_ast_free(e);
            if (p->pos >= p->n)
                perr(p, open, "missing ')' for this '('");
            else
                perr(p, p->pos, "expected ')' or and/or, found %s",
                     excerpt(p, p->pos, b, sizeof(b)));
            return NULL;
        }
        p->pos++;
        return e;
    }
    if (!is_ident_start(p->s[p->pos])) {
        perr(p, p->pos, "expected a field, a macro or '(', found %s",
             excerpt(p, p->pos, b, sizeof(b)));
        return NULL;
    }

    size_t start = p->pos;
    size_t len = read_name(p);
    if ((len == 3 && memcmp(p->s + start, "and", 3) == 0) ||
        (len == 2 && memcmp(p->s + start, "or", 2) == 0)) {
        perr(p, start, "expected a field, a macro or '(', found '%.*s'", (int)len, p->s + start);
        return NULL;
    }
    struct kx_ast *a = kx_ast_new(KX_A_CMP, (uint32_t)start, p->map);
    if (!a) {
        perr(p, start, "out of memory");
        return NULL;
    }

    /* toupper(proc.name) = X */
    if (p->pos < p->n && p->s[p->pos] == '(' && !memchr(p->s + start, '.', len)) {
        if (!is_transformer(p->s + start, len)) {
            perr(p, start, "unknown function %.*s()", (int)(len > 64 ? 64 : len), p->s + start);
            kx_ast_free(a);
            return NULL;
        }
        set_unsup(p, a, "transformer %.*s() is not supported", (int)len, p->s + start);
        p->pos++;
        skip_ws(p);
        start = p->pos;
        len = read_name(p);
        skip_ws(p);
        if (len == 0 || p->pos >= p->n || p->s[p->pos] != ')') {
            perr(p, p->pos, "expected a field and ')' in function call");
            kx_ast_free(a);
            return NULL;
        }
        p->pos++;
    }
    if (!(a->name = strndup(p->s + start, len))) {
        perr(p, start, "out of memory");
        kx_ast_free(a);
        return NULL;
    }

    size_t before_op = p->pos;
    int op = read_op(p);
    if (op < 0) {
        if (!memchr(a->name, '.', len) && !a->unsup) {
            /* a macro reference */
            p->pos = before_op;
            a->kind = KX_A_MACRO;
            return a;
        }
        skip_ws(p);
        if (p->pos < p->n && is_ident_start(p->s[p->pos]))
            perr(p, p->pos, "unknown operator %s after %s", excerpt(p, p->pos, b, sizeof(b)),
                 a->name);
        else
            perr(p, p->pos, "expected an operator after %s, found %s", a->name,
                 excerpt(p, p->pos, b, sizeof(b)));
        kx_ast_free(a);
        return NULL;
    }
    a->op = (uint8_t)op;
    if (op == KX_OP_REGEX)
        set_unsup(p, a, "operator regex is not supported");
    if (op == KX_OP_EXISTS)
        return a;
    bool ok = op_takes_list(op) ? read_list(p, a) : read_value(p, a, false);
    if (ok && !op_takes_list(op)) {
        size_t save = p->pos;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == '(' && a->nvals == 0) {
            perr(p, p->pos, "operator '%s' takes one value, not a list", kx_op_name(op));
            ok = false;
        }
        p->pos = save;
    }
    if (!ok) {
        kx_ast_free(a);
        return NULL;
    }
    return a;
}

static struct kx_ast *parse_not(struct parser *p)
{
    size_t at;

    skip_ws(p);
    at = p->pos;
    if (match_kw(p, "not")) {
        if (++p->depth > KX_RULE_MAX_DEPTH) {
            perr(p, at, "condition nests deeper than %d levels", KX_RULE_MAX_DEPTH);
            return NULL;
        }
        struct kx_ast *kid = parse_not(p);
        p->depth--;
        if (!kid)
            return NULL;
        struct kx_ast *n = kx_ast_new(KX_A_NOT, (uint32_t)at, p->map);
        if (!n || kx_ast_add_kid(n, kid) < 0) {
            if (!n)
                kx_ast_free(kid);
            kx_ast_free(n);
            perr(p, at, "out of memory");
            return NULL;
        }
        return n;
    }
    return parse_check(p);
}

/* and := not ("and" not)*;  or := and ("or" and)*  (one loop for both) */
static struct kx_ast *parse_chain(struct parser *p, const char *kw, int kind,
                                  struct kx_ast *(*sub)(struct parser *))
{
    struct kx_ast *first = sub(p), *n = NULL;

    if (!first)
        return NULL;
    for (;;) {
        size_t at = p->pos;
        if (!match_kw(p, kw)) {
            p->pos = at;
            break;
        }
        if (!n) {
            n = kx_ast_new(kind, first->off, p->map);
            if (!n || kx_ast_add_kid(n, first) < 0) {
                if (!n)
                    kx_ast_free(first);
                kx_ast_free(n);
                perr(p, at, "out of memory");
                return NULL;
            }
        }
        struct kx_ast *next = sub(p);
        if (!next || kx_ast_add_kid(n, next) < 0) {
            if (next)
                perr(p, at, "out of memory");
            kx_ast_free(n);
            return NULL;
        }
    }
    return n ? n : first;
}

static struct kx_ast *parse_and(struct parser *p)
{
    return parse_chain(p, "and", KX_A_AND, parse_not);
}

static struct kx_ast *parse_or(struct parser *p)
{
    return parse_chain(p, "or", KX_A_OR, parse_and);
}

struct kx_ast *kx_ast_parse(const char *text, size_t len, const struct kx_srcmap *map,
                            struct kx_perr *err)
{
    struct parser p = {.s = text, .n = len, .map = map, .err = err};
    char b[40];

    memset(err, 0, sizeof(*err));
    if (len > KX_RULE_MAX_COND) {
        perr(&p, 0, "condition is longer than %d bytes", KX_RULE_MAX_COND);
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        perr(&p, (size_t)((const char *)memchr(text, '\0', len) - text),
             "condition contains a NUL byte");
        return NULL;
    }
    skip_ws(&p);
    if (p.pos >= len) {
        perr(&p, 0, "empty condition");
        return NULL;
    }
    struct kx_ast *a = parse_or(&p);
    if (a) {
        skip_ws(&p);
        if (p.pos < len) {
            if (text[p.pos] == ')')
                perr(&p, p.pos, "unbalanced ')'");
            else
                perr(&p, p.pos, "expected and/or, found %s", excerpt(&p, p.pos, b, sizeof(b)));
            kx_ast_free(a);
            return NULL;
        }
    }
    if (p.failed) {
        kx_ast_free(a);
        return NULL;
    }
    return a;
}

/* ------------------------------------------------------------------------ */
/* Sets                                                                      */
/* ------------------------------------------------------------------------ */

#define KX_FNV_OFF 2166136261u
#define KX_FNV_PRIME 16777619u

uint32_t kx_str_hash(const char *s, size_t len)
{
    uint32_t h = KX_FNV_OFF;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * KX_FNV_PRIME;
    return h;
}

static bool strset_has_h(const struct kx_strset *set, const char *s, size_t len, uint32_t h)
{
    if (set->n == 0)
        return false;
    for (uint32_t i = h & set->mask;; i = (i + 1) & set->mask) {
        uint32_t slot = set->slots[i];
        if (!slot)
            return false;
        const struct kx_str *it = &set->items[slot - 1];
        if (it->hash == h && it->len == len && memcmp(it->s, s, len) == 0)
            return true;
    }
}

bool kx_strset_has(const struct kx_strset *set, const char *s, size_t len)
{
    /* Small sets (most of Falco's evt.type and name lists): a scan is
     * cheaper than hashing the value. */
    if (set->n <= 8) {
        for (uint32_t i = 0; i < set->n; i++) {
            const struct kx_str *it = &set->items[i];
            if (it->len == len && (len == 0 || (it->s[0] == s[0] && memcmp(it->s, s, len) == 0)))
                return true;
        }
        return false;
    }
    return strset_has_h(set, s, len, kx_str_hash(s, len));
}

/* Builds set from n strings (deduplicated). 0 or -ENOMEM. */
static int strset_build(struct kx_arena *a, struct kx_strset *set, char *const *items,
                        const size_t *lens, size_t n)
{
    uint32_t cap = 8;

    while (cap < n * 2)
        cap *= 2;
    set->items = kx_arena_alloc(a, (n ? n : 1) * sizeof(*set->items));
    set->slots = kx_arena_alloc(a, cap * sizeof(*set->slots));
    if (!set->items || !set->slots)
        return -ENOMEM;
    set->mask = cap - 1;
    set->n = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t h = kx_str_hash(items[k], lens[k]);
        if (strset_has_h(set, items[k], lens[k], h))
            continue;
        char *copy = kx_arena_strndup(a, items[k], lens[k]);
        if (!copy)
            return -ENOMEM;
        set->items[set->n] = (struct kx_str){.s = copy, .len = (uint32_t)lens[k], .hash = h};
        uint32_t i = h & set->mask;
        while (set->slots[i])
            i = (i + 1) & set->mask;
        set->slots[i] = ++set->n;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool intset_has(const struct kx_intset *set, int64_t v)
{
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->v[mid] == v)
            return true;
        if (set->v[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Matching primitives                                                       */
/* ------------------------------------------------------------------------ */

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* "[...]" at pat[pi]: 1 match, 0 no match, -1 not a valid class. *end is
 * the index after ']'. */
static int class_match(const char *pat, size_t plen, size_t pi, char c, bool icase, size_t *end)
{
    size_t j = pi + 1;
    bool neg = false, hit = false;

    if (j < plen && (pat[j] == '!' || pat[j] == '^')) {
        neg = true;
        j++;
    }
    size_t first = j;
    for (; j < plen; j++) {
        if (pat[j] == ']' && j > first)
            break;
        char lo = pat[j], hi = pat[j];
        if (j + 2 < plen && pat[j + 1] == '-' && pat[j + 2] != ']') {
            hi = pat[j + 2];
            j += 2;
        }
        if (icase) {
            char lc = lower(c);
            if ((lower(lo) <= lc && lc <= lower(hi)) || (lo <= c && c <= hi))
                hit = true;
        } else if (lo <= c && c <= hi) {
            hit = true;
        }
    }
    if (j >= plen)
        return -1;
    *end = j + 1;
    return hit != neg;
}

bool kx_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool icase)
{
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;

    while (si < slen) {
        if (pi < plen) {
            char c = pat[pi];
            if (c == '*') {
                star_p = pi++;
                star_s = si;
                continue;
            }
            if (c == '?') {
                pi++;
                si++;
                continue;
            }
            size_t end;
            int m = c == '[' ? class_match(pat, plen, pi, s[si], icase, &end) : -1;
            if (m == 1) {
                pi = end;
                si++;
                continue;
            }
            if (m == -1 && (icase ? lower(c) == lower(s[si]) : c == s[si])) {
                pi++;
                si++;
                continue;
            }
        }
        if (star_p == (size_t)-1)
            return false;
        pi = star_p + 1;
        si = ++star_s;
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

/* Case-insensitive substring; needle is already lower-case. */
static bool icontains(const char *h, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0)
        return true;
    for (size_t i = 0; i + nn <= hn; i++) {
        if (lower(h[i]) != needle[0])
            continue;
        size_t j = 1;
        while (j < nn && lower(h[i + j]) == needle[j])
            j++;
        if (j == nn)
            return true;
    }
    return false;
}

/* Falco's pmatch: s equals an item or lies below one ("/etc" and "/etc/"
 * both cover "/etc/passwd"). One pass: FNV-1a is computed incrementally, so
 * each path prefix costs one probe. */
static bool pmatch(const struct kx_strset *set, const char *s, size_t n)
{
    uint32_t h = KX_FNV_OFF;

    if (set->n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/' && i > 0 && strset_has_h(set, s, i, h))
            return true;
        h = (h ^ (unsigned char)s[i]) * KX_FNV_PRIME;
        if (s[i] == '/' && strset_has_h(set, s, i + 1, h))
            return true;
    }
    return strset_has_h(set, s, n, h);
}

/* Decimal (optionally signed) or 0x hex integer filling all of s[0..n). */
static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0, lim;
    size_t i = 0;
    int base = 10;

    if (n == 0 || n > 24)
        return false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i++;
    }
    if (n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        base = 16;
        i += 2;
    }
    if (i >= n)
        return false;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && lower(c) >= 'a' && lower(c) <= 'f')
            d = lower(c) - 'a' + 10;
        else
            return false;
        if (v > (lim - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static bool order_holds(int op, int c)
{
    switch (op) {
    case KX_OP_LT:
        return c < 0;
    case KX_OP_LE:
        return c <= 0;
    case KX_OP_GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

static bool cmp_str(const struct kx_node *n, const struct kx_fval *v)
{
    const struct kx_str *w = &n->str;
    int64_t num;

    switch (n->op) {
    case KX_OP_EQ:
    case KX_OP_NE: {
        bool eq;
        if (n->num_ok && parse_i64(v->s, v->len, &num))
            eq = num == n->num;
        else
            eq = v->len == w->len && memcmp(v->s, w->s, w->len) == 0;
        return n->op == KX_OP_EQ ? eq : !eq;
    }
    case KX_OP_LT:
    case KX_OP_LE:
    case KX_OP_GT:
    case KX_OP_GE:
        if (n->num_ok && parse_i64(v->s, v->len, &num))
            return order_holds(n->op, num < n->num ? -1 : num > n->num);
        return order_holds(n->op, cmp_bytes(v->s, v->len, w->s, w->len));
    case KX_OP_CONTAINS:
    case KX_OP_BCONTAINS:
        return w->len == 0 || memmem(v->s, v->len, w->s, w->len) != NULL;
    case KX_OP_ICONTAINS:
        return icontains(v->s, v->len, w->s, w->len);
    case KX_OP_STARTSWITH:
    case KX_OP_BSTARTSWITH:
        return v->len >= w->len && memcmp(v->s, w->s, w->len) == 0;
    case KX_OP_ENDSWITH:
        return v->len >= w->len && memcmp(v->s + v->len - w->len, w->s, w->len) == 0;
    case KX_OP_GLOB:
        return kx_glob_match(w->s, w->len, v->s, v->len, false);
    case KX_OP_IGLOB:
        return kx_glob_match(w->s, w->len, v->s, v->len, true);
    case KX_OP_IN:
    case KX_OP_INTERSECTS:
        return kx_strset_has(&n->set, v->s, v->len);
    case KX_OP_PMATCH:
        return pmatch(&n->set, v->s, v->len);
    default:
        return false;
    }
}

static bool cmp_value(const struct kx_node *n, const struct kx_fval *v)
{
    if (n->f.type == KX_FT_STR) {
        /* the frequent string operators without the operator switch */
        if (n->op == KX_OP_EQ && !n->num_ok)
            return v->len == n->str.len &&
                   (v->len == 0 || (v->s[0] == n->str.s[0] && memcmp(v->s, n->str.s, v->len) == 0));
        if (n->op == KX_OP_IN)
            return kx_strset_has(&n->set, v->s, v->len);
    }
    switch (n->f.type) {
    case KX_FT_STR:
        return cmp_str(n, v);
    case KX_FT_INT:
        switch (n->op) {
        case KX_OP_EQ:
            return v->i == n->num;
        case KX_OP_NE:
            return v->i != n->num;
        case KX_OP_LT:
        case KX_OP_LE:
        case KX_OP_GT:
        case KX_OP_GE:
            return order_holds(n->op, v->i < n->num ? -1 : v->i > n->num);
        case KX_OP_IN:
        case KX_OP_INTERSECTS:
            return intset_has(&n->iset, v->i);
        default:
            return false;
        }
    case KX_FT_BOOL:
        return n->op == KX_OP_EQ ? v->b == (n->num != 0) : v->b != (n->num != 0);
    default:
        return false;
    }
}

static bool eval_cmp(const struct kx_node *n, const struct kx_sevent *ev)
{
    char buf[KX_FIELD_BUF];
    struct kx_fval v;

    if (!(n->f.flags & KX_FLF_MULTI)) {
        if (!kx_field_get(&n->f, ev, 0, &v, buf))
            return false; /* absent: every comparison is false */
        return n->op == KX_OP_EXISTS || cmp_value(n, &v);
    }
    size_t cnt = kx_field_nvalues(&n->f, ev);
    for (size_t i = 0; i < cnt; i++)
        if (kx_field_get(&n->f, ev, i, &v, buf) && (n->op == KX_OP_EXISTS || cmp_value(n, &v)))
            return true;
    return false;
}

/* If-chains rather than switches: the kinds alternate unpredictably from
 * node to node, and an indirect jump mispredicts more than two compares. */
bool kx_expr_eval(const struct kx_node *n, const struct kx_sevent *ev)
{
    if (n->kind == KX_N_CMP)
        return eval_cmp(n, ev);
    if (n->kind == KX_N_AND) {
        for (uint32_t i = 0; i < n->nkids; i++)
            if (!kx_expr_eval(n->kids[i], ev))
                return false;
        return true;
    }
    if (n->kind == KX_N_OR) {
        for (uint32_t i = 0; i < n->nkids; i++)
            if (kx_expr_eval(n->kids[i], ev))
                return true;
        return false;
    }
    if (n->kind == KX_N_NOT)
        return !kx_expr_eval(n->kids[0], ev);
    return n->kind == KX_N_TRUE;
}

/* ------------------------------------------------------------------------ */
/* Kinds                                                                     */
/* ------------------------------------------------------------------------ */

/* evt.type names beyond kx_kind_name() that map to a kind (see kinds.c). */
static const char *const kx_kind_extra[] = {"execveat", "fork", "vfork", "clone3", "fchmodat2"};

static void type_masks(const char *const *vals, const size_t *lens, size_t n, uint64_t *any,
                       uint64_t *full)
{
    *any = 0;
    for (size_t i = 0; i < n; i++) {
        int k = kx_kind_from_name(vals[i]);
        if (k >= 0 && lens[i] == strlen(vals[i]))
            *any |= 1ull << k;
    }
    *full = *any;
    /* A kind is fully named only if every spelling of it is a value. */
    for (size_t e = 0; e < KX_ARRAY_SIZE(kx_kind_extra); e++) {
        int k = kx_kind_from_name(kx_kind_extra[e]);
        bool have = false;
        for (size_t i = 0; i < n && !have; i++)
            have = strcmp(vals[i], kx_kind_extra[e]) == 0;
        if (k >= 0 && !have)
            *full &= ~(1ull << k);
    }
    for (size_t k = 0; k < KX_K_MAX; k++) {
        const char *canon = kx_kind_name((enum kx_kind)k);
        bool have = false;
        for (size_t i = 0; i < n && !have; i++)
            have = strcmp(vals[i], canon) == 0;
        if (!have)
            *full &= ~(1ull << k);
    }
}

void kx_expr_kinds(const struct kx_node *n, uint64_t *t, uint64_t *f)
{
    uint64_t kt, kf;

    switch (n->kind) {
    case KX_N_TRUE:
        *t = KX_KINDS_ALL;
        *f = 0;
        return;
    case KX_N_FALSE:
        *t = 0;
        *f = KX_KINDS_ALL;
        return;
    case KX_N_AND:
        *t = KX_KINDS_ALL;
        *f = 0;
        for (uint32_t i = 0; i < n->nkids; i++) {
            kx_expr_kinds(n->kids[i], &kt, &kf);
            *t &= kt;
            *f |= kf;
        }
        return;
    case KX_N_OR:
        *t = 0;
        *f = KX_KINDS_ALL;
        for (uint32_t i = 0; i < n->nkids; i++) {
            kx_expr_kinds(n->kids[i], &kt, &kf);
            *t |= kt;
            *f &= kf;
        }
        return;
    case KX_N_NOT:
        kx_expr_kinds(n->kids[0], f, t);
        return;
    default:
        break;
    }
    if (n->f.id == KX_FLD_EVT_TYPE && !(n->f.flags & KX_FLF_MULTI)) {
        switch (n->op) {
        case KX_OP_EQ:
        case KX_OP_IN:
        case KX_OP_INTERSECTS:
            *t = n->kinds;
            *f = KX_KINDS_ALL & ~n->kinds_full;
            return;
        case KX_OP_NE:
            *t = KX_KINDS_ALL & ~n->kinds_full;
            *f = n->kinds;
            return;
        default:
            break;
        }
    }
    *t = KX_KINDS_ALL;
    *f = KX_KINDS_ALL;
}

/* ------------------------------------------------------------------------ */
/* Compiler                                                                  */
/* ------------------------------------------------------------------------ */

struct cctx {
    struct kx_compile_env *env;
    struct kx_cerr *err;
    const char *stack[KX_RULE_MAX_DEPTH + 2]; /* macro names being expanded */
    int nstack;
};

static void __attribute__((format(printf, 4, 5)))
cerr(struct cctx *c, int kind, const struct kx_ast *at, const char *fmt, ...)
{
    char msg[400];
    const char *file;
    int line, col;
    va_list ap;

    if (c->err->kind)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->err->kind = kind;
    if (at && at->map) {
        kx_srcmap_pos(at->map, at->off, &file, &line, &col);
        snprintf(c->err->msg, sizeof(c->err->msg), "%s:%d:%d: %s", file, line, col, msg);
    } else {
        snprintf(c->err->msg, sizeof(c->err->msg), "%s", msg);
    }
}

static struct kx_node *node_new(struct cctx *c, const struct kx_ast *at, int kind)
{
    struct kx_node *n;

    if (++c->env->nodes > KX_RULE_MAX_NODES) {
        cerr(c, KX_CERR_HARD, at, "condition has more than %d terms after macro expansion",
             KX_RULE_MAX_NODES);
        return NULL;
    }
    n = kx_arena_alloc(c->env->arena, sizeof(*n));
    if (!n) {
        cerr(c, KX_CERR_HARD, at, "out of memory compiling the condition");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    return n;
}

static const struct kx_node kx_const_true = {.kind = KX_N_TRUE};
static const struct kx_node kx_const_false = {.kind = KX_N_FALSE};

static struct kx_node *compile_node(struct cctx *c, const struct kx_ast *a, int depth);

static struct kx_node *compile_bool(struct cctx *c, const struct kx_ast *a, int depth)
{
    bool is_and = a->kind == KX_A_AND;
    struct kx_node **kids = NULL;
    size_t n = 0, cap = 0;
    struct kx_node *out = NULL;

    for (uint32_t i = 0; i < a->nkids; i++) {
        struct kx_node *k = compile_node(c, a->kids[i], depth + 1);
        if (!k)
            goto done;
        if (k->kind == (is_and ? KX_N_FALSE : KX_N_TRUE)) {
            out = (struct kx_node *)(is_and ? &kx_const_false : &kx_const_true);
            goto done;
        }
        if (k->kind == (is_and ? KX_N_TRUE : KX_N_FALSE))
            continue;
        /* flatten nested and/and, or/or */
        size_t add = k->kind == (is_and ? KX_N_AND : KX_N_OR) ? k->nkids : 1;
        if (n + add > cap) {
            size_t ncap = cap ? cap * 2 : 4;
            while (ncap < n + add)
                ncap *= 2;
            struct kx_node **nk = realloc(kids, ncap * sizeof(*nk));
            if (!nk) {
                cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
                goto done;
            }
            kids = nk;
            cap = ncap;
        }
        if (add == 1 && k->kind != (is_and ? KX_N_AND : KX_N_OR))
            kids[n++] = k;
        else
            for (uint32_t j = 0; j < k->nkids; j++)
                kids[n++] = k->kids[j];
    }
    if (n == 0) {
        out = (struct kx_node *)(is_and ? &kx_const_true : &kx_const_false);
    } else if (n == 1) {
        out = kids[0];
    } else if ((out = node_new(c, a, is_and ? KX_N_AND : KX_N_OR))) {
        out->kids = kx_arena_alloc(c->env->arena, n * sizeof(*out->kids));
        if (!out->kids) {
            cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
            out = NULL;
        } else {
            memcpy(out->kids, kids, n * sizeof(*kids));
            out->nkids = (uint32_t)n;
        }
    }
done:
    free(kids);
    return out;
}

struct valbuf {
    char **v;
    size_t *len;
    size_t n, cap;
};

static int valbuf_add(struct valbuf *b, char *s, size_t len)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        char **v = realloc(b->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        b->v = v;
        size_t *l = realloc(b->len, cap * sizeof(*l));
        if (!l)
            return -ENOMEM;
        b->len = l;
        b->cap = cap;
    }
    b->v[b->n] = s;
    b->len[b->n++] = len;
    return 0;
}

/* The values of a term with list names expanded (strings borrowed). */
static bool expand_values(struct cctx *c, const struct kx_ast *a, struct valbuf *b)
{
    for (uint32_t i = 0; i < a->nvals; i++) {
        const struct kx_aval *v = &a->vals[i];
        const struct kx_list *l = (!v->quoted && a->list && c->env->find_list)
                                      ? c->env->find_list(c->env->ctx, v->s)
                                      : NULL;
        size_t add = l ? l->n : 1;
        if (b->n + add > KX_RULE_MAX_ITEMS) {
            cerr(c, KX_CERR_HARD, a, "list has more than %d items after expansion",
                 KX_RULE_MAX_ITEMS);
            return false;
        }
        c->env->items += add;
        if (c->env->items > KX_RULE_MAX_RULE_ITEMS) {
            cerr(c, KX_CERR_HARD, a, "condition has more than %d list items after expansion",
                 KX_RULE_MAX_RULE_ITEMS);
            return false;
        }
        if (l) {
            for (size_t k = 0; k < l->n; k++)
                if (valbuf_add(b, l->items[k], strlen(l->items[k])) < 0)
                    goto oom;
        } else if (valbuf_add(b, v->s, strlen(v->s)) < 0) {
            goto oom;
        }
    }
    return true;
oom:
    cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
    return false;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static struct kx_node *compile_cmp(struct cctx *c, const struct kx_ast *a)
{
    struct kx_arena *ar = c->env->arena;
    char ferr[300];
    struct kx_node *n;
    struct kx_fref f;
    int rc;

    if (a->unsup) {
        cerr(c, KX_CERR_UNSUP, a, "%s", a->unsup);
        return NULL;
    }
    rc = kx_field_resolve(a->name, strlen(a->name), ar, &f, ferr, sizeof(ferr));
    if (rc == -ENOENT) {
        cerr(c, KX_CERR_UNSUP, a, "%s", ferr);
        return NULL;
    }
    if (rc == -ENOMEM) {
        cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
        return NULL;
    }
    if (rc < 0) {
        cerr(c, KX_CERR_HARD, a, "%s", ferr);
        return NULL;
    }
    if (f.flags & KX_FLF_ABSENT)
        c->env->absent_field = f.name;

    enum kx_op op = (enum kx_op)a->op;
    bool ok_op;
    switch (f.type) {
    case KX_FT_INT:
        ok_op = op <= KX_OP_GE || op == KX_OP_IN || op == KX_OP_INTERSECTS || op == KX_OP_EXISTS;
        break;
    case KX_FT_BOOL:
        ok_op = op == KX_OP_EQ || op == KX_OP_NE || op == KX_OP_EXISTS;
        break;
    default:
        ok_op = true;
        break;
    }
    if (!ok_op) {
        cerr(c, KX_CERR_HARD, a, "operator %s is not supported on %s field %s", kx_op_name(op),
             f.type == KX_FT_INT ? "numeric" : "boolean", f.name);
        return NULL;
    }
    if (!(n = node_new(c, a, KX_N_CMP)))
        return NULL;
    n->op = (uint8_t)op;
    n->f = f;
    if (op == KX_OP_EXISTS)
        return n;

    struct valbuf vb = {0};
    struct kx_node *out = NULL;
    if (!expand_values(c, a, &vb))
        goto done;

    if (f.id == KX_FLD_EVT_TYPE)
        type_masks((const char *const *)vb.v, vb.len, vb.n, &n->kinds, &n->kinds_full);

    if (op_takes_list(op)) {
        if (vb.n == 0) {
            out = (struct kx_node *)&kx_const_false; /* "in ()" never holds */
            goto done;
        }
        if (f.type == KX_FT_INT) {
            n->iset.v = kx_arena_alloc(ar, vb.n * sizeof(int64_t));
            if (!n->iset.v)
                goto oom;
            for (size_t i = 0; i < vb.n; i++) {
                if (!parse_i64(vb.v[i], vb.len[i], &n->iset.v[i])) {
                    cerr(c, KX_CERR_HARD, a, "invalid number \"%.*s\" for numeric field %s",
                         (int)(vb.len[i] > 64 ? 64 : vb.len[i]), vb.v[i], f.name);
                    goto done;
                }
            }
            qsort(n->iset.v, vb.n, sizeof(int64_t), cmp_i64);
            size_t u = 0;
            for (size_t i = 0; i < vb.n; i++)
                if (u == 0 || n->iset.v[u - 1] != n->iset.v[i])
                    n->iset.v[u++] = n->iset.v[i];
            n->iset.n = (uint32_t)u;
        } else if (strset_build(ar, &n->set, vb.v, vb.len, vb.n) < 0) {
            goto oom;
        }
        out = n;
        goto done;
    }

    if (vb.n != 1) {
        cerr(c, KX_CERR_HARD, a, "operator %s takes exactly one value", kx_op_name(op));
        goto done;
    }
    const char *s = vb.v[0];
    size_t len = vb.len[0];
    if (f.type == KX_FT_INT) {
        if (!parse_i64(s, len, &n->num)) {
            cerr(c, KX_CERR_HARD, a, "invalid number \"%.*s\" for numeric field %s",
                 (int)(len > 64 ? 64 : len), s, f.name);
            goto done;
        }
        /* evt.num is always >= 1 here (rule_fields.c), so Falco's never_true
         * (evt.num=0) and always_true (evt.num>=0) are constants: folding
         * them keeps "and not <never_true macro>" free, and decidable for
         * the kernel's kill rules. */
        if (f.id == KX_FLD_EVT_NUM && n->num <= 0 && op <= KX_OP_GE) {
            bool v = op == KX_OP_NE || op == KX_OP_GT || op == KX_OP_GE;
            out = (struct kx_node *)(v ? &kx_const_true : &kx_const_false);
            goto done;
        }
    } else if (f.type == KX_FT_BOOL) {
        if (strcasecmp(s, "true") == 0)
            n->num = 1;
        else if (strcasecmp(s, "false") == 0)
            n->num = 0;
        else {
            cerr(c, KX_CERR_HARD, a, "expected true or false for %s, not \"%.*s\"", f.name,
                 (int)(len > 64 ? 64 : len), s);
            goto done;
        }
    } else if (op == KX_OP_BCONTAINS || op == KX_OP_BSTARTSWITH) {
        char *bytes = kx_arena_alloc(ar, len / 2 + 1);
        if (!bytes)
            goto oom;
        if (len % 2) {
            cerr(c, KX_CERR_HARD, a, "%s takes hex bytes (an even number of hex digits)",
                 kx_op_name(op));
            goto done;
        }
        for (size_t i = 0; i < len; i += 2) {
            int hi = hexval(s[i]), lo = hexval(s[i + 1]);
            if (hi < 0 || lo < 0) {
                cerr(c, KX_CERR_HARD, a, "%s takes hex bytes, not \"%.*s\"", kx_op_name(op),
                     (int)(len > 64 ? 64 : len), s);
                goto done;
            }
            bytes[i / 2] = (char)(hi << 4 | lo);
        }
        n->str = (struct kx_str){.s = bytes, .len = (uint32_t)(len / 2)};
    } else {
        char *copy = kx_arena_strndup(ar, s, len);
        if (!copy)
            goto oom;
        if (op == KX_OP_ICONTAINS)
            for (size_t i = 0; i < len; i++)
                copy[i] = lower(copy[i]);
        n->str = (struct kx_str){.s = copy, .len = (uint32_t)len, .hash = kx_str_hash(copy, len)};
        if (f.flags & KX_FLF_NUMSTR)
            n->num_ok = parse_i64(s, len, &n->num);
    }
    out = n;
    goto done;
oom:
    cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
done:
    free(vb.v);
    free(vb.len);
    return out;
}

static struct kx_node *compile_macro(struct cctx *c, const struct kx_ast *a, int depth)
{
    struct kx_macro *m = c->env->find_macro ? c->env->find_macro(c->env->ctx, a->name) : NULL;

    if (!m) {
        cerr(c, KX_CERR_HARD, a, "undefined macro '%s'", a->name);
        return NULL;
    }
    if (m->visiting) {
        char chain[300];
        size_t o = 0;
        int from = 0;
        for (int i = 0; i < c->nstack; i++)
            if (strcmp(c->stack[i], m->name) == 0) {
                from = i;
                break;
            }
        for (int i = from; i < c->nstack && o < sizeof(chain) - 40; i++)
            o += (size_t)snprintf(chain + o, sizeof(chain) - o, "%s -> ", c->stack[i]);
        snprintf(chain + o, sizeof(chain) - o, "%s", m->name);
        cerr(c, KX_CERR_HARD, a, "macro cycle: %s", chain);
        return NULL;
    }
    if (!m->ast) {
        cerr(c, KX_CERR_HARD, a, "macro '%s' has errors: %s", m->name,
             m->err ? m->err : "its condition did not parse");
        return NULL;
    }
    m->visiting = true;
    m->used = true;
    c->stack[c->nstack++] = m->name;
    struct kx_node *n = compile_node(c, m->ast, depth + 1);
    c->nstack--;
    m->visiting = false;
    return n;
}

static struct kx_node *compile_node(struct cctx *c, const struct kx_ast *a, int depth)
{
    if (depth > KX_RULE_MAX_DEPTH) {
        cerr(c, KX_CERR_HARD, a,
             "condition nests deeper than %d levels (macros and parentheses included)",
             KX_RULE_MAX_DEPTH);
        return NULL;
    }
    switch (a->kind) {
    case KX_A_AND:
    case KX_A_OR:
        return compile_bool(c, a, depth);
    case KX_A_NOT: {
        struct kx_node *k = compile_node(c, a->kids[0], depth + 1), *n;
        if (!k)
            return NULL;
        if (k->kind == KX_N_TRUE)
            return (struct kx_node *)&kx_const_false;
        if (k->kind == KX_N_FALSE)
            return (struct kx_node *)&kx_const_true;
        if (k->kind == KX_N_NOT)
            return k->kids[0];
        if (!(n = node_new(c, a, KX_N_NOT)))
            return NULL;
        n->kids = kx_arena_alloc(c->env->arena, sizeof(*n->kids));
        if (!n->kids) {
            cerr(c, KX_CERR_HARD, a, "out of memory compiling the condition");
            return NULL;
        }
        n->kids[0] = k;
        n->nkids = 1;
        return n;
    }
    case KX_A_MACRO:
        return compile_macro(c, a, depth);
    case KX_A_CMP:
        return compile_cmp(c, a);
    case KX_A_TRUE:
        return (struct kx_node *)&kx_const_true;
    case KX_A_FALSE:
        return (struct kx_node *)&kx_const_false;
    default:
        cerr(c, KX_CERR_HARD, a, "internal error: bad condition node");
        return NULL;
    }
}

struct kx_node *kx_expr_compile(const struct kx_ast *ast, struct kx_compile_env *env,
                                struct kx_cerr *err)
{
    struct cctx *c = calloc(1, sizeof(*c));
    struct kx_node *n;

    memset(err, 0, sizeof(*err));
    if (!c) {
        err->kind = KX_CERR_HARD;
        snprintf(err->msg, sizeof(err->msg), "out of memory compiling the condition");
        return NULL;
    }
    c->env = env;
    c->err = err;
    n = compile_node(c, ast, 0);
    free(c);
    if (!n && !err->kind) {
        err->kind = KX_CERR_HARD;
        snprintf(err->msg, sizeof(err->msg), "cannot compile the condition");
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Describe                                                                  */
/* ------------------------------------------------------------------------ */

void kx_expr_describe(const struct kx_node *n, char *buf, size_t len)
{
    size_t o = 0;
    int w;

    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    switch (n->kind) {
    case KX_N_TRUE:
        snprintf(buf, len, "true");
        return;
    case KX_N_FALSE:
        snprintf(buf, len, "false");
        return;
    case KX_N_NOT:
        w = snprintf(buf, len, "not ");
        if (w > 0 && (size_t)w < len)
            kx_expr_describe(n->kids[0], buf + w, len - (size_t)w);
        return;
    case KX_N_AND:
    case KX_N_OR:
        snprintf(buf, len, "(%s of %u terms)", n->kind == KX_N_AND ? "and" : "or", n->nkids);
        return;
    default:
        break;
    }
    w = snprintf(buf, len, "%s %s", n->f.name, kx_op_name((enum kx_op)n->op));
    if (w < 0 || (size_t)w >= len)
        return;
    o = (size_t)w;
    if (n->op == KX_OP_EXISTS)
        return;
    if (op_takes_list(n->op)) {
        size_t cnt = n->f.type == KX_FT_INT ? n->iset.n : n->set.n;
        o += (size_t)snprintf(buf + o, len - o, " (");
        for (size_t i = 0; i < cnt && o + 8 < len; i++) {
            if (i >= 8) {
                o += (size_t)snprintf(buf + o, len - o, ", ...");
                break;
            }
            if (n->f.type == KX_FT_INT)
                o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "",
                                      (long long)n->iset.v[i]);
            else
                o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", n->set.items[i].s);
        }
        if (o + 2 < len)
            snprintf(buf + o, len - o, ")");
        return;
    }
    if (n->f.type == KX_FT_INT)
        snprintf(buf + o, len - o, " %lld", (long long)n->num);
    else if (n->f.type == KX_FT_BOOL)
        snprintf(buf + o, len - o, " %s", n->num ? "true" : "false");
    else
        snprintf(buf + o, len - o, " %.*s", (int)(n->str.len > 200 ? 200 : n->str.len),
                 n->str.s ? n->str.s : "");
}
