/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules.h - the sensor's detection rules and the Falco-compatible alerts
 * they produce.
 *
 * Today: one built-in rule, "Terminal shell in container". A rule is a
 * name, a Falco priority, tags, a match function over a kx_proc_event (the
 * user-space view of a kernel event, with Falco's field names) and an output
 * format. Later issues replace the match functions with a compiled subset of
 * Falco's rule language; kx_proc_event and kx_rules_alert() are the seam
 * that stays.
 *
 * Evaluation is split in two so the hot path stays cheap: kx_rules_match()
 * needs only the fields the kernel sent plus the container attribution;
 * fields that cost a /proc read or an NSS lookup (cmdline, user name) are
 * filled by the caller only for matched rules, before kx_rules_alert().
 */
#ifndef KX_SENSOR_RULES_H
#define KX_SENSOR_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "cgroup.h"

/* One process event, all strings borrowed from the caller. Falco field
 * names in the comments. */
struct kx_proc_event {
    const char *evt_type;           /* evt.type: "execve" */
    int64_t time_ns;                /* evt.time, CLOCK_REALTIME ns; 0 = now */
    const char *name;               /* proc.name (comm, may be truncated at 15) */
    const char *exepath;            /* proc.exepath */
    const char *cmdline;            /* proc.cmdline ("sh -c true"); NULL = unknown */
    int64_t pid;                    /* proc.pid */
    int64_t ppid;                   /* proc.ppid */
    const char *pname;              /* proc.pname */
    int64_t uid;                    /* user.uid */
    const char *user_name;          /* user.name; NULL = unknown */
    const struct kx_container *ctr; /* container.*, k8s.pod.uid; NULL = host */
};

struct kx_rule {
    const char *name; /* "Terminal shell in container" */
    const char *desc; /* one line, for --help/docs */
    enum kx_priority priority;
    const char *source;      /* "syscall" */
    const char *const *tags; /* NULL-terminated */
    bool (*match)(const struct kx_proc_event *ev);
    const char *message; /* text before the " (field=..)" list */
};

/* The built-in rules (static storage, borrowed); *n gets their count. */
const struct kx_rule *kx_rules_builtin(size_t *n);

/* Falco's shell_binaries list: ash, bash, csh, ksh, sh, tcsh, zsh, dash, fish. */
bool kx_rules_is_shell(const char *name);

/* True when the event runs inside a container (a container id was found). */
bool kx_rules_in_container(const struct kx_proc_event *ev);

/*
 * Writes up to max matching rules (borrowed) into out, in table order, and
 * returns how many matched. ev is borrowed.
 */
size_t kx_rules_match(const struct kx_proc_event *ev, const struct kx_rule **out, size_t max);

/*
 * Builds the alert for a matched rule: Falco's JSON shape, with an "output"
 * line "HH:MM:SS.nnnnnnnnn: <Priority> <message> (evt_type=.. user=.. ...)"
 * and output_fields evt.type, proc.name, proc.exepath, proc.cmdline,
 * proc.pid, proc.ppid, proc.pname, user.uid, user.name, container.id,
 * container.full_id and k8s.pod.uid (when known). hostname is the node name.
 * All arguments borrowed. Caller owns the result; NULL + errno on failure.
 */
struct kx_alert *kx_rules_alert(const struct kx_rule *r, const struct kx_proc_event *ev,
                                const char *hostname);

/*
 * Formats a raw /proc/<pid>/cmdline (NUL-separated argv, len bytes) the way
 * Falco shows proc.cmdline: the process name, then argv[1..] separated by
 * spaces. Non-printable bytes become '.'; at most outlen-1 bytes are
 * written, ending in "..." when cut. name may be NULL (argv[0] is used).
 */
void kx_rules_format_cmdline(const char *name, const char *raw, size_t len, char *out,
                             size_t outlen);

#endif
