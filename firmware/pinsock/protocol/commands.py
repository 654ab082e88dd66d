# The Netzer-style command interface, one engine for the WebSocket and for HTTP.
#
#   message = command [ "=" value ]     no value: read; a value: write
#   command = path of [a-z0-9] through the tree below; IO edges are one hex digit
#
#   v<h>  level        d<h>  direction      p<h>  pull      (digital IOs)
#   f<h>  function: d digital, a analog, w PWM, c counter, b button; a.. w.. c.. b..
#         tua.. tuc.. tub.. tuw..: the other kinds' (protocol/kindcmds.py)
#   tuv<h>  this connection's update trigger: 0 off, 1 rising, 2 falling, 3 any
#   sn name   sv version   sb board   sc clients   st uptime (s)   sm free heap
#   so updates over the network (docs/OTA.md; read alone, not part of `s`)
#   sq the MQTT link (only with an mqtt block): sqc connected, sqb broker, sqe last
#      error, sqr retry in (s), sqn connects, sqh announced to Home Assistant (0/1)
#   tusq  this connection's trigger for the link's update {"u":{"s":{"q":{...}}}}
#
# Replies are nested JSON mirroring the path, leaf values as strings. Every failure
# is one error reply {"e":{"c":"<command>","m":"<reason>"}}; see docs/PROTOCOL.md.
import json

from ..logic.iobank import DIR_OUT
from ..logic.settings import is_valid_name

_HEX = "0123456789abcdef"

# Error reasons: part of the protocol, documented in docs/PROTOCOL.md.
E_EMPTY = "empty command"
E_COMMAND_TOO_LONG = "command too long"
E_VALUE_TOO_LONG = "value too long"
E_BAD_CHAR = "invalid character"
E_UNKNOWN = "unknown command"
E_NO_IO = "no such io"
E_SUBTREE = "cannot write a subtree"
E_READ_ONLY = "read-only"
E_INPUT = "io is an input"
E_RANGE = "value out of range"
E_NOT_SUPPORTED = "not supported by this io"
E_RATE_LIMITED = "rate limited"  # logic/device.py: commands beyond a client's rate
E_NOT_DIGITAL = "io is not digital"  # v, d, p of an IO whose function is another
# (The other kinds' errors are protocol/kindcmds.py's.)


class CommandError(Exception):
    pass


def error_reply(command, reason):
    # The command is cut to the longest one allowed, so an error never echoes more,
    # and to its valid UTF-8: a reply never carries bytes that are not (a text frame
    # may not, RFC 6455 8.1), whatever a transport let through.
    cut = utf8_start(command[: CommandEngine.max_command_len])
    return '{"e":{"c":%s,"m":"%s"}}' % (json.dumps(cut), reason)


def is_error(reply):
    """True for an error reply (HTTP answers it with 400)."""
    return reply.startswith('{"e":')


def update_text(io, level):
    """The update a client's trigger asks for when IO `io` changes to `level`."""
    return '{"u":{"v":{"%s":"%d"}}}' % (_HEX[io], level)


def wants_update(triggers, io, level):
    """True when a connection's triggers (CommandEngine.connected) ask for this edge."""
    return triggers[io] & (1 if level else 2)  # the trigger bit of a rising/falling edge


