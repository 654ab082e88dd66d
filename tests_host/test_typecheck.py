"""The firmware type-checks against each real board's MicroPython stubs (pyright).

tools/typecheck.py does the checking (see there for what counts); these tests run it
on what goes on each board, and on probe files that show it catches a call to an
API the board's MicroPython does not have.
"""

import pytest

import typecheck
from conftest import ROOT

BOARDS = typecheck.checked_boards()


def test_every_real_board_is_checked():
    assert {"ESP32_GENERIC", "RPI_PICO_W"} <= set(BOARDS)


@pytest.mark.parametrize("name", BOARDS)
def test_firmware_typechecks_against_the_boards_stubs(name):
    failures, _, files = typecheck.check(name)
    names = {p.relative_to(ROOT).as_posix() for p in files}
    # What goes on the board is what is checked: the shared firmware, the real-board
    # hardware layer (with this board's stubs), the entry points; not the simulator.
    assert {"firmware/main.py", "firmware/boot.py", "firmware/pinsock/lifecycle.py",
            "firmware/pinsock/hardware/pins.py", "firmware/pinsock/hardware/net.py"} <= names
    assert not any("UNIX_SIM" in n for n in names)
    assert failures == [], "\n".join(typecheck.describe(d) for d in failures)


PROBES = {
    # Calls that exist on no board.
    "common.py": """\
import machine

machine.Pin(0).bogus_method()  # line 3
machine.WDT(timeout_ms=100)  # line 4: the keyword is timeout
""",
    # Each chip's own module.
    "only_esp32.py": "import esp32\n\nesp32.NVS('pinsock')\n",
    "only_rp2.py": "import rp2\n\nrp2.bootsel_button()\n",
    # Feature detection: the except branch is CPython's and is not checked, the
    # try branch is, as the board must have what it imports there.
    "detect.py": """\
try:
    from time import ticks_ms
except ImportError:
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)  # line 7: CPython only


try:
    from time import no_such_ticks  # line 11
except ImportError:
    no_such_ticks = None
""",
    # In the hardware layer a wrong argument type fails too, not only a missing API.
    "hardware/pins.py": """\
import machine

machine.Timer(0, mode=machine.Timer.PERIODIC, period="x", callback=print)  # line 3
""",
}


@pytest.fixture(scope="module")
def probe_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    files = []
    for name, text in PROBES.items():
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        files.append(path)
    return root, files


@pytest.mark.parametrize("name, own, other", [
    ("ESP32_GENERIC", "only_esp32.py", "only_rp2.py"),
    ("RPI_PICO_W", "only_rp2.py", "only_esp32.py"),
])
def test_a_call_the_board_lacks_fails(name, own, other, probe_files):
    root, files = probe_files
    failures, _, _ = typecheck.check(name, files)
    found = {(typecheck.Path(d["file"]).relative_to(root).as_posix(),
              d["range"]["start"]["line"] + 1, d.get("rule")) for d in failures}
    assert ("common.py", 3, "reportAttributeAccessIssue") in found
    assert ("common.py", 4, "reportCallIssue") in found
    assert (other, 1, "reportMissingImports") in found
    assert not any(f == own for f, _, _ in found)
    assert ("detect.py", 11, "reportAttributeAccessIssue") in found
    assert not any(f == "detect.py" and line != 11 for f, line, _ in found)
    assert ("hardware/pins.py", 3, "reportArgumentType") in found
    assert len(found) == 5, found
