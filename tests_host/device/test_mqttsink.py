# The MQTT sink (transport/mqttsink.py) and the MQTT link's packet handling
# (transport/mqtt.py) without a broker: the link through a fake socket, the sink
# through a fake link. Runs on CPython and the unix port.
import json

from fakes import FakeHardware, FakeStatus, FakeStatusAt, NoSettings, board_ios
from pinsock.logic.device import Device
from pinsock.logic.eventlog import EventLog
from pinsock.logic.iobank import IoBank
from pinsock.protocol.commands import CommandEngine
from pinsock.protocol.report import SwitchReport
from pinsock.transport import mqttcodec as mc
from pinsock.transport.mqtt import MqttLink
from pinsock.transport.mqttsink import MqttSink, record_into, record_len

BASE = "p/n/"




class FakeLink:
    """What the sink sees of MqttLink: it keeps (topic, payload, retain, ref)."""

    host = "b.lan"
    port = 1883
    last_error = ""
    retry_at = 0
    connects = 1

    def __init__(self):
        self.sent = []
        self.subscribed = []
        self.connected = True
        self.packet = bytearray(256)
        self._pending = None

    def publish(self, topic, payload, retain=False, ref=None, qos=1):
        if not self.connected:
            return False
        self.sent.append((bytes(topic).decode(), bytes(payload).decode(), retain, ref))
        return True

    def begin(self, topic, payload_len, retain=False, ref=None, qos=1):
        if not self.connected:
            return -1
        self._pending = (topic, payload_len, retain, ref)
        if payload_len + 10 > len(self.packet):  # as MqttLink.begin: a bigger one
            self.packet = bytearray(payload_len + 10)
        return 10

    def end(self, n):
        topic, payload_len, retain, ref = self._pending
        assert n - 10 == payload_len
        self.publish(topic, self.packet[10:n], retain, ref)
        self.packet = bytearray(256)

    def subscribe(self, topics):
        self.subscribed.append(topics)


def make():
    ios = board_ios(8, 8)
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    device = Device(bank, SwitchReport(bank, True),
                    CommandEngine(bank, NoSettings(), FakeStatus()), EventLog(8), FakeStatusAt())
    logged = []
    sink = MqttSink(device, "p", "n", log=logged.append)
    sink.link = FakeLink()
    device.add_sink(sink)
    return device, sink, hw, logged


def topics(sent):
    return [s[0] for s in sent]


def test_a_connect_subscribes_then_publishes_everything_retained():
    device, sink, _, _ = make()
    link = sink.link
    link.sent = []
    sink.connected(link)
    assert link.subscribed == [[(BASE + "cmd", 1), (BASE + "io/+/set", 1), ("p/all/cmd", 1)]]
    assert topics(link.sent) == ([BASE + "status", BASE + "state"]
                                 + [BASE + "io/%x" % io for io in range(16)])
    assert all(retain for _, _, retain, _ in link.sent)
    assert link.sent[0][1] == "online"
    assert link.sent[1][1] == device.report.text(0)
    assert [s[1] for s in link.sent[2:]] == ["1"] * 8 + ["0"] * 8


def test_a_transition_publishes_state_event_and_io_in_that_order():
    device, sink, hw, _ = make()
    link = sink.link
    link.sent = []
    hw.set(2, 0, 5)  # DIP 3 closes
    device.bank.scan(5)
    assert topics(link.sent) == [BASE + "state", BASE + "event", BASE + "io/2"]
    state, event, io = link.sent
    assert event[1] == device.log.record(1) and not event[2] and event[3] == 1
    assert json.loads(state[1])["dipSwitches"]["dip3"] == "On" and state[2]
    assert io[1:3] == ("0", True)


def test_the_event_record_written_in_place_is_the_one_get_log_gives():
    log = EventLog(4)
    buf = bytearray(80)
    for seq, (io, level, ms) in enumerate([(0, 1, 0), (15, 0, 9), (10, 1, 123456789),
                                           (7, 0, 10), (3, 1, 99999)], 1):
        log.append(io, level, ms)
        n = record_into(log, buf, 3, seq, ms)
        assert bytes(buf[3:n]).decode() == log.record(seq), seq
        assert n - 3 == record_len(seq, ms) == len(log.record(seq)), seq


