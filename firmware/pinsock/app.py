# Composition root: board config -> hardware layer -> device logic -> transport.
# The only module that knows all the others; each of them knows only what it is given.
import asyncio
import gc
import sys

from . import VERSION, server
from .commands import CommandEngine
from .compat import print_exception, ticks_ms
from .device import Device, Status
from .eventlog import EventLog
from .hub import ClientHub
from .iobank import IoBank
from .report import SwitchReport
from .settings import Settings

BOARD_FILE = "board.json"
# Garbage is collected each time this many bytes have been allocated (from the start,
# board config included), not only when the heap is full: it is then freed before it
# spreads over the heap, and what lives long is packed low, leaving the rest of the
# heap in larger pieces. Measured (tools/bench_memory.py floor, 4 clients): 144 KiB
# of heap instead of 156 (4096: 142, within the noise; it collects twice as often).
GC_EVERY_BYTES = 8192
# Modules only start-up uses, imported where they are used and forgotten once the
# device serves: a board that loads .mpy files keeps their bytecode in the heap (about
# 11 KB of it on the unix port). One that another module keeps (netconf, by login.py
# when there is a password) stays as long as that one does.
BOOT_ONLY_MODULES = ("config", "netconf", "tlskeys")


def load_hardware(board):
    # The hardware layer is the only code that touches `machine` or `network`.
    # The simulator's lives in boards/UNIX_SIM/ and is only on a simulator build.
    if board["hal"] == "sim":
        from simhw import SimHardware

        return SimHardware(board)
    from .hw import MachineHardware

    return MachineHardware(board)


def build(board, hardware, conf):
    """Wire the device together. `conf` is config.json (netconf.py).

    Returns (device, bank, status, microdot app)."""
    bank = IoBank(hardware, board["ios"], board["debounce_ms"])
    default_name = "pinsock-" + hardware.unique_id_hex()[-4:]
    settings = Settings(board["state_dir"], bank, default_name)
    settings.load()
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
    app = server.make_app(service, board, conf)
    hardware.add_routes(app)
    return device, bank, status, app


async def scan_inputs(bank, flag):
    """Debounce and commit input edges as soon as they arrive."""
    from .wake import FlagWait

    bank.wake = flag
    edge = FlagWait(flag)  # `await flag.wait()` without a generator per wakeup
    while True:
        flag.clear()  # before scanning: an edge from here on sets it again
        wait = bank.scan(ticks_ms())
        if wait >= 0:
            await asyncio.sleep_ms(wait)
        else:
            await edge  # pyright: ignore[reportGeneralTypeIssues] (an iterator will do)


async def poll_inputs(bank, status, poll_ms):
    """Re-read inputs now and then: covers an interrupt a pin failed to raise."""
    while True:
        await asyncio.sleep_ms(poll_ms)
        bank.resample(ticks_ms())
        bank.wake.set()
        status.tick()


async def keep_house(hub):
    """Once a second: ping clients, close the dead, the stuck and the unclosable."""
    while True:
        await asyncio.sleep_ms(1000)
        hub.sweep(ticks_ms())


async def run(board, conf):
    """The firmware, from the board config to the end of serving. Nothing keeps
    `board` once the device serves: whatever needs a piece of it took a copy of that
    piece, and the config (6 KB of heap on the unix port) is freed."""
    gc.collect()
    hardware = load_hardware(board)
    device, bank, status, app = build(board, hardware, conf)
    asyncio.create_task(keep_house(device.hub))
    asyncio.create_task(scan_inputs(bank, hardware.wake_flag()))
    if board["poll_ms"]:
        asyncio.create_task(poll_inputs(bank, status, board["poll_ms"]))
    await hardware.start(conf)
    srv = await serve(app, board)
    # Emptied, not only dropped: the collector is conservative, and a stale copy of
    # the pointer (a finished coroutine's frame, a dead stack slot) kept all of it.
    board.clear()
    board = conf = app = None
    forget_boot_modules()
    await srv.wait_closed()


def forget_boot_modules():
    package = __name__.rpartition(".")[0]
    for name in BOOT_ONLY_MODULES:
        sys.modules.pop(package + "." + name, None)
        try:
            delattr(sys.modules[package], name)
        except AttributeError:  # never imported
            pass
    gc.collect()


async def serve(app, board):
    """Serve HTTP, or HTTPS with plain HTTP redirecting to it when the state folder
    holds a usable certificate and key (tlskeys.py). Any TLS trouble, a bad file or a
    port that cannot be opened, is logged and leaves plain HTTP serving: the owner is
    never locked out. Returns the server whose end ends the firmware."""
    from . import tlskeys

    host = board["host"]
    context = tlskeys.context(board["state_dir"])
    if context is not None:
        try:
            srv = await server.start(app, host, board["https_port"], context)
        except Exception as exc:  # OSError: the port is taken
            print("tls: error: cannot serve HTTPS on port %d: %r; serving plain HTTP only"
                  % (board["https_port"], exc))
        else:
            print("serving on https://%s:%d" % (host, board["https_port"]))
            redirect = server.HttpsRedirect(board["https_port"])
            await server.serve(redirect.handle_request, host, board["http_port"])
            print("serving on http://%s:%d, redirecting to https" % (host, board["http_port"]))
            return srv
    srv = await server.start(app, host, board["http_port"])
    print("serving on http://%s:%d" % (host, board["http_port"]))
    return srv


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


def main(argv=()):
    gc.threshold(GC_EVERY_BYTES)
    configs = load_configs(argv)
    if configs is None:
        return 2
    firmware = run(*configs)
    configs = None  # run() alone holds the configs now, and lets them go
    try:
        asyncio.run(firmware)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        print_exception(exc)
        return 1
    return 0
