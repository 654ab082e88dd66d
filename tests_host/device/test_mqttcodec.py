# MQTT 3.1.1 packets byte for byte (transport/mqttcodec.py), on CPython and the unix
# port. Each expected packet is written out with the bytes derived in the comment
# beside it: [fixed header: type|flags, remaining length] [variable header] [payload].
from pinsock.transport import mqttcodec as mc


def raises(exc_type, fn, *args):
    try:
        fn(*args)
    except exc_type:
        return True
    raise AssertionError("%s did not raise %s" % (fn, exc_type))


# --- the remaining length ------------------------------------------------------------

def test_remaining_length_at_each_byte_boundary():
    # 7 bits a byte, least significant group first, top bit = "more follows".
    cases = [
        (0, b"\x00"),
        (127, b"\x7f"),  # the most one byte holds
        (128, b"\x80\x01"),  # 128 = 0 + 1*128: low group 0 with "more", then 1
        (16383, b"\xff\x7f"),  # 127 + 127*128: the most two bytes hold
        (16384, b"\x80\x80\x01"),  # 1*128*128
        (2097151, b"\xff\xff\x7f"),  # the most three bytes hold
        (2097152, b"\x80\x80\x80\x01"),
        (268435455, b"\xff\xff\xff\x7f"),  # the protocol's maximum
    ]
    for n, encoded in cases:
        assert mc.encode_length(n) == encoded, n
        assert mc.length_size(n) == len(encoded), n
        assert mc.decode_length(encoded) == (n, len(encoded)), n


def test_remaining_length_out_of_range_is_refused():
    raises(mc.MqttError, mc.encode_length, 268435456)
    raises(mc.MqttError, mc.encode_length, -1)
    # A fifth byte (four bytes that all say "more") is not MQTT.
    raises(mc.MqttError, mc.decode_length, b"\xff\xff\xff\xff\x01")
    raises(mc.MqttError, mc.decode_length, b"\x80")  # cut short


def test_the_length_decoder_takes_a_byte_at_a_time():
    d = mc.LengthDecoder()
    assert d.feed(0x80) == -1  # 16384 = 80 80 01
    assert d.feed(0x80) == -1
    assert d.feed(0x01) == 16384
    d.reset()
    assert d.feed(0x7F) == 127


# --- strings -------------------------------------------------------------------------

def test_strings_are_utf8_with_a_byte_length():
    assert mc.encode_string("") == b"\x00\x00"
    assert mc.encode_string("MQTT") == b"\x00\x04MQTT"
    # "\u00fc/\u20ac" is u-umlaut (c3 bc), "/" (2f), the euro sign (e2 82 ac): 3
    # characters, 6 bytes: the length counts bytes.
    assert mc.encode_string("\u00fc/\u20ac") == b"\x00\x06\xc3\xbc/\xe2\x82\xac"
    # U+1D11E, the G clef, outside the BMP: four bytes f0 9d 84 9e.
    assert mc.encode_string("\U0001d11e") == b"\x00\x04\xf0\x9d\x84\x9e"
    assert mc.encode_string(b"raw") == b"\x00\x03raw"
    # 300 bytes: the length's high byte is used (0x012c = 300).
    assert mc.encode_string("x" * 300)[:3] == b"\x01\x2cx"
    raises(mc.MqttError, mc.encode_string, "x" * 65536)


# --- CONNECT -------------------------------------------------------------------------

def test_connect_with_only_a_client_id():
    packet = mc.connect("a")
    assert packet == (
        b"\x10\x0d"  # CONNECT; 13 bytes follow: 10 of variable header, 3 of client id
        b"\x00\x04MQTT"  # protocol name
        b"\x04"  # protocol level 4: MQTT 3.1.1
        b"\x02"  # connect flags: clean session
        b"\x00\x00"  # keepalive 0: off
        b"\x00\x01a"  # client id "a"
    )


def test_connect_with_will_user_password_and_keepalive():
    packet = mc.connect("c", keepalive_s=30, will_topic="s/t", will_message=b"offline",
                        will_qos=1, will_retain=True, user="u", password="p")
    # Flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 (0x08) | will
    # 0x04 | clean session 0x02 = 0xee. Body: 10 + "c" 3 + "s/t" 5 + "offline" 9
    # + "u" 3 + "p" 3 = 33 = 0x21. The payload keeps 3.1.1's order: client id, will
    # topic, will message, user, password.
    assert packet == (b"\x10\x21" b"\x00\x04MQTT\x04" b"\xee" b"\x00\x1e"
                      b"\x00\x01c" b"\x00\x03s/t" b"\x00\x07offline" b"\x00\x01u" b"\x00\x01p")


def test_connect_keeps_session_leaves_out_a_password_without_a_user():
    packet = mc.connect("c", keepalive_s=0x1234, clean_session=False, password="p")
    # Flags 0x00: no clean session, and 3.1.1 allows no password without a user name.
    # Keepalive 0x1234 s big-endian.
    assert packet == b"\x10\x0d\x00\x04MQTT\x04\x00\x12\x34\x00\x01c"
    raises(mc.MqttError, mc.connect, "c", 65536)


def test_connect_client_id_and_will_in_utf8():
    packet = mc.connect("\u00fc", will_topic="\u20ac", will_message="\u00fc")
    # id "u-umlaut" 2 bytes (c3 bc), will topic euro 3 bytes, message 2 bytes:
    # 10 + (2+2) + (2+3) + (2+2) = 23 = 0x17; flags will 0x04 | clean 0x02, QoS 0.
    assert packet == (b"\x10\x17\x00\x04MQTT\x04\x06\x00\x00" b"\x00\x02\xc3\xbc"
                      b"\x00\x03\xe2\x82\xac" b"\x00\x02\xc3\xbc")


