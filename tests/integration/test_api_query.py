# SPDX-License-Identifier: Apache-2.0
"""The query API on a real nats-server and hub (docs/api.md):
GET /api/v1/alerts with every filter, pagination by cursor, since/until
and text search; GET /api/v1/alerts/{uuid} with its audit trail; GET
/api/v1/audit; the 400s, the 404 and the 503 when NATS is gone.

Most alerts are written straight into KLAXON_EVENTS (where the hub puts
accepted alerts), so the tests control order and content exactly; one goes
through HTTP ingest, one is POST /test's, and one audit trail comes from a
real dry-run responder."""
import json
import re
import time
import urllib.parse

import pytest

from conftest import falco_alert, wait_for


def slug(s):
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "unknown"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


def alert(container, rule="Terminal shell in container", priority="Critical", host="node-a",
          ns=None, pod=None, tags=None, source="syscall", t=None, **fields):
    """A distinct alert (its own container id), stamped now unless t is given."""
    a = falco_alert(rule=rule, priority=priority, host=host, container=container)
    a["time"] = rfc3339(time.time() if t is None else t)
    a["source"] = source
    if tags is not None:
        a["tags"] = tags
    if ns:
        a["output_fields"]["k8s.ns.name"] = ns
    if pod:
        a["output_fields"]["k8s.pod.name"] = pod
    a["output_fields"].update(fields)
    return a


def audit_record(alert_uuid, responder="kill-shells", result="dry_run", target="pod shop/web-1"):
    """Shaped as hub/respond.c writes them."""
    r = falco_alert(rule="Klaxon responder %s" % responder, priority="Notice",
                    container="audit")
    r["source"] = "klaxon_audit"
    r["tags"] = ["klaxon_audit"]
    r["output"] = "%s %s: %s (alert %s: Terminal shell in container)" % (
        responder, result, target, alert_uuid)
    r["output_fields"] = {"klaxon.responder": responder, "klaxon.result": result,
                          "klaxon.reason": "", "klaxon.target": target,
                          "klaxon.alert_uuid": alert_uuid, "klaxon.replica": "hub1"}
    r["dry_run"] = result == "dry_run"
    return r


def stream_count(nc, stream):
    info = nc.stream_info(stream)
    return info["state"]["messages"] if "state" in info else 0


def put(nc, items, audit=False):
    """Writes alerts into KLAXON_EVENTS (audit records also into KLAXON_AUDIT)
    in order, as the hub would, and waits until they are stored."""
    before = {s: stream_count(nc, s) for s in ("KLAXON_EVENTS", "KLAXON_AUDIT")}
    for a in items:
        hdrs = {"Nats-Msg-Id": a["uuid"]}
        if audit:
            name = slug(a["output_fields"]["klaxon.responder"])
            nc.publish("klaxon.audit." + name, json.dumps(a), hdrs)
            nc.publish("klaxon.events.notice.klaxon_audit_" + name, json.dumps(a), hdrs)
        else:
            nc.publish("klaxon.events.%s.%s" % (a["priority"].lower(), slug(a["rule"])),
                       json.dumps(a), hdrs)
    wait_for(lambda: stream_count(nc, "KLAXON_EVENTS") >= before["KLAXON_EVENTS"] + len(items),
             what="alerts stored")
    if audit:
        wait_for(lambda: stream_count(nc, "KLAXON_AUDIT") >= before["KLAXON_AUDIT"] + len(items),
                 what="audit records stored")


def get(h, path, **params):
    """GET path?params (lists repeat) -> (status, JSON body)."""
    q = urllib.parse.urlencode(params, doseq=True)
    status, body = h.get(path + ("?" + q if q else ""))
    return status, json.loads(body)


def alerts(h, **params):
    status, body = get(h, "/api/v1/alerts", **params)
    assert status == 200, body
    return body


def uuids(h, **params):
    return [a["uuid"] for a in alerts(h, **params)["alerts"]]


