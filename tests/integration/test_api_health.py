# SPDX-License-Identifier: Apache-2.0
"""The hub's health API against a real nats-server (docs/api.md):
GET /readyz (streams present, NATS up), GET /api/v1/outputs (status, lag,
counters and last error of each output consumer) and GET /api/v1/stats
(counts of accepted alerts fed by the live feed)."""
import json
import time
import urllib.parse

from conftest import falco_alert, free_port, wait_for


def get_json(h, path):
    status, body = h.get(path)
    return status, json.loads(body)


def outputs(h):
    status, body = get_json(h, "/api/v1/outputs")
    assert status == 200, body
    return {o["name"]: o for o in body["outputs"]}


def test_readyz_follows_streams_and_nats(hub, sink, nats):
    h = hub()
    status, body = get_json(h, "/readyz")
    assert status == 200 and body["status"] == "ready", body

    assert h.post(falco_alert())[0] == 200
    sink.wait_for(lambda xs: len(xs) == 1)
    wait_for(lambda: outputs(h)["hook"]["delivered"] == 1, 5, what="delivered count")

    # A stream deleted behind the hub's back: not ready, and which one.
    nc = nats.client()
    _, resp = nc.request("$JS.API.STREAM.DELETE.KLAXON_AUDIT")
    assert json.loads(resp).get("success") is True
    status, body = get_json(h, "/readyz")
    assert status == 503, body
    assert "KLAXON_AUDIT" in body["reason"], body
    nc.close()

    # NATS gone: not ready, answered at once; outputs still answer with
    # what the hub knows, but not the consumer state.
    nats.stop()
    t0 = time.time()
    status, body = get_json(h, "/readyz")
    assert status == 503 and "NATS" in body["reason"], body
    assert time.time() - t0 < 1.0
    hook = outputs(h)["hook"]
    assert hook["status"] == "unknown", hook
    assert hook["lag"] is None and hook["ack_pending"] is None
    assert hook["delivered"] == 1 and hook["last_success"] is not None
    assert time.time() - t0 < 3.0


def test_outputs_ok_and_failing(hub, sink):
    dead = "http://127.0.0.1:%d/hook" % free_port()   # nothing listens there
    h = hub(outputs=[
        {"name": "good", "type": "webhook", "address": sink.url},
        {"name": "bad", "type": "webhook", "address": dead, "backoff": ["200ms"],
         "max_deliver": 1000},
    ])
    for i in range(3):
        assert h.post(falco_alert(container="%012x" % i))[0] == 200
    sink.wait_for(lambda xs: len(xs) == 3)

    def settled():
        o = outputs(h)
        # Acks reach JetStream just after delivery: wait for them too.
        return o if (o["good"]["delivered"] == 3 and o["good"]["ack_pending"] == 0 and
                     o["good"]["lag"] == 0 and o["bad"]["status"] == "failing") else None
    o = wait_for(settled, 10, what="good delivered, bad failing")

    good, bad = o["good"], o["bad"]
    assert good["type"] == "webhook"
    assert good["status"] == "ok", good
    assert (good["lag"], good["ack_pending"], good["failed"], good["deadlettered"]) == (0, 0, 0, 0)
    assert good["last_success"].endswith("Z") and good["last_error"] is None
    assert good["last_error_time"] is None

    assert bad["delivered"] == 0 and bad["failed"] >= 1 and bad["deadlettered"] == 0
    assert bad["last_success"] is None
    assert bad["last_error"] and bad["last_error_time"], bad
    assert "127.0.0.1" in bad["last_error"] or "connect" in bad["last_error"].lower(), bad
    assert bad["lag"] + bad["ack_pending"] >= 1, bad   # the three alerts still wait
    assert bad["redelivered"] >= 0


def test_lag_while_output_down_then_drained(hub, sink, nats):
    sink.down()
    h = hub()
    n = 100
    for i in range(n):
        assert h.post(falco_alert(container="%012x" % i))[0] == 200

    # The worker fetches a few batches ahead at most; the rest waits in the
    # consumer and shows as lag.
    def lagging():
        hook = outputs(h)["hook"]
        return hook if hook["status"] == "failing" and hook["lag"] > 0 else None
    hook = wait_for(lagging, 10, what="lag while the sink is down")
    assert hook["lag"] + hook["ack_pending"] <= n, hook
    assert hook["last_error"]

    sink.up()

    def drained():
        hook = outputs(h)["hook"]
        return hook if hook["delivered"] == n and hook["lag"] == 0 else None
    hook = wait_for(drained, 30, interval=0.2, what="every alert delivered")
    assert hook["status"] == "ok", hook
    assert hook["last_success"] and hook["last_error"]   # the old error stays, with its time
    assert hook["last_success"] >= hook["last_error_time"]


def test_stats_counts_accepted_alerts(hub, sink):
    h = hub()
    sent = [
        # (rule, priority, node, namespace, pod, how many)
        ("Terminal shell in container", "Critical", "node-a", "shop", "web-1", 3),
        ("Write below etc", "Warning", "node-b", "shop", "web-2", 2),
        ("Read sensitive file", "Notice", "node-c", "billing", "api-0", 1),
        ("Outbound to miner", "Error", "node-a", None, None, 1),
    ]
    i = 0
    for rule, prio, node, ns, pod, count in sent:
        for _ in range(count):
            a = falco_alert(rule=rule, priority=prio, host=node, container="%012x" % i)
            if ns:
                a["output_fields"]["k8s.ns.name"] = ns
                a["output_fields"]["k8s.pod.name"] = pod
            assert h.post(a)[0] == 200
            i += 1

    def counted():
        status, body = get_json(h, "/api/v1/stats?since=5m")
        return body if status == 200 and body["total"] >= 7 else None
    st = wait_for(counted, 10, interval=0.2, what="7 alerts in /api/v1/stats")

    assert st["total"] == 7 and st["audit"] == 0
    assert st["bucket"] == "1m"
    assert list(st["by_priority"]) == ["Emergency", "Alert", "Critical", "Error", "Warning",
                                       "Notice", "Informational", "Debug"]
    assert st["by_priority"]["Critical"] == 3 and st["by_priority"]["Warning"] == 2
    assert st["by_priority"]["Notice"] == 1 and st["by_priority"]["Error"] == 1
    assert len(st["series"]) == 5
    assert sum(sum(b["counts"].values()) for b in st["series"]) == 7
    assert st["series"][0]["time"] == st["since"]

    def top(dim):
        return [(e["name"], e["count"]) for e in st["top"][dim]]
    assert top("rules") == [("Terminal shell in container", 3), ("Write below etc", 2),
                            ("Outbound to miner", 1), ("Read sensitive file", 1)]
    assert top("nodes") == [("node-a", 4), ("node-b", 2), ("node-c", 1)]
    assert top("namespaces") == [("shop", 5), ("billing", 1)]
    assert top("pods") == [("shop/web-1", 3), ("shop/web-2", 2), ("billing/api-0", 1)]

    # top=1, an RFC 3339 since with an offset (%-encoded), and a bad value.
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 600))
    status, st = get_json(h, "/api/v1/stats?top=1&since=" + urllib.parse.quote(since))
    assert status == 200, st
    # 10 minutes, or 11 when since falls on a whole minute
    assert st["total"] == 7 and len(st["top"]["rules"]) == 1 and len(st["series"]) in (10, 11)
    status, body = get_json(h, "/api/v1/stats?top=0")
    assert status == 400 and "top" in body["error"], body
    status, body = get_json(h, "/api/v1/stats?limit=5")
    assert status == 400 and "unknown parameter" in body["error"], body
