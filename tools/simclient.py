"""Clients of the simulator (any pinsock device on 127.0.0.1): its control port, its
WebSocket service and its HTTP answers. tools/simproc.py starts the simulator; the
benchmark, the soak, the memory benchmark and the tests talk to it through this module.

    ctl = Control(sim.control_port); ctl.ask("set 0 0"); ctl.heap()
    ws = RawWs(sim.http_port); ws.send_text("v0"); ws.recv_text()
    with ws_connect(sim.http_port) as ws: next_message(ws, "dipSwitches")
    status, headers, body = http_get(sim.http_port, "/board")

Two WebSocket clients, for two needs: RawWs is a plain socket with nothing between
the caller and the wire (timing, and frames no real client would send); ws_connect()
and ws_connect_async() are the `websockets` package, a client as real ones behave.
"""

import asyncio
import base64
import collections
import json
import os
import socket
import time

from websockets.asyncio.client import connect as _connect_async
from websockets.sync.client import connect as _connect_sync

HOST = "127.0.0.1"
# Every wait of these clients is bounded by this (seconds) unless a caller says.
TIMEOUT_S = 10


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def read_to_end(sock):
    """Everything a socket receives until the peer closes it."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def connect_tcp(port, timeout=TIMEOUT_S):
    """A connection to 127.0.0.1:port with TCP_NODELAY (no write waits for an ACK)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# --- the control port ---------------------------------------------------------------
class Control:
    """One kept-open control-port connection; lines may be pipelined (send(), then
    read_line() for each answer)."""

    def __init__(self, port, timeout=TIMEOUT_S):
        self.sock = connect_tcp(port, timeout)
        self.timeout = timeout
        self.buf = b""

    def fileno(self):
        return self.sock.fileno()

    def send(self, lines):
        """Write lines (str or bytes, each ending in a newline) without waiting."""
        self.sock.sendall(lines.encode() if isinstance(lines, str) else lines)

    def read_line(self):
        """Read what is there; return one answer line once complete, else None."""
        if b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("control port closed")
            self.buf += chunk
        if b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            return line.decode().strip()
        return None

    def ask(self, line):
        """Send one line; return its answer line."""
        self.send(line.encode() + b"\n")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self.read_line()
            if answer is not None:
                return answer
            if time.monotonic() > deadline:
                raise TimeoutError("control port did not answer %r" % line)

    def heap(self):
        """(free, allocated) heap bytes, after a collection."""
        free, alloc = self.ask("heap").split()
        return int(free), int(alloc)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def control(port, line, timeout=5):
    """One control-port line on a connection of its own; its answer ("" when the port
    hangs up without one)."""
    with Control(port, timeout) as ctl:
        try:
            return ctl.ask(line)
        except ConnectionError:
            return ""


class AsyncControl:
    """Control, for asyncio: `ctl = await AsyncControl.open(port)`."""

    @classmethod
    async def open(cls, port, timeout=TIMEOUT_S):
        self = cls()
        self.timeout = timeout
        self.reader, self.writer = await asyncio.open_connection(HOST, port)
        return self

    async def ask(self, line):
        self.writer.write(line.encode() + b"\n")
        answer = await asyncio.wait_for(self.reader.readline(), self.timeout)
        if not answer.endswith(b"\n"):
            raise ConnectionError("control port closed on %r" % line)
        return answer.decode().strip()

    async def heap(self):
        free, alloc = (await self.ask("heap")).split()
        return int(free), int(alloc)

    def close(self):
        self.writer.close()


# --- HTTP -----------------------------------------------------------------------------
def get_request(port, path, headers=None):
    """The bytes of a minimal `GET path` (HTTP/1.1; the device answers and closes)."""
    lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (HOST, port)]
    lines += ["%s: %s" % item for item in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port, request, timeout=TIMEOUT_S):
    """Send raw request bytes on a new connection; return all the answer."""
    with connect_tcp(port, timeout) as s:
        s.sendall(request)
        return read_to_end(s)


def split_answer(answer):
    """(status, {lower-case header name: value}, body) of a whole HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def http_get(port, path, headers=None, timeout=TIMEOUT_S):
    """(status, headers, body) of a GET on a new connection."""
    return split_answer(exchange(port, get_request(port, path, headers), timeout))


async def http_get_async(port, path, headers=None, timeout=TIMEOUT_S):
    """http_get, for asyncio."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(get_request(port, path, headers))
        answer = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return split_answer(answer)


# --- WebSocket frames -------------------------------------------------------------------
def ws_url(port, path="/ws"):
    return "ws://%s:%d%s" % (HOST, port, path)


def upgrade_request(path="/ws", host=HOST, extra=""):
    """The bytes of a WebSocket upgrade request (a fresh key); `extra`: more header
    lines, each ending in CRLF."""
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path, host, key, extra)).encode()


def client_frame(opcode, payload, fin=True, masked=True, rsv=0, length=None, mask=None):
    """A client's frame. `length`: the length field to claim (default: the payload's);
    `mask`: the 4 mask bytes (default: random)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = bytes((b0, mask_bit | n))
    elif n < 65536:
        header = bytes((b0, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((b0, mask_bit | 127)) + n.to_bytes(8, "big")
    if masked:
        mask = os.urandom(4) if mask is None else mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


def split_frame(data):
    """(opcode, payload, rest) for the whole server (unmasked) frame at the front of
    `data`, or None while it is incomplete."""
    if len(data) < 2:
        return None
    n, start = data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, start = int.from_bytes(data[2:4], "big"), 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, start = int.from_bytes(data[2:10], "big"), 10
    if len(data) < start + n:
        return None
    return data[0] & 0x0F, data[start:start + n], data[start + n:]


def close_code(payload):
    """The status code of a close frame's payload, or None when it has none."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


