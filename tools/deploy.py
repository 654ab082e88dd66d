"""Copy build/<BOARD>/ to a board with mpremote, updating only what changed, then reset it.

    python tools/deploy.py BOARD PORT [--config FILE] [--pages DIR] [--no-reset] [--frozen]

BOARD is a folder of boards/; PORT the board's serial port (/dev/ttyACM0, /dev/ttyUSB0,
COM3) or a virtual board's pseudo-terminal. It builds first (only what changed), then
in one mpremote session:
  1. stops the running firmware (Ctrl-C) without a soft reset, and keeps its watchdog
     fed while the copy runs (pinsock.hardware.net.hold_watchdog);
  2. removes files the build no longer makes from the folders the build owns
     (pinsock/, lib/microdot/, www/), so a stale module cannot shadow a new one;
  3. copies the build folder to the board's root; mpremote compares SHA-256 hashes
     and skips a file that is already there unchanged;
  4. copies config.json (Wi-Fi and the like), when there is one, on real boards, and
     cert.der and key.der (HTTPS, docs/SECURITY.md) when both are there;
  5. with --pages DIR (`make deploy PAGES=DIR`), makes the board's pages/ folder hold
     exactly the files of DIR: the user's own pages, served at /<name>
     (firmware/pinsock/transport/userpages.py). Each must be a page's name
     ([a-z0-9._-], a type the firmware serves, or its .gz twin) of at most
     MAX_PAGE_BYTES; DIR may hold nothing else. Without --pages, pages/ is left alone;
  6. resets the board, which then boots the new firmware. A virtual board (the
     simulator's unix port) has no reset: start its main.py yourself.
Files the firmware writes on the board (settings.json) are left alone.

--frozen is for a board whose MicroPython image has pinsock and microdot frozen in
(boards/<BOARD>/manifest.py): it copies only main.py, boot.py, board.json and www/
(no compiled module: frozen_modules()), and removes pinsock/ and lib/microdot/ from
the board, which would shadow the frozen modules.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

ROOT = build.ROOT
# Folders on the board that hold only what the build puts there; a/ and b/ are the
# slots of updates over the network (docs/OTA.md), which a deploy replaces: it
# installs in the root, and removes the update state (ota.json) so the loader runs it.
OWNED_DIRS = ("pinsock", "lib/microdot", "www", "a", "b")
# What a frozen image carries in its flash instead of the file system: these folders,
# and the board folder's own modules at the top (simhw.mpy); every compiled module.
FROZEN_DIRS = ("pinsock", "lib")
DEVICE_CONFIG = "config.json"
# The user's own pages on a board (firmware/pinsock/boot/startup.py BOARD_PAGES_FOLDER),
# what the firmware serves of them (transport/userpages.py TYPES, UserPages.max_page_bytes,
# .max_name_len); tests_host/test_deploy.py checks they agree.
PAGES_DIR = "pages"
PAGE_TYPES = ("html", "htm", "js", "css", "json", "svg", "png", "ico")
MAX_PAGE_BYTES = 65536
MAX_PAGE_NAME = 64
_PAGE_NAME = re.compile(r"[a-z0-9_-][a-z0-9._-]*\.(%s)(\.gz)?\Z" % "|".join(PAGE_TYPES))
# The TLS certificate and key (firmware/pinsock/boot/tlskeys.py): copied together or not at all.
TLS_FILES = ("cert.der", "key.der")

# Run on the board right after Ctrl-C. The stopped firmware's watchdog would restart
# the board in the middle of the copy; keep feeding it until the reset.
HOLD_WATCHDOG = """\
import sys
_net = sys.modules.get("pinsock.hardware.net")
if _net:
    _net.hold_watchdog()
"""

# Run on the board before the pages are copied into their folder.
MAKE_PAGES_DIR = """\
import os
try:
    os.mkdir(%r)
except OSError:
    pass
""" % PAGES_DIR

# Run on the board: remove files under OWNED_DIRS that are not in KEEP.
PRUNE = """\
import os
def _prune(folder, keep):
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = folder + "/" + name
        if os.stat(path)[0] & 0x4000:
            _prune(path, keep)
        elif path not in keep:
            os.remove(path)
            print("removed stale", path)
    if not os.listdir(folder):
        os.rmdir(folder)
for _folder in {dirs!r}:
    _prune(_folder, {keep!r})
for _name in ("ota.json", "ota.json.tmp"):
    try:
        os.remove(_name)
        print("removed", _name)
    except OSError:
        pass
"""


def mpremote_command():
    return [sys.executable, "-m", "mpremote"]


def frozen_modules(build_dir):
    """The build's files a frozen image carries instead (paths relative to build_dir):
    what `--frozen` leaves off the board's file system."""
    return sorted(p.relative_to(build_dir).as_posix() for p in build_dir.rglob("*")
                  if p.is_file() and (p.relative_to(build_dir).parts[0] in FROZEN_DIRS
                                      or p.parent == build_dir and p.suffix == ".mpy"))


