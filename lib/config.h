/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - YAML configuration (libyaml) with file:line diagnostics.
 *
 * Two layers:
 *  1. kx_config_load() parses a YAML file into a tree of kx_config_node, each
 *     node remembering its file, line and column.
 *  2. kx_config_apply() fills a C struct from a mapping node using a
 *     declarative option table (Fluent Bit's config map idea): typed values,
 *     defaults, unknown keys rejected, environment overrides in Falcosidekick
 *     style (PREFIX_KEY, e.g. WEBHOOK_ADDRESS), and "<key>_file" secrets whose
 *     value is read from a file (Kubernetes Secret mounts).
 *
 * Every problem is appended to a kx_diag so --check-config can print them all,
 * each as "file:line:col: message".
 */
#ifndef KX_CONFIG_H
#define KX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum kx_config_kind { KX_CFG_SCALAR, KX_CFG_MAP, KX_CFG_SEQ };

struct kx_config_node {
    enum kx_config_kind kind;
    char *key;                     /* key in the parent map, NULL otherwise */
    char *value;                   /* scalar text; NULL for maps/seqs */
    const char *file;              /* borrowed from the document */
    int line, col;                 /* 1-based position of the value */
    struct kx_config_node *child;  /* first child (map entries / seq items) */
    struct kx_config_node *next;   /* next sibling */
};

/* Collected diagnostics. Zero-initialize, then kx_diag_free(). */
struct kx_diag {
    char **msgs;   /* owned */
    size_t n, cap;
};
void kx_diag_add(struct kx_diag *d, const struct kx_config_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))); /* at may be NULL: no position */
void kx_diag_print(const struct kx_diag *d, FILE *out);
void kx_diag_free(struct kx_diag *d);

struct kx_config_doc {
    char *file;                    /* owned copy of the path */
    struct kx_config_node *root;   /* owned tree; NULL for an empty file */
};

/* Parses path. Syntax errors go to d with file:line:col; returns NULL then.
 * Caller owns the result. */
struct kx_config_doc *kx_config_load(const char *path, struct kx_diag *d);
/* Same from a string (tests); name is used in diagnostics. */
struct kx_config_doc *kx_config_load_string(const char *name, const char *yaml,
                                            struct kx_diag *d);
void kx_config_free(struct kx_config_doc *doc); /* no-op if NULL */

/* Child of a map by key (borrowed) or NULL. */
const struct kx_config_node *kx_config_get(const struct kx_config_node *map, const char *key);

enum kx_opt_type {
    KX_OPT_STR,       /* char *  (owned by the struct; free with kx_config_release) */
    KX_OPT_INT,       /* int64_t */
    KX_OPT_BOOL,      /* bool */
    KX_OPT_DURATION,  /* int64_t ns: "5s", "250ms", "1m" */
    KX_OPT_SIZE,      /* int64_t bytes: "1MiB" */
    KX_OPT_PRIORITY,  /* enum kx_priority (int) */
    KX_OPT_STRLIST,   /* struct kx_strlist; YAML seq, or comma-separated scalar */
    KX_OPT_STRMAP,    /* struct kx_strmap; YAML map of scalars, or "k:v,k:v" in env */
    KX_OPT_NODE,      /* const struct kx_config_node * (borrowed sub-tree, e.g. a list of outputs) */
};

struct kx_strlist {
    char **v;    /* owned */
    size_t n;
};

struct kx_strmap {
    char **keys; /* owned */
    char **vals; /* owned */
    size_t n;
};

#define KX_OPT_SECRET 0x1  /* never logged; "<key>_file" accepted */
#define KX_OPT_REQUIRED 0x2

struct kx_opt {
    const char *key;        /* YAML key, lowercase, e.g. "minimumpriority" */
    enum kx_opt_type type;
    const char *def;        /* default as text (parsed like YAML), NULL = zero */
    size_t offset;          /* offsetof(struct ..., field) */
    unsigned flags;         /* KX_OPT_SECRET | KX_OPT_REQUIRED */
    const char *desc;       /* one line, for --help/docs */
};

/*
 * Fills dst from map (may be NULL: defaults and env only) following opts
 * (terminated by an entry with key == NULL). Unknown keys in map are
 * diagnosed. When env_prefix is non-NULL, environment variable
 * "<ENV_PREFIX>_<KEY>" (uppercase, '.' and '-' become '_') overrides the file,
 * and "<ENV_PREFIX>_<KEY>_FILE" likewise for secrets.
 * Returns 0, or -EINVAL when any diagnostic was added for this map.
 */
int kx_config_apply(const struct kx_opt *opts, const struct kx_config_node *map, void *dst,
                    const char *env_prefix, struct kx_diag *d);
/* Several option tables filling several structs from one YAML map, so that a
 * flat map ("name, type, minimumpriority, address, ...") can be split
 * between the core's struct and a plugin's settings. A key is unknown only
 * when no table has it. env_prefix as above. */
struct kx_opt_set {
    const struct kx_opt *opts;
    void *dst;
};
int kx_config_apply_sets(const struct kx_opt_set *sets, size_t nsets,
                         const struct kx_config_node *map, const char *env_prefix,
                         struct kx_diag *d);

/* Frees what kx_config_apply allocated in dst (strings, lists, maps). */
void kx_config_release(const struct kx_opt *opts, void *dst);

/* Prints the option table as "key (type, default): desc" lines. */
void kx_config_print_opts(const struct kx_opt *opts, const char *indent);
/* The same as a Markdown table, with each key's env name (<env_prefix>_<KEY>). */
void kx_config_print_opts_md(const struct kx_opt *opts, const char *env_prefix, FILE *out);

const char *kx_strmap_get(const struct kx_strmap *m, const char *key);
bool kx_strlist_has(const struct kx_strlist *l, const char *s);
/* Appends a copy of s[0..n) (s need not be NUL-terminated). 0 or -ENOMEM. */
int kx_strlist_add(struct kx_strlist *l, const char *s, size_t n);
/* Frees every string and the array; l is left empty. No-op on an empty list. */
void kx_strlist_free(struct kx_strlist *l);

#endif
