"""Updates over the network on the simulator (docs/OTA.md): bundles, POST /ota, the
loader's A/B slots, reboots and the simulated watchdog, tools/ota.py.

The simulator runs supervised (tools/sim.py without --exec): it reboots from its flash,
its --state-dir, when the firmware restarts, dies or stops answering."""

import io
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import build
import bundle
import ota as ota_tool
from simproc import Sim

PASSWORD = "ota test password"
BOARD = "UNIX_SIM"
CONFIRM_S = 1
REBOOT_S = 30  # a boot of the simulator on a busy CI machine, at most


@pytest.fixture(scope="module")
def app(sim_build):
    """(build folder, its board.json, the unix port's _mpy)."""
    board = json.loads((sim_build / "board.json").read_text())
    return sim_build, board, bundle.mpy_of(board, sim_build)


_versions = {}


def files_of(app, version):
    if version not in _versions:
        build_dir, board, _ = app
        _versions[version] = bundle.with_version(build_dir, board, version)
    return list(_versions[version])


def make_bundle(app, version, files=None, password=PASSWORD, **head):
    _, _, mpy = app
    files = files if files is not None else files_of(app, version)
    return bundle.pack(files, head.get("board", BOARD), version, head.get("mpy", mpy),
                       password)


def broken_files(app, version, source, tmp_path):
    """The app with pinsock/lifecycle replaced by `source`, compiled."""
    src, out = tmp_path / "lifecycle.py", tmp_path / "lifecycle.mpy"
    src.write_text(source)
    build.compile_mpy(src, out, None, "pinsock/lifecycle.py")
    return [(p, out.read_bytes() if p == "pinsock/lifecycle.mpy" else d)
            for p, d in files_of(app, version)]


def flash(tmp_path, password=PASSWORD, name="flash"):
    state = tmp_path / name
    state.mkdir()
    if password is not None:
        (state / "config.json").write_text(json.dumps({"password": password}))
    return state


@pytest.fixture
def sims():
    started = []

    def start(state, supervised=True, **options):
        options.setdefault("debounce_ms", 0)
        sim = Sim(state, supervised=supervised, **options)
        started.append(sim)
        return sim.start()

    yield start
    for sim in started:
        sim.stop()


def device(sim, password=PASSWORD):
    return ota_tool.Device(sim.base_url, password)


def ask(sim, command, password=PASSWORD):
    return device(sim, password).ask(command)


def ota_status(sim):
    return ask(sim, "so")["s"]["o"]


def upload(sim, data, password=PASSWORD, log_in=True, headers=None):
    """(HTTP status, JSON answer) of POST /ota."""
    dev = device(sim, password)
    if log_in:
        dev.log_in()
    try:
        return 200, dev.upload(data, headers=headers)
    except ota_tool.Failed as exc:
        return exc.status, str(exc)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ota_tool.Failed, ValueError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError("not %s within %s s (last: %r)" % (what, timeout, last))


def state_of(sim):
    """ota.json, which must be a whole JSON object whenever it is there."""
    path = sim.state_dir / "ota.json"
    return json.loads(path.read_text()) if path.exists() else None


def running(sim, version=None):
    """(version, so) once the device answers (and runs `version`, when given)."""
    def answer():
        reply = ask(sim, "s")["s"]
        if version is None or reply["v"] == version:
            return reply["v"], ota_status(sim)
        return None

    return wait_until(answer, REBOOT_S, "running %s" % (version or "a version"))


def confirmed(sim, version):
    return wait_until(lambda: ask(sim, "sv")["s"]["v"] == version and
                      ota_status(sim)["t"] == "0" and ota_status(sim),
                      REBOOT_S, "%s confirmed" % version)


