# The few names that differ between MicroPython and CPython, resolved once at import.
# Device logic imports them from here so the same source runs on boards, on the unix
# port and under CPython (pytest).
try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


try:
    from time import ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython: emulate MicroPython's 30-bit wrapping millisecond ticks
    import time

    _TICKS_PERIOD = 1 << 30
    _TICKS_HALF = _TICKS_PERIOD >> 1

    def ticks_ms():
        return int(time.monotonic() * 1000) & (_TICKS_PERIOD - 1)

    def ticks_add(ticks, delta):
        return (ticks + delta) & (_TICKS_PERIOD - 1)

    def ticks_diff(end, start):
        return ((end - start + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF


try:
    from sys import print_exception
except ImportError:  # CPython
    import traceback

    def print_exception(exc):
        traceback.print_exception(exc)


try:
    from gc import mem_free
except ImportError:  # CPython has no heap figure to give

    def mem_free():
        return 0


def forget_module(name):
    """Drop the module `name` ("pinsock.transport.wifisetup") from sys.modules and its
    package, so that once nothing else holds it, it is freed, bytecode and all: a
    board that loads .mpy files keeps a module's bytecode in the heap, and code used
    rarely (the Wi-Fi setup, MQTT discovery) need not stay there."""
    import sys

    sys.modules.pop(name, None)
    package, _, leaf = name.rpartition(".")
    package = sys.modules.get(package)
    if package is not None and hasattr(package, leaf):
        delattr(package, leaf)
