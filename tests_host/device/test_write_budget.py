# The write budget (issue 13): commands per source address, over reconnects and
# /action.cgi (logic/device.py AddressRates), and coalesced settings saves
# (logic/settings.py). Runs on CPython and the unix port.
from fakes import FakeClient, FakeHardware, board_ios, scratch_dir
from pinsock.compat import ticks_add
from pinsock.logic.device import AddressRates, Device
from pinsock.logic.eventlog import EventLog
from pinsock.logic.iobank import IoBank
from pinsock.logic.settings import Settings
from pinsock.protocol.commands import CommandEngine
from pinsock.protocol.report import SwitchReport

RATE = 50
BURST = RATE * AddressRates.burst_s  # what an address may send at once


def served(rates, key, now, n):
    return sum(1 for _ in range(n) if rates.allow(key, now))


def test_an_address_gets_its_burst_then_its_rate():
    rates = AddressRates(RATE)
    assert served(rates, "10.0.0.2", 5000, 500) == BURST
    assert served(rates, "10.0.0.2", 5000 + 100, 500) == 5  # 100 ms at 50/s
    assert served(rates, "10.0.0.3", 5100, 500) == BURST  # another address: its own
    # Unused for burst_s, it is full again.
    assert served(rates, "10.0.0.2", 5000 + 100 + 1000 * AddressRates.burst_s, 500) == BURST


def test_reconnecting_starts_nothing_afresh():
    # The device's per-client bucket starts full on every connect; the address's not.
    hardware = FakeHardware(len(board_ios()))
    bank = IoBank(hardware, board_ios(), 0)
    bank.start(0)
    engine = CommandEngine(bank, None, None)
    device = Device(bank, SwitchReport(bank, True), engine, EventLog(8), None, RATE)
    ok = 0
    for _ in range(30):  # 30 connections of 20 commands each, at once
        client = FakeClient()
        device.connected(client, b"\x7f\x00\x00\x01")
        for _ in range(20):
            ok += "rate limited" not in device.execute(client, "v3")
    assert BURST <= ok <= BURST + 5, ok
    other = FakeClient()
    device.connected(other, b"\x0a\x00\x00\x05")
    assert "rate limited" not in device.execute(other, "v3")


def test_a_full_table_shares_one_bucket_and_never_grows():
    rates = AddressRates(RATE, slots=2)
    assert served(rates, "a", 0, 1) == 1 and served(rates, "b", 0, 1) == 1
    # Both slots are in use (their buckets are not full): newcomers share the last one.
    assert served(rates, "c", 10, 500) + served(rates, "d", 10, 500) == BURST
    assert len(rates._keys) == 2
    # Once a slot's bucket is full again, a newcomer takes it.
    later = 10 + 1000 * AddressRates.burst_s + 1
    assert served(rates, "e", later, 500) == BURST
    assert "e" in rates._keys


def test_looking_an_address_up_allocates_nothing():
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    rates = AddressRates(RATE)
    keys = [bytes((10, 0, 0, i)) for i in range(12)]
    for key in keys:
        rates.allow(key, 1000)
    heap_lock()
    try:
        for key in keys:
            rates.allow(key, 1500)
    finally:
        heap_unlock()


def make_settings(name):
    ios = board_ios()
    bank = IoBank(FakeHardware(len(ios)), ios, 0)
    return Settings(scratch_dir(name), bank, "pinsock-c0de", lambda line: None)


def test_a_burst_of_changes_is_one_save_and_saves_are_spaced_out():
    s = make_settings("budget_coalesce")
    assert not s.save_due(0)  # nothing changed
    for _ in range(100):
        s.changed()
    assert s.save_due(0)  # the first: at the next housekeeping
    assert s.save()
    assert not s.pending and not s.save_due(0)
    saved_at = s._saved_at
    s.changed()
    interval = Settings.min_save_interval_ms
    assert not s.save_due(ticks_add(saved_at, interval - 1))
    assert s.save_due(ticks_add(saved_at, interval))  # the last value: saved in time
    # A ticks_ms wrap (six days later) does not hold a save back.
    assert s.save_due(ticks_add(saved_at, -1))
