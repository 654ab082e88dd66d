"""The seeds' pages, served as the user's own pages by the simulator, in Chromium.

- Netzer's websocket.htm (seed_pages/netzer_websocket.htm, from the seed of MoBaCon's
  wiki, README.md there): its Connect button opens the WebSocket the user types, it
  sets a trigger on IO 0 (`tuv0=3`), gets the answer, and shows IO 0's updates.
- A page that speaks as NetBurner's DIP-switch page does (seed_pages/netburner_style.htm;
  NetBurner's own is not in the seeds whole, README.md there): it shows the switches
  and its LED toggles drive the pins, with no script error. It opens
  ws://<its host, without the port>/INDEX, as NetBurner's does, so the simulator runs
  on port 80 here, of an address of 127/8 of its own.

Needs Chromium and Playwright (test_browser.py's browser fixture skips without them).
"""

import random
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import sim as sim_tool
from simclient import free_port
from simproc import stop_process
from test_browser import browser, expect  # noqa: F401 (browser: the fixture)

pytestmark = pytest.mark.browser

SEED_PAGES = Path(__file__).resolve().parent / "seed_pages"
WAIT_MS = 5000
# The one change the Netzer page needs to run (README.md in seed_pages): the wiki page
# the seed was taken from wrapped a // comment, which put its last words on a line of
# their own, where they are a syntax error.
NETZER_WRAP = "send a command which\nsets the trigger."
NETZER_UNWRAPPED = "send a command which sets the trigger."


def netzer_page():
    text = (SEED_PAGES / "netzer_websocket.htm").read_text()
    assert text.count(NETZER_WRAP) == 1
    return text.replace(NETZER_WRAP, NETZER_UNWRAPPED).encode()


class PageErrors:
    """Every page error and console error of a Playwright page."""

    def __init__(self, page):
        self.seen = []
        page.on("pageerror", lambda e: self.seen.append("pageerror: %s" % e))
        page.on("console", self.console)

    def console(self, message):
        # The browser asks for /favicon.ico by itself; the folder has none: 404.
        if message.type == "error" and \
                not message.location.get("url", "").endswith("/favicon.ico"):
            self.seen.append(message.text)


def new_page(browser):  # noqa: F811 (the fixture)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return context, page


def wait_for(page, check, timeout_s=WAIT_MS / 1000):
    # Waiting in the page: Playwright delivers its events (frames, errors) only then.
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


# --- Netzer's page ---------------------------------------------------------------------
def netzer_sim(start_sim, tmp_path, page):
    state = tmp_path / "flash"
    (state / "pages").mkdir(parents=True)
    (state / "pages" / "websocket.htm").write_bytes(page)
    return start_sim(state_dir=state, debounce_ms=0)


def test_netzers_page_connects_and_its_command_is_answered(browser, start_sim,  # noqa: F811
                                                           tmp_path):
    sim = netzer_sim(start_sim, tmp_path, netzer_page())
    context, page = new_page(browser)
    errors = PageErrors(page)
    received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: received.append(data)))
    try:
        page.goto(sim.base_url + "/websocket.htm")
        expect(page.locator("#js_hint")).to_have_text("")  # its script ran: initPage()
        page.fill("#netzer_url", sim.ws_url("/ws"))
        page.click("#connect_button")
        # On open it sets the trigger on IO 0; the device answers it.
        wait_for(page, lambda: '{"t":{"u":{"v":{"0":"3"}}}}' in received)
        sim.control("set 0 0")
        expect(page.locator("#io_value")).to_have_text("0")
        sim.control("set 0 1")
        expect(page.locator("#io_value")).to_have_text("1")
        assert errors.seen == []
    finally:
        context.close()


def test_netzers_page_as_the_seed_has_it_is_a_syntax_error(browser, start_sim,  # noqa: F811
                                                          tmp_path):
    # Why the one change above is made: unchanged, the script does not run.
    sim = netzer_sim(start_sim, tmp_path, (SEED_PAGES / "netzer_websocket.htm").read_bytes())
    context, page = new_page(browser)
    errors = PageErrors(page)
    try:
        page.goto(sim.base_url + "/websocket.htm")
        wait_for(page, lambda: len(errors.seen) >= 2)
        # "sets the trigger." parsed as code; so initPage was never defined.
        assert errors.seen == ["pageerror: Unexpected identifier 'the'",
                               "pageerror: initPage is not defined"], errors.seen
        expect(page.locator("#js_hint")).to_have_text("Please activate javascript!")
    finally:
        context.close()


