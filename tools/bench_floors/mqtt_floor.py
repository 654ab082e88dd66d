# The MQTT floor for tools/bench.py (bench_mqtt.py): the least a MicroPython program
# can do to carry a transition to an MQTT subscriber, a bare asyncio publisher on the
# unix port. Triggered the way the simulator is (a control line `tset <io> <0|1>`,
# answered `ok <time.ticks_us()>` before anything is published), it publishes an
# event record like the firmware's, `{"seq":N,"t":MS,"io":"<h>","v":"<0|1>"}`, at
# QoS 1 on <topic> through the same broker; a reader task reads the PUBACKs.
#
#   micropython mqtt_floor.py <broker port> <control port> <topic>
#
# Prints "mqtt floor ready" once connected and listening on 127.0.0.1.
import asyncio
import sys
import time

HOST = "127.0.0.1"


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes((first,)) + remaining_length(len(body)) + body


def string(text):
    data = text.encode()
    return bytes((len(data) >> 8, len(data) & 0xFF)) + data


class Publisher:
    def __init__(self, topic):
        self.topic = string(topic)
        self.seq = 0
        self.pid = 0
        self.sock = None

    async def connect(self, port):
        reader, writer = await asyncio.open_connection(HOST, port)
        # CONNECT: MQTT 3.1.1, clean session, keepalive 0, client id.
        writer.write(packet(0x10, string("MQTT") + b"\x04\x02\x00\x00"
                            + string("mqtt-floor")))
        await writer.drain()
        connack = await reader.readexactly(4)
        if connack[3]:
            raise OSError("CONNACK %r" % connack)
        self.sock = writer.s
        asyncio.create_task(self.read_acks(reader))

    async def read_acks(self, reader):
        while True:
            if not await reader.read(256):
                raise OSError("the broker closed the connection")

    def publish(self, io, level):
        self.seq += 1
        self.pid = self.pid % 0xFFFF + 1
        payload = '{"seq":%d,"t":%d,"io":"%x","v":"%d"}' % (
            self.seq, time.ticks_ms(), io, level)
        data = packet(0x32, self.topic + bytes((self.pid >> 8, self.pid & 0xFF))
                      + payload.encode())
        self.sock.write(data)  # non-blocking: a small packet fits at once


async def control(publisher, reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        words = line.split()
        if len(words) == 3 and words[0] in (b"tset", b"set"):
            at = time.ticks_us()
            # Answered straight into the socket (a line fits), then published.
            writer.s.write(("ok %d\n" % at).encode() if words[0] == b"tset" else b"ok\n")
            publisher.publish(int(words[1]), int(words[2]))
        else:
            writer.write(b"error\n")
            await writer.drain()
    writer.close()


async def main(broker_port, control_port, topic):
    publisher = Publisher(topic)
    await publisher.connect(broker_port)
    server = await asyncio.start_server(
        lambda r, w: control(publisher, r, w), HOST, control_port)
    print("mqtt floor ready")
    await server.wait_closed()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
