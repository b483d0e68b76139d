/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.c - names of the event kinds (evt.type), both ways (see sevent.h).
 */
#include <string.h>

#include "sevent.h"
#include "util.h"

static const char *const kx_kind_names[KX_K_MAX] = {
    [KX_K_EXEC] = "execve",
    [KX_K_FORK] = "clone",
    [KX_K_EXIT] = "procexit",
    [KX_K_OPEN] = "open",
    [KX_K_OPENAT] = "openat",
    [KX_K_OPENAT2] = "openat2",
    [KX_K_UNLINK] = "unlink",
    [KX_K_UNLINKAT] = "unlinkat",
    [KX_K_RENAME] = "rename",
    [KX_K_RENAMEAT] = "renameat",
    [KX_K_RENAMEAT2] = "renameat2",
    [KX_K_SYMLINK] = "symlink",
    [KX_K_SYMLINKAT] = "symlinkat",
    [KX_K_LINK] = "link",
    [KX_K_LINKAT] = "linkat",
    [KX_K_CHMOD] = "chmod",
    [KX_K_FCHMOD] = "fchmod",
    [KX_K_FCHMODAT] = "fchmodat",
    [KX_K_MOUNT] = "mount",
    [KX_K_CONNECT] = "connect",
    [KX_K_ACCEPT] = "accept",
    [KX_K_ACCEPT4] = "accept4",
    [KX_K_SOCKET] = "socket",
    [KX_K_LISTEN] = "listen",
    [KX_K_DUP] = "dup",
    [KX_K_DUP2] = "dup2",
    [KX_K_DUP3] = "dup3",
    [KX_K_SETUID] = "setuid",
    [KX_K_SETGID] = "setgid",
    [KX_K_SETREUID] = "setreuid",
    [KX_K_SETREGID] = "setregid",
    [KX_K_SETRESUID] = "setresuid",
    [KX_K_SETRESGID] = "setresgid",
    [KX_K_CAPSET] = "capset",
    [KX_K_UNSHARE] = "unshare",
    [KX_K_SETNS] = "setns",
    [KX_K_PTRACE] = "ptrace",
    [KX_K_INIT_MODULE] = "init_module",
    [KX_K_FINIT_MODULE] = "finit_module",
    [KX_K_BPF] = "bpf",
    [KX_K_MEMFD_CREATE] = "memfd_create",
    [KX_K_KILL] = "kill",
    [KX_K_TKILL] = "tkill",
    [KX_K_TGKILL] = "tgkill",
    [KX_K_PROCESS_VM_WRITEV] = "process_vm_writev",
};

/* Names Falco uses for what one of our kinds covers. */
static const struct {
    const char *name;
    enum kx_kind kind;
} kx_kind_aliases[] = {
    {"execveat", KX_K_EXEC}, {"fork", KX_K_FORK},          {"vfork", KX_K_FORK},
    {"clone3", KX_K_FORK},   {"fchmodat2", KX_K_FCHMODAT},
};

const char *kx_kind_name(enum kx_kind k)
{
    if ((unsigned)k >= KX_K_MAX || !kx_kind_names[k])
        return "unknown";
    return kx_kind_names[k];
}

int kx_kind_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < KX_K_MAX; k++)
        if (kx_kind_names[k] && strcmp(kx_kind_names[k], name) == 0)
            return k;
    for (size_t i = 0; i < KX_ARRAY_SIZE(kx_kind_aliases); i++)
        if (strcmp(kx_kind_aliases[i].name, name) == 0)
            return (int)kx_kind_aliases[i].kind;
    return -1;
}
