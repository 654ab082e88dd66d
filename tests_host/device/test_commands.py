# The command engine, driven by transcripts: the protocol's examples are the tests.
# Runs on CPython and on the unix port.
#
# A transcript (transcripts/*.txt) is what clients send and receive, line by line:
#
#   > v9                   client 1 sends a message
#   < {"v":{"9":"0"}}      the next message client 1 receives, exactly
#   2> tuv9=1              the same for client 2 (any digit names a client)
#   2< {"t":...}
#   ! set 9 1              the outside world drives input 9 (decimal, like the
#                          simulator's control port) and the inputs are scanned
#   ! wait 20              time passes (ms) and the inputs are scanned (and the
#                          analog inputs, counters and buttons run, every 5 ms)
#   ! analog 8 32768       analog input 8's level is 32768 of 65535 (the simulator:
#                          `analog 8 32768`), read at the next sample
#   ! pulse 12 5           5 pulses into counter input 12 (`pulse 12 5`)
#   ! pwm_freqs 1          the chip has 1 PWM timer: 1 distinct frequency at once
#   ! debounce 20          inputs must hold 20 ms to count (default 0)
#   ! rate 1               clients that connect from now on may send 1 command/s
#   ! board 8 4            a board of 8 DIP switches then 4 GPIOs (default 8 8,
#                          laid out like UNIX_SIM); only before other lines
#   ! connect 2            client 2 connects; its first message is the switch report
#   ! disconnect 2         client 2 goes away
#   ! restart              the device reboots with what it saved; clients are gone
#   ! mqtt on              the device gets an mqtt block: broker 127.0.0.1:1883, Home
#                          Assistant discovery on; the link is not connected yet
#   ! mqtt connected       the broker accepts the link (a CONNACK)
#   ! mqtt lost 2500 why   the connection ends (or a try fails) because `why`; the
#                          next try is 2500 ms from now
#   # a comment, and blank lines, are ignored
#
# Client 1 is connected when a transcript starts and again after `! restart`; the
# switch report it gets on connecting is skipped. Every other message must be listed:
# before each `>` or `!` line and at the end, every client has received exactly the
# `<` lines given for it so far, nothing more.
#
# docs/PROTOCOL.md shows its examples in ```transcript blocks; each block must appear,
# line for line, in one of these files (test_protocol_examples_are_transcripts).
import os

from fakes import FakeClient, FakeHardware, board_ios, scratch_dir
from pinsock.boot import settings_json
from pinsock.protocol import commands
from pinsock.protocol.commands import CommandEngine, error_reply, is_error
from pinsock.logic.device import Device
from pinsock.logic.eventlog import EventLog
from pinsock.transport.hub import ClientHub
from pinsock.transport.websocket import WebSocketService
from pinsock.logic.iobank import IoBank
from pinsock.protocol.report import SwitchReport
from pinsock.logic.settings import Settings

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
TRANSCRIPTS = _HERE + "/transcripts"
PROTOCOL_DOC = _HERE + "/../../docs/PROTOCOL.md"

# What the simulator calls itself: "pinsock-" + the last 4 hex digits of its id.
DEFAULT_NAME = "pinsock-c0de"


class SimPins(FakeHardware):
    """FakeHardware with the simulator's electrical model (boards/UNIX_SIM/simhw.py):
    an input reads what the outside drives onto it, or else its pull (up 1, none or
    down 0), so the transcripts show what the simulator does."""

    FLOATING = 0xFF

    def __init__(self, count):
        super().__init__(count)
        self.outside = bytearray(self.FLOATING for _ in range(count))

    def setup(self, io, direction, pull, level):
        self.direction[io] = direction
        self.pull[io] = pull
        if direction:
            self.levels[io] = level
        elif self.outside[io] != self.FLOATING:
            self.levels[io] = self.outside[io]
        else:
            self.levels[io] = 1 if pull == 1 else 0

    def set(self, io, level, t):
        self.outside[io] = level
        if not self.direction[io] and self.levels[io] != level:
            super().set(io, level, t)


class TranscriptStatus:
    version = "0.1.0"
    board = "UNIX_SIM"
    mqtt = None  # no mqtt block (Status.mqtt)
    ota = '{"s":"a","t":"0","p":"","r":""}'  # never updated (Status.ota)

    def __init__(self, run):
        self.run = run

    def clients(self):
        return len(self.run.hub.clients)

    def uptime_s(self):
        return (self.run.now - self.run.booted) // 1000

    def free_heap(self):
        return 104448

    def ms_at(self, ticks):
        return ticks - self.run.booted


