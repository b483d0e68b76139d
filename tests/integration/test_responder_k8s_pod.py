# SPDX-License-Identifier: Apache-2.0
"""The k8s_pod responder (responders/k8s_pod.c) on a real nats-server + hub
against the strict Kubernetes API double (tests/fakes/k8s_api.py): delete
with a uid precondition (a recreated pod is "replaced", never hit), evict
against a PodDisruptionBudget (retried, or fallback_delete), label/annotate
as merge patches, isolate (label + deny-all NetworkPolicy, idempotent),
terminate's guards with min_healthy_replicas at its boundaries, RBAC 403,
the API down, dry run, and one Event per change. Audits are read from
KLAXON_AUDIT."""
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import falco_alert, wait_for, yaml_dump
from test_responders import audits, result, wait_audits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_fake import K8sFake  # noqa: E402

NS = "shop"
MERGE = "application/merge-patch+json"
NODEDUPE = {"enabled": False}  # the tests send repeats on purpose


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with K8sFake(tmp_path_factory.mktemp("k8s")) as k:
        yield k


@pytest.fixture
def k8s(fake):
    fake.reset()
    yield fake


def responder(name, rule, k8s, params, **kw):
    act = {"type": "k8s_pod", "mode": "kubeconfig", "kubeconfig": str(k8s.kubeconfig),
           "timeout": "2s", "params": params}
    act.update(kw.pop("action_settings", {}))
    r = {"name": name, "match": {"rules": [rule]}, "actions": [act]}
    r.update(kw)
    return r


def alert(rule, pod, uid=None, ns=NS, **fields):
    a = falco_alert(rule=rule)
    f = {"k8s.ns.name": ns, "k8s.pod.name": pod}
    if uid:
        f["k8s.pod.uid"] = uid
    f.update(fields)
    a["output_fields"].update(f)
    return a


def reason(rec):
    return rec["output_fields"]["klaxon.reason"]


def uid_of(obj):
    return obj["metadata"]["uid"]


def mutating(k8s):
    return [r for r in k8s.requests() if r["method"] != "GET"]


def events_for(k8s, pod, reason_=None):
    return [e for e in k8s.events(NS) if e["involvedObject"]["name"] == pod
            and (reason_ is None or e["reason"] == reason_)]


def test_delete_uses_the_uid_precondition(hub, nats, k8s):
    web1 = k8s.add_pod(NS, "web-1")
    web2 = k8s.add_pod(NS, "web-2")
    h = hub(dedupe=NODEDUPE, responders=[responder("del", "kx-delete", k8s,
                                  {"action": "delete", "grace_period_seconds": 5,
                                   "propagation_policy": "Foreground"})])
    assert h.post(alert("kx-delete", "web-1", uid_of(web1)))[0] == 200
    rec = wait_audits(nats, "del", 1)[0]
    assert result(rec) == "acted" and rec["actions"][0]["result"] == "deleted", rec
    req = k8s.last_request("DELETE", "/api/v1/namespaces/shop/pods/web-1")
    assert req["json"] == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5,
                           "propagationPolicy": "Foreground",
                           "preconditions": {"uid": uid_of(web1)}}, req
    wait_for(lambda: k8s.get("pods", NS, "web-1") is None, 5, what="web-1 gone")
    ev = events_for(k8s, "web-1", "KlaxonDeleted")
    assert len(ev) == 1 and ev[0]["type"] == "Warning" and ev[0]["count"] == 1, ev
    assert ev[0]["involvedObject"]["uid"] == uid_of(web1)
    assert ev[0]["source"]["component"] == "klaxon"
    assert ev[0]["message"] == "Klaxon responder del: delete (rule kx-delete)"

    # a pod of the same name, recreated: the old alert's uid does not match
    new = k8s.add_pod(NS, "web-1")
    assert h.post(alert("kx-delete", "web-1", uid_of(web1)))[0] == 200
    rec = wait_audits(nats, "del", 2)[1]
    assert rec["actions"][0]["result"] == "replaced", rec
    assert uid_of(k8s.get("pods", NS, "web-1")) == uid_of(new)

    # no uid in the alert: read the pod first, then delete with its uid
    assert h.post(alert("kx-delete", "web-2"))[0] == 200
    rec = wait_audits(nats, "del", 3)[2]
    assert rec["actions"][0]["result"] == "deleted", rec
    req = k8s.last_request("DELETE", "/api/v1/namespaces/shop/pods/web-2")
    assert req["json"]["preconditions"] == {"uid": uid_of(web2)}

    # already gone -> done; no pod in the alert -> a permanent failure
    assert h.post(alert("kx-delete", "web-2", uid_of(web2)))[0] == 200
    a = falco_alert(rule="kx-delete")
    assert h.post(a)[0] == 200
    recs = wait_audits(nats, "del", 5)
    assert recs[3]["actions"][0]["result"] == "gone", recs[3]
    assert result(recs[4]) == "failed" and "no k8s.ns.name" in reason(recs[4]), recs[4]
    assert len(events_for(k8s, "web-1", "KlaxonDeleted")) == 1  # none for "replaced"


