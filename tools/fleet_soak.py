"""The fleet soak: boards on one broker through broker restarts and a killed board, with
every transition accounted for at a subscriber (`make fleet-soak`; docs/MQTT.md).

    python tools/fleet_soak.py [--boards 8] [--transitions 2000] [--rate 30] [--seed 0]

`soak(run, transitions, seed, rate)` takes a started fleet_run.FleetRun (its boards
started with debounce_ms=0) and drives `transitions` input transitions on each board
through its control port (`set <io> <level>`, each IO to the level it does not have,
`rate` a second per board), while one subscriber (paho-mqtt) takes every `event` and
`status`. On the way, once every board has made a quarter, a half and three quarters
of its transitions (each waits there until the disruption begins, then goes on during it):

- the broker is restarted (it keeps nothing: every board reconnects and publishes its
  status, state and IOs again; the subscriber reconnects too);
- one board is killed with SIGKILL right after a transition (the broker publishes its
  will, `offline`), then started again with the same state folder: the same node id,
  a new boot;
- the broker is restarted again.

It raises SoakFailure, saying what is wrong, unless all of this holds at the end:

- **Every transition is accounted for, exactly.** Per board and per boot, the `seq`s
  the subscriber holds are exactly 1..D for the D transitions driven, each with the IO
  and level driven as the seq-th transition: received as an `event`, or, where the
  subscriber saw a gap (a seq above one it never got), read back from the board's
  `GET /log?since=` while the ring still held it (a `{"lost":N}` there fails the run).
  A duplicate (an event sent again with DUP after a reconnect) must equal the first.
- **The killed board's first boot**: its event log was in RAM and is gone. What the
  subscriber received (or recovered after a gap) before the kill counts, and must be
  exactly seq 1..k, in order with what was driven; the D-k transitions after k are
  those the board had not yet got to the broker when it died. They are counted
  (`lost_in_kill`), never read back: nothing holds them any more. A boot is told
  apart by the will: the subscriber's events for a node after its `offline` are the
  next boot's (the broker delivers what it received from the dead connection before
  the will it publishes for it).
- Every retained `io/<h>` equals the pin (`get <h>` on the control port), and every
  retained `state` has the DIP switches the pins say (its seq: at least the last DIP
  transition's, at most the last transition's: `state` goes out on a DIP change and
  at every connect); every retained `status` is `online`; the killed board's
  `offline` (its will) was seen; no simulator printed a Traceback. (Mosquitto also
  publishes the will of every board still connected when it stops: a broker restart
  shows `offline` for boards that are fine. Those are counted, `offline_seen`.)

Returns the figures (printed by main): transitions, events received, recovered
through /log, duplicates, lost in the kill, seconds.
"""

import argparse
import asyncio
import json
import queue
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_run import FleetRun  # noqa: E402
from mqttbroker import Observer, retained  # noqa: E402
from simclient import AsyncControl, http_get_async  # noqa: E402

# Inputs driven: every IO of UNIX_SIM (DIP 1-8 and GPIO 8-15, all inputs at boot).
IOS = range(16)
HEX = "0123456789abcdef"
# Transitions a second per board. The board keeps 256 records: at 30 a second a gap
# (the broker away, the backoff until the board is back) may last 8 s before the ring
# overruns and a {"lost":N} fails the run.
RATE = 30
# The subscriber looks for gaps (and reads them from /log) this often.
RECOVER_EVERY_S = 0.25
# How long any single wait may take (a reconnect after a broker restart waits a
# random backoff of up to 1 s, then 2 s, ...).
STEP_TIMEOUT_S = 20
# At the end, the subscriber waits for the last events this long after the last came.
SETTLE_S = 1.0


class SoakFailure(AssertionError):
    pass


def check(condition, message, *args):
    if not condition:
        raise SoakFailure(message % args if args else message)


