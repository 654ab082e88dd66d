# os for the qemu port (tools/qemu_device.py): the built-in one, plus urandom(), which
# a board has from its hardware random number generator and the qemu port does not.
# For tests only: random's generator is not a secure one.
from uos import *  # noqa: F403 (the built-in module this one extends)
from random import getrandbits


def urandom(n):
    return bytes(getrandbits(8) for _ in range(n))
