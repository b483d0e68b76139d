#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""k8s_api.py - a strict Kubernetes API test double (stdlib only).

What it checks and answers the way a real kube-apiserver does:
  - HTTPS only, with its own CA (made with the openssl CLI at start), a
    server certificate for 127.0.0.1 / ::1 / localhost, and a client
    certificate signed by the same CA (x509 client auth works too).
  - Bearer token authentication: a missing or wrong token is a 401 with a
    real metav1.Status body; a valid client certificate also authenticates.
  - Real paths, verbs and status codes: GET /api/v1/pods,
    /api/v1/namespaces/{ns}/pods, /api/v1/namespaces/{ns}/pods/{name}; list
    with fieldSelector / labelSelector / limit / continue; watch=1 streams
    newline-delimited JSON events over chunked encoding with
    resourceVersion bookkeeping, BOOKMARKs, and 410 Expired ("too old
    resource version") when the requested version is older than the
    compaction point. Unknown paths, objects and verbs get 404 / 405 Status
    bodies shaped like the real ones ("pods \"x\" not found").
  - RBAC denials (403 with the real "... is forbidden: User ... cannot ..."
    message) and injected faults (429 / 5xx with Retry-After, ...) on demand.

The state lives in memory. Tests change it through a control API on the same
server under /_fake/ (no token needed):

  GET    /_fake/ping                      readiness
  POST   /_fake/{resource}                create or replace an object (body: the object)
  DELETE /_fake/{resource}/{ns}/{name}    delete (cluster-scoped: /_fake/{resource}/{name})
  GET    /_fake/requests                  request log; DELETE clears it
  POST   /_fake/compact                   {"rv": N}: versions below N are gone (default: all so far)
  POST   /_fake/down                      {"seconds": S, "mode": "close"|"503"|"reset"}; POST /_fake/up
  POST   /_fake/bookmark                  send a BOOKMARK to every watch that allows them
  POST   /_fake/watches/end               end every watch cleanly (as timeoutSeconds does)
  POST   /_fake/watches/drop              cut every watch mid-stream
  GET    /_fake/watches                   {"open": N}
  POST   /_fake/token                     {"token": T, "keep_old": false}: rotate the token
  POST   /_fake/faults                    {"method","path","status","count","retry_after","message"}
  DELETE /_fake/faults
  POST   /_fake/rbac                      {"deny": [{"verb": "list", "resource": "pods"}]}; DELETE clears
  POST   /_fake/config                    {"watch_expired": "event"|"status", "bookmark_interval": s}
  POST   /_fake/reset                     back to empty (the resourceVersion keeps counting)

Extending it (pods delete/evict, nodes, networkpolicies, events): add a
Resource to RESOURCES (paths are derived from group/version/plural) and a
verb handler in Api.VERBS; PATCH bodies go through check_content_type(),
which answers 415 for plain application/json like the real server.

Usage: k8s_api.py --port 0 --state-dir DIR [--token T] [--parent-pid PID]
Writes DIR/state.json {"port", "url", "ca", "token", "client_cert",
"client_key", "other_ca", "pid"} once it is listening.
"""

import argparse
import base64
import json
import os
import queue
import re
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 3 * 1024 * 1024      # the real server refuses larger request bodies
HISTORY_MAX = 10000             # watch events kept for resuming from a version
DEFAULT_WATCH_TIMEOUT = 1800.0  # s, when the client sends no timeoutSeconds
RV_START = 1000                 # first resourceVersion handed out

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def status_body(code, message, reason=None, details=None):
    """A metav1.Status failure, exactly as the apiserver writes it."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason or REASONS.get(code, ""), "code": code}
    if reason == "" or (reason is None and code not in REASONS):
        del st["reason"]
    if details is not None:
        st["details"] = details
    return st


class ApiError(Exception):
    """Raised by handlers: becomes a Status response."""

    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason, details)
        self.headers = headers or {}


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------

