# Connected WebSocket clients: who is connected, what each is owed, and who gets
# replaced when the device is full.
#
# Each client has a bounded outbox of ready-made frames and one writer task that
# empties it, so a client that reads slowly only ever delays itself. A message for
# everyone is encoded once and the same bytes object is queued to every client.
import asyncio

from . import wsframe


class Client:
    # Frames a client may have queued before it counts as stuck. A newer switch
    # report replaces an unsent older one, so reports never pile up.
    outbox_len = 16
    # How long to wait for the peer's answering close frame before hanging up.
    close_wait_ms = 1000

    def __init__(self, stream):
        self.stream = stream  # has awrite() and aclose()
        self._frames = [None] * self.outbox_len
        self._head = 0
        self._count = 0
        self._report_at = -1  # ring index of the unsent switch report, or -1
        self._close_frame = None
        self.closing = False
        self.wake = asyncio.Event()
        self.peer_closed = asyncio.Event()
        self.triggers = None  # this connection's update triggers (commands.py)

    def push(self, frame, is_report=False):
        """Queue one encoded frame. Returns False when the client is stuck."""
        if self.closing:
            return True
        n = self.outbox_len
        if is_report and self._report_at >= 0:
            self._frames[self._report_at] = None  # superseded: keep only the newest
        if self._count == n:
            self.close(wsframe.CLOSE_TRY_AGAIN, "client too slow")
            return False
        i = (self._head + self._count) % n
        self._frames[i] = frame
        self._count += 1
        if is_report:
            self._report_at = i
        self.wake.set()
        return True

    def close(self, code, reason=""):
        """Send a close frame after what is queued, then hang up."""
        if not self.closing:
            self.closing = True
            self._close_frame = wsframe.encode_close(code, reason)
            self.wake.set()

    async def run_writer(self):
        """Write queued frames until the connection closes. Ends by hanging up."""
        stream = self.stream
        frames = self._frames
        n = self.outbox_len
        try:
            while True:
                self.wake.clear()
                while self._count:
                    i = self._head
                    frame = frames[i]
                    frames[i] = None
                    self._head = (i + 1) % n
                    self._count -= 1
                    if i == self._report_at:
                        self._report_at = -1
                    if frame is not None:
                        await stream.awrite(frame)
                if self.closing:
                    break
                await self.wake.wait()
            await stream.awrite(self._close_frame)
            await asyncio.wait_for(self.peer_closed.wait(), self.close_wait_ms / 1000)
        except Exception:  # the peer went away or did not answer: nothing to save
            pass
        finally:
            self.hang_up()

    def hang_up(self):
        # Close the socket now. A reader or writer blocked on it wakes with an error.
        self.closing = True
        try:
            self.stream.close()
        except Exception:
            pass


class ClientHub:
    def __init__(self, max_clients):
        self.max_clients = max_clients
        self.clients = []  # oldest first

    def admit(self, client):
        """Add a client, replacing the oldest ones when the device is full."""
        clients = self.clients
        while len(clients) >= self.max_clients:
            clients.pop(0).close(wsframe.CLOSE_REPLACED, "replaced")
        clients.append(client)

    def remove(self, client):
        if client in self.clients:
            self.clients.remove(client)

    def broadcast(self, frame, is_report=False):
        for client in self.clients:
            client.push(frame, is_report)
