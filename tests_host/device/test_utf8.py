# Strict UTF-8, byte for byte (protocol/commands.py utf8_prefix). Runs on CPython and
# the unix port, whose own bytes.decode() accepts the first three invalid cases below.
from pinsock.protocol.commands import error_reply, utf8_prefix, utf8_start


def is_valid(data, start=0, end=None):
    end = len(data) if end is None else end
    return utf8_prefix(data, start, end) == end

VALID = [
    b"",
    b"v3",
    b"\x00\x7f",  # 1 byte: the ends of ASCII
    b"\xc2\x80", b"\xdf\xbf",  # 2 bytes: U+0080, U+07FF
    b"caf\xc3\xa9",  # "cafe" with e-acute
    b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbf",  # 3 bytes
    b"\xe2\x82\xac",  # the euro sign
    b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",  # 4 bytes: U+10000, U+10FFFF
    b"\xf0\x9f\x98\x80",  # an emoji
]

# (bytes, where the first invalid sequence starts)
INVALID = [
    (b"\xc0\xaf", 0),  # overlong "/"
    (b"\xed\xa0\x80", 0),  # the surrogate U+D800
    (b"\xed\xbf\xbf", 0),  # the surrogate U+DFFF
    (b"\xf4\x90\x80\x80", 0),  # U+110000, past the last code point
    (b"\xc1\xbf", 0),  # overlong
    (b"\xe0\x80\xaf", 0),  # overlong, 3 bytes
    (b"\xe0\x9f\xbf", 0),  # overlong U+07FF
    (b"\xf0\x80\x80\xaf", 0),  # overlong, 4 bytes
    (b"\xf0\x8f\xbf\xbf", 0),  # overlong U+FFFF
    (b"\xf5\x80\x80\x80", 0),  # F5..FF never start a sequence
    (b"\xff", 0),
    (b"\x80", 0),  # a continuation byte alone
    (b"ab\xbf", 2),
    (b"v\xc3", 1),  # cut short
    (b"v\xe2\x82", 1),
    (b"v\xf0\x9f\x98", 1),
    (b"\xc3\x28", 0),  # a second byte that is no continuation byte
    (b"\xe2\x28\xa1", 0),
    (b"\xe2\x82\x28", 0),
    (b"\xf0\x9f\x28\x80", 0),
    (b"\xf0\x9f\x98\x28", 0),
    (b"caf\xc3\xa9\xed\xa0\x80", 5),
]


def test_valid_sequences_of_one_to_four_bytes_are_accepted():
    for data in VALID:
        assert is_valid(data), data
        assert utf8_prefix(data, 0, len(data)) == len(data), data
        assert is_valid(bytearray(data)) and is_valid(memoryview(data)), data
        assert data.decode().encode() == data  # what both decoders say, too


def test_overlong_surrogates_and_past_u10ffff_are_refused_where_they_start():
    for data, at in INVALID:
        assert not is_valid(data), data
        assert utf8_prefix(data, 0, len(data)) == at, (data, utf8_prefix(data, 0, len(data)))


def test_every_two_byte_lead_is_judged_as_the_standard_says():
    # Byte for byte over the first byte of a 2-byte sequence with a good second byte.
    for b in range(256):
        data = bytes((b, 0x80))
        if b < 0x80:
            expected = False  # ASCII, then a continuation byte alone
        else:
            expected = 0xC2 <= b <= 0xDF
        assert is_valid(data) == expected, data


def test_a_range_of_a_buffer_is_checked_in_place():
    buf = bytearray(b"\xffv3\xc3\xa9\xff")
    assert is_valid(buf, 1, 5)
    assert not is_valid(buf, 0, 5)
    assert not is_valid(buf, 1, 6)
    assert not is_valid(buf, 1, 4)  # cuts the 2-byte sequence


def test_checking_allocates_nothing():
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:  # CPython has no heap to lock: the unix port runs this
        import pytest

        pytest.skip("micropython.heap_lock is MicroPython's")
    buf = bytearray(b"v3=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\xa0\x80")
    n = len(buf)
    heap_lock()
    try:
        good = is_valid(buf, 0, n - 4)
        bad = is_valid(buf, 0, n)
    finally:
        heap_unlock()
    assert good and not bad


def test_an_error_reply_never_echoes_bytes_that_are_not_utf8():
    # What a lenient decode makes of the invalid cases (MicroPython keeps the bytes;
    # on CPython a str cannot hold them, and surrogates stand in).
    for data, _ in INVALID:
        try:
            text = (b"x" + data).decode()
        except UnicodeError:
            try:
                text = (b"x" + data).decode("utf-8", "surrogateescape")
            except (UnicodeError, LookupError, TypeError):  # MicroPython: no such str
                continue
        reply = error_reply(text, "invalid character")
        assert utf8_start(reply) is reply, (data, reply)
        assert reply.startswith('{"e":{"c":"x'), reply
