# SPDX-License-Identifier: Apache-2.0
"""Fixtures for Klaxon's integration tests: a real nats-server with
JetStream, a local webhook sink, and factories for real hub processes.

Everything listens on 127.0.0.1 with ports picked by the kernel.
"""
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from natsclient import Nats

BUILD = Path(os.environ.get("KX_BUILD", Path(__file__).resolve().parents[2] / "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    end = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def build():
    assert (BUILD / "bin" / "klaxon-hub").exists(), "run make first: %s" % BUILD
    return BUILD


# ---------------------------------------------------------------- nats-server
class NatsServer:
    def __init__(self, tmp):
        self.port = free_port()
        self.store = Path(tmp) / "js"
        self.url = "nats://127.0.0.1:%d" % self.port
        self.log = Path(tmp) / "nats.log"
        self.proc = None
        self.start()

    def start(self):
        exe = shutil.which("nats-server")
        assert exe, "nats-server is not installed (make deps)"
        self.proc = subprocess.Popen(
            [exe, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 10, what="nats-server on %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self):
        self.stop()
        self.start()

    def client(self):
        return Nats(self.url)


@pytest.fixture
def nats(tmp_path):
    srv = NatsServer(tmp_path)
    yield srv
    srv.stop()


# ----------------------------------------------------------------- the sink
class Sink:
    """An HTTP endpoint recording every JSON body POSTed to it.
    status: what to answer (200 by default); down()/up() to refuse connections."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.alerts = []
        self.requests = []  # (path, headers dict, body bytes)
        self.status = 200
        self.retry_after = None
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = None
        self.up()

    def _handler(self):
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                if sink.delay:
                    time.sleep(sink.delay)
                status = sink.status
                with sink.lock:
                    sink.requests.append((self.path, dict(self.headers), body))
                    if 200 <= status < 300:
                        sink.alerts.append(json.loads(body))
                payload = b'{"ok":true}' if status < 300 else b'{"error":"sink says no"}'
                self.send_response(status)
                if sink.retry_after is not None:
                    self.send_header("Retry-After", str(sink.retry_after))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST

        return H

    def up(self):
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def uuids(self):
        with self.lock:
            return [a.get("uuid") for a in self.alerts]

    def wait_for(self, pred, timeout=10.0):
        def check():
            with self.lock:
                snapshot = list(self.alerts)
            return snapshot if pred(snapshot) else None
        return wait_for(check, timeout, what="alerts at the sink")


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.down()


# --------------------------------------------------------------------- hubs
def yaml_dump(obj, indent=0):
    """Tiny YAML writer for the config shapes the tests use."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:" % (pad, k))
                out.append(yaml_dump(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, scalar(v)))
    else:
        for item in obj:
            if isinstance(item, (dict, list)):
                body = yaml_dump(item, indent + 1).lstrip()
            else:
                body = scalar(item)
            out.append("%s- %s" % (pad, body))
    return "\n".join(out)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return "[]" if isinstance(v, list) else "{}"
    return json.dumps(v) if isinstance(v, str) else str(v)


class Hub:
    def __init__(self, build, cfg, tmp, name, wait=True):
        self.build = build
        self.port = cfg["http"]["port"]
        self.url = "http://127.0.0.1:%d" % self.port
        self.cfg_path = Path(tmp) / ("%s.yaml" % name)
        self.cfg_path.write_text(yaml_dump(cfg) + "\n")
        self.log = Path(tmp) / ("%s.log" % name)
        self.proc = None
        self.start(wait)

    def start(self, wait=True):
        self.proc = subprocess.Popen([str(self.build / "bin" / "klaxon-hub"), "-c",
                                      str(self.cfg_path)],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        if wait:
            wait_for(lambda: self.healthy() or self.proc.poll() is not None, 15,
                     what="hub health")
            assert self.proc.poll() is None, "hub exited:\n" + self.log.read_text()

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def post(self, body, path="/"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metric(self, name, **labels):
        _, body = self.get("/metrics")
        want = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
                       if labels else "")
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return None

    def stop(self, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logtext(self):
        return self.log.read_text(errors="replace")


@pytest.fixture
def hub(build, nats, sink, tmp_path):
    """hub(outputs=None, dedupe=None, name=..., **sections) -> Hub.
    Default: one webhook output "hook" pointing at the sink, fast retries."""
    hubs = []

    def make(outputs=None, dedupe=None, name=None, wait=True, **sections):
        name = name or "hub%d" % (len(hubs) + 1)
        cfg = {
            "log": {"level": "debug"},
            "nats": {"url": nats.url},
            "http": {"listen": "127.0.0.1", "port": free_port()},
            "hub": {"name": name, "ack_wait": "3s"},
            "dedupe": dedupe or {"enabled": True, "window": "60s"},
            "outputs": outputs if outputs is not None else [
                {"name": "hook", "type": "webhook", "address": sink.url,
                 "backoff": ["200ms", "500ms", "1s"], "ack_wait": "3s",
                 "customheaders": {"X-Klaxon-Test": "yes"}},
            ],
        }
        for k, v in sections.items():
            if isinstance(v, list):   # responders: a list, not a map
                cfg[k] = v
            else:
                cfg.setdefault(k, {}).update(v)
        h = Hub(build, cfg, tmp_path, name, wait)
        hubs.append(h)
        return h

    yield make
    for h in hubs:
        h.kill()


_seq = [0]


def falco_alert(rule="Terminal shell in container", priority="Critical", host="node-a",
                container="3ad7b26ded6d", exe="/usr/bin/bash", **extra):
    """A Falco-format alert with a fresh uuid."""
    import uuid
    _seq[0] += 1
    a = {
        "uuid": str(uuid.uuid4()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".123456789Z",
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "hostname": host,
        "output": "A shell was spawned in a container (user=root shell=bash seq=%d)" % _seq[0],
        "tags": ["container", "shell", "mitre_execution", "T1059"],
        "output_fields": {"evt.type": "execve", "proc.name": "bash", "proc.exepath": exe,
                          "proc.pid": 4242 + _seq[0], "container.id": container,
                          "user.name": "root"},
    }
    a.update(extra)
    return a
