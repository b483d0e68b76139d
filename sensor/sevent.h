/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sevent.h - one kernel event as the rule engine sees it: every value a
 * Falco field can ask for, already decoded (paths absolute, flags rendered,
 * process tree and container/pod looked up). Built by decode.c from a
 * struct kx_event plus the process table and the pod cache; read by the
 * rule engine (ruleset.c) and the alert builder. Every pointer is borrowed
 * and valid only while the event is being evaluated.
 *
 * Absent strings are NULL (Falco prints "<NA>"); absent numbers are -1 where
 * Falco has no sentinel of its own.
 */
#ifndef KX_SENSOR_SEVENT_H
#define KX_SENSOR_SEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define KX_SEV_ANCESTORS 8 /* proc.aname[1..8], proc.apid[..] */
#define KX_SEV_ARGS 8      /* evt.arg.<name> pairs per event */

/* A process: the event's own (proc.*) or an ancestor (proc.aname[N], ...). */
struct kx_sproc {
    int64_t pid;          /* proc.pid (tgid) */
    int64_t tid;          /* thread.tid; = pid for ancestors */
    int64_t ppid;         /* proc.ppid */
    int64_t start_ns;     /* CLOCK_MONOTONIC start, for node actions */
    const char *name;     /* proc.name: comm (15 chars at most) */
    const char *exe;      /* proc.exe: argv[0] */
    const char *exepath;  /* proc.exepath: absolute path of the executable */
    const char *args;     /* proc.args: argv[1..] joined by spaces ("" when none) */
    const char *cmdline;  /* proc.cmdline: "name args" */
    const char *cwd;      /* proc.cwd, with a trailing '/' as Falco prints it */
    int64_t tty;          /* proc.tty: 0 = no controlling terminal */
    int64_t uid;          /* user.uid */
    int64_t gid;          /* group.gid */
    int64_t euid;         /* euid (user.uid is the real uid, as in Falco) */
    int64_t loginuid;     /* user.loginuid: -1 when unset */
    const char *user;     /* user.name; NULL when the uid has no name */
    const char *group;    /* group.name */
    bool exe_upper_layer; /* proc.is_exe_upper_layer */
    bool exe_from_memfd;  /* proc.is_exe_from_memfd */
    bool exe_writable;    /* proc.is_exe_writable (unknown: false) */
};

/* evt.arg.<name>: Falco's rendering ("O_WRONLY|O_CREAT", "PTRACE_ATTACH",
 * "3", "/etc/shadow"); numbers compare numerically when both sides parse. */
struct kx_sarg {
    const char *name;
    const char *value;
};

/* Kubernetes attribution from the pod cache; all NULL when unknown. */
struct kx_spod {
    const char *ns;              /* k8s.ns.name */
    const char *name;            /* k8s.pod.name */
    const char *uid;             /* k8s.pod.uid (from the cgroup, even without the API) */
    const char *const *label_k;  /* k8s.pod.label[key] / k8s.pod.labels */
    const char *const *label_v;
    size_t n_labels;
};

struct kx_sevent {
    enum kx_kind kind;
    const char *type;    /* evt.type: "execve", "openat", "connect", ... */
    char dir;            /* evt.dir: '<' (exit) for everything the sensor emits */
    int64_t time_ns;     /* evt.time, CLOCK_REALTIME ns */
    int64_t res;         /* evt.rawres: the syscall's return value */
    const char *res_str; /* evt.res: "SUCCESS" or the errno name "ENOENT" */
    uint32_t flags;      /* KX_F_* from the record */

    struct kx_sproc proc;                            /* proc.*, user.*, group.* */
    const struct kx_sproc *anc[KX_SEV_ANCESTORS];    /* [0] parent, [1] grandparent... */
    size_t n_anc;                                    /* known ancestors */

    /* fd.*: the file or socket the event is about (NULL / -1 when none) */
    const char *fd_name;   /* fd.name: path, or "1.2.3.4:5->6.7.8.9:10" for sockets */
    int64_t fd_num;        /* fd.num */
    char fd_typechar;      /* fd.typechar: 'f' file, '4' ipv4, '6' ipv6, 'u' unix, 0 none */
    const char *fd_type;   /* fd.type: "file", "ipv4", "ipv6", "unix", "memfd" */
    const char *fd_sip;    /* fd.sip: server (listening/remote for connect) ip */
    int64_t fd_sport;      /* fd.sport */
    const char *fd_cip;    /* fd.cip: client ip */
    int64_t fd_cport;      /* fd.cport */
    const char *fd_lip;    /* fd.lip: local ip */
    int64_t fd_lport;      /* fd.lport */
    const char *fd_rip;    /* fd.rip: remote ip */
    int64_t fd_rport;      /* fd.rport */
    const char *fd_l4proto; /* fd.l4proto: "tcp", "udp", "icmp", "raw" */
    const char *target;    /* second path: rename/link new path, symlink linkpath,
                            * mount target (evt.arg.newpath / linkpath / dir) */

    bool open_read;  /* evt.is_open_read */
    bool open_write; /* evt.is_open_write */
    bool open_exec;  /* evt.is_open_exec */
    bool open_create; /* evt.is_open_create */

    /* container.* / k8s.* */
    const char *container_id;      /* container.id: 12 hex, "host" outside containers */
    const char *container_full_id; /* container.full_id: 64 hex, "host" */
    const char *container_name;    /* container.name: from the pod cache; NULL unknown */
    const char *container_runtime; /* "containerd", "cri-o", "docker", ... "" on host */
    struct kx_spod pod;

    struct kx_sarg args[KX_SEV_ARGS]; /* evt.arg.* */
    size_t n_args;

    const char *hostname; /* the node name, for the alert */
};

/* evt.type name of a kind ("execve", "openat", ...); "unknown" if out of range. */
const char *kx_kind_name(enum kx_kind k);

/* The kinds an evt.type name stands for: "execve" and "execveat" -> EXEC,
 * "fchmodat2" -> FCHMODAT, "clone"/"fork"/"vfork"/"clone3" -> FORK,
 * "procexit" -> EXIT. Returns the kind, or -1 for names the sensor never
 * emits (the rule engine then knows a rule on it can never match). */
int kx_kind_from_name(const char *name);

#endif
