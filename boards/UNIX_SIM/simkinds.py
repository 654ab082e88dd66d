# The simulated board's analog inputs, PWM outputs and counters (the hardware layer's
# special(), logic/kinds.py), loaded the first time an IO is one of them or the control
# port plays one; simulator builds only. The control port's commands for them:
#
#   analog <io> <0..65535>       the level on an analog input (what read_u16 reads)
#   pulse <io> <n>               n pulses (rising edges) into a counter input
#   press <io> <ms> [<ms> ...]   a button pressed for ms, released for the next ms,
#                                pressed again ...; it ends released. Answered once
#                                the last time is over (`ok`)
#   pwm <io>                     a PWM output's duty and frequency -> <duty_u16> <hz>
#                                (0 0 when the IO is not a PWM output)
import asyncio
from array import array

_USAGE = "analog <io> <0..65535> | pulse <io> <n> | press <io> <ms> [<ms> ...] | pwm <io>"
_ANALOG = 1
_PWM = 2
_COUNTER = 3
_PULL_UP = 1


class SimKinds:
    pwm_freqs = 0  # the simulated chip has a timer per PWM output

    def __init__(self, hw):
        n = hw.count
        self.hw = hw
        self.function = bytearray(n)  # what setup() made each pin
        self.level = array("H", bytes(2 * n))  # analog level, 0..65535
        self.counts = array("i", bytes(4 * n))
        self.duty = array("H", bytes(2 * n))  # duty_u16
        self.freq = array("i", bytes(4 * n))

    # --- the hardware layer's interface (logic/kinds.py) -------------------------
    def setup(self, io, fn):
        self.function[io] = fn
        if fn != _PWM:
            self.duty[io] = self.freq[io] = 0

    def read_u16(self, io):
        return self.level[io]

    def pwm(self, io, duty_u16, hz):
        self.duty[io] = duty_u16
        self.freq[io] = hz

    def count(self, io):
        return self.counts[io]

    def reset(self, io):
        self.counts[io] = 0

    # --- the control port -----------------------------------------------------------
    def control(self, words, usage):
        """A control-port command simhw.py does not know; `usage`: its own."""
        verb = words[0]
        if verb == "press":
            return self.press(words)
        if verb not in ("analog", "pulse", "pwm"):
            return "error unknown command %r; use: %s | %s" % (verb[:16], usage, _USAGE)
        if len(words) != (2 if verb == "pwm" else 3):
            return "error usage: analog <io> <0..65535> | pulse <io> <n> | pwm <io>"
        io = self._io(words[1])
        if io < 0:
            return "error no io %r; this board has 0..%d" % (words[1][:8], self.hw.count - 1)
        if verb == "pwm":
            return "%d %d" % (self.duty[io], self.freq[io])
        n = _number(words[2])
        if verb == "analog":
            if not 0 <= n <= 65535:
                return "error level must be 0 to 65535"
            self.level[io] = n
            return "ok"
        if not 0 <= n <= 1000000:
            return "error pulses must be 0 to 1000000"
        if self.function[io] != _COUNTER:
            return "error io %d does not count (f<h>=c first)" % io
        self.counts[io] += n
        return "ok"

    async def press(self, words):
        """press <io> <ms> [<ms> ...]: the button's pin driven as a finger would."""
        io = self._io(words[1]) if len(words) > 2 else -1
        times = [_number(w) for w in words[2:]]
        if io < 0 or any(not 0 <= t <= 60000 for t in times):
            return "error usage: press <io> <ms> [<ms> ...] (io of this board, 0..60000 ms)"
        hw = self.hw
        if hw.direction[io]:
            return "error io %d is an output driven by the firmware" % io
        down = 0 if hw.pull[io] == _PULL_UP else 1  # to ground against a pull-up
        for i, ms in enumerate(times):
            hw.drive_outside(io, down if i % 2 == 0 else 1 - down)
            await asyncio.sleep_ms(ms)
        hw.drive_outside(io, 1 - down)
        return "ok"

    def _io(self, text):
        try:
            io = int(text)
        except ValueError:
            return -1
        return io if 0 <= io < self.hw.count else -1


_made = []  # the one SimKinds


def of(hw):
    """The board's SimKinds, made the first time."""
    if not _made:
        _made.append(SimKinds(hw))
    return _made[0]


def _number(text):
    try:
        return int(text)
    except ValueError:
        return -1
