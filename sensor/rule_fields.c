/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule_fields.c - the Falco field names the rule engine understands and how
 * each is read from a struct kx_sevent (see rule_fields.h).
 *
 * The mapping follows Falco's semantics where the event has the data:
 * proc.pname is the parent's name, proc.aname[N] the N-th ancestor (0 = the
 * process itself), fd.directory / fd.filename split fd.name, evt.arg.<name>
 * looks the argument up by name. Fields Falco has but the sensor cannot
 * provide are "unknown" here, so rules using them are reported instead of
 * silently never matching - with one deliberate exception: container.image*
 * (no image metadata yet) resolves and is always absent, because Falco's own
 * rules use it only in exclusions ("and not container.image.repository in
 * (...)"), where absent keeps the rule firing; the load reports a warning.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rule_expr.h"
#include "rule_fields.h"
#include "util.h"

struct kx_fdesc {
    const char *name;
    uint16_t id;
    uint8_t type;
    uint8_t flags;
};

#define S KX_FT_STR
#define I KX_FT_INT
#define B KX_FT_BOOL

static const struct kx_fdesc kx_fields[] = {
    {"evt.type", KX_FLD_EVT_TYPE, S, 0},
    {"evt.dir", KX_FLD_EVT_DIR, S, 0},
    {"evt.time", KX_FLD_EVT_TIME, I, 0},
    {"evt.rawtime", KX_FLD_EVT_RAWTIME, I, 0},
    {"evt.num", KX_FLD_EVT_NUM, I, 0},
    {"evt.rawres", KX_FLD_EVT_RAWRES, I, 0},
    {"evt.res", KX_FLD_EVT_RES, S, 0},
    {"evt.failed", KX_FLD_EVT_FAILED, B, 0},
    {"evt.is_open_read", KX_FLD_EVT_IS_OPEN_READ, B, 0},
    {"evt.is_open_write", KX_FLD_EVT_IS_OPEN_WRITE, B, 0},
    {"evt.is_open_exec", KX_FLD_EVT_IS_OPEN_EXEC, B, 0},
    {"evt.is_open_create", KX_FLD_EVT_IS_OPEN_CREATE, B, 0},
    {"evt.arg", KX_FLD_EVT_ARG, S, KX_FLF_INDEX | KX_FLF_KEY | KX_FLF_ARGREQ | KX_FLF_NUMSTR},
    {"evt.hostname", KX_FLD_EVT_HOSTNAME, S, 0},
    {"proc.pid", KX_FLD_PROC_PID, I, 0},
    {"proc.tid", KX_FLD_PROC_TID, I, 0},
    {"thread.tid", KX_FLD_PROC_TID, I, 0},
    {"proc.ppid", KX_FLD_PROC_PPID, I, 0},
    {"proc.start_ns", KX_FLD_PROC_START_NS, I, 0},
    {"proc.name", KX_FLD_PROC_NAME, S, 0},
    {"proc.exe", KX_FLD_PROC_EXE, S, 0},
    {"proc.exepath", KX_FLD_PROC_EXEPATH, S, 0},
    {"proc.args", KX_FLD_PROC_ARGS, S, 0},
    {"proc.cmdline", KX_FLD_PROC_CMDLINE, S, 0},
    {"proc.cwd", KX_FLD_PROC_CWD, S, 0},
    {"proc.tty", KX_FLD_PROC_TTY, I, 0},
    {"proc.is_exe_upper_layer", KX_FLD_PROC_EXE_UPPER, B, 0},
    {"proc.is_exe_from_memfd", KX_FLD_PROC_EXE_MEMFD, B, 0},
    {"proc.is_exe_writable", KX_FLD_PROC_EXE_WRITABLE, B, 0},
    {"proc.pname", KX_FLD_PROC_PNAME, S, 0},
    {"proc.pexe", KX_FLD_PROC_PEXE, S, 0},
    {"proc.pexepath", KX_FLD_PROC_PEXEPATH, S, 0},
    {"proc.pcmdline", KX_FLD_PROC_PCMDLINE, S, 0},
    {"proc.aname", KX_FLD_PROC_ANAME, S, KX_FLF_INDEX | KX_FLF_ANY},
    {"proc.apid", KX_FLD_PROC_APID, I, KX_FLF_INDEX | KX_FLF_ANY},
    {"proc.aexe", KX_FLD_PROC_AEXE, S, KX_FLF_INDEX | KX_FLF_ANY},
    {"proc.aexepath", KX_FLD_PROC_AEXEPATH, S, KX_FLF_INDEX | KX_FLF_ANY},
    {"proc.acmdline", KX_FLD_PROC_ACMDLINE, S, KX_FLF_INDEX | KX_FLF_ANY},
    {"user.uid", KX_FLD_USER_UID, I, 0},
    {"user.name", KX_FLD_USER_NAME, S, 0},
    {"user.loginuid", KX_FLD_USER_LOGINUID, I, 0},
    {"group.gid", KX_FLD_GROUP_GID, I, 0},
    {"group.name", KX_FLD_GROUP_NAME, S, 0},
    {"fd.name", KX_FLD_FD_NAME, S, 0},
    {"fd.directory", KX_FLD_FD_DIRECTORY, S, 0},
    {"fd.filename", KX_FLD_FD_FILENAME, S, 0},
    {"fd.typechar", KX_FLD_FD_TYPECHAR, S, 0},
    {"fd.type", KX_FLD_FD_TYPE, S, 0},
    {"fd.num", KX_FLD_FD_NUM, I, 0},
    {"fd.sip", KX_FLD_FD_SIP, S, 0},
    {"fd.sip.name", KX_FLD_FD_SIP, S, 0},
    {"fd.sport", KX_FLD_FD_SPORT, I, 0},
    {"fd.cip", KX_FLD_FD_CIP, S, 0},
    {"fd.cip.name", KX_FLD_FD_CIP, S, 0},
    {"fd.cport", KX_FLD_FD_CPORT, I, 0},
    {"fd.lip", KX_FLD_FD_LIP, S, 0},
    {"fd.lip.name", KX_FLD_FD_LIP, S, 0},
    {"fd.lport", KX_FLD_FD_LPORT, I, 0},
    {"fd.rip", KX_FLD_FD_RIP, S, 0},
    {"fd.rip.name", KX_FLD_FD_RIP, S, 0},
    {"fd.rport", KX_FLD_FD_RPORT, I, 0},
    {"fd.l4proto", KX_FLD_FD_L4PROTO, S, 0},
    {"fd.ip", KX_FLD_FD_IP, S, KX_FLF_MULTI},
    {"fd.port", KX_FLD_FD_PORT, I, KX_FLF_MULTI},
    {"container.id", KX_FLD_CONTAINER_ID, S, 0},
    {"container.full_id", KX_FLD_CONTAINER_FULL_ID, S, 0},
    {"container.name", KX_FLD_CONTAINER_NAME, S, 0},
    {"container.type", KX_FLD_CONTAINER_TYPE, S, 0},
    {"container.image", KX_FLD_CONTAINER_IMAGE, S, KX_FLF_ABSENT},
    {"container.image.repository", KX_FLD_CONTAINER_IMAGE, S, KX_FLF_ABSENT},
    {"container.image.tag", KX_FLD_CONTAINER_IMAGE, S, KX_FLF_ABSENT},
    {"container.image.id", KX_FLD_CONTAINER_IMAGE, S, KX_FLF_ABSENT},
    {"container.image.digest", KX_FLD_CONTAINER_IMAGE, S, KX_FLF_ABSENT},
    {"k8s.ns.name", KX_FLD_K8S_NS_NAME, S, 0},
    {"k8s.pod.name", KX_FLD_K8S_POD_NAME, S, 0},
    {"k8s.pod.uid", KX_FLD_K8S_POD_UID, S, 0},
    {"k8s.pod.id", KX_FLD_K8S_POD_UID, S, 0},
    {"k8s.pod.label", KX_FLD_K8S_POD_LABEL, S, KX_FLF_KEY | KX_FLF_ARGREQ},
    {"k8s.pod.labels", KX_FLD_K8S_POD_LABELS, S, KX_FLF_MULTI},
};

#undef S
#undef I
#undef B

const char *kx_field_name_at(size_t i)
{
    return i < KX_ARRAY_SIZE(kx_fields) ? kx_fields[i].name : NULL;
}

static const struct kx_fdesc *field_find(const char *s, size_t n)
{
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_fields); i++)
        if (strlen(kx_fields[i].name) == n && memcmp(kx_fields[i].name, s, n) == 0)
            return &kx_fields[i];
    return NULL;
}

