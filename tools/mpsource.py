"""MicroPython's own source tree, for what needs more than the PyPI unix port: the real
freeze-manifest tool, the 32-bit unix port and frozen builds.

    MICROPYTHON_SRC=<dir>   a MicroPython checkout at the pinned version (v1.29.0), or
                            the unpacked tarball of ../shared/micropython/
    (unset)                 ../shared/micropython/*-src.tar.gz beside the checkout, if
                            there is one: unpacked once into build/micropython-src/

source_dir() gives the tree's top folder, or None with why_missing() saying how to
get one; tests that need it skip with that reason.
"""

import os
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "micropython"
UNPACKED = ROOT / "build" / "micropython-src"


def _tarball():
    found = sorted(SHARED.glob("micropython-*-src.tar.gz")) if SHARED.is_dir() else []
    return found[-1] if found else None


def source_dir():
    """The MicroPython source tree's top folder (holding py/ and tools/), or None."""
    given = os.environ.get("MICROPYTHON_SRC")
    if given:
        path = Path(given).resolve()
        if (path / "micropython" / "py").is_dir():  # the folder the tarball unpacks to
            path = path / "micropython"
        return path if (path / "py").is_dir() and (path / "tools").is_dir() else None
    tarball = _tarball()
    if tarball is None:
        return None
    top = UNPACKED / "micropython"
    stamp = UNPACKED / (tarball.name + ".unpacked")
    if not stamp.exists():
        UNPACKED.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(UNPACKED, filter="data")
        stamp.touch()
    return top


def why_missing():
    given = os.environ.get("MICROPYTHON_SRC")
    if given:
        return ("MICROPYTHON_SRC=%s holds no MicroPython source tree (py/, tools/)" % given)
    return ("no MicroPython source: set MICROPYTHON_SRC=<a v1.29.0 checkout>, or put the"
            " source tarball in %s" % SHARED)


def manifest_tool():
    """MicroPython's tools/manifestfile.py as a module; None without the source."""
    top = source_dir()
    if top is None:
        return None
    tools = str(top / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    # No __pycache__ written into the source tree (it may be someone's checkout).
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        import manifestfile
    finally:
        sys.dont_write_bytecode = keep

    return manifestfile


# Where each board's port and board folders are in MicroPython's tree.
BOARD_PORTS = {"ESP32_GENERIC": ("esp32", "ESP32_GENERIC"),
               "RPI_PICO_W": ("rp2", "RPI_PICO_W"), "UNIX_SIM": ("unix", None)}


def frozen_files(manifest_path, board):
    """(target paths the real manifest tool freezes for `manifest_path`, its metadata),
    with the board's port folders as $(PORT_DIR) and $(BOARD_DIR)."""
    manifest = run_manifest(manifest_path, board)
    return sorted(f.target_path for f in manifest.files()), manifest.metadata()


def run_manifest(manifest_path, board):
    """The real manifest tool's ManifestFile after running `manifest_path` for `board`
    (its files(): full_path, target_path, opt, ...)."""
    manifestfile = manifest_tool()
    top = source_dir()
    port, board_dir = BOARD_PORTS[board]
    path_vars = {"MPY_DIR": str(top), "MPY_LIB_DIR": str(top / "lib" / "micropython-lib"),
                 "PORT_DIR": str(top / "ports" / port),
                 "BOARD_DIR": str(top / "ports" / port / "boards" / board_dir)
                 if board_dir else None}
    manifest = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, path_vars)
    manifest.execute(str(manifest_path))
    return manifest
