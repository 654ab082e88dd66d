# The HTTP half of the transport (transport/http.py) driven through a scripted stream:
# the request reader, the routes' dispatch and the answer writer, without a socket.
# Runs on CPython and the unix port.
import asyncio

from pinsock.compat import ticks_add, ticks_ms
from pinsock.transport import http


class ScriptedSocket:
    """What asyncio's Stream wraps (`s`): readline(n) gives what has "arrived", up to
    n bytes or a newline; None once it is used up while the peer keeps the connection
    open (`hang`), b"" when the peer has closed."""

    def __init__(self, data, hang):
        self.data = data
        self.hang = hang
        self.closed = False

    def read(self, n):
        data, self.data = self.data[:n], self.data[n:]
        return data if data or not self.hang else None

    def close(self):
        self.closed = True

    def readline(self, n):
        if not self.data:
            return None if self.hang else b""
        end = self.data.find(b"\n")
        end = n if end < 0 else min(n, end + 1)
        line, self.data = self.data[:end], self.data[end:]
        return line


class ScriptedStream:
    """One connection as asyncio's Stream is to the server: reader and writer in one,
    over a ScriptedSocket. Keeps what the server writes."""

    def __init__(self, data, hang=False):
        self.s = ScriptedSocket(data, hang)
        self.e = {}
        self.written = b""
        self.closed = False

    async def read(self, n):
        while not self.s.data and self.s.hang:
            await asyncio.sleep(0.005)  # the peer sends nothing more
        data, self.s.data = self.s.data[:n], self.s.data[n:]
        return data

    async def readinto(self, buf):
        data = await self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    async def readexactly(self, n):
        data = await self.read(n)
        if len(data) < n:
            raise EOFError
        return data

    def write(self, data):
        self.written += bytes(data)

    async def drain(self):
        pass

    async def awrite(self, data):
        self.write(data)

    async def aclose(self):
        self.closed = True


def make_app():
    app = http.App()

    @app.get("/x")
    async def x(request):
        return http.Response(b"hello", 200, {"Content-Type": "text/plain"})

    @app.post("/form")
    async def form(request):
        return http.Response(request.form.get("a", ""), 200)

    @app.get("/ws")
    async def ws(request):
        if not http.is_upgrade(request):
            return http.Response("use a WebSocket\n", 426, {"Upgrade": "websocket"},
                                 reason="Upgrade Required")
        return http.Response(b"", 400)

    return app


def exchange(data, hang=False, app=None):
    """What the server writes for `data` sent on one connection (then closed, or held
    open with `hang`): (status line, headers as a dict of lower-case names, body)."""
    stream = ScriptedStream(data, hang)
    # The Listener's part for one connection, without its accept loop: the connection
    # in a slot, served by a task; with `hang`, the once-a-second sweep after the
    # deadline.
    listener = http.Listener((app or make_app()).exchange)
    head = http.RequestHeadReader(stream)

    async def serve():
        head.task = asyncio.create_task(listener._serve(head, stream))
        listener.heads[0] = head
        if hang:
            await asyncio.sleep(0.05)
            listener.sweep(ticks_add(ticks_ms(), http.App.request_timeout_ms + 1))
        await head.task

    asyncio.run(serve())
    assert stream.s.closed and listener.heads[0] is None
    head, _, body = stream.written.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def test_a_get_is_answered_with_its_head_and_body():
    status, headers, body = exchange(b"GET /x HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == "HTTP/1.0 200 OK"
    assert headers == {"content-type": "text/plain", "content-length": "5"}
    assert body == b"hello"


def test_head_answers_the_head_of_get_without_its_body():
    status, headers, body = exchange(b"HEAD /x HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == "HTTP/1.0 200 OK" and headers["content-length"] == "5"
    assert body == b""


def test_a_malformed_request_line_is_400():
    status, _, _ = exchange(b"NONSENSE\r\n\r\n")
    assert status == "HTTP/1.0 400 N/A"


def test_a_request_line_over_the_limit_is_400():
    line = b"GET /" + b"a" * http.RequestHeadReader.max_line_bytes + b" HTTP/1.1\r\n"
    status, _, _ = exchange(line + b"Host: d\r\n\r\n")
    assert status == "HTTP/1.0 400 N/A"


def test_too_many_header_lines_is_400():
    lines = b"".join(b"X-%d: y\r\n" % i for i in range(http.RequestHeadReader.max_head_lines))
    status, _, _ = exchange(b"GET /x HTTP/1.1\r\n" + lines + b"\r\n")
    assert status == "HTTP/1.0 400 N/A"


def test_a_method_the_path_does_not_take_is_405():
    status, _, _ = exchange(b"DELETE /x HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == "HTTP/1.0 405 N/A"


def test_an_unknown_path_is_404():
    status, _, _ = exchange(b"GET /nowhere HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == "HTTP/1.0 404 N/A"


def test_a_body_over_the_limit_is_413_and_left_unread():
    n = http.LeanRequest.max_content_length + 1
    status, _, _ = exchange(b"POST /form HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n" % n
                            + b"a" * n)
    assert status == "HTTP/1.0 413 N/A"


def test_a_form_body_within_the_limit_is_read():
    body = b"a=b%20c"
    status, _, answer = exchange(b"POST /form HTTP/1.1\r\nHost: d\r\nContent-Type: "
                                 b"application/x-www-form-urlencoded\r\nContent-Length: %d"
                                 b"\r\n\r\n" % len(body) + body)
    assert status == "HTTP/1.0 200 OK" and answer == b"b c"


def test_a_plain_get_of_a_websocket_path_is_426():
    status, headers, body = exchange(b"GET /ws HTTP/1.1\r\nHost: d\r\n\r\n")
    assert status == "HTTP/1.0 426 Upgrade Required" and headers["upgrade"] == "websocket"


def test_a_refused_websocket_handshake_is_http_1_1_and_closes():
    status, headers, _ = exchange(b"GET /ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\n\r\n")
    assert status == "HTTP/1.1 400 N/A" and headers["connection"] == "close"


def test_a_head_not_in_before_the_deadline_is_408():
    status, _, body = exchange(b"GET /x HTTP/1.1\r\nHost: d\r\n", hang=True)
    assert status == "HTTP/1.0 408 Request Timeout"
    assert body == b"Request not complete in time\n"


def test_a_peer_that_closes_mid_head_gets_400_not_a_hang():
    status, _, _ = exchange(b"GET /x HTTP/1.1\r\nHost:")
    assert status == "HTTP/1.0 400 N/A"
