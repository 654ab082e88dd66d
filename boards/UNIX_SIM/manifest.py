# Freezes pinsock into a MicroPython unix-port executable that is the simulated board
# (the firmware, its simulated pins and microdot), built from the MicroPython source
# tree (v1.29.0):
#
#   make -C ports/unix FROZEN_MANIFEST=<pinsock>/boards/UNIX_SIM/manifest.py
#
# Then, in a folder holding board.json and www/ from build/UNIX_SIM/:
#   ports/unix/build-standard/micropython -c \
#       "import sys; from pinsock import app; sys.exit(app.main())"
# `make sim` needs none of this: it runs the compiled build on the unix port from PyPI.
#
# Paths are relative to this folder (MicroPython's manifest tool runs it from here),
# which also provides include(), package() and module().
# ruff: noqa: F821
import glob
import os

include("$(PORT_DIR)/variants/manifest.py")  # what the unix port freezes anyway (asyncio, ...)

# The real boards' hardware layer (hw.py, net.py) imports machine and network: the
# simulator carries its own simhw.py instead.
_firmware = sorted(os.path.basename(p) for p in glob.glob("../../firmware/pinsock/*.py"))
_real_boards_only = ("hw.py", "net.py")
package("pinsock", files=[name for name in _firmware if name not in _real_boards_only],
        base_path="../../firmware")
module("simhw.py")

include("../microdot_manifest.py")
