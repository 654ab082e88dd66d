# Transport: the device on an MQTT broker (docs/MQTT.md). The device's sink for MQTT
# (logic/device.py) and its command channel: it publishes what the device
# announces on topics under <prefix>/<node_id>/, and runs the commands that arrive on
# `cmd`, `<prefix>/all/cmd` and `io/<h>/set` (a digital output's level, a PWM output's
# duty, a counter's reset). The link to the broker is mqtt.py's.
#
#   status      online / offline (the will), retained
#   state       the switch report, exactly as on the WebSocket, retained
#   io/<h>      0 / 1, the level of every digital IO, retained; an analog input's
#               value 0..1023 (deadband and interval below), a PWM output's duty
#               0..1023, a count, all retained; a button's events as JSON, not
#               retained ({"event_type":"short_release","code":"1002"})
#   event       each event-log record as GET /log gives it
#   reply       the reply to each command
#   cmd, io/<h>/set, <prefix>/all/cmd: subscribed; retained messages there are
#               ignored (and logged): a command must not run again at every connect.
#
# Everything is published again after every connect. Topics are encoded once, and a
# change is published from the link's send buffer.
#
# It also answers `sq` and `tusq` for the command engine (link_command), tells the
# device's sinks when the link comes up or goes down (link_changed(): the WebSocket's
# tusq update), and removes the board from Home Assistant (`sqh=0`: announce).
import json
from array import array
from random import getrandbits

try:
    import uctypes
except ImportError:  # CPython
    uctypes = None

from ..compat import const, ticks_add, ticks_diff, ticks_ms
from ..protocol.commands import (E_RANGE, E_READ_ONLY, E_SUBTREE, E_UNKNOWN, CommandError,
                                 error_reply, is_error)
from ..protocol.report import digits, put_digits

_HEX = "0123456789abcdef"
_HEX_BYTES = b"0123456789abcdef"
_LEVEL = (b"0", b"1")
# logic/kinds.py's functions (consts there, not importable; that module is loaded only
# while some IO is not digital). test_mqttsink checks that the two agree.
FN_ANALOG = const(1)
FN_PWM = const(2)
FN_COUNTER = const(3)
FN_BUTTON = const(4)
# A button's events by deCONZ's code - 1000 (logic/button.py): the event_type of its
# message on io/<h>, and the event entity's event types (mqttdiscovery.py).
BUTTON_EVENTS = ("press", "hold", "short_release", "long_release", "double_press")
# The reply to a trigger command (tuv...): triggers choose what a WebSocket connection
# is told; over MQTT every change of every IO is published anyway.
E_NO_TRIGGERS = "no triggers over mqtt: every io is published"


class MqttClient:
    """The MQTT channel as the device's command logic sees a client (Device.connected:
    rate credit, triggers)."""

    closing = False


