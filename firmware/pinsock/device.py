# Device logic: what the device tells clients and what it does with their messages.
# Pure: it sees the IOs through IoBank and the clients through ClientHub.
from . import wsframe
from .commands import error_reply
from .iobank import DIR_IN
from .compat import mem_free, ticks_diff, ticks_ms


# The error reason a client gets for commands beyond its rate (docs/PROTOCOL.md).
E_RATE_LIMITED = "rate limited"


class Device:
    # Commands a client may send per second (board config: max_commands_per_s).
    max_commands_per_s = 50

    def __init__(self, bank, report, hub, engine, log, status):
        self.bank = bank
        self.report = report
        self.hub = hub
        self.engine = engine
        self.log = log
        self.status = status
        # The newest switch report, encoded once; a newcomer gets it on connect. A view
        # of the report's buffer (report.py), rewritten in place by the next change.
        self.report_frame = report.frame(log.seq)
        bank.listeners.append(self._level_changed)

    def _level_changed(self, io, level, now):
        bank = self.bank
        if bank.direction[io] == DIR_IN:
            self.log.append(io, level, self.status.ms_at(now))
        if bank.is_dip(io):
            frame = self.report.frame(self.log.seq)
            self.report_frame = frame
            self.hub.broadcast(frame, True)
        self.engine.level_changed(self.hub.clients, io, level)

    # --- called by the transport -------------------------------------------
    def connected(self, client):
        client.credit = self.max_commands_per_s * 1000
        self.hub.admit(client)
        self.engine.connected(client)
        client.push(self.report_frame, True)

    def received(self, client, text):
        now = ticks_ms()
        if self._over_rate(client, now):
            eq = text.find("=")
            reply = error_reply(text if eq < 0 else text[:eq], E_RATE_LIMITED)
        else:
            reply = self.engine.execute(client, text, now)
        client.push(wsframe.encode_text(reply))

    def _over_rate(self, client, now):
        # Token bucket in thousandths of a command: refills at max_commands_per_s and
        # holds at most one second's worth, so a burst of that many is fine.
        rate = self.max_commands_per_s
        full = rate * 1000
        credit = client.credit + ticks_diff(now, client.credit_at) * rate
        client.credit_at = now
        if credit > full:
            credit = full
        if credit < 1000:
            client.credit = credit
            return True
        client.credit = credit - 1000
        return False

    def disconnected(self, client):
        self.hub.remove(client)


class Status:
    """What `s` reports: version, board, clients, uptime and free heap."""

    def __init__(self, version, board, hub):
        self.version = version
        self.board = board
        self.hub = hub
        self._uptime_ms = 0
        self._last = ticks_ms()

    def clients(self):
        return len(self.hub.clients)

    def uptime_s(self):
        # ticks_ms wraps after 2**30 ms (12 days); adding up differences does not.
        # tick() runs at least every poll period, far more often than that.
        self.tick()
        return self._uptime_ms // 1000

    def ms_at(self, ticks):
        """Milliseconds since boot at `ticks` (a recent ticks_ms() value)."""
        self.tick()
        return self._uptime_ms + ticks_diff(ticks, self._last)

    def tick(self):
        now = ticks_ms()
        self._uptime_ms += ticks_diff(now, self._last)
        self._last = now

    def free_heap(self):
        return mem_free()
