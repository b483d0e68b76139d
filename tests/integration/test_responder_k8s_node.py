# SPDX-License-Identifier: Apache-2.0
"""The k8s_node responder (responders/k8s_node.c) in a real hub on a real
nats-server, against the strict Kubernetes API double: cordon / uncordon
(merge patches, null to uncordon), taint (once, resourceVersion-guarded,
re-read on 409), drain as kubectl does it (mirror and DaemonSet pods left,
PodDisruptionBudget refusals retried, the wait until the pods are gone, a
timeout retried by the engine), RBAC and not-found failures, dry-run and the
Events on the Node. Every decision is read back from KLAXON_AUDIT."""
import sys
import time
from pathlib import Path

import pytest

from conftest import falco_alert, wait_for
from test_responders import audits, result, wait_audits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_fake import K8sFake  # noqa: E402

NODE = "node-a"
NODE_PATH = "/api/v1/nodes/" + NODE
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def k8s(tmp_path):
    with K8sFake(tmp_path / "k8s") as f:
        f.add_node(NODE)
        f.add_node("node-b")
        yield f


def responder(k8s, name, rule, params, **kw):
    action = {"type": "k8s_node", "mode": "kubeconfig", "kubeconfig": str(k8s.kubeconfig),
              "timeout": "3s", "params": params}
    action.update(kw.pop("settings", {}))
    r = {"name": name, "match": {"rules": [rule]}, "actions": [action]}
    r.update(kw)
    return r


_n = [0]


def alert(rule, host=NODE, **fields):
    _n[0] += 1  # a container of its own, so the hub's dedupe lets it through
    a = falco_alert(rule=rule, host=host, container="%012x" % (0xfeed00 + _n[0]))
    a["output_fields"].update(fields)
    return a


def node_spec(k8s, name=NODE):
    return k8s.get("nodes", name)["spec"]


def events(k8s, reason):
    return [e for e in k8s.events("default") if e.get("reason") == reason]


def act(rec):
    return rec["actions"][0]


def test_cordon_uncordon_merge_patches_and_events(hub, nats, k8s):
    h = hub(responders=[responder(k8s, "cordon", "Terminal shell*", {"action": "cordon"}),
                        responder(k8s, "uncordon", "All clear*", {"action": "uncordon"})])
    uid = k8s.get("nodes", NODE)["metadata"]["uid"]
    # k8s.node.name wins over the hostname (which is not a node here)
    assert h.post(alert("Terminal shell in container", host="Not_A_Node",
                        **{"k8s.node.name": NODE}))[0] == 200
    rec = wait_audits(nats, "cordon", 1)[0]
    assert result(rec) == "acted", rec
    assert act(rec)["node"] == NODE and act(rec)["changed"] is True
    assert act(rec)["event"]["result"] == "created", rec
    assert node_spec(k8s)["unschedulable"] is True
    (patch,) = k8s.requests(method="PATCH")
    assert patch["path"] == NODE_PATH and patch["content_type"].startswith(MERGE)
    assert patch["json"] == {"spec": {"unschedulable": True}}
    (ev,) = events(k8s, "KlaxonCordoned")
    assert ev["type"] == "Warning" and ev["source"]["component"] == "klaxon"
    assert ev["involvedObject"] == {"kind": "Node", "name": NODE, "uid": uid, "apiVersion": "v1"}
    assert ev["message"] == "Klaxon responder cordon: cordon (rule Terminal shell in container)"
    assert node_spec(k8s, "node-b").get("unschedulable") is None

    k8s.clear_requests()
    assert h.post(alert("All clear on node"))[0] == 200
    rec = wait_audits(nats, "uncordon", 1)[0]
    assert result(rec) == "acted", rec
    (patch,) = k8s.requests(method="PATCH")
    assert patch["content_type"].startswith(MERGE)
    assert patch["json"] == {"spec": {"unschedulable": None}}  # null, as kubectl sends it
    assert "unschedulable" not in node_spec(k8s)
    assert len(events(k8s, "KlaxonUncordoned")) == 1


