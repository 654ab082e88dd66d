# Seeded fuzz of the command engine and of the WebSocket frame reader. Runs on CPython
# and on the unix port (test_device_on_unix_port.py: the compiled build), with the
# same pseudo-random sequence on both (a xorshift generator of our own).
#
# Thousands of random and mutated messages: each gets exactly one reply, which is
# JSON, either a result that mirrors the command's path (string leaves) or the error
# {"e":{"c":<command cut to 32>,"m":<a documented reason>}}; nothing raises. Random
# frame streams: the reader delivers exactly the well-formed text frames, answers
# pings, and ends only by a close, a FrameError with a documented close code, or the
# end of the stream.
import json

from fakes import FakeHardware, board_ios, scratch_dir
from pinsock.boot import settings_json
from pinsock.protocol import commands, kindcmds
from pinsock.transport import wsframe
from pinsock.transport.websocket import WebSocketService
from pinsock.protocol.commands import CommandEngine
from pinsock.logic.device import Device
from pinsock.logic.eventlog import EventLog
from pinsock.transport.hub import Client, ClientHub
from pinsock.logic.iobank import IoBank
from pinsock.protocol.report import SwitchReport
from pinsock.logic.settings import Settings

SEED = 0x5EED
MESSAGES = 3000  # through the engine directly
DEVICE_MESSAGES = 400  # through Device.received (rate limit, framing)
FRAME_STREAMS = 300

HEX = "0123456789abcdef"
# Every reason an error reply may give (docs/PROTOCOL.md, Errors and Rate limit).
REASONS = (commands.E_EMPTY, commands.E_COMMAND_TOO_LONG, commands.E_VALUE_TOO_LONG,
           commands.E_BAD_CHAR, commands.E_UNKNOWN, commands.E_NO_IO, commands.E_SUBTREE,
           commands.E_READ_ONLY, commands.E_INPUT, commands.E_RANGE,
           commands.E_NOT_SUPPORTED, "rate limited", commands.E_NOT_DIGITAL,
           kindcmds.E_NOT_ANALOG, kindcmds.E_NOT_PWM, kindcmds.E_NOT_COUNTER,
           kindcmds.E_NOT_BUTTON, kindcmds.E_NONE, kindcmds.E_PWM_FREQS)
# Close codes the reader may refuse a frame with.
FRAME_CLOSE_CODES = (wsframe.CLOSE_PROTOCOL_ERROR, wsframe.CLOSE_UNSUPPORTED,
                     wsframe.CLOSE_BAD_DATA, wsframe.CLOSE_TOO_BIG)
# Characters mutations insert: the command alphabet, "=", and what must be refused.
ODD = ("=", "==", " ", "\t", "\x00", "\x7f", "\r\n", "V", "Z", "-", "\"", "\\", "{", "}",
       "%", "+", "\u00e9", "\u20ac", "\U0001f600", "\ufffd", "0", "9", "a", "f", "g", "z")


