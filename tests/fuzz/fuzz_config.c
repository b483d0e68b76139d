/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c - libFuzzer target for the YAML loader and option tables:
 * any input is either a tree or diagnostics, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "config.h"

struct sample {
    char *s;
    int64_t i, d, z;
    bool b;
    enum kx_priority p;
    struct kx_strlist l;
    struct kx_strmap m;
};

static const struct kx_opt opts[] = {
    {"s", KX_OPT_STR, "x", offsetof(struct sample, s), KX_OPT_SECRET, ""},
    {"i", KX_OPT_INT, "1", offsetof(struct sample, i), 0, ""},
    {"d", KX_OPT_DURATION, "1s", offsetof(struct sample, d), 0, ""},
    {"z", KX_OPT_SIZE, "1KiB", offsetof(struct sample, z), 0, ""},
    {"b", KX_OPT_BOOL, "true", offsetof(struct sample, b), 0, ""},
    {"p", KX_OPT_PRIORITY, "debug", offsetof(struct sample, p), 0, ""},
    {"l", KX_OPT_STRLIST, NULL, offsetof(struct sample, l), 0, ""},
    {"m", KX_OPT_STRMAP, NULL, offsetof(struct sample, m), 0, ""},
    {0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct kx_diag d = {0};

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct kx_config_doc *doc = kx_config_load_string("fuzz.yaml", text, &d);
    if (doc && doc->root && doc->root->kind == KX_CFG_MAP) {
        struct sample s = {0};
        kx_config_apply(opts, doc->root, &s, NULL, &d);
        kx_config_release(opts, &s);
    }
    kx_config_free(doc);
    kx_diag_free(&d);
    free(text);
    return 0;
}
