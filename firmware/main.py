# Runs at boot on a board, and as `micropython main.py [--flag value ...]` on the
# unix port, where the flags override the board config (see tools/sim.py).
import sys

from pinsock import lifecycle

code = lifecycle.main(sys.argv[1:])
if code:
    # Only on failure: on a board sys.exit() soft-reboots, and after a clean stop
    # (Ctrl-C from mpremote) the board must stay at the REPL for the next deploy.
    sys.exit(code)
