# SPDX-License-Identifier: Apache-2.0
"""A minimal NATS client for tests, speaking the text protocol directly.

Debian has no Python NATS client, and the tests need only a few things:
publish with headers (Nats-Msg-Id) and wait for the JetStream ack, plain
request/reply to the JetStream API (stream info, message get), and subscribe.
"""
import base64
import json
import socket
import time


class NatsError(Exception):
    pass


class Nats:
    def __init__(self, url, timeout=5.0):
        hostport = url.split("://", 1)[-1]
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        # Requests are several small writes (SUB, HPUB): without this, Nagle
        # and delayed ACKs cost ~40 ms per publish.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sid = 0
        self.pending = {}  # sid -> list of (subject, headers, data)
        line = self._line()
        if not line.startswith(b"INFO "):
            raise NatsError("unexpected greeting %r" % line)
        self._send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                   b'"no_responders":true,"protocol":1,"name":"klaxon-tests"}\r\nPING\r\n')
        self._until(lambda: self._pong)

    # -- wire --------------------------------------------------------------
    _pong = False

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise NatsError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read_one(self):
        line = self._line()
        if line.startswith(b"MSG "):
            parts = line.split()
            subject, sid, size = parts[1], int(parts[2]), int(parts[-1])
            data = self._exact(size)
            # a request's reply subject travels as the pseudo header "_reply"
            hdrs = {"_reply": parts[3].decode()} if len(parts) == 5 else {}
            self.pending.setdefault(sid, []).append((subject.decode(), hdrs, data))
        elif line.startswith(b"HMSG "):
            parts = line.split()
            subject, sid = parts[1], int(parts[2])
            hlen, total = int(parts[-2]), int(parts[-1])
            raw = self._exact(total)
            headers = {"_reply": parts[3].decode()} if len(parts) == 6 else {}
            hdr_lines = raw[:hlen].decode().split("\r\n")
            status = hdr_lines[0][len("NATS/1.0"):].strip()
            if status:
                headers["Status"] = status
            for h in hdr_lines[1:]:
                if ":" in h:
                    k, v = h.split(":", 1)
                    headers[k.strip()] = v.strip()
            self.pending.setdefault(sid, []).append((subject.decode(), headers, raw[hlen:]))
        elif line == b"PING":
            self._send(b"PONG\r\n")
        elif line == b"PONG":
            self._pong = True
        elif line.startswith(b"-ERR"):
            raise NatsError(line.decode())

    def _until(self, cond, timeout=10.0):
        end = time.time() + timeout
        while not cond():
            if time.time() > end:
                raise TimeoutError("NATS: no answer in time")
            self._read_one()

    # -- API ---------------------------------------------------------------
    def subscribe(self, subject):
        self.sid += 1
        self._send(b"SUB %s %d\r\n" % (subject.encode(), self.sid))
        self.pending[self.sid] = []
        return self.sid

    def next_msg(self, sid, timeout=5.0):
        self._until(lambda: self.pending.get(sid), timeout)
        return self.pending[sid].pop(0)

    def publish(self, subject, data, headers=None, reply=None):
        if isinstance(data, str):
            data = data.encode()
        r = (b" " + reply.encode()) if reply else b""
        if headers:
            hdr = "NATS/1.0\r\n" + "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
            hdr = hdr.encode()
            self._send(b"HPUB %s%s %d %d\r\n%s%s\r\n" % (subject.encode(), r, len(hdr),
                                                        len(hdr) + len(data), hdr, data))
        else:
            self._send(b"PUB %s%s %d\r\n%s\r\n" % (subject.encode(), r, len(data), data))

    def request(self, subject, data=b"", headers=None, timeout=5.0):
        inbox = "_INBOX.kxtest.%d.%d" % (id(self), self.sid + 1)
        sid = self.subscribe(inbox)
        self.publish(subject, data, headers, reply=inbox)
        try:
            _, hdrs, payload = self.next_msg(sid, timeout)
        finally:
            self._send(b"UNSUB %d\r\n" % sid)
            self.pending.pop(sid, None)
        if hdrs.get("Status", "").startswith("503"):
            raise NatsError("no responders on %s" % subject)
        return hdrs, payload

    def js_publish(self, subject, data, msg_id=None, timeout=5.0):
        """Publishes into a stream and returns the JetStream ack as a dict."""
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        _, payload = self.request(subject, data, headers, timeout)
        ack = json.loads(payload)
        if "error" in ack:
            raise NatsError(ack["error"])
        return ack

    def stream_info(self, stream):
        _, payload = self.request("$JS.API.STREAM.INFO." + stream)
        return json.loads(payload)

    def stream_msgs(self, stream, subject=None):
        """Returns every message of a stream (optionally one subject) as
        (subject, headers_text, data bytes)."""
        info = self.stream_info(stream)
        if "error" in info:
            return []
        out = []
        first, last = info["state"]["first_seq"], info["state"]["last_seq"]
        for seq in range(first, last + 1):
            _, payload = self.request("$JS.API.STREAM.MSG.GET." + stream,
                                      json.dumps({"seq": seq}).encode())
            m = json.loads(payload)
            if "message" not in m:
                continue
            m = m["message"]
            if subject and m["subject"] != subject:
                continue
            hdrs = base64.b64decode(m.get("hdrs", "")).decode() if m.get("hdrs") else ""
            out.append((m["subject"], hdrs, base64.b64decode(m.get("data", ""))))
        return out

    def stream_msgs_since(self, stream, seq=1):
        """Messages of a stream with sequence >= seq, in order, as
        (seq, subject, headers_text, data bytes). Pass the last seq seen + 1
        to read only what is new; [] when the stream does not exist."""
        info = self.stream_info(stream)
        if "error" in info:
            return []
        out = []
        first = max(seq, info["state"]["first_seq"])
        for s in range(first, info["state"]["last_seq"] + 1):
            _, payload = self.request("$JS.API.STREAM.MSG.GET." + stream,
                                      json.dumps({"seq": s}).encode())
            m = json.loads(payload).get("message")
            if not m:
                continue  # deleted meanwhile
            hdrs = base64.b64decode(m["hdrs"]).decode() if m.get("hdrs") else ""
            out.append((s, m["subject"], hdrs, base64.b64decode(m.get("data", ""))))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
