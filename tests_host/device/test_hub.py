# ClientHub and Client outboxes: replacement of the oldest client, superseded
# reports, and a bounded outbox. Runs on CPython and the unix port.
from pinsock.transport import wsframe
from pinsock.transport.hub import Client, ClientHub


class NullStream:
    def __init__(self):
        self.written = []

    async def awrite(self, data):
        self.written.append(bytes(data))

    def close(self):
        pass


def queued(client):
    """The frames waiting in the client's outbox, oldest first."""
    n = client.outbox_len
    ring = [client._frames[(client._head + i) % n] for i in range(client._count)]
    return [f for f in ring if f is not None]


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


def test_a_newcomer_hangs_up_on_the_oldest_leaving_client_beyond_max_leaving():
    # Replaced clients that never answer their close are not all waited for.
    hub = ClientHub(1)
    clients = [Client(NullStream()) for _ in range(ClientHub.max_leaving + 3)]
    for client in clients:
        hub.admit(client)
    leaving = [c for c in hub.connections if c.closing and not c.hung_up]
    assert len(leaving) == ClientHub.max_leaving
    assert leaving == clients[-1 - ClientHub.max_leaving:-1]  # the newest of them
    assert all(c.hung_up for c in clients[:-1 - ClientHub.max_leaving])
    assert hub.clients == [clients[-1]] and not clients[-1].closing


def test_newer_report_supersedes_unsent_one_and_keeps_order():
    client = Client(NullStream())
    client.push(b"r1", True)
    client.push(b"u1")
    client.push(b"r2", True)
    assert queued(client) == [b"u1", b"r2"]


def test_full_outbox_drops_new_frames_but_keeps_the_newest_report():
    client = Client(NullStream())
    for i in range(Client.outbox_len):
        assert client.push(b"x%d" % i)
    assert client.stuck_since < 0
    assert not client.push(b"overflow")
    assert client.stuck_since >= 0 and client.dropped == 1
    assert b"overflow" not in queued(client)
    assert not client.push(b"r1", True)  # pushes out the oldest frame, x0
    assert queued(client)[0] == b"x1" and queued(client)[-1] == b"r1"
    assert not client.push(b"r2", True)  # supersedes r1 (and still drops one: full)
    assert b"r1" not in queued(client) and queued(client)[-1] == b"r2"
    assert not client.closing  # the sweep decides when stuck is too long


def hub_with(*clients, max_clients=4):
    hub = ClientHub(max_clients)
    for c in clients:
        hub.admit(c)
    return hub


def test_sweep_pings_every_interval():
    client = Client(NullStream(), now=0)
    hub = hub_with(client)
    hub.sweep(ClientHub.ping_interval_ms - 1)
    assert queued(client) == []
    hub.sweep(ClientHub.ping_interval_ms)
    assert queued(client) == [wsframe.encode(wsframe.OP_PING, b"")]
    hub.sweep(ClientHub.ping_interval_ms + 10)
    assert len(queued(client)) == 1


def test_sweep_closes_a_silent_client_and_frees_its_slot():
    silent, talking = Client(NullStream(), now=0), Client(NullStream(), now=0)
    hub = hub_with(silent, talking)
    talking.last_heard = ClientHub.idle_timeout_ms
    hub.sweep(ClientHub.idle_timeout_ms + 1)
    assert silent.closing and silent._close_frame == wsframe.encode_close(
        1001, "no answer to ping")
    assert not talking.closing
    assert hub.clients == [talking]
    assert silent in hub.connections  # until its connection has finished


def test_sweep_closes_a_stuck_client_with_1013():
    client = Client(NullStream(), now=0)
    hub = hub_with(client)
    for _ in range(Client.outbox_len + 1):
        client.push(b"x")
    client.stuck_since = 100
    client.last_heard = client.last_ping = 100 + ClientHub.stuck_timeout_ms
    hub.sweep(100 + ClientHub.stuck_timeout_ms)
    assert not client.closing
    hub.sweep(101 + ClientHub.stuck_timeout_ms)
    assert client._close_frame == wsframe.encode_close(1013, "client too slow")


def test_sweep_hangs_up_on_a_peer_that_never_finishes_closing():
    class Stream(NullStream):
        closed = False

        def close(self):
            self.closed = True

    stream = Stream()
    client = Client(stream, now=0)
    hub = hub_with(client)
    client.close(1000)
    client.last_heard = client.closing_since
    hub.sweep(client.closing_since + 2 * Client.close_wait_ms)
    assert not stream.closed
    hub.sweep(client.closing_since + 2 * Client.close_wait_ms + 1)
    assert stream.closed


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


