# Transport: HTTP routes on microdot, and the WebSocket connection loop.
#
# Thin on purpose. It turns bytes into text messages and back; what a message means
# is the device's business (device.py). microdot routes HTTP requests; reading a
# request and writing its answer are done here (http_handler: a fraction of
# microdot's allocations), and so are the upgrade handshake and the frames: the
# firmware must refuse bad frames with the right close code, which microdot's reader
# cannot, and a session must not keep microdot's request alive (see upgrade()).
import asyncio
import gc

from microdot import Microdot, Request, Response
from microdot.microdot import NoCaseDict, urldecode

from . import wsframe
from .commands import E_BAD_CHAR, error_reply, is_error
from .compat import print_exception, ticks_ms
from .hub import Client

PAGE_FILE = "www/index.html.gz"
PAGE_WINDOW_BITS = 10
# microdot reads a file it sends in pieces this big, each a new allocation: a small
# piece fits a hole of a fragmented heap where 1 KiB (microdot's default) may not.
Response.send_file_buffer_size = 256
_JSON = {"Content-Type": "application/json"}
_TEXT = {"Content-Type": "text/plain"}
_BOARD_JSON = {"Content-Type": "application/json; charset=UTF-8"}  # as microdot's for a dict
_LOGIN_PATHS = ("/login", "/logout")  # login.py; cross-site POSTs to them are refused too


class WebSocketService:
    # Longest client frame payload accepted; a longer one is refused with close 1009.
    max_frame_len = 256

    def __init__(self, device):
        self.device = device

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
        if stream is None:
            return _bad_handshake()
        asyncio.create_task(self.session(stream))
        return Response.already_handled

    async def session(self, stream):
        """One WebSocket session, in a task of its own, until the connection ends."""
        # The request that opened it is garbage now: collect it first, so what the
        # session keeps (the client, its buffers) is allocated low in the heap and
        # not in the middle of the space the request leaves free.
        gc.collect()
        client = Client(stream, spawn=asyncio.create_task)
        device = self.device
        device.connected(client)
        try:
            await self._read_messages(stream, client)
        except wsframe.FrameError as exc:
            client.close(exc.code, exc.reason)
        except (EOFError, OSError):  # EOF, reset, or the socket closed under us
            client.peer_has_closed()
            client.hang_up()
        except Exception as exc:  # MemoryError, or a bug: logged, and the client told
            print_exception(exc)
            client.close(wsframe.CLOSE_INTERNAL_ERROR, "internal error")
        finally:
            device.disconnected(client)
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
        received = self.device.received
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
                try:
                    text = bytes(view[:n]).decode()
                except UnicodeError:
                    raise wsframe.FrameError(wsframe.CLOSE_BAD_DATA, "invalid UTF-8")
                if not client.closing:
                    received(client, text)
            elif opcode == wsframe.OP_PING:
                client.push(wsframe.encode(wsframe.OP_PONG, bytes(view[:n])))
            elif opcode == wsframe.OP_CLOSE:
                client.peer_has_closed()
                client.close(*_close_reply(view, n))
                return
            # OP_PONG: nothing to do


def is_upgrade(request):
    return "websocket" in request.headers.get("Upgrade", "").lower()


_SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: ")


async def upgrade(request):
    """Answer the WebSocket handshake and take the connection away from microdot.

    Returns a stream of its own for the session (its close() closes the socket), or
    None when the handshake lacks what RFC 6455 requires (the caller answers 400).
    The route then returns at once: microdot's request, its headers and the
    coroutines that served it are freed instead of living as long as the session,
    and microdot's closing the stream it knows no longer closes the socket.
    """
    headers = request.headers
    key = headers.get("Sec-WebSocket-Key")
    if not key or "upgrade" not in headers.get("Connection", "").lower():
        return None
    stream = request.sock[1]
    await stream.awrite(_SWITCHING + wsframe.accept_key(key) + b"\r\n\r\n")
    session = _SessionStream(stream.s, stream.e)
    stream.s = _HANDED_OVER
    return session


# MicroPython's asyncio stream: reader and writer in one, over the socket `s`. (The
# type checker's stubs describe CPython's StreamWriter, which is another thing.)
_Stream = getattr(asyncio, "StreamWriter")  # noqa: B009 (hides it from the stubs)


class _SessionStream(_Stream):
    # The stream whose close() closes the socket now (asyncio's does nothing until
    # aclose()): a reader or writer blocked on it wakes with an error.
    def close(self):
        self.s.close()

    def write_now(self, frame):
        # For hub.Client: asyncio's write() hands the socket what it takes and keeps
        # the rest in out_buf for drain(). True when nothing was left (nothing was
        # allocated either). The client calls it only while no drain() is running.
        self.write(frame)
        return not self.out_buf