def test_evict_honours_the_disruption_budget(hub, nats, k8s):
    _, _, pods = k8s.add_deployment_pods(NS, "api", 2)
    k8s.add_pdb(NS, "api-pdb", {"app": "api"}, min_available=2)
    free = k8s.add_pod(NS, "free-1")
    h = hub(dedupe=NODEDUPE, responders=[
        responder("evict", "kx-evict", k8s, {"action": "evict"}, max_deliver=2),
        responder("evict-fb", "kx-evict-fb", k8s, {"action": "evict", "fallback_delete": True})])
    p0, p1 = pods
    assert h.post(alert("kx-evict", p0["metadata"]["name"], uid_of(p0)))[0] == 200
    recs = wait_audits(nats, "evict", 2, timeout=20)
    assert [result(r) for r in recs] == ["failed", "failed"], recs
    assert "will retry" in reason(recs[0]) and "will retry" not in reason(recs[1])
    assert "PodDisruptionBudget" in reason(recs[1]), reason(recs[1])
    assert "api-pdb needs 2 healthy pods" in reason(recs[1]), reason(recs[1])
    assert k8s.get("pods", NS, p0["metadata"]["name"]) is not None
    ev = k8s.last_request("POST", prefix="/api/v1/namespaces/shop/pods/")
    assert ev["path"].endswith("/eviction") and ev["status"] == 429
    assert ev["json"]["kind"] == "Eviction" and ev["json"]["apiVersion"] == "policy/v1"
    assert ev["json"]["deleteOptions"]["preconditions"] == {"uid": uid_of(p0)}

    # fallback_delete: the refusal is recorded, the pod deleted
    assert h.post(alert("kx-evict-fb", p1["metadata"]["name"], uid_of(p1)))[0] == 200
    rec = wait_audits(nats, "evict-fb", 1)[0]
    act = rec["actions"][0]
    assert result(rec) == "acted" and act["result"] == "deleted", rec
    assert "api-pdb needs 2 healthy pods" in act["eviction_refused"]
    wait_for(lambda: k8s.get("pods", NS, p1["metadata"]["name"]) is None, 5, what="p1 deleted")
    assert events_for(k8s, p1["metadata"]["name"], "KlaxonDeleted")

    # no budget: evicted
    assert h.post(alert("kx-evict-fb", "free-1", uid_of(free)))[0] == 200
    rec = wait_audits(nats, "evict-fb", 2)[1]
    assert rec["actions"][0]["result"] == "evicted", rec
    wait_for(lambda: k8s.get("pods", NS, "free-1") is None, 5, what="free-1 evicted")
    assert events_for(k8s, "free-1", "KlaxonEvicted")


