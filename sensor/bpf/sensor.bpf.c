// SPDX-License-Identifier: GPL-2.0-only
/*
 * sensor.bpf.c - the sensor's kernel side: every enum kx_kind (event.h) as
 * one struct kx_event record through the kx_events ring buffer.
 *
 * Attach points are tracepoints only (sched:sched_process_exec/exit,
 * syscalls:sys_enter_X/sys_exit_X, raw_syscalls as a fallback) plus the
 * sched_process_fork raw tracepoint, so the object loads on kernels without
 * kprobes, fentry or BPF LSM. CO-RE reads against the running kernel's BTF;
 * no kernel-version #ifs.
 *
 * Syscalls are seen twice: sys_enter stashes {kind, raw args} in an LRU
 * hash keyed by pid_tgid, sys_exit takes it back, adds the return value,
 * the strings and the kind's extras, and emits one record. Why strings are
 * read at sys_exit and not at sys_enter: by then the kernel has copied every
 * user-space argument it used, so what we read is what the syscall acted on
 * unless another thread deliberately rewrote the buffer in between (the
 * classic TOCTOU a sys_enter read is just as exposed to, in the other
 * direction), and a failed syscall still gets its as-passed path. Where the
 * kernel holds the truth we read that instead of user memory: a successful
 * open*, fchmod and finit_module report the path walked from the fd's own
 * struct file (dentries and mounts), and connect/accept/listen/dup report
 * the addresses of the fd's struct sock, never the user's sockaddr.
 *
 * Paths are walked like the kernel's d_path(): dentry by dentry up to the
 * mount root, then across to the parent mount's mountpoint, stopping at the
 * task's own root (so a process in a container sees container paths, as
 * /proc/<pid>/exe shows them), bounded by KX_PATH_DEPTH levels and
 * KX_STR_MAX bytes (KX_F_TRUNC when cut).
 *
 * Records are built in a per-CPU scratch map (tracepoint programs do not
 * nest on a CPU, so one buffer per CPU suffices), then copied with
 * bpf_ringbuf_output() at their real size. Nothing is dropped silently:
 * failed outputs and failed stashes are counted in kx_drops, prefiltered
 * events in kx_filtered, emitted ones in kx_counts (all per-CPU, summed by
 * user space).
 *
 * Enforcement: at sched_process_exec, a kx_kill rule that matches (comm,
 * exe path, container cgroup) gets the new image SIGKILLed with
 * bpf_send_signal() before it runs one user instruction.
 *
 * License "GPL": bpf_probe_read_kernel*(), bpf_get_current_task() and
 * bpf_send_signal() are GPL-only helpers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "event.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- constants not in vmlinux.h (uapi #defines) ------------------------ */
#define KX_AT_FDCWD -100
#define KX_O_WRONLY 01
#define KX_O_RDWR 02
#define KX_O_CREAT 0100
#define KX_O_TRUNC 01000
#define KX_OPEN_WRITE_FLAGS (KX_O_WRONLY | KX_O_RDWR | KX_O_CREAT | KX_O_TRUNC)
#define KX_S_IFMT 0170000
#define KX_S_IFSOCK 0140000
#define KX_AF_INET 2
#define KX_AF_INET6 10
#define KX_EINPROGRESS 115
#define KX_EAGAIN 11
#define KX_BPF_PROG_LOAD 5
#define KX_OVERLAYFS_MAGIC 0x794c7630
#define KX_CAP_V1 0x19980330 /* _LINUX_CAPABILITY_VERSION_1: one data struct */
#define KX_SIGKILL 9
#define KX_ENOSYS 38
#define KX_NAME_MAX 255

/* Syscall numbers for the raw_syscalls fallback of init_module and
 * finit_module (kernels where their own tracepoints are missing). The
 * per-syscall tracepoints need no numbers; these are the only two we must
 * recognise by number. -1: no fallback on this architecture. */
#if defined(__TARGET_ARCH_x86)
#define KX_NR_INIT_MODULE 175
#define KX_NR_FINIT_MODULE 313
#elif defined(__TARGET_ARCH_arm64) || defined(__TARGET_ARCH_riscv)
#define KX_NR_INIT_MODULE 105 /* asm-generic/unistd.h */
#define KX_NR_FINIT_MODULE 273
#else
#define KX_NR_INIT_MODULE -1
#define KX_NR_FINIT_MODULE -1
#endif

/* Positions in data[] are < KX_STR_SLOTS * KX_STR_MAX; the mask only tells
 * the verifier so (a slot written at pos + KX_STR_MAX stays in the scratch). */
#define KX_POS_MASK (KX_STR_SLOTS * KX_STR_MAX - 1)
#define KX_PATH_BUF (2 * KX_STR_MAX) /* walk area: path ends at KX_STR_MAX - 1 */
#define KX_CG_LEN 128                /* cgroup leaf name bytes we look at */
#define KX_CMP_WORDS (KX_KILL_PATH_LEN / 8)

_Static_assert((KX_STR_SLOTS * KX_STR_MAX & KX_POS_MASK) == 0, "slot area is a power of two");
_Static_assert(KX_EVENT_FIXED + KX_POS_MASK + KX_STR_MAX <= KX_EVENT_MAX, "slot mask fits");

/* ---- configuration set by user space ----------------------------------- */

/* The sensor's own tgid (rodata, set before load): never reported, so the
 * sensor's reads, sockets and bpf() calls do not feed back into it. */
const volatile __u32 kx_self_tgid = 0;

/* Enforcement on/off, switchable at runtime through the skeleton's bss. */
__u32 kx_enforce = 0;

/* ---- maps --------------------------------------------------------------- */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, KX_RINGBUF_BYTES);
} kx_events SEC(".maps");

/* Arguments of syscalls in flight, sys_enter -> sys_exit. LRU: a thread
 * that never returns (killed in a blocking call) cannot leak an entry. */
struct kx_inflight {
    __u32 kind;
    __u32 pad;
    __u64 args[6];
};
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64); /* pid_tgid */
    __type(value, struct kx_inflight);
} kx_inflight SEC(".maps");

/* Threads inside execveat(): the exec that follows gets KX_F_EXECVEAT. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64); /* pid_tgid at sys_enter_execveat */
    __type(value, __u32);
} kx_execveat SEC(".maps");

