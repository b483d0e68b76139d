# SPDX-License-Identifier: Apache-2.0
"""The hub end to end against a real nats-server: HTTP and NATS ingest,
dedupe and aggregates across replicas, redelivery after outages and
crashes, dead-lettering, filters and start-up errors."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import falco_alert, free_port, wait_for


def publish_raw(nc, alert, node="node-a", msg_id=None):
    data = json.dumps(alert) if isinstance(alert, dict) else alert
    mid = msg_id if msg_id is not None else (alert.get("uuid") if isinstance(alert, dict) else None)
    return nc.js_publish("klaxon.alerts." + node, data, msg_id=mid)


def test_http_ingest_reaches_webhook_once(hub, sink):
    h = hub()
    a = falco_alert()
    status, body = h.post(a)
    assert status == 200, body
    assert json.loads(body)["uuid"] == a["uuid"]
    got = sink.wait_for(lambda xs: len(xs) >= 1)
    assert got[0]["uuid"] == a["uuid"]
    assert got[0]["rule"] == a["rule"]
    assert got[0]["output_fields"]["container.id"] == "3ad7b26ded6d"
    # Falco's JSON passes through unchanged, custom headers are sent.
    assert got[0]["output"] == a["output"]
    path, headers, _ = sink.requests[0]
    assert headers.get("X-Klaxon-Test") == "yes"
    assert headers.get("Content-Type", "").startswith("application/json")
    # Same alert again (e.g. a retried POST): stored once by Nats-Msg-Id.
    assert h.post(a)[0] == 200
    time.sleep(1.0)
    assert sink.uuids() == [a["uuid"]]
    # /api/v1/alerts is the same ingest; an alert without uuid gets one.
    b = falco_alert(container="ffffffffffff")
    del b["uuid"]
    status, body = h.post(b, "/api/v1/alerts")
    assert status == 200
    uid = json.loads(body)["uuid"]
    sink.wait_for(lambda xs: uid in [x["uuid"] for x in xs])
    assert h.metric("klaxon_output_delivered_total", output="hook") == 2
    assert h.metric("klaxon_alerts_received_total", source="http") == 3


def test_nats_ingest_reaches_webhook_once(hub, sink, nats):
    hub()
    nc = nats.client()
    a = falco_alert()
    ack = publish_raw(nc, a)
    assert ack["stream"] == "KLAXON_ALERTS"
    ack2 = publish_raw(nc, a)              # a sensor retrying its publish
    assert ack2.get("duplicate") is True
    sink.wait_for(lambda xs: len(xs) >= 1)
    time.sleep(1.0)
    assert sink.uuids() == [a["uuid"]]
    # The accepted alert is in KLAXON_EVENTS under klaxon.events.<prio>.<rule>.
    msgs = nc.stream_msgs("KLAXON_EVENTS")
    assert [m[0] for m in msgs] == ["klaxon.events.critical.terminal_shell_in_container"]


def test_bad_input_is_rejected_and_hub_keeps_serving(hub, sink, nats):
    h = hub()
    cases = [
        ("{bad json", "invalid JSON"),
        (json.dumps({"priority": "Error", "time": "2026-01-01T00:00:00Z"}), "rule"),
        (json.dumps({"rule": "r", "priority": "Loud", "time": "2026-01-01T00:00:00Z"}),
         "unknown priority"),
        (json.dumps({"rule": "r", "priority": "Error", "time": "tuesday"}), "RFC 3339"),
        ("[]", "array"),
        ("", "empty"),
    ]
    for body, why in cases:
        status, resp = h.post(body)
        assert status == 400, (body, status, resp)
        assert why in json.loads(resp)["error"], resp
    # Oversized body: refused by the listener, not buffered.
    status, resp = h.post(b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert status == 413, status
    assert "exceeds" in json.loads(resp)["error"]
    # Garbage on NATS goes to the ingest dead-letter subject with its reason.
    nc = nats.client()
    nc.js_publish("klaxon.alerts.node-x", b"not json at all", msg_id="junk-1")
    wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.ingest"),
             10, what="dead-lettered ingest")
    subj, hdrs, data = nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.ingest")[0]
    assert data == b"not json at all"
    assert "Klaxon-Reason: invalid JSON" in hdrs
    # Still serving.
    a = falco_alert()
    assert h.post(a)[0] == 200
    sink.wait_for(lambda xs: a["uuid"] in [x["uuid"] for x in xs])
    assert h.metric("klaxon_alerts_rejected_total", reason="invalid") >= 7
    assert h.get("/healthz")[0] == 200


def test_duplicates_suppressed_and_aggregate_arrives(hub, sink):
    h = hub(dedupe={"enabled": True, "window": "2s"})
    first = falco_alert()
    assert h.post(first)[0] == 200
    sink.wait_for(lambda xs: len(xs) == 1)
    for _ in range(4):
        assert h.post(falco_alert())[0] == 200     # same key, new uuids
    other = falco_alert(container="0123456789ab")  # another key: not a repeat
    assert h.post(other)[0] == 200
    got = sink.wait_for(lambda xs: any("klaxon_aggregate" in x.get("tags", []) for x in xs), 8)
    agg = [x for x in got if "klaxon_aggregate" in x.get("tags", [])]
    plain = [x for x in got if "klaxon_aggregate" not in x.get("tags", [])]
    assert sorted(x["uuid"] for x in plain) == sorted([first["uuid"], other["uuid"]])
    assert len(agg) == 1
    assert agg[0]["output_fields"]["klaxon.repeats"] == 4
    assert "repeated 4 times in 2 s" in agg[0]["output"]
    assert agg[0]["output_fields"]["klaxon.first_uuid"] == first["uuid"]
    assert agg[0]["rule"] == first["rule"]
    assert h.metric("klaxon_alerts_deduped_total") == 4
    # After the window a new alert with the same key is accepted again.
    again = falco_alert()
    assert h.post(again)[0] == 200
    sink.wait_for(lambda xs: again["uuid"] in [x["uuid"] for x in xs])
    time.sleep(2.5)   # its window closes with no repeats: no second aggregate
    assert len([x for x in sink.alerts if "klaxon_aggregate" in x.get("tags", [])]) == 1


def test_two_replicas_deliver_each_alert_once(hub, sink, nats):
    h1 = hub(dedupe={"enabled": True, "window": "3s"}, name="replica1")
    h2 = hub(dedupe={"enabled": True, "window": "3s"}, name="replica2")
    nc = nats.client()
    sent = []
    for i in range(300):
        a = falco_alert(container="%012x" % i)
        sent.append(a["uuid"])
        publish_raw(nc, a, node="node-%d" % (i % 3))
    # 40 repeats of one key, published while both replicas are consuming.
    rep = [falco_alert(container="aaaaaaaaaaaa") for _ in range(40)]
    for a in rep:
        publish_raw(nc, a)
    got = sink.wait_for(lambda xs: any("klaxon_aggregate" in x.get("tags", []) for x in xs)
                        and len(xs) >= 302, 30)
    time.sleep(1.0)
    uuids = sink.uuids()
    plain = [x for x in sink.alerts if "klaxon_aggregate" not in x.get("tags", [])]
    agg = [x for x in sink.alerts if "klaxon_aggregate" in x.get("tags", [])]
    assert len(uuids) == len(set(uuids)), "an alert was delivered twice"
    assert set(sent) <= set(uuids)
    rep_plain = [x for x in plain if x["output_fields"]["container.id"] == "aaaaaaaaaaaa"]
    assert len(rep_plain) == 1
    assert len(agg) == 1 and agg[0]["output_fields"]["klaxon.repeats"] == 39
    # Both replicas did real work (the consumer is a shared work queue).
    n1 = h1.metric("klaxon_alerts_received_total", source="nats")
    n2 = h2.metric("klaxon_alerts_received_total", source="nats")
    assert n1 + n2 == 340 and n1 > 0 and n2 > 0, (n1, n2)
    d1 = h1.metric("klaxon_alerts_deduped_total") + h2.metric("klaxon_alerts_deduped_total")
    assert d1 == 39


def test_webhook_down_then_up_loses_nothing(hub, sink):
    sink.down()
    h = hub()
    sent = [falco_alert(container="%012x" % i) for i in range(20)]
    for a in sent:
        assert h.post(a)[0] == 200
    wait_for(lambda: (h.metric("klaxon_output_retried_total", output="hook") or 0) >= 1, 10,
             what="retries")
    time.sleep(1.5)
    assert sink.alerts == []
    sink.up()
    sink.wait_for(lambda xs: len(xs) >= 20, 20)
    time.sleep(1.0)
    assert sorted(sink.uuids()) == sorted(a["uuid"] for a in sent)
    assert h.metric("klaxon_output_deadlettered_total", output="hook") == 0


def test_hub_sigkill_mid_stream_then_restart_delivers_everything(hub, sink, nats):
    sink.delay = 0.01     # a webhook that takes 10 ms per alert
    h = hub()
    nc = nats.client()
    sent = []
    for i in range(300):
        a = falco_alert(container="%012x" % i)
        sent.append(a["uuid"])
        publish_raw(nc, a)
    sink.wait_for(lambda xs: len(xs) >= 20, 20)
    h.kill()
    n_before = len(sink.alerts)
    assert n_before < 300, "the kill came too late to test anything"
    h.start()
    sink.wait_for(lambda xs: set(sent) <= {x["uuid"] for x in xs}, 60)
    dup = len(sink.uuids()) - len(set(sink.uuids()))
    print("delivered before kill: %d, redelivered duplicates: %d" % (n_before, dup))
    assert dup <= 5   # at-least-once: only the in-flight alert(s) may repeat


def test_permanent_failure_goes_to_dead_letter(hub, sink, nats):
    sink.status = 400
    h = hub()
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.hook"), 10,
                    what="dead letter")
    subj, hdrs, data = msgs[0]
    assert json.loads(data)["uuid"] == a["uuid"]
    assert "HTTP 400" in hdrs and "sink says no" in hdrs
    assert h.metric("klaxon_output_deadlettered_total", output="hook") == 1
    assert len(sink.requests) == 1     # a 400 is not retried


def test_retries_exhausted_go_to_dead_letter(hub, sink, nats):
    sink.status = 503
    h = hub(outputs=[{"name": "flaky", "type": "webhook", "address": sink.url,
                      "max_deliver": 3, "backoff": ["100ms"]}])
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.flaky"), 15,
                    what="dead letter")
    assert "gave up after 3 attempts" in msgs[0][1]
    assert len(sink.requests) == 3


def test_retry_after_is_honoured(hub, sink):
    sink.status = 429
    sink.retry_after = 2
    h = hub()
    assert h.post(falco_alert())[0] == 200
    wait_for(lambda: len(sink.requests) >= 1, 10, what="first attempt")
    t0 = time.time()
    sink.status = 200
    sink.retry_after = None
    sink.wait_for(lambda xs: len(xs) == 1, 10)
    assert time.time() - t0 >= 1.5, "retried before Retry-After elapsed"


def test_minimumpriority_and_file_output(hub, sink, tmp_path):
    out = tmp_path / "alerts.jsonl"
    h = hub(outputs=[
        {"name": "hook", "type": "webhook", "address": sink.url, "minimumpriority": "warning"},
        {"name": "jsonl", "type": "file", "path": str(out)},
    ])
    low = falco_alert(priority="Notice", container="111111111111")
    high = falco_alert(priority="critical", container="222222222222")
    assert h.post(low)[0] == 200
    assert h.post(high)[0] == 200
    sink.wait_for(lambda xs: len(xs) >= 1)
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 2, 10,
             what="file output")
    time.sleep(0.5)
    assert sink.uuids() == [high["uuid"]]
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert {l["uuid"] for l in lines} == {low["uuid"], high["uuid"]}
    assert h.metric("klaxon_output_filtered_total", output="hook") == 1


def test_output_filters_and_added_fields(hub, sink, tmp_path):
    """Per-output rule/tag/namespace filters, customfields and templatedfields
    (Falcosidekick's names): two outputs with different routes, one sink."""
    out = tmp_path / "all.jsonl"
    h = hub(outputs=[
        {"name": "shop-shells", "type": "webhook", "address": sink.url,
         "rules": ["Terminal shell*"], "namespaces": ["shop"],
         "customfields": {"env": "prod"},
         "templatedfields": {"summary": "%rule in {{ k8s.ns.name }} on %hostname"}},
        {"name": "everything", "type": "file", "path": str(out)},
    ])
    hit = falco_alert(container="111111111111")
    hit["output_fields"]["k8s.ns.name"] = "shop"
    other_ns = falco_alert(container="222222222222")
    other_ns["output_fields"]["k8s.ns.name"] = "dev"
    other_rule = falco_alert(rule="Write below etc", container="333333333333")
    other_rule["output_fields"]["k8s.ns.name"] = "shop"
    for a in (other_ns, other_rule, hit):
        assert h.post(a)[0] == 200
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 3, 10,
             what="file output")
    got = sink.wait_for(lambda xs: len(xs) >= 1)
    time.sleep(0.5)
    assert sink.uuids() == [hit["uuid"]]
    f = got[0]["output_fields"]
    assert f["env"] == "prod"
    assert f["summary"] == "Terminal shell in container in shop on node-a"
    assert h.metric("klaxon_output_filtered_total", output="shop-shells") == 2
    # the other output saw the alerts undecorated
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert all("env" not in l["output_fields"] for l in lines)


