"""Performance benchmark: every figure next to a floor measured in the same run.

    python tools/bench.py [--quick] [--out docs/PERFORMANCE.md] [--json FILE]

Runs the deployed build (build/UNIX_SIM, .mpy) on the MicroPython unix port, and the
floors (tools/bench_floors/floors.py, compiled to .mpy the same way, with the build's
microdot): a bare asyncio TCP line echo, a bare microdot WebSocket echo and a microdot
GET of a JSON state. It prints one table and, in a full run, writes
docs/PERFORMANCE.md (the table, the machine, and how each figure is measured).

--quick (also when CI=true): few rounds, coarse steps; checks that the harness works
and produces every figure. Its numbers mean nothing and it writes no file unless
--out is given. Budgets are shown in the table; nothing here asserts a timing.
"""

import argparse
import datetime
import json
import os
import platform
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kinds  # noqa: E402
import bench_mqtt  # noqa: E402
import bench_ota  # noqa: E402
import bench_report  # noqa: E402
import bench_targets  # noqa: E402
import build  # noqa: E402
import simclient  # noqa: E402
import soak  # noqa: E402
from sim import micropython_command  # noqa: E402
from simclient import Control, RawWs, free_port  # noqa: E402
from simproc import Sim, stop_process  # noqa: E402

ROOT = build.ROOT
FLOORS_SRC = ROOT / "tools" / "bench_floors" / "floors.py"
# The microdot modules the floors import, whole.
FLOORS_MICRODOT = ("__init__.py", "microdot.py", "websocket.py", "helpers.py")
FLOORS_BUILD = ROOT / "build" / "bench"
REAL_BOARDS = ("ESP32_GENERIC", "RPI_PICO_W")
DIPS = 8
# Most transitions in one throughput step: all of them must fit the event log.
MAX_STEP = 8000

# Every wait is bounded by this (seconds), so a stuck device ends the run, not hangs it.
WAIT_S = 10
# Firmware overrides for the benchmark's simulator: no pings or rate limit in the way
# of timed loops, and an event log long enough to check a whole throughput step.
SIM_OPTIONS = dict(debounce_ms=0, max_clients=4, ping_interval_ms=3600000,
                   idle_timeout_ms=7200000, max_commands_per_s=1000000, log_size=8192)

# The polling comparison's hour of a mostly idle board.
HOUR_S = 3600
IDLE_CHANGES_PER_HOUR = 60  # one switch change a minute
POLL_INTERVAL_S = 1.0
PING_INTERVAL_S = 15  # the firmware's default ping_interval_ms
PING_FRAME = 2  # server ping, empty payload (RFC 6455: 2-byte header)
PONG_FRAME = 6  # client pong, empty payload, masked (2-byte header + 4-byte mask)
# TCP/IP overhead model: 52 bytes a packet (IPv4 20 + TCP 20 + timestamps option 12).
PACKET_HEADER = 52
PACKETS_PER_PUSH = 2  # the frame, and the peer's ACK
PACKETS_PER_POLL = 10  # SYN, SYN-ACK, ACK, request, ACK, response, FIN, ACK, FIN, ACK


class Plan:
    """How much of everything a run does."""

    def __init__(self, quick):
        self.quick = quick
        self.round_trips = 40 if quick else 1000
        self.pushes = 20 if quick else 400
        self.rates = (250, 500) if quick else (500, 1000, 2000, 4000, 8000)
        self.step_seconds = 0.2 if quick else 1.0
        self.flat_out = 200 if quick else 4000
        self.alloc_updates = 20 if quick else 200
        self.soak_transitions = 100 if quick else 2000
        self.heap_low_kib, self.heap_high_kib = (64, 320)
        self.heap_step_kib = 64 if quick else 4


