"""Memory: the deployed build boots and serves its clients within a small heap.

The simulator runs the compiled build (build/UNIX_SIM, .mpy) on the unix port with
`-X heapsize=`. The unix port is 64-bit: objects take about twice the room they take
on the 32-bit ESP32 and RP2040, so 192 KiB here stands for roughly 100 KiB on a board.
Smallest heaps measured (November 2026), booting and serving 1, 2 and 4 clients with
the page: 168, 180 and 189 KiB. Each client holds about 6 KiB here; the rest of the
peak is the firmware's modules (about 95 KiB of bytecode and objects, microdot
included) and what serving the page needs for a moment.
"""

import contextlib
import gzip
import json
import subprocess
import urllib.request

from websockets.sync.client import connect

import build
from conftest import ROOT

HEAP = "192K"
REAL_BOARDS = [json.loads(p.read_text()) for p in (ROOT / "boards").glob("*/board.json")]
# The most clients any real board admits: the heaviest load a board must carry.
CLIENTS = max(b["max_clients"] for b in REAL_BOARDS if b["hal"] != "sim")
ROUNDS = 4  # each DIP switch goes on and off twice; every client is told every time


def next_report(ws):
    while True:
        msg = json.loads(ws.recv(timeout=5))
        if "dipSwitches" in msg:
            return msg["dipSwitches"]


def test_boots_and_serves_max_clients_within_192k(start_sim):
    sim = start_sim(heapsize=HEAP, max_clients=CLIENTS, debounce_ms=0)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(sim.ws_url(), open_timeout=5))
                   for _ in range(CLIENTS)]
        for ws in clients:
            assert next_report(ws) == {"dip%d" % i: "Off" for i in range(1, 9)}
        for n in range(ROUNDS):
            level = n % 2  # 0: switched on (active low), 1: off
            for io in range(8):
                assert sim.control("set %d %d" % (io, level)) == "ok"
                for ws in clients:
                    report = next_report(ws)
                    assert report["dip%d" % (io + 1)] == ("Off" if level else "On")
        for ws in clients:
            ws.send("s")
            while True:
                status = json.loads(ws.recv(timeout=5))
                if "s" in status:
                    break
            assert status["s"]["c"] == str(CLIENTS)
        # The page, while every client is connected.
        request = urllib.request.Request(sim.base_url + "/",
                                         headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as r:
            page = gzip.decompress(r.read())
        assert page == (ROOT / "html" / "index.html").read_bytes()
    # Memory comes back: a new client is served after all of that.
    with connect(sim.ws_url(), open_timeout=5) as ws:
        assert next_report(ws)["dip1"] == "Off"
    assert sim.alive()
    assert "MemoryError" not in "".join(sim.output), "".join(sim.output)


def test_page_inflates_with_a_1k_window(sim_build, micropython):
    # A client without gzip gets the page inflated on the board. The build deflates
    # it with a small window so that takes a 1 KiB buffer, not 32 KiB in one piece,
    # which a fragmented board heap may not have: shown here in a 48 KiB heap.
    script = ("import deflate\n"
              "s = deflate.DeflateIO(open('www/index.html.gz', 'rb'), deflate.GZIP, %d)\n"
              "n = 0\n"
              "while True:\n"
              "    b = s.read(512)\n"
              "    if not b:\n"
              "        break\n"
              "    n += len(b)\n"
              "print(n)\n" % build.PAGE_WINDOW_BITS)
    proc = subprocess.run([micropython, "-X", "heapsize=48K", "-c", script], cwd=sim_build,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout) == len((ROOT / "html" / "index.html").read_bytes())
