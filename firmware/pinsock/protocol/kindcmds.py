# Functions, and the commands of the IOs that are more than on and off
# (docs/PROTOCOL.md, "Analog inputs, PWM outputs, counters and buttons"). Loaded by
# protocol/commands.py for one of these commands, and kept only while some IO is not
# digital.
#
#   f<h>  function: d digital, a analog, w PWM, c counter, b button
#   fp<h> the functions the IO may have (board config fns), read-only
#   a<h>  analog value 0..1023     ar<h>  raw 0..65535      am<h>  millivolts
#   w<h>  PWM duty 0..1023         wh<h>  PWM frequency (Hz)
#   c<h>  count (=0 resets it)
#   b<h>  last button event (1000..1004, 0: none)
#   bs<h> debounce ms   bl<h> long-press ms   bw<h> double-press window ms
#   tua<h> analog deadband (0 off)  tuai<h> its minimum interval (ms)
#   tuc<h> counter step (0 off)     tub<h>  button events (0 off, 1 on)
#   tuw<h> PWM duty changes (0 off, 1 on)
#
# A sub-letter is never a hex digit: `ar9` is IO 9's raw value, `a9` IO 9's value.
from ..logic.kinds import FN_ANALOG, FN_BUTTON, FN_COUNTER, FN_PWM, FUNCTIONS
from ..compat import forget_module
from .commands import (_HEX, E_NOT_SUPPORTED, E_RANGE, E_READ_ONLY, E_SUBTREE, E_UNKNOWN,
                       CommandError)

# Error reasons: part of the protocol, documented in docs/PROTOCOL.md.
E_NOT_ANALOG = "io is not analog"
E_NOT_PWM = "io is not pwm"
E_NOT_COUNTER = "io is not a counter"
E_NOT_BUTTON = "io is not a button"
E_NONE = "no io has this function"  # a subtree read (a, c, tua, ...) when none has
E_PWM_FREQS = "too many pwm frequencies"  # wh<h>= beyond the chip's (board: pwm_freqs)

# The function each node is for, the sub-letters it has, and how an IO that is not
# of that function is refused.
_NODES = {"a": (FN_ANALOG, "rm"), "w": (FN_PWM, "h"), "c": (FN_COUNTER, ""),
          "b": (FN_BUTTON, "slw")}
_NOT = ("", E_NOT_ANALOG, E_NOT_PWM, E_NOT_COUNTER, E_NOT_BUTTON)
#: Longest time `bs`, `bl`, `bw` and `tuai` take (ms).
MAX_MS = 60000


def run(engine, client, command, value, now):
    try:
        return _run(engine, client, command, value, now)
    finally:
        if engine.bank.kinds is None:  # every IO is digital: this code is let go
            from ..logic import kinds

            kinds.forget()
            forget_module(__name__)


def _run(engine, client, command, value, now):
    if command[0] == "f":
        return _function(engine, client, command[1:], value, now)
    if command[0] == "t":  # tua, tuai, tuc, tub
        head = command[2]
        rest = command[3:]
        fn, subs = _NODES[head]
        subs = "i" if head == "a" else ""
        trigger = True
    else:
        head = command[0]
        rest = command[1:]
        fn, subs = _NODES[head]
        trigger = False
    sub = ""
    if rest and rest[0] not in _HEX:
        sub = rest[0]
        rest = rest[1:]
        if sub not in subs:
            raise CommandError(E_UNKNOWN)
    bank = engine.bank
    kinds = bank.kinds
    if not rest:  # a subtree: the IOs of that function
        if value is not None:
            raise CommandError(E_SUBTREE)
        ios = [io for io in range(bank.count) if bank.function[io] == fn]
        if not ios:
            raise CommandError(E_NONE)
        body = "{" + ",".join('"%s":"%d"' % (_HEX[io], _read(kinds, client, trigger,
                                                                fn, sub, io))
                              for io in ios) + "}"
        return _reply(trigger, head, sub, body)
    io = engine._io(rest)
    if bank.function[io] != fn:
        raise CommandError(_NOT[fn])
    if value is not None:
        n = _number(value)
        if trigger:
            _set_trigger(kinds, client, fn, sub, io, n)
        else:
            _write(engine, kinds, fn, sub, io, n, now)
    body = '{"%s":"%d"}' % (_HEX[io], _read(kinds, client, trigger, fn, sub, io))
    return _reply(trigger, head, sub, body)


