# Connected WebSocket clients: who is connected, what each is owed, who gets
# replaced when the device is full, and who is dead, stuck or too fast.
#
# Each client has a bounded outbox of ready-made frames and a writer task that
# empties it, so a client that reads slowly only ever delays itself. The writer task
# runs only while there is something to write (a frame the socket did not take
# whole, a queued frame, the close handshake) and ends when it is done: an idle
# client holds no task (~0.5 KB of heap each on the unix port). A message for
# everyone is encoded once and the same bytes object is queued to every client.
# When the outbox is empty and the socket takes a frame whole, push() writes it at
# once and nothing is queued or allocated (stream.write_now, from the transport): the
# writer task only exists for a client whose socket is full, or that is closing.
# A frame may be a view of a buffer its maker reuses (the switch report, report.py):
# push() writes it at once or queues a copy, never the view itself.
import asyncio

from . import wsframe
from ..compat import ticks_diff, ticks_ms

_PING = wsframe.encode(wsframe.OP_PING, b"")
_NO_OUTBOX = []  # type: list  # a client's outbox until one is needed (never changed)



def peer_address(stream):
    """Where a connection comes from, for Device.connected: the peer's IP address
    without its port, as the port gives it (text; bytes on the unix port). None when
    the stream does not say."""
    try:
        peer = stream.get_extra_info("peername")
    except Exception:  # a stream without one (a test's)
        return None
    if isinstance(peer, tuple):  # the chips' lwIP, CPython: (address, port)
        return peer[0]
    if isinstance(peer, (bytes, bytearray)) and len(peer) >= 8:
        # The unix port: a struct sockaddr (a bytearray), family (2 bytes) and port
        # first.
        family = peer[0] | peer[1]
        if family == 2:  # AF_INET: 4 address bytes
            return bytes(peer[4:8])
        if family == 10 and len(peer) >= 24:  # AF_INET6: flow info, 16 address bytes
            return bytes(peer[8:24])
    return peer

