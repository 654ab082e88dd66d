"""End-to-end, on the simulator through real sockets (issue 13): strict UTF-8, the
login throttle, the Host check against DNS rebinding, and the flash-write budget."""

import json
import os
import socket
import threading
import time
import urllib.parse

import pytest
from simclient import HOST, RawWs, client_frame, connect_tcp, close_code, split_answer

from pinsock.protocol import utf8


# --- strict UTF-8 -------------------------------------------------------------------
BAD_UTF8 = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]  # overlong, surrogate, >U+10FFFF


def close_of(ws):
    """The close code of the device's close frame, after any text frames; the texts."""
    texts = []
    while True:
        opcode, payload = ws.next_frame()
        if opcode == 0x8:
            return close_code(payload), texts
        if opcode == 0x1:
            assert utf8.is_valid(payload), payload
            texts.append(payload)


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "past-10ffff"])
def test_text_that_is_not_strict_utf8_closes_1007_and_is_never_echoed(sim, bad):
    ws = RawWs(sim.http_port)
    try:
        ws.next_frame()  # the switch report
        ws.send_frame(0x1, b"v" + bad)
        code, texts = close_of(ws)
        assert code == 1007, texts
        assert texts == []  # no error reply carrying the bytes back
    finally:
        ws.close()


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "past-10ffff"])
def test_a_close_reason_that_is_not_strict_utf8_is_answered_1007(sim, bad):
    ws = RawWs(sim.http_port)
    try:
        ws.next_frame()
        ws.send_frame(0x8, (1000).to_bytes(2, "big") + b"bye" + bad)
        assert close_of(ws)[0] == 1007
    finally:
        ws.close()


def test_valid_utf8_of_every_length_is_still_a_command(sim):
    ws = RawWs(sim.http_port)
    try:
        ws.next_frame()
        for text in ("sn=caf\u00e9", "sn=\u20ac", "sn=\U0001f600", "v\u00e9"):
            ws.send_text(text)
            reply = json.loads(ws.recv_text())
            assert reply["e"]["m"] == "invalid character", reply
    finally:
        ws.close()


@pytest.mark.parametrize("bad", BAD_UTF8, ids=["overlong", "surrogate", "past-10ffff"])
def test_action_cgi_refuses_escapes_that_are_not_strict_utf8(sim, bad):
    escaped = "".join("%%%02X" % b for b in bad)
    for query in (escaped, "sn=" + escaped, "v" + escaped):
        answer = sim.http(("GET /action.cgi?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                           % (query, sim.http_port)).encode())
        status, _, body = split_answer(answer)
        assert status == 400, answer
        assert utf8.is_valid(body), body
        assert json.loads(body)["e"]["m"] == "invalid character", body
    # Raw bytes in the request line are not echoed either.
    answer = sim.http(b"GET /action.cgi?v" + bad + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _, body = split_answer(answer)
    assert utf8.is_valid(body), body
