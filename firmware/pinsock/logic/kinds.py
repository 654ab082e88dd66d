# The IOs that are more than on and off: analog inputs, PWM outputs, counters and
# buttons (logic/iobank.py FN_...). Loaded by the IO bank the first time an IO is one
# of them (and let go when all are digital again), so a board whose IOs are all
# digital carries none of this.
#
# Pure: the pins are the hardware layer's `special()` object (hardware/kinds.py on a
# board, boards/UNIX_SIM/simkinds.py on the simulator, a fake in tests):
#
#   setup(io, fn)            make the pin an ADC input, a PWM output, a counter, or
#                            (FN_DIGITAL) let go of what it was; the bank has set it
#                            up as an input (an output for PWM) first
#   read_u16(io)             an analog input's level, 0..65535
#   pwm(io, duty_u16, hz)    a PWM output's duty and frequency
#   count(io)                a counter's rising edges since it was reset
#   reset(io)                the count back to 0
#   pwm_freqs                distinct PWM frequencies the chip allows at once (0: any)
#
# What happens is told to the device's sinks that have value_changed(io, fn, value,
# now) (logic/device.py): an analog sample (its 0..1023 value), a count that changed,
# a button event (1000 + event), a PWM duty that changed (0..1023); a button event and
# a counter reset are recorded in the event log first (Kinds.tell: log_code is what the
# log records, -1 nothing). A change of an IO's function is told to the sinks that
# have function_changed(io, fn, now, client).
from array import array

from ..compat import const, forget_module, ticks_add, ticks_diff
from .iobank import DIR_IN, DIR_OUT, PULL_UP

_NO_EDGE = const(0xFF)  # iobank.py's: no level pending (a const, not importable)

# What an IO is, by its index here (iobank.py IoBank.function).
FUNCTIONS = "dawcb"
FN_DIGITAL = const(0)
FN_ANALOG = const(1)
FN_PWM = const(2)
FN_COUNTER = const(3)
FN_BUTTON = const(4)

# The event log's codes beyond a level (logic/eventlog.py).
LOG_BUTTON = const(2)  # + the button event, 0..4
LOG_RESET = const(7)  # a counter reset to 0
_FIRST = const(0x80)  # Triggers.kind: nothing sent yet


def start(bank, now):
    """The bank starts with IOs whose function is not digital (board config fn,
    settings.json): set them up."""
    function = bank.function
    for io in range(bank.count):
        fn = function[io]
        if fn:
            function[io] = 0
            set_function(bank, io, fn, now)


def set_function(bank, io, fn, now, client=None):
    """Make IO `io` of `bank` digital or another kind (iobank.py FN_...); the caller
    checks that the board allows it. Makes the bank's Kinds the first time an IO is
    not digital, and lets it (and this module) go when all are digital again. The
    device's sinks are told, and whether `client` (a connection's, or None) made it."""
    old = bank.function[io]
    if fn == old:
        return
    kinds = bank.kinds
    if kinds is None:
        kinds = bank.kinds = Kinds(bank)
        spawn(bank)
    bank.function[io] = fn
    bank._pending_level[io] = _NO_EDGE
    kinds.set_function(io, old, fn, now)
    if not fn:
        hw = bank.hardware
        hw.setup(io, bank.direction[io], bank.pull[io], bank.level[io])
        level = hw.read(io)
        if level != bank.level[io]:
            bank.level[io] = level
            for listener in bank.listeners:
                listener(io, level, now)
    device = getattr(bank, "device", None)
    if device is not None:
        for sink in device.sinks:
            changed = getattr(sink, "function_changed", None)
            if changed is not None:
                changed(io, fn, now, client)
    if not any(bank.function):
        bank.kinds = None  # its task ends (kindtask.py)
        forget()


def forget():
    """Let this module go, and the button timing and the task with it (the bank has
    no kinds)."""
    package = __name__.rpartition(".")[0]  # pinsock.logic
    forget_module(package + ".button")
    forget_module(package.rpartition(".")[0] + ".kindtask")
    forget_module(__name__)


def spawn(bank):
    """Start the task that runs the bank's kinds (pinsock/kindtask.py), on MicroPython's
    asyncio (a task made before the loop runs starts with it). Under CPython, whose
    asyncio is another, the tests run Kinds.poll themselves."""
    import asyncio

    if hasattr(asyncio, "sleep_ms"):
        from ..kindtask import run

        asyncio.create_task(run(bank, bank.kinds))


