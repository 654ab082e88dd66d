"""The figures of the IOs that are more than on and off in `make bench` (issue 18;
docs/PROTOCOL.md, "Analog inputs, PWM outputs, counters and buttons"), each beside its
floor and its budget:

    sampling  the firmware process's CPU time (the scheduler's, all its threads:
              /proc/<pid>/task/*/schedstat, or utime+stime of /proc/<pid>/stat where
              the kernel keeps no schedstat) over windows of plan.cpu_window_s, with
              IOs 8, 9, a and b analog (sampled every SAMPLE_MS) and one WebSocket
              client holding a trigger on each (`tua<h>=DEADBAND`), against the same
              windows with every IO digital, on the same simulator, windows
              alternating. In both the control port moves the four analog levels
              every CHANGE_S (`analog <io> <level>`, between LEVELS), so the two differ
              by the sampling and the updates it sends, nothing else. No window starts
              before the function change's settings.json save is done.
    button    `press 14 PRESS_MS` on the control port (IO e a button, `tube=1`, the
              default debounce read with `bse`): each event's latency is from a lower
              bound of the moment its rule decides it, the host's clock at sending
              `press` truncated to the millisecond (the firmware's ticks_ms, taken
              after it) plus the debounce (the release: plus PRESS_MS too), to the
              client reading `{"u":{"b":{"e":"100x"}}}`: it can only overestimate.
              The floor, round by round: a DIP switch flipped with `tset` (the digital
              debounce 0: its rule decides at the edge), from sending it to the
              client reading the switch report.
    pwm       `wa=<duty>` on the WebSocket (IO a a PWM output); the moment its reply
              is read, the control port's `pwm 10` must already show the new duty
              (duty_u16 as logic/kinds.py scales it), every time; the `wa=` round
              trip beside the `v0` round trip, round by round on the same client.

The button and PWM figures run on a simulator of their own, booted with IO e a button
and IO a a PWM output (settings.json), so no save of a function change falls in their
rounds. tools/bench.py runs it.
"""

import json
import os
import select
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from simclient import Control, RawWs  # noqa: E402
from simproc import Sim  # noqa: E402

WAIT_S = 10  # as tools/bench.py: every wait is bounded
# A function change is saved at the next once-a-second housekeeping, but never sooner
# than 10 s after the previous save (logic/settings.py min_save_interval_ms).
SAVE_WAIT_S = 15
AFTER_SAVE_S = 0.2  # the save's own work done before a window starts
ANALOG_IOS = (8, 9, 10, 11)
SAMPLE_MS = 100  # logic/kinds.py Kinds.sample_ms, the default the budget is for
DEADBAND = 16  # the client's `tua<h>=` (of 0..1023)
LEVELS = (16384, 49152)  # the analog levels the control port alternates (0..65535)
CHANGE_S = 0.25  # the four levels move this often, in every window
BUTTON_IO = 14  # IO e; the control port takes IOs in decimal
PRESS_MS = 60  # down this long: past the debounce, short of a hold (1000 ms)
PWM_IO = 10  # IO a
FLOOR_DIP = 0  # DIP 1, flipped for the button's floor
# The functions the button and PWM simulator boots with (settings.json "fn").
BOOT_FUNCTIONS = "".join("b" if io == BUTTON_IO else "w" if io == PWM_IO else "d"
                         for io in range(16))
# Issue 18's budgets.
BUDGET_CPU_PERCENT = 5.0  # of one core, 4 analog inputs beyond all digital
BUDGET_BUTTON_P99_MS = 5.0  # the rule's decision to the client


class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.cpu_window_s = 1.0 if quick else 5.0
        self.cpu_pairs = 1 if quick else 2  # (all digital, analog) windows
        self.button_rounds = 10 if quick else 100  # 2 events a round
        self.pwm_rounds = 20 if quick else 400


