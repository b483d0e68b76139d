# SPDX-License-Identifier: Apache-2.0
"""The Slack output against a local sink that checks what Slack's incoming
webhooks require and answers as Slack does: 200 "ok"; 400 invalid_payload or
no_text; 404 no_service for an unknown hook path; 429 with Retry-After."""
import http.server
import json
import re
import threading
import time

import pytest

from conftest import falco_alert, free_port, wait_for

HOOK = "/services/T0000KX/B0000KX/abcdefghijklmnopqrstuvwx"


class SlackSink:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d%s" % (self.port, HOOK)
        self.messages = []
        self.errors = []
        self.limit_once = False  # answer the next request 429 Retry-After: 1
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, text, headers=()):
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/html")
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != HOOK:
                    return self.reply(404, "no_service")
                if sink.limit_once:
                    sink.limit_once = False
                    return self.reply(429, "rate_limited", [("Retry-After", "1")])
                if not self.headers.get("Content-Type", "").startswith("application/json"):
                    sink.errors.append("content-type %s" % self.headers.get("Content-Type"))
                    return self.reply(400, "invalid_payload")
                try:
                    msg = json.loads(body)
                except ValueError:
                    return self.reply(400, "invalid_payload")
                problem = check(msg)
                if problem:
                    sink.errors.append(problem)
                    return self.reply(400, problem)
                sink.messages.append(msg)
                self.reply(200, "ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def check(msg):
    """Slack's rules for a message with attachments; the reason, or None."""
    if not isinstance(msg, dict):
        return "invalid_payload"
    if not (isinstance(msg.get("text"), str) and msg["text"]) and not msg.get("attachments"):
        return "no_text"
    for key in ("channel", "username", "icon_url"):
        if key in msg and not isinstance(msg[key], str):
            return "invalid_payload"
    for att in msg.get("attachments", []):
        if not isinstance(att.get("fallback"), str):
            return "invalid_attachments"
        if "color" in att and not re.fullmatch(r"#[0-9a-fA-F]{6}|good|warning|danger",
                                               att["color"]):
            return "invalid_attachments"
        if "ts" in att and not isinstance(att["ts"], (int, float)):
            return "invalid_attachments"
        for f in att.get("fields", []):
            if set(f) - {"title", "value", "short"} or not isinstance(f.get("title"), str) \
                    or not isinstance(f.get("value"), str) or not isinstance(f.get("short"), bool):
                return "invalid_attachments"
    return None


@pytest.fixture
def slack():
    s = SlackSink()
    yield s
    s.close()


@pytest.mark.parametrize("kind", ["slack", "mattermost", "rocketchat"])
def test_slack_message_shape(hub, slack, kind):
    """Mattermost and Rocket.Chat take Slack's payload on their webhooks."""
    h = hub(outputs=[{
        "name": "chat-sec", "type": kind, "webhookurl": slack.url,
        "channel": "#sec-alerts", "username": "Klaxon", "outputformat": "all",
        "messageformat": "%rule on %hostname ({{ container.id }})",
        "mentions": {"critical": "<!here>", "warning": "<@U0TEAM>"}}])
    crit = falco_alert(priority="Critical", container="aaaaaaaaaaaa")
    notice = falco_alert(priority="Notice", container="bbbbbbbbbbbb")
    warn = falco_alert(priority="Error", container="cccccccccccc")
    for a in (crit, notice, warn):
        assert h.post(a)[0] == 200
    wait_for(lambda: len(slack.messages) == 3, 10, what="3 Slack messages")
    assert slack.errors == []
    by_ctr = {m["text"].split("(")[-1].rstrip(")"): m for m in slack.messages}
    m = by_ctr["aaaaaaaaaaaa"]
    assert m["text"] == "<!here> Terminal shell in container on node-a (aaaaaaaaaaaa)"
    assert m["channel"] == "#sec-alerts" and m["username"] == "Klaxon"
    att = m["attachments"][0]
    assert att["color"] == "#e01e5a" and att["text"] == crit["output"]
    fields = {f["title"]: f["value"] for f in att["fields"]}
    assert fields["rule"] == "Terminal shell in container"
    assert fields["priority"] == "Critical" and fields["proc.name"] == "bash"
    assert fields["container.id"] == "aaaaaaaaaaaa"
    # mentions: warning covers error; notice has none
    assert by_ctr["cccccccccccc"]["text"].startswith("<@U0TEAM> ")
    assert not by_ctr["bbbbbbbbbbbb"]["text"].startswith("<")


def test_slack_text_only_and_rate_limit(hub, slack):
    slack.limit_once = True
    h = hub(outputs=[{"name": "slack", "type": "slack", "webhookurl": slack.url,
                      "outputformat": "text", "backoff": ["5s"]}])
    t0 = time.time()
    a = falco_alert()
    assert h.post(a)[0] == 200
    wait_for(lambda: slack.messages, 15, what="the message after 429")
    assert time.time() - t0 >= 0.9  # Retry-After: 1 honoured, not the 5 s backoff
    att = slack.messages[0]["attachments"][0]
    assert "fields" not in att and att["text"] == a["output"]
    assert h.metric("klaxon_output_retried_total", output="slack") == 1


def test_slack_unknown_hook_is_dead_lettered(hub, slack, nats):
    h = hub(outputs=[{"name": "slack", "type": "slack",
                      "webhookurl": slack.url.replace("B0000KX", "B9999XX")}])
    a = falco_alert()
    assert h.post(a)[0] == 200
    nc = nats.client()
    msgs = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.slack"), 10,
                    what="dead letter")
    subj, hdrs, data = msgs[0]
    assert json.loads(data)["uuid"] == a["uuid"]
    assert "404" in hdrs and "no_service" in hdrs
    assert slack.messages == []


def test_slack_config_errors(hub, tmp_path, nats):
    """Settings only the Slack plugin knows are checked when the hub starts:
    every problem reported with file:line, the secret URL never echoed."""
    import subprocess
    from conftest import BUILD, yaml_dump
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "s", "type": "slack", "webhookurl": "ftp://secret-x",
                     "outputformat": "pretty", "mentions": {"loud": "<!here>"}}]}) + "\n")
    p = subprocess.run([str(BUILD / "bin" / "klaxon-hub", ), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    err = p.stderr + p.stdout
    assert re.search(r"bad\.yaml:\d+:\d+: output s: webhookurl must be an http\(s\):// URL", err), err
    assert "outputformat \"pretty\"" in err
    assert "\"loud\" is not a priority" in err
    assert "secret-x" not in err  # the URL is a secret: never repeated
