# Stand-ins for the hardware layer and the transport, for device-logic tests.
# Runs on CPython and on the MicroPython unix port.
import os


def board_ios(dips=8, gpios=8):
    ios = []
    for i in range(dips):
        ios.append({"pin": i, "label": "DIP %d" % (i + 1), "dip": i + 1, "dirs": [0],
                    "pulls": [1], "dir": 0, "pull": 1})
    for i in range(dips, dips + gpios):
        # What UNIX_SIM's GPIOs 8-15 may be (boards/UNIX_SIM/board.json fns).
        ios.append({"pin": i, "label": "GPIO %d" % i, "dirs": [0, 1], "pulls": [0, 1, 2],
                    "dir": 0, "pull": 0, "fns": GPIO_FNS[(i - dips) % 8]})
    return ios


GPIO_FNS = ("da", "da", "daw", "daw", "dcb", "dcb", "db", "db")


class FakeSpecial:
    """The hardware layer's analog inputs, PWM outputs and counters (logic/kinds.py):
    levels and counts a test sets, duty and frequency it reads back. Allocation-free."""

    pwm_freqs = 0

    def __init__(self, count):
        from array import array

        self.function = bytearray(count)
        self.level = array("H", bytes(2 * count))
        self.counts = array("i", bytes(4 * count))
        self.duty = array("H", bytes(2 * count))
        self.freq = array("i", bytes(4 * count))

    def setup(self, io, fn):
        self.function[io] = fn

    def read_u16(self, io):
        return self.level[io]

    def pwm(self, io, duty_u16, hz):
        self.duty[io] = duty_u16
        self.freq[io] = hz

    def count(self, io):
        return self.counts[io]

    def reset(self, io):
        self.counts[io] = 0


class FakeHardware:
    """Pins whose input levels a test sets, with edges delivered like an IRQ."""

    def __init__(self, count):
        self.levels = bytearray(count)
        self.direction = bytearray(count)
        self.pull = bytearray(count)
        self.writes = []
        self.edge = None
        self.kinds = FakeSpecial(count)

    def special(self):
        return self.kinds

    def setup(self, io, direction, pull, level):
        self.direction[io] = direction
        self.pull[io] = pull
        if direction:
            self.levels[io] = level
        elif pull == 1 and not self.driven(io):
            self.levels[io] = 1

    def driven(self, io):
        return False

    def read(self, io):
        return self.levels[io]

    def write(self, io, level):
        self.levels[io] = level
        self.writes.append((io, level))

    def watch(self, edge):
        self.edge = edge

    def set(self, io, level, t):
        """The outside world drives an input at time t (ms); the IRQ fires."""
        self.levels[io] = level
        self.edge(io, level, t)


class FakeClient:
    """A connection as the device logic sees it: push() and close()."""

    def __init__(self):
        self.frames = []
        self.closed = None
        self.triggers = None
        self.kinds = None  # (transport/hub.py Client.kinds)
        self.closing = False
        self.credit = 0
        self.credit_at = 0

    def writes_now(self):
        return True

    def push(self, frame, is_report=False):
        # Like the socket: takes a copy (a report frame is a view of a reused buffer).
        self.frames.append(bytes(frame))
        return True

    def close(self, code, reason=""):
        self.closed = (code, reason)
        self.closing = True

    def texts(self):
        # Strip the server frame header: 2 bytes, or 4 when the length needs 16 bits.
        return [bytes(f[4:] if f[1] == 126 else f[2:]).decode() for f in self.frames]


class NoSettings:
    """Settings that are never written anywhere (engine tests that save nothing)."""

    name = "x"
    announce = True  # announced to Home Assistant (Settings.announce)

    def save(self):
        return True

    def changed(self):
        pass


class FakeStatus:
    version = "9.9.9"
    board = "TEST_BOARD"
    mqtt = None  # no mqtt block (Status.mqtt)
    ota = '{"s":"a","t":"0","p":"","r":""}'  # never updated (Status.ota)

    def clients(self):
        return 1

    def uptime_s(self):
        return 42

    def free_heap(self):
        return 123456


def scratch_dir(name):
    """An empty folder for files a test writes (no tempfile on MicroPython)."""
    getenv = getattr(os, "getenv", None)  # the qemu port's os has none
    base = (getenv and getenv("PINSOCK_TEST_TMP")) or "/tmp"
    path = base + "/" + name
    try:
        os.mkdir(path)
    except OSError:
        pass
    for entry in os.listdir(path):
        os.remove(path + "/" + entry)
    return path


class FakeStatusAt(FakeStatus):
    """FakeStatus whose milliseconds since boot are the ticks themselves."""

    def ms_at(self, ticks):
        return ticks
