# Transport: HTTP, on microdot. The only module that imports microdot, the way
# microdot's own wsgi.py adapts it to another server: microdot finds a request's route
# (Microdot.find_route) and keeps the hooks (before_request, errorhandler), which
# App.dispatch_request runs; everything around that is done here.
#
#   reading a request head   RequestHeadReader bounds it (line, bytes, lines, time)
#                            and read_request() makes a LeanRequest of it
#   writing the answer       write_response(): the head in one write, a file body
#                            through one small buffer
#   one connection           App.exchange: one request, answered, closed; Listener:
#                            the accept loop and the bounds
#   accepting connections    Listener: its own accept loop (asyncio's poll), a cap on
#                            connections whose request is not read yet, a heap reserve
#   handing a connection on  take_connection(): a WebSocket session (websocket.py)
#                            owns the socket from then on
#
# microdot's own versions of these (Microdot.handle_request, Request.create,
# Response.write, Microdot.dispatch_request) allocate several times as much per
# request, and tools/build.py leaves them out of the build. What this module relies
# on of microdot beyond its public API is pinned by tests_host/test_microdot_contract.py:
# a microdot upgrade that changes it fails there, saying what changed.
import asyncio
import gc
import io

from microdot import Microdot, Request, Response
from microdot.microdot import HTTPException, NoCaseDict, urldecode  # noqa: F401
# (routes.py uses urldecode)

from ..compat import print_exception, ticks_diff, ticks_ms

_core = getattr(asyncio, "core", None)  # MicroPython's (not in the stubs; not on CPython)

_TEXT = {"Content-Type": "text/plain"}
_DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"  # as microdot's
_EMPTY = {}  # shared and never changed: no URL arguments, no query, no cookies


def is_coroutine(answer):
    """Whether a hook's, route's or error handler's answer is a coroutine to await (as
    microdot's invoke_handler tells it on MicroPython). Called and awaited in place,
    they cost no coroutine of invoke_handler's: one allocation fewer per hook and route
    a request runs through."""
    return hasattr(answer, "send")


def text_response(body, status, reason):
    """A plain-text answer (the error pages)."""
    return Response(body, status, _TEXT, reason=reason)


def is_upgrade(request):
    return "websocket" in request.headers.get("Upgrade", "").lower()


class StaticPath:
    """A route's path, matched by equality; or a tuple of paths that are one route (the
    WebSocket's: one entry of the route table, not one each). microdot's URLPattern
    compiles a regular expression per route on first use (1.3 KB of heap for this
    firmware's routes on the unix port), and pinsock's routes are all plain paths."""

    def __init__(self, path):
        for one in path if isinstance(path, tuple) else (path,):
            if "<" in one:
                raise ValueError("route %s has a <dynamic> segment; pinsock's routes are"
                                 " plain paths (http.StaticPath)" % one)
        self.url_pattern = path

    def match(self, path):
        pattern = self.url_pattern
        if path == pattern or (isinstance(pattern, tuple) and path in pattern):
            return _EMPTY
        return None


