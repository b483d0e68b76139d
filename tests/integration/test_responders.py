# SPDX-License-Identifier: Apache-2.0
"""The responder engine on a real nats-server: matching in order, continue,
dry-run, excluded namespaces and labels, cooldown and max_actions shared in
NATS KV, retries, two replicas acting once, and every decision audited on
klaxon.audit.<responder>.

Most tests answer the node-action protocol (sensor/actions.h) with a small
replier of their own, which records each request; the last one uses the
real klaxon-sensor and kills a real process in a simulated container."""
import json
import threading
import time

import pytest

from conftest import falco_alert, wait_for

NODE_SUBJECT = "klaxon.node.node_a.action"  # kx_slug("node-a")


class NodeReplier:
    """Answers klaxon.node.node_a.action like a sensor: ok, or a fixed error."""

    def __init__(self, nats, answer=None):
        self.client = nats.client()
        self.sid = self.client.subscribe(NODE_SUBJECT)
        self.requests = []
        self.answer = answer or (lambda req: {"ok": True, "action": req.get("action"),
                                              "detail": "killed pid %s" % req.get("pid")})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                _, hdrs, data = self.client.next_msg(self.sid, timeout=0.2)
            except TimeoutError:
                continue
            req = json.loads(data)
            self.requests.append(req)
            rep = self.answer(req)
            if rep is not None and hdrs.get("_reply"):
                self.client.publish(hdrs["_reply"], json.dumps(rep))

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.client.close()


@pytest.fixture
def replier(nats):
    made = []

    def make(answer=None):
        r = NodeReplier(nats, answer)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def kill_responder(name="kill-shells", **kw):
    r = {"name": name, "match": {"rules": ["Terminal shell*"], "priority": "warning"},
         "actions": [{"type": "node", "params": {"action": "kill_process"}, "timeout": "2s"}]}
    r.update(kw)
    return r


def shell_alert(i, **fields):
    a = falco_alert(container="%012x" % (0xc0de00 + i))
    a["output_fields"].update({"proc.start_ns": 1000000000 + i, "container.full_id":
                               "%064x" % (0xc0de00 + i)})
    a["output_fields"].update(fields)
    return a


def audits(nats, name):
    nc = nats.client()
    try:
        return [json.loads(d) for _, _, d in
                nc.stream_msgs("KLAXON_AUDIT", "klaxon.audit.%s" % name.replace("-", "_"))]
    finally:
        nc.close()


def wait_audits(nats, name, n, timeout=15):
    return wait_for(lambda: (lambda x: x if len(x) >= n else None)(audits(nats, name)), timeout,
                    what="%d audit records of %s" % (n, name))


def result(rec):
    return rec["output_fields"]["klaxon.result"]


def test_kill_request_is_exact_and_audited(hub, nats, replier):
    rep = replier()
    h = hub(responders=[kill_responder()])
    a = shell_alert(1)
    assert h.post(a)[0] == 200
    recs = wait_audits(nats, "kill-shells", 1)
    req = rep.requests[0]
    assert req["action"] == "kill_process" and req["pid"] == a["output_fields"]["proc.pid"]
    assert req["start_time"] == str(a["output_fields"]["proc.start_ns"])  # exact, as a string
    assert req["request_id"] == a["uuid"] and "kill-shells" in req["reason"]
    r = recs[0]
    assert result(r) == "acted" and r["rule"] == "Klaxon responder kill-shells"
    assert r["source"] == "klaxon_audit" and "klaxon_audit" in r["tags"]
    assert r["output_fields"]["klaxon.alert_uuid"] == a["uuid"]
    assert r["actions"][0]["result"] == "done" and r["actions"][0]["reply"]["ok"] is True


def test_dry_run_decides_audits_and_changes_nothing(hub, nats, replier):
    rep = replier()
    h = hub(responders=[kill_responder(dry_run=True)])
    assert h.post(shell_alert(2))[0] == 200
    r = wait_audits(nats, "kill-shells", 1)[0]
    assert result(r) == "dry_run" and r["dry_run"] is True
    assert r["actions"][0]["request"]["action"] == "kill_process"
    time.sleep(0.5)
    assert rep.requests == []


def test_excluded_namespace_and_label_are_skipped(hub, nats, replier):
    rep = replier()
    h = hub(responders=[kill_responder(exclude_labels={"app": "db"})])
    assert h.post(shell_alert(3, **{"k8s.ns.name": "kube-system"}))[0] == 200
    assert h.post(shell_alert(4, **{"k8s.ns.name": "shop", "k8s.pod.name": "db-0",
                                    "k8s.pod.label.app": "db"}))[0] == 200
    recs = wait_audits(nats, "kill-shells", 2)
    reasons = sorted(r["output_fields"]["klaxon.reason"] for r in recs)
    assert [result(r) for r in recs] == ["skipped", "skipped"]
    assert reasons == ["namespace kube-system is excluded", "pod label app=db is excluded"]
    assert rep.requests == []


