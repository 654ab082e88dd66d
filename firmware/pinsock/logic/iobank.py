# Device logic for the board's IOs: directions, pulls, levels and debouncing.
#
# Pure code: it touches pins only through the hardware layer's small interface
# (`setup`, `read`, `write`, `watch`), so it runs the same on a board, on the unix
# port's simulated board and under CPython.
#
# How a transition travels:
#   pin IRQ (or the simulator) -> `edge()` stores (io, level, time) in a fixed ring,
#   allocation-free, safe from an interrupt -> the scan task calls `scan()`, which
#   replays the edges through the debouncer -> a level that held for `debounce_ms`
#   is committed and every listener is called with (io, level, time).
from array import array

from ..compat import const, ticks_diff

DIR_IN = const(0)
DIR_OUT = const(1)
PULL_NONE = const(0)
PULL_UP = const(1)
PULL_DOWN = const(2)

_NO_EDGE = const(0xFF)

# What an IO is (board config "fns"/"fn", the `f<h>` command), by its index in
# "dawcb": digital (levels, this module), or one of the kinds logic/kinds.py runs
# (FUNCTIONS, FN_...), loaded only once some IO is one.
_FN_BUTTON = const(4)


class IoBank:
    #: Edges captured between two scans. When more arrive, the oldest are kept, the
    #: overflow is counted in `edges_dropped` and the next scan re-reads every input,
    #: so the committed state is still the pins' real state. 6 bytes of RAM each.
    edge_ring_len = 64
    #: An input level must hold this long (ms) to count: shorter glitches are never
    #: reported, and every change reaches clients this much later. Board config:
    #: debounce_ms.
    debounce_ms = 30
    #: Inputs are also re-read this often (ms), in case an interrupt was missed (0:
    #: never); each re-read costs a pass over the inputs. Board config: poll_ms.
    poll_ms = 50

    def __init__(self, hardware, ios, debounce_ms=None, poll_ms=None):
        # ios: list of dicts from the board config, index = IO number:
        #   {"label", "dirs", "pulls", "dir", "pull", "dip" (switch number or 0)}
        self.hardware = hardware
        if debounce_ms is not None:
            self.debounce_ms = debounce_ms
        if poll_ms is not None:
            self.poll_ms = poll_ms
        count = len(ios)
        self.count = count
        # What each IO is called: the board's label until its owner names it (`l<h>=`,
        # protocol/commands.py; kept in settings.json by logic/settings.py).
        self.board_labels = tuple(io["label"] for io in ios)
        self.labels = list(self.board_labels)
        self.labels_changed = 0  # counts renames, for whoever shows labels (MQTT discovery)
        self.allowed_dirs = [tuple(io["dirs"]) for io in ios]
        self.allowed_pulls = [tuple(io["pulls"]) for io in ios]
        self.dip_number = bytearray(io.get("dip", 0) for io in ios)
        self.direction = bytearray(io["dir"] for io in ios)
        self.pull = bytearray(io["pull"] for io in ios)
        # What each IO may be, a bit per function letter, and what it is now.
        fns = self.fns = bytearray(count)
        function = self.function = bytearray(count)
        for io in range(count):
            for letter in ios[io].get("fns", "d"):
                fns[io] |= 1 << "dawcb".index(letter)
            function[io] = "dawcb".index(ios[io].get("fn", "d"))
        # Debounced ("stable") level and the candidate level waiting to outlast the
        # debounce time, with the time its edge was seen.
        self.level = bytearray(count)
        self._pending_level = bytearray(_NO_EDGE for _ in range(count))
        self._pending_since = array("i", (0 for _ in range(count)))
        n = self.edge_ring_len
        self._edge_io = bytearray(n)
        self._edge_level = bytearray(n)
        self._edge_time = array("i", (0 for _ in range(n)))
        self._edge_head = 0
        self._edge_count = 0
        self._overflow = False
        self.edges_dropped = 0
        self.listeners = []
        self.wake = None  # set by the scan task: an object with .set(), e.g. ThreadSafeFlag

    # logic/kinds.py Kinds while some IO is not digital (its set_function makes it,
    # and starts the task that runs it: pinsock/kindtask.py), else None; `device`
    # (logic/device.py Device) is whom it tells. (Class attributes: an instance holds
    # them only once they are set.)
    kinds = None
    device = None  # type: object

    def set_label(self, io, label):
        """Name IO `io` (the caller checked the text: logic/settings.py is_valid_name),
        or give it back the board's label (""). True when that changed it."""
        board_label = self.board_labels[io]
        if not label or label == board_label:
            label = board_label  # the board's own object: settings.json saves it as null
        if label == self.labels[io]:
            return False
        self.labels[io] = label
        self.labels_changed += 1
        return True

    # --- start-up -----------------------------------------------------------
    def start(self, now):
        hw = self.hardware
        for io in range(self.count):
            hw.setup(io, self.direction[io], self.pull[io], 0)
            self.level[io] = hw.read(io)
        hw.watch(self.edge)
        if any(self.function):  # some IO boots as another kind (logic/kinds.py)
            from .kinds import start

            start(self, now)

    def is_dip(self, io):
        return self.dip_number[io] != 0

    # --- edges: called from the hardware layer, possibly in interrupt context ---
    def edge(self, io, level, now):
        # Must not allocate: it may run in a hard IRQ.
        n = self.edge_ring_len
        if self._edge_count == n:
            self._overflow = True
            self.edges_dropped += 1
        else:
            i = (self._edge_head + self._edge_count) % n
            self._edge_io[i] = io
            self._edge_level[i] = level
            self._edge_time[i] = now
            self._edge_count += 1
        wake = self.wake
        if wake is not None:
            wake.set()

    # --- the scan: runs in the scan task ------------------------------------
    def scan(self, now):
        """Replay captured edges through the debouncer and commit levels that held.

        Returns the number of milliseconds until a pending level is due, or -1 when
        nothing is pending.
        """
        n = self.edge_ring_len
        while self._edge_count:
            i = self._edge_head
            io = self._edge_io[i]
            level = self._edge_level[i]
            t = self._edge_time[i]
            self._edge_head = (i + 1) % n
            self._edge_count -= 1
            if io < self.count:
                fn = self.function[io]
                if fn == _FN_BUTTON:
                    kinds = self.kinds
                    if kinds is not None:
                        kinds.edge(io, level, t)
                elif not fn and self.direction[io] == DIR_IN:
                    self._apply(io, level, t)
        if self._overflow:
            self._overflow = False
            self.resample(now)
        return self._commit_due(now)

    def resample(self, now):
        # Read every input and treat a difference as an edge seen now. Used after an
        # edge ring overflow and by the periodic poll that covers missed interrupts.
        read = self.hardware.read
        for io in range(self.count):
            fn = self.function[io]
            if fn == _FN_BUTTON:
                kinds = self.kinds
                if kinds is not None:
                    kinds.edge(io, read(io), now)
            elif self.direction[io] == DIR_IN and not fn:
                level = read(io)
                expected = self._pending_level[io]
                if expected == _NO_EDGE:
                    expected = self.level[io]
                if level != expected:
                    self._apply(io, level, now)

    def _apply(self, io, level, t):
        pending = self._pending_level[io]
        if pending != _NO_EDGE and ticks_diff(t, self._pending_since[io]) >= self.debounce_ms:
            self._commit(io, pending, t)
            pending = _NO_EDGE
        if level == self.level[io]:
            self._pending_level[io] = _NO_EDGE  # a glitch shorter than the debounce time
        elif pending != level:
            self._pending_level[io] = level
            self._pending_since[io] = t

    def _commit_due(self, now):
        debounce = self.debounce_ms
        wait = -1
        for io in range(self.count):
            pending = self._pending_level[io]
            if pending != _NO_EDGE:
                left = debounce - ticks_diff(now, self._pending_since[io])
                if left <= 0:
                    self._commit(io, pending, now)
                elif wait < 0 or left < wait:
                    wait = left
        return wait

    def _commit(self, io, level, now):
        self._pending_level[io] = _NO_EDGE
        if level != self.level[io]:
            self.level[io] = level
            for listener in self.listeners:
                listener(io, level, now)

    # --- outputs and configuration -----------------------------------------
    def drive(self, io, level, now):
        """Drive an output. The caller checks that `io` is an output."""
        self.hardware.write(io, level)
        if level != self.level[io]:
            self.level[io] = level
            for listener in self.listeners:
                listener(io, level, now)

    def configure(self, io, direction, pull, now):
        """Change an IO's direction and pull. The caller checks they are allowed."""
        self.direction[io] = direction
        self.pull[io] = pull
        self._pending_level[io] = _NO_EDGE
        hw = self.hardware
        # An IO turned into an output keeps the level it had: no surprise pulse.
        hw.setup(io, direction, pull, self.level[io])
        level = hw.read(io)
        if level != self.level[io]:
            self.level[io] = level
            for listener in self.listeners:
                listener(io, level, now)