# --- a WebSocket client on a plain socket -----------------------------------------------
class RawWs:
    """A WebSocket client on a plain socket (TCP_NODELAY): no library between the caller
    and the timing, and any frame can be sent (send_frame).

    Read it one way per connection:
    - next_frame() / frames(): the server's frames as they come, pings and close included;
    - feed() / recv_text(): messages; pings are answered, a close frame raises
      ConnectionError, and switch reports are remembered (last_report, seq()).
    The answer's head is read byte by byte: nothing after it is taken (`rcvbuf` small,
    a client that never reads lets the device's writes back up at once).
    `extra`: more header lines for the upgrade request, each ending in CRLF (a
    session's Cookie).
    """

    def __init__(self, port, path="/ws", timeout=TIMEOUT_S, rcvbuf=None, extra=""):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = upgrade_request(path, "%s:%d" % (HOST, port), extra)
        self.sock.sendall(request)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = self.sock.recv(1)
            if not byte:
                self.sock.close()
                raise ConnectionError("closed during the handshake: %r" % head)
            head += byte
        if not head.startswith(b"HTTP/1.1 101"):
            self.sock.close()
            raise ConnectionError("no upgrade: %r" % head[:80])
        self.handshake_out, self.handshake_in = len(request), len(head)
        self.buf = b""
        self.frame_sizes = []  # sizes of text frames taken by feed(), when recording
        self.record_sizes = False
        self.last_report = None
        # Text messages not yet taken by recv_text(); bounded, the oldest fall out
        # (loops that only watch switch reports never take them).
        self.inbox = collections.deque(maxlen=64)

    def fileno(self):
        return self.sock.fileno()

    def send_frame(self, opcode, payload, **how):
        """Send one frame; `how`: client_frame()'s fin, masked, rsv, length."""
        self.sock.sendall(client_frame(opcode, payload, **how))

    def send_text(self, text):
        self.send_frame(0x1, text.encode())

    def _receive(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the device closed the connection (%r unread)"
                                  % self.buf[:80])
        self.buf += chunk

    # --- frames ---------------------------------------------------------------------
    def next_frame(self):
        """(opcode, payload) of the server's next frame (blocking, bounded)."""
        while True:
            frame = split_frame(self.buf)
            if frame:
                opcode, payload, self.buf = frame
                return opcode, payload
            self._receive()

    def frames(self):
        """Read frames until the server's close frame: (texts, close code)."""
        texts = []
        while True:
            opcode, payload = self.next_frame()
            if opcode == 0x8:
                return texts, close_code(payload)
            if opcode == 0x1:
                texts.append(payload.decode())

    # --- messages -------------------------------------------------------------------
    def feed(self):
        """Read what the socket has; return the text messages now complete (as str)."""
        self._receive()
        texts = []
        while True:
            frame = split_frame(self.buf)
            if frame is None:
                return texts
            opcode, payload, rest = frame
            size, self.buf = len(self.buf) - len(rest), rest
            if opcode == 0x1:
                text = payload.decode()
                if self.record_sizes:
                    self.frame_sizes.append(size)
                if text.startswith('{"dipSwitches"'):
                    self.last_report = json.loads(text)
                texts.append(text)
                self.inbox.append(text)
            elif opcode == 0x9:
                self.send_frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("the device sent close %r" % payload[:40])

    def recv_text(self):
        """The next text message (blocking, bounded)."""
        deadline = time.monotonic() + self.sock.gettimeout()
        while not self.inbox:
            if time.monotonic() > deadline:
                raise TimeoutError("no message within %g s" % self.sock.gettimeout())
            self.feed()
        return self.inbox.popleft()

    def seq(self):
        """The `seq` of the newest switch report feed() took, -1 before any."""
        return self.last_report["seq"] if self.last_report else -1

    def close(self, code=None):
        """Close the socket; given a `code`, after a close frame with it (a clean
        goodbye, not waiting for the answer)."""
        if code is not None:
            try:
                self.send_frame(0x8, code.to_bytes(2, "big"))
            except OSError:
                pass
        self.sock.close()


def open_websocket(port, path="/ws", timeout=TIMEOUT_S, rcvbuf=None):
    """A plain socket that has completed the WebSocket upgrade (RawWs's handshake),
    nothing after the answer's head read."""
    return RawWs(port, path, timeout, rcvbuf).sock


async def open_websocket_async(port, path="/ws", timeout=TIMEOUT_S, rcvbuf=None):
    """open_websocket, for asyncio: (reader, writer) after the answer's head."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(upgrade_request(path))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError("no upgrade: %r" % head[:80])
    return reader, writer


# --- the `websockets` package -------------------------------------------------------------
def ws_connect(port, path="/ws", timeout=TIMEOUT_S, **options):
    """A `websockets` client (sync; use it in `with`): pings answered, close handshake
    done, as real clients do. `options`: websockets.sync.client.connect()'s."""
    return _connect_sync(ws_url(port, path), open_timeout=timeout, **options)


def ws_connect_async(port, path="/ws", timeout=TIMEOUT_S, **options):
    """ws_connect, for asyncio (`async with` or `await`)."""
    return _connect_async(ws_url(port, path), open_timeout=timeout, **options)


def next_message(ws, key, timeout=TIMEOUT_S):
    """The next JSON message on a `websockets` client that has `key`, skipping others."""
    while True:
        msg = json.loads(ws.recv(timeout=timeout))
        if key in msg:
            return msg