def test_order_and_continue(hub, nats, replier):
    replier()
    first = kill_responder("first", dry_run=True)
    second = kill_responder("second", dry_run=True)
    h = hub(responders=[first, second])
    assert h.post(shell_alert(5))[0] == 200
    wait_audits(nats, "first", 1)
    time.sleep(1.0)
    assert audits(nats, "second") == []  # first matched and did not say continue
    h.stop()
    first["continue"] = True
    h2 = hub(responders=[first, second], name="hub2")
    assert h2.post(shell_alert(6))[0] == 200
    wait_audits(nats, "second", 1)


def test_cooldown_and_max_actions_are_shared(hub, nats, replier):
    rep = replier()
    resp = kill_responder(cooldown="1h", max_actions=2, window="1h")
    h1 = hub(responders=[resp], name="r1")
    h2 = hub(responders=[resp], name="r2")
    pod = {"k8s.ns.name": "shop", "k8s.pod.name": "web-1"}
    assert h1.post(shell_alert(7, **pod))[0] == 200
    wait_audits(nats, "kill-shells", 1)
    assert h2.post(shell_alert(8, **pod))[0] == 200       # same pod: cooldown, on either replica
    assert h1.post(shell_alert(9, **{"k8s.ns.name": "shop", "k8s.pod.name": "web-2"}))[0] == 200
    wait_audits(nats, "kill-shells", 3)
    assert h2.post(shell_alert(10, **{"k8s.ns.name": "shop", "k8s.pod.name": "web-3"}))[0] == 200
    recs = wait_audits(nats, "kill-shells", 4)
    by_target = {r["output_fields"]["klaxon.target"]: r for r in recs}
    assert result(by_target["pod shop/web-2"]) == "acted"
    assert [result(r) for r in recs].count("acted") == 2
    reasons = " | ".join(r["output_fields"]["klaxon.reason"] for r in recs)
    assert "pod shop/web-1 is in cooldown until" in reasons
    assert "rate limited: 2 actions in this 3600s window" in reasons
    assert len(rep.requests) == 2


def test_global_cap_over_all_responders(hub, nats, replier):
    rep = replier()
    a1 = kill_responder("one", **{"continue": True})
    a2 = kill_responder("two")
    h = hub(responders=[a1, a2], respond={"max_actions": 3, "window": "1h"})
    assert h.post(shell_alert(40))[0] == 200
    assert h.post(shell_alert(41))[0] == 200
    wait_audits(nats, "one", 2)
    recs = wait_audits(nats, "two", 2)
    assert len(rep.requests) == 3
    assert "respond.max_actions 3" in recs[1]["output_fields"]["klaxon.reason"], recs


def test_no_sensor_is_retried_then_a_final_failure(hub, nats):
    h = hub(responders=[kill_responder(max_deliver=2,
                                       actions=[{"type": "node", "timeout": "500ms",
                                                 "params": {"action": "kill_process"}}])])
    assert h.post(shell_alert(11))[0] == 200
    recs = wait_audits(nats, "kill-shells", 2, timeout=20)
    assert [result(r) for r in recs] == ["failed", "failed"]
    assert "will retry" in recs[0]["output_fields"]["klaxon.reason"]
    assert "no answer from the sensor of node-a" in recs[1]["output_fields"]["klaxon.reason"]
    assert "will retry" not in recs[1]["output_fields"]["klaxon.reason"]


def test_sensor_refusal_is_permanent_and_gone_is_done(hub, nats, replier):
    answers = iter([{"ok": False, "error": "protected", "message": "pid 1 is the host's init"},
                    {"ok": False, "error": "stale", "message": "pid reused"}])
    replier(lambda req: next(answers))
    h = hub(responders=[kill_responder()])
    assert h.post(shell_alert(12))[0] == 200
    wait_audits(nats, "kill-shells", 1)
    assert h.post(shell_alert(13))[0] == 200
    recs = wait_audits(nats, "kill-shells", 2)
    assert result(recs[0]) == "failed"
    assert "sensor refused: protected" in recs[0]["output_fields"]["klaxon.reason"]
    # already gone: nothing changed, so the decision reads "skipped", with why
    assert result(recs[1]) == "skipped" and recs[1]["actions"][0]["result"] == "gone"
    assert recs[1]["output_fields"]["klaxon.reason"] == "action 1 (node): gone"


def test_two_replicas_act_once_per_alert(hub, nats, replier):
    rep = replier()
    resp = kill_responder()
    h1 = hub(responders=[resp], name="r1")
    h2 = hub(responders=[resp], name="r2")
    sent = [shell_alert(100 + i) for i in range(20)]
    for i, a in enumerate(sent):
        assert (h1 if i % 2 else h2).post(a)[0] == 200
    wait_audits(nats, "kill-shells", 20)
    time.sleep(1.0)
    assert sorted(r["request_id"] for r in rep.requests) == sorted(a["uuid"] for a in sent)
    replicas = {r["output_fields"]["klaxon.replica"] for r in audits(nats, "kill-shells")}
    assert replicas <= {"r1", "r2"}


