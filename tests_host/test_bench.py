"""The benchmark's harness (tools/bench.py) works: its quick mode, what `make bench
QUICK=1` and CI run, measures every figure and every floor and renders the report.

Structure only: no figure is compared with a speed (speed is the benchmark's business,
never a test's). What is checked is that each figure was measured and is consistent:
every throughput step's transitions are in the event log, the device's edge times
are on the host's clock, the heap bisection found a heap that passes.
"""

import json
import subprocess
import sys

import bench_report
import unix32
import virtualboard
from mqttbroker import mosquitto_command
from conftest import ROOT

FIGURES = ("1. Command round trip", "2. Push latency, 1 client", "2. Push latency, 4 clients",
           "3. Throughput", "4. Bytes per idle hour", "4. Mean staleness",
           "5. Heap allocated per update", "5. Smallest heap", "6. Deployed build",
           "6. Page, gzipped")


def test_quick_bench_produces_every_figure(sim_build, tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "PERFORMANCE.md"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), "--quick",
                          "--json", str(out_json), "--out", str(out_md)],
                         capture_output=True, text=True, timeout=480, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    r = json.loads(out_json.read_text())
    assert r["quick"] is True

    # The floors, each with its samples.
    fw = r["firmware"]
    floors = [r["floors"]["tcp_echo"], r["floors"]["http_get"], fw["command"]["echo"],
              fw["push_1"]["echo"], fw["push_4"]["echo"]]  # the WebSocket echo: beside 1, 2
    for floor in floors:
        assert floor["n"] > 0 and floor["p50"] > 0, floor
    assert r["floors"]["http_get"]["body_bytes"] > 0
    assert fw["command"]["n"] == fw["command"]["echo"]["n"]
    assert fw["command"]["n"] > 0 and fw["command"]["p50"] > 0
    for key in ("push_1", "push_4"):
        push = fw[key]
        assert push["from_edge"]["n"] == push["rounds"] > 0
        # tset's edge time is on the host's clock: between sending it and its answer.
        assert push["clock_bracketed"] == push["rounds"], push
    steps = fw["throughput"]["steps"]
    assert steps and steps[-1]["target"] is None  # the flat-out step always runs
    for step in steps:
        if step["ok"]:
            assert step["records"] == step["count"] and step["lost"] == 0, step
    assert any(step["ok"] for step in steps), steps
    for alloc in (fw["alloc_1"], fw["alloc_4"]):  # measured: the control line's cost shows
        assert alloc["control_line"] > 0 and alloc["updates"] == 20, alloc
        assert isinstance(alloc["per_update"], (int, float)), alloc
    assert fw["sizes"]["report_frame"] > 2 and fw["sizes"]["handshake"] > 100

    heap = r["heap"]
    assert heap["kib"], heap
    assert any(t["ok"] and t["kib"] == heap["kib"] for t in heap["tried"]), heap

    poll = r["polling"]
    assert poll["push_bytes"] > 0 and poll["poll_bytes"] > 0
    assert poll["poll_staleness_ms"] >= 500  # half the 1 s interval, at least

    size = r["size"]
    assert set(size["boards"]) == {"ESP32_GENERIC", "RPI_PICO_W", "UNIX_SIM"}
    assert all(b["bytes"] > 0 for b in size["boards"].values())
    assert 0 < size["page_gz"] < size["page"]

    # The table: every figure has a row, the budgets are all there.
    figures = [row[0] for row in r["rows"]]
    for name in FIGURES:
        assert any(f.startswith(name) for f in figures), (name, figures)
    assert len(r["budgets"]) == 6  # heap per update: at 1 and at 4 clients
    assert all(isinstance(b["met"], bool) for b in r["budgets"])

    # Memory on three targets: the 32-bit ones where MicroPython's source is there.
    targets = r["targets"]
    assert set(targets["targets"]) | set(targets["skipped"]) == {"mpy", "unix32", "frozen"}
    assert "mpy" in targets["targets"]
    if unix32.missing() is None:
        assert not targets["skipped"], targets["skipped"]
    for name, t in targets["targets"].items():
        assert t["at_rest"] > 0 and t["per_client"] > 0 and t["heap"]["kib"], (name, t)
        assert t["password_at_rest"] > t["at_rest"], (name, t)
    assert "## Memory on three targets" in run.stdout

    # MQTT (issue 14): beside the bare publisher, through Mosquitto, where it is installed.
    m = r["mqtt"]
    if mosquitto_command() is None:
        assert m["skipped"], m
    else:
        lat = m["latency"]
        assert lat["firmware"]["n"] == lat["floor"]["n"] == lat["rounds"] > 0, lat
        assert lat["clock_bracketed"] == lat["rounds"], lat  # edges on the host's clock
        steps = m["throughput"]["steps"]
        assert steps and steps[-1]["target"] is None, steps
        assert any(s["ok"] for s in steps), steps
        for step in steps:
            if step["ok"]:  # every event at the subscriber, every record in the log
                assert step["mqtt_events"] == step["records"] == step["count"], step
        assert m["heap"]["kib"], m["heap"]
        assert len(r["mqtt_budgets"]) == 5, r["mqtt_budgets"]  # at rest, per change: 64-bit
        assert all(isinstance(b["met"], bool) for b in r["mqtt_budgets"])
        for name, t in targets["targets"].items():
            assert t["mqtt"]["at_rest"] > t["at_rest"], (name, t["mqtt"])
        assert "## MQTT (issue 14)" in run.stdout

    # Updates over the network (issue 17): the app's bundle confirmed, beside make deploy.
    o = r["ota"]
    count, size = o["files"]
    up = o["update"]
    assert up["bundle_bytes"] > size > 0 and count > 0, o["files"]
    for n in up["rounds"]:  # each version answered, then served, then confirmed
        assert 0 < n["answer"] < n["serving"] < n["confirmed"], up
        assert n["confirmed"] - n["serving"] >= up["confirm_s"], up
    if virtualboard.missing() is None:
        dep = o["deploy"]
        assert dep["seconds"] > 0 and dep["files"] == count + 3, dep  # and the loader's
        assert "%d copied, 0 unchanged" % dep["files"] in dep["said"], dep
    else:
        assert o["deploy"]["skipped"], o["deploy"]
    for heap in o["heap"]["rounds"]:
        assert heap["readings"] > 10 and heap["idle_readings"] > 10, heap
        assert heap["peak"] > heap["idle_median"] > 0, heap
        for client in heap["clients"]:  # 2 clients; each flip's report got or lost
            assert 0 < client["reports"] <= heap["flips"], heap
            assert client["reports"] + client["lost"] == heap["flips"], heap
    assert len(heap["clients"]) == 2
    assert 0 < o["heap"]["code"] < o["heap"]["beyond_idle"], o["heap"]  # measured apart
    assert len(r["ota_budgets"]) == 3, r["ota_budgets"]
    assert "## Updates over the network (issue 17)" in run.stdout

    # Analog inputs, PWM outputs and buttons (issue 18): each figure beside its floor.
    k = r["kinds"]
    cpu = k["sampling"]
    for kind in ("digital", "analog"):
        for window in cpu["windows"][kind]:
            assert window["wall_s"] > 0.5 and window["cpu_s"] >= 0, window
            assert window["changes"] >= 2, window  # the levels moved in every window
            assert 0 <= window["percent"] < 100, window
    assert all(w["updates"] > 0 for w in cpu["windows"]["analog"]), cpu  # sampled, told
    assert all(w["updates"] == 0 for w in cpu["windows"]["digital"]), cpu
    button = k["button"]
    assert button["debounce_ms"] == 50, button  # logic/button.py's default
    assert button["events"]["n"] == 2 * button["floor"]["n"] == 2 * button["rounds"] > 0
    assert button["clock_bracketed"] == button["rounds"], button  # one clock
    assert set(button["by_code"]) <= {"1000", "1002", "1004"} and "1002" in button["by_code"]
    assert button["events"]["p50"] > 0 and button["floor"]["p50"] > 0, button
    pwm = k["pwm"]
    assert pwm["at_pin"] == pwm["rounds"] == pwm["round_trip"]["n"] == pwm["floor"]["n"] > 0
    assert pwm["round_trip"]["p50"] > 0 and pwm["floor"]["p50"] > 0, pwm
    assert len(r["kinds_budgets"]) == 3, r["kinds_budgets"]  # CPU, button p99, PWM
    assert all(isinstance(b["met"], bool) for b in r["kinds_budgets"])
    assert "## Analog inputs, PWM outputs and buttons (issue 18)" in run.stdout

    # The README's headline figures (a full run writes them between its markers).
    lines = bench_report.readme_lines(r)
    assert lines.count("\n- ") == 4 and "nan" not in lines, lines
    readme = (ROOT / "README.md").read_text()
    assert bench_report.README_START in readme and bench_report.README_END in readme

    # The report: terminal and file carry the same table, the file the methods too.
    md = out_md.read_text()
    assert "| Figure | Measured |" in run.stdout and "| Figure | Measured |" in md
    assert "## How each figure is measured" in md
    assert "QUICK" in md
