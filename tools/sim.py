"""Run the simulated board UNIX_SIM: the real firmware on the MicroPython unix port.

    python tools/sim.py [--http-port 8080] [--control-port 8081] [--https-port 8443]
                        [--max-clients N] [--debounce-ms N] [--state-dir DIR]
                        [--config FILE] [--unix32 | --frozen]

Builds build/UNIX_SIM/ (only what changed), then runs its main.py with the unix port.
When ready the firmware prints `serving on http://127.0.0.1:<port>`.
The `micropython` command comes from the project's environment; set MICROPYTHON to a
path to use another build of the unix port.

--unix32: the same .mpy build on the 32-bit unix port built from MicroPython's source
(tools/unix32.py: MICROPYTHON_SRC, or ../shared/micropython). --frozen: that port with
pinsock frozen in (boards/UNIX_SIM/manifest.py), run from <build dir>_frozen/, which
holds what `make deploy FROZEN=1` would copy (main.py, boot.py, board.json, www/) and
no compiled module. MICROPYTHON, when set, is the executable either way.
A port already in use stops it before it starts, saying which and how to choose another.

config.json: the state folder plays the board's flash, and the firmware reads
config.json there, as a board reads its own. The project's config.json (the one
`make configure` writes and `make deploy` copies onto a board) is copied there at
start, so `make configure` then `make sim` runs with what was configured (the
password, allowed_origins, mqtt; the Wi-Fi keys mean nothing here). That is done for
the default state folder, or from --config FILE for any; a copy in the state folder
that is newer (edited there) is kept, and said so.

The flash: the state folder holds what a board's flash does (docs/OTA.md): the loader
main.py (and boot.py) in its root, the app in the slot folder a/ (or b/ after an update
over the network), config.json, settings.json and the TLS keys beside them. Each start
installs the build there, as `make deploy` would, until the flash holds an update
(ota.json): from then on it boots what the flash holds, as a board does; --reinstall
puts the build back (and forgets the update).

Reboots and the watchdog: the firmware runs as a child process, and this supervisor
starts it again from the flash when it restarts itself (exit code 3: machine.reset(),
a Wi-Fi setup, an update), when it dies (a crash, a SIGKILL: a power cut), and, as a
board's watchdog would, when it stops answering its control port for --watchdog-ms
(--boot-timeout-ms from its start). It gives up after 5 starts in a row that never
answered. It prints `sim: firmware pid N` at each start. --exec replaces the
supervisor by the firmware (no reboots, no watchdog).
"""

import argparse
import hashlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402
import deploy  # noqa: E402
import unix32  # noqa: E402

ROOT = build.ROOT
BOARD = "UNIX_SIM"
DEFAULT_STATE_DIR = ROOT / ".state" / BOARD
DEFAULT_UNIQUE_ID = "5153a1b0c0de"  # boards/UNIX_SIM/simhw.py's default too
RESTART_EXIT_CODE = 3  # the simulated board asks to be started again (simwifi.py's too)
PROJECT_CONFIG = ROOT / "config.json"  # make configure's, which make deploy copies too
# The flash (docs/OTA.md): the loader's files in the root, which an update never
# replaces; the app in a slot folder; the update state.
LOADER_FILES = ("main.py", "boot.py", "otaboot.mpy")
INSTALL_SLOT = "a"
SLOTS = ("a", "b")
OTA_STATE = "ota.json"
# The supervisor (play the watchdog): a board's longest watchdog timeout
# (hardware/net.py Watchdog.max_timeout_ms), and the start-up's allowance (CI machines).
WATCHDOG_MS = 8000
BOOT_TIMEOUT_MS = 30000
MAX_UNANSWERED_STARTS = 5
CONFIG_ERROR_EXIT_CODE = 2  # main.py: the board config is unusable; a restart will not help


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


def target_command(target):
    """The unix port for a target: "mpy" (the project's, 64-bit), "unix32" or "frozen"
    (tools/unix32.py's builds). MICROPYTHON, when set, wins."""
    if target == "mpy" or os.environ.get("MICROPYTHON"):
        return micropython_command()
    try:
        return str(unix32.build(frozen=target == "frozen",
                                log=lambda text: print(text, file=sys.stderr, flush=True)))
    except unix32.Unavailable as exc:
        raise SystemExit("sim: no 32-bit unix port: %s" % exc)


def frozen_folder(build_dir, out=None):
    """What a board with a frozen image holds on its file system (`make deploy
    FROZEN=1`): build_dir's files but its compiled modules, copied to `out` (default
    <build_dir>_frozen), which holds nothing else. Returns the folder."""
    build_dir = Path(build_dir)
    out = Path(out) if out else build_dir.with_name(build_dir.name + "_frozen")
    frozen = set(deploy.frozen_modules(build_dir))
    wanted = {p.relative_to(build_dir) for p in build_dir.rglob("*")
              if p.is_file() and p.relative_to(build_dir).as_posix() not in frozen}
    for rel in wanted:
        src, dst = build_dir / rel, out / rel
        if not build.is_fresh(src, dst):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(out) not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return out