class CommandEngine:
    #: Longest command (the path before "="), in characters; a longer one is an error
    #: (`command too long`), and an error reply never echoes more of it.
    max_command_len = 32
    #: Longest value (after "="), in characters (`value too long`).
    max_value_len = 64

    def __init__(self, bank, settings, status, leds=()):
        self.bank = bank
        self.settings = settings
        # Has .version, .board, .clients(), .uptime_s(), .free_heap() and .mqtt.
        self.status = status
        self.leds = leds  # IO of LED 0, 1, ... (board config: leds); NetBurner's commands

    # --- connections ----------------------------------------------------------
    def connected(self, client):
        # One trigger per IO, all off; one more byte at the end: tusq, the MQTT link's.
        client.triggers = bytearray(self.bank.count + 1)
        # (client.kinds: logic/kinds.py Triggers, once it sets one of tua, tuc, tub, tuw)

    # --- commands -------------------------------------------------------------
    def execute(self, client, text, now):
        """Run one message; returns the reply text. Never raises."""
        eq = text.find("=")
        if eq < 0:
            command = text
            value = None
        else:
            command = text[:eq]
            value = text[eq + 1 :]
        try:
            return self._run(client, command, value, now)
        except CommandError as exc:
            return error_reply(command, exc.args[0])

    def rate_limited(self, text):
        """The reply to a message beyond its client's rate: not run."""
        eq = text.find("=")
        return error_reply(text if eq < 0 else text[:eq], E_RATE_LIMITED)

    def led_command(self, text, now):
        """NetBurner's LED command, a message that is a JSON object of "ledcbN" keys:
        None when it was carried out (it is not answered), else the error reply. Its
        code (protocol/leds.py) is loaded the first time one comes."""
        from . import leds

        return leds.run(self.bank, self.leds, text, now)

    def _run(self, client, command, value, now):
        if not command:
            raise CommandError(E_EMPTY)
        if len(command) > self.max_command_len:
            raise CommandError(E_COMMAND_TOO_LONG)
        for ch in command:
            if not ("a" <= ch <= "z" or "0" <= ch <= "9"):
                raise CommandError(E_BAD_CHAR)
        if value is not None:
            if len(value) > self.max_value_len:
                raise CommandError(E_VALUE_TOO_LONG)
            for ch in value:
                if not " " <= ch <= "~":
                    raise CommandError(E_BAD_CHAR)
        head = command[0]
        if head in "fawcb" or command[:3] in ("tua", "tuc", "tub", "tuw"):
            # Functions and the other kinds' commands, in code loaded for them (and
            # let go again while every IO is digital).
            from . import kindcmds

            return kindcmds.run(self, client, command, value, now)
        if head in "vdp":
            return self._io_table(client, head, command[1:], value, now)
        if head == "t":
            if command in ("t", "tu", "tuv"):
                if value is not None:
                    raise CommandError(E_SUBTREE)
                table = self._table(client.triggers)
                if command == "tuv" or self.status.mqtt is None:
                    return '{"t":{"u":{"v":%s}}}' % table
                return '{"t":{"u":{"v":%s,"s":{"q":"%d"}}}}' % (table, client.triggers[-1])
            if command.startswith("tuv"):
                return self._trigger(client, command[3:], value)
            if command in ("tus", "tusq"):
                return self._link(client, command, value, now)
            raise CommandError(E_UNKNOWN)
        if head == "s":
            if command[1:2] == "q":
                return self._link(client, command, value, now)
            return self._system(command[1:], value, now)
        if head == "l":
            return self._label(command[1:], value)
        raise CommandError(E_UNKNOWN)

    def _io(self, edge):
        if len(edge) != 1 or edge not in _HEX:
            raise CommandError(E_UNKNOWN)
        io = _HEX.index(edge)
        if io >= self.bank.count:
            raise CommandError(E_NO_IO)
        return io

    def _table(self, values, digital=False):
        # digital: only the digital IOs (v, d, p)
        function = self.bank.function
        return "{" + ",".join('"%s":"%d"' % (_HEX[io], values[io])
                              for io in range(self.bank.count)
                              if not (digital and function[io])) + "}"


    def _io_table(self, client, head, edge, value, now):
        bank = self.bank
        table = bank.level if head == "v" else bank.direction if head == "d" else bank.pull
        if not edge:
            if value is not None:
                raise CommandError(E_SUBTREE)
            return '{"%s":%s}' % (head, self._table(table, True))
        io = self._io(edge)
        if bank.function[io]:
            raise CommandError(E_NOT_DIGITAL)
        if value is not None:
            if head == "v":
                if value not in ("0", "1"):
                    raise CommandError(E_RANGE)
                if bank.direction[io] != DIR_OUT:
                    raise CommandError(E_INPUT)
                bank.drive(io, int(value), now)
            else:
                if value not in ("0", "1", "2") or (head == "d" and value == "2"):
                    raise CommandError(E_RANGE)
                n = int(value)
                if head == "d":
                    if n not in bank.allowed_dirs[io]:
                        raise CommandError(E_NOT_SUPPORTED)
                    direction = n
                    pull = bank.pull[io]
                else:
                    if n not in bank.allowed_pulls[io]:
                        raise CommandError(E_NOT_SUPPORTED)
                    direction = bank.direction[io]
                    pull = n
                if direction != bank.direction[io] or pull != bank.pull[io]:
                    bank.configure(io, direction, pull, now)
                    self.settings.changed()  # saved within a second, coalesced
        return '{"%s":{"%s":"%d"}}' % (head, _HEX[io], table[io])

    def _label(self, edge, value):
        labels = self.bank.labels
        if not edge:
            if value is not None:
                raise CommandError(E_SUBTREE)
            return '{"l":{' + ",".join('"%s":%s' % (_HEX[io], json.dumps(labels[io]))
                                       for io in range(self.bank.count)) + "}}"
        io = self._io(edge)
        if value is not None:
            if value and not is_valid_name(value):
                raise CommandError(E_RANGE)
            if self.bank.set_label(io, value):  # "": the board's label again
                self.settings.changed()  # saved within a second, coalesced
        return '{"l":{"%s":%s}}' % (_HEX[io], json.dumps(labels[io]))

    def _trigger(self, client, edge, value):
        io = self._io(edge)
        if value is not None:
            if value not in ("0", "1", "2", "3"):
                raise CommandError(E_RANGE)
            client.triggers[io] = int(value)
        return '{"t":{"u":{"v":{"%s":"%d"}}}}' % (_HEX[io], client.triggers[io])

    def _system(self, leaf, value, now):
        status = self.status
        if leaf == "n":
            if value is not None:
                if not is_valid_name(value):
                    raise CommandError(E_RANGE)
                if value != self.settings.name:
                    self.settings.name = value
                    self.settings.changed()
            return '{"s":{"n":%s}}' % json.dumps(self.settings.name)
        if leaf not in ("", "v", "b", "c", "t", "m", "o"):
            raise CommandError(E_UNKNOWN)
        if value is not None:
            raise CommandError(E_SUBTREE if leaf == "" else E_READ_ONLY)
        fields = {
            "v": json.dumps(status.version),
            "b": json.dumps(status.board),
            "c": '"%d"' % status.clients(),
            "t": '"%d"' % status.uptime_s(),
            "m": '"%d"' % status.free_heap(),
        }
        if leaf == "o":  # updates over the network (docs/OTA.md); not in `s`
            return '{"s":{"o":%s}}' % status.ota
        if leaf:
            return '{"s":{"%s":%s}}' % (leaf, fields[leaf])
        fields["n"] = json.dumps(self.settings.name)
        keys = "nvbctm"
        mqtt = self.status.mqtt
        if mqtt is not None:
            fields["q"] = mqtt.link_json(now)
            keys += "q"
        return '{"s":{' + ",".join('"%s":%s' % (k, fields[k]) for k in keys) + "}}"

    # --- the MQTT link: sq..., tus, tusq ----------------------------------------
    # Status.mqtt answers them (transport/mqttsink.py MqttSink, loaded only with an
    # mqtt block); None: no MQTT.
    def _link(self, client, command, value, now):
        mqtt = self.status.mqtt
        if mqtt is not None:
            return mqtt.link_command(client, command, value, now)
        # sq, sq<c b e r n h>, tus, tusq without an mqtt block: every read and write of
        # them says so, and changes nothing.
        if command[0] == "t":
            return '{"t":{"u":{"s":{"q":"off"}}}}'
        if len(command) > 3 or command[2:] not in "cbernh":
            raise CommandError(E_UNKNOWN)
        return '{"s":{"q":"off"}}'


