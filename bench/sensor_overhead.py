# SPDX-License-Identifier: Apache-2.0
"""Sensor overhead: the same workloads with and without klaxon-sensor
attached, alternating in one run (medians of ROUNDS each), then a 50k
events/s burst that must be handled with zero drops, and the sensor's RSS.

Workloads:
  script   a shell loop running ls, cat and id (exec-heavy, as a CI job or an
           entrypoint script is)
  tar      tar of /usr/share/doc and /usr/include into wc (open-heavy: ~13k
           files opened and read)
  and micro-benchmarks in C (bench/load.c), where the syscall is all there is,
  to show the per-operation cost:
  exec     N x fork + exec /bin/true + wait (every exec reaches user space)
  open     N x open(O_RDONLY)+close of a file no rule wants (prefiltered in the kernel)
  write    N x open(O_WRONLY|O_CREAT|O_TRUNC)+close in /tmp (reaches user space:
           the default rules need every write-open)
Needs root. The sensor runs the default ruleset (config/rules/)."""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import NatsServer, free_port  # noqa: E402
from test_sensor import Sensor  # noqa: E402

BUILD = Path(os.environ.get("KX_BUILD", ROOT / "build"))
ROUNDS = int(os.environ.get("BENCH_OVERHEAD_ROUNDS", "5"))
N_EXEC = int(os.environ.get("BENCH_EXEC_N", "2000"))
N_OPEN = int(os.environ.get("BENCH_OPEN_N", "200000"))
N_WRITE = int(os.environ.get("BENCH_WRITE_N", "100000"))
RATE = int(os.environ.get("BENCH_RATE", "50000"))
RATE_SECS = float(os.environ.get("BENCH_RATE_SECS", "5"))


def build_load():
    exe = BUILD / "bench" / "load"
    exe.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", str(ROOT / "bench" / "load.c"),
                    "-o", str(exe)], check=True)
    return exe


def run(load, *args):
    if args and args[0] == "sh":  # a shell workload: wall time measured here
        t0 = time.monotonic()
        subprocess.run(["/bin/sh", "-c", args[1]], check=True, stdout=subprocess.DEVNULL)
        return [time.monotonic() - t0]
    out = subprocess.run([str(load)] + [str(a) for a in args], check=True,
                         capture_output=True, text=True).stdout.split()
    return [float(x) for x in out]


SCRIPT = ("i=0; while [ $i -lt %d ]; do ls /tmp >/dev/null; cat /etc/hostname >/dev/null; "
          "id >/dev/null; i=$((i+1)); done" % int(os.environ.get("BENCH_SCRIPT_N", "300")))
TAR = "tar cf - /usr/share/doc /usr/include 2>/dev/null | wc -c"


def metrics(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    vals = {}
    for line in text.splitlines():
        m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            key = (m.group(1), labels.get("type") or labels.get("reason") or "")
            vals[key] = float(m.group(3))
    return vals


def cpu_seconds(pid):
    f = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid, key="VmRSS"):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def main():
    assert os.geteuid() == 0, "the sensor benchmark loads BPF: run as root"
    load = build_load()
    workloads = [("script: ls+cat+id loop (exec-heavy)", ["sh", SCRIPT], 0),
                 ("tar of /usr/share/doc + /usr/include (open-heavy)", ["sh", TAR], 0),
                 ("micro: exec /bin/true", ["exec", N_EXEC], N_EXEC),
                 ("micro: open O_RDONLY (prefiltered)", ["open", N_OPEN, "/etc/hostname"], N_OPEN),
                 ("micro: open O_WRONLY (to user space)", ["write", N_WRITE, None], N_WRITE)]
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "w"
        for w in workloads:
            if w[1][-1] is None:
                w[1][-1] = target
        nats = NatsServer(tmp)
        times = {name: {"off": [], "on": []} for name, _, _ in workloads}
        port = None
        sensor = None
        try:
            for r in range(ROUNDS):
                for name, args, _ in workloads:
                    times[name]["off"].append(run(load, *args)[0])
                port = free_port()
                sensor = Sensor(tmp, nats.url, "bench%d" % r, ensure_stream="true",
                                metrics_port=port, queue_size=100000)
                sensor.wait_attached()
                for name, args, _ in workloads:
                    times[name]["on"].append(run(load, *args)[0])
                if r < ROUNDS - 1:
                    sensor.stop()
                    sensor = None

            # The burst, on the last round's sensor.
            before = metrics(port)
            cpu0 = cpu_seconds(sensor.proc.pid)
            secs, done, achieved = run(load, "rate", RATE, RATE_SECS, target)
            time.sleep(1.0)  # let user space drain the ring buffer
            cpu1 = cpu_seconds(sensor.proc.pid)
            after = metrics(port)
            rss = rss_kib(sensor.proc.pid)
            hwm = rss_kib(sensor.proc.pid, "VmHWM")
        finally:
            if sensor:
                sensor.stop()
            nats.stop()

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)

    kernel_opens = delta(("klaxon_sensor_kernel_events_total", "openat"))
    handled = delta(("klaxon_sensor_events_total", "openat"))
    drops = sum(v - before.get(k, 0) for k, v in after.items()
                if k[0] == "klaxon_sensor_drops_total")

    print("### Sensor overhead (bench/sensor_overhead.py)\n")
    print("Medians of %d alternating rounds, same run; default ruleset loaded.\n" % ROUNDS)
    print("| workload | ops | without sensor | with sensor | overhead | per op |")
    print("|---|---|---|---|---|---|")
    for name, _, n in workloads:
        off = statistics.median(times[name]["off"])
        on = statistics.median(times[name]["on"])
        print("| %s | %s | %.3f s | %.3f s | %+.1f %% | %s |"
              % (name, n or "", off, on, (on / off - 1) * 100,
                 "%+.2f µs" % ((on - off) / n * 1e6) if n else ""))
    print()
    print("Burst: %d write-opens in %.1f s (%.0f/s achieved); kernel emitted %d openat events, "
          "user space handled %d, drops %d; sensor CPU %.0f %% of one core during the burst."
          % (done, secs, achieved, kernel_opens, handled, drops,
             (cpu1 - cpu0) / (secs + 1.0) * 100))
    print("Sensor RSS after the run: %.1f MiB (peak %.1f MiB).\n" % (rss / 1024, hwm / 1024))


if __name__ == "__main__":
    main()
