# Stand-ins for MicroPython's `machine` and `network` modules of a real board, so the
# real-board hardware layer (hardware/pins.py, hardware/net.py) runs on the unix port.
# install() puts them in sys.modules before pinsock.hardware is imported.
import sys


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    made = []  # every Pin constructed, in order

    def __init__(self, id, mode=-1, pull=None, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.level = value if value is not None else (1 if pull == Pin.PULL_UP else 0)
        self.handler = None
        self.trigger = 0
        self.writes = []
        Pin.made.append(self)

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        self.writes.append(level)

    def irq(self, handler=None, trigger=0):
        self.handler = handler
        self.trigger = trigger

    def drive(self, level):
        """The outside world changes an input; its IRQ fires."""
        self.level = level
        if self.handler:
            self.handler(self)


class ADC:
    """An ADC input: on a Pin, or a channel no GPIO reaches (the RP2040's 4, its
    temperature sensor). read_u16 answers `level`."""

    made = []

    def __init__(self, source):
        self.source = source
        self.level = 0
        ADC.made.append(self)

    def read_u16(self):
        return self.level


class WDT:
    made = []

    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDT.made.append(self)

    def feed(self):
        self.feeds += 1


class Timer:
    PERIODIC = 1
    made = []

    def __init__(self, id, mode=PERIODIC, period=-1, callback=None):
        self.id = id
        self.mode = mode
        self.period = period
        self.callback = callback
        Timer.made.append(self)

    def fire(self):
        self.callback(self)


def unique_id():
    return b"\x24\x0a\xc4\x12\xab\xcd"


class WLAN:
    SEC_OPEN = 0
    SEC_WPA_WPA2 = 4
    # What the test wants the network it joins to do: how many connect() calls fail
    # before one succeeds (None: never), and an error connect() raises.
    join_after = None
    connect_error = None
    # The ESP32's driver refuses AP settings before the interface is up.
    strict_ap_config = True
    made = {}  # interface -> the last WLAN made for it

    def __init__(self, interface):
        WLAN.made[interface] = self
        self.interface = interface
        self._active = False
        self.connected = False
        self.connects = []  # (ssid, key, ticks_ms) per connect()
        self.settings = {}
        self.events = []

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        self.events.append(("active", bool(on)))
        if not on:
            self.connected = False

    def config(self, *args, **kwargs):
        if args:
            return {"mac": b"\x24\x0a\xc4\x12\xab\xcd"}[args[0]]
        if self.interface == AP_IF and not self._active and self.strict_ap_config:
            raise OSError("Wifi Not Started")
        self.settings.update(kwargs)
        self.events.append(("config", kwargs))

    def connect(self, ssid, key):
        import time

        if WLAN.connect_error is not None:
            raise WLAN.connect_error
        self.connects.append((ssid, key, time.ticks_ms()))
        if WLAN.join_after is not None and len(self.connects) > WLAN.join_after:
            self.connected = True

    def disconnect(self):
        self.connected = False

    def isconnected(self):
        return self.connected

    def status(self):
        return 3 if self.connected else -2

    def ifconfig(self):
        if self.interface == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        return ("10.0.0.42", "255.255.255.0", "10.0.0.1", "10.0.0.1")


STA_IF = 0
AP_IF = 1
names = []  # network.hostname() calls, with whether the station was up at the time


def hostname(name=None):
    sta = WLAN.made.get(STA_IF)
    names.append((name, sta.active() if sta else False))


countries = []


def country(code=None):
    countries.append(code)


class _Module:
    pass


def install():
    machine = _Module()
    for name in ("Pin", "ADC", "WDT", "Timer", "unique_id"):
        setattr(machine, name, globals()[name])
    network = _Module()
    for name in ("WLAN", "STA_IF", "AP_IF", "hostname", "country"):
        setattr(network, name, globals()[name])
    sys.modules["machine"] = machine
    sys.modules["network"] = network


def reset():
    Pin.made.clear()
    ADC.made.clear()
    WDT.made.clear()
    Timer.made.clear()
    WLAN.made.clear()
    names.clear()
    countries.clear()
    WLAN.join_after = None
    WLAN.connect_error = None
