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
