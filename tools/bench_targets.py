"""Memory on three targets, the nearest this machine gets to a chip's heap:

    mpy      the deployed .mpy build on the project's unix port (PyPI, 64-bit)
    unix32   the same .mpy build on the 32-bit unix port built from MicroPython's
             source (tools/unix32.py): objects the size they are on the chips
    frozen   that port with pinsock, simhw and microdot frozen in (boards/UNIX_SIM/
             manifest.py), run from what a frozen deploy copies: the module code stays
             out of the heap, as in a board's flash

    python tools/bench_targets.py [--quick] [--targets mpy unix32 frozen] [--json FILE]

For each: the heap in use at rest after boot, what a WebSocket client adds, what a
pushed update allocates, the smallest heap serving 4 clients through the soak, and the
heap at rest with the password on and with TLS (and what a WSS client adds). `make
bench` runs it (tools/bench.py) when MicroPython's source is there; the 32-bit targets
are skipped, saying why, when it is not.
"""

import argparse
import contextlib
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soak  # noqa: E402
import unix32  # noqa: E402
from simclient import Control, next_message, ws_connect  # noqa: E402
from simproc import Sim  # noqa: E402

TARGETS = ("mpy", "unix32", "frozen")
LABELS = {"mpy": "64-bit unix port (PyPI), `.mpy`", "unix32": "32-bit unix port, `.mpy`",
          "frozen": "32-bit unix port, pinsock frozen"}
# Sim options per target (tools/sim.py --unix32 / --frozen).
SIM_TARGET = {"mpy": {}, "unix32": {"unix32": True}, "frozen": {"frozen": True}}
# Where the smallest heap is bisected (KiB): below the floor the firmware does not
# start, above it every run passes.
HEAP_RANGE = {"mpy": (64, 320), "unix32": (32, 192), "frozen": (16, 128)}
# The budgets of issue 15 (32-bit, 4 clients through the soak), KiB.
BUDGET_KIB = {"unix32": 96, "frozen": 48}
# Issue 14's budget for MQTT connected at rest, over the same board without it (KB).
MQTT_BUDGET_KB = 8.0
CLIENTS = 4
PASSWORD = "bench-password"
# Heap readings (`heap`: collect, then free and allocated) taken for one figure: the
# least allocated counts (a stale pointer may keep a dead object for one collection).
READINGS = 8


class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.updates = 20 if quick else 200
        self.soak_transitions = 100 if quick else 2000
        self.heap_step_kib = 32 if quick else 2


def missing(target):
    """Why `target` cannot run here, or None."""
    return None if target == "mpy" else unix32.missing()


def settled_alloc(ctl):
    """Bytes allocated with nothing but what is held (the least of READINGS)."""
    least = None
    for _ in range(READINGS):
        _, allocated = (int(n) for n in ctl.ask("heap").split())
        least = allocated if least is None else min(least, allocated)
        time.sleep(0.05)
    return least


def make_tls_pair(folder):
    """cert.der and key.der (self-signed P-256, as docs/SECURITY.md makes them) in
    `folder`; False without openssl."""
    if not shutil.which("openssl"):
        return False
    pem = Path(folder) / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=bench",
                    "-outform", "DER", "-out", str(Path(folder) / "cert.der"), "-keyout",
                    str(pem)], check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "pkey", "-in", str(pem), "-outform", "DER", "-out",
                    str(Path(folder) / "key.der")], check=True, capture_output=True,
                   timeout=30)
    pem.unlink()
    return True


def start(target, state, **options):
    return Sim(state, max_clients=CLIENTS, debounce_ms=0, **SIM_TARGET[target],
               **options).start()


def resting_figures(target, plan):
    """At rest, per client, per update (no password, no TLS). Per update is
    tools/bench.py's figure 5 (the median flip, gc off, less the median `set` that
    changes nothing), with 1 client."""
    import bench  # here: bench imports this module

    with tempfile.TemporaryDirectory() as state:
        sim = start(target, state, heapsize="2M")
        ctl = Control(sim.control_port)
        try:
            rest = settled_alloc(ctl)
            with contextlib.ExitStack() as stack:
                socks = [stack.enter_context(ws_connect(sim.http_port))
                         for _ in range(CLIENTS)]
                for ws in socks:
                    next_message(ws, "dipSwitches")
                with_clients = settled_alloc(ctl)
            flips = bench.Bench.__new__(bench.Bench)  # bench's harness on this simulator
            flips.sim, flips.ctl, flips.levels, flips.clients = sim, ctl, [1] * 8, []
            update = bench.alloc_per_update(flips, 1, plan.updates)
            for ws in flips.clients:
                ws.close(1000)
            return {"at_rest": rest, "per_client": (with_clients - rest) / CLIENTS,
                    "per_update": max(0.0, update["per_update"])}
        finally:
            ctl.close()
            sim.stop()


