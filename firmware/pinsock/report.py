# The DIP switch report, the message NetBurner's example page reads:
#   {"dipSwitches":{"dip1":"On","dip2":"Off",...,"dip8":"Off"},"seq":N}
# `seq` is the number of the newest event-log record (see eventlog.py); clients that
# do not use it ignore it. Built from preformatted pieces, once per change, and
# shared by every client.


class SwitchReport:
    def __init__(self, bank, active_low):
        self.bank = bank
        self.active_level = 0 if active_low else 1
        # (io, '"dipN":"') in switch order 1..8
        dips = sorted((bank.dip_number[io], io) for io in range(bank.count) if bank.is_dip(io))
        self.ios = [io for _, io in dips]
        self._keys = ['"dip%d":"' % number for number, _ in dips]

    def is_on(self, io):
        return self.bank.level[io] == self.active_level

    def text(self, seq):
        level = self.bank.level
        on = self.active_level
        parts = []
        for key, io in zip(self._keys, self.ios):
            parts.append(key + ("On" if level[io] == on else "Off") + '"')
        return '{"dipSwitches":{' + ",".join(parts) + '},"seq":%d}' % seq
