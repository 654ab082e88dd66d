"""The page's analog inputs, PWM outputs, counters and buttons (issue 18, point 7), in
Chromium against the simulator; docs/PROTOCOL.md, "Analog inputs, PWM outputs,
counters and buttons". The simulator boots every IO digital: a test sets functions
over /action.cgi before it opens the page, or through the page's Function select.
"""

import re
import time

import pytest
from test_browser import Dashboard, action, browser, expect  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture
def kinds(browser, start_sim):  # noqa: F811
    """A dashboard (pinging every 500 ms) on a simulator whose GPIO 8 is analog, 10 PWM,
    12 a counter and 14 a button."""
    sim = start_sim(max_clients=2)
    for command in ("f8=a", "fa=w", "fc=c", "fe=b"):
        assert '"f"' in action(sim, command)
    d = Dashboard(browser, sim, "?ping=500")
    yield d
    d.close()
    assert not d.unexpected_errors(), d.errors


def value(d, h):
    return d.page.locator("#io-%s .kv .lv" % h)


def test_each_io_shows_as_its_function_and_after_a_reconnect(kinds):
    page, sim = kinds.page, kinds.sim
    for h, f, kind in (("8", "a", "analog in"), ("a", "w", "PWM out"), ("c", "c", "counter"),
                       ("e", "b", "button")):
        expect(page.locator("#io-%s td[data-h=Direction] span.mut" % h)).to_have_text(kind)
        expect(page.get_by_label("Function of GPIO %d" % int(h, 16))).to_have_value(f)
    expect(page.locator("#io-9 td[data-h=Direction] select")).to_be_visible()  # digital
    expect(page.get_by_label("Function of DIP 1")).to_be_hidden()  # only digital
    expect(page.get_by_role("meter", name="GPIO 8 analog value")).to_be_visible()
    # A restart: the page reconnects and sets up each kind's triggers again.
    kinds.allowed.extend([r"WebSocket connection to .* failed",
                          r"net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE)"])
    time.sleep(1.5)  # the functions reach settings.json within a second
    sim.restart()
    kinds.expect_state("live", timeout=15000)
    assert sim.control("analog 8 65535") == "ok"
    expect(value(kinds, "8")).to_have_text("1023")


def watch_received(d):
    """The texts the page's WebSocket receives from now on (the page loads again)."""
    received = []
    d.page.on("websocket", lambda ws: ws.on("framereceived", lambda f: received.append(f)))
    d.page.reload()
    d.expect_state("live")
    return received


def test_the_function_changes_on_the_page_and_from_another_client(kinds):
    page, sim = kinds.page, kinds.sim
    received = watch_received(kinds)
    page.get_by_label("Function of GPIO 9").select_option("a")
    expect(page.locator("#io-9 td[data-h=Direction] span.mut")).to_have_text("analog in")
    assert action(sim, "f9") == '{"f":{"9":"a"}}'
    # Another client makes it digital again: pushed to the page.
    assert action(sim, "f9=d") == '{"f":{"9":"d"}}'
    expect(page.locator("#io-9 td[data-h=Direction] select")).to_be_visible()
    expect(kinds.level("9")).to_have_text("0 low")
    assert '{"u":{"f":{"9":"d"}}}' in received


def test_a_duty_another_client_sets_moves_the_slider(kinds):
    page, sim = kinds.page, kinds.sim
    slider = page.get_by_label("Duty of GPIO 10")
    expect(value(kinds, "a")).to_have_text("0")
    assert action(sim, "wa=700") == '{"w":{"a":"700"}}'
    expect(value(kinds, "a")).to_have_text("700")
    expect(slider).to_have_value("700")


def test_a_pwm_frequency_is_set_on_the_page_and_a_refused_one_is_put_back(kinds):
    page, sim = kinds.page, kinds.sim
    field = page.get_by_label("Frequency of GPIO 10")
    expect(field).to_have_value("1000")  # the device's, read at connect
    field.fill("25000")
    field.press("Enter")
    deadline = time.monotonic() + 5
    while sim.control("pwm 10").split()[1] != "25000" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.control("pwm 10").split()[1] == "25000"
    expect(field).to_have_value("25000")
    # Beyond the chip's range: the device refuses, the page says so and shows the
    # frequency the pin still has.
    field.fill("50000")
    field.press("Enter")
    expect(page.locator("#err")).to_contain_text("The device refused wha: value out of range")
    expect(field).to_have_value("25000")
    assert sim.control("pwm 10").split()[1] == "25000"
    assert action(sim, "wha") == '{"w":{"h":{"a":"25000"}}}'


