# The firmware's life: start-up (startup.py wires board config -> hardware layer ->
# device logic -> transport, and is forgotten once the device serves), then the tasks
# that keep it serving.
import asyncio
import gc
import sys

from .compat import print_exception, ticks_ms

# During start-up, garbage is collected each time this many bytes have been allocated
# (board config included), not only when the heap is full: it is then freed before
# it spreads over the heap, and what lives long is packed low, leaving the rest of the
# heap in larger pieces. Measured (tools/bench_memory.py floor, 4 clients): 144 KiB
# of heap instead of 156 (4096: 142, within the noise; it collects twice as often).
GC_EVERY_BYTES = 8192
# Once serving, a collection each time a 1/GC_FREE_SHARE of the heap then free has been
# allocated: about as often as GC_EVERY_BYTES in a tight heap (~8 KiB of ~30 KiB free),
# rarely in a roomy one. A command allocates ~1.3 KB and a collection scans the whole
# heap: collecting every 8 KiB in a 2 MiB heap made a command round trip 40 µs slower.
GC_FREE_SHARE = 4
# Modules only start-up uses, imported where they are used and forgotten as soon as
# start-up is done with each (all of them once the device serves): a board that loads
# .mpy files keeps their bytecode in the heap (about 15.6 KB of it on the unix port).
# One that another module keeps (netconf, by login.py when there is a password) stays
# as long as that one does. settingsfile reads settings.json at boot; settings.py,
# which saves it, lives on.
BOOT_ONLY_MODULES = ("startup", "config", "netconf", "tlskeys", "settingsfile")


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
    from . import startup

    context = startup.tls_context(board)
    forget("tlskeys")
    hardware = startup.load_hardware(board)
    device, bank, status, app = startup.build(board, hardware, conf)
    forget("settingsfile")
    asyncio.create_task(keep_house(device.hub))
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
    await srv.wait_closed()


def forget(*names):
    """Drop the named modules of this package (BOOT_ONLY_MODULES) and collect: a
    module nothing else keeps is freed, bytecode and all."""
    package = __name__.rpartition(".")[0]
    for name in names:
        sys.modules.pop(package + "." + name, None)
        try:
            delattr(sys.modules[package], name)
        except (AttributeError, KeyError):  # never imported (MicroPython: KeyError)
            pass
    gc.collect()


def forget_boot_modules():
    """Once the device serves: none of start-up's modules stays."""
    forget(*BOOT_ONLY_MODULES)


def main(argv=()):
    gc.threshold(GC_EVERY_BYTES)
    from . import startup

    configs = startup.load_configs(argv)
    startup = None  # forgotten once the device serves (BOOT_ONLY_MODULES)
    forget("config", "netconf")  # before the firmware's modules are loaded
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
