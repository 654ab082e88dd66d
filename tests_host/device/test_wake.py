# The scan task's wait for edges (lifecycle.scan_inputs and FlagWait), on MicroPython's
# asyncio: runs on the unix port (CPython's asyncio has no such insides to lean on).
import gc

from fakes import FakeHardware, board_ios
from pinsock.logic.iobank import IoBank


def _micropython_asyncio():
    import asyncio

    if not hasattr(asyncio, "core"):
        import pytest

        pytest.skip("FlagWait waits the way MicroPython's asyncio does; the unix port runs it")
    return asyncio


def _scan_task_commits_every_edge(flag_kind):
    """Edges set the flag, the scan task wakes and commits each. Returns (changes
    seen by the listener in order, bytes allocated per edge with gc off)."""
    asyncio = _micropython_asyncio()
    from pinsock.lifecycle import scan_inputs

    ios = board_ios()
    hw = FakeHardware(len(ios))
    bank = IoBank(hw, ios, 0)
    bank.start(0)
    seen = bytearray(128)
    count = [0]

    def listener(io, level, now):
        seen[count[0]] = io * 2 + level
        count[0] += 1

    bank.listeners.append(listener)
    flag = getattr(asyncio, flag_kind)()
    per_edge = []

    async def main():
        task = asyncio.create_task(scan_inputs(bank, flag))
        await asyncio.sleep_ms(0)
        for phase in range(2):  # a warm-up, then 40 edges measured with gc off
            if phase:
                gc.collect()
                gc.disable()
                before = gc.mem_alloc()
            for t in range(20):
                for io in (0, 3):
                    hw.set(io, t & 1, t)  # the IRQ: into the ring, flag.set()
                    for _ in range(3):  # the scan task runs
                        await asyncio.sleep_ms(0)
            if phase:
                per_edge.append((gc.mem_alloc() - before) / 40)
                gc.enable()
        task.cancel()
        await asyncio.sleep_ms(0)

    asyncio.run(main())
    return bytes(seen[: count[0]]), per_edge[0]


def _expected():
    # dip1 (io 0) and dip4 (io 3) start at 1 (pulled up): t=0 sets 0, t=1 sets 1, ...
    return bytes(io * 2 + (t & 1) for t in range(20) for io in (0, 3)) * 2


def test_scan_task_woken_by_an_event_commits_every_edge_and_allocates_nothing():
    seen, per_edge = _scan_task_commits_every_edge("Event")
    assert seen == _expected()
    assert per_edge == 0, per_edge


def test_scan_task_woken_by_a_thread_safe_flag_commits_every_edge():
    # What boards use (set from a pin IRQ). asyncio's IO queue allocates an entry per
    # wait, which FlagWait cannot avoid: only the behaviour is checked here.
    seen, _ = _scan_task_commits_every_edge("ThreadSafeFlag")
    assert seen == _expected()
