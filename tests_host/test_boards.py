"""Every board file against the rules of its chip, and what `make build` makes of it.

A board is a folder of boards/ with a board.json. A real board names its "chip";
CHIPS below says which GPIOs that chip has, which a board must leave alone and what
they can do. The rules are checked against each board file, and each rule is shown
to catch the mistake it is there for.
"""

import copy
import json
import re
import subprocess
import sys

import pytest

import build
import check_manifests
import deploy
import mpsource
from conftest import ROOT
from pinsock.boot import board_json

BOARDS = sorted(p.parent.name for p in (ROOT / "boards").glob("*/board.json"))
REAL_BOARDS = [b for b in BOARDS
               if json.loads((ROOT / "boards" / b / "board.json").read_text())["hal"] != "sim"]
IO_COUNT = 16  # IO 0..15: the protocol names an IO by one hex digit

# What each chip allows. Sources: ESP32 datasheet (v4.x) sections 2.2 and 2.4 and
# errata 3.11; Raspberry Pi Pico W datasheet section 2.1 (pins the CYW43439 uses).
CHIPS = {
    "esp32": {
        "mpy_arch": "xtensawin",
        "gpios": set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40)),
        "forbidden": {
            **{p: "wired to the SPI flash" for p in range(6, 12)},
            **{p: "a strapping pin: its level at reset selects the boot mode"
               for p in (0, 2, 5, 12, 15)},
            1: "UART0 TX: the REPL, and how mpremote deploys",
            3: "UART0 RX: the REPL, and how mpremote deploys",
            36: "glitches low when Wi-Fi starts (ESP32 errata 3.11)",
            39: "glitches low when Wi-Fi starts (ESP32 errata 3.11)",
        },
        # GPIO 34-39 have no output driver and no pull resistors.
        "input_only": set(range(34, 40)),
        "timer_ids": {0, 1, 2, 3},
        # ADC2 (GPIO 0, 2, 4, 12-15, 25-27) cannot be read while Wi-Fi is on: only
        # ADC1's GPIO 32-39 are analog inputs (datasheet 4.1.2, 4.2.1).
        "adc": set(range(32, 40)),
        "adc_channels": {},  # every ADC1 input is on a GPIO
        # LEDC: 8 timers, so at most 8 distinct PWM frequencies at once (MicroPython's
        # esp32 PWM); the board says how many it allows ("pwm_freqs").
        "pwm_freqs": 8,
        # Pulse counting in the PCNT peripheral (machine.Counter, esp32.PCNT): 8 units.
        "counters": 8,
    },
    "rp2040": {
        "mpy_arch": "armv6m",
        "gpios": set(range(0, 23)) | {26, 27, 28},
        "forbidden": {
            23: "WL_ON: powers the CYW43439 wireless chip",
            24: "WL_D: data line of the wireless chip",
            25: "WL_CS: chip select of the wireless chip",
            29: "WL_CLK: clock of the wireless chip",
        },
        "input_only": set(),
        "timer_ids": {-1},  # the rp2 port's timers are virtual
        "named_leds": {"LED"},  # on the wireless chip's GPIO
        # ADC inputs 0-2 on GP26-28 (input 3 is VSYS/3 on the Pico W, 4 the internal
        # temperature sensor, no GPIO: RP2040 datasheet 4.9).
        "adc": {26, 27, 28},
        # An IO may be an ADC input no GPIO reaches: {"adc": 4, "fns": "a", "fn": "a"}.
        # Input 3 (VSYS/3) is GP29, WL_CLK on the Pico W: reading it disturbs the
        # wireless chip.
        "adc_channels": {4: "the internal temperature sensor"},
        # 8 PWM slices of 2 channels; GPIO n is on slice (n >> 1) & 7, and both
        # channels of a slice run at one frequency (datasheet 4.5.2): a board lets at
        # most one IO of a slice be PWM, so each keeps its own frequency.
        "pwm_slice": lambda gpio: (gpio >> 1) & 7,
        # No machine.Counter: the firmware counts edges in a hard Pin.irq, on any GPIO.
        "counters": IO_COUNT,
    },
}


def load(name):
    return json.loads((ROOT / "boards" / name / "board.json").read_text())


