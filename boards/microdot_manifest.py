# Freezes microdot: included by each board's manifest.py (include("../microdot_manifest.py")).
# These are the modules `make build` compiles from the installed PyPI package. Set
# PINSOCK_MICRODOT to microdot's folder, or build where the project's environment
# (.venv) can be found. MicroPython's manifest tool runs this from its own folder.
# ruff: noqa: F821
import glob
import os

_microdot = os.environ.get("PINSOCK_MICRODOT") or (
    glob.glob("../.venv/lib/python3*/site-packages/microdot") + [""])[0]
if not os.path.isdir(_microdot):
    raise ValueError("microdot not found: set PINSOCK_MICRODOT, or run `make env` first")
package("microdot", files=["__init__.py", "microdot.py", "helpers.py"],
        base_path=os.path.dirname(os.path.abspath(_microdot)))
