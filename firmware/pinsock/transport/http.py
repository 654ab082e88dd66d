# Transport: HTTP, on microdot. The only module that imports microdot, the way
# microdot's own wsgi.py adapts it to another server: microdot routes a request and
# runs its hooks (Microdot.dispatch_request); everything around that is done here.
#
#   reading a request head   RequestHeadReader bounds it (line, bytes, lines, time)
#                            and read_request() makes a LeanRequest of it
#   writing the answer       write_response(): the head in one write, a file body
#                            through one small buffer
#   one connection           HttpServer: one request, answered, closed
#   handing a connection on  take_connection(): a WebSocket session (websocket.py)
#                            owns the socket from then on
#
# microdot's own versions of these (Microdot.handle_request, Request.create,
# Response.write) allocate several times as much per request, and tools/build.py
# leaves them out of the build. What this module relies on of microdot beyond its
# public API is pinned by tests_host/test_microdot_contract.py: a microdot upgrade
# that changes it fails there, saying what changed.
import asyncio

from microdot import Microdot, Request, Response
from microdot.microdot import NoCaseDict, urldecode  # noqa: F401 (routes.py uses it)

from ..compat import print_exception

_TEXT = {"Content-Type": "text/plain"}
_DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"  # as microdot's
_EMPTY = {}  # shared and never changed: no URL arguments, no query, no cookies


def text_response(body, status, reason):
    """A plain-text answer (the error pages)."""
    return Response(body, status, _TEXT, reason=reason)


def is_upgrade(request):
    return "websocket" in request.headers.get("Upgrade", "").lower()


class StaticPath:
    """A route's path, matched by equality. microdot's URLPattern compiles a regular
    expression per route on first use (1.3 KB of heap for this firmware's routes on
    the unix port), and pinsock's routes are all plain paths."""

    def __init__(self, path):
        if "<" in path:
            raise ValueError("route %s has a <dynamic> segment; pinsock's routes are"
                             " plain paths (http.StaticPath)" % path)
        self.url_pattern = path

    def match(self, path):
        return _EMPTY if path == self.url_pattern else None


class App(Microdot):
    """microdot's router with every route matched by StaticPath. Routes are added with
    microdot's decorators (get, post, route, before_request, errorhandler)."""

    def route(self, url_pattern, methods=None):
        def decorated(handler):
            # The tuple microdot's find_route unpacks: methods, pattern, handler,
            # url prefix, sub-application.
            self.url_map.append(([m.upper() for m in (methods or ["GET"])],
                                 StaticPath(url_pattern), handler, "", None))
            return handler

        return decorated


class RequestHeadReader:
    """A connection's reader that bounds the request head: line, headers and time.

    asyncio's readline reads a line whole however long it is, and nothing counts the
    lines: a client could fill the heap with one endless line or many small headers.
    Past a limit the read fails with ValueError (answered 400); HttpServer bounds the
    time. After the head, reads go straight to the stream: the WebSocket pays nothing.
    """

    #: Longest request line or header line, in bytes (microdot's Request.max_readline).
    #: A longer one is answered 400.
    max_line_bytes = 2048
    #: Request line plus headers, in bytes. A browser's request is well under 1 KiB.
    max_head_bytes = 4096
    #: Header lines, the request line and the blank line included.
    max_head_lines = 32
    #: Past a limit, the rest of the head that has arrived within skip_wait_ms is read
    #: (at most max_skipped_bytes) and thrown away, so that the 400 is not lost to the
    #: reset that closing a socket with unread input causes.
    max_skipped_bytes = 16384
    skip_wait_ms = 300
    #: Bytes read in one go while reading a line: readline(n) allocates n bytes first,
    #: and a small piece fits a fragmented heap where 2 KiB whole may not.
    line_piece = 128

    def __init__(self, reader):
        self._sock = reader.s  # asyncio's Stream wraps the socket as `s`
        self.read = reader.read
        self.readexactly = reader.readexactly
        self.readinto = reader.readinto
        self.bytes_left = self.max_head_bytes
        self.lines_left = self.max_head_lines
        self.done = False  # the blank line that ends the head has been read

    async def readline(self):
        limit = min(self.bytes_left, self.max_line_bytes)
        line = await self._line(limit + 1)
        self.bytes_left -= len(line)
        self.lines_left -= 1
        if self.bytes_left < 0 or self.lines_left < 0 or len(line) > limit:
            await self._skip_head(line)
            raise ValueError("request head too long")
        if not line.endswith(b"\n"):
            raise ValueError("request head cut short")
        if line in (b"\r\n", b"\n"):
            self.done = True
        return line

    async def _line(self, limit):
        # Reads at most `limit` bytes of the line.
        line = b""
        while True:
            await self.read(0)  # until there is input (HttpServer bounds the wait)
            part = self._sock.readline(min(limit - len(line), self.line_piece))
            if part is None:  # nothing after all
                continue
            line += part
            if not part or line[-1] == 10 or len(line) >= limit:  # end, newline, limit
                return line

    async def _skip_head(self, line):
        # A client that sent its request whole has sent the rest already.
        await asyncio.sleep(self.skip_wait_ms / 1000)  # (sleep_ms is MicroPython only)
        budget = self.max_skipped_bytes
        while line not in (b"\r\n", b"\n", b"") and budget > 0:
            try:
                line = self._sock.readline(512)  # what has arrived; None when nothing
            except OSError:
                return
            if line is None:
                return
            budget -= len(line)


