# Device: what it tells its sinks, and the command rate limit. Runs on CPython and the
# unix port.
import json

from fakes import FakeClient, FakeHardware, FakeStatus, NoSettings, board_ios
from pinsock.protocol.commands import CommandEngine
from pinsock.compat import ticks_add, ticks_ms
from pinsock.logic.device import Device
from pinsock.logic.eventlog import EventLog
from pinsock.transport.hub import ClientHub
from pinsock.logic.iobank import IoBank
from pinsock.protocol.report import SwitchReport
from pinsock.transport.websocket import WebSocketService



class Status(FakeStatus):
    def ms_at(self, ticks):
        return 0


class RecordingSink:
    """A sink that writes down what it hears, as text, in order."""

    def __init__(self):
        self.heard = []

    def report_changed(self, report, seq):
        self.heard.append("report " + report.text(seq))

    def level_changed(self, io, level):
        self.heard.append("level %d %d" % (io, level))

    def logged(self, seq):
        self.heard.append("logged %d" % seq)

    def reply(self, client, text):
        self.heard.append("reply " + text)


def make_device(log_size=8):
    """A device on a fake board with the WebSocket service as its sink (the clients
    get frames, as over a socket)."""
    ios = board_ios()
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    bank.start(0)
    engine = CommandEngine(bank, NoSettings(), FakeStatus())
    device = Device(bank, SwitchReport(bank, True), engine, EventLog(log_size), Status())
    service = WebSocketService(device, ClientHub(2))
    device.add_sink(service)
    return device, service


def test_sinks_hear_every_change_in_order_and_nothing_of_frames():
    device, _ = make_device()
    sink = RecordingSink()
    device.add_sink(sink)
    off = ",".join('"dip%d":"Off"' % n for n in range(2, 9))
    # On joining, the current report (all Off: the switches are pulled up).
    assert sink.heard == ['report {"dipSwitches":{"dip1":"Off",%s},"seq":0}' % off]
    sink.heard.clear()
    hw = device.bank.hardware
    hw.set(0, 0, 5)  # DIP 1 closed: On
    device.bank.scan(5)
    hw.set(9, 1, 6)  # GPIO 9, an input: logged, no report
    device.bank.scan(6)
    assert sink.heard == [
        'report {"dipSwitches":{"dip1":"On",%s},"seq":1}' % off, "logged 1", "level 0 0",
        "logged 2", "level 9 1"]
    sink.heard.clear()
    client = FakeClient()
    device.connected(client)
    device.received(sink, client, "d9=1")  # an output now
    device.received(sink, client, "v9=1")
    assert sink.heard == ['reply {"d":{"9":"1"}}', 'reply {"v":{"9":"1"}}']
    sink.heard.clear()
    device.received(sink, client, "v9=0")  # an output driven: a level, not logged
    assert sink.heard == ["level 9 0", 'reply {"v":{"9":"0"}}']


def test_execute_answers_without_a_sink():
    device, _ = make_device()
    state = FakeClient()
    device.connected(state)
    assert device.execute(state, "v0") == '{"v":{"0":"1"}}'


def test_burst_up_to_the_rate_is_served_then_rate_limited():
    device, service = make_device()
    client = FakeClient()
    service.join(client)
    client.frames.clear()
    now = ticks_ms()
    client.credit_at = now
    rate = Device.max_commands_per_s
    for _ in range(rate + 5):
        device.received(service, client, "v3")
    replies = [json.loads(t) for t in client.texts()]
    assert replies[:rate] == [{"v": {"3": "1"}}] * rate
    assert replies[rate:] == [{"e": {"c": "v3", "m": "rate limited"}}] * 5


def test_rate_limit_refills_with_time_and_is_per_client():
    device, _ = make_device()
    a, b = FakeClient(), FakeClient()
    device.connected(a)
    device.connected(b)
    now = ticks_ms()
    a.credit, a.credit_at = 0, now  # a has used up its credit
    assert device._over_rate(a, now)
    assert not device._over_rate(b, now)
    # 1000 / rate ms later a may send one more
    later = ticks_add(now, 1000 // Device.max_commands_per_s + 1)
    assert not device._over_rate(a, later)
    assert device._over_rate(a, later)


def test_rate_limited_error_names_the_command_without_value():
    device, service = make_device()
    client = FakeClient()
    service.join(client)
    client.frames.clear()
    client.credit, client.credit_at = 0, ticks_ms()
    device.received(service, client, "sn=" + "x" * 40)
    assert json.loads(client.texts()[0]) == {"e": {"c": "sn", "m": "rate limited"}}


class SocketWithRoom:
    """A transport stream whose socket takes every frame at once, copying it into a
    buffer made beforehand (as a socket would into its own: nothing allocated)."""

    def __init__(self):
        self.buf = bytearray(16384)
        self.used = 0

    def write_now(self, frame):
        end = self.used + len(frame)
        self.buf[self.used : end] = frame
        self.used = end
        return True

    def close(self):
        pass

    def texts(self):
        """The payloads of the frames written, in order (server frames: no mask)."""
        out, i, data = [], 0, bytes(self.buf[: self.used])
        while i < len(data):
            n, i = data[i + 1] & 0x7F, i + 2
            if n == 126:
                n, i = (data[i] << 8) | data[i + 1], i + 2
            out.append(data[i : i + n])
            i += n
        return out


def test_a_switch_change_reaches_every_client_and_allocates_nothing():
    # Memory: the edge, the debounce scan, the log record, the report, the push to
    # every client whose socket has room and the `u` updates run with the heap locked
    # (on the unix port): a switch change allocates nothing.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        heap_lock = heap_unlock = None
    from pinsock.transport.hub import Client

    device, service = make_device(64)
    hw = device.bank.hardware
    clients = [Client(SocketWithRoom()), Client(SocketWithRoom())]
    for client in clients:
        service.join(client)
    device.received(service, clients[0], "tuv0=3")
    for client in clients:
        client.stream.used = 0
    for t in range(1, 41):
        # warm-up: seq reaches two digits and dip1 takes both its values
        locked = heap_lock is not None and t > 11
        if locked:
            heap_lock()
        try:
            hw.set(0, (t + 1) & 1, t)  # pulled up: 0 (On) first
            device.bank.scan(t)
        finally:
            if locked:
                heap_unlock()
    # every change: a report to both, and dip1's update to the one that asked
    for client in clients:
        texts = client.stream.texts()
        reports = [json.loads(t) for t in texts if t.startswith(b'{"dip')]
        assert [r["seq"] for r in reports] == list(range(1, 41))
        assert [r["dipSwitches"]["dip1"] for r in reports] == ["On", "Off"] * 20
        updates = [json.loads(t) for t in texts if t.startswith(b'{"u"')]
        assert len(updates) == (40 if client is clients[0] else 0)