def test_bad_responder_config_is_reported(build, tmp_path, nats):
    import subprocess
    from conftest import yaml_dump
    cfg = {"nats": {"url": nats.url},
           "responders": [{"name": "x", "match": {"priority": "loud"},
                           "actions": [{"type": "node", "params": {"action": "reboot"}},
                                       {"type": "teleport"}]},
                          {"name": "y", "actions": []}]}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml_dump(cfg) + "\n")
    r = subprocess.run([str(build / "bin" / "klaxon-hub"), "-c", str(p), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    err = r.stderr
    assert "loud" in err and 'unknown action type "teleport"' in err, err
    assert "params.action must be kill_process" in err, err
    assert "responder y: actions must be a non-empty list" in err, err


def test_exec_and_plugin_actions_run_in_order(hub, nats, build, tmp_path):
    # an exec action gets the alert on stdin and params as env; a .so plugin
    # (the sample) runs after it; both land in one audit record
    script = tmp_path / "hook.sh"
    out = tmp_path / "hook.out"
    script.write_text('#!/bin/sh\ncat > "%s"\necho "ns=$KLAXON_PARAM_NAMESPACE rule=$KLAXON_RULE"\n'
                      % out)
    script.chmod(0o755)
    labels = tmp_path / "labels.log"
    h = hub(responders=[{"name": "hooks", "match": {"rules": ["Terminal shell*"]},
                         "actions": [
                             {"type": "exec", "path": str(script), "params": {"namespace": "shop"}},
                             {"type": "plugin",
                              "path": str(build / "lib" / "klaxon-responder-sample.so"),
                              "settings": {"file": str(labels), "label": "quarantine"}}]}])
    a = shell_alert(20)
    assert h.post(a)[0] == 200
    rec = wait_audits(nats, "hooks", 1)[0]
    assert result(rec) == "acted", rec
    ex, pl = rec["actions"]
    assert ex["type"] == "exec" and ex["exit_code"] == 0, ex
    assert ex["stdout"].strip() == "ns=shop rule=Terminal shell in container", ex
    assert json.loads(out.read_text())["uuid"] == a["uuid"]
    assert pl["type"] == "plugin", pl
    assert labels.read_text().split()[:2] == ["quarantine", a["uuid"]]


def test_audit_records_reach_outputs(hub, nats, replier, tmp_path):
    # on-call sees what the responders did: audit records travel to outputs
    # like alerts; `sources: [klaxon_audit]` routes only them
    replier()
    out = tmp_path / "audit.jsonl"
    h = hub(responders=[kill_responder()],
            outputs=[{"name": "oncall", "type": "file", "path": str(out),
                      "sources": ["klaxon_audit"]}])
    a = shell_alert(30)
    assert h.post(a)[0] == 200
    got = wait_for(lambda: out.exists() and out.read_text().splitlines(), 15,
                   what="the audit record in the output")
    recs = [json.loads(x) for x in got]
    assert len(recs) == 1 and recs[0]["source"] == "klaxon_audit", recs
    assert recs[0]["output_fields"]["klaxon.alert_uuid"] == a["uuid"]
    assert "kill-shells acted" in recs[0]["output"]
    time.sleep(1.0)  # the engine never acts on its own audit records
    assert len(audits(nats, "kill-shells")) == 1


# ---------------------------------------------------------------- real sensor
import subprocess  # noqa: E402

from test_node_actions import containers  # noqa: E402,F401  (fixture)
from test_sensor import NODE, Sensor, require_root  # noqa: E402


def test_shell_in_container_is_killed_by_the_real_sensor(hub, nats, tmp_path, containers):
    # sensor alert -> hub -> responder -> klaxon.node.<node>.action -> the
    # same sensor kills the shell through a pidfd; the audit says so.
    require_root()
    sensor = Sensor(tmp_path, nats.url, "resp-sensor", ensure_stream="true")
    try:
        sensor.wait_attached()
        hub(responders=[{"name": "kill-shells",
                         "match": {"rules": ["Terminal shell in container"]},
                         "actions": [{"type": "node",
                                      "params": {"action": "kill_process"}}]}])
        cid, cg = containers()
        # moves itself into the container's cgroup, then execs the shell
        t0 = time.time()
        p = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"',
                              str(cg / "cgroup.procs"), "/bin/sh", "-c", "sleep 60; true"])
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("the shell was not killed within 20 s")
        took = time.time() - t0
        assert p.returncode == -9, p.returncode
        rec = wait_audits(nats, "kill-shells", 1)[0]
        assert result(rec) == "acted", rec
        act = rec["actions"][0]
        assert act["reply"]["ok"] is True and act["request"]["pid"] == p.pid, act
        assert rec["hostname"] == NODE and rec["output_fields"]["klaxon.target"].startswith(
            "container %s" % cid[:12]), rec
        print("shell killed %.0f ms after it started" % (took * 1000))
    finally:
        sensor.kill()
