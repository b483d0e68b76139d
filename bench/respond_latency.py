# SPDX-License-Identifier: Apache-2.0
"""Alert to completed pod delete (issue 6's bench).

A real nats-server, a hub with one responder (k8s_pod delete) and the strict
Kubernetes API double (tests/fakes/k8s_api.py). COUNT alerts are POSTed to the
hub's Falco-compatible ingest one at a time, each about a pod of its own; the
latency is from the POST to the moment the API double received the DELETE
(its request log's clock), as p50/p99/max.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from conftest import NatsServer, falco_alert, free_port, wait_for, yaml_dump  # noqa: E402
from k8s_fake import K8sFake  # noqa: E402

BUILD = Path(os.environ.get("KX_BUILD", "build"))
COUNT = int(os.environ.get("BENCH_RESPOND_N", "200"))


def main():
    with tempfile.TemporaryDirectory() as tmp, \
            K8sFake(tmp, user="system:serviceaccount:klaxon:klaxon") as k8s:
        nats = NatsServer(tmp)
        port = free_port()
        cfg = {"log": {"level": "warn"}, "nats": {"url": nats.url},
               "http": {"listen": "127.0.0.1", "port": port},
               "outputs": [],
               "responders": [{"name": "delete-pods",
                               "match": {"rules": ["Terminal shell in container"]},
                               "actions": [{"type": "k8s_pod", "params": {"action": "delete"},
                                            "mode": "kubeconfig",
                                            "kubeconfig": k8s.kubeconfig,
                                            "events": False}]}]}
        p = Path(tmp) / "hub.yaml"
        p.write_text(yaml_dump(cfg) + "\n")
        hub = subprocess.Popen([str(BUILD / "bin" / "klaxon-hub"), "-c", str(p)],
                               stderr=open(Path(tmp) / "hub.log", "ab"))
        try:
            wait_for(lambda: _healthy(port), 15)
            sent = {}
            for i in range(COUNT):
                name = "web-%d" % i
                uid = str(uuid.uuid4())
                k8s.add_pod("shop", name, uid=uid, node="node-a")
                a = falco_alert(container="%012x" % (0xbe000 + i))
                a["output_fields"].update({"k8s.ns.name": "shop", "k8s.pod.name": name,
                                           "k8s.pod.uid": uid})
                req = urllib.request.Request("http://127.0.0.1:%d/" % port,
                                             data=json.dumps(a).encode(), method="POST")
                t0 = time.time()
                urllib.request.urlopen(req).read()
                sent[name] = t0
                path = "/api/v1/namespaces/shop/pods/%s" % name
                wait_for(lambda: k8s.last_request(method="DELETE", path=path), 10,
                         interval=0.002, what="the delete of %s" % name)
            lat = sorted((r["time"] - sent[r["path"].rsplit("/", 1)[1]]) * 1000
                         for r in k8s.requests(method="DELETE"))
        finally:
            hub.terminate()
            hub.wait()
            nats.stop()
    print("### Responder: alert to completed pod delete (bench/respond_latency.py)")
    print()
    print("%d alerts POSTed one at a time to the hub, one responder (k8s_pod delete) "
          "against tests/fakes/k8s_api.py over TLS; from the POST to the DELETE at the API:"
          % len(lat))
    print("p50 %.1f ms, p99 %.1f ms, max %.1f ms (mean %.1f ms)" % (
        lat[len(lat) // 2], lat[len(lat) * 99 // 100], lat[-1], statistics.mean(lat)))
    print()


def _healthy(port):
    try:
        return urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1).status == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
