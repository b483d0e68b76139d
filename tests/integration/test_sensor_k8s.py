# SPDX-License-Identifier: Apache-2.0
"""Pod attribution end to end: the real sensor watches this node's pods on the
strict Kubernetes API double (TLS, bearer token, list+watch with
fieldSelector spec.nodeName) and a shell in a simulated pod's container gets
k8s.ns.name, k8s.pod.name, labels and container.name. With the API gone, alerts
still go out at once, with the pod UID from the cgroup and no names.
Needs root (BPF, cgroups): fails, never skips."""
import json
import secrets
import sys
import time
import uuid
from pathlib import Path

from conftest import wait_for
from test_sensor import NODE, SLICE, Sensor, cgroups, require_root, run_shell_in  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_fake import K8sFake  # noqa: E402

RULE = "Terminal shell in container"


def stream_alerts(client):
    return [json.loads(d) for _, _, d in client.stream_msgs("KLAXON_ALERTS")]


def shell_alerts(client, pid):
    return [a for a in stream_alerts(client)
            if a.get("rule") == RULE and a["output_fields"].get("proc.pid") == pid]


def pod_cgroup(cgroups, pod_uid, full_id):
    """kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope, as the
    kubelet's systemd driver names them, under our own slice."""
    pod = "kubepods-besteffort-pod%s.slice" % pod_uid.replace("-", "_")
    return cgroups(pod), cgroups("%s/cri-containerd-%s.scope" % (pod, full_id))


def test_pod_names_from_the_api_and_alerts_without_it(nats, tmp_path, cgroups):
    require_root()
    with K8sFake(tmp_path / "k8s") as k8s:
        pod_uid, full_id = str(uuid.uuid4()), secrets.token_hex(32)
        k8s.add_pod("shop", "web-1", uid=pod_uid, node=NODE, labels={"app": "web"},
                    containers=[("nginx", "containerd://" + full_id)])
        k8s.add_pod("other", "elsewhere", node="another-node",
                    containers=[("x", "containerd://" + secrets.token_hex(32))])
        s = Sensor(tmp_path, nats.url, ensure_stream="true",
                   extra="kubernetes:\n  mode: kubeconfig\n  kubeconfig: %s\n"
                   % json.dumps(str(k8s.kubeconfig)))
        try:
            s.wait_attached()
            # the watch asks only for this node's pods, with the token
            wait_for(lambda: any("watch" in (r.get("query") or "") for r in k8s.requests()),
                     10, what="the sensor to watch pods")
            reqs = [r for r in k8s.requests() if r.get("path") == "/api/v1/pods"]
            assert reqs, k8s.requests()
            assert all("spec.nodeName%3D" + NODE in r["query"] or
                       "spec.nodeName=" + NODE in r["query"] for r in reqs), reqs
            c = nats.client()
            pod, ctr = pod_cgroup(cgroups, pod_uid, full_id)
            pid, _ = run_shell_in(ctr)
            a = wait_for(lambda: shell_alerts(c, pid), 10, what="the shell alert")[0]
            f = a["output_fields"]
            assert f["k8s.pod.uid"] == pod_uid
            assert f["k8s.ns.name"] == "shop"
            assert f["k8s.pod.name"] == "web-1"
            assert f["container.id"] == full_id[:12]
            assert "k8s_ns=shop k8s_pod=web-1" in a["output"], a["output"]

            # API gone: the next alert is not held back, it just has no names
            k8s.stop()
            uid2, id2 = str(uuid.uuid4()), secrets.token_hex(32)
            _, ctr2 = pod_cgroup(cgroups, uid2, id2)
            t0 = time.time()
            pid2, _ = run_shell_in(ctr2)
            a2 = wait_for(lambda: shell_alerts(c, pid2), 10, what="the alert without API")[0]
            assert time.time() - t0 < 3.0
            f2 = a2["output_fields"]
            assert f2["k8s.pod.uid"] == uid2
            assert f2.get("k8s.pod.name") is None and f2.get("k8s.ns.name") is None
            assert s.proc.poll() is None, s.text()
        finally:
            s.kill()
