"""Every pinsock board on an MQTT broker, in one table (docs/MQTT.md, "Fleet").

    python tools/fleet.py --broker HOST[:PORT] [--prefix pinsock]      # list, then exit
    python tools/fleet.py --broker HOST --watch                         # a live table
    python tools/fleet.py --broker HOST --cmd v3 --node pinsock-c0de    # one board's reply
    python tools/fleet.py --broker HOST --cmd sv --all                  # every board's

The list is what the broker holds retained under <prefix>/: each board's `status`,
`state` (the DIP switches and the event-log seq) and `io/<h>` (every IO's level). The
name, version and board are not retained by the firmware (the Home Assistant discovery
message is retained only with `retain_discovery`): they are taken from a retained
discovery message when there is one, else asked of each online board with `s` on its
`cmd` (the reply is on its `reply`, for everyone to see); --retained-only asks nothing.
Every wait is bounded: the retained messages until none has come for --quiet seconds
(at most --wait), the replies at most --timeout seconds.

The table is made by pure functions (Fleet.take, table, reply_lines; no MQTT), and
tests_host/test_fleet.py checks them without a broker; the paho-mqtt part is thin.
"""

import argparse
import json
import sys
import threading
import time

HEX = "0123456789abcdef"
DEFAULT_PORT = 1883
# The retained messages come right after the subscription: the list waits until none
# has come for QUIET_S, at most RETAINED_MAX_S.
QUIET_S = 0.3
RETAINED_MAX_S = 3.0
# How long replies (to `s`, and to --cmd) may take.
REPLY_TIMEOUT_S = 3.0
# --watch redraws at most this often (a busy fleet changes many times a second).
REDRAW_EVERY_S = 0.2
# The command that names a board (its reply holds name, version, board).
IDENTIFY = "s"


# --- pure: what the messages say --------------------------------------------------------
class Board:
    """What the fleet knows of one board, from its messages."""

    def __init__(self, node):
        self.node = node
        self.status = None  # "online" / "offline"
        self.dips = None  # {"dip1": "On", ...}, from `state`
        self.seq = None  # the event-log seq of the last `state`, or of the last `event`
        self.io = {}  # "<h>" -> "0" / "1"
        self.name = self.version = self.model = None
        self.replies = []  # reply texts, in arrival order

    def dip_text(self):
        """The DIP switches, 1 first: `X` On, `-` Off (`?` unknown)."""
        if self.dips is None:
            return ""
        keys = sorted(self.dips, key=lambda key: int(key[3:]))
        return "".join({"On": "X", "Off": "-"}.get(self.dips[key], "?") for key in keys)

    def io_text(self):
        """Every IO's level, IO 0 first (`.` not known)."""
        if not self.io:
            return ""
        count = max(HEX.index(h) for h in self.io) + 1
        return "".join(self.io.get(HEX[n], ".") for n in range(count))


class Fleet:
    """The boards under `prefix` (and `discovery_prefix`'s discovery messages), built
    from (topic, payload) pairs by take()."""

    def __init__(self, prefix="pinsock", discovery_prefix="homeassistant"):
        self.prefix = prefix.rstrip("/")
        self.discovery_prefix = discovery_prefix
        self.boards = {}

    def board(self, node):
        if node not in self.boards:
            self.boards[node] = Board(node)
        return self.boards[node]

    def topics(self):
        """The topic filters that feed take()."""
        base = self.prefix + "/+/"
        filters = [base + leaf for leaf in ("status", "state", "io/+", "reply", "event")]
        if self.discovery_prefix:
            filters.append(self.discovery_prefix + "/device/+/config")
        return filters

    def take(self, topic, payload):
        """Take one message; returns the node it told something of, or None (another
        topic, `all`, a payload that makes no sense)."""
        if isinstance(payload, bytes):
            payload = payload.decode(errors="replace")
        if self.discovery_prefix and topic.startswith(self.discovery_prefix + "/device/"):
            return self._discovery(topic, payload)
        if not topic.startswith(self.prefix + "/"):
            return None
        node, _, leaf = topic[len(self.prefix) + 1:].partition("/")
        if not node or node == "all" or not leaf:
            return None
        if leaf == "status":
            if payload not in ("online", "offline"):
                return None
            self.board(node).status = payload
        elif leaf == "state":
            report = _json(payload)
            if not isinstance(report, dict) or not isinstance(report.get("dipSwitches"), dict):
                return None
            board = self.board(node)
            board.dips = report["dipSwitches"]
            board.seq = report.get("seq", board.seq)
        elif leaf.startswith("io/") and len(leaf) == 4 and leaf[3] in HEX:
            if payload not in ("0", "1"):
                return None
            self.board(node).io[leaf[3]] = payload
        elif leaf == "event":
            record = _json(payload)
            if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
                return None
            self.board(node).seq = record["seq"]
        elif leaf == "reply":
            board = self.board(node)
            board.replies.append(payload)
            system = _json(payload)
            system = system.get("s") if isinstance(system, dict) else None
            if isinstance(system, dict):
                board.name = system.get("n", board.name)
                board.version = system.get("v", board.version)
                board.model = system.get("b", board.model)
        else:
            return None
        return node

    def _discovery(self, topic, payload):
        # <discovery_prefix>/device/<node_id>/config, its `dev`: name, sw, mdl.
        rest = topic[len(self.discovery_prefix) + len("/device/"):]
        node, _, leaf = rest.partition("/")
        message = _json(payload)
        if leaf != "config" or not isinstance(message, dict):
            return None
        dev = message.get("dev")
        if not isinstance(dev, dict) or dev.get("mf") != "pinsock":
            return None
        board = self.board(node)
        board.name = dev.get("name", board.name)
        board.version = dev.get("sw", board.version)
        board.model = dev.get("mdl", board.model)
        return node

    def online(self):
        return sorted(node for node, board in self.boards.items() if board.status == "online")

    def unnamed(self):
        """Online boards whose name or version is not known yet."""
        return [node for node in self.online()
                if self.boards[node].name is None or self.boards[node].version is None]


