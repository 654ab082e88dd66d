# Button timing (logic/button.py): pure logic, on CPython and the unix port. Each test
# plays edges at given times (ms) and checks the events and when they come.
from pinsock.logic.button import (DOUBLE_PRESS, HOLD, LONG_RELEASE, PRESS, SHORT_RELEASE,
                                  Buttons)


class Run:
    """One button on IO 1 of 3, pressed at level `active`; polled every ms."""

    def __init__(self, active=1, level=None):
        self.events = []
        self.buttons = Buttons(3, lambda io, event, now: self.events.append((io, event, now)))
        self.active = active
        self.now = 0
        self.buttons.start(1, 1 - active if level is None else level, active)

    def edge(self, down):
        self.buttons.edge(1, self.active if down else 1 - self.active, self.now)

    def run_to(self, end):
        while self.now < end:
            self.now += 1
            self.buttons.poll(self.now)

    def at(self, t, down):
        self.run_to(t)
        self.edge(down)


def test_a_click_is_press_then_short_release_each_after_the_debounce_time():
    run = Run()
    run.at(100, True)
    run.at(300, False)
    run.run_to(2000)
    assert run.events == [(1, PRESS, 150), (1, SHORT_RELEASE, 350)]


def test_active_low_button():
    run = Run(active=0)
    run.at(100, True)
    run.at(200, False)
    run.run_to(400)
    assert [e[1] for e in run.events] == [PRESS, SHORT_RELEASE]


def test_held_is_hold_at_long_ms_then_long_release():
    run = Run()
    run.at(100, True)
    run.at(1500, False)
    run.run_to(2000)
    # Down counted at 150; hold 1000 ms later.
    assert run.events == [(1, PRESS, 150), (1, HOLD, 1150), (1, LONG_RELEASE, 1550)]


def test_a_press_within_the_window_after_a_short_release_is_a_double_press():
    run = Run()
    run.at(100, True)
    run.at(200, False)  # released at 250
    run.at(500, True)  # down at 550: 300 ms after, within 400
    run.at(600, False)
    run.at(800, True)  # after a double press's release: a press again, not a double
    run.at(900, False)
    run.run_to(1500)
    assert [e[1] for e in run.events] == [PRESS, SHORT_RELEASE, DOUBLE_PRESS, SHORT_RELEASE,
                                          PRESS, SHORT_RELEASE]


def test_a_press_after_the_window_is_a_press():
    run = Run()
    run.at(100, True)
    run.at(200, False)  # released at 250
    run.at(620, True)  # down at 670: 420 ms after
    run.run_to(800)
    assert [e[1] for e in run.events] == [PRESS, SHORT_RELEASE, PRESS]


def test_after_a_long_release_no_double_press():
    run = Run()
    run.at(100, True)
    run.at(1300, False)
    run.at(1400, True)
    run.run_to(1500)
    assert [e[1] for e in run.events] == [PRESS, HOLD, LONG_RELEASE, PRESS]


def test_bounces_are_one_press_50_ms_after_the_last_edge():
    run = Run()
    for t, down in ((100, True), (103, False), (110, True), (112, False), (120, True)):
        run.at(t, down)
    run.run_to(400)
    assert run.events == [(1, PRESS, 170)]


def test_a_glitch_shorter_than_debounce_is_nothing():
    run = Run()
    run.at(100, True)
    run.at(130, False)
    run.run_to(2000)
    assert run.events == []


def test_an_edge_during_the_debounce_time_still_sets_a_deadline():
    # The bug of an earlier attempt: edges while a debounce time ran were dropped, and
    # a press right after a release was seen only at the next re-read, ~1 s late.
    run = Run()
    run.at(100, True)
    run.at(200, False)  # its debounce time runs 200-250
    run.at(240, True)  # during it: the release was a bounce, still down
    run.at(300, False)  # released (at 350)
    run.at(360, True)  # 10 ms after the release counted: down at 410
    run.run_to(1000)
    assert run.events == [(1, PRESS, 150), (1, SHORT_RELEASE, 350), (1, DOUBLE_PRESS, 410)]


def test_poll_says_when_the_next_deadline_is():
    run = Run()
    assert run.buttons.poll(0) == -1  # idle: nothing until an edge
    run.edge(True)
    assert run.buttons.poll(10) == 40  # debounce
    assert run.buttons.poll(50) == 1000  # pressed: the hold is next
    assert run.buttons.poll(1050) == -1  # held: nothing until it is let go


def test_timings_are_per_io():
    run = Run()
    run.buttons.debounce[1] = 10
    run.buttons.long[1] = 200
    run.at(100, True)
    run.run_to(400)
    assert run.events == [(1, PRESS, 110), (1, HOLD, 310)]


def test_a_button_down_at_start_tells_nothing_until_it_is_let_go():
    run = Run(level=1)
    run.at(100, False)
    run.at(200, True)
    run.run_to(300)
    assert run.events == [(1, PRESS, 250)]


def test_other_ios_and_stopped_buttons_are_ignored():
    run = Run()
    run.buttons.edge(0, 1, 10)  # not a button
    run.buttons.stop(1)
    run.at(100, True)
    run.run_to(300)
    assert run.events == []


def test_edge_and_poll_allocate_nothing():
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    run = Run()
    told = bytearray(2)  # how many events, the last one: made before the heap is locked

    def emit(io, event, now):
        told[0] += 1
        told[1] = event

    run.buttons.emit = emit
    buttons = run.buttons
    heap_lock()
    try:
        for t in range(1, 400):
            if t in (100, 300):
                buttons.edge(1, 1 if t == 100 else 0, t)
            buttons.poll(t)
    finally:
        heap_unlock()
    assert list(told) == [2, SHORT_RELEASE]
