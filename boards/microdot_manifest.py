# Freezes microdot: included by each board's manifest.py (include("../microdot_manifest.py")).
# These are the modules `make build` compiles, from the installed PyPI package less what
# the firmware never uses (tools/build.py trimmed_microdot, which writes them into
# build/microdot/): frozen, a function left out takes no heap either. Set
# PINSOCK_MICRODOT to microdot's folder, or build where the project's environment
# (.venv) can be found. MicroPython's manifest tool runs this from its own folder.
# ruff: noqa: F821
import glob
import importlib.util
import os

_microdot = os.environ.get("PINSOCK_MICRODOT") or (
    glob.glob("../.venv/lib/python3*/site-packages/microdot") + [""])[0]
if not os.path.isdir(_microdot):
    raise ValueError("microdot not found: set PINSOCK_MICRODOT, or run `make env` first")
_spec = importlib.util.spec_from_file_location("pinsock_build",
                                               os.path.abspath("../tools/build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)
package("microdot", files=list(_build.MICRODOT_MODULES),
        base_path=str(_build.trimmed_microdot(_microdot)))
