# SPDX-License-Identifier: Apache-2.0
"""GET /ws, the live feed (docs/api.md): real hub, real nats-server, real
WebSocket clients (python3-websocket). Alerts enter the way sensors send
them (NATS, klaxon.alerts.<node>) unless a test needs HTTP."""
import json
import socket
import threading
import time

import pytest
import websocket

from conftest import falco_alert, wait_for


def ws_url(h, query=""):
    return h.url.replace("http://", "ws://") + "/ws" + query


def connect(h, query="", **kw):
    ws = websocket.create_connection(ws_url(h, query), timeout=5, **kw)
    hello = json.loads(ws.recv())
    assert hello["type"] == "hello", hello
    return ws, hello


def handshake(h, target, headers=()):
    """A raw WebSocket handshake: (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", h.port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n"
                   % (target, h.port, "".join(k + ": " + v + "\r\n" for k, v in headers))
                   ).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")]
        while length and len(body) < length[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            body += chunk
        return int(head.split()[1]), body


def publish(nats, n, node="node-a", prefix="c", **kw):
    """n distinct alerts via NATS; returns their uuids in order."""
    nc = nats.client()
    uuids = []
    for i in range(n):
        a = falco_alert(host=node, container="%s%06d" % (prefix, i), **kw)
        nc.js_publish("klaxon.alerts." + node, json.dumps(a).encode(), msg_id=a["uuid"])
        uuids.append(a["uuid"])
    nc.close()
    return uuids


def collect(ws, want, timeout=10.0):
    """Reads messages until `want` events arrived; returns (events, others)."""
    events, others = [], []
    end = time.time() + timeout
    ws.settimeout(0.5)
    while len(events) < want and time.time() < end:
        try:
            m = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            continue
        if m["type"] == "events":
            events.extend(m["events"])
        else:
            others.append(m)
    return events, others


def test_events_arrive_in_stream_order_with_consecutive_seqs(hub, nats):
    h = hub(outputs=[])
    ws, hello = connect(h)
    assert hello["filter"]["kind"] == "all"
    t0 = time.time()
    uuids = publish(nats, 30)
    events, _ = collect(ws, 30)
    took = time.time() - t0
    assert [e["alert"]["uuid"] for e in events] == uuids
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 30)), seqs
    assert seqs[0] == hello["seq"] + 1
    assert all(e["kind"] == "alert" for e in events)
    assert took < 3, took
    ws.close()


def test_query_filter_and_filter_message(hub, nats):
    h = hub(outputs=[])
    ws, hello = connect(h, "?priority=critical&node=node-b*")
    assert hello["filter"]["priority"].lower() == "critical"
    publish(nats, 3, node="node-a", prefix="a")                     # wrong node
    publish(nats, 3, node="node-b1", prefix="b", priority="Notice")  # too low
    want = publish(nats, 2, node="node-b2", prefix="c")
    events, _ = collect(ws, 2)
    assert [e["alert"]["uuid"] for e in events] == want

    # A new filter replaces the old one and is echoed back normalized.
    ws.send(json.dumps({"filter": {"rule": ["Write below*"], "q": "ETC/SHADOW"}}))
    m = json.loads(ws.recv())
    assert m["type"] == "filter" and m["filter"]["rule"] == ["Write below*"], m
    publish(nats, 2, prefix="d")  # shell alerts: filtered out now
    nc = nats.client()
    a = falco_alert(rule="Write below etc", container="e1",
                    output="File below /etc/shadow opened for writing")
    nc.js_publish("klaxon.alerts.node-a", json.dumps(a).encode(), msg_id=a["uuid"])
    nc.close()
    events, _ = collect(ws, 1)
    assert [e["alert"]["uuid"] for e in events] == [a["uuid"]]
    ws.close()


BAD_MESSAGES = [
    ("not json", "JSON object"),
    ('{"filter":{"priority":"loud"}}', "priority"),
    ('{"filter":{"colour":"red"}}', "colour"),
    ('{"subscribe":true}', "subscribe"),
    ('{"filter":[1]}', "object"),
]


def test_bad_client_messages_get_an_error_and_keep_the_filter(hub, nats):
    h = hub(outputs=[])
    ws, _ = connect(h, "?priority=error")
    for i, (msg, why) in enumerate(BAD_MESSAGES):
        ws.send(msg)
        m = json.loads(ws.recv())
        assert m["type"] == "error" and why in m["error"], (msg, m)
        want = publish(nats, 1, prefix="x%d-" % i)
        publish(nats, 1, prefix="y%d-" % i, priority="Notice")
        events, _ = collect(ws, 1, timeout=5)
        assert [e["alert"]["uuid"] for e in events] == want, msg
    ws.close()


def test_bad_handshake_query_is_400(hub):
    h = hub(outputs=[])
    for query, why in [("?priority=loud", "priority"), ("?since=1h", "since"),
                       ("?kind=everything", "kind"), ("?colour=red", "colour")]:
        status, body = handshake(h, "/ws" + query)
        assert status == 400, (query, body)
        assert why in json.loads(body)["error"], body


def test_plain_get_and_other_paths(hub):
    h = hub(outputs=[])
    status, body = h.get("/ws")
    assert status == 400 and b"WebSocket" in body
    status, body = handshake(h, "/api/v1/alerts")
    assert status == 404 and b"/ws" in body, body
    status, body = handshake(h, "/ws", [("Origin", "https://evil.example")])
    assert status == 403, body


def test_audit_records_and_kind_filter(hub, nats):
    h = hub(outputs=[])
    audit_ws, _ = connect(h, "?kind=audit")
    alert_ws, _ = connect(h, "?kind=alert")
    rec = falco_alert(rule="Klaxon responder kill", source="klaxon_audit", container="r1",
                      priority="Notice")
    rec["output_fields"].update({"klaxon.result": "acted", "klaxon.responder": "kill"})
    nc = nats.client()
    nc.js_publish("klaxon.events.notice.klaxon_audit_kill", json.dumps(rec).encode(),
                  msg_id=rec["uuid"])
    nc.close()
    want = publish(nats, 1, prefix="k")
    events, _ = collect(audit_ws, 1)
    assert [(e["kind"], e["alert"]["uuid"]) for e in events] == [("audit", rec["uuid"])]
    events, _ = collect(alert_ws, 1)
    assert [(e["kind"], e["alert"]["uuid"]) for e in events] == [("alert", want[0])]
    time.sleep(0.3)
    alert_ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        alert_ws.recv()   # the audit record never comes to kind=alert


def test_many_clients_all_see_everything(hub, nats):
    h = hub(outputs=[])
    clients = [connect(h)[0] for _ in range(20)]
    uuids = publish(nats, 200)
    for ws in clients:
        events, others = collect(ws, 200)
        assert [e["alert"]["uuid"] for e in events] == uuids
        assert not [o for o in others if o["type"] == "skipped"]
    wait_for(lambda: h.metric("klaxon_ws_clients") == 20, 5, what="20 clients counted")
    for ws in clients:
        ws.close()
    wait_for(lambda: h.metric("klaxon_ws_clients") == 0, 5, what="clients gone")


def slow_client(h, query=""):
    """A client whose socket takes almost nothing until it reads."""
    return websocket.create_connection(
        ws_url(h, query), timeout=5,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))


def big_alerts(nats, n, prefix):
    pad = "x" * 4000
    nc = nats.client()
    for i in range(n):
        a = falco_alert(container="%s%06d" % (prefix, i))
        a["output_fields"]["pad"] = pad
        nc.js_publish("klaxon.alerts.node-a", json.dumps(a).encode(), msg_id=a["uuid"])
    nc.close()


def test_slow_client_is_skipped_ahead_and_fast_one_is_not(hub, nats):
    h = hub(outputs=[], http={"ws_buffer": 512}, dedupe={"enabled": False})
    slow = slow_client(h)
    assert json.loads(slow.recv())["type"] == "hello"
    fast, _ = connect(h)
    n = 3000
    got_fast = []
    reader = threading.Thread(target=lambda: got_fast.append(collect(fast, n, timeout=60)))
    reader.start()   # the fast client reads while alerts flow
    big_alerts(nats, n, "s")
    reader.join()
    events, others = got_fast[0]
    assert not [o for o in others if o["type"] == "skipped"]
    assert len(events) == n
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + n))

    # Now the slow one reads: it was skipped ahead, told so, and then gets
    # the newest events without a hole after the notice.
    slow.settimeout(2)
    got, skipped = 0, []
    try:
        while True:
            m = json.loads(slow.recv())
            if m["type"] == "skipped":
                skipped.append(m)
            elif m["type"] == "events":
                got += len(m["events"])
    except websocket.WebSocketTimeoutException:
        pass
    assert skipped, "the slow client was never skipped"
    missed = sum(s["missed"] for s in skipped)
    assert got + missed == n, (got, missed)
    assert all(s["from"] <= s["to"] for s in skipped)
    assert h.metric("klaxon_ws_skipped_events_total") == missed
    # Memory stayed bounded: 512 events of ~4 KiB, not 3000.
    rss_kb = int([line for line in open("/proc/%d/status" % h.proc.pid)
                  if line.startswith("VmHWM")][0].split()[1])
    assert rss_kb < 200 * 1024, rss_kb


def test_slow_client_is_dropped_when_configured(hub, nats):
    h = hub(outputs=[], http={"ws_buffer": 64, "ws_slow": "drop"}, dedupe={"enabled": False})
    slow = slow_client(h)
    assert json.loads(slow.recv())["type"] == "hello"
    big_alerts(nats, 3000, "d")
    wait_for(lambda: h.metric("klaxon_ws_dropped_clients_total") == 1, 30,
             what="slow client dropped")
    slow.settimeout(5)
    # Closed (1008): whatever it had not read is gone with the connection.
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionResetError)):
        while True:
            slow.recv()
    assert "too slow" in h.logtext() or h.metric("klaxon_ws_clients") == 0


def test_clients_survive_a_nats_restart(hub, nats):
    h = hub(outputs=[])
    ws, _ = connect(h)
    publish(nats, 3, prefix="before")
    assert len(collect(ws, 3)[0]) == 3
    nats.restart()
    wait_for(h.healthy, 20, what="hub reconnected")
    uuids = publish(nats, 3, prefix="after")
    events, _ = collect(ws, 3, timeout=20)
    assert [e["alert"]["uuid"] for e in events] == uuids


def test_tls_serves_https_and_wss(hub, nats, tmp_path):
    import ssl
    import subprocess
    import urllib.request
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True)
    h = hub(outputs=[], http={"tls_cert": str(cert), "tls_key": str(key)}, wait=False)
    ctx = ssl.create_default_context(cafile=str(cert))
    https = h.url.replace("http://", "https://")

    def ready():
        try:
            with urllib.request.urlopen(https + "/readyz", context=ctx, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    wait_for(ready, 15, what="hub over https")
    with urllib.request.urlopen(https + "/api/v1/outputs", context=ctx, timeout=5) as r:
        assert json.loads(r.read()) == {"outputs": []}
    ws = websocket.create_connection(https.replace("https://", "wss://") + "/ws", timeout=5,
                                     sslopt={"ca_certs": str(cert)})
    assert json.loads(ws.recv())["type"] == "hello"
    uuids = publish(nats, 2, prefix="tls")
    events, _ = collect(ws, 2)
    assert [e["alert"]["uuid"] for e in events] == uuids
    # Plain HTTP on the TLS port gets no answer in clear text.
    with pytest.raises(Exception):
        urllib.request.urlopen(h.url + "/healthz", timeout=2).read()
