"""What of firmware/ each kind of board carries: the one rule tools/build.py, the type
check and the freeze manifests (boards/pinsock_manifest.py) all take it from.

A board's "hal" (board.json) names its hardware layer. The firmware package's folders
say what runs where:

    pinsock/hardware/   real boards only (hal "machine"): the only code importing
                        machine and network; the simulator carries
                        boards/UNIX_SIM/simhw.py instead
    everything else     every board

Plain CPython, no imports from the project: MicroPython's manifest tool loads it by
path, and so does tools/build.py.
"""

import os

# Folders of firmware/pinsock/ that only boards of one hal carry.
HAL_FOLDERS = {"machine": ("hardware",)}
# Files in a board folder that describe the board and are not copied as modules.
BOARD_DATA_FILES = ("manifest.py",)


def firmware_files(package_dir, hal):
    """The package's .py files a board with this hal carries, as sorted paths relative
    to `package_dir` with "/" separators ("logic/device.py")."""
    left_out = {folder for other, folders in HAL_FOLDERS.items() if other != hal
                for folder in folders}
    found = []
    for top, dirs, files in os.walk(package_dir):
        rel = os.path.relpath(top, package_dir).replace(os.sep, "/")
        rel = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if (rel + d) not in left_out and d != "__pycache__")
        found += [rel + name for name in files if name.endswith(".py")]
    return sorted(found)


def board_modules(board_dir):
    """The Python files of a board folder that go on the board (simhw.py)."""
    return sorted(name for name in os.listdir(board_dir)
                  if name.endswith(".py") and name not in BOARD_DATA_FILES)


def version(package_dir):
    """The firmware's version: VERSION in pinsock/__init__.py, what `sv` answers."""
    with open(os.path.join(package_dir, "__init__.py")) as f:
        for line in f:
            if line.startswith("VERSION = "):
                return line.split("=", 1)[1].strip().strip("\"'")
    raise ValueError("no VERSION in %s/__init__.py" % package_dir)
