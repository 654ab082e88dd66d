"""End-to-end: analog inputs, PWM outputs, counters and buttons on the simulator, played
through its control port (`analog`, `pulse`, `press`, `pwm`) and seen by a real
WebSocket client; docs/PROTOCOL.md, "Analog inputs, PWM outputs, counters and buttons".
"""

import contextlib
import json
import time

from websockets.sync.client import connect

WAIT_S = 5


@contextlib.contextmanager
def session(sim):
    with connect(sim.ws_url(), open_timeout=WAIT_S) as ws:
        assert "dipSwitches" in json.loads(ws.recv(timeout=WAIT_S))
        yield ws


def ask(ws, command):
    ws.send(command)
    return json.loads(ws.recv(timeout=WAIT_S))


def next_update(ws, kind):
    """The next {"u":{kind:...}} message, within WAIT_S."""
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        message = json.loads(ws.recv(timeout=max(0.01, end - time.monotonic())))
        if "u" in message and kind in message["u"]:
            return message["u"][kind]
    raise AssertionError("no %s update within %s s" % (kind, WAIT_S))


def test_a_fresh_simulator_is_all_digital_and_says_what_each_io_may_be(sim):
    with session(sim) as ws:
        assert set(ask(ws, "f")["f"].values()) == {"d"}
        assert ask(ws, "fp")["f"]["p"] == dict(
            {"%x" % io: "d" for io in range(8)},
            **{"8": "da", "9": "da", "a": "daw", "b": "daw", "c": "dcb", "d": "dcb",
               "e": "db", "f": "db"})
        assert ask(ws, "a") == {"e": {"c": "a", "m": "no io has this function"}}


def test_an_analog_input_follows_the_control_port_with_its_trigger(sim):
    with session(sim) as ws:
        assert ask(ws, "f8=a") == {"f": {"8": "a"}}
        assert sim.control("analog 8 32768") == "ok"
        assert ask(ws, "a8") == {"a": {"8": "512"}}
        assert ask(ws, "am8") == {"a": {"m": {"8": "1650"}}}
        assert ask(ws, "tua8=50") == {"t": {"u": {"a": {"8": "50"}}}}
        assert sim.control("analog 8 65535") == "ok"
        assert next_update(ws, "a") == {"8": "1023"}
        assert ask(ws, "v8") == {"e": {"c": "v8", "m": "io is not digital"}}


def test_a_pwm_duty_and_frequency_reach_the_pin_within_a_round_trip(sim):
    with session(sim) as ws:
        assert ask(ws, "fa=w") == {"f": {"a": "w"}}
        assert sim.control("pwm 10") == "0 1000"
        assert ask(ws, "wa=1023") == {"w": {"a": "1023"}}
        assert sim.control("pwm 10") == "65535 1000"  # right after the reply
        assert ask(ws, "wha=20000") == {"w": {"h": {"a": "20000"}}}
        assert ask(ws, "wa=256") == {"w": {"a": "256"}}
        assert sim.control("pwm 10") == "%d 20000" % ((256 * 65535 + 511) // 1023)
        assert ask(ws, "fa=d") == {"f": {"a": "d"}}
        assert sim.control("pwm 10") == "0 0"


def test_pulses_are_counted_and_a_reset_is_logged(sim):
    with session(sim) as ws:
        assert sim.control("pulse 12 3") == "error io 12 does not count (f<h>=c first)"
        assert ask(ws, "fc=c") == {"f": {"c": "c"}}
        assert ask(ws, "tucc=5") == {"t": {"u": {"c": {"c": "5"}}}}
        assert sim.control("pulse 12 7") == "ok"
        assert next_update(ws, "c") == {"c": "7"}
        assert ask(ws, "cc") == {"c": {"c": "7"}}
        ws.send("cc=0")
        assert json.loads(ws.recv(timeout=WAIT_S)) == {"u": {"c": {"c": "0"}}}
        assert json.loads(ws.recv(timeout=WAIT_S)) == {"c": {"c": "0"}}
    log = json.loads(sim.http(b"GET /log HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                     .split(b"\r\n\r\n", 1)[1])
    assert log[-1]["io"] == "c" and log[-1]["c"] == "0" and "v" not in log[-1]


def test_button_presses_from_the_control_port_are_events(sim):
    with session(sim) as ws:
        assert ask(ws, "fe=b") == {"f": {"e": "b"}}
        assert ask(ws, "tube=1") == {"t": {"u": {"b": {"e": "1"}}}}
        # A click, 120 ms up, a second click: press, short release, double press,
        # short release; then held 1.2 s: press, hold, long release.
        assert sim.control("press 14 120 120 120") == "ok"
        assert [next_update(ws, "b")["e"] for _ in range(4)] == [
            "1000", "1002", "1004", "1002"]
        assert sim.control("press 14 1200") == "ok"
        assert [next_update(ws, "b")["e"] for _ in range(3)] == ["1000", "1001", "1003"]
        assert ask(ws, "be") == {"b": {"e": "1003"}}
    log = json.loads(sim.http(b"GET /log HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                     .split(b"\r\n\r\n", 1)[1])
    assert [r["b"] for r in log if r.get("io") == "e"] == [
        "1000", "1002", "1004", "1002", "1000", "1001", "1003"]


def test_a_function_is_kept_across_a_restart(start_sim, tmp_path):
    sim = start_sim(state_dir=tmp_path / "state")
    with session(sim) as ws:
        assert ask(ws, "f9=a") == {"f": {"9": "a"}}
    deadline = time.monotonic() + 15  # saved within a second (coalesced saves)
    settings = tmp_path / "state" / "settings.json"
    while time.monotonic() < deadline:
        if settings.exists() and json.loads(settings.read_text()).get("fn", "")[9:10] == "a":
            break
        time.sleep(0.1)
    sim.stop()
    sim = start_sim(state_dir=tmp_path / "state")
    with session(sim) as ws:
        assert ask(ws, "f9") == {"f": {"9": "a"}}
        assert sim.control("analog 9 6400") == "ok"
        assert ask(ws, "a9") == {"a": {"9": "100"}}
