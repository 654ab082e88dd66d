# The loader: runs at boot on a board (after boot.py), and as `micropython main.py
# [--flag value ...]` on the unix port, where the flags override the board config (see
# tools/sim.py). otaboot picks the app's slot (docs/OTA.md); an update over the network
# replaces neither. otaboot is forgotten while the app runs: only these lines stay.
import sys

import otaboot

argv, trial = otaboot.start(sys.argv[1:])
del sys.modules["otaboot"]
otaboot = None
why = ""
try:
    from pinsock import lifecycle

    code = lifecycle.main(argv)  # 0, 2, or the exception that ended it
except Exception as exc:  # an app that cannot start (an import error)
    sys.print_exception(exc)  # pyright: ignore[reportAttributeAccessIssue]
    code = exc
if isinstance(code, Exception):
    why, code = "%s: %s" % (type(code).__name__, code), 1
if code and trial:  # why: what ended it, or "" (a config error)
    import otaboot

    otaboot.failed(trial, why)
if code:
    # Only on failure: on a board sys.exit() soft-reboots, and after a clean stop
    # (Ctrl-C from mpremote) the board must stay at the REPL for the next deploy.
    sys.exit(code)
