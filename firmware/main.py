# The loader: runs at boot on a board (after boot.py), and as `micropython main.py
# [--flag value ...]` on the unix port, where the flags override the board config (see
# tools/sim.py). An update over the network never replaces it (docs/OTA.md).
#
# The app lives in a slot folder, a/ or b/ (or, as `make deploy` copies it, in the
# root itself: the slot ""); config.json, settings.json, the TLS keys and this file
# stay in the root. ota.json says which slot runs, and is only ever replaced whole,
# by one rename:
#   {"active": "a", "pending": "b", "tries": 1, ...}
# A pending slot (a new version, not confirmed yet) gets a counted try; the app
# confirms itself once it has served for ota_confirm_s (pinsock/otastate.py). After
# TRIES failed tries the active slot runs again, and the state says why.
import json
import os
import sys

STATE = "ota.json"
TRIES = 2

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
    _save(state)
    print("ota: trying slot %s (try %d of %d)" % (pending, tries + 1, TRIES))
    return pending, state


def _run():
    root = os.getcwd()
    slot, state = _pick()
    trial = state is not None and state["pending"] == slot
    if slot:
        os.chdir(slot)
    # The slot's modules first, then its microdot ("" is the folder it runs in; the
    # unix port puts the root's path first instead).
    sys.path[:] = ["", "lib"] + [p for p in sys.path if p not in ("", "lib", root)]
    argv = ["--state-dir", root, "--ota-slot", slot] + sys.argv[1:]
    try:
        from pinsock import lifecycle

        code = lifecycle.main(argv)
        why = getattr(lifecycle, "failure", "") or "exit %d" % code
    except Exception as exc:  # an app that cannot start (an import error)
        code, why = 1, "%s: %s" % (type(exc).__name__, exc)
        sys.print_exception(exc)
    if code and trial:
        os.chdir(root)
        state["why"] = why[:120]
        _save(state)
        print("ota: slot %s failed: %s; resetting" % (slot, why))
        reset()
    return code


_code = _run()
if _code:
    # Only on failure: on a board sys.exit() soft-reboots, and after a clean stop
    # (Ctrl-C from mpremote) the board must stay at the REPL for the next deploy.
    sys.exit(_code)
