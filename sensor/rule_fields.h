/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule_fields.h - private to the rule engine (ruleset.c, rule_expr.c,
 * rule_output.c): the table of Falco field names the engine understands,
 * each with a type and an extractor over struct kx_sevent.
 *
 * A field reference is resolved once, at load time, into a struct kx_fref
 * (id + argument); extraction is a switch on the id that never allocates:
 * strings are returned as (pointer, length) views into the event, and the
 * few values that must be built (k8s.pod.labels entries) go into a caller
 * supplied scratch buffer.
 *
 * Absent values: strings that are NULL in the event, ancestors that are not
 * known, ports of -1, a typechar of 0. Falco prints them "<NA>"; every
 * comparison on an absent value is false (only "exists" tests presence).
 */
#ifndef KX_SENSOR_RULE_FIELDS_H
#define KX_SENSOR_RULE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sevent.h"

struct kx_arena;

enum kx_ftype {
    KX_FT_STR,
    KX_FT_INT,
    KX_FT_BOOL,
};

/* Field ids; several names may map to one id (aliases). */
enum kx_fid {
    KX_FLD_EVT_TYPE,
    KX_FLD_EVT_DIR,
    KX_FLD_EVT_TIME, /* ns since the epoch; printed HH:MM:SS.nnnnnnnnn */
    KX_FLD_EVT_RAWTIME,
    KX_FLD_EVT_NUM,
    KX_FLD_EVT_RAWRES,
    KX_FLD_EVT_RES,
    KX_FLD_EVT_FAILED,
    KX_FLD_EVT_IS_OPEN_READ,
    KX_FLD_EVT_IS_OPEN_WRITE,
    KX_FLD_EVT_IS_OPEN_EXEC,
    KX_FLD_EVT_IS_OPEN_CREATE,
    KX_FLD_EVT_ARG, /* evt.arg.<name>, evt.arg[<name>] or evt.arg[N] */
    KX_FLD_EVT_HOSTNAME,
    KX_FLD_PROC_PID,
    KX_FLD_PROC_TID,
    KX_FLD_PROC_PPID,
    KX_FLD_PROC_START_NS,
    KX_FLD_PROC_NAME,
    KX_FLD_PROC_EXE,
    KX_FLD_PROC_EXEPATH,
    KX_FLD_PROC_ARGS,
    KX_FLD_PROC_CMDLINE,
    KX_FLD_PROC_CWD,
    KX_FLD_PROC_TTY,
    KX_FLD_PROC_EXE_UPPER,
    KX_FLD_PROC_EXE_MEMFD,
    KX_FLD_PROC_EXE_WRITABLE,
    KX_FLD_PROC_PNAME,
    KX_FLD_PROC_PEXE,
    KX_FLD_PROC_PEXEPATH,
    KX_FLD_PROC_PCMDLINE,
    KX_FLD_PROC_ANAME, /* [N]: 0 = the process itself, 1 = parent; no index = any ancestor */
    KX_FLD_PROC_APID,
    KX_FLD_PROC_AEXE,
    KX_FLD_PROC_AEXEPATH,
    KX_FLD_PROC_ACMDLINE,
    KX_FLD_USER_UID,
    KX_FLD_USER_NAME,
    KX_FLD_USER_LOGINUID,
    KX_FLD_GROUP_GID,
    KX_FLD_GROUP_NAME,
    KX_FLD_FD_NAME,
    KX_FLD_FD_DIRECTORY,
    KX_FLD_FD_FILENAME,
    KX_FLD_FD_TYPECHAR,
    KX_FLD_FD_TYPE,
    KX_FLD_FD_NUM,
    KX_FLD_FD_SIP,
    KX_FLD_FD_SPORT,
    KX_FLD_FD_CIP,
    KX_FLD_FD_CPORT,
    KX_FLD_FD_LIP,
    KX_FLD_FD_LPORT,
    KX_FLD_FD_RIP,
    KX_FLD_FD_RPORT,
    KX_FLD_FD_L4PROTO,
    KX_FLD_FD_IP,   /* client or server ip (any of) */
    KX_FLD_FD_PORT, /* client or server port (any of) */
    KX_FLD_CONTAINER_ID,
    KX_FLD_CONTAINER_FULL_ID,
    KX_FLD_CONTAINER_NAME,
    KX_FLD_CONTAINER_TYPE,
    KX_FLD_CONTAINER_IMAGE, /* container.image*: no image metadata yet, always absent */
    KX_FLD_K8S_NS_NAME,
    KX_FLD_K8S_POD_NAME,
    KX_FLD_K8S_POD_UID,
    KX_FLD_K8S_POD_LABEL,  /* k8s.pod.label[key] / k8s.pod.label.key */
    KX_FLD_K8S_POD_LABELS, /* every "key:value" (any of) */
    KX_FLD_COUNT
};