struct kx_scratch {
    __u8 rec[KX_EVENT_MAX];  /* the record being built (struct kx_event) */
    char path[KX_PATH_BUF];  /* path walk area, written backwards */
    char cg[KX_CG_LEN + 16]; /* cgroup leaf name (enforcement) */
};
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct kx_scratch);
} kx_scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, KX_K_MAX);
    __type(key, __u32);
    __type(value, __u32);
} kx_kind_on SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct kx_open_cfg);
} kx_open_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, KX_PREFIX_MAX);
    __type(key, __u32);
    __type(value, struct kx_prefix);
} kx_read_prefix SEC(".maps"), kx_write_prefix SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, KX_KILL_RULES);
    __type(key, __u32);
    __type(value, struct kx_kill_rule);
} kx_kill SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, KX_K_MAX);
    __type(key, __u32);
    __type(value, __u64);
} kx_counts SEC(".maps"), kx_filtered SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, KX_DROP_REASONS);
    __type(key, __u32);
    __type(value, __u64);
} kx_drops SEC(".maps");

/* Local view of overlayfs' inode: CO-RE resolves the real offsets, and
 * bpf_core_type_exists() tells whether the kernel has overlayfs at all. */
struct ovl_inode___kx {
    struct inode vfs_inode;
    struct dentry *__upperdentry;
} __attribute__((preserve_access_index));

/* ---- small helpers ------------------------------------------------------ */

/* container_of() with the member offset relocated for the running kernel. */
#define kx_container_of(ptr, type, member)                                                         \
    ((type *)((void *)(ptr)-bpf_core_field_offset(type, member)))

static __always_inline void kx_count(void *map, __u32 idx)
{
    __u64 *n = bpf_map_lookup_elem(map, &idx);

    if (n)
        *n += 1;
}

static __always_inline bool kx_kind_enabled(__u32 kind)
{
    __u32 *on = bpf_map_lookup_elem(&kx_kind_on, &kind);

    return on && *on;
}

static __always_inline bool kx_is_self(void)
{
    return kx_self_tgid && (bpf_get_current_pid_tgid() >> 32) == kx_self_tgid;
}

static __always_inline struct kx_scratch *kx_get_scratch(void)
{
    __u32 zero = 0;

    return bpf_map_lookup_elem(&kx_scratch, &zero);
}

static __always_inline __u64 kx_ld64(const void *p)
{
    return *(const __u64 *)p;
}

/* 0xff in each byte of w that is non-zero, 0x00 in each zero byte. */
static __always_inline __u64 kx_nonzero_bytes(__u64 w)
{
    __u64 t = (w & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL;

    t = (t | w) & 0x8080808080808080ULL;
    return (t >> 7) * 0xff;
}

/* new_encode_dev() of include/linux/kdev_t.h */
static __always_inline __u32 kx_encode_dev(__u32 major, __u32 minor)
{
    return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/* ---- task context ------------------------------------------------------- */

/*
 * A task's start in ns since boot, suspend included: task->start_boottime,
 * the clock /proc/<pid>/stat's starttime is derived from, so user space and
 * node actions can match a record against /proc at tick granularity even on
 * a host that has been suspended. Kernels before 5.5 only have start_time.
 */
static __always_inline __u64 kx_task_start(struct task_struct *t)
{
    if (bpf_core_field_exists(t->start_boottime))
        return BPF_CORE_READ(t, start_boottime);
    return BPF_CORE_READ(t, start_time);
}

static __always_inline void kx_fill_task(struct kx_event *e, struct task_struct *task)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u64 uid_gid = bpf_get_current_uid_gid();
    struct task_struct *parent = BPF_CORE_READ(task, real_parent);
    struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);

    e->task.ktime_ns = bpf_ktime_get_ns();
    e->task.start_ns = kx_task_start(BPF_CORE_READ(task, group_leader));
    e->task.pstart_ns = kx_task_start(BPF_CORE_READ(parent, group_leader));
    e->task.cgroup_id = bpf_get_current_cgroup_id();
    e->task.pid = (__u32)pid_tgid;
    e->task.tgid = pid_tgid >> 32;
    e->task.ppid = BPF_CORE_READ(parent, tgid);
    e->task.uid = (__u32)uid_gid;
    e->task.gid = uid_gid >> 32;
    e->task.euid = BPF_CORE_READ(task, cred, euid.val);
    e->task.loginuid = (__u32)-1;
    if (bpf_core_field_exists(task->loginuid))
        e->task.loginuid = BPF_CORE_READ(task, loginuid.val);
    e->task.tty = 0;
    if (tty) {
        struct tty_driver *drv = BPF_CORE_READ(tty, driver);
        __u32 major = BPF_CORE_READ(drv, major);
        __u32 minor = BPF_CORE_READ(drv, minor_start) + BPF_CORE_READ(tty, index);

        e->task.tty = kx_encode_dev(major, minor);
    }
    bpf_get_current_comm(e->task.comm, sizeof(e->task.comm));
}

/* Zeroes the fixed part and fills header, kind and task context. */
static __always_inline struct kx_event *kx_begin(struct kx_scratch *s, __u32 kind)
{
    struct kx_event *e = (struct kx_event *)s->rec;

    __builtin_memset(e, 0, KX_EVENT_FIXED);
    e->hdr.type = KX_EVENT_RECORD;
    e->kind = kind;
    kx_fill_task(e, (struct task_struct *)bpf_get_current_task());
    return e;
}

/*
 * Ring buffer wakeups. Waking the reader costs an irq_work per record (about
 * 6 us per event in a VM, most of an open's cost), and the default adaptive
 * mode wakes on nearly every record when the reader keeps up. So the
 * frequent kinds (opens, socket calls, dup, fork, exit) do not wake it until
 * KX_WAKEUP_BYTES are waiting; every other kind (exec, privilege and module
 * events, ...) wakes it at once, taking the pending frequent records along,
 * unless a wakeup went out less than KX_WAKEUP_GAP_NS ago: a lone exec is
 * seen within microseconds, while a burst of execs costs at most one wakeup
 * per gap (per-exec wakeups cost an exec-heavy workload 10-20 % of its wall
 * time on a 2-CPU VM). The reader's poll timeout (sensor/main.c) bounds the
 * latency of whatever a wakeup did not take along.
 */
#define KX_WAKEUP_BYTES (64 * 1024)
#define KX_WAKEUP_GAP_NS (10 * 1000 * 1000ULL)

/* When the last rare-kind wakeup went out; a racy read-modify-write across
 * CPUs is fine (at worst two wakeups instead of one). */
__u64 kx_last_wakeup = 0;