def _json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


COLUMNS = ("NODE", "STATUS", "NAME", "VERSION", "BOARD", "DIP 1-8", "IO 0-f", "SEQ")


def rows(fleet):
    """One tuple of texts per board (COLUMNS), by node id."""
    out = []
    for node in sorted(fleet.boards):
        b = fleet.boards[node]
        out.append((node, b.status or "?", b.name or "?", b.version or "?", b.model or "?",
                    b.dip_text(), b.io_text(), "" if b.seq is None else str(b.seq)))
    return out


def table(fleet):
    """The fleet as lines of text: a header, a row per board, and a summary line."""
    body = rows(fleet)
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(text.ljust(w) for text, w in zip(row, widths)).rstrip()
             for row in [COLUMNS] + body]
    lines.append("%d boards, %d online (DIP: X On, - Off)" % (len(body), len(fleet.online())))
    return lines


def reply_lines(replies, expected):
    """`<node> <reply>` for each reply {node: text}, then `<node> no reply` for each of
    `expected` without one; by node id."""
    lines = ["%s %s" % (node, replies[node]) for node in sorted(replies)]
    lines += ["%s no reply" % node for node in sorted(set(expected) - set(replies))]
    return lines


def parse_broker(text):
    """(host, port) of HOST[:PORT]."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, DEFAULT_PORT
    if not port.isdigit() or not host:
        raise ValueError("--broker must be HOST or HOST:PORT, not %r" % text)
    return host, int(port)


# --- the MQTT part ----------------------------------------------------------------------
class Session:
    """A paho-mqtt client feeding a Fleet (take() under a lock); `changed` is set at
    every message that told something."""

    def __init__(self, host, port, fleet, topics, connect_timeout=REPLY_TIMEOUT_S + 2):
        import paho.mqtt.client as paho

        self.fleet = fleet
        self.lock = threading.Lock()
        self.changed = threading.Event()
        self.last_message = time.monotonic()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="pinsock-fleet-%d-%d" % (
                                      threading.get_native_id(), time.monotonic_ns() % 10**6))
        self.topics = topics
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise SystemExit("fleet: cannot reach the broker %s:%d: %s" % (host, port, exc))
        self.client.loop_start()
        if not self.subscribed.wait(connect_timeout):
            self.close()
            raise SystemExit("fleet: the broker %s:%d did not answer within %g s"
                             % (host, port, connect_timeout))

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.last_message = time.monotonic()
            if self.fleet.take(msg.topic, msg.payload) is not None:
                self.changed.set()

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(REPLY_TIMEOUT_S)

    def quiet(self, quiet_s, max_s):
        """Wait until no message has come for quiet_s (at most max_s)."""
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            with self.lock:
                idle = time.monotonic() - self.last_message
            if idle >= quiet_s:
                return
            time.sleep(min(quiet_s - idle, max(deadline - time.monotonic(), 0)) + 0.01)

    def wait_until(self, done, timeout):
        """Wait until done() (called under the lock) or timeout; returns done()."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if done():
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.wait(min(left, 0.1))
            self.changed.clear()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def identify(session, prefix, nodes, timeout):
    """Ask each of `nodes` `s` (name, version, board) and wait for their replies."""
    for node in nodes:
        session.publish("%s/%s/cmd" % (prefix, node), IDENTIFY)
    fleet = session.fleet
    session.wait_until(lambda: not set(nodes) & set(fleet.unnamed()), timeout)