def test_button_and_reset_records_written_in_place_are_the_ones_get_log_gives():
    # logic/kinds.py: code 2 + event is a button event (1000 + event), 7 a counter
    # reset; GET /log and the MQTT event carry the same text.
    log = EventLog(8)
    buf = bytearray(80)
    for seq, (io, code, ms) in enumerate([(14, 2, 5), (14, 6, 1234), (12, 7, 99),
                                          (15, 3, 7)], 1):
        log.append(io, code, ms)
        n = record_into(log, buf, 3, seq, ms)
        assert bytes(buf[3:n]).decode() == log.record(seq), seq
        assert n - 3 == record_len(seq, ms, code) == len(log.record(seq)), seq
    assert [json.loads(log.record(seq)) for seq in (1, 2, 3)] == [
        {"seq": 1, "t": 5, "io": "e", "b": "1000"}, {"seq": 2, "t": 1234, "io": "e", "b": "1004"},
        {"seq": 3, "t": 99, "io": "c", "c": "0"}]


def test_commands_reply_on_reply_and_io_set_drives_an_output():
    device, sink, _, _ = make()
    link = sink.link
    link.sent = []
    sink.message(memoryview(b"p/n/cmd"), memoryview(b"d9=1"), False)
    assert link.sent[-1][:3] == (BASE + "reply", '{"d":{"9":"1"}}', False)
    link.sent = []
    sink.message(b"p/n/io/9/set", b"1", False)
    assert device.bank.level[9] == 1
    assert link.sent == [(BASE + "io/9", "1", True, None)]  # no reply when it worked
    sink.message(b"p/n/io/8/set", b"1", False)  # an input
    assert link.sent[-1][1] == '{"e":{"c":"v8","m":"io is an input"}}'
    sink.message(b"p/all/cmd", b"v9", False)
    assert link.sent[-1][1] == '{"v":{"9":"1"}}'
    sink.message(b"p/n/cmd", b"tuv0=3", False)
    assert link.sent[-1][1] == ('{"e":{"c":"tuv0","m":"no triggers over mqtt: every io is'
                                ' published"}}')
    sink.message(b"p/n/io/zz/set", b"1", False)  # not a topic of ours: nothing
    assert len(link.sent) == 4


def test_a_retained_command_is_ignored_and_logged():
    device, sink, _, logged = make()
    link = sink.link
    link.sent = []
    sink.message(b"p/n/cmd", b"d9=1", True)
    sink.message(b"p/n/io/9/set", b"1", True)
    assert link.sent == [] and device.bank.direction[9] == 0 and sink.ignored == 2
    assert "ignoring a retained message on p/n/cmd" in logged[0]


def test_nothing_is_published_while_the_link_is_down():
    device, sink, hw, _ = make()
    link = sink.link
    link.connected = False
    link.sent = []
    hw.set(2, 0, 5)
    device.bank.scan(5)
    assert link.sent == []


# --- the link, through a fake socket --------------------------------------------------

class FakeSocket:
    """Takes at most `room` bytes per write (None: all), like a non-blocking socket."""

    def __init__(self, room=None):
        self.written = bytearray()
        self.room = room
        self.closed = False

    def write(self, data, off=0, n=None):
        n = len(data) - off if n is None else n
        if self.room is not None:
            n = min(n, self.room)
        self.written.extend(bytes(data[off : off + n]))
        return n

    def close(self):
        self.closed = True


class FakeStream:
    def __init__(self, sock):
        self.s = sock
        self.out_buf = b""


class Handler:
    def __init__(self):
        self.messages = []
        self.resent = []

    def message(self, topic, payload, retain):
        self.messages.append((bytes(topic), bytes(payload), retain))

    def resend(self, ref):
        self.resent.append(ref)


def up_link(handler=None, room=None):
    link = MqttLink("h", 1883, "c", handler or Handler(), log=lambda text: None)
    link.stream = FakeStream(FakeSocket(room))
    link.state = 2  # _UP: as after a CONNACK
    return link


def feed(link, data):
    """Bytes as if read from the socket, then handled."""
    link._rx[link._rx_have : link._rx_have + len(data)] = data
    link._rx_have += len(data)
    link._process()


