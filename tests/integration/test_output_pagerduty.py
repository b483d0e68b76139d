# SPDX-License-Identifier: Apache-2.0
"""The PagerDuty output against a local Events API v2 endpoint that checks
what PagerDuty requires and answers as it does: 202 {"status":"success"};
400 "invalid event" with its errors list for a bad routing key, action,
severity or a trigger without summary/source; 429 when throttled."""
import http.server
import json
import re
import threading

import pytest

from conftest import falco_alert, free_port, wait_for

KEY = "R0UTINGKEY0123456789abcdefABCDEF"


class PagerDuty:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/v2/enqueue" % self.port
        self.events = []
        pd = self

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
                if self.path != "/v2/enqueue":
                    return self.reply(404, {"status": "not found"})
                try:
                    ev = json.loads(body)
                except ValueError:
                    return self.reply(400, {"status": "invalid event",
                                            "message": "Event object is invalid",
                                            "errors": ["Malformed JSON"]})
                errors = []
                if len(ev.get("routing_key", "")) != 32:
                    errors.append("Length of 'routing_key' is incorrect "
                                  "(should be 32 characters)")
                elif ev["routing_key"] != KEY:
                    errors.append("Invalid routing key")
                if ev.get("event_action") not in ("trigger", "acknowledge", "resolve"):
                    errors.append("'event_action' is invalid")
                if len(ev.get("dedup_key", "")) > 255:
                    errors.append("'dedup_key' is too long")
                if ev.get("event_action") == "trigger":
                    p = ev.get("payload") or {}
                    if not p.get("summary") or not p.get("source"):
                        errors.append("'payload.summary' and 'payload.source' are required")
                    if p.get("severity") not in ("critical", "error", "warning", "info"):
                        errors.append("'payload.severity' is invalid")
                if errors:
                    return self.reply(400, {"status": "invalid event",
                                            "message": "Event object is invalid",
                                            "errors": errors})
                pd.events.append(ev)
                self.reply(202, {"status": "success", "message": "Event processed",
                                 "dedup_key": ev.get("dedup_key")})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def pd():
    p = PagerDuty()
    yield p
    p.close()


def test_trigger_then_resolve_with_the_dedupe_key(hub, pd):
    h = hub(outputs=[{"name": "pd", "type": "pagerduty", "routingkey": KEY, "url": pd.url}],
            dedupe={"enabled": False})
    a = falco_alert(priority="Error")
    a["output_fields"]["k8s.ns.name"] = "shop"
    assert h.post(a)[0] == 200
    ev = wait_for(lambda: pd.events, 10, what="the trigger")[0]
    assert ev["event_action"] == "trigger" and ev["routing_key"] == KEY
    assert re.fullmatch(r"d\.[0-9a-f]{32}", ev["dedup_key"]), ev["dedup_key"]
    p = ev["payload"]
    assert p["severity"] == "error" and p["source"] == "node-a"
    assert p["summary"].startswith("Error Terminal shell in container: ")
    assert p["class"] == "Terminal shell in container" and p["group"] == "shop"
    assert p["component"] == "3ad7b26ded6d"
    assert p["custom_details"]["proc.name"] == "bash"
    assert p["timestamp"].endswith("Z")

    # the same problem again, marked resolved: same dedup key, action resolve
    r = falco_alert(priority="Error")
    r["output_fields"]["klaxon.resolve"] = True
    assert h.post(r)[0] == 200
    wait_for(lambda: len(pd.events) == 2, 10, what="the resolve")
    assert pd.events[1]["event_action"] == "resolve"
    assert pd.events[1]["dedup_key"] == ev["dedup_key"]
    assert "payload" not in pd.events[1]


def test_invalid_event_is_dead_lettered_with_pagerdutys_errors(hub, pd, nats):
    other = "X" * 32  # well formed, but not an integration key PagerDuty knows
    h = hub(outputs=[{"name": "pd", "type": "pagerduty", "routingkey": other, "url": pd.url}])
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.pd"), 10,
                    what="dead letter")
    subj, hdrs, data = msgs[0]
    assert json.loads(data)["uuid"] == a["uuid"]
    assert "400" in hdrs and "Invalid routing key" in hdrs
    assert other not in h.logtext()  # the key is a secret


def test_bad_routing_key_refused_at_start(tmp_path, nats):
    import subprocess
    from conftest import BUILD, yaml_dump
    cfg = tmp_path / "pd.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "pd", "type": "pagerduty", "routingkey": "shortkey",
                     "region": "mars"}]}) + "\n")
    p = subprocess.run([str(BUILD / "bin" / "klaxon-hub"), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    err = p.stderr + p.stdout
    assert p.returncode == 1, err
    assert "routingkey must be the 32-character integration key" in err
    assert "region \"mars\"" in err
    assert "shortkey" not in err
