/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder_harness.h - one responder action built from YAML the way the
 * engine (hub/respond.c) builds it, for the unit tests of responder types:
 * the core's keys (type, params) and the type's settings share one flat map.
 * Included by each test_responders_*.c (static: one copy per test binary).
 */
#ifndef KX_TEST_RESPONDER_HARNESS_H
#define KX_TEST_RESPONDER_HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "responders.h"

struct core {
    char *type;
    const struct kx_config_node *params;
};

static const struct kx_opt core_opts[] = {
    {"type", KX_OPT_STR, NULL, offsetof(struct core, type), 0, "responder type"},
    {"params", KX_OPT_NODE, NULL, offsetof(struct core, params), 0, "the action's params"},
    {0},
};

struct inst {
    struct kx_config_doc *doc;
    struct core core;
    struct kx_responder r;
    struct kx_diag d;
    int apply_rc, init_rc;
};

/* Builds instance `name` of ops from the YAML map yaml (settings applied,
 * then init); the outcomes are in apply_rc / init_rc and d. */
static void inst_init_ops(struct inst *in, const struct kx_responder_ops *ops, const char *name,
                          const char *yaml)
{
    memset(in, 0, sizeof(*in));
    in->doc = kx_config_load_string("test.yaml", yaml, &in->d);
    assert_non_null(in->doc);
    in->r.ops = ops;
    in->r.name = name;
    in->r.settings = calloc(1, ops->settings_size);
    assert_non_null(in->r.settings);
    struct kx_opt_set sets[] = {{core_opts, &in->core}, {ops->opts, in->r.settings}};
    in->apply_rc = kx_config_apply_sets(sets, 2, in->doc->root, NULL, &in->d);
    in->init_rc = in->apply_rc == 0 ? ops->init(&in->r, in->doc->root, &in->d) : in->apply_rc;
}

/* inst_init_ops with the action's YAML formatted from fmt. */
static void inst_initf(struct inst *in, const struct kx_responder_ops *ops, const char *name,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5), unused));
static void inst_initf(struct inst *in, const struct kx_responder_ops *ops, const char *name,
                       const char *fmt, ...)
{
    char yaml[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(yaml, sizeof(yaml), fmt, ap);
    va_end(ap);
    inst_init_ops(in, ops, name, yaml);
}

static void inst_free(struct inst *in)
{
    if (in->init_rc == 0 && in->r.ops->destroy)
        in->r.ops->destroy(&in->r);
    kx_config_release(in->r.ops->opts, in->r.settings);
    kx_config_release(core_opts, &in->core);
    free(in->r.settings);
    kx_config_free(in->doc);
    kx_diag_free(&in->d);
}

static const char *diag0(const struct inst *in)
{
    return in->d.n ? in->d.msgs[0] : "";
}

#endif