def test_the_link_publishes_qos1_with_rising_packet_ids():
    link = up_link()
    assert link.publish(b"t", b"1", True)
    assert link.publish(b"t", b"0")
    # 33: QoS 1 retained, id 1; then 32: QoS 1, id 2.
    assert bytes(link.stream.s.written) == b"\x33\x06\x00\x01t\x00\x011\x32\x06\x00\x01t\x00\x020"
    link.state = 0
    assert not link.publish(b"t", b"1")


def test_unacknowledged_publishes_with_a_ref_are_handed_back_after_a_reconnect():
    link = up_link()
    for seq in (1, 2, 3):
        link.publish(b"e", b"x", False, seq)  # ids 1, 2, 3
    link.publish(b"s", b"x", True)  # id 4, no ref: not tracked
    feed(link, b"\x40\x02\x00\x02" + b"\x40\x02\x00\x04")  # PUBACK 2, PUBACK 4
    assert link._unacked() == [1, 3]
    assert link._unacked() == []


def test_the_oldest_tracked_publish_is_given_up_when_too_many_wait():
    link = up_link()
    n = MqttLink.max_inflight
    for seq in range(1, n + 3):
        link.publish(b"e", b"x", False, seq)
    assert link._unacked() == list(range(3, n + 3))


def test_incoming_publishes_are_acknowledged_and_handed_over_even_in_pieces():
    handler = Handler()
    link = up_link(handler)
    packet = mc.publish("p/n/cmd", b"d9=1", 1, False, False, 0x0102)
    feed(link, packet[:1])  # the first byte alone: nothing yet
    assert handler.messages == []
    feed(link, packet[1:5])
    feed(link, packet[5:] + b"\xd0\x00")  # the rest, and a PINGRESP after it
    assert handler.messages == [(b"p/n/cmd", b"d9=1", False)]
    assert bytes(link.stream.s.written) == b"\x40\x02\x01\x02"  # PUBACK 0x0102
    assert link._rx_have == 0
    feed(link, mc.publish("p/n/cmd", b"v", 0, True))  # QoS 0: no PUBACK
    assert handler.messages[-1] == (b"p/n/cmd", b"v", True)
    assert len(link.stream.s.written) == 4


def test_a_packet_longer_than_the_buffer_is_read_past():
    handler = Handler()
    link = up_link(handler)
    big = mc.publish("p/n/cmd", b"x" * (MqttLink.max_packet_len + 10))
    feed(link, big[:100])
    assert link._skip == len(big) - 100  # the rest is read and dropped
    link._skip = 0  # (what _fill does as it reads the rest)
    feed(link, mc.publish("p/n/cmd", b"v"))
    assert handler.messages == [(b"p/n/cmd", b"v", False)]


def test_what_the_socket_does_not_take_waits_in_order():
    import pinsock.transport.mqtt as mqtt_module

    link = up_link(room=3)
    started = []

    def create_task(coro):  # the drain task is not run here, only counted
        started.append(coro)
        coro.close()

    real = mqtt_module.asyncio.create_task
    mqtt_module.asyncio.create_task = create_task
    try:
        link.publish(b"t", b"1", False, None, 0)  # 30 04 00 01 74 31: 3 bytes go now
        link.publish(b"t", b"2", False, None, 0)  # all of it waits behind the rest
    finally:
        mqtt_module.asyncio.create_task = real
    assert bytes(link.stream.s.written) == b"\x30\x04\x00"
    assert bytes(link._backlog) == b"\x01t1" + b"\x30\x04\x00\x01t2"
    assert len(started) == 1 and link._writing


def test_discovery_is_written_piece_by_piece_with_its_length_in_utf8_bytes():
    device, sink, _, _ = make()
    sink.discovery_prefix = "ha"
    link = sink.link
    # A label and a name with quotes and a backslash (printable ASCII, as `l` and `sn`
    # take), and a board's label of letters of more than one byte.
    device.execute(sink.client, 'l9=say "hi" \\ ok')
    device.execute(sink.client, 'sn="k\\"')
    device.bank.labels[8] = "K\u00fcche"
    link.sent = []
    sink.publish_discovery()  # FakeLink.end checks the length begin() was told
    topic, text, _, _ = link.sent[-1]
    message = json.loads(text)
    assert topic == "ha/device/n/config"
    assert message["cmps"]["io9"]["name"] == device.bank.labels[9] == 'say "hi" \\ ok'
    assert message["cmps"]["io8"]["name"] == "K\u00fcche"
    assert message["dev"]["name"] == device.engine.settings.name == '"k\\"'
    assert len(message["cmps"]) == device.bank.count


