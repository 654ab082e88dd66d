"""Soak: the simulator under several WebSocket clients and thousands of transitions.

    python tools/soak.py [--transitions 2000] [--clients 4] [--heapsize 192K] [--seed 0]
                         [--slow] [--debounce-ms 0]

`soak(sim, clients=4, transitions=2000, seed=0)` drives a running `simproc.Sim`
(started with `debounce_ms=0` for a brisk run, and `max_clients` >= the clients it
opens) and raises AssertionError, saying what went wrong, unless all of this holds:

- Every client's view ends equal to the pins' real state (`get <io>` on the control
  port): the DIP switches as its last switch report says, the GPIOs it subscribed to
  (`tuv<h>=3`) as its `v` reply plus the `u` updates after it say.
- On the way, every update a client gets changes the level it knew (so none was
  lost), every `v` reply agrees with what the client was told about its subscribed
  GPIOs, report `seq` never goes back, and every command gets exactly one reply, of
  the command's own shape (an error reply for the bad ones; `rate limited` allowed).
- The event log (GET /log?since=, as JSON and over a WebSocket, read at least every
  quarter ring) holds every transition driven, `seq` rising by exactly 1, each IO's
  records the same levels in the same order as they were driven. A `{"lost":N}` gap
  fails the run unless more than `log_size` records were made since the last read.
- With `slow=True`, one more client reads in bursts a quarter of a second apart: it
  stays served, and the last report it reads equals the DIP switches.
- Free heap (`heap`: gc.collect, then free bytes) at the end is within HEAP_BOUND of
  the start, both measured with no client connected, the start after a warm-up.

What it drives is fixed by `seed`: which input flips at each step (DIP switches and
the GPIOs that are inputs, each to the level it does not have), which client sends
which command when, and when one client leaves and comes back. Only timing varies.
Returns a dict of figures: transitions, seconds, heap, messages, commands, ...
"""

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosedError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simclient import (  # noqa: E402
    AsyncControl, client_frame, http_get_async, open_websocket_async, split_frame,
    ws_connect_async)
from simproc import Sim  # noqa: E402

# What any client's reader found wrong in this run (run() raises the first).
FAILURES = []
# `heap` readings settle_heap() takes the best of.
HEAP_READINGS = 12
# Free heap at the end may be this much below the start. Measured with no client
# connected, after a warm-up that made every kind of connection and request once, so
# modules, interned strings and microdot's caches are already counted in the start.
# What may still differ is not a leak: lists that grew while 4-5 clients were
# connected keep their capacity (hub.clients, hub.connections, asyncio's poll
# registrations), and the unix port allocates in 16-byte blocks (64-bit: objects
# are twice their size on a board). 2 KiB is well above that (measured: 256 bytes
# after 4000 transitions and after 100000 alike, at most 832 in other seeds) and
# well below what one leaked client would hold (about 6 KiB here).
HEAP_BOUND = 2048

# Read the event log after at most this fraction of its ring has been written, so a
# {"lost":N} gap can only come from a bug.
LOG_READS_PER_RING = 4
# The chance, per transition, that some client sends a command then.
COMMAND_CHANCE = 0.08
# Commands clients send: reads, an error of each kind that needs no state, and
# trigger writes on GPIOs (handled below). None of them writes the flash.
READS = ["v", "v0", "v9", "s", "sm", "sc", "sn", "d", "p9", "tuv", "t", "vf"]
BAD = {"x": "unknown command", "v10": "unknown command", "V9": "invalid character",
       "v=1": "cannot write a subtree", "sv=2": "read-only", "": "empty command",
       "tuv9=4": "value out of range", "v0=1": "io is an input"}
# Each client sends at most this many commands a second, in bursts of COMMAND_BURST:
# under the device's limit of 50 (a burst of 50), with room for timing jitter.
COMMANDS_PER_S = 40
COMMAND_BURST = 20
# How long any single wait may take before the soak gives up (a stuck device).
STEP_TIMEOUT_S = 10
# The slow client reads in bursts: this long asleep, then at most SLOW_READ_BYTES.
# On average it keeps up (about 250 KB/s, more than the device sends), but each
# report waits; a client that never keeps up is tests_host/test_slow_reader_e2e.py.
SLOW_READ_PAUSE_S = 0.25
SLOW_READ_BYTES = 65536
SLOW_RCVBUF = 4096
HEX = "0123456789abcdef"