def ids(*items):
    return [a["uuid"] for a in items]


@pytest.fixture
def qhub(hub):
    """A hub without outputs: these tests read the streams, nothing delivers."""
    return hub(outputs=[])


def test_every_filter(qhub, nats):
    h, nc = qhub, nats.client()
    a0 = alert("c0", ns="shop", pod="web-1", tags=["container", "shell"])
    a1 = alert("c1", rule="Read sensitive file untrusted", priority="Warning", host="node-b",
               ns="shop", pod="db-0", tags=["filesystem", "mitre_credential_access"],
               **{"fd.name": "/etc/shadow"})
    a2 = alert("c2", rule="Contact K8S API Server From Container", priority="Notice",
               ns="kube-system", pod="coredns-1", tags=["network", "k8s"])
    a3 = alert("c3", rule="Attach/Exec Pod", priority="Notice", host="node-c", ns="shop",
               pod="web-2", tags=["k8s"], source="k8s_audit")
    a4 = alert("c4", priority="Error", host="node-b", ns="payments", pod="api-7",
               tags=["container", "shell"], **{"proc.pid": 31337})
    a5 = alert("c5", rule="Drop and execute new binary in container", priority="Emergency",
               host="node-c", ns="payments", pod="api-8", tags=["container"])
    put(nc, [a0, a1, a2, a3])
    put(nc, [audit_record(a0["uuid"])], audit=True)  # in KLAXON_EVENTS too: not an alert
    put(nc, [a4, a5])

    body = alerts(h)
    assert [a["uuid"] for a in body["alerts"]] == ids(a5, a4, a3, a2, a1, a0)
    assert body["next"] is None and body["truncated"] is False and body["scanned"] == 7
    assert body["alerts"][5] == a0  # the stored alert, as it was written

    assert uuids(h, priority="error") == ids(a5, a4, a0)
    assert uuids(h, priority="CRITICAL") == ids(a5, a0)
    assert uuids(h, priority="warn") == ids(a5, a4, a1, a0)
    assert uuids(h, rule="*shell*") == ids(a4, a0)
    assert uuids(h, rule=["Attach/Exec Pod", "Read*"]) == ids(a3, a1)
    assert uuids(h, rule="*SHELL*") == []
    assert uuids(h, tag="shell") == ids(a4, a0)
    assert uuids(h, tag=["k8s", "network"]) == ids(a3, a2)
    assert uuids(h, tag="shel") == []  # tags are exact
    assert uuids(h, node="node-b") == ids(a4, a1)
    assert uuids(h, node="node-[ac]") == ids(a5, a3, a2, a0)
    assert uuids(h, namespace="shop") == ids(a3, a1, a0)
    assert uuids(h, namespace=["pay*", "kube-system"]) == ids(a5, a4, a2)
    assert uuids(h, pod="web-?") == ids(a3, a0)
    assert uuids(h, pod="api-*") == ids(a5, a4)
    assert uuids(h, source="k8s_audit") == ids(a3)
    assert uuids(h, source=["syscall"]) == ids(a5, a4, a2, a1, a0)
    assert uuids(h, source="klaxon_audit") == []  # audit records are not alerts
    # q: case-insensitive, in the rule, the output or an output field value
    assert uuids(h, q="terminal SHELL") == ids(a4, a0)
    assert uuids(h, q="SHADOW") == ids(a1)
    assert uuids(h, q="/etc/shadow") == ids(a1)
    assert uuids(h, q="31337") == ids(a4)
    assert uuids(h, q="coredns") == ids(a2)
    assert uuids(h, q="seq=") == ids(a5, a4, a3, a2, a1, a0)  # in every output
    assert uuids(h, q="no such text") == []
    assert uuids(h, q="kill-shells") == []  # only in the audit record
    # all conditions at once
    assert uuids(h, priority="error", namespace="payments", tag="shell", node="node-b",
                 pod="api-*", source="syscall", rule="Terminal*", q="shell") == ids(a4)
    assert uuids(h, priority="error", namespace="shop", tag="k8s") == []

    # POST /test's alert and one through HTTP ingest are alerts too
    status, body = h.post(b"", "/test")
    assert status == 200, body
    test_uuid = json.loads(body)["uuid"]
    a6 = alert("c6", rule="Write below etc", priority="Error", host="node-d")
    assert h.post(a6)[0] == 200
    wait_for(lambda: uuids(h, node="node-d") == ids(a6), what="the ingested alert")
    got = alerts(h, rule="Test rule")["alerts"]
    assert [a["uuid"] for a in got] == [test_uuid]
    assert got[0]["source"] == "klaxon" and got[0]["priority"] == "Debug"
    assert uuids(h, priority="debug")[:2] == [a6["uuid"], test_uuid]


