"""End-to-end: the simulator serves the page and pushes switch reports over /ws and
/INDEX; a real WebSocket client and the control port drive it."""

import base64
import gzip
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import ROOT

ALL_OFF = {"dip%d" % i: "Off" for i in range(1, 9)}


def report(ws, timeout=3, with_seq=False):
    """The next switch report on ws (skipping other messages): its switches, and with
    with_seq=True also the event log number it carries."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if "dipSwitches" in msg:
            assert sorted(msg) == ["dipSwitches", "seq"], msg
            return (msg["dipSwitches"], msg["seq"]) if with_seq else msg["dipSwitches"]


def no_report(ws, within):
    """Assert no switch report arrives within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=deadline - time.monotonic()))
        except TimeoutError:
            return
        assert "dipSwitches" not in msg, msg


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# --- HTTP ---------------------------------------------------------------------
def test_page_is_served_gzipped_and_plain(sim):
    page = (ROOT / "html" / "index.html").read_bytes()
    status, headers, body = get(sim.base_url + "/", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == page
    status, headers, body = get(sim.base_url + "/")  # a client without gzip
    assert status == 200 and "Content-Encoding" not in headers
    assert body == page


@pytest.mark.parametrize("path", ["/ws", "/INDEX"])
def test_websocket_paths_without_upgrade_answer_426(sim, path):
    status, headers, body = get(sim.base_url + path)
    assert status == 426
    assert headers["Upgrade"] == "websocket"
    assert b"WebSocket" in body


def test_unknown_path_answers_404_and_server_keeps_running(sim):
    assert get(sim.base_url + "/nope")[0] == 404
    assert get(sim.base_url + "/ws/extra")[0] == 404
    assert get(sim.base_url + "/")[0] == 200


def test_garbage_request_answers_400_and_server_keeps_running(sim):
    # One malformed request line (the server reads it whole, so it can answer).
    answer = sim.http(b"THIS IS NOT HTTP\r\n")
    assert answer.startswith(b"HTTP/1.0 400")
    # Binary junk with no line end, e.g. a TLS hello, from a client that then leaves.
    with socket.create_connection(("127.0.0.1", sim.http_port)) as junk:
        junk.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(64)))
    assert get(sim.base_url + "/")[0] == 200
    assert sim.alive()


def test_board_description(sim):
    status, _, body = get(sim.base_url + "/board")
    board = json.loads(body)
    assert status == 200 and board["board"] == "UNIX_SIM" and board["simulator"] is True
    assert [io["dip"] for io in board["ios"]] == [1, 2, 3, 4, 5, 6, 7, 8] + [0] * 8