class SoakFailure(AssertionError):
    pass


def check(condition, message, *args):
    if not condition:
        raise SoakFailure(message % args if args else message)


# --- the device's side: HTTP, the log -----------------------------------------------
async def http_get(sim, path):
    """Body of a plain GET on the simulator's HTTP port."""
    status, _, body = await http_get_async(sim.http_port, path, timeout=STEP_TIMEOUT_S)
    check(status == 200, "GET %s answered %d", path, status)
    return body


class LogReader:
    """Reads the event log from where it left off and checks it has no gap."""

    def __init__(self, sim, log_size, since):
        self.sim = sim
        self.log_size = log_size
        self.since = since  # newest seq read so far
        self.records = []
        self.reads = 0

    async def read(self):
        self.reads += 1
        path = "/log?since=%d" % self.since
        if self.reads % 2:
            messages = json.loads(await http_get(self.sim, path))
        else:
            messages = []
            async with ws_connect_async(self.sim.http_port, path, STEP_TIMEOUT_S) as ws:
                while True:
                    text = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT_S)
                    if text == "end":
                        break
                    messages.append(json.loads(text))
        newest = max([m["seq"] for m in messages if "seq" in m], default=self.since)
        for m in messages:
            if "lost" in m:
                # Explained only if the ring really was overrun since the last read.
                check(newest - self.since > self.log_size,
                      "event log: unexplained gap %r after seq %d (only %d records were made"
                      " since, the ring holds %d)", m, self.since, newest - self.since,
                      self.log_size)
                self.since += m["lost"]
                continue
            check(m["seq"] == self.since + 1, "event log: seq %d follows %d", m["seq"],
                  self.since)
            self.since = m["seq"]
            self.records.append(m)


# --- the clients ------------------------------------------------------------------
class Board:
    """What the soak knows of the board: its IOs, and which are DIP switches."""

    def __init__(self, description):
        self.count = len(description["ios"])
        self.dip_of = {}  # io -> "dipN"
        for n, spec in enumerate(description["ios"]):
            if spec["dip"]:
                self.dip_of[n] = "dip%d" % spec["dip"]
        self.on_level = 0 if description["dip_active_low"] else 1

    def dip_text(self, level):
        return "On" if level == self.on_level else "Off"


