"""The update figures of `make bench` (issue 17, docs/OTA.md), each beside its budget:

    update    the app's whole bundle (tools/bundle.py: the UNIX_SIM build but the
              loader's files) sent to POST /ota of a supervised simulator
              (tools/sim.py: it reboots from its flash), timed from the upload's
              first byte to the new version confirmed (the log's `ota: version V in
              slot S confirmed`, then `sv` answering V and `so` off trial), and
              without the confirmation's wait: to the new version serving (its
              "serving on"). Beside it, `make deploy` of the same build to an empty
              virtual board (tools/virtualboard.py: the unix port on a socat pty,
              the real mpremote), timed as the user runs it.
    heap      during an upload paced as a slow link sends it (PACE_PIECE bytes every
              PACE_S), the control port's `heap` (gc.collect(), then gc.mem_alloc())
              read over and over on a connection of its own; the peak less the peak
              of the same readings with no upload (the same 2 clients connected and
              the same flips). 64-bit unix port, the build's .mpy files.
    reports   2 WebSocket clients (with a session) read while a switch flips every
              FLIP_S through the control port, from before the upload's first byte
              to its answer: each client must get one report per flip, seq by seq.

tools/bench.py runs it; without socat the deploy figure is skipped, saying why.
"""

import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import build  # noqa: E402
import bundle  # noqa: E402
import ota as ota_tool  # noqa: E402
import virtualboard  # noqa: E402
from simclient import Control, RawWs  # noqa: E402
from simproc import Sim  # noqa: E402

ROOT = build.ROOT
BOARD = "UNIX_SIM"
PASSWORD = "bench ota password"
# ota_confirm_s for the bench's simulator (30 on a board): the wait is the same
# sleep whatever its length, and the figures give the time without it too.
CONFIRM_S = 1
WAIT_S = 30  # a reboot on a busy machine, at most; every wait is bounded
# Issue 17's budgets.
BUDGET_BUNDLE_KIB = 60
BUDGET_HEAP_BYTES = 4096  # heap used beyond idle while an upload runs (64-bit)
# The heap upload's pace: a piece of tools/ota.py's (PIECE_BYTES, 4 KiB) every PACE_S
# (about 100 KiB/s, a slow Wi-Fi link), so that the readings fall all along the
# upload, not on its last milliseconds.
PACE_PIECE = ota_tool.PIECE_BYTES
PACE_S = 0.04
FLIP_S = 0.01  # a switch flip every FLIP_S while an upload runs
SESSION_COOKIE = ota_tool.SESSION_COOKIE
RESTART_DELAY_MS = 1000  # firmware/pinsock/transport/ota.py restart_delay_ms


class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.updates = 1 if quick else 5  # timed updates
        self.deploys = 1 if quick else 3
        self.heap_uploads = 1 if quick else 3
        self.idle_s = 0.5 if quick else 2.0


def method():
    """The numbers docs/PERFORMANCE.md's method 9 quotes (bench_report's template)."""
    full = Plan(False)
    return dict(ota_confirm_s=CONFIRM_S, restart_ms=RESTART_DELAY_MS,
                ota_updates=full.updates, ota_deploys=full.deploys,
                pace_kib=PACE_PIECE // 1024, pace_ms=round(PACE_S * 1000),
                idle_s="%g" % full.idle_s, flip_ms=round(FLIP_S * 1000))


def version_of(n):
    return "9.%d.0" % n


class Bundles:
    """The app's bundle for each version, made once (a version is pinsock/__init__
    compiled to carry it: one file differs)."""

    def __init__(self):
        self.build_dir, _, _ = build.build(BOARD)
        self.board = json.loads((self.build_dir / "board.json").read_text())
        self.mpy = bundle.mpy_of(self.board, self.build_dir)
        self.made = {}

    def of(self, version):
        if version not in self.made:
            files = bundle.with_version(self.build_dir, self.board, version)
            self.made[version] = bundle.pack(files, BOARD, version, self.mpy, PASSWORD)
        return self.made[version]

    def files(self):
        """(count, bytes) of the app in a bundle."""
        files = bundle.app_files(self.build_dir)
        return len(files), sum(len(d) for _, d in files)


