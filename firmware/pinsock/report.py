# The DIP switch report, the message NetBurner's example page reads:
#   {"dipSwitches":{"dip1":"On","dip2":"Off",...,"dip8":"Off"},"seq":N}
# `seq` is the number of the newest event-log record (see eventlog.py); clients that
# do not use it ignore it. Built once per change, straight into the WebSocket frame
# every client is sent, in a buffer allocated at start-up: a change allocates
# nothing. The frame is a memoryview of that buffer, valid until the next frame():
# whoever keeps it longer copies it (hub.Client.push does when it must queue it).
from . import wsframe
from .compat import const

_ON = b'On"'
_OFF = b'Off"'
_HEAD = b'{"dipSwitches":{'
_TAIL = b'},"seq":'
_SEQ_DIGITS = const(20)  # room for any seq (a 64-bit number has at most 20 digits)
# The payload starts here; the frame's header is written just before it: 2 bytes for
# a payload under 126 bytes, 4 (a 16-bit length) up to 64 KiB, far beyond any board.
_HEADER_ROOM = const(4)


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
        longest = (len(_HEAD) + sum(len(k) for k in keys) + len(_OFF) * len(keys)
                   + len(_TAIL) + _SEQ_DIGITS + 1)
        self._buf = bytearray(_HEADER_ROOM + longest)
        self._buf[_HEADER_ROOM : _HEADER_ROOM + len(_HEAD)] = _HEAD  # never changes
        self._view = memoryview(self._buf)
        # The frame as a view of the buffer, one per count of switches Off, made the
        # first time that count comes up with the current number of digits in seq;
        # when seq gains a digit they are all made anew (the old ones are garbage).
        self._frames = [None] * (len(keys) + 1)  # type: list
        self._seq_digits = 0

    def is_on(self, io):
        return self.bank.level[io] == self.active_level

    def frame(self, seq):
        """The report with event-log number `seq` as a WebSocket text frame: a view of
        the report's buffer, overwritten by the next call."""
        buf = self._buf
        level = self.bank.level
        on = self.active_level
        pos = _HEADER_ROOM + len(_HEAD)
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
        n = pos - _HEADER_ROOM
        if n < 126:
            start = _HEADER_ROOM - 2
            buf[start + 1] = n
        else:
            start = 0
            buf[1] = 126
            buf[2] = n >> 8
            buf[3] = n & 0xFF
        buf[start] = 0x80 | wsframe.OP_TEXT
        frames = self._frames
        if digits != self._seq_digits:
            self._seq_digits = digits
            for i in range(len(frames)):
                frames[i] = None
        frame = frames[offs]
        if frame is None:
            frame = frames[offs] = self._view[start:pos]
        return frame

    def text(self, seq):
        """The report as text (what frame() carries; it rewrites the buffer too)."""
        frame = self.frame(seq)
        n = frame[1] & 0x7F  # the length field: 126 says a 16-bit one follows
        return bytes(frame[2 if n < 126 else 4 :]).decode()


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
