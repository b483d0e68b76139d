# SPDX-License-Identifier: Apache-2.0
"""The NATS re-publish output on a real nats-server: each alert as JSON on a
subject from a template (Falcosidekick's falco.<priority>.<rule> by
default), every token made subject-safe; a bad hostport is refused."""
import json
import subprocess

from conftest import BUILD, falco_alert, free_port, yaml_dump


def test_republish_default_and_templated_subjects(hub, nats):
    c = nats.client()
    sid = c.subscribe("falco.>")
    sid2 = c.subscribe("alerts.>")
    h = hub(outputs=[
        {"name": "nats", "type": "nats", "hostport": nats.url},
        {"name": "nats-ns", "type": "nats", "hostport": nats.url,
         "subject": "alerts.{{ k8s.ns.name }}.%priority"}])
    a = falco_alert(rule="Write below etc (*test*)", priority="Error")
    a["output_fields"]["k8s.ns.name"] = "shop.front"
    assert h.post(a)[0] == 200
    subj, _, data = c.next_msg(sid, timeout=10)
    assert subj == "falco.error.write_below_etc___test__"
    assert json.loads(data)["uuid"] == a["uuid"]
    subj2, _, data2 = c.next_msg(sid2, timeout=10)
    assert subj2 == "alerts.shop_front.error"  # '.' inside a value cannot split the token
    assert json.loads(data2)["rule"] == a["rule"]


def test_bad_nats_output_settings_refused(tmp_path, nats):
    cfg = tmp_path / "n.yaml"
    cfg.write_text(yaml_dump({
        "nats": {"url": nats.url}, "http": {"listen": "127.0.0.1", "port": free_port()},
        "outputs": [{"name": "n", "type": "nats", "hostport": "http://x:4222",
                     "subject": "falco..x"}]}) + "\n")
    p = subprocess.run([str(BUILD / "bin" / "klaxon-hub"), "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    err = p.stderr + p.stdout
    assert p.returncode == 1, err
    assert "hostport must be a nats:// URL" in err
    assert "has an empty token" in err