def sim_command(build_dir, firmware_args, heapsize=None, executable=None, frozen=False,
                flash=False):
    """argv and environment that run a built firmware folder on the unix port (flash:
    a flash folder, install()'s, whose loader finds the slot's lib/ itself)."""
    cmd = [executable or micropython_command()]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    cmd += ["main.py"] + firmware_args
    env = dict(os.environ)
    # .frozen keeps the port's built-in asyncio importable (and, frozen, pinsock and
    # microdot); lib/ holds microdot.
    env["MICROPYPATH"] = ".frozen" if frozen or flash else \
        ".frozen:" + str(Path(build_dir) / "lib")
    return cmd, env


def sync_tree(src, dst, skip=()):
    """Make folder dst hold what src holds (but the top-level names in skip): copies
    what changed, removes what src does not have."""
    src, dst = Path(src), Path(dst)
    wanted = set()
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if not path.is_file() or rel.parts[0] in skip:
            continue
        wanted.add(rel)
        target = dst / rel
        if not (target.exists() and target.stat().st_size == path.stat().st_size
                and build.is_fresh(path, target)):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    if dst.exists():
        for path in sorted(dst.rglob("*"), reverse=True):
            if path.is_file() and path.relative_to(dst) not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def install(app_dir, state_dir, reinstall=False, log=print):
    """Put the build app_dir on the flash state_dir, as make deploy puts it on a board:
    the loader in the root, the app in slot a/. A flash that holds an update over the
    network (ota.json) is left as it is unless `reinstall`, which forgets the update.
    Returns True when it installed."""
    app_dir, state_dir = Path(app_dir), Path(state_dir)
    state = state_dir / OTA_STATE
    if state.exists() and not reinstall:
        log("sim: the flash %s holds an update (%s): booting what it holds"
            " (--reinstall puts the build back)" % (state_dir, OTA_STATE))
        return False
    for name in LOADER_FILES:
        if (app_dir / name).exists():
            shutil.copy2(app_dir / name, state_dir / name)
    sync_tree(app_dir, state_dir / INSTALL_SLOT, skip=LOADER_FILES)
    for leftover in [state_dir / slot for slot in SLOTS if slot != INSTALL_SLOT]:
        shutil.rmtree(leftover, ignore_errors=True)
    for name in (OTA_STATE, OTA_STATE + ".tmp"):
        (state_dir / name).unlink(missing_ok=True)
    return True


