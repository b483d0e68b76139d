# SPDX-License-Identifier: Apache-2.0
"""The API verbs. Each handler gets a Req (the parsed request) and answers
through req.h.send_json(); failures are raised as ApiError. The order of
checks follows the apiserver's handlers: content type, decoding, object
lookup, preconditions, validation, then the write."""

import base64
import json
import queue
import ssl
import time
import uuid

from . import disruption
from .patch import PatchError, json_equal, json_patch, merge_patch, strategic_merge_patch
from .resources import RESOURCES, decode_error, validate
from .selectors import Filter, parse_field_selector, parse_label_selector
from .state import DROP, END, Watcher, clone, now_rfc3339, translate
from .status import (ApiError, already_exists, bad_request, conflict, internal_error, invalid,
                     invalid_value, not_found, required, status_body, success_body,
                     too_many_requests, unsupported, unsupported_media_type)

DEFAULT_WATCH_TIMEOUT = 1800.0  # s, when the client sends no timeoutSeconds

JSON = "application/json"
BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
OPTIMISTIC_LOCK = ("the object has been modified; please apply your changes to the latest "
                   "version and try again")
PROPAGATION = ("Foreground", "Background", "Orphan")


class Req:
    def __init__(self, h, api, method, path, query, raw_query, body, user):
        self.h, self.api, self.method, self.path = h, api, method, path
        self.query, self.raw_query, self.body, self.user = query, raw_query, body, user
        self.res = self.ns = self.name = self.sub = self.scope = None

    @property
    def content_type(self):
        return self.h.headers.get("Content-Type") or ""

    def media_type(self):
        """The media type the apiserver compares: up to the first ';'."""
        ct = self.content_type
        i = ct.find(";")
        return ct[:i] if i > 0 else ct


# --- request bodies ---------------------------------------------------------------

def require_json_body(req):
    """NegotiateInputSerializer: a body must come as one of the serializer's
    media types (this fake decodes JSON only)."""
    mt = req.media_type().strip().lower()
    if mt != JSON:
        raise unsupported_media_type(BODY_TYPES)


def parse_json(req):
    try:
        return json.loads(req.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}")


def decode_object(req, res, want_kind=None):
    """The body as res's type: 400 for what would not decode, a foreign
    apiVersion or kind."""
    require_json_body(req)
    obj = parse_json(req)
    if not isinstance(obj, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {res.kind}): "
                          f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                          f"{type(obj).__name__} into Go value of type struct {{ APIVersion "
                          f"string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                          f"\"json:\\\"kind,omitempty\\\"\" }}")
    kind = obj.get("kind")
    av = obj.get("apiVersion")
    if kind and kind != (want_kind or res.kind):
        ver = av.split("/")[-1] if isinstance(av, str) else ""
        raise bad_request(f"{kind} in version \"{ver}\" cannot be handled as a {res.kind}: no "
                          f"kind \"{kind}\" is registered for version \"{av}\"")
    if av and av != res.api_version:
        raise bad_request(f"the API version in the data ({av}) does not match the expected API "
                          f"version ({res.api_version})")
    err = decode_error(res, obj)
    if err:
        if kind:
            raise bad_request(f"{kind} in version \"{res.version}\" cannot be handled as a "
                              f"{res.kind}: {err}")
        raise bad_request(f"the object provided is unrecognized (must be of type {res.kind}): "
                          f"{err}")
    obj.setdefault("metadata", {})
    return obj


def check_dry_run(req, kind_for_error):
    """?dryRun=: only "All" exists (422 otherwise)."""
    v = req.query.get("dryRun")
    if v is None:
        return False
    if v != "All":
        raise invalid("meta.k8s.io", kind_for_error, "", [unsupported("dryRun", v, ("All",))])
    return True


def check_namespace(req, obj):
    meta = obj["metadata"]
    if req.res.namespaced:
        if meta.get("namespace") and meta["namespace"] != req.ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        meta["namespace"] = req.ns
    else:
        meta.pop("namespace", None)


# --- get / list / watch -------------------------------------------------------------

