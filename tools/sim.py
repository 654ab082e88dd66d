"""Run the simulated board UNIX_SIM: the real firmware on the MicroPython unix port.

    python tools/sim.py [--http-port 8080] [--control-port 8081] [--https-port 8443]
                        [--max-clients N] [--debounce-ms N] [--state-dir DIR]

Builds build/UNIX_SIM/ (only what changed), then runs its main.py with the unix port.
When ready the firmware prints `serving on http://127.0.0.1:<port>`.
The `micropython` command comes from the project's environment; set MICROPYTHON to a
path to use another build of the unix port.
"""

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402

ROOT = build.ROOT
BOARD = "UNIX_SIM"
DEFAULT_STATE_DIR = ROOT / ".state" / BOARD
DEFAULT_UNIQUE_ID = "5153a1b0c0de"  # boards/UNIX_SIM/simhw.py's default too


def micropython_command():
    explicit = os.environ.get("MICROPYTHON")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise SystemExit("no micropython command: run `make sim`, or set MICROPYTHON")
    return found


def unique_id_of(state_dir):
    """The unique id of the simulator whose state folder is `state_dir`: 12 hex digits
    (like a MAC) of the SHA-256 of its path, so that several simulators, each with a
    folder of its own, are several boards; the default folder's is DEFAULT_UNIQUE_ID
    (pinsock-c0de, the name the docs show)."""
    state_dir = Path(state_dir).resolve()
    if state_dir == DEFAULT_STATE_DIR.resolve():
        return DEFAULT_UNIQUE_ID
    return hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]


def sim_command(build_dir, firmware_args, heapsize=None):
    """argv and environment that run a built firmware folder on the unix port."""
    cmd = [micropython_command()]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    cmd += ["main.py"] + firmware_args
    env = dict(os.environ)
    # .frozen keeps the port's built-in asyncio importable; lib/ holds microdot.
    env["MICROPYPATH"] = ".frozen:" + str(Path(build_dir) / "lib")
    return cmd, env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--control-port", type=int, default=8081)
    parser.add_argument("--https-port", type=int, default=8443,
                        help="HTTPS and WSS, when the state folder holds cert.der and key.der")
    parser.add_argument("--max-clients", type=int)
    parser.add_argument("--debounce-ms", type=int)
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                        help="folder that plays the device's flash (default .state/UNIX_SIM)")
    parser.add_argument("--unique-id", help="the simulated chip's unique id, 4 to 32 hex"
                        " digits (the device name is pinsock-<its last 4>); default:"
                        " derived from --state-dir, %s for the default one"
                        % DEFAULT_UNIQUE_ID)
    parser.add_argument("--heapsize", help="MicroPython heap, e.g. 128K")
    parser.add_argument("--build-dir", help="build into and run from this folder"
                        " (default build/UNIX_SIM)")
    # Board-config overrides passed through to the firmware as they are.
    passthrough = ("--ping-interval-ms", "--idle-timeout-ms", "--stuck-timeout-ms",
                   "--max-commands-per-s", "--log-size")
    for flag in passthrough:
        parser.add_argument(flag, type=int)
    args = parser.parse_args(argv)

    build_dir, _, _ = build.build(BOARD, args.build_dir)
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    firmware_args = ["--http-port", str(args.http_port), "--https-port", str(args.https_port),
                     "--control-port", str(args.control_port), "--state-dir", str(state_dir)]
    firmware_args += ["--unique-id", (args.unique_id or unique_id_of(state_dir)).lower()]
    if args.max_clients is not None:
        firmware_args += ["--max-clients", str(args.max_clients)]
    if args.debounce_ms is not None:
        firmware_args += ["--debounce-ms", str(args.debounce_ms)]
    for flag in passthrough:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            firmware_args += [flag, str(value)]
    cmd, env = sim_command(build_dir, firmware_args, args.heapsize)
    os.chdir(build_dir)
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    sys.exit(main())