class Kinds:
    #: Analog inputs and counters are read this often (ms): each read of each input
    #: allocates nothing (tests_host/device/test_kinds.py holds it with the heap
    #: locked). A counter's update is at most this late.
    sample_ms = 100
    #: While some IO is a button, its deadlines are checked at least this often (ms):
    #: an event is told at most this much after its rule decides it.
    tick_ms = 5
    #: A PWM output's frequency (Hz) until `wh<h>=` sets another.
    pwm_hz = 1000
    #: Highest PWM frequency `wh<h>=` accepts (Hz).
    max_pwm_hz = 40000
    #: What `am<h>` reads at 65535 (mV): 3.3 V, the ADC's range on the RP2040 and, with
    #: 11 dB attenuation, about the ESP32's.
    full_scale_mv = 3300

    def __init__(self, bank):
        n = bank.count
        self.bank = bank
        self.hw = bank.hardware.special()
        self.raw = array("H", bytes(2 * n))  # the last analog sample
        self.counts = array("i", bytes(4 * n))  # the last count read
        self.duty = array("H", bytes(2 * n))  # 0..1023
        self.freq = array("i", [self.pwm_hz] * n)
        self.event = array("H", bytes(2 * n))  # a button's last event code (0: none)
        self.buttons = None  # logic/button.py Buttons while some IO is a button
        self._next = None  # ticks_ms of the next sample; None: at the next poll
        self.tell = self._tell
        self._sinks = 0  # how many of the device's sinks _told was made from
        self._told = []  # their value_changed methods
        self._sampled = 0  # analog inputs and counters

    # --- functions --------------------------------------------------------------
    def set_function(self, io, old, fn, now):
        """IO `io` was `old` and is `fn` now (the bank sets a digital IO up itself)."""
        bank = self.bank
        hw = self.hw
        if old:
            hw.setup(io, 0)
            if old == FN_BUTTON:
                self.buttons.stop(io)
            elif old != FN_PWM:
                self._sampled -= 1
        if not fn:
            return
        bank.hardware.setup(io, DIR_OUT if fn == FN_PWM else DIR_IN, bank.pull[io], 0)
        if fn == FN_BUTTON:
            buttons = self.buttons
            if buttons is None:
                from .button import Buttons

                buttons = self.buttons = Buttons(bank.count, self._button_event)
            self.event[io] = 0
            buttons.start(io, bank.hardware.read(io), 0 if bank.pull[io] == PULL_UP else 1)
            return
        hw.setup(io, fn)
        if fn == FN_PWM:
            self.duty[io] = 0
            self.freq[io] = self.pwm_hz
            hw.pwm(io, 0, self.pwm_hz)  # (its duty 0 is told as the function change)
            return
        self._sampled += 1
        self._next = None  # sampled at once
        if fn == FN_COUNTER:
            hw.reset(io)
            self.counts[io] = 0
        else:
            self.raw[io] = hw.read_u16(io)

    # --- analog inputs ------------------------------------------------------------
    def read_u16(self, io):
        raw = self.raw[io] = self.hw.read_u16(io)
        return raw

    def millivolts(self, raw):
        return raw * self.full_scale_mv // 65535

    # --- PWM outputs --------------------------------------------------------------
    def set_pwm(self, io, duty, hz, now):
        """Drive PWM output `io` at duty 0..1023 and `hz`; False (nothing changed) when
        `hz` would be one distinct frequency more than the chip has. A new duty is
        told (value_changed) once the pin has it."""
        limit = self.hw.pwm_freqs
        if limit and hz != self.freq[io]:
            function = self.bank.function
            others = set(self.freq[i] for i in range(self.bank.count)
                         if function[i] == FN_PWM and i != io)
            if hz not in others and len(others) >= limit:
                return False
        changed = duty != self.duty[io]
        self.duty[io] = duty
        self.freq[io] = hz
        self.hw.pwm(io, (duty * 65535 + 511) // 1023, hz)
        if changed:
            self.tell(io, FN_PWM, duty, now, -1)
        return True

    # --- counters -----------------------------------------------------------------
    def reset(self, io, now):
        """Counter `io` back to 0: logged, and told as a count of 0."""
        self.hw.reset(io)
        self.counts[io] = 0
        self.tell(io, FN_COUNTER, 0, now, LOG_RESET)

    # --- buttons ------------------------------------------------------------------
    def edge(self, io, level, t):
        self.buttons.edge(io, level, t)

    def _button_event(self, io, event, now):
        code = self.event[io] = 1000 + event
        self.tell(io, FN_BUTTON, code, now, LOG_BUTTON + event)

    def _tell(self, io, fn, value, now, code):
        # To the device: a button event or a counter reset (code: the log's) is
        # recorded first, then told to the sinks that take values.
        device = self.bank.device
        sinks = device.sinks
        if code >= 0:
            seq = device.log.append(io, code, device.status.ms_at(now))
            for sink in sinks:
                sink.logged(seq)
        if len(sinks) != self._sinks:  # (made again only when a sink is added)
            self._sinks = len(sinks)
            self._told = [sink.value_changed for sink in sinks
                          if hasattr(sink, "value_changed")]
        for told in self._told:
            told(io, fn, value, now)

    # --- the task: logic/lifecycle.py run_kinds -------------------------------------
    def poll(self, now):
        """Sample when due and tell the buttons' events; returns ms until something is
        due, -1 for nothing until an edge. Allocation-free when nothing is told."""
        wait = -1
        if self._sampled:
            wait = -1 if self._next is None else ticks_diff(self._next, now)
            if wait <= 0:
                self._next = ticks_add(now, self.sample_ms)
                self._sample(now)
                wait = self.sample_ms
        buttons = self.buttons
        if buttons is not None:
            left = buttons.poll(now)
            if left >= 0 and (wait < 0 or left < wait):
                wait = left
        return wait

    def _sample(self, now):
        bank = self.bank
        function = bank.function
        hw = self.hw
        tell = self.tell
        for io in range(bank.count):
            fn = function[io]
            if fn == FN_ANALOG:
                raw = hw.read_u16(io)
                self.raw[io] = raw
                tell(io, FN_ANALOG, raw >> 6, now, -1)
            elif fn == FN_COUNTER:
                n = hw.count(io)
                if n != self.counts[io]:
                    self.counts[io] = n
                    tell(io, FN_COUNTER, n, now, -1)

    # --- a connection's triggers (tua, tuai, tuc, tub, tuw) -----------------------
    def wants(self, triggers, io, fn, value, now):
        """Whether a client with these triggers (Triggers) gets this update; when it
        does, it is what the client was told last. Allocation-free."""
        kind = triggers.kind[io]
        if kind & 0x7F != fn:
            return False
        band = triggers.band[io]
        if not band:
            return False
        last = triggers.last[io]
        if fn == FN_ANALOG:
            if (value - last if value > last else last - value) < band:
                return False
            if not kind & _FIRST and ticks_diff(now, triggers.at[io]) < triggers.every[io]:
                return False
        elif fn == FN_COUNTER:
            if last <= value < last + band:  # a reset (below the last) always goes
                return False
        triggers.kind[io] = fn
        triggers.last[io] = value
        triggers.at[io] = now
        return True

    def update_text(self, io, fn, value):
        return update_text(io, fn, value)

    def current(self, io, fn):
        """What a trigger set now compares with: the value a client has."""
        if fn == FN_ANALOG:
            return self.raw[io] >> 6
        return self.counts[io] if fn == FN_COUNTER else 0


def update_text(io, fn, value):
    """The update for an analog value, a count or a button event."""
    return '{"u":{"%s":{"%x":"%d"}}}' % (FUNCTIONS[fn], io, value)


def log_text(code):
    """What an event-log record (logic/eventlog.py) of a button event or a counter
    reset says instead of a level."""
    return '"c":"0"' if code == LOG_RESET else '"b":"%d"' % (1000 - LOG_BUTTON + code)


class Triggers:
    """A connection's triggers for the kinds (made the first time it sets one): per IO
    the kind it is for, the deadband (analog), step (counter) or on (button), the
    analog minimum interval, and what it was told last, when."""

    #: A new analog trigger's minimum interval (ms) between two updates (`tuai<h>=`).
    min_interval_ms = 250

    def __init__(self, count):
        self.kind = bytearray(count)
        self.band = array("i", bytes(4 * count))
        self.every = array("H", [self.min_interval_ms] * count)
        self.last = array("i", bytes(4 * count))
        self.at = array("i", bytes(4 * count))

    def set(self, io, fn, band, kinds):
        # Compared with the value the IO has now; the interval does not hold back the
        # first update.
        self.kind[io] = fn | _FIRST
        self.band[io] = band
        self.last[io] = kinds.current(io, fn)