def verb_get(req):
    api, res = req.api, req.res
    with api.lock:
        obj = api.lookup(res.plural, req.ns, req.name)
        obj = api.decorate_locked(res, obj) if obj else None
    if obj is None:
        raise not_found(res.group, res.plural, req.name)
    req.h.send_json(200, obj)


def make_filter(res, ns, query):
    fields = parse_field_selector(res, query.get("fieldSelector", ""))
    labels = parse_label_selector(query.get("labelSelector", ""))
    return Filter(res, ns, fields, labels)


def _sorted_items(objs):
    return sorted(objs.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))


def verb_list(req):
    api, res, ns, query = req.api, req.res, req.ns, req.query
    if query.get("watch") in ("1", "true", "True"):
        verb_watch(req)
        return
    flt = make_filter(res, ns, query)
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise bad_request(f"strconv.ParseInt: parsing \"{query.get('limit')}\": invalid syntax")
    cont = query.get("continue") or ""
    with api.lock:
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                rv, start = int(tok["rv"]), tuple(tok["start"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: illegal base64 data")
            if rv < api.compacted:
                raise ApiError(410, "The provided continue parameter is too old to display a "
                                    "consistent list result. You can start a new list without "
                                    "the continue parameter.", "Expired")
            # Objects as of rv: the current ones, minus changes after rv
            # (good enough for tests: a list page never sees newer writes).
            items = [o for k, o in _sorted_items(api.objects[res.plural])
                     if (k[0] or "", k[1]) > start and int(o["metadata"]["resourceVersion"]) <= rv
                     and flt.match(res, o)]
        else:
            rv = api.rv
            items = [o for k, o in _sorted_items(api.objects[res.plural]) if flt.match(res, o)]
        items = [api.decorate_locked(res, o) for o in items]
    meta = {"resourceVersion": str(rv)}
    if limit > 0 and len(items) > limit:
        items = items[:limit]
        last = items[-1]["metadata"]
        tok = {"rv": rv, "start": [last.get("namespace") or "", last["name"]]}
        meta["continue"] = base64.urlsafe_b64encode(json.dumps(tok).encode()).decode()
    for o in items:
        # List items carry no kind/apiVersion; the list does.
        o.pop("kind", None)
        o.pop("apiVersion", None)
    req.h.send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                          "metadata": meta, "items": items})


def verb_watch(req):
    h, api, res, ns, query = req.h, req.api, req.res, req.ns, req.query
    flt = make_filter(res, ns, query)
    rv_param = query.get("resourceVersion", "")
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    try:
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") \
            else DEFAULT_WATCH_TIMEOUT
    except ValueError:
        raise bad_request(f"invalid timeoutSeconds: {query.get('timeoutSeconds')}")
    w = Watcher(flt, bookmarks)
    expired = None
    with api.lock:
        if rv_param not in ("", "0"):
            try:
                rv = int(rv_param)
            except ValueError:
                raise bad_request(f"resourceVersion: Invalid value: \"{rv_param}\": "
                                  "must be an unsigned integer")
            if rv < api.compacted:
                expired = f"too old resource version: {rv} ({api.compacted})"
                if api.watch_expired == "status":
                    raise ApiError(410, expired, "Expired")
            else:
                for (erv, plural, etype, old, new) in api.history:
                    if erv > rv:
                        ev = translate(flt, RESOURCES[plural], etype, old, new)
                        if ev:
                            w.q.put(ev)
        else:
            # "Any" version: the current state as synthetic ADDED events.
            for o in sorted(api.objects[res.plural].values(),
                            key=lambda o: int(o["metadata"]["resourceVersion"])):
                if flt.match(res, o):
                    w.q.put(("ADDED", o))
        if expired is None:
            api.watchers.add(w)
    try:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Cache-Control", "no-cache, private")
        h.end_headers()
        h.wfile.flush()
        h.note_status(200)
        if expired is not None:
            ev = {"type": "ERROR", "object": status_body(410, expired, "Expired")}
            h.chunk(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
            h.wfile.write(b"0\r\n\r\n")
            return
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = w.q.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if item is END:
                break
            if item is DROP:
                h.close_connection = True
                return  # no terminating chunk: the client sees a cut stream
            etype, obj = item
            if etype == "BOOKMARK":
                if not w.bookmarks:
                    continue
                obj = {"kind": res.kind, "apiVersion": res.api_version,
                       "metadata": {"resourceVersion": obj}}
            line = json.dumps({"type": etype, "object": obj}, separators=(",", ":"))
            h.chunk(line.encode() + b"\n")
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        h.close_connection = True
    finally:
        with api.lock:
            api.watchers.discard(w)


# --- create / update / patch ------------------------------------------------------------

def _prepare_update(res, new, old):
    """PrepareForUpdate + BeforeUpdate: status and system metadata come from
    the stored object; generation counts spec changes."""
    meta, om = new["metadata"], old["metadata"]
    for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
              "generation"):
        if f in om and (f != "uid" or not meta.get("uid")):
            meta[f] = om[f]
        elif f != "uid":
            meta.pop(f, None)
    if res.status:
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    if res.generation and not json_equal(new.get("spec"), old.get("spec")):
        meta["generation"] = int(om.get("generation", 1)) + 1


