# SPDX-License-Identifier: Apache-2.0
"""k8s_fake.py - drive tests/fakes/k8s_api.py from pytest.

    with K8sFake(tmp_path) as k8s:
        k8s.add_pod("shop", "web-1", uid, node="node-a", labels={"app": "web"},
                    containers=[("nginx", "containerd://" + "ab" * 32)])
        run_sensor(env={"KUBECONFIG": k8s.kubeconfig})
        assert any(r["path"] == "/api/v1/pods" for r in k8s.requests())

The server runs as a subprocess (killed on exit, and it exits on its own if
this process dies); .port, .ca, .token, .url, .kubeconfig say how to reach it.
"""

import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "k8s_api.py")


class K8sFake:
    def __init__(self, tmpdir, token=None, host="127.0.0.1", verbose=False, start_timeout=15.0):
        self.dir = os.path.join(str(tmpdir), "k8s-fake")
        self.token_arg = token
        self.host = host
        self.verbose = verbose
        self.start_timeout = start_timeout
        self.proc = None
        self.state = None
        self._ctx = None

    # --- lifecycle --------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        state_path = os.path.join(self.dir, "state.json")
        if os.path.exists(state_path):
            os.unlink(state_path)
        cmd = [sys.executable, SERVER, "--port", "0", "--state-dir", self.dir, "--host", self.host,
               "--parent-pid", str(os.getpid())]
        if self.token_arg:
            cmd += ["--token", self.token_arg]
        if self.verbose:
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd)
        deadline = time.monotonic() + self.start_timeout
        while not os.path.exists(state_path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"k8s fake exited with {self.proc.returncode} at start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("k8s fake did not start in time")
            time.sleep(0.02)
        with open(state_path) as f:
            self.state = json.load(f)
        self._ctx = ssl.create_default_context(cafile=self.ca)
        self.write_kubeconfig(self.kubeconfig)
        self._call("GET", "/_fake/ping")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    # --- where it is ------------------------------------------------------

    @property
    def port(self):
        return self.state["port"]

    @property
    def url(self):
        return self.state["url"]

    @property
    def ca(self):
        return self.state["ca"]

    @property
    def other_ca(self):
        return self.state["other_ca"]

    @property
    def token(self):
        return self.state["token"]

    @property
    def client_cert(self):
        return self.state["client_cert"]

    @property
    def client_key(self):
        return self.state["client_key"]

    @property
    def kubeconfig(self):
        return os.path.join(self.dir, "kubeconfig")

    def write_kubeconfig(self, path, token=None, ca=None, embed=False, context="klaxon-fake"):
        """A kubeconfig for this server (token auth). embed=True puts the CA
        in certificate-authority-data instead of a path."""
        import base64
        ca = ca or self.ca
        if embed:
            with open(ca, "rb") as f:
                ca_line = f"certificate-authority-data: {base64.b64encode(f.read()).decode()}"
        else:
            ca_line = f"certificate-authority: {ca}"
        text = f"""apiVersion: v1
kind: Config
current-context: {context}
clusters:
- name: fake
  cluster:
    server: {self.url}
    {ca_line}
contexts:
- name: {context}
  context:
    cluster: fake
    user: sensor
    namespace: klaxon
users:
- name: sensor
  user:
    token: {token or self.token}
"""
        with open(path, "w") as f:
            f.write(text)
        return path

    # --- control API ------------------------------------------------------

    def _call(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            out = resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"k8s fake: {method} {path}: {resp.status} {out[:300]!r}")
            return json.loads(out) if out else None
        finally:
            conn.close()

    def api(self, method, path, token=None, body=None, content_type=None):
        """A raw API request as a client would make it: (status, parsed body)."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {token or self.token}"}
            data = None
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers["Content-Type"] = content_type or "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            out = resp.read()
            try:
                return resp.status, json.loads(out)
            except ValueError:
                return resp.status, out
        finally:
            conn.close()

    @staticmethod
    def _statuses(items):
        out = []
        for name, cid in items or ():
            if cid and "://" not in cid:
                cid = "containerd://" + cid
            st = {"name": name, "ready": True, "restartCount": 0,
                  "image": f"example/{name}:1", "state": {"running": {}}}
            if cid:
                st["containerID"] = cid
            out.append(st)
        return out

    def add_pod(self, ns, name, uid=None, node="node-a", labels=None, containers=(),
                init_containers=(), ephemeral_containers=(), phase="Running", annotations=None):
        """Creates or replaces a pod. containers: [(name, containerID)], the
        id either "containerd://<64hex>" (or cri-o://, docker://) or bare hex."""
        pod = {
            "metadata": {"name": name, "namespace": ns, "uid": uid or str(uuid.uuid4()),
                         "labels": dict(labels or {}), "annotations": dict(annotations or {})},
            "spec": {"nodeName": node,
                     "containers": [{"name": n, "image": f"example/{n}:1"}
                                    for n, _ in containers or ()]},
            "status": {"phase": phase,
                       "containerStatuses": self._statuses(containers)},
        }
        if init_containers:
            pod["spec"]["initContainers"] = [{"name": n} for n, _ in init_containers]
            pod["status"]["initContainerStatuses"] = self._statuses(init_containers)
        if ephemeral_containers:
            pod["spec"]["ephemeralContainers"] = [{"name": n} for n, _ in ephemeral_containers]
            pod["status"]["ephemeralContainerStatuses"] = self._statuses(ephemeral_containers)
        return self._call("POST", "/_fake/pods", pod)

    def put(self, resource, obj):
        return self._call("POST", f"/_fake/{resource}", obj)

    def delete_pod(self, ns, name):
        return self._call("DELETE", f"/_fake/pods/{ns}/{name}")

    def pods(self):
        return self._call("GET", "/_fake/pods")

    def requests(self):
        return self._call("GET", "/_fake/requests")

    def clear_requests(self):
        self._call("DELETE", "/_fake/requests")

    def compact(self, rv=None):
        return self._call("POST", "/_fake/compact", {} if rv is None else {"rv": rv})

    def down(self, seconds=0, mode="close"):
        self._call("POST", "/_fake/down", {"seconds": seconds, "mode": mode})

    def up(self):
        self._call("POST", "/_fake/up")

    def bookmark(self):
        self._call("POST", "/_fake/bookmark")

    def watches(self):
        return self._call("GET", "/_fake/watches")["open"]

    def end_watches(self):
        self._call("POST", "/_fake/watches/end")

    def drop_watches(self):
        self._call("POST", "/_fake/watches/drop")

    def rotate_token(self, token, keep_old=False):
        self._call("POST", "/_fake/token", {"token": token, "keep_old": keep_old})
        self.state["token"] = token

    def fault(self, path, status, method="*", count=1, retry_after=None, message=None,
              reason=None):
        f = {"path": path, "status": status, "method": method, "count": count}
        if retry_after is not None:
            f["retry_after"] = retry_after
        if message:
            f["message"] = message
        if reason:
            f["reason"] = reason
        self._call("POST", "/_fake/faults", f)

    def clear_faults(self):
        self._call("DELETE", "/_fake/faults")

    def deny(self, *rules):
        """deny({"verb": "list", "resource": "pods"}, ...): 403 for those."""
        self._call("POST", "/_fake/rbac", {"deny": list(rules)})

    def allow_all(self):
        self._call("DELETE", "/_fake/rbac")

    def configure(self, **kw):
        self._call("POST", "/_fake/config", kw)

    def reset(self):
        self._call("POST", "/_fake/reset")

    def wait_watches(self, n=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.watches() >= n:
                return True
            time.sleep(0.02)
        return False
