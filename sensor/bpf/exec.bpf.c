// SPDX-License-Identifier: GPL-2.0-only
/*
 * exec.bpf.c - CO-RE probe on the sched:sched_process_exec tracepoint.
 *
 * For every successful exec it sends one struct kx_exec_event (event.h)
 * through the kx_events ring buffer: ids, credentials, cgroup id, comm,
 * parent comm, the exe path from the tracepoint's __data_loc filename, the
 * start of argv and the task's start time. A tracepoint (not a kprobe, fentry or LSM hook) so it
 * loads on kernels that have none of those.
 *
 * A full ring buffer is never silent: the failed reserve is counted in the
 * per-CPU kx_drops map, which user space sums and reports.
 *
 * License "GPL": bpf_get_current_task() and bpf_probe_read_kernel*() (used by
 * BPF_CORE_READ) are GPL-only helpers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "event.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader between open and load: the sensor's own tgid, whose
 * execs (none today, helpers later) must not feed back into the sensor. */
const volatile __u32 kx_self_tgid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, KX_RINGBUF_BYTES);
} kx_events SEC(".maps");

/* Per-CPU, so counting needs no atomics; user space sums all CPUs. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, KX_DROP_REASONS);
    __type(key, __u32);
    __type(value, __u64);
} kx_drops SEC(".maps");

static __always_inline void kx_count_drop(__u32 reason)
{
    __u64 *n = bpf_map_lookup_elem(&kx_drops, &reason);

    if (n)
        *n += 1;
}

SEC("tp/sched/sched_process_exec")
int kx_on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    struct kx_exec_event *e;
    struct task_struct *task, *parent;
    struct mm_struct *mm;
    __u64 arg_start, arg_end;
    __u64 uid_gid;
    __u32 off;
    long n;

    if (kx_self_tgid && tgid == kx_self_tgid)
        return 0;

    e = bpf_ringbuf_reserve(&kx_events, sizeof(*e), 0);
    if (!e) {
        kx_count_drop(KX_DROP_RINGBUF_FULL);
        return 0;
    }

    task = (struct task_struct *)bpf_get_current_task();
    parent = BPF_CORE_READ(task, real_parent);
    uid_gid = bpf_get_current_uid_gid();

    e->hdr.type = KX_EVENT_EXEC;
    e->hdr.size = sizeof(*e);
    e->ktime_ns = bpf_ktime_get_ns();
    e->start_ns = BPF_CORE_READ(task, start_time);
    e->cgroup_id = bpf_get_current_cgroup_id();
    e->pid = (__u32)pid_tgid;
    e->tgid = tgid;
    e->ppid = BPF_CORE_READ(parent, tgid);
    e->uid = (__u32)uid_gid;
    e->gid = (__u32)(uid_gid >> 32);
    e->flags = 0;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    if (bpf_core_read_str(e->pcomm, sizeof(e->pcomm), &parent->comm) < 0)
        e->pcomm[0] = '\0';

    /* __data_loc: low 16 bits = offset of the string from the record start. */
    off = ctx->__data_loc_filename & 0xFFFF;
    n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
    if (n < 0) {
        e->filename[0] = '\0';
        e->flags |= KX_EXEC_F_PATH_ERR;
    } else if (n == sizeof(e->filename)) {
        e->flags |= KX_EXEC_F_PATH_TRUNC; /* may be exact fit; erring on "truncated" */
    }

    /* argv now, while it is certainly there: a shell run as "sh -c true"
     * is gone before user space could read /proc/<pid>/cmdline. */
    mm = BPF_CORE_READ(task, mm);
    arg_start = BPF_CORE_READ(mm, arg_start);
    arg_end = BPF_CORE_READ(mm, arg_end);
    e->args_len = 0;
    e->reserved = 0;
    if (arg_end > arg_start) {
        __u64 len = arg_end - arg_start;

        if (len > sizeof(e->args)) {
            len = sizeof(e->args);
            e->flags |= KX_EXEC_F_ARGS_TRUNC;
        }
        if (bpf_probe_read_user(e->args, len, (const void *)arg_start) == 0)
            e->args_len = (__u32)len;
        else
            e->flags |= KX_EXEC_F_ARGS_ERR;
    }

    bpf_ringbuf_submit(e, 0);
    return 0;
}