def test_a_good_update_keeps_settings_name_and_labels(app, sims, tmp_path):
    sim = sims(flash(tmp_path), ota_confirm_s=CONFIRM_S)
    assert ask(sim, "sv") == {"s": {"v": "0.1.0"}}
    assert ota_status(sim) == {"s": "a", "t": "0", "p": "", "r": ""}
    assert ask(sim, "sn=kitchen") == {"s": {"n": "kitchen"}}
    assert ask(sim, "l9=pump") == {"l": {"9": "pump"}}
    settings = sim.state_dir / "settings.json"
    wait_until(lambda: settings.exists() and "pump" in settings.read_text(), 5, "saved")
    path = tmp_path / "UNIX_SIM-0.2.0.pinsock"
    path.write_bytes(make_bundle(app, "0.2.0"))
    (tmp_path / "pw").write_text(PASSWORD + "\n")

    out = io.StringIO()
    started = time.monotonic()
    code = ota_tool.main([sim.base_url, str(path), "--password-file", str(tmp_path / "pw"),
                          "--confirm-timeout", str(REBOOT_S)], out=out)
    took = time.monotonic() - started
    assert code == 0, out.getvalue() + "".join(sim.output)
    report = out.getvalue()
    assert "100%" in report and "%s: 0.1.0 -> 0.2.0 in" % sim.base_url in report, report
    print("update of %d bytes, upload to confirmed: %.1f s" % (path.stat().st_size, took))

    assert ask(sim, "sv") == {"s": {"v": "0.2.0"}}
    assert ota_status(sim) == {"s": "b", "t": "0", "p": "0.1.0", "r": ""}
    assert ask(sim, "sn") == {"s": {"n": "kitchen"}}
    assert ask(sim, "l9") == {"l": {"9": "pump"}}
    assert "o" not in ask(sim, "s")["s"]  # `so` is read alone
    state = state_of(sim)
    assert (state["active"], state["pending"], state["tries"]) == ("b", "", 0)
    assert state["versions"] == {"a": "0.1.0", "b": "0.2.0"}
    # Both slots whole; settings, config and the loader outside them.
    assert {p.name for p in sim.state_dir.iterdir()} >= {
        "a", "b", "main.py", "config.json", "settings.json", "ota.json"}
    assert "ota: version 0.2.0 in slot b confirmed" in "".join(sim.output)

    # The next update goes back into slot a; the loader is never replaced.
    loader = (sim.state_dir / "main.py").read_bytes()
    status, answer = upload(sim, make_bundle(app, "0.3.0"))
    assert status == 200 and answer["slot"] == "a", answer
    confirmed(sim, "0.3.0")
    assert ota_status(sim) == {"s": "a", "t": "0", "p": "0.2.0", "r": ""}
    assert (sim.state_dir / "main.py").read_bytes() == loader


def still_serving_the_old(sim):
    assert ask(sim, "sv") == {"s": {"v": "0.1.0"}}
    assert ota_status(sim)["s"] == "a"
    assert state_of(sim) is None


def test_refusals_leave_the_old_version_serving(app, sims, tmp_path):
    sim = sims(flash(tmp_path), supervised=False)
    files = files_of(app, "0.2.0")
    changed = [(p, d[:-1] + bytes([d[-1] ^ 1]) if p == "pinsock/lifecycle.mpy" else d)
               for p, d in files]
    doctored = bundle.pack(changed, BOARD, "0.2.0", app[2], PASSWORD,
                           manifest=bundle.manifest_of(files, BOARD, "0.2.0", app[2]))
    cases = [
        (make_bundle(app, "0.2.0", board="ESP32_GENERIC"), 422,
         "the bundle is for board ESP32_GENERIC; this is UNIX_SIM"),
        (make_bundle(app, "0.2.0", mpy=app[2] + 1), 422,
         "this MicroPython's is %d" % app[2]),
        (doctored, 422, "pinsock/lifecycle.mpy: its SHA-256 does not match"),
        (make_bundle(app, "0.2.0", password="another password"), 403,
         "not made with this device's password"),
        (b"x" * 4000, 400, "not a pinsock bundle"),
    ]
    good = make_bundle(app, "0.2.0")
    for data, status, text in cases:
        got, answer = upload(sim, data)
        assert (got, text in answer) == (status, True), (text, got, answer)
        still_serving_the_old(sim)
    # Cross-site, and without a session: refused before a byte of the body is read.
    got, answer = upload(sim, good, headers={"Origin": "http://evil.example"})
    assert got == 403 and "cross-site" in answer, answer
    got, answer = upload(sim, good, log_in=False)
    assert got == 401 and "login required" in answer, answer
    still_serving_the_old(sim)
    assert "Traceback" not in "".join(sim.output)

    # Not enough space: the flash must keep ota_reserve_bytes free besides the files.
    full = sims(flash(tmp_path, name="full"), supervised=False,
                ota_reserve_bytes=10 ** 15)
    got, answer = upload(full, good)
    assert got == 507 and "not enough space: the update needs" in answer, answer
    still_serving_the_old(full)

    # No password: no updates at all, and the answer says how to set one.
    open_sim = sims(flash(tmp_path, password=None, name="open"), supervised=False)
    got, answer = upload(open_sim, good, password=None)
    assert got == 403 and "updates need a password" in answer, answer
    assert ask(open_sim, "sv", password=None) == {"s": {"v": "0.1.0"}}


