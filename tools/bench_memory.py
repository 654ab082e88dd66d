"""Memory: the smallest heap the firmware serves its clients in, and what a push costs.
A benchmark, not a test: it prints figures (tests_host/test_memory.py holds the floor).

    python tools/bench_memory.py floor [--clients 4] [--transitions 2000] [--low 96 --high 256]
    python tools/bench_memory.py soak --heap 128 [--clients 4] [--transitions 2000]
    python tools/bench_memory.py push [--clients 0 1 4] [--updates 200]
    ... [--target mpy|unix32|frozen]   (default mpy; tools/bench_targets.py)

floor   bisects `-X heapsize` (KiB) for the smallest heap in which `soak` passes.
soak    one run of the soak scenario (soak() below) in a heap of --heap KiB.
push    heap allocated per switch transition with automatic collection off
        (gc.mem_alloc() deltas through the control port's `alloc`), for each client
        count, and from those the cost per pushed update per client.

Everything runs the compiled build (build/UNIX_SIM, .mpy) on the unix port, which is
64-bit: objects there are about twice their size on the 32-bit boards. --target unix32
runs it on the 32-bit unix port built from MicroPython's source, --target frozen on
that port with pinsock frozen in (tools/unix32.py).
"""

import argparse
import contextlib
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
from simclient import Control, http_get, next_message, ws_connect  # noqa: E402
from simproc import Sim  # noqa: E402

# The benchmark builds into a folder of its own: tests running at the same time
# rebuild build/UNIX_SIM, and a simulator must not run a folder that changes under it.
BUILD_DIR = build.ROOT / "build" / "UNIX_SIM_bench"
# Commands the soak scenario's clients send, in turn (one per COMMAND_EVERY transitions).
SOAK_COMMANDS = ("v", "s", "tuv8=3", "v0", "d", "p", "sm", "tuv", "v8", "sn")
COMMAND_EVERY = 8
PAGE_EVERY = 250  # transitions between page (and /board, /log, /action.cgi) requests
RECONNECT_EVERY = 500  # transitions between one client leaving and a new one arriving
# What the soak does besides transitions ("inflate": the page also without gzip).
SOAK_PARTS = ("commands", "page", "inflate", "reconnect")


def get(sim, path, gzip_ok=True):
    """The body of GET path (inflated here when the device sent it gzipped)."""
    status, headers, body = http_get(sim.http_port, path,
                                     {"Accept-Encoding": "gzip"} if gzip_ok else None)
    if status != 200:
        raise AssertionError("GET %s answered %d" % (path, status))
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return body


def built_page():
    return gzip.decompress((BUILD_DIR / "www" / "index.html.gz").read_bytes())


# tools/sim.py's switches for each target.
TARGETS = {"mpy": {}, "unix32": {"unix32": True}, "frozen": {"frozen": True}}
TARGET = "mpy"  # main() sets it from --target


def start_sim(state, heap_kib, clients, target=None):
    return Sim(state, heapsize="%dK" % heap_kib, max_clients=max(clients, 1), debounce_ms=0,
               build_dir=BUILD_DIR, **TARGETS[target or TARGET]).start()


