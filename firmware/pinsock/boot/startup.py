# Start-up: from the command line and the configs to a device that serves. Like every
# module of boot/, imported by lifecycle.py for start-up only and forgotten once the
# device serves, so its bytecode does not stay in the heap of a board that loads .mpy
# files. Nothing that lives on may keep a function of this module: a function keeps
# its module's globals, and with them every function here.
#
# Each step imports what it needs when it runs, and lifecycle.py forgets a step's
# boot-only modules as soon as it is over: the configs are read before the firmware's modules
# are loaded, and the TLS files are checked before the device is built, so the
# heap never holds all of start-up's code and the firmware's at once.
import json

BOARD_FILE = "board.json"
# The user's own pages (transport/userpages.py) are in pages/ of the state folder: a
# board's flash root (tools/deploy.py PAGES_DIR, which `make deploy PAGES=<dir>` fills),
# the simulator's --state-dir. Not www/: on a board deployed over USB that is the
# build's, the built-in page's (make deploy replaces it).
BOARD_PAGES_FOLDER = "pages"


def load_configs(argv):
    """(board.json with the command line's overrides, config.json); None when the
    board config is unusable (said why)."""
    from . import board_json, config_json

    try:
        board = board_json.load_board(BOARD_FILE, board_json.parse_args(list(argv)))
    except board_json.ConfigError as exc:
        print("pinsock: " + str(exc))
        return None
    board["config_path"] = path = config_json.path_in(board["state_dir"])
    ota_state(board["state_dir"])  # now, while the heap is at its emptiest
    return board, config_json.load(path, fix=board["config_fix"])


# (slot running, `so`'s text, whether this boot is a new version's try), from
# ota_state to ota_trial: kept here, not in the board config, whose table a new key
# could double in size just when the heap is at its fullest.
_ota = ("", "", False)


def ota_state(root):
    """Read the update state (docs/OTA.md, otastate.py) for ota_trial."""
    global _ota
    from .. import otastate
    from ..compat import forget_module

    state = otastate.load(root)
    slot = otastate.running_slot(root)
    _ota = slot, otastate.describe(state, slot), otastate.on_trial(state, slot)
    forget_module(otastate.__name__)


def load_hardware(board):
    # The hardware layer is the only code that touches `machine` or `network`.
    # The simulator's lives in boards/UNIX_SIM/ and is only on a simulator build.
    if board["hal"] == "sim":
        from simhw import SimHardware

        return SimHardware(board)
    from ..hardware.pins import MachineHardware

    return MachineHardware(board)


def tls_context(board):
    """The SSLContext to serve HTTPS with; None for plain HTTP (tlskeys.py says why)."""
    from . import tlskeys

    return tlskeys.context(board["state_dir"])


def build(board, hardware, conf):
    """Wire the device together. `conf` is config.json (config_json.py).

    Returns (device, bank, status, hub, app)."""
    from .. import VERSION
    from ..compat import ticks_ms
    from ..logic.device import Device, Status
    from ..logic.eventlog import EventLog
    from ..logic.iobank import IoBank
    from ..logic.settings import Settings
    from ..protocol.commands import CommandEngine
    from ..protocol.report import SwitchReport
    from ..transport.hub import ClientHub
    from ..transport.routes import make_app
    from ..transport.websocket import WebSocketService
    from . import settings_json

    bank = IoBank(hardware, board["ios"], board["debounce_ms"], board["poll_ms"])
    default_name = "pinsock-" + hardware.unique_id_hex()[-4:]
    settings = Settings(board["state_dir"], bank, default_name)
    settings_json.load(settings)
    hub = ClientHub(board["max_clients"], board["ping_interval_ms"], board["idle_timeout_ms"],
                    board["stuck_timeout_ms"])
    status = Status(VERSION, board["name"], hub.count)
    engine = CommandEngine(bank, settings, status, tuple(board["leds"]))
    bank.start(ticks_ms())
    log = EventLog(board["log_size"])
    report = SwitchReport(bank, board["dip"]["active_low"])
    device = Device(bank, report, engine, log, status, board["max_commands_per_s"],
                    board["max_clients"])
    service = WebSocketService(device, hub, board["max_frame_len"])
    device.add_sink(service)
    # The names it answers to (against DNS rebinding): config.json's hostname, else
    # the default name, and the addresses the hardware layer knows.
    app = make_app(service, board_description(board, conf["password"] != ""), conf,
                   own_names(conf["hostname"] or default_name, conf["allowed_origins"]),
                   hardware.host_names, pages_dir(board["state_dir"]), hardware,
                   board["config_path"],
                   (board["state_dir"], _ota[0], board.get("ota_reserve_bytes")))
    hardware.add_routes(app)
    if conf.get("mqtt"):
        from . import mqtt_json

        mqtt_json.start(device, conf["mqtt"], default_name, board["state_dir"])
    return device, bank, status, hub, app


def pages_dir(state_dir):
    """The folder of the user's pages for a board whose state folder (its flash root,
    which the loader names: main.py) is `state_dir`."""
    if not state_dir:
        return BOARD_PAGES_FOLDER
    return state_dir.rstrip("/") + "/" + BOARD_PAGES_FOLDER


def own_names(hostname, allowed_origins):
    """The Host names the device always answers to (transport/routes.py make_app):
    localhost, 127.0.0.1, its hostname and <hostname>.local, and the hosts of
    allowed_origins (the dashboard's page may reach the device by the dashboard's
    name through a proxy)."""
    from ..transport.routes import host_name

    hostname = hostname.lower()
    names = ["localhost", "127.0.0.1", hostname, hostname + ".local"]
    for origin in allowed_origins:
        name = host_name(origin.split("://", 1)[-1].split("/", 1)[0])
        if name and name not in names:
            names.append(name)
    return tuple(names)


def board_description(board, login):
    """GET /board's answer, encoded once: what the page needs to draw the board,
    labels and what each IO allows; `login`: a password is set (the page then offers
    to log out)."""
    ios = []
    for io, spec in enumerate(board["ios"]):
        ios.append({"io": "%x" % io, "label": spec["label"], "dip": spec.get("dip", 0),
                    "dirs": spec["dirs"], "pulls": spec["pulls"]})
    return json.dumps({
        "board": board["name"], "simulator": board["hal"] == "sim",
        "max_clients": board["max_clients"], "login": login,
        "dip_active_low": board["dip"]["active_low"], "ios": ios}).encode()


def ota_trial(board, status, conf):
    """What `so` reports into status.ota (ota_state); on a new version's try, the task
    that confirms it once it has served for ota_confirm_s (otastate.py), and a
    watchdog for the hardware layer to feed where config.json (`conf`) has none: the
    loader's is running (otaboot.py)."""
    slot, text, trial = _ota
    if text and text != status.ota:  # (an attribute set only when it differs)
        status.ota = text
    if trial:  # otastate forgets itself once the version has confirmed itself
        import asyncio

        from .. import otastate

        if not conf["watchdog_ms"]:
            conf["watchdog_ms"] = otastate.TRY_WATCHDOG_MS
        asyncio.create_task(otastate.confirm_later(
            (board["state_dir"], slot, board.get("ota_confirm_s", otastate.CONFIRM_S)),
            status))


def serving_plan(board):
    """What boot/serving.py needs of the board config to serve: (host, http_port,
    https_port, tcp_send_buffer). The config itself is then let go before serving
    starts."""
    return (board["host"], board["http_port"], board["https_port"],
            board["tcp_send_buffer"])
