/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_rules.c - libFuzzer target for the rule engine: each input is used
 *  1. as a rules file (YAML), loaded strictly and leniently; a ruleset that
 *     loads is run through every analysis and matched (with alerts) against
 *     an exec and an open event;
 *  2. as a bare condition, parsed and compiled with one macro ("m") and one
 *     list ("l") defined, then evaluated;
 *  3. as an output format, compiled and rendered.
 * Any input must end in a result or diagnostics, never a crash, a leak, a
 * sanitizer report or unbounded time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rule_expr.h"
#include "ruleset.h"

static struct kx_sproc parent = {.pid = 1,
                                 .ppid = 0,
                                 .name = "containerd-shim",
                                 .exepath = "/usr/bin/containerd-shim",
                                 .cmdline = "containerd-shim"};
static const char *label_k[] = {"app"}, *label_v[] = {"web"};

static void events(struct kx_sevent *exec, struct kx_sevent *open)
{
    memset(exec, 0, sizeof(*exec));
    exec->kind = KX_K_EXEC;
    exec->type = "execve";
    exec->dir = '<';
    exec->time_ns = 1795428062123456789LL;
    exec->res_str = "SUCCESS";
    exec->proc = (struct kx_sproc){.pid = 42,
                                   .tid = 42,
                                   .ppid = 1,
                                   .name = "bash",
                                   .exe = "bash",
                                   .exepath = "/usr/bin/bash",
                                   .args = "-i",
                                   .cmdline = "bash -i",
                                   .cwd = "/",
                                   .tty = 1,
                                   .user = "root",
                                   .group = "root",
                                   .loginuid = -1};
    exec->anc[0] = &parent;
    exec->n_anc = 1;
    exec->fd_num = -1;
    exec->fd_sport = exec->fd_cport = exec->fd_lport = exec->fd_rport = -1;
    exec->container_id = "3ad7b26ded6d";
    exec->container_full_id = "3ad7b26ded6d7d04b1a4a9e1cbe5e8ef0e3cd1f6f0b3f5a8e2c1d0e9f8a7b6c5";
    exec->pod = (struct kx_spod){.ns = "ns",
                                 .name = "pod",
                                 .uid = "uid",
                                 .label_k = label_k,
                                 .label_v = label_v,
                                 .n_labels = 1};
    exec->args[0] = (struct kx_sarg){"flags", "O_RDONLY"};
    exec->n_args = 1;
    exec->hostname = "node";
    exec->flags = KX_F_KILLED;

    *open = *exec;
    open->kind = KX_K_OPENAT;
    open->type = "openat";
    open->fd_name = "/etc/shadow";
    open->fd_num = 3;
    open->fd_typechar = 'f';
    open->fd_type = "file";
    open->open_read = true;
    open->flags = 0;
}

static void run_ruleset(const struct kx_ruleset *rs, const struct kx_sevent *evs, size_t nev)
{
    struct kx_open_cfg cfg;
    char rd[KX_PREFIX_MAX][KX_PREFIX_LEN], wr[KX_PREFIX_MAX][KX_PREFIX_LEN];
    struct kx_kill_rule kill[KX_KILL_RULES];
    const struct kx_rule *out[16];
    bool kinds[KX_K_MAX];
    struct kx_diag d = {0};
    size_t n;

    kx_ruleset_kinds(rs, kinds);
    kx_ruleset_open_filter(rs, &cfg, rd, wr);
    kx_ruleset_kill_rules(rs, kill, KX_KILL_RULES, &n, &d);
    kx_diag_free(&d);
    kx_ruleset_notes(rs, &n);
    for (size_t e = 0; e < nev; e++) {
        size_t m = kx_ruleset_match(rs, &evs[e], out, 16);
        for (size_t i = 0; i < m && i < 2; i++) {
            struct kx_alert *a = kx_rule_alert(out[i], &evs[e]);
            char *json = a ? kx_alert_to_json(a) : NULL;
            free(json);
            kx_alert_free(a);
        }
    }
}

static struct kx_macro fuzz_macro, fuzz_cycle; /* "m" is fine, "c" names itself */
static char *fuzz_list_items[] = {"bash", "/etc", "42"};
static const struct kx_list fuzz_list = {.name = "l", .items = fuzz_list_items, .n = 3};

static const struct kx_list *find_list(void *ctx, const char *name)
{
    return strcmp(name, "l") == 0 ? &fuzz_list : NULL;
}

static struct kx_macro *find_macro(void *ctx, const char *name)
{
    if (strcmp(name, "m") == 0)
        return &fuzz_macro;
    return strcmp(name, "c") == 0 ? &fuzz_cycle : NULL;
}

static void run_condition(const char *text, size_t len, const struct kx_sevent *evs, size_t nev)
{
    struct kx_srcfrag frag = {
        .file = "fuzz", .line = 1, .col = 1, .raw = text, .raw_end = text + len};
    struct kx_srcmap map = {.text = text, .len = len, .frags = &frag, .n = 1};
    struct kx_arena arena = {0};
    struct kx_perr perr;
    struct kx_cerr cerr;
    const char *file;
    int line, col;

    if (!fuzz_macro.ast) {
        static const char m[] = "proc.name in (l) or fd.name pmatch (l)";
        static const char c[] = "proc.pid = 1 or c";
        fuzz_macro.name = "m";
        fuzz_macro.ast = kx_ast_parse(m, sizeof(m) - 1, NULL, &perr);
        fuzz_cycle.name = "c";
        fuzz_cycle.ast = kx_ast_parse(c, sizeof(c) - 1, NULL, &perr);
    }
    struct kx_ast *ast = kx_ast_parse(text, len, &map, &perr);
    if (!ast) {
        kx_srcmap_pos(&map, perr.off, &file, &line, &col);
        return;
    }
    struct kx_compile_env env = {.arena = &arena, .find_list = find_list, .find_macro = find_macro};
    struct kx_node *n = kx_expr_compile(ast, &env, &cerr);
    if (n) {
        uint64_t t, f;
        char desc[128];
        kx_expr_kinds(n, &t, &f);
        kx_expr_describe(n, desc, sizeof(desc));
        for (size_t e = 0; e < nev; e++)
            kx_expr_eval(n, &evs[e]);
    }
    kx_ast_free(ast);
    kx_arena_free(&arena);
}

static void run_output(const char *text, const struct kx_sevent *evs)
{
    struct kx_arena arena = {0};
    struct kx_rule r = {.name = "fuzz", .desc = "", .priority = KX_PRI_NOTICE, .kill = true};
    const char *unknown;
    char err[256];

    if (kx_output_compile(text, &arena, true, &r.out, &unknown, err, sizeof(err)) == 0) {
        struct kx_alert *a = kx_rule_alert(&r, &evs[0]);
        kx_alert_free(a);
    }
    kx_output_compile(text, &arena, false, &r.out, &unknown, err, sizeof(err));
    kx_arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kx_sevent evs[2];
    char *text;

    if (size > (1u << 20))
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    events(&evs[0], &evs[1]);

    for (unsigned flags = 0; flags <= KX_RULES_LENIENT; flags++) {
        struct kx_ruleset *rs = NULL;
        struct kx_diag d = {0};
        if (kx_ruleset_load_string("fuzz.yaml", text, flags, &rs, &d) == 0)
            run_ruleset(rs, evs, 2);
        kx_ruleset_free(rs);
        kx_diag_free(&d);
    }
    run_condition(text, size, evs, 2);
    run_output(text, evs);
    free(text);
    return 0;
}
