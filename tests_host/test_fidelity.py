"""Chip fidelity: the 32-bit unix port built from MicroPython's own source, plain and
with pinsock frozen in (tools/unix32.py, `make unix32 [FROZEN=1]`), and the simulator
on it (`make sim UNIX32=1`, `make sim FROZEN=1`); ports chosen for two simulators.

Needs MicroPython's source (MICROPYTHON_SRC, or ../shared/micropython/) and Debian's
i686 cross compiler (tools/setup_system.sh installs it). Without the source these
tests skip, saying how to enable them; with the source but no compiler they skip, and
with CI=true fail instead. The builds are cached in build/unix32/ (about a minute each
the first time).
"""

import gzip
import os
import subprocess
import sys

import pytest

import mpsource
import sim as sim_tool
import soak
import unix32
from conftest import ROOT
from simclient import http_get, next_message, ws_connect


def need_unix32():
    reason = unix32.missing()
    if reason is None:
        return
    if mpsource.source_dir() is not None and os.environ.get("CI") == "true":
        pytest.fail(reason + "; on CI this is a failure")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def unix32_port():
    need_unix32()
    return unix32.build(frozen=False)


@pytest.fixture(scope="session")
def frozen_port():
    need_unix32()
    return unix32.build(frozen=True)


def run(executable, code, cwd=None):
    proc = subprocess.run([str(executable), "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=cwd, env={"MICROPYPATH": ".frozen"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.split()


# --- the builds ---------------------------------------------------------------------
def test_the_32_bit_port_is_32_bit_with_what_the_firmware_needs(unix32_port):
    said = run(unix32_port, "import sys, asyncio, socket, select, json, tls, deflate, "
               "hashlib; print(sys.maxsize, sys.implementation._build)")
    assert said == [str(2**31 - 1), "standard"]


def test_the_frozen_port_carries_pinsock_microdot_and_simhw(frozen_port, tmp_path):
    said = run(frozen_port, "import sys, pinsock, microdot, simhw, asyncio\n"
               "from pinsock.transport import http\n"
               "print(sys.maxsize, pinsock.VERSION, http.__file__)", cwd=tmp_path)
    version = (ROOT / "firmware" / "pinsock" / "__init__.py").read_text().split('"')[1]
    assert said[:2] == [str(2**31 - 1), version]
    # The source name mpy-cross gave it in the image: no such file in the folder.
    assert said[2] == "pinsock/transport/http.py" and not any(tmp_path.iterdir())


def test_builds_are_cached_until_an_input_changes(unix32_port, frozen_port, monkeypatch):
    def no_make(*args):
        raise AssertionError("rebuilt although nothing changed: %r" % (args,))

    monkeypatch.setattr(unix32, "_make", no_make)
    assert unix32.build(frozen=False) == unix32_port
    assert unix32.build(frozen=True) == frozen_port
    assert unix32_port.parent.name.startswith("standard-")
    assert frozen_port.parent.name.startswith("frozen-")


def test_the_source_key_follows_contents_not_build_folders(tmp_path):
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "vm.c").write_text("int x;\n")

    def key():
        digest = unix32.hashlib.sha256()
        unix32._hash_tree(digest, tmp_path, ("py", "lib/absent"))
        return digest.hexdigest()

    first = key()
    (tmp_path / "py" / "build-i686").mkdir()
    (tmp_path / "py" / "build-i686" / "vm.o").write_text("object")
    (tmp_path / "py" / "__pycache__").mkdir()
    assert key() == first
    os.utime(tmp_path / "py" / "vm.c", (0, 0))  # a fresh unpack: same contents
    assert key() == first
    (tmp_path / "py" / "vm.c").write_text("int y;\n")
    assert key() != first


def test_the_frozen_key_follows_the_firmware(monkeypatch):
    need_unix32()
    top = mpsource.source_dir()
    before = unix32.manifest_key(top, "k")
    assert unix32.manifest_key(top, "other source") != before
    real = unix32.Path.read_bytes
    changed = ROOT / "firmware" / "pinsock" / "logic" / "eventlog.py"

    def read_bytes(path):
        data = real(path)
        return data + b"# changed\n" if path == changed else data

    monkeypatch.setattr(unix32.Path, "read_bytes", read_bytes)
    assert unix32.manifest_key(top, "k") != before


def test_without_the_source_the_tools_say_how_to_enable_them(tmp_path):
    env = dict(os.environ, MICROPYTHON_SRC=str(tmp_path))
    for tool in (["unix32.py", "--frozen"], ["sim.py", "--frozen"]):
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / tool[0])] + tool[1:],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode != 0
        assert "MICROPYTHON_SRC=%s holds no MicroPython source tree" % tmp_path in proc.stderr
        assert "Traceback" not in proc.stderr


# --- the simulator on them ------------------------------------------------------------
def test_the_frozen_folder_is_what_a_frozen_deploy_copies(sim_build, tmp_path):
    out = sim_tool.frozen_folder(sim_build, tmp_path / "frozen")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["board.json", "boot.py", "main.py", "www/index.html.gz"]
    (out / "pinsock").mkdir()
    (out / "pinsock" / "stale.mpy").write_text("x")  # would shadow the image
    sim_tool.frozen_folder(sim_build, out)
    assert not (out / "pinsock").exists()


@pytest.mark.parametrize("target", ["frozen", "unix32"])
def test_the_simulator_serves_the_page_the_websocket_and_the_soak(start_sim, target):
    need_unix32()
    sim = start_sim(max_clients=4, debounce_ms=0, **{target: True})
    status, headers, body = http_get(sim.http_port, "/", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"
    assert gzip.decompress(body) == (ROOT / "html" / "index.html").read_bytes()
    with ws_connect(sim.http_port) as ws:
        assert next_message(ws, "dipSwitches")["dipSwitches"]["dip1"] == "Off"
        assert sim.control("set 0 0") == "ok"
        assert next_message(ws, "dipSwitches")["dipSwitches"]["dip1"] == "On"
    figures = soak.soak(sim, clients=4, transitions=400, seed=2)
    assert figures["transitions"] == 400
    assert sim.alive() and "Traceback" not in "".join(sim.output)


def test_a_busy_port_says_which_and_how_to_choose_another(sim, tmp_path):
    for flag, port, variable in (("--http-port", sim.http_port, "HTTP_PORT"),
                                 ("--control-port", sim.control_port, "CONTROL_PORT")):
        others = ["--http-port", "0", "--control-port", "0"]
        others[others.index(flag) + 1] = str(port)
        proc = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py"), *others,
                               "--state-dir", str(tmp_path)], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0
        assert "port %d on 127.0.0.1 is in use" % port in proc.stderr, proc.stderr
        assert "make sim %s=<port>" % variable in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
    assert sim.alive()
