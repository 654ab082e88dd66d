# Analog inputs, PWM outputs and counters (logic/kinds.py) through the IO bank, with a
# fake hardware layer (fakes.py FakeSpecial); on CPython and the unix port.
from fakes import FakeHardware, FakeStatusAt, board_ios
from pinsock.logic.eventlog import EventLog
from pinsock.logic.iobank import IoBank
from pinsock.logic.kinds import (FN_ANALOG, FN_BUTTON, FN_COUNTER, FN_DIGITAL, FN_PWM, Kinds,
                                 Triggers, set_function, update_text)


class Sink:
    """A device sink that takes values: what it was told, and the records logged."""

    def __init__(self, log):
        self.log = log
        self.told = []

    def value_changed(self, io, fn, value, now):
        self.told.append((io, fn, value))

    def logged(self, seq):
        self.told.append(self.log.record(seq))


class FakeDevice:
    """What the kinds tell (logic/device.py Device): its sinks, log and status."""

    def __init__(self):
        self.log = EventLog(16)
        self.status = FakeStatusAt()
        self.sinks = [LevelsOnly(), Sink(self.log)]


class LevelsOnly:
    """A sink without value_changed (the MQTT sink's kind)."""

    def logged(self, seq):
        pass


def make():
    ios = board_ios(8, 8)  # GPIO 8, 9 analog; 10, 11 PWM; 12, 13 counter; 14, 15 button
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.device = FakeDevice()
    bank.start(0)
    return bank, hw, bank.device.sinks[1].told


def test_an_all_digital_bank_has_no_kinds():
    bank, hw, told = make()
    assert bank.kinds is None and not any(bank.function)


def test_functions_load_the_kinds_and_digital_again_lets_them_go():
    bank, hw, told = make()
    set_function(bank, 8, FN_ANALOG, 0)
    assert isinstance(bank.kinds, Kinds) and hw.kinds.function[8] == FN_ANALOG
    set_function(bank, 10, FN_PWM, 0)
    assert hw.direction[10] == 1 and hw.kinds.freq[10] == Kinds.pwm_hz
    set_function(bank, 8, FN_DIGITAL, 0)
    assert bank.kinds is not None and hw.kinds.function[8] == FN_DIGITAL
    set_function(bank, 10, FN_DIGITAL, 0)
    assert bank.kinds is None and hw.direction[10] == 0  # back to the input it was


def test_analog_inputs_are_sampled_every_sample_ms():
    bank, hw, told = make()
    set_function(bank, 8, FN_ANALOG, 0)
    set_function(bank, 9, FN_ANALOG, 0)
    hw.kinds.level[8] = 65535
    hw.kinds.level[9] = 640
    kinds = bank.kinds
    assert kinds.poll(1000) == Kinds.sample_ms
    assert told == [(8, FN_ANALOG, 1023), (9, FN_ANALOG, 10)]
    assert kinds.poll(1050) == 50 and len(told) == 2  # not due
    assert kinds.poll(1100) == Kinds.sample_ms and len(told) == 4


def test_a_count_is_told_when_it_changes_and_a_reset_is_logged():
    bank, hw, told = make()
    set_function(bank, 12, FN_COUNTER, 0)
    kinds = bank.kinds
    kinds.poll(0)
    assert told == []
    hw.kinds.counts[12] = 7
    kinds.poll(100)
    kinds.poll(200)
    assert told == [(12, FN_COUNTER, 7)]
    kinds.reset(12, 250)
    assert told[1:] == ['{"seq":1,"t":250,"io":"c","c":"0"}', (12, FN_COUNTER, 0)]
    assert hw.kinds.counts[12] == 0


def test_pwm_duty_is_scaled_to_16_bits_and_the_frequency_limit_holds():
    bank, hw, told = make()
    set_function(bank, 10, FN_PWM, 0)
    set_function(bank, 11, FN_PWM, 0)
    kinds = bank.kinds
    assert kinds.set_pwm(10, 1023, 500, 0)
    assert (hw.kinds.duty[10], hw.kinds.freq[10]) == (65535, 500)
    assert kinds.set_pwm(10, 512, 500, 0) and hw.kinds.duty[10] == 32800  # 512/1023 of 65535
    hw.kinds.pwm_freqs = 2  # an ESP32 allows 8
    assert kinds.set_pwm(11, 1, 2000, 0)  # 500 and 2000: two
    assert kinds.set_pwm(11, 1, 500, 0)  # still two (500, 500)
    hw.kinds.pwm_freqs = 1
    assert not kinds.set_pwm(11, 1, 3000, 0) and hw.kinds.freq[11] == 500


