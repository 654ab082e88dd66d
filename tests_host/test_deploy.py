"""The user's deploy path, against a virtual board.

The virtual board (tools/virtualboard.py) is the MicroPython unix port on a
pseudo-terminal (socat), started in an empty folder that plays the board's flash, with
a board's module path ('', .frozen, lib). It speaks the raw REPL, so the real mpremote
deploys to it with `make deploy`, as it would to a Pico W on /dev/ttyACM0. The
firmware is then started from the deployed files, on the board, through the REPL, and
a WebSocket client gets a switch report from it.

Needs socat (tools/setup_system.sh installs it; `make test` runs that). Without it
these tests skip, saying why; with CI=true they fail instead.
"""

import gzip
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from websockets.sync.client import connect

import deploy
import virtualboard
from conftest import ROOT
from simclient import free_port
from virtualboard import VirtualBoard

DEPLOY_TIMEOUT_S = 120
SERVE_TIMEOUT_S = 30  # main.py prints "serving on"


def require_socat():
    reason = virtualboard.missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; on CI this is a failure")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    require_socat()
    vb = VirtualBoard(tmp_path_factory.mktemp("virtual_board")).start()
    yield vb
    vb.stop()


def make_deploy(port, *extra):
    return subprocess.run(["make", "--no-print-directory", "deploy", "BOARD=UNIX_SIM",
                           "PORT=" + port] + list(extra), cwd=ROOT, capture_output=True,
                          text=True, timeout=DEPLOY_TIMEOUT_S)


def flash_files(flash):
    return {p.relative_to(flash).as_posix(): p.read_bytes()
            for p in flash.rglob("*") if p.is_file()}


def test_without_socat_the_deploy_tests_skip_and_on_ci_fail(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="socat is not installed.*on CI"):
        require_socat()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="socat is not installed"):
        require_socat()


