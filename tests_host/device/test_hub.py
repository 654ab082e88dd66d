# ClientHub and Client outboxes: replacement of the oldest client, superseded
# reports, and a bounded outbox. Runs on CPython and the unix port.
from pinsock import wsframe
from pinsock.hub import Client, ClientHub


class NullStream:
    def __init__(self):
        self.written = []

    async def awrite(self, data):
        self.written.append(bytes(data))

    def close(self):
        pass


def queued(client):
    return [f for f in client._frames if f is not None]


def test_single_session_replaces_oldest_with_4001():
    hub = ClientHub(1)
    first, second = Client(NullStream()), Client(NullStream())
    hub.admit(first)
    hub.admit(second)
    assert hub.clients == [second]
    assert first.closing
    assert first._close_frame == wsframe.encode_close(4001, "replaced")
    assert not second.closing


def test_two_sessions_replace_only_when_full():
    hub = ClientHub(2)
    a, b, c = Client(NullStream()), Client(NullStream()), Client(NullStream())
    hub.admit(a)
    hub.admit(b)
    assert not a.closing and not b.closing
    hub.admit(c)
    assert a.closing and hub.clients == [b, c]


def test_newer_report_supersedes_unsent_one_and_keeps_order():
    client = Client(NullStream())
    client.push(b"r1", True)
    client.push(b"u1")
    client.push(b"r2", True)
    assert queued(client) == [b"u1", b"r2"]


def test_full_outbox_closes_with_1013():
    client = Client(NullStream())
    for i in range(Client.outbox_len):
        assert client.push(b"x%d" % i)
    assert not client.push(b"overflow")
    assert client.closing
    assert client._close_frame == wsframe.encode_close(1013, "client too slow")


def test_broadcast_shares_one_frame_object():
    hub = ClientHub(3)
    clients = [Client(NullStream()) for _ in range(3)]
    for c in clients:
        hub.admit(c)
    frame = wsframe.encode_text("{}")
    hub.broadcast(frame)
    assert all(queued(c)[0] is frame for c in clients)


def test_removed_client_gets_no_broadcast():
    hub = ClientHub(2)
    a, b = Client(NullStream()), Client(NullStream())
    hub.admit(a)
    hub.admit(b)
    hub.remove(a)
    hub.broadcast(b"m")
    assert queued(a) == [] and queued(b) == [b"m"]


def test_writer_sends_queue_then_close_frame():
    import asyncio

    stream = NullStream()
    client = Client(stream)
    client.close_wait_ms = 10
    client.push(b"one")
    client.push(b"two")
    client.close(1000)
    asyncio.run(client.run_writer())
    assert stream.written == [b"one", b"two", wsframe.encode_close(1000)]
