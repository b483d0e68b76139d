/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.h - message templates over an alert, compiled once, rendered per
 * alert without re-parsing. Two spellings, as Falco and Falcosidekick users
 * write them:
 *
 *   %field  %(field)     Falco's output style: "%proc.name on %hostname"
 *   {{field}}            "{{ k8s.ns.name }}/{{ k8s.pod.name }}"; Falcosidekick's
 *                        "{{ .Rule }}", "{{ .OutputFields.user.name }}" too
 *   %%                   a literal '%'
 *
 * Field names are looked up with kx_alert_field() (rule, priority, output,
 * source, hostname, time, uuid, tags at the top; everything else in
 * output_fields). An absent field renders as "<NA>", as Falco prints it.
 */
#ifndef KX_TEMPLATE_H
#define KX_TEMPLATE_H

#include <stddef.h>

#include "alert.h"
#include "util.h"

#define KX_TEMPLATE_MAX 8192 /* bytes of template text accepted */

struct kx_template;

/* Compiles text (borrowed). Caller owns; NULL with a message in err
 * ("unterminated {{ at offset 12") on a bad template, or ENOMEM. */
struct kx_template *kx_template_compile(const char *text, char *err, size_t errlen);
void kx_template_free(struct kx_template *t); /* no-op if NULL */

/* Appends the rendering for a (borrowed) to out. 0, or the kx_buf error
 * (-ENOMEM, -E2BIG past the buffer's maximum). */
int kx_template_render(const struct kx_template *t, const struct kx_alert *a, struct kx_buf *out);

/* Whether the template refers to any field (plain text needs no rendering). */
size_t kx_template_fields(const struct kx_template *t);

#endif