def test_post_test_reaches_every_output_whatever_its_filters(hub, sink, tmp_path):
    """POST /test (Falcosidekick's) sends one Debug alert to every enabled
    output, past minimumpriority and routes, so each destination is checked."""
    out = tmp_path / "test.jsonl"
    h = hub(outputs=[
        {"name": "strict", "type": "webhook", "address": sink.url,
         "minimumpriority": "critical", "rules": ["Something else"]},
        {"name": "jsonl", "type": "file", "path": str(out)},
        {"name": "off", "type": "file", "path": str(tmp_path / "off.jsonl"), "enabled": False},
    ])
    status, body = h.post(b"", path="/test")
    assert status == 200, body
    uuid = json.loads(body)["uuid"]
    got = sink.wait_for(lambda xs: len(xs) >= 1)
    assert got[0]["uuid"] == uuid and got[0]["rule"] == "Test rule"
    assert got[0]["priority"] == "Debug" and "test" in got[0]["tags"]
    wait_for(lambda: out.exists() and uuid in out.read_text(), 10, what="file output")
    assert not (tmp_path / "off.jsonl").exists()
    # a normal Debug alert is still filtered by the strict output
    assert h.post(falco_alert(priority="Debug"))[0] == 200
    time.sleep(1.0)
    assert len(sink.uuids()) == 1
    assert h.get("/test")[0] == 405


