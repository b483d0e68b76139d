# SPDX-License-Identifier: Apache-2.0
"""k8s_fake.py - drive tests/fakes/k8s_api.py from pytest.

    with K8sFake(tmp_path) as k8s:
        k8s.add_pod("shop", "web-1", uid, node="node-a", labels={"app": "web"},
                    containers=[("nginx", "containerd://" + "ab" * 32)])
        run_sensor(env={"KUBECONFIG": k8s.kubeconfig})
        assert any(r["path"] == "/api/v1/pods" for r in k8s.requests())

The server runs as a subprocess (killed on exit, and it exits on its own if
this process dies); .port, .ca, .token, .url, .kubeconfig say how to reach it.
Control calls go to a separate port that stays up while the API port is
down (mode "refuse").

State:      add_pod / add_node / add_deployment / add_replicaset / add_statefulset /
            add_daemonset / add_pdb / add_networkpolicy / put(resource, obj);
            owner_ref(obj) makes an ownerReference; get / objects / events /
            delete_object inspect and change what is stored.
Identity:   set_user(name) for the main token, add_token(token, user).
RBAC:       deny(rule, ...), allow_only(rule, ...), allow_all(); a rule is
            {"verb", "resource" ("pods", "pods/eviction", "nodes", "*"),
             "group", "namespace", "name", "user"}.
Faults:     fault(path, status, ...), slow(path, seconds), drop(path), down(mode=...).
Requests:   requests(method=, path=), last_request(...), clear_requests().
Pods:       kubelet(delay) sets how long a terminating pod stays (None: until
            finish_terminating()).
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
    def __init__(self, tmpdir, token=None, host="127.0.0.1", verbose=False, start_timeout=15.0,
                 user=None):
        self.dir = os.path.join(str(tmpdir), "k8s-fake")
        self.token_arg = token
        self.user_arg = user
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
        if self.user_arg:
            cmd += ["--user", self.user_arg]
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

    @property
    def control_port(self):
        return self.state.get("control_port") or self.state["port"]

    def _call(self, method, path, body=None):
        conn = http.client.HTTPSConnection(self.host, self.control_port, context=self._ctx,
                                           timeout=10)
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

    def api(self, method, path, token=None, body=None, content_type=None, headers=None,
            with_headers=False):
        """A raw API request as a client would make it: (status, parsed body),
        or (status, parsed body, response headers) with with_headers=True.
        token=False sends no Authorization header."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ctx, timeout=10)
        try:
            hdrs = {} if token is False else {"Authorization": f"Bearer {token or self.token}"}
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body).encode()
                if isinstance(data, str):
                    data = data.encode()
                if content_type is not False:
                    hdrs["Content-Type"] = content_type or "application/json"
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            out = resp.read()
            try:
                parsed = json.loads(out)
            except ValueError:
                parsed = out
            if with_headers:
                return resp.status, parsed, dict(resp.getheaders())
            return resp.status, parsed
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
                init_containers=(), ephemeral_containers=(), phase="Running", annotations=None,
                ready=None, owner=None, grace=None, spec=None, status=None):
        """Creates or replaces a pod. containers: [(name, containerID)], the
        id either "containerd://<64hex>" (or cri-o://, docker://) or bare hex.
        ready: the Ready condition (default: True when Running). owner: an
        object from add_replicaset() & co. (or an ownerReference dict) that
        controls the pod. grace: spec.terminationGracePeriodSeconds. spec /
        status: extra fields merged in."""
        if ready is None:
            ready = phase == "Running"
        pod = {
            "metadata": {"name": name, "namespace": ns, "uid": uid or str(uuid.uuid4()),
                         "labels": dict(labels or {}), "annotations": dict(annotations or {})},
            "spec": {"nodeName": node,
                     "containers": [{"name": n, "image": f"example/{n}:1"}
                                    for n, _ in containers or ()] or
                     [{"name": "main", "image": "example/main:1"}]},
            "status": {"phase": phase,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                                      {"type": "ContainersReady",
                                       "status": "True" if ready else "False"},
                                      {"type": "PodScheduled",
                                       "status": "True" if node else "False"}],
                       "containerStatuses": self._statuses(containers)},
        }
        if not node:
            del pod["spec"]["nodeName"]
        if owner is not None:
            pod["metadata"]["ownerReferences"] = [self.owner_ref(owner)]
        if grace is not None:
            pod["spec"]["terminationGracePeriodSeconds"] = grace
        pod["spec"].update(spec or {})
        pod["status"].update(status or {})
        if init_containers:
            pod["spec"]["initContainers"] = [{"name": n} for n, _ in init_containers]
            pod["status"]["initContainerStatuses"] = self._statuses(init_containers)
        if ephemeral_containers:
            pod["spec"]["ephemeralContainers"] = [{"name": n} for n, _ in ephemeral_containers]
            pod["status"]["ephemeralContainerStatuses"] = self._statuses(ephemeral_containers)
        return self._call("POST", "/_fake/pods", pod)

    def put(self, resource, obj):
        """Creates or replaces any object as given (status included)."""
        return self._call("POST", f"/_fake/{resource}", obj)

    def delete_pod(self, ns, name):
        return self._call("DELETE", f"/_fake/pods/{ns}/{name}")

    def delete_object(self, resource, ns, name=None):
        """delete_object("nodes", "node-a") or ("pods", "shop", "web-1")."""
        path = f"/_fake/{resource}/{ns}" + (f"/{name}" if name is not None else "")
        return self._call("DELETE", path)

    def pods(self):
        return self._call("GET", "/_fake/pods")

    def objects(self, resource, ns=None):
        """Stored objects of a resource (PDBs with their computed status)."""
        q = f"?namespace={ns}" if ns is not None else ""
        return self._call("GET", f"/_fake/{resource}{q}")

    def get(self, resource, ns, name=None):
        """One stored object, or None: get("pods", "shop", "web-1"),
        get("nodes", "node-a")."""
        path = f"/_fake/{resource}/{ns}" + (f"/{name}" if name is not None else "")
        try:
            return self._call("GET", path)
        except RuntimeError as e:
            if ": 404 " in str(e):
                return None
            raise

    def events(self, ns=None):
        return self.objects("events", ns)

    # --- objects ------------------------------------------------------------

    @staticmethod
    def owner_ref(obj, controller=True):
        """An ownerReference to obj (a stored object, as add_* return), or obj
        itself when it already is one."""
        if "metadata" not in obj:
            return dict(obj)
        return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
                "controller": controller, "blockOwnerDeletion": True}

    def add_node(self, name, labels=None, unschedulable=False, taints=None, ready=True,
                 annotations=None):
        node = {"metadata": {"name": name, "labels": dict(labels or {}),
                             "annotations": dict(annotations or {})},
                "spec": {},
                "status": {"conditions": [{"type": "Ready",
                                           "status": "True" if ready else "False"}]}}
        node["metadata"]["labels"].setdefault("kubernetes.io/hostname", name)
        if unschedulable:
            node["spec"]["unschedulable"] = True
        if taints:
            node["spec"]["taints"] = list(taints)
        return self.put("nodes", node)

    def _workload(self, resource, ns, name, replicas, ready, available, labels, owner, extra):
        labels = dict(labels or {"app": name})
        obj = {"metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"containers": [{"name": "main",
                                                              "image": "example/main:1"}]}}},
               "status": {}}
        if replicas is not None:
            obj["spec"]["replicas"] = replicas
            ready = replicas if ready is None else ready
            available = ready if available is None else available
            obj["status"] = {"observedGeneration": 1, "replicas": replicas,
                             "readyReplicas": ready, "availableReplicas": available,
                             "updatedReplicas": replicas}
        if owner is not None:
            obj["metadata"]["ownerReferences"] = [self.owner_ref(owner)]
        for k, v in (extra or {}).items():
            obj.setdefault(k, {}).update(v)
        return self.put(resource, obj)

    def add_deployment(self, ns, name, replicas=1, ready=None, available=None, labels=None,
                       **extra):
        """spec.replicas and status.replicas/readyReplicas/availableReplicas
        (ready defaults to replicas, available to ready)."""
        return self._workload("deployments", ns, name, replicas, ready, available, labels,
                              None, extra)

    def add_replicaset(self, ns, name, replicas=1, ready=None, available=None, labels=None,
                       owner=None, **extra):
        return self._workload("replicasets", ns, name, replicas, ready, available, labels,
                              owner, extra)

    def add_statefulset(self, ns, name, replicas=1, ready=None, available=None, labels=None,
                        **extra):
        return self._workload("statefulsets", ns, name, replicas, ready, available, labels,
                              None, extra)

    def add_daemonset(self, ns, name, desired=1, ready=None, available=None, labels=None,
                      **extra):
        """A DaemonSet has no spec.replicas: status.desiredNumberScheduled,
        currentNumberScheduled, numberReady, numberAvailable."""
        ds = self._workload("daemonsets", ns, name, None, None, None, labels, None, extra)
        ready = desired if ready is None else ready
        ds["status"] = {"observedGeneration": 1, "desiredNumberScheduled": desired,
                        "currentNumberScheduled": desired, "numberReady": ready,
                        "numberAvailable": ready if available is None else available,
                        "updatedNumberScheduled": desired, "numberMisscheduled": 0}
        return self.put("daemonsets", ds)

    def add_deployment_pods(self, ns, name, replicas, ready=None, node="node-a", labels=None):
        """A Deployment, its ReplicaSet and `replicas` pods (the first `ready`
        of them Ready), as the controllers would leave them. Returns
        (deployment, replicaset, [pods])."""
        labels = dict(labels or {"app": name})
        ready = replicas if ready is None else ready
        dep = self.add_deployment(ns, name, replicas, ready=ready, labels=labels)
        rs_name = f"{name}-{uuid.uuid4().hex[:10]}"
        rs_labels = dict(labels, **{"pod-template-hash": rs_name[len(name) + 1:]})
        rs = self.add_replicaset(ns, rs_name, replicas, ready=ready, labels=rs_labels, owner=dep)
        pods = [self.add_pod(ns, f"{rs_name}-{uuid.uuid4().hex[:5]}", node=node,
                             labels=rs_labels, owner=rs, ready=i < ready)
                for i in range(replicas)]
        return dep, rs, pods

    def add_pdb(self, ns, name, selector, min_available=None, max_unavailable=None,
                unhealthy_pod_eviction_policy=None):
        """selector: matchLabels as a dict of strings, or a full LabelSelector
        ({"matchLabels": ..., "matchExpressions": ...}); min_available /
        max_unavailable: an int or "50%"."""
        if selector is not None and not ({"matchLabels", "matchExpressions"} & set(selector)):
            selector = {"matchLabels": dict(selector)}
        spec = {"selector": selector}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        if unhealthy_pod_eviction_policy:
            spec["unhealthyPodEvictionPolicy"] = unhealthy_pod_eviction_policy
        return self.put("poddisruptionbudgets",
                        {"metadata": {"name": name, "namespace": ns}, "spec": spec})

    def add_networkpolicy(self, ns, name, spec=None, labels=None):
        return self.put("networkpolicies",
                        {"metadata": {"name": name, "namespace": ns, "labels": labels or {}},
                         "spec": spec or {"podSelector": {}, "policyTypes": ["Ingress"]}})

    # --- requests -------------------------------------------------------------

    def requests(self, method=None, path=None, prefix=None):
        """The API requests seen, oldest first; each has method, path, query,
        params, content_type, body (text), json (parsed body), status, user,
        fault. Filters: exact method / path, or a path prefix."""
        out = self._call("GET", "/_fake/requests")
        return [r for r in out
                if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)
                and (prefix is None or r["path"].startswith(prefix))]

    def last_request(self, method=None, path=None, prefix=None):
        reqs = self.requests(method, path, prefix)
        return reqs[-1] if reqs else None

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
              reason=None, delay=None, drop=False, when="before", query=None):
        """The next `count` requests (None: all) whose path starts with `path`
        get `status` (a Status body, Retry-After when retry_after is set).
        delay: seconds before answering; drop: close the connection without
        an answer; when="after": the request takes effect and then the answer
        is replaced (or dropped); query: a substring of the raw query."""
        f = {"path": path, "status": status, "method": method, "count": count, "when": when}
        if retry_after is not None:
            f["retry_after"] = retry_after
        if message:
            f["message"] = message
        if reason:
            f["reason"] = reason
        if delay:
            f["delay"] = delay
        if drop:
            f["drop"] = True
        if query:
            f["query"] = query
        self._call("POST", "/_fake/faults", f)

    def slow(self, path, seconds, method="*", count=None):
        """Requests under path are answered normally, `seconds` late."""
        self.fault(path, None, method=method, count=count, delay=seconds)

    def drop(self, path, method="*", count=1, when="before"):
        self.fault(path, None, method=method, count=count, drop=True, when=when)

    def faults(self):
        return self._call("GET", "/_fake/faults")

    def clear_faults(self):
        self._call("DELETE", "/_fake/faults")

    def deny(self, *rules):
        """deny({"verb": "list", "resource": "pods"}, ...): 403 for those."""
        self._call("POST", "/_fake/rbac", {"deny": list(rules)})

    def allow_only(self, *rules):
        """Like a Role: only requests matching a rule are allowed."""
        self._call("POST", "/_fake/rbac", {"allow": list(rules)})

    def set_user(self, user):
        """The user the main token authenticates as."""
        self.configure(user=user)

    def add_token(self, token, user):
        self._call("POST", "/_fake/users", {"token": token, "user": user})

    def kubelet(self, delay):
        """Seconds a terminating pod stays before the fake kubelet removes it
        (0: at once, the default; None: until finish_terminating())."""
        self.configure(kubelet_delay=delay)

    def finish_terminating(self):
        return self._call("POST", "/_fake/kubelet/finish")["finished"]

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
