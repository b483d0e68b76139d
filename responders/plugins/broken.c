/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broken.c - deliberately broken responder plugins for the loader's tests
 * (tests/unit/test_responders_plugin.c), one per build flag; never shipped:
 * the Makefile builds them into $(BUILD)/lib/test/ only.
 *
 *   BROKEN_NOSYM   exports a near miss of kx_responder_plugin, not the name
 *   BROKEN_BADABI  built "for" KX_RESPONDER_ABI + 1
 *   BROKEN_NOACT   right ABI, no act()
 *   BROKEN_BADRC   act() returns 1, outside the 0/-EAGAIN/<0 contract
 */
#include <errno.h>

#include "responders.h"

#ifndef BROKEN_NOACT
static int broken_act(struct kx_responder *r, const struct kx_alert *alert,
                      const struct kx_config_node *params, cJSON *audit)
{
#ifdef BROKEN_BADRC
    cJSON_AddStringToObject(audit, "result", "done"); /* and yet not 0 */
    return 1;
#else
    return 0;
#endif
}
#endif

#if defined(BROKEN_NOSYM)
KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin_v2 = {
    .abi = KX_RESPONDER_ABI,
    .name = "nosym",
    .act = broken_act,
};
#elif defined(BROKEN_BADABI)
KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin = {
    .abi = KX_RESPONDER_ABI + 1,
    .name = "badabi",
    .act = broken_act,
};
#elif defined(BROKEN_NOACT)
KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin = {
    .abi = KX_RESPONDER_ABI,
    .name = "noact",
};
#elif defined(BROKEN_BADRC)
KX_RESPONDER_PLUGIN_EXPORT const struct kx_responder_ops kx_responder_plugin = {
    .abi = KX_RESPONDER_ABI,
    .name = "badrc",
    .act = broken_act,
};
#else
#error "build with one of -DBROKEN_NOSYM, -DBROKEN_BADABI, -DBROKEN_NOACT, -DBROKEN_BADRC"
#endif
