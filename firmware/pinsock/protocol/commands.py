# The Netzer-style command interface, one engine for the WebSocket and for HTTP.
#
#   message = command [ "=" value ]     no value: read; a value: write
#   command = path of [a-z0-9] through the tree below; IO edges are one hex digit
#
#   v<h>  level        d<h>  direction      p<h>  pull
#   tuv<h>  this connection's update trigger: 0 off, 1 rising, 2 falling, 3 any
#   sn name   sv version   sb board   sc clients   st uptime (s)   sm free heap
#
# Replies are nested JSON mirroring the path, leaf values as strings. Every failure
# is one error reply {"e":{"c":"<command>","m":"<reason>"}}; see docs/PROTOCOL.md.
import json

from ..logic.iobank import DIR_OUT
from ..logic.settings import is_valid_name
from . import utf8

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


class CommandError(Exception):
    pass


def error_reply(command, reason):
    # The command is cut to the longest one allowed, so an error never echoes more,
    # and to its valid UTF-8: a reply never carries bytes that are not (a text frame
    # may not, RFC 6455 8.1), whatever a transport let through.
    cut = command[: CommandEngine.max_command_len]
    if not utf8.is_valid_text(cut):
        cut = _valid_start(cut)
    return '{"e":{"c":%s,"m":"%s"}}' % (json.dumps(cut), reason)


def _valid_start(text):
    # The longest start of `text` that is strict UTF-8 (the error path only).
    try:
        data = text.encode()
    except UnicodeError:  # CPython: a lone surrogate
        data = text.encode("utf-8", "replace")
    return data[: utf8.valid_prefix(data)].decode()


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
    max_command_len = 32
    max_value_len = 64

    def __init__(self, bank, settings, status):
        self.bank = bank
        self.settings = settings
        self.status = status  # has .version, .board, .clients(), .uptime_s(), .free_heap()

    # --- connections ----------------------------------------------------------
    def connected(self, client):
        client.triggers = bytearray(self.bank.count)  # all off

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
        if head in "vdp":
            return self._io_table(client, head, command[1:], value, now)
        if head == "t":
            if command in ("t", "tu", "tuv"):
                if value is not None:
                    raise CommandError(E_SUBTREE)
                return '{"t":{"u":{"v":%s}}}' % self._table(client.triggers)
            if command.startswith("tuv"):
                return self._trigger(client, command[3:], value)
            raise CommandError(E_UNKNOWN)
        if head == "s":
            return self._system(command[1:], value)
        raise CommandError(E_UNKNOWN)

    def _io(self, edge):
        if len(edge) != 1 or edge not in _HEX:
            raise CommandError(E_UNKNOWN)
        io = _HEX.index(edge)
        if io >= self.bank.count:
            raise CommandError(E_NO_IO)
        return io

    def _table(self, values):
        return "{" + ",".join('"%s":"%d"' % (_HEX[io], values[io])
                              for io in range(self.bank.count)) + "}"

    def _io_table(self, client, head, edge, value, now):
        bank = self.bank
        table = bank.level if head == "v" else bank.direction if head == "d" else bank.pull
        if not edge:
            if value is not None:
                raise CommandError(E_SUBTREE)
            return '{"%s":%s}' % (head, self._table(table))
        io = self._io(edge)
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
                    self.settings.save()
        return '{"%s":{"%s":"%d"}}' % (head, _HEX[io], table[io])

    def _trigger(self, client, edge, value):
        io = self._io(edge)
        if value is not None:
            if value not in ("0", "1", "2", "3"):
                raise CommandError(E_RANGE)
            client.triggers[io] = int(value)
        return '{"t":{"u":{"v":{"%s":"%d"}}}}' % (_HEX[io], client.triggers[io])

    def _system(self, leaf, value):
        status = self.status
        if leaf == "n":
            if value is not None:
                if not is_valid_name(value):
                    raise CommandError(E_RANGE)
                if value != self.settings.name:
                    self.settings.name = value
                    self.settings.save()
            return '{"s":{"n":%s}}' % json.dumps(self.settings.name)
        if leaf not in ("", "v", "b", "c", "t", "m"):
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
        if leaf:
            return '{"s":{"%s":%s}}' % (leaf, fields[leaf])
        fields["n"] = json.dumps(self.settings.name)
        return '{"s":{' + ",".join('"%s":%s' % (k, fields[k]) for k in "nvbctm") + "}}"