def test_label_annotate_and_isolate(hub, nats, k8s):
    pod = k8s.add_pod(NS, "web-1", labels={"app": "web", "tier": "front"})
    long_name = "x" * 70 + ".db-0"
    other = k8s.add_pod(NS, long_name)
    h = hub(dedupe=NODEDUPE, responders=[
        responder("lab", "kx-label", k8s,
                  {"action": "label", "labels": {"klaxon.io/suspect": "true", "tier": ""}}),
        responder("ann", "kx-annotate", k8s,
                  {"action": "annotate", "annotations": {"klaxon.io/alert": "shell in web"}}),
        responder("iso", "kx-isolate", k8s, {"action": "isolate"})])
    assert h.post(alert("kx-label", "web-1", uid_of(pod)))[0] == 200
    assert h.post(alert("kx-annotate", "web-1", uid_of(pod)))[0] == 200
    assert wait_audits(nats, "lab", 1)[0]["actions"][0]["result"] == "labeled"
    assert wait_audits(nats, "ann", 1)[0]["actions"][0]["result"] == "annotated"
    got = k8s.get("pods", NS, "web-1")["metadata"]
    assert got["labels"] == {"app": "web", "klaxon.io/suspect": "true"}, got
    assert got["annotations"]["klaxon.io/alert"] == "shell in web"
    patches = k8s.requests("PATCH", "/api/v1/namespaces/shop/pods/web-1")
    assert len(patches) == 2 and all(r["content_type"] == MERGE for r in patches), patches
    assert patches[0]["json"] == {"metadata": {"uid": uid_of(pod), "labels": {
        "klaxon.io/suspect": "true", "tier": None}}}
    assert events_for(k8s, "web-1", "KlaxonLabeled") and \
        events_for(k8s, "web-1", "KlaxonAnnotated")
    # the patch carries the uid: a recreated pod refuses it (422, uid immutable)
    k8s.add_pod(NS, "web-2")
    assert h.post(alert("kx-label", "web-2", str(uuid.uuid4())))[0] == 200
    rec = wait_audits(nats, "lab", 2)[1]
    assert rec["actions"][0]["result"] == "replaced", rec
    assert "klaxon.io/suspect" not in k8s.get("pods", NS, "web-2")["metadata"].get("labels", {})

    # isolate twice: the label, one deny-all policy; the second is fine too
    for i in (1, 2):
        assert h.post(alert("kx-isolate", "web-1", uid_of(pod)))[0] == 200
        rec = wait_audits(nats, "iso", i)[i - 1]
        assert rec["actions"][0]["result"] == "isolated", rec
    assert k8s.get("pods", NS, "web-1")["metadata"]["labels"]["klaxon.io/quarantine"] == "true"
    nps = k8s.objects("networkpolicies", NS)
    assert [n["metadata"]["name"] for n in nps] == ["klaxon-quarantine-web-1"], nps
    spec = nps[0]["spec"]
    assert spec["podSelector"] == {"matchLabels": {"klaxon.io/quarantine": "true"}}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert not spec.get("ingress") and not spec.get("egress")
    assert len(events_for(k8s, "web-1", "KlaxonIsolated")) == 2

    # a long pod name gives a valid DNS-1123 label of at most 63
    assert h.post(alert("kx-isolate", long_name, uid_of(other)))[0] == 200
    rec = wait_audits(nats, "iso", 3)[2]
    name = rec["actions"][0]["network_policy"]
    assert len(name) <= 63 and name.startswith("klaxon-quarantine-xxx") and "." not in name
    assert k8s.get("networkpolicies", NS, name) is not None