class LeanRequest(Request):
    """microdot's Request holding only what a request sets; the rest are defaults of
    the class. An object's attributes live in one table that grows as they are set:
    with microdot's 25, a 464-byte block per request, which was the allocation that
    failed first in a tight, busy heap. These make 9 to 13 (160 to 272 bytes).

    Not kept: app, client_addr, url, http_version (nothing here reads them) and what
    serves the parts of microdot the build leaves out (json, files, stream)."""

    #: Longest request body, in bytes: the login form is the only one. A longer one is
    #: left unread and answered 413 (microdot's dispatch_request checks it).
    max_content_length = 1024
    scheme = "http"  # "https" for a request that came over TLS
    query_string = None
    args = _EMPTY  # a MultiDict when there is a query string
    cookies = _EMPTY  # a dict when there is a Cookie header
    content_length = 0
    content_type = None
    _body = b""
    _form = None
    after_request_handlers = []  # shared: Request.after_request is not in the build
    # microdot's dispatch_request sets it (url_prefix, route) on every request it routes,
    # but reads it first when it answers 413.
    subapp = None  # pyright: ignore[reportAssignmentType]

    def __init__(self, method, url, headers, sock, scheme):
        self.method = method
        self.headers = headers
        self.sock = sock  # (reader, writer): take_connection() takes it over
        self.g = Request.G()  # per-request state (/action.cgi's triggers)
        if scheme != "http":
            self.scheme = scheme
        path, query, query_string = url.partition("?")
        self.path = path
        if query:
            self.query_string = query_string
            self.args = self._parse_urlencoded(query_string)  # pyright: ignore[reportAttributeAccessIssue]
        content_type = headers.get("Content-Type")
        if content_type is not None:
            self.content_type = content_type
        cookie = headers.get("Cookie")
        if cookie is not None:
            cookies = self.cookies = {}
            for pair in cookie.split(";"):
                name, _, value = pair.strip().partition("=")
                cookies[name] = value


async def read_request(reader, writer, scheme="http"):
    """A LeanRequest for the head `reader` (a RequestHeadReader) delivers, with its body
    when it has one of at most LeanRequest.max_content_length bytes. Raises ValueError
    when the head is malformed or over a limit (the answer is 400)."""
    method, url, version = (await reader.readline()).decode().split()
    if not version.startswith("HTTP/"):
        raise ValueError("not HTTP")
    headers = NoCaseDict()
    while True:
        line = await reader.readline()
        if reader.done:  # the blank line that ends the head
            break
        name, colon, value = line.decode().partition(":")
        if not colon:
            raise ValueError("header line without a colon")
        headers[name.strip()] = value.strip()
    request = LeanRequest(method, url, headers, (reader, writer), scheme)
    length = int(headers.get("Content-Length", 0))
    if length < 0:
        raise ValueError("negative Content-Length")
    if length:
        # A body over the limit is left unread: dispatch_request answers 413.
        request.content_length = length
        if length <= LeanRequest.max_content_length:
            request._body = await reader.readexactly(length)
    return request


async def write_response(response, writer, to_upgrade=False):
    """Write microdot's Response: the head in one piece, then the body, which is
    bytes, a file (send_file: read into one buffer of HttpServer.file_piece_bytes)
    or an iterator of str or bytes pieces (a generator).

    Answers are HTTP/1.0, and the connection closes after them. One that refuses a
    WebSocket handshake (`to_upgrade`: 400, 401, 403...) is HTTP/1.1 with
    Connection: close, the only answer WebSocket clients read the status of."""
    body = response.body
    headers = response.headers
    status = response.status_code
    reason = response.reason
    if reason is None:
        reason = "OK" if status == 200 else "N/A"
    head = ["HTTP/1.%d %d %s\r\n" % (to_upgrade, status, reason)]
    if to_upgrade:
        head.append("Connection: close\r\n")
    for name, value in headers.items():
        if isinstance(value, list):  # e.g. two Set-Cookie headers
            for one in value:
                head.append("%s: %s\r\n" % (name, one))
        else:
            head.append("%s: %s\r\n" % (name, value))
    if isinstance(body, bytes) and "Content-Length" not in headers:
        head.append("Content-Length: %d\r\n" % len(body))
    if "Content-Type" not in headers:
        head.append("Content-Type: " + _DEFAULT_CONTENT_TYPE + "\r\n")
    head.append("\r\n")
    writer.write("".join(head).encode())
    head = None
    try:
        if response.is_head:
            pass  # the head only
        elif isinstance(body, bytes):
            writer.write(body)
        elif hasattr(body, "readinto"):
            buf = bytearray(HttpServer.file_piece_bytes)
            view = memoryview(buf)
            while True:
                n = body.readinto(buf)
                if not n:
                    break
                writer.write(view[:n])  # what the socket does not take is copied
                await writer.drain()
        else:
            for piece in body:
                writer.write(piece.encode() if isinstance(piece, str) else piece)
                await writer.drain()  # and lets the other tasks run
        await writer.drain()
    finally:
        close = getattr(body, "close", None)  # a file, a generator
        if close is not None:
            close()