class App(Microdot):
    """microdot's router with every route matched by StaticPath, and the exchange that
    serves one connection through it. Routes are added with microdot's decorators
    (get, post, route, before_request, errorhandler). With `scheme` "https" the
    connections are TLS (the handshake happens at the first read, within
    request_timeout_ms)."""

    #: A plain HTTP exchange, head to answer, must be over within this many ms. A
    #: client whose request is not in by then (head and body) gets 408 and is dropped.
    #: (A WebSocket session is handed to a task of its own before then.) Listener.sweep
    #: checks once a second.
    request_timeout_ms = 10000
    #: Bytes of a file body (the page) read and written at a time, one buffer per
    #: answer: a small piece fits a hole of a fragmented heap where 1 KiB may not.
    file_piece_bytes = 256
    scheme = "http"  # "https" for an app served over TLS (boot/startup.py)
    #: The handler of a GET or HEAD whose path no route has (routes.py: the user's
    #: pages), run after the before_request hooks as a route is; None: 404 without them.
    fallback = None  # type: object

    async def exchange(self, reader, writer):
        """One request on a connection whose head `reader` (a RequestHeadReader)
        bounds: read, routed, answered. A MemoryError or OSError is the Listener's."""
        try:
            request = await read_request(reader, writer, self.scheme)
        except ValueError:  # malformed, too long, not UTF-8, cut short: answered 400
            request = None
        response = await self.dispatch_request(request)
        if response is not Response.already_handled:
            await write_response(response, writer, request is not None and is_upgrade(request))

    def route(self, url_pattern, methods=None):
        def decorated(handler):
            # The tuple microdot's find_route unpacks: methods, pattern, handler,
            # url prefix, sub-application.
            self.url_map.append(([m.upper() for m in (methods or ["GET"])],
                                 StaticPath(url_pattern), handler, "", None))
            return handler

        return decorated

    async def dispatch_request(self, req):
        """The answer to a request (None: it could not be read, 400): microdot's
        dispatch_request for what the firmware's routes use of it, which the build
        leaves out (2.3 KB of heap on the unix port). The before_request hooks and the
        route return a Response, or anything microdot would make one of; a hook that
        returns one answers in the route's stead. errorhandler(status) handlers answer
        400, 404, 405, 413 and 500, and an HTTPException's status. Not kept: sub-apps,
        after_request handlers (not in the build either), handlers for exception
        classes. A MemoryError goes to the caller (Listener: 503)."""
        if req is None:
            return await self._error(None, 400, "Bad request")
        if req.content_length > req.max_content_length and req.path != "/ota":
            return await self._error(req, 413, "Payload too large")
        route = self.find_route(req)[0]  # (url prefix and sub-app: none here)
        if route == 404 and self.fallback is not None and req.method in ("GET", "HEAD"):
            route = self.fallback
        try:
            if callable(route):
                req.route = route
                res = None
                for hook in self.before_request_handlers:
                    res = hook(req)
                    if is_coroutine(res):
                        res = await res  # pyright: ignore[reportGeneralTypeIssues] (is_coroutine said so)
                    if res:
                        break
                if res is None:
                    res = route(req)
                    if is_coroutine(res):
                        res = await res  # pyright: ignore[reportGeneralTypeIssues] (is_coroutine said so)
            elif isinstance(route, dict):  # OPTIONS: the Allow header
                res = Response(headers=route)
            else:  # 404 or 405
                res = await self._error(req, route, "Not found")
        except HTTPException as exc:
            res = await self._error(req, exc.status_code, exc.reason)
        except MemoryError:
            raise
        except Exception as exc:  # a bug
            print_exception(exc)
            res = await self._error(req, 500, "Internal server error")
        if not isinstance(res, Response):  # a tuple, a text, a dict...
            res = Response(*res) if isinstance(res, tuple) else Response(res)
        res.is_head = req.method == "HEAD"
        return res

    async def _error(self, req, status, reason):
        handler = self.error_handlers.get(status)
        if handler is None:
            return Response(reason, status)
        res = handler(req)  # pyright: ignore[reportCallIssue] (errorhandler's own signature)
        return (await res) if is_coroutine(res) else res