def _get(obj, dotted):
    """Value at a dotted path ("spec.nodeName"), as the field selector sees it."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class Resource:
    """One API resource: where it lives and which field labels it accepts."""

    def __init__(self, plural, kind, group="", version="v1", namespaced=True, field_labels=()):
        self.plural = plural
        self.kind = kind
        self.group = group
        self.version = version
        self.namespaced = namespaced
        self.field_labels = set(field_labels) | {"metadata.name", "metadata.namespace"}

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self):
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


RESOURCES = {
    "pods": Resource("pods", "Pod", field_labels=(
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")),
}


def build_routes():
    """(regex, resource, scope) for every resource: scope is "all" (every
    namespace), "collection" (one namespace) or "object"."""
    routes = []
    for res in RESOURCES.values():
        p = re.escape(res.prefix)
        if res.namespaced:
            routes.append((re.compile(rf"^{p}/{res.plural}$"), res, "all"))
            routes.append((re.compile(rf"^{p}/namespaces/(?P<ns>[^/]+)/{res.plural}$"),
                           res, "collection"))
            routes.append((re.compile(
                rf"^{p}/namespaces/(?P<ns>[^/]+)/{res.plural}/(?P<name>[^/]+)$"), res, "object"))
        else:
            routes.append((re.compile(rf"^{p}/{res.plural}$"), res, "all"))
            routes.append((re.compile(rf"^{p}/{res.plural}/(?P<name>[^/]+)$"), res, "object"))
    return routes


# ---------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------

def parse_field_selector(res, text):
    """[(field, op, value)]; 400 for unsupported fields, as the server does."""
    terms = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|!=|=)\s*(.*)$", raw)
        if not m:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = m.group(1), m.group(2), m.group(3)
        if field not in res.field_labels:
            raise ApiError(400, f"field label not supported: {field}")
        terms.append((field, "!=" if op == "!=" else "=", value))
    return terms


def field_match(terms, obj):
    for field, op, value in terms:
        have = _get(obj, field)
        if (have == value) != (op == "="):
            return False
    return True


def _split_label_terms(text):
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def parse_label_selector(text):
    """[(key, op, values)] with op in =, !=, in, notin, exists, !exists."""
    out = []
    for raw in _split_label_terms(text):
        m = re.match(r"^([A-Za-z0-9_./\-]+)\s+(in|notin)\s+\(([^)]*)\)$", raw)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            out.append((m.group(1), m.group(2), vals))
            continue
        m = re.match(r"^([A-Za-z0-9_./\-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.\-]*)$", raw)
        if m:
            out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.match(r"^(!?)([A-Za-z0-9_./\-]+)$", raw)
        if m:
            out.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise ApiError(400, f"unable to parse requirement: found '{raw}', expected: "
                            "in, notin, =, ==, !=, gt, lt")
    return out


def label_match(terms, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, op, vals in terms:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v in vals):
            return False
        if op == "!=" and has and v in vals:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


class Filter:
    """Which objects a list or watch sees: resource, namespace, selectors."""

    def __init__(self, res, ns, fields, labels):
        self.res, self.ns, self.fields, self.labels = res, ns, fields, labels

    def match(self, res, obj):
        if obj is None or res is not self.res:
            return False
        meta = obj.get("metadata") or {}
        if self.ns is not None and meta.get("namespace") != self.ns:
            return False
        return field_match(self.fields, obj) and label_match(self.labels, obj)


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------

class Watcher:
    def __init__(self, flt, bookmarks):
        self.filter = flt
        self.bookmarks = bookmarks
        self.q = queue.Queue()


END = object()   # queue sentinel: finish the stream cleanly
DROP = object()  # queue sentinel: cut the connection mid-stream


class Api:
    """All state, under one lock. Handlers run on the connection threads."""

    def __init__(self, token, verbose=False):
        self.lock = threading.RLock()
        self.token = token
        self.initial_token = token
        self.old_tokens = set()
        self.verbose = verbose
        self.routes = build_routes()
        self.reset_locked()
        self.rv = RV_START

    def reset_locked(self):
        self.objects = {name: {} for name in RESOURCES}  # plural -> {(ns, name): obj}
        self.history = []          # (rv, plural, type, old, new)
        self.compacted = 0         # versions below this are gone
        self.watchers = set()
        self.requests = []
        self.faults = []
        self.deny = []
        self.down_until = 0.0      # monotonic; inf = until /_fake/up
        self.down_mode = "close"
        self.watch_expired = "event"
        self.bookmark_interval = 0.0

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

    def put_object(self, res, obj):
        """Create or replace; returns (stored object, created?)."""
        if not isinstance(obj, dict):
            raise ApiError(400, "the object must be a JSON object")
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiError(422, f"{res.kind} \"\" is invalid: metadata.name: Required value: "
                                "name or generateName is required", details={"kind": res.plural})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace"), name)
        obj["kind"] = res.kind
        obj["apiVersion"] = res.api_version
        with self.lock:
            old = self.objects[res.plural].get(key)
            if old is not None and not meta.get("uid"):
                meta["uid"] = old["metadata"]["uid"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            old["metadata"].get("creationTimestamp") if old else
                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            meta["resourceVersion"] = str(self.next_rv())
            self.objects[res.plural][key] = obj
            self.record_locked(res, "MODIFIED" if old else "ADDED", old, obj)
            return obj, old is None

    def delete_object(self, res, ns, name):
        with self.lock:
            old = self.objects[res.plural].pop((ns, name), None)
            if old is None:
                raise ApiError(404, f"{res.plural} \"{name}\" not found",
                               details={"name": name, "kind": res.plural})
            gone = json.loads(json.dumps(old))
            gone["metadata"]["resourceVersion"] = str(self.next_rv())
            self.record_locked(res, "DELETED", old, gone)
            return gone

    def authenticate(self, handler):
        """User name, or None (401). A bearer token that is present wins over
        a client certificate, as in the real server's union authenticator."""
        auth = handler.headers.get("Authorization")
        if auth is not None:
            m = re.match(r"^Bearer ([^\s]+)$", auth.strip())
            with self.lock:
                ok = m and (m.group(1) == self.token or m.group(1) in self.old_tokens)
            return "system:serviceaccount:klaxon:klaxon-sensor" if ok else None
        cert = handler.connection.getpeercert() if hasattr(handler.connection, "getpeercert") \
            else None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return v
        return None

    def authorize(self, user, verb, res, ns, name):
        with self.lock:
            rules = list(self.deny)
        for r in rules:
            if r.get("verb", "*") not in ("*", verb):
                continue
            if r.get("resource", "*") not in ("*", res.plural):
                continue
            if r.get("namespace") not in (None, ns):
                continue
            what = f"{res.plural} \"{name}\"" if name else res.plural
            where = f"in the namespace \"{ns}\"" if ns else "at the cluster scope"
            details = {"kind": res.plural}
            if name:
                details = {"name": name, "kind": res.plural}
            if res.group:
                details["group"] = res.group
            raise ApiError(403, f"{what} is forbidden: User \"{user}\" cannot {verb} resource "
                                f"\"{res.plural}\" in API group \"{res.group}\" {where}",
                           details=details)


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