/* Levenshtein distance, for "did you mean"; inputs are short field names. */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[80], prev, tmp;

    if (na >= KX_ARRAY_SIZE(row) || nb >= KX_ARRAY_SIZE(row))
        return (size_t)-1;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            tmp = row[j];
            row[j] = best;
            prev = tmp;
        }
    }
    return row[nb];
}

static void unknown_field(const char *s, size_t n, char *err, size_t errlen)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;

    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_fields); i++) {
        const char *name = kx_fields[i].name;
        size_t d = edit_distance(s, n, name, strlen(name));
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    if (best && best_d <= 2 && best_d < n / 2)
        snprintf(err, errlen, "unknown field %.*s (did you mean %s?)", (int)(n > 200 ? 200 : n), s,
                 best);
    else
        snprintf(err, errlen, "unknown field %.*s (not supported by klaxon-sensor)",
                 (int)(n > 200 ? 200 : n), s);
}

static bool parse_index(const char *s, size_t n, int32_t *out)
{
    long v;

    if (!kx_small_uint(s, n, &v))
        return false;
    *out = (int32_t)v;
    return true;
}

void kx_field_direct(struct kx_fref *f)
{
    static const struct {
        uint16_t id;
        uint8_t acc;
        uint16_t off;
    } direct[] = {
        {KX_FLD_EVT_TYPE, KX_ACC_EV_STR, offsetof(struct kx_sevent, type)},
        {KX_FLD_EVT_RES, KX_ACC_EV_STR, offsetof(struct kx_sevent, res_str)},
        {KX_FLD_EVT_HOSTNAME, KX_ACC_EV_STR, offsetof(struct kx_sevent, hostname)},
        {KX_FLD_FD_NAME, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_name)},
        {KX_FLD_FD_TYPE, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_type)},
        {KX_FLD_FD_SIP, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_sip)},
        {KX_FLD_FD_CIP, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_cip)},
        {KX_FLD_FD_LIP, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_lip)},
        {KX_FLD_FD_RIP, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_rip)},
        {KX_FLD_FD_L4PROTO, KX_ACC_EV_STR, offsetof(struct kx_sevent, fd_l4proto)},
        {KX_FLD_CONTAINER_ID, KX_ACC_EV_STR, offsetof(struct kx_sevent, container_id)},
        {KX_FLD_CONTAINER_FULL_ID, KX_ACC_EV_STR, offsetof(struct kx_sevent, container_full_id)},
        {KX_FLD_CONTAINER_NAME, KX_ACC_EV_STR, offsetof(struct kx_sevent, container_name)},
        {KX_FLD_K8S_NS_NAME, KX_ACC_EV_STR, offsetof(struct kx_sevent, pod.ns)},
        {KX_FLD_K8S_POD_NAME, KX_ACC_EV_STR, offsetof(struct kx_sevent, pod.name)},
        {KX_FLD_K8S_POD_UID, KX_ACC_EV_STR, offsetof(struct kx_sevent, pod.uid)},
        {KX_FLD_PROC_NAME, KX_ACC_PROC_STR, offsetof(struct kx_sproc, name)},
        {KX_FLD_PROC_EXE, KX_ACC_PROC_STR, offsetof(struct kx_sproc, exe)},
        {KX_FLD_PROC_EXEPATH, KX_ACC_PROC_STR, offsetof(struct kx_sproc, exepath)},
        {KX_FLD_PROC_ARGS, KX_ACC_PROC_STR, offsetof(struct kx_sproc, args)},
        {KX_FLD_PROC_CMDLINE, KX_ACC_PROC_STR, offsetof(struct kx_sproc, cmdline)},
        {KX_FLD_PROC_CWD, KX_ACC_PROC_STR, offsetof(struct kx_sproc, cwd)},
        {KX_FLD_USER_NAME, KX_ACC_PROC_STR, offsetof(struct kx_sproc, user)},
        {KX_FLD_GROUP_NAME, KX_ACC_PROC_STR, offsetof(struct kx_sproc, group)},
        {KX_FLD_PROC_PID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, pid)},
        {KX_FLD_PROC_TID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, tid)},
        {KX_FLD_PROC_PPID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, ppid)},
        {KX_FLD_PROC_START_NS, KX_ACC_PROC_I64, offsetof(struct kx_sproc, start_ns)},
        {KX_FLD_PROC_TTY, KX_ACC_PROC_I64, offsetof(struct kx_sproc, tty)},
        {KX_FLD_USER_UID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, uid)},
        {KX_FLD_USER_LOGINUID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, loginuid)},
        {KX_FLD_GROUP_GID, KX_ACC_PROC_I64, offsetof(struct kx_sproc, gid)},
        {KX_FLD_PROC_EXE_UPPER, KX_ACC_PROC_BOOL, offsetof(struct kx_sproc, exe_upper_layer)},
        {KX_FLD_PROC_EXE_MEMFD, KX_ACC_PROC_BOOL, offsetof(struct kx_sproc, exe_from_memfd)},
        {KX_FLD_PROC_EXE_WRITABLE, KX_ACC_PROC_BOOL, offsetof(struct kx_sproc, exe_writable)},
    };

    f->acc = KX_ACC_SWITCH;
    f->off = 0;
    for (size_t i = 0; i < KX_ARRAY_SIZE(direct); i++)
        if (direct[i].id == f->id) {
            f->acc = direct[i].acc;
            f->off = direct[i].off;
            return;
        }
}

