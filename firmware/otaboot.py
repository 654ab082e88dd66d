# The loader's work (docs/OTA.md), for main.py: which slot runs, with a counted try for
# a new version; and, when a new version failed its try, why, and the reset. Like
# main.py, an update never replaces it; main.py forgets it once the app runs, so it
# takes no heap while the device serves (frozen builds freeze it).
#
# The app lives in a slot folder, a/ or b/ (or, as `make deploy` copies it, in the
# root itself: the slot ""); config.json, settings.json, the TLS keys and the loader
# stay in the root. ota.json says which slot runs, and is only ever replaced whole, by
# one rename:
#   {"active": "a", "pending": "b", "tries": 1, "why": "", "failed": "", "versions": {}}
# A pending slot (a new version, not confirmed yet) gets a counted try; the app
# confirms itself once it has served for ota_confirm_s (pinsock/otastate.py). After
# TRIES failed tries the active slot runs again, and the state says why.
import json
import os
import sys

STATE = "ota.json"
TRIES = 2
#: A try runs under the watchdog (a real board): machine.WDT with this timeout, started
#: here, before the app is even imported. The firmware's own watchdog (hardware/net.py,
#: config.json watchdog_ms; otastate.TRY_WATCHDOG_MS where that is 0) takes it over
#: when the network starts and feeds it from then on; a hang before that, in an import
#: or in start-up, resets the board, and the reset counts as a failed try. 8000: the
#: longest the RP2040 allows (8388 ms); the firmware must reach the network within it.
WATCHDOG_MS = 8000

try:
    from machine import reset
except ImportError:  # the unix port: the simulator starts again (tools/sim.py)

    def reset():
        sys.exit(3)


def _save(state):
    with open(STATE + ".tmp", "w") as f:
        f.write(json.dumps(state))
    os.rename(STATE + ".tmp", STATE)  # atomic on littlefs and POSIX (OTA.md: not FAT)


def _pick():
    # (slot to run, state or None).
    try:
        with open(STATE) as f:
            state = json.load(f)
        active, pending, tries = state["active"], state["pending"], state["tries"]
    except (OSError, ValueError, KeyError, TypeError):  # never updated: as installed
        try:
            os.stat("a/board.json")
            return "a", None
        except OSError:
            return "", None
    if not pending:
        return active, state
    if tries >= TRIES:
        state["pending"], state["tries"], state["failed"] = "", 0, pending
        state["why"] = state.get("why") or "no confirmation (a hang or a reset)"
        _save(state)
        print("ota: slot %s failed %d tries (%s): back to slot %s"
              % (pending, tries, state["why"], active or "/"))
        return active, state
    state["tries"] = tries + 1
    state["why"] = ""
    _save(state)  # first: a reset from here on is a try spent
    print("ota: trying slot %s (try %d of %d)" % (pending, tries + 1, TRIES))
    _watch()
    return pending, state


def _watch():
    try:
        from machine import WDT
    except ImportError:  # the unix port: the simulator's supervisor watches (tools/sim.py)
        return
    # Once started, a watchdog cannot be stopped (ESP32, RP2040); a later machine.WDT()
    # (hardware/net.py) sets its timeout anew and is the same watchdog.
    WDT(timeout=WATCHDOG_MS)


def start(argv):
    """Pick the slot, go into it; returns (the app's argv, (root, slot) when this boot
    is a new version's try, else None)."""
    root = os.getcwd()
    slot, state = _pick()
    trial = (root, slot) if state is not None and state["pending"] == slot else None
    if slot:
        os.chdir(slot)
    # The slot's modules first, then its microdot ("" is the folder it runs in; the
    # unix port puts the root's path first instead); the root last, where main.py
    # finds this module again after a failed try.
    sys.path[:] = ["", "lib"] + [p for p in sys.path if p not in ("", "lib", root)] + [root]
    return ["--state-dir", root] + argv, trial


def failed(trial, why):
    """A new version's try failed (the app could not start, or stopped): say why in
    the state, and reset; the next boot tries again or goes back."""
    root, slot = trial
    os.chdir(root)
    with open(STATE) as f:
        state = json.load(f)
    state["why"] = why[:120]
    _save(state)
    print("ota: slot %s failed: %s; resetting" % (slot, why))
    reset()
