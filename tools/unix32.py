"""The 32-bit MicroPython unix port, built from MicroPython's own source, plain or with
pinsock frozen in: the closest this machine gets to a chip's heap.

    python tools/unix32.py [--frozen] [--quiet]     (make unix32 [FROZEN=1])

Prints the path of the executable, building it first if the cache has none:
    build/unix32/standard-<key>/micropython   the port's standard variant (asyncio
                                              frozen, as in the port on PyPI), 32-bit
    build/unix32/frozen-<key>/micropython     the same with boards/UNIX_SIM/manifest.py
                                              as FROZEN_MANIFEST: pinsock, simhw and
                                              microdot in the image, as on a board
                                              with a frozen image
    build/unix32/mpy-cross-<key>/mpy-cross    the source's own mpy-cross (host), for both

The source is tools/mpsource.py's: MICROPYTHON_SRC, or the tarball in
../shared/micropython/ unpacked once into build/micropython-src/. Nothing is written
into the source tree: every object file, generated header and frozen module goes to
the BUILD folder under build/unix32/ (and no Python bytecode cache is written).

The cache key is a SHA-256 of what the build reads: the contents of the source's
folders the unix port builds from (SOURCE_PARTS), the make arguments and the cross
compiler's version; for the frozen build also every file the real manifest tool
resolves for boards/UNIX_SIM/manifest.py (path in the image and contents: pinsock,
simhw, microdot, asyncio, ...) and the manifests themselves (boards/*.py). A build
happens only when one of those changes; older builds of the same kind are removed.

Needs Debian's gcc-i686-linux-gnu, libc6-dev-i386-cross (headers) and libc6-i386 (to
run it): tools/setup_system.sh installs them. About 60 s for mpy-cross and one port
build on 2 cores, 40 s for another.
"""

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mpsource  # noqa: E402

ROOT = mpsource.ROOT
CACHE = ROOT / "build" / "unix32"
MANIFEST = ROOT / "boards" / "UNIX_SIM" / "manifest.py"
CROSS_COMPILE = "i686-linux-gnu-"
# The make arguments of the 32-bit build (../shared/micropython/README.md): there is no
# berkeley-db nor libffi in the pinned source, and CROSS_COMPILE is what gives 32 bits.
MAKE_ARGS = ("CROSS_COMPILE=" + CROSS_COMPILE, "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0")
# What of the source tree the unix port and mpy-cross build from (py/mkenv.mk, py/py.mk,
# extmod/extmod.mk, ports/unix/Makefile and its variants' manifests).
SOURCE_PARTS = ("py", "extmod", "shared", "mpy-cross", "ports/unix", "tools",
                "lib/micropython-lib", "lib/mbedtls", "lib/mbedtls_errors", "lib/littlefs",
                "lib/oofatfs", "lib/uzlib", "lib/libm", "lib/libm_dbl", "lib/re1.5",
                "lib/crypto-algorithms")
JOBS = str(os.cpu_count() or 2)


class Unavailable(Exception):
    """No source tree, or no cross compiler: says how to get one."""


def missing():
    """Why the 32-bit port cannot be built here (a sentence saying how to enable it),
    or None when it can."""
    if mpsource.source_dir() is None:
        return mpsource.why_missing()
    if shutil.which(CROSS_COMPILE + "gcc") is None:
        return ("no %sgcc for the 32-bit unix port: run `bash tools/setup_system.sh` as root"
                " (Debian: gcc-i686-linux-gnu, libc6-dev-i386-cross, libc6-i386)"
                % CROSS_COMPILE)
    return None


def _hash_tree(digest, top, parts):
    for part in parts:
        base = top / part
        if not base.exists():
            digest.update(b"missing " + part.encode() + b"\n")
            continue
        for folder, dirs, files in os.walk(base):
            # Build folders (a checkout's own builds) and caches are not sources.
            dirs[:] = sorted(d for d in dirs if not d.startswith(("build", "__pycache__", ".")))
            for name in sorted(files):
                path = Path(folder) / name
                if name.endswith(".pyc") or not path.is_file():
                    continue
                digest.update(path.relative_to(top).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())


def _compiler_version():
    proc = subprocess.run([CROSS_COMPILE + "gcc", "--version"], capture_output=True,
                          text=True, timeout=30)
    return proc.stdout.splitlines()[0] if proc.stdout else "unknown"