def test_discovery_after_connect_after_the_birth_message_a_direction_change_a_label():
    device, sink, _, _ = make()
    sink.discovery_prefix = "ha"  # as MqttSink(..., "ha", retain_discovery=True) sets up
    sink.retain_discovery = True
    sink.birth_topic = b"ha/status"
    link = sink.link
    link.sent = []
    sink.connected(link)
    topic, text, retain, _ = link.sent[-1]
    assert topic == "ha/device/n/config" and retain
    assert json.loads(text)["cmps"]["io9"]["p"] == "binary_sensor"
    link.sent = []
    sink.tick(0)
    assert link.sent == []  # nothing changed
    sink.discovery_jitter_ms = 0
    sink.message(b"ha/status", b"online", False)  # Home Assistant's birth
    sink.tick(sink._discovery_at)
    assert topics(link.sent) == ["ha/device/n/config"]
    sink.tick(sink._discovery_at + 1000)
    assert len(link.sent) == 1  # once
    device.execute(sink.client, "d9=1")
    sink.tick(0)
    assert json.loads(link.sent[-1][1])["cmps"]["io9"]["p"] == "switch"
    link.sent = []
    device.execute(sink.client, "l9=pump")  # a label is the entity's name
    sink.tick(0)
    assert json.loads(link.sent[-1][1])["cmps"]["io9"]["name"] == "pump"
    sink.tick(0)
    assert len(link.sent) == 1  # once


def test_removing_the_board_from_home_assistant_holds_until_asked_back():
    device, sink, _, _ = make()
    sink.discovery_prefix = "ha"
    sink.retain_discovery = True
    sink.birth_topic = b"ha/status"
    link = sink.link
    link.sent = []
    settings = device.engine.settings
    sink.announce(False)
    # An empty retained message on the discovery topic: Home Assistant removes the device.
    assert link.sent == [("ha/device/n/config", "", True, None)]
    assert settings.announce is False
    # Not announced again: not after a connect (the empty one again, in case the board
    # was away when it was asked), not after the birth message, not on a direction change.
    link.sent = []
    sink.connected(link)
    assert link.sent[-1] == ("ha/device/n/config", "", True, None)
    link.sent = []
    sink.discovery_jitter_ms = 0
    sink.message(b"ha/status", b"online", False)
    device.execute(sink.client, "d9=1")
    sink.tick(sink._discovery_at + 1000)
    assert not [t for t in topics(link.sent) if t.startswith("ha/")]
    # Asked back: the discovery message, retained as retain_discovery says.
    sink.announce(True)
    topic, text, retain, _ = link.sent[-1]
    assert topic == "ha/device/n/config" and retain and json.loads(text)["dev"]["ids"]
    assert settings.announce is True


class RecordingSink:
    def __init__(self):
        self.changes = 0

    def report_changed(self, report, seq):
        pass

    def level_changed(self, io, level):
        pass

    def logged(self, seq):
        pass

    def reply(self, client, text):
        pass

    def link_changed(self):
        self.changes += 1


def test_the_link_state_is_what_sq_reads_and_each_change_is_told():
    device, sink, _, _ = make()
    watcher = RecordingSink()
    device.add_sink(watcher)
    link = sink.link
    assert sink.link_state(5000) == (1, "b.lan:1883", "", 0, 1, 1)
    sink.connected(link)
    assert watcher.changes == 1
    link.connected = False
    link.last_error = "the broker closed the connection"
    link.retry_at = 7001  # 2.001 s after 5000: the next try "in 3 s", rounded up
    sink.disconnected(link)
    assert watcher.changes == 2
    assert sink.link_state(5000) == (0, "b.lan:1883", "the broker closed the connection", 3,
                                     1, 1)
    assert sink.link_state(7001)[3] == 0  # due: trying now
    assert sink.link_state(9000)[3] == 0