def check_content_type(handler, allowed):
    """415 unless the request's media type is one of allowed (for PATCH:
    PATCH_TYPES, so plain application/json is refused like the real one)."""
    ct = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ct not in allowed:
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media "
                            f"types include: {', '.join(allowed)}")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-fake"
    sys_version = ""
    timeout = 60  # idle keep-alive connections

    def log_message(self, fmt, *args):
        if self.server.api.verbose:
            sys.stderr.write("k8s-fake: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # --- responses ----------------------------------------------------------

    def send_json(self, code, obj, headers=None):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def send_error_status(self, e):
        self.send_json(e.code, e.body, e.headers)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # --- dispatch -----------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(400, "chunked request bodies are not supported by this fake")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "the request body is too large")
        return self.rfile.read(n) if n else b""

    def dispatch(self, method):
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query,
                                                           keep_blank_values=True).items()}
        try:
            body = self.read_body()
        except ApiError as e:
            self.send_error_status(e)
            return
        if path.startswith("/_fake/"):
            try:
                Control(self, api).handle(method, path, body)
            except ApiError as e:
                self.send_error_status(e)
            return

        entry = {
            "method": method, "path": path, "query": url.query,
            "content_type": self.headers.get("Content-Type"),
            "accept": self.headers.get("Accept"),
            "authorization": self.headers.get("Authorization") is not None,
            "bearer": (self.headers.get("Authorization") or "").startswith("Bearer "),
            "user_agent": self.headers.get("User-Agent"),
            "time": time.time(),
        }
        down, mode = api.is_down()
        entry["down"] = down
        with api.lock:
            api.requests.append(entry)
        if down:
            if mode == "503":
                self.send_json(503, status_body(503, "the server is currently unable to handle "
                                                     "the request", "ServiceUnavailable"))
            else:
                self.close_connection = True  # no answer at all: the peer sees EOF
            return
        try:
            fault = self.take_fault(method, path)
            if fault:
                raise fault
            user = api.authenticate(self)
            entry["user"] = user
            if user is None:
                raise ApiError(401, "Unauthorized")
            self.route(method, path, query, body, user)
        except ApiError as e:
            entry["status"] = e.code
            self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def take_fault(self, method, path):
        api = self.server.api
        with api.lock:
            for f in api.faults:
                if f.get("method", "*") not in ("*", method):
                    continue
                if not path.startswith(f.get("path", "/")):
                    continue
                if f.get("count", 1) <= 0:
                    continue
                f["count"] = f.get("count", 1) - 1
                headers = {}
                if f.get("retry_after") is not None:
                    headers["Retry-After"] = f["retry_after"]
                code = int(f.get("status", 500))
                details = {"retryAfterSeconds": f["retry_after"]} \
                    if f.get("retry_after") is not None else None
                return ApiError(code, f.get("message", "injected fault"), f.get("reason"),
                                details, headers)
        return None

    def route(self, method, path, query, body, user):
        api = self.server.api
        for rx, res, scope in api.routes:
            m = rx.match(path)
            if not m:
                continue
            ns = m.groupdict().get("ns")
            name = m.groupdict().get("name")
            fn = VERBS.get((scope, method))
            if fn is None:
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource", details={})
            fn(self, api, res, ns, name, query, body, user)
            return
        if path in ("/version", "/version/"):
            self.send_json(200, {"major": "1", "minor": "29", "gitVersion": "v1.29.0-klaxon-fake",
                                 "platform": "linux/amd64"})
            return
        raise ApiError(404, "the server could not find the requested resource", details={})