# --- the subscriber's ledger (pure: no MQTT) ----------------------------------------------
class Ledger:
    """What one subscriber got, per (node, boot): boots are counted from 0 and a node's
    next begins at its `offline` (the will)."""

    def __init__(self, prefix="pinsock"):
        self.prefix = prefix + "/"
        self.lock = threading.Lock()
        self.boot = {}  # node -> its boot number, as the subscriber tells them apart
        self.received = {}  # (node, boot) -> {seq: (io, level)}, from `event`
        self.recovered = {}  # (node, boot) -> {seq: (io, level)}, from /log
        self.messages = 0
        self.duplicates = 0
        self.mismatched = []  # duplicates that differ from the first, unreadable events
        # node -> `offline` messages (not retained) seen. Mosquitto publishes the will
        # of every board still connected when it stops, so a broker restart shows
        # `offline` too: only the first after expect_will() is a killed board's.
        self.offline = {}
        self.dying = set()  # nodes killed whose will is still to come
        self.online = {}  # node -> `online` messages seen (retained or not)
        self.last_at = time.monotonic()

    def take(self, topic, payload, kept):
        """One message on <prefix>/<node>/event or /status."""
        if not topic.startswith(self.prefix):
            return
        node, _, leaf = topic[len(self.prefix):].partition("/")
        with self.lock:
            self.messages += 1
            self.last_at = time.monotonic()
            if leaf == "status":
                if payload == "online":
                    self.online[node] = self.online.get(node, 0) + 1
                elif payload == "offline" and not kept:
                    self.offline[node] = self.offline.get(node, 0) + 1
                    if node in self.dying:  # the will of the boot the soak killed
                        self.dying.discard(node)
                        self.boot[node] = self.boot.get(node, 0) + 1
            elif leaf == "event":
                key = (node, self.boot.get(node, 0))
                try:
                    record = json.loads(payload)
                except ValueError:
                    self.mismatched.append((key, payload))  # not a record: fails the run
                    return
                got = self.received.setdefault(key, {})
                value = (int(record["io"], 16), int(record["v"]))
                if record["seq"] in got:
                    self.duplicates += 1
                    if got[record["seq"]] != value:
                        self.mismatched.append((key, record))
                else:
                    got[record["seq"]] = value

    def expect_will(self, node):
        """`node` is being killed: its next `offline` ends its boot."""
        with self.lock:
            self.dying.add(node)

    def holes(self, key, upto=None):
        """Seqs below the highest received (or up to `upto`) held neither way."""
        with self.lock:
            got = self.received.get(key, {})
            done = self.recovered.get(key, {})
            top = upto if upto is not None else max(got, default=0)
            return [seq for seq in range(1, top + 1) if seq not in got and seq not in done]

    def recover(self, key, since, records):
        """Take the records of GET /log?since=<since> (a list of dicts) for the holes of
        `key`; returns how many filled one. A {"lost":N} covering a hole fails the run."""
        holes = set(self.holes(key, max([r.get("seq", 0) for r in records], default=0)))
        filled = 0
        with self.lock:
            done = self.recovered.setdefault(key, {})
            for record in records:
                if "lost" in record:
                    lost = set(range(since + 1, since + 1 + record["lost"]))
                    check(not lost & holes, "%s: /log lost %d records the subscriber never"
                          " got (the ring overran during a gap): %r", key, record["lost"],
                          sorted(lost & holes)[:10])
                    continue
                if record["seq"] in holes:
                    done[record["seq"]] = (int(record["io"], 16), int(record["v"]))
                    filled += 1
        return filled

    def held(self, key):
        """{seq: (io, level)}: received or recovered."""
        with self.lock:
            both = dict(self.recovered.get(key, {}))
            both.update(self.received.get(key, {}))
            return both

    def account(self, key, driven, whole=True):
        """Check the boot `key` against `driven` (the (io, level) of each transition, in
        order). whole: every one must be held; else (a killed boot) a prefix 1..k.
        Returns (received, recovered only, lost)."""
        held = self.held(key)
        with self.lock:
            received = set(self.received.get(key, {}))
        seqs = sorted(held)
        check(seqs == list(range(1, len(seqs) + 1)), "%s: the seqs held have holes or do"
              " not start at 1: %s...", key, [s for s in range(1, len(driven) + 1)
                                               if s not in held][:10])
        check(len(seqs) <= len(driven), "%s: %d seqs held, %d transitions driven", key,
              len(seqs), len(driven))
        if whole:
            check(len(seqs) == len(driven), "%s: %d of %d transitions held; missing %s...",
                  key, len(seqs), len(driven), list(range(len(seqs) + 1, len(driven) + 1))[:10])
        for seq in seqs:
            check(held[seq] == driven[seq - 1], "%s: seq %d is io %x to %d, driven: io %x to"
                  " %d", key, seq, held[seq][0], held[seq][1], *driven[seq - 1])
        return len(received), len(set(held) - received), len(driven) - len(seqs)