/* kx_fref.flags / field table flags */
#define KX_FLF_INDEX 0x01u  /* takes [N] */
#define KX_FLF_KEY 0x02u    /* takes [key] or .key */
#define KX_FLF_ARGREQ 0x04u /* the argument is required */
#define KX_FLF_ANY 0x08u    /* no index: true when any ancestor matches */
#define KX_FLF_ABSENT 0x10u /* the sensor never has a value (load warning) */
#define KX_FLF_NUMSTR 0x20u /* string that compares numerically when both sides parse */
#define KX_FLF_MULTI 0x40u  /* resolved reference yields several values */

/* kx_fref.acc: how kx_field_get reads the value. Plain struct members are
 * read at an offset without going through the per-field switch. */
enum kx_facc {
    KX_ACC_SWITCH,    /* per-field code */
    KX_ACC_EV_STR,    /* const char * member of struct kx_sevent */
    KX_ACC_PROC_STR,  /* const char * member of struct kx_sproc (ev->proc) */
    KX_ACC_PROC_I64,  /* int64_t member of ev->proc */
    KX_ACC_PROC_BOOL, /* bool member of ev->proc */
};

/* A resolved field reference. Strings live in the ruleset's arena. */
struct kx_fref {
    uint16_t id;     /* enum kx_fid */
    uint8_t type;    /* enum kx_ftype */
    uint8_t flags;   /* KX_FLF_* of the resolved reference */
    uint8_t acc;     /* enum kx_facc */
    uint16_t off;    /* member offset for the direct accesses */
    int32_t idx;     /* [N], or -1 */
    const char *key; /* evt.arg name / label key, or NULL */
    uint32_t key_len;
    const char *name; /* the reference as written, e.g. "proc.aname[2]" */
};

/* One extracted value. Strings are views: s[0..len), not always NUL-ended. */
struct kx_fval {
    const char *s;
    size_t len;
    int64_t i;
    bool b;
};

#define KX_FIELD_BUF 512 /* scratch bytes kx_field_get may need */

/*
 * Resolves the field text s[0..n) ("proc.name", "proc.aname[2]",
 * "evt.arg.flags", "k8s.pod.label[app]") into f; f->name is copied into
 * arena a. Returns 0; -ENOENT for an unknown field, with a message in err
 * ("unknown field proc.nmae (did you mean proc.name?)"); -EINVAL for a bad
 * argument. -ENOMEM when the arena is exhausted.
 */
int kx_field_resolve(const char *s, size_t n, struct kx_arena *a, struct kx_fref *f, char *err,
                     size_t errlen);

/*
 * The i-th value of f in ev (i > 0 only for KX_FLF_MULTI references).
 * Returns true and fills v when present. buf has KX_FIELD_BUF bytes and
 * may back v->s until the next call with the same buf. Never allocates.
 */
bool kx_field_get(const struct kx_fref *f, const struct kx_sevent *ev, size_t i, struct kx_fval *v,
                  char *buf);

/* Sets f->acc/off from f->id (kx_field_resolve does it; for hand-built refs). */
void kx_field_direct(struct kx_fref *f);

/* How many values f has in ev: 1, or for KX_FLF_MULTI references the
 * number of indexes to try with kx_field_get (some may be absent). */
size_t kx_field_nvalues(const struct kx_fref *f, const struct kx_sevent *ev);

/* Field table, for --help style listings: name of entry i, or NULL past the end. */
const char *kx_field_name_at(size_t i);

#endif