static __always_inline __u64 kx_wakeup_flags(__u32 kind)
{
    switch (kind) {
    case KX_K_OPEN:
    case KX_K_OPENAT:
    case KX_K_OPENAT2:
    case KX_K_CONNECT:
    case KX_K_ACCEPT:
    case KX_K_ACCEPT4:
    case KX_K_SOCKET:
    case KX_K_DUP:
    case KX_K_DUP2:
    case KX_K_DUP3:
    case KX_K_FORK:
    case KX_K_EXIT:
        return bpf_ringbuf_query(&kx_events, BPF_RB_AVAIL_DATA) >= KX_WAKEUP_BYTES
                   ? BPF_RB_FORCE_WAKEUP
                   : BPF_RB_NO_WAKEUP;
    default: {
        /* Not 0 (adaptive): that wakes the reader only when it has caught
         * up, and after a NO_WAKEUP record it has not, so an exec behind a
         * fork would wait for the next poll timeout. */
        __u64 now = bpf_ktime_get_ns();

        if (now - kx_last_wakeup < KX_WAKEUP_GAP_NS &&
            bpf_ringbuf_query(&kx_events, BPF_RB_AVAIL_DATA) < KX_WAKEUP_BYTES)
            return BPF_RB_NO_WAKEUP;
        kx_last_wakeup = now;
        return BPF_RB_FORCE_WAKEUP;
    }
    }
}

/* Sends the record (fixed part + pos bytes of slots). */
static __always_inline int kx_emit(struct kx_scratch *s, struct kx_event *e, __u32 pos)
{
    __u64 size = (KX_EVENT_FIXED + (__u64)pos + 7) & ~7ULL;
    __u32 kind = e->kind;

    if (size > KX_EVENT_MAX)
        size = KX_EVENT_MAX; /* cannot happen: 4 slots of KX_STR_MAX fit */
    e->hdr.size = size;
    size &= KX_EVENT_MAX * 2 - 1; /* verifier: bounded, and <= the scratch */
    if (size > KX_EVENT_MAX)
        return 0;
    if (bpf_ringbuf_output(&kx_events, s->rec, size, kx_wakeup_flags(kind))) {
        kx_count(&kx_drops, KX_DROP_RINGBUF_FULL);
        return 0;
    }
    kx_count(&kx_counts, kind);
    return 0;
}

/* ---- strings into slots ------------------------------------------------ */

/* Appends the NUL-terminated user string at uptr as slot `slot`; a NULL
 * pointer leaves the slot absent. Returns the new data[] position. */
static __always_inline __u32 kx_put_user_str(struct kx_event *e, __u32 pos, int slot, __u64 uptr)
{
    char *dst = &e->data[pos & KX_POS_MASK];
    long n;

    if (!uptr)
        return pos;
    n = bpf_probe_read_user_str(dst, KX_STR_MAX, (const void *)uptr);
    if (n <= 0) {
        dst[0] = '\0';
        n = 1;
        e->flags |= KX_F_STR_ERR;
    } else if (n >= KX_STR_MAX) {
        n = KX_STR_MAX; /* may be an exact fit; erring on "truncated" */
        e->flags |= KX_F_TRUNC;
    }
    e->str_len[slot & (KX_STR_SLOTS - 1)] = n;
    return pos + n;
}

/* Same, for a kernel string (tracepoint data). */
static __always_inline __u32 kx_put_kernel_str(struct kx_event *e, __u32 pos, int slot,
                                               const void *kptr)
{
    char *dst = &e->data[pos & KX_POS_MASK];
    long n = bpf_probe_read_kernel_str(dst, KX_STR_MAX, kptr);

    if (n <= 0) {
        dst[0] = '\0';
        n = 1;
        e->flags |= KX_F_STR_ERR;
    } else if (n >= KX_STR_MAX) {
        n = KX_STR_MAX;
        e->flags |= KX_F_TRUNC;
    }
    e->str_len[slot & (KX_STR_SLOTS - 1)] = n;
    return pos + n;
}

/*
 * Walks dentry d on mount vm up to the task's root, writing the path
 * backwards into s->path so that it ends at KX_STR_MAX - 1 (the NUL).
 * Returns the start offset, | 0x10000 when the path was cut.
 */
static __always_inline __u32 kx_walk(struct kx_scratch *s, struct dentry *d, struct vfsmount *vm)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    struct dentry *rd = BPF_CORE_READ(t, fs, root.dentry);
    struct vfsmount *rm = BPF_CORE_READ(t, fs, root.mnt);
    struct mount *m = kx_container_of(vm, struct mount, mnt);
    __u32 off = KX_STR_MAX - 1;
    __u32 trunc = 0x10000;

    s->path[KX_STR_MAX - 1] = '\0';
    if (!d || !vm)
        return off | trunc;
    for (int i = 0; i < KX_PATH_DEPTH; i++) {
        struct dentry *mnt_root, *parent;
        const unsigned char *name;
        bool last = false;
        __u32 len;

        if (d == rd && vm == rm) {
            trunc = 0;
            break;
        }
        mnt_root = BPF_CORE_READ(vm, mnt_root);
        parent = BPF_CORE_READ(d, d_parent);
        if (d == mnt_root) {
            struct mount *mp = BPF_CORE_READ(m, mnt_parent);

            if (!mp || mp == m) { /* the namespace root or an internal mount */
                trunc = 0;
                break;
            }
            d = BPF_CORE_READ(m, mnt_mountpoint);
            m = mp;
            vm = &mp->mnt;
            continue;
        }
        /* Its own parent but no mount's root: a pseudo file (memfd, pipe,
         * socket) or a disconnected tree. d_path() would ask d_op->d_dname;
         * we give its own name, "/memfd:x" for a memfd. */
        last = d == parent;
        name = BPF_CORE_READ(d, d_name.name);
        /* a mask, not a min(): no branch, so walks of any shape share
         * verifier states (names are <= NAME_MAX anyway) */
        len = BPF_CORE_READ(d, d_name.len) & KX_NAME_MAX;
        if (len + 1 > off)
            break; /* longer than KX_STR_MAX: cut, leading part lost */
        /* re-masked for the same reason (it is < KX_STR_MAX anyway) */
        off = (off - len - 1) & (KX_STR_MAX - 1);
        bpf_probe_read_kernel(&s->path[(off + 1) & (KX_STR_MAX - 1)], len, name);
        s->path[off & (KX_STR_MAX - 1)] = '/';
        if (last) {
            trunc = 0;
            break;
        }
        d = parent;
    }
    if (off == KX_STR_MAX - 1) {
        off--;
        s->path[KX_STR_MAX - 2] = '/';
    }
    return off | trunc;
}

/*
 * Appends the path of (dentry, vfsmount) as slot `slot` at data[pos] of the
 * record in the scratch, and returns the new position.
 *
 * A global (not static) function on purpose: the verifier checks it once
 * per program, on its own, instead of once per call site and caller state.
 * The 32-level walk verified inline multiplied with every branch before it
 * and took kx_on_exec past the 1M-instruction limit. Hence its scalar-only
 * arguments (global functions take no map-value pointers on older kernels):
 * it fetches the scratch and the task's root itself.
 */
