# The event log: every debounced input transition, numbered, in a fixed-size ring.
#
# Record N is {"seq":N,"t":<ms since boot>,"io":"<h>","v":"<0|1>"}: an input's level;
# {...,"b":"<1000..1004>"}: a button's event, {...,"c":"0"}: a counter reset
# (logic/kinds.py). Numbers rise by exactly 1. The ring is allocated once and keeps
# the newest `size` records, so a client that asks for what came after `since` learns
# exactly how many it missed.
from array import array


class EventLog:
    #: Records the ring keeps (GET /log); older ones are reported as {"lost":N}. 10
    #: bytes of RAM each, allocated at start-up. Board config: log_size.
    size = 256

    def __init__(self, size=None):
        if size is not None:
            self.size = size
        size = self.size
        self.seq = 0  # number of the newest record; 0 = none yet
        self._time = array("q", bytes(8 * size))
        self._io = bytearray(size)
        self._level = bytearray(size)

    def append(self, io, level, ms):
        seq = self.seq + 1
        i = seq % self.size
        self._time[i] = ms
        self._io[i] = io
        self._level[i] = level
        self.seq = seq
        return seq

    def oldest(self):
        """Number of the oldest record still held (seq + 1 when empty)."""
        return max(1, self.seq - self.size + 1)

    def since(self, since):
        """(lost, first, last): records after `since` that the ring no longer holds,
        and the range first..last (inclusive) it can still give."""
        if since < 0:
            since = 0
        oldest = self.oldest()
        first = max(since + 1, oldest)
        lost = max(0, oldest - (since + 1)) if self.seq > since else 0
        return lost, first, self.seq

    def record(self, seq):
        i = seq % self.size
        code = self._level[i]
        if code < 2:  # a level; else a button event or a counter reset
            return '{"seq":%d,"t":%d,"io":"%x","v":"%d"}' % (
                seq, self._time[i], self._io[i], code)
        from .kinds import log_text

        return '{"seq":%d,"t":%d,"io":"%x",%s}' % (seq, self._time[i], self._io[i],
                                                   log_text(code))

    def messages(self, since):
        """The texts that answer GET /log?since=<since>, one per message.

        A {"lost":N} message stands where N records are gone: first, when the ring
        no longer holds every record after `since`; again later, if records are
        overwritten while the answer is being sent (the reader is too slow).
        """
        lost, seq, last = self.since(since)
        if lost:
            yield '{"lost":%d}' % lost
        while seq <= last:
            oldest = self.oldest()
            if seq < oldest:
                gone = min(oldest, last + 1) - seq
                yield '{"lost":%d}' % gone
                seq += gone
                continue
            yield self.record(seq)
            seq += 1
