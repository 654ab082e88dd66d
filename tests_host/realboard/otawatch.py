# The loader's watchdog for a new version's try (otaboot.py, docs/OTA.md), on the unix
# port against the fakes of `machine` (boardfakes.py), with the compiled RPI_PICO_W
# build on the path: the otaboot.mpy and the firmware modules that go on the board.
# Run by tests_host/test_net.py through tests_host/device/mpyrun.py.
import asyncio
import json
import os
import sys

import boardfakes as fakes

fakes.install()

import otaboot  # noqa: E402
from pinsock.boot import config_json, startup  # noqa: E402
from pinsock.hardware import net  # noqa: E402


def boot(name, state):
    """otaboot.start() in a fresh flash folder holding `state` (None: no ota.json) and
    slots a/ and b/; returns (the slot it went into, ota.json after). The working
    folder and sys.path are put back after."""
    fakes.reset()
    here, path = os.getcwd(), list(sys.path)
    os.mkdir(name)
    os.chdir(name)
    root = os.getcwd()
    for slot in ("a", "b"):
        os.mkdir(slot)
        with open(slot + "/board.json", "w") as f:
            f.write("{}")
    if state is not None:
        with open("ota.json", "w") as f:
            f.write(json.dumps(state))
    try:
        otaboot.start([])
        slot = os.getcwd()[len(root) + 1:]
        with open(root + "/ota.json") as f:
            return slot, json.load(f)
    except OSError:  # no ota.json
        return slot, None
    finally:
        os.chdir(here)
        sys.path[:] = path


def test_a_try_runs_under_the_watchdog_before_the_app_is_imported():
    slot, state = boot("try", {"active": "a", "pending": "b", "tries": 0})
    assert (slot, state["tries"]) == ("b", 1), (slot, state)
    # Started by the loader, and fed by nothing yet: a hang from here on, in an import
    # or in start-up, resets the board within WATCHDOG_MS, and the try is spent.
    assert [(w.timeout, w.feeds) for w in fakes.WDT.made] == [(otaboot.WATCHDOG_MS, 0)]
    assert otaboot.WATCHDOG_MS <= 8388  # what the RP2040's hardware allows


def test_no_try_no_watchdog_from_the_loader():
    for name, state in (("fresh", None), ("confirmed", {"active": "b", "pending": "",
                                                         "tries": 0})):
        slot, _ = boot(name, state)
        assert slot == ("a" if state is None else "b") and fakes.WDT.made == [], name
    # Two tries spent: back to the active slot, which runs as before, unwatched.
    slot, state = boot("spent", {"active": "a", "pending": "b", "tries": 2})
    assert (slot, state["pending"], state["failed"]) == ("a", "", "b"), state
    assert fakes.WDT.made == []


class Status:
    ota = ""


def take_over(watchdog_ms):
    """The firmware on a try: startup.ota_trial, then the hardware layer's start, as
    lifecycle.run does; returns the watchdogs made and config.json's watchdog_ms."""
    fakes.reset()
    net._watchdog = None
    asyncio.new_event_loop()
    conf = dict(config_json.DEFAULTS, watchdog_ms=watchdog_ms)
    startup._ota = ("b", '{"s":"b","t":"1","p":"0.1.0","r":""}', True)
    startup.ota_trial({"state_dir": os.getcwd(), "ota_confirm_s": 30}, Status(), conf)

    async def main():
        net.start(None, -1, conf, lambda line: None)
        await asyncio.sleep_ms(50)

    asyncio.run(main())
    startup._ota = ("", "", False)
    return fakes.WDT.made, conf["watchdog_ms"]


def test_the_firmware_feeds_it_even_where_config_json_has_no_watchdog():
    from pinsock import otastate

    made, ms = take_over(0)
    assert ms == otastate.TRY_WATCHDOG_MS
    assert len(made) == 1 and made[0].timeout == otastate.TRY_WATCHDOG_MS, made
    assert made[0].feeds >= 1  # the event loop feeds it: the try goes on
    # With a watchdog of its own the board keeps its timeout.
    made, ms = take_over(2000)
    assert ms == 2000 and [w.timeout for w in made] == [2000] and made[0].feeds >= 1
