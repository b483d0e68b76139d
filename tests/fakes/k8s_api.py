#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""k8s_api.py - a strict Kubernetes API test double (stdlib only).

What it checks and answers the way a real kube-apiserver does:
  - HTTPS only, with its own CA (made with the openssl CLI at start), a
    server certificate for 127.0.0.1 / ::1 / localhost, and a client
    certificate signed by the same CA (x509 client auth works too).
  - Bearer token authentication: a missing or wrong token is a 401 with a
    real metav1.Status body; a valid client certificate also authenticates.
  - Real paths, verbs and status codes for
      core/v1                pods (+ pods/eviction), nodes, events
      apps/v1                deployments, replicasets, statefulsets, daemonsets
      policy/v1              poddisruptionbudgets
      networking.k8s.io/v1   networkpolicies
    get / list (fieldSelector, labelSelector, limit, continue) / watch
    (chunked JSON lines, resourceVersion bookkeeping, BOOKMARKs, 410
    Expired) / create / update / patch / delete / deletecollection.
    Unknown paths, objects and verbs get 404 / 405 Status bodies shaped
    like the real ones ("pods \"x\" not found").
  - Bodies: POST/PUT/DELETE bodies must be application/json, PATCH one of
    the patch types (plain JSON is a 415 UnsupportedMediaType); merge,
    strategic merge and JSON patch are applied with their real semantics;
    decoding errors are 400, validation errors 422 Invalid with causes,
    conflicts 409 (AlreadyExists, preconditions, stale resourceVersion).
  - Pods are deleted gracefully (deletionTimestamp + grace period, then a
    fake kubelet removes them); evictions honour PodDisruptionBudgets with
    the disruption controller's arithmetic and answer 429 with a
    DisruptionBudget cause (no Retry-After), as the real eviction does.
  - RBAC denials (403 with the real "... is forbidden: User ... cannot ..."
    message, subresources and cluster scope included) and injected faults
    (status codes with or without Retry-After, delays, dropped
    connections, a refused port) on demand.

Checks stricter than the real server (a client that passes them works
there too) are named "klaxon fake" in their messages: Eviction bodies must
carry apiVersion/kind and no unknown fields, DeleteOptions may not carry
unknown fields, Events need involvedObject kind/name, reason, message and
type Normal|Warning.

The state lives in memory. Tests change it through a control API under
/_fake/ (no token needed), served on the API port and on a separate
control port that stays up while the API port refuses connections:

  GET    /_fake/ping                      readiness
  POST   /_fake/{resource}                create or replace an object as given (status too)
  GET    /_fake/{resource}[?namespace=]   stored objects (PDBs with their computed status)
  GET    /_fake/{resource}/{ns}/{name}    one object (cluster-scoped: /_fake/{resource}/{name})
  DELETE /_fake/{resource}/{ns}/{name}    remove at once (no grace period)
  GET    /_fake/requests                  request log; DELETE clears it
  POST   /_fake/compact                   {"rv": N}: versions below N are gone (default: all so far)
  POST   /_fake/down                      {"seconds": S, "mode": "close"|"503"|"reset"|"refuse"}
  POST   /_fake/up                        back up (refuse: listening again on the same port)
  POST   /_fake/bookmark                  send a BOOKMARK to every watch that allows them
  POST   /_fake/watches/end               end every watch cleanly (as timeoutSeconds does)
  POST   /_fake/watches/drop              cut every watch mid-stream
  GET    /_fake/watches                   {"open": N}
  POST   /_fake/token                     {"token": T, "keep_old": false}: rotate the token
  POST   /_fake/users                     {"token": T, "user": U}: another identity; DELETE clears
  POST   /_fake/faults                    {"method","path","query","status","count","retry_after",
                                           "message","reason","delay","drop","when"}; GET lists
                                           them with "hits"; DELETE clears
  POST   /_fake/rbac                      {"deny": [rule...], "allow": [rule...]}; DELETE clears.
                                           rule: {"verb", "resource" ("pods", "pods/eviction",
                                           "nodes", "*"), "group", "namespace", "name", "user"}
  POST   /_fake/config                    {"watch_expired": "event"|"status",
                                           "bookmark_interval": s, "user": U,
                                           "kubelet_delay": s|null}
  POST   /_fake/kubelet/finish            remove every terminating pod now
  POST   /_fake/reset                     back to empty (the resourceVersion keeps counting)

