# Device logic: what happens on the device, told to whoever listens (the sinks), and
# what it does with a client's message. Pure: it sees the IOs through IoBank and the
# command language through the engine it is given (protocol/commands.py); it knows
# nothing of WebSocket frames, HTTP or MQTT.
#
# A transport is a sink (below) and a channel for commands: it passes each
# message to execute() or received() and sends the reply its own way. The WebSocket
# service is one sink (transport/websocket.py), a test's recording sink another.
from ..compat import mem_free, ticks_add, ticks_diff, ticks_ms
from .iobank import DIR_IN


# A sink is any object with these four methods (Device.add_sink). Each is called in
# the order things happen, from the task that saw them; none may raise: what goes
# wrong in one transport stays there. (Described here, not as a base class: a class
# costs heap on the device, and duck typing needs none.)
#
#   report_changed(report, seq)  the switch report changed: report.write(buf, pos,
#                            seq) writes its text into a buffer of the sink's (room
#                            for report.max_len bytes), where the sink frames it
#   level_changed(io, level) IO `io` now reads `level` (a debounced input, or an
#                            output driven)
#   logged(seq)              event-log record `seq` was added (Device.log.record(seq))
#   reply(client, text)      the reply to a message `client` sent through this
#                            sink's transport (Device.received)
#
# and, only if it has it:
#
#   link_changed()           the MQTT link came up or went down: what `sq` reads
#                            changed (transport/mqttsink.py tells the sinks)
#   value_changed(io, fn, value, now)
#                            an analog input was sampled (0..1023, every sample:
#                            logic/kinds.py tells it), a count changed, a button
#                            event came (1000 + event), a PWM duty changed (0..1023);
#                            fn is logic/iobank.py's FN_...; must not allocate unless
#                            it sends something
#   function_changed(io, fn, now, client)
#                            IO `io` is now of function `fn` (`f<h>=` from `client`,
#                            None at boot; logic/kinds.py)


class Device:
    #: Commands a client may send per second (token bucket, a second's worth of burst),
    #: and a source address, over all its connections and /action.cgi requests,
    #: max_clients times that (AddressRates: burst_s seconds' worth). More are answered
    #: with a "rate limited" error; the reply costs what any reply does. Board config:
    #: max_commands_per_s.
    max_commands_per_s = 50

    def __init__(self, bank, report, engine, log, status, max_commands_per_s=None,
                 max_clients=1):
        self.bank = bank
        self.report = report
        self.engine = engine
        self.log = log
        self.status = status
        if max_commands_per_s is not None:
            self.max_commands_per_s = max_commands_per_s
        # An address may use every client slot at the full rate, but no more, however
        # often it reconnects.
        self.rates = AddressRates(self.max_commands_per_s * max_clients)
        self.sinks = []
        bank.listeners.append(self._level_changed)
        bank.device = self  # whom the other kinds tell (logic/kinds.py)

    def add_sink(self, sink):
        """Tell `sink` from now on; it hears the current switch report at once."""
        self.sinks.append(sink)
        sink.report_changed(self.report, self.log.seq)

    def _level_changed(self, io, level, now):
        # In this order: the record is made, the report (numbered with it) told, then
        # the record, then the level.
        bank = self.bank
        sinks = self.sinks
        log = self.log
        logged = bank.direction[io] == DIR_IN
        if logged:
            log.append(io, level, self.status.ms_at(now))
        seq = log.seq
        if bank.is_dip(io):
            report = self.report
            for sink in sinks:
                sink.report_changed(report, seq)
        if logged:
            for sink in sinks:
                sink.logged(seq)
        for sink in sinks:
            sink.level_changed(io, level)

    # --- called by a transport ---------------------------------------------
    def connected(self, client, address=None):
        """A client connected: its own state (triggers, rate credit) starts afresh.
        `address`: where it connects from (any text or bytes, the same for every
        connection from there; transport/hub.py peer_address), whose rate lives on."""
        client.credit = self.max_commands_per_s * 1000
        client.credit_at = ticks_ms()
        client.address = "" if address is None else address
        self.engine.connected(client)

    def execute(self, client, text):
        """The reply to one message from `client`, within its rate and its address's.
        Never raises."""
        return self._run(client, text, False)

    def received(self, sink, client, text):
        """One message from `client` of `sink`'s transport (the WebSocket's); the reply
        goes to the sink. A message that is a JSON object is NetBurner's LED command
        (engine.led_command), within the same rates; carried out, it is not answered."""
        reply = self._run(client, text, text.startswith("{"))
        if reply is not None:
            sink.reply(client, reply)

    def _run(self, client, text, led):
        now = ticks_ms()
        if self._over_rate(client, now) or not self.rates.allow(client.address, now):
            return self.engine.rate_limited(text)
        if led:
            return self.engine.led_command(text, now)
        return self.engine.execute(client, text, now)

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


class AddressRates:
    """A token bucket per source address, in a table made once: looking an address up
    compares keys and allocates nothing, and reconnecting starts nothing afresh."""

    #: Addresses tracked at once. A new address takes a free slot, else that of one
    #: whose bucket is full again (it sent nothing for burst_s: forgetting it loses
    #: nothing). When there is none, every address not in the table shares one more
    #: bucket: a crowd of addresses gets at most (slots + 1) times the rate, and the
    #: table never grows.
    slots = 8
    #: An address may send this many seconds' worth of commands at once, over all its
    #: connections and /action.cgi requests; then per_s.
    burst_s = 2

    def __init__(self, per_s, slots=None):
        n = self.slots = self.slots if slots is None else slots
        self.per_s = per_s  # commands per second
        self.full = per_s * 1000 * self.burst_s  # in thousandths of a command
        self._keys = [None] * n  # None: a free slot
        self._credit = [self.full] * (n + 1)  # [n]: the shared bucket
        self._at = [0] * (n + 1)  # ticks_ms of the last use

    def allow(self, key, now):
        """True when the address `key` may send one more command at `now` (ticks_ms),
        which it then has spent."""
        keys = self._keys
        slot = self.slots
        for i in range(slot):
            if keys[i] == key:
                slot = i
                break
        else:
            for i in range(slot):
                if keys[i] is None or self._credit_at(i, now) == self.full:
                    keys[i] = key
                    self._at[i] = ticks_add(now, -1000 * self.burst_s)  # full
                    slot = i
                    break
        credit = self._credit_at(slot, now)
        self._at[slot] = now
        if credit < 1000:
            self._credit[slot] = credit
            return False
        self._credit[slot] = credit - 1000
        return True

    def _credit_at(self, slot, now):
        # Unused for burst_s, a bucket is full whatever it held (so the product below
        # stays a small int however long it was; < 0: ticks_ms wrapped, as long).
        elapsed = ticks_diff(now, self._at[slot])
        if not 0 <= elapsed < self.burst_s * 1000:
            return self.full
        credit = self._credit[slot] + elapsed * self.per_s
        return self.full if credit > self.full else credit


class Status:
    """What `s` reports: version, board, clients, uptime and free heap."""

    #: What reports the MQTT link for `sq` (transport/mqttsink.py MqttSink: its
    #: link_state(now) and announce(on)); None: no mqtt block, `sq` says "off".
    mqtt = None
    #: `so`: the update state as JSON text (pinsock/otastate.py describe).
    ota = '{"s":"a","t":"0","p":"","r":""}'  # (never updated, in slot a)

    def __init__(self, version, board, count_clients):
        self.version = version
        self.board = board
        self.clients = count_clients  # () -> connected clients (the WebSocket's)
        self._uptime_ms = 0
        self._last = ticks_ms()

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