def source_key(top):
    """Hex SHA-256 of the source the port builds from, the make arguments and the
    compiler."""
    digest = hashlib.sha256()
    digest.update(repr((MAKE_ARGS, _compiler_version())).encode())
    _hash_tree(digest, top, SOURCE_PARTS)
    return digest.hexdigest()


def manifest_key(top, src_key):
    """Hex SHA-256 of the frozen build's inputs: the source key, the manifests in
    boards/ and every file the real manifest tool resolves for the UNIX_SIM manifest."""
    digest = hashlib.sha256(src_key.encode())
    for path in sorted((ROOT / "boards").glob("*.py")) + [MANIFEST]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    manifest = mpsource.run_manifest(MANIFEST, "UNIX_SIM")
    for out in sorted(manifest.files(), key=lambda f: f.target_path):
        digest.update(repr((out.target_path, out.file_type, out.opt)).encode())
        digest.update(hashlib.sha256(Path(out.full_path).read_bytes()).digest())
    return digest.hexdigest()


def _make(args, log_path, log):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    # A make variable set in the caller's environment (our own Makefile's FROZEN=1,
    # BOARD=...) must not reach MicroPython's makefiles.
    for name in ("FROZEN", "BOARD", "UNIX32", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    with open(log_path, "a") as out:
        out.write("$ make %s\n" % " ".join(args))
        out.flush()
        proc = subprocess.run(["make"] + list(args), stdout=out, stderr=subprocess.STDOUT,
                              env=env)
    if proc.returncode != 0:
        tail = Path(log_path).read_text().splitlines()[-25:]
        raise SystemExit("unix32: the build failed (make exit %d); the end of %s:\n%s" % (
            proc.returncode, os.path.relpath(log_path), "\n".join(tail)))


def _cached(kind, key, program, build, log):
    """The executable `program` of build folder CACHE/<kind>-<key[:16]>, built by
    build(folder) unless a finished build with that key is there."""
    folder = CACHE / ("%s-%s" % (kind, key[:16]))
    done = folder / "key"
    if done.exists() and done.read_text() == key and (folder / program).exists():
        return folder / program
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished build: start clean
    folder.mkdir(parents=True)
    log("unix32: building %s in %s (about a minute) ..." % (kind, os.path.relpath(folder)))
    build(folder)
    done.write_text(key)
    for old in CACHE.glob(kind + "-*"):  # builds for inputs that have changed since
        if old != folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return folder / program


def _mpy_cross(top, src_key, log):
    def build_mpy_cross(folder):
        _make(["-C", str(top / "mpy-cross"), "-j" + JOBS, "BUILD=" + str(folder)],
              folder / "build.log", log)

    return _cached("mpy-cross", src_key, "mpy-cross", build_mpy_cross, log)


def build_mpy_cross(log=print):
    """The source's own mpy-cross (for the host), built if needed (tools/qemu_device.py)."""
    top = mpsource.source_dir()
    if top is None:
        raise Unavailable(mpsource.why_missing())
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _mpy_cross(top, source_key(top), log)


def build(frozen=False, log=print):
    """Path of the 32-bit unix port (frozen: with pinsock frozen in), built if needed.
    Raises Unavailable, saying how to enable it, without source or compiler."""
    why = missing()
    if why:
        raise Unavailable(why)
    top = mpsource.source_dir()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (tests, bench, make)
        src_key = source_key(top)
        mpy_cross = _mpy_cross(top, src_key, log)
        kind, key, extra = "standard", src_key, []
        if frozen:
            kind, key = "frozen", manifest_key(top, src_key)
            extra = ["FROZEN_MANIFEST=" + str(MANIFEST)]

        def build_port(folder):
            _make(["-C", str(top / "ports" / "unix"), "-j" + JOBS, *MAKE_ARGS,
                   "BUILD=" + str(folder), "MICROPY_MPYCROSS=" + str(mpy_cross), *extra],
                  folder / "build.log", log)

        return _cached(kind, key, "micropython", build_port, log)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frozen", action="store_true",
                        help="with pinsock frozen in (boards/UNIX_SIM/manifest.py)")
    parser.add_argument("--quiet", action="store_true", help="print only the path")
    args = parser.parse_args(argv)
    log = (lambda text: None) if args.quiet else (
        lambda text: print(text, file=sys.stderr, flush=True))
    try:
        path = build(args.frozen, log)
    except Unavailable as exc:
        print("unix32: %s" % exc, file=sys.stderr)
        return 2
    print(os.path.relpath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
