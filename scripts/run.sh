#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make run`: the embedded default on one machine. Starts a local
# nats-server with JetStream in a temp dir, the hub and (as root) the
# sensor with config/ defaults, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NATS_PORT=${NATS_PORT:-4222}
HTTP_PORT=${HTTP_PORT:-2801}
work=$(mktemp -d /tmp/klaxon-run.XXXXXX)
pids=()

cleanup() {
    trap - EXIT INT TERM
    echo
    echo "klaxon: stopping"
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        wait "${pids[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_busy "$NATS_PORT"; then
    echo "klaxon: port $NATS_PORT is in use; set NATS_PORT=... (or stop the other nats-server)" >&2
    exit 1
fi
if port_busy "$HTTP_PORT"; then
    echo "klaxon: port $HTTP_PORT is in use; set HTTP_PORT=..." >&2
    exit 1
fi

# setsid: Ctrl-C reaches only this script, which stops the daemons in
# reverse order (sensor, hub, then NATS) so none sees the others vanish.
setsid nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$work/jetstream" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do port_busy "$NATS_PORT" && break; sleep 0.1; done
port_busy "$NATS_PORT" || { cat "$work/nats.log" >&2; exit 1; }

export NATS_URL="nats://127.0.0.1:$NATS_PORT" HTTP_PORT
setsid "$BUILD/bin/klaxon-hub" -c config/hub.yaml &
pids+=($!)
for _ in $(seq 50); do port_busy "$HTTP_PORT" && break; sleep 0.1; done

if [ "$(id -u)" -eq 0 ]; then
    setsid "$BUILD/bin/klaxon-sensor" -c config/sensor.yaml &
    pids+=($!)
else
    echo "klaxon: not root, so the sensor (eBPF) is not started; run 'sudo make run' for it" >&2
fi

cat <<EOF2

  Klaxon is running.
    NATS (JetStream)   nats://127.0.0.1:$NATS_PORT   (data in $work)
    web UI             http://127.0.0.1:$HTTP_PORT/ui/
    hub HTTP           http://127.0.0.1:$HTTP_PORT/   API: /api/v1/alerts  live: /ws  health: /healthz  metrics: /metrics
    alerts             printed below by the console output
  Try it:
    curl -s -XPOST localhost:$HTTP_PORT/ -d '{"rule":"Test","priority":"Warning","time":"$(date -u +%FT%TZ)","output":"hello"}'
  or start a shell in a container. Ctrl-C stops everything.

EOF2
wait -n "${pids[@]}" || true