def test_head_answers_the_head_of_get_without_the_body(sim):
    full = sim.http(b"GET /board HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    head = sim.http(b"HEAD /board HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    full_head, _, body = full.partition(b"\r\n\r\n")
    assert head == full_head + b"\r\n\r\n"
    assert b"Content-Length: %d\r\n" % len(body) in head
    # Methods a path does not take: 405, and the server goes on.
    assert sim.http(b"POST /board HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").startswith(
        b"HTTP/1.0 405")
    assert get(sim.base_url + "/board")[0] == 200


# --- switch reports -------------------------------------------------------------
@pytest.mark.parametrize("path", ["/ws", "/INDEX"])
def test_report_on_connect_and_after_each_change(start_sim, path):
    sim = start_sim(debounce_ms=0)
    with connect(sim.ws_url(path)) as ws:
        assert report(ws, with_seq=True) == (ALL_OFF, 0)
        assert sim.control("set 0 0") == "ok"
        assert report(ws, with_seq=True) == (dict(ALL_OFF, dip1="On"), 1)
        assert sim.control("set 7 0") == "ok"
        assert report(ws, with_seq=True) == (dict(ALL_OFF, dip1="On", dip8="On"), 2)
        assert sim.control("set 9 1") == "ok"  # a GPIO input: logged, no report
        assert sim.control("set 0 1") == "ok"
        assert report(ws, with_seq=True) == (dict(ALL_OFF, dip8="On"), 4)


def test_gpio_change_sends_no_switch_report(start_sim):
    sim = start_sim(debounce_ms=0)
    with connect(sim.ws_url()) as ws:
        report(ws)
        assert sim.control("set 9 1") == "ok"
        no_report(ws, 0.3)


def test_debounce_glitch_not_reported_and_held_change_reported_once(start_sim):
    sim = start_sim(debounce_ms=300)
    with connect(sim.ws_url()) as ws:
        assert report(ws) == ALL_OFF
        # A glitch: on and off again well inside 300 ms.
        t0 = time.monotonic()
        assert sim.control("set 2 0") == "ok"
        assert sim.control("set 2 1") == "ok"
        assert time.monotonic() - t0 < 0.3, "control port too slow for this check"
        no_report(ws, 0.8)
        # A change that holds: reported once, after the debounce time.
        t0 = time.monotonic()
        assert sim.control("set 2 0") == "ok"
        assert report(ws) == dict(ALL_OFF, dip3="On")
        assert time.monotonic() - t0 >= 0.25
        no_report(ws, 0.8)


def test_report_reaches_every_client(start_sim):
    sim = start_sim(max_clients=3, debounce_ms=0)
    with connect(sim.ws_url("/ws")) as a, connect(sim.ws_url("/INDEX")) as b, \
            connect(sim.ws_url("/ws")) as c:
        for ws in (a, b, c):
            assert report(ws) == ALL_OFF
        sim.control("set 4 0")
        for ws in (a, b, c):
            assert report(ws) == dict(ALL_OFF, dip5="On")


# --- one session ------------------------------------------------------------------
def test_newcomer_replaces_oldest_with_4001(sim):
    with connect(sim.ws_url("/ws")) as first:
        assert report(first) == ALL_OFF
        with connect(sim.ws_url("/INDEX")) as second:
            assert report(second) == ALL_OFF
            with pytest.raises(ConnectionClosed) as closed:
                first.recv(timeout=3)
            assert closed.value.rcvd.code == 4001
            assert closed.value.rcvd.reason == "replaced"
            sim.control("set 1 0")
            assert report(second) == dict(ALL_OFF, dip2="On")


def test_dead_client_does_not_lock_anyone_out(sim):
    # A client that completed the handshake and then went silent forever.
    dead = socket.create_connection(("127.0.0.1", sim.http_port))
    key = base64.b64encode(os.urandom(16)).decode()
    dead.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    dead.settimeout(3)
    assert dead.recv(4096).startswith(b"HTTP/1.1 101")
    try:
        with connect(sim.ws_url()) as ws:
            assert report(ws) == ALL_OFF
            sim.control("set 6 0")
            assert report(ws) == dict(ALL_OFF, dip7="On")
    finally:
        dead.close()


def test_two_sessions_when_configured(start_sim):
    sim = start_sim(max_clients=2)
    with connect(sim.ws_url()) as a, connect(sim.ws_url()) as b:
        report(a)
        report(b)
        with connect(sim.ws_url()) as c:
            report(c)
            with pytest.raises(ConnectionClosed) as closed:
                a.recv(timeout=3)
            assert closed.value.rcvd.code == 4001
            b.send("sc")
            assert json.loads(b.recv(timeout=3)) == {"s": {"c": "2"}}


def test_clean_close_is_answered(sim):
    with connect(sim.ws_url()) as ws:
        report(ws)
        ws.close(code=1000)
        assert ws.close_code == 1000  # the device answered our close frame
    with connect(sim.ws_url()) as again:  # the slot is free again
        assert report(again) == ALL_OFF


# --- control port -------------------------------------------------------------------
def test_control_port_answers(sim):
    assert sim.control("get 0") == "1"  # pulled up, switch off
    assert sim.control("set 0 0") == "ok"
    assert sim.control("get 0") == "0"
    assert sim.control("get 9") == "0"


def test_control_port_tset_drives_and_says_when_on_the_hosts_clock(sim):
    # tset is set plus the device's ticks_us at the edge; on Linux that is
    # CLOCK_MONOTONIC in microseconds, so it falls between our own readings around it.
    with connect(sim.ws_url()) as ws:
        assert report(ws) == ALL_OFF
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        answer = sim.control("tset 0 0")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        word, at = answer.split()
        assert word == "ok" and before <= int(at) <= after, (before, answer, after)
        assert report(ws)["dip1"] == "On"
        assert sim.control("get 0") == "0"
    assert sim.control("tset 0 2").startswith("error ")
    assert sim.control("tset 0").startswith("error ")


def test_control_port_measures_the_heap(sim):
    free, allocated = (int(n) for n in sim.control("heap").split())
    assert free > 0 and allocated > 0
    assert sim.control("gc off") == "ok"
    try:
        before = int(sim.control("alloc"))
        assert sim.control("set 3 0") == "ok"  # a transition allocates something
        assert int(sim.control("alloc")) > before
    finally:
        assert sim.control("gc on") == "ok"
    free_after, _ = (int(n) for n in sim.control("heap").split())
    assert free_after > 0


@pytest.mark.parametrize("line", [
    "", "hello", "set", "set 0", "set 0 2", "set 99 1", "set x 1", "get", "get -1",
    "get 16", "set 0 1 1", "tset 99 0", "x" * 200, "heap 1", "gc", "gc maybe", "alloc x",
])
def test_malformed_control_lines_answer_error_and_sim_keeps_running(sim, line):
    answer = sim.control(line)
    assert answer.startswith("error "), answer
    assert sim.control("get 0") == "1"
    assert sim.alive()


def test_an_http_request_on_the_control_port_is_told_where_http_is(sim):
    # A browser or curl pointed at the control port by mistake: one HTTP answer whose
    # body is one error line naming the HTTP port, the connection closed, and nothing
    # printed by the simulator (it printed a traceback when curl hung up).
    from simclient import exchange, split_answer

    for request in (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl\r\n\r\n",
                    b"GET /action.cgi?v3 HTTP/1.0\r\n\r\n"):
        status, headers, body = split_answer(exchange(sim.control_port, request))
        assert status == 400 and headers["content-type"] == "text/plain"
        line = body.decode()
        assert line.count("\n") == 1 and line.startswith("error this is the simulator's"
                                                         " control port")
        assert "http://127.0.0.1:%d/" % sim.http_port in line
    # curl's own way: it reads the answer's head and hangs up.
    with socket.create_connection(("127.0.0.1", sim.control_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(8)
    s = socket.create_connection(("127.0.0.1", sim.control_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # a reset
    assert sim.control("get 0") == "1"  # the control port still serves
    time.sleep(0.2)
    assert sim.alive() and "Traceback" not in "".join(sim.output), "".join(sim.output)


def test_the_readmes_control_port_lines_answer_ok_and_flip_switch_1(sim):
    # README's first example, run as written (the simulator's control port for 8081):
    # each line prints the answer, "ok"; the comments say what the page then shows.
    import re
    import subprocess

    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "/dev/tcp" in b)
    # A person types the lines one after another: longer apart than the debounce time.
    script = block.replace("/8081", "/%d" % sim.control_port).replace("\n", "\nsleep 0.2\n")
    assert "# ok:" not in script  # it read as if that were the reply (issue 16)
    with connect(sim.ws_url()) as ws:
        assert report(ws) == ALL_OFF
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=10)
        assert (done.returncode, done.stdout) == (0, "ok\nok\n"), done.stderr
        assert report(ws)["dip1"] == "On"
        assert report(ws)["dip1"] == "Off"
    assert [line.split("#")[1].strip() for line in block.splitlines()] == [
        'answers "ok"; the page now shows switch 1 On', 'answers "ok"; switch 1 Off again']