def test_button_events_are_told_and_logged():
    bank, hw, told = make()
    set_function(bank, 14, FN_BUTTON, 0)
    hw.set(14, 1, 10)  # no pull: down is 1
    bank.scan(10)
    bank.kinds.poll(59)
    assert told == []
    bank.kinds.poll(60)
    assert told == ['{"seq":1,"t":60,"io":"e","b":"1000"}', (14, FN_BUTTON, 1000)]
    assert bank.kinds.event[14] == 1000


def test_analog_trigger_deadband_and_interval():
    bank, hw, told = make()
    set_function(bank, 8, FN_ANALOG, 0)
    kinds = bank.kinds
    hw.kinds.level[8] = 100 << 6
    kinds.poll(0)
    triggers = Triggers(bank.count)
    triggers.every[8] = 100
    triggers.set(8, FN_ANALOG, 10, kinds)
    assert not kinds.wants(triggers, 8, FN_ANALOG, 109, 0)
    assert kinds.wants(triggers, 8, FN_ANALOG, 110, 5)  # the first: at once
    assert not kinds.wants(triggers, 8, FN_ANALOG, 200, 50)  # too soon
    assert kinds.wants(triggers, 8, FN_ANALOG, 200, 105)
    assert not kinds.wants(triggers, 8, FN_COUNTER, 500, 500)  # not this trigger's kind


def test_counter_trigger_every_n_counts_and_on_reset():
    bank, hw, told = make()
    set_function(bank, 12, FN_COUNTER, 0)
    kinds = bank.kinds
    triggers = Triggers(bank.count)
    triggers.set(12, FN_COUNTER, 5, kinds)
    assert [n for n in (1, 4, 5, 6, 9, 10, 12, 0) if
            kinds.wants(triggers, 12, FN_COUNTER, n, n)] == [5, 10, 0]


def test_update_texts():
    assert update_text(8, FN_ANALOG, 512) == '{"u":{"a":{"8":"512"}}}'
    assert update_text(12, FN_COUNTER, 7) == '{"u":{"c":{"c":"7"}}}'
    assert update_text(14, FN_BUTTON, 1002) == '{"u":{"b":{"e":"1002"}}}'


def test_a_sample_allocates_nothing():
    # Memory: sampling 4 analog inputs and 2 counters, each sample told to the device
    # and its WebSocket sink (a client with triggers that do not fire), with the heap
    # locked: any allocation raises MemoryError.
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    from fakes import FakeClient, FakeStatusAt
    from pinsock.logic.device import Device
    from pinsock.logic.eventlog import EventLog
    from pinsock.logic.settings import Settings
    from pinsock.protocol.commands import CommandEngine
    from pinsock.protocol.report import SwitchReport
    from pinsock.transport.hub import ClientHub
    from pinsock.transport.websocket import WebSocketService

    ios = board_ios(8, 8)  # four analog inputs: 8 to 11
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    status = FakeStatusAt()
    engine = CommandEngine(bank, Settings("", bank, "x"), status)
    device = Device(bank, SwitchReport(bank, True), engine, EventLog(16), status)
    service = WebSocketService(device, ClientHub(2))
    device.add_sink(service)
    client = FakeClient()
    service.join(client)
    for io in (8, 9, 10, 11):
        set_function(bank, io, FN_ANALOG, 0)
    for io in (12, 13):
        set_function(bank, io, FN_COUNTER, 0)
    kinds = bank.kinds
    client.kinds = Triggers(bank.count)
    client.kinds.set(8, FN_ANALOG, 1000, kinds)  # a deadband no sample reaches
    client.kinds.set(12, FN_COUNTER, 100000, kinds)  # more than it counts
    level = hw.kinds.level
    frames = len(client.frames)
    kinds.poll(0)
    heap_lock()
    try:
        for t in range(100, 5100, 100):
            level[8] = level[9] = t  # every input moves
            level[10] = level[11] = 5000 - t
            hw.kinds.counts[12] = t  # and the counter counts
            kinds.poll(t)
    finally:
        heap_unlock()
    assert kinds.raw[8] == 5000 and kinds.counts[12] == 5000
    assert len(client.frames) == frames  # nothing was sent