class TranscriptError(AssertionError):
    pass


def decode_frame(frame):
    """Text of one unmasked server text frame."""
    frame = bytes(frame)
    assert frame[0] == 0x81, "not a text frame: %r" % frame[:2]
    n = frame[1] & 0x7F
    start = 2
    if n == 126:
        start = 4
    elif n == 127:
        start = 10
    return frame[start:].decode()


class TranscriptRun:
    """One device with a fake board, and the clients a transcript talks through."""

    def __init__(self, state_dir, dips=8, gpios=8, debounce_ms=0):
        self.state_dir = state_dir
        self.dips = dips
        self.gpios = gpios
        self.debounce_ms = debounce_ms
        self.now = 1000
        self.log = []
        self.boot()

    def boot(self):
        ios = board_ios(self.dips, self.gpios)
        self.pins = SimPins(len(ios))
        self.bank = IoBank(self.pins, ios, self.debounce_ms)
        self.settings = Settings(self.state_dir, self.bank, DEFAULT_NAME, self.log.append)
        settings_json.load(self.settings)
        self.hub = ClientHub(8)
        self.booted = self.now
        # LED N is IO dips+N, as on UNIX_SIM (board.json leds: IO 8+N).
        leds = tuple(range(self.dips, self.dips + min(self.gpios, 8)))
        self.engine = CommandEngine(self.bank, self.settings, TranscriptStatus(self), leds)
        self.bank.start(self.now)
        self.device = Device(self.bank, SwitchReport(self.bank, True), self.engine,
                             EventLog(256), TranscriptStatus(self))
        self.service = WebSocketService(self.device, self.hub)
        self.device.add_sink(self.service)
        self.clients = {}
        self.seen = {}
        self.connect("1")
        self.seen["1"] = 1  # skip client 1's connect report

    def connect(self, name):
        client = FakeClient()
        self.clients[name] = client
        self.seen[name] = 0
        self.service.join(client)

    def disconnect(self, name):
        self.hub.remove(self.clients.pop(name))
        self.seen.pop(name)

    def send(self, name, text):
        self.device.received(self.service, self.clients[name], text)

    def next_message(self, name):
        client = self.clients[name]
        i = self.seen[name]
        if i >= len(client.frames):
            return None
        self.seen[name] = i + 1
        return decode_frame(client.frames[i])

    def unread(self):
        """(client, first message it got that the transcript did not list) or None."""
        for name in sorted(self.clients):
            client = self.clients[name]
            i = self.seen[name]
            if i < len(client.frames):
                return name, decode_frame(client.frames[i])
        return None

    def drive(self, io, level):
        if self.pins.direction[io]:
            raise TranscriptError("io %d is an output; the outside cannot drive it" % io)
        self.pins.set(io, level, self.now)
        self.scan()

    def wait(self, ms):
        # In steps no longer than the kinds' task sleeps (lifecycle.py run_kinds), so
        # button deadlines and samples come when they would on the device.
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + 5)
            self.scan()

    def scan(self):
        self.bank.scan(self.now)
        kinds = self.bank.kinds
        if kinds is not None:
            kinds.poll(self.now)

    def mqtt(self, what, args):
        # A real MqttSink and MqttLink, whose link is never run: the directive plays
        # what its task would do (MqttLink._session, run).
        if what == "on" and not args:
            from pinsock.transport.mqttsink import MqttSink

            self.sink = MqttSink(self.device, "pinsock", DEFAULT_NAME, "homeassistant",
                                 log=self.log.append)
            self.link = self.sink.connect_to("127.0.0.1", 1883, 30, "", "", None)
            self.device.add_sink(self.sink)
            self.engine.status.mqtt = self.device.status.mqtt = self.sink
        elif what == "connected" and not args:
            link = self.link
            link.state = 2  # MqttLink's _UP
            link.last_error = ""
            link.connects += 1
            self.sink.connected(link)
        elif what == "lost" and len(args) >= 2:
            from pinsock.compat import ticks_ms

            link = self.link
            link.state = 0  # _DOWN
            link.last_error = " ".join(args[1:])
            link.retry_at = ticks_ms() + int(args[0])
            self.sink.disconnected(link)
        else:
            raise TranscriptError("unknown directive: ! mqtt %s" % " ".join([what] + args))

    def restart(self):
        # A change is saved within a second (lifecycle.py keep_house); a transcript's
        # restart comes after that.
        if self.settings.pending:
            self.settings.save()
        for name in list(self.clients):
            self.disconnect(name)
        self.boot()


