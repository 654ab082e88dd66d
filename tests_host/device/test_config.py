# Board config checks. Runs on CPython and the unix port.
import json

from fakes import board_ios, scratch_dir
from pinsock.boot import board_json


def board(**changes):
    b = {"name": "T", "hal": "sim", "dip": {"active_low": True}, "ios": board_ios()}
    b.update(changes)
    return b


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def expect_config_error(b, words):
    try:
        board_json.check_board(b)
    except board_json.ConfigError as exc:
        assert words in str(exc), str(exc)
        return
    raise AssertionError("accepted a bad board")


def test_defaults_and_overrides():
    d = scratch_dir("config1")
    write(d + "/board.json", json.dumps(board()))
    b = board_json.load_board(d + "/board.json", {"max_clients": 3})
    assert b["max_clients"] == 3
    assert b["debounce_ms"] == board_json.DEFAULTS["debounce_ms"]


def test_bad_json_names_the_file():
    d = scratch_dir("config2")
    write(d + "/board.json", "{nope")
    try:
        board_json.load_board(d + "/board.json")
    except board_json.ConfigError as exc:
        assert "not valid JSON" in str(exc)
    else:
        raise AssertionError("accepted bad JSON")


def test_missing_file():
    try:
        board_json.load_board("/nonexistent/board.json")
    except board_json.ConfigError as exc:
        assert "cannot read" in str(exc)
    else:
        raise AssertionError("accepted a missing file")


def test_rejects_bad_boards():
    expect_config_error(board(ios=[]), "'ios'")
    ios = board_ios()
    ios[0]["dirs"] = [0, 1]
    expect_config_error(board(ios=ios), "fixed input")
    ios = board_ios()
    ios[9]["pulls"] = [3]
    expect_config_error(board(ios=ios), "'pulls'")
    ios = board_ios()
    ios[1]["dip"] = 1
    expect_config_error(board(ios=ios), "numbered")
    expect_config_error(board(max_clients=0), "max_clients")
    expect_config_error(board(debounce_ms=-1), "debounce_ms")


def test_parse_args():
    assert board_json.parse_args(["--http-port", "81", "--state-dir", "/x"]) == {
        "http_port": 81, "state_dir": "/x"}
    for bad in (["--nope", "1"], ["--http-port"], ["--http-port", "x"]):
        try:
            board_json.parse_args(bad)
        except board_json.ConfigError:
            continue
        raise AssertionError("accepted %r" % bad)


def test_each_limits_default_is_its_class_attribute():
    # One home per limit: board.json may leave a limit out, and its default is the
    # documented attribute of the class it bounds.
    from pinsock.logic.device import Device
    from pinsock.logic.eventlog import EventLog
    from pinsock.logic.iobank import IoBank
    from pinsock.transport.hub import ClientHub
    from pinsock.transport.http import Listener
    from pinsock.transport.websocket import WebSocketService

    homes = {"max_clients": (ClientHub, "max_clients"),
             "ping_interval_ms": (ClientHub, "ping_interval_ms"),
             "idle_timeout_ms": (ClientHub, "idle_timeout_ms"),
             "stuck_timeout_ms": (ClientHub, "stuck_timeout_ms"),
             "debounce_ms": (IoBank, "debounce_ms"), "poll_ms": (IoBank, "poll_ms"),
             "log_size": (EventLog, "size"),
             "max_frame_len": (WebSocketService, "max_frame_len"),
             "max_commands_per_s": (Device, "max_commands_per_s"),
             "tcp_send_buffer": (Listener, "send_buffer_bytes")}
    not_limits = ("host", "http_port", "https_port", "state_dir", "config_fix", "leds")
    assert sorted(k for k in board_json.DEFAULTS if k not in homes) == sorted(not_limits)
    for key, (cls, attr) in homes.items():
        assert board_json.DEFAULTS[key] == getattr(cls, attr), key