def board_problems(board):
    """Everything wrong with a real board's file, as sentences (empty: none)."""
    problems = []
    chip = CHIPS.get(board.get("chip"))
    if chip is None:
        return ["unknown chip %r; known: %s" % (board.get("chip"), sorted(CHIPS))]
    if board.get("mpy_arch") != chip["mpy_arch"]:
        problems.append("mpy_arch must be %s" % chip["mpy_arch"])
    for key in ("debounce_ms", "max_clients", "led", "timer_id", "stubs", "dip"):
        if key not in board:
            problems.append("lacks %r" % key)
    ios = board["ios"]
    if len(ios) != IO_COUNT:
        problems.append("declares %d IOs, not %d" % (len(ios), IO_COUNT))
    pins = [spec["pin"] for spec in ios if "pin" in spec]
    if len(set(pins)) != len(pins):
        problems.append("a GPIO is used twice: %s" % pins)
    labels = [spec["label"] for spec in ios]
    if len(set(labels)) != len(labels) or not all(labels):
        problems.append("labels must be unique and not empty")
    for io, spec in enumerate(ios):
        if "adc" in spec:  # an ADC input no GPIO reaches
            if spec["adc"] not in chip["adc_channels"]:
                problems.append("IO %d (ADC %s): not an ADC channel of its own on this chip"
                                % (io, spec["adc"]))
            if spec.get("fns") != "a":
                problems.append("IO %d (ADC %s): analog only" % (io, spec["adc"]))
            continue
        pin = spec["pin"]
        where = "IO %d (GPIO %s)" % (io, pin)
        if pin in chip["forbidden"]:
            problems.append("%s: %s" % (where, chip["forbidden"][pin]))
        elif pin not in chip["gpios"]:
            problems.append("%s: the chip has no such GPIO" % where)
        if pin in chip["input_only"]:
            if spec["dirs"] != [0]:
                problems.append("%s: input only, cannot be an output" % where)
            if spec["pulls"] != [0]:
                problems.append("%s: has no pull resistors" % where)
        problems += function_problems(chip, where, spec)
        if spec.get("dip") and board["dip"]["active_low"] and spec["pull"] != 1:
            # A switch to ground reads as "on" only against a pull-up.
            problems.append("%s: an active-low DIP switch needs the pull-up" % where)
    counters = [spec for spec in ios if "c" in spec.get("fns", "d")]
    if len(counters) > chip["counters"]:
        problems.append("%d counters, the chip counts on %d at most" % (
            len(counters), chip["counters"]))
    pwm = [spec["pin"] for spec in ios if "w" in spec.get("fns", "d")]
    if "pwm_freqs" in chip and board.get("pwm_freqs", 0) not in range(1, chip["pwm_freqs"] + 1):
        problems.append("pwm_freqs must be 1 to %d: the chip has %d PWM timers" % (
            chip["pwm_freqs"], chip["pwm_freqs"]))
    if "pwm_slice" in chip:
        slices = [chip["pwm_slice"](pin) for pin in pwm]
        for s in set(slices):
            if slices.count(s) > 1:
                problems.append("PWM on GPIO %s: one slice (%d), one frequency for both" % (
                    [p for p in pwm if chip["pwm_slice"](p) == s], s))
    led = board.get("led")
    if led:
        pin = led["pin"]
        if pin in pins:
            problems.append("the status LED's GPIO %s is also an IO" % pin)
        if pin not in chip.get("named_leds", ()):
            if pin not in chip["gpios"] or pin in chip["input_only"] or (
                    pin in chip["forbidden"] and pin not in (0, 2, 5, 12, 15)):
                problems.append("the status LED needs an output GPIO, not %s" % pin)
    if board.get("timer_id") not in chip["timer_ids"]:
        problems.append("timer_id must be one of %s" % sorted(chip["timer_ids"]))
    return problems


def function_problems(chip, where, spec):
    """What is wrong with what an IO may be ("fns": analog, PWM, counter, button)."""
    problems = []
    fns = spec.get("fns", "d")
    pin = spec["pin"]
    if spec.get("dip") and fns != "d":
        problems.append("%s: a DIP switch is digital only" % where)
    if "a" in fns and pin not in chip["adc"]:
        problems.append("%s: not an ADC input this chip can read with Wi-Fi on" % where)
    if "w" in fns and (pin in chip["input_only"] or 1 not in spec["dirs"]):
        problems.append("%s: PWM needs an output" % where)
    if ("c" in fns or "b" in fns) and 0 not in spec["dirs"]:
        problems.append("%s: a counter or button needs an input" % where)
    return problems