class ViewClient:
    """A WebSocket client that keeps a view of the pins from what it is told."""

    def __init__(self, name, sim, board):
        self.name = name
        self.sim = sim
        self.board = board
        self.messages = 0
        self.replies = 0
        self.rate_limited = 0
        self.sessions = 0
        self.tokens = COMMAND_BURST
        self.tokens_at = time.monotonic()

    async def connect(self):
        self.ws = await ws_connect_async(self.sim.http_port, timeout=STEP_TIMEOUT_S,
                                         max_queue=None)
        self.sessions += 1
        self.dips = None  # the last switch report
        self.report_seq = -1
        self.subscribed = set()  # GPIOs with trigger 3
        self.gpio = {}  # io -> level, for subscribed GPIOs whose level is known
        self.pending = []  # commands sent, not yet answered
        self.answered = asyncio.Event()
        self.answered.set()
        self.reader = asyncio.create_task(self._read())

    async def leave(self):
        await self.ws.close()
        await asyncio.wait_for(self.reader, STEP_TIMEOUT_S)
        check(not self.pending, "%s: commands %r got no reply before closing", self.name,
              self.pending)

    async def send(self, command):
        # Stay under the device's rate limit (Device.max_commands_per_s, 50 by
        # default): a token bucket a little slower than the device's.
        now = time.monotonic()
        self.tokens = min(COMMAND_BURST, self.tokens + (now - self.tokens_at) * COMMANDS_PER_S)
        self.tokens_at = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / COMMANDS_PER_S)
            self.tokens = 1
            self.tokens_at = time.monotonic()
        self.tokens -= 1
        self.pending.append(command)
        self.answered.clear()
        await self.ws.send(command)

    async def settle(self):
        """Wait until every command sent so far is answered (and so everything the
        device queued for this client before those replies has been read)."""
        await asyncio.wait_for(self.answered.wait(), STEP_TIMEOUT_S)

    async def _read(self):
        try:
            async for text in self.ws:
                self.messages += 1
                self._take(json.loads(text))
        except SoakFailure as exc:
            self.failure = exc
            FAILURES.append(exc)  # checked at the end, whoever awaits this task or not
            await self.ws.close()
            raise
        except ConnectionClosedError as exc:  # the device closed it (1011: out of memory)
            self.failure = SoakFailure("%s: the device closed the connection: %s"
                                       % (self.name, exc))
            FAILURES.append(self.failure)

    def _take(self, msg):
        name = self.name
        if "dipSwitches" in msg:
            check(msg["seq"] >= self.report_seq, "%s: report seq went back from %d to %d",
                  name, self.report_seq, msg["seq"])
            self.report_seq = msg["seq"]
            self.dips = msg["dipSwitches"]
            return
        if "u" in msg:
            ((h, level),) = msg["u"]["v"].items()
            io = HEX.index(h)
            check(io in self.subscribed, "%s: update for io %s it did not ask for", name, h)
            if io in self.gpio:
                check(self.gpio[io] != int(level), "%s: update %r repeats the level it had:"
                      " an update was lost", name, msg)
                self.gpio[io] = int(level)
            return
        check(self.pending, "%s: a reply with no command: %r", name, msg)
        command = self.pending.pop(0)
        self.replies += 1
        if not self.pending:
            self.answered.set()
        path = command.split("=", 1)[0]
        if "e" in msg:
            err = msg["e"]
            check(err["c"] == path, "%s: %r answered for %r", name, msg, command)
            if err["m"] == "rate limited":
                self.rate_limited += 1
                return
            check(BAD.get(command) == err["m"], "%s: %r answered %r", name, command, msg)
            return
        check(command not in BAD, "%s: %r should fail but got %r", name, command, msg)
        check(list(msg) == [path[0]], "%s: %r answered %r", name, command, msg)
        if path.startswith("tuv") and len(path) == 4:
            io = HEX.index(path[3])
            if msg["t"]["u"]["v"][path[3]] == "3":
                if io not in self.subscribed:
                    self.subscribed.add(io)
                    self.gpio.pop(io, None)  # unknown until the next `v`
            else:
                self.subscribed.discard(io)
                self.gpio.pop(io, None)
        elif path[0] == "v":
            for h, level in msg["v"].items():
                io = HEX.index(h)
                if io in self.subscribed:
                    if io in self.gpio:
                        check(self.gpio[io] == int(level), "%s: %r says io %s is %s, its"
                              " updates said %d", name, command, h, level, self.gpio[io])
                    self.gpio[io] = int(level)

    def check_view(self, real):
        for io, key in self.board.dip_of.items():
            want = self.board.dip_text(real[io])
            check(self.dips is not None and self.dips.get(key) == want,
                  "%s: last report says %s is %s, the pin says %s (report %r)", self.name,
                  key, None if self.dips is None else self.dips.get(key), want, self.dips)
        for io in sorted(self.subscribed):
            check(self.gpio.get(io) == real[io], "%s: its view of io %x is %r, the pin is %d",
                  self.name, io, self.gpio.get(io), real[io])