def test_pagination(qhub, nats):
    h, nc = qhub, nats.client()
    pris = ["Critical", "Warning", "Notice"]
    sent = [alert("p%04d" % i, priority=pris[i % 3]) for i in range(250)]
    put(nc, sent)
    newest_first = ids(*reversed(sent))

    def pages(**params):
        out, cursor = [], None
        for _ in range(20):
            p = dict(params, **({"cursor": cursor} if cursor else {}))
            body = alerts(h, **p)
            out.append([a["uuid"] for a in body["alerts"]])
            assert body["truncated"] is False
            cursor = body["next"]
            if cursor is None:
                return out
            assert re.fullmatch(r"[1-9][0-9]*", cursor)
        raise AssertionError("no end of pages")

    got = pages(limit=100)
    assert [len(p) for p in got] == [100, 100, 50]
    assert sum(got, []) == newest_first  # no duplicates, no gaps, newest first

    got = pages(limit=30, priority="critical")  # 84 of them
    assert [len(p) for p in got] == [30, 30, 24]
    assert sum(got, []) == [u for u, a in zip(newest_first, reversed(sent))
                            if a["priority"] == "Critical"]

    assert len(uuids(h)) == 100  # the default limit
    assert uuids(h, limit=1000) == newest_first
    body = alerts(h, limit=1)
    assert body["alerts"][0]["uuid"] == sent[-1]["uuid"] and body["next"] is not None
    body = alerts(h, cursor=1)  # nothing below the first message
    assert body["alerts"] == [] and body["next"] is None


def test_since_until(qhub, nats):
    h, nc = qhub, nats.client()
    old = alert("old", t=time.time() - 25 * 3600)     # stored now, happened yesterday
    late = alert("late", t=time.time() - 30 * 60)     # a sensor's buffered alert
    late5 = alert("late5", t=time.time() - 5 * 60)
    first = [alert("a%d" % i) for i in range(3)]
    put(nc, [old, late, late5] + first)
    time.sleep(1.1)
    t1 = time.time()
    middle = [alert("b%d" % i) for i in range(3)]
    put(nc, middle)
    t2 = time.time()
    time.sleep(1.1)
    last = [alert("c%d" % i) for i in range(3)]
    put(nc, last)

    rev = lambda xs: ids(*reversed(xs))  # noqa: E731
    # the alert's own time counts, not when it was stored
    assert uuids(h) == rev(last) + rev(middle) + rev(first) + ids(late5, late)  # since=24h
    assert uuids(h, since=rfc3339(t1), until=rfc3339(t2)) == rev(middle)
    assert uuids(h, since=rfc3339(t1)) == rev(last) + rev(middle)
    assert uuids(h, since="1h", until=rfc3339(t2)) == \
        rev(middle) + rev(first) + ids(late5, late)
    assert uuids(h, since="15m") == rev(last) + rev(middle) + rev(first) + ids(late5)
    assert uuids(h, since="10m", until="1m") == ids(late5)
    assert uuids(h, since="1h", until="2m") == ids(late5, late)
    assert uuids(h, since="48h") == rev(last) + rev(middle) + rev(first) + ids(late5, late, old)
    # (an alert stored more than 10 minutes after its time, like old, is not
    # looked for below until: hub/query.c LATE_ARRIVAL)
    # an RFC 3339 offset is honoured
    t1_local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t1 + 3600)) + \
        ".%09d+01:00" % int((t1 % 1) * 1e9)
    assert uuids(h, since=t1_local, until=rfc3339(t2)) == rev(middle)
    assert uuids(h, since=rfc3339(time.time() + 3600)) == []