# --- the board files ---------------------------------------------------------------
def test_the_expected_boards_exist():
    assert {"ESP32_GENERIC", "RPI_PICO_W", "UNIX_SIM"} <= set(BOARDS)
    assert {"ESP32_GENERIC", "RPI_PICO_W"} <= set(REAL_BOARDS)


@pytest.mark.parametrize("name", BOARDS)
def test_board_loads_as_the_firmware_would(name):
    board = board_json.load_board(str(ROOT / "boards" / name / "board.json"))
    assert board["name"] == name
    assert board["max_clients"] >= 1 and board["debounce_ms"] >= 0
    assert (ROOT / "boards" / name / "manifest.py").exists()


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_real_board_follows_its_chips_rules(name):
    board = load(name)
    assert board_problems(board) == []
    assert board["hal"] == "machine"
    assert board["host"] == "0.0.0.0" and board["http_port"] == 80
    assert sorted(s["dip"] for s in board["ios"] if s.get("dip")) == list(range(1, 9))


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_real_board_stubs_are_pinned(name):
    pins = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^%s==[\d.]+\w*" % re.escape(load(name)["stubs"]), pins, re.M)


@pytest.mark.parametrize("chip_name, board_name, mistake, expected", [
    ("esp32", "ESP32_GENERIC", {"pin": 6}, "SPI flash"),
    ("esp32", "ESP32_GENERIC", {"pin": 12}, "strapping"),
    ("esp32", "ESP32_GENERIC", {"pin": 1}, "UART0"),
    ("esp32", "ESP32_GENERIC", {"pin": 36, "dirs": [0], "pulls": [0], "pull": 0}, "errata"),
    ("esp32", "ESP32_GENERIC", {"pin": 35, "dirs": [0, 1]}, "cannot be an output"),
    ("esp32", "ESP32_GENERIC", {"pin": 35, "pulls": [0, 1]}, "no pull resistors"),
    ("esp32", "ESP32_GENERIC", {"pin": 24}, "no such GPIO"),
    ("esp32", "ESP32_GENERIC", {"pin": 25, "fns": "da"}, "not an ADC input"),
    ("esp32", "ESP32_GENERIC", {"pin": 35, "dirs": [0], "pulls": [0], "pull": 0,
                                "fns": "dw"}, "PWM needs an output"),
    ("esp32", "ESP32_GENERIC", {"dirs": [1], "dir": 1, "fns": "dc"}, "needs an input"),
    ("rp2040", "RPI_PICO_W", {"fns": "da"}, "not an ADC input"),
    ("rp2040", "RPI_PICO_W", {"dip": 1, "fns": "db"}, "digital only"),
    ("rp2040", "RPI_PICO_W", {"pin": 23}, "WL_ON"),
    ("rp2040", "RPI_PICO_W", {"pin": 25}, "WL_CS"),
    ("rp2040", "RPI_PICO_W", {"pin": 29}, "WL_CLK"),
    ("rp2040", "RPI_PICO_W", {"pin": 30}, "no such GPIO"),
])
def test_rules_catch_a_bad_pin(chip_name, board_name, mistake, expected):
    board = copy.deepcopy(load(board_name))
    assert board["chip"] == chip_name
    board["ios"][9].update(mistake)  # a GPIO, not a DIP switch
    problems = board_problems(board)
    assert any(expected in p and "IO 9" in p for p in problems), problems


def test_rules_catch_board_level_mistakes():
    board = copy.deepcopy(load("ESP32_GENERIC"))
    board["ios"][10]["pin"] = board["ios"][9]["pin"]
    board["ios"][0]["pull"] = 0
    board["led"]["pin"] = 34
    board["mpy_arch"] = "armv6m"
    board["timer_id"] = -1
    board["ios"].pop()
    problems = "\n".join(board_problems(board))
    for expected in ("used twice", "needs the pull-up", "status LED needs an output",
                     "mpy_arch must be xtensawin", "timer_id", "declares 15 IOs"):
        assert expected in problems
    pico = copy.deepcopy(load("RPI_PICO_W"))
    pico["led"]["pin"] = pico["ios"][0]["pin"]
    assert "also an IO" in "\n".join(board_problems(pico))