# --- clocks and statistics ------------------------------------------------------------
def now_us():
    # CLOCK_MONOTONIC in microseconds: on Linux the same clock as the unix port's
    # time.ticks_us(), so device edge times (control port `tset`) compare directly.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def percentile(values, p):
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values_us):
    """p50, p99, mean and max of microsecond samples, in milliseconds."""
    return {"p50": statistics.median(values_us) / 1000, "p99": percentile(values_us, 99) / 1000,
            "mean": statistics.fmean(values_us) / 1000, "max": max(values_us) / 1000,
            "n": len(values_us)}


def wait_for_reports(clients, seq, control=None, deadline_s=WAIT_S):
    """Read every client until each has a switch report with seq >= `seq` (and the
    control connection, when given, its one answer line).

    Returns (times, answer): each client's receive time (µs) and the control answer
    with its receive time. Each socket is read as soon as it is readable.
    """
    times = {}
    answer = None
    pending = [c for c in clients if c.seq() < seq]
    for c in clients:
        if c.seq() >= seq:
            times[c] = now_us()
    waiting_control = control is not None
    deadline = time.monotonic() + deadline_s
    while pending or waiting_control:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("reports with seq %d did not arrive (have %r)" % (
                seq, [c.seq() for c in clients]))
        socks = pending + ([control] if waiting_control else [])
        readable, _, _ = select.select(socks, [], [], left)
        for s in readable:
            if s is control:
                line = control.read_line()
                if line is not None:
                    answer = (line, now_us())
                    waiting_control = False
                continue
            s.feed()
            t = now_us()
            if s.seq() >= seq:
                times[s] = t
                pending.remove(s)
    return [times[c] for c in clients], answer


