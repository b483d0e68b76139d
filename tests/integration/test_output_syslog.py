# SPDX-License-Identifier: Apache-2.0
"""The syslog output against a real rsyslogd of the test's own (never the
system's): imudp, imtcp, and imtcp with the gtls driver (anonymous TLS and
x509/certvalid mutual TLS), on loopback ports, writing every received
message as one JSON line with rsyslog's own parse of it (pri, hostname,
app-name, msgid, structured data, msg) next to the raw message. So what is
asserted is what a real syslog server made of our framing and headers."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import falco_alert, free_port, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from k8s_api import make_certs  # noqa: E402  (CA, server and client certs, other CA)

RSYSLOGD = "/usr/sbin/rsyslogd"

TEMPLATE = """template(name="kxjson" type="list" option.jsonf="on") {
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="tag" name="syslogtag" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="input" name="inputname" format="jsonf")
}"""


def listening(port, proto):
    """Whether something on this host listens on 127.0.0.1:port (from
    /proc/net, so that probing does not itself talk to the server)."""
    want = ":%04X" % port
    path = "/proc/net/udp" if proto == "udp" else "/proc/net/tcp"
    with open(path) as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1].endswith(want) and (proto == "udp" or cols[3] == "0A"):
                return True
    return False


class Rsyslog:
    """One rsyslogd -n with its own config, pid file and work directory."""

    def __init__(self, tmp, certs):
        assert os.access(RSYSLOGD, os.X_OK), \
            "rsyslogd is not installed (%s): make deps (rsyslog, rsyslog-gnutls)" % RSYSLOGD
        self.dir = Path(tmp) / "rsyslog"
        (self.dir / "work").mkdir(parents=True, exist_ok=True)
        self.certs = Path(certs)
        self.ca = str(self.certs / "ca.crt")
        self.other_ca = str(self.certs / "other-ca.crt")
        self.client_cert = str(self.certs / "client.crt")
        self.client_key = str(self.certs / "client.key")
        self.udp, self.tcp, self.tls, self.mtls = (free_port() for _ in range(4))
        self.out = self.dir / "received.jsonl"
        self.log = self.dir / "rsyslogd.log"
        self.conf = self.dir / "rsyslog.conf"
        self.pidfile = self.dir / "rsyslogd.pid"
        d = self.dir
        # No imuxsock/imklog: this instance must not touch /dev/log or the
        # kernel log. Control characters are kept as sent (the default would
        # turn LEEF's tabs into "#011").
        self.conf.write_text(f"""
global(workDirectory="{d / 'work'}" maxMessageSize="64k"
       parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="{self.ca}"
       defaultNetstreamDriverCertFile="{self.certs / 'server.crt'}"
       defaultNetstreamDriverKeyFile="{self.certs / 'server.key'}")
