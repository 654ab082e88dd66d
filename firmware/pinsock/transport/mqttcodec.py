# MQTT 3.1.1 packets, encoded and decoded: pure code, no sockets (transport/mqtt.py
# is the client that sends them). Runs the same on a board, the unix port and CPython;
# tests_host/device/test_mqttcodec.py checks it byte for byte.
#
# A packet is a fixed header (the type and flags in one byte, then the remaining
# length: the number of bytes that follow, 7 bits a byte, low group first, the top bit
# set on every byte but the last, at most 4 bytes), then a variable header and a
# payload. Strings are UTF-8 with a 16-bit big-endian length before them.
#
# Encoders of packets sent once per connection (CONNECT, SUBSCRIBE) return new bytes;
# PUBLISH, sent on every change, is written into a caller's buffer (publish_into), so
# a publish allocates nothing. Decoders take the packet's body, what follows the
# fixed header.
from ..compat import const

CONNECT = const(0x10)
CONNACK = const(0x20)
PUBLISH = const(0x30)
PUBACK = const(0x40)
SUBSCRIBE = const(0x82)  # the type in the top 4 bits, and the flags 0b0010 3.1.1 requires
SUBACK = const(0x90)
PINGREQ = const(0xC0)
PINGRESP = const(0xD0)
DISCONNECT = const(0xE0)

# PUBLISH flags, in the low 4 bits of the first byte.
_DUP = const(0x08)
_RETAIN = const(0x01)

MAX_REMAINING = const(268435455)  # 4 bytes of 7 bits: the most a packet may carry

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"

