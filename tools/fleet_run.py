"""A fleet on this computer: Mosquitto on 127.0.0.1 and simulated boards pointed at it,
each with its own state folder, ports and unique id (`make fleet`; docs/MQTT.md, "Fleet").

    python tools/fleet_run.py [--boards 8] [--port 1883] [--folder .state/fleet]

starts them, prints where each board serves, then shows tools/fleet.py's live table
(--watch) until Ctrl-C, which stops every process it started. The fleet soak
(tools/fleet_soak.py) starts its fleet with the same class:

    with FleetRun(folder, boards=8, debounce_ms=0).start() as run:
        run.broker.port; run.sims[0].control("set 0 0"); run.nodes[0]  # pinsock-f101
"""

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
import fleet  # noqa: E402
from mqttbroker import Broker, mosquitto_command  # noqa: E402
from simclient import HOST, free_port  # noqa: E402
from simproc import ROOT, Sim  # noqa: E402
from sim import busy_port  # noqa: E402

DEFAULT_FOLDER = ROOT / ".state" / "fleet"
# The boards' unique ids: board n (1-based) is f1ee0000f1<nn>, node pinsock-f1<nn>.
UNIQUE_ID = "f1ee0000f1%02x"
# The boards' MQTT keepalive (seconds): a dead broker is noticed within it.
KEEPALIVE_S = 10
# A port found free may be taken before the board binds it (other programs): the board
# is started again on other ports, at most this many times in all.
PORT_ATTEMPTS = 3
# How long the boards may take to connect to the broker once they serve.
CONNECT_TIMEOUT_S = 15


def unique_id(n):
    return UNIQUE_ID % n


def node_id(n):
    """The node id of board n (1-based): pinsock- and its unique id's last 4 digits."""
    return "pinsock-" + unique_id(n)[-4:]


class FleetRun:
    """A broker and `boards` simulators under `folder` (broker/, board1/, board2/, ...).
    `sim_options`: simproc.Sim's (debounce_ms=0, log_size=...)."""

    def __init__(self, folder, boards=8, broker_port=None, prefix="pinsock",
                 keepalive_s=KEEPALIVE_S, **sim_options):
        self.folder = Path(folder)
        self.count = boards
        self.prefix = prefix
        self.keepalive_s = keepalive_s
        self.broker = Broker(self.folder / "broker", port=broker_port)
        self.sim_options = sim_options
        self.sims = []
        self.port_lock = threading.Lock()
        self.nodes = [node_id(n) for n in range(1, boards + 1)]

    def state_dir(self, n):
        return self.folder / ("board%d" % n)

    def start(self):
        if mosquitto_command() is None:
            raise SystemExit("fleet: mosquitto is not installed (bash tools/setup_system.sh"
                             " installs it, as root)")
        build.build("UNIX_SIM")  # once, before the simulators (each would check it)
        try:
            self.broker.start()
            for n in range(1, self.count + 1):
                state = self.state_dir(n)
                state.mkdir(parents=True, exist_ok=True)
                config = state / "config.json"
                settings = json.loads(config.read_text()) if config.exists() else {}
                settings["mqtt"] = {"host": HOST, "port": self.broker.port,
                                    "prefix": self.prefix, "keepalive": self.keepalive_s}
                config.write_text(json.dumps(settings))
                sim = Sim(state, unique_id=unique_id(n), **self.sim_options)
                self.new_ports(sim)  # free_port() may give one port twice: all distinct
                self.sims.append(sim)
            # Side by side: each waits for its own "serving on".
            failures = []

            def start(sim):
                for attempt in range(PORT_ATTEMPTS):
                    try:
                        sim.start()
                        return
                    except AssertionError as exc:
                        if "EADDRINUSE" not in str(exc) or attempt == PORT_ATTEMPTS - 1:
                            failures.append(exc)
                            return
                        self.new_ports(sim)  # taken since it was free: others again

            threads = [threading.Thread(target=start, args=(sim,)) for sim in self.sims]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if failures:
                raise failures[0]
            self.wait_connected()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_connected(self, timeout=CONNECT_TIMEOUT_S):
        """Wait until every board has said `mqtt: connected` (it serves before)."""
        deadline = time.monotonic() + timeout
        for node, sim in zip(self.nodes, self.sims):
            while not any(line.startswith("mqtt: connected") for line in sim.output):
                if time.monotonic() > deadline or not sim.alive():
                    raise AssertionError("%s did not connect to the broker:\n%s"
                                         % (node, "".join(sim.output)[-2000:]))
                time.sleep(0.02)

    def new_ports(self, sim):
        """Free ports for `sim`, none of them another board's or the broker's."""
        with self.port_lock:
            taken = {self.broker.port}
            for other in self.sims:
                taken |= {other.http_port, other.control_port, other.https_port}
            ports = []
            while len(ports) < 3:
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    ports.append(port)
            sim.http_port, sim.control_port, sim.https_port = ports

    def stop(self):
        """Stop every simulator, then the broker (each waited for: no orphans)."""
        for sim in self.sims:
            if sim.proc is not None and sim.alive():
                sim.proc.terminate()
        for sim in self.sims:
            sim.stop()
        self.broker.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def describe(self):
        """A line per board: node id, page, control port."""
        return ["%s  http://%s:%d/  control port %d" % (node, HOST, sim.http_port,
                                                         sim.control_port)
                for node, sim in zip(self.nodes, self.sims)]


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=8)
    parser.add_argument("--port", type=int, default=fleet.DEFAULT_PORT,
                        help="the broker's port on 127.0.0.1 (default %(default)s)")
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER),
                        help="the boards' state folders and the broker's (default"
                        " .state/fleet)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # `kill`, like Ctrl-C: all stop
    if busy_port(HOST, [("broker", args.port)]):
        raise SystemExit("fleet: port %d on %s is in use (another broker?); choose another:"
                         " make fleet FLEET_PORT=<port> (tools/fleet_run.py --port <port>)"
                         % (args.port, HOST))
    run = FleetRun(args.folder, boards=args.boards, broker_port=args.port)
    try:
        print("fleet: starting mosquitto on %s:%d and %d simulated boards..."
              % (HOST, args.port, args.boards), flush=True)
        run.start()
        print("\n".join(run.describe()), flush=True)
        print("fleet: mosquitto_sub -h %s -p %d -t '%s/#' -v; flip a switch:"
              " exec 3<>/dev/tcp/%s/%d; echo 'set 0 0' >&3" % (
                  HOST, args.port, run.prefix, HOST, run.sims[0].control_port), flush=True)
        fleet.main(["--broker", "%s:%d" % (HOST, args.port), "--prefix", run.prefix,
                    "--watch"])
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not leave anything behind either.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        run.stop()
        print("fleet: stopped the broker and %d boards" % len(run.sims), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