def parse_line(line):
    """One transcript line -> (kind, client, text): kind is '>', '<', '!' or None."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None, None, None
    if line.startswith("! "):
        return "!", None, line[2:].strip()
    client = "1"
    rest = line
    if "0" <= line[0] <= "9":
        client = line[0]
        rest = line[1:]
    if rest[:2] in ("> ", "< "):
        return rest[0], client, rest[2:]
    if rest in (">", "<"):  # `>` alone sends the empty message
        return rest, client, ""
    raise TranscriptError("not a transcript line: %r" % line)


def read_lines(path):
    with open(path) as f:
        return f.read().split("\n")


def run_transcript(file_name):
    path = TRANSCRIPTS + "/" + file_name
    run = None
    setup = {"dips": 8, "gpios": 8, "debounce_ms": 0}
    state_dir = scratch_dir("transcript_" + file_name.split(".")[0])
    number = 0
    try:
        for line in read_lines(path):
            number += 1
            kind, client, text = parse_line(line)
            if kind is None:
                continue
            if run is None:
                words = text.split() if kind == "!" else []
                if words and words[0] == "board":
                    setup["dips"] = int(words[1])
                    setup["gpios"] = int(words[2])
                    continue
                if words and words[0] == "debounce":
                    setup["debounce_ms"] = int(words[1])
                    continue
                run = TranscriptRun(state_dir, **setup)
            if kind == "<":
                if client not in run.clients:
                    raise TranscriptError("client %s is not connected" % client)
                got = run.next_message(client)
                if got != text:
                    raise TranscriptError("expected %s\n      got %s" % (text, got))
                continue
            left = run.unread()
            if left:
                raise TranscriptError("client %s got a message the transcript does not list"
                                      " (before this line): %s" % left)
            if kind == ">":
                if client not in run.clients:
                    raise TranscriptError("client %s is not connected" % client)
                run.send(client, text)
            else:
                directive(run, text)
        if run is None:
            raise TranscriptError("empty transcript")
        left = run.unread()
        number += 1
        if left:
            raise TranscriptError("client %s got a message the transcript does not list"
                                  " (at the end): %s" % left)
    except TranscriptError as exc:
        raise TranscriptError("%s:%d: %s" % (path, number, exc.args[0]))
    return run


def directive(run, text):
    words = text.split()
    verb = words[0]
    if verb == "set" and len(words) == 3:
        run.drive(int(words[1]), int(words[2]))
    elif verb == "wait" and len(words) == 2:
        run.wait(int(words[1]))
    elif verb == "connect" and len(words) == 2:
        run.connect(words[1])
    elif verb == "disconnect" and len(words) == 2:
        run.disconnect(words[1])
    elif verb == "restart" and len(words) == 1:
        run.restart()
    elif verb == "debounce" and len(words) == 2:
        run.bank.debounce_ms = int(words[1])
    elif verb == "mqtt" and len(words) >= 2:
        run.mqtt(words[1], words[2:])
    elif verb == "analog" and len(words) == 3:
        run.pins.kinds.level[int(words[1])] = int(words[2])  # read at the next sample
    elif verb == "pulse" and len(words) == 3:
        run.pins.kinds.counts[int(words[1])] += int(words[2])  # read at the next sample
    elif verb == "pwm_freqs" and len(words) == 2:
        run.pins.kinds.pwm_freqs = int(words[1])  # distinct PWM frequencies the chip has
    elif verb == "rate" and len(words) == 2:
        run.device.max_commands_per_s = int(words[1])  # for clients that connect next
    else:
        raise TranscriptError("unknown directive: ! %s" % text)


def transcript_files():
    return sorted(name for name in os.listdir(TRANSCRIPTS) if name.endswith(".txt"))


# --- one test per transcript file --------------------------------------------------
def test_transcript_read():
    run_transcript("read.txt")


def test_transcript_write():
    run_transcript("write.txt")


def test_transcript_triggers():
    run_transcript("triggers.txt")


def test_transcript_kinds():
    run_transcript("kinds.txt")


def test_transcript_buttons():
    run_transcript("buttons.txt")


def test_transcript_kinds_shared():
    run_transcript("kinds_shared.txt")


def test_transcript_debounce():
    run_transcript("debounce.txt")


def test_transcript_two_clients():
    run_transcript("two_clients.txt")


def test_transcript_system():
    run_transcript("system.txt")


def test_transcript_persist():
    run_transcript("persist.txt")


def test_transcript_labels():
    run_transcript("labels.txt")


def test_transcript_errors():
    run_transcript("errors.txt")


def test_transcript_small_board():
    run_transcript("small_board.txt")


def test_transcript_mqtt():
    run_transcript("mqtt.txt")


def test_transcript_leds():
    run_transcript("leds.txt")


def test_every_transcript_file_has_a_test():
    names = ["test_transcript_" + name[:-4] for name in transcript_files()]
    missing = [name for name in names if name not in globals()]
    assert not missing, "no test function for: %s" % missing


# --- the documentation cannot drift from the transcripts ---------------------------
def significant(lines):
    out = []
    for line in lines:
        line = line.rstrip("\r")
        if line.strip() and not line.startswith("#"):
            out.append(line)
    return out


def doc_examples():
    """(line number, [lines]) of every ```transcript block in PROTOCOL.md."""
    blocks = []
    block = None
    for number, line in enumerate(read_lines(PROTOCOL_DOC), 1):
        if block is None:
            if line.strip() == "```transcript":
                block = (number, [])
        elif line.strip() == "```":
            blocks.append(block)
            block = None
        else:
            block[1].append(line)
    assert block is None, "PROTOCOL.md:%d: unclosed ```transcript block" % block[0]
    return blocks