class Device:
    """A supervised simulator with a password, and an ota.py Device logged in to it."""

    def __init__(self, state):
        Path(state, "config.json").write_text(json.dumps({"password": PASSWORD}))
        self.sim = Sim(state, supervised=True, ota_confirm_s=CONFIRM_S,
                       **bench.SIM_OPTIONS).start()
        self.http = ota_tool.Device(self.sim.base_url, PASSWORD, timeout=WAIT_S)
        self.http.log_in()
        self.n = 0

    def next_version(self):
        self.n += 1
        return version_of(self.n)

    def cookie_line(self):
        return "Cookie: %s=%s\r\n" % (SESSION_COOKIE, self.http.cookie)

    def wait_line(self, text, after, what):
        """Host time (µs) the firmware printed a line starting with `text` (from output
        index `after` on)."""
        index = self.sim.wait_for(text, after, WAIT_S)
        now = bench.now_us()
        if index is None:
            raise RuntimeError("%s: no %r within %d s:\n%s" % (
                what, text, WAIT_S, "".join(self.sim.output[after:])[-2000:]))
        return now, index

    def check_running(self, version):
        """`sv` answers version and `so` says it is off trial (confirmed)."""
        self.http.cookie = None
        self.http.log_in()  # the sessions went with the restart
        got = self.http.version()
        so = self.http.ask("so")["s"]["o"]
        if got != version or so["t"] != "0":
            raise RuntimeError("after the update: running %s, so %r" % (got, so))
        return so

    def update(self, data, version, progress=None):
        """Upload; wait for the restart and the confirmation. Returns the host's µs
        marks: start, answer, serving, confirmed."""
        mark = len(self.sim.output)
        t0 = bench.now_us()
        answer = self.http.upload(data, progress)
        t_answer = bench.now_us()
        if answer.get("version") != version:
            raise RuntimeError("upload answered %r" % answer)
        serving = "serving on http://127.0.0.1:%d" % self.sim.http_port
        t_serving, at = self.wait_line(serving, mark, "restart")
        t_confirmed, _ = self.wait_line("ota: version %s in slot %s confirmed" % (
            version, answer["slot"]), at, "confirmation")
        self.check_running(version)
        return {"start": t0, "answer": t_answer, "serving": t_serving,
                "confirmed": t_confirmed, "slot": answer["slot"]}

    def close(self):
        self.sim.stop()


def timed_updates(dev, bundles, plan):
    """Budget 1: upload start to confirmed, and to serving, for plan.updates updates."""
    rounds = []
    for _ in range(plan.updates):
        version = dev.next_version()
        data = bundles.of(version)
        marks = dev.update(data, version)
        rounds.append({k: (marks[k] - marks["start"]) / 1e6
                       for k in ("answer", "serving", "confirmed")})
    return {"rounds": rounds, "bundle_bytes": len(bundles.of(version_of(1))),
            "confirm_s": CONFIRM_S,
            **{k: statistics.median(r[k] for r in rounds)
               for k in ("answer", "serving", "confirmed")}}


def deploy_times(plan):
    """`make deploy BOARD=UNIX_SIM PORT=<pty>` to an empty virtual board, timed."""
    why = virtualboard.missing()
    if why:
        return {"skipped": why}
    times, said = [], ""
    for _ in range(plan.deploys):
        with tempfile.TemporaryDirectory() as folder:
            board = virtualboard.VirtualBoard(folder).start()
            try:
                t0 = time.monotonic()
                proc = subprocess.run(["make", "--no-print-directory", "deploy",
                                       "BOARD=" + BOARD, "PORT=" + board.port], cwd=ROOT,
                                      capture_output=True, text=True, timeout=300)
                took = time.monotonic() - t0
                if proc.returncode != 0:
                    raise RuntimeError("make deploy failed:\n" + proc.stdout[-2000:]
                                       + proc.stderr[-2000:])
                copied = {p.relative_to(board.flash).as_posix(): p.read_bytes()
                          for p in board.flash.rglob("*") if p.is_file()}
            finally:
                board.stop()
        built = {p.relative_to(bench_build()).as_posix(): p.read_bytes()
                 for p in bench_build().rglob("*") if p.is_file()}
        if copied != built:
            raise RuntimeError("make deploy did not copy the build whole")
        said = [line for line in proc.stdout.splitlines() if line.startswith("deployed ")]
        times.append(took)
    return {"seconds": statistics.median(times), "rounds": times, "files": len(built),
            "bytes": sum(len(d) for d in built.values()), "said": said[-1] if said else ""}


