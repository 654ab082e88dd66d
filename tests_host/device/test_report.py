# The DIP switch report. Runs on CPython and the unix port.
import json

from fakes import FakeHardware, board_ios
from pinsock import wsframe
from pinsock.iobank import IoBank
from pinsock.report import SwitchReport


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


def test_frame_is_the_text_in_one_websocket_text_frame():
    bank, hw, report = make()
    hw.set(2, 0, 1)
    bank.scan(1)
    text = report.text(123456)
    assert json.loads(text)["dipSwitches"]["dip3"] == "On"
    assert report.frame(123456) == wsframe.encode_text(text)


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
    assert report.frame(1) == wsframe.encode_text(text)