# CONNACK return codes (3.1.1, 3.2.2.3) and what the log says about them.
REFUSED = {
    1: "unacceptable protocol version",
    2: "client id rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
# SUBACK's return code for a refused subscription.
SUBSCRIBE_FAILED = const(0x80)


class MqttError(Exception):
    """A packet that does not follow the protocol."""


def _utf8(text):
    return text.encode() if isinstance(text, str) else bytes(text)


def length_size(n):
    """How many bytes the remaining length n takes (1 to 4)."""
    if n < 0 or n > MAX_REMAINING:
        raise MqttError("remaining length out of range")
    size = 1
    while n > 0x7F:
        n >>= 7
        size += 1
    return size


def put_length(buf, pos, n):
    """Write the remaining length n at buf[pos:]; returns the position after it."""
    if n < 0 or n > MAX_REMAINING:
        raise MqttError("remaining length out of range")
    while n > 0x7F:
        buf[pos] = (n & 0x7F) | 0x80
        n >>= 7
        pos += 1
    buf[pos] = n
    return pos + 1


def encode_length(n):
    """The remaining length n as bytes."""
    buf = bytearray(length_size(n))
    put_length(buf, 0, n)
    return bytes(buf)


class LengthDecoder:
    """The remaining length, fed one byte at a time as it arrives from the socket:
    feed() returns the length once its last byte is in, else -1. Raises MqttError on
    a fifth byte (the protocol allows four)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.value = 0
        self._shift = 0

    def feed(self, byte):
        self.value |= (byte & 0x7F) << self._shift
        if not byte & 0x80:
            return self.value
        self._shift += 7
        if self._shift > 21:
            raise MqttError("remaining length longer than 4 bytes")
        return -1


def decode_length(data, pos=0):
    """(remaining length, position after it) from bytes that hold all of it."""
    decoder = LengthDecoder()
    while True:
        if pos >= len(data):
            raise MqttError("remaining length cut short")
        n = decoder.feed(data[pos])
        pos += 1
        if n >= 0:
            return n, pos


def put_string(buf, pos, data):
    """Write the UTF-8 string `data` (bytes) with its 16-bit length at buf[pos:]."""
    n = len(data)
    if n > 0xFFFF:
        raise MqttError("string longer than 65535 bytes")
    buf[pos] = n >> 8
    buf[pos + 1] = n & 0xFF
    buf[pos + 2 : pos + 2 + n] = data
    return pos + 2 + n


def encode_string(text):
    """A str (as UTF-8) or bytes, with its 16-bit length before it."""
    data = _utf8(text)
    buf = bytearray(2 + len(data))
    put_string(buf, 0, data)
    return bytes(buf)


def _packet(first, body):
    n = len(body)
    buf = bytearray(1 + length_size(n) + n)
    buf[0] = first
    pos = put_length(buf, 1, n)
    buf[pos:] = body
    return bytes(buf)


# --- sent by the client -----------------------------------------------------------

def connect(client_id, keepalive_s=0, clean_session=True, will_topic=None,
            will_message=b"", will_qos=0, will_retain=False, user=None, password=None):
    """CONNECT (3.1.1, 3.1). `user` and `password`: None or "" leaves them out (a
    password without a user is not allowed by 3.1.1, and is left out too)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise MqttError("keepalive out of range")
    flags = 0x02 if clean_session else 0
    parts = [encode_string(client_id)]
    if will_topic:
        flags |= 0x04 | (will_qos & 3) << 3 | (0x20 if will_retain else 0)
        parts.append(encode_string(will_topic))
        parts.append(encode_string(will_message))
    if user:
        flags |= 0x80
        parts.append(encode_string(user))
        if password:
            flags |= 0x40
            parts.append(encode_string(password))
    # Protocol name "MQTT", level 4 (3.1.1), the connect flags, keepalive in seconds.
    head = b"\x00\x04MQTT\x04" + bytes((flags, keepalive_s >> 8, keepalive_s & 0xFF))
    return _packet(CONNECT, head + b"".join(parts))


def publish_size(topic, payload_len, qos):
    """How many bytes publish_into writes for an encoded topic and a payload."""
    n = 2 + len(topic) + payload_len + (2 if qos else 0)
    return 1 + length_size(n) + n


def publish_into(buf, topic, payload, qos=0, retain=False, dup=False, packet_id=0):
    """Write PUBLISH (3.3) into `buf`; returns its length. `topic` is UTF-8 bytes,
    `payload` bytes (or a memoryview). A packet id only with QoS 1."""
    pos = publish_head_into(buf, topic, len(payload), qos, retain, dup, packet_id)
    end = pos + len(payload)
    buf[pos:end] = payload
    return end


def publish_head_into(buf, topic, payload_len, qos=0, retain=False, dup=False,
                      packet_id=0):
    """Write all of PUBLISH but its payload of payload_len bytes into `buf`; returns
    where the payload goes (the caller writes it there: nothing is copied twice)."""
    n = 2 + len(topic) + payload_len
    if qos:
        if not 0 < packet_id <= 0xFFFF:
            raise MqttError("QoS 1 needs a packet id 1..65535")
        n += 2
    buf[0] = PUBLISH | (qos << 1) | (_RETAIN if retain else 0) | (_DUP if dup else 0)
    pos = put_string(buf, put_length(buf, 1, n), topic)
    if qos:
        buf[pos] = packet_id >> 8
        buf[pos + 1] = packet_id & 0xFF
        pos += 2
    return pos


def publish(topic, payload, qos=0, retain=False, dup=False, packet_id=0):
    """PUBLISH as new bytes (a str topic or payload is sent as UTF-8)."""
    topic = _utf8(topic)
    payload = _utf8(payload)
    buf = bytearray(publish_size(topic, len(payload), qos))
    publish_into(buf, topic, payload, qos, retain, dup, packet_id)
    return bytes(buf)


def set_dup(packet):
    """Mark a PUBLISH being sent again (bytearray, changed in place)."""
    packet[0] |= _DUP


def puback(packet_id):
    """PUBACK (3.4): what the client answers a QoS 1 PUBLISH with."""
    return bytes((PUBACK, 2, packet_id >> 8, packet_id & 0xFF))


def subscribe(packet_id, topics):
    """SUBSCRIBE (3.8) for [(topic filter, requested QoS), ...]."""
    if not 0 < packet_id <= 0xFFFF:
        raise MqttError("SUBSCRIBE needs a packet id 1..65535")
    body = bytes((packet_id >> 8, packet_id & 0xFF))
    for topic, qos in topics:
        body += encode_string(topic) + bytes((qos,))
    return _packet(SUBSCRIBE, body)


# --- received by the client -------------------------------------------------------

def parse_connack(body):
    """(session present, return code) of CONNACK's body (3.2)."""
    if len(body) != 2:
        raise MqttError("CONNACK is 2 bytes")
    return bool(body[0] & 1), body[1]


def parse_packet_id(body):
    """The packet id of PUBACK's body (3.4)."""
    if len(body) != 2:
        raise MqttError("PUBACK is 2 bytes")
    return (body[0] << 8) | body[1]


def parse_suback(body):
    """(packet id, [return code per topic filter]) of SUBACK's body (3.9)."""
    if len(body) < 3:
        raise MqttError("SUBACK too short")
    return (body[0] << 8) | body[1], list(body[2:])


def parse_publish(first, body):
    """(topic bytes, payload, qos, retain, dup, packet id) of a PUBLISH (3.3) whose
    first byte is `first` and whose body (after the remaining length) is `body` (bytes
    or a memoryview: topic and payload are then views of it). packet id 0 for QoS 0."""
    qos = (first >> 1) & 3
    if qos == 3:
        raise MqttError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise MqttError("PUBLISH too short")
    n = (body[0] << 8) | body[1]
    pos = 2 + n
    if pos > len(body):
        raise MqttError("PUBLISH topic cut short")
    topic = body[2:pos]
    packet_id = 0
    if qos:
        if pos + 2 > len(body):
            raise MqttError("PUBLISH packet id cut short")
        packet_id = (body[pos] << 8) | body[pos + 1]
        pos += 2
    return topic, body[pos:], qos, bool(first & _RETAIN), bool(first & _DUP), packet_id
