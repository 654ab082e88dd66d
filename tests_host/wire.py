"""What the tests read off the wire: the device's (unmasked) WebSocket frames."""

import struct


def split_frame(data):
    """(opcode, payload, rest) for the whole server frame at the front of `data`, or
    None while it is incomplete."""
    if len(data) < 2:
        return None
    n, start = data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, start = struct.unpack("!H", data[2:4])[0], 4
    if len(data) < start + n:
        return None
    return data[0] & 0x0F, data[start:start + n], data[start + n:]