def test_taint_once_guarded_by_resource_version(hub, nats, k8s):
    k8s.add_node(NODE, taints=[{"key": "team", "value": "a", "effect": "NoSchedule"}])
    # the first write meets a concurrent change: 409, read again, merge again
    k8s.fault(NODE_PATH, 409, method="PATCH", reason="Conflict",
              message="the object has been modified; please apply your changes to the latest "
                      "version and try again")
    h = hub(responders=[responder(k8s, "taint", "Terminal shell*",
                                  {"action": "taint", "value": "shell", "effect": "NoExecute"})])
    assert h.post(alert("Terminal shell in container"))[0] == 200
    rec = wait_audits(nats, "taint", 1)[0]
    assert result(rec) == "acted", rec
    assert act(rec)["attempts"] == 2 and act(rec)["changed"] is True
    patches = k8s.requests(method="PATCH")
    assert len(patches) == 2 and patches[0].get("fault")
    assert all(p["content_type"].startswith(SMP) for p in patches)
    assert patches[1]["json"]["metadata"]["resourceVersion"]
    assert len(k8s.requests(method="GET", path=NODE_PATH)) == 2  # re-read after the 409
    taints = node_spec(k8s)["taints"]
    assert taints[0] == {"key": "team", "value": "a", "effect": "NoSchedule"}
    assert [(t["key"], t.get("value"), t["effect"]) for t in taints[1:]] == [
        ("klaxon.io/compromised", "shell", "NoExecute")]
    assert taints[1]["timeAdded"]

    # again: already there, nothing written, no second Event
    assert h.post(alert("Terminal shell in container"))[0] == 200
    rec = wait_audits(nats, "taint", 2)[1]
    assert result(rec) == "acted" and act(rec)["changed"] is False, rec
    assert len(k8s.requests(method="PATCH")) == 2
    assert len(node_spec(k8s)["taints"]) == 2
    assert len(events(k8s, "KlaxonTainted")) == 1


def drain_fixture(k8s):
    """node-a: two web pods (evicted), a db pod under a PDB (refused), a
    mirror pod, a DaemonSet pod, a finished pod; node-b: one pod."""
    _, _, web = k8s.add_deployment_pods("shop", "web", 2)
    _, _, db = k8s.add_deployment_pods("shop", "db", 1)
    k8s.add_pdb("shop", "db", {"app": "db"}, min_available=1)
    k8s.add_pod("kube-system", "etcd-" + NODE, annotations={"kubernetes.io/config.mirror": "x"})
    ds = k8s.add_daemonset("kube-system", "fluentd")
    k8s.add_pod("kube-system", "fluentd-x1", owner=ds)
    k8s.add_pod("batch", "job-done", phase="Succeeded")
    k8s.add_pod("shop", "elsewhere", node="node-b")
    return [p["metadata"]["name"] for p in web], db[0]["metadata"]["name"]


def evictions(k8s):
    return [r["path"].split("/")[-2] for r in k8s.requests(method="POST")
            if r["path"].endswith("/eviction")]


def test_drain_like_kubectl(hub, nats, k8s):
    web, db = drain_fixture(k8s)
    k8s.kubelet(1.0)  # evicted pods linger a second: the drain waits for them
    h = hub(responders=[responder(k8s, "drain", "Terminal shell*",
                                  {"action": "drain", "timeout": "20s",
                                   "eviction_retry_interval": "1s"})])
    assert h.post(alert("Terminal shell in container"))[0] == 200
    # the PDB refuses the db pod; once it is relaxed the next retry gets through
    wait_for(lambda: any(r["status"] == 429 for r in k8s.requests(method="POST")), 10,
             what="the PDB to refuse an eviction")
    k8s.add_pdb("shop", "db", {"app": "db"}, min_available=0)
    rec = wait_audits(nats, "drain", 1, timeout=25)[0]
    assert result(rec) == "acted", rec
    a = act(rec)
    fates = {p["name"]: p for p in a["pods"]}
    assert {n: fates[n]["fate"] for n in fates} == {
        web[0]: "evicted", web[1]: "evicted", db: "evicted",
        "etcd-" + NODE: "skipped_mirror", "fluentd-x1": "skipped_daemonset",
        "job-done": "skipped_finished"}, a["pods"]
    assert all(fates[n].get("gone") for n in web + [db])
    assert fates[db]["evictions"] >= 2 and fates[web[0]]["evictions"] == 1
    assert a["evicted"] == 3 and a["skipped"] == 3 and a["remaining"] == []
    assert a["cordon"] == "done" and node_spec(k8s)["unschedulable"] is True
    ev = evictions(k8s)
    assert sorted(set(ev)) == sorted(web + [db]) and ev.count(db) >= 2
    evs = [r for r in k8s.requests(method="POST") if r["path"].endswith("/eviction")]
    assert evs[0]["json"]["apiVersion"] == "policy/v1" and evs[0]["json"]["kind"] == "Eviction"
    listed = [r for r in k8s.requests(method="GET", path="/api/v1/pods")]
    assert listed and "spec.nodeName%3D" + NODE in listed[0]["query"]
    left = sorted(p["metadata"]["name"] for p in k8s.pods()
                  if p["spec"].get("nodeName") == NODE)
    assert left == sorted(["etcd-" + NODE, "fluentd-x1", "job-done"])
    assert k8s.get("pods", "shop", "elsewhere") is not None
    assert len(events(k8s, "KlaxonDrained")) == 1