def test_writer_task_runs_only_while_there_is_something_to_write():
    # An idle client holds no writer task: one is spawned when a frame has to wait,
    # and ends, the connection open, once everything is written; the close
    # handshake spawns one again, which hangs up at its end.
    import asyncio

    stream = NullStream()
    spawned = []

    async def main():
        def spawn(coro):
            spawned.append(asyncio.create_task(coro))
            return spawned[-1]

        client = Client(stream, spawn=spawn)
        client.close_wait_ms = 10
        assert client.writer is None
        client.push(b"one")
        client.push(b"two")
        assert len(spawned) == 1 and client.writer is spawned[0]
        await asyncio.wait_for(spawned[0], 0.5)
        assert client.writer is None and not client.hung_up
        assert stream.written == [b"one", b"two"] and queued(client) == []
        client.close(1000)
        assert len(spawned) == ClientHub.max_leaving
        await asyncio.wait_for(spawned[1], 0.5)
        assert client.hung_up and client.writer is None
        return client

    asyncio.run(main())
    assert stream.written == [b"one", b"two", wsframe.encode_close(1000)]


class SocketStream(NullStream):
    """A stream like the transport's: write_now() hands the socket what it takes (up
    to `room` bytes) and keeps the rest for drain()."""

    def __init__(self, room):
        super().__init__()
        self.room = room
        self.pending = b""
        self.sent = b""

    def write_now(self, data):
        if self.pending:
            raise AssertionError("write_now while a drain is owed")
        took = min(len(data), self.room)
        self.sent += data[:took]
        self.room -= took
        self.pending = data[took:]
        return not self.pending

    async def drain(self):
        self.sent += self.pending
        self.pending = b""

    async def awrite(self, data):
        await self.drain()
        self.sent += data


def test_idle_client_with_room_in_its_socket_gets_frames_written_at_once():
    stream = SocketStream(room=100)
    client = Client(stream)
    assert client.push(b"report", True) and client.push(b"reply")
    assert stream.sent == b"reportreply"
    assert queued(client) == []  # nothing queued: the writer task has nothing to do


def test_frames_after_a_full_socket_wait_in_order_for_the_writer():
    import asyncio

    stream = SocketStream(room=4)
    client = Client(stream)
    client.close_wait_ms = 10
    client.push(b"first")  # "firs" goes out, "t" waits in the stream
    client.push(b"second")  # the writer owes a drain: queued behind it
    client.push(b"third")
    assert stream.sent == b"firs" and queued(client) == [b"second", b"third"]
    client.close(1000)
    asyncio.run(client.run_writer())
    assert stream.sent == b"firstsecondthird" + wsframe.encode_close(1000)


def test_a_reset_peer_is_hung_up_and_the_broadcast_goes_on():
    # write_now on a socket the peer has reset raises ECONNRESET. That must neither
    # escape into a broadcast (the scan task would die with it, and every other
    # client miss the report) nor into the welcome report of a newcomer.
    class ResetStream(NullStream):
        closed = False

        def write_now(self, frame):
            raise OSError(104)

        async def drain(self):
            pass

        def close(self):
            self.closed = True

    class OpenStream(NullStream):
        def write_now(self, frame):
            self.written.append(frame)
            return True

    gone, alive = ResetStream(), OpenStream()
    hub = ClientHub(2)
    a, b = Client(gone), Client(alive)
    hub.admit(a)
    hub.admit(b)
    hub.broadcast(b"report", True)
    assert a.closing and alive.written == [b"report"]
    # Its writer hangs up, sending nothing more: the socket is closed then, not
    # during the push (the reader may be about to wait on it).
    assert not gone.closed
    import asyncio

    asyncio.run(a.run_writer())
    assert gone.closed and a.hung_up and gone.written == []
    assert Client(ResetStream()).push(b"welcome", True) is False


def test_a_report_view_is_written_as_is_or_queued_as_one_shared_copy():
    # The switch report is a view of a buffer the next report overwrites: a client
    # whose socket takes it now gets the view written; clients that must queue it
    # share one copy, which the next report does not change.
    class OpenStream(NullStream):
        def write_now(self, frame):
            self.written.append(bytes(frame))  # a socket copies what it is given
            return True

    buf = bytearray(b"report-1")
    view = memoryview(buf)
    hub = ClientHub(3)
    fast, slow1, slow2 = Client(OpenStream()), Client(NullStream()), Client(NullStream())
    for c in (fast, slow1, slow2):
        hub.admit(c)
    hub.broadcast(view, True)
    buf[7:8] = b"2"
    assert fast.stream.written == [b"report-1"]
    assert queued(slow1) == [b"report-1"] and queued(slow1)[0] is queued(slow2)[0]
    assert type(queued(slow1)[0]) is bytes
    # A push of a view to a client that queues it keeps a copy too.
    slow1.push(view, True)
    buf[7:8] = b"3"
    assert queued(slow1) == [b"report-2"]