def test_terminate_guards_and_min_healthy_replicas(hub, nats, k8s):
    ds = k8s.add_daemonset(NS, "agent", desired=3)
    ds_pod = k8s.add_pod(NS, "agent-abcde", owner=ds)
    alone = k8s.add_pod(NS, "alone")
    # 50% of 3 is 2 (rounded up): 3 ready -> 2 left: act; 2 ready -> 1 left: skip
    _, _, ok_pct = k8s.add_deployment_pods(NS, "pct-ok", 3, ready=3)
    _, _, no_pct = k8s.add_deployment_pods(NS, "pct-no", 3, ready=2)
    # 3 of 4: 4 ready -> 3 left: act; 3 ready -> 2 left: skip
    _, _, ok_n = k8s.add_deployment_pods(NS, "n-ok", 4, ready=4)
    _, _, no_n = k8s.add_deployment_pods(NS, "n-no", 4, ready=3)
    h = hub(dedupe=NODEDUPE, responders=[
        responder("term-pct", "kx-term-pct", k8s,
                  {"action": "terminate", "min_healthy_replicas": "50%"}),
        responder("term-n", "kx-term-n", k8s,
                  {"action": "terminate", "min_healthy_replicas": "3"})])
    sent = [("kx-term-pct", ds_pod), ("kx-term-pct", alone), ("kx-term-pct", ok_pct[0]),
            ("kx-term-pct", no_pct[0])]
    for rule, p in sent:
        assert h.post(alert(rule, p["metadata"]["name"], uid_of(p)))[0] == 200
    assert h.post(alert("kx-term-n", ok_n[0]["metadata"]["name"], uid_of(ok_n[0])))[0] == 200
    assert h.post(alert("kx-term-n", no_n[0]["metadata"]["name"], uid_of(no_n[0])))[0] == 200
    pct = {r["actions"][0]["target"]["pod"]: r["actions"][0]
           for r in wait_audits(nats, "term-pct", 4)}
    n = {r["actions"][0]["target"]["pod"]: r["actions"][0] for r in wait_audits(nats, "term-n", 2)}

    def name(p):
        return p["metadata"]["name"]
    a = pct["agent-abcde"]
    assert a["result"] == "skipped" and "DaemonSet agent (ignore_daemonsets)" in a["reason"], a
    a = pct["alone"]
    assert a["result"] == "skipped" and "no controller (ignore_standalone_pods)" in a["reason"]
    a = pct[name(ok_pct[0])]
    assert a["result"] == "terminated", a
    assert a["owner"]["min_healthy"] == 2 and a["owner"]["healthy_after"] == 2, a
    assert a["owner"]["workload"] == "Deployment shop/pct-ok"
    a = pct[name(no_pct[0])]
    assert a["result"] == "skipped", a
    assert "min_healthy_replicas 50% of 3 = 2" in a["reason"] and "1 after" in a["reason"], a
    assert n[name(ok_n[0])]["result"] == "terminated", n
    assert n[name(no_n[0])]["result"] == "skipped" and "2 after" in n[name(no_n[0])]["reason"]
    deletes = {r["path"].rsplit("/", 1)[1] for r in k8s.requests("DELETE")}
    assert deletes == {name(ok_pct[0]), name(ok_n[0])}, deletes
    assert events_for(k8s, name(ok_n[0]), "KlaxonTerminated")
    assert not events_for(k8s, "alone")


def test_rbac_denial_is_a_permanent_failure(hub, nats, k8s):
    pod = k8s.add_pod(NS, "web-1")
    k8s.deny({"verb": "delete", "resource": "pods"})
    h = hub(dedupe=NODEDUPE, responders=[responder("del", "kx-delete", k8s, {"action": "delete"})])
    assert h.post(alert("kx-delete", "web-1", uid_of(pod)))[0] == 200
    rec = wait_audits(nats, "del", 1)[0]
    assert result(rec) == "failed", rec
    r = reason(rec)
    assert "403" in r and 'cannot delete resource "pods"' in r, r
    assert "RBAC" in r and "will retry" not in r, r
    assert rec["actions"][0]["http_status"] == 403
    time.sleep(1.5)
    assert len(audits(nats, "del")) == 1  # not retried
    assert k8s.get("pods", NS, "web-1") is not None


def test_api_down_is_retried_then_failed(hub, nats, k8s):
    pod = k8s.add_pod(NS, "web-1")
    h = hub(dedupe=NODEDUPE,
            responders=[responder("del", "kx-delete", k8s, {"action": "delete"}, max_deliver=2)])
    k8s.down(mode="refuse")
    try:
        assert h.post(alert("kx-delete", "web-1", uid_of(pod)))[0] == 200
        recs = wait_audits(nats, "del", 2, timeout=20)
    finally:
        k8s.up()
    assert [result(r) for r in recs] == ["failed", "failed"], recs
    assert "will retry" in reason(recs[0]) and "will retry" not in reason(recs[1])
    assert k8s.get("pods", NS, "web-1") is not None


