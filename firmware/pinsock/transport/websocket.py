# Transport: the WebSocket service on /ws and /INDEX, and the event log over a
# WebSocket. It is the device's sink for WebSocket clients (see logic/device.py):
# it turns what the device announces into frames, encoded once and queued to every
# client that is owed them (hub.py), and each client's messages into commands.
#
# The handshake and the frames are done here, not by microdot: the firmware must
# refuse bad frames with the right close code, which microdot's reader cannot, and a
# session must not keep the HTTP request alive (http.take_connection).
import asyncio
import gc
from binascii import a2b_base64

from ..compat import print_exception, ticks_ms
from ..protocol.commands import update_text, utf8_prefix, wants_update
from . import wsframe
from .http import (App, Response, already_handled, is_upgrade, noise, take_connection,
                   text_response)
from .hub import Client, peer_address

_SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: ")
# The switch report's frame is written after this much room for its header: 2 bytes
# for a payload under 126 bytes, 4 (a 16-bit length) up to 64 KiB, far beyond any board.
_HEADER_ROOM = 4
# Made at import: a session the heap has no room for is still told why it ends.
_CLOSE_NO_ROOM = wsframe.encode_close(wsframe.CLOSE_INTERNAL_ERROR, "out of memory")


class WebSocketService:
    """The WebSocket clients' sink (logic/device.py) and the /ws route."""

    #: Longest client frame payload accepted, in bytes; a longer one is refused with
    #: close 1009. Each session holds a buffer this big. Board config: max_frame_len.
    max_frame_len = 256

    def __init__(self, device, hub, max_frame_len=None):
        self.device = device
        self.hub = hub
        if max_frame_len is not None:
            self.max_frame_len = max_frame_len
        # The newest switch report as a frame, in a buffer made once: a change
        # allocates nothing. The frame is a view of the buffer, one per payload
        # length, made the first time that length comes up and kept. A report's
        # length varies only with the switches Off and the digits of seq, so there
        # are never more than a few dozen.
        self._report_buf = bytearray(_HEADER_ROOM + device.report.max_len)
        self._report_view = memoryview(self._report_buf)
        self._report_frames = {}  # payload length -> view of _report_buf
        self.report_frame = b""  # what a newcomer is sent first
        self._report_seq = -1  # the record it is numbered with
        # The update message for an IO's level, encoded the first time a client's
        # trigger needs it and kept, by io * 2 + level. Most IOs never have a
        # trigger, and their frames (64 bytes each on the unix port) are never made.
        self._update_frames = {}

    # --- the device's sink ----------------------------------------------------
    def report_changed(self, report, seq):
        self.hub.broadcast(self._frame_report(report, seq), True)

    def _frame_report(self, report, seq):
        # The report as a frame in _report_buf; returns it (a view) and keeps it for
        # newcomers.
        buf = self._report_buf
        n = report.write(buf, _HEADER_ROOM, seq) - _HEADER_ROOM
        if n < 126:
            start = _HEADER_ROOM - 2
            buf[start + 1] = n
        else:
            start = 0
            buf[1] = 126
            buf[2] = n >> 8
            buf[3] = n & 0xFF
        buf[start] = 0x80 | wsframe.OP_TEXT
        frames = self._report_frames
        frame = frames.get(n)
        if frame is None:
            frame = frames[n] = self._report_view[start : _HEADER_ROOM + n]
        self.report_frame = frame
        self._report_seq = seq
        return frame

    def level_changed(self, io, level):
        frame = None
        for client in self.hub.clients:
            if wants_update(client.triggers, io, level):
                if frame is None:
                    frame = self._update_frame(io, level)
                client.push(frame)

    def value_changed(self, io, fn, value, now):
        # An analog sample, a count, a button event (logic/kinds.py): to the clients
        # whose trigger for it wants it; nothing allocated for the others.
        kinds = self.device.bank.kinds
        frame = None
        for client in self.hub.clients:
            triggers = client.kinds
            if triggers is not None and kinds.wants(triggers, io, fn, value, now):
                if frame is None:
                    frame = wsframe.encode_text(kinds.update_text(io, fn, value))
                client.push(frame)

    def function_changed(self, io, fn, now, by):
        # Every other client is told (what its commands for the IO mean changed): the
        # update {"u":{"f":{"<h>":"<letter>"}}}; the one that set it has the reply.
        frame = None
        for client in self.hub.clients:
            if client is not by:
                if frame is None:
                    from ..logic.kinds import FUNCTIONS

                    frame = wsframe.encode_text('{"u":{"f":{"%x":"%s"}}}' % (io, FUNCTIONS[fn]))
                client.push(frame)

    def reply(self, client, text):
        client.push(wsframe.encode_text(text))

    def link_changed(self):
        # The MQTT link's update, to the clients whose tusq trigger is on (the byte
        # after the IOs' triggers); made only when one is.
        frame = None
        at = self.device.bank.count
        for client in self.hub.clients:
            if client.triggers[at]:
                if frame is None:
                    frame = wsframe.encode_text(self.device.status.mqtt.link_update(
                        ticks_ms()))
                client.push(frame)

    def logged(self, seq):
        # The report a newcomer gets carries the newest record's number (PROTOCOL.md),
        # so a GPIO input's record renumbers it too; only a switch change is sent.
        if seq != self._report_seq:
            self._frame_report(self.device.report, seq)

    def _update_frame(self, io, level):
        frames = self._update_frames
        key = io * 2 + level
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = wsframe.encode_text(update_text(io, level))
        return frame

    # --- clients --------------------------------------------------------------
    def join(self, client, address=None):
        """A client connected (from `address`, hub.peer_address): it is served (it may
        replace the oldest), and the switch report is the first it gets."""
        self.device.connected(client, address)
        self.hub.admit(client)
        client.push(self.report_frame, True)

    # --- the route ------------------------------------------------------------
    async def serve(self, request):
        if not is_upgrade(request):
            return Response(
                "This is pinsock's WebSocket endpoint. Connect with a WebSocket client"
                " (Upgrade: websocket); the page at / does.\n",
                426,
                {"Upgrade": "websocket", "Connection": "Upgrade", "Content-Type": "text/plain"},
                reason="Upgrade Required",
            )
        stream = await upgrade(request)
        if isinstance(stream, Response):  # the handshake refused
            return stream
        if stream is not None:
            _start(stream, self.session)
        return already_handled

    async def session(self, stream):
        """One WebSocket session, in a task of its own, until the connection ends."""
        # The request that opened it is garbage now: collect it first, so what the
        # session keeps (the client, its buffers) is allocated low in the heap and
        # not in the middle of the space the request leaves free.
        gc.collect()
        try:
            client = Client(stream, spawn=asyncio.create_task)
        except MemoryError:  # the peer got 101: it gets a close frame, made beforehand
            noise("out of memory opening a WebSocket session", True)
            try:
                stream.write_now(_CLOSE_NO_ROOM)
            except OSError:
                pass
            stream.close()
            return
        try:
            self.join(client, peer_address(stream))
            await self._read_messages(stream, client)
        except wsframe.FrameError as exc:
            client.close(exc.code, exc.reason)
        except (EOFError, OSError):  # EOF, reset, or the socket closed under us
            client.peer_has_closed()
            client.hang_up()
        except MemoryError:  # logged, and the client told
            noise("out of memory in a WebSocket session", True)
            client.close(wsframe.CLOSE_INTERNAL_ERROR, "internal error")
        except Exception as exc:  # a bug: logged, and the client told
            print_exception(exc)
            client.close(wsframe.CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            self.hub.remove(client)
        # The writer (if one runs) now flushes what is queued and the close
        # handshake. A peer that stopped reading cannot hold this connection open
        # past the deadline.
        writer_task = client.writer
        if writer_task is not None:
            try:
                await asyncio.wait_for(writer_task, 2 * Client.close_wait_ms / 1000)
            except Exception:
                pass
        client.hang_up()
        # Collect now, while the heap holds no other connection's garbage: what this
        # session leaves is freed in one piece instead of fragmenting it later.
        gc.collect()

    async def _read_messages(self, reader, client):
        # One buffer per connection, sized to the frame limit, reused for every frame.
        limit = self.max_frame_len
        buf = bytearray(limit)
        view = memoryview(buf)
        device = self.device
        while True:
            head = await reader.readexactly(2)
            opcode, n = wsframe.check_header(head[0], head[1])
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await reader.readexactly(8), "big")
            if n > limit:
                raise wsframe.FrameError(wsframe.CLOSE_TOO_BIG, "frame too big")
            mask = await reader.readexactly(4)
            got = 0
            while got < n:
                k = await reader.readinto(view[got:n])
                if k is None:  # TLS: the rest of the record has not arrived yet
                    continue
                if not k:
                    raise EOFError
                got += k
            wsframe.unmask(buf, n, mask)
            client.last_heard = ticks_ms()
            if opcode == wsframe.OP_TEXT:
                # Strictly: MicroPython's decode() takes overlong forms, surrogates
                # and code points past U+10FFFF (commands.utf8_prefix).
                if utf8_prefix(buf, 0, n) != n:
                    raise wsframe.FrameError(wsframe.CLOSE_BAD_DATA, "invalid UTF-8")
                text = bytes(view[:n]).decode()
                if not client.closing:
                    device.received(self, client, text)
            elif opcode == wsframe.OP_PING:
                client.push(wsframe.encode(wsframe.OP_PONG, bytes(view[:n])))
            elif opcode == wsframe.OP_CLOSE:
                client.peer_has_closed()
                client.close(*close_reply(view, n))
                return
            # OP_PONG: nothing to do