__noinline int kx_path_append(__u64 dentry, __u64 vfsmnt, __u32 pos, __u32 slot)
{
    struct kx_scratch *s = kx_get_scratch();
    struct kx_event *e;
    __u32 w, start, n;

    if (!s)
        return pos;
    e = (struct kx_event *)s->rec;
    w = kx_walk(s, (struct dentry *)dentry, (struct vfsmount *)vfsmnt);
    start = w & (KX_STR_MAX - 1);
    n = KX_STR_MAX - start; /* bytes incl. the NUL, 2..KX_STR_MAX */
    if (w & 0x10000)
        e->flags |= KX_F_TRUNC;
    if (n > KX_STR_MAX || n < 1)
        return pos;
    bpf_probe_read_kernel(&e->data[pos & KX_POS_MASK], n, &s->path[start]);
    e->str_len[slot & (KX_STR_SLOTS - 1)] = n;
    return pos + n;
}

static __always_inline __u32 kx_put_file_path(struct kx_event *e, __u32 pos, int slot,
                                              struct file *f)
{
    return kx_path_append((__u64)BPF_CORE_READ(f, f_path.dentry),
                          (__u64)BPF_CORE_READ(f, f_path.mnt), pos, slot);
}

static __always_inline __u32 kx_put_cwd(struct kx_event *e, __u32 pos, int slot,
                                        struct task_struct *t)
{
    struct fs_struct *fs = BPF_CORE_READ(t, fs);

    return kx_path_append((__u64)BPF_CORE_READ(fs, pwd.dentry), (__u64)BPF_CORE_READ(fs, pwd.mnt),
                          pos, slot);
}

/* The struct file of fd in task t, or NULL. */
static __always_inline struct file *kx_fd_file(struct task_struct *t, __s64 fd)
{
    struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
    struct file **fds;
    struct file *f = NULL;

    if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    fds = BPF_CORE_READ(fdt, fd);
    bpf_probe_read_kernel(&f, sizeof(f), &fds[fd & 0xffffff]);
    return f;
}

/* Slot `slot` holds a user path just read (at pos0): if it is relative,
 * appends its base directory (cwd for AT_FDCWD, else dirfd's path) as
 * slot `slot`+1. */
static __always_inline __u32 kx_put_base(struct kx_event *e, __u32 pos, __u32 pos0, int slot,
                                         __s32 dirfd, struct task_struct *t)
{
    struct file *f;
    char c0;

    if (!e->str_len[slot & (KX_STR_SLOTS - 1)])
        return pos;
    c0 = e->data[pos0 & KX_POS_MASK];
    if (c0 == '/' || c0 == '\0')
        return pos;
    if (dirfd == KX_AT_FDCWD)
        return kx_put_cwd(e, pos, slot + 1, t);
    f = kx_fd_file(t, dirfd);
    if (!f) {
        e->flags |= KX_F_STR_ERR;
        return pos;
    }
    return kx_put_file_path(e, pos, slot + 1, f);
}

/* A path argument as passed (slot) plus its base (slot + 1). */
static __always_inline __u32 kx_put_path_arg(struct kx_event *e, __u32 pos, int slot, __s32 dirfd,
                                             __u64 uptr, struct task_struct *t)
{
    __u32 pos0 = pos;

    pos = kx_put_user_str(e, pos, slot, uptr);
    return kx_put_base(e, pos, pos0, slot, dirfd, t);
}

/* ---- sockets ------------------------------------------------------------ */

/* Fills e->sock from f when f is a socket; true if it was. */
static __always_inline bool kx_fill_sock(struct kx_event *e, struct file *f)
{
    struct socket *sock;
    struct sock *sk;
    __u16 family;
    umode_t mode;

    if (!f)
        return false;
    mode = BPF_CORE_READ(f, f_inode, i_mode);
    if ((mode & KX_S_IFMT) != KX_S_IFSOCK)
        return false;
    sock = BPF_CORE_READ(f, private_data);
    sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return false;
    family = BPF_CORE_READ(sk, __sk_common.skc_family);
    e->sock.family = family;
    e->sock.type = BPF_CORE_READ(sock, type);
    e->sock.protocol = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
    if (family == KX_AF_INET) {
        /* via a u32: BPF_CORE_READ_INTO(&e->sock.saddr, ...) would copy
         * sizeof(saddr) = 16 bytes, the neighbours of the field included */
        __u32 a4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

        __builtin_memcpy(e->sock.saddr, &a4, 4);
        a4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __builtin_memcpy(e->sock.daddr, &a4, 4);
    } else if (family == KX_AF_INET6 && bpf_core_field_exists(sk->__sk_common.skc_v6_daddr)) {
        BPF_CORE_READ_INTO(&e->sock.saddr, sk, __sk_common.skc_v6_rcv_saddr);
        BPF_CORE_READ_INTO(&e->sock.daddr, sk, __sk_common.skc_v6_daddr);
    }
    if (family == KX_AF_INET || family == KX_AF_INET6) {
        e->sock.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
        e->sock.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    }
    e->flags |= KX_F_SOCK;
    return true;
}

/* ---- open prefilter ----------------------------------------------------- */

/* Does the NUL-terminated path start with one of the first n prefixes? */
static __always_inline bool kx_prefix_match(void *list, __u32 n, const char *path)
{
    for (__u32 i = 0; i < KX_PREFIX_MAX; i++) {
        struct kx_prefix *p;
        __u32 k = i, len;
        bool ok = true;

        if (i >= n)
            break;
        p = bpf_map_lookup_elem(list, &k);
        if (!p)
            break;
        len = p->len;
        if (len == 0 || len >= KX_PREFIX_LEN)
            continue;
        for (__u32 j = 0; j < KX_PREFIX_LEN - 1; j++) {
            if (j >= len)
                break;
            if (path[j] != p->s[j]) {
                ok = false;
                break;
            }
        }
        if (ok)
            return true;
    }
    return false;
}

/* Is an open with these flags wanted before we know its path?
 * 1: yes (read_all / write_all), 0: only if a prefix matches, -1: no list
 * could want it. */
static __always_inline int kx_open_precheck(__u64 flags)
{
    __u32 zero = 0;
    struct kx_open_cfg *c = bpf_map_lookup_elem(&kx_open_cfg, &zero);

    if (!c)
        return -1;
    if (flags & KX_OPEN_WRITE_FLAGS)
        return c->write_all ? 1 : c->n_write ? 0 : -1;
    return c->read_all ? 1 : c->n_read ? 0 : -1;
}

