# SPDX-License-Identifier: Apache-2.0
"""The SMTP output against a real SMTP server (aiosmtpd) on loopback: the
MIME shape of a mail, STARTTLS + AUTH, implicit TLS (smtps), a wrong
password and a rejected recipient dead-lettered with the reason, a 4xx
retried, a server down then up, and digest mode (one mail for a flood).

The server runs in this process (aiosmtpd's Controller on its own thread);
certificates are made with openssl in tmp_path for each test."""
import email
import email.policy
import json
import re
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BUILD, falco_alert, free_port, wait_for, yaml_dump

# Fail loudly, never skip: these tests are how the SMTP output is known to work.
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "klaxon-bot"
PASSWORD = "Pa55-w0rd-never-logged"


class Handler:
    """Records every accepted message; can refuse recipients or DATA."""

    def __init__(self):
        self.mails = []            # (mail_from, rcpt_tos, raw bytes, parsed message)
        self.lock = threading.Lock()
        self.reject_rcpt = set()   # addresses answered 550
        self.tempfail_data = 0     # answer DATA 451 this many times
        self.logins = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject_rcpt:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.tempfail_data > 0:
                self.tempfail_data -= 1
                return "451 4.3.0 Try again later"
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), raw, msg))
        return "250 2.0.0 Ok: queued"

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        self.logins.append((mechanism, auth_data.login.decode(), ok))
        # handled=False: aiosmtpd then answers "535 5.7.8 ..." itself
        return AuthResult(success=ok, handled=False)

    def count(self):
        with self.lock:
            return len(self.mails)

    def wait(self, n, timeout=15):
        wait_for(lambda: self.count() >= n, timeout, what="%d mail(s)" % n)
        with self.lock:
            return list(self.mails)


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<free port>; stop()/start() keep the port."""

    def __init__(self, handler, **kw):
        self.handler = handler
        self.port = free_port()
        self.kw = kw
        self.ctl = None
        self.start()

    def start(self):
        self.ctl = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                              server_hostname="mx.test", **self.kw)
        self.ctl.start()

    def stop(self):
        if self.ctl:
            self.ctl.stop()
            self.ctl = None


@pytest.fixture
def servers():
    started = []

    def make(handler=None, **kw):
        s = SmtpServer(handler or Handler(), **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def certs(tmp_path):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    d = tmp_path / "pki"
    d.mkdir()

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Klaxon Test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
        "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    return {"ca": str(d / "ca.pem"), "ctx": ctx}


def smtp_output(port, **kw):
    out = {"name": "mail", "type": "smtp", "hostport": "127.0.0.1:%d" % port, "tls": False,
           "from": "Klaxon Alerts <klaxon@example.com>",
           "to": "sec@example.com, oncall@example.com",
           "backoff": ["200ms", "500ms", "1s"], "ack_wait": "5s"}
    out.update(kw)
    return out


def parts(msg):
    """{content type: decoded text} of a multipart/alternative message."""
    assert msg.get_content_type() == "multipart/alternative"
    got = {}
    for p in msg.iter_parts():
        got[p.get_content_type()] = p.get_content().replace("\r\n", "\n")
    return got


def dead_letters(nats, slug):
    nc = nats.client()
    return nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.%s" % slug)


def assert_wire_safe(raw):
    """7-bit, CRLF lines no longer than 76 (we fold and encode everything)."""
    for line in raw.split(b"\r\n"):
        assert len(line) <= 76, line
        assert all(b < 0x80 for b in line), line
        assert b"\r" not in line and b"\n" not in line


# --------------------------------------------------------------------------- tests

def test_smtp_mail_shape(hub, servers):
    srv = servers()
    h = hub(outputs=[smtp_output(srv.port)])
    a = falco_alert(rule="Terminal shell in container", host="n\u0153ud-\u00e9t\u00e9",
                    container="aaaaaaaaaaaa")
    a["output"] = ("A shell <script>alert('x')</script> & \"q\" in " + "\u65e5\u672c " +
                   "x" * 300)
    assert h.post(a)[0] == 200
    mail_from, rcpts, raw, msg = srv.handler.wait(1)[0]

    assert mail_from == "klaxon@example.com"
    assert sorted(rcpts) == ["oncall@example.com", "sec@example.com"]
    assert_wire_safe(raw)
    assert msg["From"] == "Klaxon Alerts <klaxon@example.com>"
    assert msg["To"] == "sec@example.com, oncall@example.com"
    assert msg["Subject"] == ("[Klaxon] Critical Terminal shell in container on "
                              "n\u0153ud-\u00e9t\u00e9")
    assert b"=?UTF-8?B?" in raw  # the non-ASCII subject is RFC 2047 encoded
    assert msg["MIME-Version"] == "1.0"
    assert msg["Message-ID"] == "<%s.mail@example.com>" % a["uuid"]
    assert msg["Auto-Submitted"] == "auto-generated"
    date = email.utils.parsedate_to_datetime(msg["Date"])
    assert abs(date.timestamp() - time.time()) < 60
    assert msg["X-Klaxon-Priority"] == "critical"

    p = parts(msg)
    assert list(p) == ["text/plain", "text/html"]
    text, html = p["text/plain"], p["text/html"]
    assert "Critical: Terminal shell in container" in text
    assert a["output"] in text  # long line intact after quoted-printable
    assert "container.id" in text and "aaaaaaaaaaaa" in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;" in html
    assert "\u65e5\u672c" in html
    assert re.search(r"<th[^>]*>proc\.name</th><td[^>]*>bash</td>", html)
    for part in msg.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"


def test_smtp_text_only_and_subject_template(hub, servers):
    srv = servers()
    h = hub(outputs=[smtp_output(srv.port, outputformat="text", to="sec@example.com",
                                 subject="ALERT {{ container.id }}\r\nBcc: evil@example.com")])
    a = falco_alert(container="bbbbbbbbbbbb")
    assert h.post(a)[0] == 200
    _, rcpts, raw, msg = srv.handler.wait(1)[0]
    assert rcpts == ["sec@example.com"]
    assert msg.get_content_type() == "text/plain"
    assert msg["Subject"] == "ALERT bbbbbbbbbbbb Bcc: evil@example.com"  # one line, no header
    assert msg["Bcc"] is None
    assert a["output"] in msg.get_content()


def test_smtp_starttls_auth(hub, servers, certs, monkeypatch):
    handler = Handler()
    srv = servers(handler, tls_context=certs["ctx"], require_starttls=True, auth_required=True,
                  authenticator=handler.authenticator)
    # An instance named "smtp" reads SMTP_<KEY> from the environment.
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SMTP_USER", USER)
    h = hub(outputs=[{"name": "smtp", "type": "smtp", "hostport": "127.0.0.1:%d" % srv.port,
                      "from": "klaxon@example.com", "to": "sec@example.com",
                      "cafile": certs["ca"], "authmechanism": "plain"}])
    a = falco_alert(container="cccccccccccc")
    assert h.post(a)[0] == 200
    _, _, _, msg = srv.handler.wait(1)[0]
    assert msg["Message-ID"] == "<%s.smtp@example.com>" % a["uuid"]
    assert srv.handler.logins == [("PLAIN", USER, True)]
    assert PASSWORD not in h.logtext()
    assert "STARTTLS required" in h.logtext()


def test_smtp_wrong_password_dead_lettered(hub, servers, certs, nats):
    handler = Handler()
    srv = servers(handler, tls_context=certs["ctx"], require_starttls=True, auth_required=True,
                  authenticator=handler.authenticator)
    wrong = "Wr0ng-" + PASSWORD
    h = hub(outputs=[smtp_output(srv.port, tls=True, cafile=certs["ca"], user=USER,
                                 password=wrong, max_deliver=5)])
    a = falco_alert(container="dddddddddddd")
    assert h.post(a)[0] == 200
    msgs = wait_for(lambda: dead_letters(nats, "mail"), 15, what="dead letter")
    _, hdrs, data = msgs[0]
    assert json.loads(data)["uuid"] == a["uuid"]
    assert "authentication failed (535)" in hdrs, hdrs
    assert handler.count() == 0
    assert len(handler.logins) == 1  # permanent: not retried
    time.sleep(0.5)
    log = h.logtext()
    assert "authentication failed (535)" in log
    assert wrong not in log and wrong not in hdrs
    assert PASSWORD not in log


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_implicit_tls(hub, servers, certs):
    handler = Handler()
    # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS
    # from its first byte, so it may offer AUTH at once.
    srv = servers(handler, ssl_context=certs["ctx"], auth_required=True,
                  auth_require_tls=False, authenticator=handler.authenticator)
    h = hub(outputs=[smtp_output(srv.port, hostport="smtps://127.0.0.1:%d" % srv.port, tls=True,
                                 cafile=certs["ca"], user=USER, password=PASSWORD)])
    a = falco_alert(container="eeeeeeeeeeee")
    assert h.post(a)[0] == 200
    _, _, _, msg = handler.wait(1)[0]
    assert msg["Message-ID"] == "<%s.mail@example.com>" % a["uuid"]
    assert [ok for _, _, ok in handler.logins] == [True]
    assert "implicit TLS" in h.logtext()


def test_smtp_untrusted_certificate(hub, servers, certs, nats):
    """STARTTLS against a certificate we were not told to trust: retried (a
    certificate can be fixed), then dead-lettered with the reason."""
    srv = servers(tls_context=certs["ctx"], require_starttls=True)
    h = hub(outputs=[smtp_output(srv.port, tls=True, max_deliver=2)])
    assert h.post(falco_alert(container="ffffffffffff"))[0] == 200
    msgs = wait_for(lambda: dead_letters(nats, "mail"), 20, what="dead letter")
    assert "TLS certificate not trusted" in msgs[0][1]
    assert srv.handler.count() == 0


def test_smtp_rejected_recipient_and_tempfail(hub, servers, nats):
    srv = servers()
    srv.handler.reject_rcpt.add("nobody@example.com")
    srv.handler.tempfail_data = 1
    h = hub(outputs=[smtp_output(srv.port, to="sec@example.com"),
                     smtp_output(srv.port, name="bad", to="nobody@example.com")])
    a = falco_alert(container="111111111111")
    assert h.post(a)[0] == 200
    # "mail": DATA answered 451 once, then delivered: exactly one mail
    # "bad": RCPT answered 550: dead-lettered at once with the server's words
    msgs = wait_for(lambda: dead_letters(nats, "bad"), 15, what="dead letter")
    assert "recipient (RCPT TO) rejected (550)" in msgs[0][1]
    assert "User unknown" in msgs[0][1]
    mails = srv.handler.wait(1)
    time.sleep(1.5)
    assert srv.handler.count() == 1
    assert mails[0][1] == ["sec@example.com"]
    assert h.metric("klaxon_output_retried_total", output="mail") >= 1


def test_smtp_server_down_then_up(hub, servers):
    srv = servers()
    srv.stop()
    h = hub(outputs=[smtp_output(srv.port, max_deliver=100, timeout="2s")])
    alerts = [falco_alert(container="%012d" % (200 + i)) for i in range(5)]
    for a in alerts:
        assert h.post(a)[0] == 200
    wait_for(lambda: (h.metric("klaxon_output_retried_total", output="mail") or 0) >= 1, 15,
             what="a failed attempt while the server is down")
    srv.start()
    srv.handler.wait(5, timeout=30)
    time.sleep(2)
    ids = sorted(m[3]["Message-ID"] for m in srv.handler.mails)
    assert ids == sorted("<%s.mail@example.com>" % a["uuid"] for a in alerts)


def test_smtp_digest(hub, servers):
    """20 alerts within the interval -> exactly one mail listing them all.
    Needs the core's hold/flush support (hub/fanout.c)."""
    srv = servers()
    h = hub(outputs=[smtp_output(srv.port, digest="2s")])
    alerts = [falco_alert(container="%012d" % (300 + i),
                          priority="Critical" if i < 3 else "Warning",
                          rule="Terminal shell in container" if i < 3 else "Write below etc",
                          host="node-%d" % (i % 4)) for i in range(20)]
    t0 = time.time()
    for a in alerts:
        assert h.post(a)[0] == 200
    _, _, raw, msg = srv.handler.wait(1, timeout=20)[0]
    assert time.time() - t0 >= 1.5  # held for the interval, not sent at once
    time.sleep(3)
    assert srv.handler.count() == 1, "one digest, not one mail per alert"
    assert_wire_safe(raw)
    assert re.fullmatch(r"\[Klaxon\] 20 alerts \(3 critical\) (from|at) .* UTC", msg["Subject"]), \
        msg["Subject"]
    text, html = parts(msg)["text/plain"], parts(msg)["text/html"]
    assert re.search(r"\b3 x Critical +Terminal shell in container\n", text), text
    assert re.search(r"\b17 x Warning +Write below etc\n", text), text
    assert "nodes: node-0, node-1, node-2, node-3" in text
    for a in alerts:
        assert a["output"] in text and a["output"] in html
    assert "more alerts not listed" not in text
    assert h.metric("klaxon_output_delivered_total", output="mail") == 20


def test_smtp_config_errors(tmp_path, nats):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "m", "type": "smtp", "hostport": "mail.example.com:99999",
                     "from": "nobody", "to": "a@example.com", "password": "s3cret-pw-x",
                     "user": "u", "authmechanism": "magic", "outputformat": "pdf"}]}) + "\n")
    p = subprocess.run([str(BUILD / "bin" / "klaxon-hub"), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    err = p.stderr + p.stdout
    assert re.search(r"bad\.yaml:\d+:\d+: output m: hostport \"mail.example.com:99999\"", err), err
    assert "from \"nobody\"" in err
    assert "authmechanism \"magic\"" in err
    assert "outputformat \"pdf\"" in err
    assert "s3cret-pw-x" not in err
