# SPDX-License-Identifier: Apache-2.0
"""The web UI in a real browser (Debian's Chromium driven by playwright-core)
against real hubs on a real nats-server: live feed latency from a NATS
publish, filters, pause, detail with the responder audit trail, dashboard,
outputs, audit view, WebSocket reconnect after a hub restart, phone and dark
layouts, and the login page of a hub with http.token.

tests/browser/ui_test.mjs does the browsing; this side owns the daemons and
publishes the alerts it asks for (see the protocol at the top of that file).
node_modules and screenshots go under $KX_BUILD (browser/, artifacts/ui/).
Missing node, npm or chromium is a failure, not a skip.
"""
import filecmp
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from conftest import BUILD, falco_alert

SRC = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = "/usr/bin/chromium"
TOKEN = "ui-test-token-5f2c"


def browser_env():
    """$KX_BUILD/browser with playwright-core installed from the committed lock
    (npm ci, skipped when the lock has not changed) and the test script."""
    for exe in ("node", "npm"):
        assert shutil.which(exe), "%s is not installed (make deps): the UI test needs it" % exe
    assert os.access(CHROMIUM, os.X_OK), "%s is missing (make deps installs chromium)" % CHROMIUM
    work = BUILD / "browser"
    work.mkdir(parents=True, exist_ok=True)
    lock = work / "package-lock.json"
    installed = work / "node_modules" / "playwright-core" / "package.json"
    if not (installed.exists() and lock.exists()
            and filecmp.cmp(lock, SRC / "package-lock.json", shallow=False)):
        shutil.copy(SRC / "package.json", work / "package.json")
        shutil.copy(SRC / "package-lock.json", lock)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert r.returncode == 0, "npm ci in %s failed:\n%s" % (work, r.stdout.decode())
    # next to its node_modules, so `import 'playwright-core'` resolves
    shutil.copy(SRC / "ui_test.mjs", work / "ui_test.mjs")
    return work


def make_alert(spec):
    a = falco_alert(rule=spec["rule"], priority=spec["priority"], host=spec["host"],
                    container="%012x" % (int(time.time() * 1e6) % (1 << 48)))
    a["output"] = "%s on %s (%s)" % (spec["rule"], spec["host"],
                                     spec["fields"].get("proc.cmdline", ""))
    for k, v in spec["fields"].items():
        # 64-bit integers travel as {"$int": "digits"}: JavaScript numbers would round them
        a["output_fields"][k] = int(v["$int"]) if isinstance(v, dict) and "$int" in v else v
    return a


def test_ui_in_browser(hub, nats, tmp_path):
    work = browser_env()
    art = BUILD / "artifacts" / "ui"
    art.mkdir(parents=True, exist_ok=True)
    for old in art.glob("*.png"):
        old.unlink()
    # every shell alert gets a dry-run decision, for the detail's audit trail
    responder = {"name": "ui-dry-run", "dry_run": True,
                 "match": {"rules": ["Terminal shell*"], "priority": "warning"},
                 "actions": [{"type": "node", "params": {"action": "kill_process"},
                              "timeout": "2s"}]}
    # KX_UI_DIR=hub/ui serves the UI from disk (no rebuild while editing it)
    ui_dir = {"ui_dir": os.environ["KX_UI_DIR"]} if os.environ.get("KX_UI_DIR") else {}
    plain = hub(name="ui", dedupe={"enabled": False}, responders=[responder], http=dict(ui_dir))
    authed = hub(name="uiauth", outputs=[], dedupe={"enabled": False},
                 http={"token": TOKEN, **ui_dir})
    nc = nats.client()

    node = subprocess.Popen(
        ["node", str(work / "ui_test.mjs"), plain.url, "--auth-url", authed.url,
         "--token", TOKEN, "--artifacts", str(art)],
        cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1)
    # the whole run is meant to take well under a minute; never hang CI
    watchdog = threading.Timer(120, node.kill)
    watchdog.start()
    out, result = [], None
    try:
        for line in node.stdout:
            if line.startswith("@@rpc "):
                req = json.loads(line[len("@@rpc "):])
                if req["op"] == "publish":
                    done = []
                    for spec in req["alerts"]:
                        a = make_alert(spec)
                        t = time.time() * 1000
                        nc.js_publish("klaxon.alerts." + spec["host"], json.dumps(a),
                                      msg_id=a["uuid"])
                        done.append({"uuid": a["uuid"], "t": t})
                    reply = {"published": done}
                elif req["op"] == "restart":
                    plain.stop()
                    plain.start()
                    reply = {"ok": True}
                else:
                    reply = {"error": "unknown op %r" % req["op"]}
                node.stdin.write(json.dumps(reply) + "\n")
                node.stdin.flush()
                continue
            if line.startswith("@@result "):
                result = json.loads(line[len("@@result "):])
            out.append(line)
            print(line, end="")
        rc = node.wait(10)
    finally:
        watchdog.cancel()
        if node.poll() is None:
            node.kill()
        nc.close()
    text = "".join(out)
    assert rc == 0 and result is not None, "the browser test failed (rc %s):\n%s\n--- hub log:\n%s" % (
        rc, text, plain.logtext()[-4000:])
    print("feed latency (ms): %s, max %d; browser run %.1f s" % (
        result["latency_ms"], result["max_latency_ms"], result["seconds"]))
    assert result["max_latency_ms"] < 1000
    for name in ("feed", "detail", "dashboard", "outputs", "phone", "dark", "login"):
        assert (art / ("%s.png" % name)).stat().st_size > 0, name
