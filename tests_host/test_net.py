"""Real-board networking: Wi-Fi station, access point, LED, watchdog, config.json.

The hardware layer (hw.py, net.py) runs on the unix port as compiled for the Pico W,
against fakes of `machine` and `network` (realboard/boardfakes.py): every test in
realboard/netcheck.py must report PASS. config.json's reader (config_json.py, pure) and
tools/configure.py are tested here under CPython.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import build
from conftest import ROOT
from pinsock.boot import config_json, mqtt_json

REALBOARD = Path(__file__).resolve().parent / "realboard"
MPYRUN = Path(__file__).resolve().parent / "device" / "mpyrun.py"
sys.path.insert(0, str(ROOT / "tools"))
import configure  # noqa: E402


def run_realboard(micropython, module, tmp_path):
    """Run realboard/<module>.py on the unix port with the Pico W's build; returns
    (the test functions it declares, those that passed, its output)."""
    out_dir, _, _ = build.build("RPI_PICO_W")
    env = {"MICROPYPATH": ".frozen:%s:%s:%s" % (REALBOARD, out_dir, out_dir / "lib")}
    proc = subprocess.run([micropython, str(MPYRUN), module], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    tree = ast.parse((REALBOARD / (module + ".py")).read_text())
    declared = sorted(n.name for n in tree.body
                      if isinstance(n, ast.FunctionDef) and n.name.startswith("test_"))
    passed = sorted(line.split(".", 1)[1] for line in out.splitlines()
                    if line.startswith("PASS "))
    assert proc.returncode == 0, out
    return declared, passed, out


def test_hardware_layer_passes_on_unix_port_with_fake_machine(micropython, tmp_path):
    declared, passed, out = run_realboard(micropython, "netcheck", tmp_path)
    assert passed == declared and len(declared) >= 10, out


def test_a_new_versions_try_runs_under_the_watchdog_on_a_real_board(micropython, tmp_path):
    # The loader (otaboot.mpy) starts machine.WDT for a try; the firmware takes it over.
    declared, passed, out = run_realboard(micropython, "otawatch", tmp_path)
    assert passed == declared and len(declared) == 3, out


# --- config.json -----------------------------------------------------------------------
def load(tmp_path, text):
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    log = []
    return config_json.load(str(path), log.append), log


def test_missing_config_gives_defaults_the_access_point_and_no_password(tmp_path):
    conf, log = load(tmp_path, None)
    assert conf == config_json.DEFAULTS and conf["wifi_ssid"] == "" and conf["password"] == ""
    assert log == ["config: no %s, using defaults" % (tmp_path / "config.json")]


@pytest.mark.parametrize("text, why", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('{"password": "secret", ', "not valid JSON"),  # a password was meant: fail closed
])
def test_unreadable_config_gives_defaults_but_refuses_logins(tmp_path, text, why):
    conf, log = load(tmp_path, text)
    assert conf == dict(config_json.DEFAULTS, password=config_json.LOCKED, locked_message=(
        "config.json could not be read; fix it over USB with make deploy."))
    assert why in log[0] and "refusing logins" in log[0] and "secret" not in log[0]


@pytest.mark.parametrize("value, used", [(1234, "1234"), (12.5, "12.5"), (True, "True")])
def test_a_password_that_is_not_text_is_used_as_text_and_not_logged(tmp_path, value, used):
    conf, log = load(tmp_path, json.dumps({"password": value}))
    assert conf["password"] == used
    assert log == ["config: password in %s is not text; using it as text"
                   % (tmp_path / "config.json")]


def test_security_settings_are_read(tmp_path):
    conf, log = load(tmp_path, json.dumps({
        "password": "correct horse", "allowed_origins": ["http://dash.lan:8000"]}))
    assert log == []
    assert conf["password"] == "correct horse"
    assert conf["allowed_origins"] == ["http://dash.lan:8000"]


@pytest.mark.parametrize("origins", ["http://dash.lan", [1], ["dash.lan"], {"a": 1}])
def test_bad_allowed_origins_are_ignored_so_only_the_devices_own_page_may(tmp_path, origins):
    conf, log = load(tmp_path, json.dumps({"allowed_origins": origins}))
    assert conf["allowed_origins"] == [] and "ignoring allowed_origins" in log[0]


def test_config_json_lives_in_the_state_folder():
    assert config_json.path_in("") == "config.json"  # a real board: the root, beside board.json
    assert config_json.path_in("/tmp/flash/") == "/tmp/flash/config.json"


def test_each_bad_value_is_ignored_and_logged_the_rest_used(tmp_path):
    conf, log = load(tmp_path, json.dumps({
        "wifi_ssid": "home", "wifi_password": 1234, "hostname": "kitchen_pi",
        "country": "DEU", "ap_password": "short", "watchdog_ms": True, "extra": 1}))
    assert conf == dict(config_json.DEFAULTS, wifi_ssid="home")
    text = "\n".join(log)
    for key, why in (("wifi_password", "text"), ("hostname", "letters, digits"),
                     ("country", "two letters"), ("ap_password", "8 to 63"),
                     ("watchdog_ms", "a whole number")):
        assert "ignoring %s" % key in text and why in text
    assert len(log) == 5


def test_example_config_is_valid_and_complete(tmp_path):
    conf, log = load(tmp_path, (ROOT / "config.example.json").read_text())
    assert log == [] and set(json.loads((ROOT / "config.example.json").read_text())) == set(
        config_json.DEFAULTS)
    assert conf["wifi_ssid"] == "your-network" and conf["watchdog_ms"] == 8000


@pytest.mark.parametrize("name, ok", [
    ("pinsock", True), ("pinsock-2", True), ("A1", True), ("x" * 32, True),
    ("x" * 33, False), ("-lead", False), ("trail-", False), ("under_score", False),
    ("dot.ted", False), ("", False),
])
def test_hostname_rules(name, ok):
    assert config_json.is_hostname(name) is ok


def test_config_json_is_git_ignored_and_not_in_a_build(tmp_path):
    proc = subprocess.run(["git", "check-ignore", "config.json"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.stdout.strip() == "config.json"
    out, _, _ = build.build("RPI_PICO_W", tmp_path / "b")
    assert not (out / "config.json").exists() and not list(out.rglob("config*.json"))


# --- tools/configure.py ---------------------------------------------------------------
def test_configure_covers_every_setting():
    asked = [q[0] for q in configure.QUESTIONS]
    assert asked + list(configure.EDITED_BY_HAND) == list(config_json.DEFAULTS)


def test_configure_asks_until_valid_and_writes_config_json(tmp_path, capsys):
    answers = iter(["home net", "bad_host", "kitchen", "DE", "80", "5000", ""])  # no MQTT
    secrets = iter(["wifi-pass", "short", "", "open sesame"])
    out = tmp_path / "config.json"
    assert configure.main(["--out", str(out)], read=lambda q: next(answers),
                          read_secret=lambda q: next(secrets)) == 0
    written = json.loads(out.read_text())
    assert written == {"wifi_ssid": "home net", "wifi_password": "wifi-pass",
                       "hostname": "kitchen", "country": "DE", "ap_password": "",
                       "watchdog_ms": 5000, "password": "open sesame",
                       "allowed_origins": []}
    said = capsys.readouterr().out
    assert "letters, digits" in said and "8 to 63" in said and "0 (off) or 1000 to 8000" in said
    # Run again: Enter keeps every current value, the passwords too.
    assert configure.main(["--out", str(out)], read=lambda q: "",
                          read_secret=lambda q: "") == 0
    assert json.loads(out.read_text()) == written
    conf = config_json.load(str(out), print)
    assert conf == written
    # What configure does not ask about, it keeps.
    out.write_text(json.dumps(dict(written, allowed_origins=["http://dash.lan"])))
    assert configure.main(["--out", str(out)], read=lambda q: "",
                          read_secret=lambda q: "") == 0
    assert json.loads(out.read_text())["allowed_origins"] == ["http://dash.lan"]


def configure_answers(tmp_path, answers, secrets, existing=None):
    """configure.py run on `answers` (read()) and `secrets` (read_secret()), the Wi-Fi
    part answered with Enter: (config.json written, what it asked, what it said)."""
    out = tmp_path / "config.json"
    if existing is not None:
        out.write_text(json.dumps(existing))
    wifi = len(configure.QUESTIONS)
    asked = []
    plain = iter([""] * sum(1 for q in configure.QUESTIONS if not q[2]) + answers)
    hidden = iter([""] * sum(1 for q in configure.QUESTIONS if q[2]) + secrets)

    def read(question):
        asked.append(question)
        return next(plain)

    def read_secret(question):
        asked.append(question)
        return next(hidden)

    assert configure.main(["--out", str(out)], read=read, read_secret=read_secret) == 0
    return json.loads(out.read_text()), asked[wifi:]


def test_configure_asks_for_the_broker_and_checks_it_by_the_firmwares_rules(tmp_path,
                                                                            capsys):
    written, asked = configure_answers(
        tmp_path, ["broker lan", "broker.lan:0", "broker.lan:x", "192.168.1.5:1884",
                   "pinsock", "maybe", "y"], ["s3cret"])
    assert written["mqtt"] == {"host": "192.168.1.5", "port": 1884, "user": "pinsock",
                               "password": "s3cret", "tls": True}
    said = capsys.readouterr().out
    assert "the host must be a host name or address" in said
    assert "the port must be 1 to 65535" in said
    assert "the port after ':' must be a whole number" in said and "  y or n" in said
    host_q = "MQTT broker, host[:port]; none: MQTT off (- removes one) []: "
    assert asked == [host_q] * 4 + [
        "MQTT user name; none: connect without (- removes one) []: ", "MQTT password: "] + [
        configure.MQTT_TLS_QUESTION + " [n]: "] * 2
    # What the firmware makes of it: the same block, nothing logged.
    log = []
    assert mqtt_json.mqtt_block(written["mqtt"], "config.json", log.append)["port"] == 1884
    assert log == []
    # Enter keeps it all, the password too (the question says so, not the password).
    again, asked = configure_answers(tmp_path, ["", "", ""], [""], written)
    assert again == written
    assert asked[0].endswith("[192.168.1.5:1884]: ") and asked[1].endswith("[pinsock]: ")
    assert asked[2] == "MQTT password [keep current]: " and asked[3].endswith("[y]: ")


def test_configure_keeps_the_mqtt_keys_it_does_not_ask_about_and_turns_mqtt_off(tmp_path):
    existing = {"wifi_ssid": "n", "mqtt": {"host": "b", "user": "u", "password": "p",
                                           "prefix": "house", "retain_discovery": True}}
    # Without a user, no password is asked or kept; plain TCP; the port is the default.
    written, asked = configure_answers(tmp_path, ["b2", "-", "n"], [], existing)
    assert written["mqtt"] == {"host": "b2", "prefix": "house", "retain_discovery": True}
    assert not any("password" in q for q in asked)
    # "-" for the broker: MQTT off, the block is gone.
    written, _ = configure_answers(tmp_path, ["-"], [], written)
    assert "mqtt" not in written
    # And with none, Enter leaves MQTT off.
    written, asked = configure_answers(tmp_path, [""], [], written)
    assert "mqtt" not in written and len(asked) == 1


# --- one rule for config.json (issue 16) ----------------------------------------------
def cpython_reads(text):
    def no_constant(name):  # NaN, Infinity: neither side writes them; refused on both
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=no_constant)
    except ValueError:
        return False
    return True


JSONISH = "{}[]:,\" \n\t0123456789-+.eEtruefalsnx\\u"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=JSONISH, max_size=24))
def test_the_devices_rule_is_cpythons_json(text):
    assert (config_json.strict_error(text) is None) == cpython_reads(text), text


@settings(max_examples=500, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8))
def test_what_json_dumps_writes_the_device_reads(value):
    for text in (json.dumps(value), json.dumps(value, indent=2),
                 json.dumps(value, ensure_ascii=False)):
        assert config_json.strict_error(text) is None, text


def run_configure(out, stdin):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "configure.py"), "--out",
                           str(out)], input=stdin, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("text, why", [
    ('{"password": "x",}\n', 'not valid JSON (expected a "name" at line 1, column 18)'),
    ('{"wifi_ssid": "home"\n "password": "x"}', "not valid JSON (expected ',' or '}' at line 2"),
    ("{not json", 'not valid JSON (expected a "name" at line 1, column 2)'),
    ("[1, 2]", "is not a JSON object"),
    (b"\xff{}", "not valid JSON ("),
])
def test_configure_refuses_a_file_the_device_refuses_and_says_where(tmp_path, text, why):
    out = tmp_path / "config.json"
    if isinstance(text, bytes):
        out.write_bytes(text)
    else:
        out.write_text(text)
    before = out.read_bytes()
    proc = run_configure(out, "\n" * 20)
    assert proc.returncode == 1
    assert proc.stderr.startswith("configure: %s " % out) and why in proc.stderr, proc.stderr
    assert "move it away to start again from config.example.json" in proc.stderr
    assert "Traceback" not in proc.stderr and out.read_bytes() == before


def test_configure_at_end_of_input_writes_nothing_and_says_so(tmp_path):
    out = tmp_path / "config.json"
    for stdin in ("", "home\n"):  # closed at once, or after the first answer
        proc = run_configure(out, stdin)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().endswith("configure: end of input; nothing written")
        assert "Traceback" not in proc.stderr and not out.exists()
    out.write_text('{"password": "x"}')
    proc = run_configure(out, "")
    assert proc.returncode == 1 and out.read_text() == '{"password": "x"}'


def test_the_sim_reports_how_to_fix_its_config_and_boards_over_usb():
    sim_board = json.loads((ROOT / "boards" / "UNIX_SIM" / "board.json").read_text())
    assert "make configure" in sim_board["config_fix"]
    assert "simulator" in sim_board["config_fix"] and "USB" not in sim_board["config_fix"]
    for board in ("ESP32_GENERIC", "RPI_PICO_W"):
        data = json.loads((ROOT / "boards" / board / "board.json").read_text())
        assert "config_fix" not in data  # the default: over USB with make deploy
    from pinsock.boot import board_json

    assert board_json.DEFAULTS["config_fix"] == config_json.FIX == \
        "fix it over USB with make deploy"
