# Transport: HTTP routes on microdot, and the WebSocket connection loop.
#
# Thin on purpose. It turns bytes into text messages and back; what a message means
# is the device's business (device.py). microdot parses HTTP and does the upgrade
# handshake; frames are read here because the firmware must refuse bad ones with
# the right close code, and microdot's reader cannot.
import asyncio

from microdot import Microdot, Response
from microdot.microdot import urldecode
from microdot.websocket import websocket_upgrade

from . import wsframe
from .commands import E_BAD_CHAR, error_reply, is_error
from .compat import print_exception, ticks_ms
from .hub import Client

PAGE_FILE = "www/index.html.gz"
PAGE_WINDOW_BITS = 10
_JSON = {"Content-Type": "application/json"}


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
        await websocket_upgrade(request)
        reader, writer = request.sock
        client = Client(writer)
        writer_task = asyncio.create_task(client.run_writer())
        device = self.device
        device.connected(client)
        try:
            await self._read_messages(reader, client)
        except wsframe.FrameError as exc:
            client.close(exc.code, exc.reason)
        except Exception:  # EOF, reset, or the socket closed under us: the peer is gone
            client.peer_closed.set()
            client.hang_up()
        finally:
            device.disconnected(client)
        # The writer now flushes what is queued and the close handshake. A peer that
        # stopped reading cannot hold this connection open past the deadline.
        try:
            await asyncio.wait_for(writer_task, 2 * Client.close_wait_ms / 1000)
        except Exception:
            client.hang_up()
        return Response.already_handled

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
                client.peer_closed.set()
                client.close(*_close_reply(view, n))
                return
            # OP_PONG: nothing to do


def is_upgrade(request):
    return "websocket" in request.headers.get("Upgrade", "").lower()


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
    """GET /log upgraded: one message per record after `since`, then "end", then close."""
    await websocket_upgrade(request)
    reader, writer = request.sock
    try:
        for text in log.messages(since):
            await writer.awrite(wsframe.encode_text(text))
        await writer.awrite(wsframe.encode_text("end"))
        await writer.awrite(wsframe.encode_close(wsframe.CLOSE_NORMAL))
        # Give the peer a moment to answer our close frame, then hang up.
        await asyncio.wait_for(reader.read(64), Client.close_wait_ms / 1000)
    except Exception:
        pass
    return Response.already_handled


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
        return Response.send_file(PAGE_FILE, compressed=True, max_age=0)
    # A client that cannot take gzip gets the page inflated on the fly. The build
    # compresses with a 1 KiB window (tools/build.py PAGE_WINDOW_BITS), so inflating
    # needs 1 KiB of heap, not 32.
    import deflate

    stream = deflate.DeflateIO(open(PAGE_FILE, "rb"), deflate.GZIP, PAGE_WINDOW_BITS)
    return Response.send_file("index.html", stream=stream, max_age=0)


def board_description(board):
    """What the page needs to draw the board: labels and what each IO allows."""
    ios = []
    for io, spec in enumerate(board["ios"]):
        ios.append({"io": "%x" % io, "label": spec["label"], "dip": spec.get("dip", 0),
                    "dirs": spec["dirs"], "pulls": spec["pulls"]})
    return {"board": board["name"], "simulator": board["hal"] == "sim",
            "max_clients": board["max_clients"],
            "dip_active_low": board["dip"]["active_low"], "ios": ios}


def make_app(service, board, conf):
    """The routes; `board` is board.json (config.py), `conf` config.json (netconf.py)."""
    app = Microdot()
    description = board_description(board)
    allowed_origins = conf["allowed_origins"]

    @app.before_request
    async def check_request(request):
        # HTTP/1.1 requires Host, and the cross-site check compares against it.
        if "Host" not in request.headers:
            return Response("Bad request: no Host header\n", 400,
                            {"Content-Type": "text/plain"}, reason="Bad Request")
        path = request.path
        if (path in ("/ws", "/INDEX", "/log") and is_upgrade(request)) or \
                path == "/action.cgi":
            if cross_site(request, allowed_origins):
                return Response("Forbidden: cross-site request\n", 403,
                                {"Content-Type": "text/plain"}, reason="Forbidden")

    @app.get("/")
    async def index(request):
        return _page(request)

    @app.get("/board")
    async def board_info(request):
        return description

    @app.get("/ws")
    async def ws(request):
        return await service.serve(request)

    @app.get("/INDEX")
    async def ws_netburner(request):
        return await service.serve(request)

    # The command interface over HTTP: GET /action.cgi?<command>[=<value>] answers with
    # the same JSON the WebSocket would, from the same engine; an error answers 400.
    # A request has no connection to hang triggers on: each one gets its own
    # throwaway state with every trigger off.
    engine = service.device.engine

    class _HttpRequestState:
        triggers = None

    @app.get("/action.cgi")
    async def action(request):
        raw = request.query_string or ""
        try:
            text = urldecode(raw)
        except (ValueError, UnicodeError):  # a bad %-escape, or bytes that are not UTF-8
            return Response(error_reply(raw, E_BAD_CHAR), 400, _JSON, reason="Bad Request")
        state = _HttpRequestState()
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

    @app.errorhandler(404)
    async def not_found(request):
        return Response("Not found\n", 404, {"Content-Type": "text/plain"}, reason="Not Found")

    return app


async def start(app, host, port):
    """Listen on host:port; returns the asyncio server once it accepts."""

    async def handle(reader, writer):
        try:
            await app.handle_request(reader, writer)
        except Exception as exc:  # one bad connection never stops the server
            print_exception(exc)
            try:
                writer.close()
            except Exception:
                pass

    return await asyncio.start_server(handle, host, port)
