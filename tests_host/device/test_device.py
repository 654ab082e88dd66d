# Device: the command rate limit. Runs on CPython and the unix port.
import json

from fakes import FakeClient, FakeHardware, FakeStatus, board_ios
from pinsock.commands import CommandEngine
from pinsock.compat import ticks_add, ticks_ms
from pinsock.device import Device
from pinsock.eventlog import EventLog
from pinsock.hub import ClientHub
from pinsock.iobank import IoBank
from pinsock.report import SwitchReport


class NoSettings:
    name = "x"

    def save(self):
        return True


class Status(FakeStatus):
    def ms_at(self, ticks):
        return 0


def make_device():
    ios = board_ios()
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    bank.start(0)
    hub = ClientHub(2)
    engine = CommandEngine(bank, NoSettings(), FakeStatus())
    return Device(bank, SwitchReport(bank, True), hub, engine, EventLog(8), Status())


def test_burst_up_to_the_rate_is_served_then_rate_limited():
    device = make_device()
    client = FakeClient()
    device.connected(client)
    client.frames.clear()
    now = ticks_ms()
    client.credit_at = now
    rate = Device.max_commands_per_s
    for _ in range(rate + 5):
        device.received(client, "v3")
    replies = [json.loads(t) for t in client.texts()]
    assert replies[:rate] == [{"v": {"3": "1"}}] * rate
    assert replies[rate:] == [{"e": {"c": "v3", "m": "rate limited"}}] * 5


def test_rate_limit_refills_with_time_and_is_per_client():
    device = make_device()
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
    device = make_device()
    client = FakeClient()
    device.connected(client)
    client.frames.clear()
    client.credit, client.credit_at = 0, ticks_ms()
    device.received(client, "sn=" + "x" * 40)
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
    from pinsock.hub import Client

    device = make_device()
    device.log = EventLog(64)
    hw = device.bank.hardware
    clients = [Client(SocketWithRoom()), Client(SocketWithRoom())]
    for client in clients:
        device.connected(client)
    device.received(clients[0], "tuv0=3")
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
