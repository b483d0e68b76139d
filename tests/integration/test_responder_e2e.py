# SPDX-License-Identifier: Apache-2.0
"""The whole loop, with real parts except the Kubernetes API (the strict
double): a shell starts in a simulated pod's container; the real sensor
sees it, names the pod from the API and publishes the alert; the hub's
responder deletes that pod (uid precondition) through the API; the audit
record reaches an output. Needs root (BPF, cgroups): fails, never skips."""
import json
import secrets
import sys
import uuid
from pathlib import Path

from conftest import wait_for
from test_sensor import NODE, Sensor, cgroups, require_root, run_shell_in  # noqa: F401
from test_sensor_k8s import pod_cgroup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_fake import K8sFake  # noqa: E402


def test_shell_in_pod_gets_the_pod_deleted_and_on_call_told(hub, nats, tmp_path, cgroups):
    require_root()
    with K8sFake(tmp_path / "k8s", user="system:serviceaccount:klaxon:klaxon") as k8s:
        pod_uid, full_id = str(uuid.uuid4()), secrets.token_hex(32)
        k8s.add_pod("shop", "web-1", uid=pod_uid, node=NODE, labels={"app": "web"},
                    containers=[("nginx", "containerd://" + full_id)])
        kube = {"mode": "kubeconfig", "kubeconfig": str(k8s.kubeconfig)}
        s = Sensor(tmp_path, nats.url, ensure_stream="true",
                   extra="kubernetes:\n  mode: kubeconfig\n  kubeconfig: %s\n"
                   % json.dumps(str(k8s.kubeconfig)))
        out = tmp_path / "oncall.jsonl"
        try:
            s.wait_attached()
            wait_for(lambda: any("watch" in (r.get("query") or "") for r in k8s.requests()),
                     10, what="the sensor to watch pods")
            hub(responders=[{"name": "delete-shells",
                             "match": {"rules": ["Terminal shell in container"],
                                       "fields": {"k8s.ns.name": "shop"}},
                             "actions": [dict(kube, type="k8s_pod",
                                              params={"action": "delete"})]}],
                outputs=[{"name": "oncall", "type": "file", "path": str(out),
                          "sources": ["klaxon_audit"]}])
            _, ctr = pod_cgroup(cgroups, pod_uid, full_id)
            run_shell_in(ctr)
            wait_for(lambda: k8s.get("pods", "shop", "web-1") is None, 20,
                     what="the pod to be deleted")
            d = k8s.last_request(method="DELETE", path="/api/v1/namespaces/shop/pods/web-1")
            assert d["json"]["preconditions"]["uid"] == pod_uid, d
            rec = wait_for(lambda: out.exists() and out.read_text().splitlines(), 15,
                           what="the audit record at the output")
            r = json.loads(rec[0])
            assert r["output_fields"]["klaxon.result"] == "acted", r
            assert r["output_fields"]["klaxon.target"] == "pod shop/web-1", r
        finally:
            s.kill()
