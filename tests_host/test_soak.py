"""Soak, briefly: tools/soak.py against the simulator with several clients, a slow
reader and thousands of switch transitions (`make soak` runs it long).

It asserts, among other things, that every client's view ends equal to the pins, that
the event log holds every transition with no unexplained gap, and that free heap ends
within soak.HEAP_BOUND of the start; see tools/soak.py. Prints the figures (pytest -s).
"""

import asyncio

import pytest

import soak
from simclient import AsyncControl

CLIENTS = 4
TRANSITIONS = 4000


def test_soak_briefly(start_sim):
    sim = start_sim(max_clients=CLIENTS + 1, debounce_ms=0)
    figures = soak.soak(sim, clients=CLIENTS, transitions=TRANSITIONS, seed=1, slow=True)
    print("\nsoak:", figures)
    assert figures["transitions"] == TRANSITIONS
    assert figures["reconnects"] == 1
    assert figures["heap_lost"] <= soak.HEAP_BOUND
    # Every transition reached every client as a report or an update (a client sees
    # at least the DIP half of them; the slow one may see fewer: superseded reports).
    assert figures["messages"] > CLIENTS * TRANSITIONS // 3


def test_soak_refuses_a_simulator_with_too_few_client_slots(start_sim):
    sim = start_sim(max_clients=2, debounce_ms=0)
    with pytest.raises(ValueError, match="max_clients=4"):
        soak.soak(sim, clients=4, transitions=10)


async def _overrun_then_read(sim, claimed_ring):
    control = await AsyncControl.open(sim.control_port)
    try:
        level = 1
        for _ in range(300):  # more than the 256 records the ring holds
            level = 1 - level
            assert await control.ask("set 0 %d" % level) == "ok"
        await asyncio.sleep(0.2)
        log = soak.LogReader(sim, claimed_ring, 0)
        await log.read()
        return log
    finally:
        control.close()


def test_log_gap_is_accepted_only_when_the_ring_was_overrun(start_sim):
    sim = start_sim(debounce_ms=0)
    log = asyncio.run(_overrun_then_read(sim, soak.board_log_size()))
    # The device says {"lost":44}; 300 records were made since 0, the ring holds 256.
    assert log.since == 300 and len(log.records) == 256
    sim = start_sim(debounce_ms=0)
    # Had the ring held 1000 records, the same gap would be a bug: the soak fails.
    with pytest.raises(soak.SoakFailure, match="unexplained gap"):
        asyncio.run(_overrun_then_read(sim, 1000))