# --- the floors -------------------------------------------------------------------------
class Floors:
    """tools/bench_floors/floors.py compiled to .mpy and running on the unix port."""

    def __init__(self):
        self.tcp_port, self.ws_port, self.http_port = free_port(), free_port(), free_port()
        self.proc = None

    def start(self):
        FLOORS_BUILD.mkdir(parents=True, exist_ok=True)
        mpy = FLOORS_BUILD / "floors.mpy"
        build.compile_mpy(FLOORS_SRC, mpy, None, "floors.py")
        # microdot as the PyPI package ships it, compiled the same way (the firmware's
        # build leaves out what the firmware never uses, websocket.py included).
        for name in FLOORS_MICRODOT:
            dst = FLOORS_BUILD / "lib" / "microdot" / (name[:-3] + ".mpy")
            if not build.is_fresh(build.microdot_dir() / name, dst):
                build.compile_mpy(build.microdot_dir() / name, dst, None, "microdot/" + name)
        env = dict(os.environ)
        env["MICROPYPATH"] = "%s:.frozen:%s" % (FLOORS_BUILD, FLOORS_BUILD / "lib")
        self.proc = subprocess.Popen(
            [micropython_command(), "-m", "floors", str(self.tcp_port), str(self.ws_port),
             str(self.http_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True)
        ready = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(WAIT_S)
        if not ready or not ready[0].startswith("floors ready"):
            self.stop()
            raise RuntimeError("floors did not start: %r" % ready)
        return self

    def stop(self):
        stop_process(self.proc)


def tcp_echo_round_trips(port, rounds):
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(rounds):
            t0 = now_us()
            s.sendall(b"v0\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    raise ConnectionError("echo closed")
                data += chunk
            times.append(now_us() - t0)
    return times


def ws_round_trip(ws, message="v0"):
    """Microseconds from sending `message` on ws to reading the next text message."""
    t0 = now_us()
    ws.send_text(message)
    ws.recv_text()
    return now_us() - t0


def timed_get(port, path):
    """One GET on a new connection, as a polling page does it.

    Returns (microseconds from connect to the whole answer, bytes sent, bytes received,
    body).
    """
    request = simclient.get_request(port, path, {"Accept": "application/json"})
    t0 = now_us()
    answer = simclient.exchange(port, request, WAIT_S)
    elapsed = now_us() - t0
    return elapsed, len(request), len(answer), simclient.split_answer(answer)[2]


def measure_floors(floors, plan):
    """The floors on their own: TCP echo, and GET /state (the polling comparison).

    The WebSocket echo is timed interleaved with the firmware's figures (below).
    """
    tcp = tcp_echo_round_trips(floors.tcp_port, plan.round_trips)
    gets = [timed_get(floors.http_port, "/state") for _ in range(plan.round_trips // 4)]
    _, sent, received, body = gets[-1]
    return {"tcp_echo": summary_ms(tcp),
            "http_get": dict(summary_ms([g[0] for g in gets]), request_bytes=sent,
                             response_bytes=received, body_bytes=len(body))}


# --- the firmware's figures -------------------------------------------------------------
class Bench:
    """One simulator (SIM_OPTIONS) with a kept-open control connection."""

    def __init__(self, state_dir):
        self.sim = Sim(state_dir, **SIM_OPTIONS).start()
        self.ctl = Control(self.sim.control_port)
        self.levels = [1] * DIPS  # pulled up: every switch Off
        self.clients = []

    def connect(self, n):
        """Have exactly n clients connected, each holding its report on connect."""
        while len(self.clients) > n:
            self.clients.pop().close(1000)
        while len(self.clients) < n:
            ws = RawWs(self.sim.http_port)
            ws.recv_text()  # the report on connect
            self.clients.append(ws)
        return self.clients

    def seq(self):
        return max(c.seq() for c in self.clients)

    def flip_line(self, io, timed=False):
        self.levels[io] ^= 1
        return "%s %d %d\n" % ("tset" if timed else "set", io, self.levels[io])

    def close(self):
        for c in self.clients:
            c.close(1000)
        self.ctl.close()
        self.sim.stop()


def command_round_trips(bench, echo, plan):
    """Figure 1: `v0` over the WebSocket, reply timed on the client; each round also
    times the floor's WebSocket echo, so both see the same moments of the machine."""
    ws = RawWs(bench.sim.http_port)
    try:
        ws.recv_text()  # the report on connect
        times, floor = [], []
        for _ in range(plan.round_trips):
            floor.append(ws_round_trip(echo))
            times.append(ws_round_trip(ws))
    finally:
        ws.close(1000)
    return dict(summary_ms(times), echo=summary_ms(floor))


def push_latencies(bench, clients, rounds, echo):
    """Figure 2: flips of DIP 1 with `tset`; per flip, from the device's edge (and from
    the host sending `tset`) to the last of `clients` clients reading its report."""
    ws = bench.connect(clients)
    from_edge, from_sent, from_ok = [], [], []
    bracketed = 0
    floor = []
    for _ in range(rounds):
        floor.append(ws_round_trip(echo))  # the floor, interleaved
        seq = bench.seq() + 1
        line = bench.flip_line(0, timed=True)
        sent = now_us()
        bench.ctl.send(line)
        times, (answer, acked) = wait_for_reports(ws, seq, bench.ctl)
        word, edge = answer.split()
        if word != "ok":
            raise RuntimeError("control port answered %r" % answer)
        edge = int(edge)
        if sent <= edge <= acked:
            bracketed += 1
        last = max(times)
        from_edge.append(last - edge)
        from_sent.append(last - sent)
        from_ok.append(last - acked)
    return {"from_edge": summary_ms(from_edge), "from_sent": summary_ms(from_sent),
            "from_ok": summary_ms(from_ok), "clock_bracketed": bracketed, "rounds": rounds,
            "echo": summary_ms(floor)}


class Readers(threading.Thread):
    """Reads every client continuously (the throughput figure)."""

    def __init__(self, clients):
        super().__init__(daemon=True)
        self.clients = clients
        self.stop = threading.Event()
        self.error = None
        self.changed = threading.Condition()

    def run(self):
        try:
            while not self.stop.is_set():
                readable, _, _ = select.select(self.clients, [], [], 0.05)
                for c in readable:
                    c.feed()
                if readable:
                    with self.changed:
                        self.changed.notify_all()
        except Exception as exc:  # reported by the caller
            self.error = exc

    def wait_seq(self, seq, deadline):
        with self.changed:
            while min(c.seq() for c in self.clients) < seq:
                if self.error or time.monotonic() > deadline:
                    return False
                self.changed.wait(0.05)
        return True


def get_log(port, since):
    _, _, body = simclient.http_get(port, "/log?since=%d" % since, timeout=WAIT_S)
    return json.loads(body)


def throughput_step(bench, readers, count, rate):
    """Drive `count` transitions at `rate` per second (None: as fast as the control
    port takes them) through pipelined `set` lines; then check the event log.

    Returns a dict: target, achieved rate, lost records, clients up to date.
    """
    seq0 = bench.seq()
    driven = []
    lines = []
    for n in range(count):
        io = n % DIPS
        lines.append(bench.flip_line(io).encode())
        driven.append(("%x" % io, str(bench.levels[io])))
    answers = [0]
    answer_error = []

    def read_answers():
        try:
            while answers[0] < count:
                line = bench.ctl.read_line()
                if line is None:
                    continue
                if line != "ok":
                    raise RuntimeError("control port answered %r" % line)
                answers[0] += 1
        except Exception as exc:  # reported in the step's result
            answer_error.append(exc)

    answer_thread = threading.Thread(target=read_answers, daemon=True)
    answer_thread.start()
    start = time.monotonic()
    sent = 0
    while sent < count:
        due = count if rate is None else min(count, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            bench.ctl.send(b"".join(lines[sent:due]))
            sent = due
        else:
            time.sleep(0.0005)
    deadline = time.monotonic() + WAIT_S + count / (rate or 1000)
    up_to_date = readers.wait_seq(seq0 + count, deadline)
    done = time.monotonic()
    answer_thread.join(max(0.0, deadline - time.monotonic()))
    records = get_log(bench.sim.http_port, seq0)
    lost = sum(r.get("lost", 0) for r in records)
    got = [(r["io"], r["v"]) for r in records if "seq" in r]
    seqs = [r["seq"] for r in records if "seq" in r]
    contiguous = seqs == list(range(seq0 + 1, seq0 + 1 + len(seqs)))
    achieved = count / (done - start)
    ok = (up_to_date and not answer_error and answers[0] == count and lost == 0
          and contiguous and got == driven)
    return {"target": rate, "count": count, "achieved": round(achieved),
            "records": len(got), "lost": lost, "contiguous": contiguous,
            "in_order": got == driven, "clients_up_to_date": up_to_date,
            "answers": answers[0], "error": str(answer_error[0]) if answer_error else "",
            "ok": ok, "kept_pace": rate is None or achieved >= 0.9 * rate}


def throughput(bench, plan):
    """Figure 3: the fastest rate sustained with 4 clients and no transition lost."""
    clients = bench.connect(4)
    readers = Readers(clients)
    readers.start()
    steps = []
    try:
        for rate in plan.rates:
            count = max(50, int(rate * plan.step_seconds))
            step = throughput_step(bench, readers, min(count, MAX_STEP), rate)
            steps.append(step)
            if not (step["ok"] and step["kept_pace"]):
                break
        steps.append(throughput_step(bench, readers, plan.flat_out, None))
    finally:
        readers.stop.set()
        readers.join(2)
    if readers.error:
        raise readers.error
    # A step's achieved rate counts when nothing was lost, even if it fell short of
    # its target: the device did carry that many transitions a second.
    sustained = max([s["achieved"] if s["target"] is None else min(s["achieved"], s["target"])
                     for s in steps if s["ok"]] or [0])
    return {"sustained": sustained, "steps": steps}


def alloc_per_update(bench, clients, updates):
    """Figure 5: heap bytes allocated per switch change with `clients` clients, gc off.

    Each flip is measured on its own (`alloc` before it, `alloc` once every client has
    the report), and so is a `set` line that changes nothing (the level the pin
    already has): the median of the first less the median of the second is the
    firmware's cost, without the control port's own parsing, and without the odd
    asyncio bookkeeping that lands on one measurement or another.
    """
    ws = bench.connect(clients)
    io = 1

    def alloc():
        return int(bench.ctl.ask("alloc"))

    def flip():
        seq = bench.seq() + 1
        assert bench.ctl.ask(bench.flip_line(io).strip()) == "ok"
        wait_for_reports(ws, seq)

    for _ in range(16):  # warm up: first-time allocations are not per update
        flip()
    bench.ctl.ask("heap")
    assert bench.ctl.ask("gc off") == "ok"
    flips, idles = [], []
    try:
        for _ in range(updates):
            before = alloc()
            assert bench.ctl.ask("set %d %d" % (io, bench.levels[io])) == "ok"
            idles.append(alloc() - before)
            before = alloc()
            flip()
            flips.append(alloc() - before)
    finally:
        bench.ctl.ask("gc on")
    idle = statistics.median(idles)
    return {"per_update": statistics.median(flips) - idle, "control_line": idle,
            "updates": updates, "mean_per_update": statistics.mean(flips) - statistics.mean(idles)}


def frame_sizes(bench):
    """Sizes on the wire for the polling comparison: handshake and report frame."""
    ws = bench.connect(1)[0]
    ws.record_sizes = True
    seq = bench.seq() + 1
    assert bench.ctl.ask(bench.flip_line(2).strip()) == "ok"
    wait_for_reports([ws], seq)
    ws.record_sizes = False
    return {"handshake": ws.handshake_out + ws.handshake_in, "report_frame": ws.frame_sizes[-1]}


def firmware_figures(plan, log):
    """Figures 1-3 and 5 (heap per update), with the floors running beside the
    simulator: the WebSocket echo is timed round by round with figures 1 and 2."""
    with tempfile.TemporaryDirectory() as state:
        floors = Floors().start()
        bench = echo = None
        try:
            log("floors: TCP echo, GET /state ...")
            figures = {"floors": measure_floors(floors, plan)}
            bench = Bench(state)
            echo = RawWs(floors.ws_port)
            log("command round trip, push latency (each beside the WebSocket echo) ...")
            figures["command"] = command_round_trips(bench, echo, plan)
            figures["push_1"] = push_latencies(bench, 1, plan.pushes, echo)
            figures["push_4"] = push_latencies(bench, 4, plan.pushes, echo)
            echo.close(1000)
            echo = None
            figures["sizes"] = frame_sizes(bench)
            log("heap allocated per update ...")
            figures["alloc_1"] = alloc_per_update(bench, 1, plan.alloc_updates)
            figures["alloc_4"] = alloc_per_update(bench, 4, plan.alloc_updates)
            log("throughput ...")
            figures["throughput"] = throughput(bench, plan)
            output = "".join(bench.sim.output)
            alive = bench.sim.alive()
        finally:
            if echo:
                echo.close(1000)
            if bench:
                bench.close()
            floors.stop()
    floor_output = floors.proc.stdout.read() if floors.proc.stdout else ""
    if "Traceback" in floor_output:
        raise RuntimeError("a floor failed:\n" + floor_output[-2000:])
    if not alive or "Traceback" in output:
        raise RuntimeError("the simulator failed during the benchmark:\n" + output[-2000:])
    return figures


# --- smallest heap ----------------------------------------------------------------------
def soak_passes(heap_kib, transitions):
    """(passed, why) for the soak scenario in a heap of heap_kib KiB."""
    with tempfile.TemporaryDirectory() as state:
        sim = Sim(state, heapsize="%dK" % heap_kib, max_clients=4, debounce_ms=0)
        try:
            sim.start()
        except AssertionError as exc:
            return False, "did not start: " + str(exc)[-200:]
        try:
            return sim.verdict(lambda sim: soak.soak(sim, clients=4, transitions=transitions,
                                                     seed=0), tail=200)
        finally:
            sim.stop()


def smallest_heap(plan, passes=None):
    """Bisect -X heapsize (KiB, in plan.heap_step_kib steps) for the soak scenario
    (`passes(kib, transitions)`: another scenario's verdict, e.g. with MQTT on)."""
    low, high, step = plan.heap_low_kib, plan.heap_high_kib, plan.heap_step_kib
    tried = []
    passes = passes or soak_passes

    def attempt(kib):
        ok, why = passes(kib, plan.soak_transitions)
        tried.append({"kib": kib, "ok": ok, "why": why})
        return ok

    if not attempt(high):
        return {"kib": None, "tried": tried, "note": "fails even at %d KiB" % high}
    if attempt(low):
        return {"kib": low, "tried": tried, "note": "passes at the lowest heap tried"}
    while high - low > step:
        mid = (low + high) // 2 // step * step
        if mid <= low:
            mid = low + step
        if attempt(mid):
            high = mid
        else:
            low = mid
    return {"kib": high, "tried": tried, "note": ""}


# --- size -------------------------------------------------------------------------------
def sizes():
    boards = {}
    for board in REAL_BOARDS + ("UNIX_SIM",):
        _, total, files = build.build(board)
        boards[board] = {"bytes": total, "files": files}
    page_gz = (ROOT / "build" / "UNIX_SIM" / "www" / "index.html.gz").stat().st_size
    return {"boards": boards, "page_gz": page_gz, "page": build.PAGE.stat().st_size}


# --- polling comparison -----------------------------------------------------------------
def polling_comparison(floors, fw):
    """Figure 4: an hour of watching a mostly idle board, push versus 1 s polling."""
    sizes = fw["sizes"]
    pings = HOUR_S // PING_INTERVAL_S
    push_payload = (sizes["handshake"] + sizes["report_frame"] * (1 + IDLE_CHANGES_PER_HOUR)
                    + pings * (PING_FRAME + PONG_FRAME))
    push_packets = 10 + PACKETS_PER_PUSH * (1 + IDLE_CHANGES_PER_HOUR + 2 * pings)
    get = floors["http_get"]
    polls = int(HOUR_S / POLL_INTERVAL_S)
    poll_payload = polls * (get["request_bytes"] + get["response_bytes"])
    poll_packets = polls * PACKETS_PER_POLL
    return {
        "push_bytes": push_payload, "push_wire_bytes": push_payload + push_packets * PACKET_HEADER,
        "poll_bytes": poll_payload, "poll_wire_bytes": poll_payload + poll_packets * PACKET_HEADER,
        "push_staleness_ms": fw["push_1"]["from_edge"]["mean"],
        "poll_staleness_ms": POLL_INTERVAL_S * 1000 / 2 + get["mean"],
        "report_frame": sizes["report_frame"], "handshake": sizes["handshake"],
        "poll_request": get["request_bytes"], "poll_response": get["response_bytes"],
    }


MICROPYTHON_VERSION = (
    "import sys; v = sys.implementation.version; b = sys.version.split('; ')[-1]\n"
    "print('%d.%d.%d%s (%s, unix port, %s build)' % (v[0], v[1], v[2],"
    " '-' + v[3] if len(v) > 3 and v[3] else '', b, sys.implementation._build))")


def pin_to_one_cpu():
    """Run this process, and the servers it starts (they inherit it), on one CPU.

    Unpinned, the scheduler puts the client and the servers on the same CPU in one
    run and on different CPUs in the next, and a round trip across CPUs takes about
    twice as long: whichever server happened to share the client's CPU looked twice
    as fast. On one CPU every figure and its floor pay the same, as a board's single
    application core does. Returns the CPU, or "none" where affinity is not offered.
    """
    if not hasattr(os, "sched_setaffinity"):
        return "none"
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def machine():
    cpu = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                   timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mpy = subprocess.run([micropython_command(), "-c", MICROPYTHON_VERSION], capture_output=True,
                         text=True, timeout=10).stdout.strip()
    virtual = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                   timeout=10).stdout.splitlines():
            if line.startswith("Hypervisor vendor:"):
                virtual = ", virtual machine (%s)" % line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu + virtual, "cores": os.cpu_count(), "kernel": platform.platform(),
            "python": platform.python_version(), "micropython": mpy,
            "load": "%.2f %.2f %.2f" % os.getloadavg(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def method():
    """The numbers docs/PERFORMANCE.md's methods quote, by their names in
    bench_report.PERFORMANCE_TEMPLATE."""
    return dict(changes=IDLE_CHANGES_PER_HOUR, ping=PING_FRAME, pong=PONG_FRAME,
                ping_s=PING_INTERVAL_S, polls=int(HOUR_S / POLL_INTERVAL_S),
                header=PACKET_HEADER, push_packets=PACKETS_PER_PUSH,
                poll_packets=PACKETS_PER_POLL, soak=Plan(False).soak_transitions,
                **bench_ota.method(), **bench_kinds.method())


def run(plan, log=print):
    results = {"quick": plan.quick, "machine": dict(machine(), pinned_cpu=pin_to_one_cpu())}
    results["firmware"] = firmware_figures(plan, log)
    results["floors"] = results["firmware"].pop("floors")
    results["mqtt"] = bench_mqtt.run(plan, log)
    results["ota"] = bench_ota.run(bench_ota.Plan(plan.quick), log)
    results["kinds"] = bench_kinds.run(bench_kinds.Plan(plan.quick), log)
    log("smallest heap for 4 clients (bisecting -X heapsize) ...")
    results["heap"] = smallest_heap(plan)
    # Memory on the 32-bit and frozen targets too, when MicroPython's source is there.
    results["targets"] = bench_targets.run(bench_targets.Plan(plan.quick), log,
                                           heaps={"mpy": results["heap"]})
    results["size"] = sizes()
    results["polling"] = polling_comparison(results["floors"], results["firmware"])
    results["rows"] = bench_report.make_rows(results)
    results["budgets"] = bench_report.budgets(results["rows"])
    results["mqtt_rows"] = bench_mqtt.rows(results["mqtt"], results["targets"])
    results["mqtt_budgets"] = bench_mqtt.budgets(results["mqtt_rows"])
    results["ota_rows"] = bench_ota.rows(results["ota"])
    results["ota_budgets"] = bench_ota.budgets(results["ota_rows"])
    results["kinds_rows"] = bench_kinds.rows(results["kinds"])
    results["kinds_budgets"] = bench_kinds.budgets(results["kinds_rows"])
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="check the harness only (default when CI=true)")
    parser.add_argument("--out", help="write the Markdown report here (a full run writes "
                        "docs/PERFORMANCE.md unless given)")
    parser.add_argument("--json", help="write every result as JSON here")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("CI", "").lower() == "true"
    started = time.monotonic()
    results = run(Plan(quick), log=lambda text: print(text, file=sys.stderr, flush=True))
    results["seconds"] = round(time.monotonic() - started, 1)
    print(bench_report.render(results))
    out = args.out or (None if quick else bench_report.PERFORMANCE_MD)
    if out:
        if not bench_report.write_report(results, method(), out):
            print("%s: no %r marker, no History section kept" % (
                os.path.relpath(bench_report.PERFORMANCE_MD), bench_report.HISTORY_START))
        print("\nwrote %s" % os.path.relpath(out))
    if not quick and not args.out:
        if bench_report.update_readme(results):
            print("updated the figures in README.md")
        else:
            print("README.md: no %r marker, figures not updated" % bench_report.README_START)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
