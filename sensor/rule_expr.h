/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule_expr.h - private to the rule engine (ruleset.c, rule_expr.c,
 * rule_fields.c, rule_output.c): Falco conditions from text to a compiled
 * tree, and the shared definition of a loaded rule.
 *
 * Two stages:
 *  1. kx_ast_parse() turns a condition string into an AST that still holds
 *     macro references and field names as text, each node remembering its
 *     byte offset in the condition so errors can point at file:line:col.
 *     Macro conditions are parsed once and shared by every rule using them.
 *  2. kx_expr_compile() expands macros and list names, resolves fields,
 *     checks operator/type combinations and builds the evaluation tree in an
 *     arena: numbers pre-parsed, "in"/"pmatch" values in hash sets, lower-case
 *     copies for icontains. kx_expr_eval() then never parses nor allocates.
 *
 * Every input bound is enforced with a clear error (KX_RULE_MAX_*), so
 * hostile rule files fail to load instead of exhausting stack or memory.
 * Nothing here is thread-bound; compiled trees are read-only after load and
 * may be evaluated from several threads at once.
 */
#ifndef KX_SENSOR_RULE_EXPR_H
#define KX_SENSOR_RULE_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "rule_fields.h"
#include "sevent.h"

#define KX_RULE_MAX_DEPTH 256          /* nesting of (), not, macros in one condition */
#define KX_RULE_MAX_COND (256 * 1024)  /* bytes of one condition (after appends) */
#define KX_RULE_MAX_ITEMS 100000       /* items of one list, or of one (...), after expansion */
#define KX_RULE_MAX_NODES 100000       /* terms of one rule after macro expansion */
#define KX_RULE_MAX_RULE_ITEMS 1000000 /* set items in one rule after expansion */
#define KX_RULE_MAX_ARENA (256u << 20) /* bytes of compiled rules in one ruleset */

/* ---- arena: everything compiled lives here and is freed at once --------- */

struct kx_arena_chunk;
struct kx_arena {
    struct kx_arena_chunk *head; /* owned: newest chunk first */
    size_t total;                /* bytes allocated so far */
};
/* Zeroed, 16-byte aligned memory; NULL when out of memory or over
 * KX_RULE_MAX_ARENA. */
void *kx_arena_alloc(struct kx_arena *a, size_t n);
char *kx_arena_strndup(struct kx_arena *a, const char *s, size_t n); /* NUL-terminated copy */
void kx_arena_free(struct kx_arena *a); /* leaves a zeroed, reusable arena */

/* ---- operators ------------------------------------------------------------ */

enum kx_op {
    KX_OP_EQ,
    KX_OP_NE,
    KX_OP_LT,
    KX_OP_LE,
    KX_OP_GT,
    KX_OP_GE,
    KX_OP_CONTAINS,
    KX_OP_ICONTAINS,
    KX_OP_BCONTAINS,
    KX_OP_STARTSWITH,
    KX_OP_BSTARTSWITH,
    KX_OP_ENDSWITH,
    KX_OP_GLOB,
    KX_OP_IGLOB,
    KX_OP_PMATCH,
    KX_OP_IN,
    KX_OP_INTERSECTS,
    KX_OP_EXISTS,
    KX_OP_REGEX, /* parsed so it can be reported as unsupported */
    KX_OP_COUNT
};
const char *kx_op_name(enum kx_op op);
/* The operator spelled s ("=", "==", "in", ...), or -1. */
int kx_op_from_name(const char *s);

/* ---- source positions ------------------------------------------------------ */

/* One piece of a condition text: where it starts in the text, and the YAML
 * scalar it came from (raw points into the file's text at the scalar, for
 * mapping offsets inside it; NULL for synthetic text). Conditions built by
 * appends have one fragment per appended scalar. */
struct kx_srcfrag {
    size_t off;
    const char *file;
    int line, col;
    const char *raw, *raw_end;
};
struct kx_srcmap {
    const char *text; /* the whole condition */
    size_t len;
    const struct kx_srcfrag *frags; /* sorted by off; frags[0].off == 0 */
    size_t n;
};
/* file:line:col of byte off of the condition: exact for single-line, quoted
 * and literal-block scalars, best effort for folded ones. */