def _function(engine, client, edge, value, now):
    bank = engine.bank
    if edge[:1] == "p":  # what each IO may be
        edge = edge[1:]
        if value is not None:
            raise CommandError(E_SUBTREE if not edge else E_READ_ONLY)
        ios = range(bank.count) if not edge else (engine._io(edge),)
        return '{"f":{"p":{' + ",".join('"%s":"%s"' % (_HEX[io], _letters(bank.fns[io]))
                                        for io in ios) + "}}}"
    if not edge:
        if value is not None:
            raise CommandError(E_SUBTREE)
        return '{"f":{' + ",".join('"%s":"%s"' % (_HEX[io], FUNCTIONS[bank.function[io]])
                                   for io in range(bank.count)) + "}}"
    io = engine._io(edge)
    if value is not None:
        fn = FUNCTIONS.find(value) if len(value) == 1 else -1
        if fn < 0:
            raise CommandError(E_RANGE)
        if not bank.fns[io] >> fn & 1:
            raise CommandError(E_NOT_SUPPORTED)
        if fn != bank.function[io]:
            from ..logic.kinds import set_function

            set_function(bank, io, fn, now, client)
            engine.settings.keep_functions = True
            engine.settings.changed()  # saved within a second, coalesced
    return '{"f":{"%s":"%s"}}' % (_HEX[io], FUNCTIONS[bank.function[io]])


def _letters(mask):
    return "".join(FUNCTIONS[fn] for fn in range(5) if mask >> fn & 1)


def _reply(trigger, head, sub, body):
    if sub:
        body = '{"%s":%s}' % (sub, body)
    body = '{"%s":%s}' % (head, body)
    return '{"t":{"u":%s}}' % body if trigger else body


def _number(value):
    if not value.isdigit() or len(value) > 9:
        raise CommandError(E_RANGE)
    return int(value)


def _read(kinds, client, trigger, fn, sub, io):
    if trigger:
        triggers = getattr(client, "kinds", None)
        if triggers is None:
            from ..logic.kinds import Triggers

            return Triggers.min_interval_ms if sub else 0
        if sub:
            return triggers.every[io]
        return triggers.band[io] if triggers.kind[io] & 0x7F == fn else 0  # (0x80: none sent)
    if fn == FN_ANALOG:
        raw = kinds.read_u16(io)
        return raw if sub == "r" else kinds.millivolts(raw) if sub == "m" else raw >> 6
    if fn == FN_PWM:
        return kinds.freq[io] if sub == "h" else kinds.duty[io]
    if fn == FN_COUNTER:
        return kinds.hw.count(io)  # now (an update tells it at the next sample)
    if sub:
        buttons = kinds.buttons
        return (buttons.debounce if sub == "s" else buttons.long if sub == "l"
                else buttons.window)[io]
    return kinds.event[io]


def _write(engine, kinds, fn, sub, io, n, now):
    if fn == FN_ANALOG:
        raise CommandError(E_READ_ONLY)
    if fn == FN_PWM:
        if sub == "h":
            if not 1 <= n <= kinds.max_pwm_hz:
                raise CommandError(E_RANGE)
            if not kinds.set_pwm(io, kinds.duty[io], n, now):
                raise CommandError(E_PWM_FREQS)
        else:
            if n > 1023:
                raise CommandError(E_RANGE)
            kinds.set_pwm(io, n, kinds.freq[io], now)
        return
    if fn == FN_COUNTER:
        if n != 0:
            raise CommandError(E_RANGE)  # a count is only reset
        kinds.reset(io, now)
        return
    if not sub:
        raise CommandError(E_READ_ONLY)
    if n > MAX_MS:
        raise CommandError(E_RANGE)
    buttons = kinds.buttons
    (buttons.debounce if sub == "s" else buttons.long if sub == "l" else buttons.window)[io] = n


def _set_trigger(kinds, client, fn, sub, io, n):
    triggers = getattr(client, "kinds", None)
    if triggers is None:
        from ..logic.kinds import Triggers

        triggers = client.kinds = Triggers(len(client.triggers) - 1)
    if sub == "i":
        if n > MAX_MS:
            raise CommandError(E_RANGE)
        triggers.every[io] = n
        return
    if fn == FN_ANALOG and n > 1023 or fn in (FN_BUTTON, FN_PWM) and n > 1:
        raise CommandError(E_RANGE)
    triggers.set(io, fn, n, kinds)
