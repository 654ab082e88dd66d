# Freezes pinsock for one board: included by each board's manifest.py as
#   include("../pinsock_manifest.py", board="<BOARD>")
# What goes in is what tools/build.py copies for that board, from the same rule
# (firmware_layout.py): the firmware package but the other hals' folders, the board
# folder's own modules, and microdot. The version is the firmware's (`sv`).
# MicroPython's manifest tool runs this from its own folder (boards/).
# ruff: noqa: F821
import importlib.util
import json
import os

_spec = importlib.util.spec_from_file_location("firmware_layout",
                                               os.path.abspath("firmware_layout.py"))
_layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_layout)

metadata(version=_layout.version("../firmware/pinsock"),
         description="pinsock: DIP switches and GPIO over WebSocket")
with open(os.path.join(options.board, "board.json")) as _f:
    _hal = json.load(_f)["hal"]
package("pinsock", files=_layout.firmware_files("../firmware/pinsock", _hal),
        base_path="../firmware")
for _name in _layout.board_modules(options.board):
    module(_name, base_path=options.board)
module("otaboot.py", base_path="../firmware")  # the loader's (main.py; docs/OTA.md)
include("microdot_manifest.py")
