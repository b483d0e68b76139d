# SPDX-License-Identifier: Apache-2.0
"""All state of the fake, under one lock: objects, watch history and
watchers, the request log, faults, tokens/users and RBAC rules."""

import copy
import json
import queue
import random
import re
import threading
import time
import uuid

from . import disruption
from .resources import RESOURCES
from .status import ApiError, bad_request, forbidden, not_found

HISTORY_MAX = 10000   # watch events kept for resuming from a version
RV_START = 1000       # first resourceVersion handed out
DEFAULT_USER = "system:serviceaccount:klaxon:klaxon-sensor"
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String's alphabet
OMITEMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences", "generateName",
                  "managedFields")


def now_rfc3339(offset=0.0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def clone(obj):
    return json.loads(json.dumps(obj)) if obj is not None else None


class Watcher:
    def __init__(self, flt, bookmarks):
        self.filter = flt
        self.bookmarks = bookmarks
        self.q = queue.Queue()


END = object()   # queue sentinel: finish the stream cleanly
DROP = object()  # queue sentinel: cut the connection mid-stream


def translate(flt, res, etype, old, new):
    """The event a watcher with this filter sees, or None: objects moving in
    or out of a selector become ADDED / DELETED, as in the real watch cache."""
    was = flt.match(res, old)
    now = flt.match(res, new)
    if etype == "DELETED":
        return ("DELETED", new) if was else None
    if was and now:
        return ("MODIFIED", new)
    if now:
        return ("ADDED", new)
    if was:
        return ("DELETED", new)
    return None


def _one_or_list(v):
    if v is None:
        return None
    return [v] if isinstance(v, str) else list(v)


def rule_matches(rule, user, verb, res, sub, ns, name):
    """An RBAC-style rule: {"verb"|"verbs", "resource"|"resources" (plural,
    "plural/subresource", "plural/*", "*"), "group", "namespace", "name",
    "user"}; absent fields match everything."""
    verbs = _one_or_list(rule.get("verbs", rule.get("verb")))
    if verbs is not None and "*" not in verbs and verb not in verbs:
        return False
    want = f"{res.plural}/{sub}" if sub else res.plural
    resources = _one_or_list(rule.get("resources", rule.get("resource")))
    if resources is not None and not any(
            r in ("*", want) or (sub and r == f"{res.plural}/*") for r in resources):
        return False
    groups = _one_or_list(rule.get("groups", rule.get("group")))
    if groups is not None and "*" not in groups and res.group not in groups:
        return False
    if rule.get("namespace") is not None and rule["namespace"] != ns:
        return False
    if rule.get("name") is not None and rule["name"] != name:
        return False
    if rule.get("user") is not None and rule["user"] != user:
        return False
    return True


class Api:
    """All state, under one lock. Handlers run on the connection threads."""

    def __init__(self, token, verbose=False, user=DEFAULT_USER):
        self.lock = threading.RLock()
        self.token = token
        self.initial_token = token
        self.initial_user = user
        self.verbose = verbose
        self.rv = RV_START
        self.timers = []
        self.reset_locked()

    def reset_locked(self):
        self.objects = {name: {} for name in RESOURCES}  # plural -> {(ns, name): obj}
        self.history = []          # (rv, plural, type, old, new)
        self.compacted = 0         # versions below this are gone
        self.watchers = set()
        self.requests = []
        self.faults = []
        self.deny = []
        self.allow = None          # None: everything not denied; else only these
        self.token = self.initial_token
        self.old_tokens = set()
        self.user = self.initial_user
        self.users = {}            # extra token -> user name
        self.down_until = 0.0      # monotonic; inf = until /_fake/up
        self.down_mode = "close"
        self.watch_expired = "event"
        self.bookmark_interval = 0.0
        self.kubelet_delay = 0.0   # s until a terminating pod is gone; None = never
        for t in self.timers:
            t.cancel()
        self.timers = []

    # --- bookkeeping ------------------------------------------------------

    def next_rv(self):
        self.rv += 1
        return self.rv

    def is_down(self):
        with self.lock:
            if self.down_until and time.monotonic() >= self.down_until:
                self.down_until = 0.0
            return (self.down_until > 0, self.down_mode)

    def broadcast_locked(self, item):
        for w in list(self.watchers):
            w.q.put(item)

    def record_locked(self, res, etype, old, new):
        rv = self.rv
        self.history.append((rv, res.plural, etype, old, new))
        if len(self.history) > HISTORY_MAX:
            drop = self.history[: len(self.history) - HISTORY_MAX]
            self.history = self.history[len(drop):]
            self.compacted = max(self.compacted, drop[-1][0] + 1)
        for w in list(self.watchers):
            ev = translate(w.filter, res, etype, old, new)
            if ev:
                w.q.put(ev)

    # --- objects ----------------------------------------------------------

    def generate_name(self, res, ns, prefix):
        for _ in range(100):
            name = prefix + "".join(random.choice(NAME_CHARS) for _ in range(5))
            if (ns, name) not in self.objects[res.plural]:
                return name
        raise ApiError(409, f"{res.plural} \"{prefix}\" already exists, the server was not "
                            "able to generate a unique name for the object", "AlreadyExists")

    def default_locked(self, res, obj):
        if res.plural == "poddisruptionbudgets":
            spec = obj.setdefault("spec", {})
            if spec.get("minAvailable") is None and spec.get("maxUnavailable") is None:
                spec["minAvailable"] = 1
        if res.plural == "events":
            obj.setdefault("count", 1)
            obj.setdefault("firstTimestamp", now_rfc3339())
            obj.setdefault("lastTimestamp", obj["firstTimestamp"])

    def store_locked(self, res, obj, old):
        """Writes obj (metadata filled in) and sends the watch event."""
        meta = obj["metadata"]
        # omitempty: the stored JSON has no empty maps/lists in metadata, so
        # a JSON patch adding /metadata/labels/x fails on a pod without
        # labels here as it does on a real server.
        for f in OMITEMPTY_META:
            if f in meta and not meta[f]:
                del meta[f]
        key = (meta.get("namespace"), meta["name"])
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        meta["resourceVersion"] = str(self.next_rv())
        self.objects[res.plural][key] = obj
        self.record_locked(res, "MODIFIED" if old else "ADDED", old, obj)
        return obj

    def put_object(self, res, obj):
        """Control API: create or replace as given (status included);
        returns (stored object, created?)."""
        if not isinstance(obj, dict):
            raise bad_request("the object must be a JSON object")
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self.generate_name(res, meta.get("namespace"), meta["generateName"])
        name = meta.get("name")
        if not name:
            raise ApiError(422, f"{res.kind} \"\" is invalid: metadata.name: Required value: "
                                "name or generateName is required", details={"kind": res.kind})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace"), name)
        with self.lock:
            old = self.objects[res.plural].get(key)
            if old is not None and not meta.get("uid"):
                meta["uid"] = old["metadata"]["uid"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            old["metadata"].get("creationTimestamp") if old else now_rfc3339())
            if res.generation:
                meta.setdefault("generation", (old or {}).get("metadata", {}).get(
                    "generation", 1) if old else 1)
            self.default_locked(res, obj)
            self.store_locked(res, obj, old)
            return obj, old is None

    def remove_locked(self, res, key, final=None):
        old = self.objects[res.plural].pop(key, None)
        if old is None:
            return None
        gone = clone(final if final is not None else old)
        gone["metadata"]["resourceVersion"] = str(self.next_rv())
        self.record_locked(res, "DELETED", old, gone)
        return gone

    def delete_object(self, res, ns, name):
        """Control API: remove at once."""
        with self.lock:
            gone = self.remove_locked(res, (ns, name))
            if gone is None:
                raise not_found(res.group, res.plural, name)
            return gone

    def lookup(self, plural, ns, name):
        return self.objects[plural].get((ns, name))

    def pods_in(self, ns):
        return [p for (pns, _), p in self.objects["pods"].items() if pns == ns]

    def pdb_status_locked(self, pdb):
        st = pdb.get("status") or {}
        gen = pdb["metadata"].get("generation", 1)
        if "observedGeneration" in st and st["observedGeneration"] < gen:
            return clone(st)  # the test pinned an unsynced budget
        return disruption.compute_status(pdb, self.pods_in(pdb["metadata"]["namespace"]),
                                         self.lookup)

    def decorate_locked(self, res, obj):
        """A copy of a stored object as a read returns it."""
        out = clone(obj)
        if res.plural == "poddisruptionbudgets" and out is not None:
            out["status"] = self.pdb_status_locked(obj)
        return out

    # --- the fake kubelet ---------------------------------------------------

    def pod_terminating_locked(self, key):
        """A pod got a deletionTimestamp with a grace period: the kubelet
        stops it and the pod object goes away after kubelet_delay (never
        when None)."""
        if self.kubelet_delay is None:
            return
        if self.kubelet_delay <= 0:
            self.finish_pod_locked(key)
            return
        t = threading.Timer(self.kubelet_delay, self._finish_pod, args=(key,))
        t.daemon = True
        self.timers.append(t)
        t.start()

    def _finish_pod(self, key):
        with self.lock:
            self.finish_pod_locked(key)

    def finish_pod_locked(self, key):
        pod = self.objects["pods"].get(key)
        if pod is None or not pod["metadata"].get("deletionTimestamp"):
            return
        final = clone(pod)
        final["metadata"]["deletionGracePeriodSeconds"] = 0
        self.remove_locked(RESOURCES["pods"], key, final)

    # --- authentication and authorization -----------------------------------

    def authenticate(self, handler):
        """User name, or None (401). A bearer token that is present wins over
        a client certificate, as in the real server's union authenticator."""
        auth = handler.headers.get("Authorization")
        if auth is not None:
            m = re.match(r"^Bearer ([^\s]+)$", auth.strip())
            if not m:
                return None
            tok = m.group(1)
            with self.lock:
                if tok == self.token or tok in self.old_tokens:
                    return self.user
                return self.users.get(tok)
        cert = handler.connection.getpeercert() if hasattr(handler.connection, "getpeercert") \
            else None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    def authorize(self, user, verb, res, ns, name, sub=None):
        with self.lock:
            deny, allow = list(self.deny), self.allow
        denied = any(rule_matches(r, user, verb, res, sub, ns, name) for r in deny)
        if not denied and allow is not None:
            denied = not any(rule_matches(r, user, verb, res, sub, ns, name) for r in allow)
        if not denied:
            return
        resource = f"{res.plural}/{sub}" if sub else res.plural
        where = f"in the namespace \"{ns}\"" if ns else "at the cluster scope"
        raise forbidden(res.group, res.plural, name,
                        f"User \"{user}\" cannot {verb} resource \"{resource}\" in API group "
                        f"\"{res.group}\" {where}")

    # --- faults ---------------------------------------------------------------

    def take_fault(self, method, path, query):
        """The first armed fault matching this request (its count used up),
        or None."""
        with self.lock:
            for f in self.faults:
                if f.get("method", "*") not in ("*", method):
                    continue
                if not path.startswith(f.get("path", "/")):
                    continue
                if f.get("query") and f["query"] not in query:
                    continue
                count = f.get("count", 1)
                if count is not None and count >= 0:
                    if count == 0:
                        continue
                    f["count"] = count - 1
                f["hits"] = f.get("hits", 0) + 1
                return copy.deepcopy(f)
        return None