# --- a NetBurner-style page, on port 80 ------------------------------------------------
class Port80Sim:
    """The simulator's build on the unix port at <address>:80 (tools/sim.py always
    serves 127.0.0.1)."""

    def __init__(self, build_dir, state_dir, address):
        self.address = address
        self.control_port = free_port()
        args = ["--host", address, "--http-port", "80", "--https-port", str(free_port()),
                "--control-port", str(self.control_port), "--state-dir", str(state_dir),
                "--debounce-ms", "0", "--unique-id", sim_tool.DEFAULT_UNIQUE_ID]
        cmd, env = sim_tool.sim_command(build_dir, args)
        self.proc = subprocess.Popen(cmd, env=env, cwd=build_dir, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        ready = "serving on http://%s:80" % address
        for line in self.proc.stdout:
            if line.startswith(ready):
                return
        raise AssertionError("the simulator did not start on %s:80" % address)

    @property
    def base_url(self):
        return "http://%s" % self.address

    def control(self, line):
        with socket.create_connection((self.address, self.control_port), timeout=5) as s:
            s.sendall(line.encode() + b"\n")
            return s.makefile().readline().strip()

    def stop(self):
        stop_process(self.proc)


def port_80_address():
    """An address of 127/8 whose port 80 this process may listen on; skip when none."""
    for _ in range(5):
        address = "127.%d.%d.%d" % (random.randrange(1, 255), random.randrange(256),
                                    random.randrange(1, 255))
        probe = socket.socket()
        try:
            probe.bind((address, 80))
            return address
        except PermissionError:
            pytest.skip("port 80 needs root here (NetBurner's page opens ws://<host>/INDEX,"
                        " on port 80)")
        except OSError:
            continue
        finally:
            probe.close()
    pytest.skip("no free port 80 on 127/8")


@pytest.fixture
def port80(sim_build, tmp_path):
    state = tmp_path / "flash"
    (state / "pages").mkdir(parents=True)
    (state / "pages" / "index.htm").write_bytes((SEED_PAGES / "netburner_style.htm").read_bytes())
    sim = Port80Sim(sim_build, state, port_80_address())
    yield sim
    sim.stop()


def test_a_netburner_style_page_shows_the_switches_and_drives_the_leds(browser,  # noqa: F811
                                                                      port80):
    # The LEDs (UNIX_SIM: IOs 8-f) are driven once they are outputs.
    for io in range(8, 16):
        urllib.request.urlopen(port80.base_url + "/action.cgi?d%x=1" % io, timeout=5).read()
    context, page = new_page(browser)
    errors = PageErrors(page)
    try:
        page.goto(port80.base_url + "/index.htm")
        for n in range(1, 9):
            expect(page.locator("#cbox%d" % n)).not_to_be_checked()
        port80.control("set 2 0")  # DIP 3 On
        expect(page.locator("#cbox3")).to_be_checked()
        for n in (1, 2, 4, 5, 6, 7, 8):
            expect(page.locator("#cbox%d" % n)).not_to_be_checked()
        port80.control("set 2 1")
        expect(page.locator("#cbox3")).not_to_be_checked()
        page.check("#ledcb3")
        wait_for(page, lambda: port80.control("get 11") == "1")
        for n in range(8):
            page.check("#ledcb%d" % n)
        wait_for(page, lambda: [port80.control("get %d" % io) for io in range(8, 16)] == ["1"] * 8)
        page.uncheck("#ledcb3")
        wait_for(page, lambda: port80.control("get 11") == "0")
        assert port80.control("get 8") == "1"
        # The switches still show: no message the page took for a report was anything else.
        port80.control("set 7 0")
        expect(page.locator("#cbox8")).to_be_checked()
        assert errors.seen == [], errors.seen
    finally:
        context.close()