class Client:
    #: Frames a client may have queued. When it is full, a new frame is dropped (a new
    #: switch report instead pushes out the oldest frame: the newest report always
    #: gets through) and the client counts as stuck while it stays full. Each
    #: slot is a pointer in a list every client holds.
    outbox_len = 16
    #: How long to wait for the peer's answering close frame before hanging up (ms).
    close_wait_ms = 1000

    # What a client's state starts as, held by the class: an object's attributes live
    # in one table that grows as they are set, and most of these change only when
    # something goes wrong (the socket fills, the client closes). Set on a client,
    # each then shadows its default.
    _writing = False  # a writer task runs: push() must queue
    # The outbox ring, made the first time a frame must wait: most clients' sockets
    # take every frame at once, and never need one.
    _frames = _NO_OUTBOX
    _head = 0
    _count = 0
    _report_at = -1  # ring index of the unsent switch report, or -1
    _close_frame = None
    closing = False
    hung_up = False  # the socket is closed: nothing more can be sent
    writer = None  # the running writer task, if any
    peer_closed = False  # the peer sent its close frame, or is gone
    _peer_closed_event = None  # made only while the writer waits for it
    triggers = None  # this connection's update triggers (protocol/commands.py)
    kinds = None  # its analog, counter and button triggers (logic/kinds.py Triggers)
    stuck_since = -1  # when the outbox filled up, or -1
    closing_since = 0
    dropped = 0  # frames dropped because the outbox was full
    credit = 0  # command rate limit (logic/device.py)

    def __init__(self, stream, now=None, spawn=None):
        self.stream = stream  # has awrite() and close(); maybe write_now() and drain()
        # spawn(coroutine) starts the writer task when one is needed (the transport
        # passes asyncio.create_task); None: the caller runs run_writer() itself.
        self._spawn = spawn
        # write_now(frame): write without waiting; True when the socket took all of it,
        # False when the rest waits in the stream for the writer to drain().
        self._write_now = getattr(stream, "write_now", None)
        now = ticks_ms() if now is None else now
        self.last_heard = now  # last frame of any kind from the peer
        self.last_ping = now
        self.credit_at = now

    def writes_now(self):
        """True when push() hands a frame straight to the socket (nothing is queued)."""
        return not self._count and not self._writing and self._write_now is not None

    def push(self, frame, is_report=False):
        """Send or queue one encoded frame (bytes, or a view that is copied if it has
        to wait). Returns False when it had to drop one."""
        if self.closing:
            return True
        write_now = self._write_now
        if write_now is not None and not self._count and not self._writing:
            # Nothing waits before it: straight into the socket, no allocation.
            try:
                took_all = write_now(frame)
            except OSError:
                # The peer is gone (a reset). Never raise into the caller (a broadcast
                # to everyone, a newcomer's welcome): the writer hangs up. Not here:
                # a socket closed before the reader waits on it is one the unix port's
                # poll never reports, and the session would wait forever.
                self.closing = True
                self.closing_since = ticks_ms()
                self.peer_closed = True
                self._start_writer()
                return False
            if not took_all:
                self._start_writer()  # part of it waits in the stream: the writer flushes
            return True
        n = self.outbox_len
        frames = self._frames
        if frames is _NO_OUTBOX:
            frames = [None] * n  # type: list
            self._frames = frames
        if is_report and self._report_at >= 0:
            frames[self._report_at] = None  # superseded: keep only the newest
        full = self._count == n
        if full:
            if self.stuck_since < 0:
                self.stuck_since = ticks_ms()
            self.dropped += 1
            if not is_report:
                return False
            head = self._head  # make room for the newest report: drop the oldest frame
            frames[head] = None
            if head == self._report_at:
                self._report_at = -1
            self._head = (head + 1) % n
            self._count -= 1
        i = (self._head + self._count) % n
        frames[i] = frame if type(frame) is bytes else bytes(frame)
        self._count += 1
        if is_report:
            self._report_at = i
        self._start_writer()
        return not full

    def close(self, code, reason=""):
        """Send a close frame after what is queued, then hang up."""
        if not self.closing:
            self.closing = True
            self.closing_since = ticks_ms()
            self._close_frame = wsframe.encode_close(code, reason)
            self._start_writer()

    def _start_writer(self):
        self._writing = True
        if self.writer is None and self._spawn is not None and not self.hung_up:
            self.writer = self._spawn(self.run_writer())

    async def run_writer(self):
        """Write what is owed: frames left in the stream, queued frames, and once the
        client is closing the close handshake, after which it hangs up. Ends when
        there is nothing more to write."""
        stream = self.stream
        n = self.outbox_len
        drained = False
        try:
            self._writing = True
            if self._write_now is not None:
                await stream.drain()  # what write_now left in the stream
            while self._count:  # frames pushed meanwhile join the queue behind these
                frames = self._frames  # made by the first push() that queued
                i = self._head
                frame = frames[i]
                frames[i] = None
                self._head = (i + 1) % n
                self._count -= 1
                if i == self._report_at:
                    self._report_at = -1
                if frame is not None:
                    await stream.awrite(frame)
                self.stuck_since = -1
            if not self.closing:
                # All written: end. No await between here and the end, so the next
                # push() finds no writer and writes at once again.
                self._writing = False
                drained = True
                return
            if self.hung_up or self._close_frame is None:
                return  # the socket is closed, or the peer gone: no close frame
            await stream.awrite(self._close_frame)
            if not self.peer_closed:
                self._peer_closed_event = event = asyncio.Event()
                await asyncio.wait_for(event.wait(), self.close_wait_ms / 1000)
        except Exception:  # the peer went away or did not answer: nothing to save
            pass
        finally:
            self.writer = None
            if not drained:
                self.hang_up()

    def peer_has_closed(self):
        """The peer sent its close frame, or is gone: the close handshake waits no more."""
        self.peer_closed = True
        if self._peer_closed_event is not None:
            self._peer_closed_event.set()

    def hang_up(self):
        # Close the socket now. A reader or writer blocked on it wakes with an error
        # (an idle client has no writer to wake: a reconnect storm of peers that reset
        # piles up no connections waiting for the transport's deadline).
        self.closing = True
        self.hung_up = True
        try:
            self.stream.close()
        except Exception:
            pass


