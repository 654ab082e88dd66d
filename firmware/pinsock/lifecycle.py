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


async def poll_inputs(bank, status):
    """Re-read inputs now and then (IoBank.poll_ms): covers an interrupt a pin failed
    to raise."""
    poll_ms = bank.poll_ms
    while True:
        await asyncio.sleep_ms(poll_ms)
        bank.resample(ticks_ms())
        bank.wake.set()
        status.tick()


async def keep_house(hub, listeners, settings):
    """Once a second: ping clients, close the dead, the stuck and the unclosable, end
    HTTP connections over their time (transport/http.py Listener), and save the
    settings when a save is due (logic/settings.py: the changes of the last second are
    one save, and saves are spaced out)."""
    while True:
        await asyncio.sleep_ms(1000)
        now = ticks_ms()
        try:
            hub.sweep(now)
            for listener in listeners:
                listener.sweep(now)
            if settings.save_due(now):
                settings.save()
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
    device, bank, status, hub, app = startup.build(board, hardware, conf)
    plan = startup.serving_plan(board)
    startup.ota_trial(board, status, conf)  # `so`; a new version's try (docs/OTA.md)
    # Emptied, not only dropped: the collector is conservative, and a stale copy of
    # the pointer (a finished coroutine's frame, a dead stack slot) kept all of it.
    board.clear()
    board = startup = None
    forget("settings_json", "startup")  # the heap is at its fullest from here on
    from .transport.http import listeners

    asyncio.create_task(keep_house(hub, listeners, device.engine.settings))
    device = None
    asyncio.create_task(scan_inputs(bank, hardware.wake_flag()))
    if bank.poll_ms:
        asyncio.create_task(poll_inputs(bank, status))
    await hardware.start(conf)
    from .boot import serving

    srv = await serving.serve(app, plan, context)
    conf = app = context = serving = None
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
    """Run the firmware. Returns 0 when it was stopped (Ctrl-C), 2 when the board
    config is unusable, or the exception that ended it (main.py: the loader reports it
    for a new version on its try)."""
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
        return exc
    return 0


# --- waiting for the scan task's wake flag without allocating (MicroPython's asyncio).
#
# `await flag.wait()` makes a new generator object on every wakeup: asyncio's
# Event.wait and ThreadSafeFlag.wait are generator functions. That is 96 bytes on the
# unix port for every switch change. FlagWait is made once and awaited again and
# again: its __next__ does what the body of the flag's own wait() does (asyncio's
# event.py), and like asyncio's SingletonGenerator (core.py, what sleep_ms returns)
# it ends each wait by raising one StopIteration made beforehand.
#
# It leans on asyncio's insides (core.cur_task, an Event's `waiting` queue, the IO
# queue a ThreadSafeFlag waits in), unchanged from MicroPython 1.20 to 1.29: the
# device tests run it on the unix port with both kinds of flag. (A ThreadSafeFlag's
# wait still allocates inside asyncio, its IO queue entry; an Event's allocates
# nothing.)
_core = getattr(asyncio, "core")  # noqa: B009 (MicroPython's; not in the stubs)


class FlagWait:
    """`await FlagWait(flag)` = `await flag.wait()` for an asyncio.Event or
    ThreadSafeFlag, allocating nothing itself. One waiting task at a time."""

    def __init__(self, flag):
        self.flag = flag
        self._is_event = isinstance(flag, asyncio.Event)
        self._waiting = False
        self._stop = StopIteration()

    def __iter__(self):  # what MicroPython's `await` calls
        self._waiting = False  # a wait given up (cancelled) does not carry over
        return self

    def __next__(self):
        flag = self.flag
        if not self._waiting and not flag.state:
            # Park the task where flag.set() finds it, and yield nothing: asyncio
            # leaves a task that yields None alone until something schedules it.
            self._waiting = True
            task = _core.cur_task
            if self._is_event:
                flag.waiting.push(task)
                task.data = flag.waiting
            else:
                _core._io_queue.queue_read(flag)
            return None
        self._waiting = False
        if not self._is_event:
            flag.state = 0  # a ThreadSafeFlag clears itself when a wait ends
        stop = self._stop
        stop.__traceback__ = None
        raise stop
