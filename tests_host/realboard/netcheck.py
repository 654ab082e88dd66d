# The real-board hardware layer (hw.py, net.py) on the unix port, against the fakes
# of `machine` and `network` in fakes.py. Run by tests_host/test_net.py through
# tests_host/device/mpyrun.py, with the compiled RPI_PICO_W build on the path: the
# .mpy files that go on the board.
import asyncio
import time

import boardfakes as fakes

fakes.install()

from pinsock.boot import config_json  # noqa: E402
from pinsock.hardware import net  # noqa: E402
from pinsock.hardware import pins as hw  # noqa: E402


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, line):
        self.lines.append(line)

    def has(self, text):
        return any(text in line for line in self.lines)


class RecordingLed(net.StatusLed):
    def __init__(self):
        super().__init__(None)
        self.shown = []

    def show(self, state):
        super().show(state)
        if not self.shown or self.shown[-1] != state:
            self.shown.append(state)


def conf(**settings):
    c = dict(config_json.DEFAULTS)
    c.update(settings)
    return c


def fast(link):
    # The same behaviour in milliseconds instead of seconds and minutes.
    link.connect_timeout_ms = 40
    link.poll_ms = 5
    link.backoff_ms = 30
    link.max_backoff_ms = 200
    link.check_ms = 5
    link.ap_retry_ms = 100
    return link


def run(link, ms, during=None):
    """Start the link, let it run `ms`; `during(t)` is called every 5 ms."""
    asyncio.new_event_loop()  # no task of an earlier test carries over

    async def main():
        link.start()
        t = 0
        while t < ms:
            await asyncio.sleep_ms(5)
            t += 5
            if during:
                during(t)

    asyncio.run(main())


def sta():
    return fakes.WLAN.made[fakes.STA_IF]


def ap():
    return fakes.WLAN.made[fakes.AP_IF]


def test_no_ssid_opens_an_open_access_point_named_after_the_mac():
    fakes.reset()
    log = Log()
    led = RecordingLed()
    link = fast(net.WifiLink(conf(), led, log))
    run(link, 60)
    assert ap().active()
    assert ap().settings == {"ssid": "pinsock-abcd", "security": fakes.WLAN.SEC_OPEN}
    assert led.shown == [net.ACCESS_POINT] and link.state == net.ACCESS_POINT
    assert sta().connects == []
    # No hostname configured: the access point's name, set before any interface is up.
    assert fakes.names == [("pinsock-abcd", False)]
    assert log.has("no SSID") and log.has("access point pinsock-abcd (open): "
                                          "http://192.168.4.1/")


def test_access_point_settings_reach_both_kinds_of_driver():
    for strict in (True, False):  # ESP32: only once up; RP2040: before it comes up
        fakes.reset()
        fakes.WLAN.strict_ap_config = strict
        link = fast(net.WifiLink(conf(ap_password="s3cret-pass"), RecordingLed(), Log()))
        run(link, 30)
        fakes.WLAN.strict_ap_config = True
        events = ap().events
        assert ("active", True) in events
        settings = {"ssid": "pinsock-abcd", "key": "s3cret-pass",
                    "security": fakes.WLAN.SEC_WPA_WPA2}
        assert events[-1] == ("config", settings)
        if not strict:
            assert events[0] == ("config", settings)


def test_joins_with_hostname_and_country_set_first():
    fakes.reset()
    fakes.WLAN.join_after = 1  # the first attempt times out, the second joins
    log = Log()
    led = RecordingLed()
    link = fast(net.WifiLink(conf(wifi_ssid="home", wifi_password="pw", hostname="kitchen",
                                  country="DE"), led, log))
    run(link, 250)
    assert [c[:2] for c in sta().connects] == [("home", "pw"), ("home", "pw")]
    assert link.state == net.JOINED and led.shown == [net.JOINING, net.JOINED]
    assert fakes.names == [("kitchen", False)] and fakes.countries == ["DE"]
    assert not ap().active()
    assert log.has("joined home as 10.0.0.42: http://kitchen.local/ or http://10.0.0.42/")
    assert log.has("could not join home within 40 ms")


def test_retries_with_doubling_backoff_then_opens_the_access_point_then_rejoins():
    fakes.reset()
    log = Log()
    led = RecordingLed()
    link = fast(net.WifiLink(conf(wifi_ssid="home", wifi_password="pw"), led, log))
    seen = {}

    def during(t):
        if ap().active() and "ap" not in seen:
            seen["ap"] = len(sta().connects)
            fakes.WLAN.join_after = len(sta().connects)  # the network is back

    run(link, 500, during)
    times = [c[2] for c in sta().connects]
    assert seen["ap"] == link.join_attempts == 3
    gap1 = time.ticks_diff(times[1], times[0])  # timeout + 30 ms back-off
    gap2 = time.ticks_diff(times[2], times[1])  # timeout + 60 ms back-off
    assert gap1 >= 40 + 30 and gap2 >= 40 + 60 and gap2 - gap1 >= 20, times
    # The access point retries the station after ap_retry_ms, and closes once joined.
    assert time.ticks_diff(times[3], times[2]) >= 40 + link.ap_retry_ms
    assert link.state == net.JOINED and not ap().active()
    assert led.shown == [net.JOINING, net.ACCESS_POINT, net.JOINED]
    assert log.has("access point pinsock-abcd closed")
    assert link.backoff(1) == 30 and link.backoff(2) == 60 and link.backoff(9) == 200


