# The WebSocket service as the device's sink: the switch report and the updates as
# frames, made in buffers it owns. Runs on CPython and the unix port.
import json

from fakes import FakeClient, FakeHardware, FakeStatus, FakeStatusAt, NoSettings, board_ios
from pinsock.logic.device import Device
from pinsock.logic.eventlog import EventLog
from pinsock.logic.iobank import IoBank
from pinsock.protocol.commands import CommandEngine
from pinsock.protocol.report import SwitchReport
from pinsock.transport import wsframe
from pinsock.transport.hub import ClientHub
from pinsock.transport.websocket import WebSocketService




def make(dips=8, gpios=8):
    ios = board_ios(dips, gpios)
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    report = SwitchReport(bank, True)
    device = Device(bank, report, CommandEngine(bank, NoSettings(), FakeStatus()),
                    EventLog(64), FakeStatusAt())
    service = WebSocketService(device, ClientHub(4))
    device.add_sink(service)
    return device, service, hw


def test_the_report_frame_is_the_report_in_one_text_frame():
    device, service, hw = make()
    assert bytes(service.report_frame) == wsframe.encode_text(device.report.text(0))
    hw.set(2, 0, 1)
    device.bank.scan(1)
    assert json.loads(device.report.text(1))["dipSwitches"]["dip3"] == "On"
    assert bytes(service.report_frame) == wsframe.encode_text(device.report.text(1))


def test_sixteen_switches_take_the_long_length_field():
    device, service, hw = make(dips=16, gpios=0)
    frame = bytes(service.report_frame)
    assert frame[1] == 126 and frame == wsframe.encode_text(device.report.text(0))


def test_a_newcomer_gets_the_report_and_an_update_only_when_its_trigger_asks():
    device, service, hw = make()
    a, b = FakeClient(), FakeClient()
    service.join(a)
    service.join(b)
    assert a.texts() == b.texts() == [device.report.text(0)]
    device.received(service, a, "tuv9=1")  # rising edges of GPIO 9
    hw.set(9, 1, 5)
    device.bank.scan(5)
    hw.set(9, 0, 6)
    device.bank.scan(6)
    assert a.texts()[1:] == ['{"t":{"u":{"v":{"9":"1"}}}}', '{"u":{"v":{"9":"1"}}}']
    assert b.texts()[1:] == []


def test_a_report_frame_allocates_nothing():
    # Memory: the frame is written into the service's buffer, its view made the
    # first time its length comes up. heap_lock() makes any allocation raise.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    device, service, _ = make()
    frames = []
    for seq in range(9, 40):
        locked = seq > 11  # from then on every length has come up before
        if locked:
            heap_lock()
        try:
            service.report_changed(device.report, seq)
        finally:
            if locked:
                heap_unlock()
        frames.append(bytes(service.report_frame))
    assert [json.loads(f[4:] if f[1] == 126 else f[2:])["seq"] for f in frames] == list(
        range(9, 40))


def test_a_newcomer_is_told_the_newest_record_even_after_a_gpio_change():
    # seq is the newest event-log record (PROTOCOL.md), not that of the last switch.
    device, service, hw = make()
    hw.set(0, 0, 1)  # DIP 1: record 1, a report
    device.bank.scan(1)
    hw.set(9, 1, 2)  # GPIO 9 as an input: records 2 and 3, no report
    device.bank.scan(2)
    hw.set(9, 0, 3)
    device.bank.scan(3)
    assert device.log.seq == 3
    first = FakeClient()
    service.join(first)
    assert json.loads(first.texts()[0])["seq"] == 3
