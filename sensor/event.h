/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * event.h - the one header shared by the BPF programs (sensor/bpf/NAME.bpf.c)
 * and the user-space sensor: the records that cross the ring buffer.
 *
 * Plain fixed-width types only, no pointers, explicit padding, so the layout
 * is identical for the BPF target and the host compiler. Every record starts
 * with struct kx_event_hdr {type, size}; user space checks both before it
 * reads anything else, so a newer BPF object with a longer record, or a
 * corrupt one, is rejected and counted rather than misread.
 */
#ifndef KX_SENSOR_EVENT_H
#define KX_SENSOR_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; on the BPF side vmlinux.h has __u32/__u64 */
#endif

#define KX_EVENT_COMM_LEN 16   /* TASK_COMM_LEN */
#define KX_EVENT_PATH_LEN 1024 /* exe path as passed to execve; longer is truncated */
#define KX_EVENT_ARGS_LEN 1024 /* bytes of the NUL-separated argv captured in the kernel */

/* Ring buffer size in bytes: a power of two and a multiple of the page size.
 * 1 MiB holds about 480 exec records, enough for a burst of execs while user
 * space is busy; what does not fit is counted in kx_drops. */
#define KX_RINGBUF_BYTES (1u << 20)

enum kx_event_type {
    KX_EVENT_EXEC = 1, /* struct kx_exec_event */
};

/* Why the kernel side dropped an event; index into the per-CPU kx_drops map. */
enum kx_drop_reason {
    KX_DROP_RINGBUF_FULL = 0, /* bpf_ringbuf_reserve failed: user space too slow */
    KX_DROP_REASONS,
};

/* Flags in kx_exec_event.flags. */
#define KX_EXEC_F_PATH_TRUNC 0x1u /* filename did not fit in KX_EVENT_PATH_LEN */
#define KX_EXEC_F_PATH_ERR 0x2u   /* filename could not be read: filename is "" */
#define KX_EXEC_F_ARGS_TRUNC 0x4u /* argv longer than KX_EVENT_ARGS_LEN: args is its start */
#define KX_EXEC_F_ARGS_ERR 0x8u   /* argv could not be read: args_len is 0 */

struct kx_event_hdr {
    __u32 type; /* enum kx_event_type */
    __u32 size; /* bytes of the whole record, header included */
};

/* One sched:sched_process_exec, seen after the new image is in place. */
struct kx_exec_event {
    struct kx_event_hdr hdr;
    __u64 ktime_ns;                   /* bpf_ktime_get_ns() at exec (CLOCK_MONOTONIC) */
    __u64 start_ns;                   /* task->start_time (CLOCK_MONOTONIC) */
    __u64 cgroup_id;                  /* cgroup v2 id (kernfs inode) of the task */
    __u32 pid;                        /* thread id (init pid namespace) */
    __u32 tgid;                       /* process id (init pid namespace) */
    __u32 ppid;                       /* real parent's tgid */
    __u32 uid;                        /* real uid after exec */
    __u32 gid;                        /* real gid after exec */
    __u32 flags;                      /* KX_EXEC_F_* */
    __u32 args_len;                   /* bytes used in args */
    __u32 reserved;                   /* 0; keeps the strings 8-byte aligned */
    char comm[KX_EVENT_COMM_LEN];     /* new comm (NUL-terminated, may be truncated) */
    char pcomm[KX_EVENT_COMM_LEN];    /* parent's comm */
    char filename[KX_EVENT_PATH_LEN]; /* exe path from the tracepoint, NUL-terminated */
    char args[KX_EVENT_ARGS_LEN];     /* argv as in /proc/<pid>/cmdline (NUL-separated),
                                       * read at exec so it survives a fast exit */
};

_Static_assert(sizeof(struct kx_event_hdr) == 8, "kx_event_hdr layout");
_Static_assert(sizeof(struct kx_exec_event) == 8 + 3 * 8 + 8 * 4 + 2 * KX_EVENT_COMM_LEN +
                                                   KX_EVENT_PATH_LEN + KX_EVENT_ARGS_LEN,
               "kx_exec_event must have no implicit padding");
_Static_assert(sizeof(struct kx_exec_event) % 8 == 0, "kx_exec_event size multiple of 8");

#endif