int kx_field_resolve(const char *s, size_t n, struct kx_arena *a, struct kx_fref *f, char *err,
                     size_t errlen)
{
    const struct kx_fdesc *d = NULL;
    const char *arg = NULL;
    size_t argn = 0;

    memset(f, 0, sizeof(*f));
    f->idx = -1;
    if (n == 0) {
        snprintf(err, errlen, "empty field name");
        return -EINVAL;
    }
    const char *lb = memchr(s, '[', n);
    if (lb) {
        if (s[n - 1] != ']') {
            snprintf(err, errlen, "field %.*s: argument must end with ']'",
                     (int)(n > 200 ? 200 : n), s);
            return -EINVAL;
        }
        d = field_find(s, (size_t)(lb - s));
        arg = lb + 1;
        argn = n - (size_t)(lb - s) - 2;
        if (!d) {
            unknown_field(s, (size_t)(lb - s), err, errlen);
            return -ENOENT;
        }
        if (!(d->flags & (KX_FLF_INDEX | KX_FLF_KEY))) {
            snprintf(err, errlen, "field %s takes no argument", d->name);
            return -EINVAL;
        }
    } else {
        d = field_find(s, n);
        if (!d) {
            /* "evt.arg.flags", "k8s.pod.label.app": the longest keyed field
             * name followed by '.' */
            size_t best = 0;
            for (size_t i = 0; i < KX_ARRAY_SIZE(kx_fields); i++) {
                size_t l = strlen(kx_fields[i].name);
                if ((kx_fields[i].flags & KX_FLF_KEY) && l + 1 < n && l > best &&
                    memcmp(kx_fields[i].name, s, l) == 0 && s[l] == '.') {
                    d = &kx_fields[i];
                    best = l;
                }
            }
            if (!d) {
                unknown_field(s, n, err, errlen);
                return -ENOENT;
            }
            arg = s + best + 1;
            argn = n - best - 1;
        }
    }

    f->id = d->id;
    f->type = d->type;
    f->flags = d->flags & (KX_FLF_ABSENT | KX_FLF_NUMSTR | KX_FLF_MULTI);
    if (arg) {
        if (argn == 0 || argn > 256 || memchr(arg, '[', argn) || memchr(arg, ']', argn)) {
            snprintf(err, errlen, "field %s: bad argument", d->name);
            return -EINVAL;
        }
        int32_t idx;
        if ((d->flags & KX_FLF_INDEX) && parse_index(arg, argn, &idx)) {
            f->idx = idx;
        } else if (d->flags & KX_FLF_KEY) {
            f->key = kx_arena_strndup(a, arg, argn);
            if (!f->key)
                return -ENOMEM;
            f->key_len = (uint32_t)argn;
        } else {
            snprintf(err, errlen, "field %s: argument must be a number, not \"%.*s\"", d->name,
                     (int)argn, arg);
            return -EINVAL;
        }
    } else if (d->flags & KX_FLF_ARGREQ) {
        snprintf(err, errlen, "field %s needs an argument (%s.<name> or %s[...])", d->name, d->name,
                 d->name);
        return -EINVAL;
    } else if (d->flags & KX_FLF_ANY) {
        f->flags |= KX_FLF_ANY | KX_FLF_MULTI; /* proc.aname: any ancestor */
    }
    kx_field_direct(f);
    f->name = kx_arena_strndup(a, s, n);
    return f->name ? 0 : -ENOMEM;
}