def test_slow_output_does_not_delay_another(hub, sink, tmp_path):
    sink.delay = 1.0      # a very slow webhook
    out = tmp_path / "fast.jsonl"
    h = hub(outputs=[
        {"name": "slow", "type": "webhook", "address": sink.url},
        {"name": "fast", "type": "file", "path": str(out)},
    ])
    t0 = time.time()
    for i in range(5):
        assert h.post(falco_alert(container="%012x" % i))[0] == 200
    wait_for(lambda: out.exists() and len(out.read_text().splitlines()) == 5, 10,
             what="fast output")
    fast = time.time() - t0
    assert fast < 2.0, "fast output waited for the slow one (%.2fs)" % fast
    assert len(sink.alerts) < 5


def test_sigterm_stops_cleanly(hub):
    h = hub()
    t0 = time.time()
    assert h.stop() == 0
    assert time.time() - t0 < 5
    assert "stopped" in h.logtext()


def test_nats_restart_is_survived(hub, sink, nats):
    h = hub()
    a = falco_alert()
    assert h.post(a)[0] == 200
    sink.wait_for(lambda xs: len(xs) == 1)
    nats.stop()
    # While NATS is away HTTP ingest fails fast with 503 and health says so;
    # the listener never stalls.
    t0 = time.time()
    status, body = h.post(falco_alert(container="cccccccccccc"))
    assert status == 503 and "not connected" in json.loads(body)["error"], (status, body)
    assert time.time() - t0 < 1.0
    assert h.get("/healthz")[0] == 503
    nats.start()
    wait_for(lambda: h.healthy(), 15, what="hub reconnect")
    b = falco_alert(container="bbbbbbbbbbbb")
    wait_for(lambda: h.post(b)[0] == 200, 15, what="ingest after NATS restart")
    sink.wait_for(lambda xs: b["uuid"] in [x["uuid"] for x in xs], 20)


