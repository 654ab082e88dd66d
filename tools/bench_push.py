"""Push latency: from a control-port `set` being acknowledged to the switch report
arriving at a WebSocket client. A benchmark, not a test: it prints figures.

    python tools/bench_push.py [--rounds 300] [--debounce-ms 0] [--quick]

It starts the simulator (build/UNIX_SIM, .mpy, on the unix port) with the given
debounce, keeps one control connection and one WebSocket open, and flips DIP switch 1
`rounds` times. For each flip it records, on the host's monotonic clock:
  sent    the `set` line is written to the control port
  acked   the `ok` answer is read
  pushed  the switch report showing the new state is read from the WebSocket
and prints percentiles of pushed - acked (the figure the README quotes) and of
pushed - sent (the whole hop, including the control port's own).
"""

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
from simproc import Sim  # noqa: E402
from websockets.sync.client import connect  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(rounds, debounce_ms):
    build.build("UNIX_SIM")
    with tempfile.TemporaryDirectory() as state:
        sim = Sim(state, debounce_ms=debounce_ms).start()
        try:
            ctl = socket.create_connection(("127.0.0.1", sim.control_port), timeout=5)
            ctl_file = ctl.makefile("rb")
            after_ack, after_send = [], []
            with connect(sim.ws_url()) as ws:
                json.loads(ws.recv(timeout=5))  # the report on connect
                for i in range(rounds):
                    level = i % 2  # 0 = switch on (active low), 1 = off
                    want = "On" if level == 0 else "Off"
                    sent = time.perf_counter()
                    ctl.sendall(b"set 0 %d\n" % level)
                    answer = ctl_file.readline()
                    acked = time.perf_counter()
                    if answer.strip() != b"ok":
                        raise SystemExit("control port answered %r" % answer)
                    while True:
                        msg = json.loads(ws.recv(timeout=5))
                        if msg.get("dipSwitches", {}).get("dip1") == want:
                            break
                    pushed = time.perf_counter()
                    after_ack.append((pushed - acked) * 1000)
                    after_send.append((pushed - sent) * 1000)
            ctl.close()
        finally:
            sim.stop()
    return after_ack, after_send


def summary(name, values):
    return "%-34s p50 %6.2f ms   p90 %6.2f ms   p99 %6.2f ms   max %6.2f ms" % (
        name, statistics.median(values), percentile(values, 90), percentile(values, 99),
        max(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--debounce-ms", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 rounds: checks the harness")
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    after_ack, after_send = measure(rounds, args.debounce_ms)
    print("push latency, UNIX_SIM, debounce %d ms, %d flips of DIP 1, 1 client" % (
        args.debounce_ms, rounds))
    print(summary("set acknowledged -> report", after_ack))
    print(summary("set sent -> report", after_send))
    return 0


if __name__ == "__main__":
    sys.exit(main())