def test_an_analog_input_is_a_live_bar_with_a_sparkline(kinds):
    page, sim = kinds.page, kinds.sim
    meter = page.get_by_role("meter", name="GPIO 8 analog value")
    for level, shown in ((32768, "512"), (16384, "256"), (65535, "1023")):
        assert sim.control("analog 8 %d" % level) == "ok"
        expect(value(kinds, "8")).to_have_text(shown)
        assert meter.evaluate("m => m.value") == int(shown)
    n = int(page.locator("#io-8 canvas.sp").get_attribute("data-n"))
    assert n >= 3  # the first read and the updates since


def test_a_dragged_pwm_slider_reaches_the_pin_coalesced(kinds):
    page, sim = kinds.page, kinds.sim
    frames = []  # (time, direction, text) of the page's WebSocket
    slider = page.get_by_label("Duty of GPIO 10")

    def watch(ws):
        ws.on("framesent", lambda f: frames.append((time.monotonic(), ">", f)))
        ws.on("framereceived", lambda f: frames.append((time.monotonic(), "<", f)))

    # Every frame of a socket from its start: the page loaded again. The page's own
    # clock stamps each duty it sends (Playwright's frame events arrive with jitter).
    page.on("websocket", watch)
    page.add_init_script("""(() => {
      const send = WebSocket.prototype.send;
      window.dutiesSent = [];
      WebSocket.prototype.send = function (data) {
        if (String(data).startsWith("wa=")) window.dutiesSent.push(performance.now());
        return send.call(this, data);
      };
    })()""")
    page.reload()
    kinds.expect_state("live")
    expect(value(kinds, "a")).to_have_text("0")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    for i in range(1, 41):  # about 40 input events in ~0.4 s
        page.mouse.move(box["x"] + 2 + i * (box["width"] - 4) * 0.7 / 40, y)
        page.wait_for_timeout(10)
    page.mouse.up()
    final = int(slider.input_value())
    assert final > 0
    expect(value(kinds, "a")).to_have_text(str(final))  # the device confirmed it
    expect(slider).not_to_have_attribute("aria-busy", "true")
    duty, hz = sim.control("pwm 10").split()
    assert int(duty) == (final * 65535 + 511) // 1023 and hz == "1000"
    # Coalesced: never two duties in flight, at least ~50 ms apart, fewer than the moves.
    writes = page.evaluate("window.dutiesSent")  # ms, as the page sent them
    assert 1 <= len(writes) < 40
    assert len(writes) == len([1 for _, d, f in frames if d == ">" and f.startswith("wa=")])
    # PWM_MS (50) apart, timed by the page's Date.now(): 1 ms of rounding either side.
    assert all(b - a >= 48 for a, b in zip(writes, writes[1:])), writes
    inflight = 0
    for _, d, f in frames:
        if d == ">" and f.startswith("wa="):
            inflight += 1
            assert inflight == 1
        elif d == "<" and f.startswith('{"w":'):
            inflight = max(0, inflight - 1)


def test_a_counter_counts_and_resets(kinds):
    page, sim = kinds.page, kinds.sim
    expect(value(kinds, "c")).to_have_text("0")
    assert sim.control("pulse 12 5") == "ok"
    expect(value(kinds, "c")).to_have_text("5")
    page.get_by_role("button", name="Reset GPIO 12").click()
    expect(value(kinds, "c")).to_have_text("0")
    assert action(sim, "cc") == '{"c":{"c":"0"}}'
    expect(kinds.newest_change()).to_contain_text("GPIO 12: count reset")


def test_button_events_show_as_they_happen(kinds):
    page, sim = kinds.page, kinds.sim
    expect(value(kinds, "e")).to_have_text("none yet")
    assert sim.control("press 14 150") == "ok"
    expect(value(kinds, "e")).to_have_text("short release")
    time.sleep(0.5)  # beyond the double-press window
    assert sim.control("press 14 1200") == "ok"
    expect(value(kinds, "e")).to_have_text("long release")
    expect(page.locator("#log li").first).to_contain_text("GPIO 14: long release")
    texts = page.locator("#log li").all_inner_texts()
    assert [re.sub(r"^[\d:]+\s*", "", t) for t in texts[:5]] == [
        "GPIO 14: long release", "GPIO 14: hold", "GPIO 14: press",
        "GPIO 14: short release", "GPIO 14: press"]


def test_the_timeline_marks_button_events_and_counter_resets(kinds):
    page, sim = kinds.page, kinds.sim
    assert sim.control("press 14 150") == "ok"
    expect(page.locator("#tl-e")).to_have_attribute(
        "data-marks", re.compile(r"^\d+:press,\d+:short release$"))
    page.get_by_role("button", name="Reset GPIO 12").click()
    expect(page.locator("#tl-c")).to_have_attribute("data-marks", re.compile(r"^\d+:count reset$"))
