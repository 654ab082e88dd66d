"""End-to-end: dead clients are found by ping and dropped; floods are rate limited."""

import json
import time

from websockets.sync.client import connect

from simclient import open_websocket


def silent_websocket(sim):
    """A client that completes the handshake and then never sends or answers again."""
    return open_websocket(sim.http_port, timeout=5)


def clients(ws):
    ws.send("sc")
    while True:
        msg = json.loads(ws.recv(timeout=5))
        if "s" in msg:
            return int(msg["s"]["c"])


def test_silent_client_is_pinged_then_dropped_and_live_one_kept(start_sim):
    sim = start_sim(max_clients=2, ping_interval_ms=300, idle_timeout_ms=1200)
    dead = silent_websocket(sim)
    try:
        with connect(sim.ws_url()) as live:  # websockets answers pings by itself
            live.recv(timeout=5)
            assert clients(live) == 2
            # The silent one gets pings, never answers, and is closed with 1001.
            data = b""
            deadline = time.monotonic() + 5
            while b"\x88" not in data and time.monotonic() < deadline:
                chunk = dead.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert b"\x89\x00" in data  # a ping frame: FIN + opcode 9, empty
            close = data[data.index(b"\x88"):]
            assert close[2:4] == (1001).to_bytes(2, "big"), close
            assert clients(live) == 1  # its slot is free
            time.sleep(1.5)  # well past the idle timeout: the live client stays
            assert clients(live) == 1
    finally:
        dead.close()


def test_flood_is_rate_limited_and_others_stay_served(start_sim):
    sim = start_sim(max_clients=2, max_commands_per_s=50)
    with connect(sim.ws_url()) as flooder, connect(sim.ws_url()) as other:
        flooder.recv(timeout=5)
        other.recv(timeout=5)
        for _ in range(150):
            flooder.send("v3")
        replies = [json.loads(flooder.recv(timeout=5)) for _ in range(150)]
        limited = [r for r in replies if "e" in r]
        assert limited and all(r == {"e": {"c": "v3", "m": "rate limited"}} for r in limited)
        assert 50 <= sum(1 for r in replies if r == {"v": {"3": "1"}}) < 150
        other.send("v3")
        assert json.loads(other.recv(timeout=5)) == {"v": {"3": "1"}}
        time.sleep(1.1)  # a second later the flooder's credit is back
        flooder.send("v3")
        assert json.loads(flooder.recv(timeout=5)) == {"v": {"3": "1"}}
