"""Memory: the deployed build serves 4 clients through a soak in a small heap, and a
switch report pushed to a client allocates nothing for that client.

The simulator runs the compiled build (build/UNIX_SIM, .mpy) on the unix port with
`-X heapsize=`. The unix port is 64-bit: the same build takes about 1.5 times the
heap it takes on the 32-bit ESP32 and RP2040 (docs/PERFORMANCE.md), and a board that
loads .mpy files keeps their bytecode in the heap too (a frozen image does not).

Measured with tools/bench_memory.py (`floor`: the smallest heap, in 2 KiB steps, in
which the soak below passes with 2000 transitions):
  4 clients: 134-138 KiB (126 before issue 13's hardening; see HEAP).
  At rest after boot about 120 KB is allocated (docs/PERFORMANCE.md, "Memory on
  three targets", has today's figure); each WebSocket client adds about 2 KB. Most of
  it is modules, bytecode and qstrs (the .mpy bytecode lives in the heap on the unix
  port); boot/'s modules (startup, board_json, config_json, settings_json, serving,
  tlskeys, mqtt_json) are dropped during start-up, and the board config is emptied.
  The rest is the IO bank, the event log and report, the routes and /board, the
  listening sockets. What fails in a smaller heap is an allocation of a few hundred
  bytes, or the page's inflater, while a request is served next to the 4 sessions.
  Pushing a switch report allocates 0 bytes per client, and nothing per change in the
  device logic.
How these figures came down: docs/PERFORMANCE.md, History.
The test holds the floor with margin: HEAP below; and HEAP_32 on the 32-bit port built
from MicroPython's source, where it can run (tests_host/test_fidelity.py says when).
"""

import contextlib
import subprocess

import pytest
from websockets.sync.client import connect

import bench_memory
import build
from conftest import ROOT

# Start-up's own modules: firmware/pinsock/boot/, all forgotten once the device serves.
BOOT_ONLY_MODULES = sorted(p.stem for p in (ROOT / "firmware" / "pinsock" / "boot").glob("*.py"))

# Smallest heap measured for the soak with 4 clients: 134-138 KiB from run to run (138
# in six runs of `tools/bench_memory.py floor --transitions 1000`, 3 December 2026; a
# CI run failed at 138); this leaves 4 KiB above the highest. What fails at the floor
# is the page inflated for a client without gzip: the inflater's 1.3 KB and its 1 KiB
# window, each in one piece, next to 4 sessions. (126 KiB before the hardening of
# issue 13, 134 before issue 18's kinds; the .mpy bytecode lives in the heap on the
# unix port, a frozen build keeps it in flash.)
HEAP = "142K"
# With a password (test_password_e2e.py): the login code stays loaded
# (transport/login_routes.py, logic/sessions.py). Smallest heap its scenario passed in:
# 138 KiB (136 failed; 132 before issue 13); 143 KiB with issue 16 (the styled login
# page, user pages behind the login) and issue 17 (the updates' routes).
HEAP_WITH_PASSWORD = "148K"
# The same soak on the 32-bit unix port (the chips' object sizes; tools/unix32.py),
# smallest heaps measured with `tools/bench_memory.py floor --target ...` in 2 KiB
# steps (December 2026): the .mpy build from the file system 94-96 KiB (held at 96 KiB,
# the budget of issue 15); pinsock frozen in 44-48 KiB, its budget 48 (held at 52 KiB:
# at the floor itself this test would be flaky).
HEAP_32 = {"unix32": "96K", "frozen": "52K"}
CLIENTS = 4
TRANSITIONS = 1000
# What a pushed switch report may allocate per client (gc.mem_alloc() deltas).
MAX_BYTES_PER_PUSH_PER_CLIENT = 256


def test_serves_4_clients_through_the_soak_within_142k(start_sim):
    sim = start_sim(heapsize=HEAP, max_clients=CLIENTS, debounce_ms=0)
    # Every client told every transition, commands, the page (gzip and inflated on the
    # device), /board, /log, /action.cgi and reconnects; then a new client is served.
    bench_memory.soak(sim, CLIENTS, TRANSITIONS,
                      page=(ROOT / "html" / "index.html").read_bytes())
    assert sim.alive()
    output = "".join(sim.output)
    assert "MemoryError" not in output and "Traceback" not in output, output


