/* SPDX-License-Identifier: Apache-2.0 */
/*
 * console.h - the console and file outputs' pure formatters, so tests (and
 * anything else that wants the same lines) can call them without I/O.
 */
#ifndef KX_OUTPUTS_CONSOLE_H
#define KX_OUTPUTS_CONSOLE_H

#include "alert.h"
#include "outputs.h"
#include "util.h"

/*
 * Appends one human-readable line, '\n' included, to out:
 *   "<time> <Priority> <rule>: <output> [host=<hostname> container=<container.id>]"
 * Control characters in the alert's text become spaces so an alert is always
 * one line; the bracket lists only the fields the alert has. a and out are
 * borrowed. 0, or the kx_buf error (-E2BIG, -ENOMEM) with out unchanged.
 */
int kx_console_format_text(const struct kx_alert *a, struct kx_buf *out);

/* Appends the alert's compact JSON and '\n' (one JSON line). As above. */
int kx_console_format_json(const struct kx_alert *a, struct kx_buf *out);

/* Defined in console.c. */
extern const struct kx_output_ops kx_output_console; /* "console": stdout */
extern const struct kx_output_ops kx_output_file;    /* "file": JSON lines appended */

#endif
