# SPDX-License-Identifier: Apache-2.0
"""Sensor end-to-end latency: a shell exec'd inside a simulated container
(cgroup v2 named like containerd's) until its alert is written by the hub's
file output, through the real BPF program, NATS JetStream and the hub.
Needs root. Dedupe is off so every exec is delivered."""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from conftest import NatsServer, free_port, wait_for, yaml_dump  # noqa: E402
from test_sensor import SLICE, Sensor, _evacuate, run_shell_in  # noqa: E402

BUILD = Path(os.environ.get("KX_BUILD", "build"))
COUNT = int(os.environ.get("BENCH_SENSOR_N", "100"))


def exec_time(ts):
    """RFC 3339 with nanoseconds -> float seconds."""
    import calendar
    whole, frac = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def main():
    assert os.geteuid() == 0, "the sensor benchmark loads BPF: run as root"
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(tmp)
        out = Path(tmp) / "out.jsonl"
        cfg = Path(tmp) / "hub.yaml"
        cfg.write_text(yaml_dump({
            "log": {"level": "warn"}, "nats": {"url": nats.url},
            "http": {"listen": "127.0.0.1", "port": free_port()},
            "dedupe": {"enabled": False},
            "outputs": [{"name": "bench", "type": "file", "path": str(out)}]}) + "\n")
        hub = subprocess.Popen([str(BUILD / "bin" / "klaxon-hub"), "-c", str(cfg)],
                               stderr=open(Path(tmp) / "hub.log", "ab"))
        sensor = Sensor(tmp, nats.url)
        SLICE.mkdir(exist_ok=True)
        cg = SLICE / ("cri-containerd-%s.scope" % secrets.token_hex(32))
        cg.mkdir()
        seen, exec_ts, stop = {}, {}, threading.Event()

        def tail():
            pos, buf = 0, b""
            while not stop.is_set():
                try:
                    with open(out, "rb") as f:
                        f.seek(pos)
                        chunk = f.read()
                except FileNotFoundError:
                    chunk = b""
                pos += len(chunk)
                now = time.time()
                buf += chunk
                *done, buf = buf.split(b"\n")
                for line in done:
                    if line:
                        a = json.loads(line)
                        seen[a["output_fields"]["proc.pid"]] = now
                        exec_ts[a["output_fields"]["proc.pid"]] = a["time"]
                time.sleep(0.0005)

        try:
            sensor.wait_attached()
            threading.Thread(target=tail, daemon=True).start()
            lat, from_exec = [], []
            for _ in range(COUNT):
                pid, t0 = run_shell_in(cg)
                wait_for(lambda: pid in seen, 10, interval=0.001)
                lat.append((seen[pid] - t0) * 1000)
                from_exec.append((seen[pid] - exec_time(exec_ts[pid])) * 1000)
                time.sleep(0.02)
            lat.sort()
            from_exec.sort()
            print("### Sensor end-to-end latency: shell exec in a container cgroup -> hub output")
            print()
            print("%d execs, one at a time: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                  % (len(lat), lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]))
            print("from the kernel's exec timestamp (the alert's time): p50 %.1f ms, p99 %.1f ms"
                  % (from_exec[len(from_exec) // 2], from_exec[int(len(from_exec) * 0.99)]))
            print("(the first figure includes forking the test shell; the output file is polled "
                  "every 0.5 ms)")
            print()
        finally:
            stop.set()
            sensor.stop()
            hub.terminate()
            hub.wait()
            nats.stop()
            _evacuate(cg)
            cg.rmdir()
            try:
                SLICE.rmdir()
            except OSError:
                pass


if __name__ == "__main__":
    main()