def test_make_deploy_without_port_explains_itself():
    proc = subprocess.run(["make", "--no-print-directory", "deploy", "BOARD=UNIX_SIM"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "usage: make deploy BOARD=<board> PORT=" in proc.stderr


def test_deploy_to_a_missing_port_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "RPI_PICO_W",
                           str(tmp_path / "ttyACM9")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "no port" in proc.stderr


# The tests below run in order, on one virtual board.
def test_make_deploy_copies_the_build_to_an_empty_board(board):
    proc = make_deploy(board.port)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build_dir = ROOT / "build" / "UNIX_SIM"
    built = flash_files(build_dir)
    assert flash_files(board.flash) == built  # every file, byte for byte
    assert "deployed UNIX_SIM to %s: %d files, %d copied, 0 unchanged" % (
        board.port, len(built), len(built)) in proc.stdout


def test_redeploy_copies_only_what_changed_and_removes_stale_modules(board):
    (board.flash / "pinsock" / "stale.py").write_text("raise ImportError\n")
    (board.flash / "settings.json").write_text('{"name": "kept"}')  # the device's own
    changed = board.flash / "www" / "index.html.gz"
    changed.write_bytes(b"old page")
    proc = make_deploy(board.port)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = flash_files(ROOT / "build" / "UNIX_SIM")
    assert "%d files, 1 copied, %d unchanged" % (len(built), len(built) - 1) in proc.stdout
    assert "removed stale pinsock/stale.py" in proc.stdout
    assert flash_files(board.flash) == dict(built, **{"settings.json": b'{"name": "kept"}'})


MY_PAGE = b"<!doctype html><title>mine</title><p>deployed</p>\n"


def test_make_deploy_pages_copies_the_users_pages_to_their_folder(board, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "mine.html").write_bytes(MY_PAGE)
    (pages / "old.js").write_bytes(b"// to be removed\n")
    proc = make_deploy(board.port, "PAGES=" + str(pages))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = flash_files(ROOT / "build" / "UNIX_SIM")
    assert flash_files(board.flash / "pages") == {"mine.html": MY_PAGE,
                                                  "old.js": b"// to be removed\n"}
    assert flash_files(board.flash / "www") == {  # the build's www/ is the build's
        k[4:]: v for k, v in built.items() if k.startswith("www/")}
    # The folder is mirrored: a page gone from it goes from the board.
    (pages / "old.js").unlink()
    (pages / "mine.css.gz").write_bytes(gzip.compress(b"p{}"))
    proc = make_deploy(board.port, "PAGES=" + str(pages))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "removed stale pages/old.js" in proc.stdout
    assert sorted(flash_files(board.flash / "pages")) == ["mine.css.gz", "mine.html"]
    # Without PAGES, the board's pages stay.
    proc = make_deploy(board.port)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(flash_files(board.flash / "pages")) == ["mine.css.gz", "mine.html"]


@pytest.mark.parametrize("name, data, says", [
    ("Mine.html", b"x", "not a page's name"), (".hidden.html", b"x", "not a page's name"),
    ("notes.txt", b"x", "not a page's name"), ("a b.html", b"x", "not a page's name"),
    ("big.js", b"x" * 65537, "65537 bytes"), ("sub", None, "is a folder")])
def test_deploy_refuses_what_the_firmware_would_not_serve(tmp_path, name, data, says):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "fine.html").write_bytes(b"ok")
    if data is None:
        (pages / name).mkdir()
    else:
        (pages / name).write_bytes(data)
    (tmp_path / "tty").touch()  # a port that exists: the pages are checked before all else
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "UNIX_SIM",
                           str(tmp_path / "tty"), "--pages", str(pages)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and says in proc.stderr, proc.stderr
    assert "built" not in proc.stdout  # nothing was done
    with pytest.raises(SystemExit, match=re.escape(says)):
        deploy.pages_to_copy(pages)


def test_deploy_and_the_firmware_agree_on_the_pages():
    from pinsock.boot import startup
    from pinsock.transport import userpages

    assert deploy.PAGES_DIR == startup.BOARD_PAGES_FOLDER == startup.pages_dir("")
    assert deploy.PAGE_TYPES == tuple(userpages.TYPES)
    assert deploy.MAX_PAGE_BYTES == userpages.UserPages.max_page_bytes
    assert deploy.MAX_PAGE_NAME == userpages.UserPages.max_name_len


def test_deployed_firmware_serves_switch_reports(board):
    # Only the deployed files: the REPL's folder is the flash, its path '', .frozen, lib.
    proc = board.mpremote("exec", "import pinsock, microdot, simhw\n"
                          "print(pinsock.__file__, microdot.__file__, simhw.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pinsock/__init__.mpy", "lib/microdot/__init__.mpy",
                                   "simhw.mpy"]

    # A real board's Wi-Fi config sits in the same folder; the server must not give it out.
    (board.flash / "config.json").write_text('{"wifi_password": "do-not-serve"}')
    http_port, control_port = free_port(), free_port()
    start = ("import sys\n"
             "sys.argv[:] = ['main.py', '--http-port', '%d', '--control-port', '%d',"
             " '--debounce-ms', '0']\n"
             "exec(open('main.py').read(), {'__name__': '__main__'})\n"
             % (http_port, control_port))
    # mpremote follows the firmware's output for as long as it runs.
    runner = subprocess.Popen([sys.executable, "-m", "mpremote", "connect", board.port,
                               "resume", "exec", start], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    output = []

    def pump():
        for line in runner.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "no 'serving on':\n" + "".join(output)
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert runner.poll() is None, "firmware stopped:\n" + "".join(output)
                continue
            if line.startswith("serving on http://127.0.0.1:%d" % http_port):
                break
        with connect("ws://127.0.0.1:%d/ws" % http_port, open_timeout=5) as ws:
            report = json.loads(ws.recv(timeout=5))["dipSwitches"]
            assert report == {"dip%d" % i: "Off" for i in range(1, 9)}
            # Flip DIP 3 on the simulated pins (the deployed simhw.mpy's control port).
            with socket.create_connection(("127.0.0.1", control_port), timeout=5) as s:
                s.sendall(b"set 2 0\n")
                assert s.recv(64) == b"ok\n"
            while True:
                msg = json.loads(ws.recv(timeout=5))
                if "dipSwitches" in msg:
                    break
            assert msg["dipSwitches"]["dip3"] == "On"
        # The pages deployed with PAGES= are served from pages/.
        with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
            s.sendall(b"GET /mine.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\n" + MY_PAGE)
        for path in ("/config.json", "/www/../config.json", "/board.json", "/main.py"):
            with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
                s.sendall(b"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.0 404") and b"do-not-serve" not in answer, path
    finally:
        runner.terminate()
        runner.wait(timeout=5)
