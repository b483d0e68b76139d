# SPDX-License-Identifier: Apache-2.0
"""What WebSocket clients of the live feed (GET /ws) cost the hub.

A real nats-server and a hub with dedupe off (every alert is accepted) and
no output, so the live feed is the only consumer of KLAXON_EVENTS besides
the hub's own bookkeeping. bench/wsclients.c connects CLIENTS WebSocket
clients (one thread, epoll) and waits for their "hello"; then bench/pub.c
publishes RATE alerts/s for SECONDS to klaxon.alerts.<node>, as sensors do.
The run ends when KLAXON_EVENTS holds every alert and every client has seen
every event. Over that window:

- hub CPU: utime + stime from /proc/<pid>/stat, as % of one core;
- hub RSS: VmHWM (peak) and VmRSS at the end, from /proc/<pid>/status;
- per client: events (must be all of them), gaps in the KLAXON_EVENTS
  sequence (must be none), "skipped" notices (must be none), and the
  latency from the alert's send time (output_fields.bench_sent_ns) to its
  arrival at the client.

Modes: 0, 1 and CLIENTS clients, interleaved, RUNS runs each (median CPU
reported; 1 client gives the feed's fixed cost and its latency without the
fan-out); then one run with CLIENTS clients plus one slow client
(small receive buffer, reads 256 KiB every SLOW_PERIOD s) that the hub has
to skip ahead, to show the skip counts and that RSS stays bounded.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from conftest import NatsServer, free_port, wait_for, yaml_dump  # noqa: E402

BUILD = Path(os.environ.get("KX_BUILD", "build"))
CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", "50"))
RATE = int(os.environ.get("BENCH_WS_RATE", "5000"))
SECONDS = int(os.environ.get("BENCH_WS_SECONDS", "20"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SLOW_PERIOD = float(os.environ.get("BENCH_WS_SLOW_PERIOD", "2"))


def start_hub(tmp, nats):
    port = free_port()
    cfg = {"log": {"level": "warn"}, "nats": {"url": nats.url},
           "http": {"listen": "127.0.0.1", "port": port},
           "hub": {"fetch_batch": 256},
           "dedupe": {"enabled": False},
           "outputs": []}
    p = Path(tmp) / "hub.yaml"
    p.write_text(yaml_dump(cfg) + "\n")
    proc = subprocess.Popen([str(BUILD / "bin" / "klaxon-hub"), "-c", str(p)],
                            stderr=open(Path(tmp) / "hub.log", "ab"))
    wait_for(lambda: _healthy(port), 15, what="hub /healthz")
    return proc, port


def _healthy(port):
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).status == 200
    except OSError:
        return False


def _cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _mem_mib(pid):
    out = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmHWM", "VmRSS"):
            out[k] = int(v.split()[0]) / 1024
    return out


def _wait_rusage(proc):
    """Reaps proc; returns its CPU seconds (user + system)."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def run(clients, slow=False):
    n = RATE * SECONDS
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        hub = ws = None
        try:
            hub, port = start_hub(tmp, nats)
            nc = nats.client()
            time.sleep(1.0)  # let startup settle before the baseline
            rss_idle = _mem_mib(hub.pid)["VmRSS"]
            if clients or slow:
                args = [str(BUILD / "bench" / "wsclients"), "-n", str(clients), "-e", str(n),
                        "-d", str(SECONDS + 60)]
                if slow:
                    args += ["-s", str(SLOW_PERIOD)]
                ws = subprocess.Popen(args + ["ws://127.0.0.1:%d/ws" % port],
                                      stdout=subprocess.PIPE, text=True)
                line = ws.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError("wsclients: %s %s" % (line, ws.stdout.read()))
            t0, cpu0, ncpu0 = time.time(), _cpu(hub.pid), _cpu(nats.proc.pid)
            pub = subprocess.Popen([str(BUILD / "bench" / "pub"), nats.url, "klaxon.alerts.bench",
                                    str(RATE), str(SECONDS)], stdout=subprocess.PIPE, text=True)
            achieved = float(pub.stdout.read().strip() or 0)
            pub.wait()
            if pub.returncode != 0:
                raise RuntimeError("pub failed")
            wait_for(lambda: nc.stream_info("KLAXON_EVENTS")["state"]["messages"] >= n, 120,
                     interval=0.05, what="KLAXON_EVENTS to hold every alert")
            res = {}
            if ws:
                res = json.loads(ws.stdout.read())
                res["client_cpu_s"] = _wait_rusage(ws)
                ws = None
            t1, cpu1, ncpu1 = time.time(), _cpu(hub.pid), _cpu(nats.proc.pid)
            mem = _mem_mib(hub.pid)
            res.update(clients=clients, achieved=achieved, wall=t1 - t0, hub_cpu_s=cpu1 - cpu0,
                       hub_cpu_pct=100 * (cpu1 - cpu0) / (t1 - t0), nats_cpu_s=ncpu1 - ncpu0,
                       rss_idle=rss_idle, rss_peak=mem["VmHWM"], rss_end=mem["VmRSS"])
            return res
        finally:
            if ws:
                ws.terminate()
                ws.wait()
            if hub:
                hub.terminate()
                hub.wait()
            nats.stop()