class MqttSink:
    #: After Home Assistant's birth message, discovery is sent again after a random
    #: wait of up to this long, so that a fleet does not answer all at once.
    discovery_jitter_ms = 5000
    #: An analog input (sampled every Kinds.sample_ms) is published on io/<h> when it
    #: has moved by at least this much (0..1023) from the value published last...
    analog_deadband = 8
    #: ... and this long (ms) or more after it: ESPHome's delta and throttle filters.
    #: A move held back is published at the first sample after the interval. Lower
    #: both for a livelier sensor: each publish is a QoS 1 message and its PUBACK.
    analog_interval_ms = 1000

    def __init__(self, device, prefix, node_id, discovery_prefix="", retain_discovery=False,
                 log=print):
        self.device = device
        self.log = log
        self.link = None  # the MqttLink (connect_to), or what stands in for it in tests
        self.node_id = node_id
        base = "%s/%s/" % (prefix, node_id)
        self.base = base.encode()
        self.status_topic = (base + "status").encode()
        self.state_topic = (base + "state").encode()
        self.event_topic = (base + "event").encode()
        self.reply_topic = (base + "reply").encode()
        self.cmd_topic = (base + "cmd").encode()
        self.all_cmd_topic = (prefix + "/all/cmd").encode()
        # One buffer for every io/<h> topic, its last byte the IO's hex digit, written
        # before each publish (io_topic()): 16 topics kept as bytes were ~0.8 KB.
        self._io_topic = bytearray((base + "io/0").encode())
        self.subscriptions = [(self.cmd_topic.decode(), 1), (base + "io/+/set", 1),
                              (self.all_cmd_topic.decode(), 1)]
        # Home Assistant discovery (mqttdiscovery.py), unless discovery_prefix is "".
        self.discovery_prefix = discovery_prefix
        self.retain_discovery = retain_discovery
        self.birth_topic = None
        if discovery_prefix:
            self.birth_topic = (discovery_prefix + "/status").encode()
            self.subscriptions.append((discovery_prefix + "/status", 1))
        self._directions = bytearray(device.bank.direction)  # as discovery last told them
        self._functions = bytearray(device.bank.function)  # the same, of the functions
        n = device.bank.count
        self._sent = array("H", bytes(2 * n))  # an analog value as published last
        self._sent_at = array("i", bytes(4 * n))  # ticks_ms when
        self._labels_changed = device.bank.labels_changed  # the same, of the labels
        log = device.log
        self._time_bytes = None  # the log's time ring as bytes, on MicroPython (_event_ms)
        if uctypes is not None:
            self._time_bytes = uctypes.bytearray_at(uctypes.addressof(log._time),
                                                    8 * log.size)
        self._discovery_due = False
        self._discovery_at = 0
        self.client = MqttClient()
        device.connected(self.client)
        self.ignored = 0  # retained commands ignored since boot

    def connect_to(self, host, port, keepalive_s, user, password, ssl):
        """Make the link to the broker (its task is link.run()): the client id is the
        node id, the will says `offline` on `status`, retained."""
        from .mqtt import MqttLink

        self.link = MqttLink(host, port, self.node_id, self, keepalive_s, self.status_topic,
                             b"offline", user, password, ssl, self.log)
        return self.link

    # --- the device's sink --------------------------------------------------------
    def report_changed(self, report, seq):
        link = self.link
        if link is not None:
            self._publish_state(link, report, seq)

    def _publish_state(self, link, report, seq):
        # Written straight into the link's packet: a report allocates nothing.
        pos = link.begin(self.state_topic, report.length(seq), True)
        if pos >= 0:
            link.end(report.write(link.packet, pos, seq))

    def level_changed(self, io, level):
        link = self.link
        if link is not None:
            link.publish(self.io_topic(io), _LEVEL[level], True)

    def value_changed(self, io, fn, value, now):
        # An analog sample (published past the deadband and interval), a count, a PWM
        # duty, a button event (logic/kinds.py). A number is written into the link's
        # packet: nothing is allocated for a sample, published or not.
        link = self.link
        if link is None:
            return
        if fn == FN_BUTTON:
            link.publish(self.io_topic(io), button_message(value), False)
            return
        if fn == FN_ANALOG:
            last = self._sent[io]
            if ((value - last if value > last else last - value) < self.analog_deadband
                    or ticks_diff(now, self._sent_at[io]) < self.analog_interval_ms):
                return
        self._publish_number(link, io, value, now)

    def _publish_number(self, link, io, value, now):
        self._sent[io] = value
        self._sent_at[io] = now
        pos = link.begin(self.io_topic(io), digits(value), True)
        if pos >= 0:
            link.end(put_digits(link.packet, pos, value))

    def function_changed(self, io, fn, now, client):
        # What io/<h> carries now (discovery follows at the next tick()).
        link = self.link
        if link is not None:
            self._publish_io(link, io, now)

    def _publish_io(self, link, io, now):
        # io/<h> as the IO's function has it: a level, a value, or (a button, whose
        # events are not retained) the retained message cleared.
        bank = self.device.bank
        fn = bank.function[io]
        if not fn:
            link.publish(self.io_topic(io), _LEVEL[bank.level[io]], True)
        elif fn == FN_BUTTON:
            link.publish(self.io_topic(io), b"", True)
        else:
            kinds = bank.kinds
            self._publish_number(link, io, kinds.raw[io] >> 6 if fn == FN_ANALOG else
                                 kinds.duty[io] if fn == FN_PWM else kinds.counts[io], now)

    def io_topic(self, io):
        """The topic io/<h> of IO `io` (the one buffer, valid until the next call)."""
        topic = self._io_topic
        topic[-1] = _HEX_BYTES[io]
        return topic

    def logged(self, seq):
        link = self.link
        if link is not None:
            self._publish_event(link, seq)

    def _publish_event(self, link, seq):
        # Written straight into the link's packet: an event allocates nothing.
        log = self.device.log
        ms = self._event_ms(seq % log.size)
        pos = link.begin(self.event_topic, record_len(seq, ms, log._level[seq % log.size]),
                         False, seq)
        if pos >= 0:
            link.end(record_into(log, link.packet, pos, seq, ms))

    def _event_ms(self, i):
        # The time of the log's record in slot i. Read as an item of the log's ring
        # (array "q") it is a new long int object, 320 bytes on the unix port; read from
        # the ring's bytes (little-endian on every board: Xtensa, ARM, x86) it is a small
        # int. 7 bytes hold 2**56 ms, two million years.
        raw = self._time_bytes
        if raw is None:  # CPython
            return self.device.log._time[i]
        # In two parts, so that no part is a long int on a 32-bit board (small ints
        # there have 31 bits): the time is one only after 2**30 ms, 12 days.
        p = 8 * i
        low = raw[p] | raw[p + 1] << 8 | raw[p + 2] << 16
        high = raw[p + 3] | raw[p + 4] << 8 | raw[p + 5] << 16 | raw[p + 6] << 24
        return low | high << 24 if high else low

    def reply(self, client, text):
        link = self.link
        if link is not None and link.connected:
            # The text is kept until acknowledged: sent again after a reconnect.
            link.publish(self.reply_topic, text.encode(), False, text)

    # --- the link's handler -------------------------------------------------------
    def connected(self, link):
        """After every CONNACK: subscribe, then publish everything."""
        link.subscribe(self.subscriptions)
        link.publish(self.status_topic, b"online", True)
        device = self.device
        self._publish_state(link, device.report, device.log.seq)
        now = ticks_ms()
        for io in range(device.bank.count):
            self._publish_io(link, io, now)
        self.publish_discovery()
        self.disconnected(link)

    def disconnected(self, link):
        """The connection ended, or a try failed: link.last_error says why, and
        link.retry_at when the next try is. (And after a connect.) The device's sinks
        that show the link are told (link_changed(), logic/device.py): rare, at most
        twice per connection attempt. Here rather than in Device, so that a device
        without MQTT does not carry the code."""
        for sink in self.device.sinks:
            changed = getattr(sink, "link_changed", None)
            if changed is not None:
                changed()

    # --- the link's state, for `sq` -------------------------------------------------
    def link_state(self, now):
        """(connected 0/1, "host:port", last error, seconds to the next try, connects
        since boot, announced to Home Assistant 0/1) at `now` (ticks_ms): `sq`."""
        link = self.link
        up = link.connected
        wait = 0 if up else ticks_diff(link.retry_at, now)
        return (1 if up else 0, "%s:%d" % (link.host, link.port), link.last_error,
                (wait + 999) // 1000 if wait > 0 else 0, link.connects,
                1 if self.device.engine.settings.announce else 0)

    def link_json(self, now):
        """The `sq` subtree's JSON object at `now` (ticks_ms)."""
        c, b, e, r, n, h = self.link_state(now)
        return '{"c":"%d","b":%s,"e":%s,"r":"%d","n":"%d","h":"%d"}' % (
            c, json.dumps(b), json.dumps(e), r, n, h)

    def link_update(self, now):
        """The update a tusq trigger asks for when the link changes (websocket.py)."""
        return '{"u":{"s":{"q":%s}}}' % self.link_json(now)

    def link_command(self, client, command, value, now):
        """`sq`, its leaves, `tus` and `tusq` (the command engine hands them over;
        PROTOCOL.md, The MQTT link). CommandError as the engine's own commands."""
        if command[0] == "t":  # tus, tusq: the byte after the IOs' triggers
            if value is not None:
                if command == "tus":
                    raise CommandError(E_SUBTREE)
                if value not in ("0", "1"):
                    raise CommandError(E_RANGE)
                client.triggers[-1] = int(value)
            return '{"t":{"u":{"s":{"q":"%d"}}}}' % client.triggers[-1]
        leaf = command[2:]
        if len(leaf) > 1 or leaf not in "cbernh":
            raise CommandError(E_UNKNOWN)
        if value is not None:
            if not leaf:
                raise CommandError(E_SUBTREE)
            if leaf != "h":
                raise CommandError(E_READ_ONLY)
            if value not in ("0", "1"):
                raise CommandError(E_RANGE)
            self.announce(value == "1")
        if not leaf:
            return '{"s":{"q":%s}}' % self.link_json(now)
        got = self.link_state(now)["cbernh".index(leaf)]
        return '{"s":{"q":{"%s":%s}}}' % (leaf, json.dumps(got if type(got) is str
                                                            else "%d" % got))

    # --- Home Assistant -----------------------------------------------------------
    def announce(self, on):
        """`sqh=1` / `sqh=0`: announce the board to Home Assistant, or remove it (an
        empty retained message on the discovery topic, now and after every connect
        while it is off) and announce it no more until `sqh=1`. Kept in
        settings.json."""
        settings = self.device.engine.settings
        if settings.announce != on:
            settings.announce = on
            settings.changed()
        self.publish_discovery()

    def publish_discovery(self):
        """The Home Assistant discovery message (made now, not kept); the empty one
        that removes the board when it is not to be announced (sqh=0)."""
        link = self.link
        self._discovery_due = False
        if not self.discovery_prefix or link is None:
            return
        from .mqttdiscovery import discovery_pieces, discovery_topic

        if not self.device.engine.settings.announce:
            # Retained whatever retain_discovery says: it also clears a retained one.
            link.publish(discovery_topic(self.discovery_prefix, self.node_id).encode(),
                         b"", True)
            self._forget_discovery()
            return

        device = self.device
        bank = device.bank
        self._directions[:] = bank.direction
        self._functions[:] = bank.function
        self._labels_changed = bank.labels_changed
        status = device.status
        what = (self.node_id, self.base.decode(), device.engine.settings.name,
                status.board, status.version, bank, device.report.active_level)
        # Made twice, piece by piece: counted (in UTF-8 bytes), then written into the
        # PUBLISH, so that only the packet holds the whole (2.3-3.5 KB for UNIX_SIM's
        # 16 IOs). The packet is sent in one write: sent as made, a piece that could
        # not be made (a MemoryError, a Ctrl-C) would leave the broker reading the
        # next packets as the rest of this one.
        size = 0
        for piece in discovery_pieces(*what):
            size += len(piece.encode())
        pos = link.begin(discovery_topic(self.discovery_prefix, self.node_id).encode(),
                         size, self.retain_discovery)
        if pos >= 0:
            packet = link.packet
            for piece in discovery_pieces(*what):
                piece = piece.encode()
                packet[pos:pos + len(piece)] = piece
                pos += len(piece)
            link.end(pos)
        self._forget_discovery()

    def _forget_discovery(self):
        # Forgotten until the next time (a board that loads .mpy files would keep its
        # bytecode in the heap): it is sent after a connect, a birth, a direction change, a rename.
        import sys

        name = __name__.rpartition(".")[0] + ".mqttdiscovery"
        sys.modules.pop(name, None)
        package = sys.modules.get(name.rpartition(".")[0])
        if package is not None and hasattr(package, "mqttdiscovery"):
            delattr(package, "mqttdiscovery")

    def tick(self, now):
        """Once a second while connected: discovery again when an IO changed direction
        (an input became an output: a switch) or function, or was renamed, or when the
        wait after Home Assistant's birth message is over; never while the board is
        removed (sqh=0)."""
        if not self.discovery_prefix or not self.device.engine.settings.announce:
            return
        bank = self.device.bank
        if (self._directions != bank.direction or self._functions != bank.function
                or self._labels_changed != bank.labels_changed):
            self.publish_discovery()
        elif self._discovery_due and ticks_diff(now, self._discovery_at) >= 0:
            self.publish_discovery()

    def resend(self, ref):
        """A publish the broker never acknowledged, after a reconnect: an event by its
        seq (if the log still holds it), or a reply by its text."""
        link = self.link
        if link is None:
            return
        if type(ref) is int:
            if ref >= self.device.log.oldest():
                self._publish_event(link, ref)
        else:
            link.publish(self.reply_topic, ref.encode(), False, ref)

    def message(self, topic, payload, retain):
        topic = bytes(topic)
        if topic == self.birth_topic:
            # Home Assistant (re)started: discovery again, after a random wait.
            if bytes(payload) == b"online":
                wait = getrandbits(16) * self.discovery_jitter_ms >> 16
                self._discovery_at = ticks_add(ticks_ms(), wait)
                self._discovery_due = True
            return
        if retain:
            self.ignored += 1
            name = topic.decode()
            self.log("mqtt: ignoring a retained message on %s: commands are never"
                     " retained (clear it: mosquitto_pub -r -n -t %s)" % (name, name))
            return
        try:
            text = bytes(payload).decode()
        except UnicodeError:
            text = "\x00"  # refused by the command engine as an invalid character
        if topic == self.cmd_topic or topic == self.all_cmd_topic:
            self.command(text)
            return
        base = self.base
        n = len(base)
        # <base>io/<h>/set
        if (len(topic) == n + 8 and topic[:n] == base and topic[n : n + 3] == b"io/"
                and topic[n + 4 :] == b"/set"):
            edge = chr(topic[n + 3])
            io = _HEX.find(edge)
            fn = self.device.bank.function[io] if 0 <= io < self.device.bank.count else 0
            # A PWM output's duty, a counter's reset (0), else a level (an error for an
            # analog input or a button: `io is not digital`).
            self.command_quietly("%s%s=%s" % ("w" if fn == FN_PWM else "c" if fn == FN_COUNTER
                                              else "v", edge, text.strip()))

    def command(self, text):
        """A message on cmd: run it, the reply on `reply`."""
        if text[:1] == "t":
            eq = text.find("=")
            self.reply(self.client, error_reply(text if eq < 0 else text[:eq], E_NO_TRIGGERS))
            return
        self.reply(self.client, self.device.execute(self.client, text))

    def command_quietly(self, text):
        # io/<h>/set: what it changes shows on io/<h>; only an error is replied.
        reply = self.device.execute(self.client, text)
        if is_error(reply):
            self.reply(self.client, reply)

    #: How long the goodbye may take when the device stops.
    goodbye_ms = 2000

    def goodbye(self):
        """The firmware has stopped (sys.atexit, after Ctrl-C ended its event loop):
        `offline` on status, what the will would say, then a clean DISCONNECT, on an
        event loop of its own."""
        import asyncio

        link = self.link
        if link is None:
            return
        asyncio.new_event_loop()  # the serving tasks are left behind
        try:
            asyncio.run(asyncio.wait_for_ms(
                link.disconnect((self.status_topic, b"offline")), self.goodbye_ms))
        except (Exception, KeyboardInterrupt):  # a second Ctrl-C: stop now
            pass