def _same(a, b):
    a, b = clone(a), clone(b)
    for o in (a, b):
        o.get("metadata", {}).pop("resourceVersion", None)
    return json_equal(a, b)


def verb_create(req):
    api, res = req.api, req.res
    obj = decode_object(req, res)
    check_namespace(req, obj)
    dry = check_dry_run(req, "CreateOptions")
    meta = obj["metadata"]
    if meta.get("resourceVersion"):
        raise internal_error("resourceVersion should not be set on objects to be created")
    with api.lock:
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = api.generate_name(res, req.ns, meta["generateName"])
        errs = validate(res, obj)
        if errs:
            raise invalid(res.group, res.kind, meta.get("name") or "", errs)
        if api.lookup(res.plural, req.ns, meta["name"]) is not None:
            raise already_exists(res.group, res.plural, meta["name"])
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if res.generation:
            meta["generation"] = 1
        if res.status:
            obj["status"] = {"phase": "Pending"} if res.plural == "pods" else {}
        api.default_locked(res, obj)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        if dry:
            out = clone(obj)
        else:
            out = clone(api.store_locked(res, obj, None))
    req.h.send_json(201, out)


def verb_update(req):
    api, res = req.api, req.res
    obj = decode_object(req, res)
    meta = obj["metadata"]
    if meta.get("name") != req.name:
        raise bad_request(f"the name of the object ({meta.get('name') or ''}) does not match "
                          f"the name on the URL ({req.name})")
    check_namespace(req, obj)
    dry = check_dry_run(req, "UpdateOptions")
    with api.lock:
        old = api.lookup(res.plural, req.ns, req.name)
        if old is None:
            raise not_found(res.group, res.plural, req.name)
        om = old["metadata"]
        if meta.get("uid") and meta["uid"] != om["uid"]:
            # defaultUpdatedObjectInfo.Preconditions(): the body's uid is a
            # storage precondition.
            raise conflict(res.group, res.plural, req.name,
                           f"StorageError: invalid object, Code: 4, Key: "
                           f"{res.key_path(req.ns, req.name)}, ResourceVersion: 0, "
                           f"AdditionalErrorMsg: Precondition failed: UID in precondition: "
                           f"{meta['uid']}, UID in object meta: {om['uid']}")
        if meta.get("resourceVersion") and meta["resourceVersion"] != om["resourceVersion"]:
            raise conflict(res.group, res.plural, req.name, OPTIMISTIC_LOCK)
        _prepare_update(res, obj, old)
        api.default_locked(res, obj)
        errs = validate(res, obj, old)
        if errs:
            raise invalid(res.group, res.kind, req.name, errs)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        if dry or _same(obj, old):
            out = clone(old) if not dry else clone(obj)
        else:
            out = clone(api.store_locked(res, obj, old))
    req.h.send_json(200, out)


