"""Fuzzing the command parser and the frame layer.

- Property tests (hypothesis, CPython): for arbitrary text and for near-valid
  commands, CommandEngine.execute returns one valid reply, a result or the
  {"e":{...}} error of docs/PROTOCOL.md, and never raises; after any sequence of
  messages the device's tables still read whole. The server's frame reader, given
  arbitrary bytes or random frames, ends only by a close, a documented close code or
  the end of the stream, and delivers exactly the well-formed text frames.
- The seeded fuzz of the same engine and reader under the unix port is
  tests_host/device/test_fuzz_engine.py (run there by test_device_on_unix_port.py).
- End to end: seeded random frames and mutated commands over a real WebSocket to the
  simulator; each gets its reply, its pong or a clean close with the right code, and
  the simulator keeps serving.
"""

import json
import os
import struct
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "device"))
import test_fuzz_engine as fuzz  # noqa: E402
from simclient import RawWs  # noqa: E402
from pinsock.transport import wsframe  # noqa: E402
from pinsock.transport.hub import Client  # noqa: E402
from pinsock.transport.websocket import close_reply as _close_reply  # noqa: E402

# No example database on disk; enough examples to matter, few enough for ~10 s.
FUZZ = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

HEX = "0123456789abcdef"
HEADS = ["v", "d", "p", "t", "tu", "tuv", "s", "sn", "sv", "sb", "sc", "st", "sm", "x", "",
         "vv", "tuvv", "S", "V"]
EDGES = st.one_of(st.just(""), st.sampled_from(list(HEX)),
                  st.text(alphabet="0123456789abcdefgzV -=", max_size=3))
VALUES = st.one_of(st.none(), st.sampled_from(["0", "1", "2", "3", "4", "", " 1", "01", "=",
                                               "kitchen", "Kitchen light #2", "x" * 33]),
                   st.text(max_size=80))


@st.composite
def near_valid(draw):
    text = draw(st.sampled_from(HEADS)) + draw(EDGES)
    value = draw(VALUES)
    return text if value is None else text + "=" + value


def engine_rig():
    rig = fuzz.Rig("hypothesis_%d" % os.getpid())  # settings files of its own
    client = Client(None)
    rig.device.connected(client)
    return rig, client


@FUZZ
@given(st.text(max_size=400))
def test_any_text_gets_one_valid_reply(text):
    rig, client = engine_rig()
    fuzz.check_reply(text, rig.engine.execute(client, text, 0))


@FUZZ
@given(near_valid())
def test_near_valid_command_gets_one_valid_reply(text):
    rig, client = engine_rig()
    fuzz.check_reply(text, rig.engine.execute(client, text, 0))


@FUZZ
@given(st.lists(st.one_of(near_valid(), st.text(max_size=40)), max_size=30))
def test_any_sequence_leaves_the_device_whole(texts):
    rig, client = engine_rig()
    for n, text in enumerate(texts):
        fuzz.check_reply(text, rig.engine.execute(client, text, n))
    fuzz.check_state(rig, client)


@FUZZ
@given(st.lists(st.text(max_size=80), max_size=20))
def test_device_answers_each_message_with_one_text_frame(texts):
    rig = fuzz.Rig("hypothesis_%d" % os.getpid())
    client = Client(None)
    client.outbox_len = len(texts) + 1  # room for every frame, to look at them all
    client._frames = [None] * client.outbox_len
    rig.service.join(client)
    for text in texts:
        rig.device.received(rig.service, client, text)
    frames = [f for f in client._frames if f is not None]
    assert len(frames) == 1 + len(texts)  # the report on connect, one reply each
    for text, frame in zip(texts, frames[1:]):
        opcode, payload = fuzz.server_frame(frame)
        assert opcode == wsframe.OP_TEXT
        fuzz.check_reply(text, payload.decode())


@FUZZ
@given(st.binary(max_size=600))
def test_frame_reader_survives_any_bytes(data):
    ended, code, client, texts = fuzz.read_stream(data)
    assert ended in ("close", "refused", "end")
    if ended == "refused":
        assert code in fuzz.FRAME_CLOSE_CODES


@st.composite
def client_frames(draw):
    """A random client frame from hypothesis' choices: (bytes, text it must deliver)."""
    fin = draw(st.sampled_from([0x80, 0x80, 0x80, 0]))
    rsv = draw(st.sampled_from([0, 0, 0, 0x10, 0x20, 0x40]))
    opcode = draw(st.sampled_from([1, 1, 1, 9, 10, 8, 0, 2, 3, 11, 15]))
    masked = draw(st.sampled_from([0x80, 0x80, 0x80, 0]))
    payload = draw(st.one_of(near_valid().map(lambda t: t.encode()),
                             st.binary(max_size=300)))
    bits = draw(st.sampled_from([7, 16, 64]))
    mask = draw(st.binary(min_size=4, max_size=4))
    return fuzz.encode_client_frame(fin, rsv, opcode, masked, payload, bits, mask)