class RequestHeadReader:
    """A connection's reader that bounds the request head: line, headers and time.

    asyncio's readline reads a line whole however long it is, and nothing counts the
    lines: a client could fill the heap with one endless line or many small headers.
    Past a limit the read fails with ValueError (answered 400); the Listener bounds the
    time. After the head, reads go straight to the stream: the WebSocket pays nothing.
    """

    #: Longest request line or header line, in bytes (microdot's Request.max_readline).
    #: A longer one is answered 400.
    max_line_bytes = 2048
    #: Request line plus headers, in bytes. A browser's request is well under 1 KiB.
    max_head_bytes = 4096
    #: Header lines, the request line and the blank line included.
    max_head_lines = 32
    #: Past a limit, or when the answer comes before a body is read (413), what has
    #: arrived within skip_wait_ms is read (at most max_skipped_bytes) and thrown away,
    #: so that the answer is not lost to the reset that closing a socket with unread
    #: input causes.
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
        # What the Listener keeps of the connection, all set here: setting an attribute
        # an object does not have yet can allocate, and these change when the heap
        # may be full.
        self.since = ticks_ms()  # accepted
        self.task = None  # the task serving the connection
        self.started = False  # that task has begun
        self.complete = False  # the request is read whole: no longer pending
        self.timed_out = False  # ended over time (answered 408 if not complete)

    async def drain_unread(self):
        """Read and throw away what the client sent that was not read (a body left
        unread, the rest of a refused head): what has arrived within skip_wait_ms, at
        most max_skipped_bytes. Closing a socket with unread input resets the
        connection, and the reset can overtake the answer (a 413, a 400)."""
        await asyncio.sleep(self.skip_wait_ms / 1000)  # (sleep_ms: MicroPython only)
        budget = self.max_skipped_bytes
        sock = self._sock
        while budget > 0:
            try:
                chunk = sock.read(min(budget, 512))  # None when nothing has arrived
            except OSError:
                return
            if not chunk:
                return
            budget -= len(chunk)

    async def readline(self):
        limit = min(self.bytes_left, self.max_line_bytes)
        # At most limit + 1 bytes of the line, read here: a coroutine per line, and a
        # wait (asyncio's read(0), a coroutine more) only when no input has arrived.
        line = b""
        sock = self._sock
        while True:
            # Pieces grow with the line: a long line is copied a few times, not once
            # per line_piece (a 2 KiB line: 4 KB allocated, not 16).
            part = sock.readline(min(limit + 1 - len(line), max(len(line), self.line_piece)))
            if part is None:  # nothing yet (the Listener bounds the wait)
                await self.read(0)
                continue
            line += part
            if not part or line[-1] == 10 or len(line) > limit:  # end, newline, limit
                break
        self.bytes_left -= len(line)
        self.lines_left -= 1
        if self.bytes_left < 0 or self.lines_left < 0 or len(line) > limit:
            await self.drain_unread()
            raise ValueError("request head too long")
        if not line.endswith(b"\n"):
            raise ValueError("request head cut short")
        if line in (b"\r\n", b"\n"):
            self.done = True
        return line


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
    #: (POST /ota, an update, reads its body itself, streamed, after the before_request
    #: checks: transport/ota.py; App.dispatch_request lets it through.)
    #: Query parameters parsed into `args`, at most (a route that reads `args`, such as
    #: /log's since, needs one or two). A query with more is answered 400: 1,000 of
    #: them in a 2 KiB request line made a dictionary a 128 KiB heap had no room for.
    max_query_args = 16
    scheme = "http"  # "https" for a request that came over TLS
    query_string = None
    _args = None  # `args`, parsed when a route first reads it
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
        content_type = headers.get("Content-Type")
        if content_type is not None:
            self.content_type = content_type
        cookie = headers.get("Cookie")
        if cookie is not None:
            cookies = self.cookies = {}
            for pair in cookie.split(";"):
                name, _, value = pair.strip().partition("=")
                cookies[name] = value

    @property
    def args(self):  # pyright: ignore[reportIncompatibleVariableOverride]
        """The query's parameters (a MultiDict), parsed on first use: /action.cgi reads
        the query string itself, and answers a bad %-escape in it with its JSON error.
        Too many parameters or a bad escape here is a 400."""
        args = self._args
        if args is None:
            query = self.query_string
            if not query:
                return _EMPTY
            if query.count("&") >= self.max_query_args:
                raise HTTPException(400, "too many query parameters")
            try:
                args = self._parse_urlencoded(query)  # pyright: ignore[reportAttributeAccessIssue]
            except (ValueError, UnicodeError):  # a bad %-escape, bytes that are not UTF-8
                raise HTTPException(400, "bad query")
            self._args = args
        return args


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
        name = name.strip()
        if name in headers and name.lower() == "content-length":
            # Two lengths: which one the body has is anyone's guess (request smuggling).
            raise ValueError("two Content-Length headers")
        headers[name] = value.strip()
    if "Transfer-Encoding" in headers:
        # Chunked bodies are not read here; a length is (RFC 9112 6.1: 400 will do).
        raise ValueError("Transfer-Encoding")
    request = LeanRequest(method, url, headers, (reader, writer), scheme)
    length = headers.get("Content-Length")
    if length is not None:
        if not length.isdigit():  # no sign, no spaces, no "0x"
            raise ValueError("bad Content-Length")
        length = int(length)
    if length:
        # A body over the limit is left unread: dispatch_request answers 413.
        request.content_length = length
        if length > LeanRequest.max_content_length:
            return request
        try:
            request._body = await reader.readexactly(length)
        except EOFError:
            raise ValueError("body cut short")
    reader.complete = True  # no longer pending (Listener)
    return request