def check(r, n):
    """What must hold for the non-slow clients; returns the problems found."""
    bad = []
    if not r["clients"]:
        return bad
    if not r.get("complete") or r["events_min"] != n:
        bad.append("a client saw %d of %d events" % (r["events_min"], n))
    if r["gaps"]:
        bad.append("%d gaps" % r["gaps"])
    if r["skipped"]:
        bad.append("%d skipped notices (%d missed)" % (r["skipped"], r["missed"]))
    if r["failed"] or r["closed_by_server"] or r["errors"]:
        bad.append("failed %d, closed %d, errors %d (%s)" % (
            r["failed"], r["closed_by_server"], r["errors"], r["first_failure"]))
    return bad


def main():
    n = RATE * SECONDS
    modes = [0, 1, CLIENTS] if CLIENTS > 1 else [0, CLIENTS]
    results = {m: [] for m in modes}
    problems = []
    for _ in range(RUNS):
        for m in modes:  # interleaved, so drift on the machine hits every mode alike
            r = run(m)
            results[m].append(r)
            problems += ["%d clients: %s" % (m, p) for p in check(r, n)]
    slow = run(CLIENTS, slow=True)
    problems += ["%d clients + slow: %s" % (CLIENTS, p) for p in check(slow, n)]

    print("### WebSocket live feed: hub cost of %d clients (bench/ws_fanout.py)" % CLIENTS)
    print()
    print("bench/pub.c publishes %d alerts/s for %d s (%d alerts) to klaxon.alerts.* as sensors "
          "do; hub with dedupe off and no output; bench/wsclients.c holds the WebSocket "
          "clients (one thread, epoll). Hub CPU is utime+stime over the run (from the first "
          "publish until every client has every event), as %% of one core; RSS from "
          "/proc/<pid>/status." % (RATE, SECONDS, n))
    print()
    print("| clients | runs | hub CPU (median) | all runs | hub CPU s (median run) | "
          "hub RSS peak (max) | hub RSS at end | events per client (min/median/max) | gaps | skipped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = [(str(m), results[m]) for m in modes]
    rows.append(("%d + 1 slow" % CLIENTS, [slow]))
    for name, rs in rows:
        med = statistics.median(r["hub_cpu_pct"] for r in rs)
        mid = min(rs, key=lambda r: abs(r["hub_cpu_pct"] - med))
        per = ("%d/%d/%d" % (mid["events_min"], mid["events_median"], mid["events_max"])
               if mid["clients"] else "-")
        print("| %s | %d | %.1f %% | %s | %.2f | %.1f MiB | %.1f MiB | %s | %s | %s |" % (
            name, len(rs), med, ", ".join("%.1f" % r["hub_cpu_pct"] for r in rs),
            mid["hub_cpu_s"], max(r["rss_peak"] for r in rs), mid["rss_end"], per,
            sum(r.get("gaps", 0) for r in rs) if mid["clients"] else "-",
            sum(r.get("skipped", 0) for r in rs) if mid["clients"] else "-"))
    print()
    for m in modes[1:]:
        rs = results[m]
        print("%d client%s, per run: latency (bench_sent_ns -> client) p50 %s ms, p99 %s ms, "
              "max %s ms; %s frames/s per client, %s events per message, %s MiB/s to all "
              "clients; wsclients CPU %s s; nats-server CPU %s s (0 clients: %s s); "
              "publish rate achieved %s/s." % (
                  m, "" if m == 1 else "s", "/".join("%.1f" % r["latency_ms"]["p50"] for r in rs),
                  "/".join("%.1f" % r["latency_ms"]["p99"] for r in rs),
                  "/".join("%.1f" % r["latency_ms"]["max"] for r in rs),
                  "/".join("%.0f" % r["frames_per_s_per_client"] for r in rs),
                  "/".join("%.1f" % r["events_per_message"] for r in rs),
                  "/".join("%.1f" % r["mib_per_s"] for r in rs),
                  "/".join("%.1f" % r["client_cpu_s"] for r in rs),
                  "/".join("%.1f" % r["nats_cpu_s"] for r in rs),
                  "/".join("%.1f" % r["nats_cpu_s"] for r in results[0]),
                  "/".join("%.0f" % r["achieved"] for r in rs)))
        print()
    s = slow["slow"]
    print("Slow client (receive buffer 32 KiB, reads at most 256 KiB every %.0f s while the "
          "others are served, then reads freely until it is level): %d \"skipped\" notices, "
          "%d events missed, %d received (received + missed = %d of %d), %d gaps; close code "
          "%d. Hub RSS peak %.1f MiB against %.1f MiB without it (idle after start: %.1f MiB)." % (
              slow["slow"]["period_s"], s["skipped"], s["missed"], s["events"],
              s["events"] + s["missed"], n, s["gaps"], s["close_code"], slow["rss_peak"],
              max(r["rss_peak"] for r in results[CLIENTS]), slow["rss_idle"]))
    print()
    print("Checks (every non-slow client saw all %d events, no gap, no skip): %s" % (
        n, "passed" if not problems else "FAILED: " + "; ".join(problems)))
    print()
    print("Command: `make bench` (BENCH_WS_CLIENTS=%d BENCH_WS_RATE=%d BENCH_WS_SECONDS=%d "
          "BENCH_RUNS=%d)" % (CLIENTS, RATE, SECONDS, RUNS))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        # --one CLIENTS [slow]: one run, its raw numbers
        print(json.dumps(run(int(sys.argv[2]), slow=len(sys.argv) > 3)))
    else:
        main()