class CountingSocket:
    """Takes every write whole, keeping only how many bytes (a list would allocate)."""

    def __init__(self):
        self.count = 0

    def write(self, data, off=0, n=None):
        self.count += n
        return n


def test_publishing_a_change_allocates_nothing():
    # Memory: event, state and io/<h> for a DIP switch change go from the device
    # through the sink and the link into the socket without a byte allocated.
    # heap_lock() makes any allocation raise.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    device, sink, hw, _ = make()
    link = up_link()
    link.stream = FakeStream(CountingSocket())
    link.handler = sink
    sink.link = link
    for t in range(1, 91):
        io = t % 8
        hw.set(io, 1 - hw.levels[io], t)  # each switch flips in turn
        locked = t > 30  # from then on every report length (two-digit seqs) came up
        if locked:
            heap_lock()
        try:
            device.bank.scan(t)
        finally:
            if locked:
                heap_unlock()
    # 90 transitions, three QoS 1 publishes each; the events as GET /log gives them.
    assert device.log.seq == 90 and link._packet_id == 90 * 3
    assert link.stream.s.count > 90 * 3 * 20
    buf = bytearray(64)
    ms = sink._event_ms(90 % device.log.size)
    assert bytes(buf[: record_into(device.log, buf, 0, 90, ms)]).decode() == (
        device.log.record(90))


def test_acknowledgements_allocate_nothing():
    # Memory: the broker's PUBACK for each publish is handled (the in-flight ring, the
    # receive buffer emptied) without a byte allocated.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    link = up_link()
    link.stream = FakeStream(CountingSocket())
    acks = [bytes((0x40, 2, 0, pid)) for pid in range(1, 41)]
    for seq in range(1, 41):
        link.publish(b"e", b"x", False, seq)
    rx = link._rx
    for n, ack in enumerate(acks):
        locked = n > 0
        if locked:
            heap_lock()
        try:
            for i in range(4):  # as sock.readinto(rx) puts it (feed() makes a slice)
                rx[i] = ack[i]
            link._rx_have = 4
            link._process()
        finally:
            if locked:
                heap_unlock()
    assert link._flight_count == 0 and link._rx_have == 0


class PollableFake:
    """Stands in for a socket in asyncio's poller (MicroPython's select.poll calls
    ioctl for objects without a file descriptor): readable while `pending` bytes
    wait."""

    def __init__(self):
        self.pending = 0

    def ioctl(self, request, arg):
        if request == 3:  # MP_STREAM_POLL
            return 1 & arg if self.pending else 0  # POLLIN
        return -1  # MP_STREAM_ERROR: no file descriptor (0 would be stdin's)


def _poll_base():
    # On MicroPython, a class select.poll can poll: io.IOBase's subclasses' ioctl.
    import io

    return getattr(io, "IOBase", None)


def test_the_reader_keeps_its_socket_registered_between_wake_ups():
    # asyncio's IO queue makes a new entry and poll registration at every wait on a
    # socket, and forgets them at every wake-up (about 100 bytes): the reader of the
    # link keeps them instead (mqtt.Readable), so a PUBACK per publish allocates
    # nothing. Woken 50 times, 0 bytes on the 64-bit port and a chip; on a 32-bit unix
    # port, where a heap address is beyond a small int, the socket's id is a new long
    # int where asyncio's wake-up looks it up and twice in the poller (modify), so up to
    # 3 of them a wake-up there. Without keep(): 96 bytes a wake-up on the 64-bit port.
    import asyncio
    import gc

    from pinsock.transport.mqtt import Readable

    base = _poll_base()
    if not hasattr(asyncio, "core") or base is None:
        import pytest

        pytest.skip("the reader waits in MicroPython's asyncio IO queue")

    class Fake(base, PollableFake):
        pass

    sock = Fake()
    sock.pending = 0
    readable = Readable()
    woken = [0]

    async def reader():
        readable.keep(sock)
        while True:
            await readable
            sock.pending = 0
            woken[0] += 1

    async def main():
        task = asyncio.create_task(reader())
        await asyncio.sleep_ms(0)
        for n in range(5):  # warm up: the entry and registration made once
            sock.pending = 1
            while woken[0] == n:
                await asyncio.sleep_ms(0)
        queue = asyncio.core._io_queue
        entry = queue.map[id(sock)]
        gc.collect()
        gc.disable()
        try:
            before = gc.mem_alloc()
            id(sock)
            id_cost = gc.mem_alloc() - before
            before = gc.mem_alloc()
            for n in range(5, 55):  # (inline: a coroutine called would make a generator)
                sock.pending = 1
                while woken[0] == n:
                    await asyncio.sleep_ms(0)
            allocated = gc.mem_alloc() - before
        finally:
            gc.enable()
        assert woken[0] == 55, woken
        assert queue.map[id(sock)] is entry  # the same entry all along
        # (64: what asyncio's own sleep_ms(0) may make once in a while.)
        assert allocated <= 50 * 3 * id_cost + 64, (allocated, id_cost)
        task.cancel()
        await asyncio.sleep_ms(0)
        assert id(sock) not in queue.map  # a cancelled reader leaves the queue
        sock.pending = 1
        readable.keep(sock)  # waiting again after release() makes a new entry
        readable.release()

    asyncio.new_event_loop()
    asyncio.run(main())