# --- verbs: (scope, method) -> handler ----------------------------------------

def verb_get(h, api, res, ns, name, query, body, user):
    api.authorize(user, "get", res, ns, name)
    with api.lock:
        obj = api.objects[res.plural].get((ns, name))
        obj = json.loads(json.dumps(obj)) if obj else None
    if obj is None:
        raise ApiError(404, f"{res.plural} \"{name}\" not found",
                       details={"name": name, "kind": res.plural})
    h.send_json(200, obj)


def make_filter(res, ns, query):
    fields = parse_field_selector(res, query.get("fieldSelector", ""))
    labels = parse_label_selector(query.get("labelSelector", ""))
    return Filter(res, ns, fields, labels)


def verb_list(h, api, res, ns, name, query, body, user):
    if query.get("watch") in ("1", "true", "True"):
        verb_watch(h, api, res, ns, query, user)
        return
    api.authorize(user, "list", res, ns, None)
    flt = make_filter(res, ns, query)
    limit = int(query.get("limit") or 0)
    cont = query.get("continue") or ""
    with api.lock:
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                rv, start = int(tok["rv"]), tuple(tok["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "continue key is not valid: illegal base64 data")
            if rv < api.compacted:
                raise ApiError(410, "The provided continue parameter is too old to display a "
                                    "consistent list result. You can start a new list without "
                                    "the continue parameter.", "Expired")
            # Objects as of rv: the current ones, minus changes after rv
            # (good enough for tests: a list page never sees newer writes).
            items = [o for k, o in sorted(api.objects[res.plural].items(),
                                          key=lambda kv: (kv[0][0] or "", kv[0][1]))
                     if (k[0] or "", k[1]) > start and int(o["metadata"]["resourceVersion"]) <= rv
                     and flt.match(res, o)]
        else:
            rv = api.rv
            items = [o for k, o in sorted(api.objects[res.plural].items(),
                                          key=lambda kv: (kv[0][0] or "", kv[0][1]))
                     if flt.match(res, o)]
        items = json.loads(json.dumps(items))
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
    h.send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                      "metadata": meta, "items": items})