def _start(stream, serve, *args):
    # The task serve(stream, *args) for a connection taken over; without room for it,
    # the socket is closed (the peer got 101, and sees the connection end).
    try:
        asyncio.create_task(serve(stream, *args))
    except MemoryError:
        stream.close()
        noise("out of memory starting a WebSocket session", True)


async def upgrade(request):
    """Answer a WebSocket handshake and take the connection over. Returns a stream of
    its own for the session (its close() closes the socket); or the answer refusing a
    handshake that lacks what RFC 6455 4.2.1 requires: Connection: Upgrade and a
    Sec-WebSocket-Key that is the base64 of 16 bytes (else 400), Sec-WebSocket-Version
    13 (else 426, saying which version this server speaks); or None when the peer went
    away meanwhile (a reset: one console line per cause, rate limited)."""
    headers = request.headers
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        good = len(key) == 24 and key[22:] == "==" and len(a2b_base64(key)) == 16 and \
            "upgrade" in headers.get("Connection", "").lower()
    except ValueError:  # not base64
        good = False
    if not good:
        return text_response("Bad request: a WebSocket handshake needs Connection: Upgrade"
                             " and a Sec-WebSocket-Key of 16 bytes\n", 400, "Bad Request")
    if headers.get("Sec-WebSocket-Version") != "13":
        return Response("WebSocket version 13 only\n", 426,
                        {"Sec-WebSocket-Version": "13", "Content-Type": "text/plain"},
                        reason="Upgrade Required")
    try:
        await request.sock[1].awrite(b"".join((_SWITCHING, wsframe.accept_key(key),
                                                b"\r\n\r\n")))
        return take_connection(request)
    except OSError:
        noise("a client went away during the WebSocket handshake")
    except MemoryError:  # the socket is closed by the HTTP exchange, whose it still is
        noise("out of memory taking a WebSocket session", True)
    return None