_HEAD_TIMEOUT = (b"HTTP/1.0 408 Request Timeout\r\nContent-Type: text/plain\r\n\r\n"
                 b"Request head not complete in time\n")


class HttpServer:
    """Serves one port: each connection carries one request, routed through an App,
    answered and closed. With `scheme` "https" the connections are TLS (the handshake
    happens at the first read, within request_timeout_ms)."""

    #: A plain HTTP exchange, head to answer, must be over within this many ms. A
    #: client whose request head is not in by then gets 408 and is dropped. (A
    #: WebSocket session is handed to a task of its own before then.)
    request_timeout_ms = 10000
    #: Bytes of a file body (the page) read and written at a time, one buffer per
    #: answer: a small piece fits a hole of a fragmented heap where 1 KiB may not.
    file_piece_bytes = 256

    def __init__(self, app, scheme="http"):
        self.app = app
        self.scheme = scheme

    async def exchange(self, reader, writer):
        """One request on a connection whose head `reader` (a RequestHeadReader)
        bounds: read, routed, answered."""
        app = self.app
        try:
            request = await read_request(reader, writer, self.scheme)
        except ValueError:  # malformed, too long, not UTF-8, cut short: answered 400
            request = None
        except OSError:  # the peer reset the connection
            return
        response = await app.dispatch_request(request)
        if response is not Response.already_handled:
            try:
                await write_response(response, writer,
                                     request is not None and is_upgrade(request))
            except OSError:  # the peer went away
                pass


async def serve(exchange, host, port, ssl=None):
    """Listen on host:port and give every connection to exchange(reader, writer) through
    bounded(). Returns the asyncio server once it accepts."""

    def handle(reader, writer):
        return bounded(exchange, reader, writer)  # the coroutine asyncio runs as the task

    if ssl is None:
        return await asyncio.start_server(handle, host, port)
    return await asyncio.start_server(handle, host, port, ssl=ssl)


async def bounded(exchange, reader, writer):
    """One connection: exchange(head, writer) with its request head bounded
    (RequestHeadReader over `reader`) and its time too (HttpServer.request_timeout_ms:
    a head not in by then is answered 408), then the connection closed."""
    head = RequestHeadReader(reader)
    try:
        # One deadline for the exchange: cheaper than one per header line.
        await asyncio.wait_for(exchange(head, writer), HttpServer.request_timeout_ms / 1000)
    except asyncio.TimeoutError:
        if not head.done:  # the head did not come in time
            try:
                await writer.awrite(_HEAD_TIMEOUT)
            except Exception:
                pass
    except Exception as exc:  # one bad connection never stops the server
        print_exception(exc)
    await close_quietly(writer)


async def close_quietly(writer):
    try:
        await writer.aclose()  # on MicroPython, close() alone leaves the socket open
    except Exception:
        pass


# --- a connection handed on (a WebSocket session) -----------------------------------

# MicroPython's asyncio stream: reader and writer in one, over the socket `s`. (The
# type checker's stubs describe CPython's StreamWriter, which is another thing.)
_Stream = getattr(asyncio, "StreamWriter")  # noqa: B009 (hides it from the stubs)


class SessionStream(_Stream):
    """The stream a session owns once take_connection() has taken it over. Its close()
    closes the socket now (asyncio's does nothing until aclose()): a reader or writer
    blocked on it wakes with an error."""

    def close(self):
        self.s.close()

    def write_now(self, frame):
        # asyncio's write() hands the socket what it takes and keeps the rest in
        # out_buf for drain(). True when nothing was left (nothing was allocated
        # either). Called only while no drain() is running (hub.Client).
        self.write(frame)
        return not self.out_buf


class _HandedOver:
    # Stands in for the socket in the stream the server keeps, once a session owns it.
    def close(self):
        pass


_HANDED_OVER = _HandedOver()


def take_connection(request):
    """Take the connection away from the HTTP exchange, once the answer that hands it
    on (a 101 Switching Protocols head) is written; returns a SessionStream of its own.

    The route then returns Response.already_handled at once: the request, its
    headers and the coroutines that served it are freed instead of living as long as
    the session, and the server's closing the stream it knows no longer closes the
    socket."""
    stream = request.sock[1]
    session = SessionStream(stream.s, stream.e)
    stream.s = _HANDED_OVER
    return session


already_handled = Response.already_handled  # a route's answer after take_connection()