def test_alert_by_uuid_and_audit(qhub, nats):
    h, nc = qhub, nats.client()
    a = alert("x1", ns="shop", pod="web-1")
    b = alert("x2", rule="Read sensitive file untrusted", priority="Warning")
    put(nc, [a, b])
    recs = [audit_record(a["uuid"], "kill-shells", "dry_run"),
            audit_record(b["uuid"], "kill-shells", "acted", "pod shop/db-0"),
            audit_record(a["uuid"], "isolate-pod", "failed"),
            audit_record(a["uuid"], "isolate-pod", "acted")]
    put(nc, recs, audit=True)

    status, body = get(h, "/api/v1/alerts/" + a["uuid"])
    assert status == 200, body
    assert body["alert"] == a
    assert [r["uuid"] for r in body["audit"]] == ids(recs[0], recs[2], recs[3])  # oldest first
    assert body["audit"][0] == recs[0]
    status, body = get(h, "/api/v1/alerts/" + b["uuid"].upper())
    assert status == 200 and body["alert"]["uuid"] == b["uuid"]
    assert [r["uuid"] for r in body["audit"]] == ids(recs[1])
    # the alerts query never lists audit records, even those in KLAXON_EVENTS
    assert uuids(h) == ids(b, a)

    status, body = get(h, "/api/v1/alerts/0b8c0000-0000-4000-8000-000000000000")
    assert status == 404 and "no alert" in body["error"]
    for bad in ("not-a-uuid", a["uuid"][:-1], a["uuid"] + "0", a["uuid"].replace("-", "x"),
                a["uuid"] + "/audit"):
        status, body = get(h, "/api/v1/alerts/" + bad)
        assert status == 400, (bad, body)
        assert "UUID" in body["error"]

    # GET /api/v1/audit
    def audit(**params):
        status, body = get(h, "/api/v1/audit", **params)
        assert status == 200, body
        return [r["uuid"] for r in body["records"]], body

    got, body = audit()
    assert got == ids(*reversed(recs)) and body["next"] is None and body["scanned"] == 4
    assert body["records"][0] == recs[3]
    assert audit(responder="kill-*")[0] == ids(recs[1], recs[0])
    assert audit(responder=["isolate-pod", "nobody"])[0] == ids(recs[3], recs[2])
    assert audit(result="acted")[0] == ids(recs[3], recs[1])
    assert audit(result=["failed", "dry_run"])[0] == ids(recs[2], recs[0])
    assert audit(alert_uuid=a["uuid"])[0] == ids(recs[3], recs[2], recs[0])
    assert audit(alert_uuid=a["uuid"], result="acted", responder="isolate-*")[0] == ids(recs[3])
    assert audit(since="1m", until=rfc3339(time.time() + 60))[0] == ids(*reversed(recs))
    assert audit(since=rfc3339(time.time() + 60))[0] == []
    got, body = audit(limit=3)
    assert got == ids(recs[3], recs[2], recs[1]) and body["next"] is not None
    assert audit(limit=3, cursor=body["next"])[0] == ids(recs[0])


