# Start-up: from the command line and the configs to a device that serves. Imported
# by app.py for start-up only and forgotten once the device serves (app.BOOT_ONLY_MODULES),
# so its bytecode does not stay in the heap of a board that loads .mpy files. Nothing
# that lives on may keep a function of this module: a function keeps its module's
# globals, and with them every function here.
#
# Each step imports what it needs when it runs, and app.py forgets a step's boot-only
# modules as soon as it is over: the configs are read before the firmware's modules
# are loaded, and the TLS files are checked before the device is built, so the
# heap never holds all of start-up's code and the firmware's at once.
import json

BOARD_FILE = "board.json"


def load_configs(argv):
    """(board.json with the command line's overrides, config.json); None when the
    board config is unusable (said why)."""
    from . import config, netconf

    try:
        board = config.load_board(BOARD_FILE, config.parse_args(list(argv)))
    except config.ConfigError as exc:
        print("pinsock: " + str(exc))
        return None
    return board, netconf.load(netconf.path_in(board["state_dir"]))


def load_hardware(board):
    # The hardware layer is the only code that touches `machine` or `network`.
    # The simulator's lives in boards/UNIX_SIM/ and is only on a simulator build.
    if board["hal"] == "sim":
        from simhw import SimHardware

        return SimHardware(board)
    from .hw import MachineHardware

    return MachineHardware(board)


def tls_context(board):
    """The SSLContext to serve HTTPS with; None for plain HTTP (tlskeys.py says why)."""
    from . import tlskeys

    return tlskeys.context(board["state_dir"])


def build(board, hardware, conf):
    """Wire the device together. `conf` is config.json (netconf.py).

    Returns (device, bank, status, microdot app)."""
    from . import VERSION, server, settingsfile
    from .commands import CommandEngine
    from .compat import ticks_ms
    from .device import Device, Status
    from .eventlog import EventLog
    from .hub import ClientHub
    from .iobank import IoBank
    from .report import SwitchReport
    from .settings import Settings

    bank = IoBank(hardware, board["ios"], board["debounce_ms"])
    default_name = "pinsock-" + hardware.unique_id_hex()[-4:]
    settings = Settings(board["state_dir"], bank, default_name)
    settingsfile.load(settings)
    hub = ClientHub(board["max_clients"])
    hub.ping_interval_ms = board["ping_interval_ms"]
    hub.idle_timeout_ms = board["idle_timeout_ms"]
    hub.stuck_timeout_ms = board["stuck_timeout_ms"]
    status = Status(VERSION, board["name"], hub)
    engine = CommandEngine(bank, settings, status)
    bank.start(ticks_ms())
    log = EventLog(board["log_size"])
    report = SwitchReport(bank, board["dip"]["active_low"])
    device = Device(bank, report, hub, engine, log, status)
    device.max_commands_per_s = board["max_commands_per_s"]
    server.WebSocketService.max_frame_len = board["max_frame_len"]
    service = server.WebSocketService(device)
    app = server.make_app(service, board_description(board), conf)
    hardware.add_routes(app)
    server.use_static_paths(app)
    return device, bank, status, app


def board_description(board):
    """GET /board's answer, encoded once: what the page needs to draw the board,
    labels and what each IO allows."""
    ios = []
    for io, spec in enumerate(board["ios"]):
        ios.append({"io": "%x" % io, "label": spec["label"], "dip": spec.get("dip", 0),
                    "dirs": spec["dirs"], "pulls": spec["pulls"]})
    return json.dumps({
        "board": board["name"], "simulator": board["hal"] == "sim",
        "max_clients": board["max_clients"],
        "dip_active_low": board["dip"]["active_low"], "ios": ios}).encode()


async def start_app(app, host, port, ssl=None):
    """Listen on host:port; returns the asyncio server once it accepts.

    With `ssl` (an SSLContext, tlskeys.py) the connections are TLS: HTTPS and WSS. The
    handshake happens at the first read, within server.REQUEST_TIMEOUT_MS.
    """
    from . import server

    if ssl is not None:
        app.before_request_handlers.insert(0, server.over_tls)
    return await server.serve(server.http_handler(app), host, port, ssl)


async def serve(app, board, context):
    """Serve HTTP, or HTTPS with plain HTTP redirecting to it when `context`
    (tls_context) is an SSLContext. Any TLS trouble, a bad file or a port that cannot
    be opened, is logged and leaves plain HTTP serving: the owner is never locked out.
    Returns the server whose end ends the firmware."""
    from . import server

    host = board["host"]
    if context is not None:
        try:
            srv = await start_app(app, host, board["https_port"], context)
        except Exception as exc:  # OSError: the port is taken
            print("tls: error: cannot serve HTTPS on port %d: %r; serving plain HTTP only"
                  % (board["https_port"], exc))
        else:
            print("serving on https://%s:%d" % (host, board["https_port"]))
            from .redirect import HttpsRedirect

            redirect = HttpsRedirect(board["https_port"])
            await server.serve(redirect.handle_request, host, board["http_port"])
            print("serving on http://%s:%d, redirecting to https" % (host, board["http_port"]))
            return srv
    srv = await start_app(app, host, board["http_port"])
    print("serving on http://%s:%d" % (host, board["http_port"]))
    return srv
