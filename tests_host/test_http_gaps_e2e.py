"""End-to-end: the HTTP and WebSocket-handshake gaps of issue 13 (docs/SECURITY.md,
"Bad input"), each through a real socket against the simulator."""

import json
import socket
import struct
import time

from simclient import HOST, RawWs, split_answer



def ask(sim, request, timeout=5):
    return split_answer(sim.http(request, timeout))


def test_two_content_lengths_are_refused(sim):
    status, _, _ = ask(sim, b"POST /sim/set?io=0&level=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello")
    assert status == 400
    assert sim.control("get 0") == "1"  # not driven


def test_transfer_encoding_is_refused(sim):
    status, _, _ = ask(sim, b"POST /sim/set?io=0&level=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status == 400
    assert sim.control("get 0") == "1"


def test_head_does_not_run_a_command(sim):
    status, headers, body = ask(sim, b"HEAD /action.cgi?sn=renamed HTTP/1.1\r\n"
                                     b"Host: 127.0.0.1\r\n\r\n")
    assert status == 405 and headers.get("allow") == "GET" and body == b""
    status, _, body = ask(sim, b"GET /action.cgi?sn HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200 and b"renamed" not in body


def test_bad_percent_escape_gets_the_json_error(sim):
    for query in (b"%FF", b"%ZZ"):
        status, headers, body = ask(sim, b"GET /action.cgi?" + query
                                    + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 400, query
        assert "e" in json.loads(body), body


def test_body_shorter_than_its_length_gets_408(sim):
    sock = socket.create_connection((HOST, sim.http_port), timeout=15)
    try:
        sock.sendall(b"GET /board HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
        answer = sock.recv(4096)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.0 408"), answer


def test_413_is_not_lost_to_a_reset(sim):
    # A body over the limit sent whole: the device answers 413 without reading it, and
    # reads away what came before it closes, so the answer arrives.
    for _ in range(5):
        sock = socket.create_connection((HOST, sim.http_port), timeout=5)
        try:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8000\r\n\r\n"
                         + b"x" * 8000)
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.0 413"), answer


def test_1000_query_parameters_get_400_in_a_small_heap(start_sim):
    # 136 KiB: the 128 KiB the finding was made in, and the 8 KiB the heap at rest has
    # grown by since (the hardening and MQTT code; issue 16's labels, Wi-Fi setup, user
    # pages and LEDs; issue 17's updates); it used to fail with a MemoryError. 138 KiB
    # since issue 18's kinds (+1.2 KB at rest on an all-digital board; 136 fails).
    sim = start_sim(heapsize="138K")
    query = "&".join(["a"] * 1000).encode()  # 2 KB less one byte
    status, _, _ = ask(sim, b"GET /log?" + query + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 400
    status, _, body = ask(sim, b"GET /action.cgi?" + query
                          + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 400 and "e" in json.loads(body)
    assert sim.alive()


def handshake(key="dGhlIHNhbXBsZSBub25jZQ==", version="13"):
    extra = "" if version is None else "Sec-WebSocket-Version: %s\r\n" % version
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n%s\r\n" % (key, extra)).encode()


def test_websocket_version_other_than_13_gets_426(sim):
    for version in ("8", None):
        status, headers, _ = ask(sim, handshake(version=version))
        assert status == 426, version
        assert headers.get("sec-websocket-version") == "13"


def test_websocket_key_not_16_bytes_of_base64_gets_400(sim):
    for key in ("abc", "dGhlIHNhbXBsZSBub25jZQ", "AAAAAAAAAAAAAAAAAAAAAAAA", "!" * 22 + "=="):
        status, _, _ = ask(sim, handshake(key=key))
        assert status == 400, key
    RawWs(sim.http_port, timeout=5).close()  # a good key is taken (101)


def test_lone_continuation_is_a_protocol_error(sim):
    ws = RawWs(sim.http_port, timeout=5)
    try:
        ws.send_frame(0, b"3")
        _, code = ws.frames()
        assert code == 1002
    finally:
        ws.close()


def test_resets_during_the_handshake_print_one_line_not_a_traceback_each(sim):
    for _ in range(40):
        sock = socket.create_connection((HOST, sim.http_port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(handshake())
        sock.close()  # a reset, at once
    time.sleep(1)
    ws = RawWs(sim.http_port, timeout=5)
    ws.recv_text()
    ws.close()
    output = "".join(sim.output)
    assert "Traceback" not in output, output[-2000:]
    assert output.count("http: ") <= 3, output[-2000:]