def password_at_rest(target):
    with tempfile.TemporaryDirectory() as state:
        (Path(state) / "config.json").write_text(json.dumps({"password": PASSWORD}))
        sim = start(target, state, heapsize="2M")
        ctl = Control(sim.control_port)
        try:
            return settled_alloc(ctl)
        finally:
            ctl.close()
            sim.stop()


def tls_figures(target):
    """(at rest with TLS, what a WSS client adds to the MicroPython heap), or None
    without openssl."""
    with tempfile.TemporaryDirectory() as state:
        if not make_tls_pair(state):
            return None
        sim = start(target, state, heapsize="2M")
        ctl = Control(sim.control_port)
        try:
            rest = settled_alloc(ctl)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            from websockets.sync.client import connect

            with contextlib.ExitStack() as stack:
                for _ in range(2):
                    ws = stack.enter_context(connect(sim.wss_url(), ssl=context,
                                                     open_timeout=10))
                    next_message(ws, "dipSwitches")
                with_clients = settled_alloc(ctl)
            return {"at_rest": rest, "per_client": (with_clients - rest) / 2}
        finally:
            ctl.close()
            sim.stop()


def mqtt_figures(target, plan):
    """At rest with MQTT connected to a Mosquitto of its own (config.json's mqtt block,
    discovery on as a board has it: its module is loaded to send, then forgotten), and
    what a pushed update allocates then (figure 5, 1 WebSocket client); None without
    mosquitto."""
    import bench  # here: bench imports this module
    import bench_mqtt

    if bench_mqtt.missing():
        return None
    from mqttbroker import Broker

    with tempfile.TemporaryDirectory() as state:
        broker = Broker(Path(state) / "broker").start()
        sim = None
        try:
            bench_mqtt.write_config(state, broker.port)
            sim = start(target, state, heapsize="2M")
            bench_mqtt.wait_connected(sim)
            ctl = Control(sim.control_port)
            try:
                rest = settled_alloc(ctl)
                flips = bench.Bench.__new__(bench.Bench)
                flips.sim, flips.ctl, flips.levels, flips.clients = sim, ctl, [1] * 8, []
                update = bench.alloc_per_update(flips, 1, plan.updates)
                for ws in flips.clients:
                    ws.close(1000)
            finally:
                ctl.close()
            return {"at_rest": rest, "per_update": max(0.0, update["per_update"])}
        finally:
            if sim:
                sim.stop()
            broker.stop()


def soak_passes(target, heap_kib, transitions):
    with tempfile.TemporaryDirectory() as state:
        sim = Sim(state, heapsize="%dK" % heap_kib, max_clients=CLIENTS, debounce_ms=0,
                  **SIM_TARGET[target])
        try:
            sim.start()
        except AssertionError as exc:
            return False, "did not start: " + str(exc)[-200:]
        try:
            return sim.verdict(lambda sim: soak.soak(sim, clients=CLIENTS,
                                                     transitions=transitions, seed=0),
                               tail=200)
        finally:
            sim.stop()