def soak(sim, clients, transitions, parts=SOAK_PARTS, page=None):
    """Several clients, many switch transitions, commands, the page. Raises on failure.

    Every client is told every transition; every COMMAND_EVERY transitions each client
    sends a command and reads its reply; every PAGE_EVERY transitions the page (gzip, and
    inflated on the device), /board, /log and /action.cgi are fetched while the clients
    stay connected; every RECONNECT_EVERY transitions the oldest client leaves and a new
    one connects. `page`: the page the device serves (default: this benchmark's build's).
    """
    page = built_page() if page is None else page
    ctl = Control(sim.control_port)
    socks = []
    with contextlib.ExitStack() as stack:
        stack.callback(ctl.close)
        for _ in range(clients):
            ws = stack.enter_context(ws_connect(sim.http_port))
            socks.append(ws)
            next_message(ws, "dipSwitches")
        levels = [1] * 8
        for n in range(transitions):
            io = n % 8
            levels[io] ^= 1
            if ctl.ask("set %d %d" % (io, levels[io])) != "ok":
                raise AssertionError("control port refused set")
            want = "Off" if levels[io] else "On"
            for ws in socks:
                report = next_message(ws, "dipSwitches")["dipSwitches"]
                if report["dip%d" % (io + 1)] != want:
                    raise AssertionError("client missed transition %d" % n)
            if n % COMMAND_EVERY == 0 and "commands" in parts:
                command = SOAK_COMMANDS[(n // COMMAND_EVERY) % len(SOAK_COMMANDS)]
                for ws in socks:
                    ws.send(command)
                    while True:
                        msg = json.loads(ws.recv(timeout=10))
                        if "dipSwitches" not in msg and "u" not in msg:
                            break
                    if "e" in msg:
                        raise AssertionError("command %r: %r" % (command, msg))
            if n % PAGE_EVERY == 0 and "page" in parts:
                for gzip_ok in (True, False) if "inflate" in parts else (True,):
                    got = get(sim, "/", gzip_ok)
                    if got != page:
                        raise AssertionError("page (gzip %s): %d bytes, %d expected"
                                             % (gzip_ok, len(got), len(page)))
                json.loads(get(sim, "/board"))
                json.loads(get(sim, "/log?since=0"))
                json.loads(get(sim, "/action.cgi?v"))
            if n % RECONNECT_EVERY == RECONNECT_EVERY - 1 and "reconnect" in parts:
                socks.pop(0).close()
                ws = stack.enter_context(ws_connect(sim.http_port))
                socks.append(ws)
                next_message(ws, "dipSwitches")
    # Memory comes back: a new client is served after all of that.
    with ws_connect(sim.http_port) as ws:
        next_message(ws, "dipSwitches")


def run_soak(heap_kib, clients, transitions, parts=SOAK_PARTS):
    """(passed, what went wrong) for one soak run in a heap of heap_kib KiB."""
    with tempfile.TemporaryDirectory() as state:
        try:
            sim = start_sim(state, heap_kib, clients)
        except AssertionError as exc:
            return False, "did not start: " + str(exc)[-300:]
        try:
            return sim.verdict(lambda sim: soak(sim, clients, transitions, parts))
        finally:
            sim.stop()


def floor(clients, transitions, low, high, step=2, parts=SOAK_PARTS):
    """Smallest heap (KiB, multiple of step) in [low, high] where the soak passes."""
    ok, why = run_soak(high, clients, transitions, parts)
    print("%4d KiB: %s %s" % (high, "pass" if ok else "FAIL", why), flush=True)
    if not ok:
        return None
    while high - low > step:
        mid = (low + high) // 2 // step * step
        ok, why = run_soak(mid, clients, transitions, parts)
        print("%4d KiB: %s %s" % (mid, "pass" if ok else "FAIL", why), flush=True)
        if ok:
            high = mid
        else:
            low = mid
    return high


def push_cost(clients, updates):
    """(bytes allocated per switch transition, bytes per control-port `get` line), with
    gc off, at `clients` clients."""
    with tempfile.TemporaryDirectory() as state:
        sim = start_sim(state, 4096, clients)
        with contextlib.ExitStack() as stack:
            stack.callback(sim.stop)
            socks = [stack.enter_context(ws_connect(sim.http_port))
                     for _ in range(clients)]
            return alloc_per_transition(sim, socks, updates)


def alloc_per_transition(sim, socks, updates):
    """Heap allocated per switch transition told to the connected `socks`, with gc off
    (gc.mem_alloc() deltas through the control port), and per control-port `get` line
    (what the control port itself costs per line): (per transition, per line)."""
    ctl = Control(sim.control_port)
    try:
        for ws in socks:
            next_message(ws, "dipSwitches")
        levels = [int(ctl.ask("get %d" % io)) for io in range(8)]

        def flip(n):
            io = n % 8
            levels[io] ^= 1
            assert ctl.ask("set %d %d" % (io, levels[io])) == "ok"
            for ws in socks:
                next_message(ws, "dipSwitches")

        for n in range(16):  # warm up: first-time allocations do not count
            flip(n)
        time.sleep(0.1)
        ctl.ask("heap")
        assert ctl.ask("gc off") == "ok"
        before = int(ctl.ask("alloc"))
        for n in range(updates):
            flip(n)
        time.sleep(0.1)  # let writer tasks finish their last write
        after = int(ctl.ask("alloc"))
        # What the control port's own lines cost, to take them out: a `get` is read
        # and answered like a `set`, without the transition.
        for _ in range(updates):
            ctl.ask("get 0")
        control = int(ctl.ask("alloc"))
        ctl.ask("gc on")
        return (after - before) / updates, (control - after) / updates
    finally:
        ctl.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("floor")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--transitions", type=int, default=2000)
    p.add_argument("--low", type=int, default=64)
    p.add_argument("--high", type=int, default=256)
    p.add_argument("--parts", nargs="*", default=SOAK_PARTS, choices=SOAK_PARTS)
    p = sub.add_parser("soak")
    p.add_argument("--heap", type=int, required=True)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--transitions", type=int, default=2000)
    p = sub.add_parser("push")
    p.add_argument("--clients", type=int, nargs="+", default=[0, 1, 4])
    p.add_argument("--updates", type=int, default=200)
    for p in sub.choices.values():
        p.add_argument("--target", choices=sorted(TARGETS), default="mpy")
    args = parser.parse_args(argv)
    global TARGET
    TARGET = args.target
    build.build("UNIX_SIM", BUILD_DIR)
    if args.what == "floor":
        found = floor(args.clients, args.transitions, args.low, args.high, parts=args.parts)
        print("smallest heap for %d clients, %d transitions, %s: %s KiB"
              % (args.clients, args.transitions, " ".join(args.parts) or "nothing else",
                 found))
    elif args.what == "soak":
        ok, why = run_soak(args.heap, args.clients, args.transitions)
        print("pass" if ok else "FAIL " + why)
        return 0 if ok else 1
    else:
        costs = {}
        for n in args.clients:
            costs[n], control = push_cost(n, args.updates)
            print("%d clients: %.0f bytes allocated per transition, %.0f of them the"
                  " control port's line (a `get` costs that)" % (n, costs[n], control))
        if 0 in costs:
            for n, cost in costs.items():
                if n:
                    print("%d clients: %.0f bytes per pushed update per client"
                          % (n, (cost - costs[0]) / n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