@pytest.mark.parametrize("target", sorted(HEAP_32))
def test_the_32_bit_port_serves_4_clients_through_the_soak(start_sim, target):
    from test_fidelity import need_unix32

    need_unix32()
    sim = start_sim(heapsize=HEAP_32[target], max_clients=CLIENTS, debounce_ms=0,
                    **{target: True})
    bench_memory.soak(sim, CLIENTS, TRANSITIONS,
                      page=(ROOT / "html" / "index.html").read_bytes())
    assert sim.alive()
    output = "".join(sim.output)
    assert "MemoryError" not in output and "Traceback" not in output, output


def test_a_pushed_report_allocates_nothing_per_client(start_sim):
    # With automatic collection off, gc.mem_alloc() counts every byte allocated: per
    # transition with no client, then with 4, the difference being what the clients
    # cost. (The control port's own line is the same in both.)
    sim = start_sim(heapsize="2M", max_clients=CLIENTS, debounce_ms=0)
    alone, control = bench_memory.alloc_per_transition(sim, [], 100)
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(connect(sim.ws_url(), open_timeout=5))
                 for _ in range(CLIENTS)]
        shared, _ = bench_memory.alloc_per_transition(sim, socks, 100)
    per_client = (shared - alone) / CLIENTS
    assert per_client <= MAX_BYTES_PER_PUSH_PER_CLIENT, (alone, shared)
    # What is left is the frame built once for everyone, the log record and the
    # control port's line: bounded too, so a regression there shows.
    assert alone - control <= 1024, (alone, control)


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


# Start-up's steps as lifecycle.run() takes them (configs, TLS files, hardware, build),
# then lifecycle.forget_boot_modules(): what it imported for start-up only is gone.
FORGET_BOOT_MODULES = """
import sys
import pinsock
from pinsock import lifecycle
from pinsock.boot import startup

board, conf = startup.load_configs(["--state-dir", sys.argv[1]])
context = startup.tls_context(board)
device, bank, status, hub, routes = startup.build(board, startup.load_hardware(board), conf)
from pinsock.boot import serving  # what lifecycle.run serves with (not run here)
prefix = "pinsock.boot."
loaded = sorted(n[len(prefix):] for n in sys.modules if n.startswith(prefix))
boot = [sys.modules[prefix + n] for n in loaded] + [sys.modules["pinsock.boot"]]
board = conf = routes = startup = context = serving = None
lifecycle.forget_boot_modules()
print("loaded:", " ".join(loaded))
print("alive:", " ".join(n[8:] for n in sys.modules if n.startswith("pinsock.")))
print("kept:", " ".join([n for n in sys.modules if n.startswith("pinsock.boot")]
                       + (["pinsock.boot"] if hasattr(pinsock, "boot") else [])))
print("held by:", " ".join(name + "." + attr for name, module in sys.modules.items()
                          for attr in dir(module)
                          if any(getattr(module, attr) is m for m in boot)))
"""


def test_start_up_modules_are_forgotten_once_the_device_serves(sim_build, micropython,
                                                                tmp_path):
    # boot/settings_json.py (reading settings.json) is among them: logic/settings.py
    # lives on and saves, but must not keep the loading code in the heap of a board.
    # With an mqtt block, so that boot/mqtt_json.py (loaded only then) is among them.
    (tmp_path / "config.json").write_text('{"mqtt": {"host": "127.0.0.1", "port": 1}}')
    proc = subprocess.run([micropython, "-c", FORGET_BOOT_MODULES, str(tmp_path)],
                          cwd=sim_build, capture_output=True, text=True, timeout=30,
                          env={"MICROPYPATH": ".frozen::%s" % (sim_build / "lib")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = dict(line.partition(":")[::2] for line in proc.stdout.splitlines()
                if line.startswith(("loaded:", "alive:", "kept:", "held by:")))
    assert said["loaded"].split() == list(BOOT_ONLY_MODULES), proc.stdout
    assert "logic.settings" in said["alive"].split(), proc.stdout
    assert "boot.settings_json" not in said["alive"].split(), proc.stdout
    assert said["kept"].split() == [], proc.stdout
    assert said["held by"].split() == [], proc.stdout
