# SPDX-License-Identifier: Apache-2.0
"""Node actions end to end: NATS requests on klaxon.node.<node>.action,
answered by the real klaxon-sensor, acting on real processes and on real
cgroup v2 directories named like containerd's under our own slice,
/sys/fs/cgroup/unified/klaxon-test-node-actions.slice.

These tests need root (the sensor loads BPF, the tests create cgroups and
the sensor kills processes): without it they FAIL, they never skip.
"""
import json
import os
import secrets
import subprocess
import time

import pytest

from conftest import wait_for
from natsclient import NatsError
from test_sensor import CGROUP2, NODE, Sensor, require_root

SLICE = CGROUP2 / "klaxon-test-node-actions.slice"
SUBJECT = "klaxon.node.%s.action" % NODE.replace("-", "_")  # kx_slug("test-node")
TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """/proc/<pid>/stat as {field number: text} from field 3 (state) on."""
    text = open("/proc/%d/stat" % pid).read()
    rest = text[text.rindex(")") + 2:].split()
    return {i + 3: v for i, v in enumerate(rest)}


def start_ns(pid):
    """The start time the sensor wants: ns since boot, /proc/<pid>/stat field 22."""
    return int(stat_fields(pid)[22]) * TICK_NS


class Actions:
    """A sensor answering node actions, and a NATS client to ask it."""

    def __init__(self, nats, tmp_path, wait_nats=True):
        self.nats = nats
        self.sensor = Sensor(tmp_path, nats.url, "actions-sensor")
        self.sensor.wait_attached()
        self.client = None
        self.sent = 0
        if wait_nats:
            self.connect()

    def connect(self):
        self.client = self.nats.client()

        def answered():
            try:
                return self.ask(b"{}", timeout=1.0)
            except (NatsError, TimeoutError):
                return None
        wait_for(answered, 15, interval=0.1, what="the sensor to answer on " + SUBJECT)

    def ask(self, req, timeout=5.0):
        """Sends req (a dict, str or bytes), returns (reply dict, seconds)."""
        if isinstance(req, dict):
            req = json.dumps(req)
        if isinstance(req, str):
            req = req.encode()
        t0 = time.time()
        _, payload = self.client.request(SUBJECT, req, timeout=timeout)
        self.sent += 1
        return json.loads(payload), time.time() - t0

    def close(self):
        if self.client:
            self.client.close()
        self.sensor.kill()


@pytest.fixture
def actions(nats, tmp_path):
    require_root()
    a = Actions(nats, tmp_path)
    yield a
    a.close()


@pytest.fixture
def procs():
    """procs(argv, cgroup=None) -> Popen, killed at teardown. With cgroup,
    the process moves itself into it before it execs argv."""
    started = []

    def make(argv, cgroup=None):
        run = argv
        if cgroup is not None:
            run = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"',
                   str(cgroup / "cgroup.procs")] + argv
        p = subprocess.Popen(run)
        started.append(p)
        want = b"\0".join(x.encode() for x in argv) + b"\0"
        # Started (and moved) once /proc shows argv: a start time read before
        # the exec would still be right, but the comm would not.
        wait_for(lambda: open("/proc/%d/cmdline" % p.pid, "rb").read() == want
                 or p.poll() is not None, 5, what="exec of %s" % argv)
        assert p.poll() is None, "%s exited at once" % argv
        if cgroup is not None:
            assert str(p.pid) in (cgroup / "cgroup.procs").read_text().split()
        return p

    yield make
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


