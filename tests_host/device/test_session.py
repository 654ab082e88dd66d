# A WebSocket session (server.WebSocketService.session) when serving a message fails
# on the device's side: the connection is closed with 1011 and the failure logged,
# where a peer that is gone is only hung up on. Runs on CPython and the unix port.
import asyncio

from pinsock import server, wsframe
from pinsock.hub import Client

MASK = b"\x01\x02\x03\x04"


def client_text_frame(text):
    payload = text.encode()
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + MASK + masked


class ScriptedStream:
    """The client's side of a connection: gives the bytes it was made with, then EOF;
    keeps what the device writes."""

    def __init__(self, incoming):
        self.incoming = incoming
        self.written = []
        self.closed = False

    async def readexactly(self, n):
        if len(self.incoming) < n:
            raise EOFError
        data, self.incoming = self.incoming[:n], self.incoming[n:]
        return data

    async def readinto(self, view):
        n = min(len(view), len(self.incoming))
        view[:n] = self.incoming[:n]
        self.incoming = self.incoming[n:]
        return n

    async def awrite(self, data):
        self.written.append(bytes(data))

    def close(self):
        self.closed = True


class Device:
    """Stands in for device.Device: fails on the first message as told."""

    def __init__(self, failure):
        self.failure = failure
        self.clients = []

    def connected(self, client):
        self.clients.append(client)

    def disconnected(self, client):
        self.clients.remove(client)

    def received(self, client, text):
        if self.failure is not None:
            raise self.failure
        client.push(wsframe.encode_text("ok " + text))


def run_session(failure, incoming):
    stream = ScriptedStream(incoming)
    device = Device(failure)
    wait = Client.close_wait_ms
    Client.close_wait_ms = 20  # the test's peer never answers a close frame
    try:
        asyncio.run(server.WebSocketService(device).session(stream))
    finally:
        Client.close_wait_ms = wait
    return stream, device


def test_a_memory_error_while_serving_a_message_closes_with_1011():
    stream, device = run_session(MemoryError("memory allocation failed"),
                                 client_text_frame("v0"))
    assert stream.written == [wsframe.encode_close(1011, "internal error")]
    assert stream.closed
    assert device.clients == []


def test_a_bug_while_serving_a_message_closes_with_1011():
    stream, device = run_session(KeyError("oops"), client_text_frame("v0"))
    assert stream.written == [wsframe.encode_close(1011, "internal error")]
    assert stream.closed


def test_a_peer_that_is_gone_is_only_hung_up_on():
    # The reply is sent, then EOF: no close frame for a peer that cannot read it.
    stream, device = run_session(None, client_text_frame("v0"))
    assert stream.written == [wsframe.encode_text("ok v0")]
    assert stream.closed
    assert device.clients == []