class Rand:
    """xorshift32: the same numbers on CPython and MicroPython."""

    def __init__(self, seed):
        self.x = seed & 0xFFFFFFFF or 1

    def next(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def below(self, n):
        return self.next() % n

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def bytes(self, n):
        return bytes(self.below(256) for _ in range(n))


def valid_messages():
    """Every command form of the tree, reads and writes."""
    out = ["v", "d", "p", "t", "tu", "tuv", "s", "sn", "sv", "sb", "sc", "st", "sm",
           "sn=kitchen", "sn=Kitchen light #2", "sv=1", "sb=x", "sc=0", "st=1", "sm="]
    for h in HEX:
        out += ["v" + h, "d" + h, "p" + h, "tuv" + h]
        for value in "0123":
            out += ["v%s=%s" % (h, value), "d%s=%s" % (h, value), "p%s=%s" % (h, value),
                    "tuv%s=%s" % (h, value)]
    return out


def mutate(rand, text):
    """One random change: insert, delete, replace, repeat, cut, or something new."""
    kind = rand.below(8)
    at = rand.below(len(text) + 1)
    if kind == 0:
        return text[:at] + rand.choice(ODD) + text[at:]
    if kind == 1:
        return text[:at] + text[at + 1:]
    if kind == 2:
        return text[:at] + rand.choice(ODD) + text[at + 1:]
    if kind == 3:
        return text + text[at:] * rand.below(20)
    if kind == 4:
        return text[:at]
    if kind == 5:
        return text + "=" + "".join(rand.choice(ODD) for _ in range(rand.below(80)))
    if kind == 6:
        return text[at:] + text[:at]
    return "".join(rand.choice(ODD + ("v", "d", "p", "t", "u", "s", "n"))
                   for _ in range(rand.below(40)))


def messages(rand, count):
    corpus = valid_messages()
    for _ in range(count):
        text = rand.choice(corpus)
        for _ in range(rand.below(4)):  # 0 to 3 mutations
            text = mutate(rand, text)
        yield text


class Rig:
    """A device on a fake board (UNIX_SIM's layout) with real settings on scratch flash."""

    def __init__(self, name):
        ios = board_ios()
        self.pins = FakeHardware(len(ios))
        self.bank = IoBank(self.pins, ios, 0)
        self.settings = Settings(scratch_dir(name), self.bank, "pinsock-c0de", _quiet)
        settings_json.load(self.settings)
        self.bank.start(0)
        self.hub = ClientHub(4)
        self.engine = CommandEngine(self.bank, self.settings, _Status(self.hub))
        self.device = Device(self.bank, SwitchReport(self.bank, True), self.engine,
                             EventLog(16), _Status(self.hub))
        self.service = WebSocketService(self.device, self.hub)
        self.device.add_sink(self.service)


class _Status:
    version = "0.1.0"
    mqtt = None  # no mqtt block (Status.mqtt)
    board = "UNIX_SIM"

    def __init__(self, hub):
        self.hub = hub

    def clients(self):
        return len(self.hub.clients)

    def uptime_s(self):
        return 42

    def free_heap(self):
        return 104448

    def ms_at(self, ticks):
        return ticks


def _quiet(*args):
    pass


def check_reply(text, reply):
    """Raise AssertionError unless `reply` is a well-formed answer to `text`."""
    where = "%r -> %r" % (text, reply)
    assert isinstance(reply, str), where
    msg = json.loads(reply)
    assert isinstance(msg, dict) and len(msg) == 1, where
    eq = text.find("=")
    command = text if eq < 0 else text[:eq]
    if "e" in msg:
        err = msg["e"]
        assert sorted(err) == ["c", "m"], where
        assert err["c"] == command[:CommandEngine.max_command_len], where
        assert err["m"] in REASONS, where
        return msg
    assert command and list(msg)[0] == command[0], where
    assert_string_leaves(msg, where)
    return msg


def assert_string_leaves(node, where):
    for value in node.values():
        if isinstance(value, dict):
            assert value, where
            assert_string_leaves(value, where)
        else:
            assert isinstance(value, str), where


def check_state(rig, client):
    """After any messages, every table still reads whole and valid."""
    engine = rig.engine
    for read, allowed in (("v", "01"), ("d", "01"), ("p", "012")):
        table = json.loads(engine.execute(client, read, 0))[read]
        assert sorted(table) == sorted(HEX), table
        assert all(table[h] in allowed for h in table), table
    for io in range(8):  # DIP switches stay fixed inputs with their pull-up
        assert rig.bank.direction[io] == 0 and rig.bank.pull[io] == 1
    triggers = json.loads(engine.execute(client, "tuv", 0))["t"]["u"]["v"]
    assert all(triggers[h] in "0123" for h in triggers), triggers
    status = json.loads(engine.execute(client, "s", 0))["s"]
    assert 1 <= len(status["n"]) <= 32, status


def test_random_and_mutated_messages_each_get_one_valid_reply():
    rand = Rand(SEED)
    rig = Rig("fuzz_engine")
    client = Client(None)
    rig.service.join(client)
    errors = 0
    for n, text in enumerate(messages(rand, MESSAGES)):
        reply = rig.engine.execute(client, text, n)
        if "e" in check_reply(text, reply):
            errors += 1
        if rand.below(8) == 0:  # the outside world flips an input now and then
            io = rand.below(16)
            if not rig.bank.direction[io]:
                rig.pins.set(io, 1 - rig.pins.levels[io], n)
                rig.bank.scan(n)
    check_state(rig, client)
    # Both kinds were exercised, not only one.
    assert 0 < errors < MESSAGES, errors


def test_device_answers_every_message_with_one_frame():
    rand = Rand(SEED + 1)
    rig = Rig("fuzz_device")
    client = Client(None)
    client.outbox_len = DEVICE_MESSAGES + 2  # keep every frame for the check
    client._frames = [None] * client.outbox_len
    rig.service.join(client)
    sent = list(messages(rand, DEVICE_MESSAGES))
    for text in sent:
        rig.device.received(rig.service, client, text)
    frames = [f for f in client._frames if f is not None]
    assert len(frames) == 1 + len(sent)  # the report on connect, then one reply each
    for text, frame in zip(sent, frames[1:]):
        opcode, payload = server_frame(frame)
        assert opcode == wsframe.OP_TEXT
        check_reply(text, payload.decode())


def server_frame(frame):
    """(opcode, payload) of one unmasked frame the device sends."""
    n = frame[1] & 0x7F
    start = 2
    if n == 126:
        n = (frame[2] << 8) | frame[3]
        start = 4
    assert len(frame) == start + n
    return frame[0] & 0x0F, bytes(frame[start:])


# --- the frame reader ----------------------------------------------------------------
class ByteStream:
    """What the reader reads from: given bytes, then the end of the stream."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    async def readexactly(self, n):
        if self.pos + n > len(self.data):
            raise EOFError
        self.pos += n
        return self.data[self.pos - n:self.pos]

    async def readinto(self, view):
        k = min(len(view), len(self.data) - self.pos)
        view[:k] = self.data[self.pos:self.pos + k]
        self.pos += k
        return k


class Inbox:
    """Stands in for the device: keeps the texts the reader delivers."""

    class report:  # what the service sizes its report frame from
        max_len = 200

    class bank:
        count = 16

    def __init__(self):
        self.texts = []

    def received(self, sink, client, text):
        self.texts.append(text)


def client_frame(rand):
    """A random client frame: mostly well formed, with every field sometimes wrong.
    Returns (bytes, the text it must deliver or None)."""
    roll = rand.below(10)
    fin = 0x80 if rand.below(8) else 0
    rsv = 0 if rand.below(10) else rand.choice((0x10, 0x20, 0x40))
    opcode = rand.choice((1, 1, 1, 1, 9, 10, 8, 0, 2, 3, 11))
    masked = 0x80 if rand.below(12) else 0
    if roll < 6:
        payload = rand.choice(valid_messages()).encode()
    elif roll < 8:
        payload = rand.bytes(rand.below(40))
    else:
        payload = rand.bytes(rand.choice((125, 126, 200, 256, 257, 300)))
    if opcode == 8 and roll < 5:
        payload = bytes((0x03, 0xE8)) + payload[:10]  # 1000 and a reason
    n = len(payload)
    if n < 126 and rand.below(6):
        bits = 7
    elif n < 0x10000 and rand.below(4):
        bits = 16
    else:
        bits = 64
    return encode_client_frame(fin, rsv, opcode, masked, payload, bits, rand.bytes(4))


def encode_client_frame(fin, rsv, opcode, masked, payload, bits, mask):
    """(frame bytes, the text it must deliver or None). The length goes in a field of
    `bits` (7, 16 or 64), or of 16 when 7 cannot hold it; `masked` 0x80 or 0 says
    whether the header says masked (the payload is masked with `mask` either way)."""
    n = len(payload)
    head = bytes((fin | rsv | opcode,))
    if bits == 7 and n < 126:
        head += bytes((masked | n,))
    elif bits != 64 and n < 0x10000:
        head += bytes((masked | 126, n >> 8, n & 0xFF))
    else:
        head += bytes((masked | 127,)) + n.to_bytes(8, "big")
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    text = None
    if fin and not rsv and opcode == 1 and masked and n <= 256:
        try:
            text = payload.decode()
        except UnicodeError:
            pass
    return head + mask + body, text


def read_stream(data):
    """Run the server's reader over `data`: (how it ended, client, texts delivered)."""
    import asyncio

    inbox = Inbox()
    service = WebSocketService(inbox, None, 256)
    client = Client(None)

    async def run():
        try:
            await service._read_messages(ByteStream(data), client)
            return "close", None
        except wsframe.FrameError as exc:
            return "refused", exc.code
        except EOFError:
            return "end", None

    ended, code = asyncio.run(run())
    return ended, code, client, inbox.texts


def test_random_frame_streams_end_cleanly():
    rand = Rand(SEED + 2)
    ends = {}
    for _ in range(FRAME_STREAMS):
        data = b""
        expected = []
        for _ in range(1 + rand.below(4)):
            frame, text = client_frame(rand)
            data += frame
            expected.append(text)
        truncated = False
        if rand.below(4) == 0:
            data = data[:rand.below(len(data) + 1)]  # the peer stops mid-frame
            truncated = True
        ended, code, client, texts = read_stream(data)
        ends[ended] = ends.get(ended, 0) + 1
        if ended == "refused":
            assert code in FRAME_CLOSE_CODES, code
        # What was delivered is the well-formed text frames, in order, up to where the
        # reader stopped; all of them when it read to the end of a whole stream.
        wanted = [t for t in expected if t is not None]
        assert texts == wanted[:len(texts)], (texts, wanted)
        if ended == "end" and not truncated:
            assert texts == wanted, (texts, wanted)
        if ended == "close":
            # The reply to a close frame: a close frame with a code a peer may send.
            opcode, payload = server_frame(client._close_frame)
            assert opcode == wsframe.OP_CLOSE
            assert wsframe.close_code_valid((payload[0] << 8) | payload[1])
    assert len(ends) == 3, ends  # every way to end was seen


def test_every_frame_header_is_accepted_or_refused_with_a_close_code():
    accepted = 0
    for b0 in range(256):
        for b1 in range(256):
            try:
                opcode, n = wsframe.check_header(b0, b1)
            except wsframe.FrameError as exc:
                assert exc.code in FRAME_CLOSE_CODES and exc.reason
                continue
            accepted += 1
            assert b0 & 0x80 and not b0 & 0x70 and b1 & 0x80, (b0, b1)
            assert opcode in (wsframe.OP_TEXT, wsframe.OP_CLOSE, wsframe.OP_PING,
                              wsframe.OP_PONG), (b0, b1)
            assert n == b1 & 0x7F and (opcode == wsframe.OP_TEXT or n <= 125), (b0, b1)
    # FIN, masked: text with any of 128 length fields, 3 control opcodes with 126 each.
    assert accepted == 128 + 3 * 126
