# The task that runs the IOs that are more than on and off (logic/kinds.py): loaded
# with the kinds, the first time an IO is an analog input, a PWM output, a counter or
# a button, and ended once every IO is digital again.
import asyncio
import gc

from .compat import ticks_ms


async def run(bank, kinds):
    """Sample analog inputs and counters (Kinds.sample_ms) and time buttons: while some
    IO is a button its deadlines are checked at least every Kinds.tick_ms, without
    waiting for an edge (the scan task hands edges to it)."""
    while bank.kinds is kinds:
        try:
            wait = kinds.poll(ticks_ms())
        except MemoryError:  # an update that could not be made: again in a moment
            gc.collect()
            wait = 10
        if kinds.buttons is not None and not 0 <= wait <= kinds.tick_ms:
            wait = kinds.tick_ms
        await asyncio.sleep_ms(wait if wait >= 0 else kinds.sample_ms)
