# The DIP switch report, the message NetBurner's example page reads:
#   {"dipSwitches":{"dip1":"On","dip2":"Off",...,"dip8":"Off"},"seq":N}
# `seq` is the number of the newest event-log record (see logic/eventlog.py); clients
# that do not use it ignore it. Written once per change into a buffer allocated at
# start-up: a change allocates nothing. The payload is a memoryview of that buffer,
# valid until the next payload(): whoever keeps it longer copies it (each transport
# frames it its own way: transport/websocket.py).
from ..compat import const

_ON = b'On"'
_OFF = b'Off"'
_HEAD = b'{"dipSwitches":{'
_TAIL = b'},"seq":'
_SEQ_DIGITS = const(20)  # room for any seq (a 64-bit number has at most 20 digits)


class SwitchReport:
    def __init__(self, bank, active_low):
        self.bank = bank
        self.active_level = 0 if active_low else 1
        # IOs in switch order 1..N
        dips = sorted((bank.dip_number[io], io) for io in range(bank.count) if bank.is_dip(io))
        self.ios = [io for _, io in dips]
        # The piece before each value: '"dip1":"', ',"dip2":"', ...
        keys = []
        for i, (number, _) in enumerate(dips):
            keys.append(('%s"dip%d":"' % ("," if i else "", number)).encode())
        self._keys = keys
        #: The longest payload this board's report can have (a transport's frame buffer
        #: is sized from it).
        self.max_len = (len(_HEAD) + sum(len(k) for k in keys) + len(_OFF) * len(keys)
                        + len(_TAIL) + _SEQ_DIGITS + 1)
        self._buf = bytearray(self.max_len)
        self._buf[: len(_HEAD)] = _HEAD  # never changes
        self._view = memoryview(self._buf)
        # The payload as a view of the buffer, one per count of switches Off, made the
        # first time that count comes up with the current number of digits in seq;
        # when seq gains a digit they are all made anew (the old ones are garbage).
        self._views = [None] * (len(keys) + 1)  # type: list
        self._seq_digits = 0

    def is_on(self, io):
        return self.bank.level[io] == self.active_level

    def payload(self, seq):
        """The report's text with event-log number `seq`, as bytes in a view of the
        report's buffer, overwritten by the next call."""
        buf = self._buf
        level = self.bank.level
        on = self.active_level
        pos = len(_HEAD)
        keys = self._keys
        i = 0
        offs = 0
        for io in self.ios:
            key = keys[i]
            end = pos + len(key)
            buf[pos:end] = key
            if level[io] == on:
                value = _ON
            else:
                value = _OFF
                offs += 1
            pos = end + len(value)
            buf[end:pos] = value
            i += 1
        end = pos + len(_TAIL)
        buf[pos:end] = _TAIL
        digits = _write_digits(buf, end, seq)
        pos = end + digits
        buf[pos] = 0x7D  # "}"
        pos += 1
        views = self._views
        if digits != self._seq_digits:
            self._seq_digits = digits
            for i in range(len(views)):
                views[i] = None
        view = views[offs]
        if view is None:
            view = views[offs] = self._view[:pos]
        return view

    def text(self, seq):
        """The report as text (what payload() holds; it rewrites the buffer too)."""
        return bytes(self.payload(seq)).decode()


def _write_digits(buf, pos, number):
    """Write `number` (>= 0) in decimal at buf[pos:]; returns how many digits."""
    count = 1
    rest = number // 10
    while rest:
        count += 1
        rest //= 10
    i = pos + count
    while True:
        i -= 1
        buf[i] = 0x30 + number % 10
        number //= 10
        if i == pos:
            return count
