# SPDX-License-Identifier: Apache-2.0
"""The Alertmanager output against a local /api/v2/alerts endpoint that
checks what Alertmanager's API v2 requires and answers as it does: a JSON
array of alerts, each with at least one label, label names matching
[a-zA-Z_][a-zA-Z0-9_]*, string values, RFC 3339 startsAt/endsAt; 200 on
success, 400 {"code":400,"message":...} otherwise."""
import base64
import http.server
import json
import re
import threading
from datetime import datetime

import pytest

from conftest import falco_alert, free_port, wait_for

NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")


def rfc3339(s):
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", s).replace("Z", "+00:00"))


class Am:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.alerts = []
        self.posts = 0
        am = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, obj=None):
                body = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/api/v2/alerts":
                    return self.reply(404, {"code": 404, "message": "path not found"})
                if self.headers.get("Authorization") != \
                        "Basic " + base64.b64encode(b"am:pw").decode():
                    return self.reply(401, {"code": 401, "message": "unauthorized"})
                try:
                    alerts = json.loads(body)
                    assert isinstance(alerts, list) and alerts, "alerts must be a non-empty array"
                    for a in alerts:
                        assert a["labels"], "at least one label"
                        for k, v in a["labels"].items():
                            assert NAME.match(k), "invalid label name %r" % k
                            assert isinstance(v, str), "label values are strings"
                        rfc3339(a["startsAt"])
                        if "endsAt" in a:
                            assert rfc3339(a["endsAt"]) > rfc3339(a["startsAt"])
                except (ValueError, KeyError, AssertionError, TypeError) as e:
                    return self.reply(400, {"code": 400, "message": str(e)})
                am.posts += 1
                am.alerts.extend(alerts)
                self.reply(200)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def am():
    a = Am()
    yield a
    a.close()


def test_alertmanager_labels_batches_and_expiry(hub, am):
    h = hub(outputs=[{"name": "am", "type": "alertmanager", "hostport": am.url,
                      "user": "am", "password": "pw", "expiresafter": "5m",
                      "extralabels": ["k8s.ns.name", "container.id"],
                      "generatorurl": "http://klaxon.example/ui"}])
    sent = []
    for i in range(20):
        a = falco_alert(priority="Warning", container="%012x" % i)
        a["output_fields"]["k8s.ns.name"] = "shop"
        sent.append(a)
        assert h.post(a)[0] == 200
    wait_for(lambda: len(am.alerts) == 20, 15, what="20 alerts")
    al = am.alerts[0]
    assert al["labels"]["alertname"] == "Terminal shell in container"
    assert al["labels"]["severity"] == "warning" and al["labels"]["k8s_ns_name"] == "shop"
    assert {a["labels"]["container_id"] for a in am.alerts} == {"%012x" % i for i in range(20)}
    assert (rfc3339(al["endsAt"]) - rfc3339(al["startsAt"])).total_seconds() == 300
    assert al["annotations"]["summary"].startswith("A shell was spawned")
    assert al["generatorURL"] == "http://klaxon.example/ui"
    assert am.posts <= 20


def test_alertmanager_refusal_is_dead_lettered(hub, am, nats):
    h = hub(outputs=[{"name": "am", "type": "alertmanager", "hostport": am.url,
                      "user": "am", "password": "wrong"}])
    assert h.post(falco_alert())[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.am"), 10,
                    what="dead letter")
    assert "401" in msgs[0][1] and "unauthorized" in msgs[0][1]