def close_reply(view, n):
    """The close frame (code, reason) that answers a peer's close frame of n bytes in
    `view` (RFC 6455 5.5.1, 7.4)."""
    if n == 0:
        return (wsframe.CLOSE_NORMAL, "")
    if n == 1:
        return (wsframe.CLOSE_PROTOCOL_ERROR, "bad close frame")
    code = (view[0] << 8) | view[1]
    if not wsframe.close_code_valid(code):
        return (wsframe.CLOSE_PROTOCOL_ERROR, "bad close code")
    if utf8_prefix(view, 2, n) != n:
        return (wsframe.CLOSE_BAD_DATA, "invalid UTF-8")
    return (code, "")


# --- the event log over a WebSocket --------------------------------------------------

async def send_log(request, log, since):
    """GET /log upgraded: one message per record after `since`, then "end", then close.

    The records are sent by a task of their own, like a session, so the request and
    the coroutines that served it are freed at once (a log read in flight then holds
    a quarter of the heap it would otherwise)."""
    stream = await upgrade(request)
    if isinstance(stream, Response):  # the handshake refused
        return stream
    if stream is not None:
        _start(stream, _stream_log, log, since)
    return already_handled


async def _stream_log(stream, log, since):
    try:
        # The same deadline as any HTTP exchange; then a moment for the peer to answer
        # our close frame before we hang up.
        await asyncio.wait_for(_write_log(stream, log, since),
                               App.request_timeout_ms / 1000)
        await asyncio.wait_for(stream.read(64), Client.close_wait_ms / 1000)
    except Exception:  # the peer went away, or does not read
        pass
    stream.close()


async def _write_log(stream, log, since):
    for text in log.messages(since):
        stream.write(wsframe.encode_text(text))
        await stream.drain()
    stream.write(wsframe.encode_text("end"))
    stream.write(wsframe.encode_close(wsframe.CLOSE_NORMAL))
    await stream.drain()