Usage: k8s_api.py --port 0 --state-dir DIR [--token T] [--user U] [--parent-pid PID]
Writes DIR/state.json {"port", "url", "control_port", "control_url", "ca", "token", "user",
"client_cert", "client_key", "other_ca", "pid"} once it is listening.
"""

import argparse
import json
import os
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from k8sfake import verbs  # noqa: E402
from k8sfake.resources import BY_PATH, PREFIXES, RESOURCES, Resource  # noqa: E402,F401
from k8sfake.state import DEFAULT_USER, DROP, END, Api, clone  # noqa: E402,F401
from k8sfake.status import (REASONS, ApiError, bad_request, method_not_allowed,  # noqa: E402,F401
                            not_found, path_not_found, status_body)
from k8sfake.verbs import PATCH_TYPES  # noqa: E402,F401

# Re-exported for code that imported them from here before the split.
__all__ = ["Api", "ApiError", "DEFAULT_USER", "PATCH_TYPES", "REASONS", "RESOURCES", "Resource",
           "main", "parse_path", "status_body"]

MAX_BODY = 3 * 1024 * 1024      # the real server refuses larger request bodies
LOG_BODY_MAX = 256 * 1024       # request bytes kept in the log


# ---------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------

def parse_path(path):
    """(resource, scope, namespace, name, subresource) for an API path, or
    None. scope: "all" (every namespace / cluster-wide collection),
    "collection" (one namespace) or "object"."""
    for prefix in PREFIXES:
        if path.startswith(prefix + "/"):
            parts = path[len(prefix) + 1:].split("/")
            break
    else:
        return None
    if any(p == "" for p in parts):
        return None
    ns = None
    if parts[0] == "namespaces" and len(parts) >= 3:
        ns, plural, tail = parts[1], parts[2], parts[3:]
        res = BY_PATH.get((prefix, plural))
        if res is None or not res.namespaced:
            return None
        scope = "object" if tail else "collection"
    else:
        plural, tail = parts[0], parts[1:]
        res = BY_PATH.get((prefix, plural))
        if res is None or (res.namespaced and tail):
            return None
        scope = "object" if tail else "all"
    if len(tail) > 2:
        return None
    name = tail[0] if tail else None
    sub = tail[1] if len(tail) > 1 else None
    if sub is not None and sub not in res.subresources:
        return None
    return res, scope, ns, name, sub


def rbac_verb(method, scope, query):
    if method == "GET":
        if scope == "object":
            return "get"
        return "watch" if query.get("watch") in ("1", "true", "True") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if scope == "object" else "deletecollection"}.get(method, "")


def handler_for(method, scope, sub):
    if sub == "eviction":
        return verbs.verb_evict if method == "POST" else None
    return {
        ("GET", "object"): verbs.verb_get,
        ("GET", "collection"): verbs.verb_list,
        ("GET", "all"): verbs.verb_list,
        ("POST", "collection"): verbs.verb_create,
        ("PUT", "object"): verbs.verb_update,
        ("PATCH", "object"): verbs.verb_patch,
        ("DELETE", "object"): verbs.verb_delete,
        ("DELETE", "collection"): verbs.verb_deletecollection,
    }.get((method, scope))


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Dropped(Exception):
    """An injected fault: close the connection without an answer."""


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

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_OPTIONS(self):
        self.dispatch("OPTIONS")

    # --- responses ----------------------------------------------------------

    entry = None
    after_fault = None

    def note_status(self, code):
        if self.entry is not None:
            self.entry["status"] = code

    def send_json(self, code, obj, headers=None):
        fault, self.after_fault = self.after_fault, None
        if fault is not None:
            # "when": "after": the request took effect, the answer is lost.
            if self.entry is not None:
                self.entry["real_status"] = code
            if fault.get("drop"):
                raise Dropped()
            err = fault_error(fault)
            code, obj, headers = err.code, err.body, err.headers
        self.note_status(code)
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
            raise bad_request("chunked request bodies are not supported by this fake")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "Request entity too large: limit is 3145728")
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
                Control(self, api).handle(method, path, query, body)
            except ApiError as e:
                self.send_error_status(e)
            return
        if self.server.control_only:
            self.send_error_status(path_not_found())
            return

        ctype = self.headers.get("Content-Type")
        entry = {
            "method": method, "path": path, "query": url.query, "params": query,
            "content_type": ctype,
            "accept": self.headers.get("Accept"),
            "authorization": self.headers.get("Authorization") is not None,
            "bearer": (self.headers.get("Authorization") or "").startswith("Bearer "),
            "user_agent": self.headers.get("User-Agent"),
            "body": body[:LOG_BODY_MAX].decode("utf-8", "replace") if body else None,
            "json": None,
            "time": time.time(),
        }
        if body:
            try:
                entry["json"] = json.loads(body)
            except ValueError:
                pass
        down, mode = api.is_down()
        entry["down"] = down
        self.entry = entry
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
            fault = api.take_fault(method, path, url.query)
            if fault:
                entry["fault"] = True
                if fault.get("delay"):
                    time.sleep(float(fault["delay"]))
                if fault.get("when") == "after":
                    self.after_fault = fault
                elif fault.get("drop"):
                    raise Dropped()
                elif fault.get("status"):
                    raise fault_error(fault)
            user = api.authenticate(self)
            entry["user"] = user
            if user is None:
                raise ApiError(401, "Unauthorized")
            try:
                self.route(method, path, query, url.query, body, user)
            except ApiError as e:
                self.send_error_status(e)
        except ApiError as e:
            self.send_error_status(e)
        except Dropped:
            entry["status"] = 0
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def route(self, method, path, query, raw_query, body, user):
        api = self.server.api
        parsed = parse_path(path)
        if parsed is None:
            if method == "GET" and path in ("/version", "/version/"):
                self.send_json(200, {"major": "1", "minor": "30",
                                     "gitVersion": "v1.30.0-klaxon-fake",
                                     "platform": "linux/amd64"})
                return
            raise path_not_found()
        res, scope, ns, name, sub = parsed
        verb = rbac_verb(method, scope, query)
        if verb:
            api.authorize(user, verb, res, ns, name, sub)
        fn = handler_for(method, scope, sub)
        if fn is None:
            raise method_not_allowed()
        req = verbs.Req(self, api, method, path, query, raw_query, body, user)
        req.res, req.scope, req.ns, req.name, req.sub = res, scope, ns, name, sub
        fn(req)


def fault_error(f):
    headers = {}
    if f.get("retry_after") is not None:
        headers["Retry-After"] = f["retry_after"]
    code = int(f.get("status") or 500)
    details = {"retryAfterSeconds": f["retry_after"]} \
        if f.get("retry_after") is not None else None
    return ApiError(code, f.get("message", "injected fault"), f.get("reason"), details, headers)


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
            raise bad_request(f"control: bad JSON: {e}")

    def ok(self, obj=None, code=200):
        self.h.send_json(code, obj if obj is not None else {"ok": True})

    def handle(self, method, path, query, body):
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
            self.h.server.servers.listen()
            with api.lock:
                api.broadcast_locked(END)
                api.reset_locked()
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
            if mode not in ("close", "503", "reset", "refuse"):
                raise bad_request("control: mode is close, 503, reset or refuse")
            if mode == "reset" and secs <= 0:
                raise bad_request("control: mode reset needs seconds (the API port is "
                                  "unreachable meanwhile; use the control port to come back)")
            with api.lock:
                api.down_until = time.monotonic() + secs if secs > 0 else float("inf")
                api.down_mode = mode
                api.broadcast_locked(DROP)
            if mode == "refuse":
                self.h.server.servers.refuse(secs)
            return self.ok()
        if parts == ["up"] and method == "POST":
            with api.lock:
                api.down_until = 0.0
            self.h.server.servers.listen()
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
                raise bad_request("control: token missing")
            with api.lock:
                if req.get("keep_old"):
                    api.old_tokens.add(api.token)
                api.token = req["token"]
            return self.ok()
        if parts == ["users"]:
            with api.lock:
                if method == "DELETE":
                    api.users = {}
                    return self.ok()
                if not req.get("token") or not req.get("user"):
                    raise bad_request("control: users needs token and user")
                api.users[req["token"]] = req["user"]
            return self.ok()
        if parts == ["faults"]:
            with api.lock:
                if method == "DELETE":
                    api.faults = []
                elif method == "GET":
                    return self.ok(clone(api.faults))
                else:
                    api.faults.append(dict(req))
            return self.ok()
        if parts == ["rbac"]:
            with api.lock:
                if method == "DELETE":
                    api.deny, api.allow = [], None
                else:
                    api.deny = list(req.get("deny", []))
                    api.allow = list(req["allow"]) if req.get("allow") is not None else None
            return self.ok()
        if parts == ["config"] and method == "POST":
            with api.lock:
                if "watch_expired" in req:
                    api.watch_expired = req["watch_expired"]
                if "bookmark_interval" in req:
                    api.bookmark_interval = float(req["bookmark_interval"])
                if "user" in req:
                    api.user = req["user"] or DEFAULT_USER
                if "kubelet_delay" in req:
                    d = req["kubelet_delay"]
                    api.kubelet_delay = None if d is None else float(d)
            return self.ok()
        if parts == ["kubelet", "finish"] and method == "POST":
            with api.lock:
                keys = [k for k, p in api.objects["pods"].items()
                        if p["metadata"].get("deletionTimestamp")]
                for k in keys:
                    api.finish_pod_locked(k)
            return self.ok({"finished": len(keys)})
        if parts and parts[0] in RESOURCES:
            return self.objects(method, parts, query, req)
        raise path_not_found()

    def objects(self, method, parts, query, req):
        api = self.api
        res = RESOURCES[parts[0]]
        n = 3 if res.namespaced else 2
        if method == "POST" and len(parts) == 1:
            obj, created = api.put_object(res, req)
            with api.lock:
                return self.ok(api.decorate_locked(res, obj), 201 if created else 200)
        if method == "GET" and len(parts) == 1:
            ns = query.get("namespace")
            with api.lock:
                return self.ok([api.decorate_locked(res, o)
                                for (ons, _), o in sorted(api.objects[res.plural].items(),
                                                          key=lambda kv: (kv[0][0] or "",
                                                                          kv[0][1]))
                                if ns is None or ons == ns])
        if len(parts) == n:
            ns = parts[1] if res.namespaced else None
            if method == "DELETE":
                return self.ok(api.delete_object(res, ns, parts[-1]))
            if method == "GET":
                with api.lock:
                    obj = api.lookup(res.plural, ns, parts[-1])
                    if obj is None:
                        raise not_found(res.group, res.plural, parts[-1])
                    return self.ok(api.decorate_locked(res, obj))
        raise path_not_found()


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, api, ctx, servers, control_only=False):
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, Handler)
        self.api = api
        self.ctx = ctx
        self.servers = servers
        self.control_only = control_only

    def finish_request(self, request, client_address):
        # Runs on the connection's own thread: the TLS handshake never
        # blocks the accept loop.
        down, mode = self.api.is_down()
        if down and mode == "reset" and not self.control_only:
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


class Servers:
    """The API listener (which "refuse" closes and reopens on the same
    port) and the control listener (always up)."""

    def __init__(self, host, port, api, ctx):
        self.host, self.api, self.ctx = host, api, ctx
        self.lock = threading.Lock()
        self.api_srv = self._serve(FakeServer((host, port), api, ctx, self))
        self.port = self.api_srv.server_address[1]
        self.ctl_srv = self._serve(FakeServer((host, 0), api, ctx, self, control_only=True))
        self.control_port = self.ctl_srv.server_address[1]
        self.timer = None

    @staticmethod
    def _serve(srv):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return srv

    def refuse(self, seconds):
        """Stop listening: connects get ECONNREFUSED until listen()."""
        with self.lock:
            if self.timer:
                self.timer.cancel()
                self.timer = None
            if self.api_srv is not None:
                srv, self.api_srv = self.api_srv, None
                srv.shutdown()
                srv.server_close()
            if seconds > 0:
                self.timer = threading.Timer(seconds, self.listen)
                self.timer.daemon = True
                self.timer.start()

    def listen(self):
        with self.lock:
            if self.timer:
                self.timer.cancel()
                self.timer = None
            if self.api_srv is not None:
                return
            for _ in range(100):
                try:
                    self.api_srv = self._serve(FakeServer((self.host, self.port), self.api,
                                                          self.ctx, self))
                    break
                except OSError:
                    time.sleep(0.02)
        with self.api.lock:
            if self.api.down_mode == "refuse":
                self.api.down_until = 0.0


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
    ap.add_argument("--user", default=DEFAULT_USER, help="the user the token authenticates as")
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
    api = Api(token, args.verbose, args.user)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL

    servers = Servers(args.host, args.port, api, ctx)
    host = f"[{args.host}]" if ":" in args.host else args.host
    state = {
        "port": servers.port, "url": f"https://{host}:{servers.port}",
        "control_port": servers.control_port,
        "control_url": f"https://{host}:{servers.control_port}",
        "token": token, "user": args.user, "pid": os.getpid(),
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
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
