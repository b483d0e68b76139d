# SPDX-License-Identifier: Apache-2.0
"""Authentication of the hub's HTTP listener against a real hub
(docs/api.md "Authentication"): 401s and their challenges, bearer, basic,
the session cookie (shared by replicas), access_token on /ws, the ingest
token, the login page, CORS and the WebSocket origin check. The pure paths
are in tests/unit/test_auth.c."""
import base64
import http.client
import json
import os
import socket

from conftest import falco_alert

TOKEN = "s3cret-t0ken/+="
USER, PASSWORD = "ops", "pa:ss word"
ORIGIN = "https://ops.example.com"
PROTECTED = ["/api/v1/alerts", "/api/v1/stats", "/metrics", "/ui/"]


def call(h, method, path, headers=None, body=None):
    """One request on its own connection: (status, headers, body bytes)."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def ws_handshake(h, path="/ws", headers=None):
    """A raw WebSocket handshake: (status, {lowercased name: [values]}, body)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % h.port, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", h.port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        hdrs = {}
        for line in head.decode(errors="replace").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        n = int(hdrs.get("content-length", ["0"])[0])
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    assert head, "no answer to the WebSocket handshake"
    return int(head.split()[1]), hdrs, rest


def bearer(tok=TOKEN):
    return {"Authorization": "Bearer " + tok}


def basic(user=USER, pw=PASSWORD):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def challenges(headers):
    return headers.get_all("WWW-Authenticate") or []


def error_of(body):
    return json.loads(body)["error"]


def login(h, creds):
    """POST /api/v1/session: (status, Set-Cookie header or None, body)."""
    status, hdrs, body = call(h, "POST", "/api/v1/session", body=creds)
    return status, hdrs.get("Set-Cookie"), body


def cookie_of(set_cookie):
    return set_cookie.split(";")[0]