def test_rejoins_by_itself_when_the_link_drops():
    fakes.reset()
    fakes.WLAN.join_after = 0
    log = Log()
    led = RecordingLed()
    link = fast(net.WifiLink(conf(wifi_ssid="home"), led, log))

    def during(t):
        if t == 100:
            sta().connected = False  # the router restarts

    run(link, 250, during)
    assert len(sta().connects) == 2 and link.state == net.JOINED
    assert led.shown == [net.JOINING, net.JOINED, net.JOINING, net.JOINED]
    assert log.has("lost home, rejoining")


def test_a_driver_error_is_logged_and_the_link_keeps_trying():
    fakes.reset()
    fakes.WLAN.connect_error = RuntimeError("driver hiccup")
    log = Log()
    link = fast(net.WifiLink(conf(wifi_ssid="home"), RecordingLed(), log))

    def during(t):
        if t == 50:
            fakes.WLAN.connect_error = None
            fakes.WLAN.join_after = 0

    run(link, 250, during)
    assert log.has("wifi: error, retrying") and link.state == net.JOINED
    # An OSError from connect() is one failed attempt, not an error.
    fakes.reset()
    fakes.WLAN.connect_error = OSError(-1)
    log = Log()
    link = fast(net.WifiLink(conf(wifi_ssid="home"), RecordingLed(), log))
    run(link, 120)
    assert log.has("cannot join home") and not log.has("error, retrying")


def test_watchdog_is_fed_by_the_event_loop_and_held_by_a_timer():
    fakes.reset()
    asyncio.new_event_loop()
    assert net.Watchdog(20000, 0).timeout_ms == 8000  # the RP2040's limit
    assert net.Watchdog(10, 0).timeout_ms == 1000  # the ESP32's minimum
    dog = net.Watchdog(1000, 3)

    async def main():
        dog.start()
        await asyncio.sleep_ms(600)

    asyncio.run(main())
    wdt = fakes.WDT.made[0]
    assert wdt.timeout == 1000 and 2 <= wdt.feeds <= 4  # every 250 ms
    before = wdt.feeds
    dog.hold()
    dog.hold()  # once is enough
    assert len(fakes.Timer.made) == 1
    timer = fakes.Timer.made[0]
    assert timer.id == 3 and timer.period == 250 and timer.mode == fakes.Timer.PERIODIC
    timer.fire()
    assert wdt.feeds == before + 2  # hold() feeds at once, then every tick


def test_start_wires_led_link_and_watchdog_from_board_and_config():
    fakes.reset()
    asyncio.new_event_loop()
    led = {"pin": "LED", "active_low": False}
    log = Log()

    async def main():
        net.start(led, -1, conf(wifi_ssid="home", watchdog_ms=2000), log)
        net.hold_watchdog()
        await asyncio.sleep_ms(20)

    asyncio.run(main())
    assert fakes.Pin.made[0].id == "LED" and fakes.Pin.made[0].mode == fakes.Pin.OUT
    assert fakes.WDT.made[0].timeout == 2000 and fakes.Timer.made[0].id == -1
    assert log.has("watchdog: 2000 ms") and sta().connects
    # No watchdog when config.json says 0.
    fakes.reset()
    asyncio.new_event_loop()
    net._watchdog = None

    async def main_without():
        net.start(led, -1, conf(watchdog_ms=0), log)
        net.hold_watchdog()
        await asyncio.sleep_ms(10)

    asyncio.run(main_without())
    assert fakes.WDT.made == [] and fakes.Timer.made == []


async def led_writes(led, pin):
    """What the LED's pin is set to during 200 ms of each state."""
    seen = {}
    asyncio.create_task(led.run())
    for state in (net.JOINING, net.JOINED, net.ACCESS_POINT):
        led.show(state)
        start = len(pin.writes)
        await asyncio.sleep_ms(200)
        seen[state] = pin.writes[start:]
    return seen


