"""A virtual board: the MicroPython unix port on a pseudo-terminal (socat).

    board = VirtualBoard(folder).start()   # folder/flash is its flash, folder/tty its port
    subprocess.run(["make", "deploy", "BOARD=UNIX_SIM", "PORT=" + board.port])
    board.stop()

It runs in an empty folder that plays the board's flash, with a board's module path
('', .frozen, lib), and speaks the raw REPL, so the real mpremote deploys to it as it
would to a Pico W on /dev/ttyACM0 (tests_host/test_deploy.py, and `make bench`'s
deploy figure, tools/bench_ota.py). Needs socat (tools/setup_system.sh installs it).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim as sim_tool  # noqa: E402

BOOT_TIMEOUT_S = 10  # the pty appears


def missing():
    """Why there can be no virtual board here, or None."""
    if shutil.which("socat"):
        return None
    return ("socat is not installed (the virtual board runs on a socat pty; "
            "`bash tools/setup_system.sh` installs it)")


class VirtualBoard:
    """The unix port on a pty, in an empty folder that is its flash."""

    def __init__(self, folder):
        self.flash = Path(folder) / "flash"
        self.flash.mkdir()
        self.port = str(Path(folder) / "tty")
        self.proc = None

    def start(self):
        env = dict(os.environ)
        # A board's sys.path: the current folder, frozen modules, then lib/.
        env["MICROPYPATH"] = ":.frozen:lib"
        micropython = sim_tool.micropython_command()
        self.proc = subprocess.Popen(
            ["socat", "PTY,link=%s,raw,echo=0" % self.port,
             "EXEC:%s,pty,raw,echo=0" % micropython],
            cwd=self.flash, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not os.path.exists(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("virtual board did not start: %s"
                                     % self.proc.stderr.read().decode())
            time.sleep(0.05)
        return self

    def mpremote(self, *args, timeout=30):
        cmd = [sys.executable, "-m", "mpremote", "connect", self.port, "resume"] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # socat and the unix port under it
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
