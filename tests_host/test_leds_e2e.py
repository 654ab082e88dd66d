"""End-to-end: NetBurner's LED command (`{ "ledcb3" : "true" }`) on the simulator drives
the pins (control port `get`), over every WebSocket path, /INDEX.HTML included;
docs/PROTOCOL.md, "NetBurner's LED commands"."""

import json
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

WAIT_S = 5


def action(sim, command):
    with urllib.request.urlopen(sim.base_url + "/action.cgi?" + command, timeout=WAIT_S) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("path", ["/ws", "/INDEX", "/INDEX.HTML"])
def test_an_led_command_drives_its_pin_unanswered(sim, path):
    for io in range(8, 16):
        assert action(sim, "d%x=1" % io) == {"d": {"%x" % io: "1"}}
    with connect(sim.ws_url(path), open_timeout=WAIT_S) as ws:
        assert "dipSwitches" in json.loads(ws.recv(timeout=WAIT_S))
        for n in range(8):
            ws.send('{ "ledcb%d" : "true" }' % n)  # as NetBurner's page sends it
        ws.send("v")  # the first reply after the LED commands is this one's
        assert json.loads(ws.recv(timeout=WAIT_S)) == {"v": dict(
            {"%x" % io: "1" for io in range(8)}, **{"%x" % io: "1" for io in range(8, 16)})}
        assert [sim.control("get %d" % io) for io in range(8, 16)] == ["1"] * 8
        ws.send('{"ledcb3":false}')
        ws.send("v b")  # an error reply, to mark the end
        assert json.loads(ws.recv(timeout=WAIT_S))["e"]["c"] == "v b"
        assert sim.control("get 11") == "0"


def test_an_led_that_is_not_an_output_is_an_error_and_the_session_goes_on(sim):
    with connect(sim.ws_url("/INDEX.HTML"), open_timeout=WAIT_S) as ws:
        ws.recv(timeout=WAIT_S)
        ws.send('{ "ledcb3" : "true" }')
        assert json.loads(ws.recv(timeout=WAIT_S)) == {
            "e": {"c": "ledcb3", "m": "io is an input"}}
        ws.send("{" * 300)  # over max_frame_len: closed 1009, as any long frame
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
        assert closed.value.rcvd.code == 1009
    assert sim.control("get 11") == "0"
    with connect(sim.ws_url(), open_timeout=WAIT_S) as ws:  # still serving
        ws.recv(timeout=WAIT_S)


def test_index_html_without_an_upgrade_is_426(sim):
    answer = sim.http(b"GET /INDEX.HTML HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 426")