def test_dry_run_responder_trail(hub, nats):
    resp = {"name": "kill-shells", "dry_run": True,
            "match": {"rules": ["Terminal shell*"], "priority": "warning"},
            "actions": [{"type": "node", "params": {"action": "kill_process"}, "timeout": "2s"}]}
    h = hub(outputs=[], responders=[resp])
    a = alert("dry1", ns="shop", pod="web-1", **{"proc.start_ns": 1000000001,
                                                 "container.full_id": "d" * 64})
    assert h.post(a)[0] == 200

    def trail():
        status, body = get(h, "/api/v1/alerts/" + a["uuid"])
        return body if status == 200 and body["audit"] else None
    body = wait_for(trail, 15, what="the audit trail")
    assert body["alert"]["uuid"] == a["uuid"]
    rec = body["audit"][0]
    assert rec["source"] == "klaxon_audit" and rec["rule"] == "Klaxon responder kill-shells"
    assert rec["output_fields"]["klaxon.result"] == "dry_run"
    assert rec["output_fields"]["klaxon.alert_uuid"] == a["uuid"]
    status, got = get(h, "/api/v1/audit", result="dry_run", responder="kill-shells")
    assert status == 200 and [r["uuid"] for r in got["records"]] == [rec["uuid"]]


def test_bad_requests(qhub):
    h = qhub
    cases = [
        ("/api/v1/alerts", {"foo": "1"}, 'unknown parameter "foo"'),
        ("/api/v1/alerts", {"kind": "alert"}, 'parameter "kind" does not apply'),
        ("/api/v1/alerts", {"priority": "loud"}, 'priority: unknown priority "loud"'),
        ("/api/v1/alerts", {"since": "yesterday"},
         "since: want an RFC 3339 time or a duration like 15m"),
        ("/api/v1/alerts", {"until": "2026-02-30T00:00:00Z"},
         "until: want an RFC 3339 time or a duration like 15m"),
        ("/api/v1/alerts", {"since": "1h", "until": "2h"}, "since is after until"),
        ("/api/v1/alerts", {"cursor": "abc"}, 'cursor: want the "next" of a previous page'),
        ("/api/v1/alerts", {"cursor": "0"}, 'cursor: want the "next" of a previous page'),
        ("/api/v1/alerts", {"limit": "0"}, "limit: want a number from 1 to 1000"),
        ("/api/v1/alerts", {"limit": "1001"}, "limit: want a number from 1 to 1000"),
        ("/api/v1/alerts", {"limit": ["5", "6"]}, 'parameter "limit" given more than once'),
        ("/api/v1/audit", {"result": "done"}, "result: want acted, dry_run, skipped or failed"),
        ("/api/v1/audit", {"alert_uuid": "abc"}, "alert_uuid: want a UUID"),
        ("/api/v1/audit", {"rule": "x"}, 'parameter "rule" does not apply to /api/v1/audit'),
        ("/api/v1/audit", {"bar": ""}, 'unknown parameter "bar"'),
    ]
    for path, params, why in cases:
        status, body = get(h, path, **params)
        assert status == 400, (path, params, body)
        assert body["error"].startswith(why), (params, body)
    # %-encoded values arrive decoded ('+' a space): "a&b c" is one rule, no error
    status, body = h.get("/api/v1/alerts?rule=a%26b+c&q=%2Fetc")
    assert status == 200, body


def test_nats_down_is_503(qhub, nats):
    h, nc = qhub, nats.client()
    a = alert("n1")
    put(nc, [a])
    assert uuids(h) == ids(a)
    nats.stop()
    wait_for(lambda: not h.healthy(), 10, what="the hub to notice")
    for path in ("/api/v1/alerts", "/api/v1/audit", "/api/v1/alerts/" + a["uuid"]):
        status, body = get(h, path)
        assert status == 503, (path, body)
        assert "NATS" in body["error"]
    # bad input is still a 400, NATS or not
    assert get(h, "/api/v1/alerts", limit="0")[0] == 400
    nats.start()
    wait_for(lambda: h.get("/api/v1/alerts")[0] == 200, 20, what="queries after NATS is back")
    assert uuids(h) == ids(a)