# --- the run --------------------------------------------------------------------------------
class Driver:
    """Drives one board's transitions through its control port, paced."""

    def __init__(self, run, index, transitions, rate, rng):
        self.run = run
        self.index = index
        self.sim = run.sims[index]
        self.node = run.nodes[index]
        self.transitions = transitions
        self.rate = rate
        self.rng = rng
        self.boot = 0
        self.driven = {0: []}  # boot -> [(io, level), ...] in the order driven
        self.done = 0
        self.pause_wanted = asyncio.Event()
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self.at_gate = -1  # the gate step it waits at (or has passed)

    async def levels(self, control):
        return {io: int(await control.ask("get %d" % io)) for io in IOS}

    async def drive(self, gates):
        """`gates`: {step: asyncio.Event}: before that step, wait for the event (every
        board reaches the step before the next disruption begins)."""
        control = await AsyncControl.open(self.sim.control_port, STEP_TIMEOUT_S)
        level = await self.levels(control)
        started = time.monotonic()
        for step in range(self.transitions):
            if step in gates:
                self.at_gate = step
                await asyncio.wait_for(gates[step].wait(), 4 * STEP_TIMEOUT_S)
                started = time.monotonic() - step / self.rate
            wait = started + step / self.rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            io = self.rng.choice(IOS)
            new = 1 - level[io]
            answer = await control.ask("set %d %d" % (io, new))
            check(answer == "ok", "%s: set %d %d answered %r", self.node, io, new, answer)
            level[io] = new
            self.driven[self.boot].append((io, new))
            self.done += 1
            if self.pause_wanted.is_set():  # right after a transition: killed now
                control.close()
                self.paused.set()
                await asyncio.wait_for(self.resume.wait(), 4 * STEP_TIMEOUT_S)
                self.pause_wanted.clear()
                self.resume.clear()
                control = await AsyncControl.open(self.sim.control_port, STEP_TIMEOUT_S)
                level = await self.levels(control)  # a new boot: the pins as at boot
                started = time.monotonic() - (step + 1) / self.rate
        self.at_gate = self.transitions
        control.close()

    async def pause(self):
        """Wait until the driver has stopped (after a transition: pause_wanted)."""
        try:
            await asyncio.wait_for(self.paused.wait(), STEP_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise SoakFailure("%s: its driver did not pause within %d s (%d of %d done)"
                              % (self.node, STEP_TIMEOUT_S, self.done, self.transitions))


class Soak:
    def __init__(self, run, transitions, seed, rate, log):
        self.run = run
        self.transitions = transitions
        self.rate = rate
        self.log = log
        self.rng = random.Random(seed)
        self.ledger = Ledger(run.prefix)
        self.drivers = [Driver(run, i, transitions, rate, random.Random(seed * 1000 + i))
                        for i in range(len(run.sims))]
        self.victim = self.drivers[self.rng.randrange(len(self.drivers))]
        self.stopping = False
        self.restarts = 0
        self.will_seen = False
        self.log_reads = 0

    # --- the subscriber -------------------------------------------------------------
    def subscribe(self):
        prefix = self.run.prefix
        self.watch = Observer(self.run.broker.port, [prefix + "/+/event", prefix + "/+/status"],
                              client_id="fleet-soak")
        self.watch.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self):
        while not self.stopping:
            try:
                topic, payload, kept = self.watch.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            self.ledger.take(topic, payload, kept)

    def online_count(self):
        with self.ledger.lock:
            return dict(self.ledger.online)

    async def all_online_since(self, before, nodes):
        """Wait until each of `nodes` has said `online` again since the `before` counts."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            now = self.online_count()
            late = [n for n in nodes if now.get(n, 0) <= before.get(n, 0)]
            if not late:
                return
            check(time.monotonic() < deadline, "not online again within %d s: %s",
                  STEP_TIMEOUT_S, late)
            await asyncio.sleep(0.05)

    # --- reading gaps back from /log ------------------------------------------------
    async def read_log(self, driver, key, upto=None):
        holes = self.ledger.holes(key, upto)
        if not holes:
            return 0
        since = holes[0] - 1
        status, _, body = await http_get_async(driver.sim.http_port, "/log?since=%d" % since,
                                               timeout=STEP_TIMEOUT_S)
        check(status == 200, "%s: GET /log answered %d", driver.node, status)
        self.log_reads += 1
        return self.ledger.recover(key, since, json.loads(body))

    def key(self, driver):
        with self.ledger.lock:
            return (driver.node, self.ledger.boot.get(driver.node, 0))

    async def recoverer(self):
        while not self.stopping:
            await asyncio.sleep(RECOVER_EVERY_S)
            for driver in self.drivers:
                if driver.pause_wanted.is_set() or not driver.sim.alive():
                    continue
                key = self.key(driver)
                if key[1] != driver.boot:
                    continue  # the will not seen yet
                await self.read_log(driver, key)

    # --- what goes wrong on the way ---------------------------------------------------
    async def restart_broker(self, gate):
        before = self.online_count()
        gate.set()  # the boards go on: what they do while the broker is away is a gap
        await asyncio.to_thread(self.run.broker.restart)
        self.restarts += 1
        alive = [d.node for d in self.drivers if d.sim.alive()]
        await self.all_online_since(before, alive)
        self.log("fleet soak: broker restarted (%d), %d boards back online"
                 % (self.restarts, len(alive)))

    async def kill_and_restart(self, gate):
        victim = self.victim
        # A gap seen before the kill is read back while the board holds it; then the
        # board is killed right after its next transition, as a board loses power:
        # what it had not yet got to the broker is lost with it.
        await self.read_log(victim, (victim.node, victim.boot))
        victim.pause_wanted.set()
        gate.set()
        await victim.pause()
        self.ledger.expect_will(victim.node)
        victim.sim.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.sim.proc.wait, 5)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            with self.ledger.lock:
                if self.ledger.boot.get(victim.node, 0) > victim.boot:
                    self.will_seen = True
                    break
            check(time.monotonic() < deadline, "%s: no offline (the will) within %d s",
                  victim.node, STEP_TIMEOUT_S)
            await asyncio.sleep(0.05)
        before = self.online_count()
        await asyncio.to_thread(victim.sim.start)
        victim.boot += 1
        victim.driven[victim.boot] = []
        await self.all_online_since(before, [victim.node])
        self.log("fleet soak: %s killed after %d transitions, started again"
                 % (victim.node, len(victim.driven[0])))
        victim.resume.set()

    def gate_steps(self):
        return [int(self.transitions * f) for f in (0.25, 0.5, 0.75)]

    async def disruptions(self, gates):
        """At each gate, once every board has reached it: open it, and disrupt."""
        actions = (self.restart_broker, self.kill_and_restart, self.restart_broker)
        for step, action in zip(self.gate_steps(), actions):
            deadline = time.monotonic() + 4 * STEP_TIMEOUT_S
            while any(d.at_gate < step for d in self.drivers):
                check(time.monotonic() < deadline, "boards not at transition %d: %s", step,
                      [d.node for d in self.drivers if d.at_gate < step])
                await asyncio.sleep(0.02)
            await action(gates[step])

    # --- the whole run -------------------------------------------------------------------
    async def main(self):
        self.subscribe()
        started = time.monotonic()
        recoverer = asyncio.create_task(self.recoverer())
        try:
            gates = {step: asyncio.Event() for step in self.gate_steps()}
            drivers = [asyncio.create_task(d.drive(gates)) for d in self.drivers]
            await asyncio.gather(self.disruptions(gates), *drivers)
            drive_s = time.monotonic() - started
            # The last events: until every board's are in, or none has come for SETTLE_S.
            deadline = time.monotonic() + STEP_TIMEOUT_S
            while time.monotonic() < deadline:
                with self.ledger.lock:
                    idle = time.monotonic() - self.ledger.last_at
                    complete = all(len(self.ledger.received.get((d.node, d.boot), {}))
                                   >= len(d.driven[d.boot]) for d in self.drivers)
                if complete or idle > SETTLE_S:
                    break
                await asyncio.sleep(0.05)
        finally:
            self.stopping = True
            recoverer.cancel()
        # What the subscriber never got (the tail after the last gap): from /log.
        for d in self.drivers:
            await self.read_log(d, (d.node, d.boot), len(d.driven[d.boot]))
        figures = await self.verify()
        figures["seconds"] = round(drive_s, 1)
        figures["total_seconds"] = round(time.monotonic() - started, 1)
        return figures

    async def verify(self):
        ledger = self.ledger
        check(not ledger.mismatched, "duplicates that differ, or events that are not"
              " records: %r", ledger.mismatched[:5])
        received = recovered = lost = 0
        for d in self.drivers:
            check(ledger.boot.get(d.node, 0) == d.boot, "%s: the subscriber counts %d boots"
                  " ends, the soak killed it %d times", d.node, ledger.boot.get(d.node, 0),
                  d.boot)
            for boot, driven in d.driven.items():
                got, back, gone = ledger.account((d.node, boot), driven,
                                                 whole=boot == d.boot)
                received += got
                recovered += back
                lost += gone
        # The retained truth against the pins.
        port = self.run.broker.port
        prefix = self.run.prefix
        held = await asyncio.to_thread(retained, port, prefix + "/#", 1.0)
        for d in self.drivers:
            control = await AsyncControl.open(d.sim.control_port, STEP_TIMEOUT_S)
            pins = [int(await control.ask("get %d" % io)) for io in IOS]
            control.close()
            base = "%s/%s/" % (prefix, d.node)
            for io in IOS:
                topic = base + "io/" + HEX[io]
                check(held.get(topic) == str(pins[io]), "%s is %r retained, the pin is %d",
                      topic, held.get(topic), pins[io])
            state = json.loads(held.get(base + "state", "null") or "null")
            check(state is not None, "%s: no retained state", d.node)
            want = {"dip%d" % (io + 1): "On" if pins[io] == 0 else "Off" for io in range(8)}
            # `state` goes out when a DIP switch changes (and at every connect): its seq
            # is at least the last DIP transition's, at most the last transition's.
            driven = d.driven[d.boot]
            last_dip = max([n + 1 for n, (io, _) in enumerate(driven) if io < 8], default=0)
            check(state["dipSwitches"] == want and last_dip <= state["seq"] <= len(driven),
                  "%s: retained state %r; the pins say %r, seq %d to %d", d.node, state, want,
                  last_dip, len(driven))
            check(held.get(base + "status") == "online", "%s: retained status %r", d.node,
                  held.get(base + "status"))
        check(self.will_seen, "%s: its will (offline) was not seen", self.victim.node)
        for d in self.drivers:
            output = "".join(d.sim.output)
            check("Traceback" not in output and "MemoryError" not in output,
                  "%s printed an error:\n%s", d.node, output[-2000:])
        driven = sum(len(v) for d in self.drivers for v in d.driven.values())
        check(received + recovered + lost == driven, "%d received + %d recovered + %d lost"
              " is not the %d driven", received, recovered, lost, driven)
        return {"boards": len(self.drivers), "transitions": driven,
                "per_board": self.transitions, "events_received": received,
                "recovered_through_log": recovered, "duplicates": ledger.duplicates,
                "lost_in_kill": lost, "killed": self.victim.node,
                "broker_restarts": self.restarts, "log_reads": self.log_reads,
                "messages": ledger.messages,
                "offline_seen": sum(ledger.offline.values())}


def soak(run, transitions=2000, seed=0, rate=RATE, log=print):
    """Run the soak on a started FleetRun; its figures (raises SoakFailure)."""
    job = Soak(run, transitions, seed, rate, log)
    try:
        return asyncio.run(job.main())
    finally:
        job.stopping = True
        job.watch.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=8)
    parser.add_argument("--transitions", type=int, default=2000, help="per board")
    parser.add_argument("--rate", type=float, default=RATE,
                        help="transitions a second per board (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleet-soak-") as folder:
        with FleetRun(folder, boards=args.boards, debounce_ms=0).start() as run:
            try:
                figures = soak(run, args.transitions, args.seed, args.rate)
            except SoakFailure as exc:
                print("fleet soak: FAILED: %s" % exc, flush=True)
                for node, sim in zip(run.nodes, run.sims):  # what each board said last
                    print("%s (%s): %s" % (node, "running" if sim.alive() else "stopped",
                                           " | ".join(line.strip() for line in sim.output[-4:])))

                return 1
    print("fleet soak: %(boards)d boards, %(transitions)d transitions in %(seconds)s s"
          " (%(total_seconds)s s with the checks), %(broker_restarts)d broker restarts,"
          " %(killed)s killed" % figures)
    print("fleet soak: %(events_received)d events received, %(recovered_through_log)d"
          " recovered through /log, %(duplicates)d duplicates, %(lost_in_kill)d lost in the"
          " kill (unsent when it died)" % figures)
    print("fleet soak: figures %s" % json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
