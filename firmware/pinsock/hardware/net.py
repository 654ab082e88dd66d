# Network, status LED and watchdog of a real board (ESP32, RP2040): hardware layer.
#
# With hw.py, the only firmware module that imports `machine` and `network`; it is
# started by MachineHardware.start(). Nothing else in the firmware knows whether the
# board is on a Wi-Fi network, is its own access point, or has a watchdog.
#
#   station       joins the Wi-Fi named in config.json; each attempt ends after
#                 `connect_timeout_ms`, failed ones are retried after a back-off that
#                 doubles, and a dropped link is rejoined the same way.
#   access point  when no SSID is configured, or `join_attempts` attempts failed, the
#                 board opens its own network pinsock-<last 4 hex of its MAC>, where
#                 the page is http://192.168.4.1/ (the address both ports give an AP).
#                 With an SSID it keeps trying the station every `ap_retry_ms`, and
#                 closes the access point once it has joined.
#   status LED    fast blink: joining; steady: joined; slow blink: access point.
#   watchdog      machine.WDT, fed by an asyncio task: when the event loop hangs, or
#                 the firmware stops, the board restarts. hold_watchdog() keeps a
#                 board that was stopped on purpose alive (tools/deploy.py calls it).
#
# Every task here logs and survives its own exceptions: a network error never stops
# the server.
import asyncio

import machine
import network

from ..compat import print_exception

# What the status LED shows.
JOINING = 0
JOINED = 1
ACCESS_POINT = 2
_STATE_NAMES = ("joining", "joined", "access point")

# Where the board answers when it is its own access point (the ports' default).
AP_ADDRESS = "192.168.4.1"


class StatusLed:
    # Half-period of the blink for JOINING, JOINED, ACCESS_POINT, in ms (0 = steady).
    blink_ms = (100, 0, 1000)
    # How often a steady LED looks for a new state, in ms.
    steady_check_ms = 200

    def __init__(self, spec):
        # spec: the board's "led" entry, {"pin": 2 | "LED", "active_low": false}, or None.
        self.pin = machine.Pin(spec["pin"], machine.Pin.OUT) if spec else None
        self.on_level = 0 if spec and spec.get("active_low") else 1
        self.state = JOINING

    def show(self, state):
        self.state = state

    async def run(self):
        pin = self.pin
        if pin is None:
            return
        lit = False
        while True:
            half = self.blink_ms[self.state]
            lit = True if half == 0 else not lit
            pin.value(self.on_level if lit else 1 - self.on_level)
            await asyncio.sleep_ms(half or self.steady_check_ms)


class Watchdog:
    # ESP32 needs at least 1000 ms; the RP2040's hardware allows at most 8388 ms.
    min_timeout_ms = 1000
    max_timeout_ms = 8000
    # Feeds per timeout period: a few, so one slow request does not restart the board.
    feeds_per_timeout = 4

    def __init__(self, timeout_ms, timer_id):
        self.timeout_ms = max(self.min_timeout_ms, min(timeout_ms, self.max_timeout_ms))
        self.timer_id = timer_id  # a machine.Timer the board can spare, for hold()
        self.wdt = None
        self._timer = None

    def start(self):
        # Once started a machine.WDT cannot be stopped, on either chip.
        self.wdt = machine.WDT(timeout=self.timeout_ms)
        asyncio.create_task(self._feed())

    async def _feed(self):
        wdt = self.wdt
        period = self.timeout_ms // self.feeds_per_timeout
        while wdt is not None:
            wdt.feed()
            await asyncio.sleep_ms(period)

    def hold(self):
        """Feed from a timer, for a board whose firmware was stopped on purpose.

        After Ctrl-C nothing runs the event loop, so the watchdog would restart the
        board within its timeout, in the middle of a deploy or a REPL session. A
        soft timer callback runs whenever the interpreter does, at the REPL too.
        """
        wdt = self.wdt
        if wdt is None or self._timer is not None:
            return
        wdt.feed()
        self._timer = machine.Timer(self.timer_id, mode=machine.Timer.PERIODIC,
                                    period=self.timeout_ms // self.feeds_per_timeout,
                                    callback=lambda t: wdt.feed())