# --- strict UTF-8 ---------------------------------------------------------------------
# RFC 3629, the Unicode standard's table 3-7: what the protocol's text
# must be. Pure and allocation-free: it reads bytes by index and keeps small ints.
#
# MicroPython's bytes.decode() checks much less than CPython's: it takes overlong
# forms ("\xc0\xaf", a "/" in disguise), UTF-16 surrogates ("\xed\xa0\x80") and code
# points above U+10FFFF ("\xf4\x90\x80\x80") as text, and keeps their bytes. RFC 6455
# requires a text frame and a close reason to be valid UTF-8 (8.1: else close 1007),
# and the device must never send back bytes that are not: so whatever turns bytes
# into a command checks them here first.


def utf8_prefix(data, start, end):
    """Where the first byte from `start` is that does not begin a complete, valid UTF-8
    sequence within data[start:end]; `end` when all of it is valid. `data`: bytes,
    bytearray or memoryview."""
    i = start
    while i < end:
        b = data[i]
        if b < 0x80:  # ASCII, nearly every command: one comparison
            i += 1
            continue
        if b < 0xC2 or b > 0xF4:  # a continuation byte, overlong C0 C1, or F5..FF
            return i
        n = 1 if b < 0xE0 else 2 if b < 0xF0 else 3  # continuation bytes to follow
        if i + n >= end:
            return i  # cut short
        # The first continuation byte's range depends on the lead (table 3-7): this
        # refuses overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and
        # code points past U+10FFFF (F4 90..).
        lo = 0xA0 if b == 0xE0 else 0x90 if b == 0xF0 else 0x80
        hi = 0x9F if b == 0xED else 0x8F if b == 0xF4 else 0xBF
        for k in range(i + 1, i + n + 1):
            c = data[k]
            if c < lo or c > hi:
                return i
            lo, hi = 0x80, 0xBF
        i += n + 1
    return end


def utf8_start(text):
    """`text` cut to its start that is strict UTF-8 (itself when all of it is): a str
    that a lenient decode made (MicroPython's keeps the bytes it was given) may hold
    any bytes."""
    try:
        data = text.encode()
    except UnicodeError:  # CPython: a lone surrogate (MicroPython's str holds bytes)
        return text.encode("utf-8", "replace").decode()
    n = utf8_prefix(data, 0, len(data))
    return text if n == len(data) else data[:n].decode()