def bench_build():
    return ROOT / "build" / BOARD


# --- heap and reports during an upload ---------------------------------------------------
class Sampler(threading.Thread):
    """The control port's `heap` over and over, on a connection of its own."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.ctl = Control(port)
        self.readings = []
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                free, used = self.ctl.heap()
                self.readings.append(used)
        except Exception as exc:  # reported by the caller
            self.error = exc
        finally:
            self.ctl.close()


class Flipper(threading.Thread):
    """Flips DIP 1..8 in turn every FLIP_S through the control port; counts the flips."""

    def __init__(self, port, levels):
        super().__init__(daemon=True)
        self.ctl = Control(port)
        self.levels = levels
        self.flips = 0
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            io = 0
            while not self.stop.is_set():
                self.levels[io] ^= 1
                answer = self.ctl.ask("set %d %d" % (io, self.levels[io]))
                if answer != "ok":
                    raise RuntimeError("control port answered %r" % answer)
                self.flips += 1
                io = (io + 1) % bench.DIPS
                time.sleep(FLIP_S)
        except Exception as exc:  # reported by the caller
            self.error = exc
        finally:
            self.ctl.close()


class Watchers(threading.Thread):
    """WebSocket clients read continuously: every report's seq, each client's own."""

    def __init__(self, clients):
        super().__init__(daemon=True)
        self.clients = clients
        self.seqs = {c: [] for c in clients}
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                readable, _, _ = select.select(self.clients, [], [], 0.05)
                for c in readable:
                    for text in c.feed():
                        if text.startswith('{"dipSwitches"'):
                            self.seqs[c].append(json.loads(text)["seq"])
        except Exception as exc:  # reported by the caller
            self.error = exc

    def newest(self):
        return min(c.seq() for c in self.clients)


def watched(dev, clients, levels, during, after_s=0.0):
    """Flip switches and read the heap while `during()` runs (then `after_s` more);
    returns (heap readings, flips, each client's seqs of the window, result)."""
    seq0 = min(c.seq() for c in clients)  # each client has every report up to it
    watchers = Watchers(clients)
    watchers.start()
    flipper = Flipper(dev.sim.control_port, levels)
    sampler = Sampler(dev.sim.control_port)
    flipper.start()
    sampler.start()
    try:
        result = during()
        time.sleep(after_s)
    finally:
        flipper.stop.set()
        flipper.join(WAIT_S)
        sampler.stop.set()
        sampler.join(WAIT_S)
    last = seq0 + flipper.flips
    deadline = time.monotonic() + WAIT_S
    while watchers.newest() < last and time.monotonic() < deadline and not watchers.error:
        time.sleep(0.01)
    watchers.stop.set()
    watchers.join(WAIT_S)
    for thread in (watchers, flipper, sampler):
        if thread.error:
            raise thread.error
    seqs = [[s for s in watchers.seqs[c] if s > seq0] for c in clients]
    return sampler.readings, flipper.flips, seq0, seqs, result


def report_count(flips, seq0, seqs):
    """Per client: reports got, and whether they are seq0+1 .. seq0+flips, each once."""
    wanted = list(range(seq0 + 1, seq0 + flips + 1))
    return [{"reports": len(set(wanted) & set(s)), "continuous": s == wanted,
             "lost": len(set(wanted) - set(s))} for s in seqs]


def upload_heap(dev, bundles, plan):
    """Budget 2: heap beyond idle during paced uploads, reports to 2 clients."""
    levels = [1] * bench.DIPS
    rounds = []
    for _ in range(plan.heap_uploads):
        clients = [RawWs(dev.sim.http_port, extra=dev.cookie_line()) for _ in range(2)]
        try:
            for c in clients:
                c.recv_text()  # the report on connect
            report = clients[0].last_report["dipSwitches"]
            levels[:] = [0 if report["dip%d" % (i + 1)] == "On" else 1
                         for i in range(bench.DIPS)]
            # Idle: the same flips and readings, no upload; the event log's ring and
            # the outboxes are full grown after a first pass.
            watched(dev, clients, levels, lambda: time.sleep(plan.idle_s / 2))
            idle, idle_flips, idle_seq0, idle_seqs, _ = watched(
                dev, clients, levels, lambda: time.sleep(plan.idle_s))
            version = dev.next_version()
            data = bundles.of(version)
            mark = len(dev.sim.output)
            readings, flips, seq0, seqs, answer = watched(
                dev, clients, levels, lambda data=data: dev.http.upload(data, paced))
        finally:
            for c in clients:
                c.close()
        if answer.get("version") != version:
            raise RuntimeError("upload answered %r" % answer)
        t, at = dev.wait_line("serving on http://127.0.0.1:%d" % dev.sim.http_port, mark,
                              "restart")
        dev.wait_line("ota: version %s in slot %s confirmed" % (version, answer["slot"]),
                      at, "confirmation")
        dev.check_running(version)
        rounds.append({"idle_peak": max(idle), "idle_median": statistics.median(idle),
                       "idle_readings": len(idle), "peak": max(readings),
                       "median": statistics.median(readings), "readings": len(readings),
                       "beyond_idle": max(readings) - max(idle), "flips": flips,
                       "idle_flips": idle_flips, "clients": report_count(flips, seq0, seqs),
                       "idle_clients": report_count(idle_flips, idle_seq0, idle_seqs)})
    worst = max(rounds, key=lambda r: r["beyond_idle"])
    return {"rounds": rounds, "beyond_idle": worst["beyond_idle"],
            "lost": sum(c["lost"] for r in rounds for c in r["clients"]),
            "continuous": all(c["continuous"] for r in rounds for c in r["clients"]),
            "flips": sum(r["flips"] for r in rounds)}


def paced(sent, total):
    """tools/ota.py's progress callback: called after each piece, it paces them."""
    time.sleep(PACE_S)


# Run on the unix port in the build: the heap the update's code takes once imported,
# over what a serving device has loaded already (the firmware imports it for an upload
# and forgets it after: transport/ota.py, and otastate.py with it).
CODE_HEAP = """\
import gc, sys
import asyncio, json, os
from binascii import hexlify
from hashlib import sha256
import pinsock.compat, pinsock.transport.http
gc.collect()
before = gc.mem_alloc()
import pinsock.transport.ota
gc.collect()
print(gc.mem_alloc() - before)
"""


def code_heap():
    """Bytes of heap the update's code takes (the build's .mpy, 64-bit unix port)."""
    from sim import micropython_command

    folder = bench_build()
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s" % (folder, folder / "lib"))
    proc = subprocess.run([micropython_command(), "-c", CODE_HEAP], capture_output=True,
                          text=True, timeout=WAIT_S, env=env, cwd=folder)
    if proc.returncode != 0:
        raise RuntimeError("importing the update's code failed: "
                           + (proc.stdout + proc.stderr)[-2000:])
    return int(proc.stdout)


def run(plan, log=print):
    bundles = Bundles()
    out = {"files": bundles.files()}
    with tempfile.TemporaryDirectory() as state:
        dev = Device(state)
        try:
            log("ota: updates, upload start to confirmed (%d) ..." % plan.updates)
            out["update"] = timed_updates(dev, bundles, plan)
            log("ota: heap and switch reports during uploads (%d) ..." % plan.heap_uploads)
            out["heap"] = upload_heap(dev, bundles, plan)
            out["heap"]["code"] = code_heap()
            output = "".join(dev.sim.output)
        finally:
            dev.close()
    if "Traceback" in output:
        raise RuntimeError("the simulator failed during the OTA figures:\n" + output[-2000:])
    log("ota: make deploy of the same build to a virtual board (%d) ..." % plan.deploys)
    out["deploy"] = deploy_times(plan)
    return out


# --- the report ------------------------------------------------------------------------
def kib(n):
    return "%.1f KiB" % (n / 1024)


def rows(o):
    """(figure, measured, compared with, ratio, budget, met) rows of the update table."""
    from bench_report import fmt_bytes, met

    up, dep, heap = o["update"], o["deploy"], o["heap"]
    size = "%s bundle" % fmt_bytes(up["bundle_bytes"])
    deploy = None if dep.get("skipped") else dep["seconds"]
    vs = "make deploy, the same build: %.1f s" % deploy if deploy else \
        "make deploy: not measured"
    out = [
        ("Update, upload start to the new version serving (confirmation excluded), "
         + size, "%.2f s" % up["serving"], vs,
         "%.2f×" % (up["serving"] / deploy) if deploy else "",
         "≤ make deploy (a %d KiB bundle)" % BUDGET_BUNDLE_KIB,
         met(up["serving"] <= deploy and up["bundle_bytes"] >= BUDGET_BUNDLE_KIB * 1024)
         if deploy else "not measured"),
        ("Update, upload start to the new version confirmed (`ota_confirm_s` %d)"
         % up["confirm_s"], "%.2f s" % up["confirmed"], vs,
         "%.2f×" % (up["confirmed"] / deploy) if deploy else "", "", ""),
        ("Upload, first byte to the answer (written, read back, switched)",
         "%.3f s" % up["answer"], "", "", "", ""),
        ("Heap used beyond idle during an upload (64-bit `.mpy`)",
         kib(heap["beyond_idle"]), "", "",
         "≤ %d KiB" % (BUDGET_HEAP_BYTES // 1024),
         met(heap["beyond_idle"] <= BUDGET_HEAP_BYTES)),
        ("… of it the update's code, loaded for the upload (`ota.mpy`, `otastate.mpy`)",
         kib(heap["code"]), "", "", "", ""),
        ("… of it the upload's data: the rest (all of it where the code is frozen)",
         kib(heap["beyond_idle"] - heap["code"]), "", "", "", ""),
        ("Switch reports to 2 WebSocket clients during uploads",
         "%d of %d each, %d lost" % (heap["flips"] - heap["lost"] // 2, heap["flips"],
                                     heap["lost"]), "", "", "none lost, seq continuous",
         met(heap["lost"] == 0 and heap["continuous"])),
    ]
    return out


def budgets(table_rows):
    return [{"figure": row[0], "budget": row[4], "met": row[5] == "yes"}
            for row in table_rows if row[4]]


def details(o):
    up, dep, heap = o["update"], o["deploy"], o["heap"]
    count, size = o["files"]
    lines = ["- The bundle: the UNIX_SIM build's %d files of the app, %d bytes (the "
             "loader's main.py, boot.py and otaboot.mpy are not in it); the bundle, "
             "manifest included, %d bytes. The app is bigger than the budget's %d KiB: "
             "these figures are for the whole app." % (count, size, up["bundle_bytes"],
                                                       BUDGET_BUNDLE_KIB)]
    lines.append("- Updates (upload, answer, serving, confirmed; seconds): " + "; ".join(
        "%.3f, %.2f, %.2f" % (r["answer"], r["serving"], r["confirmed"])
        for r in up["rounds"]) + " (medians in the table). The restart comes %d ms after "
        "the answer (`ota.restart_delay_ms`)." % RESTART_DELAY_MS)
    if dep.get("skipped"):
        lines.append("- make deploy: not measured: %s." % dep["skipped"])
    else:
        lines.append("- make deploy to an empty virtual board: %s s (%d files, %d bytes; "
                     "it said: %s)." % (", ".join("%.1f" % t for t in dep["rounds"]),
                                        dep["files"], dep["bytes"], dep["said"]))
    lines.append("- Heap during uploads (`heap` readings; bytes): " + "; ".join(
        "idle peak %d (median %d, %d readings), upload peak %d (median %d, %d readings), "
        "%d flips" % (r["idle_peak"], r["idle_median"], r["idle_readings"], r["peak"],
                      r["median"], r["readings"], r["flips"]) for r in heap["rounds"]) + ".")
    return "\n".join(lines)


def section(o):
    """The report's update section (Markdown)."""
    from bench_report import markdown_table

    header = ("Figure", "Measured", "Compared with", "Ratio", "Budget", "Met")
    return "\n\n".join(["## Updates over the network (issue 17)",
                        markdown_table(header, rows(o)), details(o)])


if __name__ == "__main__":  # the section alone: its JSON, then its Markdown
    quick = "--quick" in sys.argv or os.environ.get("CI", "").lower() == "true"
    bench.pin_to_one_cpu()
    result = run(Plan(quick), log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1, default=str))
    print(section(result))
