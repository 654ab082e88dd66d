# WebSocket (RFC 6455) framing: pure helpers shared by the transport and the tests.
# The transport reads bytes; these functions decide what the bytes mean.
from binascii import b2a_base64
from hashlib import sha1

from ..compat import const

OP_CONT = const(0x0)
OP_TEXT = const(0x1)
OP_BINARY = const(0x2)
OP_CLOSE = const(0x8)
OP_PING = const(0x9)
OP_PONG = const(0xA)

# Close codes this firmware sends (RFC 6455 section 7.4, and 4000-4999 for ours).
CLOSE_NORMAL = const(1000)
CLOSE_GOING_AWAY = const(1001)
CLOSE_PROTOCOL_ERROR = const(1002)
CLOSE_UNSUPPORTED = const(1003)
CLOSE_BAD_DATA = const(1007)
CLOSE_TOO_BIG = const(1009)
CLOSE_INTERNAL_ERROR = const(1011)
CLOSE_TRY_AGAIN = const(1013)
CLOSE_REPLACED = const(4001)


# RFC 6455 1.3: what a server appends to the client's key before hashing it.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FrameError(Exception):
    """The peer broke the protocol; close the connection with `code`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key):
    """The Sec-WebSocket-Accept value answering a client's Sec-WebSocket-Key (bytes)."""
    return b2a_base64(sha1(key.encode() + _ACCEPT_GUID).digest())[:-1]


def header(opcode, n):
    """The header of an unmasked server frame (FIN set) with an n-byte payload."""
    if n < 126:
        return bytes((0x80 | opcode, n))
    if n < 0x10000:
        return bytes((0x80 | opcode, 126, n >> 8, n & 0xFF))
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")


def encode(opcode, payload):
    """One complete, unmasked server frame (FIN set) as bytes."""
    return header(opcode, len(payload)) + payload


def encode_text(text):
    return encode(OP_TEXT, text.encode() if isinstance(text, str) else text)


def encode_close(code, reason=""):
    return encode(OP_CLOSE, bytes((code >> 8, code & 0xFF)) + reason.encode())


def check_header(b0, b1):
    """Validate the first two bytes of a client frame.

    Returns (opcode, length7) where length7 is the 7-bit length field (126 and 127
    mean an extended length follows). Raises FrameError for what we refuse.
    """
    opcode = b0 & 0x0F
    if b0 & 0x70:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
    if not b1 & 0x80:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
    if opcode & 0x08:
        if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
            raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved opcode")
        if not b0 & 0x80:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
        if b1 & 0x7F > 125:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "control frame too long")
    elif opcode == OP_BINARY:
        raise FrameError(CLOSE_UNSUPPORTED, "binary frames not supported")
    elif opcode == OP_CONT:
        # No message was started (a first fragment is refused below): RFC 6455 5.4.
        raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
    elif not b0 & 0x80:
        raise FrameError(CLOSE_UNSUPPORTED, "fragmented messages not supported")
    elif opcode != OP_TEXT:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved opcode")
    return opcode, b1 & 0x7F


def unmask(buf, n, mask):
    """XOR the first n bytes of buf in place with the 4-byte mask."""
    for i in range(n):
        buf[i] ^= mask[i & 3]


def close_code_valid(code):
    # RFC 6455 7.4: codes a peer may send in a close frame.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
