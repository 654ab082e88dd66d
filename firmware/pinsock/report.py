# The DIP switch report, the message NetBurner's example page reads:
#   {"dipSwitches":{"dip1":"On","dip2":"Off",...,"dip8":"Off"},"seq":N}
# `seq` is the number of the newest event-log record (see eventlog.py); clients that
# do not use it ignore it. Built once per change, straight into the WebSocket frame
# every client is sent (the same bytes object for all of them), from pieces made at
# start-up: a change allocates the frame and little else.
from . import wsframe

_ON = b'On"'
_OFF = b'Off"'


class SwitchReport:
    def __init__(self, bank, active_low):
        self.bank = bank
        self.active_level = 0 if active_low else 1
        # IOs in switch order 1..N
        dips = sorted((bank.dip_number[io], io) for io in range(bank.count) if bank.is_dip(io))
        self.ios = [io for _, io in dips]
        # The frame's pieces: [header, '{"dipSwitches":{', key1, value1, key2, value2,
        # ..., tail]; frame() fills in the header, the values and the tail.
        parts = [b"", b'{"dipSwitches":{']
        for i, (number, _) in enumerate(dips):
            parts.append(('%s"dip%d":"' % ("," if i else "", number)).encode())
            parts.append(_OFF)
        parts.append(b"")
        self._parts = parts
        self._fixed_len = len(parts[1]) + sum(len(parts[i]) for i in range(2, len(parts) - 1, 2))

    def is_on(self, io):
        return self.bank.level[io] == self.active_level

    def frame(self, seq):
        """The report with event-log number `seq`, as a WebSocket text frame (bytes)."""
        parts = self._parts
        level = self.bank.level
        on = self.active_level
        n = self._fixed_len
        i = 3
        for io in self.ios:
            value = _ON if level[io] == on else _OFF
            parts[i] = value
            n += len(value)
            i += 2
        tail = b'},"seq":%d}' % seq
        parts[i - 1] = tail
        parts[0] = wsframe.header(wsframe.OP_TEXT, n + len(tail))
        return b"".join(parts)

    def text(self, seq):
        """The report as text (what frame() carries)."""
        frame = self.frame(seq)
        n = frame[1] & 0x7F  # the length field: 126 and 127 say an extended one follows
        return frame[2 if n < 126 else 4 if n == 126 else 10:].decode()