def contains_run(lines, part):
    n = len(part)
    for i in range(len(lines) - n + 1):
        if lines[i : i + n] == part:
            return True
    return False


def test_protocol_examples_are_transcripts():
    files = [significant(read_lines(TRANSCRIPTS + "/" + name)) for name in transcript_files()]
    blocks = doc_examples()
    assert len(blocks) >= 10, "PROTOCOL.md has only %d examples" % len(blocks)
    for number, lines in blocks:
        part = significant(lines)
        assert part, "PROTOCOL.md:%d: empty example" % number
        found = False
        for lines_of_file in files:
            if contains_run(lines_of_file, part):
                found = True
                break
        assert found, "PROTOCOL.md:%d: example is in no transcript:\n%s" % (
            number, "\n".join(part))


def error_reasons():
    from pinsock.protocol import kindcmds

    return [getattr(module, name) for module in (commands, kindcmds) for name in dir(module)
            if name.startswith("E_") and isinstance(getattr(module, name), str)]


def test_every_error_is_documented_and_in_a_transcript():
    with open(PROTOCOL_DOC) as f:
        doc = f.read()
    replies = []
    for name in transcript_files():
        for line in read_lines(TRANSCRIPTS + "/" + name):
            kind, _, text = parse_line(line)
            if kind == "<":
                replies.append(text)
    for reason in error_reasons():
        assert ('`%s`' % reason) in doc, "PROTOCOL.md does not document: %s" % reason
        tail = '"m":"%s"}}' % reason
        assert [r for r in replies if r.endswith(tail)], "no transcript shows: %s" % reason


# --- engine details the transcripts do not show well -------------------------------
def make_engine(dips=8, gpios=8):
    run = TranscriptRun(scratch_dir("commands_unit"), dips, gpios)
    return run, run.engine


def test_error_reply_cuts_the_command_and_escapes_it():
    reply = error_reply('ab"\\' + "x" * 40, "unknown command")
    assert reply == '{"e":{"c":"ab\\"\\\\' + "x" * 28 + '","m":"unknown command"}}'
    assert is_error(reply)
    assert not is_error('{"v":{"0":"1"}}')


def leaves(node):
    """Every leaf value of nested dicts."""
    out = []
    for value in node.values():
        if isinstance(value, dict):
            out += leaves(value)
        else:
            out.append(value)
    return out


def test_every_reply_is_json_with_string_leaves():
    import json

    run, engine = make_engine()
    client = FakeClient()
    engine.connected(client)
    for text in ("v", "d", "p", "t", "tu", "tuv", "s", "v3", "d9", "pa", "tuvf", "sn", "sv",
                 "sb", "sc", "st", "sm", "x", "V", "v=1", 'sn="quoted"', "sn"):
        reply = json.loads(engine.execute(client, text, 0))
        assert not [leaf for leaf in leaves(reply) if not isinstance(leaf, str)], (text, reply)
    assert json.loads(engine.execute(client, "sn", 0)) == {"s": {"n": '"quoted"'}}