/* Does a list want this open? Reads the path from slot 0 of the record in
 * the scratch. Global for the same reason as kx_path_append(): the nested
 * prefix loops are verified once, not per caller state. */
__noinline int kx_open_wanted(__u64 flags)
{
    struct kx_scratch *s = kx_get_scratch();
    struct kx_open_cfg *c;
    const char *path;
    __u32 zero = 0;

    c = bpf_map_lookup_elem(&kx_open_cfg, &zero);
    if (!s || !c)
        return 0;
    path = (const char *)((struct kx_event *)s->rec)->data;
    /* A failed open of a relative path: user space joins it with its base
     * dir, we cannot here. Let it through so the prefilter stays sound. */
    if (path[0] != '/')
        return 1;
    if (flags & KX_OPEN_WRITE_FLAGS)
        return c->write_all || kx_prefix_match(&kx_write_prefix, c->n_write, path);
    return c->read_all || kx_prefix_match(&kx_read_prefix, c->n_read, path);
}

/* ---- enforcement -------------------------------------------------------- */

static __always_inline bool kx_starts(const char *s, const char *lit, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] != lit[i])
            return false;
    return true;
}

/*
 * Does the task's cgroup v2 leaf name look like a container's (cgroup.c has
 * the full parser)? A runtime prefix ("cri-containerd-", "crio-",
 * "docker-", "libpod-"), a runtime tag anywhere (":cri-containerd:",
 * ":crio:", ":docker:", as in "kubepods-...slice:cri-containerd:<id>"), or
 * exactly 64 lowercase hex digits (cgroupfs driver). Only the first
 * KX_CG_LEN - 1 bytes of the name are looked at.
 */
static __always_inline bool kx_cgroup_is_container(struct kx_scratch *s, struct task_struct *t)
{
    const char *name = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, name);
    char *c = s->cg;
    bool hex = true;
    long n;

    __builtin_memset(c + KX_CG_LEN, 0, 16); /* a tag compare may look past the name */
    n = bpf_probe_read_kernel_str(c, KX_CG_LEN, name);
    if (n <= 1)
        return false;
    if (kx_starts(c, "cri-containerd-", 15) || kx_starts(c, "crio-", 5) ||
        kx_starts(c, "docker-", 7) || kx_starts(c, "libpod-", 7))
        return true;
    for (__u32 i = 0; i < KX_CG_LEN; i++) {
        const char *at = &c[i & (KX_CG_LEN - 1)];
        char ch = *at;

        if (ch == '\0')
            break;
        if (ch == ':' && (kx_starts(at, ":cri-containerd:", 16) || kx_starts(at, ":crio:", 6) ||
                          kx_starts(at, ":docker:", 8)))
            return true;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            hex = false;
    }
    return hex && n == 65;
}

/* comm (16 bytes, NUL-padded) equals one of the rule's names? */
static __always_inline bool kx_rule_names(const struct kx_kill_rule *r, const char *comm)
{
    __u64 c0 = kx_ld64(comm), c1 = kx_ld64(comm + 8);

    for (int i = 0; i < KX_KILL_NAMES; i++) {
        if (i >= r->n_names)
            break;
        if (kx_ld64(r->names[i]) == c0 && kx_ld64(r->names[i] + 8) == c1)
            return true;
    }
    return false;
}

/* exe (zero-padded to KX_KILL_PATH_LEN, 8-aligned) equals, or starts with
 * when the prefix bit is set, one of the rule's paths (zero-padded by user
 * space)? Word compares: the bytes after a rule path's NUL are zero, so for
 * a prefix only its non-zero bytes count; for equality all must match,
 * including the NUL, which rules out a longer exe. */
static __always_inline bool kx_rule_paths(const struct kx_kill_rule *r, const char *exe)
{
    for (int i = 0; i < KX_KILL_PATHS; i++) {
        bool prefix = r->path_prefix & (1u << i);
        bool ok = true;

        if (i >= r->n_paths)
            break;
        for (int k = 0; k < KX_CMP_WORDS; k++) {
            __u64 rw = kx_ld64(&r->paths[i][k * 8]);
            __u64 diff = rw ^ kx_ld64(exe + k * 8);

            if (prefix)
                diff &= kx_nonzero_bytes(rw);
            if (diff) {
                ok = false;
                break;
            }
        }
        if (ok)
            return true;
    }
    return false;
}

/* Global, verified once (see kx_path_append()): 1 when the task's cgroup
 * looks like a container's. */
__noinline int kx_in_container(void)
{
    struct kx_scratch *s = kx_get_scratch();

    if (!s)
        return 0;
    return kx_cgroup_is_container(s, (struct task_struct *)bpf_get_current_task());
}

/* Global, verified once: 1 when the comm and exe path of the EXEC record in
 * the scratch (slot 0, zero-padded to KX_KILL_PATH_LEN) satisfy rule idx's
 * name and path lists. */
__noinline int kx_rule_matches(__u32 idx)
{
    struct kx_scratch *s = kx_get_scratch();
    struct kx_kill_rule *r = bpf_map_lookup_elem(&kx_kill, &idx);
    struct kx_event *e;

    if (!s || !r)
        return 0;
    e = (struct kx_event *)s->rec;
    if (r->n_names && !kx_rule_names(r, e->task.comm))
        return 0;
    if (r->n_paths && !kx_rule_paths(r, e->data))
        return 0;
    return 1;
}

/* The id of the first active kx_kill rule that matches the EXEC record in
 * the scratch, or -1. Rules are ANDs of their set conditions. */
static __always_inline int kx_kill_check(void)
{
    int in_ctr = -1; /* the cgroup is looked at once, and only if a rule asks */

    for (__u32 i = 0; i < KX_KILL_RULES; i++) {
        __u32 k = i;
        struct kx_kill_rule *r = bpf_map_lookup_elem(&kx_kill, &k);

        if (!r)
            break;
        if (!r->active || !kx_rule_matches(i))
            continue;
        if (r->need_container) {
            if (in_ctr < 0)
                in_ctr = kx_in_container();
            if (!in_ctr)
                continue;
        }
        return r->id & 0x7fffffff;
    }
    return -1;
}

/* ---- sched events ------------------------------------------------------- */

SEC("tp/syscalls/sys_enter_execveat")
int kx_enter_execveat_mark(struct trace_event_raw_sys_enter *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 one = 1;

    bpf_map_update_elem(&kx_execveat, &id, &one, BPF_ANY);
    return 0;
}

/* A failed execveat takes its mark back here; a successful one had it
 * consumed at sched_process_exec (possibly under another pid after
 * de_thread()), so this delete is then a no-op. */