class SlowClient:
    """A raw WebSocket client with a small receive buffer that reads in bursts, a
    quarter of a second apart: it is served all along and its newest report arrives.
    It answers pings, as clients must, when it reads them."""

    def __init__(self, sim):
        self.sim = sim
        self.buffer = b""
        self.report = None
        self.messages = 0
        self.closed_with = None
        self.pause = SLOW_READ_PAUSE_S

    async def connect(self):
        self.reader, self.writer = await open_websocket_async(
            self.sim.http_port, timeout=STEP_TIMEOUT_S, rcvbuf=SLOW_RCVBUF)
        self.task = asyncio.create_task(self._read_slowly())

    async def _read_slowly(self):
        while True:
            chunk = await self.reader.read(SLOW_READ_BYTES)
            if not chunk:
                return
            self.buffer += chunk
            self._frames()
            await asyncio.sleep(self.pause)

    def _frames(self):
        while frame := split_frame(self.buffer):
            opcode, payload, self.buffer = frame
            self.messages += 1
            if opcode == 8:
                self.closed_with = int.from_bytes(payload[:2], "big")
            elif opcode == 9:  # ping: pong with the same payload, masked (with zeros)
                self.writer.write(client_frame(0xA, payload, mask=bytes(4)))
            elif opcode == 1:
                msg = json.loads(payload)
                if "dipSwitches" in msg:
                    check(self.report is None or msg["seq"] >= self.report["seq"],
                          "slow client: report seq went back")
                    self.report = msg

    async def catch_up(self, seq):
        """Read at full speed until the report numbered `seq` (or a close) arrives."""
        self.pause = 0
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline and self.closed_with is None and \
                (self.report is None or self.report["seq"] < seq) and not self.task.done():
            await asyncio.sleep(0.05)

    def close(self):
        self.task.cancel()
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.writer.close()


# --- the run ----------------------------------------------------------------------
async def warm_up(sim, control, log, board):
    """Make every kind of connection and request once, so that what the device
    allocates for good on first use is in the starting heap figure."""
    client = ViewClient("warm-up", sim, board)
    await client.connect()
    for command in READS + sorted(BAD) + ["tuv8=3", "tuv8=0"]:
        await client.send(command)
    await client.settle()
    await client.leave()
    await log.read()
    await log.read()
    await http_get(sim, "/action.cgi?sc")
    await control.ask("get 0")
    slow = SlowClient(sim)
    await slow.connect()
    await asyncio.sleep(0.1)
    slow.close()


