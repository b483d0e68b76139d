# SPDX-License-Identifier: Apache-2.0
"""Alerts through the hub to real HTTP outputs (issue 5's bench).

1. Throughput: N raw alerts (all distinct) are preloaded into KLAXON_ALERTS on
   a real nats-server; a hub starts with one output pointing at bench/sink.c
   (a C HTTP receiver, so the sink is never the limit); the time runs from
   the hub's start until the sink has counted all N. Outputs: Splunk HEC
   (batched) and the generic webhook (one request per alert); dedupe off and
   on. RUNS runs each, interleaved, median reported.
2. Latency: bench/pub.c publishes raw alerts at a steady rate to
   klaxon.alerts.<node> (as sensors do) to a hub with one output; each alert
   carries its send time (output_fields.bench_sent_ns) and the sink records
   receive - send: Splunk at RATE/s, the webhook (one request per alert) at a
   fifth of it.
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
N = int(os.environ.get("BENCH_OUT_N", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
RATE = int(os.environ.get("BENCH_RATE", "5000"))
SECONDS = int(os.environ.get("BENCH_RATE_SECONDS", "10"))


class Sink:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([str(BUILD / "bench" / "sink"), str(self.port)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == b"listening"
        self.url = "http://127.0.0.1:%d" % self.port

    def stats(self):
        return json.loads(urllib.request.urlopen(self.url + "/stats", timeout=5).read())

    def close(self):
        self.proc.kill()
        self.proc.wait()


def output(kind, sink):
    if kind == "splunk":
        return {"name": "splunk", "type": "splunk", "hostport": sink.url, "token": "t",
                "checkcert": False}
    return {"name": "webhook", "type": "webhook", "address": sink.url + "/hook"}


def start_hub(tmp, nats, outputs, dedupe, name="hub"):
    port = free_port()
    cfg = {"log": {"level": "warn"}, "nats": {"url": nats.url},
           "http": {"listen": "127.0.0.1", "port": port},
           "hub": {"fetch_batch": 256},
           "dedupe": {"enabled": dedupe, "window": "60s"},
           "outputs": outputs}
    p = Path(tmp) / ("%s.yaml" % name)
    p.write_text(yaml_dump(cfg) + "\n")
    wrap = os.environ.get("BENCH_WRAP", "").split() if name == "hub" else []
    proc = subprocess.Popen(wrap + [str(BUILD / "bin" / "klaxon-hub"), "-c", str(p)],
                            stderr=open(Path(tmp) / ("%s.log" % name), "ab"))
    return proc, port


def alert(i, sent_ns=0):
    a = falco_alert(container="%012x" % i)
    a["output_fields"]["bench_sent_ns"] = sent_ns or time.time_ns()
    return a


def throughput_run(kind, dedupe, stage="hub"):
    """stage "hub": raw alerts through ingest, dedupe and the output;
    "output": accepted alerts preloaded into KLAXON_EVENTS, the output alone."""
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        sink = Sink()
        try:
            # The hub creates the streams: start it once with no output.
            proc, _ = start_hub(tmp, nats, [], dedupe, "setup")
            time.sleep(1.0)
            proc.terminate(); proc.wait()
            nc = nats.client()
            stream, subject = (("KLAXON_ALERTS", "klaxon.alerts.bench") if stage == "hub" else
                               ("KLAXON_EVENTS", "klaxon.events.critical.bench"))
            for i in range(N):
                a = alert(i)
                nc.publish(subject, json.dumps(a), {"Nats-Msg-Id": a["uuid"]})
            wait_for(lambda: nc.stream_info(stream)["state"]["messages"] >= N, 120)
            t0 = time.time()
            nats_cpu0 = _cpu(nats.proc.pid)
            proc, _ = start_hub(tmp, nats, [output(kind, sink)], dedupe)
            wait_for(lambda: sink.stats()["alerts"] >= N, 900, interval=0.05)
            dt = time.time() - t0
            st = sink.stats()
            if os.environ.get("BENCH_CPU"):
                print("cpu s: nats-server %.2f, hub %.2f, wall %.2f" % (
                    _cpu(nats.proc.pid) - nats_cpu0, _cpu(proc.pid), dt), file=sys.stderr)
            proc.terminate(); proc.wait()
            return N / dt, st["alerts"] / max(st["requests"], 1)
        finally:
            sink.close()
            nats.stop()


def latency_run(kind, rate, seconds, dedupe=True):
    """bench/pub.c publishes `rate` alerts/s for `seconds` to a hub with one output."""
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        sink = Sink()
        try:
            proc, port = start_hub(tmp, nats, [output(kind, sink)], dedupe)
            wait_for(lambda: _healthy(port), 15)
            pub = subprocess.run([str(BUILD / "bench" / "pub"), nats.url, "klaxon.alerts.bench",
                                  str(rate), str(seconds)], capture_output=True, text=True,
                                 check=True)
            count = rate * seconds
            wait_for(lambda: sink.stats()["alerts"] >= count, 300, interval=0.05)
            res = dict(sink.stats(), achieved=float(pub.stdout.strip()))
            proc.terminate(); proc.wait()
            return res
        finally:
            sink.close()
            nats.stop()


def _cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(port):
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).status == 200
    except OSError:
        return False


def main():
    # (output, dedupe, stage): the hub end to end, and the output stage alone
    modes = [("splunk", False, "hub"), ("splunk", True, "hub"), ("splunk", False, "output"),
             ("webhook", False, "hub"), ("webhook", False, "output")]
    results = {m: [] for m in modes}
    per_req = {}
    for _ in range(RUNS):
        for m in modes:  # interleaved, so drift on the machine hits every mode alike
            r, b = throughput_run(*m)
            results[m].append(r)
            per_req[m] = b
    print("### Outputs throughput (%d alerts, all distinct, hub -> bench/sink.c)" % N)
    print()
    print("\"hub\": raw alerts preloaded into KLAXON_ALERTS, through ingest, dedupe, "
          "KLAXON_EVENTS and the output. \"output stage\": alerts preloaded into "
          "KLAXON_EVENTS, the output's consumer alone.")
    print()
    print("| output | path | dedupe | runs | median alerts/s | all runs | alerts per request |")
    print("|---|---|---|---|---|---|---|")
    for m in modes:
        v = results[m]
        print("| %s | %s | %s | %d | %.0f | %s | %.0f |" % (
            "Splunk HEC (batched)" if m[0] == "splunk" else "webhook (1 per request)",
            "hub" if m[2] == "hub" else "output stage", "on" if m[1] else "off", len(v),
            statistics.median(v), ", ".join("%.0f" % x for x in v), per_req[m]))
    print()
    print("### End-to-end latency: bench/pub.c publishes to klaxon.alerts.* as sensors do, "
          "for %d s; hub with dedupe on and one output; receive time - send time" % SECONDS)
    print()
    print("| output | rate | achieved | alerts | requests | p50 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, rate in (("splunk", RATE), ("webhook", RATE // 5)):
        s = latency_run(kind, rate, SECONDS)
        print("| %s | %d/s | %.0f/s | %d | %d | %.1f ms | %.1f ms | %.1f ms |" % (
            kind, rate, s["achieved"], s["alerts"], s["requests"], s["p50_ms"], s["p99_ms"],
            s["max_ms"]))
    print()
    print("Command: `make bench` (BENCH_OUT_N=%d BENCH_RUNS=%d BENCH_RATE=%d)" % (N, RUNS, RATE))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        kind, dedupe = sys.argv[2], sys.argv[3] == "on"
        print(throughput_run(kind, dedupe, sys.argv[4] if len(sys.argv) > 4 else "hub"))
    elif len(sys.argv) > 1 and sys.argv[1] == "--latency":
        print(latency_run(sys.argv[2], int(sys.argv[3]), SECONDS))
    else:
        main()