SEC("tp/syscalls/sys_exit_execveat")
int kx_exit_execveat_mark(struct trace_event_raw_sys_exit *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();

    bpf_map_delete_elem(&kx_execveat, &id);
    return 0;
}

SEC("tp/sched/sched_process_exec")
int kx_on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    struct task_struct *parent, *gparent;
    struct kx_scratch *s;
    struct kx_event *e;
    struct file *exe;
    struct inode *ino;
    __u64 arg_start, arg_end, key, len;
    __u32 pos = 0, off, enforce = kx_enforce;
    bool on = kx_kind_enabled(KX_K_EXEC);
    int rule = -1;

    if (kx_is_self() || (!on && !enforce))
        return 0;
    s = kx_get_scratch();
    if (!s)
        return 0;
    e = kx_begin(s, KX_K_EXEC);
    parent = BPF_CORE_READ(t, real_parent);
    gparent = BPF_CORE_READ(parent, real_parent);
    e->gppid = BPF_CORE_READ(gparent, tgid);
    BPF_CORE_READ_STR_INTO(&e->pcomm, parent, comm);
    BPF_CORE_READ_STR_INTO(&e->gpcomm, gparent, comm);

    key = ((__u64)e->task.tgid << 32) | (__u32)ctx->old_pid;
    if (bpf_map_lookup_elem(&kx_execveat, &key)) {
        e->flags |= KX_F_EXECVEAT;
        bpf_map_delete_elem(&kx_execveat, &key);
    }

    /* slot 0: exe path, zero-padded to KX_KILL_PATH_LEN for kx_rule_paths() */
#pragma unroll
    for (int k = 0; k < KX_CMP_WORDS; k++)
        *(__u64 *)&e->data[k * 8] = 0;
    exe = BPF_CORE_READ(t, mm, exe_file);
    pos = kx_put_file_path(e, pos, 0, exe);
    ino = BPF_CORE_READ(exe, f_inode);
    e->aux = BPF_CORE_READ(ino, i_ino);
    {
        char nm[8] = {};

        bpf_probe_read_kernel(nm, 6, BPF_CORE_READ(exe, f_path.dentry, d_name.name));
        if (kx_starts(nm, "memfd:", 6) && BPF_CORE_READ(ino, i_nlink) == 0)
            e->flags |= KX_F_EXE_MEMFD;
    }
    if (BPF_CORE_READ(ino, i_sb, s_magic) == KX_OVERLAYFS_MAGIC &&
        bpf_core_type_exists(struct ovl_inode___kx)) {
        struct ovl_inode___kx *oi = kx_container_of(ino, struct ovl_inode___kx, vfs_inode);

        if (BPF_CORE_READ(oi, __upperdentry))
            e->flags |= KX_F_EXE_UPPER;
    }

    /* Enforcement now, while slot 0 is still followed by zeros (the word
     * compares of kx_rule_paths() need that; slot 1 is packed right after). */
    if (enforce) {
        rule = kx_kill_check();
        if (rule >= 0) {
            bpf_send_signal(KX_SIGKILL);
            e->flags |= KX_F_KILLED;
            e->aux = (__u32)rule;
        }
    }

    /* slot 1: argv, as the new image's stack holds it */
    arg_start = BPF_CORE_READ(t, mm, arg_start);
    arg_end = BPF_CORE_READ(t, mm, arg_end);
    len = arg_end > arg_start ? arg_end - arg_start : 0;
    if (len > KX_STR_MAX) {
        len = KX_STR_MAX;
        e->flags |= KX_F_TRUNC;
    }
    if (len > 0) {
        char *dst = &e->data[pos & KX_POS_MASK];

        if (bpf_probe_read_user(dst, len, (const void *)arg_start) == 0) {
            dst[(len - 1) & (KX_STR_MAX - 1)] = '\0';
        } else {
            dst[0] = '\0';
            len = 1;
            e->flags |= KX_F_STR_ERR;
        }
        e->str_len[1] = len;
        pos += len;
    }

    /* slot 2: cwd; slot 3: filename as passed */
    pos = kx_put_cwd(e, pos, 2, t);
    off = ctx->__data_loc_filename & 0xFFFF;
    pos = kx_put_kernel_str(e, pos, 3, (void *)ctx + off);

    if (!on && rule < 0)
        return 0; /* EXEC off: only enforcement brought us here */
    return kx_emit(s, e, pos);
}

/* raw_tp, not tp: the tracepoint's record has the child's pid but not its
 * tgid, and only new processes (not threads) are reported. */
SEC("raw_tp/sched_process_fork")
int kx_on_fork(struct bpf_raw_tracepoint_args *ctx)
{
    struct task_struct *child = (struct task_struct *)ctx->args[1];
    struct kx_scratch *s;
    struct kx_event *e;
    __u32 pid, tgid;

    if (kx_is_self() || !kx_kind_enabled(KX_K_FORK))
        return 0;
    pid = BPF_CORE_READ(child, pid);
    tgid = BPF_CORE_READ(child, tgid);
    if (pid != tgid)
        return 0;
    s = kx_get_scratch();
    if (!s)
        return 0;
    e = kx_begin(s, KX_K_FORK);
    e->ret = tgid;
    e->aux = kx_task_start(child);
    return kx_emit(s, e, 0);
}

SEC("tp/sched/sched_process_exit")
int kx_on_exit(void *ctx)
{
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    __u64 id = bpf_get_current_pid_tgid();
    struct kx_scratch *s;
    struct kx_event *e;
    __u32 code;

    if ((__u32)id != id >> 32 || kx_is_self() || !kx_kind_enabled(KX_K_EXIT))
        return 0;
    s = kx_get_scratch();
    if (!s)
        return 0;
    e = kx_begin(s, KX_K_EXIT);
    code = BPF_CORE_READ(t, exit_code);
    e->ret = code >> 8;
    e->aux = code; /* raw wait status: low 7 bits = killing signal */
    return kx_emit(s, e, 0);
}

/* ---- syscalls: generic enter / exit ------------------------------------ */

/* nargs: how many arguments the syscall's tracepoint record carries. The
 * record is only that long: a direct ctx load past it makes attach fail
 * with EACCES, a copy past it would pick up whatever follows. */
