# Button timing: from a pin's edges to press, hold, release and double-press events.
# Pure logic (no pins, no clock of its own): the IO bank feeds it edges with their time
# and polls it; it runs the same on a board, the unix port and CPython. Loaded only
# while some IO is a button (logic/kinds.py).
#
# The events, with deCONZ's button codes (1000 + the event: the update and the event
# log carry "1000" ... "1004", docs/PROTOCOL.md):
#
#   PRESS          the button went down (held debounce_ms)
#   HOLD           still down long_ms after it went down
#   SHORT_RELEASE  up again before HOLD
#   LONG_RELEASE   up again after HOLD
#   DOUBLE_PRESS   down within double_ms of a SHORT_RELEASE: instead of PRESS (its
#                  release is then a SHORT_ or LONG_RELEASE as any other, and does not
#                  start another double press)
#
# Every event is told as soon as its rule decides it: no event waits for the
# double-press window to pass.
#
# Debouncing: a level counts once it has held debounce_ms. Every edge starts that
# time again and sets the deadline at which the level is judged, an edge during the
# time included (without that deadline, a press within debounce_ms of a release
# would wait for the next periodic re-read to be seen).
from array import array

from ..compat import const, ticks_add, ticks_diff

PRESS = const(0)
HOLD = const(1)
SHORT_RELEASE = const(2)
LONG_RELEASE = const(3)
DOUBLE_PRESS = const(4)

# Bits of Buttons.state.
_DOWN = const(1)  # pressed (debounced)
_HELD = const(2)  # HOLD told for this press
_PENDING = const(4)  # an edge waits for its debounce deadline
_ARMED = const(8)  # the last release was short: a press now may be a double press
_DOUBLE = const(16)  # this press was a DOUBLE_PRESS


class Buttons:
    """The button timing of every IO of a bank (arrays by IO, made once)."""

    #: A level must hold this long (ms) to count (per IO: `bs<h>`).
    debounce_ms = 50
    #: Down this long (ms) is a hold (per IO: `bl<h>`).
    long_ms = 1000
    #: A press this soon (ms) after a short release is a double press (per IO: `bw<h>`).
    double_ms = 400

    def __init__(self, count, emit):
        self.emit = emit  # emit(io, event, now), told each event as it is decided
        self.on = bytearray(count)  # 1: the IO is a button
        self.active = bytearray(count)  # the level that is "down"
        self.raw = bytearray(count)  # the last level seen
        self.state = bytearray(count)
        self.edge_at = array("i", bytes(4 * count))
        self.down_at = array("i", bytes(4 * count))
        self.up_at = array("i", bytes(4 * count))
        self.debounce = array("H", [self.debounce_ms] * count)
        self.long = array("H", [self.long_ms] * count)
        self.window = array("H", [self.double_ms] * count)

    def start(self, io, level, active):
        """IO `io` is a button from now, reading `level`; `active`: its down level."""
        self.on[io] = 1
        self.active[io] = active
        self.raw[io] = level
        self.state[io] = 0  # down already: its release is not an event

    def stop(self, io):
        self.on[io] = 0
        self.state[io] = 0

    def edge(self, io, level, t):
        """The pin of button `io` changed to `level` at `t` (ticks_ms). Allocation-free."""
        if self.on[io] and level != self.raw[io]:
            self.raw[io] = level
            self.edge_at[io] = t
            self.state[io] |= _PENDING

    def poll(self, now):
        """Tell every event due by `now`; returns ms until the next deadline, or -1 when
        no button has one (nothing happens until an edge)."""
        wait = -1
        on = self.on
        for io in range(len(on)):
            if not on[io]:
                continue
            s = self.state[io]
            if s & _PENDING:
                left = self.debounce[io] - ticks_diff(now, self.edge_at[io])
                if left > 0:
                    if wait < 0 or left < wait:
                        wait = left
                else:
                    s &= ~_PENDING
                    self.state[io] = s
                    at = ticks_add(self.edge_at[io], self.debounce[io])  # when it held
                    down = self.raw[io] == self.active[io]
                    if down and not s & _DOWN:
                        self._down(io, s, at, now)
                    elif not down and s & _DOWN:
                        self._up(io, s, at, now)
                    s = self.state[io]
            if s & _DOWN and not s & _HELD:
                left = self.long[io] - ticks_diff(now, self.down_at[io])
                if left > 0:
                    if wait < 0 or left < wait:
                        wait = left
                else:
                    self.state[io] = s | _HELD
                    self.emit(io, HOLD, now)
        return wait

    def _down(self, io, s, at, now):
        double = s & _ARMED and ticks_diff(at, self.up_at[io]) <= self.window[io]
        s = (s | _DOWN) & ~(_HELD | _ARMED | _DOUBLE)
        self.state[io] = s | _DOUBLE if double else s
        self.down_at[io] = at
        self.emit(io, DOUBLE_PRESS if double else PRESS, now)

    def _up(self, io, s, at, now):
        long = s & _HELD
        # Only a short release that did not end a double press arms the next one.
        self.state[io] = s & ~(_DOWN | _HELD | _ARMED | _DOUBLE) | (
            0 if long or s & _DOUBLE else _ARMED)
        self.up_at[io] = at
        self.emit(io, LONG_RELEASE if long else SHORT_RELEASE, now)
