"""Type-check the firmware against the MicroPython stubs of each real board (pyright).

    python tools/typecheck.py [BOARD ...]   default: every board whose board.json names
                                            its "stubs" (ESP32_GENERIC, RPI_PICO_W)
    python tools/typecheck.py --install     install the pinned stubs and stop

A board is checked with what goes on it: main.py, boot.py, the shared firmware and
the board's hardware layer, all against that board's stubs, with
micropython-stdlib-stubs as the standard library. A call to a function, class,
method or constant that the board's MicroPython lacks is an error. Code shared by
all boards is so checked once per board.

The stub packages are pinned in requirements.txt, marked so that pip leaves them out
of the virtual environment: every board's stubs have their own machine.pyi, so they
cannot share one site-packages. This installs each into .venv/stubs/<name>-<version>/.
"""

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

ROOT = build.ROOT
STUBS_DIR = ROOT / ".venv" / "stubs"
STDLIB_STUBS = "micropython-stdlib-stubs"
# pyright settings for every board. Rules left at "standard" strength; these matter most:
#   reportAttributeAccessIssue  machine.Pin.NOPE, wlan.nope()
#   reportCallIssue             a keyword or argument count the API does not take
#   reportMissingImports        a module the port does not have
PYRIGHT_SETTINGS = {
    "typeCheckingMode": "standard",
    "pythonPlatform": "Linux",
    "reportMissingModuleSource": "none",
    # MicroPython idioms the CPython-shaped stubs do not know about.
    "reportOptionalMemberAccess": "none",
    # microdot's signatures are typed for CPython (send_file(stream: BinaryIO)); what
    # the firmware hands them is MicroPython's. Errors in the hardware layer all the same.
    "reportArgumentType": "warning",
}


def stub_pins():
    """{package: version} of the stub packages pinned in requirements.txt."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"\s*(micropython-[\w-]+-stubs)==([\w.]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def stub_dir(package):
    pins = stub_pins()
    if package not in pins:
        raise SystemExit("%s is not pinned in requirements.txt" % package)
    return STUBS_DIR / ("%s-%s" % (package, pins[package]))


def install_stubs(packages):
    """Install each pinned stub package into its own folder (once)."""
    for package in packages:
        target = stub_dir(package)
        if (target / ".complete").exists():
            continue
        version = stub_pins()[package]
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "--no-deps", "--upgrade",
                        "--target", str(target), "%s==%s" % (package, version)], check=True)
        (target / ".complete").touch()


def checked_boards():
    return sorted(p.parent.name for p in build.BOARDS.glob("*/board.json")
                  if json.loads(p.read_text()).get("stubs"))


def board_files(board_name):
    """The Python files that go on the board, as they are in the source tree."""
    board = json.loads((build.BOARDS / board_name / "board.json").read_text())
    files = [build.FIRMWARE / name for name in ("main.py", "boot.py")
             if (build.FIRMWARE / name).exists()]
    files += [build.FIRMWARE / "pinsock" / rel
              for rel in build.layout.firmware_files(build.FIRMWARE / "pinsock", board["hal"])]
    files += [build.BOARDS / board_name / name
              for name in build.layout.board_modules(build.BOARDS / board_name)]
    return board, files


def write_config(board_name, out_dir, files=None):
    board, board_file_list = board_files(board_name)
    files = board_file_list if files is None else files
    install_stubs([STDLIB_STUBS, board["stubs"]])
    config = dict(PYRIGHT_SETTINGS)
    config.update({
        "typeshedPath": str(stub_dir(STDLIB_STUBS)),
        "stubPath": str(stub_dir(board["stubs"])),
        # Board folders hold the other boards' hardware layers (simhw.py): startup.py
        # names them, in branches a real board never takes.
        "extraPaths": [str(build.FIRMWARE), str(build.microdot_dir().parent)]
        + sorted(str(p.parent) for p in build.BOARDS.glob("*/*.py")
                 if p.name not in build.layout.BOARD_DATA_FILES),
        "pythonPath": sys.executable,
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "pyrightconfig.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path, files


def check(board_name, files=None):
    """Run pyright for one board. Returns (failures, other diagnostics, files checked).

    files: what to check (default: what goes on the board, see board_files).

    Failures: every error, and in the board's hardware layer every warning too.
    Not counted: what pyright says about the CPython fallbacks of compat-style
    feature detection (see host_only_lines).
    """
    config, files = write_config(board_name, ROOT / "build" / "typecheck" / board_name, files)
    board = json.loads((build.BOARDS / board_name / "board.json").read_text())
    proc = subprocess.run([sys.executable, "-m", "pyright", "--outputjson", "-p", str(config)]
                          + [str(p) for p in files], capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError("pyright did not run:\n" + proc.stdout + proc.stderr)
    failures, others = [], []
    # The board's hardware layer: the folders only boards of its hal carry.
    hal_folders = build.layout.HAL_FOLDERS.get(board["hal"], ())
    skipped = {}
    for d in report["generalDiagnostics"]:
        path = Path(d["file"])
        if path not in skipped:
            skipped[path] = host_only_lines(path)
        line = d.get("range", {}).get("start", {}).get("line", -1) + 1
        rule = d.get("rule", "")
        if line in skipped[path]["except"] or (
                line in skipped[path]["try"] and rule == "reportAssignmentType"):
            continue
        if d["severity"] == "error" or (d["severity"] == "warning"
                                         and path.parent.name in hal_folders):
            failures.append(d)
        else:
            others.append(d)
    if report["summary"]["filesAnalyzed"] != len(files):
        raise RuntimeError("pyright analysed %d of %d files:\n%s" % (
            report["summary"]["filesAnalyzed"], len(files), proc.stdout))
    return failures, others, files


def host_only_lines(path):
    """Lines of `try: <MicroPython import> / except ImportError: <CPython fallback>`.

    The firmware detects features at import (STYLE.md). The except branch runs only
    on CPython, so what it calls need not exist on a board; and pyright reports the
    try branch's import as clashing with the fallback's definition
    (reportAssignmentType), which is no error either. Everything else in the try
    branch is checked: the board must have what it imports there.
    """
    lines = {"try": set(), "except": set()}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Try):
            continue
        for handler in node.handlers:
            names = handler.type
            caught = {getattr(n, "id", None) for n in
                      (names.elts if isinstance(names, ast.Tuple) else [names])}
            if "ImportError" in caught:
                lines["try"].update(range(node.body[0].lineno, handler.lineno))
                lines["except"].update(range(handler.lineno, handler.end_lineno + 1))
    return lines


def describe(diagnostic):
    start = diagnostic.get("range", {}).get("start", {})
    path = Path(diagnostic["file"])
    return "%s:%d:%d: %s: %s (%s)" % (
        path.relative_to(ROOT) if path.is_relative_to(ROOT) else path, start.get("line", 0) + 1,
        start.get("character", 0) + 1, diagnostic["severity"],
        diagnostic["message"].replace("\n", " "), diagnostic.get("rule", ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("boards", nargs="*")
    parser.add_argument("--install", action="store_true", help="only install the stubs")
    args = parser.parse_args(argv)
    boards = args.boards or checked_boards()
    if args.install:
        packages = {STDLIB_STUBS}
        for name in boards:
            packages.add(board_files(name)[0]["stubs"])
        install_stubs(sorted(packages))
        return 0
    failed = False
    for name in boards:
        failures, others, files = check(name)
        for d in failures + others:
            print(describe(d))
        print("%s: %d files, %d failures, %d other notes" % (
            name, len(files), len(failures), len(others)))
        failed = failed or bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