def verb_patch(req):
    api, res = req.api, req.res
    mt = req.media_type()
    if mt not in PATCH_TYPES:
        raise unsupported_media_type(PATCH_TYPES)
    dry = check_dry_run(req, "PatchOptions")
    if mt == "application/apply-patch+yaml":
        if not req.query.get("fieldManager"):
            raise invalid("meta.k8s.io", "PatchOptions", "",
                          [required("fieldManager", "is required for apply patch")])
        raise ApiError(500, "klaxon fake: server-side apply (application/apply-patch+yaml) is "
                            "not implemented by this test double", "InternalError")
    with api.lock:
        old = api.lookup(res.plural, req.ns, req.name)
        if old is None:
            raise not_found(res.group, res.plural, req.name)
        cur = clone(old)
        try:
            if mt == "application/json-patch+json":
                new = json_patch(cur, req.body)
            elif mt == "application/merge-patch+json":
                new = merge_patch(cur, req.body)
            else:
                new = strategic_merge_patch(cur, req.body)
        except PatchError as e:
            if e.code == 422:
                # NewGenericServerResponse(422, ...): the jsonpatch error
                # itself is not in the answer.
                raise ApiError(422, "the server rejected our request due to an error in our "
                                    "request", "Invalid", {})
            if e.code == 413:
                raise ApiError(413, f"Request entity too large: {e.message}")
            raise bad_request(e.message)
        err = decode_error(res, new)
        if err:
            raise invalid("", "", "", [invalid_value(
                "patch", json.dumps(new, separators=(",", ":")), err)])
        meta = new.setdefault("metadata", {})
        if meta.get("name") != req.name:
            raise bad_request(f"the name of the object ({meta.get('name') or ''}) does not "
                              f"match the name on the URL ({req.name})")
        if res.namespaced and meta.get("namespace") != req.ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        if meta.get("resourceVersion") and \
                meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(res.group, res.plural, req.name, OPTIMISTIC_LOCK)
        _prepare_update(res, new, old)
        errs = validate(res, new, old)
        if errs:
            raise invalid(res.group, res.kind, req.name, errs)
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        if _same(new, old):
            out = clone(old)  # a no-op patch writes nothing
        elif dry:
            out = clone(new)
        else:
            out = clone(api.store_locked(res, new, old))
        out = api.decorate_locked(res, out) if res.plural == "poddisruptionbudgets" else out
    req.h.send_json(200, out)


# --- delete ---------------------------------------------------------------------------

DELETE_OPTION_FIELDS = {"kind", "apiVersion", "gracePeriodSeconds", "preconditions",
                        "orphanDependents", "propagationPolicy", "dryRun",
                        "ignoreStoreReadErrorWithClusterBreakingPotential"}


def parse_delete_options(opts, where="DeleteOptions"):
    """Checks a DeleteOptions object: 400 for what would not decode
    (unknown fields too: fake-only, as with fieldValidation=Strict), 422
    for invalid values (ValidateDeleteOptions)."""
    if not isinstance(opts, dict):
        raise bad_request(f"json: cannot unmarshal {type(opts).__name__} into Go value of type "
                          "v1.DeleteOptions")
    if opts.get("kind") not in (None, "DeleteOptions"):
        raise bad_request(f"{opts['kind']} in version \"v1\" cannot be handled as a "
                          "DeleteOptions")
    if opts.get("apiVersion") not in (None, "v1", "meta.k8s.io/v1"):
        raise bad_request(f"the API version in the data ({opts['apiVersion']}) does not match "
                          "the expected API version (v1)")
    unknown = sorted(set(opts) - DELETE_OPTION_FIELDS)
    if unknown:
        raise bad_request(f"strict decoding error: unknown field \"{unknown[0]}\" (klaxon fake: "
                          f"the real server silently ignores it, so the option has no effect)")
    g = opts.get("gracePeriodSeconds")
    if g is not None and (isinstance(g, bool) or not isinstance(g, int)):
        raise bad_request("json: cannot unmarshal into Go struct field "
                          "DeleteOptions.gracePeriodSeconds of type int64")
    pre = opts.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict) or set(pre) - {"uid", "resourceVersion"}:
            raise bad_request("json: cannot unmarshal into Go struct field "
                              "DeleteOptions.preconditions of type v1.Preconditions")
        for f in ("uid", "resourceVersion"):
            if pre.get(f) is not None and not isinstance(pre[f], str):
                raise bad_request(f"json: cannot unmarshal into Go struct field "
                                  f"Preconditions.preconditions.{f} of type string")
    errs = []
    pp = opts.get("propagationPolicy")
    if opts.get("orphanDependents") is not None and pp is not None:
        errs.append(invalid_value("propagationPolicy", pp,
                                  "orphanDependents and deletionPropagation cannot be both set"))
    if pp is not None and pp not in PROPAGATION:
        errs.append(unsupported("propagationPolicy", pp, PROPAGATION + ("nil",)))
    for v in opts.get("dryRun") or []:
        if v != "All":
            errs.append(unsupported("dryRun", v, ("All",)))
    if errs:
        raise invalid("meta.k8s.io", "DeleteOptions", "", errs)
    return opts