def pages_to_copy(folder):
    """The files of the folder `folder` of the user's pages, sorted; SystemExit saying
    what is wrong when one is not a page the firmware serves (transport/userpages.py)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit("deploy: PAGES=%s is not a folder" % folder)
    files = sorted(folder.iterdir())
    for path in files:
        name = path.name
        if path.is_dir():
            raise SystemExit("deploy: %s is a folder; pages are served from one folder,"
                             " without subfolders" % path)
        if not _PAGE_NAME.match(name) or len(name) - name.endswith(".gz") * 3 > MAX_PAGE_NAME:
            raise SystemExit(
                "deploy: %s is not a page's name: at most %d of a-z 0-9 . _ -, not"
                " starting with '.', ending in .%s (or that and .gz)"
                % (path, MAX_PAGE_NAME, " .".join(PAGE_TYPES)))
        if path.stat().st_size > MAX_PAGE_BYTES:
            raise SystemExit("deploy: %s is %d bytes; the firmware serves at most %d"
                             " (UserPages.max_page_bytes)"
                             % (path, path.stat().st_size, MAX_PAGE_BYTES))
    return files


def deploy_commands(build_dir, port, config=None, reset=True, frozen=False, tls_files=(),
                    pages=None):
    """(mpremote argv that deploys build_dir to the board on port, files it copies).
    `pages`: the user's pages (pages_to_copy) that the board's PAGES_DIR is to hold;
    None leaves it alone."""
    skip = set(frozen_modules(build_dir)) if frozen else set()
    wanted = sorted(p.relative_to(build_dir).as_posix() for p in build_dir.rglob("*")
                    if p.is_file() and p.relative_to(build_dir).as_posix() not in skip)
    keep = [f for f in wanted if f.split("/")[0] in {d.split("/")[0] for d in OWNED_DIRS}]
    owned = OWNED_DIRS
    if pages is not None:
        owned += (PAGES_DIR,)
        keep += ["%s/%s" % (PAGES_DIR, Path(p).name) for p in pages]
    entries = sorted(str(p) for p in build_dir.iterdir()
                     if p.name not in skip and not (frozen and p.name in FROZEN_DIRS))
    # `resume`: no soft reset on connecting. A soft reset would stop a real board's
    # timers (and with them the watchdog hold), and it ends a virtual board's process.
    cmd = mpremote_command() + ["connect", port, "resume",
                                "exec", HOLD_WATCHDOG,
                                "+", "exec", PRUNE.format(dirs=owned, keep=keep),
                                "+", "fs", "cp", "-r"] + entries + [":./"]
    if pages:
        cmd += ["+", "exec", MAKE_PAGES_DIR, "+", "fs", "cp"] + [str(p) for p in pages] + [
            ":%s/" % PAGES_DIR]
        wanted = wanted + ["%s/%s" % (PAGES_DIR, Path(p).name) for p in pages]
    if config is not None:
        cmd += ["+", "fs", "cp", str(config), ":" + DEVICE_CONFIG]
    for path in tls_files:
        cmd += ["+", "fs", "cp", str(path), ":" + Path(path).name]
    if reset:
        cmd += ["+", "reset"]
    return cmd, wanted


def tls_files_to_copy(folder):
    """cert.der and key.der in `folder` when both are there; else none, and why."""
    present = [folder / name for name in TLS_FILES if (folder / name).exists()]
    if len(present) == 1:
        print("deploy: %s without %s: copying neither; the board keeps what it has"
              % (present[0].name, [n for n in TLS_FILES if n != present[0].name][0]))
        return ()
    return tuple(present)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board")
    parser.add_argument("port", help="serial port or pseudo-terminal of the board")
    parser.add_argument("--config", help="the device config to copy as config.json "
                        "(default: config.json in the project folder, if there is one)")
    parser.add_argument("--pages", metavar="DIR", help="a folder of your own pages: the"
                        " board's %s/ is made to hold exactly its files, served at /<name>"
                        % PAGES_DIR)
    parser.add_argument("--no-reset", action="store_true",
                        help="leave the board at its REPL after copying")
    parser.add_argument("--frozen", action="store_true",
                        help="the board's image has pinsock and microdot frozen in")
    args = parser.parse_args(argv)

    if not Path(args.port).exists() and not re.match(r"(COM\d+|rfc2217://|socket://)",
                                                    args.port):
        raise SystemExit("deploy: no port %s (is the board plugged in?)" % args.port)
    pages = pages_to_copy(args.pages) if args.pages else None  # before anything is done
    build_dir, total, count = build.build(args.board)
    print("built %s: %d files, %d bytes (%.1f KiB)" % (
        os.path.relpath(build_dir), count, total, total / 1024))
    board = json.loads((build_dir / "board.json").read_text())
    real = board["hal"] != "sim"

    config = None
    if real:
        config = Path(args.config) if args.config else ROOT / DEVICE_CONFIG
        if not config.exists():
            if args.config:
                raise SystemExit("deploy: no config file %s" % config)
            print("deploy: no %s: the board keeps the one it has, or opens its access "
                  "point; make one with `python tools/configure.py`" % DEVICE_CONFIG)
            config = None
    tls_files = tls_files_to_copy(ROOT) if real else ()
    reset = real and not args.no_reset

    cmd, wanted = deploy_commands(build_dir, args.port, config, reset, args.frozen, tls_files,
                                  pages)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout
    sys.stdout.write(output)
    if proc.returncode != 0:
        raise SystemExit("deploy: mpremote failed (exit %d)" % proc.returncode)
    unchanged = set(re.findall(r"^Up to date: (?:\./)?(\S+)$", output, re.M))
    skipped = len(unchanged.intersection(wanted))
    print("deployed %s to %s: %d files, %d copied, %d unchanged%s" % (
        args.board, args.port, len(wanted), len(wanted) - skipped, skipped,
        "; board reset" if reset else
        "" if real else "; a virtual board has no reset: start its main.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