def answers(host, port, timeout):
    """Whether the firmware answers its control port now (the supervisor's feed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"get 0\n")
            return conn.recv(16)[:1] in (b"0", b"1")
    except OSError:
        return False


def watch(proc, host, port, watchdog_ms, boot_timeout_ms, log=print):
    """Wait for the firmware `proc` to end, playing its watchdog: killed when it does not
    answer within boot_timeout_ms of its start, or for watchdog_ms once it has.
    Returns (exit code or None when the watchdog killed it, whether it ever answered)."""
    started = last = time.monotonic()
    served = not watchdog_ms  # (without a watchdog, not asked: taken as answering)
    period = max(0.05, watchdog_ms / 4000) if watchdog_ms else 1.0
    while True:
        try:
            return proc.wait(timeout=period), served
        except subprocess.TimeoutExpired:
            pass
        if not watchdog_ms:
            continue
        now = time.monotonic()
        if answers(host, port, period):
            served, last = True, now
            continue
        if served and now - last > watchdog_ms / 1000:
            why = "no answer for %d ms" % watchdog_ms
        elif not served and now - started > boot_timeout_ms / 1000:
            why = "no answer within %d ms of the start" % boot_timeout_ms
        else:
            continue
        log("sim: watchdog: %s: resetting the simulated board" % why)
        proc.kill()
        proc.wait()
        return None, served


def supervise(cmd, env, host, control_port, watchdog_ms=WATCHDOG_MS,
              boot_timeout_ms=BOOT_TIMEOUT_MS, log=print):
    """Run the firmware and start it again from the flash whenever a board would boot
    again (module docstring). Returns the exit code it stops with."""
    unanswered = 0
    while True:
        proc = subprocess.Popen(cmd, env=env)
        log("sim: firmware pid %d" % proc.pid)
        try:
            code, served = watch(proc, host, control_port, watchdog_ms, boot_timeout_ms,
                                 log)
        except BaseException:  # Ctrl-C, SIGTERM (main's handler): the board goes too
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
        if code in (0, CONFIG_ERROR_EXIT_CODE):
            return code
        unanswered = 0 if served else unanswered + 1
        if unanswered >= MAX_UNANSWERED_STARTS:
            log("sim: %d starts in a row never answered: giving up" % unanswered)
            return 1 if code is None else code
        if code == RESTART_EXIT_CODE:
            log("sim: restarting the simulated board")
        elif code is not None:
            log("sim: the firmware ended (%s): booting again, as a board's watchdog would"
                % ("signal %d" % -code if code < 0 else "exit %d" % code))


def install_config(config, state_dir, log=print):
    """Copy `config` into the simulator's state folder as config.json, as make deploy
    copies it onto a board; a copy there that is newer than `config` (edited in the
    state folder) is kept. Returns the config.json the simulator will read."""
    config, target = Path(config), Path(state_dir) / "config.json"
    if not config.is_file():
        raise SystemExit("sim: no config file %s" % config)
    if target.exists() and target.read_bytes() == config.read_bytes():
        return target
    if target.exists() and target.stat().st_mtime > config.stat().st_mtime:
        log("sim: %s is newer than %s: using it as it is" % (target, config))
        return target
    shutil.copy2(config, target)
    log("sim: %s copied to %s" % (config, target))
    return target


def busy_port(host, ports):
    """The first (name, port) of `ports` that something on `host` already listens on."""
    for name, port in ports:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As the firmware binds (asyncio.start_server): a port in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return name, port
            raise
        finally:
            probe.close()
    return None


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
    parser.add_argument("--config", metavar="FILE",
                        help="copy FILE into the state folder as config.json (default for"
                             " the default state folder: the project's config.json, which"
                             " make configure writes, when there is one)")
    parser.add_argument("--unique-id", help="the simulated chip's unique id, 4 to 32 hex"
                        " digits (the device name is pinsock-<its last 4>); default:"
                        " derived from --state-dir, %s for the default one"
                        % DEFAULT_UNIQUE_ID)
    parser.add_argument("--heapsize", help="MicroPython heap, e.g. 128K")
    parser.add_argument("--build-dir", help="build into and run from this folder"
                        " (default build/UNIX_SIM)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--unix32", action="store_true",
                        help="on the 32-bit unix port built from MicroPython's source")
    target.add_argument("--frozen", action="store_true",
                        help="on the 32-bit unix port with pinsock frozen in")
    parser.add_argument("--exec", action="store_true",
                        help="become the simulator (tests: signals and the pid reach it"
                        " directly); it then ends when it restarts, instead of starting again")
    parser.add_argument("--reinstall", action="store_true",
                        help="install the build on the flash even when it holds an update")
    parser.add_argument("--watchdog-ms", type=int, default=WATCHDOG_MS,
                        help="restart a firmware that does not answer for this long"
                        " (0: no watchdog; default %(default)s)")
    parser.add_argument("--boot-timeout-ms", type=int, default=BOOT_TIMEOUT_MS,
                        help="... or within this long of its start (default %(default)s)")
    # Board-config overrides passed through to the firmware as they are.
    passthrough = ("--ping-interval-ms", "--idle-timeout-ms", "--stuck-timeout-ms",
                   "--max-commands-per-s", "--log-size", "--ota-confirm-s",
                   "--ota-reserve-bytes")
    for flag in passthrough:
        parser.add_argument(flag, type=int)
    args = parser.parse_args(argv)

    build_dir, _, _ = build.build(BOARD, args.build_dir)
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config is None and state_dir == DEFAULT_STATE_DIR.resolve() and PROJECT_CONFIG.exists():
        config = PROJECT_CONFIG
    if config:
        install_config(config, state_dir)
    ports = [("HTTP", args.http_port, "HTTP_PORT", "--http-port"),
             ("control", args.control_port, "CONTROL_PORT", "--control-port")]
    if all((state_dir / name).exists() for name in ("cert.der", "key.der")):
        ports.append(("HTTPS", args.https_port, "HTTPS_PORT", "--https-port"))
    host = json.loads((build_dir / "board.json").read_text()).get("host", "127.0.0.1")
    busy = busy_port(host, [(p[0], p[1]) for p in ports])
    if busy:
        _, port, variable, flag = next(p for p in ports if p[:2] == busy)
        raise SystemExit(
            "sim: the %s port %d on %s is in use (another simulator?). Choose another:"
            " make sim %s=<port> (tools/sim.py %s <port>); two simulators side by side:"
            " make sim HTTP_PORT=8090 CONTROL_PORT=8091" % (
                busy[0], port, host, variable, flag))
    target = "frozen" if args.frozen else "unix32" if args.unix32 else "mpy"
    executable = target_command(target)
    if args.frozen:
        build_dir = frozen_folder(build_dir)
    install(build_dir, state_dir, args.reinstall)
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
    cmd, env = sim_command(build_dir, firmware_args, args.heapsize, executable, args.frozen,
                           flash=True)
    os.chdir(state_dir)
    sys.stdout.flush()
    if args.exec:
        os.execvpe(cmd[0], cmd, env)
    # A board restarts itself after a Wi-Fi setup (transport/wifisetup.py) or an update;
    # the simulator then ends with RESTART_EXIT_CODE and is started again here.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return supervise(cmd, env, host, args.control_port, args.watchdog_ms,
                         args.boot_timeout_ms, lambda text: print(text, flush=True))
    except KeyboardInterrupt:  # Ctrl-C reached the simulator too: it has stopped
        return 0


if __name__ == "__main__":
    sys.exit(main())