def smallest_heap(target, plan, log=print):
    """Bisect -X heapsize (KiB) for the soak with 4 clients on `target`."""
    low, high = HEAP_RANGE[target]
    step = plan.heap_step_kib
    tried = []

    def attempt(kib):
        ok, why = soak_passes(target, kib, plan.soak_transitions)
        tried.append({"kib": kib, "ok": ok, "why": why})
        log("  %s, %d KiB: %s" % (target, kib, "pass" if ok else "fail"))
        return ok

    if not attempt(high):
        return {"kib": None, "tried": tried, "note": "fails even at %d KiB" % high}
    while high - low > step:
        mid = max(low + step, (low + high) // 2 // step * step)
        if attempt(mid):
            high = mid
        else:
            low = mid
    return {"kib": high, "tried": tried, "note": ""}


def measure(target, plan, log=print, heap=None):
    """Every figure for one target; `heap`: its smallest heap when already measured."""
    log("%s: at rest, per client, per update ..." % target)
    figures = resting_figures(target, plan)
    figures["password_at_rest"] = password_at_rest(target)
    figures["tls"] = tls_figures(target)
    log("%s: MQTT connected, at rest and per update ..." % target)
    mqtt = mqtt_figures(target, plan)
    if mqtt:
        mqtt["base_at_rest"] = figures["at_rest"]
        mqtt["base_per_update"] = figures["per_update"]
    figures["mqtt"] = mqtt
    log("%s: smallest heap for %d clients through the soak ..." % (target, CLIENTS))
    figures["heap"] = heap or smallest_heap(target, plan, log)
    return figures


def run(plan, log=print, targets=TARGETS, heaps=None):
    """{"targets": {target: figures}, "skipped": {target: why}}."""
    out = {"targets": {}, "skipped": {}, "quick": plan.quick}
    for target in targets:
        why = missing(target)
        if why:
            out["skipped"][target] = why
            continue
        out["targets"][target] = measure(target, plan, log, (heaps or {}).get(target))
    return out


def kb(n):
    return "%.1f KB" % (n / 1000)


def table_rows(result):
    """(figure, one column per measured target) rows, and the header."""
    targets = [t for t in TARGETS if t in result["targets"]]
    r = [result["targets"][t] for t in targets]

    def heap(f):
        h = f["heap"]
        return "%d KiB" % h["kib"] if h["kib"] else h["note"]

    def tls(f, key, fmt):
        return fmt(f["tls"][key]) if f["tls"] else "no openssl"

    rows = [
        ("At rest after boot", [kb(f["at_rest"]) for f in r]),
        ("Each WebSocket client adds", [kb(f["per_client"]) for f in r]),
        ("A pushed update allocates (1 client)", ["%.0f B" % f["per_update"] for f in r]),
        ("Smallest heap, %d clients through the soak" % CLIENTS, [heap(f) for f in r]),
        ("At rest, password on", [kb(f["password_at_rest"]) for f in r]),
        ("At rest, TLS on", [tls(f, "at_rest", kb) for f in r]),
        ("Each WSS client adds (MicroPython heap)", [tls(f, "per_client", kb) for f in r]),
    ]
    if any(f.get("mqtt") for f in r):
        def mqtt(f, fmt):
            return fmt(f["mqtt"]) if f.get("mqtt") else "no mosquitto"

        def adds(m):
            return "%s (budget ≤ %g KB: %s)" % (
                kb(m["at_rest"] - m["base_at_rest"]), MQTT_BUDGET_KB,
                "yes" if m["at_rest"] - m["base_at_rest"] <= MQTT_BUDGET_KB * 1000
                else "**not met**")

        rows += [
            ("At rest, MQTT connected", [mqtt(f, lambda m: kb(m["at_rest"])) for f in r]),
            ("MQTT connected adds, at rest", [mqtt(f, adds) for f in r]),
            ("A pushed update allocates, MQTT on (1 client)",
             [mqtt(f, lambda m: "%.0f B (%+.0f B beside MQTT off)" % (
                 m["per_update"], m["per_update"] - m["base_per_update"])) for f in r]),
        ]
    budget = []
    for t, f in zip(targets, r):
        if t in BUDGET_KIB:
            kib = f["heap"]["kib"]
            budget.append("≤ %d KiB: %s" % (BUDGET_KIB[t], "yes" if kib and kib <= BUDGET_KIB[t]
                                              else "**no** (%s)" % heap(f)))
        else:
            budget.append("")
    rows.append(("Budget for the smallest heap (32-bit)", budget))
    return ["Figure"] + [LABELS[t] for t in targets], rows


def budgets(result):
    """[{figure, budget, met}] for the 32-bit targets measured."""
    out = []
    for t, kib_budget in BUDGET_KIB.items():
        f = result["targets"].get(t)
        if f:
            kib = f["heap"]["kib"]
            out.append({"figure": "Smallest heap, 4 clients, soak, " + LABELS[t],
                        "budget": "≤ %d KiB" % kib_budget,
                        "met": bool(kib) and kib <= kib_budget})
    return out


def render(result):
    header, rows = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| %s | %s |" % (name, " | ".join(cells)) for name, cells in rows]
    for target, why in result["skipped"].items():
        lines.append("\n%s: not measured: %s." % (LABELS[target], why))
    for target, f in result["targets"].items():
        tried = ", ".join("%d %s" % (t["kib"], "pass" if t["ok"] else "fail")
                          for t in f["heap"]["tried"])
        if tried:
            lines.append("\n- %s, smallest heap bisection (KiB): %s." % (LABELS[target], tried))
    return "\n".join(lines)


# Free MicroPython heap on the boards, after Wi-Fi is up (KB, as their ports report it).
BOARD_HEAPS = (("Pico W", 160), ("ESP32 without PSRAM", 110))
# What mbedtls holds per TLS connection on a Pico W, from the MicroPython heap (KiB;
# docs/SECURITY.md: its 16 + 4 KiB buffers and state, 21-24 KiB, from its config).
TLS_CONNECTION_KIB = 22


def predictions(result):
    """What the figures predict on a Pico W and an ESP32, as Markdown."""
    t = result["targets"]
    if not (t.get("frozen") or t.get("unix32")):
        return ("What this predicts on a board needs the 32-bit targets: %s."
                % "; ".join(sorted(set(result["skipped"].values()))))
    lines = ["What it predicts on a board (free MicroPython heap once Wi-Fi is up: %s). "
             "The 32-bit port's objects are the chips' size, so its heap figures are what "
             "a board's heap holds of pinsock; a board's own port adds its network and "
             "machine modules, and carries the hardware layer instead of simhw." % ", ".join(
                 "%s about %d KB (%d KiB)" % (name, kb_, kb_ * 1000 // 1024)
                 for name, kb_ in BOARD_HEAPS)]

    def spare(kib):
        return ", ".join("%s %s" % (name, "%d KiB to spare" % (kb_ * 1000 // 1024 - kib)
                                    if kb_ * 1000 // 1024 >= kib else
                                    "**%d KiB short**" % (kib - kb_ * 1000 // 1024))
                         for name, kb_ in BOARD_HEAPS)

    for target, what in (("frozen", "A frozen image (pinsock in flash: the image to build "
                                    "for a board)"),
                         ("unix32", "The `.mpy` files on a stock image (bytecode loaded "
                                    "into the heap)")):
        f = t.get(target)
        if not f or not f["heap"]["kib"]:
            continue
        lines.append("- %s: 4 clients through the soak in %d KiB (%s); %s at rest, each "
                     "client %s more, %s with the password on." % (
                         what, f["heap"]["kib"], spare(f["heap"]["kib"]), kb(f["at_rest"]),
                         kb(f["per_client"]), kb(f["password_at_rest"])))
    f = t.get("frozen") or t.get("unix32")
    if f.get("tls"):
        room = BOARD_HEAPS[0][1] * 1000 - f["tls"]["at_rest"]
        per = TLS_CONNECTION_KIB * 1024 + f["tls"]["per_client"]
        lines.append(
            "- TLS: at rest %s (%s without). On a Pico W mbedtls takes about %d KiB per "
            "open connection from the same heap (the unix port takes it from `malloc`, "
            "so it is not in these figures): room for about %d connections' buffers with "
            "nothing else, each needing a 16 KiB block in one piece, which a fragmented "
            "heap may not have (docs/SECURITY.md: keep `max_clients` at 1 there with TLS). "
            "On an ESP32 those buffers come from ESP-IDF's heap, outside the 110 KB." % (
                kb(f["tls"]["at_rest"]), kb(f["at_rest"]), TLS_CONNECTION_KIB, room // per))
    m = t.get("mpy")
    if m and m["heap"]["kib"] and t.get("unix32") and t["unix32"]["heap"]["kib"]:
        lines.append("- The 64-bit port's figures are not a board's: its smallest heap is "
                     "%.2f× the 32-bit port's for the same `.mpy` files, its heap at rest "
                     "%.2f×." % (m["heap"]["kib"] / t["unix32"]["heap"]["kib"],
                                 m["at_rest"] / t["unix32"]["at_rest"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run(Plan(args.quick), lambda text: print(text, file=sys.stderr, flush=True),
                 args.targets)
    print(render(result))
    print()
    print(predictions(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
