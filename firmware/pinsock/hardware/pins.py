# Hardware layer for real boards (ESP32, RP2040): with net.py, the only firmware
# that imports `machine`. It maps IO numbers to machine pins as the board config says;
# net.py brings up the network, the status LED and the watchdog.
import asyncio

import machine

from . import net
from ..compat import ticks_ms

_PULLS = (None, machine.Pin.PULL_UP, machine.Pin.PULL_DOWN)


class MachineHardware:
    def __init__(self, board):
        # What it needs of the board config, taken now: start-up empties the config
        # once the device is built (lifecycle.run), before start() brings up the LED
        # and the watchdog.
        self.led = board.get("led")
        self.timer_id = board.get("timer_id", -1)
        # None for an ADC channel that no GPIO reaches ("adc" in the board config, in
        # adc_channels by IO: kinds.py reads it; as a digital IO it is never set up).
        self.pin_ids = [spec.get("pin") for spec in board["ios"]]
        self.adc_channels = {io: spec["adc"] for io, spec in enumerate(board["ios"])
                             if "adc" in spec}
        self.pins = [None] * len(self.pin_ids)  # type: list
        self.direction = bytearray(len(self.pin_ids))
        self._edge = None
        self.link = None  # the net.WifiLink, once started
        self.pwm_freqs = board.get("pwm_freqs", 0)  # distinct PWM frequencies; 0: any
        self._special = None

    def special(self):
        """Analog inputs, PWM outputs, counters (kinds.py, loaded when first used)."""
        if self._special is None:
            from .kinds import MachineKinds

            self._special = MachineKinds(self)
        return self._special

    def setup(self, io, direction, pull, level):
        pin_id = self.pin_ids[io]
        self.direction[io] = direction
        if self.pins[io] is not None:
            self.pins[io].irq(handler=None)
        if pin_id is None:  # an ADC channel: no pin
            return
        if direction:
            pin = machine.Pin(pin_id, machine.Pin.OUT, value=level)
        else:
            pin = machine.Pin(pin_id, machine.Pin.IN, _PULLS[pull])
            if self._edge is not None:
                self._irq(io, pin, self._edge)
        self.pins[io] = pin

    def read(self, io):
        pin = self.pins[io]
        return 0 if pin is None else pin.value()

    def write(self, io, level):
        self.pins[io].value(level)

    def watch(self, edge):
        self._edge = edge
        for io, pin in enumerate(self.pins):
            if pin is not None and not self.direction[io]:
                self._irq(io, pin, edge)

    def _irq(self, io, pin, edge):
        def handler(p):  # one closure per pin, made once at setup
            edge(io, p.value(), ticks_ms())

        pin.irq(handler, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)

    def wake_flag(self):
        # Pin IRQs set it, so it must be safe to set from an interrupt.
        return asyncio.ThreadSafeFlag()

    def unique_id_hex(self):
        return "".join("%02x" % b for b in machine.unique_id())

    def add_routes(self, app):
        pass

    def host_names(self):
        # The name the network layer announces (DHCP, mDNS) and the board's addresses
        # now; none before the network is up.
        link = self.link
        return link.host_names() if link is not None else ()

    def wifi(self):
        """The Wi-Fi link (net.WifiLink), for the setup (transport/wifisetup.py)."""
        return self.link

    async def start(self, conf):
        # `conf` is config.json (netconf.py). Returns at once: the station, access
        # point, LED and watchdog run as tasks, and the server listens on 0.0.0.0
        # while the network comes up.
        self.link = net.start(self.led, self.timer_id, conf)