def delete_options(req):
    """DeleteOptions from the body, or (only without a body) the query."""
    if req.body:
        require_json_body(req)
        return parse_delete_options(parse_json(req))
    q = req.query
    opts = {}
    if "gracePeriodSeconds" in q:
        try:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise bad_request(f"strconv.ParseInt: parsing \"{q['gracePeriodSeconds']}\": "
                              "invalid syntax")
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        opts["orphanDependents"] = q["orphanDependents"] in ("true", "1")
    if "dryRun" in q:
        opts["dryRun"] = [q["dryRun"]]
    return parse_delete_options(opts)


def check_preconditions(res, obj, opts):
    """rest.BeforeDelete's early precondition check."""
    pre = opts.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") is not None and pre["uid"] != meta.get("uid"):
        raise conflict(res.group, res.kind, meta["name"],
                       f"the UID in the precondition ({pre['uid']}) does not match the UID in "
                       f"record ({meta.get('uid')}). The object might have been deleted and then "
                       "recreated")
    if pre.get("resourceVersion") is not None and pre["resourceVersion"] != meta.get(
            "resourceVersion"):
        raise conflict(res.group, res.kind, meta["name"],
                       f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does "
                       f"not match the ResourceVersion in record ({meta.get('resourceVersion')}). "
                       "The object might have been modified")


def delete_locked(api, res, key, opts):
    """Deletes one object as the registry does; (http status, body). Pods are
    deleted gracefully: a grace period > 0 leaves a terminating pod for the
    fake kubelet to remove."""
    obj = api.objects[res.plural].get(key)
    if obj is None:
        raise not_found(res.group, res.plural, key[1])
    check_preconditions(res, obj, opts)
    dry = bool(opts.get("dryRun"))
    if res.plural != "pods":
        if not dry:
            api.remove_locked(res, key)
        return 200, success_body(details={"name": key[1], "group": res.group,
                                          "kind": res.plural, "uid": obj["metadata"]["uid"]})
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and grace < 0:
        grace = 1
    if meta.get("deletionTimestamp"):
        cur = meta.get("deletionGracePeriodSeconds")
        if cur and (grace is None or grace >= cur):
            return 200, clone(obj)  # graceful deletion already pending
        grace = 0 if not cur else grace
    else:
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
            grace = 0
    new = clone(obj)
    new["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
    new["metadata"]["deletionGracePeriodSeconds"] = grace
    if opts.get("propagationPolicy") == "Foreground":
        fin = new["metadata"].setdefault("finalizers", [])
        if "foregroundDeletion" not in fin:
            fin.append("foregroundDeletion")
    if dry:
        return 200, new
    if grace == 0:
        gone = api.remove_locked(res, key, new)
        return 200, gone
    out = clone(api.store_locked(res, new, obj))
    api.pod_terminating_locked(key)
    return 200, out


def verb_delete(req):
    api, res = req.api, req.res
    opts = delete_options(req)
    with api.lock:
        code, body = delete_locked(api, res, (req.ns, req.name), opts)
    req.h.send_json(code, body)


def verb_deletecollection(req):
    api, res = req.api, req.res
    opts = delete_options(req)
    flt = make_filter(res, req.ns, req.query)
    items = []
    with api.lock:
        for key, obj in list(_sorted_items(api.objects[res.plural])):
            if flt.match(res, obj):
                code, body = delete_locked(api, res, key, dict(opts, preconditions=None))
                if body.get("kind") != "Status":
                    items.append(body)
                else:
                    items.append(clone(obj))
        rv = api.rv
    for o in items:
        o.pop("kind", None)
        o.pop("apiVersion", None)
    req.h.send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                          "metadata": {"resourceVersion": str(rv)}, "items": items})