static __always_inline int kx_sys_enter(struct trace_event_raw_sys_enter *ctx, __u32 kind,
                                        int nargs)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct kx_inflight in = {.kind = kind};

    if (kx_is_self() || !kx_kind_enabled(kind))
        return 0;
    /* a copy, not ctx->args[i] loads: clang turns those into a moved ctx
     * pointer the verifier refuses to dereference */
    bpf_probe_read_kernel(in.args, nargs * sizeof(in.args[0]), ctx->args);

    /* Opens nobody asked for are dropped before any work. */
    if (kind == KX_K_OPEN || kind == KX_K_OPENAT) {
        __u64 flags = kind == KX_K_OPEN ? in.args[1] : in.args[2];

        if (kx_open_precheck(flags) < 0) {
            kx_count(&kx_filtered, kind);
            return 0;
        }
    }
    if (bpf_map_update_elem(&kx_inflight, &id, &in, BPF_ANY))
        kx_count(&kx_drops, KX_DROP_INFLIGHT_FULL);
    return 0;
}

/* open, openat, openat2 at exit. Returns the new pos, or -1: filtered. */
static __always_inline int kx_open_at_exit(struct kx_event *e, struct task_struct *t, __u32 kind)
{
    __u64 *a = e->args;
    __u64 path = kind == KX_K_OPEN ? a[0] : a[1];
    __s32 dirfd = kind == KX_K_OPEN ? KX_AT_FDCWD : (__s32)a[0];
    __u64 flags;
    __u32 pos = 0;

    if (kind == KX_K_OPENAT2) {
        struct open_how how = {};

        /* the decoder expects how->flags and how->mode in args[2..3] */
        bpf_probe_read_user(&how, sizeof(how), (const void *)a[2]);
        a[2] = how.flags;
        a[3] = how.mode;
        if (kx_open_precheck(how.flags) < 0)
            return -1;
    }
    flags = kind == KX_K_OPEN ? a[1] : a[2];
    if (flags & KX_OPEN_WRITE_FLAGS)
        e->flags |= KX_F_OPEN_WRITE;
    if (e->ret >= 0) {
        struct file *f = kx_fd_file(t, e->ret);

        if (f) {
            pos = kx_put_file_path(e, 0, 0, f);
            e->flags |= KX_F_RESOLVED;
        }
    }
    if (!(e->flags & KX_F_RESOLVED))
        pos = kx_put_user_str(e, 0, 0, path);
    if (!kx_open_wanted(flags))
        return -1;
    if (!(e->flags & KX_F_RESOLVED))
        pos = kx_put_base(e, pos, 0, 0, dirfd, t);
    return pos;
}

static __always_inline int kx_sys_exit_ret(__u32 kind, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct task_struct *t;
    struct kx_inflight *in;
    struct kx_scratch *s;
    struct kx_event *e;
    __u64 *a;
    int pos = 0;

    in = bpf_map_lookup_elem(&kx_inflight, &id);
    if (!in)
        return 0;
    if (in->kind != kind) { /* a stale entry: ours went missing */
        bpf_map_delete_elem(&kx_inflight, &id);
        return 0;
    }
    s = kx_get_scratch();
    if (!s) {
        bpf_map_delete_elem(&kx_inflight, &id);
        return 0;
    }
    e = kx_begin(s, kind);
    __builtin_memcpy(e->args, in->args, sizeof(e->args));
    bpf_map_delete_elem(&kx_inflight, &id);
    e->ret = ret;
    a = e->args;
    t = (struct task_struct *)bpf_get_current_task();

    switch (kind) {
    case KX_K_OPEN:
    case KX_K_OPENAT:
    case KX_K_OPENAT2:
        pos = kx_open_at_exit(e, t, kind);
        if (pos < 0) {
            kx_count(&kx_filtered, kind);
            return 0;
        }
        break;
    case KX_K_UNLINK:
    case KX_K_CHMOD:
        pos = kx_put_path_arg(e, 0, 0, KX_AT_FDCWD, a[0], t);
        break;
    case KX_K_UNLINKAT:
    case KX_K_FCHMODAT:
        pos = kx_put_path_arg(e, 0, 0, (__s32)a[0], a[1], t);
        break;
    case KX_K_FCHMOD: {
        struct file *f = kx_fd_file(t, (__s32)a[0]);

        if (f) {
            pos = kx_put_file_path(e, 0, 0, f);
            e->flags |= KX_F_RESOLVED;
        }
        break;
    }
    case KX_K_RENAME:
    case KX_K_LINK:
        pos = kx_put_path_arg(e, 0, 0, KX_AT_FDCWD, a[0], t);
        pos = kx_put_path_arg(e, pos, 2, KX_AT_FDCWD, a[1], t);
        break;
    case KX_K_RENAMEAT:
    case KX_K_RENAMEAT2:
    case KX_K_LINKAT:
        pos = kx_put_path_arg(e, 0, 0, (__s32)a[0], a[1], t);
        pos = kx_put_path_arg(e, pos, 2, (__s32)a[2], a[3], t);
        break;
    case KX_K_SYMLINK:
        pos = kx_put_user_str(e, 0, 0, a[0]);
        pos = kx_put_path_arg(e, pos, 2, KX_AT_FDCWD, a[1], t);
        break;
    case KX_K_SYMLINKAT:
        pos = kx_put_user_str(e, 0, 0, a[0]);
        pos = kx_put_path_arg(e, pos, 2, (__s32)a[1], a[2], t);
        break;
    case KX_K_MOUNT: {
        __u32 p1;

        pos = kx_put_user_str(e, 0, 0, a[0]);
        p1 = pos;
        pos = kx_put_user_str(e, pos, 1, a[1]);
        pos = kx_put_user_str(e, pos, 2, a[2]);
        /* slot 3: the base of a relative target (slot 1) */
        if (e->str_len[1] && e->data[p1 & KX_POS_MASK] != '/' && e->data[p1 & KX_POS_MASK])
            pos = kx_put_cwd(e, pos, 3, t);
        break;
    }
    case KX_K_CONNECT:
        if (ret == 0 || ret == -KX_EINPROGRESS)
            kx_fill_sock(e, kx_fd_file(t, (__s32)a[0]));
        break;
    case KX_K_ACCEPT:
    case KX_K_ACCEPT4:
        if (ret == -KX_EAGAIN) { /* a non-blocking accept loop polling: noise */
            kx_count(&kx_filtered, kind);
            return 0;
        }
        if (ret >= 0)
            kx_fill_sock(e, kx_fd_file(t, ret));
        break;
    case KX_K_LISTEN:
        kx_fill_sock(e, kx_fd_file(t, (__s32)a[0]));
        break;
    case KX_K_DUP:
    case KX_K_DUP2:
    case KX_K_DUP3:
        if (ret >= 0)
            kx_fill_sock(e, kx_fd_file(t, ret));
        break;
    case KX_K_CAPSET: {
        __u32 version = 0, eff[2] = {};

        /* struct __user_cap_header_struct {version, pid} and data[1 or 2]
         * of {effective, permitted, inheritable} */
        bpf_probe_read_user(&version, sizeof(version), (const void *)a[0]);
        if (a[1]) {
            bpf_probe_read_user(&eff[0], 4, (const void *)a[1]);
            if (version != KX_CAP_V1)
                bpf_probe_read_user(&eff[1], 4, (const void *)(a[1] + 12));
        }
        e->aux = ((__u64)eff[1] << 32) | eff[0];
        break;
    }
    case KX_K_BPF:
        if ((__u32)a[0] == KX_BPF_PROG_LOAD && a[1]) {
            __u32 prog_type = 0;

            bpf_probe_read_user(&prog_type, sizeof(prog_type), (const void *)a[1]);
            e->aux = prog_type; /* union bpf_attr starts with prog_type */
        }
        break;
    case KX_K_MEMFD_CREATE:
        pos = kx_put_user_str(e, 0, 0, a[0]);
        break;
    case KX_K_INIT_MODULE:
        pos = kx_put_user_str(e, 0, 0, a[2]);
        break;
    case KX_K_FINIT_MODULE: {
        struct file *f = kx_fd_file(t, (__s32)a[0]);

        pos = kx_put_user_str(e, 0, 0, a[1]);
        if (f) {
            pos = kx_put_file_path(e, pos, 1, f);
        }
        break;
    }
    default: /* ids, namespaces, ptrace, kill, socket...: args + ret only */
        break;
    }
    return kx_emit(s, e, pos);
}

