# SPDX-License-Identifier: Apache-2.0
"""The Kafka output against a Kafka protocol broker: librdkafka's mock
cluster run as a process (tests/fakes/kafka_mock.c; Debian packages no
Kafka). Alerts posted to a real hub arrive in the topic once each, keyed by
the hub's dedupe key; a broker that is down when the hub starts gets every
alert once it is up; a topic the user may not write to dead-letters the
batch; bad settings stop the hub with the key named."""
import json
import queue
import subprocess
import threading
import time

import pytest

from conftest import BUILD, falco_alert, free_port, wait_for, yaml_dump

TOPIC = "falco"
TOPIC_AUTHORIZATION_FAILED = 29
API_PRODUCE = 0


class KafkaMock:
    """The fake broker: records it received, commands on its stdin."""

    def __init__(self, tmp, topic=TOPIC, partitions=3):
        exe = BUILD / "tests" / "fakes" / "kafka_mock"
        assert exe.exists(), "make %s first" % exe
        self.log = open(tmp / "kafka_mock.log", "ab")
        self.proc = subprocess.Popen([str(exe), "-t", topic, "-p", str(partitions)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        self.records = []
        self.acks = queue.Queue()
        self.lock = threading.Lock()
        first = json.loads(self.proc.stdout.readline())
        self.bootstrap = first["bootstrap"]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            obj = json.loads(line)
            if "ok" in obj or "error" in obj:
                self.acks.put(obj)
            else:
                with self.lock:
                    self.records.append(obj)

    def command(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        assert self.acks.get(timeout=5) == {"ok": cmd}

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def wait_records(self, n, timeout=20):
        return wait_for(lambda: len(self.snapshot()) >= n and self.snapshot(), timeout,
                        what="%d records in Kafka" % n)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def kafka(tmp_path):
    k = KafkaMock(tmp_path)
    yield k
    k.stop()


def kafka_output(**extra):
    out = {"name": "kafka", "type": "kafka", "topic": TOPIC, "timeout": "2s",
           "backoff": ["200ms", "500ms", "1s"], "ack_wait": "10s"}
    out.update(extra)
    return out


def test_alerts_arrive_once_each_keyed_by_dedupe_key(hub, kafka, monkeypatch):
    # hostport from the environment, Falcosidekick style: <NAME>_HOSTPORT
    monkeypatch.setenv("KAFKA_HOSTPORT", kafka.bootstrap)
    h = hub(outputs=[kafka_output(compression="snappy")])
    sent = [falco_alert(container="c%02d" % i, priority="Warning") for i in range(5)]
    for a in sent:
        assert h.post(a)[0] == 200
    kafka.wait_records(5)
    time.sleep(1.0)  # anything more would be a duplicate
    recs = kafka.snapshot()
    assert len(recs) == 5, recs
    by_uuid = {}
    for r in recs:
        assert r["topic"] == TOPIC
        value = json.loads(r["value"])
        by_uuid[value["uuid"]] = (r, value)
    assert set(by_uuid) == {a["uuid"] for a in sent}
    for a in sent:
        r, value = by_uuid[a["uuid"]]
        assert value["rule"] == a["rule"] and value["priority"] == "Warning"
        assert value["output_fields"]["container.id"] == a["output_fields"]["container.id"]
        # the record key is the hub's dedupe key, also carried in the alert
        assert r["key"] == value["output_fields"]["klaxon.dedupe_key"]
    assert len({r["key"] for r in recs}) == 5


def test_broker_down_at_hub_start_then_up(hub, kafka):
    kafka.command("down")
    # the hub starts all the same: the producer connects lazily
    h = hub(outputs=[kafka_output(hostport=kafka.bootstrap, timeout="1s")])
    sent = [falco_alert(container="down%02d" % i) for i in range(3)]
    for a in sent:
        assert h.post(a)[0] == 200
    wait_for(lambda: "MSG_TIMED_OUT" in h.logtext(), 15, what="a failed delivery in the log")
    assert kafka.snapshot() == []
    kafka.command("up")
    kafka.wait_records(3, timeout=30)
    time.sleep(1.0)
    got = [json.loads(r["value"])["uuid"] for r in kafka.snapshot()]
    # at-least-once; records that timed out never reached the broker, so no
    # duplicates are expected here
    assert sorted(got) == sorted(a["uuid"] for a in sent), got
    assert h.metric("klaxon_output_deadlettered_total", output="kafka") == 0


def test_topic_authorization_failure_dead_letters(hub, kafka, nats):
    h = hub(outputs=[kafka_output(hostport=kafka.bootstrap)])
    kafka.command("error %d %d 1" % (API_PRODUCE, TOPIC_AUTHORIZATION_FAILED))
    a = falco_alert(container="denied")
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.kafka"), 20,
                    what="dead letter")
    subj, hdrs, data = msgs[0]
    assert json.loads(data)["uuid"] == a["uuid"]
    assert "TOPIC_AUTHORIZATION_FAILED" in hdrs
    assert h.metric("klaxon_output_deadlettered_total", output="kafka") == 1
    # the error was a one-off: the next alert goes through on a fresh producer
    b = falco_alert(container="allowed")
    assert h.post(b)[0] == 200
    recs = kafka.wait_records(1)
    assert json.loads(recs[0]["value"])["uuid"] == b["uuid"]


def test_bad_kafka_settings_refused(tmp_path, nats):
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "kafka", "type": "kafka", "hostport": "127.0.0.1:9092",
                     "topic": TOPIC, "compression": "brotli", "requiredacks": "MOST",
                     "sasl": "PLAIN", "password": "hunter2"}]}) + "\n")
    p = subprocess.run([str(BUILD / "bin" / "klaxon-hub"), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    err = p.stderr + p.stdout
    assert p.returncode == 1, err
    assert 'compression "brotli" is not one of' in err
    assert 'requiredacks "MOST"' in err
    assert "sasl PLAIN needs username and password" in err
    assert "hunter2" not in err