def list_fleet(session, args):
    session.quiet(args.quiet, args.wait)
    if not args.retained_only:
        with session.lock:
            nodes = session.fleet.unnamed()
        identify(session, args.prefix, nodes, args.timeout)
    with session.lock:
        lines = table(session.fleet)
        found = len(session.fleet.boards)
    print("\n".join(lines))
    return 0 if found else 1


def command(session, args):
    """--cmd: publish, then the replies of the board (--node) or of every online one."""
    session.quiet(args.quiet, args.wait)  # the retained status: which boards to expect
    fleet = session.fleet
    with session.lock:
        expected = [args.node] if args.node else fleet.online()
        seen = {node: len(fleet.board(node).replies) for node in expected}
    topic = "%s/%s/cmd" % (args.prefix, args.node or "all")
    session.publish(topic, args.cmd)

    def replies():
        return {node: fleet.boards[node].replies[seen.get(node, 0)]
                for node in fleet.boards if len(fleet.boards[node].replies) > seen.get(node, 0)
                and (not args.node or node == args.node)}

    session.wait_until(lambda: set(expected) <= set(replies()), args.timeout)
    if args.all:  # a board the retained status did not name may answer too: a moment more
        session.quiet(args.quiet, args.quiet * 2)
    with session.lock:
        got = replies()
    print("\n".join(reply_lines(got, expected)))
    return 0 if set(expected) <= set(got) and got else 1


def watch(session, args, out=sys.stdout):
    """The table, redrawn at each change (at most every REDRAW_EVERY_S), until Ctrl-C."""
    clear = "\x1b[H\x1b[2J" if out.isatty() else ""
    asked = set()
    try:
        session.quiet(args.quiet, args.wait)
        if not args.retained_only:  # the first table with names, as the list has them
            with session.lock:
                asked.update(session.fleet.unnamed())
            identify(session, args.prefix, sorted(asked), args.timeout)
        while True:
            with session.lock:
                lines = table(session.fleet)
                ask = [] if args.retained_only else [
                    node for node in session.fleet.unnamed() if node not in asked]
            out.write(clear + "\n".join(lines) + "\n"
                      + ("" if clear else "\n"))
            out.flush()
            for node in ask:  # once each: a board that never answers is not asked forever
                asked.add(node)
                session.publish("%s/%s/cmd" % (args.prefix, node), IDENTIFY)
            while not session.changed.wait(1):  # a bounded wait: Ctrl-C is seen at once
                pass
            session.changed.clear()
            time.sleep(REDRAW_EVERY_S)
    except KeyboardInterrupt:
        return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="HOST or HOST:PORT (port 1883)")
    parser.add_argument("--prefix", default="pinsock", help="the boards' topic prefix")
    parser.add_argument("--discovery-prefix", default="homeassistant",
                        help="where retained discovery messages may name the boards"
                        " ('' for nowhere)")
    parser.add_argument("--watch", action="store_true", help="a live table, until Ctrl-C")
    parser.add_argument("--cmd", help="a command (PROTOCOL.md) for --node or --all")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--node", help="one board's node id, e.g. pinsock-c0de")
    target.add_argument("--all", action="store_true", help="every board (<prefix>/all/cmd)")
    parser.add_argument("--retained-only", action="store_true",
                        help="ask the boards nothing: name and version only if retained")
    parser.add_argument("--timeout", type=float, default=REPLY_TIMEOUT_S,
                        help="seconds to wait for replies (default %(default)s)")
    parser.add_argument("--quiet", type=float, default=QUIET_S, help=argparse.SUPPRESS)
    parser.add_argument("--wait", type=float, default=RETAINED_MAX_S, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cmd is not None and not (args.node or args.all):
        parser.error("--cmd needs --node NODE_ID or --all")
    if (args.node or args.all) and args.cmd is None:
        parser.error("--node and --all go with --cmd")
    if args.cmd is not None and args.watch:
        parser.error("--cmd and --watch are separate runs")
    try:
        host, port = parse_broker(args.broker)
    except ValueError as exc:
        parser.error(str(exc))
    fleet = Fleet(args.prefix, args.discovery_prefix)
    if args.cmd is not None:
        topics = ["%s/+/status" % args.prefix, "%s/+/reply" % args.prefix]
    else:
        topics = fleet.topics()
    try:
        session = Session(host, port, fleet, topics)
    except KeyboardInterrupt:
        return 0
    try:
        if args.watch:
            return watch(session, args)
        if args.cmd is not None:
            return command(session, args)
        return list_fleet(session, args)
    except KeyboardInterrupt:
        return 0
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