# --- the IOs that are more than on and off (logic/kinds.py) --------------------------

def test_the_functions_the_sink_knows_are_the_kinds_own():
    from pinsock.logic import button, kinds
    from pinsock.transport import mqttsink

    assert (mqttsink.FN_ANALOG, mqttsink.FN_PWM, mqttsink.FN_COUNTER,
            mqttsink.FN_BUTTON) == (kinds.FN_ANALOG, kinds.FN_PWM, kinds.FN_COUNTER,
                                     kinds.FN_BUTTON)
    # The event types are logic/button.py's events by their numbers (code - 1000).
    assert [getattr(button, name.upper()) for name in mqttsink.BUTTON_EVENTS] == [0, 1, 2, 3, 4]


def kinds_sink():
    device, sink, hw, logged = make()
    link = sink.link
    for command in ("f8=a", "fa=w", "fc=c", "fe=b"):
        assert "e" not in json.loads(device.execute(sink.client, command)), command
    link.sent = []
    return device, sink, hw, link


def test_a_connect_publishes_each_io_as_its_function_has_it():
    device, sink, hw, link = kinds_sink()
    hw.kinds.level[8] = 32768
    device.bank.kinds.poll(0)
    device.execute(sink.client, "wa=300")
    hw.kinds.counts[12] = 7
    device.bank.kinds.poll(1000)
    link.sent = []
    sink.connected(link)
    io = {t[len(BASE) + 3:]: (payload, retain) for t, payload, retain, _ in link.sent
          if t.startswith(BASE + "io/")}
    assert io["8"] == ("512", True) and io["a"] == ("300", True) and io["c"] == ("7", True)
    assert io["e"] == ("", True)  # a button's events are not retained: cleared
    assert io["9"] == ("0", True) and io["0"] == ("1", True)  # digital: levels


def test_a_function_change_publishes_what_io_h_carries_now_and_discovery_follows():
    device, sink, hw, _ = make()
    link = sink.link
    sink.discovery_prefix = "ha"
    link.sent = []
    sink.connected(link)
    link.sent = []
    hw.kinds.level[8] = 65535
    device.execute(sink.client, "f8=a")
    assert link.sent[0][:3] == (BASE + "io/8", "1023", True)
    sink.tick(0)
    assert topics(link.sent)[-1] == "ha/device/n/config"
    assert json.loads(link.sent[-1][1])["cmps"]["io8"]["p"] == "sensor"
    link.sent = []
    sink.tick(0)
    assert link.sent == []  # once
    device.execute(sink.client, "f8=d")
    assert link.sent[-1][:3] == (BASE + "io/8", "0", True)  # a level again
    sink.tick(0)
    assert json.loads(link.sent[-1][1])["cmps"]["io8"]["p"] == "binary_sensor"