def test_every_long_or_bad_message_is_answered_never_raises():
    run, engine = make_engine()
    client = FakeClient()
    engine.connected(client)
    samples = ["", "=", "==", "v=", "=1", "v3==1", "\x00", "v\x7f", "sn=\x7f", "é", "sn=é",
               "v" * 33, "sn=" + "x" * 65, "tuv0=" + "3" * 64, "d9=-1", "p9= 1", "d9=1 ",
               "v99", "tuvz", "s0", "sn=" + " " * 33]
    for text in samples:
        reply = engine.execute(client, text, 0)
        assert is_error(reply), (text, reply)


def test_limits_are_exact():
    run, engine = make_engine()
    client = FakeClient()
    engine.connected(client)
    n = CommandEngine.max_command_len
    assert engine.execute(client, "x" * n, 0) == error_reply("x" * n, commands.E_UNKNOWN)
    assert engine.execute(client, "x" * (n + 1), 0) == error_reply(
        "x" * n, commands.E_COMMAND_TOO_LONG)
    # A name may be 32 characters; a value may be 64 (then the name check refuses it).
    name = "n" * Settings.max_name_len
    assert engine.execute(client, "sn=" + name, 0) == '{"s":{"n":"%s"}}' % name
    assert engine.execute(client, "sn=" + name + "n", 0) == error_reply("sn", commands.E_RANGE)
    v = CommandEngine.max_value_len
    assert engine.execute(client, "sn=" + "n" * v, 0) == error_reply("sn", commands.E_RANGE)
    assert engine.execute(client, "sn=" + "n" * (v + 1), 0) == error_reply(
        "sn", commands.E_VALUE_TOO_LONG)


def test_writes_that_change_nothing_do_not_touch_the_flash():
    run, engine = make_engine()
    client = FakeClient()
    engine.connected(client)
    engine.execute(client, "d9=0", 0)
    engine.execute(client, "p9=0", 0)
    engine.execute(client, "sn=" + DEFAULT_NAME, 0)
    assert not run.settings.pending  # nothing for the save task to do
    engine.execute(client, "p9=2", 0)
    assert run.settings.pending
    assert run.settings.save_due(0)
    assert run.settings.save()
    assert "settings.json" in os.listdir(run.state_dir)


def test_triggers_are_per_connection_state():
    run, engine = make_engine()
    a = FakeClient()
    b = FakeClient()
    engine.connected(a)
    engine.connected(b)
    engine.execute(a, "tuv9=3", 0)
    assert engine.execute(b, "tuv9", 0) == '{"t":{"u":{"v":{"9":"0"}}}}'
    # One per IO, and the MQTT link's (tusq) after them.
    assert list(a.triggers) == [0] * 9 + [3] + [0] * 6 + [0]
    engine.connected(a)  # a new connection starts with every trigger off
    assert list(a.triggers) == [0] * 17


def test_a_flash_that_cannot_be_written_does_not_break_a_write():
    run, engine = make_engine()
    client = FakeClient()
    engine.connected(client)
    run.settings.path = run.state_dir + "/no/such/folder/settings.json"
    assert engine.execute(client, "d9=1", 0) == '{"d":{"9":"1"}}'
    assert run.bank.direction[9] == 1
    assert run.settings.save() is False  # when the save task gets to it
    assert [line for line in run.log if "cannot save" in line], run.log


if __name__ == "__main__":
    # Print what the engine answers to a draft transcript's `>` lines (other lines as
    # they are), to write a new transcript:  python test_commands.py draft.txt
    import sys

    draft = sys.argv[1]
    run = None
    setup = {}
    for line in read_lines(draft):
        kind, client, text = parse_line(line)
        if kind == "<":
            continue
        print(line)
        words = text.split() if kind == "!" else []
        if run is None and words and words[0] in ("board", "debounce"):
            if words[0] == "board":
                setup["dips"] = int(words[1])
                setup["gpios"] = int(words[2])
            else:
                setup["debounce_ms"] = int(words[1])
            continue
        if run is None and kind is not None:
            run = TranscriptRun(scratch_dir("transcript_draft"), **setup)
        if kind == ">":
            run.send(client, text)
        elif kind == "!":
            directive(run, text)
        if run is None:
            continue
        while True:
            left = run.unread()
            if not left:
                break
            name, message = left
            run.next_message(name)
            print(("" if name == "1" else name) + "< " + message)
