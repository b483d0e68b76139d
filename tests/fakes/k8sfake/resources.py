# SPDX-License-Identifier: Apache-2.0
"""The resources the fake serves: where they live, which field selectors
they accept, and the validation the apiserver runs on them (the parts a
client can trip over). Checks marked "fake-only" are stricter than the real
server; everything else mirrors pkg/apis/*/validation."""

import json
import re

from .selectors import validate_label_selector
from .status import (duplicate, forbidden_field, invalid_value, required, unsupported)


class Resource:
    """One API resource: where it lives and what the apiserver does with it."""

    def __init__(self, plural, kind, group="", version="v1", namespaced=True, field_labels=(),
                 status=True, generation=False, storage=None, subresources=()):
        self.plural = plural
        self.kind = kind
        self.group = group
        self.version = version
        self.namespaced = namespaced
        self.field_labels = set(field_labels) | {"metadata.name", "metadata.namespace"}
        self.status = status              # status is not writable through the main resource
        self.generation = generation      # metadata.generation counts spec changes
        self.storage = storage or plural  # etcd key prefix (/registry/<storage>/...)
        self.subresources = set(subresources)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self):
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def key_path(self, ns, name):
        return f"/registry/{self.storage}/{ns}/{name}" if self.namespaced \
            else f"/registry/{self.storage}/{name}"

    def __repr__(self):
        return f"<Resource {self.plural}.{self.group or 'core'}/{self.version}>"


RESOURCES = {
    "pods": Resource("pods", "Pod", field_labels=(
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
        "status.nominatedNodeName"), subresources=("eviction",)),
    "nodes": Resource("nodes", "Node", namespaced=False, field_labels=("spec.unschedulable",),
                      storage="minions"),
    "events": Resource("events", "Event", status=False, field_labels=(
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")),
    "deployments": Resource("deployments", "Deployment", "apps", generation=True),
    "replicasets": Resource("replicasets", "ReplicaSet", "apps", generation=True,
                            field_labels=("status.replicas",)),
    "statefulsets": Resource("statefulsets", "StatefulSet", "apps", generation=True),
    "daemonsets": Resource("daemonsets", "DaemonSet", "apps", generation=True),
    "poddisruptionbudgets": Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy",
                                     generation=True),
    "networkpolicies": Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io",
                                status=False, generation=True),
}

# (prefix, plural) -> Resource
BY_PATH = {(r.prefix, r.plural): r for r in RESOURCES.values()}
PREFIXES = {r.prefix for r in RESOURCES.values()}


# --- names and labels (k8s.io/apimachinery/pkg/util/validation) ----------------

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_QNAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
             "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def subdomain_errors(value):
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN.match(value):
        out.append(MSG_SUBDOMAIN)
    return out


def qualified_name_errors(value):
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
                "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                "prefix and '/' (e.g. 'example.com/MyName')"]
    out = []
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            out.append("prefix part must be non-empty")
        else:
            out += ["prefix part " + e for e in subdomain_errors(parts[0])]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    elif not QUALIFIED_NAME.match(name):
        out.append(MSG_QNAME)
    return out


def label_value_errors(value):
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not LABEL_VALUE.match(value):
        out.append(MSG_LABEL_VALUE)
    return out


# --- decoding: what would not even decode into the Go type ----------------------