class _HandedOver:
    # Stands in for the socket in the stream microdot keeps, once a session owns it.
    def close(self):
        pass


_HANDED_OVER = _HandedOver()


def _bad_handshake():
    return _text("Bad request: a WebSocket handshake needs Connection: Upgrade and"
                 " Sec-WebSocket-Key\n", 400, "Bad Request")


def _text(body, status, reason):
    """A plain-text answer (the error pages)."""
    return Response(body, status, _TEXT, reason=reason)


def cross_site(request, allowed_origins):
    """True for a request a browser makes on behalf of another site's page.

    Such a page must not reach the device's WebSocket or change its pins (cross-site
    WebSocket hijacking, CSRF). A browser says where a request comes from in
    `Origin` (WebSocket handshakes and fetch) and in `Sec-Fetch-Site`. Scripts and
    the console send neither and are allowed.
    """
    headers = request.headers
    if headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = headers.get("Origin")
    if origin is None:
        return False
    if origin in allowed_origins:
        return False
    return origin.split("://", 1)[-1].rstrip("/") != headers.get("Host", "")


async def send_log(request, log, since):
    """GET /log upgraded: one message per record after `since`, then "end", then close.

    The records are sent by a task of their own, like a session (WebSocketService.serve),
    so microdot's request and the coroutines that served it are freed at once: a log
    read in flight held 6.2 KB of heap while they lived on (unix port)."""
    stream = await upgrade(request)
    if stream is None:
        return _bad_handshake()
    asyncio.create_task(_stream_log(stream, log, since))
    return Response.already_handled


async def _stream_log(stream, log, since):
    try:
        # The same deadline as any HTTP exchange; then a moment for the peer to answer
        # our close frame before we hang up.
        await asyncio.wait_for(_write_log(stream, log, since), REQUEST_TIMEOUT_MS / 1000)
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


def log_json(log, since):
    """Plain GET /log: the same messages as one JSON array, produced piece by piece."""
    yield "["
    comma = ""
    for text in log.messages(since):
        yield comma + text
        comma = ","
    yield "]"


def _close_reply(view, n):
    # The close frame we answer a peer's close frame with (RFC 6455 5.5.1, 7.4).
    if n == 0:
        return (wsframe.CLOSE_NORMAL, "")
    if n == 1:
        return (wsframe.CLOSE_PROTOCOL_ERROR, "bad close frame")
    code = (view[0] << 8) | view[1]
    if not wsframe.close_code_valid(code):
        return (wsframe.CLOSE_PROTOCOL_ERROR, "bad close code")
    try:
        bytes(view[2:n]).decode()
    except UnicodeError:
        return (wsframe.CLOSE_BAD_DATA, "invalid UTF-8")
    return (code, "")


def _page(request):
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return Response.send_file(PAGE_FILE, 200, "text/html", compressed=True, max_age=0)
    # A client that cannot take gzip gets the page inflated on the fly. The build
    # compresses with a 1 KiB window (tools/build.py PAGE_WINDOW_BITS), so inflating
    # needs 1 KiB of heap, not 32.
    import deflate

    # close=True: closing the inflater closes the file too.
    stream = deflate.DeflateIO(open(PAGE_FILE, "rb"), deflate.GZIP, PAGE_WINDOW_BITS, True)
    return Response.send_file("index.html", 200, "text/html", stream=stream, max_age=0)


# Longest request body: the login form is the only one. microdot reads a body up to
# Request.max_body_length into the heap (16 KiB by default) and answers 413 beyond
# Request.max_content_length.
MAX_BODY_BYTES = 1024


class StaticPath:
    """A route's path in microdot's url_map, matched by equality. microdot's URLPattern
    compiles a regular expression per route on first use: 1.3 KB of heap for this
    firmware's routes on the unix port, which are all plain paths."""

    def __init__(self, path):
        if "<" in path:
            raise ValueError("route %s has a <dynamic> segment; pinsock's routes are"
                             " plain paths (server.StaticPath)" % path)
        self.url_pattern = path

    def match(self, path):
        return _EMPTY if path == self.url_pattern else None


_EMPTY = {}  # shared and never changed: no URL arguments, no query, no cookies


def use_static_paths(app):
    """Swap each route's URLPattern for a StaticPath, once every route is added."""
    app.url_map = [(methods, StaticPath(pattern.url_pattern), handler, prefix, subapp)
                   for methods, pattern, handler, prefix, subapp in app.url_map]


