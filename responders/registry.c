/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the one list of responder types. Adding a responder = its .c
 * file, one extern and one line in the table below, and its test. Types from
 * .so files are not listed here: they load through the "plugin" type.
 */
#include <string.h>
#include <strings.h>

#include "responders.h"

/* Each defined in its own responders/<name>.c. */
extern const struct kx_responder_ops kx_responder_exec;
extern const struct kx_responder_ops kx_responder_node;
extern const struct kx_responder_ops kx_responder_k8s_node;
extern const struct kx_responder_ops kx_responder_k8s_pod;
/* Not kx_responder_plugin: that is the symbol a .so exports. */
extern const struct kx_responder_ops kx_responder_plugin_loader;

const struct kx_responder_ops *const kx_responder_registry[] = {
    &kx_responder_node,
    &kx_responder_k8s_node,
    &kx_responder_k8s_pod,
    &kx_responder_exec,
    &kx_responder_plugin_loader,
    NULL,
};

const struct kx_responder_ops *kx_responder_ops_find(const char *type)
{
    if (type == NULL)
        return NULL;
    for (size_t i = 0; kx_responder_registry[i]; i++) {
        if (strcasecmp(kx_responder_registry[i]->name, type) == 0)
            return kx_responder_registry[i];
    }
    return NULL;
}