/* ---- extraction ------------------------------------------------------------ */

static inline bool put_str(struct kx_fval *v, const char *s)
{
    if (!s)
        return false;
    v->s = s;
    v->len = strlen(s);
    return true;
}

static inline bool put_int(struct kx_fval *v, int64_t i)
{
    v->i = i;
    return true;
}

static inline bool put_bool(struct kx_fval *v, bool b)
{
    v->b = b;
    v->i = b;
    return true;
}

/* Process n levels up: 0 = the event's own, 1 = parent, ... */
static const struct kx_sproc *ancestor(const struct kx_sevent *ev, int64_t n)
{
    if (n == 0)
        return &ev->proc;
    if (n < 0 || (size_t)n > ev->n_anc || n > KX_SEV_ANCESTORS)
        return NULL;
    return ev->anc[n - 1];
}

/* The last '/' of an absolute file path, or NULL (sockets, relative). */
static const char *path_slash(const struct kx_sevent *ev)
{
    const char *p = ev->fd_name;

    if (!p || p[0] != '/' || (ev->fd_typechar && ev->fd_typechar != 'f' && ev->fd_typechar != 'd'))
        return NULL;
    return strrchr(p, '/');
}

static bool proc_field(enum kx_fid id, const struct kx_sproc *p, struct kx_fval *v)
{
    if (!p)
        return false;
    switch (id) {
    case KX_FLD_PROC_ANAME:
        return put_str(v, p->name);
    case KX_FLD_PROC_APID:
        return put_int(v, p->pid);
    case KX_FLD_PROC_AEXE:
        return put_str(v, p->exe);
    case KX_FLD_PROC_AEXEPATH:
        return put_str(v, p->exepath);
    case KX_FLD_PROC_ACMDLINE:
        return put_str(v, p->cmdline);
    default:
        return false;
    }
}

