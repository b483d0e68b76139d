# SPDX-License-Identifier: Apache-2.0
"""Discord, Microsoft Teams and Telegram outputs, each against a local
endpoint that checks the request its service requires and answers with its
real success and error bodies. Webhook and bot tokens live in URL paths, so
each test also checks they never reach the hub's log or a dead-letter
reason."""
import http.server
import json
import re
import threading

import pytest

from conftest import falco_alert, free_port, wait_for

DISCORD_PATH = "/api/webhooks/1234567890/DiScOrDtOkEn"
TEAMS_PATH = "/webhookb2/abc@def/IncomingWebhook/TeAmStOkEn/xyz"
TG_TOKEN = "123456:TeLeGrAmSeCrEt"
GCHAT_PATH = "/v1/spaces/AAAA/messages"
GCHAT_QUERY = "key=GkEy&token=GcHaTtOkEn"


class Sink:
    """One HTTP endpoint; check(path, headers, body) -> (status, body) or None."""

    def __init__(self, check):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.got = []
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, reply = check(self.path, self.headers, body)
                if status < 300:
                    sink.got.append(json.loads(body))
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def discord_check(path, headers, body):
    if path != DISCORD_PATH:
        return 401, {"message": "Invalid Webhook Token", "code": 50027}
    try:
        m = json.loads(body)
        assert m.get("content") or m.get("embeds"), "Cannot send an empty message"
        for e in m.get("embeds", []):
            assert isinstance(e["color"], int) and 0 <= e["color"] <= 0xFFFFFF
            assert len(e["title"]) <= 256 and len(e["description"]) <= 4096
            assert len(e["fields"]) <= 25
            for f in e["fields"]:
                assert f["name"] and f["value"] and len(f["value"]) <= 1024
                assert isinstance(f["inline"], bool)
    except (ValueError, KeyError, AssertionError, TypeError):
        return 400, {"message": "Invalid Form Body", "code": 50035}
    return 204, ""


def teams_check(path, headers, body):
    if path != TEAMS_PATH:
        return 404, "Webhook Bad Request - Null or empty event"
    try:
        m = json.loads(body)
        assert m["@type"] == "MessageCard" and m["@context"].startswith("https://schema.org")
        assert m.get("summary") or m.get("text"), "Summary or Text is required."
        assert re.fullmatch(r"[0-9A-Fa-f]{6}", m["themeColor"])
        for s in m["sections"]:
            for f in s.get("facts", []):
                assert isinstance(f["name"], str) and isinstance(f["value"], str)
    except (ValueError, KeyError, AssertionError, TypeError) as e:
        return 400, "Bad payload received by generic incoming webhook. %s" % e
    return 200, "1"


def gchat_check(path, headers, body):
    if path != GCHAT_PATH + "?" + GCHAT_QUERY:
        return 403, {"error": {"code": 403, "message": "The caller does not have permission",
                               "status": "PERMISSION_DENIED"}}
    try:
        m = json.loads(body)
        assert isinstance(m["text"], str) and m["text"]
        for c in m.get("cardsV2", []):
            assert c["cardId"] and c["card"]["header"]["title"]
            for sec in c["card"]["sections"]:
                for w in sec["widgets"]:
                    assert isinstance(w["decoratedText"]["text"], str)
    except (ValueError, KeyError, AssertionError, TypeError):
        return 400, {"error": {"code": 400, "message": "Invalid JSON payload received.",
                               "status": "INVALID_ARGUMENT"}}
    return 200, {"name": "spaces/AAAA/messages/1", "text": m["text"]}


def telegram_check(path, headers, body):
    if path != "/bot%s/sendMessage" % TG_TOKEN:
        return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    m = json.loads(body)
    if m.get("chat_id") != "-100777":
        return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    text = m.get("text", "")
    # HTML mode: every '<' must open a known tag, '&' must start an entity
    stripped = re.sub(r"</?(b|pre)>", "", text)
    if "<" in stripped or re.search(r"&(?!amp;|lt;|gt;)", stripped) or len(text) > 4096 \
            or m.get("parse_mode") != "HTML":
        return 400, {"ok": False, "error_code": 400,
                     "description": "Bad Request: can't parse entities"}
    return 200, {"ok": True, "result": {"message_id": len(text)}}


