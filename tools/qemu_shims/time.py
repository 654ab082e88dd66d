# time for the qemu port (tools/qemu_device.py): the built-in one, plus time(), which
# a board has from its RTC and the qemu port does not: seconds since start-up, from a
# date in 2026.
from utime import *  # noqa: F403 (the built-in module this one extends)
from utime import ticks_ms

_START = 1767225600  # 2026-01-01


def time():
    return _START + ticks_ms() // 1000
