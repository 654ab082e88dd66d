# IoBank: debouncing, edge capture and outputs. Runs on CPython and the unix port.
from fakes import FakeHardware, board_ios
from pinsock.logic.iobank import IoBank


def make_bank(debounce_ms=20):
    ios = board_ios()
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, debounce_ms)
    bank.start(0)
    seen = []
    bank.listeners.append(lambda io, level, t: seen.append((io, level, t)))
    return bank, hw, seen


def test_start_reads_pulled_up_dips_as_high():
    bank, _, _ = make_bank()
    assert list(bank.level[:8]) == [1] * 8
    assert list(bank.level[8:]) == [0] * 8


def test_change_that_outlasts_debounce_is_committed_once():
    bank, hw, seen = make_bank(20)
    hw.set(0, 0, 1000)
    assert bank.scan(1000) == 20  # pending, due in 20 ms
    assert seen == []
    assert bank.scan(1019) == 1
    assert bank.scan(1020) == -1
    assert seen == [(0, 0, 1020)]
    assert bank.scan(1100) == -1
    assert seen == [(0, 0, 1020)]  # reported once


def test_glitch_shorter_than_debounce_is_not_reported():
    bank, hw, seen = make_bank(20)
    hw.set(3, 0, 1000)
    bank.scan(1005)
    hw.set(3, 1, 1010)  # back before 20 ms
    assert bank.scan(1010) == -1
    assert bank.scan(1100) == -1
    assert seen == []
    assert bank.level[3] == 1


def test_bounces_restart_the_debounce_time():
    bank, hw, seen = make_bank(20)
    for t, level in ((1000, 0), (1003, 1), (1006, 0), (1009, 1), (1012, 0)):
        hw.set(1, level, t)
    assert bank.scan(1015) == 17  # 20 ms from the last edge at 1012
    assert bank.scan(1032) == -1
    assert seen == [(1, 0, 1032)]


def test_late_scan_still_commits_each_held_level_in_order():
    bank, hw, seen = make_bank(20)
    hw.set(2, 0, 1000)
    hw.set(2, 1, 1050)  # the 0 held 50 ms before this edge
    bank.scan(1100)
    assert seen == [(2, 0, 1050), (2, 1, 1100)]


def test_debounce_zero_commits_every_edge_even_between_scans():
    bank, hw, seen = make_bank(0)
    for i in range(10):
        hw.set(9, (i + 1) % 2, 500)
    bank.scan(500)
    assert [level for _, level, _ in seen] == [1, 0] * 5


def test_edge_ring_overflow_resamples_so_state_is_right():
    bank, hw, seen = make_bank(0)
    n = bank.edge_ring_len
    for i in range(n + 5):
        hw.set(10, (i + 1) % 2, 100)
    assert bank.edges_dropped == 5
    bank.scan(100)
    assert bank.level[10] == hw.levels[10]


def test_resample_catches_a_missed_interrupt():
    bank, hw, seen = make_bank(20)
    hw.levels[4] = 0  # changed with no IRQ
    bank.resample(2000)
    bank.scan(2000)
    assert seen == []
    bank.scan(2020)
    assert seen == [(4, 0, 2020)]


def test_drive_output_notifies_and_writes():
    bank, hw, seen = make_bank()
    bank.configure(9, 1, 0, 10)
    bank.drive(9, 1, 11)
    assert hw.levels[9] == 1 and bank.level[9] == 1
    assert seen == [(9, 1, 11)]
    bank.drive(9, 1, 12)
    assert seen == [(9, 1, 11)]  # no change, no notification


def test_edges_on_outputs_are_ignored():
    bank, hw, seen = make_bank(0)
    bank.configure(12, 1, 0, 0)
    bank.edge(12, 1, 5)
    bank.scan(5)
    assert seen == []