# --- CONNACK -------------------------------------------------------------------------

def test_connack_is_parsed():
    # 20 02 | session present 0 | return code 0 (accepted)
    assert mc.parse_connack(b"\x00\x00") == (False, 0)
    assert mc.parse_connack(b"\x01\x00") == (True, 0)
    assert mc.parse_connack(b"\x00\x05") == (False, 5)  # not authorized
    assert mc.REFUSED[4] == "bad user name or password"
    raises(mc.MqttError, mc.parse_connack, b"\x00")


# --- PUBLISH -------------------------------------------------------------------------

def test_publish_qos0():
    # 30: PUBLISH, QoS 0, no retain; 6 bytes: topic "a/b" (2+3) and the payload "1".
    assert mc.publish("a/b", "1") == b"\x30\x06\x00\x03a/b1"


def test_publish_qos1_with_packet_id_dup_and_retain():
    packet = mc.publish("t", b"on", qos=1, retain=True, dup=True, packet_id=0x1234)
    # 0x30 | DUP 0x08 | QoS 1 << 1 = 0x02 | RETAIN 0x01 = 0x3b. 2+1 topic, 2 packet
    # id, 2 payload = 7.
    assert packet == b"\x3b\x07\x00\x01t\x12\x34on"
    assert mc.publish("t", b"", qos=1, packet_id=1) == b"\x32\x05\x00\x01t\x00\x01"
    raises(mc.MqttError, mc.publish, "t", b"", 1, False, False, 0)  # QoS 1 needs an id


def test_publish_at_the_remaining_length_edges():
    # Topic "t" takes 3 bytes of the body; the payload makes up the rest.
    for body, head in ((127, b"\x30\x7f"), (128, b"\x30\x80\x01"),
                       (16383, b"\x30\xff\x7f"), (16384, b"\x30\x80\x80\x01")):
        payload = b"x" * (body - 3)
        packet = mc.publish("t", payload)
        assert packet[: len(head)] == head, body
        assert packet[len(head) : len(head) + 3] == b"\x00\x01t", body
        assert len(packet) == len(head) + body, body
        assert mc.publish_size(b"t", len(payload), 0) == len(packet), body


def test_publish_into_a_buffer_with_a_view_as_payload():
    buf = bytearray(64)
    payload = memoryview(b'{"seq":7}')
    n = mc.publish_into(buf, b"p/n/state", payload, 1, True, False, 258)
    # 0x33: QoS 1, retain. 2+9 topic + 2 id + 9 payload = 22 = 0x16; id 258 = 01 02.
    assert bytes(buf[:n]) == b'\x33\x16\x00\x09p/n/state\x01\x02{"seq":7}'
    packet = bytearray(buf[:n])
    mc.set_dup(packet)
    assert packet[0] == 0x3B


def test_publish_is_parsed_with_views_of_the_body():
    body = memoryview(b"\x00\x03a/b\x00\x2a" + b"d9=1")
    topic, payload, qos, retain, dup, pid = mc.parse_publish(0x3B, body)
    # 3b: DUP, QoS 1, retain; topic "a/b", packet id 0x002a = 42, payload "d9=1".
    assert (bytes(topic), bytes(payload), qos, retain, dup, pid) == (
        b"a/b", b"d9=1", 1, True, True, 42)
    topic, payload, qos, retain, dup, pid = mc.parse_publish(0x30, b"\x00\x01t1")
    assert (bytes(topic), bytes(payload), qos, retain, dup, pid) == (b"t", b"1", 0,
                                                                     False, False, 0)
    raises(mc.MqttError, mc.parse_publish, 0x36, b"\x00\x01t1")  # QoS 3
    raises(mc.MqttError, mc.parse_publish, 0x30, b"\x00\x09t")  # topic beyond the body
    raises(mc.MqttError, mc.parse_publish, 0x32, b"\x00\x01t\x00")  # id cut short


def test_puback():
    # 40 02 | packet id big-endian
    assert mc.puback(0x0102) == b"\x40\x02\x01\x02"
    assert mc.parse_packet_id(b"\xff\xfe") == 0xFFFE
    raises(mc.MqttError, mc.parse_packet_id, b"\x01")


# --- SUBSCRIBE / SUBACK --------------------------------------------------------------

def test_subscribe_qos1():
    packet = mc.subscribe(1, [("p/n/cmd", 1)])
    # 82: SUBSCRIBE with its required flags 0010; 2 id + (2+7) filter + 1 QoS = 12.
    assert packet == b"\x82\x0c\x00\x01\x00\x07p/n/cmd\x01"
    packet = mc.subscribe(0x0203, [("a", 1), ("b/+", 0)])
    # 2 + (2+1+1) + (2+3+1) = 12 = 0x0c
    assert packet == b"\x82\x0c\x02\x03\x00\x01a\x01\x00\x03b/+\x00"
    raises(mc.MqttError, mc.subscribe, 0, [("a", 1)])


def test_suback_is_parsed():
    # 90 03 | id 00 01 | granted QoS 1
    assert mc.parse_suback(b"\x00\x01\x01") == (1, [1])
    assert mc.parse_suback(b"\x00\x02\x01\x80") == (2, [1, mc.SUBSCRIBE_FAILED])
    raises(mc.MqttError, mc.parse_suback, b"\x00\x01")


# --- PINGREQ, PINGRESP, DISCONNECT ---------------------------------------------------

def test_packets_without_a_body():
    assert mc.PINGREQ_PACKET == b"\xc0\x00"  # PINGREQ, 0 bytes follow
    assert mc.DISCONNECT_PACKET == b"\xe0\x00"
    assert mc.PINGRESP == 0xD0
