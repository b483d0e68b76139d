# SPDX-License-Identifier: Apache-2.0
"""The Loki output against a local push endpoint that checks what Loki's
/loki/api/v1/push requires and answers as Loki does: 204 on success; 400 for
a malformed body, label names outside [a-zA-Z_][a-zA-Z0-9_]*, or timestamps
that are not nanosecond strings; 401 without the tenant's credentials;
429 with Retry-After when rate limited."""
import base64
import http.server
import json
import re
import threading
import time

import pytest

from conftest import falco_alert, free_port, wait_for

LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")


class Loki:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.pushes = []      # (headers, streams)
        self.errors = []
        self.limit_once = False
        loki = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, text="", headers=()):
                body = text.encode()
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/loki/api/v1/push":
                    return self.reply(404, "404 page not found\n")
                if loki.limit_once:
                    loki.limit_once = False
                    return self.reply(429, "Ingestion rate limit exceeded", [("Retry-After", "1")])
                want = "Basic " + base64.b64encode(b"tenant-a:k3y").decode()
                if self.headers.get("X-Scope-OrgID") != "tenant-a" or \
                        self.headers.get("Authorization") != want:
                    return self.reply(401, "no org id\n")
                try:
                    push = json.loads(body)
                    for s in push["streams"]:
                        assert s["stream"] and all(LABEL.match(k) for k in s["stream"]), \
                            "invalid label name"
                        assert all(isinstance(v, str) for v in s["stream"].values())
                        for ts, line in s["values"]:
                            assert isinstance(ts, str) and re.fullmatch(r"\d{19}", ts), \
                                "timestamp must be a ns string"
                            assert isinstance(line, str)
                except (ValueError, KeyError, AssertionError, TypeError) as e:
                    loki.errors.append(str(e))
                    return self.reply(400, "error parsing push: %s\n" % e)
                loki.pushes.append((dict(self.headers), push["streams"]))
                self.reply(204)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self):
        return [(s["stream"], ts, line) for _, streams in self.pushes for s in streams
                for ts, line in s["values"]]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def loki():
    l = Loki()
    yield l
    l.close()


def out(loki, **kw):
    o = {"name": "loki", "type": "loki", "hostport": loki.url, "tenant": "tenant-a",
         "user": "tenant-a", "apikey": "k3y", "extralabels": ["k8s.ns.name", "container.id"]}
    o.update(kw)
    return o


def test_streams_labels_and_ns_timestamps(hub, loki):
    h = hub(outputs=[out(loki)])
    sent = []
    for i in range(10):
        a = falco_alert(container="%012x" % i)  # distinct: repeats would be deduped
        a["output_fields"]["k8s.ns.name"] = "shop"
        sent.append(a)
        assert h.post(a)[0] == 200
    wait_for(lambda: len(loki.lines()) == 10, 15, what="10 log lines")
    assert loki.errors == []
    lines = loki.lines()
    labels, ts, line = lines[0]
    assert labels["rule"] == "Terminal shell in container" and labels["priority"] == "Critical"
    assert labels["k8s_ns_name"] == "shop" and labels["hostname"] == "node-a"
    assert {l["container_id"] for l, _, _ in lines} == {"%012x" % i for i in range(10)}
    assert {json.loads(l)["uuid"] for _, _, l in lines} == {a["uuid"] for a in sent}
    assert abs(int(ts) / 1e9 - time.time()) < 600
    assert "k3y" not in h.logtext()


def test_text_lines_and_rate_limit(hub, loki):
    loki.limit_once = True
    h = hub(outputs=[out(loki, format="text", backoff=["5s"])])
    a = falco_alert()
    t0 = time.time()
    assert h.post(a)[0] == 200
    wait_for(lambda: loki.lines(), 15, what="the line after 429")
    assert time.time() - t0 >= 0.9
    assert loki.lines()[0][2] == a["output"]


def test_bad_credentials_are_dead_lettered(hub, loki, nats):
    h = hub(outputs=[out(loki, apikey="nope")])
    assert h.post(falco_alert())[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.loki"), 10,
                    what="dead letter")
    assert "401" in msgs[0][1]
