# The DIP switch report. Runs on CPython and the unix port.
import json

from fakes import FakeHardware, board_ios
from pinsock.logic.iobank import IoBank
from pinsock.protocol.report import SwitchReport


def make(active_low=True):
    ios = board_ios()
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    return bank, hw, SwitchReport(bank, active_low)


def test_all_off_when_pulled_up_and_active_low():
    _, _, report = make()
    assert report.text(7) == (
        '{"dipSwitches":{"dip1":"Off","dip2":"Off","dip3":"Off","dip4":"Off",'
        '"dip5":"Off","dip6":"Off","dip7":"Off","dip8":"Off"},"seq":7}')


def test_level_zero_is_on_for_active_low():
    bank, hw, report = make()
    hw.set(0, 0, 1)
    hw.set(7, 0, 1)
    bank.scan(1)
    switches = json.loads(report.text(0))["dipSwitches"]
    assert switches["dip1"] == "On" and switches["dip8"] == "On"
    assert sorted(k for k, v in switches.items() if v == "On") == ["dip1", "dip8"]
    assert len(switches) == 8


def test_active_high_polarity():
    _, _, report = make(active_low=False)
    assert json.loads(report.text(0))["dipSwitches"]["dip3"] == "On"


def test_payload_is_the_text_as_bytes():
    bank, hw, report = make()
    hw.set(2, 0, 1)
    bank.scan(1)
    text = report.text(123456)
    assert json.loads(text)["dipSwitches"]["dip3"] == "On"
    assert bytes(report.payload(123456)) == text.encode()
    assert len(text) <= report.max_len


def test_board_without_dip_switches_reports_none():
    ios = board_ios(dips=0)
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    bank.start(0)
    assert SwitchReport(bank, True).text(3) == '{"dipSwitches":{},"seq":3}'


def test_sixteen_switches_take_the_long_length_field():
    ios = board_ios(dips=16, gpios=0)
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    bank.start(0)
    report = SwitchReport(bank, True)
    text = report.text(1)
    assert len(text) > 125 and len(json.loads(text)["dipSwitches"]) == 16
    assert bytes(report.payload(10**19)) == report.text(10**19).encode()
    assert len(report.text(10**19)) <= report.max_len


def test_payload_is_a_view_the_next_payload_overwrites_and_text_matches_it():
    bank, hw, report = make()
    first = bytes(report.payload(9))
    hw.set(0, 0, 1)
    bank.scan(1)
    second = report.payload(10)
    assert json.loads(report.text(10)) == {
        "dipSwitches": {"dip%d" % n: "On" if n == 1 else "Off" for n in range(1, 9)},
        "seq": 10}
    assert bytes(second) != first and bytes(second) == report.text(10).encode()


def test_seq_digits_from_zero_to_twenty_digits():
    _, _, report = make()
    for seq in (0, 9, 10, 99, 100, 123456789, 2**62, 10**19 + 7):
        text = report.text(seq)
        assert json.loads(text)["seq"] == seq, text
        assert text.endswith('},"seq":%d}' % seq)
        assert bytes(report.payload(seq)) == text.encode()


def test_a_new_report_allocates_nothing():
    # Memory: every switch change builds a report; it is written into the buffer
    # made at start-up. heap_lock() makes any allocation raise MemoryError.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    bank, hw, report = make()
    for seq in (10, 11):  # both lengths of dip1's value, with two-digit numbers
        hw.set(0, seq & 1, seq)
        bank.scan(seq)
        report.payload(seq)
    payloads = []
    for seq in range(12, 40):
        hw.set(0, seq & 1, seq)
        bank.scan(seq)
        heap_lock()
        try:
            payload = report.payload(seq)
        finally:
            heap_unlock()
        payloads.append(bytes(payload))
    assert [json.loads(p)["seq"] for p in payloads] == list(range(12, 40))