void kx_srcmap_pos(const struct kx_srcmap *m, size_t off, const char **file, int *line, int *col);

/* ---- AST ------------------------------------------------------------------- */

enum kx_ast_kind { KX_A_AND, KX_A_OR, KX_A_NOT, KX_A_MACRO, KX_A_CMP, KX_A_TRUE, KX_A_FALSE };

struct kx_aval {
    char *s;      /* owned, decoded (quotes and escapes removed) */
    uint32_t off; /* offset in the condition */
    bool quoted;  /* a quoted string never names a list */
};

struct kx_ast {
    uint8_t kind;                /* enum kx_ast_kind */
    uint8_t op;                  /* KX_A_CMP: enum kx_op */
    bool list;                   /* KX_A_CMP: the value was a "(...)" list */
    uint32_t off;                /* start of the term in the condition */
    const struct kx_srcmap *map; /* borrowed: the text off refers to */
    char *name;                  /* owned: field text or macro name */
    char *unsup;                 /* owned: why this term is unsupported, or NULL */
    struct kx_ast **kids;        /* owned: AND/OR/NOT operands */
    uint32_t nkids, capkids;
    struct kx_aval *vals; /* owned: CMP values */
    uint32_t nvals, capvals;
};

/* A parse failure: offset of the offending token and a message. */
struct kx_perr {
    size_t off;
    char msg[256];
};

/* Parses text[0..len) (no NUL needed). Returns the AST (caller owns) or NULL
 * with err filled; map is stored in every node for later messages.
 * Unsupported constructs (transformers like toupper(), regex) parse into
 * nodes marked unsup, so only rules that use them are affected. */
struct kx_ast *kx_ast_parse(const char *text, size_t len, const struct kx_srcmap *map,
                            struct kx_perr *err);
struct kx_ast *kx_ast_new(int kind, uint32_t off, const struct kx_srcmap *map); /* NULL on OOM */
int kx_ast_add_kid(struct kx_ast *parent, struct kx_ast *kid); /* takes kid; -ENOMEM frees it */
int kx_ast_add_val(struct kx_ast *a, const char *s, size_t n, uint32_t off, bool quoted);
void kx_ast_free(struct kx_ast *a); /* no-op if NULL */

/* Decodes a Falco list item or value as the condition parser would: a
 * '"..."' or "'...'" item loses its quotes and escapes. Result in dst
 * (dstlen >= n + 1); returns its length. */
size_t kx_value_unquote(const char *s, size_t n, char *dst);

/* ---- compiled tree ----------------------------------------------------------- */

enum kx_nkind { KX_N_AND, KX_N_OR, KX_N_NOT, KX_N_CMP, KX_N_TRUE, KX_N_FALSE };

struct kx_str {
    const char *s; /* arena, NUL-terminated */
    uint32_t len;
    uint32_t hash;
};

/* Open-addressing string set; items keeps insertion order (deduplicated). */
struct kx_strset {
    struct kx_str *items;
    uint32_t n;
    uint32_t *slots; /* 0 = empty, else index + 1 */
    uint32_t mask;
};

struct kx_intset {
    int64_t *v; /* sorted, unique */
    uint32_t n;
};

struct kx_node {
    uint8_t kind;   /* enum kx_nkind */
    uint8_t op;     /* KX_N_CMP: enum kx_op */
    bool num_ok;    /* KX_N_CMP on a NUMSTR field: str parses as num */
    uint32_t nkids; /* AND/OR: >= 2 operands; NOT: 1 */
    struct kx_node **kids;
    struct kx_fref f;      /* KX_N_CMP */
    struct kx_str str;     /* single string value (lower-cased for icontains/iglob, raw
                            * bytes for bcontains/bstartswith) */
    int64_t num;           /* single INT/BOOL value, or str as a number */
    struct kx_strset set;  /* in/intersects/pmatch over strings */
    struct kx_intset iset; /* in/intersects over numbers */
    uint64_t kinds;        /* evt.type terms: kinds some value names (bit per kind) */
    uint64_t kinds_full;   /* ... kinds all of whose names are values (execve and execveat) */
};