def slot_is_whole(state_dir, slot):
    """Every file the slot's manifest names is there with its hash (slot a, installed
    by the simulator, has no manifest: its board.json and pinsock/ must be there)."""
    folder = state_dir / slot if slot else state_dir
    manifest = folder / "manifest"
    if not manifest.exists():
        return (folder / "board.json").exists() and (folder / "pinsock/lifecycle.mpy").exists()
    lines = manifest.read_text().splitlines()[1:]
    import hashlib

    for line in lines:
        name, size, digest = json.loads(line)
        data = (folder / name).read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            return False
    return True


def test_sigkill_at_random_moments_always_boots_a_whole_version(app, sims, tmp_path):
    sim = sims(flash(tmp_path), ota_confirm_s=CONFIRM_S, watchdog_ms=0)
    rng = random.Random(17)
    bundles = {v: make_bundle(app, v) for v in ("0.3.0", "0.4.0")}
    outcomes = []
    for moment in range(20):
        version, so = running(sim)
        if so["t"] == "1":  # a new version on its try: let it confirm first
            version, so = confirmed(sim, version), None
            version = ask(sim, "sv")["s"]["v"]
        new = "0.4.0" if version == "0.3.0" else "0.3.0"
        pid = sim.firmware_pid()
        mark = len(sim.output)
        dev = device(sim)
        dev.log_in()  # before: the moments are those of the upload itself

        def send(dev=dev, data=bundles[new]):
            try:
                dev.upload(data)
            except Exception:  # the device was killed under it
                pass

        worker = threading.Thread(target=send, daemon=True)
        # On this machine the upload, its checks and the switch take tens of ms; the
        # restart comes a second later: half the moments fall in each.
        delay = rng.uniform(0.0, 0.04) if moment % 2 else rng.uniform(0.04, 1.2)
        worker.start()
        time.sleep(delay)
        try:
            os.kill(pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:  # it had restarted on its own already
            killed = False
        worker.join(10)
        assert sim.wait_serving(mark, REBOOT_S) is not None, "".join(sim.output[mark:])
        state = state_of(sim)  # whole JSON, or none yet
        version_now, so = running(sim)
        assert version_now in ("0.1.0", "0.3.0", "0.4.0")
        assert slot_is_whole(sim.state_dir, so["s"]), (moment, so)
        if state is not None:
            assert set(state) >= {"active", "pending", "tries"}, state
        outcomes.append((round(delay, 2), killed, version, version_now))
    print("kills (delay s, killed, before, after):", outcomes)
    # Some kills came before the switch (the old version), some after (the new one).
    assert any(before == after for _, _, before, after in outcomes), outcomes
    assert any(before != after for _, _, before, after in outcomes), outcomes


def test_an_app_that_raises_at_import_is_rolled_back(app, sims, tmp_path):
    sim = sims(flash(tmp_path), ota_confirm_s=CONFIRM_S)
    files = broken_files(app, "0.5.0", "raise ImportError('broken on purpose')\n", tmp_path)
    status, answer = upload(sim, make_bundle(app, "0.5.0", files))
    assert status == 200, answer
    version, so = running(sim, "0.1.0")
    so = wait_until(lambda: ota_status(sim)["r"] and ota_status(sim), REBOOT_S, "rolled back")
    assert so == {"s": "a", "t": "0", "p": "0.5.0",
                  "r": "0.5.0: ImportError: broken on purpose"}, so
    output = "".join(sim.output)
    assert output.count("ota: trying slot b") == 2, output
    assert "ota: slot b failed 2 tries (ImportError: broken on purpose): back to slot a" \
        in output, output
    state = state_of(sim)
    assert (state["active"], state["pending"], state["failed"]) == ("a", "", "b")
    # A good update after it goes into slot b again.
    status, answer = upload(sim, make_bundle(app, "0.2.0"))
    assert status == 200 and answer["slot"] == "b", answer
    assert confirmed(sim, "0.2.0")["r"] == ""


def test_an_app_that_hangs_is_rolled_back_by_the_watchdog(app, sims, tmp_path):
    sim = sims(flash(tmp_path), ota_confirm_s=CONFIRM_S, watchdog_ms=1000,
               boot_timeout_ms=6000)
    files = broken_files(app, "0.6.0", "import time\nwhile True:\n    time.sleep(1)\n",
                         tmp_path)
    status, answer = upload(sim, make_bundle(app, "0.6.0", files))
    assert status == 200, answer
    so = wait_until(lambda: ota_status(sim)["r"] and ota_status(sim), 3 * REBOOT_S,
                    "rolled back")
    assert so["s"] == "a" and so["r"].startswith("0.6.0: no confirmation"), so
    assert ask(sim, "sv") == {"s": {"v": "0.1.0"}}
    output = "".join(sim.output)
    assert output.count("sim: watchdog: no answer within 6000 ms of the start") == 2, output


def test_upload_needs_the_right_route_and_method(sims, tmp_path):
    sim = sims(flash(tmp_path, password=None), supervised=False)
    answer = sim.http(b"GET /ota HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 405"), answer
    # Without a body worth reading: refused at once, nothing waited for.
    body = urllib.parse.quote("x")
    answer = sim.http(b"POST /ota HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body.encode()))
    assert answer.startswith(b"HTTP/1.0 403"), answer


def test_fat_is_refused_and_littlefs_is_not_on_micropythons_own_drivers(app, micropython,
                                                                       tmp_path):
    # tests_host/realboard/otaflash.py: ota.run() onto a RAM disk formatted and mounted
    # by the unix port's vfs.VfsFat and vfs.VfsLfs2. (MicroPython's VfsFat.rename does
    # replace a file, by a remove and a rename: the device tells FAT by its type.)
    # And on littlefs an upload that stalls, ended at its deadline.
    build_dir = app[0]
    path = tmp_path / "UNIX_SIM-0.2.0.pinsock"
    path.write_bytes(make_bundle(app, "0.2.0"))
    tests = Path(__file__).resolve().parent
    env = {"MICROPYPATH": ".frozen:%s:%s:%s" % (tests / "realboard", build_dir,
                                                build_dir / "lib"),
           "PINSOCK_BUNDLE": str(path)}
    proc = subprocess.run([micropython, "-X", "heapsize=8M", str(tests / "device" / "mpyrun.py"),
                           "otaflash"], capture_output=True, text=True, env=env,
                          timeout=120, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert sorted(line for line in out.splitlines() if line.startswith("PASS ")) == [
        "PASS otaflash.test_a_stalled_upload_ends_at_its_deadline_and_switches_nothing",
        "PASS otaflash.test_fat_is_refused_before_anything_is_written",
        "PASS otaflash.test_littlefs_takes_the_update"], out
    assert "ota: refused: this file system cannot replace a file by rename atomically" in out
    assert "ota: upload ended: not in whole within 300 ms" in out