# --- pods/eviction ---------------------------------------------------------------------

EVICTION_FIELDS = {"kind", "apiVersion", "metadata", "deleteOptions"}


def verb_evict(req):
    """POST .../pods/{name}/eviction (pkg/registry/core/pod/storage/eviction.go).
    Fake-only: the body must say apiVersion policy/v1 (or v1beta1) and kind
    Eviction, and may not carry unknown fields."""
    api = req.api
    pods = RESOURCES["pods"]
    require_json_body(req)
    ev = parse_json(req)
    if not isinstance(ev, dict):
        raise bad_request("the object provided is unrecognized (must be of type Eviction)")
    av, kind = ev.get("apiVersion"), ev.get("kind")
    if not av or not kind:
        raise bad_request("the object provided is unrecognized (must be of type Eviction): "
                          "Object 'Kind' is missing or 'apiVersion' is missing (klaxon fake: "
                          "send apiVersion policy/v1 and kind Eviction)")
    if kind != "Eviction":
        raise bad_request(f"{kind} in version \"{av.split('/')[-1]}\" cannot be handled as a "
                          "Eviction: not a Eviction object")
    if av not in ("policy/v1", "policy/v1beta1"):
        raise bad_request(f"the API version in the data ({av}) does not match the expected API "
                          "version (policy/v1)")
    unknown = sorted(set(ev) - EVICTION_FIELDS)
    if unknown:
        raise bad_request(f"strict decoding error: unknown field \"{unknown[0]}\" (klaxon fake)")
    meta = ev.get("metadata") or {}
    if not isinstance(meta, dict):
        raise bad_request("json: cannot unmarshal into Go struct field Eviction.metadata of type "
                          "v1.ObjectMeta")
    if meta.get("namespace") and meta["namespace"] != req.ns:
        raise bad_request("the namespace of the provided object does not match the namespace "
                          "sent on the request")
    if meta.get("name") != req.name:
        raise bad_request("name in URL does not match name in Eviction object")
    opts = parse_delete_options(ev.get("deleteOptions") or {})
    qdry = check_dry_run(req, "CreateOptions")
    if qdry and opts.get("dryRun") and opts["dryRun"] != ["All"]:
        raise bad_request("Non-matching dry-run options in request and content")
    if qdry:
        opts = dict(opts, dryRun=["All"])
    key = (req.ns, req.name)
    with api.lock:
        pod = api.objects["pods"].get(key)
        if pod is None:
            raise not_found("", "pods", req.name)
        st = (pod.get("status") or {}).get("phase")
        if st in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            budgets = []  # canIgnorePDB: deleted without looking at budgets
        else:
            budgets = disruption.pdbs_for_pod(api.objects["poddisruptionbudgets"].values(), pod)
        if len(budgets) > 1:
            raise ApiError(500, "This pod has more than one PodDisruptionBudget, which the "
                                "eviction subresource does not support.", "")
        if budgets:
            pdb = budgets[0]
            name = pdb["metadata"]["name"]
            status = api.pdb_status_locked(pdb)
            policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy")
            unready = not disruption.pod_ready(pod)
            skip = unready and (policy == "AlwaysAllow" or (
                status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
                and status.get("desiredHealthy", 0) > 0))
            if not skip:
                if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
                    raise too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.", 10,
                        [{"reason": "DisruptionBudget",
                          "message": f"The disruption budget {name} is still being processed "
                                     "by the server."}])
                if status.get("disruptionsAllowed", 0) <= 0:
                    raise too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.", 0,
                        [{"reason": "DisruptionBudget",
                          "message": f"The disruption budget {name} needs "
                                     f"{status.get('desiredHealthy', 0)} healthy pods and has "
                                     f"{status.get('currentHealthy', 0)} currently"}])
        delete_locked(api, pods, key, opts)
    req.h.send_json(201, success_body(code=201))