@pytest.fixture
def containers():
    """containers() -> (64-hex id, Path) of a new cri-containerd-<id>.scope
    under our slice; removed (thawed, processes moved out) at teardown."""
    require_root()
    assert (CGROUP2 / "cgroup.procs").exists(), "no cgroup v2 hierarchy at %s" % CGROUP2
    created = []

    def make():
        SLICE.mkdir(exist_ok=True)
        cid = secrets.token_hex(32)
        d = SLICE / ("cri-containerd-%s.scope" % cid)
        d.mkdir()
        created.append(d)
        return cid, d

    yield make
    for d in reversed(created):
        end = time.time() + 5
        while d.exists():
            try:
                (d / "cgroup.freeze").write_text("0")
                for pid in (d / "cgroup.procs").read_text().split():
                    try:
                        (CGROUP2 / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass  # exited meanwhile
                d.rmdir()
            except OSError:
                if time.time() > end:
                    raise
                time.sleep(0.05)
    try:
        SLICE.rmdir()
    except OSError:
        pass


def events(d):
    return dict(line.split() for line in (d / "cgroup.events").read_text().splitlines())


def cpu_ticks(pid):
    f = stat_fields(pid)
    return int(f[14]) + int(f[15])


def assert_error(reply, code, text=None):
    assert reply["ok"] is False, reply
    assert reply["error"] == code, reply
    assert reply["node"] == NODE, reply
    if text:
        assert text in reply["message"], reply


def test_kill_process_checks_start_time(actions, procs):
    p = procs(["sleep", "1000"])
    t = start_ns(p.pid)

    # A pid whose start time differs is a reused pid: refused, and it lives.
    reply, _ = actions.ask({"action": "kill_process", "pid": p.pid, "start_time": t + 10**10,
                            "request_id": "stale-1"})
    assert_error(reply, "stale", "nothing was signalled")
    assert reply["request_id"] == "stale-1"
    assert reply["action"] == "kill_process"
    assert reply["target"]["pid"] == p.pid
    time.sleep(0.3)
    assert p.poll() is None, "a stale request killed the process"

    # The right start time, anywhere inside its clock tick: killed.
    reply, dt = actions.ask({"action": "kill_process", "pid": p.pid,
                             "start_time": t + TICK_NS - 1, "request_id": "kill-1"})
    print("\nkill_process round trip (request -> SIGKILL -> exit seen -> reply): %.1f ms"
          % (dt * 1000))
    assert reply["ok"] is True, reply
    assert reply == {
        "ok": True, "action": "kill_process", "request_id": "kill-1", "node": NODE,
        "target": {"pid": p.pid, "start_time": t + TICK_NS - 1, "comm": "sleep",
                   "exe": os.path.realpath("/bin/sleep")},
        "detail": "killed pid %d (sleep) with SIGKILL" % p.pid}
    assert p.wait(5) == -9

    # Gone: not_found.
    reply, _ = actions.ask({"action": "kill_process", "pid": p.pid, "start_time": t})
    assert_error(reply, "not_found")
    assert dt < 1.0


def test_kill_process_with_sigterm(actions, procs):
    p = procs(["sleep", "1000"])
    reply, _ = actions.ask({"action": "kill_process", "pid": p.pid, "start_time": start_ns(p.pid),
                            "signal": "SIGTERM"})
    assert reply["ok"] is True, reply
    assert reply["detail"] == "sent SIGTERM to pid %d (sleep)" % p.pid
    assert p.wait(5) == -15


def test_container_freeze_thaw_kill(actions, procs, containers):
    cid, d = containers()
    # A busy loop: it accumulates CPU time unless it is frozen.
    p = procs(["/bin/sh", "-c", "while :; do :; done"], cgroup=d)
    time.sleep(0.1)
    assert stat_fields(p.pid)[3] == "R"

    reply, dt_freeze = actions.ask({"action": "freeze_container", "container_id": cid[:12],
                                    "request_id": "f-1"})
    assert reply["ok"] is True, reply
    assert reply["target"] == {"container_id": cid, "runtime": "containerd",
                               "cgroup": "/%s/%s" % (SLICE.name, d.name), "pids": 1}
    assert reply["detail"] == "froze container %s: 1 process(es)" % cid[:12]
    assert events(d)["frozen"] == "1"
    assert stat_fields(p.pid)[3] == "S"
    before = cpu_ticks(p.pid)
    time.sleep(0.3)
    assert cpu_ticks(p.pid) == before, "a frozen process kept running"

    reply, dt_thaw = actions.ask({"action": "thaw_container", "container_id": cid})
    assert reply["ok"] is True, reply
    assert events(d)["frozen"] == "0"
    before = cpu_ticks(p.pid)
    wait_for(lambda: cpu_ticks(p.pid) > before, 3, what="the thawed process to run again")

    reply, dt_kill = actions.ask({"action": "kill_container", "container_id": cid,
                                  "request_id": "k-1"})
    assert reply["ok"] is True, reply
    assert reply["method"] == "cgroup.kill"
    assert reply["detail"] == "killed container %s: 1 process(es) via cgroup.kill" % cid[:12]
    assert reply["request_id"] == "k-1"
    assert p.wait(5) == -9
    assert events(d)["populated"] == "0"
    print("\nfreeze %.1f ms, thaw %.1f ms, kill %.1f ms (round trips)"
          % (dt_freeze * 1000, dt_thaw * 1000, dt_kill * 1000))

    reply, _ = actions.ask({"action": "kill_container", "container_id": secrets.token_hex(32)})
    assert_error(reply, "not_found", "no cgroup v2 directory")


def test_protected_targets(actions):
    sensor_pid = actions.sensor.proc.pid

    reply, _ = actions.ask({"action": "kill_process", "pid": 1, "start_time": start_ns(1)})
    assert_error(reply, "protected", "init")
    reply, _ = actions.ask({"action": "kill_process", "pid": sensor_pid,
                            "start_time": start_ns(sensor_pid)})
    assert_error(reply, "protected", "klaxon-sensor itself")
    tids = [int(t) for t in os.listdir("/proc/%d/task" % sensor_pid) if int(t) != sensor_pid]
    assert tids, "the sensor has no threads?"
    reply, _ = actions.ask({"action": "kill_process", "pid": tids[0],
                            "start_time": start_ns(sensor_pid)})
    assert_error(reply, "protected", "thread of klaxon-sensor")
    kthreadd = 2
    assert open("/proc/2/comm").read().strip() == "kthreadd"
    reply, _ = actions.ask({"action": "kill_process", "pid": kthreadd,
                            "start_time": start_ns(kthreadd)})
    assert_error(reply, "protected", "kernel thread")
    assert actions.sensor.proc.poll() is None


def test_bad_requests(actions):
    cases = [
        (b"kill everything", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"action": "reboot_node"}, 'unknown action "reboot_node"'),
        ({"action": "kill_process", "pid": 1234}, 'needs "pid" and "start_time"'),
        ({"action": "kill_process", "pid": 1234, "start_time": 5, "sginal": "SIGTERM"},
         'unknown field "sginal"'),
        ({"action": "freeze_container", "container_id": "xyz"}, "12 or 64 hex"),
        (b'{"action": "kill_container", "container_id": "' + b"a" * 70000 + b'"}',
         "at most 65536"),
    ]
    for req, text in cases:
        reply, _ = actions.ask(req)
        assert_error(reply, "bad_request", text)
    reply, _ = actions.ask({"action": "thaw_container", "request_id": "b-1"})
    assert_error(reply, "bad_request", 'needs "container_id"')
    assert reply["request_id"] == "b-1" and reply["action"] == "thaw_container"

    # Every request is logged once, with its result; the sensor is fine.
    assert actions.sensor.proc.poll() is None
    wait_for(lambda: actions.sensor.text().count("node action ") >= actions.sent, 5,
             what="one log line per request")
    assert actions.sensor.text().count("node action ") == actions.sent
    assert "node action thaw_container request_id=b-1: bad_request: " in actions.sensor.text()
    assert actions.sensor.stop() == 0


def test_answers_when_nats_comes_up_later(nats, tmp_path, procs):
    """The sensor starts while NATS is down; its subscription is made when
    the connection comes up, and requests are answered."""
    require_root()
    nats.stop()
    a = Actions(nats, tmp_path, wait_nats=False)
    try:
        assert "node actions: answering requests on " + SUBJECT in a.sensor.text()
        nats.start()
        a.connect()
        p = procs(["sleep", "1000"])
        reply, _ = a.ask({"action": "kill_process", "pid": p.pid, "start_time": start_ns(p.pid)})
        assert reply["ok"] is True, reply
        assert p.wait(5) == -9
        t0 = time.time()
        assert a.sensor.stop() == 0, a.sensor.text()
        assert time.time() - t0 < 4.0
    finally:
        a.close()
