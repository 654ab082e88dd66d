"""End-to-end: Wi-Fi setup from a phone (docs/PROTOCOL.md, Wi-Fi setup), on the
simulator, which plays a board that cannot join: its radio sees UNIX_SIM's
`sim_networks`, it "joins" config.json's wifi_ssid when that is one of them, and is
its own access point otherwise. A network saved with POST /wifi lands in config.json
atomically, every other key kept, and the board restarts (the simulator ends with
tools/sim.py's RESTART_EXIT_CODE; `make sim` starts it again)."""

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import sim as sim_tool
from simclient import free_port, http_get
from test_password_e2e import PASSWORD, request, session

ROOT = Path(__file__).resolve().parent.parent
RESTART_WAIT_S = 10


def post_wifi(sim, fields, headers=()):
    return request(sim, "POST", "/wifi", urllib.parse.urlencode(fields), headers)


def wifi_state(sim, path="/wifi"):
    status, headers, body = http_get(sim.http_port, path)
    assert status == 200 and headers["cache-control"] == "no-store", (status, headers)
    return json.loads(body)


def test_a_board_that_cannot_join_lists_networks_takes_one_and_restarts_on_it(start_sim,
                                                                             tmp_path):
    state = tmp_path / "flash"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"wifi_ssid": "gone", "hostname": "shed",
                                                   "allowed_origins": []}))
    sim = start_sim(state_dir=state, unique_id="c0de")
    assert "wifi (simulated): cannot see gone; access point pinsock-c0de\n" in sim.output
    assert wifi_state(sim) == {"mode": "access point", "ssid": "pinsock-c0de",
                               "hostname": "shed", "simulated": True}  # no scan
    assert wifi_state(sim, "/wifi?scan") == {
        "mode": "access point", "ssid": "pinsock-c0de", "hostname": "shed",
        "simulated": True,
        "networks": [{"ssid": "home", "rssi": -48, "secure": True},  # once, its strongest
                     {"ssid": "Cafe Guest", "rssi": -71, "secure": False},
                     {"ssid": "neighbour 5G", "rssi": -83, "secure": True}]}
    status, _, body = post_wifi(sim, {"ssid": "home", "password": "correct horse"})
    assert status == 200, body
    assert json.loads(body) == {"saved": "home", "restarting": True,
                                "url": "http://shed.local/"}
    assert json.loads((state / "config.json").read_text()) == {
        "wifi_ssid": "home", "wifi_password": "correct horse", "hostname": "shed",
        "allowed_origins": []}
    assert sorted(p.name for p in state.iterdir() if p.name.startswith("config")) == \
        ["config.json"]  # no temporary file left
    # The board restarts on its own, and comes back on the network it was given.
    assert sim.proc.wait(timeout=RESTART_WAIT_S) == sim_tool.RESTART_EXIT_CODE
    assert "restarting\n" in sim.output
    sim.start()
    assert "wifi (simulated): joined home\n" in sim.output
    assert wifi_state(sim)["mode"] == "station" and wifi_state(sim)["ssid"] == "home"


def test_bad_answers_are_refused_saying_why_and_change_nothing(sim):
    before = sorted(p.name for p in sim.state_dir.iterdir())
    for fields, words in [({"ssid": "home", "password": "short"}, "8 to 64 characters"),
                          ({"password": "12345678"}, "network's name"),
                          ({"ssid": "x" * 33}, "at most 32 bytes"),
                          ({"ssid": "home", "password": "tab\there"}, "printable ASCII")]:
        status, _, body = post_wifi(sim, fields)
        assert status == 400 and words in json.loads(body)["error"], (fields, body)
    status, _, body = request(sim, "POST", "/wifi", "ssid=%zz")
    assert status == 400 and "as a form" in json.loads(body)["error"]
    assert sorted(p.name for p in sim.state_dir.iterdir()) == before
    time.sleep(2)  # past restart_delay_ms: nothing restarts
    assert sim.alive()


def test_another_site_cannot_change_the_network(sim):
    status, _, body = post_wifi(sim, {"ssid": "evil", "password": "12345678"},
                                ["Origin: http://evil.example", "Sec-Fetch-Site: cross-site"])
    assert status == 403, body
    assert not (sim.state_dir / "config.json").exists()
    assert sim.alive()


def test_behind_the_password_when_one_is_set(start_sim, tmp_path):
    state = tmp_path / "flash"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"password": PASSWORD}))
    sim = start_sim(state_dir=state)
    status, _, _ = request(sim, "GET", "/wifi")
    assert status == 401
    status, _, _ = post_wifi(sim, {"ssid": "home", "password": "12345678"})
    assert status == 401
    cookie = session(sim)
    status, _, body = request(sim, "GET", "/wifi", headers=[cookie])
    assert status == 200 and json.loads(body)["mode"] == "access point"
    status, _, body = post_wifi(sim, {"ssid": "home", "password": "12345678"}, [cookie])
    assert status == 200, body
    saved = json.loads((state / "config.json").read_text())
    assert saved == {"password": PASSWORD, "wifi_ssid": "home",
                     "wifi_password": "12345678"}  # the owner's password is kept
    assert sim.proc.wait(timeout=RESTART_WAIT_S) == sim_tool.RESTART_EXIT_CODE


def test_make_sim_starts_the_board_again_after_it_restarts(sim_build, tmp_path):
    # tools/sim.py as `make sim` runs it (no --exec): the restart is its to do.
    http_port, control_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "sim.py"), "--http-port", str(http_port),
         "--control-port", str(control_port), "--https-port", str(free_port()),
         "--state-dir", str(tmp_path / "flash")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30

        def wait_for(text):
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                lines.append(line)
                if text in line:
                    return
            raise AssertionError("no %r in %s" % (text, "".join(lines)))

        wait_for("serving on http://127.0.0.1:%d" % http_port)
        body = urllib.parse.urlencode({"ssid": "Cafe Guest", "password": ""}).encode()
        with urllib.request.urlopen("http://127.0.0.1:%d/wifi" % http_port, body,
                                    timeout=10) as answer:  # a form POST
            assert json.loads(answer.read())["saved"] == "Cafe Guest"
        wait_for("sim: restarting the simulated board")
        wait_for("wifi (simulated): joined Cafe Guest")
        wait_for("serving on http://127.0.0.1:%d" % http_port)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_restart_code_has_one_value_on_both_sides():
    # simwifi.py runs on the unix port and cannot be imported here: its text is read.
    source = (ROOT / "boards" / "UNIX_SIM" / "simwifi.py").read_text()
    assert "RESTART_EXIT_CODE = %d\n" % sim_tool.RESTART_EXIT_CODE in source
