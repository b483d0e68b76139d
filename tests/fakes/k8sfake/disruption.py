# SPDX-License-Identifier: Apache-2.0
"""PodDisruptionBudget status the way pkg/controller/disruption computes it,
and which budgets an eviction consults (pkg/registry/core/pod/storage/
eviction.go). The fake recomputes the status whenever it is read, as if the
controller had just synced; a test can make a budget look unsynced by
storing status.observedGeneration below metadata.generation."""

import math
import time

from .selectors import selector_empty, selector_match


def pod_ready(pod):
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_healthy(pod):
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and pod_ready(pod)


def controller_ref(obj):
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def scaled_value(v, total):
    """intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true)."""
    if isinstance(v, int):
        return v
    return int(math.ceil(int(v[:-1]) * total / 100.0))


def _replicas(obj):
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def expected_scale(lookup, pods):
    """Sum of the desired replicas of the pods' controllers (Deployment via
    its ReplicaSet, ReplicaSet, StatefulSet); (count, error). Unmanaged pods
    are skipped; a controller without a scale (DaemonSet, Job, a missing
    owner) is an error, as in the controller's finders."""
    scales = {}
    for pod in pods:
        ref = controller_ref(pod)
        if ref is None:
            continue
        if ref.get("uid") in scales:
            continue
        ns = pod["metadata"].get("namespace")
        kind, name, uid = ref.get("kind"), ref.get("name"), ref.get("uid")
        found = None
        if kind == "ReplicaSet" and ref.get("apiVersion", "apps/v1").startswith("apps/"):
            rs = lookup("replicasets", ns, name)
            if rs is not None and rs["metadata"].get("uid") == uid:
                dref = controller_ref(rs)
                dep = lookup("deployments", ns, dref["name"]) \
                    if dref and dref.get("kind") == "Deployment" else None
                if dep is not None and dep["metadata"].get("uid") == dref.get("uid"):
                    found = (dep["metadata"]["uid"], _replicas(dep))
                else:
                    found = (uid, _replicas(rs))
        elif kind == "StatefulSet" and ref.get("apiVersion", "apps/v1").startswith("apps/"):
            ss = lookup("statefulsets", ns, name)
            if ss is not None and ss["metadata"].get("uid") == uid:
                found = (uid, _replicas(ss))
        if found is None:
            return 0, f"found no controllers for pod \"{pod['metadata']['name']}\""
        scales[found[0]] = found[1]
    return sum(scales.values()), None


def pods_for_pdb(pdb, pods_in_ns):
    """The disruption controller's view: a nil selector selects nothing, an
    empty one (policy/v1) everything in the namespace."""
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return []
    return [p for p in pods_in_ns
            if selector_match(sel, (p.get("metadata") or {}).get("labels"))]


def compute_status(pdb, pods_in_ns, lookup):
    spec = pdb.get("spec") or {}
    gen = (pdb.get("metadata") or {}).get("generation", 1)
    pods = pods_for_pdb(pdb, pods_in_ns)
    expected, desired, err = 0, 0, None
    if spec.get("maxUnavailable") is not None:
        expected, err = expected_scale(lookup, pods)
        if err is None:
            desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        if isinstance(spec["minAvailable"], int):
            desired, expected = spec["minAvailable"], len(pods)
        else:
            expected, err = expected_scale(lookup, pods)
            if err is None:
                desired = scaled_value(spec["minAvailable"], expected)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if err is not None:
        # failSafe(): no disruptions, and the status is never marked observed.
        return {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                "expectedPods": 0,
                "conditions": [{"type": "DisruptionAllowed", "status": "False",
                                "reason": "SyncFailed", "message": err,
                                "lastTransitionTime": now, "observedGeneration": gen}]}
    healthy = sum(1 for p in pods if pod_healthy(p))
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    return {"observedGeneration": gen, "disruptionsAllowed": allowed, "currentHealthy": healthy,
            "desiredHealthy": desired, "expectedPods": expected,
            "conditions": [{"type": "DisruptionAllowed",
                            "status": "True" if allowed > 0 else "False",
                            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                            "message": "", "lastTransitionTime": now,
                            "observedGeneration": gen}]}


def pdbs_for_pod(pdbs, pod):
    """eviction.go getPodDisruptionBudgets: a nil or empty selector matches
    nothing there."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    ns = pod["metadata"].get("namespace")
    return [b for b in pdbs
            if b["metadata"].get("namespace") == ns
            and not selector_empty((b.get("spec") or {}).get("selector"))
            and selector_match(b["spec"]["selector"], labels)]