def method():
    """The numbers docs/PERFORMANCE.md's method 10 quotes (bench_report's template)."""
    full, quick = Plan(False), Plan(True)
    return dict(kinds_sample_ms=SAMPLE_MS, kinds_deadband=DEADBAND,
                kinds_change_ms=round(CHANGE_S * 1000), kinds_levels="%d and %d" % LEVELS,
                kinds_window_s="%g" % full.cpu_window_s, kinds_pairs=full.cpu_pairs,
                kinds_quick_window_s="%g" % quick.cpu_window_s,
                kinds_press_ms=PRESS_MS, kinds_button_rounds=full.button_rounds,
                kinds_pwm_rounds=full.pwm_rounds)


def cpu_seconds(pid):
    """(CPU seconds process `pid` has used, all its threads; the source): the
    scheduler's sum_exec_runtime (ns) where the kernel has schedstat, else utime+stime
    (clock ticks, 10 ms steps)."""
    try:
        total = 0
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        return total / 1e9, "schedstat"
    except (OSError, ValueError, IndexError):
        pass
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5); fields[0] is field 3 (state).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), "stat"


def ask_ws(ws, command):
    """Send `command` on ws; its reply (updates and switch reports that come first are
    passed over), or an error when it is a protocol error."""
    ws.send_text(command)
    reply = ws.recv_text()
    while reply.startswith(('{"u":', '{"dipSwitches"')):
        reply = ws.recv_text()
    if reply.startswith('{"e":'):
        raise RuntimeError("%s answered %s" % (command, reply))
    return reply


def ask_control(ctl, line):
    answer = ctl.ask(line)
    if answer.startswith("error"):
        raise RuntimeError("control port: %s answered %r" % (line, answer))
    return answer


def read_settings(state):
    try:
        return Path(state, "settings.json").read_bytes()
    except FileNotFoundError:
        return b""


def wait_saved(state, before, ws):
    """Until settings.json differs from `before` (the function change saved); the
    client is read meanwhile."""
    deadline = time.monotonic() + SAVE_WAIT_S
    while read_settings(state) == before:
        if time.monotonic() > deadline:
            raise RuntimeError("settings.json not saved within %d s" % SAVE_WAIT_S)
        if select.select([ws], [], [], 0.05)[0]:
            ws.feed()
    time.sleep(AFTER_SAVE_S)


# --- sampling: CPU -----------------------------------------------------------------------
def set_analog(state, ws, on):
    """IOs 8, 9, a, b analog with a trigger each (on), or all digital; returns when the
    change is saved."""
    before = read_settings(state)
    for io in ANALOG_IOS:
        ask_ws(ws, "f%x=%s" % (io, "a" if on else "d"))
        if on:
            ask_ws(ws, "tua%x=%d" % (io, DEADBAND))
    wait_saved(state, before, ws)
    ws.inbox.clear()


def move_levels(ctl, n):
    level = LEVELS[n % 2]
    for io in ANALOG_IOS:
        ask_control(ctl, "analog %d %d" % (io, level))


def cpu_window(pid, ctl, ws, seconds):
    """The firmware's CPU over `seconds` while the control port moves the analog levels
    every CHANGE_S and the client is read: percent of one core, and the analog updates
    the client got."""
    updates = changes = 0
    wall0, (cpu0, source) = time.monotonic(), cpu_seconds(pid)
    end = wall0 + seconds
    due = wall0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= due:
            move_levels(ctl, changes)
            changes += 1
            due += CHANGE_S
            continue
        if select.select([ws], [], [], min(due, end) - now)[0]:
            updates += sum(1 for text in ws.feed() if text.startswith('{"u":{"a":'))
    cpu1, _ = cpu_seconds(pid)
    wall = time.monotonic() - wall0
    ws.inbox.clear()
    return {"cpu_s": cpu1 - cpu0, "wall_s": wall, "percent": 100 * (cpu1 - cpu0) / wall,
            "changes": changes, "updates": updates, "source": source}


