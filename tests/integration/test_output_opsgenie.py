# SPDX-License-Identifier: Apache-2.0
"""The Opsgenie output against a local Alert API v2 that checks what
Opsgenie requires and answers as it does: "Authorization: GenieKey <key>"
(401 otherwise), message <= 130 characters, priority P1..P5, alias <= 512;
202 {"result":"Request will be processed"}; 422 {"message":...} on
validation errors."""
import http.server
import json
import re
import threading

import pytest

from conftest import falco_alert, free_port, wait_for

KEY = "5c2a7e1e-0000-4000-8000-0pS6eNiEkEy0"


class Og:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/v2/alerts" % self.port
        self.alerts = []
        og = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Authorization") != "GenieKey " + KEY:
                    return self.reply(401, {"message": "Could not authenticate", "took": 0.0})
                m = json.loads(body)
                errs = []
                if not m.get("message") or len(m["message"]) > 130:
                    errs.append("message should be 1..130 characters")
                if m.get("priority") not in ("P1", "P2", "P3", "P4", "P5"):
                    errs.append("Priority should be one of [P1, P2, P3, P4, P5]")
                if len(m.get("alias", "")) > 512:
                    errs.append("alias too long")
                if not all(isinstance(v, str) for v in m.get("details", {}).values()):
                    errs.append("details values must be strings")
                if errs:
                    return self.reply(422, {"message": "; ".join(errs), "took": 0.0})
                og.alerts.append(m)
                self.reply(202, {"result": "Request will be processed", "took": 0.1,
                                 "requestId": "43a29c5c"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def og():
    o = Og()
    yield o
    o.close()


def test_opsgenie_alert_with_dedupe_alias(hub, og):
    h = hub(outputs=[{"name": "og", "type": "opsgenie", "apikey": KEY, "url": og.url}])
    a = falco_alert(priority="Critical", rule="R" * 200)
    assert h.post(a)[0] == 200
    m = wait_for(lambda: og.alerts, 10, what="the Opsgenie alert")[0]
    assert len(m["message"]) <= 130 and m["message"].startswith("RRR")
    assert m["priority"] == "P2" and m["source"] == "klaxon" and m["entity"] == "node-a"
    assert re.fullmatch(r"d\.[0-9a-f]{32}", m["alias"])
    assert m["details"]["proc.name"] == "bash" and m["details"]["proc.pid"].isdigit()
    assert "shell" in m["tags"]


def test_opsgenie_bad_key_dead_lettered_without_the_key(hub, og, nats):
    h = hub(outputs=[{"name": "og", "type": "opsgenie", "apikey": "WrOnGgEnIeKeY",
                      "url": og.url}])
    assert h.post(falco_alert())[0] == 200
    nc = nats.client()
    dl = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.og"), 10,
                  what="dead letter")
    assert "401" in dl[0][1] and "Could not authenticate" in dl[0][1]
    assert "WrOnGgEnIeKeY" not in h.logtext() and "WrOnGgEnIeKeY" not in dl[0][1]
