"""The device-logic tests (tests_host/device/) on MicroPython's qemu port: a Cortex-M3
(MPS2-AN385 under qemu-system-arm), so real Thumb-2 code, 31-bit small ints, single-
precision floats and `ticks` that wrap as on a chip.

    python tools/qemu_device.py [MODULE ...]      (default: every module it can run)

Builds ports/qemu from MicroPython's source (tools/mpsource.py) out of the source tree,
cached like tools/unix32.py in build/qemu/<key>/firmware.elf, with asyncio, the
firmware (every board's part: no pinsock/hardware/), microdot and the test modules
frozen in (the port has no file system of its own). Each module then runs in a fresh
qemu, driven over its raw REPL on stdin/stdout: a small file system in RAM (MemFs
below) is mounted at / and given the data files the tests read (transcripts, the
protocol document), and every test_* function prints PASS or FAIL as under
tests_host/device/mpyrun.py.

Needs Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (about
850 MB installed; tools/setup_system.sh leaves them out). What it costs on this 2-core
machine: about 30-45 s to build the image, about 55 s to run the 15 modules (a fresh
qemu each, 2-5 s apiece). NOT_ON_QEMU lists the modules that cannot run there; SHIMS
what the port lacks that a board has, added in Python.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
import mpsource  # noqa: E402
import unix32  # noqa: E402

ROOT = build.ROOT
DEVICE = ROOT / "tests_host" / "device"
CACHE = ROOT / "build" / "qemu"
BOARD = "MPS2_AN385"
QEMU = ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null",
        "-semihosting", "-serial", "stdio"]
# The chip's own heap would be the port's default 140 KiB; the tests' data files live
# in the RAM file system too, so the heap is 1 MiB (of the board's 4 MiB).
HEAP_SIZE = 1024 * 1024
SOURCE_PARTS = ("py", "extmod", "shared", "mpy-cross", "ports/qemu", "tools",
                "lib/micropython-lib", "lib/uzlib", "lib/libm", "lib/re1.5")
# Modules the qemu port cannot run, and why.
NOT_ON_QEMU = {"test_tlskeys": "the qemu port has no tls module"}
# What the qemu port lacks that a board has, in Python (frozen in; they extend the
# built-in modules): hashlib.sha1 (boards have mbedtls'), time.time() (boards: an RTC),
# os.urandom() (boards: a hardware RNG).
SHIMS = ROOT / "tools" / "qemu_shims"
# Data files the tests open, relative to tests_host/device/ (the RAM file system holds
# them at the same place relative to the working folder /t/device).
DATA = ("transcripts", "../../docs/PROTOCOL.md")
WORKDIR = "/t/device"


def missing():
    if mpsource.source_dir() is None:
        return mpsource.why_missing()
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return ("no %s: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                    "qemu-system-arm" % tool)
    return None


def modules():
    return sorted(p.stem for p in DEVICE.glob("test_*.py") if p.stem not in NOT_ON_QEMU)


def manifest_text():
    firmware = build.layout.firmware_files(ROOT / "firmware" / "pinsock", "sim")
    lines = ['include("$(MPY_DIR)/extmod/asyncio")',
             "package(%r, files=%r, base_path=%r)" % ("pinsock", firmware,
                                                      str(ROOT / "firmware")),
             "package(%r, files=%r, base_path=%r)" % (
                 "microdot", list(build.MICRODOT_MODULES), str(build.microdot_dir().parent))]
    lines += ["module(%r, base_path=%r)" % (p.name, str(DEVICE))
              for p in sorted(DEVICE.glob("*.py")) if p.name != "mpyrun.py"]
    lines += ["module(%r, base_path=%r)" % (p.name, str(SHIMS))
              for p in sorted(SHIMS.glob("*.py"))]
    return "\n".join(lines) + "\n"


def image():
    """Path of the qemu firmware image, built if its inputs changed."""
    why = missing()
    if why:
        raise unix32.Unavailable(why)
    top = mpsource.source_dir()
    text = manifest_text()
    digest = hashlib.sha256(text.encode() + str(HEAP_SIZE).encode())
    unix32._hash_tree(digest, top, SOURCE_PARTS)
    for path in sorted((ROOT / "firmware").rglob("*.py")) + sorted(DEVICE.glob("*.py")) + [
            build.microdot_dir() / m for m in build.MICRODOT_MODULES] + sorted(
            SHIMS.glob("*.py")):
        digest.update(str(path).encode() + hashlib.sha256(path.read_bytes()).digest())
    key = digest.hexdigest()
    CACHE.mkdir(parents=True, exist_ok=True)
    # Needs no cross compiler: mpy-cross runs on the host.
    mpy_cross = unix32.build_mpy_cross(lambda text: print(text, file=sys.stderr))

    def make(folder):
        manifest = folder / "manifest.py"
        manifest.write_text(text)
        args = ["-C", str(top / "ports" / "qemu"), "-j" + unix32.JOBS, "BOARD=" + BOARD,
                "BUILD=" + str(folder), "FROZEN_MANIFEST=" + str(manifest),
                "MICROPY_HEAP_SIZE=%d" % HEAP_SIZE, "MICROPY_MPYCROSS=" + str(mpy_cross)]
        unix32._make(args, folder / "build.log", print)

    return _cached(CACHE / key[:16], key, make)


def _cached(folder, key, make):
    done = folder / "key"
    if done.exists() and done.read_text() == key and (folder / "firmware.elf").exists():
        return folder / "firmware.elf"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print("qemu: building %s (about a minute) ..." % os.path.relpath(folder), file=sys.stderr)
    make(folder)
    done.write_text(key)
    for old in CACHE.iterdir():
        if old.is_dir() and old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder / "firmware.elf"


# A file system in RAM, mounted at /: MicroPython's VFS protocol in Python. Files are
# bytes in a dict by absolute path; folders a set.
MEMFS = r'''
import io, os, vfs
class _W(io.IOBase):
    def __init__(s, fs, p):
        s.fs, s.p, s.b = fs, p, bytearray()
    def write(s, b):
        s.b.extend(b)
        return len(b)
    def close(s):
        s.fs.f[s.p] = bytes(s.b)
    def ioctl(s, req, arg):
        if req == 4:
            s.close()
        return 0
    def __enter__(s):
        return s
    def __exit__(s, *a):
        s.close()
class MemFs:
    def __init__(s):
        s.f, s.d, s.cwd = {}, {"/"}, "/"
    def _p(s, p):
        if not p.startswith("/"):
            p = s.cwd.rstrip("/") + "/" + p
        out = []
        for part in p.split("/"):
            if part == "..":
                out and out.pop()
            elif part and part != ".":
                out.append(part)
        return "/" + "/".join(out)
    def mount(s, readonly, mkfs):
        pass
    def umount(s):
        pass
    def chdir(s, p):
        s.cwd = s._p(p)
    def getcwd(s):
        return s.cwd
    def mkdir(s, p):
        p = s._p(p)
        if p in s.d or p in s.f:
            raise OSError(17)
        s.d.add(p)
    def rmdir(s, p):
        p = s._p(p)
        if any(k.startswith(p + "/") for k in list(s.f) + list(s.d)):
            raise OSError(39)
        s.d.remove(p)
    def remove(s, p):
        p = s._p(p)
        if p not in s.f:
            raise OSError(2)
        del s.f[p]
    def rename(s, a, b):
        a, b = s._p(a), s._p(b)
        if a not in s.f:
            raise OSError(2)
        s.f[b] = s.f.pop(a)
    def stat(s, p):
        p = s._p(p)
        if p in s.d:
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if p in s.f:
            return (0x8000, 0, 0, 0, 0, 0, len(s.f[p]), 0, 0, 0)
        raise OSError(2)
    def statvfs(s, p):
        return (512, 512, 4096, 4096, 4096, 0, 0, 0, 0, 255)
    def ilistdir(s, p):
        p = s._p(p).rstrip("/") + "/"
        if p != "/" and p[:-1] not in s.d:
            raise OSError(2)
        for k in sorted(s.d):
            if k != "/" and k.startswith(p) and "/" not in k[len(p):]:
                yield (k[len(p):], 0x4000, 0)
        for k in sorted(s.f):
            if k.startswith(p) and "/" not in k[len(p):]:
                yield (k[len(p):], 0x8000, 0)
    def open(s, p, mode):
        p = s._p(p)
        if p in s.d:
            raise OSError(21)
        if "w" in mode:
            if p.rsplit("/", 1)[0] not in s.d and p.count("/") > 1:
                raise OSError(2)
            return _W(s, p)
        if p not in s.f:
            raise OSError(2)
        return io.BytesIO(s.f[p]) if "b" in mode else io.StringIO(s.f[p].decode())
_fs = MemFs()
vfs.mount(_fs, "/")
def _put(p, data):
    parts = p.split("/")
    for i in range(2, len(parts)):
        try:
            os.mkdir("/".join(parts[:i]))
        except OSError:
            pass
    _fs.f[_fs._p(p)] = data
'''

RUN = r'''
import sys
for _p in ("/tmp", %r):
    _put(_p + "/x", b"")
    os.remove(_p + "/x")
os.chdir(%r)
def _run(name):
    failed = 0
    module = __import__(name)
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        try:
            getattr(module, attr)()
            print("PASS %%s.%%s" %% (name, attr))
        except Exception as exc:
            failed += 1
            print("FAIL %%s.%%s" %% (name, attr))
            sys.print_exception(exc)
    print("DONE failed=%%d" %% failed)
_run(%r)
'''


def data_files():
    """(path in the RAM file system, bytes) of every data file the tests read."""
    out = []
    for rel in DATA:
        path = (DEVICE / rel).resolve()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            out.append((os.path.normpath(WORKDIR + "/" + rel + "/" + os.path.relpath(f, path))
                        if path.is_dir() else os.path.normpath(WORKDIR + "/" + rel),
                        f.read_bytes()))
    return out


def run_module(elf, module, timeout=300):
    """(return code 0 when every test passed, the module's output) on qemu."""
    script = MEMFS + "".join("_put(%r, %r)\n" % (p, data) for p, data in data_files())
    script += RUN % (WORKDIR, WORKDIR, module)
    # Raw REPL: Ctrl-A, the code, Ctrl-D; it answers OK, the output, \x04, errors, \x04.
    # Ctrl-B back to the friendly REPL after; machine.reset() ends qemu (semihosting).
    stdin = (b"\r\x03\x03\x01" + script.encode() + b"\x04" + b"\x02"
             + b"import machine\r\nmachine.reset()\r\n")
    proc = subprocess.run(QEMU + ["-kernel", str(elf)], input=stdin, capture_output=True,
                          timeout=timeout)
    out = proc.stdout.decode(errors="replace")
    start = out.find("OK")
    text = out[start + 2:] if start >= 0 else out
    text = text.split("\x04")
    body = text[0] + ("".join(text[1:2]) if len(text) > 1 else "")
    ok = "DONE failed=0" in body and "Traceback" not in "".join(text[1:2])
    return (0 if ok else 1), body


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=modules())
    args = parser.parse_args(argv)
    try:
        elf = image()
    except unix32.Unavailable as exc:
        print("qemu: %s" % exc, file=sys.stderr)
        return 2
    failed = 0
    for module in args.modules:
        code, out = run_module(elf, module)
        failed += code
        passes = out.count("PASS ")
        print("%s: %s (%d passed)" % (module, "ok" if code == 0 else "FAILED", passes))
        if code:
            print(out[-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