def sampling_cpu(plan):
    """Budget 1: windows all digital and with 4 analog inputs, alternating."""
    with tempfile.TemporaryDirectory() as state:
        sim = Sim(state, **bench.SIM_OPTIONS).start()
        ctl = ws = None
        try:
            ctl = Control(sim.control_port)
            ws = RawWs(sim.http_port)
            ws.recv_text()  # the report on connect
            pid = sim.firmware_pid()
            move_levels(ctl, 1)  # simkinds loaded before the first window
            windows = {"digital": [], "analog": []}
            for _ in range(plan.cpu_pairs):
                if windows["analog"]:
                    set_analog(state, ws, False)
                windows["digital"].append(cpu_window(pid, ctl, ws, plan.cpu_window_s))
                set_analog(state, ws, True)
                windows["analog"].append(cpu_window(pid, ctl, ws, plan.cpu_window_s))
            output = "".join(sim.output)
        finally:
            if ws:
                ws.close(1000)
            if ctl:
                ctl.close()
            sim.stop()
    if "Traceback" in output:
        raise RuntimeError("the simulator failed during the sampling figure:\n"
                           + output[-2000:])
    out = {"windows": windows, "source": windows["digital"][0]["source"]}
    for kind, taken in windows.items():
        out[kind] = 100 * sum(w["cpu_s"] for w in taken) / sum(w["wall_s"] for w in taken)
    out["beyond"] = out["analog"] - out["digital"]
    return out


# --- buttons and PWM ----------------------------------------------------------------------
def read_until(ws, ctl, count, match, deadline_s=WAIT_S):
    """Read ws and the control connection until ws has had `count` messages for which
    `match(text)` is true, and ctl its one answer line. Returns ([(text, µs read)],
    (answer, µs read)); each socket is read as soon as it is readable."""
    texts, answer = [], None
    deadline = time.monotonic() + deadline_s
    while len(texts) < count or answer is None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("waited for %d messages and the control answer; got %r, %r"
                               % (count, texts, answer))
        socks = ([ws] if len(texts) < count else []) + ([ctl] if answer is None else [])
        for s in select.select(socks, [], [], left)[0]:
            if s is ctl:
                line = ctl.read_line()
                if line is not None:
                    answer = (line, bench.now_us())
                continue
            for text in ws.feed():
                if match(text):
                    texts.append((text, bench.now_us()))
    ws.inbox.clear()
    return texts, answer


def is_button_event(text):
    return text.startswith('{"u":{"b":{"%x":' % BUTTON_IO)


def is_report(text):
    return text.startswith('{"dipSwitches"')


def button_round(ws, ctl, debounce, level):
    """One DIP flip (the floor) and one press; returns (floor µs, clock bracketed,
    [(event code, µs beyond its decision's lower bound)])."""
    sent = bench.now_us()
    ctl.send("tset %d %d\n" % (FLOOR_DIP, level))
    (report,), (answer, acked) = read_until(ws, ctl, 1, is_report)
    word, edge = answer.split()
    if word != "ok":
        raise RuntimeError("control port answered %r" % answer)
    floor = report[1] - sent
    bracketed = sent <= int(edge) <= acked

    sent = bench.now_us()
    ctl.send("press %d %d\n" % (BUTTON_IO, PRESS_MS))
    events, (answer, _) = read_until(ws, ctl, 2, is_button_event)
    if answer != "ok":
        raise RuntimeError("control port answered %r to press" % answer)
    # The press's edge is stamped with ticks_ms after `sent`: at least sent's
    # millisecond; its release at least PRESS_MS later (asyncio's sleep_ms never
    # wakes early). Each rule decides once its edge has held the debounce.
    sent_ms = sent // 1000
    bounds = ((sent_ms + debounce) * 1000, (sent_ms + PRESS_MS + debounce) * 1000)
    timed = []
    for (text, read), bound in zip(events, bounds):
        code = int(json.loads(text)["u"]["b"]["%x" % BUTTON_IO])
        timed.append((code, read - bound))
    codes = [code for code, _ in timed]
    if codes[0] not in (1000, 1004) or codes[1] != 1002:
        raise RuntimeError("press %d ms told %r, not a press (or a double press) and a "
                           "short release" % (PRESS_MS, codes))
    return floor, bracketed, timed


