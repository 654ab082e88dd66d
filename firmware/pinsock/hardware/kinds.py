# The hardware layer's analog inputs, PWM outputs and counters on a real board
# (machine.ADC, machine.PWM; counting in machine.Counter / esp32.PCNT on the ESP32, in
# a hard Pin.irq on the RP2040, which has no Counter). The interface logic/kinds.py
# uses (setup, read_u16, pwm, count, reset, pwm_freqs); loaded the first time an IO is
# one of these kinds, so a board whose IOs are all digital never imports it.
from array import array

import machine

_ANALOG = 1
_PWM = 2
_COUNTER = 3

# A pulse counter unit per counting IO: machine.Counter, the ESP32's PCNT (8 units,
# MicroPython 1.25 and later). None: count in a hard IRQ (the RP2040, which has no
# Counter, and an ESP32 firmware older than that).
_Counter = getattr(machine, "Counter", None)


class MachineKinds:
    #: Pulse counter units (machine.Counter ids) the ESP32 has.
    counter_units = 8

    def __init__(self, hw):
        n = len(hw.pin_ids)
        self.hw = hw
        self.pwm_freqs = hw.pwm_freqs  # board config; 0: any number
        self.objects = [None] * n  # type: list
        self.unit = bytearray(0xFF for _ in range(n))  # counter unit per IO
        self.counts = array("i", bytes(4 * n))  # counted by a hard IRQ

    def setup(self, io, fn):
        obj = self.objects[io]
        self.objects[io] = None
        if obj is not None and hasattr(obj, "deinit"):
            obj.deinit()
        self.unit[io] = 0xFF
        pin = self.hw.pins[io]
        if fn == _ANALOG:
            if pin is None:  # an ADC channel no GPIO reaches (board config "adc")
                adc = machine.ADC(self.hw.adc_channels[io])
            else:
                pin.irq(handler=None)
                adc = machine.ADC(pin)
            if hasattr(adc, "atten"):  # ESP32: the whole 0-3.3 V range
                adc.atten(machine.ADC.ATTN_11DB)
            self.objects[io] = adc
        elif fn == _PWM:
            self.objects[io] = machine.PWM(pin)
        elif fn == _COUNTER:
            pin.irq(handler=None)
            self.counts[io] = 0
            if _Counter is None:
                counts = self.counts

                def count(p):  # hard IRQ: allocates nothing
                    counts[io] += 1

                pin.irq(count, machine.Pin.IRQ_RISING, hard=True)
            else:
                unit = 0
                while unit in self.unit:
                    unit += 1
                self.unit[io] = unit
                self.objects[io] = _Counter(unit, pin)  # rising edges, counting up

    def read_u16(self, io):
        return self.objects[io].read_u16()

    def pwm(self, io, duty_u16, hz):
        out = self.objects[io]
        out.freq(hz)
        out.duty_u16(duty_u16)

    def count(self, io):
        counter = self.objects[io]
        return self.counts[io] if counter is None else counter.value()

    def reset(self, io):
        counter = self.objects[io]
        if counter is None:
            self.counts[io] = 0
        else:
            counter.value(0)
