# SPDX-License-Identifier: Apache-2.0
"""The Elasticsearch output against a local _bulk endpoint that checks what
Elasticsearch requires and answers as it does: POST /_bulk with
application/x-ndjson, action/source line pairs, a final newline (400
illegal_argument_exception otherwise), auth (401 security_exception),
per-item results with "errors": true, 409 version_conflict for an _id that
exists, 429 es_rejected_execution_exception, 400 mapper_parsing_exception."""
import base64
import http.server
import json
import threading
import time

import pytest

from conftest import falco_alert, free_port, wait_for


class Es:
    def __init__(self, auth):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.auth = auth
        self.docs = {}           # (index, _id) -> source
        self.reject_once = set() # uuids answered 429 the first time
        self.bad = set()         # uuids answered 400 mapper_parsing_exception
        self.requests = 0
        es = self

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
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if self.headers.get("Authorization") != es.auth:
                    return self.reply(401, {"error": {"type": "security_exception",
                                                      "reason": "unable to authenticate"},
                                            "status": 401})
                if self.path.split("?")[0] != "/_bulk":
                    return self.reply(404, {"error": "no handler found", "status": 404})
                if not self.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                    return self.reply(406, {"error": "Content-Type not supported", "status": 406})
                if not body.endswith("\n"):
                    return self.reply(400, {"error": {
                        "type": "illegal_argument_exception",
                        "reason": "The bulk request must be terminated by a newline [\\n]"},
                        "status": 400})
                lines = body.split("\n")[:-1]
                if len(lines) % 2:
                    return self.reply(400, {"error": {"type": "illegal_argument_exception",
                                                      "reason": "action without source"},
                                            "status": 400})
                es.requests += 1
                items, errors = [], False
                for action, src in zip(lines[::2], lines[1::2]):
                    act = json.loads(action)["create"]
                    doc = json.loads(src)
                    key = (act["_index"], act["_id"])
                    if act["_id"] in es.reject_once:
                        es.reject_once.discard(act["_id"])
                        items.append({"create": {"_index": key[0], "_id": key[1], "status": 429,
                                      "error": {"type": "es_rejected_execution_exception",
                                                "reason": "rejected execution"}}})
                        errors = True
                    elif act["_id"] in es.bad:
                        items.append({"create": {"_index": key[0], "_id": key[1], "status": 400,
                                      "error": {"type": "mapper_parsing_exception",
                                                "reason": "failed to parse field [x]"}}})
                        errors = True
                    elif key in es.docs:
                        items.append({"create": {"_index": key[0], "_id": key[1], "status": 409,
                                      "error": {"type": "version_conflict_engine_exception",
                                                "reason": "document already exists"}}})
                        errors = True
                    else:
                        es.docs[key] = doc
                        items.append({"create": {"_index": key[0], "_id": key[1], "status": 201,
                                                 "result": "created"}})
                self.reply(200, {"took": 3, "errors": errors, "items": items})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def es():
    e = Es("Basic " + base64.b64encode(b"elastic:s3cret:x").decode())
    yield e
    e.close()


def out(es, **kw):
    o = {"name": "es", "type": "elasticsearch", "hostport": es.url, "index": "falco",
         "username": "elastic", "password": "s3cret:x", "backoff": ["500ms"]}
    o.update(kw)
    return o


def test_bulk_dated_index_and_auth(hub, es):
    h = hub(outputs=[out(es)])
    sent = [falco_alert(container="%012x" % i) for i in range(40)]
    for a in sent:
        assert h.post(a)[0] == 200
    wait_for(lambda: len(es.docs) == 40, 15, what="40 documents")
    day = time.strftime("%Y.%m.%d", time.gmtime())
    assert {k[0] for k in es.docs} == {"falco-" + day}
    assert {k[1] for k in es.docs} == {a["uuid"] for a in sent}
    assert es.requests < 40  # batched
    assert "s3cret" not in h.logtext()


def test_partial_429_is_retried_without_duplicates(hub, es):
    a, b = falco_alert(container="aaaaaaaaaaaa"), falco_alert(container="bbbbbbbbbbbb")
    es.reject_once.add(b["uuid"])
    h = hub(outputs=[out(es, suffix="none")])
    assert h.post(a)[0] == 200 and h.post(b)[0] == 200
    wait_for(lambda: len(es.docs) == 2, 15, what="both documents")
    assert set(es.docs) == {("falco", a["uuid"]), ("falco", b["uuid"])}
    # whatever was retried came back as 409 "already exists", counted delivered
    wait_for(lambda: h.metric("klaxon_output_delivered_total", output="es") == 2, 10,
             what="2 delivered")


def test_mapping_error_is_dead_lettered_and_bad_auth_too(hub, es, nats):
    a = falco_alert(container="cccccccccccc")
    es.bad.add(a["uuid"])
    h = hub(outputs=[out(es), out(es, name="es-badauth", password="wrong")])
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.es"), 10,
                    what="dead letter")
    assert "mapper_parsing_exception" in msgs[0][1]
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.es_badauth"),
                    10, what="dead letter (auth)")
    assert "401" in msgs[0][1] and "wrong" not in h.logtext()