def test_retry_after_from_the_api_is_honoured(hub, nats, k8s):
    # a 503 with Retry-After: 3 -> the next attempt waits 3 s, not the 1 s backoff
    pod = k8s.add_pod(NS, "web-1")
    h = hub(dedupe=NODEDUPE, responders=[responder("del", "kx-delete", k8s, {"action": "delete"})])
    k8s.fault("/api/v1/namespaces/shop/pods/web-1", 503, method="DELETE", count=1,
              retry_after=3)
    assert h.post(alert("kx-delete", "web-1", uid_of(pod)))[0] == 200
    recs = wait_audits(nats, "del", 2, timeout=20)
    assert [result(r) for r in recs] == ["failed", "acted"], recs
    dels = k8s.requests(method="DELETE", path="/api/v1/namespaces/shop/pods/web-1")
    assert len(dels) == 2 and dels[1]["time"] - dels[0]["time"] >= 2.9, dels


def test_dry_run_sends_no_mutating_request(hub, nats, k8s):
    _, _, pods = k8s.add_deployment_pods(NS, "api", 3)
    p = pods[0]
    h = hub(dedupe=NODEDUPE, responders=[responder("dry", "kx-*", k8s, {"action": "terminate",
                                                        "min_healthy_replicas": "1"},
                                  dry_run=True),
                        responder("dry-iso", "iso-*", k8s, {"action": "isolate"}, dry_run=True)])
    k8s.clear_requests()
    assert h.post(alert("kx-term", p["metadata"]["name"], uid_of(p)))[0] == 200
    assert h.post(alert("iso-1", p["metadata"]["name"], uid_of(p)))[0] == 200
    rec = wait_audits(nats, "dry", 1)[0]
    iso = wait_audits(nats, "dry-iso", 1)[0]
    assert result(rec) == "dry_run" and rec["actions"][0]["result"] == "dry_run", rec
    reqs = rec["actions"][0]["requests"]
    assert [(q["method"], q["path"].rsplit("/", 1)[1]) for q in reqs] == [
        ("DELETE", p["metadata"]["name"]), ("POST", "events")], reqs
    assert reqs[0]["body"]["preconditions"] == {"uid": uid_of(p)}
    assert reqs[1]["body"]["reason"] == "KlaxonTerminated"
    assert [q["method"] for q in iso["actions"][0]["requests"]] == ["PATCH", "POST", "POST"]
    assert iso["actions"][0]["requests"][0]["content_type"] == MERGE
    time.sleep(0.5)
    assert mutating(k8s) == [], mutating(k8s)
    assert k8s.requests("GET")  # the guards may read
    assert k8s.objects("networkpolicies", NS) == [] and k8s.events(NS) == []


def test_bad_params_are_reported_at_their_key(build, tmp_path, nats, fake):
    cfg = {"nats": {"url": nats.url},
           "responders": [responder("x", "r", fake, {"action": "delete", "labels": {"a": "b"},
                                                      "min_healthy_replicas": "150%"}),
                          responder("y", "r", fake, {"action": "label",
                                                      "labels": {"bad key!": "v"}}),
                          responder("z", "r", fake, {"action": "explode"})]}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml_dump(cfg) + "\n")
    r = subprocess.run([str(build / "bin" / "klaxon-hub"), "-c", str(p), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1, r
    err = r.stderr
    assert 'unknown param "labels" for delete' in err, err
    assert "min_healthy_replicas must be a number" in err, err
    assert '"bad key!" is not a valid label key' in err, err
    assert "params.action must be delete, evict, label, annotate, isolate or terminate" in err
    assert ":" in err.splitlines()[0]  # file:line:col