def _is_str_map(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def decode_error(res, obj):
    """A message like the JSON decoder's when obj does not fit the Go type
    (labels that are not strings, a spec that is not an object, ...), or None."""
    if not isinstance(obj, dict):
        return f"json: cannot unmarshal {type(obj).__name__} into Go value of type " \
               f"{res.group or 'core'}.{res.kind}"
    meta = obj.get("metadata", {})
    if not isinstance(meta, dict):
        return "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta"
    for f in ("name", "namespace", "uid", "resourceVersion", "generateName"):
        if f in meta and meta[f] is not None and not isinstance(meta[f], str):
            return f"json: cannot unmarshal {type(meta[f]).__name__} into Go struct field " \
                   f"ObjectMeta.metadata.{f} of type string"
    for f in ("labels", "annotations"):
        if meta.get(f) is not None and not _is_str_map(meta[f]):
            return f"json: cannot unmarshal into Go struct field ObjectMeta.metadata.{f} of " \
                   "type string"
    for f in ("spec", "status"):
        if obj.get(f) is not None and not isinstance(obj[f], dict):
            return f"json: cannot unmarshal {type(obj[f]).__name__} into Go struct field " \
                   f"{res.kind}.{f} of type {res.group or 'core'}.{res.kind}{f.title()}"
    if res.plural == "nodes":
        spec = obj.get("spec") or {}
        if spec.get("unschedulable") is not None and not isinstance(spec["unschedulable"], bool):
            return "json: cannot unmarshal into Go struct field NodeSpec.spec.unschedulable of " \
                   "type bool"
        if spec.get("taints") is not None and (
                not isinstance(spec["taints"], list) or
                not all(isinstance(t, dict) for t in spec["taints"])):
            return "json: cannot unmarshal into Go struct field NodeSpec.spec.taints of type " \
                   "[]v1.Taint"
    return None


# --- validation ---------------------------------------------------------------------

def validate_meta(res, obj, old=None):
    errs = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    elif old is None:
        for msg in subdomain_errors(name):
            errs.append(invalid_value("metadata.name", name, msg))
    for k, v in (meta.get("labels") or {}).items():
        for msg in qualified_name_errors(k):
            errs.append(invalid_value("metadata.labels", k, msg))
        for msg in label_value_errors(v):
            errs.append(invalid_value("metadata.labels", v, msg))
    for k in (meta.get("annotations") or {}):
        for msg in qualified_name_errors(k):
            errs.append(invalid_value("metadata.annotations", k, msg))
    if old is not None:
        om = old.get("metadata") or {}
        if meta.get("uid") and meta.get("uid") != om.get("uid"):
            errs.append(invalid_value("metadata.uid", meta.get("uid"), "field is immutable"))
    return errs


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_node(obj, old):
    errs = []
    seen = set()
    for i, t in enumerate((obj.get("spec") or {}).get("taints") or []):
        p = f"spec.taints[{i}]"
        key = t.get("key") or ""
        for msg in qualified_name_errors(key):
            errs.append(invalid_value(f"{p}.key", key, msg))
        val = t.get("value") or ""
        if not isinstance(val, str):
            errs.append(invalid_value(f"{p}.value", val, "must be a string"))
        else:
            for msg in label_value_errors(val):
                errs.append(invalid_value(f"{p}.value", val, msg))
        eff = t.get("effect")
        if not eff:
            errs.append(required(f"{p}.effect"))
        elif eff not in TAINT_EFFECTS:
            errs.append(unsupported(f"{p}.effect", eff, TAINT_EFFECTS))
        if (key, eff) in seen:
            errs.append(duplicate(p, t, "taints must be unique by key and effect pair"))
        seen.add((key, eff))
    return errs


# Fields of a pod spec an update may change (ValidatePodUpdate); the rest is
# immutable once created.
POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                  "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                  "`spec.tolerations` (only additions to existing tolerations),"
                  "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                  "previously negative)")


def _strip_images(spec):
    spec = json.loads(json.dumps(spec or {}))
    for f in ("containers", "initContainers"):
        for c in spec.get(f) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    for f in POD_MUTABLE_SPEC:
        spec.pop(f, None)
    return spec


def validate_pod(obj, old):
    errs = []
    spec = obj.get("spec") or {}
    if old is None:
        if not spec.get("containers"):
            errs.append(required("spec.containers"))
    elif _strip_images(spec) != _strip_images(old.get("spec")):
        errs.append(forbidden_field("spec", POD_UPDATE_MSG))
    return errs


EVENT_TYPES = ("Normal", "Warning")


