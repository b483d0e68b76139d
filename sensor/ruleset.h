/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ruleset.h - the sensor's rule engine: a compatible subset of Falco's rule
 * language (rules, macros, lists; append and override; exceptions), compiled
 * once at load and evaluated against struct kx_sevent, plus the analyses
 * that configure the kernel prefilters (event kinds, open paths, in-kernel
 * kill rules) and the Falco-shaped alert of a matched rule.
 *
 * Language (see ruleset.c for details and limits):
 *   items      rule, macro, list, required_engine_version and
 *              required_plugin_versions (accepted, ignored)
 *   rule keys  rule desc condition output priority tags enabled source
 *              exceptions append override warn_evttypes skip-if-unknown-filter,
 *              and klaxon's own "action: kill"
 *   conditions and/or/not, (), = == != < <= > >= contains icontains bcontains
 *              startswith bstartswith endswith glob iglob pmatch in intersects
 *              exists; bare, quoted and numeric values; lists of values and
 *              list names; macros (recursive, cycles rejected)
 *   not yet    regex, transformers (toupper(), val(), ...), fields the sensor
 *              cannot provide (proc.duration, fd.nameraw, thread.cap_*, ...)
 *
 * Lifetime and threads: a ruleset is built by one thread and is immutable
 * afterwards; kx_ruleset_match(), kx_rule_alert() and the analyses may run
 * concurrently from any number of threads. struct kx_rule pointers are
 * borrowed from the ruleset and valid until kx_ruleset_free().
 */
#ifndef KX_SENSOR_RULESET_H
#define KX_SENSOR_RULESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "alert.h"
#include "config.h"
#include "event.h"
#include "sevent.h"

struct kx_ruleset;
struct kx_rule;

/* kx_ruleset_load flags */
#define KX_RULES_LENIENT                                                                           \
    0x1u /* a rule using an unknown field or an unsupported construct is                           \
          * skipped and reported instead of failing the load (for                                  \
          * Falco's own rule files) */

/*
 * Loads the rule files paths[0..n) in order (later files extend and override
 * earlier ones) and compiles them. On success *out owns the ruleset (free
 * with kx_ruleset_free) and 0 is returned; on failure *out is NULL, every
 * error is in d as "file:line:col: message", and -EINVAL (bad rules),
 * -ENOENT/-EACCES/... (unreadable file) or -ENOMEM is returned. Skipped
 * rules and warnings are not errors: see kx_ruleset_notes(). All arguments
 * borrowed.
 */
int kx_ruleset_load(const char *const *paths, size_t n, unsigned flags, struct kx_ruleset **out,
                    struct kx_diag *d);
/* The same from one in-memory YAML document; name is used in messages. */
int kx_ruleset_load_string(const char *name, const char *yaml, unsigned flags,
                           struct kx_ruleset **out, struct kx_diag *d);
void kx_ruleset_free(struct kx_ruleset *rs); /* no-op if NULL */

/* Number of enabled rules loaded (the ones kx_ruleset_match can return). */
size_t kx_ruleset_count(const struct kx_ruleset *rs);
/* Rule i (0 <= i < count) in load order, or NULL; i is also the id used in
 * struct kx_kill_rule. Borrowed. */
const struct kx_rule *kx_ruleset_rule(const struct kx_ruleset *rs, size_t i);
/* A loaded rule by name, or NULL. Borrowed. */
const struct kx_rule *kx_ruleset_find(const struct kx_ruleset *rs, const char *name);

/*
 * Evaluates the rules that can match ev->kind (others are never visited) and
 * writes up to max matching rules (borrowed) to out, in load order. Returns
 * how many matched. Never allocates; thread-safe. ev is borrowed.
 */
size_t kx_ruleset_match(const struct kx_ruleset *rs, const struct kx_sevent *ev,
                        const struct kx_rule **out, size_t max);

/*
 * The alert for rule r matching ev, in Falco's JSON shape: time from
 * ev->time_ns (0 = now), hostname ev->hostname, source "syscall", the rule's
 * tags, output "HH:MM:SS.nnnnnnnnn: <Priority> <rule output>" with %fields
 * substituted (absent values print <NA>), and output_fields holding every
 * field the output names plus evt.time, evt.type, proc.pid, proc.ppid,
 * proc.name, proc.exepath, proc.cmdline, proc.start_ns, user.uid, user.name,
 * container.id, container.full_id (in a container) and
 * k8s.ns.name/k8s.pod.name/k8s.pod.uid (when known); numbers and booleans
 * are JSON numbers and booleans, absent values null. A kill rule adds
 * "klaxon.action": "kill" and "klaxon.killed": (ev->flags & KX_F_KILLED).
 * Caller owns the result; NULL and errno on failure.
 */