def test_rules_catch_pwm_and_counter_mistakes():
    esp = copy.deepcopy(load("ESP32_GENERIC"))
    esp["pwm_freqs"] = 9
    for spec in esp["ios"][8:15]:
        spec["fns"] = "dc"
    esp["ios"][15]["fns"] = "dc"
    esp["ios"][7].update({"dip": 0, "fns": "dc", "dirs": [0, 1]})
    problems = "\n".join(board_problems(esp))
    assert "pwm_freqs must be 1 to 8" in problems and "9 counters" in problems, problems
    pico = copy.deepcopy(load("RPI_PICO_W"))
    assert pico["ios"][8]["pin"] == 10 and "w" in pico["ios"][8]["fns"]
    pico["ios"][9]["fns"] = "dw"  # GP11: slice 5, as GP10
    problems = "\n".join(board_problems(pico))
    assert "one slice (5)" in problems, problems


@pytest.mark.parametrize("name", BOARDS)
def test_each_board_declares_every_function_somewhere(name):
    fns = "".join(spec.get("fns", "d") for spec in load(name)["ios"])
    assert set(fns) == set(board_json.FUNCTIONS)
    # A fresh board boots all digital (the firmware's extra kinds cost nothing then).
    assert all(spec.get("fn", "d") == "d" for spec in load(name)["ios"])


def pico_with_its_temperature_sensor():
    """The Pico W's board with IO f (GP28) given to the internal temperature sensor, as
    docs/PROTOCOL.md tells an owner to do it (not an LED any more)."""
    pico = copy.deepcopy(load("RPI_PICO_W"))
    spec = pico["ios"][15]
    del spec["pin"]
    spec.update({"adc": 4, "label": "Temperature", "fns": "a", "fn": "a", "dirs": [0],
                 "pulls": [0], "dir": 0, "pull": 0})
    pico["leds"].remove(15)
    return pico


def test_the_rp2040s_temperature_sensor_is_an_io_of_its_own():
    pico = pico_with_its_temperature_sensor()
    assert board_problems(pico) == []
    board_json.check_board(pico)
    for mistake, expected in (({"adc": 3}, "not an ADC channel"), ({"fns": "da"}, "analog only")):
        bad = copy.deepcopy(pico)
        bad["ios"][15].update(mistake)
        assert any(expected in p and "IO 15" in p for p in board_problems(bad)), mistake
    esp = copy.deepcopy(load("ESP32_GENERIC"))
    esp["ios"][15] = pico["ios"][15]
    esp["leds"] = [io for io in esp.get("leds", []) if io != 15]
    assert any("not an ADC channel" in p for p in board_problems(esp))


def test_the_firmware_refuses_an_adc_channel_that_is_more_than_analog():
    pico = pico_with_its_temperature_sensor()
    for mistake, expected in (({"pin": 28}, "not both"), ({"fns": "da"}, "analog only"),
                              ({"fn": "d", "fns": "da"}, "analog only")):
        bad = copy.deepcopy(pico)
        bad["ios"][15].update(mistake)
        with pytest.raises(board_json.ConfigError, match=expected):
            board_json.check_board(bad)
    bad = copy.deepcopy(pico)
    del bad["ios"][15]["adc"]
    with pytest.raises(board_json.ConfigError, match="needs a 'pin'"):
        board_json.check_board(bad)


def test_the_firmware_refuses_a_function_the_io_cannot_have():
    board = load("UNIX_SIM")
    for mistake, expected in (({"fns": "dx"}, "'fns' must be"), ({"fn": "w"}, "'fns' must be"),
                              ({"fns": "dw", "dirs": [0], "dir": 0}, "PWM needs an output")):
        bad = copy.deepcopy(board)
        bad["ios"][9].update(mistake)
        with pytest.raises(board_json.ConfigError, match=expected):
            board_json.check_board(bad)
    bad = copy.deepcopy(board)
    bad["ios"][0]["fns"] = "db"
    with pytest.raises(board_json.ConfigError, match="DIP switch is digital"):
        board_json.check_board(bad)


# --- what `make build` makes ---------------------------------------------------------
def test_the_readmes_build_size_is_the_pico_ws(tmp_path):
    # README: "`make build BOARD=...` alone prints its size, about N KiB": the Pico W's,
    # within 5% (it said 62 KiB long after the MQTT code had made it 84).
    stated = re.search(r"alone prints its size, about (\d+) KiB",
                       (ROOT / "README.md").read_text())
    assert stated, "README no longer states the build's size"
    _, total, _ = build.build("RPI_PICO_W", tmp_path / "RPI_PICO_W")
    kib = total / 1024
    assert abs(int(stated.group(1)) - kib) <= 0.05 * kib, (
        "README says about %s KiB; make build BOARD=RPI_PICO_W makes %.1f KiB"
        % (stated.group(1), kib))


