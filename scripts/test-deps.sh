#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the integration tests need beyond scripts/deps.sh: checks that the
# environment can do its job and fails loudly when it cannot (no silent skips).
set -euo pipefail
bash "$(dirname "$0")/deps.sh"
if [ "$(id -u)" -ne 0 ]; then
    echo "test: the integration tests load eBPF programs and create cgroups: run as root" >&2
    exit 1
fi
if [ ! -r /sys/kernel/btf/vmlinux ]; then
    echo "test: /sys/kernel/btf/vmlinux is missing: the sensor needs a kernel with BTF" >&2
    exit 1
fi
if [ ! -d /sys/fs/cgroup/unified ] && ! grep -q cgroup2 /proc/mounts; then
    echo "test: no cgroup v2 hierarchy mounted (want /sys/fs/cgroup/unified)" >&2
    exit 1
fi