def test_startup_errors_are_clear(build, tmp_path, nats):
    hub_bin = str(build / "bin" / "klaxon-hub")
    # NATS unreachable.
    dead = free_port()
    cfg = tmp_path / "h.yaml"
    cfg.write_text("nats:\n  url: nats://127.0.0.1:%d\nhttp:\n  port: %d\n" % (dead, free_port()))
    r = subprocess.run([hub_bin, "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "cannot reach NATS at nats://127.0.0.1:%d" % dead in r.stderr
    # Port in use.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    busy = s.getsockname()[1]
    cfg.write_text("nats:\n  url: %s\nhttp:\n  listen: 127.0.0.1\n  port: %d\n" % (nats.url, busy))
    r = subprocess.run([hub_bin, "-c", str(cfg)], capture_output=True, text=True, timeout=20)
    s.close()
    assert r.returncode == 1
    assert "Address already in use" in r.stderr, r.stderr


def test_check_config(build, tmp_path):
    hub_bin = str(build / "bin" / "klaxon-hub")
    repo = build.parent if (build.parent / "config" / "hub.yaml").exists() else None
    good = (repo / "config" / "hub.yaml") if repo else None
    if good:
        r = subprocess.run([hub_bin, "-c", str(good), "--check-config"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "nats:\n  url: nats://x:1\n  replcas: 3\n"
        "dedupe:\n  window: soon\n"
        "outputs:\n"
        "  - name: a\n    type: webhook\n"
        "  - name: b\n    type: carrier-pigeon\n")
    r = subprocess.run([hub_bin, "-c", str(bad), "--check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 1
    err = r.stderr
    assert "bad.yaml:3:" in err and "replcas" in err
    assert "bad.yaml:5:" in err and "soon" in err
    assert "address" in err                      # webhook without its address
    assert "bad.yaml:10:" in err and "carrier-pigeon" in err
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("nats:\n  url: [unclosed\n")
    r = subprocess.run([hub_bin, "-c", str(syntax), "--check-config"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "syntax.yaml:" in r.stderr
    r = subprocess.run([hub_bin, "-c", str(tmp_path / "missing.yaml")], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "missing.yaml" in r.stderr
    assert subprocess.run([hub_bin, "--version"], capture_output=True).returncode == 0
    assert "webhook" in subprocess.run([hub_bin, "--help"], capture_output=True,
                                       text=True).stdout


def test_env_overrides_config(build, nats, sink, tmp_path):
    """Falcosidekick-style env vars override hub.yaml (WEBHOOK_ADDRESS...)."""
    from conftest import Hub
    port = free_port()
    cfg = {"nats": {"url": "nats://127.0.0.1:1"}, "http": {"listen": "127.0.0.1", "port": port},
           "outputs": [{"name": "webhook", "type": "webhook", "address": "http://127.0.0.1:1/"}]}
    env = dict(os.environ, NATS_URL=nats.url, WEBHOOK_ADDRESS=sink.url)
    old = os.environ.copy()
    os.environ.update(env)
    try:
        h = Hub(build, cfg, tmp_path, "envhub")
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        a = falco_alert()
        assert h.post(a)[0] == 200
        sink.wait_for(lambda xs: len(xs) == 1)
    finally:
        h.kill()


def test_aggregate_survives_owner_crash(hub, sink):
    """The replica that opened a window dies before closing it: the restarted
    hub's sweep still emits the aggregate with every repeat counted."""
    h = hub(dedupe={"enabled": True, "window": "2s"})
    first = falco_alert()
    assert h.post(first)[0] == 200
    sink.wait_for(lambda xs: len(xs) == 1)
    for _ in range(3):
        assert h.post(falco_alert())[0] == 200
    wait_for(lambda: h.metric("klaxon_alerts_deduped_total") == 3, 5, what="repeats counted")
    h.kill()
    time.sleep(2.5)          # the window ends while no hub is alive
    h.start()
    got = sink.wait_for(lambda xs: any("klaxon_aggregate" in x.get("tags", []) for x in xs), 10)
    agg = [x for x in got if "klaxon_aggregate" in x.get("tags", [])]
    assert len(agg) == 1
    assert agg[0]["output_fields"]["klaxon.repeats"] == 3
    assert agg[0]["output_fields"]["klaxon.first_uuid"] == first["uuid"]


def test_two_replicas_count_every_repeat_under_contention(hub, sink, nats):
    """Small batches make both replicas write the same keys' windows at the
    same time: compare-and-set must still count every repeat exactly once."""
    dd = {"enabled": True, "window": "3s"}
    h1 = hub(dedupe=dd, name="busy1", hub={"fetch_batch": 4})
    h2 = hub(dedupe=dd, name="busy2", hub={"fetch_batch": 4})
    nc = nats.client()
    keys = ["%012x" % (0xc0ffee000000 + k) for k in range(3)]
    for i in range(300):
        publish_raw(nc, falco_alert(container=keys[i % 3]))
    got = sink.wait_for(
        lambda xs: len([x for x in xs if "klaxon_aggregate" in x.get("tags", [])]) >= 3, 30)
    time.sleep(0.5)
    for k in keys:
        mine = [x for x in sink.alerts if x["output_fields"]["container.id"] == k]
        agg = [x for x in mine if "klaxon_aggregate" in x.get("tags", [])]
        plain = [x for x in mine if "klaxon_aggregate" not in x.get("tags", [])]
        # One window per key unless it expired mid-run; every alert is
        # either delivered or counted in exactly one aggregate.
        assert len(plain) + sum(a["output_fields"]["klaxon.repeats"] for a in agg) == 100, k
        assert len(plain) == len(agg)
    n1 = h1.metric("klaxon_alerts_received_total", source="nats")
    n2 = h2.metric("klaxon_alerts_received_total", source="nats")
    assert n1 > 0 and n2 > 0 and n1 + n2 == 300, (n1, n2)


def test_dead_letter_store_down_loses_nothing(hub, sink, nats):
    """A permanent failure whose dead-letter publish also fails (the stream is
    gone) is kept and retried, and lands once the stream is back."""
    sink.status = 400
    h = hub()
    nc = nats.client()
    _, resp = nc.request("$JS.API.STREAM.DELETE.KLAXON_DEADLETTER")
    assert json.loads(resp).get("success") is True
    a = falco_alert()
    assert h.post(a)[0] == 200
    wait_for(lambda: (h.metric("klaxon_output_failed_total", output="hook") or 0) >= 2, 20,
             what="failed attempts while the dead-letter stream is missing")
    assert h.metric("klaxon_output_deadlettered_total", output="hook") == 0
    # A restarted hub re-creates its streams; the kept alert is dead-lettered.
    assert h.stop() == 0
    h.start()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.hook"), 20,
                    what="dead letter after the stream is back")
    assert json.loads(msgs[0][2])["uuid"] == a["uuid"]
    assert len(msgs) == 1


def test_outputs_reference_is_current(build):
    # docs/outputs.md is generated from the option tables; a new setting
    # without a regenerated reference fails here.
    out = subprocess.run([str(build / "bin" / "klaxon-hub"), "--outputs-doc"],
                         capture_output=True, text=True, check=True).stdout
    doc = (Path(__file__).resolve().parents[2] / "docs" / "outputs.md").read_text()
    assert out == doc, "run: build/bin/klaxon-hub --outputs-doc > docs/outputs.md"
    # every Falcosidekick env name the README's outputs table promises exists
    import re
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| type | sends |", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", table)
    assert len(names) > 30
    for env in names:
        assert "`%s`" % env in doc, "README names %s, which no output reads" % env
