# A WebSocket session (websocket.WebSocketService.session) when serving a message fails
# on the device's side: the connection is closed with 1011 and the failure logged,
# where a peer that is gone is only hung up on. Runs on CPython and the unix port.
import asyncio

from pinsock.transport import wsframe
from pinsock.transport.hub import Client, ClientHub
from pinsock.transport.websocket import WebSocketService

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


REPORT = b'{"dipSwitches":{},"seq":0}'


class Report:
    """Stands in for protocol.report.SwitchReport: always the same text."""

    max_len = len(REPORT)

    def write(self, buf, pos, seq):
        buf[pos : pos + len(REPORT)] = REPORT
        return pos + len(REPORT)


class Device:
    """Stands in for logic.device.Device: fails on the first message as told."""

    report = Report()

    class bank:
        count = 1

    def __init__(self, failure):
        self.failure = failure

    def connected(self, client, address=None):
        pass

    def received(self, sink, client, text):
        if self.failure is not None:
            raise self.failure
        sink.reply(client, "ok " + text)


def run_session(failure, incoming):
    stream = ScriptedStream(incoming)
    device = Device(failure)
    hub = ClientHub(2)
    service = WebSocketService(device, hub)
    service.report_changed(Report(), 0)  # what Device.add_sink does first
    wait = Client.close_wait_ms
    Client.close_wait_ms = 20  # the test's peer never answers a close frame
    try:
        asyncio.run(service.session(stream))
    finally:
        Client.close_wait_ms = wait
    # The report a client gets first, then what the session wrote.
    assert stream.written[:1] == [wsframe.encode_text(REPORT)], stream.written
    stream.written = stream.written[1:]
    return stream, hub


def test_a_memory_error_while_serving_a_message_closes_with_1011():
    stream, hub = run_session(MemoryError("memory allocation failed"),
                              client_text_frame("v0"))
    assert stream.written == [wsframe.encode_close(1011, "internal error")]
    assert stream.closed
    assert hub.clients == [] and hub.connections == []


def test_a_bug_while_serving_a_message_closes_with_1011():
    stream, _ = run_session(KeyError("oops"), client_text_frame("v0"))
    assert stream.written == [wsframe.encode_close(1011, "internal error")]
    assert stream.closed


def test_a_peer_that_is_gone_is_only_hung_up_on():
    # The reply is sent, then EOF: no close frame for a peer that cannot read it.
    stream, hub = run_session(None, client_text_frame("v0"))
    assert stream.written == [wsframe.encode_text("ok v0")]
    assert stream.closed
    assert hub.clients == [] and hub.connections == []


class NoRoomClient:
    """Stands in for hub.Client when the heap has no room for a new session."""

    def __init__(self, stream, now=None, spawn=None):
        raise MemoryError("memory allocation failed")


class WritingStream(ScriptedStream):
    def write_now(self, frame):  # as http.SessionStream's
        self.written.append(bytes(frame))
        return True


def test_no_room_for_the_client_still_closes_the_connection_with_1011():
    # The peer got 101: without room for its session it is told, and the socket closed,
    # instead of waiting forever for a report or a close.
    from pinsock.transport import websocket

    stream = WritingStream(client_text_frame("v0"))
    hub = ClientHub(2)
    service = WebSocketService(Device(None), hub)
    service.report_changed(Report(), 0)
    real = websocket.Client
    websocket.Client = NoRoomClient
    try:
        asyncio.run(service.session(stream))
    finally:
        websocket.Client = real
    assert stream.written == [wsframe.encode_close(1011, "out of memory")]
    assert stream.closed
    assert hub.clients == [] and hub.connections == []