def test_drain_timeout_is_retried_then_failed(hub, nats, k8s):
    k8s.add_pod("shop", "stuck")
    k8s.add_pod("shop", "guarded", labels={"app": "db"})
    k8s.add_pdb("shop", "db", {"app": "db"}, min_available=1)
    k8s.kubelet(None)  # terminating pods stay until finish_terminating()
    h = hub(responders=[responder(k8s, "drain", "Terminal shell*",
                                  {"action": "drain", "timeout": "2s"}, max_deliver=2)])
    assert h.post(alert("Terminal shell in container"))[0] == 200
    recs = wait_audits(nats, "drain", 2, timeout=20)
    assert [result(r) for r in recs] == ["failed", "failed"], recs
    first, last = recs[0]["output_fields"]["klaxon.reason"], recs[1]["output_fields"][
        "klaxon.reason"]
    assert "will retry" in first and "will retry" not in last
    assert "drain of node node-a not complete after 2s: 2 pod(s) still there: " in last, last
    assert "shop/stuck (terminating)" in last and "shop/guarded (refused_pdb: " in last, last
    assert act(recs[0])["result"] == "retry"
    assert act(recs[0])["remaining"] == ["shop/guarded", "shop/stuck"]
    fates = [{p["name"]: p for p in act(r)["pods"]} for r in recs]
    assert fates[0]["stuck"]["fate"] == "evicted"
    assert fates[1]["stuck"]["fate"] == "terminating"  # not evicted twice
    g = fates[1]["guarded"]
    assert g["fate"] == "refused_pdb" and "needs 1 healthy pods" in g["message"], g
    assert evictions(k8s).count("stuck") == 1
    assert events(k8s, "KlaxonDrained") == []
    k8s.finish_terminating()


def test_rbac_and_missing_node_are_permanent(hub, nats, k8s):
    k8s.deny({"verb": "patch", "resource": "nodes"})
    h = hub(responders=[responder(k8s, "cordon", "Terminal shell*", {"action": "cordon"})])
    assert h.post(alert("Terminal shell in container"))[0] == 200
    assert h.post(alert("Terminal shell in container", host="ghost"))[0] == 200
    recs = wait_audits(nats, "cordon", 2)
    time.sleep(1.5)  # no retries follow
    recs = audits(nats, "cordon")
    assert len(recs) == 2 and [result(r) for r in recs] == ["failed", "failed"], recs
    why = {r["hostname"]: r["output_fields"]["klaxon.reason"] for r in recs}
    assert 'cannot patch resource "nodes"' in why[NODE] and "RBAC" in why[NODE], why
    assert "node ghost not found" in why["ghost"], why
    assert node_spec(k8s).get("unschedulable") is None
    assert events(k8s, "KlaxonCordoned") == []


def test_dry_run_sends_nothing_mutating(hub, nats, k8s):
    web, db = drain_fixture(k8s)
    k8s.clear_requests()
    h = hub(responders=[responder(k8s, "drain", "Terminal shell*", {"action": "drain"},
                                  dry_run=True)])
    assert h.post(alert("Terminal shell in container"))[0] == 200
    rec = wait_audits(nats, "drain", 1)[0]
    assert result(rec) == "dry_run", rec
    a = act(rec)
    reqs = [(q["method"], q["path"]) for q in a["requests"]]
    assert reqs[0] == ("PATCH", NODE_PATH)
    assert a["requests"][0]["body"] == {"spec": {"unschedulable": True}}
    assert a["requests"][0]["content_type"] == MERGE
    assert sorted(p.split("/")[-2] for m, p in reqs if p.endswith("/eviction")) == \
        sorted(web + [db])
    assert reqs[-1] == ("POST", "/api/v1/namespaces/default/events")
    assert {p["name"]: p["fate"] for p in a["pods"]}[web[0]] == "would_evict"
    assert {r["method"] for r in k8s.requests()} == {"GET"}
    assert "unschedulable" not in node_spec(k8s)
    assert k8s.events("default") == []


def test_bad_params_are_reported(build, tmp_path, nats, k8s):
    import subprocess
    from conftest import yaml_dump
    cfg = {"nats": {"url": nats.url},
           "responders": [
               responder(k8s, "a", "x", {"action": "taint", "effect": "NoWay", "colour": "red"}),
               responder(k8s, "b", "x", {"action": "cordon", "timeout": "5s"}),
               responder(k8s, "c", "x", {"action": "reboot"})]}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml_dump(cfg) + "\n")
    r = subprocess.run([str(build / "bin" / "klaxon-hub"), "-c", str(p), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    err = r.stderr
    assert 'responder a: k8s_node: unknown param "colour"' in err, err
    assert "responder b: k8s_node: param timeout does not apply to cordon" in err, err
    assert "responder c: k8s_node: params.action must be cordon, uncordon, taint or drain" in err
    cfg["responders"] = [responder(k8s, "a", "x", {"action": "taint", "effect": "NoWay"})]
    p.write_text(yaml_dump(cfg) + "\n")
    r = subprocess.run([str(build / "bin" / "klaxon-hub"), "-c", str(p), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "effect must be NoSchedule, PreferNoSchedule or NoExecute" \
        in r.stderr, r.stderr
