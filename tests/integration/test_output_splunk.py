# SPDX-License-Identifier: Apache-2.0
"""The Splunk HEC output against a local collector that checks what HEC
requires and answers as HEC does: the path, "Authorization: Splunk <token>"
(401 code 2 without it, 403 code 4 with a wrong one), a body of concatenated
event envelopes with a numeric time and an event object (400 code 6
otherwise), known indexes only (400 code 7), 503 code 9 when busy."""
import http.server
import json
import threading
import time

import pytest

from conftest import falco_alert, free_port, wait_for

TOKEN = "0b1e8a7c-1111-4222-8333-944455556666"


class Hec:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.events = []
        self.requests = []  # number of envelopes per request
        self.busy = 0       # answer the next N requests 503
        hec = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, text, num):
                body = json.dumps({"text": text, "code": num}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/services/collector/event":
                    return self.reply(404, "The requested URL was not found on this server.",
                                      404)
                auth = self.headers.get("Authorization", "")
                if not auth:
                    return self.reply(401, "Token is required", 2)
                if auth != "Splunk " + TOKEN:
                    return self.reply(403, "Invalid token", 4)
                if hec.busy:
                    hec.busy -= 1
                    return self.reply(503, "Server is busy", 9)
                dec, text, pos, envs = json.JSONDecoder(), body.decode(), 0, []
                try:
                    while pos < len(text):
                        while pos < len(text) and text[pos].isspace():
                            pos += 1
                        if pos == len(text):
                            break
                        env, pos = dec.raw_decode(text, pos)
                        envs.append(env)
                except ValueError:
                    return self.reply(400, "Invalid data format", 6)
                for env in envs:
                    if not isinstance(env, dict) or "event" not in env or \
                            not isinstance(env.get("time", 0), (int, float)):
                        return self.reply(400, "Invalid data format", 6)
                    if env.get("index", "main") not in ("main", "security"):
                        return self.reply(400, "Incorrect index", 7)
                hec.requests.append(len(envs))
                hec.events.extend(envs)
                self.reply(200, "Success", 0)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hec():
    h = Hec()
    yield h
    h.close()


def splunk(hec, **kw):
    o = {"name": "splunk", "type": "splunk", "hostport": hec.url + "/", "token": TOKEN,
         "index": "security"}
    o.update(kw)
    return o


def test_hec_envelopes_batched(hub, hec, nats):
    # preload the events stream with the hub's outputs stopped? Simpler: post
    # a burst; the worker batches whatever one fetch returns.
    h = hub(outputs=[splunk(hec)])
    sent = [falco_alert(container="%012x" % i) for i in range(60)]
    for a in sent:
        assert h.post(a)[0] == 200
    wait_for(lambda: len(hec.events) == 60, 15, what="60 HEC events")
    env = hec.events[0]
    assert env["index"] == "security" and env["sourcetype"] == "falco"
    assert env["source"] == "klaxon" and env["host"] == "node-a"
    assert abs(env["time"] - time.time()) < 600
    assert {e["event"]["uuid"] for e in hec.events} == {a["uuid"] for a in sent}
    assert hec.events[0]["event"]["output_fields"]["proc.name"] == "bash"


def test_hec_busy_is_retried_and_bad_index_dead_lettered(hub, hec, nats):
    hec.busy = 1
    h = hub(outputs=[splunk(hec, backoff=["1s"])])
    a = falco_alert()
    assert h.post(a)[0] == 200
    wait_for(lambda: hec.events, 15, what="the event after a 503")
    assert h.metric("klaxon_output_retried_total", output="splunk") >= 1
    h.stop()

    h2 = hub(outputs=[splunk(hec, index="nope", name="splunk2")], name="hub2")
    b = falco_alert(container="bbbbbbbbbbbb")  # not a repeat of a (dedupe)
    assert h2.post(b)[0] == 200
    nc = nats.client()
    # a new output's consumer starts at the first event: a is dead-lettered too

    def dead():
        return {json.loads(d)["uuid"]: h for _, h, d in
                nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.splunk2")}
    got = wait_for(lambda: b["uuid"] in dead() and dead(), 10, what="dead letter")
    assert "400" in got[b["uuid"]] and "Incorrect index" in got[b["uuid"]]


def test_hec_wrong_token_is_a_permanent_failure(hub, hec, nats):
    h = hub(outputs=[splunk(hec, token="not-the-token")])
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.splunk"), 10,
                    what="dead letter")
    hdrs = msgs[0][1]
    assert "403" in hdrs and "Invalid token" in hdrs
    assert "not-the-token" not in h.logtext()  # the token never reaches a log


def test_batch_wait_fills_a_batch_across_arrivals(hub, hec, nats):
    # Alerts arriving 50 ms apart: without batch_wait each is its own request;
    # with batch_wait 2s and batch_size 8 they travel together, bounded by size.
    h = hub(outputs=[splunk(hec, batch_size=8, batch_wait="2s")])
    sent = [falco_alert(container="%012x" % (0xb000 + i)) for i in range(10)]
    t0 = time.monotonic()
    for a in sent:
        assert h.post(a)[0] == 200
        time.sleep(0.05)
    wait_for(lambda: len(hec.events) == 10, 15, what="10 HEC events")
    assert hec.requests[0] == 8, hec.requests  # the size bound
    assert sum(hec.requests) == 10 and len(hec.requests) == 2
    # the time bound: the last 2 did not wait for 6 more that never came
    assert time.monotonic() - t0 < 5
