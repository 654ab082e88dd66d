# The firmware's life: start-up (boot/startup.py wires board config -> hardware layer
# -> device logic -> transport; everything in boot/ is forgotten once the device
# serves), then the tasks that keep it serving.
import asyncio
import gc
import sys

from .compat import print_exception, ticks_ms

# During start-up, garbage is collected each time this many bytes have been allocated
# (board config included), not only when the heap is full: it is then freed before
# it spreads over the heap, and what lives long is packed low, leaving the rest of the
# heap in larger pieces (the smallest heap for 4 clients is lower for it, and twice
# as often gains nothing: docs/PERFORMANCE.md).
GC_EVERY_BYTES = 8192
# Once serving, a collection each time a 1/GC_FREE_SHARE of the heap then free has been
# allocated: about as often as GC_EVERY_BYTES in a tight heap (~8 KiB of ~30 KiB free),
# rarely in a roomy one, where a collection every 8 KiB (a command allocates ~1.3 KB,
# and a collection scans the whole heap) would slow every command down.
GC_FREE_SHARE = 4
# The modules of boot/ are only for start-up: each is imported where it is used and
# forgotten as soon as start-up is done with it (all of them once the device serves),
# since a board that loads .mpy files keeps their bytecode in the heap (about 15.6 KB
# of it on the unix port). One that another module keeps stays as long as that one.
BOOT_PACKAGE = __name__.rpartition(".")[0] + ".boot"


async def scan_inputs(bank, flag):
    """Debounce and commit input edges as soon as they arrive."""
    from .wake import FlagWait

    bank.wake = flag
    edge = FlagWait(flag)  # `await flag.wait()` without a generator per wakeup
    while True:
        flag.clear()  # before scanning: an edge from here on sets it again
        try:
            wait = bank.scan(ticks_ms())
        except MemoryError:  # the edges wait in the bank: scanned again in a moment
            gc.collect()
            wait = 10
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


async def keep_house(hub, listeners):
    """Once a second: ping clients, close the dead, the stuck and the unclosable, and
    end HTTP connections over their time (transport/http.py Listener)."""
    while True:
        await asyncio.sleep_ms(1000)
        now = ticks_ms()
        try:
            hub.sweep(now)
            for listener in listeners:
                listener.sweep(now)
        except MemoryError:  # again in a second; this task must not end
            gc.collect()


async def run(board, conf):
    """The firmware, from the board config to the end of serving. Nothing keeps
    `board` once the device serves: whatever needs a piece of it took a copy of that
    piece, and the config (6 KB of heap on the unix port) is freed."""
    from .boot import startup

    context = startup.tls_context(board)
    forget("tlskeys")
    hardware = startup.load_hardware(board)
    _, bank, status, hub, app = startup.build(board, hardware, conf)
    forget("settings_json")
    from .transport.http import listeners

    asyncio.create_task(keep_house(hub, listeners))
    asyncio.create_task(scan_inputs(bank, hardware.wake_flag()))
    if board["poll_ms"]:
        asyncio.create_task(poll_inputs(bank, status, board["poll_ms"]))
    await hardware.start(conf)
    srv = await startup.serve(app, board, context)
    # Emptied, not only dropped: the collector is conservative, and a stale copy of
    # the pointer (a finished coroutine's frame, a dead stack slot) kept all of it.
    board.clear()
    board = conf = app = context = startup = None
    forget_boot_modules()
    gc.threshold(max(GC_EVERY_BYTES, gc.mem_free() // GC_FREE_SHARE))
    await srv.task  # the accept loop (transport/http.py Listener), which never ends


def forget(*names):
    """Drop the named modules of boot/ and collect: a module nothing else keeps is
    freed, bytecode and all."""
    package = sys.modules.get(BOOT_PACKAGE)
    for name in names:
        sys.modules.pop(BOOT_PACKAGE + "." + name, None)
        if package is not None:
            try:
                delattr(package, name)
            except AttributeError:  # never imported
                pass
    gc.collect()


def forget_boot_modules():
    """Once the device serves: nothing of boot/ stays."""
    prefix = BOOT_PACKAGE + "."
    forget(*[key[len(prefix):] for key in sys.modules if key.startswith(prefix)])
    sys.modules.pop(BOOT_PACKAGE, None)
    parent = sys.modules[BOOT_PACKAGE.rpartition(".")[0]]
    try:
        delattr(parent, "boot")
    except AttributeError:
        pass
    gc.collect()


def main(argv=()):
    gc.threshold(GC_EVERY_BYTES)
    from .boot import startup

    configs = startup.load_configs(argv)
    startup = None  # forgotten once the device serves
    forget("board_json", "config_json")  # before the firmware's modules are loaded
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