def make_app(service, description, conf):
    """The routes; `description` is GET /board's answer (encoded once at start-up:
    it then allocates no JSON), `conf` config.json (netconf.py)."""
    Request.max_content_length = Request.max_body_length = MAX_BODY_BYTES
    app = Microdot()
    allowed_origins = conf["allowed_origins"]
    # With a password (config.json), every route but the login needs a session. The
    # login is imported only then: without a password it takes no RAM.
    gate = None
    if conf["password"] != "":
        from . import login

        gate = login.add_routes(app, conf["password"])

    @app.before_request
    async def check_request(request):
        # HTTP/1.1 requires Host, and the cross-site check compares against it.
        if "Host" not in request.headers:
            return _text("Bad request: no Host header\n", 400, "Bad Request")
        path = request.path
        if (path in ("/ws", "/INDEX", "/log") and is_upgrade(request)) or \
                path == "/action.cgi" or (path in _LOGIN_PATHS and request.method == "POST"):
            if cross_site(request, allowed_origins):
                return _text("Forbidden: cross-site request\n", 403, "Forbidden")
        if gate is not None:
            return gate(request)  # None when the request has a session, or needs none

    app.get("/")(_page)
    app.get("/ws")(service.serve)
    app.get("/INDEX")(service.serve)  # the NetBurner path scripts know

    @app.get("/board")
    async def board_info(request):
        return Response(description, 200, _BOARD_JSON)

    # The command interface over HTTP: GET /action.cgi?<command>[=<value>] answers with
    # the same JSON the WebSocket would, from the same engine; an error answers 400.
    # A request has no connection to hang triggers on: each one gets its own
    # throwaway state with every trigger off, on microdot's per-request object.
    engine = service.device.engine

    @app.get("/action.cgi")
    async def action(request):
        raw = request.query_string or ""
        try:
            text = urldecode(raw)
        except (ValueError, UnicodeError):  # a bad %-escape, or bytes that are not UTF-8
            return Response(error_reply(raw, E_BAD_CHAR), 400, _JSON, reason="Bad Request")
        state = request.g
        engine.connected(state)
        reply = engine.execute(state, text, ticks_ms())
        if is_error(reply):
            return Response(reply, 400, _JSON, reason="Bad Request")
        return Response(reply, 200, _JSON)

    # The event log (eventlog.py): records after ?since=<seq>, over a WebSocket or as
    # a JSON array.
    event_log = service.device.log

    @app.get("/log")
    async def log(request):
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return Response('{"error":"since must be an integer"}', 400, _JSON,
                            reason="Bad Request")
        if is_upgrade(request):
            return await send_log(request, event_log, since)
        return Response(log_json(event_log, since), 200, _JSON)

    @app.errorhandler(400)
    async def bad_request(request):
        # microdot could not read the request (RequestHeadReader has the limits).
        return _text("Bad request: malformed, or too long (request line %d bytes, head %d"
                     " bytes or %d lines)\n" % (Request.max_readline,
                                                 RequestHeadReader.max_head_bytes,
                                                 RequestHeadReader.max_head_lines),
                     400, "Bad Request")

    @app.errorhandler(404)
    async def not_found(request):
        return _text("Not found\n", 404, "Not Found")

    return app


class RequestHeadReader:
    """A connection's reader that bounds the request head: line, headers and time.

    microdot caps each line (Request.max_readline), but only after asyncio has read all
    of it, and not how many there are: a client could fill the heap with one endless
    line or many small headers, or hold a connection by never finishing. Past a limit
    the read fails, and microdot answers 400; serve() bounds the time. After the head,
    reads go straight to the stream: the WebSocket pays nothing.
    """

    # Request line plus headers, in bytes. A browser's request is well under 1 KiB.
    max_head_bytes = 4096
    # Header lines, the request line and the blank line included.
    max_head_lines = 32
    # Past a limit, the rest of the head that has arrived within skip_wait_ms is read
    # (at most max_skipped_bytes) and thrown away.
    max_skipped_bytes = 16384
    skip_wait_ms = 300
    # Bytes read in one go while reading a line (a browser's lines are mostly shorter).
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
        limit = min(self.bytes_left, Request.max_readline)
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
        # asyncio's Stream.readline reads to the newline however far away it is; this
        # reads at most `limit` bytes of the line.
        line = b""
        while True:
            await self.read(0)  # until there is input (serve() bounds the wait)
            # readline(n) allocates n bytes before it reads: ask for a small piece at a
            # time, not for `limit` (2 KiB that a fragmented heap may not have whole).
            part = self._sock.readline(min(limit - len(line), self.line_piece))
            if part is None:  # nothing after all
                continue
            line += part
            if not part or line[-1] == 10 or len(line) >= limit:  # end, newline, limit
                return line

    async def _skip_head(self, line):
        # Read the rest of the head, keeping none of it, so the 400 reaches the client:
        # closing a socket with unread input resets it and the answer is lost.
        # A client that sent its request whole has sent the rest already.
        await asyncio.sleep_ms(self.skip_wait_ms)
        budget = self.max_skipped_bytes
        while line not in (b"\r\n", b"\n", b"") and budget > 0:
            try:
                line = self._sock.readline(512)  # what has arrived; None when nothing
            except OSError:
                return
            if line is None:
                return
            budget -= len(line)


