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


def written(report, seq, pos=3):
    """What report.write puts into a buffer at `pos`, and that it touches nothing else."""
    buf = bytearray(b"#" * (pos + report.max_len + 2))
    end = report.write(buf, pos, seq)
    assert end - pos <= report.max_len
    assert buf[:pos] == b"#" * pos and buf[end:] == b"#" * (len(buf) - end)
    return bytes(buf[pos:end])


def test_write_puts_the_text_into_a_buffer_at_a_position():
    bank, hw, report = make()
    hw.set(2, 0, 1)
    bank.scan(1)
    text = report.text(123456)
    assert json.loads(text)["dipSwitches"]["dip3"] == "On"
    assert written(report, 123456) == text.encode()


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
    assert written(report, 10**19) == report.text(10**19).encode()


def test_a_change_shows_in_the_next_write():
    bank, hw, report = make()
    first = written(report, 9)
    hw.set(0, 0, 1)
    bank.scan(1)
    assert json.loads(written(report, 10)) == {
        "dipSwitches": {"dip%d" % n: "On" if n == 1 else "Off" for n in range(1, 9)},
        "seq": 10}
    assert written(report, 10) != first


def test_seq_digits_from_zero_to_twenty_digits():
    _, _, report = make()
    for seq in (0, 9, 10, 99, 100, 123456789, 2**62, 10**19 + 7):
        text = report.text(seq)
        assert json.loads(text)["seq"] == seq, text
        assert text.endswith('},"seq":%d}' % seq)
        assert written(report, seq) == text.encode()


def test_a_new_report_allocates_nothing():
    # Memory: every switch change writes a report into a buffer a transport made at
    # start-up. heap_lock() makes any allocation raise MemoryError.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    bank, hw, report = make()
    buf = bytearray(report.max_len)
    payloads = []
    for seq in range(12, 40):
        hw.set(0, seq & 1, seq)
        bank.scan(seq)
        heap_lock()
        try:
            end = report.write(buf, 0, seq)
        finally:
            heap_unlock()
        payloads.append(bytes(buf[:end]))
    assert [json.loads(p)["seq"] for p in payloads] == list(range(12, 40))


def test_length_is_what_write_writes():
    bank, hw, report = make()
    t = 0
    for seq in (0, 9, 10, 99, 100, 123456789, 10**19 + 7):
        for io, level in ((0, 0), (5, 0), (0, 1)):
            t += 1
            hw.set(io, level, t)
            bank.scan(t)
            assert report.length(seq) == len(written(report, seq)), (seq, io, level)