def validate_event(obj, old):
    """legacyValidateEvent for core/v1, plus fake-only checks on reason,
    message, type and involvedObject kind/name (the real core/v1 API takes
    events without them; nothing shows them usefully)."""
    errs = []
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    io = obj.get("involvedObject")
    if not isinstance(io, dict):
        io = {}
    io_ns = io.get("namespace") or ""
    if not obj.get("eventTime"):
        if not io_ns:
            if ns not in ("", "default"):
                errs.append(invalid_value("involvedObject.namespace", io_ns,
                                          "does not match event.namespace"))
        elif ns != io_ns:
            errs.append(invalid_value("involvedObject.namespace", io_ns,
                                      "does not match event.namespace"))
    else:
        if not io_ns and ns not in ("default", "kube-system"):
            errs.append(invalid_value("involvedObject.namespace", io_ns,
                                      "does not match event.namespace"))
        if not obj.get("reportingComponent"):
            errs.append(required("source"))
        if not obj.get("reportingInstance"):
            errs.append(required("reportingInstance"))
        if not obj.get("action"):
            errs.append(required("action"))
        if len(obj.get("message") or "") > 1024:
            errs.append(invalid_value("message", "", "can have at most 1024 characters"))
    # fake-only from here
    if not io.get("kind"):
        errs.append(required("involvedObject.kind"))
    if not io.get("name"):
        errs.append(required("involvedObject.name"))
    if not obj.get("reason"):
        errs.append(required("reason"))
    elif len(obj["reason"]) > 128:
        errs.append(invalid_value("reason", "", "can have at most 128 characters"))
    if not obj.get("message"):
        errs.append(required("message"))
    if obj.get("type") not in EVENT_TYPES:
        if not obj.get("type"):
            errs.append(required("type"))
        else:
            errs.append(unsupported("type", obj.get("type"), EVENT_TYPES))
    return errs


POLICY_TYPES = ("Ingress", "Egress")


def validate_networkpolicy(obj, old):
    errs = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs += validate_label_selector(spec.get("podSelector") or {}, "spec.podSelector")
    for i, t in enumerate(spec.get("policyTypes") or []):
        if t not in POLICY_TYPES:
            errs.append(unsupported(f"spec.policyTypes[{i}]", t, POLICY_TYPES))
    for d, peers in (("ingress", "from"), ("egress", "to")):
        rules = spec.get(d)
        if rules is None:
            continue
        if not isinstance(rules, list):
            errs.append(invalid_value(f"spec.{d}", rules, "must be a list"))
            continue
        for i, r in enumerate(rules):
            for j, peer in enumerate((r or {}).get(peers) or []):
                p = f"spec.{d}[{i}].{peers}[{j}]"
                n = sum(1 for k in ("podSelector", "namespaceSelector", "ipBlock") if k in peer)
                if n == 0:
                    errs.append(required(p, "must specify a peer"))
                if "ipBlock" in peer and n > 1:
                    errs.append(forbidden_field(p, "may not specify both ipBlock and another "
                                                   "peer"))
                for k in ("podSelector", "namespaceSelector"):
                    if k in peer:
                        errs += validate_label_selector(peer[k], f"{p}.{k}")
    return errs


PERCENT = re.compile(r"^[0-9]+%$")


def _int_or_percent(errs, field, v):
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        errs.append(invalid_value(field, v, "must be an integer or percentage"))
    elif isinstance(v, int):
        if v < 0:
            errs.append(invalid_value(field, v, "must be greater than or equal to 0"))
    elif not PERCENT.match(v):
        errs.append(invalid_value(field, v, "a valid percent string must be a numeric string "
                                            "followed by an ending '%' (e.g. '1%',  or '93%', "
                                            "regex used for validation is '[0-9]+%')"))
    elif int(v[:-1]) > 100:
        errs.append(invalid_value(field, v, "must not be greater than 100%"))


def validate_pdb(obj, old):
    errs = []
    spec = obj.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        errs.append(invalid_value("spec", spec, "minAvailable and maxUnavailable cannot be "
                                                "both set"))
    for f in ("minAvailable", "maxUnavailable"):
        if f in spec:
            _int_or_percent(errs, f"spec.{f}", spec[f])
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    pol = spec.get("unhealthyPodEvictionPolicy")
    if pol is not None and pol not in ("IfHealthyBudget", "AlwaysAllow"):
        errs.append(unsupported("spec.unhealthyPodEvictionPolicy", pol,
                                ("IfHealthyBudget", "AlwaysAllow")))
    return errs


VALIDATORS = {
    "pods": validate_pod,
    "nodes": validate_node,
    "events": validate_event,
    "networkpolicies": validate_networkpolicy,
    "poddisruptionbudgets": validate_pdb,
}


def validate(res, obj, old=None):
    errs = validate_meta(res, obj, old)
    fn = VALIDATORS.get(res.plural)
    if fn:
        errs += fn(obj, old)
    return errs