module(load="imudp")
module(load="imtcp" maxSessions="50")
{TEMPLATE}
ruleset(name="kx") {{ action(type="omfile" file="{self.out}" template="kxjson") }}
input(type="imudp" address="127.0.0.1" port="{self.udp}" ruleset="kx" name="udp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp}" ruleset="kx" name="tcp")
input(type="imtcp" address="127.0.0.1" port="{self.tls}" ruleset="kx" name="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{self.mtls}" ruleset="kx" name="mtls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
""")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.proc.poll() is not None or (
                listening(self.udp, "udp") and all(listening(p, "tcp")
                                                   for p in (self.tcp, self.tls, self.mtls))),
                15, what="rsyslogd listening")
            assert self.proc.poll() is None, "rsyslogd exited:\n" + self.logtext()
        except BaseException:
            self.stop()  # never leave one behind
            raise

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def logtext(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def messages(self):
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def wait_messages(self, pred, timeout=15, what="messages at rsyslogd"):
        def check():
            msgs = self.messages()
            return msgs if pred(msgs) else None
        return wait_for(check, timeout, what=what)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """One CA, server and client certificates, and an unrelated CA, made
    with the openssl CLI once for the module."""
    d = tmp_path_factory.mktemp("syslog-certs")
    make_certs(str(d))
    return d


@pytest.fixture
def rsyslog(tmp_path, certs):
    r = Rsyslog(tmp_path, certs)
    yield r
    r.stop()


def syslog(r, **kw):
    o = {"name": "syslog", "type": "syslog", "host": "127.0.0.1", "port": r.tcp,
         "backoff": ["300ms", "500ms", "1s"], "timeout": "3s"}
    o.update(kw)
    return o


def test_udp_rfc5424_json(hub, rsyslog):
    h = hub(outputs=[syslog(rsyslog, protocol="udp", port=rsyslog.udp, facility="local3")])
    sent = [falco_alert(container="%012x" % i, priority=p)
            for i, p in enumerate(["Critical", "Warning", "Debug"])]
    for a in sent:
        assert h.post(a)[0] == 200
    msgs = rsyslog.wait_messages(lambda m: len(m) >= 3, what="3 datagrams")
    time.sleep(0.3)
    msgs = rsyslog.messages()
    assert len(msgs) == 3 and {m["input"] for m in msgs} == {"udp"}
    by_uuid = {json.loads(m["msg"])["uuid"]: m for m in msgs}
    assert set(by_uuid) == {a["uuid"] for a in sent}
    for a, sev in zip(sent, (2, 4, 7)):
        m = by_uuid[a["uuid"]]
        # rsyslog parsed it as RFC 5424: version 1 and every header field
        assert m["version"] == "1"
        assert m["facility"] == "19" and m["severity"] == str(sev)
        assert m["pri"] == str(19 * 8 + sev)
        assert m["hostname"] == "node-a" and m["app"] == "klaxon"
        assert m["procid"] == "-" and m["msgid"] == "syscall" and m["sd"] == "-"
        # the alert's own time, to the microsecond, in UTC
        assert m["timestamp"] == a["time"][:26] + "Z"
        assert m["raw"].startswith("<%d>1 %s node-a klaxon - syscall - {" %
                                   (19 * 8 + sev, m["timestamp"]))
        body = json.loads(m["msg"])
        assert body["rule"] == a["rule"] and body["output_fields"]["container.id"] == \
            a["output_fields"]["container.id"]


def test_tcp_octet_counted_cef_with_nasty_contents(hub, rsyslog):
    h = hub(outputs=[syslog(rsyslog, format="cef", sdid="klaxon@32473")])
    nasty = []
    for i in range(5):
        a = falco_alert(container="ca11ab1e%04d" % i,
                        rule="Pipe | back\\slash = eq\nnewline %d" % i,
                        output="out a=b | c\\d\nline2\r [%d]" % i)
        a["output_fields"]["proc.cmdline"] = 'sh -c "x=1|y" \\ %d\n' % i
        a["output_fields"]["proc.aname[2]"] = "bash"
        nasty.append(a)
    for a in nasty:
        assert h.post(a)[0] == 200
    rsyslog.wait_messages(lambda m: len(m) >= 5, what="5 CEF messages")
    time.sleep(0.5)
    msgs = rsyslog.messages()
    # exactly one message per alert: the framing held despite LF, CR, '|'
    assert len(msgs) == 5, msgs
    for m in msgs:
        assert m["input"] == "tcp" and m["version"] == "1" and m["pri"] == str(16 * 8 + 2)
        assert m["msg"].startswith("CEF:0|Klaxon|Klaxon|")
        assert "\n" not in m["raw"] and "\r" not in m["raw"]
    got = {m["msg"].split("|")[4]: m for m in msgs}
    for i, a in enumerate(nasty):
        m = got["pipe_back_slash_eq_newline_%d" % i]
        cef = m["msg"]
        assert ("|Pipe \\| back\\\\slash = eq newline %d|8|" % i) in cef
        assert (" msg=out a\\=b | c\\\\d\\nline2\\r [%d]" % i) in cef
        assert (' proc.cmdline=sh -c "x\\=1|y" \\\\ %d\\n ' % i) in cef
        assert " proc.aname_2_=bash " in cef
        assert " externalId=%s " % a["uuid"] in cef and " cs1=Critical " in cef
        # the SD element, as rsyslog parsed it
        assert m["sd"].startswith('[klaxon@32473 uuid="%s" rule="Pipe | back\\\\slash = eq '
                                  'newline %d" priority="Critical"' % (a["uuid"], i))


def test_rfc3164_and_leef(hub, rsyslog):
    h = hub(outputs=[syslog(rsyslog, rfc="3164", format="leef", facility="daemon",
                            appname="falcon")])
    a = falco_alert(priority="Warning", output="tab\there | pipe = eq\nnl")
    assert h.post(a)[0] == 200
    (m,) = rsyslog.wait_messages(lambda m: len(m) >= 1, what="the LEEF message")
    assert m["version"] == "0"  # rsyslog took it as RFC 3164
    assert m["pri"] == str(3 * 8 + 4) and m["hostname"] == "node-a"
    assert m["tag"] == "falcon:" and m["app"] == "falcon"
    leef = m["msg"].lstrip(" ")
    head, attrs = leef.split("|x09|", 1)
    assert head.startswith("LEEF:2.0|Klaxon|Klaxon|")
    assert head.endswith("|terminal_shell_in_container")
    kv = dict(p.split("=", 1) for p in attrs.split("\t"))
    assert kv["sev"] == "6" and kv["priority"] == "Warning" and kv["uuid"] == a["uuid"]
    assert kv["rule"] == a["rule"] and kv["cat"] == "syscall"
    assert kv["msg"] == "tab here | pipe = eq nl"  # no tab or LF inside a value
    assert kv["devTimeFormat"] == "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
    assert kv["devTime"] == a["time"][:23] + "+0000"
    assert kv["container.id"] == a["output_fields"]["container.id"]


def test_tls_verified_and_mutual(hub, rsyslog):
    h = hub(outputs=[
        syslog(rsyslog, name="tls", protocol="tls", port=rsyslog.tls, cafile=rsyslog.ca),
        syslog(rsyslog, name="mtls", protocol="tls", port=rsyslog.mtls, cafile=rsyslog.ca,
               clientcert=rsyslog.client_cert, clientkey=rsyslog.client_key,
               framing="non-transparent", format="cef")])
    a = falco_alert()
    assert h.post(a)[0] == 200
    msgs = rsyslog.wait_messages(lambda m: len(m) >= 2, what="2 TLS messages")
    time.sleep(0.3)
    msgs = rsyslog.messages()
    assert sorted(m["input"] for m in msgs) == ["mtls", "tls"]
    for m in msgs:
        assert m["version"] == "1" and m["hostname"] == "node-a"
        assert a["uuid"] in m["msg"]
    assert "connected to syslog server 127.0.0.1:%d (tls)" % rsyslog.tls in h.logtext()


def test_tls_wrong_ca_is_retried_not_delivered(hub, rsyslog, nats):
    h = hub(outputs=[
        syslog(rsyslog, name="badca", protocol="tls", port=rsyslog.tls, cafile=rsyslog.other_ca,
               max_deliver=3),
        # mutual TLS server, no client certificate: TLS 1.3 lets our
        # handshake finish before the server refuses; it must not count as sent
        syslog(rsyslog, name="nocert", protocol="tls", port=rsyslog.mtls, cafile=rsyslog.ca,
               max_deliver=3)])
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()

    def dead(name):
        return [json.loads(d)["uuid"] for _, _, d in
                nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter." + name)]
    wait_for(lambda: a["uuid"] in dead("badca") and a["uuid"] in dead("nocert"), 20,
             what="both dead-lettered after their retries")
    assert rsyslog.messages() == []
    log = h.logtext()
    assert "output badca: delivery failed" in log
    assert "certificate verify failed" in log
    assert "output nocert: delivery failed" in log
    assert "ended TLS right after the handshake" in log
    assert "client certificate missing or refused?" in log
    assert h.metric("klaxon_output_retried_total", output="badca") >= 2


def test_tcp_outage_every_alert_arrives_once(hub, rsyslog):
    h = hub(outputs=[syslog(rsyslog, max_deliver=50)])
    first = falco_alert(container="0utage000000")
    assert h.post(first)[0] == 200
    rsyslog.wait_messages(lambda m: len(m) == 1, what="the first message")

    rsyslog.stop()  # the server goes away; the hub's connection gets its FIN
    during = [falco_alert(container="0utage%06d" % i) for i in range(1, 11)]
    for a in during:
        assert h.post(a)[0] == 200
    wait_for(lambda: "output syslog: delivery failed" in h.logtext(), 15,
             what="a failed delivery while rsyslogd is down")
    assert "refused" in h.logtext()

    rsyslog.start()
    after = [falco_alert(container="0utage%06d" % i) for i in range(11, 16)]
    for a in after:
        assert h.post(a)[0] == 200
    want = {a["uuid"] for a in [first] + during + after}
    rsyslog.wait_messages(lambda m: {json.loads(x["msg"])["uuid"] for x in m} >= want, 30,
                          what="all 16 alerts after the outage")
    time.sleep(0.5)
    uuids = [json.loads(m["msg"])["uuid"] for m in rsyslog.messages()]
    assert sorted(uuids) == sorted(want)  # each once: none lost, none twice


def test_bad_syslog_settings_refused(build, tmp_path, nats):
    from conftest import yaml_dump
    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "s", "type": "syslog", "host": "127.0.0.1", "protocol": "sctp",
                     "format": "xml", "rfc": "5425", "facility": "local9"}]}) + "\n")
    p = subprocess.run([str(build / "bin" / "klaxon-hub"), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    err = p.stderr + p.stdout
    assert p.returncode == 1, err
    for want in ('protocol "sctp" is not udp, tcp or tls', 'format "xml" is not json, cef or leef',
                 'rfc "5425" is not 5424 or 3164', 'facility "local9"'):
        assert want in err, err


def test_env_settings_falcosidekick_names(build, tmp_path, nats, rsyslog):
    """SYSLOG_HOST / SYSLOG_PORT / SYSLOG_PROTOCOL / SYSLOG_FORMAT, as in
    Falcosidekick, for an instance named "syslog"."""
    from conftest import Hub
    cfg = {"log": {"level": "debug"}, "nats": {"url": nats.url},
           "http": {"listen": "127.0.0.1", "port": free_port()},
           "hub": {"name": "envhub", "ack_wait": "3s"},
           "outputs": [{"name": "syslog", "type": "syslog", "host": "ignored.invalid"}]}
    env = {"SYSLOG_HOST": "127.0.0.1", "SYSLOG_PORT": str(rsyslog.udp),
           "SYSLOG_PROTOCOL": "udp", "SYSLOG_FORMAT": "cef"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        h = Hub(build, cfg, tmp_path, "envhub")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        a = falco_alert()
        assert h.post(a)[0] == 200
        (m,) = rsyslog.wait_messages(lambda m: len(m) >= 1, what="the env-configured message")
        assert m["input"] == "udp" and m["msg"].startswith("CEF:0|")
    finally:
        h.kill()