@pytest.mark.parametrize("name", BOARDS)
def test_build_holds_what_goes_on_the_board(name, tmp_path):
    board = load(name)
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), name,
                           "--out", str(tmp_path / name)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / name
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    total = sum((out / f).stat().st_size for f in files)
    assert proc.stdout.strip().endswith(
        ": %d files, %d bytes (%.1f KiB)" % (len(files), total, total / 1024)), proc.stdout
    firmware = {"pinsock/%s.mpy" % p.stem for p in (ROOT / "firmware" / "pinsock").glob("*.py")}
    hal = {"pinsock/hw.mpy", "pinsock/net.mpy"}
    assert {"main.py", "boot.py", "board.json", "www/index.html.gz"} <= files
    assert {"lib/microdot/%s.mpy" % m[:-3] for m in build.MICRODOT_MODULES} <= files
    if board["hal"] == "machine":
        assert firmware <= files and "simhw.mpy" not in files
    else:
        assert firmware - hal <= files and not hal & files and "simhw.mpy" in files
    assert json.loads((out / "board.json").read_text()) == board
    assert not any(f.endswith(".py") and f not in ("main.py", "boot.py") for f in files)
    # Secrets never go into a build: config.json is copied by deploy, not built.
    assert "config.json" not in files
    for f in files:
        if f.endswith(".mpy"):
            head = (out / f).read_bytes()[:2]
            assert head == b"M\x06", f  # .mpy version 6: MicroPython 1.20 and later


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_mpy_arch_is_one_mpy_cross_compiles_native_code_for(name, tmp_path):
    # Bytecode .mpy files run on any arch; the arch matters for native code
    # (@micropython.native), so prove mpy-cross knows the board's arch by name.
    arch = load(name)["mpy_arch"]
    src = tmp_path / "probe.py"
    src.write_text("@micropython.native\ndef f(x):\n    return x + 1\n")
    build.compile_mpy(src, tmp_path / "probe.mpy", arch, "probe.py")
    header = (tmp_path / "probe.mpy").read_bytes()[:3]
    arch_codes = {"armv6m": 4, "xtensawin": 10}  # MPY_FEATURE_ARCH_* in py/persistentcode.h
    assert header[:2] == b"M\x06" and header[2] >> 2 == arch_codes[arch]


def test_build_refuses_an_invalid_board(tmp_path, monkeypatch):
    bad = tmp_path / "boards" / "BAD"
    bad.mkdir(parents=True)
    board = load("RPI_PICO_W")
    board["ios"][0]["dirs"] = [0, 1]  # a DIP switch that could be an output
    (bad / "board.json").write_text(json.dumps(board))
    monkeypatch.setattr(build, "BOARDS", tmp_path / "boards")
    with pytest.raises(SystemExit, match="DIP switch is a fixed input"):
        build.build("BAD", tmp_path / "out")


# --- the freeze manifests ---------------------------------------------------------------
# Run through MicroPython's own manifest tool (tools/mpsource.py finds the source tree):
# tools/check_manifests.py's checks, which `make check-manifests` prints.
@pytest.mark.parametrize("name", BOARDS)
def test_manifest_freezes_what_a_frozen_deploy_leaves_off(name, tmp_path):
    if mpsource.manifest_tool() is None:
        pytest.skip(mpsource.why_missing())
    problems, got = check_manifests.check(name, tmp_path)
    assert problems == []
    # ... and the loader's module (otaboot, docs/OTA.md).
    assert got["added"] == len(build.MICRODOT_MODULES) + len(layout_files(name)) + 1


def layout_files(name):
    board = load(name)
    return build.layout.firmware_files(ROOT / "firmware" / "pinsock", board["hal"]) + \
        build.layout.board_modules(ROOT / "boards" / name)


def test_manifest_check_catches_a_deploy_that_would_shadow_the_image(tmp_path, monkeypatch):
    if mpsource.manifest_tool() is None:
        pytest.skip(mpsource.why_missing())
    monkeypatch.setattr(deploy, "FROZEN_DIRS", ("pinsock",))  # lib/microdot deployed too
    problems, _ = check_manifests.check("UNIX_SIM", tmp_path)
    assert any("frozen but deployed too: ['microdot/__init__.py'" in p for p in problems), \
        problems


def test_manifest_check_without_source_says_how_to_enable_it(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROPYTHON_SRC", str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "check_manifests.py")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "MICROPYTHON_SRC=%s holds no" % tmp_path in proc.stderr
