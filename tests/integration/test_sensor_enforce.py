# SPDX-License-Identifier: Apache-2.0
"""Enforcement and telemetry of the real sensor.

- A rule with `action: kill` SIGKILLs a matching exec in the kernel, before
  the program runs, only when sensor.enforce is true; the alert says so. With
  enforce off (the default) the same exec runs and the alert says it was not
  killed. A kill rule the kernel cannot decide is refused at load.
- /metrics serves per-kind counters, prefilter counts and drops; the
  heartbeat carries the same on klaxon.heartbeat.<node>.
Needs root: fails, never skips."""
import json
import os
import secrets
import shutil
import signal
import subprocess
import urllib.request

from conftest import free_port, wait_for
from test_sensor import NODE, Sensor, cgroups, require_root, sensor_exe  # noqa: F401

KILL_RULES = """
- rule: Kill victim in container
  desc: test rule, kills kx-victim started in a container
  condition: spawned_process and container and proc.name = kx-victim
  output: victim killed (command=%proc.cmdline container_id=%container.id)
  priority: CRITICAL
  tags: [test]
  action: kill
"""


def stream_alerts(client):
    return [json.loads(d) for _, _, d in client.stream_msgs("KLAXON_ALERTS")]


def victim_alerts(client, cid):
    return [a for a in stream_alerts(client)
            if a.get("rule") == "Kill victim in container"
            and a["output_fields"].get("container.id") == cid[:12]]


def run_victim(tmp_path, ctr):
    """Runs a copy of /bin/sleep named kx-victim inside the cgroup ctr;
    returns its wait status as (exit code or -signal)."""
    exe = tmp_path / "kx-victim"
    shutil.copy("/bin/sleep", exe)
    p = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0" && exec "$1" 1',
                          str(ctr / "cgroup.procs"), str(exe)])
    return p.wait(10)


def rules_file(tmp_path, text):
    path = tmp_path / "kill_rules.yaml"
    path.write_text("- macro: spawned_process\n  condition: (evt.type in (execve, execveat) "
                    "and evt.dir=<)\n- macro: container\n  condition: (container.id != host)\n"
                    + text)
    return path


def test_kill_in_kernel_only_when_enforced(nats, tmp_path, cgroups):
    require_root()
    rules = rules_file(tmp_path, KILL_RULES)
    c = nats.client()

    for enforce in ("true", "false"):
        s = Sensor(tmp_path, nats.url, name="enforce-" + enforce, ensure_stream="true",
                   enforce=enforce, rules_files=json.dumps([str(rules)]))
        try:
            s.wait_attached()
            assert "1 kill rule(s)" in s.text(), s.text()
            full = secrets.token_hex(32)
            status = run_victim(tmp_path, cgroups("cri-containerd-%s.scope" % full))
            a = wait_for(lambda: victim_alerts(c, full), 10, what="the victim's alert")[0]
            f = a["output_fields"]
            if enforce == "true":
                assert status == -signal.SIGKILL, "kx-victim was not killed: %s" % status
                assert f.get("klaxon.killed") is True, a
            else:
                assert status == 0, "kx-victim should have run (enforce off): %s" % status
                assert f.get("klaxon.killed") is False, a
            assert f.get("klaxon.action") == "kill", a

            # the same program on the host is not in a container: never killed
            assert run_victim(tmp_path, _own_cgroup()) == 0
        finally:
            s.kill()


def _own_cgroup():
    from pathlib import Path
    line = [x for x in Path("/proc/self/cgroup").read_text().splitlines()
            if x.startswith("0::")][0]
    return Path("/sys/fs/cgroup/unified") / line[3:].lstrip("/")


def test_kill_rule_the_kernel_cannot_decide_is_refused(tmp_path):
    require_root()
    rules = rules_file(tmp_path, KILL_RULES.replace(
        "proc.name = kx-victim", "proc.cmdline contains evil"))
    cfg = tmp_path / "s.yaml"
    cfg.write_text("sensor:\n  rules_files: [%s]\n" % json.dumps(str(rules)))
    p = subprocess.run([str(sensor_exe()), "-c", str(cfg), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "proc.cmdline" in p.stderr and "kill_rules.yaml:" in p.stderr, p.stderr


def scrape(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read()
    return text.decode()


def test_metrics_and_heartbeat(nats, tmp_path):
    require_root()
    port = free_port()
    c = nats.client()
    sid = c.subscribe("klaxon.heartbeat.>")
    s = Sensor(tmp_path, nats.url, ensure_stream="true", metrics_port=port,
               heartbeat_interval="1s")
    try:
        s.wait_attached()
        # some activity: execs, and reads of a file no rule wants (prefiltered)
        for _ in range(5):
            subprocess.run(["/bin/cat", "/etc/hostname"], stdout=subprocess.DEVNULL, check=True)

        def ready():
            m = scrape(port)
            return m if ('klaxon_sensor_kernel_filtered_total{node="%s",type="openat"}' % NODE
                         in m) else None
        m = wait_for(ready, 10, what="prefiltered opens in /metrics")
        assert 'klaxon_sensor_kernel_events_total{node="%s",type="execve"}' % NODE in m
        assert 'klaxon_sensor_drops_total{node="%s",reason="ringbuf_full"} 0' % NODE in m
        assert 'klaxon_sensor_rules{node="%s"} 24' % NODE in m
        assert "# TYPE klaxon_sensor_kernel_events_total counter" in m
        execs = [line for line in m.splitlines()
                 if line.startswith('klaxon_sensor_kernel_events_total{node="%s",type="execve"}'
                                    % NODE)]
        assert int(execs[0].split()[-1]) >= 5, execs

        # the subject carries the node as a token: "test-node" -> test_node
        for _ in range(10):
            subj, _, data = c.next_msg(sid, timeout=5)
            hb = json.loads(data)
            if hb["events"].get("execve", 0) >= 5:
                break
        assert subj == "klaxon.heartbeat.test_node", subj
        assert hb["node"] == NODE
        assert hb["events"].get("execve", 0) >= 5, hb
        assert hb["drops_total"] == 0, hb
        assert hb["rules"] == 24 and hb["rss_bytes"] > 0, hb

        bad = urllib.request.Request("http://127.0.0.1:%d/nope" % port)
        try:
            urllib.request.urlopen(bad, timeout=5)
            raise AssertionError("404 expected")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        s.kill()
    assert os.path.exists(s.log)
