# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes API test double (tests/fakes/k8s_api.py) checked against
what the real apiserver answers: status codes, metav1.Status bodies
(kind/apiVersion/status/reason/code/details), messages, content-type
refusals, patch semantics, graceful pod deletion, preconditions, eviction
with PodDisruptionBudget arithmetic (int and percent), RBAC messages and
the fault injection. Everything goes over real HTTPS with urllib and the
fake's own CA. The expected texts are the ones built in
k8s.io/apimachinery/pkg/api/errors and the registry code.
Fast: one fake per module, reset between tests."""
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_fake import K8sFake  # noqa: E402

USER = "system:serviceaccount:klaxon:klaxon"
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"


class Resp:
    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.data[:400]!r}>"


class Client:
    """A bare HTTPS client, as a responder would talk to the API."""

    def __init__(self, k8s):
        self.k8s = k8s
        self.ctx = ssl.create_default_context(cafile=k8s.ca)

    def __call__(self, method, path, body=None, ctype="application/json", token=None,
                 timeout=5):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.k8s.url + path, data=data, method=method)
        if token is not False:
            req.add_header("Authorization", f"Bearer {token or self.k8s.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                return Resp(r.status, r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.read(), e.headers)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with K8sFake(tmp_path_factory.mktemp("k8s"), user=USER) as k8s:
        yield k8s


@pytest.fixture
def k8s(fake):
    fake.reset()
    return fake


@pytest.fixture
def api(k8s):
    return Client(k8s)


def assert_status(r, code, reason, message=None):
    """A metav1.Status failure body as the apiserver writes it."""
    assert r.status == code, r
    st = r.json
    assert st["kind"] == "Status" and st["apiVersion"] == "v1", st
    assert st["status"] == "Failure" and st["code"] == code, st
    assert st["metadata"] == {}, st
    if reason is None:
        assert "reason" not in st, st
    else:
        assert st["reason"] == reason, st
    if message is not None:
        assert st["message"] == message, st
    assert r.headers.get("Content-Type") == "application/json"
    return st


def forbidden_msg(what, verb, resource, group, where):
    return (f"{what} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource}\" in API "
            f"group \"{group}\" {where}")


def evict_body(name, ns="shop", **extra):
    b = {"apiVersion": "policy/v1", "kind": "Eviction",
         "metadata": {"name": name, "namespace": ns}}
    b.update(extra)
    return b


def evict(api, name, ns="shop", **extra):
    return api("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", evict_body(name, ns,
                                                                                   **extra))


# ---------------------------------------------------------------- auth, paths, verbs

def test_authentication(k8s, api):
    k8s.add_pod("shop", "web-1")
    assert_status(api("GET", "/api/v1/pods", token=False), 401, "Unauthorized", "Unauthorized")
    assert_status(api("GET", "/api/v1/pods", token="wrong"), 401, "Unauthorized")
    assert api("GET", "/api/v1/pods").status == 200
    k8s.add_token("hub-token", "system:serviceaccount:klaxon:other")
    assert api("GET", "/api/v1/pods", token="hub-token").status == 200
    users = [r.get("user") for r in k8s.requests()]
    assert users == [None, None, USER, "system:serviceaccount:klaxon:other"], users


def test_unknown_paths_and_verbs(k8s, api):
    k8s.add_pod("shop", "web-1")
    nf = "the server could not find the requested resource"
    for path in ("/api/v1/foos", "/apis/apps/v1/namespaces/shop/cronjobs",
                 "/api/v1/pods/web-1", "/api/v1/namespaces/shop/pods/web-1/frobnicate",
                 "/apis/nope/v1/things", "/api/v1/namespaces/shop/nodes/node-a"):
        st = assert_status(api("GET", path), 404, "NotFound", nf)
        assert st["details"] == {}
    na = "the server does not allow this method on the requested resource"
    assert_status(api("PUT", "/api/v1/pods", {}), 405, "MethodNotAllowed", na)
    assert_status(api("POST", "/api/v1/namespaces/shop/pods/web-1", {}), 405,
                  "MethodNotAllowed", na)
    assert_status(api("GET", "/api/v1/namespaces/shop/pods/web-1/eviction"), 405,
                  "MethodNotAllowed")
    assert_status(api("DELETE", "/api/v1/pods"), 405, "MethodNotAllowed")
    assert_status(api("PATCH", "/api/v1/nodes", {}, MERGE), 405, "MethodNotAllowed")


# ---------------------------------------------------------------- pods: get, list

def test_pod_get_and_list_selectors(k8s, api):
    k8s.add_pod("shop", "web-1", node="node-a", labels={"app": "web", "tier": "front"})
    k8s.add_pod("shop", "web-2", node="node-b", labels={"app": "web"})
    k8s.add_pod("shop", "db-1", node="node-a", labels={"app": "db"})
    k8s.add_pod("other", "job-1", node="node-a", labels={"app": "batch"}, phase="Succeeded")

    r = api("GET", "/api/v1/namespaces/shop/pods/web-1")
    assert r.status == 200 and r.json["kind"] == "Pod" and r.json["apiVersion"] == "v1"
    assert r.json["metadata"]["uid"] and r.json["metadata"]["resourceVersion"]
    st = assert_status(api("GET", "/api/v1/namespaces/shop/pods/nope"), 404, "NotFound",
                       'pods "nope" not found')
    assert st["details"] == {"name": "nope", "kind": "pods"}

    def names(path):
        r = api("GET", path)
        assert r.status == 200, r
        assert r.json["kind"] == "PodList" and r.json["apiVersion"] == "v1"
        assert r.json["metadata"]["resourceVersion"]
        assert all("kind" not in i for i in r.json["items"])
        return sorted(i["metadata"]["name"] for i in r.json["items"])

    assert names("/api/v1/pods") == ["db-1", "job-1", "web-1", "web-2"]
    assert names("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a") == \
        ["db-1", "job-1", "web-1"]
    assert names("/api/v1/namespaces/shop/pods?fieldSelector=spec.nodeName%3Dnode-a,"
                 "metadata.name%21%3Dweb-1") == ["db-1"]
    assert names("/api/v1/pods?fieldSelector=metadata.name%3Dweb-2") == ["web-2"]
    assert names("/api/v1/pods?fieldSelector=status.phase%3DSucceeded") == ["job-1"]
    assert names("/api/v1/pods?labelSelector=app%3Dweb") == ["web-1", "web-2"]
    assert names("/api/v1/pods?labelSelector=app%3D%3Dweb,tier") == ["web-1"]
    assert names("/api/v1/pods?labelSelector=app%21%3Dweb") == ["db-1", "job-1"]
    assert names("/api/v1/pods?labelSelector=app%20in%20(db,batch)") == ["db-1", "job-1"]
    assert names("/api/v1/pods?labelSelector=app%20notin%20(db,batch)") == ["web-1", "web-2"]
    assert names("/api/v1/pods?labelSelector=%21tier") == ["db-1", "job-1", "web-2"]
    assert_status(api("GET", "/api/v1/pods?fieldSelector=spec.color%3Dred"), 400, "BadRequest",
                  "field label not supported: spec.color")
    assert_status(api("GET", "/api/v1/pods?labelSelector=a%20%3E%3E%20b"), 400, "BadRequest")


# ---------------------------------------------------------------- pods: delete

def test_delete_pod_graceful(k8s, api):
    k8s.add_pod("shop", "web-1", grace=45)
    k8s.kubelet(None)  # terminating pods stay until finish_terminating()
    r = api("DELETE", "/api/v1/namespaces/shop/pods/web-1")
    assert r.status == 200 and r.json["kind"] == "Pod", r
    meta = r.json["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 45 and meta["deletionTimestamp"]
    # still there, terminating; a second delete changes nothing
    assert k8s.get("pods", "shop", "web-1")["metadata"]["deletionGracePeriodSeconds"] == 45
    r2 = api("DELETE", "/api/v1/namespaces/shop/pods/web-1")
    assert r2.status == 200
    assert r2.json["metadata"]["resourceVersion"] == meta["resourceVersion"]
    # a shorter grace period wins
    r3 = api("DELETE", "/api/v1/namespaces/shop/pods/web-1",
             {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5})
    assert r3.json["metadata"]["deletionGracePeriodSeconds"] == 5
    assert k8s.finish_terminating() == 1
    assert k8s.get("pods", "shop", "web-1") is None
    st = assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/web-1"), 404, "NotFound",
                       'pods "web-1" not found')
    assert st["details"] == {"name": "web-1", "kind": "pods"}

    # the fake kubelet's default: gone right after the answer
    k8s.kubelet(0)
    k8s.add_pod("shop", "web-2")
    r = api("DELETE", "/api/v1/namespaces/shop/pods/web-2")
    assert r.status == 200 and r.json["metadata"]["deletionGracePeriodSeconds"] == 30
    assert k8s.get("pods", "shop", "web-2") is None


def test_delete_pod_options(k8s, api):
    k8s.kubelet(None)
    k8s.add_pod("shop", "a")
    k8s.add_pod("shop", "b")
    k8s.add_pod("shop", "unscheduled", node=None, phase="Pending")
    # gracePeriodSeconds 0 in the body: immediate
    r = api("DELETE", "/api/v1/namespaces/shop/pods/a",
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
             "propagationPolicy": "Background"})
    assert r.status == 200 and r.json["metadata"]["deletionGracePeriodSeconds"] == 0
    assert k8s.get("pods", "shop", "a") is None
    # the same as query parameters
    r = api("DELETE", "/api/v1/namespaces/shop/pods/b?gracePeriodSeconds=0&"
                      "propagationPolicy=Foreground")
    assert r.status == 200 and k8s.get("pods", "shop", "b") is None
    # an unscheduled pod goes at once whatever the grace period
    r = api("DELETE", "/api/v1/namespaces/shop/pods/unscheduled")
    assert r.status == 200 and k8s.get("pods", "shop", "unscheduled") is None

    k8s.add_pod("shop", "c")
    st = assert_status(
        api("DELETE", "/api/v1/namespaces/shop/pods/c", {"propagationPolicy": "Sideways"}),
        422, "Invalid",
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
        '"Sideways": supported values: "Foreground", "Background", "Orphan", "nil"')
    assert st["details"]["group"] == "meta.k8s.io" and st["details"]["kind"] == "DeleteOptions"
    assert st["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "propagationPolicy",
        "message": 'Unsupported value: "Sideways": supported values: "Foreground", '
                   '"Background", "Orphan", "nil"'}]
    assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/c?dryRun=Maybe"), 422, "Invalid")
    assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/c", {"gracePeriodSeconds": "0"}),
                  400, "BadRequest")
    st = assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/c", {"gracePeriod": 0}),
                       400, "BadRequest")
    assert 'unknown field "gracePeriod"' in st["message"]
    assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/c", b"{}", "text/plain"), 415,
                  "UnsupportedMediaType")
    # dry run: answered, nothing changes
    r = api("DELETE", "/api/v1/namespaces/shop/pods/c?dryRun=All&gracePeriodSeconds=0")
    assert r.status == 200 and k8s.get("pods", "shop", "c") is not None
    assert k8s.get("pods", "shop", "c")["metadata"].get("deletionTimestamp") is None


def test_delete_preconditions(k8s, api):
    pod = k8s.add_pod("shop", "web-1", uid="11111111-1111-1111-1111-111111111111")
    wrong = "22222222-2222-2222-2222-222222222222"
    path = "/api/v1/namespaces/shop/pods/web-1"
    st = assert_status(
        api("DELETE", path, {"preconditions": {"uid": wrong}}), 409, "Conflict",
        f'Operation cannot be fulfilled on Pod "web-1": the UID in the precondition ({wrong}) '
        f'does not match the UID in record (11111111-1111-1111-1111-111111111111). The object '
        f'might have been deleted and then recreated')
    assert st["details"] == {"name": "web-1", "kind": "Pod"}
    rv = pod["metadata"]["resourceVersion"]
    st = assert_status(
        api("DELETE", path, {"preconditions": {"resourceVersion": "1"}}), 409, "Conflict",
        f'Operation cannot be fulfilled on Pod "web-1": the ResourceVersion in the precondition '
        f'(1) does not match the ResourceVersion in record ({rv}). The object might have been '
        f'modified')
    assert k8s.get("pods", "shop", "web-1") is not None
    r = api("DELETE", path, {"gracePeriodSeconds": 0, "preconditions": {
        "uid": "11111111-1111-1111-1111-111111111111", "resourceVersion": rv}})
    assert r.status == 200 and k8s.get("pods", "shop", "web-1") is None

    # PUT carrying another uid: the storage-level precondition message
    k8s.add_pod("shop", "web-2", uid="33333333-3333-3333-3333-333333333333")
    cur = api("GET", "/api/v1/namespaces/shop/pods/web-2").json
    cur["metadata"]["uid"] = wrong
    assert_status(
        api("PUT", "/api/v1/namespaces/shop/pods/web-2", cur), 409, "Conflict",
        'Operation cannot be fulfilled on pods "web-2": StorageError: invalid object, Code: 4, '
        'Key: /registry/pods/shop/web-2, ResourceVersion: 0, AdditionalErrorMsg: Precondition '
        f'failed: UID in precondition: {wrong}, UID in object meta: '
        '33333333-3333-3333-3333-333333333333')
    cur["metadata"]["uid"] = "33333333-3333-3333-3333-333333333333"
    cur["metadata"]["resourceVersion"] = "5"
    assert_status(api("PUT", "/api/v1/namespaces/shop/pods/web-2", cur), 409, "Conflict",
                  'Operation cannot be fulfilled on pods "web-2": the object has been modified; '
                  'please apply your changes to the latest version and try again')


# ---------------------------------------------------------------- content types, patches

def test_content_types(k8s, api):
    k8s.add_pod("shop", "web-1")
    path = "/api/v1/namespaces/shop/pods/web-1"
    patch_msg = ("the body of the request was in an unknown format - accepted media types "
                 "include: application/json-patch+json, application/merge-patch+json, "
                 "application/strategic-merge-patch+json, application/apply-patch+yaml")
    for ct in ("application/json", "text/plain", "application/merge-patch+json+x",
               "Application/Merge-Patch+Json"):
        st = assert_status(api("PATCH", path, {"metadata": {"labels": {"a": "b"}}}, ct), 415,
                           "UnsupportedMediaType", patch_msg)
        assert "details" not in st
    # parameters after ';' are fine
    r = api("PATCH", path, {"metadata": {"labels": {"a": "b"}}}, MERGE + "; charset=utf-8")
    assert r.status == 200 and r.json["metadata"]["labels"]["a"] == "b"
    body_msg = ("the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, "
                "application/vnd.kubernetes.protobuf")
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "deny"}, "spec": {"podSelector": {}}}
    assert_status(api("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies", np,
                      MERGE), 415, "UnsupportedMediaType", body_msg)
    assert_status(api("POST", path + "/eviction", evict_body("web-1"), "text/plain"),
                  415, "UnsupportedMediaType", body_msg)
    assert k8s.get("pods", "shop", "web-1") is not None
    assert_status(api("PATCH", path, b"{nope", MERGE), 400, "BadRequest")
    assert_status(api("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
                      b"{nope"), 400, "BadRequest")


def test_merge_and_strategic_patch_labels(k8s, api):
    pod = k8s.add_pod("shop", "web-1", labels={"app": "web", "keep": "yes"},
                      annotations={"note": "x"})
    path = "/api/v1/namespaces/shop/pods/web-1"
    rv0 = int(pod["metadata"]["resourceVersion"])
    r = api("PATCH", path, {"metadata": {"labels": {"klaxon.io/quarantine": "true", "app": None},
                                         "annotations": {"klaxon.io/reason": "shell"}}}, MERGE)
    assert r.status == 200 and r.json["kind"] == "Pod", r
    assert r.json["metadata"]["labels"] == {"keep": "yes", "klaxon.io/quarantine": "true"}
    assert r.json["metadata"]["annotations"] == {"note": "x", "klaxon.io/reason": "shell"}
    rv1 = int(r.json["metadata"]["resourceVersion"])
    assert rv1 > rv0
    assert r.json["metadata"]["uid"] == pod["metadata"]["uid"]
    # the same patch again is a no-op: no new resourceVersion
    r = api("PATCH", path, {"metadata": {"labels": {"klaxon.io/quarantine": "true"}}}, MERGE)
    assert int(r.json["metadata"]["resourceVersion"]) == rv1
    # strategic merge: maps merge the same way, null deletes
    r = api("PATCH", path, {"metadata": {"labels": {"keep": None, "team": "a"}}}, SMP)
    assert r.status == 200
    assert r.json["metadata"]["labels"] == {"klaxon.io/quarantine": "true", "team": "a"}
    # strategic merge of a list with a merge key: ownerReferences by uid
    r = api("PATCH", path, {"metadata": {"finalizers": ["klaxon.io/hold"]}}, SMP)
    r = api("PATCH", path, {"metadata": {"finalizers": ["other/x"]}}, SMP)
    assert r.json["metadata"]["finalizers"] == ["klaxon.io/hold", "other/x"]
    r = api("PATCH", path, {"metadata": {"$deleteFromPrimitiveList/finalizers":
                                         ["klaxon.io/hold"]}}, SMP)
    assert r.json["metadata"]["finalizers"] == ["other/x"]
    # merge patch replaces lists
    r = api("PATCH", path, {"metadata": {"finalizers": ["z"]}}, MERGE)
    assert r.json["metadata"]["finalizers"] == ["z"]
    assert_status(api("PATCH", path, ["not", "a", "map"], SMP), 400, "BadRequest")
    st = assert_status(api("PATCH", "/api/v1/namespaces/shop/pods/nope", {}, MERGE), 404,
                       "NotFound", 'pods "nope" not found')
    assert st["details"] == {"name": "nope", "kind": "pods"}


def test_json_patch(k8s, api):
    k8s.add_pod("shop", "web-1", labels={"app": "web"}, annotations={"seen": "1"})
    path = "/api/v1/namespaces/shop/pods/web-1"
    ops = [{"op": "test", "path": "/metadata/labels/app", "value": "web"},
           {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "w"},
           {"op": "replace", "path": "/metadata/labels/app", "value": "web2"},
           {"op": "add", "path": "/metadata/annotations/why", "value": "alert"}]
    r = api("PATCH", path, ops, JSONPATCH)
    assert r.status == 200, r
    assert r.json["metadata"]["labels"] == {"app": "web2", "app.kubernetes.io/name": "w"}
    r = api("PATCH", path, [{"op": "remove", "path": "/metadata/annotations/why"}], JSONPATCH)
    assert "why" not in r.json["metadata"]["annotations"]
    rv = r.json["metadata"]["resourceVersion"]
    reject = "the server rejected our request due to an error in our request"
    for bad in ([{"op": "test", "path": "/metadata/labels/app", "value": "web"},
                 {"op": "add", "path": "/metadata/labels/x", "value": "y"}],
                [{"op": "remove", "path": "/metadata/labels/missing"}],
                [{"op": "replace", "path": "/metadata/labels/missing", "value": "v"}],
                [{"op": "add", "path": "/no/such/parent", "value": 1}],
                [{"op": "frob", "path": "/metadata"}]):
        st = assert_status(api("PATCH", path, bad, JSONPATCH), 422, "Invalid", reject)
        assert st["details"] == {}
    cur = k8s.get("pods", "shop", "web-1")
    assert cur["metadata"]["resourceVersion"] == rv and "x" not in cur["metadata"]["labels"]
    assert_status(api("PATCH", path, {"op": "add"}, JSONPATCH), 400, "BadRequest")
    # no labels at all: the map is omitted (omitempty), so adding a key fails
    # and the whole map has to be added
    k8s.add_pod("shop", "bare")
    bare = "/api/v1/namespaces/shop/pods/bare"
    assert "labels" not in api("GET", bare).json["metadata"]
    assert api("PATCH", bare, [{"op": "add", "path": "/metadata/labels/x", "value": "y"}],
               JSONPATCH).status == 422
    r = api("PATCH", bare, [{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}],
            JSONPATCH)
    assert r.status == 200 and r.json["metadata"]["labels"] == {"x": "y"}
    # a test op comparing true with 1 fails, as in JSON
    k8s.add_node("node-a", unschedulable=True)
    st = api("PATCH", "/api/v1/nodes/node-a",
             [{"op": "test", "path": "/spec/unschedulable", "value": 1}], JSONPATCH)
    assert st.status == 422


def test_patch_validation(k8s, api):
    k8s.add_pod("shop", "web-1", labels={"app": "web"})
    path = "/api/v1/namespaces/shop/pods/web-1"
    st = assert_status(api("PATCH", path, {"metadata": {"labels": {"bad": "not ok!"}}}, MERGE),
                       422, "Invalid")
    assert st["message"].startswith('Pod "web-1" is invalid: metadata.labels: Invalid value: '
                                    '"not ok!": a valid label must be an empty string or consist')
    assert st["details"]["name"] == "web-1" and st["details"]["kind"] == "Pod"
    assert st["details"]["causes"][0]["field"] == "metadata.labels"
    # a label that is not a string does not even decode
    st = assert_status(api("PATCH", path, {"metadata": {"labels": {"n": 1}}}, MERGE), 422,
                       "Invalid")
    assert st["message"].startswith(' "" is invalid: patch: Invalid value: ')
    # the pod spec is immutable apart from a few fields
    st = assert_status(api("PATCH", path, {"spec": {"nodeName": "elsewhere"}}, MERGE), 422,
                       "Invalid")
    assert st["message"].startswith('Pod "web-1" is invalid: spec: Forbidden: pod updates may '
                                    'not change fields other than `spec.containers[*].image`')
    # status is not writable through the main resource: silently kept
    r = api("PATCH", path, {"status": {"phase": "Failed"}}, MERGE)
    assert r.status == 200 and r.json["status"]["phase"] == "Running"
    # a stale resourceVersion in the patch is an optimistic-lock conflict
    assert_status(api("PATCH", path, {"metadata": {"resourceVersion": "1",
                                                   "labels": {"x": "y"}}}, MERGE),
                  409, "Conflict", 'Operation cannot be fulfilled on pods "web-1": the object '
                                   'has been modified; please apply your changes to the latest '
                                   'version and try again')
    # another uid through a patch: immutable field
    st = assert_status(api("PATCH", path, {"metadata": {"uid": "other"}}, MERGE), 422, "Invalid")
    assert "metadata.uid: Invalid value: \"other\": field is immutable" in st["message"]
    # renaming through a patch
    assert_status(api("PATCH", path, {"metadata": {"name": "web-9"}}, MERGE), 400, "BadRequest",
                  "the name of the object (web-9) does not match the name on the URL (web-1)")


# ---------------------------------------------------------------- nodes

def test_node_cordon_uncordon_taints(k8s, api):
    k8s.add_node("node-a")
    k8s.add_node("node-b")
    path = "/api/v1/nodes/node-a"
    r = api("GET", path)
    assert r.status == 200 and r.json["kind"] == "Node" and "namespace" not in r.json["metadata"]
    r = api("PATCH", path, {"spec": {"unschedulable": True}}, MERGE)
    assert r.status == 200 and r.json["spec"]["unschedulable"] is True
    r = api("GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue")
    assert [n["metadata"]["name"] for n in r.json["items"]] == ["node-a"]
    assert r.json["kind"] == "NodeList"
    r = api("PATCH", path, {"spec": {"unschedulable": None}}, SMP)
    assert r.status == 200 and "unschedulable" not in r.json["spec"]
    taint = {"key": "klaxon.io/compromised", "value": "true", "effect": "NoSchedule"}
    r = api("PATCH", path, {"spec": {"taints": [taint]}}, SMP)
    assert r.json["spec"]["taints"] == [taint]
    t2 = {"key": "klaxon.io/quarantine", "effect": "NoExecute"}
    r = api("PATCH", path, [{"op": "add", "path": "/spec/taints/-", "value": t2}], JSONPATCH)
    assert r.json["spec"]["taints"] == [taint, t2]
    # taints is atomic for strategic merge: the list is replaced
    r = api("PATCH", path, {"spec": {"taints": [t2]}}, SMP)
    assert r.json["spec"]["taints"] == [t2]
    assert_status(api("PATCH", path, {"spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}},
                      MERGE), 422, "Invalid",
                  'Node "node-a" is invalid: spec.taints[0].effect: Unsupported value: '
                  '"Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')
    st = assert_status(api("PATCH", path, {"spec": {"taints": [t2, t2]}}, MERGE), 422,
                       "Invalid")
    assert "taints must be unique by key and effect pair" in st["message"]
    assert_status(api("PATCH", path, {"spec": {"unschedulable": "yes"}}, MERGE), 422, "Invalid")
    assert_status(api("PATCH", "/api/v1/nodes/node-z", {"spec": {}}, MERGE), 404, "NotFound",
                  'nodes "node-z" not found')
    assert k8s.get("nodes", "node-a")["spec"]["taints"] == [t2]


# ---------------------------------------------------------------- RBAC

def test_rbac_messages(k8s, api):
    k8s.add_pod("shop", "web-1")
    k8s.add_node("node-a")
    k8s.deny({"verb": "delete", "resource": "pods", "namespace": "shop"},
             {"verb": "create", "resource": "pods/eviction"},
             {"verb": "patch", "resource": "nodes"},
             {"verb": "create", "resource": "networkpolicies", "group": "networking.k8s.io"},
             {"verb": "list", "resource": "pods", "namespace": None, "name": None})
    st = assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/web-1"), 403, "Forbidden",
                       'pods "web-1" is forbidden: User "system:serviceaccount:klaxon:klaxon" '
                       'cannot delete resource "pods" in API group "" in the namespace "shop"')
    assert st["details"] == {"name": "web-1", "kind": "pods"}
    assert_status(evict(api, "web-1"), 403, "Forbidden",
                  'pods "web-1" is forbidden: User "system:serviceaccount:klaxon:klaxon" cannot '
                  'create resource "pods/eviction" in API group "" in the namespace "shop"')
    assert_status(api("PATCH", "/api/v1/nodes/node-a", {"spec": {"unschedulable": True}}, MERGE),
                  403, "Forbidden",
                  'nodes "node-a" is forbidden: User "system:serviceaccount:klaxon:klaxon" cannot '
                  'patch resource "nodes" in API group "" at the cluster scope')
    st = assert_status(
        api("POST", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies",
            {"metadata": {"name": "x"}, "spec": {"podSelector": {}}}), 403, "Forbidden",
        forbidden_msg("networkpolicies.networking.k8s.io", "create", "networkpolicies",
                      "networking.k8s.io", 'in the namespace "shop"'))
    assert st["details"] == {"group": "networking.k8s.io", "kind": "networkpolicies"}
    assert_status(api("GET", "/api/v1/pods"), 403, "Forbidden",
                  forbidden_msg("pods", "list", "pods", "", "at the cluster scope"))
    # RBAC comes first: a forbidden delete of a missing pod is a 403, not a 404
    assert_status(api("DELETE", "/api/v1/namespaces/shop/pods/nope"), 403, "Forbidden")
    assert k8s.get("pods", "shop", "web-1") is not None
    assert k8s.get("nodes", "node-a")["spec"].get("unschedulable") is None
    # other namespaces are not covered by the namespaced rule
    k8s.add_pod("other", "x")
    assert api("DELETE", "/api/v1/namespaces/other/pods/x?gracePeriodSeconds=0").status == 200

    # allow-list mode, like a Role: everything else is forbidden
    k8s.allow_only({"verb": ["get", "list"], "resource": "pods"},
                   {"verb": "create", "resource": "pods/eviction", "namespace": "shop"})
    assert api("GET", "/api/v1/namespaces/shop/pods/web-1").status == 200
    assert api("GET", "/api/v1/nodes").status == 403
    assert_status(api("GET", "/apis/apps/v1/namespaces/shop/deployments/web"), 403, "Forbidden",
                  forbidden_msg('deployments.apps "web"', "get", "deployments", "apps",
                                'in the namespace "shop"'))
    assert evict(api, "web-1").status == 201
    k8s.allow_all()
    assert api("GET", "/api/v1/nodes").status == 200


# ---------------------------------------------------------------- eviction

def test_eviction_basics(k8s, api):
    k8s.add_pod("shop", "web-1")
    k8s.add_pod("shop", "web-2")
    r = evict(api, "web-1")
    assert r.status == 201, r
    assert r.json == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Success", "code": 201}
    assert k8s.get("pods", "shop", "web-1") is None
    assert_status(evict(api, "web-1"), 404, "NotFound", 'pods "web-1" not found')
    path = "/api/v1/namespaces/shop/pods/web-2/eviction"
    assert_status(api("POST", path, evict_body("web-3")), 400, "BadRequest",
                  "name in URL does not match name in Eviction object")
    assert_status(api("POST", path, evict_body("web-2", ns="other")), 400, "BadRequest",
                  "the namespace of the provided object does not match the namespace sent on "
                  "the request")
    assert_status(api("POST", path, {"metadata": {"name": "web-2"}}), 400, "BadRequest")
    assert_status(api("POST", path, dict(evict_body("web-2"), kind="Pod")), 400, "BadRequest")
    assert_status(api("POST", path, dict(evict_body("web-2"), apiVersion="v1")), 400,
                  "BadRequest")
    st = assert_status(api("POST", path, evict_body(
        "web-2", deleteOptions={"propagationPolicy": "Now"})), 422, "Invalid")
    assert st["message"].startswith('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy')
    uid = k8s.get("pods", "shop", "web-2")["metadata"]["uid"]
    assert_status(api("POST", path, evict_body(
        "web-2", deleteOptions={"preconditions": {"uid": "x"}})), 409, "Conflict",
        f'Operation cannot be fulfilled on Pod "web-2": the UID in the precondition (x) does not '
        f'match the UID in record ({uid}). The object might have been deleted and then '
        f'recreated')
    assert k8s.get("pods", "shop", "web-2") is not None
    # dry run changes nothing
    assert api("POST", path + "?dryRun=All", evict_body("web-2")).status == 201
    assert k8s.get("pods", "shop", "web-2") is not None
    # policy/v1beta1 is still accepted; deleteOptions are honoured
    k8s.kubelet(None)
    r = api("POST", path, dict(evict_body("web-2"), apiVersion="policy/v1beta1",
                               deleteOptions={"gracePeriodSeconds": 7}))
    assert r.status == 201
    assert k8s.get("pods", "shop", "web-2")["metadata"]["deletionGracePeriodSeconds"] == 7
    req = k8s.last_request("POST", path)
    assert req["content_type"] == "application/json" and req["status"] == 201
    assert req["json"]["deleteOptions"] == {"gracePeriodSeconds": 7}


def test_eviction_pdb_min_available(k8s, api):
    for i in range(3):
        k8s.add_pod("shop", f"web-{i}", labels={"app": "web"})
    k8s.add_pod("shop", "other", labels={"app": "other"})
    k8s.add_pdb("shop", "web-pdb", {"app": "web"}, min_available=2)
    pdb = api("GET", "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/web-pdb").json
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["apiVersion"] == "policy/v1"
    assert {k: pdb["status"][k] for k in ("currentHealthy", "desiredHealthy", "expectedPods",
                                          "disruptionsAllowed")} == \
        {"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 1}
    assert evict(api, "web-0").status == 201
    r = evict(api, "web-1")
    st = assert_status(r, 429, "TooManyRequests",
                       "Cannot evict pod as it would violate the pod's disruption budget.")
    assert st["details"] == {"causes": [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}
    assert "Retry-After" not in r.headers
    assert k8s.get("pods", "shop", "web-1") is not None
    # pods the budget does not select are not held back
    assert evict(api, "other").status == 201
    # a pod that is not running (Pending / Succeeded / Failed) ignores the budget
    k8s.add_pod("shop", "web-done", labels={"app": "web"}, phase="Succeeded")
    assert evict(api, "web-done").status == 201
    # an unready pod may go when the healthy ones are enough
    k8s.add_pod("shop", "web-unready", labels={"app": "web"}, ready=False)
    assert evict(api, "web-unready").status == 201
    # two budgets for one pod: the eviction subresource refuses
    k8s.add_pdb("shop", "web-pdb-2", {"app": "web"}, max_unavailable=1)
    assert_status(evict(api, "web-1"), 500, None,
                  "This pod has more than one PodDisruptionBudget, which the eviction "
                  "subresource does not support.")


@pytest.mark.parametrize("replicas,budget,evictable,desired", [
    (4, {"max_unavailable": "25%"}, 1, 3),   # ceil(1.0) = 1 unavailable
    (4, {"max_unavailable": "30%"}, 2, 2),   # ceil(1.2) = 2 unavailable
    (3, {"min_available": "50%"}, 1, 2),     # ceil(1.5) = 2 available
    (5, {"min_available": "100%"}, 0, 5),
    (4, {"max_unavailable": 0}, 0, 4),
    (2, {"max_unavailable": 1}, 1, 1),
])
def test_eviction_pdb_percentages(k8s, api, replicas, budget, evictable, desired):
    _, _, pods = k8s.add_deployment_pods("shop", "web", replicas)
    k8s.add_pdb("shop", "web-pdb", {"app": "web"}, **budget)
    names = [p["metadata"]["name"] for p in pods]
    for n in names[:evictable]:
        assert evict(api, n).status == 201, n
    r = evict(api, names[evictable])
    st = assert_status(r, 429, "TooManyRequests")
    left = replicas - evictable
    assert st["details"]["causes"][0]["message"] == \
        f"The disruption budget web-pdb needs {desired} healthy pods and has {left} currently"
    pdb = k8s.get("poddisruptionbudgets", "shop", "web-pdb")
    assert pdb["status"]["expectedPods"] == replicas  # from the Deployment's spec.replicas
    assert pdb["status"]["disruptionsAllowed"] == 0


def test_eviction_pdb_unready_and_unsynced(k8s, api):
    # 3 replicas, 1 not ready, minAvailable 3: nothing may go, not even the
    # unready pod (the budget is not met)
    _, _, pods = k8s.add_deployment_pods("shop", "web", 3, ready=2)
    k8s.add_pdb("shop", "web-pdb", {"app": "web"}, min_available=3)
    unready = pods[2]["metadata"]["name"]
    st = assert_status(evict(api, unready), 429, "TooManyRequests")
    assert "needs 3 healthy pods and has 2 currently" in st["details"]["causes"][0]["message"]
    # unhealthyPodEvictionPolicy AlwaysAllow lets it go
    k8s.add_pdb("shop", "web-pdb", {"app": "web"}, min_available=3,
                unhealthy_pod_eviction_policy="AlwaysAllow")
    assert evict(api, unready).status == 201
    # a budget over DaemonSet pods with a percentage cannot be computed: the
    # controller never syncs it and evictions get a retryable 429
    ds = k8s.add_daemonset("kube-system", "agent", desired=2)
    for i in range(2):
        k8s.add_pod("kube-system", f"agent-{i}", labels={"app": "agent"}, owner=ds)
    k8s.add_pdb("kube-system", "agent-pdb", {"app": "agent"}, max_unavailable="50%")
    r = evict(api, "agent-0", ns="kube-system")
    st = assert_status(r, 429, "TooManyRequests")
    assert st["details"]["retryAfterSeconds"] == 10 and r.headers["Retry-After"] == "10"
    assert st["details"]["causes"] == [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget agent-pdb is still being processed by the server."}]


# ---------------------------------------------------------------- apps/v1 owners

def test_apps_objects_and_owner_chain(k8s, api):
    dep, rs, pods = k8s.add_deployment_pods("shop", "web", 3, ready=2)
    ss = k8s.add_statefulset("shop", "db", replicas=2, ready=1)
    ds = k8s.add_daemonset("shop", "agent", desired=3, ready=3)
    pod = api("GET", f"/api/v1/namespaces/shop/pods/{pods[0]['metadata']['name']}").json
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicaSet" and ref["controller"] is True
    assert ref["apiVersion"] == "apps/v1"
    r = api("GET", f"/apis/apps/v1/namespaces/shop/replicasets/{ref['name']}")
    assert r.status == 200 and r.json["kind"] == "ReplicaSet"
    assert r.json["metadata"]["uid"] == ref["uid"]
    dref = r.json["metadata"]["ownerReferences"][0]
    assert dref["kind"] == "Deployment" and dref["uid"] == dep["metadata"]["uid"]
    d = api("GET", "/apis/apps/v1/namespaces/shop/deployments/web").json
    assert d["apiVersion"] == "apps/v1" and d["spec"]["replicas"] == 3
    assert d["status"]["readyReplicas"] == 2 and d["status"]["availableReplicas"] == 2
    s = api("GET", "/apis/apps/v1/namespaces/shop/statefulsets/db").json
    assert s["spec"]["replicas"] == 2 and s["status"]["readyReplicas"] == 1
    a = api("GET", "/apis/apps/v1/namespaces/shop/daemonsets/agent").json
    assert a["status"]["desiredNumberScheduled"] == 3 and "replicas" not in a["spec"]
    r = api("GET", "/apis/apps/v1/namespaces/shop/deployments")
    assert r.json["kind"] == "DeploymentList" and len(r.json["items"]) == 1
    st = assert_status(api("GET", "/apis/apps/v1/namespaces/shop/deployments/nope"), 404,
                       "NotFound", 'deployments.apps "nope" not found')
    assert st["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    assert ss["metadata"]["uid"] and ds["metadata"]["uid"] and rs["metadata"]["uid"]


# ---------------------------------------------------------------- network policies

def test_networkpolicies(k8s, api):
    base = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "klaxon-isolate-web-1", "labels": {"app.kubernetes.io/managed-by":
                                                                  "klaxon"}},
          "spec": {"podSelector": {"matchLabels": {"klaxon.io/quarantine": "true"}},
                   "policyTypes": ["Ingress", "Egress"]}}
    r = api("POST", base, np)
    assert r.status == 201, r
    meta = r.json["metadata"]
    assert meta["namespace"] == "shop" and meta["uid"] and meta["generation"] == 1
    assert r.json["kind"] == "NetworkPolicy"
    st = assert_status(api("POST", base, np), 409, "AlreadyExists",
                       'networkpolicies.networking.k8s.io "klaxon-isolate-web-1" already exists')
    assert st["details"] == {"name": "klaxon-isolate-web-1", "group": "networking.k8s.io",
                             "kind": "networkpolicies"}
    r = api("GET", base + "/klaxon-isolate-web-1")
    assert r.status == 200 and r.json["spec"]["policyTypes"] == ["Ingress", "Egress"]
    r = api("GET", "/apis/networking.k8s.io/v1/networkpolicies?labelSelector="
                   "app.kubernetes.io%2Fmanaged-by%3Dklaxon")
    assert r.json["kind"] == "NetworkPolicyList" and len(r.json["items"]) == 1
    r = api("DELETE", base + "/klaxon-isolate-web-1")
    assert r.status == 200
    assert r.json == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "klaxon-isolate-web-1", "group": "networking.k8s.io",
                                  "kind": "networkpolicies", "uid": meta["uid"]}}
    assert_status(api("DELETE", base + "/klaxon-isolate-web-1"), 404, "NotFound",
                  'networkpolicies.networking.k8s.io "klaxon-isolate-web-1" not found')

    bad = json.loads(json.dumps(np))
    bad["spec"]["policyTypes"] = ["Sideways"]
    assert_status(api("POST", base, bad), 422, "Invalid",
                  'NetworkPolicy.networking.k8s.io "klaxon-isolate-web-1" is invalid: '
                  'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: '
                  '"Ingress", "Egress"')
    assert_status(api("POST", base, dict(np, apiVersion="networking.k8s.io/v1beta1")), 400,
                  "BadRequest", "the API version in the data (networking.k8s.io/v1beta1) does "
                                "not match the expected API version (networking.k8s.io/v1)")
    other = json.loads(json.dumps(np))
    other["metadata"]["namespace"] = "other"
    assert_status(api("POST", base, other), 400, "BadRequest",
                  "the namespace of the provided object does not match the namespace sent on "
                  "the request")
    upper = json.loads(json.dumps(np))
    upper["metadata"]["name"] = "Isolate_Web"
    st = assert_status(api("POST", base, upper), 422, "Invalid")
    assert 'metadata.name: Invalid value: "Isolate_Web": a lowercase RFC 1123 subdomain' in \
        st["message"]
    assert k8s.objects("networkpolicies") == []
    # dry run creates nothing
    assert api("POST", base + "?dryRun=All", np).status == 201
    assert k8s.objects("networkpolicies") == []


# ---------------------------------------------------------------- events

def test_events(k8s, api):
    pod = k8s.add_pod("shop", "web-1")
    base = "/api/v1/namespaces/shop/events"
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": {"generateName": "web-1."},
          "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-1",
                             "namespace": "shop", "uid": pod["metadata"]["uid"]},
          "reason": "KlaxonPodDeleted", "message": "deleted by klaxon: Terminal shell",
          "type": "Warning", "source": {"component": "klaxon-hub"}}
    r = api("POST", base, ev)
    assert r.status == 201, r
    assert r.json["metadata"]["name"].startswith("web-1.") and r.json["count"] == 1
    assert r.json["firstTimestamp"]
    r = api("GET", base + "?fieldSelector=involvedObject.name%3Dweb-1,type%3DWarning")
    assert r.json["kind"] == "EventList" and len(r.json["items"]) == 1
    assert k8s.events("shop")[0]["reason"] == "KlaxonPodDeleted"

    def bad(change, message=None):
        e = json.loads(json.dumps(ev))
        change(e)
        st = assert_status(api("POST", base, e), 422, "Invalid", message)
        return st

    st = bad(lambda e: e.update(type="Info"))
    assert st["message"].endswith('type: Unsupported value: "Info": supported values: '
                                  '"Normal", "Warning"')
    assert st["details"]["kind"] == "Event"
    bad(lambda e: e.pop("reason"))
    bad(lambda e: e.update(message=""))
    bad(lambda e: e["involvedObject"].pop("name"))
    st = bad(lambda e: e["involvedObject"].update(namespace="other"))
    assert 'involvedObject.namespace: Invalid value: "other": does not match event.namespace' \
        in st["message"]
    # an event about a node (cluster-scoped) must live in "default"
    node_ev = json.loads(json.dumps(ev))
    node_ev["involvedObject"] = {"kind": "Node", "name": "node-a", "apiVersion": "v1"}
    st = assert_status(api("POST", base, node_ev), 422, "Invalid")
    assert 'involvedObject.namespace: Invalid value: "": does not match event.namespace' in \
        st["message"]
    assert api("POST", "/api/v1/namespaces/default/events", node_ev).status == 201
    assert len(k8s.events()) == 2
    assert_status(api("POST", base, ev, MERGE), 415, "UnsupportedMediaType")


# ---------------------------------------------------------------- faults, log

def test_faults(k8s, api):
    k8s.add_pod("shop", "web-1")
    path = "/api/v1/namespaces/shop/pods/web-1"
    k8s.fault(path, 503, count=2, message="etcd is sad")
    assert_status(api("GET", path), 503, "ServiceUnavailable", "etcd is sad")
    assert api("GET", path).status == 503
    assert api("GET", path).status == 200
    k8s.fault("/api/v1/", 429, retry_after=2, message="slow down")
    r = api("GET", path)
    st = assert_status(r, 429, "TooManyRequests", "slow down")
    assert r.headers["Retry-After"] == "2" and st["details"]["retryAfterSeconds"] == 2
    k8s.fault("/api/v1/", 429, message="throttled")
    r = api("GET", path)
    assert r.status == 429 and "Retry-After" not in r.headers and "details" not in r.json
    k8s.fault(path, 500, method="DELETE")
    assert api("GET", path).status == 200  # other methods pass
    assert_status(api("DELETE", path), 500, "InternalError")
    assert k8s.get("pods", "shop", "web-1") is not None  # failed before taking effect

    # the answer is lost after the delete happened
    k8s.fault(path, 500, method="DELETE", when="after")
    assert api("DELETE", path + "?gracePeriodSeconds=0").status == 500
    assert k8s.get("pods", "shop", "web-1") is None
    log = k8s.last_request("DELETE", path)
    assert log["fault"] and log["status"] == 500 and log["real_status"] == 200

    # slow
    k8s.add_pod("shop", "web-2")
    k8s.slow("/api/v1/namespaces/shop/pods/web-2", 0.3, count=1)
    t0 = time.monotonic()
    assert api("GET", "/api/v1/namespaces/shop/pods/web-2").status == 200
    assert time.monotonic() - t0 >= 0.3
    # a connection closed without an answer
    k8s.drop("/api/v1/namespaces/shop/pods/web-2")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        api("GET", "/api/v1/namespaces/shop/pods/web-2")
    assert api("GET", "/api/v1/namespaces/shop/pods/web-2").status == 200


def test_down_refuses_connections(k8s, api):
    k8s.down(mode="refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", k8s.port), timeout=1).close()
    k8s.add_pod("shop", "web-1")  # the control port stays up
    k8s.up()
    assert api("GET", "/api/v1/namespaces/shop/pods/web-1").status == 200
    # timed: back on its own
    k8s.down(seconds=0.3, mode="refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", k8s.port), timeout=1).close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", k8s.port), timeout=1).close()
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    assert api("GET", "/api/v1/namespaces/shop/pods/web-1").status == 200
    k8s.down(mode="503")
    assert_status(api("GET", "/api/v1/pods"), 503, "ServiceUnavailable")
    k8s.up()


def test_request_log_and_watch(k8s, api):
    k8s.add_node("node-a")
    start = api("GET", "/api/v1/nodes").json["metadata"]["resourceVersion"]
    k8s.clear_requests()
    body = {"spec": {"unschedulable": True}}
    assert api("PATCH", "/api/v1/nodes/node-a?fieldManager=klaxon", body, MERGE).status == 200
    (req,) = k8s.requests()
    assert req["method"] == "PATCH" and req["path"] == "/api/v1/nodes/node-a"
    assert req["query"] == "fieldManager=klaxon" and req["params"] == {"fieldManager": "klaxon"}
    assert req["content_type"] == MERGE and req["json"] == body
    assert json.loads(req["body"]) == body and req["status"] == 200 and req["user"] == USER
    # a watch from before the patch replays it as MODIFIED
    r = api("GET", f"/api/v1/nodes?watch=1&resourceVersion={start}&timeoutSeconds=0.3")
    events = [json.loads(line) for line in r.data.splitlines() if line.strip()]
    assert [e["type"] for e in events] == ["MODIFIED"]
    assert events[0]["object"]["spec"]["unschedulable"] is True