# --- one HTTP exchange -----------------------------------------------------------------
# microdot routes the request and runs its hooks (Microdot.dispatch_request); reading
# the head into microdot's Request and writing its Response are done here, with a
# fraction of the allocations of microdot's own (Microdot.handle_request,
# Request.create, Response.write): those awaited one write per header line, made a
# class for every response body and read each header line through three coroutines.
# Measured on the unix port, all that one request allocates from accept to close:
# GET /action.cgi?v0 13.9 KB with microdot's, 10.6 KB with these; GET / (the page)
# 40.8 KB and 16.6 KB. tools/build.py leaves microdot's out of the build.


def http_handler(app):
    """The handle_request(reader, writer) that serve() gives each connection: one
    request through the routes of `app` (a Microdot)."""

    async def handle_request(reader, writer):
        try:
            request = await read_request(reader, writer)
        except ValueError:  # malformed, too long, not UTF-8, cut short: answered 400
            request = None
        except OSError:  # the peer reset the connection
            await _close(writer)
            return
        response = await app.dispatch_request(request)
        if response is not Response.already_handled:
            try:
                await write_response(response, writer,
                                     request is not None and is_upgrade(request))
            except OSError:  # the peer went away
                pass
        await _close(writer)

    return handle_request


class LeanRequest(Request):
    """microdot's Request holding only what a request sets; the rest are defaults of
    the class. An object's attributes live in one table that grows as they are set:
    with microdot's 25, a 464-byte block per request, which was the allocation that
    failed first in a tight, busy heap. These make 9 to 13 (160 to 272 bytes).

    Not kept: app, client_addr, url, http_version (nothing here reads them) and what
    serves the parts of microdot the build leaves out (json, files, stream)."""

    scheme = "http"  # over_tls() sets "https"
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

    def __init__(self, method, url, headers, sock):
        self.method = method
        self.headers = headers
        self.sock = sock  # (reader, writer): upgrade() takes the connection over
        self.g = Request.G()  # per-request state (/action.cgi's triggers)
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


async def read_request(reader, writer):
    """A LeanRequest for the head `reader` (a RequestHeadReader) delivers, with its body
    when it has one of at most Request.max_body_length bytes. Raises ValueError when
    the head is malformed or over a limit (the answer is 400)."""
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
    request = LeanRequest(method, url, headers, (reader, writer))
    length = int(headers.get("Content-Length", 0))
    if length < 0:
        raise ValueError("negative Content-Length")
    if length:
        # A body over the limit is left unread: dispatch_request answers 413.
        request.content_length = length
        if length <= Request.max_body_length:
            request._body = await reader.readexactly(length)
    return request


_DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"  # as microdot's


async def write_response(response, writer, to_upgrade=False):
    """Write microdot's Response: the head in one piece, then the body, which is
    bytes, a file (send_file: read into one buffer of Response.send_file_buffer_size)
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
            buf = bytearray(Response.send_file_buffer_size)
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


async def serve(handle_request, host, port, ssl=None):
    """Listen on host:port and give every connection to handle_request(reader, writer)
    with its request head bounded (RequestHeadReader)."""

    async def handle(reader, writer):
        head = RequestHeadReader(reader)
        try:
            # One deadline for the exchange (a WebSocket session is handed to a task of
            # its own before it ends): cheaper than one per header line.
            await asyncio.wait_for(handle_request(head, writer), REQUEST_TIMEOUT_MS / 1000)
        except asyncio.TimeoutError:
            if not head.done:  # the head did not come in time
                try:
                    await writer.awrite(_HEAD_TIMEOUT)
                except Exception:
                    pass
            await _close(writer)
        except Exception as exc:  # one bad connection never stops the server
            print_exception(exc)
            await _close(writer)

    if ssl is None:
        return await asyncio.start_server(handle, host, port)
    return await asyncio.start_server(handle, host, port, ssl=ssl)


# A plain HTTP request's whole exchange, head to answer, must be over within this. A
# client whose request head is not in by then gets 408 and is dropped.
REQUEST_TIMEOUT_MS = 10000
_HEAD_TIMEOUT = (b"HTTP/1.0 408 Request Timeout\r\nContent-Type: text/plain\r\n\r\n"
                 b"Request head not complete in time\n")


async def _close(writer):
    try:
        await writer.aclose()  # on MicroPython, close() alone leaves the socket open
    except Exception:
        pass


def over_tls(request):
    # microdot 2.7's handle_request leaves Request.scheme at "http"; an app served over
    # TLS only makes every request of it "https" (Secure cookies). startup.start_app.
    request.scheme = "https"
