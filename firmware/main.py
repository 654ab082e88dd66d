# Runs at boot on a board, and as `micropython main.py [--flag value ...]` on the
# unix port, where the flags override the board config (see tools/sim.py).
import sys

from pinsock import app

sys.exit(app.main(sys.argv[1:]))
