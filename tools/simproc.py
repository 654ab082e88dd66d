"""Start the simulator as a child process and talk to it (tests and benchmarks).

    sim = Sim(state_dir, max_clients=2, debounce_ms=0).start()
    sim.control("set 0 0"); sim.ws_url("/ws"); sim.stop()

The clients themselves (control port, WebSocket, HTTP) are tools/simclient.py's;
free_port and read_to_end are re-exported here for code that imports them from simproc.
"""

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import simclient
from simclient import free_port, read_to_end  # noqa: F401 (read_to_end: re-exported)

ROOT = Path(__file__).resolve().parent.parent

# How long a simulator may take to print "serving on" (CPU-starved CI machines).
SIM_START_TIMEOUT_S = 30


def stop_process(proc):
    """Terminate a child process, kill it if it lingers, and reap it."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Sim:
    """One running simulator process and ways to talk to it.

    supervised=True: tools/sim.py runs as the supervisor (no --exec), which boots the
    firmware again when it restarts, dies or hangs (the simulated board's reboots and
    watchdog); `proc` is then the supervisor, and firmware_pid() the firmware's. Else
    `proc` is the firmware itself (signals reach it), which ends when it restarts."""

    def __init__(self, state_dir, supervised=False, **options):
        self.state_dir = Path(state_dir)
        self.supervised = supervised
        self.options = options
        self.http_port = free_port()
        self.control_port = free_port()
        self.https_port = free_port()  # served when state_dir holds cert.der and key.der
        self.proc = None
        self.lines = queue.Queue()
        self.output = []

    # --- process --------------------------------------------------------------
    def start(self):
        if self.options.get("unix32") or self.options.get("frozen"):
            # Built (or found in its cache) first: the start's deadline is for starting.
            import unix32

            unix32.build(frozen=bool(self.options.get("frozen")), log=lambda text: None)
        cmd = [sys.executable, str(ROOT / "tools" / "sim.py"),
               "--http-port", str(self.http_port), "--control-port", str(self.control_port),
               "--https-port", str(self.https_port),
               "--state-dir", str(self.state_dir)] + ([] if self.supervised else ["--exec"])
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True or value is False:  # a switch: unix32=True, frozen=True
                cmd += [flag] if value else []
            else:
                cmd += [flag, str(value)]
        begin = len(self.output)  # a restart's Sim has the last run's output
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if self.wait_serving(begin, SIM_START_TIMEOUT_S) is None:
            self.stop()
            raise AssertionError("simulator did not start:\n" + "".join(self.output))
        return self

    def wait_for(self, wanted, after=0, timeout=SIM_START_TIMEOUT_S):
        """The index in `output` of the first line from `after` on that starts with
        `wanted` (a text, or a tuple of them); None when none came within `timeout` s
        or the process ended."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(after, len(self.output)):
                if self.output[index].startswith(wanted):
                    return index
            after = max(after, len(self.output))
            if time.monotonic() > deadline:
                return None
            try:
                self.lines.get(timeout=0.05)
            except queue.Empty:
                if self.proc.poll() is not None and len(self.output) <= after:
                    return None

    def wait_serving(self, after=0, timeout=SIM_START_TIMEOUT_S):
        """The index of the next "serving on" line from `after` on (a boot done)."""
        return self.wait_for("serving on http://127.0.0.1:%d" % self.http_port, after,
                             timeout)

    def firmware_pid(self):
        """The running firmware's pid: the supervisor's last "sim: firmware pid N"
        (supervised), else the process itself."""
        if not self.supervised:
            return self.proc.pid
        for line in reversed(self.output):
            if line.startswith("sim: firmware pid "):
                return int(line.split()[-1])
        return None

    def _pump(self, proc):
        for line in proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def stop(self):
        stop_process(self.proc)

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # --- talking to it --------------------------------------------------------
    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def ws_url(self, path="/ws"):
        return simclient.ws_url(self.http_port, path)

    @property
    def https_url(self):
        return "https://127.0.0.1:%d" % self.https_port

    def wss_url(self, path="/ws"):
        return "wss://127.0.0.1:%d%s" % (self.https_port, path)

    def control(self, line):
        """Send one control-port line on a connection of its own; return the answer."""
        return simclient.control(self.control_port, line)

    def http(self, request_bytes, timeout=5):
        """Send raw bytes to the HTTP port; return everything it answers."""
        return simclient.exchange(self.http_port, request_bytes, timeout)

    def verdict(self, scenario, tail=300):
        """(passed, what went wrong) of scenario(self): it fails when the scenario
        raises, or the simulator dies or prints an error (a MemoryError it survived)."""
        try:
            scenario(self)
            time.sleep(0.1)  # what the simulator prints about the last steps
            output = "".join(self.output)
            if not self.alive():
                return False, "died: " + output[-tail:]
            if "Error" in output or "Traceback" in output:
                return False, "printed an error: " + output[-tail:]
            return True, ""
        except Exception as exc:  # any failure of the scenario counts
            return False, "%s: %s | %s" % (type(exc).__name__, str(exc)[:tail],
                                           "".join(self.output)[-tail:])
