#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: runs the benchmarks and appends their results, with the
# machine, the command and the date, to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export KX_BUILD=${KX_BUILD:-$PWD/build}
out=$(mktemp)
{
    echo
    echo "## $(date -u +%F) — \`make bench\`"
    echo
    echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)," \
         "$(. /etc/os-release; echo "$PRETTY_NAME"), nats-server $(nats-server --version | awk '{print $NF}')"
    echo
    /usr/bin/python3 bench/hub_throughput.py
    /usr/bin/python3 bench/outputs_throughput.py
    /usr/bin/python3 bench/respond_latency.py
    /usr/bin/python3 bench/ws_fanout.py
    /usr/bin/python3 bench/sensor_latency.py
    /usr/bin/python3 bench/sensor_overhead.py
} | tee "$out"
cat "$out" >> bench/RESULTS.md
rm -f "$out"
