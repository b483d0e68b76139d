/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * event.h - the one header shared by the BPF programs (sensor/bpf/sensor.bpf.c)
 * and the user-space sensor: the records that cross the ring buffer and the
 * maps user space writes to configure the kernel side.
 *
 * Plain fixed-width types only, no pointers, explicit padding, so the layout
 * is identical for the BPF target and the host compiler. Every record starts
 * with struct kx_event_hdr {type, size}; user space checks both before it
 * reads anything else, so a newer BPF object with a longer record, or a
 * corrupt one, is rejected and counted rather than misread.
 *
 * One record type, struct kx_event, for every kind: a fixed part (task
 * context, raw syscall arguments, kind-specific scalars) followed by up to
 * KX_STR_SLOTS strings packed back to back in data[]; str_len[i] is the byte
 * count of slot i including its NUL (0 = slot absent). Records are variable
 * length (hdr.size = offsetof(data) + sum of str_len, rounded up to 8), built
 * in a per-CPU scratch buffer and copied with bpf_ringbuf_output().
 *
 * String slots per kind (all read at sys_exit, see sensor.bpf.c for why):
 *   EXEC        0 exe path (mm->exe_file, walked in the kernel; absolute)
 *               1 argv, NUL-separated as in /proc/<pid>/cmdline
 *               2 cwd (absolute, walked in the kernel)
 *               3 filename as passed to execve (tracepoint's filename)
 *   OPEN*       0 path: on success the opened file's path walked from the
 *                 new fd (absolute, KX_F_RESOLVED); on failure the path as
 *                 passed, 1 = its base dir when relative
 *   path calls  0 path as passed, 1 base dir (cwd or dirfd's path) when 0 is
 *               relative: unlink*, chmod, fchmodat*, fchmod (0 = fd's path)
 *   RENAME*, LINK*      0 old, 1 old base, 2 new, 3 new base
 *   SYMLINK*    0 target (stored verbatim in the link), 2 linkpath, 3 its base
 *   MOUNT       0 source, 1 target, 2 fstype, 3 target base
 *   MEMFD_CREATE 0 name
 *   INIT_MODULE 0 param values; FINIT_MODULE 0 param values, 1 path of fd
 *   others      none
 *
 * Paths the kernel walks stop at the task's root (as /proc/<pid>/exe shows
 * them), so a containerized process has container paths.
 *
 * Which events are reported (beyond the kx_kind_on switch):
 *   OPEN*       only those a prefix list or read_all/write_all wants (see
 *               kx_open_cfg), failed ones included; the rest count as filtered
 *   ACCEPT*     not when they fail with EAGAIN (a non-blocking accept loop);
 *               counted as filtered
 *   FORK        new processes only, not threads; EXIT thread-group leaders
 *   everything else, success or failure; never the sensor's own process
 */
#ifndef KX_SENSOR_EVENT_H
#define KX_SENSOR_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; on the BPF side vmlinux.h has __u32/__u64 */
#endif

#define KX_EVENT_COMM_LEN 16 /* TASK_COMM_LEN */
#define KX_STR_SLOTS 4       /* string slots per record */
#define KX_STR_MAX 1024      /* bytes per slot including the NUL; longer is cut, KX_F_TRUNC */
#define KX_EVENT_MAX 8192    /* largest record (power of two, >= fixed part + 4 slots) */
#define KX_PATH_DEPTH 32     /* dentry levels walked for a path; deeper is cut, KX_F_TRUNC */

/* Ring buffer size in bytes: a power of two and a multiple of the page size.
 * 4 MiB holds ~10k typical records (a few hundred bytes each): a 0.2 s burst
 * at 50k events/s while user space is busy; what does not fit is counted.
 * Its pages are mapped twice into the sensor, so they count 2x in its RSS. */
#define KX_RINGBUF_BYTES (4u << 20)

enum kx_event_type {
    KX_EVENT_EXEC = 1, /* historical id; every record is a struct kx_event */
    KX_EVENT_RECORD = 2,
};

/*
 * What happened: one value per syscall (or sched event) the sensor watches.
 * Used as evt.type (kx_kind_name()), as the index of the per-kind counters
 * and of the kx_kind_on prefilter map. Append only: the numbers are ABI
 * between the BPF object and user space of the same build, and metrics
 * labels are derived from them.
 */
enum kx_kind {
    KX_K_EXEC = 0, /* sched_process_exec (execve or execveat) */
    KX_K_FORK,     /* sched_process_fork, new processes only (not threads) */
    KX_K_EXIT,     /* sched_process_exit of a thread-group leader */
    KX_K_OPEN,
    KX_K_OPENAT,
    KX_K_OPENAT2,
    KX_K_UNLINK,
    KX_K_UNLINKAT,
    KX_K_RENAME,
    KX_K_RENAMEAT,
    KX_K_RENAMEAT2,
    KX_K_SYMLINK,
    KX_K_SYMLINKAT,
    KX_K_LINK,
    KX_K_LINKAT,
    KX_K_CHMOD,
    KX_K_FCHMOD,
    KX_K_FCHMODAT, /* fchmodat and fchmodat2 */
    KX_K_MOUNT,
    KX_K_CONNECT,
    KX_K_ACCEPT,
    KX_K_ACCEPT4,
    KX_K_SOCKET,
    KX_K_LISTEN,
    KX_K_DUP,
    KX_K_DUP2,
    KX_K_DUP3,
    KX_K_SETUID,
    KX_K_SETGID,
    KX_K_SETREUID,
    KX_K_SETREGID,
    KX_K_SETRESUID,
    KX_K_SETRESGID,
    KX_K_CAPSET,
    KX_K_UNSHARE,
    KX_K_SETNS,
    KX_K_PTRACE,
    KX_K_INIT_MODULE,
    KX_K_FINIT_MODULE,
    KX_K_BPF,
    KX_K_MEMFD_CREATE,
    KX_K_KILL,
    KX_K_TKILL,
    KX_K_TGKILL,
    KX_K_PROCESS_VM_WRITEV,
    KX_K_MAX
};

/* Why the kernel side dropped an event; index into the per-CPU kx_drops map. */
enum kx_drop_reason {
    KX_DROP_RINGBUF_FULL = 0, /* bpf_ringbuf_output failed: user space too slow */
    KX_DROP_INFLIGHT_FULL,    /* no room to stash a syscall's arguments at sys_enter */
    KX_DROP_REASONS,
};

/* kx_event.flags */
#define KX_F_TRUNC 0x1u        /* a string slot was cut at KX_STR_MAX or KX_PATH_DEPTH */
#define KX_F_STR_ERR 0x2u      /* a string could not be read (slot is "") */
#define KX_F_RESOLVED 0x4u     /* slot 0 is the kernel's own path of the object */
#define KX_F_SOCK 0x8u         /* sock holds a socket's addresses (connect/accept/dup) */
#define KX_F_EXECVEAT 0x10u    /* EXEC came from execveat (e.g. of a memfd) */
#define KX_F_EXE_UPPER 0x20u   /* EXEC: exe file is in an overlayfs upper layer */
#define KX_F_EXE_MEMFD 0x40u   /* EXEC: exe file is a memfd (no link, "memfd:" name) */
#define KX_F_KILLED 0x80u      /* EXEC: an enforcement rule SIGKILLed it in the kernel */
#define KX_F_OPEN_WRITE 0x100u /* OPEN*: O_WRONLY/O_RDWR/O_CREAT/O_TRUNC */

struct kx_event_hdr {
    __u32 type; /* enum kx_event_type */
    __u32 size; /* bytes of the whole record, header included */
};

/* The task an event happened in, as the kernel saw it at that moment. */
struct kx_task_ctx {
    __u64 ktime_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
    __u64 start_ns;  /* group leader's start_boottime: ns since boot, suspend included,
                      * the clock of /proc/<pid>/stat starttime (and node actions) */
    __u64 pstart_ns; /* real parent's group leader, same clock */
    __u64 cgroup_id; /* cgroup v2 id (kernfs inode) */
    __u32 pid;       /* thread id (init pid namespace) */
    __u32 tgid;      /* process id (init pid namespace) */
    __u32 ppid;      /* real parent's tgid */
    __u32 uid;       /* real uid */
    __u32 gid;       /* real gid */
    __u32 euid;      /* effective uid */
    __u32 loginuid;  /* audit loginuid, (u32)-1 when unset */
    __u32 tty;       /* controlling tty as new_encode_dev(major, minor); 0 = none */
    char comm[KX_EVENT_COMM_LEN];
};

/* A socket's two ends (connect/accept/dup of a socket), network byte order
 * kept for addresses, host order for ports. */
struct kx_sock {
    __u16 family;   /* AF_INET, AF_INET6, AF_UNIX, ... */
    __u16 type;     /* SOCK_STREAM, SOCK_DGRAM, ... */
    __u16 protocol; /* IPPROTO_TCP, IPPROTO_UDP, ... */
    __u16 sport;    /* local port */
    __u16 dport;    /* remote port */
    __u16 pad[3];
    __u8 saddr[16]; /* local address (IPv4 in the first 4 bytes) */
    __u8 daddr[16]; /* remote address */
};

struct kx_event {
    struct kx_event_hdr hdr;
    struct kx_task_ctx task;
    __u32 kind;  /* enum kx_kind */
    __u32 flags; /* KX_F_* */
    __s64 ret;   /* syscall return value; EXIT: exit code; FORK: child tgid; EXEC: 0 */
    __u64 args[6]; /* raw syscall arguments (pointers are meaningless in user space), as
                    * many as the syscall has, the rest 0. OPENAT2: args[2] = how->flags,
                    * args[3] = how->mode (read from the user's struct open_how) */
    __u64 aux;     /* kind-specific: BPF prog_type for BPF_PROG_LOAD; FORK child start_ns;
                    * CAPSET effective caps (data[1] << 32 | data[0]); EXEC exe inode, or
                    * the kill rule's id when KX_F_KILLED; EXIT raw task->exit_code
                    * (wait status: low 7 bits = the killing signal, ret = code >> 8) */
    __u32 gppid;   /* EXEC: grandparent tgid */
    __u32 reserved;
    char pcomm[KX_EVENT_COMM_LEN];  /* EXEC: parent's comm */
    char gpcomm[KX_EVENT_COMM_LEN]; /* EXEC: grandparent's comm */
    struct kx_sock sock;            /* valid when KX_F_SOCK */
    __u16 str_len[KX_STR_SLOTS];    /* bytes of each slot incl. NUL, 0 = absent */
    char data[];                    /* the slots, packed in order */
};

/* offsetof(), spelled so that clang also takes it as a constant (BPF side) */
#define KX_EVENT_FIXED __builtin_offsetof(struct kx_event, data) /* 256 */

/* --- configuration maps, written by user space before and after load ---- */

/* kx_kind_on[kind] != 0: the kind is reported (the loaded rules need it).
 * The sensor keeps EXEC, FORK and EXIT on: they keep the process table.
 * A kind that is off at start has its programs not even loaded; the map
 * switches loaded kinds at runtime. An EXEC that an enforcement rule
 * killed is reported even when EXEC is off. */

/* Path prefilter for the OPEN kinds, one entry of kx_open_cfg. */
#define KX_PREFIX_MAX 32 /* prefixes per list */
#define KX_PREFIX_LEN 64 /* bytes per prefix incl. NUL */
struct kx_open_cfg {
    __u32 read_all;  /* every read-only open is needed */
    __u32 write_all; /* every write open is needed */
    __u32 n_read;    /* used entries of kx_read_prefix */
    __u32 n_write;   /* used entries of kx_write_prefix */
};
struct kx_prefix {
    __u32 len; /* bytes, without NUL */
    char s[KX_PREFIX_LEN];
};

/* In-kernel enforcement: a rule with "action: kill" whose condition the
 * kernel can decide. All set conditions must hold (AND); names and paths are
 * each an OR list. Checked at sched_process_exec, where bpf_send_signal()
 * kills the new image before it runs a single user instruction. */
#define KX_KILL_RULES 8
#define KX_KILL_NAMES 8
#define KX_KILL_PATHS 8
#define KX_KILL_PATH_LEN 128
struct kx_kill_rule {
    __u32 active;         /* 0 = unused slot */
    __u32 need_container; /* task's cgroup must look like a container's */
    __u32 n_names;        /* 0 = any comm; else comm must equal one of names */
    __u32 n_paths;        /* 0 = any exe; else exe path must equal (or start with,
                           * when path_prefix bit i is set) one of paths */
    __u32 path_prefix;    /* bit i: paths[i] is a prefix */
    __u32 id;             /* rule index in user space, reported in the event's aux */
    /* In the map, unused bytes are zero (the kernel compares 8 bytes at a
     * time); kx_probe_start()/kx_probe_set_kill() zero-pad what they get. */
    char names[KX_KILL_NAMES][KX_EVENT_COMM_LEN];
    char paths[KX_KILL_PATHS][KX_KILL_PATH_LEN];
};


#ifndef __VMLINUX_H__
_Static_assert(sizeof(struct kx_event_hdr) == 8, "kx_event_hdr layout");
_Static_assert(sizeof(struct kx_task_ctx) == 4 * 8 + 8 * 4 + KX_EVENT_COMM_LEN, "kx_task_ctx");
_Static_assert(sizeof(struct kx_sock) == 48, "kx_sock layout");
_Static_assert(KX_EVENT_FIXED % 8 == 0, "kx_event data 8-byte aligned");
_Static_assert(KX_EVENT_FIXED + KX_STR_SLOTS * KX_STR_MAX <= KX_EVENT_MAX, "kx_event fits");
_Static_assert(KX_EVENT_FIXED == 256, "kx_event fixed part (ABI with sensor.bpf.c)");
_Static_assert(__builtin_offsetof(struct kx_kill_rule, names) % 8 == 0 &&
                   __builtin_offsetof(struct kx_kill_rule, paths) % 8 == 0 &&
                   __builtin_offsetof(struct kx_event, task.comm) % 8 == 0,
               "kernel compares names, paths and comm as 8-byte words");
#endif

#endif
