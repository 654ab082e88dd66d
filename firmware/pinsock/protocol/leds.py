# NetBurner's LED command: the message the LED toggles of NetBurner's example page
# send, a JSON object of "ledcbN" keys (N = 0..7) with "true"/"false" (or JSON
# true/false) values:
#
#   { "ledcb3" : "true" }          LED 3 on: the board's leds[3] driven to 1
#
# LED N is the IO at index N of the board config's `leds` list, driven only while it
# is an output. A command carried out is not answered (NetBurner's page takes every
# message for a switch report); one that cannot be is answered with the error reply of
# the command interface, naming the key, and changes nothing. docs/PROTOCOL.md.
#
# Loaded by CommandEngine.led_command the first time such a message comes: a device
# that never gets one spends no RAM on this module. The message is a WebSocket frame,
# so max_frame_len bounds what json.loads reads.
import json

from ..logic.iobank import DIR_OUT
from .commands import E_EMPTY, E_INPUT, E_NO_IO, E_RANGE, E_UNKNOWN, error_reply

_PREFIX = "ledcb"
MAX_LEDS = 8  # ledcb0 .. ledcb7, as NetBurner's page has them


def level_of(value):
    """1, 0, or None for a value that is not one of "true", "false", true, false."""
    if value is True or value == "true":
        return 1
    if value is False or value == "false":
        return 0
    return None


def run(bank, leds, text, now):
    """Carry out the LED command `text` on `bank`, LED N being IO leds[N]: None when
    done, else the error reply (then nothing was driven)."""
    try:
        command = json.loads(text)
    except ValueError:
        command = None
    if not isinstance(command, dict):
        return error_reply(text, E_UNKNOWN)
    if not command:
        return error_reply("", E_EMPTY)
    # Every key is checked before any LED is driven: a bad one changes nothing.
    for key, value in command.items():
        if len(key) != len(_PREFIX) + 1 or not key.startswith(_PREFIX) or \
                not "0" <= key[-1] < str(MAX_LEDS):
            return error_reply(key, E_UNKNOWN)
        n = ord(key[-1]) - 48
        if n >= len(leds):
            return error_reply(key, E_NO_IO)
        if level_of(value) is None:
            return error_reply(key, E_RANGE)
        if bank.direction[leds[n]] != DIR_OUT:
            return error_reply(key, E_INPUT)
    for key, value in command.items():
        bank.drive(leds[ord(key[-1]) - 48], level_of(value), now)
    return None
