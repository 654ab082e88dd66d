"""End-to-end: hostile and broken WebSocket frames and HTTP requests get a clear answer
(a close code or an HTTP status) and the device keeps serving everyone else."""

import json
import os
import socket
import struct
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from simclient import RawWs, upgrade_request


def still_serving(sim):
    """Another client is served normally afterwards."""
    with connect(sim.ws_url()) as ws:
        assert "dipSwitches" in json.loads(ws.recv(timeout=5))
        ws.send("v3")
        assert json.loads(ws.recv(timeout=5)) == {"v": {"3": "1"}}
    assert sim.alive()


CASES = {
    # name: (what to send, expected close code)
    "frame over the limit": (lambda ws: ws.send_frame(1, b"v" * 257), 1009),
    "length field of 2**62": (lambda ws: ws.send_frame(1, b"", length=2**62), 1009),
    "binary frame": (lambda ws: ws.send_frame(2, b"v3"), 1003),
    "invalid UTF-8": (lambda ws: ws.send_frame(1, b"v\xff\xfe"), 1007),
    "fragmented message": (lambda ws: ws.send_frame(1, b"v", fin=False), 1003),
    "lone continuation": (lambda ws: ws.send_frame(0, b"3"), 1002),
    "unmasked frame": (lambda ws: ws.send_frame(1, b"v3", masked=False), 1002),
    "reserved opcode 3": (lambda ws: ws.send_frame(3, b"v3"), 1002),
    "reserved opcode 11": (lambda ws: ws.send_frame(11, b""), 1002),
    "reserved bit": (lambda ws: ws.send_frame(1, b"v3", rsv=0x40), 1002),
    "close with bad code": (lambda ws: ws.send_frame(8, struct.pack("!H", 1005)), 1002),
    "close with 1 byte": (lambda ws: ws.send_frame(8, b"\x03"), 1002),
    "close with bad UTF-8 reason": (
        lambda ws: ws.send_frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
    "ping of 126 bytes": (lambda ws: ws.send_frame(9, b"x" * 126), 1002),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_frame_gets_its_close_code(sim, name):
    send, code = CASES[name]
    ws = RawWs(sim.http_port, timeout=5)  # to send what real clients never would
    try:
        send(ws)
        texts, got = ws.frames()
        assert got == code, (name, texts)
    finally:
        ws.close()
    still_serving(sim)


def test_length_that_lies_does_not_block_others(sim):
    # Says 200 bytes, sends 10, then waits: only this connection waits.
    ws = RawWs(sim.http_port, timeout=5)
    try:
        ws.sock.sendall(bytes((0x81, 0x80 | 126)) + struct.pack("!H", 200) + os.urandom(4)
                        + b"0123456789")
        still_serving(sim)
    finally:
        ws.close()
    still_serving(sim)


def test_ping_is_answered_with_pong_and_commands_still_work(sim):
    ws = RawWs(sim.http_port, timeout=5)
    try:
        ws.send_frame(9, b"hello")
        while True:
            opcode, payload = ws.next_frame()
            if opcode == 0xA:
                assert payload == b"hello"
                break
            assert opcode == 1  # only the switch report may come first
        ws.send_frame(1, b"v3")
        assert ws.next_frame() == (1, b'{"v":{"3":"1"}}')
        ws.send_frame(8, struct.pack("!H", 1000))
        texts, code = ws.frames()
        assert code == 1000  # our close answered with the same code
    finally:
        ws.close()


def test_command_too_long_in_a_short_frame_is_an_error_reply_not_a_close(sim):
    ws = RawWs(sim.http_port, timeout=5)
    try:
        ws.send_frame(1, b"v" * 40)
        ws.send_frame(8, struct.pack("!H", 1000))
        texts, code = ws.frames()
        replies = [json.loads(t) for t in texts if '"dipSwitches"' not in t]
        assert replies == [{"e": {"c": "v" * 32, "m": "command too long"}}]
        assert code == 1000
    finally:
        ws.close()


@pytest.mark.parametrize("path", ["/../board.json", "/%2e%2e/board.json", "/board.json",
                                  "/config.json", "/settings.json", "/www/index.html.gz",
                                  "//etc/passwd", "/pinsock/app.mpy", "/main.py"])
def test_no_file_outside_the_page_set(sim, path):
    # urllib would normalise "..": send the path as it is.
    answer = sim.http(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    assert answer.startswith(b"HTTP/1.0 404"), (path, answer[:60])
    still_serving(sim)


def test_overlong_request_line_and_header_answer_400(sim):
    answer = sim.http(b"GET /" + b"a" * 5000 + b" HTTP/1.0\r\n")
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.0 431"), answer[:40]
    answer = sim.http(b"GET / HTTP/1.0\r\nX-Long: " + b"b" * 5000 + b"\r\n")
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.0 431"), answer[:40]
    still_serving(sim)


@pytest.mark.parametrize("name, head", [
    # Each line is short; together they would fill a board's heap.
    ("many small headers", b"".join(b"X-%d: 1\r\n" % i for i in range(200))),
    ("many long headers", b"".join(b"X-%d: %s\r\n" % (i, b"c" * 1000) for i in range(6))),
])
def test_request_head_over_its_limit_answers_400(sim, name, head):
    answer = sim.http(b"GET /board HTTP/1.0\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
    assert answer.startswith(b"HTTP/1.0 400"), (name, answer[:40])
    assert b"too long" in answer
    still_serving(sim)


def test_a_request_body_over_the_limit_answers_413_and_is_not_read_into_the_heap(sim):
    head = ("POST /login HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: "
            "application/x-www-form-urlencoded\r\nContent-Length: 1025\r\n\r\n")
    # The body is refused unread, so send none: closing with it unread would reset the
    # connection before the answer is read.
    answer = sim.http(head.encode())
    assert answer.startswith(b"HTTP/1.0 413"), answer[:40]
    still_serving(sim)


def test_a_request_head_that_never_ends_is_dropped(start_sim):
    sim = start_sim()
    with socket.create_connection(("127.0.0.1", sim.http_port), timeout=20) as s:
        s.sendall(b"GET /board HTTP/1.0\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        answer = b""
        while True:  # the device answers 408 and closes once the request timeout passes
            chunk = s.recv(1024)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 408"), answer[:40]
    still_serving(sim)


def test_many_connections_that_send_nothing_do_not_stop_the_page(sim):
    idle = [socket.create_connection(("127.0.0.1", sim.http_port)) for _ in range(10)]
    try:
        with urllib.request.urlopen(sim.base_url + "/board", timeout=5) as r:
            assert r.status == 200
    finally:
        for s in idle:
            s.close()
    still_serving(sim)


def test_action_cgi_with_broken_escape_answers_400(sim):
    try:
        urllib.request.urlopen(sim.base_url + "/action.cgi?sn=%zz", timeout=5)
        raise AssertionError("accepted a broken escape")
    except urllib.error.HTTPError as e:
        assert e.code == 400
    still_serving(sim)


def handshake(sim, path="/ws", extra=""):
    """The status line the device answers a WebSocket handshake with."""
    with socket.create_connection(("127.0.0.1", sim.http_port), timeout=5) as s:
        s.sendall(upgrade_request(path, "127.0.0.1:%d" % sim.http_port, extra))
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(256)
            if not chunk:
                break
            answer += chunk
        return answer


def test_websocket_from_another_sites_page_is_refused_with_403(sim):
    for path in ("/ws", "/INDEX", "/log"):
        assert handshake(sim, path, "Origin: http://evil.example\r\n").startswith(
            b"HTTP/1.1 403"), path
        assert handshake(sim, path, "Origin: http://127.0.0.1:1\r\n").startswith(
            b"HTTP/1.1 403"), path  # same host, other port: another origin
    assert handshake(sim, "/ws", "Sec-Fetch-Site: cross-site\r\n").startswith(b"HTTP/1.1 403")
    still_serving(sim)


def test_a_websocket_client_reads_why_its_handshake_was_refused(sim):
    # A refused handshake is answered in HTTP/1.1, the only answer WebSocket clients
    # parse: the client learns the status and the reason, not "invalid response".
    with pytest.raises(InvalidStatus) as refused:
        connect(sim.ws_url("/ws"), origin="http://evil.example", open_timeout=5)
    assert refused.value.response.status_code == 403
    assert refused.value.response.headers["Connection"] == "close"
    assert refused.value.response.body == b"Forbidden: cross-site request\n"
    still_serving(sim)


def test_websocket_from_the_devices_own_page_and_from_scripts_is_allowed(sim):
    own = "Origin: http://127.0.0.1:%d\r\n" % sim.http_port
    for extra in (own, "", own + "Sec-Fetch-Site: same-origin\r\n"):
        answer = handshake(sim, "/ws", extra)
        assert answer.startswith(b"HTTP/1.1 101"), (extra, answer)


def test_origins_allowed_in_config_json_may_open_the_websocket(start_sim, tmp_path):
    state = tmp_path / "flash"
    state.mkdir()
    (state / "config.json").write_text(json.dumps(
        {"allowed_origins": ["http://dashboard.lan:8000"]}))
    sim = start_sim(state_dir=state)
    answer = handshake(sim, "/ws", "Origin: http://dashboard.lan:8000\r\n")
    assert answer.startswith(b"HTTP/1.1 101"), answer
    assert handshake(sim, "/ws", "Origin: http://dashboard.lan:9000\r\n").startswith(
        b"HTTP/1.1 403")


def test_action_cgi_from_another_site_is_refused(sim):
    for header in ("Origin: http://evil.example", "Sec-Fetch-Site: cross-site"):
        answer = sim.http(("GET /action.cgi?v3 HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s\r\n\r\n"
                           % (sim.http_port, header)).encode())
        assert answer.startswith(b"HTTP/1.0 403"), answer[:40]
    answer = sim.http(("GET /action.cgi?v3 HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n"
                       % sim.http_port).encode())
    assert answer.startswith(b"HTTP/1.0 200")


def test_request_without_host_answers_400(sim):
    answer = sim.http(b"GET / HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400"), answer[:40]
    assert b"Host" in answer
    still_serving(sim)