def button_latencies(ws, ctl, plan):
    """Budget 2: a button's events from their rule's decision, beside the switch report
    from its flip."""
    ask_ws(ws, "tub%x=1" % BUTTON_IO)
    reply = json.loads(ask_ws(ws, "bs%x" % BUTTON_IO))
    debounce = int(reply["b"]["s"]["%x" % BUTTON_IO])
    # A round first, not timed: the first flip and the first press load and make what
    # every later one finds made.
    level = 0  # DIP 1 pulled up: Off, at 1
    button_round(ws, ctl, debounce, level)
    floor, events, bracketed = [], [], 0
    for _ in range(plan.button_rounds):
        level ^= 1
        flip, clock_ok, timed = button_round(ws, ctl, debounce, level)
        floor.append(flip)
        bracketed += clock_ok
        events += timed
    by_code = {}
    for code, t in events:
        by_code.setdefault(str(code), []).append(t)
    return {"events": bench.summary_ms([t for _, t in events]),
            "floor": bench.summary_ms(floor), "debounce_ms": debounce,
            "rounds": plan.button_rounds, "clock_bracketed": bracketed,
            "by_code": {code: bench.summary_ms(ts) for code, ts in sorted(by_code.items())}}


def duty_u16(duty):
    """logic/kinds.py Kinds.set_pwm's scaling of a 0..1023 duty."""
    return (duty * 65535 + 511) // 1023


def pwm_round_trips(ws, ctl, plan):
    """Budget 3: `wa=` answered means the pin has the duty; its round trip beside `v0`'s."""
    ask_ws(ws, "w%x=%d" % (PWM_IO, 1023))  # not timed: the first write makes its reply
    floor, times, at_pin, wrong = [], [], 0, []
    for n in range(plan.pwm_rounds):
        floor.append(bench.ws_round_trip(ws))
        duty = (n * 389 + 1) % 1024  # a new duty every round
        t0 = bench.now_us()
        ws.send_text("w%x=%d" % (PWM_IO, duty))
        reply = ws.recv_text()
        times.append(bench.now_us() - t0)
        if reply != '{"w":{"%x":"%d"}}' % (PWM_IO, duty):
            raise RuntimeError("w%x=%d answered %s" % (PWM_IO, duty, reply))
        pin = ask_control(ctl, "pwm %d" % PWM_IO).split()
        if int(pin[0]) == duty_u16(duty):
            at_pin += 1
        elif len(wrong) < 5:
            wrong.append({"duty": duty, "pin": pin})
    return {"round_trip": bench.summary_ms(times), "floor": bench.summary_ms(floor),
            "rounds": plan.pwm_rounds, "at_pin": at_pin, "wrong": wrong}


def button_and_pwm(plan):
    with tempfile.TemporaryDirectory() as state:
        Path(state, "settings.json").write_text(json.dumps({"fn": BOOT_FUNCTIONS}))
        sim = Sim(state, **bench.SIM_OPTIONS).start()
        ctl = ws = None
        try:
            ctl = Control(sim.control_port)
            ws = RawWs(sim.http_port)
            ws.recv_text()  # the report on connect
            functions = json.loads(ask_ws(ws, "f"))["f"]
            if functions["%x" % BUTTON_IO] != "b" or functions["%x" % PWM_IO] != "w":
                raise RuntimeError("booted with functions %r" % functions)
            out = {"button": button_latencies(ws, ctl, plan),
                   "pwm": pwm_round_trips(ws, ctl, plan)}
            output = "".join(sim.output)
        finally:
            if ws:
                ws.close(1000)
            if ctl:
                ctl.close()
            sim.stop()
    if "Traceback" in output:
        raise RuntimeError("the simulator failed during the button and PWM figures:\n"
                           + output[-2000:])
    return out


def run(plan, log=print):
    log("kinds: CPU with 4 analog inputs and all digital (%d × %g s each) ..." % (
        plan.cpu_pairs, plan.cpu_window_s))
    out = {"sampling": sampling_cpu(plan)}
    log("kinds: button events (%d presses), PWM duty at the pin (%d) ..." % (
        plan.button_rounds, plan.pwm_rounds))
    out.update(button_and_pwm(plan))
    return out