async def no_clients_left(sim):
    """Wait until the device serves no WebSocket client (HTTP is not counted)."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        answer = json.loads(await http_get(sim, "/action.cgi?sc"))
        if answer == {"s": {"c": "0"}}:
            break
        check(time.monotonic() < deadline, "clients still connected: %r", answer)
        await asyncio.sleep(0.05)
    # A client that has left may still be finishing its close handshake.
    await asyncio.sleep(0.3)


async def settle_heap(control):
    """The free heap with nothing but the device's own objects held.

    The collector is conservative: a stale pointer on a stack may keep a dead object
    (a finished connection's, ~3 KiB) alive through one collection and not the next,
    and a closing connection's task may still be winding down right after the last
    client left. The most free heap of collections spread over 3 s is what is really
    held.
    """
    best = 0
    for _ in range(HEAP_READINGS):
        free, _ = await control.heap()
        best = max(best, free)
        await asyncio.sleep(0.25)
    return best


async def run(sim, clients, transitions, seed, slow):
    del FAILURES[:]
    rng = random.Random(seed)
    control = await AsyncControl.open(sim.control_port, STEP_TIMEOUT_S)
    board = Board(json.loads(await http_get(sim, "/board")))
    log_size = board_log_size()
    start_seq = json.loads(await http_get(sim, "/log?since=0") or b"[]")
    start_seq = max([m["seq"] for m in start_seq if "seq" in m], default=0)
    log = LogReader(sim, log_size, start_seq)
    await warm_up(sim, control, log, board)
    await no_clients_left(sim)
    heap_start = await settle_heap(control)
    log.records.clear()
    seq_before = log.since

    views = [ViewClient("client %d" % i, sim, board) for i in range(clients)]
    for view in views:
        await view.connect()
    # Which IOs are inputs (something else may have made a GPIO an output).
    directions = await current_directions(sim)
    inputs = [io for io in range(board.count) if directions[io] == "0"]
    gpios = [io for io in inputs if io not in board.dip_of]
    # Client 0 follows every GPIO input, client 1 half of them, the others none (they
    # subscribe to a few at random as the run goes on).
    for i, view in enumerate(views[:2]):
        for io in gpios[:: i + 1]:
            await view.send("tuv%x=3" % io)
        await view.send("v")
    slow_client = None
    if slow:
        slow_client = SlowClient(sim)
        await slow_client.connect()

    level = {}
    for io in inputs:
        level[io] = int(await control.ask("get %d" % io))
    driven = {io: [] for io in inputs}
    debounce_s = sim.options.get("debounce_ms", 20) / 1000
    last_flip = {io: -1.0 for io in inputs}
    read_every = max(1, log_size // LOG_READS_PER_RING)
    reconnect_at = rng.randrange(transitions // 3, max(transitions // 3 + 1,
                                                        2 * transitions // 3))
    started = time.monotonic()
    for step in range(transitions):
        io = rng.choice(inputs)
        if debounce_s:
            # The same input may flip again only once the last flip has counted.
            wait = last_flip[io] + 2 * debounce_s + 0.01 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        new = 1 - level[io]
        answer = await control.ask("set %d %d" % (io, new))
        check(answer == "ok", "control port: set %d %d answered %r", io, new, answer)
        last_flip[io] = time.monotonic()
        level[io] = new
        driven[io].append(new)
        if rng.random() < COMMAND_CHANCE:
            view = rng.choice(views)
            roll = rng.random()
            if roll < 0.6:
                command = rng.choice(READS)
            elif roll < 0.8 or not gpios:
                command = rng.choice(sorted(BAD))
            else:
                command = "tuv%x=%s" % (rng.choice(gpios), rng.choice("03"))
            await view.send(command)
            if command.startswith("tuv") and "=" in command:
                await view.send("v")  # learn the level of what it now follows
        if step == reconnect_at:
            view = views[rng.randrange(clients)]
            await view.settle()
            await view.leave()
            await view.connect()
            for io_ in gpios[::2]:
                await view.send("tuv%x=3" % io_)
            await view.send("v")
        if (step + 1) % read_every == 0:
            await log.read()
        for view in views:
            if getattr(view, "failure", None):
                raise view.failure
    drive_s = time.monotonic() - started

    # Every transition in the log, then every client told everything.
    want_seq = seq_before + transitions
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while log.since < want_seq:
        check(time.monotonic() < deadline, "event log: seq %d after %d transitions, want %d",
              log.since, transitions, want_seq)
        await log.read()
        if log.since < want_seq:
            await asyncio.sleep(0.02)
    check(log.since == want_seq, "event log: seq %d, want %d (more records than transitions)",
          log.since, want_seq)
    for view in views:
        if any(io not in view.gpio for io in view.subscribed):
            await view.send("v")  # its `v` after subscribing was not answered yet
        await view.send("sv")
    for view in views:
        await view.settle()
    real = [int(await control.ask("get %d" % io)) for io in range(board.count)]
    for io in inputs:
        check(real[io] == level[io], "io %d: the pin reads %d, the soak drove it to %d", io,
              real[io], level[io])
    for view in views:
        if getattr(view, "failure", None):
            raise view.failure
        view.check_view(real)
    logged = {io: [] for io in inputs}
    for record in log.records:
        io = int(record["io"], 16)
        check(io in logged, "event log: a record for io %s, which was not driven: %r",
              record["io"], record)
        logged[io].append(int(record["v"]))
    for io in inputs:
        check(logged[io] == driven[io], "event log: io %x logged %d transitions %s..., driven"
              " %d %s...", io, len(logged[io]), logged[io][:8], len(driven[io]),
              driven[io][:8])
    slow_figures = {}
    if slow_client:
        dip_records = [r for r in log.records if int(r["io"], 16) in board.dip_of]
        last_dip_seq = dip_records[-1]["seq"] if dip_records else 0
        await slow_client.catch_up(last_dip_seq)
        check(slow_client.closed_with is None and not slow_client.task.done(),
              "slow client: the device closed it (close code %r)", slow_client.closed_with)
        report = slow_client.report
        check(report is not None and report["seq"] >= last_dip_seq,
              "slow client: its newest report (seq %s) never came; want seq %d",
              report and report["seq"], last_dip_seq)
        for io, key in board.dip_of.items():
            check(report["dipSwitches"][key] == board.dip_text(real[io]),
                  "slow client: last report says %s is %s, the pin says %s", key,
                  report["dipSwitches"][key], board.dip_text(real[io]))
        slow_figures = {"slow_messages": slow_client.messages}
        slow_client.close()

    for view in views:
        await view.leave()
    await no_clients_left(sim)
    heap_end = await settle_heap(control)
    control.close()
    check(sim.alive(), "the simulator died:\n%s", "".join(sim.output[-40:]))
    output = "".join(sim.output)
    check("Traceback" not in output and "MemoryError" not in output,
          "the simulator printed an error:\n%s", output[-3000:])
    check(heap_start - heap_end <= HEAP_BOUND, "free heap fell from %d to %d bytes (%d lost,"
          " bound %d)", heap_start, heap_end, heap_start - heap_end, HEAP_BOUND)
    figures = {
        "transitions": transitions,
        "clients": clients,
        "seed": seed,
        "seconds": round(drive_s, 2),
        "transitions_per_s": round(transitions / drive_s) if drive_s else None,
        "heap_start": heap_start,
        "heap_end": heap_end,
        "heap_lost": heap_start - heap_end,
        "heap_bound": HEAP_BOUND,
        "messages": sum(v.messages for v in views),
        "commands": sum(v.replies for v in views),
        "rate_limited": sum(v.rate_limited for v in views),
        "log_reads": log.reads,
        "reconnects": sum(v.sessions - 1 for v in views),
    }
    figures.update(slow_figures)
    if FAILURES:  # a client's reader saw something wrong, even one no one awaited
        raise FAILURES[0]
    return figures


async def current_directions(sim):
    answer = json.loads(await http_get(sim, "/action.cgi?d"))
    return {HEX.index(h): v for h, v in answer["d"].items()}


def board_log_size():
    board = json.loads((Path(__file__).resolve().parent.parent / "boards" / "UNIX_SIM" /
                        "board.json").read_text())
    return board.get("log_size", 256)


def soak(sim, clients=4, transitions=2000, seed=0, slow=False):
    """Drive a running Sim; raise AssertionError on any failure; return figures."""
    wanted = clients + (1 if slow else 0)
    max_clients = int(sim.options.get("max_clients", 1))
    if max_clients < wanted:
        raise ValueError("the simulator takes %d clients; the soak needs %d (start it with"
                         " max_clients=%d)" % (max_clients, wanted, wanted))
    if clients < 1 or transitions < 1:
        raise ValueError("need at least 1 client and 1 transition")
    try:
        return asyncio.run(run(sim, clients, transitions, seed, slow))
    except AssertionError:
        raise
    except Exception as exc:  # the device refused, hung up or stopped answering
        tail = "".join(sim.output[-12:])
        raise SoakFailure("%s: %s\nsimulator said:\n%s" % (type(exc).__name__, exc, tail)) \
            from exc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--heapsize", help="MicroPython heap, e.g. 128K")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", action="store_true", help="add a client that reads slowly")
    parser.add_argument("--debounce-ms", type=int, default=0)
    args = parser.parse_args(argv)
    options = {"max_clients": args.clients + (1 if args.slow else 0),
               "debounce_ms": args.debounce_ms}
    if args.heapsize:
        options["heapsize"] = args.heapsize
    with tempfile.TemporaryDirectory() as state:
        sim = Sim(state, **options).start()
        try:
            figures = soak(sim, args.clients, args.transitions, args.seed, args.slow)
        except AssertionError as exc:
            print("soak FAILED: %s" % exc)
            return 1
        finally:
            sim.stop()
    for key, value in figures.items():
        print("%-18s %s" % (key, value))
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