@pytest.fixture
def sinks():
    made = []

    def make(check):
        s = Sink(check)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def tricky_alert():
    a = falco_alert(priority="Critical")
    a["output"] = "cat </etc/shadow & echo \"<b>x</b>\" > /dev/null"
    a["output_fields"]["proc.cmdline"] = "sh -c 'a && b < c'"
    return a


def test_discord_teams_telegram_formats(hub, sinks):
    d, t, g = sinks(discord_check), sinks(teams_check), sinks(telegram_check)
    gc = sinks(gchat_check)
    h = hub(outputs=[
        {"name": "gchat", "type": "googlechat",
         "webhookurl": gc.base + GCHAT_PATH + "?" + GCHAT_QUERY},
        {"name": "discord", "type": "discord", "webhookurl": d.base + DISCORD_PATH},
        {"name": "teams", "type": "teams", "webhookurl": t.base + TEAMS_PATH},
        {"name": "tg", "type": "telegram", "token": TG_TOKEN, "chatid": "-100777",
         "apiurl": g.base}])
    a = tricky_alert()
    assert h.post(a)[0] == 200
    wait_for(lambda: d.got and t.got and g.got and gc.got, 10, what="the four messages")
    m = gc.got[0]
    assert m["text"].startswith("*Critical* Terminal shell in container: cat </etc/shadow")
    widgets = m["cardsV2"][0]["card"]["sections"][0]["widgets"]
    assert {"decoratedText": {"topLabel": "proc.name", "text": "bash"}} in widgets
    e = d.got[0]["embeds"][0]
    assert e["title"] == "Critical Terminal shell in container"
    assert e["description"] == a["output"] and e["color"] == 0xE01E5A
    assert {"name": "proc.name", "value": "bash", "inline": True} in e["fields"]
    card = t.got[0]
    assert card["title"] == "Terminal shell in container" and card["themeColor"] == "E01E5A"
    assert {"name": "proc.name", "value": "bash"} in card["sections"][0]["facts"]
    text = g.got[0]["text"]
    assert text.startswith("<b>Critical</b> Terminal shell in container\n<pre>cat &lt;/etc")
    assert "&amp; echo \"&lt;b&gt;x&lt;/b&gt;\"" in text
    assert "<b>proc.cmdline</b>: sh -c 'a &amp;&amp; b &lt; c'" in text


def test_chat_refusals_are_dead_lettered_without_tokens(hub, sinks, nats):
    d, g, gc = sinks(discord_check), sinks(telegram_check), sinks(gchat_check)
    h = hub(outputs=[
        {"name": "gchat", "type": "googlechat",
         "webhookurl": gc.base + GCHAT_PATH + "?key=GkEy&token=WrOnGgChAt"},
        {"name": "discord", "type": "discord",
         "webhookurl": d.base + DISCORD_PATH.replace("DiScOrD", "WrOnG")},
        {"name": "tg", "type": "telegram", "token": TG_TOKEN, "chatid": "-1",
         "apiurl": g.base}])
    assert h.post(falco_alert())[0] == 200
    nc = nats.client()
    dl = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.discord"), 10,
                  what="discord dead letter")
    assert "Invalid Webhook Token" in dl[0][1]
    dl2 = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.tg"), 10,
                   what="telegram dead letter")
    assert "chat not found" in dl2[0][1]
    dl3 = wait_for(lambda: nc.stream_msgs("KLAXON_DEADLETTER", "klaxon.deadletter.gchat"), 10,
                   what="google chat dead letter")
    assert "PERMISSION_DENIED" in dl3[0][1]
    dl2 = dl2 + dl3
    for secret in ("WrOnGtOkEn", "TeLeGrAmSeCrEt", "WrOnGgChAt"):
        assert secret not in h.logtext()
        assert all(secret not in m[1] for m in dl + dl2)
