# The DIP switch report, the message NetBurner's example page reads:
#   {"dipSwitches":{"dip1":"On","dip2":"Off",...,"dip8":"Off"},"seq":N}
# `seq` is the number of the newest event-log record (see logic/eventlog.py); clients
# that do not use it ignore it. Each transport writes it straight into the buffer it
# frames it in, made once at start-up (transport/websocket.py): a change allocates
# nothing, and nothing is copied.
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
        #: The longest text this board's report can have, in bytes: a transport's
        #: buffer for it is this big.
        self.max_len = (len(_HEAD) + sum(len(k) for k in keys) + len(_OFF) * len(keys)
                        + len(_TAIL) + _SEQ_DIGITS + 1)
        self._fixed_len = len(_HEAD) + sum(len(k) for k in keys) + len(_TAIL) + 1

    def is_on(self, io):
        return self.bank.level[io] == self.active_level

    def write(self, buf, pos, seq):
        """Write the report with event-log number `seq` into buf[pos:] (room for
        max_len bytes); returns where it ends."""
        end = pos + len(_HEAD)
        buf[pos:end] = _HEAD
        pos = end
        level = self.bank.level
        on = self.active_level
        keys = self._keys
        i = 0
        for io in self.ios:
            key = keys[i]
            end = pos + len(key)
            buf[pos:end] = key
            value = _ON if level[io] == on else _OFF
            pos = end + len(value)
            buf[end:pos] = value
            i += 1
        end = pos + len(_TAIL)
        buf[pos:end] = _TAIL
        pos = put_digits(buf, end, seq)
        buf[pos] = 0x7D  # "}"
        return pos + 1

    def length(self, seq):
        """How many bytes write() writes for `seq` (a transport that frames the report
        needs its length first)."""
        n = self._fixed_len
        level = self.bank.level
        on = self.active_level
        for io in self.ios:
            n += len(_ON) if level[io] == on else len(_OFF)
        return n + digits(seq)

    def text(self, seq):
        """The report as text (allocates: for tests and the odd caller)."""
        buf = bytearray(self.max_len)
        return bytes(buf[: self.write(buf, 0, seq)]).decode()


def digits(number):
    """How many decimal digits `number` (>= 0) has."""
    count = 1
    while number >= 10:
        number //= 10
        count += 1
    return count


def put_digits(buf, pos, number):
    """Write `number` (>= 0) in decimal at buf[pos:], allocating nothing; returns the
    position after it (the MQTT sink writes its event records with it too)."""
    end = pos + digits(number)
    i = end
    while True:
        i -= 1
        buf[i] = 0x30 + number % 10
        number //= 10
        if i == pos:
            return end
