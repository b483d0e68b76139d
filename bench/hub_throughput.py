# SPDX-License-Identifier: Apache-2.0
"""Hub throughput and end-to-end latency on a real nats-server.

1. Throughput: N raw alerts are preloaded into KLAXON_ALERTS (half of them
   repeats, so dedupe does real work), then a hub with one file output starts;
   we time until every accepted alert is written by the output. Repeated
   RUNS times; the median is reported.
2. Latency: alerts posted one at a time over HTTP at a steady rate; latency
   is post -> line in the file output (p50/p99).
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
from conftest import NatsServer, free_port, falco_alert, wait_for, yaml_dump  # noqa: E402

BUILD = Path(os.environ.get("KX_BUILD", "build"))
N = int(os.environ.get("BENCH_N", "20000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def start_hub(tmp, nats, out, dedupe=True):
    port = free_port()
    cfg = {"log": {"level": "warn"}, "nats": {"url": nats.url},
           "http": {"listen": "127.0.0.1", "port": port},
           "hub": {"fetch_batch": 256},
           "dedupe": {"enabled": dedupe, "window": "60s"},
           "outputs": [{"name": "bench", "type": "file", "path": str(out)}]}
    p = Path(tmp) / "hub.yaml"
    p.write_text(yaml_dump(cfg) + "\n")
    proc = subprocess.Popen([str(BUILD / "bin" / "klaxon-hub"), "-c", str(p)],
                            stderr=open(Path(tmp) / "hub.log", "ab"))
    return proc, port


def lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


MODES = {
    "off": (False, lambda n: n),                 # dedupe off, all distinct
    "on, all distinct": (True, lambda n: n),
    "on, half repeats": (True, lambda n: n // 2),
    "on, flood (one key)": (True, lambda n: 1),
}


def throughput_run(mode):
    dedupe, distinct_of = MODES[mode]
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        try:
            # Streams are created by the hub: start it once with no output to set up.
            out = Path(tmp) / "out.jsonl"
            proc, _ = start_hub(tmp, nats, out, dedupe)
            time.sleep(1.0)
            proc.terminate(); proc.wait()
            nc = nats.client()
            distinct = distinct_of(N)
            for i in range(N):
                a = falco_alert(container="%012x" % (i % distinct))
                nc.publish("klaxon.alerts.bench", json.dumps(a), {"Nats-Msg-Id": a["uuid"]})
            nc.request("$JS.API.STREAM.INFO.KLAXON_ALERTS")  # flush
            wait_for(lambda: nc.stream_info("KLAXON_ALERTS")["state"]["messages"] >= N, 60)
            t0 = time.time()
            proc, port = start_hub(tmp, nats, out, dedupe)
            wait_for(lambda: _metric(port, "klaxon_alerts_received_total{source=\"nats\"}") >= N,
                     600, interval=0.05)
            wait_for(lambda: lines(out) >= distinct, 600, interval=0.05)
            dt = time.time() - t0
            proc.terminate(); proc.wait()
            return N / dt
        finally:
            nats.stop()


def _metric(port, name):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=1).read()
    except OSError:
        return 0
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0


def _healthy(port):
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).status == 200
    except OSError:
        return False


def latency_polled(rate=200, count=600):
    """Posts at `rate`/s and polls the output file, recording when each uuid appears."""
    import threading
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        out = Path(tmp) / "out.jsonl"
        proc, port = start_hub(tmp, nats, out, True)
        seen = {}
        stop = threading.Event()

        def tail():
            pos = 0
            buf = b""
            while not stop.is_set():
                try:
                    with open(out, "rb") as f:
                        f.seek(pos)
                        chunk = f.read()
                        pos += len(chunk)
                except FileNotFoundError:
                    chunk = b""
                now = time.time()
                buf += chunk
                *done, buf = buf.split(b"\n")
                for l in done:
                    if l:
                        seen[json.loads(l)["uuid"]] = now
                time.sleep(0.001)

        try:
            wait_for(lambda: _healthy(port), 15)
            th = threading.Thread(target=tail, daemon=True)
            th.start()
            sent = {}
            interval = 1.0 / rate
            t_next = time.time()
            for i in range(count):
                a = falco_alert(container="%012x" % i)
                body = json.dumps(a).encode()
                req = urllib.request.Request("http://127.0.0.1:%d/" % port, data=body,
                                             method="POST")
                sent[a["uuid"]] = time.time()
                urllib.request.urlopen(req).read()
                t_next += interval
                time.sleep(max(0, t_next - time.time()))
            wait_for(lambda: len(seen) >= count, 60)
            stop.set()
            lat = sorted((seen[u] - t) * 1000 for u, t in sent.items())
            return lat
        finally:
            stop.set()
            proc.terminate(); proc.wait(); nats.stop()


def main():
    print("### Hub throughput (raw alerts/s, preloaded backlog of %d, file output)" % N)
    print()
    print("| dedupe | runs | median alerts/s | all runs |")
    print("|---|---|---|---|")
    for mode in MODES:
        rs = [throughput_run(mode) for _ in range(RUNS)]
        print("| %s | %d | %.0f | %s |" % (mode, RUNS, statistics.median(rs),
                                           ", ".join("%.0f" % r for r in rs)))
    print()
    lat = latency_polled()
    print("### End-to-end latency, HTTP POST -> file output, 200 alerts/s, %d alerts" % len(lat))
    print()
    print("p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (lat[len(lat) // 2],
                                                   lat[int(len(lat) * 0.99)], lat[-1]))
    print()
    print("Command: `make bench` (BENCH_N=%d BENCH_RUNS=%d)" % (N, RUNS))


if __name__ == "__main__":
    main()