/* Expanded list, as the compiler sees it (items decoded, borrowed). */
struct kx_list {
    const char *name;
    char **items;
    size_t n;
};

/* A macro for the compiler: its parsed condition (borrowed) and the cycle
 * detection flag. */
struct kx_macro {
    const char *name;
    struct kx_ast *ast; /* NULL when its condition failed to parse */
    const char *err;    /* the parse error then, with its position */
    bool visiting;      /* set while its expansion is on the stack */
    bool used;
};

struct kx_compile_env {
    struct kx_arena *arena;
    const struct kx_list *(*find_list)(void *ctx, const char *name);
    struct kx_macro *(*find_macro)(void *ctx, const char *name);
    void *ctx;
    /* filled by kx_expr_compile */
    size_t nodes, items;      /* counted against the limits */
    const char *absent_field; /* last KX_FLF_ABSENT field used (arena), or NULL */
};

#define KX_CERR_HARD 1  /* syntax, types, cycles, limits: always an error */
#define KX_CERR_UNSUP 2 /* unknown field / unsupported construct: a lenient load skips the rule */
struct kx_cerr {
    int kind;
    char msg[512]; /* "file:line:col: message" */
};

/* Compiles ast (borrowed) into a tree allocated in env->arena. NULL on
 * failure with err filled. */
struct kx_node *kx_expr_compile(const struct kx_ast *ast, struct kx_compile_env *env,
                                struct kx_cerr *err);

/* Evaluates n against ev. Thread-safe; never allocates. */
bool kx_expr_eval(const struct kx_node *n, const struct kx_sevent *ev);

/* The kinds for which n may be true (*t) and may be false (*f), bit k for
 * enum kx_kind k, derived from evt.type terms as Falco does. */
void kx_expr_kinds(const struct kx_node *n, uint64_t *t, uint64_t *f);
#define KX_KINDS_ALL ((1ull << KX_K_MAX) - 1) /* KX_K_MAX < 64, asserted in rule_expr.c */

/* A term as text for messages ("fd.name startswith /etc"), cut to len. */
void kx_expr_describe(const struct kx_node *n, char *buf, size_t len);

/* Glob as fnmatch(3) without flags minus escapes: '*', '?', '[...]'.
 * icase folds ASCII letters. Exposed for tests. */
bool kx_glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool icase);

/* Set helpers (arena-backed); kx_strset_has is the hot path. */
bool kx_strset_has(const struct kx_strset *set, const char *s, size_t len);
uint32_t kx_str_hash(const char *s, size_t len);

/* ---- a loaded rule ------------------------------------------------------------ */

/* One piece of a compiled output format: literal text, then optionally a field. */
struct kx_oseg {
    const char *lit; /* arena */
    size_t lit_len;
    bool has_field;
    bool known; /* false: an unknown field, printed <NA> (lenient loads) */
    struct kx_fref f;
    const char *fname; /* the field as written, key in output_fields */
};

struct kx_ofmt {
    struct kx_oseg *segs;
    size_t n;
};

struct kx_rule {
    const char *name; /* arena */
    const char *desc; /* arena, may be "" */
    enum kx_priority priority;
    const char *const *tags; /* arena, ntags entries */
    size_t ntags;
    struct kx_node *cond; /* arena */
    struct kx_ofmt out;   /* compiled output */
    uint64_t kinds;       /* kinds it may match */
    bool kill;            /* action: kill */
    size_t index;         /* position in the ruleset, = kx_kill_rule.id */
    const char *file;     /* arena: where it was (last) defined */
    int line, col;
};

/* rule_output.c: compile an output format. Unknown fields fail with
 * -ENOENT and a message unless lenient, in which case they are kept (printed
 * <NA>) and *unknown names the first one. 0 or -errno. */
int kx_output_compile(const char *text, struct kx_arena *a, bool lenient, struct kx_ofmt *out,
                      const char **unknown, char *err, size_t errlen);

#endif