async def write_response(response, writer, to_upgrade=False):
    """Write microdot's Response: the head in one piece, then the body, which is
    bytes, a file (the page: read into one buffer of App.file_piece_bytes)
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
            # A piece the socket takes whole allocates nothing: no slice of the buffer
            # but the last, and a drain() (a new coroutine each call) only for what
            # the socket left in the stream (copied there).
            buf = bytearray(App.file_piece_bytes)
            while True:
                n = body.readinto(buf)
                if not n:
                    break
                writer.write(buf if n == len(buf) else memoryview(buf)[:n])
                if getattr(writer, "out_buf", True):
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
                 b"Request not complete in time\n")
# Made at import: when the heap is short, this answer needs no allocation of its own.
_UNAVAILABLE = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Retry-After: 1\r\n\r\nOut of memory; try again\n")

# What clients cause (a reset mid-handshake, a request the heap had no room for) is
# said on the console in one line per cause at most every NOISE_INTERVAL_MS: a flood
# of 1,000 resets in 10 s is one line, not 1,000 tracebacks. Causes are a few fixed
# texts and exception names.
NOISE_INTERVAL_MS = 10000
_noise = {}  # type: dict # cause -> ticks_ms of its last line
# Heap held back while all is well, freed when an allocation fails so that the device
# can still answer (a 503, a close frame, the owner's next connection) instead of
# failing again at once; re-made at the next connection once the heap has room for it
# twice over.
RESERVE_BYTES = 256
_reserve = [bytearray(RESERVE_BYTES)]  # type: list


def noise(cause, out_of_memory=False):
    """One console line for `cause`, rate limited. out_of_memory: a MemoryError was
    survived, and the reserve is freed first."""
    if out_of_memory:
        _reserve[0] = None
        gc.collect()
    now = ticks_ms()
    last = _noise.get(cause)
    if last is None or ticks_diff(now, last) >= NOISE_INTERVAL_MS:
        _noise[cause] = now
        print("http: " + cause)


def _readable(sock):
    # `await`: until the socket has input (a listening socket: a connection to accept),
    # in asyncio's own poll, as its streams wait (asyncio's stream.py).
    yield _core._io_queue.queue_read(sock)


# Every Listener, for lifecycle.keep_house to sweep.
listeners = []


class Listener:
    """Accepts the connections of one port and serves each in a task of its own:
    handler(reader, writer), with its request bounded (RequestHeadReader) and its time
    too (App.request_timeout_ms, through sweep()).

    It replaces asyncio's start_server, whose accept loop makes the stream and the task
    for a new connection outside any try: a MemoryError there ended the loop, and the
    firmware with it (on a board, a reboot). Here nothing a client does ends the loop,
    and what clients hold at once is bounded: a connection holds a slot from its accept
    until its answer is written or it is handed over (a WebSocket session)."""

    #: Connections whose request (head and body) is not read whole yet, held at once.
    #: A newcomer beyond closes the one of them that came first: a slowloris holding
    #: them loses them to whoever connects next, while a request sent whole (a
    #: browser's, the console's) is read long before max_pending newer connections
    #: arrive. Each costs about 2.3 KB of heap on the unix port until it is read or
    #: dropped (docs/SECURITY.md has the figures).
    max_pending = 3
    #: Connections served at once, pending or being answered; a newcomer beyond closes
    #: the oldest. A browser loads the page, /board and /log at once.
    max_connections = 6
    #: Connections the kernel queues before they are accepted (listen's backlog).
    backlog = 8
    #: Bytes of unsent data the TCP stack holds for one connection (SO_SNDBUF), or 0
    #: for the stack's own. A chip's lwIP holds about 5.7 KB (ESP32's TCP_SND_BUF); a
    #: Linux socket grows to megabytes, which would let a client that never reads take
    #: thousands of frames before its outbox (transport/hub.py) fills. The simulator
    #: sets its board's figure. Board config: tcp_send_buffer.
    send_buffer_bytes = 0

    def __init__(self, handler, sock=None, ssl=None):
        # `sock` listens already (boot/startup.py makes it); without one, nothing is
        # accepted (the unit tests hand it connections themselves).
        self.handler = handler
        self.ssl = ssl
        self.heads = [None] * self.max_connections  # type: list # RequestHeadReaders
        if sock is not None:
            listeners.append(self)
            self.task = asyncio.create_task(self._accept_loop(sock))  # pyright: ignore

    async def _accept_loop(self, sock):
        heads = self.heads
        while True:
            try:
                await _readable(sock)  # pyright: ignore[reportGeneralTypeIssues]
            except MemoryError:  # no room in asyncio's poll: again in a moment
                noise("out of memory waiting for a connection", True)
                _core._io_queue.map.pop(id(sock), None)  # a half-made entry, if any
                await asyncio.sleep_ms(10)
                continue
            try:
                if _reserve[0] is None and gc.mem_free() > 2 * RESERVE_BYTES:
                    _reserve[0] = bytearray(RESERVE_BYTES)
                conn, _ = sock.accept()
            except Exception as exc:  # MemoryError; OSError: a failed accept
                if isinstance(exc, MemoryError):
                    noise("out of memory accepting a connection", True)
                continue
            try:
                # A free slot; else the slot of the pending connection that came first,
                # or of the oldest connection when all are being answered, closed.
                free = oldest = first = -1
                pending = 0
                for slot in range(len(heads)):
                    head = heads[slot]
                    if head is None:
                        free = slot
                        continue
                    if not head.complete:
                        pending += 1
                        if first < 0 or ticks_diff(head.since, heads[first].since) < 0:
                            first = slot
                    if oldest < 0 or ticks_diff(head.since, heads[oldest].since) < 0:
                        oldest = slot
                if pending >= self.max_pending or free < 0:
                    free = first if pending >= self.max_pending else oldest
                    self.close(free)
                    noise("%d connections pending: closed the longest waiting" % pending)
                if self.ssl is not None:
                    conn = self.ssl.wrap_socket(conn, server_side=True,
                                                do_handshake_on_connect=False)
                conn.setblocking(False)
                stream = _Stream(conn, _EMPTY)
                head = RequestHeadReader(stream)
                head.task = asyncio.create_task(  # pyright: ignore[reportAttributeAccessIssue]
                    self._serve(head, stream))
                heads[free] = head
            except Exception as exc:  # MemoryError; OSError: the TLS wrap
                conn.close()
                noise("accept failed: " + type(exc).__name__, isinstance(exc, MemoryError))

    def close(self, slot, timed_out=False):
        """End the connection in `slot` (its task's finally closes the socket)."""
        head = self.heads[slot]
        self.heads[slot] = None
        if head is None:
            return
        head.timed_out = timed_out
        head.task.cancel()  # pyright: ignore[reportOptionalMemberAccess]
        if not head.started:  # it ends at its start: no finally closes the socket
            head._sock.close()

    def sweep(self, now):
        """Once a second (lifecycle.keep_house): end the connections over time."""
        heads = self.heads
        for slot in range(len(heads)):
            head = heads[slot]
            if head is not None and \
                    ticks_diff(now, head.since) > App.request_timeout_ms:
                self.close(slot, True)

    async def _serve(self, head, stream):
        head.started = True
        try:
            try:
                await self.handler(head, stream)
                if not head.complete:  # answered without reading it all (413, 400)
                    head.complete = True  # no longer pending
                    await head.drain_unread()
            except asyncio.CancelledError:  # closed for a newcomer, or over time
                if head.timed_out and not head.complete:  # the request did not come
                    await stream.awrite(_HEAD_TIMEOUT)
        except MemoryError:
            noise("out of memory serving a request", True)
            try:
                await stream.awrite(_UNAVAILABLE)
            except Exception:
                pass
        except OSError:  # the peer went away
            pass
        except Exception as exc:  # one bad connection never stops the server
            noise("connection failed: " + type(exc).__name__)
        finally:
            heads = self.heads
            for slot in range(len(heads)):
                if heads[slot] is head:
                    heads[slot] = None
            stream.s.close()  # not the socket once a session has it (take_connection)


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


# Stands in for the socket in the stream the server keeps, once a session owns it:
# anything whose close() harms nothing (a class of its own costs 0.5 KB of heap).
_HANDED_OVER = io.BytesIO()


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