def verb_watch(h, api, res, ns, query, user):
    api.authorize(user, "watch", res, ns, None)
    flt = make_filter(res, ns, query)
    rv_param = query.get("resourceVersion", "")
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    try:
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") \
            else DEFAULT_WATCH_TIMEOUT
    except ValueError:
        raise ApiError(400, f"invalid timeoutSeconds: {query.get('timeoutSeconds')}")
    w = Watcher(flt, bookmarks)
    expired = None
    with api.lock:
        if rv_param not in ("", "0"):
            try:
                rv = int(rv_param)
            except ValueError:
                raise ApiError(400, f"resourceVersion: Invalid value: \"{rv_param}\": "
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


VERBS = {
    ("object", "GET"): verb_get,
    ("collection", "GET"): verb_list,
    ("all", "GET"): verb_list,
}


# ---------------------------------------------------------------------------
# Control API
# ---------------------------------------------------------------------------

class Control:
    def __init__(self, h, api):
        self.h, self.api = h, api

    def json_body(self, body):
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError as e:
            raise ApiError(400, f"control: bad JSON: {e}")

    def ok(self, obj=None, code=200):
        self.h.send_json(code, obj if obj is not None else {"ok": True})

    def handle(self, method, path, body):
        api = self.api
        parts = [p for p in path.split("/") if p][1:]  # after "_fake"
        req = self.json_body(body)
        if parts == ["ping"] and method == "GET":
            return self.ok()
        if parts == ["requests"]:
            with api.lock:
                if method == "DELETE":
                    api.requests = []
                    return self.ok()
                return self.ok(list(api.requests))
        if parts == ["reset"] and method == "POST":
            with api.lock:
                api.broadcast_locked(END)
                api.reset_locked()
                api.token = api.initial_token
                api.old_tokens = set()
            return self.ok()
        if parts == ["compact"] and method == "POST":
            with api.lock:
                if "rv" in req:
                    api.compacted = int(req["rv"])
                else:
                    # Everything handed out so far is gone; the revision
                    # moves on as it does in etcd, so a new list can watch.
                    api.compacted = api.next_rv()
                api.history = [e for e in api.history if e[0] >= api.compacted]
                return self.ok({"compacted": api.compacted})
        if parts == ["down"] and method == "POST":
            secs = float(req.get("seconds", 0))
            mode = req.get("mode", "close")
            if mode not in ("close", "503", "reset"):
                raise ApiError(400, "control: mode is close, 503 or reset")
            if mode == "reset" and secs <= 0:
                raise ApiError(400, "control: mode reset needs seconds (the control API is "
                                    "unreachable meanwhile)")
            with api.lock:
                api.down_until = time.monotonic() + secs if secs > 0 else float("inf")
                api.down_mode = mode
                api.broadcast_locked(DROP)
            return self.ok()
        if parts == ["up"] and method == "POST":
            with api.lock:
                api.down_until = 0.0
            return self.ok()
        if parts == ["bookmark"] and method == "POST":
            with api.lock:
                api.broadcast_locked(("BOOKMARK", str(api.rv)))
            return self.ok()
        if parts == ["watches"] and method == "GET":
            with api.lock:
                return self.ok({"open": len(api.watchers)})
        if parts == ["watches", "end"] and method == "POST":
            with api.lock:
                api.broadcast_locked(END)
            return self.ok()
        if parts == ["watches", "drop"] and method == "POST":
            with api.lock:
                api.broadcast_locked(DROP)
            return self.ok()
        if parts == ["token"] and method == "POST":
            if not req.get("token"):
                raise ApiError(400, "control: token missing")
            with api.lock:
                if req.get("keep_old"):
                    api.old_tokens.add(api.token)
                api.token = req["token"]
            return self.ok()
        if parts == ["faults"]:
            with api.lock:
                if method == "DELETE":
                    api.faults = []
                else:
                    api.faults.append(dict(req))
            return self.ok()
        if parts == ["rbac"]:
            with api.lock:
                api.deny = [] if method == "DELETE" else list(req.get("deny", []))
            return self.ok()
        if parts == ["config"] and method == "POST":
            with api.lock:
                if "watch_expired" in req:
                    api.watch_expired = req["watch_expired"]
                if "bookmark_interval" in req:
                    api.bookmark_interval = float(req["bookmark_interval"])
            return self.ok()
        if parts and parts[0] in RESOURCES:
            res = RESOURCES[parts[0]]
            if method == "POST" and len(parts) == 1:
                obj, created = api.put_object(res, req)
                return self.ok(obj, 201 if created else 200)
            if method == "DELETE" and len(parts) == (3 if res.namespaced else 2):
                ns = parts[1] if res.namespaced else None
                return self.ok(api.delete_object(res, ns, parts[-1]))
            if method == "GET" and len(parts) == 1:
                with api.lock:
                    return self.ok(list(api.objects[res.plural].values()))
        raise ApiError(404, f"control: no such endpoint: {method} {path}")


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, api, ctx):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, Handler)
        self.api = api
        self.ctx = ctx

    def finish_request(self, request, client_address):
        # Runs on the connection's own thread: the TLS handshake never
        # blocks the accept loop.
        down, mode = self.api.is_down()
        if down and mode == "reset":
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        try:
            # Headers and body leave in separate writes: without NODELAY,
            # Nagle + delayed ACK add 40 ms to every response.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(10)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if self.api.verbose:
            super().handle_error(request, client_address)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d):
    """CA, server cert (127.0.0.1, ::1, localhost), client cert, and an
    unrelated CA for mismatch tests; EC keys keep this fast."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "3",
                "-subj", f"/CN=klaxon-fake-{ca}",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    for name, subj in (("server", "/CN=kube-apiserver"),
                       ("client", "/O=system:masters/CN=klaxon-client")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "3",
                "-extfile", f"{name}.ext", cwd=d)


def bookmark_loop(api):
    last = time.monotonic()
    while True:
        time.sleep(0.05)
        with api.lock:
            iv = api.bookmark_interval
            if iv > 0 and time.monotonic() - last >= iv:
                api.broadcast_locked(("BOOKMARK", str(api.rv)))
                last = time.monotonic()
            elif iv <= 0:
                last = time.monotonic()


def parent_loop(pid):
    while True:
        time.sleep(0.2)
        if os.getppid() != pid:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--token", default=None, help="bearer token (default: random)")
    ap.add_argument("--parent-pid", type=int, default=0,
                    help="exit when this process is no longer our parent")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    d = os.path.abspath(args.state_dir)
    os.makedirs(d, exist_ok=True)
    try:
        make_certs(d)
    except subprocess.CalledProcessError as e:
        sys.stderr.write(f"k8s-fake: openssl failed: {e.stderr.decode(errors='replace')}\n")
        return 1
    token = args.token or secrets.token_urlsafe(24)
    api = Api(token, args.verbose)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL

    srv = FakeServer((args.host, args.port), api, ctx)
    port = srv.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    state = {
        "port": port, "url": f"https://{host}:{port}", "token": token, "pid": os.getpid(),
        "ca": os.path.join(d, "ca.crt"), "other_ca": os.path.join(d, "other-ca.crt"),
        "client_cert": os.path.join(d, "client.crt"), "client_key": os.path.join(d, "client.key"),
    }
    tmp = os.path.join(d, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, os.path.join(d, "state.json"))

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=bookmark_loop, args=(api,), daemon=True).start()
    if args.parent_pid:
        threading.Thread(target=parent_loop, args=(args.parent_pid,), daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
