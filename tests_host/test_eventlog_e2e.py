"""End-to-end: the event log over a WebSocket and over plain HTTP (GET /log)."""

import json
import urllib.error
import urllib.request

from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect


def http_log(sim, since):
    with urllib.request.urlopen("%s/log?since=%d" % (sim.base_url, since), timeout=5) as r:
        assert r.headers["Content-Type"] == "application/json"
        return json.loads(r.read())


def ws_log(sim, since):
    """Every message of GET /log?since= upgraded; checks it ends with "end" and a close."""
    messages = []
    with connect(sim.ws_url("/log?since=%d" % since)) as ws:
        while True:
            text = ws.recv(timeout=5)
            if text == "end":
                break
            messages.append(json.loads(text))
        try:
            ws.recv(timeout=5)
            raise AssertionError("a message after end")
        except ConnectionClosedOK as closed:
            assert closed.rcvd.code == 1000
    return messages


def flip(sim, io, levels):
    for level in levels:
        assert sim.control("set %d %d" % (io, level)) == "ok"


def test_every_input_transition_is_logged_in_order(start_sim):
    sim = start_sim(debounce_ms=0)
    assert http_log(sim, 0) == []
    flip(sim, 0, [0, 1, 0])   # DIP 1
    flip(sim, 9, [1, 0])      # a GPIO input
    records = http_log(sim, 0)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert [(r["io"], r["v"]) for r in records] == [
        ("0", "0"), ("0", "1"), ("0", "0"), ("9", "1"), ("9", "0")]
    times = [r["t"] for r in records]
    assert times == sorted(times) and all(isinstance(t, int) for t in times)
    assert ws_log(sim, 0) == records
    assert ws_log(sim, 3) == records[3:]
    assert http_log(sim, 5) == [] and ws_log(sim, 5) == []


def test_output_writes_are_not_input_transitions(start_sim):
    sim = start_sim(debounce_ms=0)
    with connect(sim.ws_url()) as ws:
        ws.recv(timeout=5)
        ws.send("d9=1")
        ws.recv(timeout=5)
        ws.send("v9=1")
        ws.recv(timeout=5)
    assert http_log(sim, 0) == []


def test_gap_is_reported_when_the_ring_wrapped(start_sim, tmp_path):
    sim = start_sim(debounce_ms=0)
    flips = 256 + 10  # the default ring holds 256
    flip(sim, 9, [1, 0] * (flips // 2))
    records = http_log(sim, 0)
    assert records[0] == {"lost": 10}
    assert [r["seq"] for r in records[1:]] == list(range(11, flips + 1))
    messages = ws_log(sim, 4)
    assert messages[0] == {"lost": 6}
    assert messages[1]["seq"] == 11 and messages[-1]["seq"] == flips


def test_report_seq_points_into_the_log(start_sim):
    sim = start_sim(debounce_ms=0)
    with connect(sim.ws_url()) as ws:
        assert json.loads(ws.recv(timeout=5))["seq"] == 0
        flip(sim, 9, [1])
        flip(sim, 2, [0])
        report = json.loads(ws.recv(timeout=5))
        assert report["seq"] == 2 and report["dipSwitches"]["dip3"] == "On"
    assert http_log(sim, 1) == [{"seq": 2, "t": http_log(sim, 1)[0]["t"], "io": "2", "v": "0"}]


def test_log_session_does_not_replace_the_client(start_sim):
    sim = start_sim(debounce_ms=0)  # max_clients 1
    with connect(sim.ws_url()) as ws:
        ws.recv(timeout=5)
        assert ws_log(sim, 0) == []
        ws.send("sc")
        assert json.loads(ws.recv(timeout=5)) == {"s": {"c": "1"}}


def test_bad_since_answers_400(start_sim):
    sim = start_sim()
    try:
        urllib.request.urlopen(sim.base_url + "/log?since=abc", timeout=5)
        raise AssertionError("accepted since=abc")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert json.loads(e.read()) == {"error": "since must be an integer"}


def test_a_new_connection_is_told_the_newest_record_after_a_gpio_change(start_sim):
    # The report's seq is the newest record, whichever IO made it (PROTOCOL.md): a
    # page that sees seq go down takes it for a restart.
    sim = start_sim(debounce_ms=0)
    flip(sim, 0, [0])      # DIP 1: record 1
    flip(sim, 9, [1, 0])   # GPIO 9: records 2 and 3, no switch report
    assert [r["seq"] for r in http_log(sim, 0)] == [1, 2, 3]
    with connect(sim.ws_url()) as ws:
        assert json.loads(ws.recv(timeout=5))["seq"] == 3