class ClientHub:
    """The WebSocket clients: who is served, who is leaving, and the housekeeping
    (sweep(), every second) that pings them and closes the dead and the stuck."""

    #: WebSocket sessions served at once; a newcomer beyond it replaces the oldest
    #: (close 4001), so a connection that died silently never locks the owner out.
    #: Each client holds about 2.4 KB of heap (unix port). Board config: max_clients.
    max_clients = 1
    #: A ping to every client this often (ms). Board config: ping_interval_ms.
    ping_interval_ms = 15000
    #: A client heard nothing from for this long (ms) is closed (1001) and its slot
    #: freed. Board config: idle_timeout_ms.
    idle_timeout_ms = 45000
    #: A client whose outbox stays full this long (ms) is closed (1013): it reads too
    #: slowly to be kept. Board config: stuck_timeout_ms.
    stuck_timeout_ms = 10000
    #: Clients leaving (closed, their close handshake under way) kept at once. A close
    #: waits up to 2 s for the peer's answer; a newcomer beyond this hangs up on the
    #: oldest leaving one at once: 20 connections a second that never answer their
    #: 4001 would otherwise keep 40 sessions' heap (2.4 KB each) held.
    max_leaving = 2

    def __init__(self, max_clients=None, ping_interval_ms=None, idle_timeout_ms=None,
                 stuck_timeout_ms=None):
        if max_clients is not None:
            self.max_clients = max_clients
        if ping_interval_ms is not None:
            self.ping_interval_ms = ping_interval_ms
        if idle_timeout_ms is not None:
            self.idle_timeout_ms = idle_timeout_ms
        if stuck_timeout_ms is not None:
            self.stuck_timeout_ms = stuck_timeout_ms
        self.clients = []  # served clients, oldest first
        self.connections = []  # every connection not yet finished, leaving ones too

    def count(self):
        """How many clients are served (the `sc` command)."""
        return len(self.clients)

    def admit(self, client):
        """Add a client, replacing the oldest ones when the device is full."""
        clients = self.clients
        while len(clients) >= self.max_clients:
            clients.pop(0).close(wsframe.CLOSE_REPLACED, "replaced")
        clients.append(client)
        connections = self.connections
        connections.append(client)
        leaving = sum(1 for other in connections if other.closing and not other.hung_up)
        for other in connections:  # oldest first
            if leaving <= self.max_leaving:
                break
            if other.closing and not other.hung_up:
                other.hang_up()
                leaving -= 1

    def remove(self, client):
        """The connection is over: forget it."""
        for group in (self.clients, self.connections):
            if client in group:
                group.remove(client)

    def broadcast(self, frame, is_report=False):
        # A view (the report) that has to wait is copied once for all who queue it.
        kept = frame if type(frame) is bytes else None
        for client in self.clients:
            if client.writes_now() or client.closing:
                client.push(frame, is_report)
            else:
                if kept is None:
                    kept = bytes(frame)
                client.push(kept, is_report)

    def sweep(self, now):
        """Ping, and close clients that are dead, stuck, or will not finish closing."""
        for client in self.connections:
            if client.closing:
                # A peer that neither reads our close frame nor answers it.
                if ticks_diff(now, client.closing_since) > 2 * client.close_wait_ms:
                    client.hang_up()
            elif ticks_diff(now, client.last_heard) > self.idle_timeout_ms:
                client.close(wsframe.CLOSE_GOING_AWAY, "no answer to ping")
            elif client.stuck_since >= 0 and \
                    ticks_diff(now, client.stuck_since) > self.stuck_timeout_ms:
                client.close(wsframe.CLOSE_TRY_AGAIN, "client too slow")
            elif ticks_diff(now, client.last_ping) >= self.ping_interval_ms:
                client.last_ping = now
                client.push(_PING)
        if any(client.closing for client in self.clients):
            # closed above: their slots are free now
            self.clients = [client for client in self.clients if not client.closing]
