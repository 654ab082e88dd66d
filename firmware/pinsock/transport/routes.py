# Transport: the device's HTTP routes (on http.App), and the checks every request
# passes first: Host, the cross-site check and, with a password, the session.
from os import stat

from ..protocol.commands import E_BAD_CHAR, error_reply, is_error, utf8_start
from .http import App, RequestHeadReader, Response, is_upgrade, text_response
from .http import urldecode
from .hub import peer_address
from .websocket import send_log
from ..compat import forget_module

PAGE_FILE = "www/index.html.gz"
PAGE_WINDOW_BITS = 10  # the window the build deflates the page with (tools/build.py)
_JSON = {"Content-Type": "application/json"}
_BOARD_JSON = {"Content-Type": "application/json; charset=UTF-8"}  # as microdot's for a dict
_MISDIRECTED = "Misdirected request: Host is not this device (SECURITY.md)\n"
_PAGE = {"Content-Type": "text/html", "Cache-Control": "max-age=0"}
_PAGE_GZIP = {"Content-Type": "text/html", "Cache-Control": "max-age=0",
              "Content-Encoding": "gzip"}
# POSTs a cross-site page must not make: the login (login_routes.py), the Wi-Fi setup,
# an update (ota.py).
_POST_CHECKED = ("/login", "/logout", "/wifi", "/ota")
# The WebSocket service's paths: pinsock's, and the two of NetBurner's example pages.
WS_PATHS = ("/ws", "/INDEX", "/INDEX.HTML")


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


def log_json(log, since):
    """Plain GET /log: the messages as one JSON array, produced piece by piece."""
    yield "["
    comma = ""
    for text in log.messages(since):
        yield comma + text
        comma = ","
    yield "]"


def _page(request):
    # The page file as it is (microdot's send_file, which this replaces, guesses types
    # and builds the headers anew each time; the build leaves it out).
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return Response(open(PAGE_FILE, "rb"), 200, _PAGE_GZIP)
    # A client that cannot take gzip gets the page inflated on the fly. The build
    # compresses with a 1 KiB window (PAGE_WINDOW_BITS), so inflating needs 1 KiB of
    # heap, not 32.
    import deflate

    # close=True: closing the inflater closes the file too.
    stream = deflate.DeflateIO(open(PAGE_FILE, "rb"), deflate.GZIP, PAGE_WINDOW_BITS, True)
    return Response(stream, 200, _PAGE)


