"""The MQTT figures of `make bench` (issue 14), each beside a floor or a budget:

    latency     a transition (the control port's `tset`) to a paho-mqtt subscriber of a
                real Mosquitto (tools/mqttbroker.py), p50 and p99, beside the floor: a
                bare unix-port asyncio publisher (tools/bench_floors/mqtt_floor.py)
                triggered the same way, through the same broker, to the same
                subscriber, round by round with the firmware
    throughput  with MQTT on and 4 WebSocket clients, pipelined `set` lines as figure
                3 drives them: a step counts when the event log holds every transition
                and every client has the newest report (figure 3's test) and the
                subscriber has the `event` of every seq, at QoS 1
    memory      the smallest heap serving 4 WebSocket clients through the soak with
                MQTT connected (64-bit port); MQTT's cost at rest and per change on the
                three targets is tools/bench_targets.py's (its mqtt figures)

tools/bench.py runs it; without mosquitto it is skipped, saying why.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import soak  # noqa: E402
from mqttbroker import Broker, mosquitto_command  # noqa: E402
from sim import micropython_command  # noqa: E402
from simclient import Control, free_port  # noqa: E402
from simproc import Sim, stop_process  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLOOR_SRC = ROOT / "tools" / "bench_floors" / "mqtt_floor.py"
FLOOR_TOPIC = "floor/event"
EVENT_FILTER = "pinsock/+/event"
# The broker keeps every QoS 1 message for a subscriber that is behind, and sends
# without a window: what is lost is the board's doing, not Mosquitto's default limits
# (1000 queued, 20 in flight).
BROKER_OPTIONS = ("max_queued_messages 0", "max_inflight_messages 0")
WAIT_S = 10  # as tools/bench.py: every wait is bounded
# Issue 14's budgets.
BUDGET_LATENCY_P99_RATIO = 2.0
BUDGET_THROUGHPUT = 1000
BUDGET_AT_REST_KB = 8.0  # MQTT connected, at rest, over the same board without it
BUDGET_PER_CHANGE = 0  # bytes a change allocates with MQTT beyond the WebSocket path
BUDGET_HEAP_KIB = 128  # 4 WebSocket clients and MQTT through the soak


def missing():
    """Why the MQTT figures cannot be measured here, or None."""
    if mosquitto_command() is None:
        return "mosquitto is not installed (`bash tools/setup_system.sh` installs it)"
    return None


def mqtt_config(port):
    """config.json's mqtt block for the broker on `port` (defaults otherwise: Home
    Assistant discovery on, as a board has it)."""
    return {"mqtt": {"host": "127.0.0.1", "port": port}}


def write_config(state, port):
    Path(state, "config.json").write_text(json.dumps(mqtt_config(port)))


def wait_connected(sim, deadline_s=WAIT_S):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any("mqtt: connected" in line for line in sim.output):
            return
        time.sleep(0.02)
    raise RuntimeError("the simulator did not connect to the broker:\n"
                       + "".join(sim.output[-20:]))


class Subscriber:
    """A paho-mqtt 2.x client subscribed at QoS 1 to `topics`: for each topic, every
    event's seq and the host's CLOCK_MONOTONIC (µs) when paho handed it over."""

    def __init__(self, port, topics):
        import paho.mqtt.client as paho

        self.got = {}  # topic filter's match -> [(seq, t_us)]
        self.changed = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="bench-%d" % free_port())
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        if not subscribed.wait(WAIT_S):
            raise RuntimeError("the subscriber did not subscribe")

    def _on_message(self, client, userdata, msg):
        t = bench.now_us()
        seq = json.loads(msg.payload)["seq"]
        with self.changed:
            self.got.setdefault(msg.topic, []).append((seq, t))
            self.changed.notify_all()

    def topic_of(self, prefix, suffix):
        """The one topic received that starts and ends so (the board's node id)."""
        for topic in self.got:
            if topic.startswith(prefix) and topic.endswith(suffix):
                return topic
        return None

    def count(self, topic):
        with self.changed:
            return len(self.got.get(topic, ()))

    def wait_count(self, topic, n, deadline_s=WAIT_S):
        """The n-th message (seq, t_us) on topic, or TimeoutError."""
        deadline = time.monotonic() + deadline_s
        with self.changed:
            while len(self.got.get(topic, ())) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s: %d of %d messages" % (
                        topic, len(self.got.get(topic, ())), n))
                self.changed.wait(left)
            return self.got[topic][n - 1]

    def wait_seq(self, topic, seq, deadline):
        """True once a message with `seq` (or later) came on topic before `deadline`."""
        with self.changed:
            while True:
                got = self.got.get(topic)
                if got and got[-1][0] >= seq:
                    return True
                if time.monotonic() > deadline:
                    return False
                self.changed.wait(0.05)

    def seqs_since(self, topic, seq0):
        with self.changed:
            return [s for s, _ in self.got.get(topic, ()) if s > seq0]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Floor:
    """tools/bench_floors/mqtt_floor.py on the unix port."""

    def __init__(self, broker_port):
        self.control_port = free_port()
        self.proc = subprocess.Popen(
            [micropython_command(), str(FLOOR_SRC), str(broker_port),
             str(self.control_port), FLOOR_TOPIC], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        ready = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(WAIT_S)
        if not ready or not ready[0].startswith("mqtt floor ready"):
            self.stop()
            raise RuntimeError("the MQTT floor did not start: %r" % ready)

    def stop(self):
        stop_process(self.proc)


def timed_round(ctl, sub, topic, n, level):
    """One `tset 0 <level>` on ctl: µs from the edge to the subscriber's n-th message on
    topic, and whether the edge time fell between sending and the answer."""
    sent = bench.now_us()
    answer = ctl.ask("tset 0 %d" % level)
    acked = bench.now_us()
    word, edge = answer.split()
    if word != "ok":
        raise RuntimeError("control port answered %r" % answer)
    edge = int(edge)
    _, received = sub.wait_count(topic, n)
    return received - edge, sent <= edge <= acked


def latency(sim, floor, sub, rounds):
    """Transition to subscriber, the floor and the firmware in turn, round by round."""
    fw_ctl, floor_ctl = Control(sim.control_port), Control(floor.control_port)
    try:
        level = 1
        fw_topic = None
        fw, fl, bracketed = [], [], 0
        for n in range(1, rounds + 1):
            level ^= 1
            t, ok = timed_round(floor_ctl, sub, FLOOR_TOPIC, n, level)
            fl.append(t)
            if fw_topic is None:  # the first event names the board's topic
                fw_ctl.ask("tset 0 %d" % level)
                deadline = time.monotonic() + WAIT_S
                while fw_topic is None and time.monotonic() < deadline:
                    fw_topic = sub.topic_of("pinsock/", "/event")
                    time.sleep(0.01)
                if fw_topic is None:
                    raise RuntimeError("no event from the simulator")
                sub.wait_count(fw_topic, 1)
                level ^= 1
            t, ok2 = timed_round(fw_ctl, sub, fw_topic, n + 1, level)
            fw.append(t)
            bracketed += ok and ok2
        return {"firmware": bench.summary_ms(fw), "floor": bench.summary_ms(fl),
                "clock_bracketed": bracketed, "rounds": rounds, "topic": fw_topic,
                "level": level}
    finally:
        fw_ctl.close()
        floor_ctl.close()


def throughput(b, sub, topic, plan):
    """Figure 3 with MQTT on: each step also waits for the subscriber to have the event
    of every seq of it (QoS 1: none lost); its rate is to whichever came last, the
    last client's report or the last event at the subscriber."""
    clients = b.connect(4)
    readers = bench.Readers(clients)
    readers.start()
    steps = []

    def step(count, rate):
        seq0 = b.seq()
        start_us = bench.now_us()
        s = bench.throughput_step(b, readers, count, rate)
        deadline = time.monotonic() + WAIT_S + count / (rate or 1000)
        all_there = sub.wait_seq(topic, seq0 + count, deadline)
        seqs = sub.seqs_since(topic, seq0)
        with sub.changed:
            last = [t for q, t in sub.got.get(topic, ()) if q == seq0 + count]
        mqtt_s = ((last[0] if last else bench.now_us()) - start_us) / 1e6
        elapsed = max(mqtt_s, count / s["achieved"] if s["achieved"] else 0)
        s["mqtt_events"] = len(set(seqs))
        s["mqtt_in_order"] = seqs == list(range(seq0 + 1, seq0 + 1 + len(seqs)))
        s["mqtt_all"] = all_there and sorted(set(seqs)) == list(range(seq0 + 1,
                                                                       seq0 + count + 1))
        s["ws_achieved"] = s["achieved"]
        s["achieved"] = round(count / elapsed) if elapsed > 0 else 0
        s["ok"] = s["ok"] and s["mqtt_all"]
        s["kept_pace"] = rate is None or s["achieved"] >= 0.9 * rate
        return s

    try:
        for rate in plan.rates:
            count = max(50, int(rate * plan.step_seconds))
            s = step(min(count, bench.MAX_STEP), rate)
            steps.append(s)
            if not (s["ok"] and s["kept_pace"]):
                break
        steps.append(step(plan.flat_out, None))
    finally:
        readers.stop.set()
        readers.join(2)
    if readers.error:
        raise readers.error
    sustained = max([s["achieved"] if s["target"] is None else min(s["achieved"], s["target"])
                     for s in steps if s["ok"]] or [0])
    return {"sustained": sustained, "steps": steps}


def soak_passes(heap_kib, transitions, broker_port):
    """(passed, why): the soak of figure 5 with MQTT connected to the broker."""
    with tempfile.TemporaryDirectory() as state:
        write_config(state, broker_port)
        sim = Sim(state, heapsize="%dK" % heap_kib, max_clients=4, debounce_ms=0)
        try:
            sim.start()
            wait_connected(sim)
        except (AssertionError, RuntimeError) as exc:
            sim.stop()
            return False, "did not start: " + str(exc)[-200:]
        try:
            return sim.verdict(lambda sim: soak.soak(sim, clients=4, transitions=transitions,
                                                     seed=0), tail=200)
        finally:
            sim.stop()


def run(plan, log=print):
    """Every MQTT figure, or {"skipped": why}."""
    why = missing()
    if why:
        return {"skipped": why}
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        broker = Broker(Path(folder) / "broker", options=BROKER_OPTIONS).start()
        floor = b = sub = None
        try:
            sub = Subscriber(broker.port, [FLOOR_TOPIC, EVENT_FILTER])
            floor = Floor(broker.port)
            state = Path(folder) / "sim"
            state.mkdir()
            write_config(state, broker.port)
            b = bench.Bench(state)
            wait_connected(b.sim)
            log("mqtt: latency, transition to subscriber (beside a bare publisher) ...")
            out["latency"] = latency(b.sim, floor, sub, plan.pushes)
            b.levels[0] = out["latency"].pop("level")  # where the rounds left DIP 1
            log("mqtt: throughput with 4 WebSocket clients ...")
            out["throughput"] = throughput(b, sub, out["latency"]["topic"], plan)
            output = "".join(b.sim.output)
            if not b.sim.alive() or "Traceback" in output:
                raise RuntimeError("the simulator failed during the MQTT figures:\n"
                                   + output[-2000:])
        finally:
            if sub:
                sub.close()
            if b:
                b.close()
            if floor:
                floor.stop()
        log("mqtt: smallest heap for 4 clients with MQTT (bisecting -X heapsize) ...")
        out["heap"] = bench.smallest_heap(
            plan, lambda kib, n: soak_passes(kib, n, broker.port))
        broker.stop()
    return out


def rows(m, targets):
    """(figure, measured, floor / compared with, ratio, budget, met) rows of the MQTT
    table; `targets`: tools/bench_targets.py's result (its mqtt figures)."""
    from bench_report import fmt_ms, met

    if m.get("skipped"):
        return []
    lat = m["latency"]
    fw, fl = lat["firmware"], lat["floor"]
    out = []
    for p, budget in (("p50", None), ("p99", BUDGET_LATENCY_P99_RATIO)):
        ratio = fw[p] / fl[p]
        out.append(("Transition to MQTT subscriber, " + p, fmt_ms(fw[p]),
                    "bare publisher %s %s" % (p, fmt_ms(fl[p])), "%.2f×" % ratio,
                    "≤ %g×" % budget if budget else "",
                    met(ratio <= budget) if budget else ""))
    tp = m["throughput"]
    out.append(("Throughput, MQTT QoS 1 and 4 WebSocket clients, 0 lost",
                "%d /s" % tp["sustained"], "", "", "≥ %d /s" % BUDGET_THROUGHPUT,
                met(tp["sustained"] >= BUDGET_THROUGHPUT)))
    mpy = (targets or {}).get("targets", {}).get("mpy", {}).get("mqtt")
    if mpy:
        adds = mpy["at_rest"] - mpy["base_at_rest"]
        out.append(("MQTT connected, at rest, adds (64-bit `.mpy`)", "%.1f KB" % (adds / 1000),
                    "", "", "≤ %g KB" % BUDGET_AT_REST_KB,
                    met(adds <= BUDGET_AT_REST_KB * 1000)))
        beyond = mpy["per_update"] - mpy["base_per_update"]
        out.append(("A change with MQTT allocates beyond the WebSocket path (64-bit)",
                    "%.0f B" % beyond, "", "", "%d B" % BUDGET_PER_CHANGE,
                    met(beyond <= BUDGET_PER_CHANGE)))
    heap = m["heap"]
    out.append(("Smallest heap, 4 clients and MQTT, soak (64-bit `.mpy`)",
                "%d KiB" % heap["kib"] if heap["kib"] else heap["note"], "", "",
                "≤ %d KiB" % BUDGET_HEAP_KIB,
                met(bool(heap["kib"]) and heap["kib"] <= BUDGET_HEAP_KIB)))
    return out


def budgets(table_rows):
    return [{"figure": row[0], "budget": row[4], "met": row[5] == "yes"}
            for row in table_rows if row[4]]


def details(m):
    from bench_report import fmt_ms

    lat = m["latency"]
    lines = ["- Transition to subscriber: the firmware p50 %s, p99 %s, mean %s; the bare "
             "publisher p50 %s, p99 %s, mean %s (%d rounds, each a floor sample then a "
             "firmware one; edge time between send and answer in %d of them)." % (
                 fmt_ms(lat["firmware"]["p50"]), fmt_ms(lat["firmware"]["p99"]),
                 fmt_ms(lat["firmware"]["mean"]), fmt_ms(lat["floor"]["p50"]),
                 fmt_ms(lat["floor"]["p99"]), fmt_ms(lat["floor"]["mean"]), lat["rounds"],
                 lat["clock_bracketed"])]
    steps = []
    for s in m["throughput"]["steps"]:
        steps.append("%s: %d transitions at %d/s (WebSocket clients %d/s), %s; %d of %d "
                     "events at the subscriber%s" % (
                         "%d/s" % s["target"] if s["target"] else "flat out", s["count"],
                         s["achieved"], s["ws_achieved"],
                         "all in the log, in order" if s["records"] == s["count"]
                         and s["lost"] == 0 and s["in_order"] else
                         "%d in the log, %d lost" % (s["records"], s["lost"]),
                         s["mqtt_events"], s["count"],
                         "" if s["mqtt_in_order"] else ", not in order"))
    lines.append("- MQTT throughput steps: " + "; ".join(steps) + ".")
    heap = m["heap"]
    lines.append("- Smallest heap with MQTT, bisection: " + ", ".join(
        "%d KiB %s" % (t["kib"], "pass" if t["ok"] else "fail") for t in heap["tried"]) + ".")
    return "\n".join(lines)


def section(m, targets):
    """The report's MQTT section (Markdown)."""
    from bench_report import markdown_table

    if m.get("skipped"):
        return "## MQTT (issue 14)\n\nNot measured: %s." % m["skipped"]
    header = ("Figure", "Measured", "Floor / compared with", "Ratio", "Budget", "Met")
    return "\n\n".join(["## MQTT (issue 14)", markdown_table(header, rows(m, targets)),
                        details(m)])


if __name__ == "__main__":
    quick = "--quick" in sys.argv or os.environ.get("CI", "").lower() == "true"
    bench.pin_to_one_cpu()
    result = run(bench.Plan(quick), log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1, default=str))