static const struct kx_sarg *find_arg(const struct kx_fref *f, const struct kx_sevent *ev)
{
    size_t n = ev->n_args < KX_SEV_ARGS ? ev->n_args : KX_SEV_ARGS;

    if (f->key) {
        for (size_t i = 0; i < n; i++)
            if (ev->args[i].name && strncmp(ev->args[i].name, f->key, f->key_len) == 0 &&
                ev->args[i].name[f->key_len] == '\0')
                return &ev->args[i];
        return NULL;
    }
    return f->idx >= 0 && (size_t)f->idx < n ? &ev->args[f->idx] : NULL;
}

size_t kx_field_nvalues(const struct kx_fref *f, const struct kx_sevent *ev)
{
    if (!(f->flags & KX_FLF_MULTI))
        return 1;
    switch (f->id) {
    case KX_FLD_FD_IP:
    case KX_FLD_FD_PORT:
        return 2;
    case KX_FLD_K8S_POD_LABELS:
        return ev->pod.label_k && ev->pod.label_v ? ev->pod.n_labels : 0;
    default: /* any ancestor */
        return ev->n_anc < KX_SEV_ANCESTORS ? ev->n_anc : KX_SEV_ANCESTORS;
    }
}

bool kx_field_get(const struct kx_fref *f, const struct kx_sevent *ev, size_t i, struct kx_fval *v,
                  char *buf)
{
    const struct kx_sproc *p = &ev->proc;
    const char *slash;

    /* the common case first, without the switch's indirect jump */
    if (f->acc == KX_ACC_PROC_STR)
        return put_str(v, *(const char *const *)((const char *)p + f->off));
    if (f->acc == KX_ACC_EV_STR)
        return put_str(v, *(const char *const *)((const char *)ev + f->off));
    if (f->acc == KX_ACC_PROC_I64)
        return put_int(v, *(const int64_t *)((const char *)p + f->off));
    if (f->acc == KX_ACC_PROC_BOOL)
        return put_bool(v, *(const bool *)((const char *)p + f->off));

    switch ((enum kx_fid)f->id) {
    case KX_FLD_EVT_TYPE:
        return put_str(v, ev->type);
    case KX_FLD_EVT_DIR:
        if (!ev->dir)
            return false;
        v->s = ev->dir == '>' ? ">" : "<";
        v->len = 1;
        return true;
    case KX_FLD_EVT_TIME:
    case KX_FLD_EVT_RAWTIME:
        return put_int(v, ev->time_ns);
    case KX_FLD_EVT_NUM:
        /* The sensor does not number events: a positive stand-in keeps
         * Falco's idioms (never_true = evt.num=0, evt.num>=0) working. */
        return put_int(v, ev->time_ns > 0 ? ev->time_ns : 1);
    case KX_FLD_EVT_RAWRES:
        return put_int(v, ev->res);
    case KX_FLD_EVT_RES:
        return put_str(v, ev->res_str);
    case KX_FLD_EVT_FAILED:
        return put_bool(v, ev->res < 0);
    case KX_FLD_EVT_IS_OPEN_READ:
        return put_bool(v, ev->open_read);
    case KX_FLD_EVT_IS_OPEN_WRITE:
        return put_bool(v, ev->open_write);
    case KX_FLD_EVT_IS_OPEN_EXEC:
        return put_bool(v, ev->open_exec);
    case KX_FLD_EVT_IS_OPEN_CREATE:
        return put_bool(v, ev->open_create);
    case KX_FLD_EVT_ARG: {
        const struct kx_sarg *a = find_arg(f, ev);
        return a && put_str(v, a->value);
    }
    case KX_FLD_EVT_HOSTNAME:
        return put_str(v, ev->hostname);
    case KX_FLD_PROC_PID:
        return put_int(v, p->pid);
    case KX_FLD_PROC_TID:
        return put_int(v, p->tid);
    case KX_FLD_PROC_PPID:
        return put_int(v, p->ppid);
    case KX_FLD_PROC_START_NS:
        return put_int(v, p->start_ns);
    case KX_FLD_PROC_NAME:
        return put_str(v, p->name);
    case KX_FLD_PROC_EXE:
        return put_str(v, p->exe);
    case KX_FLD_PROC_EXEPATH:
        return put_str(v, p->exepath);
    case KX_FLD_PROC_ARGS:
        return put_str(v, p->args);
    case KX_FLD_PROC_CMDLINE:
        return put_str(v, p->cmdline);
    case KX_FLD_PROC_CWD:
        return put_str(v, p->cwd);
    case KX_FLD_PROC_TTY:
        return put_int(v, p->tty);
    case KX_FLD_PROC_EXE_UPPER:
        return put_bool(v, p->exe_upper_layer);
    case KX_FLD_PROC_EXE_MEMFD:
        return put_bool(v, p->exe_from_memfd);
    case KX_FLD_PROC_EXE_WRITABLE:
        return put_bool(v, p->exe_writable);
    case KX_FLD_PROC_PNAME:
        return (p = ancestor(ev, 1)) && put_str(v, p->name);
    case KX_FLD_PROC_PEXE:
        return (p = ancestor(ev, 1)) && put_str(v, p->exe);
    case KX_FLD_PROC_PEXEPATH:
        return (p = ancestor(ev, 1)) && put_str(v, p->exepath);
    case KX_FLD_PROC_PCMDLINE:
        return (p = ancestor(ev, 1)) && put_str(v, p->cmdline);
    case KX_FLD_PROC_ANAME:
    case KX_FLD_PROC_APID:
    case KX_FLD_PROC_AEXE:
    case KX_FLD_PROC_AEXEPATH:
    case KX_FLD_PROC_ACMDLINE:
        /* [N]: that level; no index: the i-th ancestor above the process */
        return proc_field((enum kx_fid)f->id, ancestor(ev, f->idx >= 0 ? f->idx : (int64_t)i + 1),
                          v);
    case KX_FLD_USER_UID:
        return put_int(v, p->uid);
    case KX_FLD_USER_NAME:
        return put_str(v, p->user);
    case KX_FLD_USER_LOGINUID:
        return put_int(v, p->loginuid);
    case KX_FLD_GROUP_GID:
        return put_int(v, p->gid);
    case KX_FLD_GROUP_NAME:
        return put_str(v, p->group);
    case KX_FLD_FD_NAME:
        return put_str(v, ev->fd_name);
    case KX_FLD_FD_DIRECTORY:
        if (!(slash = path_slash(ev)))
            return false;
        v->s = ev->fd_name;
        v->len = slash == ev->fd_name ? 1 : (size_t)(slash - ev->fd_name);
        return true;
    case KX_FLD_FD_FILENAME:
        return (slash = path_slash(ev)) && put_str(v, slash + 1);
    case KX_FLD_FD_TYPECHAR:
        if (!ev->fd_typechar)
            return false;
        buf[0] = ev->fd_typechar;
        buf[1] = '\0';
        v->s = buf;
        v->len = 1;
        return true;
    case KX_FLD_FD_TYPE:
        return put_str(v, ev->fd_type);
    case KX_FLD_FD_NUM:
        return put_int(v, ev->fd_num);
    case KX_FLD_FD_SIP:
        return put_str(v, ev->fd_sip);
    case KX_FLD_FD_SPORT:
        return ev->fd_sport >= 0 && put_int(v, ev->fd_sport);
    case KX_FLD_FD_CIP:
        return put_str(v, ev->fd_cip);
    case KX_FLD_FD_CPORT:
        return ev->fd_cport >= 0 && put_int(v, ev->fd_cport);
    case KX_FLD_FD_LIP:
        return put_str(v, ev->fd_lip);
    case KX_FLD_FD_LPORT:
        return ev->fd_lport >= 0 && put_int(v, ev->fd_lport);
    case KX_FLD_FD_RIP:
        return put_str(v, ev->fd_rip);
    case KX_FLD_FD_RPORT:
        return ev->fd_rport >= 0 && put_int(v, ev->fd_rport);
    case KX_FLD_FD_L4PROTO:
        return put_str(v, ev->fd_l4proto);
    case KX_FLD_FD_IP:
        return put_str(v, i == 0 ? ev->fd_cip : ev->fd_sip);
    case KX_FLD_FD_PORT: {
        int64_t port = i == 0 ? ev->fd_cport : ev->fd_sport;
        return port >= 0 && put_int(v, port);
    }
    case KX_FLD_CONTAINER_ID:
        return put_str(v, ev->container_id);
    case KX_FLD_CONTAINER_FULL_ID:
        return put_str(v, ev->container_full_id);
    case KX_FLD_CONTAINER_NAME:
        return put_str(v, ev->container_name);
    case KX_FLD_CONTAINER_TYPE:
        return ev->container_runtime && ev->container_runtime[0] &&
               put_str(v, ev->container_runtime);
    case KX_FLD_CONTAINER_IMAGE:
        return false;
    case KX_FLD_K8S_NS_NAME:
        return put_str(v, ev->pod.ns);
    case KX_FLD_K8S_POD_NAME:
        return put_str(v, ev->pod.name);
    case KX_FLD_K8S_POD_UID:
        return put_str(v, ev->pod.uid);
    case KX_FLD_K8S_POD_LABEL:
        if (!ev->pod.label_k || !ev->pod.label_v)
            return false;
        for (size_t k = 0; k < ev->pod.n_labels; k++)
            if (ev->pod.label_k[k] && strncmp(ev->pod.label_k[k], f->key, f->key_len) == 0 &&
                ev->pod.label_k[k][f->key_len] == '\0')
                return put_str(v, ev->pod.label_v[k]);
        return false;
    case KX_FLD_K8S_POD_LABELS: {
        if (!ev->pod.label_k || !ev->pod.label_v || i >= ev->pod.n_labels || !ev->pod.label_k[i] ||
            !ev->pod.label_v[i])
            return false;
        int n = snprintf(buf, KX_FIELD_BUF, "%s:%s", ev->pod.label_k[i], ev->pod.label_v[i]);
        v->s = buf;
        v->len = n < 0 ? 0 : (size_t)n >= KX_FIELD_BUF ? KX_FIELD_BUF - 1 : (size_t)n;
        return true;
    }
    case KX_FLD_COUNT:
        break;
    }
    return false;
}