def test_open_by_default(hub):
    h = hub()
    for path in ["/api/v1/stats", "/metrics"]:
        status, _, body = call(h, "GET", path)
        assert status == 200, (path, status, body)
    assert call(h, "POST", "/", body=falco_alert())[0] == 200
    status, set_cookie, _ = login(h, {"token": "anything"})
    assert status == 204 and set_cookie is None
    # The WebSocket is open too, from the hub's own page or no browser at all.
    assert ws_handshake(h)[0] == 101
    assert ws_handshake(h, headers={"Origin": "http://127.0.0.1:%d" % h.port})[0] == 101
    # CORS off: no Access-Control-* headers, preflights not answered.
    status, hdrs, _ = call(h, "GET", "/api/v1/stats", {"Origin": ORIGIN})
    assert status == 200 and hdrs.get("Access-Control-Allow-Origin") is None
    status, hdrs, _ = call(h, "OPTIONS", "/api/v1/stats", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert status != 204 and hdrs.get("Access-Control-Allow-Origin") is None
    # A cross-origin WebSocket is refused even when everything else is open.
    assert ws_handshake(h, headers={"Origin": "https://evil.example"})[0] == 403


def test_refusals_and_open_probes(hub):
    h = hub(http={"token": TOKEN})
    for path in PROTECTED:
        status, hdrs, body = call(h, "GET", path, {"Accept": "application/json"})
        assert status == 401, (path, status, body)
        assert challenges(hdrs) == ['Bearer realm="klaxon"'], path
        assert error_of(body) == "authentication required", path
        status, hdrs, body = call(h, "GET", path, dict(bearer("wrong"), Accept="*/*"))
        assert status == 401, (path, status)
        assert challenges(hdrs) == ['Bearer realm="klaxon"']
        assert error_of(body) == "invalid credentials"
    status, hdrs, body = call(h, "POST", "/test")
    assert status == 401 and error_of(body) == "authentication required"
    status, hdrs, body = ws_handshake(h)
    assert status == 401, (status, body)
    assert hdrs.get("www-authenticate") == ['Bearer realm="klaxon"']
    assert error_of(body) == "authentication required"
    # Probes stay open.
    assert call(h, "GET", "/healthz")[0] == 200
    status, _, body = call(h, "GET", "/ping")
    assert status == 200 and body == b"pong\n"
    status, _, body = call(h, "GET", "/readyz")
    assert status == 200, body
    # No ingest_token: ingest stays open even though the API is not.
    assert call(h, "POST", "/", body=falco_alert())[0] == 200
    assert call(h, "POST", "/api/v1/alerts", body=falco_alert())[0] == 200
    # Secrets never reach the log.
    call(h, "GET", "/metrics", bearer("wrong-guess-xyz"))
    text = h.logtext()
    assert TOKEN not in text and "wrong-guess-xyz" not in text


def test_bearer_and_basic(hub):
    h = hub(http={"token": TOKEN, "basic_user": USER, "basic_password": PASSWORD})
    status, hdrs, _ = call(h, "GET", "/metrics")
    assert status == 401
    assert challenges(hdrs) == ['Bearer realm="klaxon"', 'Basic realm="klaxon"']
    for creds in (bearer(), basic()):
        for path in PROTECTED:
            status, _, body = call(h, "GET", path, creds)
            assert status == 200, (path, creds, status, body)
    for creds in (basic(pw="pa:ss"), basic(user="root"), bearer(PASSWORD),
                  {"Authorization": "Basic !!notbase64!!"}, {"Authorization": "Digest x"}):
        status, _, body = call(h, "GET", "/api/v1/stats", creds)
        assert status == 401 and error_of(body) == "invalid credentials", creds
    # Ingest takes the API credentials too (and is open anyway: no ingest_token).
    assert call(h, "POST", "/", headers=basic(), body=falco_alert())[0] == 200


def test_session_cookie(hub):
    cfg = {"token": TOKEN, "basic_user": USER, "basic_password": PASSWORD, "session_ttl": "30m"}
    h = hub(http=cfg)
    status, set_cookie, body = login(h, {"token": TOKEN})
    assert status == 204, body
    attrs = [a.strip() for a in set_cookie.split(";")]
    assert attrs[0].startswith("klaxon_session=")
    assert sorted(attrs[1:]) == sorted(["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=1800"])
    cookie = {"Cookie": cookie_of(set_cookie)}
    for path in ["/api/v1/stats", "/metrics"]:
        status, _, body = call(h, "GET", path, cookie)
        assert status == 200, (path, status, body)
    status, hdrs, body = call(h, "GET", "/ui/", dict(cookie, Accept="text/html"))
    assert status == 200 and hdrs.get("Content-Type", "").startswith("text/html")

    # Username and password work too; wrong ones get a 401 and no cookie.
    status, set_cookie2, _ = login(h, {"username": USER, "password": PASSWORD})
    assert status == 204 and set_cookie2.startswith("klaxon_session=")
    for creds in ({"token": "nope"}, {"username": USER, "password": "nope"}):
        status, sc, body = login(h, creds)
        assert status == 401 and sc is None and error_of(body) == "invalid credentials"
    status, _, body = login(h, {"token": TOKEN, "remember": True})
    assert status == 400 and "remember" in error_of(body)
    status, _, body = call(h, "POST", "/api/v1/session", body=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert status == 400, body

    # Stateless: another replica with the same credentials accepts it...
    h2 = hub(http=cfg, name="replica")
    assert call(h2, "GET", "/api/v1/stats", cookie)[0] == 200
    # ...a hub with other credentials does not.
    h3 = hub(http=dict(cfg, token="another-token"), name="rotated")
    status, _, body = call(h3, "GET", "/api/v1/stats", cookie)
    assert status == 401 and error_of(body) == "invalid credentials"
    # A tampered cookie is refused.
    name, _, value = cookie_of(set_cookie).partition("=")
    exp, _, mac = value.partition(".")
    forged = "%s=%d.%s" % (name, int(exp) + 60, mac)
    assert call(h, "GET", "/api/v1/stats", {"Cookie": forged})[0] == 401

    # Logout clears the cookie in the browser.
    status, hdrs, _ = call(h, "DELETE", "/api/v1/session", cookie)
    assert status == 204
    sc = hdrs.get("Set-Cookie")
    assert sc.startswith("klaxon_session=;") and "Max-Age=0" in sc and "HttpOnly" in sc


def test_login_page_for_browsers(hub, tmp_path):
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "login.html").write_text("<!DOCTYPE html><title>test login page</title>\n")
    (ui / "index.html").write_text("<!DOCTYPE html><title>test index</title>\n")
    h = hub(http={"token": TOKEN, "ui_dir": str(ui)})
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    status, hdrs, body = call(h, "GET", "/ui/", browser)
    assert status == 401
    assert hdrs.get("Content-Type", "").startswith("text/html")
    assert b"test login page" in body
    assert challenges(hdrs) == ['Bearer realm="klaxon"']
    # A script asking for the same page gets JSON.
    status, hdrs, body = call(h, "GET", "/ui/", {"Accept": "application/json"})
    assert status == 401 and error_of(body) == "authentication required"
    # Authenticated: the page itself.
    status, _, body = call(h, "GET", "/ui/", dict(browser, **bearer()))
    assert status == 200 and b"test index" in body

    # The built-in login page (no ui_dir).
    h2 = hub(http={"token": TOKEN}, name="builtin")
    status, hdrs, body = call(h2, "GET", "/ui/", browser)
    assert status == 401
    assert hdrs.get("Content-Type", "").startswith("text/html"), body[:200]
    assert b"/api/v1/session" in body


def test_websocket_auth(hub):
    h = hub(http={"token": TOKEN, "basic_user": USER, "basic_password": PASSWORD,
                  "cors_origins": [ORIGIN]})
    status, hdrs, _ = ws_handshake(h)
    assert status == 401
    assert hdrs.get("www-authenticate") == ['Bearer realm="klaxon"', 'Basic realm="klaxon"']
    assert ws_handshake(h, headers=bearer())[0] == 101
    assert ws_handshake(h, headers=basic())[0] == 101
    # Browsers cannot set headers on a WebSocket: the token in the URL.
    q = "access_token=" + TOKEN.replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")
    assert ws_handshake(h, "/ws?" + q)[0] == 101
    assert ws_handshake(h, "/ws?kind=alert&" + q)[0] == 101
    status, _, body = ws_handshake(h, "/ws?access_token=wrong")
    assert status == 401 and error_of(body) == "invalid credentials"
    # ...which is good for the WebSocket only.
    status, _, body = call(h, "GET", "/api/v1/stats?" + q)
    assert status == 401, body
    # The session cookie.
    status, set_cookie, _ = login(h, {"token": TOKEN})
    assert status == 204
    assert ws_handshake(h, headers={"Cookie": cookie_of(set_cookie)})[0] == 101
    # Origins: the hub's own and listed ones are fine, others get 403.
    own = "http://127.0.0.1:%d" % h.port
    assert ws_handshake(h, headers=dict(bearer(), Origin=own))[0] == 101
    assert ws_handshake(h, headers=dict(bearer(), Origin=ORIGIN))[0] == 101
    for foreign in ("https://evil.example", "http://127.0.0.1:%d" % (h.port + 1), "null"):
        status, _, body = ws_handshake(h, headers=dict(bearer(), Origin=foreign))
        assert status == 403, (foreign, status, body)
    status, _, _ = ws_handshake(h, "/ws?" + q, {"Origin": "https://evil.example"})
    assert status == 403


def test_ingest_token(hub):
    h = hub(http={"ingest_token": "ingest-only"})
    status, hdrs, body = call(h, "POST", "/", body=falco_alert())
    assert status == 401 and error_of(body) == "authentication required"
    assert challenges(hdrs) == ['Bearer realm="klaxon"']
    status, _, body = call(h, "POST", "/", headers=bearer("wrong"), body=falco_alert())
    assert status == 401 and error_of(body) == "invalid credentials"
    for path in ("/", "/api/v1/alerts"):
        status, _, body = call(h, "POST", path, headers=bearer("ingest-only"), body=falco_alert())
        assert status == 200, (path, body)
    # The API itself is open here (no token, no basic auth).
    assert call(h, "GET", "/metrics")[0] == 200

    h2 = hub(http={"token": TOKEN, "ingest_token": "ingest-only"}, name="both")
    assert call(h2, "POST", "/", body=falco_alert())[0] == 401
    assert call(h2, "POST", "/", headers=bearer("ingest-only"), body=falco_alert())[0] == 200
    assert call(h2, "POST", "/", headers=bearer(), body=falco_alert())[0] == 200
    # The ingest token opens ingest only.
    status, _, body = call(h2, "GET", "/metrics", bearer("ingest-only"))
    assert status == 401 and error_of(body) == "invalid credentials"


def test_cors(hub):
    h = hub(http={"token": TOKEN, "cors_origins": [ORIGIN, "http://localhost:3000"]})
    # Answered on the event loop (/metrics) and by a query worker (/api/v1/stats).
    for path in ("/metrics", "/api/v1/stats"):
        status, hdrs, _ = call(h, "GET", path, dict(bearer(), Origin=ORIGIN))
        assert status == 200, path
        assert hdrs.get("Access-Control-Allow-Origin") == ORIGIN, path
        assert hdrs.get("Access-Control-Allow-Credentials") == "true", path
        assert "Origin" in (hdrs.get("Vary") or ""), path
    # A 401 carries them too, so the page can read why.
    status, hdrs, _ = call(h, "GET", "/api/v1/stats", {"Origin": ORIGIN})
    assert status == 401 and hdrs.get("Access-Control-Allow-Origin") == ORIGIN
    # Preflight: answered before authentication (browsers send no credentials).
    status, hdrs, body = call(h, "OPTIONS", "/api/v1/alerts", {
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert status == 204, body
    assert hdrs.get("Access-Control-Allow-Origin") == ORIGIN
    assert "DELETE" in hdrs.get("Access-Control-Allow-Methods", "")
    assert "Authorization" in hdrs.get("Access-Control-Allow-Headers", "")
    assert hdrs.get("Access-Control-Max-Age") == "600"
    # Other origins: nothing.
    status, hdrs, _ = call(h, "GET", "/api/v1/stats", dict(bearer(), Origin="https://evil.example"))
    assert status == 200 and hdrs.get("Access-Control-Allow-Origin") is None
    status, hdrs, _ = call(h, "OPTIONS", "/api/v1/alerts", {
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert status != 204 and hdrs.get("Access-Control-Allow-Origin") is None

    # "*": any origin may read, without the browser's credentials.
    h2 = hub(http={"cors_origins": ["*"]}, name="wildcard")
    status, hdrs, _ = call(h2, "GET", "/api/v1/stats", {"Origin": "https://any.example"})
    assert status == 200 and hdrs.get("Access-Control-Allow-Origin") == "*"
    assert hdrs.get("Access-Control-Allow-Credentials") is None
    status, _, _ = call(h2, "OPTIONS", "/api/v1/stats", {
        "Origin": "https://any.example", "Access-Control-Request-Method": "GET"})
    assert status == 204