def button_message(code):
    """A button event's message on io/<h> (code: deCONZ's, 1000..1004), as Home
    Assistant's MQTT event entity reads it."""
    return ('{"event_type":"%s","code":"%d"}' % (BUTTON_EVENTS[code - 1000], code)).encode()


# --- an event-log record, written in place ------------------------------------------
# EventLog.record(seq)'s text, {"seq":N,"t":MS,"io":"<h>","v":"<0|1>"}, as bytes written
# into a buffer instead of a new string (test_mqttsink checks the two agree). It is
# here rather than in logic/eventlog.py so that a device without MQTT does not carry
# its code in the heap; it reads the log's ring as record() does.

def record_len(seq, ms, code=0):
    """len(log.record(seq)) for the record whose time is `ms` and code `code` (its
    level, or a button event's: 3 digits more), without making it."""
    return 30 + digits(seq) + digits(ms) + (3 if 2 <= code < 7 else 0)


def record_into(log, buf, pos, seq, ms):
    """Write log.record(seq), whose time is `ms`, at buf[pos:]; returns the position
    after it."""
    i = seq % log.size
    buf[pos : pos + 7] = b'{"seq":'
    pos = put_digits(buf, pos + 7, seq)
    buf[pos : pos + 5] = b',"t":'
    pos = put_digits(buf, pos + 5, ms)
    buf[pos : pos + 7] = b',"io":"'
    buf[pos + 7] = _HEX_BYTES[log._io[i]]
    buf[pos + 8 : pos + 15] = b'","v":"'
    code = log._level[i]
    if code < 2:  # a level; else logic/kinds.py's: a counter reset or a button event
        buf[pos + 15] = 0x30 + code
    elif code == 7:
        buf[pos + 11] = 0x63  # "c"
        buf[pos + 15] = 0x30
    else:
        buf[pos + 11] = 0x62  # "b"
        pos = put_digits(buf, pos + 15, 998 + code) - 16  # 3 digits more
    buf[pos + 16 : pos + 18] = b'"}'
    return pos + 18