# --- the report ------------------------------------------------------------------------
def rows(o):
    """(figure, measured, floor / compared with, ratio, budget, met) rows of the kinds
    table."""
    from bench_report import fmt_ms, met

    cpu, button, pwm = o["sampling"], o["button"], o["pwm"]
    ev, fl = button["events"], button["floor"]
    out = [
        ("CPU of one core, 4 analog inputs sampled every %d ms, beyond all digital"
         % SAMPLE_MS, "%.2f %%" % cpu["beyond"],
         "all digital %.2f %%, analog %.2f %%" % (cpu["digital"], cpu["analog"]), "",
         "≤ %g %%" % BUDGET_CPU_PERCENT, met(cpu["beyond"] <= BUDGET_CPU_PERCENT))]
    for p, budget in (("p50", None), ("p99", BUDGET_BUTTON_P99_MS)):
        out.append(("Button event, its rule's decision to the client, " + p, fmt_ms(ev[p]),
                    "switch report, flip to client %s %s" % (p, fmt_ms(fl[p])),
                    "%.2f×" % (ev[p] / fl[p]), "≤ %g ms" % budget if budget else "",
                    met(ev[p] <= budget) if budget else ""))
    out.append(("PWM duty at the pin when `wa=` is answered",
                "%d of %d" % (pwm["at_pin"], pwm["rounds"]), "", "", "every time",
                met(pwm["at_pin"] == pwm["rounds"])))
    for p in ("p50", "p99"):
        rt, v0 = pwm["round_trip"][p], pwm["floor"][p]
        out.append(("`wa=` round trip, " + p, fmt_ms(rt), "`v0` %s %s" % (p, fmt_ms(v0)),
                    "%.2f×" % (rt / v0), "", ""))
    return out


def budgets(table_rows):
    return [{"figure": row[0], "budget": row[4], "met": row[5] == "yes"}
            for row in table_rows if row[4]]


def details(o):
    from bench_report import fmt_ms

    cpu, button, pwm = o["sampling"], o["button"], o["pwm"]

    def windows(kind):
        return ", ".join("%.2f %% (%.1f ms of CPU in %.2f s, %d analog updates)" % (
            w["percent"], w["cpu_s"] * 1000, w["wall_s"], w["updates"])
            for w in cpu["windows"][kind])

    lines = ["- CPU windows (%s): all digital %s; analog %s." % (
        cpu["source"], windows("digital"), windows("analog"))]
    lines.append("- Button events (debounce %d ms, %d presses): " % (
        button["debounce_ms"], button["rounds"]) + "; ".join(
        "%s p50 %s, p99 %s (%d)" % (code, fmt_ms(s["p50"]), fmt_ms(s["p99"]), s["n"])
        for code, s in button["by_code"].items()) + "; max %s. Switch report floor max "
        "%s; `tset`'s edge time between send and answer in %d of %d rounds." % (
            fmt_ms(button["events"]["max"]), fmt_ms(button["floor"]["max"]),
            button["clock_bracketed"], button["rounds"]))
    lines.append("- PWM: %d `wa=` rounds, the pin had the duty in %d%s." % (
        pwm["rounds"], pwm["at_pin"], "" if not pwm["wrong"] else
        " (first misses: %s)" % pwm["wrong"]))
    return "\n".join(lines)


def section(o):
    """The report's kinds section (Markdown)."""
    from bench_report import markdown_table

    header = ("Figure", "Measured", "Floor / compared with", "Ratio", "Budget", "Met")
    return "\n\n".join(["## Analog inputs, PWM outputs and buttons (issue 18)",
                        markdown_table(header, rows(o)), details(o)])


if __name__ == "__main__":  # the section alone: its JSON, then its Markdown
    quick = "--quick" in sys.argv or os.environ.get("CI", "").lower() == "true"
    bench.pin_to_one_cpu()
    result = run(Plan(quick), log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1, default=str))
    print(section(result))
