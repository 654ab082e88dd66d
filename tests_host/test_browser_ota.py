"""An update through the page (html/index.html's Update card, POST /ota) in a real
Chromium, against the supervised simulator, which reboots into what the upload wrote
(docs/OTA.md). The bundles are test_ota_e2e.py's."""

import json
import re

import pytest

import bundle
import ota as ota_tool
from simproc import Sim
from test_browser import VIEWPORT, WAIT_MS, browser, expect  # noqa: F401 (browser: the fixture)
from test_ota_e2e import BOARD, PASSWORD, REBOOT_S, app, files_of, make_bundle  # noqa: F401 (app)

pytestmark = pytest.mark.browser

# The upload as the browser sends it, slowed to this many bytes a second (Chromium's
# network emulation), so that it takes about a second and reports progress on the way.
UPLOAD_BYTES_PER_S = 100_000


@pytest.fixture
def board(sim_build, tmp_path):
    """A supervised simulator with a password: a restart logs the browser out."""
    state = tmp_path / "flash"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"password": PASSWORD}))
    sim = Sim(state, supervised=True, debounce_ms=0, ota_confirm_s=1).start()
    yield sim
    sim.stop()


def log_in(page, sim, short_ping=True):
    page.goto(sim.base_url + "/", timeout=15000)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#conn")).to_have_attribute("data-s", "live")
    if short_ping:  # the page asks `so` at each ping while a version is on trial
        page.goto(sim.base_url + "/?ping=300", timeout=15000)
        expect(page.locator("#conn")).to_have_attribute("data-s", "live")


def upload(page, path):
    if page.locator("#otaD").is_hidden():
        page.get_by_role("button", name="Update…").click()
    page.locator("#otaI").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()


def device_version(sim):
    return ota_tool.Device(sim.base_url, PASSWORD).ask("sv")["s"]["v"]


def test_an_update_through_the_page_with_progress_and_refusals(
        app, board, browser, tmp_path):  # noqa: F811 (the fixtures)
    sim = board
    files = files_of(app, "0.2.0")
    changed = [(p, d[:-1] + bytes([d[-1] ^ 1]) if p == "pinsock/lifecycle.mpy" else d)
               for p, d in files]
    doctored = bundle.pack(changed, BOARD, "0.2.0", app[2], PASSWORD,
                           manifest=bundle.manifest_of(files, BOARD, "0.2.0", app[2]))
    refused = [
        (make_bundle(app, "0.2.0", board="ESP32_GENERIC"),
         "Refused (HTTP 422): the bundle is for board ESP32_GENERIC; this is UNIX_SIM"),
        (doctored, "Refused (HTTP 422): pinsock/lifecycle.mpy: its SHA-256 does not match"
                   " the manifest's (a changed byte)"),
    ]
    good = tmp_path / "UNIX_SIM-0.2.0.pinsock"
    good.write_bytes(make_bundle(app, "0.2.0"))

    context = browser.new_context(viewport=VIEWPORT)
    errors = []
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, sim)
        expect(page.locator("#sv")).to_have_text("0.1.0")
        expect(page.locator("#svT")).to_have_text("")  # no previous version yet
        expect(page.locator("#sr")).to_be_hidden()

        # Refused: the device's own words on the page, and the old version serving on.
        for n, (data, text) in enumerate(refused):
            path = tmp_path / ("refused%d.pinsock" % n)
            path.write_bytes(data)
            if n:
                page.reload()
                expect(page.locator("#conn")).to_have_attribute("data-s", "live")
            upload(page, path)
            expect(page.locator("#otaR")).to_have_text(text)
            expect(page.get_by_role("button", name="Upload")).to_be_enabled()
            expect(page.locator("#conn")).to_have_attribute("data-s", "live")
            expect(page.locator("#sv")).to_have_text("0.1.0")
            assert device_version(sim) == "0.1.0"

        # The good one, slowed down: each value the progress bar shows is recorded.
        page.reload()
        expect(page.locator("#conn")).to_have_attribute("data-s", "live")
        shown = []
        page.expose_function("progressShown", lambda v: shown.append(float(v)))
        page.evaluate("""() => { const p = document.getElementById("otaP");
            new MutationObserver(() => progressShown(p.value))
              .observe(p, {attributes: true, attributeFilter: ["value"]}); }""")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_S})
        mark = len(sim.output)
        upload(page, good)
        expect(page.locator("#otaR")).to_have_text(
            "Written to slot b: the device restarts into 0.2.0…", timeout=20000)
        print("progress shown:", shown)
        assert shown and shown[-1] == 1, shown
        assert shown == sorted(shown) and len([v for v in shown if 0 < v < 1]) >= 2, shown
        cdp.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

        # The restart: sessions live in RAM, so the page finds itself logged out and
        # reloads into the login; logged in again, it runs the new version.
        assert sim.wait_serving(mark, REBOOT_S) is not None, "".join(sim.output[mark:])
        expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=20000)
        # The page the login opens says what became of the upload (it says it once: on
        # trial, it asks again at the next ping, 10 s, until the version confirms).
        log_in(page, sim, short_ping=False)
        expect(page.locator("#sv")).to_have_text("0.2.0")
        expect(page.locator("#otaR")).to_have_text("Updated: 0.2.0 runs.", timeout=15000)
        expect(page.locator("#svT")).to_have_text("(previous 0.1.0)")
        assert device_version(sim) == "0.2.0"
        output = "".join(sim.output)
        assert "ota: version 0.2.0 in slot b confirmed" in output, output
        assert re.search(r"ota: refused: the bundle is for board ESP32_GENERIC", output)
        assert errors == []
    finally:
        context.close()