static __always_inline int kx_sys_exit(struct trace_event_raw_sys_exit *ctx, __u32 kind)
{
    return kx_sys_exit_ret(kind, ctx->ret);
}

/* One enter/exit program pair per syscall tracepoint. */
#define KX_SYSCALL(sc, kind, nargs)                                                                \
    SEC("tp/syscalls/sys_enter_" #sc)                                                              \
    int kx_enter_##sc(struct trace_event_raw_sys_enter *ctx)                                       \
    {                                                                                              \
        return kx_sys_enter(ctx, kind, nargs);                                                     \
    }                                                                                              \
    SEC("tp/syscalls/sys_exit_" #sc)                                                               \
    int kx_exit_##sc(struct trace_event_raw_sys_exit *ctx)                                         \
    {                                                                                              \
        return kx_sys_exit(ctx, kind);                                                             \
    }

KX_SYSCALL(open, KX_K_OPEN, 3)
KX_SYSCALL(openat, KX_K_OPENAT, 4)
KX_SYSCALL(openat2, KX_K_OPENAT2, 4)
KX_SYSCALL(unlink, KX_K_UNLINK, 1)
KX_SYSCALL(unlinkat, KX_K_UNLINKAT, 3)
KX_SYSCALL(rename, KX_K_RENAME, 2)
KX_SYSCALL(renameat, KX_K_RENAMEAT, 4)
KX_SYSCALL(renameat2, KX_K_RENAMEAT2, 5)
KX_SYSCALL(symlink, KX_K_SYMLINK, 2)
KX_SYSCALL(symlinkat, KX_K_SYMLINKAT, 3)
KX_SYSCALL(link, KX_K_LINK, 2)
KX_SYSCALL(linkat, KX_K_LINKAT, 5)
KX_SYSCALL(chmod, KX_K_CHMOD, 2)
KX_SYSCALL(fchmod, KX_K_FCHMOD, 2)
KX_SYSCALL(fchmodat, KX_K_FCHMODAT, 3)
KX_SYSCALL(fchmodat2, KX_K_FCHMODAT, 4)
KX_SYSCALL(mount, KX_K_MOUNT, 5)
KX_SYSCALL(connect, KX_K_CONNECT, 3)
KX_SYSCALL(accept, KX_K_ACCEPT, 3)
KX_SYSCALL(accept4, KX_K_ACCEPT4, 4)
KX_SYSCALL(socket, KX_K_SOCKET, 3)
KX_SYSCALL(listen, KX_K_LISTEN, 2)
KX_SYSCALL(dup, KX_K_DUP, 1)
KX_SYSCALL(dup2, KX_K_DUP2, 2)
KX_SYSCALL(dup3, KX_K_DUP3, 3)
KX_SYSCALL(setuid, KX_K_SETUID, 1)
KX_SYSCALL(setgid, KX_K_SETGID, 1)
KX_SYSCALL(setreuid, KX_K_SETREUID, 2)
KX_SYSCALL(setregid, KX_K_SETREGID, 2)
KX_SYSCALL(setresuid, KX_K_SETRESUID, 3)
KX_SYSCALL(setresgid, KX_K_SETRESGID, 3)
KX_SYSCALL(capset, KX_K_CAPSET, 2)
KX_SYSCALL(unshare, KX_K_UNSHARE, 1)
KX_SYSCALL(setns, KX_K_SETNS, 2)
KX_SYSCALL(ptrace, KX_K_PTRACE, 4)
KX_SYSCALL(init_module, KX_K_INIT_MODULE, 3)
KX_SYSCALL(finit_module, KX_K_FINIT_MODULE, 3)
KX_SYSCALL(bpf, KX_K_BPF, 3)
KX_SYSCALL(memfd_create, KX_K_MEMFD_CREATE, 2)
KX_SYSCALL(kill, KX_K_KILL, 2)
KX_SYSCALL(tkill, KX_K_TKILL, 2)
KX_SYSCALL(tgkill, KX_K_TGKILL, 3)
KX_SYSCALL(process_vm_writev, KX_K_PROCESS_VM_WRITEV, 6)

/*
 * Fallback for kernels without syscalls:sys_*_init_module: they were built
 * without CONFIG_MODULES, so both calls are sys_ni_syscall and fail with
 * ENOSYS, yet an attempt is still worth reporting. This program runs on
 * every syscall of the node (~0.25 us each here), so user space loads it
 * only when a module kind is wanted and the tracepoints are missing, and it
 * is enter-only: the result is known (-ENOSYS), so the record is emitted at
 * once instead of paying for a second program on every sys_exit.
 */
SEC("tp/raw_syscalls/sys_enter")
int kx_raw_enter_module(struct trace_event_raw_sys_enter *ctx)
{
    long nr = ctx->id;
    __u32 kind;

    if (nr == KX_NR_INIT_MODULE)
        kind = KX_K_INIT_MODULE;
    else if (nr == KX_NR_FINIT_MODULE)
        kind = KX_K_FINIT_MODULE;
    else
        return 0;
    kx_sys_enter(ctx, kind, 6);
    return kx_sys_exit_ret(kind, -KX_ENOSYS);
}