def test_status_led_patterns():
    for active_low, on, off in ((False, 1, 0), (True, 0, 1)):
        fakes.reset()
        asyncio.new_event_loop()
        led = net.StatusLed({"pin": 2, "active_low": active_low})
        led.blink_ms = (10, 0, 40)
        led.steady_check_ms = 10
        seen = asyncio.run(led_writes(led, fakes.Pin.made[0]))
        assert on in seen[net.JOINING] and off in seen[net.JOINING]
        assert len(seen[net.JOINING]) >= 12  # toggles every 10 ms
        assert set(seen[net.JOINED][1:]) == {on}  # steady
        assert 3 <= len(seen[net.ACCESS_POINT]) <= 7 and off in seen[net.ACCESS_POINT]


BOARD = {"ios": [{"pin": 4}, {"pin": 5}, {"pin": 6}], "led": None, "timer_id": 0}


def test_machine_hardware_maps_ios_to_pins_and_delivers_edges():
    fakes.reset()
    hardware = hw.MachineHardware(BOARD)
    hardware.setup(0, 0, 1, 0)  # input, pull-up
    hardware.setup(1, 0, 2, 0)  # input, pull-down
    hardware.setup(2, 1, 0, 1)  # output, driven high
    p0, p1, p2 = fakes.Pin.made
    assert (p0.id, p0.mode, p0.pull) == (4, fakes.Pin.IN, fakes.Pin.PULL_UP)
    assert (p1.id, p1.mode, p1.pull) == (5, fakes.Pin.IN, fakes.Pin.PULL_DOWN)
    assert (p2.id, p2.mode, p2.level) == (6, fakes.Pin.OUT, 1)
    assert hardware.read(0) == 1 and hardware.read(1) == 0
    hardware.write(2, 0)
    assert p2.writes == [0]
    edges = []
    hardware.watch(lambda io, level, now: edges.append((io, level)))
    assert p0.trigger == fakes.Pin.IRQ_RISING | fakes.Pin.IRQ_FALLING and p2.handler is None
    p0.drive(0)
    p1.drive(1)
    assert edges == [(0, 0), (1, 1)]
    hardware.setup(0, 1, 0, 0)  # IO 0 becomes an output: its IRQ goes away
    assert p0.handler is None
    hardware.setup(2, 0, 1, 0)  # IO 2 becomes an input: it gets one at once
    fakes.Pin.made[-1].drive(0)
    assert edges[-1] == (2, 0)
    assert hardware.unique_id_hex() == "240ac412abcd"


def test_an_adc_channel_without_a_pin_is_an_analog_input_and_never_a_pin():
    # The RP2040's temperature sensor, ADC input 4 (board config "adc": 4), beside an
    # analog input on GP26; the bank boots both analog (board config "fn": "a").
    fakes.reset()
    from pinsock.logic.iobank import IoBank

    spec = {"label": "x", "dirs": [0], "pulls": [0], "dir": 0, "pull": 0, "fns": "a",
            "fn": "a"}
    board = {"ios": [dict(spec, adc=4), dict(spec, pin=26, fns="da")], "led": None,
             "timer_id": 0}
    hardware = hw.MachineHardware(board)
    bank = IoBank(hardware, board["ios"], 0)
    bank.start(0)
    assert {p.id for p in fakes.Pin.made} == {26}  # the channel was never made a Pin
    assert hardware.read(0) == 0
    temperature, gp26 = fakes.ADC.made
    assert temperature.source == 4 and gp26.source is fakes.Pin.made[-1]
    temperature.level = 14000  # about 0.7 V: about 27 degrees C
    assert bank.kinds.read_u16(0) == 14000 and bank.kinds.read_u16(1) == 0


def test_the_led_and_the_watchdog_timer_outlive_the_emptied_board_config():
    # lifecycle.run empties the board config once the device is built, and starts the
    # hardware after that: the LED and the watchdog's timer must be taken before.
    fakes.reset()
    asyncio.new_event_loop()
    net._watchdog = None
    board = dict(BOARD, led={"pin": "LED", "active_low": False}, timer_id=3)
    with open("config.json", "w") as f:
        f.write('{"watchdog_ms": 2000}')
    hardware = hw.MachineHardware(board)
    board.clear()

    async def main():
        await hardware.start(config_json.load())
        net.hold_watchdog()
        await asyncio.sleep_ms(10)

    asyncio.run(main())
    net._watchdog = None
    assert [p.id for p in fakes.Pin.made] == ["LED"] and fakes.Timer.made[0].id == 3


def test_machine_hardware_start_reads_config_json_and_starts_the_network():
    fakes.reset()
    asyncio.new_event_loop()
    with open("config.json", "w") as f:
        f.write('{"wifi_ssid": "home", "hostname": "bench", "watchdog_ms": 0}')
    hardware = hw.MachineHardware(BOARD)

    async def main():
        await hardware.start(config_json.load())  # returns at once; the link runs as a task
        await asyncio.sleep_ms(10)

    asyncio.run(main())
    assert fakes.names == [("bench", False)] and sta().connects[0][0] == "home"
