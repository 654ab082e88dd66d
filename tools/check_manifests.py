"""Every board's freeze manifest through MicroPython's real manifest tool.

    python tools/check_manifests.py [BOARD ...]        (make check-manifests)

For each board (default: all of boards/), with the board's port and board folders of
MicroPython's source (tools/mpsource.py: MICROPYTHON_SRC, or ../shared/micropython):
  - boards/<BOARD>/manifest.py resolves, and includes the stock image's manifest
    (STOCK_MANIFESTS) once;
  - what it freezes beyond the stock image is exactly what `make deploy BOARD=<BOARD>
    FROZEN=1` leaves off the file system (tools/deploy.py frozen_modules), which is
    every module the build compiles: nothing missing from the image, nothing frozen
    that a deploy would also copy and shadow;
  - real-board-only code (pinsock/hardware/) is frozen for the real boards and never
    for the simulator, and the simulator's image has asyncio (the port has no other);
  - metadata(version=) is the firmware's version (`sv`).
Prints one line per board; exit 1 when a check fails, 2 without the source tree.
tests_host/test_boards.py runs the same checks (problems() below).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
import deploy  # noqa: E402
import mpsource  # noqa: E402

ROOT = build.ROOT
# What each board's manifest includes first: the stock image's own manifest, so a
# custom image only adds pinsock.
STOCK_MANIFESTS = {"ESP32_GENERIC": "$(PORT_DIR)/boards/manifest.py",
                   "RPI_PICO_W": "$(BOARD_DIR)/manifest.py",
                   "UNIX_SIM": "$(PORT_DIR)/variants/standard/manifest.py"}
REAL_ONLY = "pinsock/hardware/"


def boards():
    return sorted(p.parent.name for p in (ROOT / "boards").glob("*/board.json"))


def as_module(path):
    """A build file's path as the manifest tool names it: lib/microdot/x.mpy -> microdot/x.py."""
    path = path[4:] if path.startswith("lib/") else path
    return path[:-4] + ".py" if path.endswith(".mpy") else path


def check(name, work):
    """(problems as sentences, a summary dict) for board `name`; `work`: a scratch folder."""
    problems = []
    manifest = ROOT / "boards" / name / "manifest.py"
    if manifest.read_text().count('include("%s")' % STOCK_MANIFESTS[name]) != 1:
        problems.append("manifest.py must include %s once" % STOCK_MANIFESTS[name])
    try:
        frozen, metadata = mpsource.frozen_files(manifest, name)
    except Exception as exc:  # the manifest tool's ManifestFileError, or the manifest's own
        return ["does not resolve: %s: %s" % (type(exc).__name__, exc)], {}
    stock_manifest = Path(work) / ("stock-%s.py" % name)
    stock_manifest.write_text('include("%s")\n' % STOCK_MANIFESTS[name])
    stock, _ = mpsource.frozen_files(stock_manifest, name)
    added = sorted(set(frozen) - set(stock))
    out, _, _ = build.build(name, Path(work) / name)
    left_off = sorted(as_module(f) for f in deploy.frozen_modules(out))
    compiled = sorted(as_module(p.relative_to(out).as_posix()) for p in out.rglob("*.mpy"))
    if added != left_off:
        problems.append("frozen but deployed too: %s; left off by deploy --frozen but not"
                        " frozen: %s" % (sorted(set(added) - set(left_off)) or "none",
                                         sorted(set(left_off) - set(added)) or "none"))
    if compiled != left_off:
        problems.append("deploy --frozen copies compiled modules: %s"
                        % sorted(set(compiled) - set(left_off)))
    hal = json.loads((ROOT / "boards" / name / "board.json").read_text())["hal"]
    real_only = [f for f in frozen if f.startswith(REAL_ONLY)]
    if hal == "machine" and not real_only:
        problems.append("a real board without %s" % REAL_ONLY)
    if hal != "machine" and real_only:
        problems.append("real-board-only modules frozen: %s" % real_only)
    if name == "UNIX_SIM" and "asyncio/core.py" not in frozen:
        problems.append("no asyncio frozen: the simulator stops at import asyncio")
    version = build.layout.version(str(ROOT / "firmware" / "pinsock"))
    if metadata.version != version:
        problems.append("metadata version %r, the firmware's is %r" % (metadata.version, version))
    return problems, {"frozen": len(frozen), "stock": len(stock), "added": len(added),
                      "version": metadata.version}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("boards", nargs="*", default=boards())
    args = parser.parse_args(argv)
    if mpsource.manifest_tool() is None:
        print("check-manifests: %s" % mpsource.why_missing(), file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for name in args.boards:
            problems, got = check(name, work)
            if problems:
                failed += 1
                print("%s: FAIL\n  %s" % (name, "\n  ".join(problems)))
            else:
                print("%s: resolves; %d modules frozen, %d of them the build's (the %d that"
                      " `make deploy FROZEN=1` leaves off the file system); version %s"
                      % (name, got["frozen"], got["added"], got["added"], got["version"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