@FUZZ
@given(st.lists(client_frames(), min_size=1, max_size=5))
def test_frame_reader_delivers_exactly_the_well_formed_text_frames(frames):
    data = b"".join(frame for frame, _ in frames)
    ended, code, client, texts = fuzz.read_stream(data)
    wanted = [text for _, text in frames if text is not None]
    assert texts == wanted[:len(texts)]
    if ended == "end":
        assert texts == wanted
    if ended == "refused":
        assert code in fuzz.FRAME_CLOSE_CODES


@FUZZ
@given(st.binary(max_size=125))
def test_close_frame_reply_is_always_a_valid_close(payload):
    code, reason = _close_reply(memoryview(payload), len(payload))
    assert wsframe.close_code_valid(code)
    frame = wsframe.encode_close(code, reason)
    assert frame[0] == 0x88 and frame[1] == len(frame) - 2 <= 125
    if len(payload) >= 2 and code not in (1002, 1007):
        assert code == struct.unpack("!H", payload[:2])[0]


# --- end to end ----------------------------------------------------------------------
E2E_SEED = 0xF00D
E2E_STEPS = 600


class Wire(RawWs):
    """A raw WebSocket connection to the simulator."""

    def __init__(self, sim):
        super().__init__(sim.http_port, timeout=5)
        opcode, payload = self.next_frame()
        assert opcode == 1 and "dipSwitches" in json.loads(payload)

    def next_answer(self):
        """The next frame that is not an update or report (a fuzzed `tuv` may ask for
        updates of outputs that fuzzed `v` writes change)."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == 1:
                msg = json.loads(payload)
                if "u" in msg or "dipSwitches" in msg:
                    continue
            return opcode, payload

    def hung_up(self):
        """True once the device has closed the connection."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True



def expected_outcome(frame):
    """What the device must answer one whole client frame with, from the protocol:
    ("reply", text) | ("pong", payload) | ("none", None) | ("close", code) for a
    refused frame | ("answer close", code) for our close frame."""
    b0, b1 = frame[0], frame[1]
    try:
        opcode, n = wsframe.check_header(b0, b1)
    except wsframe.FrameError as exc:
        return "close", exc.code
    start = 2
    if n == 126:
        n, start = struct.unpack("!H", frame[2:4])[0], 4
    elif n == 127:
        n, start = struct.unpack("!Q", frame[2:10])[0], 10
    if n > 256:
        return "close", wsframe.CLOSE_TOO_BIG
    mask = frame[start:start + 4]
    payload = bytes(b ^ mask[i & 3] for i, b in enumerate(frame[start + 4:]))
    if opcode == wsframe.OP_TEXT:
        try:
            return "reply", payload.decode()
        except UnicodeError:
            return "close", wsframe.CLOSE_BAD_DATA
    if opcode == wsframe.OP_PING:
        return "pong", payload
    if opcode == wsframe.OP_PONG:
        return "none", None
    return "answer close", _close_reply(memoryview(payload), len(payload))[0]


def test_e2e_random_frames_each_get_a_reply_or_a_clean_close(start_sim):
    # A rate far above what the test sends: every command is carried out.
    sim = start_sim(debounce_ms=0, max_commands_per_s=100000)
    rand = fuzz.Rand(E2E_SEED)
    seen = {"reply": 0, "pong": 0, "none": 0}
    closes = {}
    wire = Wire(sim)
    try:
        for step in range(E2E_STEPS):
            if rand.below(2):
                frame, _ = fuzz.client_frame(rand)
            else:  # a mutated command in a well-formed frame
                text = next(fuzz.messages(rand, 1)).encode()
                mask = rand.bytes(4)
                head = bytes((0x81, 0x80 | len(text))) if len(text) < 126 else \
                    bytes((0x81, 0x80 | 126)) + struct.pack("!H", len(text))
                frame = head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(text))
            kind, want = expected_outcome(frame)
            wire.sock.sendall(frame)
            where = "step %d: sent %r, expected %s %r" % (step, frame[:24], kind, want)
            if kind == "reply":
                opcode, payload = wire.next_answer()
                assert opcode == 1, where
                fuzz.check_reply(want, payload.decode())
            elif kind == "pong":
                assert wire.next_answer() == (0xA, want), where
            elif kind != "none":  # a close: for a refused frame, or answering ours
                opcode, payload = wire.next_answer()
                assert opcode == 8, where
                assert struct.unpack("!H", payload[:2])[0] == want, (where, payload)
                if kind == "answer close":
                    # It answered our close frame: the handshake is done, it hangs up.
                    assert wire.hung_up(), where
                # (A refused frame: it reads no more and hangs up within
                # Client.close_wait_ms, or when we do, as here.)
                closes[want] = closes.get(want, 0) + 1
                wire.close()
                wire = Wire(sim)
                continue
            seen[kind] += 1
        # Whatever came last, the connection answers a command next and nothing else.
        wire.sock.sendall(bytes((0x81, 0x82)) + b"\x00\x00\x00\x00" + b"v3")
        assert wire.next_answer() == (1, b'{"v":{"3":"1"}}')
    finally:
        wire.close()
    print("\ne2e fuzz: %d frames: %r, closes by code %r" % (E2E_STEPS, seen, closes))
    assert seen["reply"] and seen["pong"] and len(closes) >= 3, (seen, closes)
    assert sim.alive()
    assert "Traceback" not in "".join(sim.output), "".join(sim.output)