def test_an_analog_input_is_published_past_its_deadband_and_interval():
    from pinsock.compat import ticks_add, ticks_ms
    from pinsock.logic.kinds import Kinds

    device, sink, hw, link = kinds_sink()  # f8=a published io/8 at about ticks_ms()
    kinds = device.bank.kinds
    level = hw.kinds.level
    band, every = MqttSink.analog_deadband, MqttSink.analog_interval_ms
    t = ticks_add(ticks_ms(), every)  # the first sample past the interval
    level[8] = 100 << 6
    kinds.poll(t)
    assert link.sent == [(BASE + "io/8", "100", True, None)]
    level[8] = (100 + band) << 6  # past the deadband, but too soon after the last...
    kinds.poll(ticks_add(t, Kinds.sample_ms))
    kinds.poll(ticks_add(t, every - Kinds.sample_ms))
    assert len(link.sent) == 1
    kinds.poll(ticks_add(t, every))  # ... until the first sample after the interval
    assert link.sent[-1][:2] == (BASE + "io/8", "%d" % (100 + band))
    level[8] = (100 + 2 * band - 1) << 6  # within the deadband: not published, however late
    kinds.poll(ticks_add(t, 5 * every))
    assert len(link.sent) == 2


def test_pwm_duty_counts_and_button_events_are_published():
    device, sink, hw, link = kinds_sink()
    kinds = device.bank.kinds
    device.execute(sink.client, "wa=512")
    assert link.sent[-1][:3] == (BASE + "io/a", "512", True)
    n = len(link.sent)
    device.execute(sink.client, "wa=512")  # the same duty: nothing
    device.execute(sink.client, "wha=2000")  # the frequency is not on io/<h>
    assert len(link.sent) == n
    hw.kinds.counts[12] = 3
    kinds.poll(0)
    assert link.sent[-1][:3] == (BASE + "io/c", "3", True)
    link.sent = []
    kinds._button_event(14, 2, 0)  # a short release, as logic/button.py decides one
    event, io = link.sent
    assert event[0] == BASE + "event"  # logged first
    assert io[:3] == (BASE + "io/e", '{"event_type":"short_release","code":"1002"}', False)


def test_io_set_drives_a_pwm_duty_and_resets_a_counter():
    device, sink, hw, link = kinds_sink()
    sink.message(b"p/n/io/a/set", b"1023", False)
    assert device.bank.kinds.duty[10] == 1023 and hw.kinds.duty[10] == 65535
    assert link.sent[-1][:3] == (BASE + "io/a", "1023", True)  # no reply: it worked
    sink.message(b"p/n/io/a/set", b"2000", False)
    assert link.sent[-1][:2] == (BASE + "reply", '{"e":{"c":"wa","m":"value out of range"}}')
    hw.kinds.counts[12] = 9
    device.bank.kinds.poll(0)
    sink.message(b"p/n/io/c/set", b"0", False)
    assert hw.kinds.counts[12] == 0 and link.sent[-1][:2] == (BASE + "io/c", "0")
    sink.message(b"p/n/io/8/set", b"1", False)
    assert link.sent[-1][1] == '{"e":{"c":"v8","m":"io is not digital"}}'


def test_analog_samples_published_or_not_allocate_nothing():
    # Memory: four analog inputs sampled every Kinds.sample_ms, each sample told to the
    # MQTT sink, which publishes some (past the deadband and interval) through the link
    # into the socket, with the heap locked.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    ios = board_ios(8, 8)  # four analog inputs: 8 to 11
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    device = Device(bank, SwitchReport(bank, True),
                    CommandEngine(bank, NoSettings(), FakeStatus()), EventLog(8), FakeStatusAt())
    sink = MqttSink(device, "p", "n", log=lambda text: None)
    link = up_link()
    link.stream = FakeStream(CountingSocket())
    link.handler = sink
    sink.link = link
    device.add_sink(sink)
    for io in (8, 9, 10, 11):
        device.execute(sink.client, "f%x=a" % io)
    from pinsock.compat import ticks_add, ticks_ms

    kinds = bank.kinds
    level = hw.kinds.level
    start = ticks_ms()  # (the function changes published io/<h> about then)
    kinds.poll(start)
    sent = link._packet_id
    heap_lock()
    try:
        for t in range(100, 10100, 100):
            level[8] = level[9] = t * 6  # every input moves
            level[10] = level[11] = 60000 - t * 6
            kinds.poll(ticks_add(start, t))
    finally:
        heap_unlock()
    # Past the deadband each time, so one publish per input per analog_interval_ms.
    published = link._packet_id - sent
    assert 4 * 9 <= published <= 4 * 10, published