def host_name(host):
    """The name or address of a Host header (or of an origin's host[:port]), without
    its port, in lower case and without a final dot; "" when it has none."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [fe80::1]:80
        end = host.find("]")
        return host[1:end] if end > 0 else ""
    name, colon, port = host.rpartition(":")
    if colon and ":" not in name and (port.isdigit() or not port):
        host = name
    return host[:-1] if host.endswith(".") else host


def not_found():
    return text_response("Not found\n", 404, "Not Found")


def make_app(service, description, conf, names, addresses, pages_dir=None, hardware=None,
             config_path="config.json", ota=None):
    """The routes; `service` is the WebSocket service (websocket.py), `description`
    GET /board's answer (encoded once at start-up: it then allocates no JSON), `conf`
    config.json (boot/config_json.py), which is at `config_path`; `hardware` the
    hardware layer, for the Wi-Fi setup (/wifi, wifisetup.py) and the restart after an
    update; `ota` (root of the flash, slot running, bytes to keep free) where updates
    go (POST /ota, ota.py).

    Against DNS rebinding (a hostile page whose own name points at the device sends
    that name as Host, and an Origin to match it), only a Host that names the device
    is served: one of `names` (boot/startup.py own_names: its hostname, .local,
    localhost, the hosts of allowed_origins) or of `addresses()` (the hardware layer's
    names and addresses now: DHCP may change them), with or without a port.

    `pages_dir`: the folder of the user's own pages (transport/userpages.py), served
    at /<name> for any GET no route has; None: none."""
    app = App()
    allowed_origins = conf["allowed_origins"]
    # With a password (config.json), every route but the login needs a session. The
    # login is imported only then: without a password it takes no RAM.
    gate = None
    if conf["password"] != "":
        from . import login_routes

        gate = login_routes.add_routes(app, conf["password"], conf.get("locked_message"))

    @app.before_request
    async def check_request(request):
        # HTTP/1.1 requires Host, and the cross-site check compares against it.
        if "Host" not in request.headers:
            return text_response("Bad request: no Host header\n", 400, "Bad Request")
        # DNS rebinding (make_app): every request, password or not.
        host = host_name(request.headers["Host"])
        if host not in names and host not in addresses():
            return text_response(_MISDIRECTED, 421, "Misdirected Request")
        path = request.path
        if ((path in WS_PATHS or path == "/log") and is_upgrade(request)) or \
                path == "/action.cgi" or (path in _POST_CHECKED and request.method == "POST"):
            if cross_site(request, allowed_origins):
                return text_response("Forbidden: cross-site request\n", 403, "Forbidden")
        if gate is not None:
            return gate(request)  # None when the request has a session, or needs none

    app.get("/")(_page)
    app.get(WS_PATHS)(service.serve)  # /INDEX, /INDEX.HTML: the paths NetBurner's pages open

    @app.get("/board")
    async def board_info(request):
        return Response(description, 200, _BOARD_JSON)

    # The command interface over HTTP: GET /action.cgi?<command>[=<value>] answers with
    # the same JSON the WebSocket would, from the same engine; an error answers 400.
    # A request has no connection to hang triggers on: each one gets its own
    # throwaway state with every trigger off, on the request's own object.
    device = service.device

    @app.get("/action.cgi")
    async def action(request):
        if request.method == "HEAD":
            # HEAD must change nothing (RFC 9110 9.3.2), and the answer's head is only
            # known once the command has run: refused, not run.
            return Response('{"error":"HEAD does not run commands; use GET"}', 405,
                            {"Allow": "GET", "Content-Type": "application/json"},
                            reason="Method Not Allowed")
        raw = request.query_string or ""
        try:
            text = urldecode(raw)
        except (ValueError, UnicodeError):  # a bad %-escape, or bytes that are not UTF-8
            text = None
        # MicroPython's decode is lenient: the escapes' bytes are checked strictly.
        if text is None or utf8_start(text) is not text:
            return Response(error_reply(raw, E_BAD_CHAR), 400, _JSON, reason="Bad Request")
        state = request.g
        device.connected(state, peer_address(request.sock[1]))  # its address's rate
        reply = device.execute(state, text)
        if is_error(reply):
            return Response(reply, 400, _JSON, reason="Bad Request")
        return Response(reply, 200, _JSON)

    # The event log (logic/eventlog.py): records after ?since=<seq>, over a WebSocket
    # or as a JSON array.
    event_log = device.log

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

    if hardware is not None:
        @app.route("/wifi", methods=["GET", "POST"])
        async def wifi(request):
            # The setup's code is loaded for the request and forgotten after it.
            from . import wifisetup

            try:
                return wifisetup.respond(request, hardware, config_path)
            finally:
                forget_module(wifisetup.__name__)

    if ota is not None and hardware is not None:
        ota += (conf["password"], device.status, hardware)  # not conf: it is freed

        @app.post("/ota")
        async def update(request):
            # The upload's code is loaded for it and forgotten once it is over.
            from . import ota as upload

            return upload.start(request, ota)

    @app.errorhandler(400)
    async def bad_request(request):
        # The request could not be read (http.RequestHeadReader has the limits).
        return text_response("Bad request: malformed, or too long (request line %d bytes,"
                             " head %d bytes or %d lines)\n"
                             % (RequestHeadReader.max_line_bytes,
                                RequestHeadReader.max_head_bytes,
                                RequestHeadReader.max_head_lines),
                             400, "Bad Request")

    @app.errorhandler(404)
    async def no_route(request):
        return not_found()

    if pages_dir is not None:
        # The user's pages: a GET no route has, after the Host check and the login like
        # any route. Their code is loaded when a request first finds the folder there,
        # so a device without pages spends no RAM on it.
        def user_page(request):
            try:
                stat(pages_dir)
            except OSError:
                return not_found()
            from . import userpages

            return userpages.serve(request, pages_dir)

        app.fallback = user_page

    return app