struct kx_alert *kx_rule_alert(const struct kx_rule *r, const struct kx_sevent *ev);

const char *kx_rule_name(const struct kx_rule *r); /* borrowed */
const char *kx_rule_desc(const struct kx_rule *r); /* borrowed; "" when none */
enum kx_priority kx_rule_priority(const struct kx_rule *r);
bool kx_rule_kills(const struct kx_rule *r); /* action: kill */
size_t kx_rule_index(const struct kx_rule *r);

/* ---- analyses for the kernel prefilters ------------------------------------ */

/* kinds[k] = some enabled rule may match kind k (evt.type analysis). */
void kx_ruleset_kinds(const struct kx_ruleset *rs, bool kinds[KX_K_MAX]);

/*
 * Which opens (OPEN, OPENAT, OPENAT2) the rules can match, for the kernel's
 * open filter: per class (read-only opens, write opens as KX_F_OPEN_WRITE
 * defines them) either everything (cfg->read_all / write_all) or a list of
 * path prefixes (NUL-terminated, cfg->n_read / n_write of them, at most
 * KX_PREFIX_MAX) such that no rule can match an open of that class whose
 * fd.name starts with none of them. Conservative: never filters an open some
 * rule could match. read and write are caller-owned arrays of KX_PREFIX_MAX
 * entries. Returns 0.
 */
int kx_ruleset_open_filter(const struct kx_ruleset *rs, struct kx_open_cfg *cfg,
                           char (*read)[KX_PREFIX_LEN], char (*write)[KX_PREFIX_LEN]);

/*
 * The in-kernel form of the enabled rules with "action: kill": each must be
 * a conjunction the kernel decides exactly at exec (evt.type = execve /
 * in (execve, execveat), evt.dir = <, container.id != host, proc.name =/in,
 * proc.exepath (or proc.exe with a full path) =/in/startswith/pmatch).
 * Writes up to max rules to out and their count to *n. 0, or -EINVAL with
 * one error per offending rule in d ("file:line:col: rule X: the kernel
 * cannot decide 'fd.name startswith /tmp'") or when limits (KX_KILL_*) are
 * exceeded. d may be NULL.
 */
int kx_ruleset_kill_rules(const struct kx_ruleset *rs, struct kx_kill_rule *out, size_t max,
                          size_t *n, struct kx_diag *d);

/* ---- load report -------------------------------------------------------------- */

enum kx_rule_note_kind {
    KX_NOTE_SKIPPED,  /* not loaded: unsupported field/construct/source */
    KX_NOTE_DISABLED, /* enabled: false */
    KX_NOTE_WARNING,  /* loaded, with a caveat (no evt.type, never matches, ...) */
};

struct kx_rule_note {
    enum kx_rule_note_kind kind;
    const char *file; /* where the rule was defined */
    const char *rule; /* rule name */
    const char *msg;  /* reason, with file:line:col when known */
};

/* The notes of the last load, in rule order; borrowed, *n gets the count. */
const struct kx_rule_note *kx_ruleset_notes(const struct kx_ruleset *rs, size_t *n);

/*
 * --check-rules: loads paths leniently and prints, per file, which rules
 * loaded, which were skipped and why, which are disabled, and warnings;
 * then any errors. Returns 0 when every file parsed and compiled (skips are
 * reported, not fatal), 1 on a hard error.
 */
int kx_ruleset_check_files(const char *const *paths, size_t n, FILE *out);

/*
 * Formats a raw /proc/<pid>/cmdline (NUL-separated argv, len bytes) the way
 * Falco shows proc.cmdline: the process name, then argv[1..] separated by
 * spaces. Non-printable bytes become '.'; at most outlen-1 bytes are
 * written, ending in "..." when cut. name may be NULL (argv[0] is used).
 */
void kx_ruleset_format_cmdline(const char *name, const char *raw, size_t len, char *out,
                               size_t outlen);

#endif
