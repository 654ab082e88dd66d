# Freezes pinsock into a MicroPython unix-port executable that is the simulated board
# (the firmware, its simulated pins and microdot), built from the MicroPython source
# tree (v1.29.0). `make unix32 FROZEN=1` builds it 32-bit (tools/unix32.py, cached in
# build/unix32/) and `make sim FROZEN=1` runs it; by hand, in the source tree:
#
#   make -C ports/unix FROZEN_MANIFEST=<pinsock>/boards/UNIX_SIM/manifest.py
#
# Then, in a folder holding board.json and www/ from build/UNIX_SIM/ (and no compiled
# module, which would shadow the frozen one: what `make deploy FROZEN=1` copies):
#   ports/unix/build-standard/micropython -c \
#       "import sys; from pinsock import lifecycle; sys.exit(lifecycle.main(sys.argv[1:]))"
# Plain `make sim` needs none of this: it runs the compiled build on the unix port from PyPI.
#
# Paths are relative to this folder (MicroPython's manifest tool runs it from here),
# which also provides include(), package() and module().
# ruff: noqa: F821
# What the unix port's standard variant freezes: asyncio, and what every variant does.
include("$(PORT_DIR)/variants/standard/manifest.py")

include("../pinsock_manifest.py", board="UNIX_SIM")