class WifiLink:
    # One attempt to join the configured network, in ms.
    connect_timeout_ms = 15000
    # Failed attempts before the access point opens.
    join_attempts = 3
    # Wait after the first failed attempt, in ms; it doubles with each further one.
    backoff_ms = 2000
    max_backoff_ms = 60000
    # How often a joined board checks its link, in ms.
    check_ms = 2000
    # How often a board that opened its access point tries the station again, in ms.
    ap_retry_ms = 300000
    # Poll period while an attempt to join is under way, in ms.
    poll_ms = 250

    def __init__(self, conf, led, log=print):
        self.ssid = conf["wifi_ssid"]
        self.password = conf["wifi_password"]
        self.ap_password = conf["ap_password"]
        self.country = conf["country"]
        self.led = led
        self.log = log
        self.sta = network.WLAN(network.STA_IF)
        self.ap = network.WLAN(network.AP_IF)
        try:
            mac = self.ap.config("mac")
        except OSError:  # a driver that knows its MAC only once up
            mac = machine.unique_id()
        suffix = "%02x%02x" % (mac[-2], mac[-1])
        self.ap_ssid = "pinsock-" + suffix
        self.hostname = conf["hostname"] or self.ap_ssid
        self.state = None

    def start(self):
        if self.country:
            network.country(self.country)
        # Before the interfaces come up: DHCP and mDNS announce this name.
        network.hostname(self.hostname)
        asyncio.create_task(self.run())

    async def run(self):
        while True:
            try:
                await self.supervise()
            except Exception as exc:  # a driver error: log it, wait, start over
                self.log("wifi: error, retrying")
                print_exception(exc)
                await asyncio.sleep_ms(self.backoff_ms)

    def _set_state(self, state):
        self.led.show(state)
        self.state = state

    async def supervise(self):
        if not self.ssid:
            self.log("wifi: no SSID in config.json")
            self.open_ap()
            while True:
                await asyncio.sleep_ms(self.ap_retry_ms)
        failures = 0
        while True:
            if self.sta.isconnected():
                if self.state != JOINED:
                    self._joined()
                failures = 0
                await asyncio.sleep_ms(self.check_ms)
                continue
            if self.state == JOINED:
                self.log("wifi: lost %s, rejoining" % self.ssid)
            if not self.ap.active():
                self._set_state(JOINING)
            if await self.join():
                continue
            failures += 1
            if failures >= self.join_attempts and not self.ap.active():
                self.open_ap()
            if self.ap.active():
                await asyncio.sleep_ms(self.ap_retry_ms)
            else:
                await asyncio.sleep_ms(self.backoff(failures))

    def backoff(self, failures):
        """Wait after `failures` failed attempts in a row, in ms."""
        wait = self.backoff_ms << min(failures - 1, 16)
        return min(wait, self.max_backoff_ms)

    async def join(self):
        """One attempt to join the configured network. True once joined."""
        sta = self.sta
        self.log("wifi: joining %s" % self.ssid)
        sta.active(True)
        try:
            sta.disconnect()  # an attempt still under way would refuse a new one
            sta.connect(self.ssid, self.password)
        except OSError as exc:
            self.log("wifi: cannot join %s: %r" % (self.ssid, exc))
            return False
        waited = 0
        while waited < self.connect_timeout_ms:
            await asyncio.sleep_ms(self.poll_ms)
            waited += self.poll_ms
            if sta.isconnected():
                return True
        self.log("wifi: could not join %s within %d ms (status %r)"
                 % (self.ssid, self.connect_timeout_ms, sta.status()))
        sta.disconnect()
        return False

    def host_names(self):
        """The names and addresses the network knows the board by now: its hostname,
        <hostname>.local, the station's address once joined, the access point's
        while it is open (routes.py accepts these as Host)."""
        names = [self.hostname.lower(), self.hostname.lower() + ".local"]
        if self.sta.isconnected():
            names.append(self.sta.ifconfig()[0])
        if self.ap.active():
            names.append(self.ap.ifconfig()[0])
        return names

    # --- for the Wi-Fi setup (transport/wifisetup.py) -------------------------------
    def describe(self):
        """What the Wi-Fi does now."""
        joined = self.state == JOINED
        return {"mode": "station" if joined else "access point" if self.ap.active()
                else "joining", "ssid": self.ssid if joined or not self.ap.active()
                else self.ap_ssid, "hostname": self.hostname}

    def scan(self):
        """[(ssid, rssi, secured)] of the networks in range. The radio scans for about
        2 s, during which nothing else runs (the drivers' scan blocks)."""
        sta = self.sta
        sta.active(True)
        found = []
        try:
            for entry in sta.scan():  # (ssid, bssid, channel, RSSI, security, hidden)
                try:
                    found.append((entry[0].decode(), entry[3], entry[4] != 0))
                except UnicodeError:  # a name that is not text: not offered
                    pass
        except OSError as exc:
            self.log("wifi: scan failed: %r" % exc)
        return found

    def restart(self, delay_ms):
        """Reset the board after delay_ms (the answer that says so gets out first)."""
        async def later():
            await asyncio.sleep_ms(delay_ms)
            machine.reset()

        asyncio.create_task(later())

    def _joined(self):
        self._set_state(JOINED)
        address = self.sta.ifconfig()[0]
        self.log("wifi: joined %s as %s: http://%s.local/ or http://%s/"
                 % (self.ssid, address, self.hostname, address))
        if self.ap.active():
            self.ap.active(False)
            self.log("wifi: access point %s closed" % self.ap_ssid)

    def open_ap(self):
        ap = self.ap
        if self.ap_password:
            settings = {"ssid": self.ap_ssid, "key": self.ap_password,
                        "security": network.WLAN.SEC_WPA_WPA2}
        else:
            settings = {"ssid": self.ap_ssid, "security": network.WLAN.SEC_OPEN}
        # The RP2040's driver takes the settings before the interface comes up, the
        # ESP32's only after: give them both times.
        try:
            ap.config(**settings)
        except OSError:
            pass
        ap.active(True)
        ap.config(**settings)
        self._set_state(ACCESS_POINT)
        self.log("wifi: access point %s (%s): http://%s/" % (
            self.ap_ssid, "WPA2" if self.ap_password else "open", ap.ifconfig()[0]))


# The running watchdog, for hold_watchdog().
_watchdog = None


def start(led, timer_id, conf, log=print):
    """Start the LED (the board config's "led": {"pin": ..., "active_low": ...} or
    None), the Wi-Fi link and the watchdog (fed from machine.Timer `timer_id` while
    held; -1: none). Returns the WifiLink."""
    global _watchdog
    led = StatusLed(led)
    asyncio.create_task(led.run())
    link = WifiLink(conf, led, log)
    link.start()
    if conf["watchdog_ms"]:
        _watchdog = Watchdog(conf["watchdog_ms"], timer_id)
        _watchdog.start()
        log("watchdog: %d ms" % _watchdog.timeout_ms)
    return link


def hold_watchdog():
    """Keep feeding the watchdog while the board sits at the REPL. See Watchdog.hold."""
    if _watchdog is not None:
        _watchdog.hold()
