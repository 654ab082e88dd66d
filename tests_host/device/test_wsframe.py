# WebSocket framing rules. Runs on CPython and the unix port.
from pinsock.transport import wsframe


def expect_error(b0, b1, code):
    try:
        wsframe.check_header(b0, b1)
    except wsframe.FrameError as exc:
        assert exc.code == code, (exc.code, exc.reason)
        return exc.reason
    raise AssertionError("accepted %02x %02x" % (b0, b1))


def test_masked_text_frame_accepted():
    # 0x81: FIN + text; 0x85: masked, 5 bytes
    assert wsframe.check_header(0x81, 0x85) == (wsframe.OP_TEXT, 5)
    assert wsframe.check_header(0x81, 0x80 | 126) == (wsframe.OP_TEXT, 126)


def test_control_frames_accepted():
    assert wsframe.check_header(0x89, 0x80) == (wsframe.OP_PING, 0)
    assert wsframe.check_header(0x88, 0x82) == (wsframe.OP_CLOSE, 2)


def test_unmasked_client_frame_is_protocol_error():
    expect_error(0x81, 0x05, 1002)


def test_binary_frame_is_unsupported():
    expect_error(0x82, 0x85, 1003)


def test_fragments_are_unsupported():
    expect_error(0x01, 0x85, 1003)  # text without FIN
    expect_error(0x80, 0x85, 1002)  # continuation with no message started


def test_reserved_opcodes_and_bits():
    expect_error(0x83, 0x80, 1002)
    expect_error(0x8B, 0x80, 1002)
    expect_error(0xC1, 0x80, 1002)  # RSV1 without an extension


def test_long_or_fragmented_control_frame():
    expect_error(0x89, 0x80 | 126, 1002)
    expect_error(0x09, 0x80, 1002)


def test_encode_lengths():
    # 125 bytes fit the 7-bit length; 126 needs the 16-bit form; 65536 the 64-bit one.
    assert wsframe.encode(1, b"a" * 125)[:2] == bytes((0x81, 125))
    assert wsframe.encode(1, b"a" * 126)[:4] == bytes((0x81, 126, 0, 126))
    assert wsframe.encode(1, b"a" * 65536)[:10] == bytes((0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0))


def test_close_frame_carries_code_and_reason():
    # 4001 = 0x0FA1
    assert wsframe.encode_close(4001, "replaced") == bytes((0x88, 10, 0x0F, 0xA1)) + b"replaced"


def test_unmask_in_place():
    mask = bytes((1, 2, 3, 4))
    buf = bytearray(b"hello")
    wsframe.unmask(buf, 5, mask)
    wsframe.unmask(buf, 5, mask)
    assert buf == bytearray(b"hello")


def test_close_codes():
    for code in (1000, 1001, 1002, 1003, 1007, 1011, 3000, 4001, 4999):
        assert wsframe.close_code_valid(code)
    for code in (0, 999, 1004, 1005, 1006, 1015, 2999, 5000):
        assert not wsframe.close_code_valid(code)


def test_accept_key_is_rfc_6455s_example():
    # RFC 6455 section 1.3: this key must be answered with this accept value.
    assert wsframe.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
