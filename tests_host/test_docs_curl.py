"""docs/PROTOCOL.md's `curl` transcripts, run with curl against the simulator.

Every `$ curl ...` line in a ```text block of PROTOCOL.md is run as it is written, with
the simulator's address for 127.0.0.1:8080, and what curl prints must be the lines
under it, exactly: status line, every header, the body. Two things differ from run to
run and are masked on both sides: the session cookie's 32 hex digits and the event
log's times ("t"). A block that logs in runs against a simulator with a password
(password.txt holds it, as the doc says); the others against one without.
"""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import ROOT

PROTOCOL = ROOT / "docs" / "PROTOCOL.md"
DOC_BASE = "http://127.0.0.1:8080"
PASSWORD = "correct horse"
MASKS = ((re.compile(r"pinsock_session=[0-9a-f]{32}"), "pinsock_session=<32 hex>"),
         (re.compile(r'"t":\d+'), '"t":<ms>'))
# What happened on the device before an example, as the doc tells it: the log example
# shows switch 1 turned On and Off again.
BEFORE = {"/log?since=0": ("set 0 0", "set 0 1")}


def curl_blocks(text):
    """[[(command line, [expected output lines]), ...] per ```text block with curl]."""
    blocks = []
    for block in re.findall(r"```text\n(.*?)```", text, re.S):
        if not block.startswith("$ curl"):
            continue
        examples = []
        for line in block.splitlines():
            if line.startswith("$ "):
                examples.append((line[2:], []))
            else:
                examples[-1][1].append(line)
        blocks.append([(command, trimmed(lines)) for command, lines in examples])
    return blocks


def trimmed(lines):
    lines = list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def masked(lines):
    out = []
    for line in lines:
        for pattern, mask in MASKS:
            line = pattern.sub(mask, line)
        out.append(line)
    return out


def test_protocol_md_has_the_curl_transcripts_this_checks():
    blocks = curl_blocks(PROTOCOL.read_text())
    commands = [command for block in blocks for command, _ in block]
    assert any("-i" in c and "action.cgi?v9=1" in c for c in commands), commands
    assert any("/login" in c for c in commands) and any("/log?" in c for c in commands)


@pytest.fixture
def curl():
    found = shutil.which("curl")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("no curl (CI=true: the doc's transcripts must be checked)")
        pytest.skip("no curl: run `bash tools/setup_system.sh` as root")
    return found


@pytest.mark.parametrize("index", range(len(curl_blocks(PROTOCOL.read_text()))))
def test_every_curl_transcript_in_protocol_md_is_what_curl_prints(start_sim, tmp_path,
                                                                  curl, index):
    block = curl_blocks(PROTOCOL.read_text())[index]
    state = tmp_path / "flash"
    state.mkdir()
    if any("/login" in command for command, _ in block):
        (state / "config.json").write_text('{"password": "%s"}' % PASSWORD)
    (tmp_path / "password.txt").write_text(PASSWORD)  # no newline at its end
    # The simulator the docs show: pinsock-c0de (its unique id's last 4 hex digits).
    sim = start_sim(state_dir=state, debounce_ms=0, unique_id="5153a1b0c0de")
    for command, expected in block:
        args = shlex.split(command.replace(DOC_BASE, sim.base_url))
        assert args[0] == "curl"
        for path, steps in BEFORE.items():
            if any(arg.endswith(path) for arg in args):
                for step in steps:
                    assert sim.control(step) == "ok"
        done = subprocess.run([curl, "-s", *args[1:]], capture_output=True, cwd=tmp_path,
                              timeout=30)
        assert done.returncode == 0, (command, done.stderr)
        printed = trimmed(done.stdout.decode().replace("\r\n", "\n").split("\n"))
        assert masked(printed) == masked(expected), command
