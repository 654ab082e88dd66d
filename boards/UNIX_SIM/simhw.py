# Hardware layer of the simulated board UNIX_SIM (MicroPython unix port).
#
# Stands in for machine.Pin: each IO has a direction, a pull, the level the firmware
# drives when it is an output, and the level something outside drives onto it (a
# flipped DIP switch, a wire) when it is an input. A control port on 127.0.0.1 lets
# tests and people play the outside world, one text line per command:
#
#   set <io> <0|1>   drive a simulated input       -> ok
#   tset <io> <0|1>  the same, and say when         -> ok <time.ticks_us() at the edge>
#                    (on Linux the unix port's ticks_us is CLOCK_MONOTONIC in µs, the
#                    host's clock: tools/bench.py times pushes from the edge with it)
#   get <io>         read the level on the pin      -> 0 | 1
#   heap             collect garbage, then measure  -> <free bytes> <allocated bytes>
#   alloc            measure without collecting     -> <allocated bytes>
#   gc <on|off>      switch automatic collection    -> ok
#                    (off: gc.mem_alloc() deltas count every byte allocated)
#   analog, pulse, press, pwm   analog inputs, counters, buttons, PWM outputs:
#                    simkinds.py, which answers any other command too
#   anything else                                   -> error <reason>
#
# An HTTP request sent here by mistake (a browser or curl given the control port) gets
# one HTTP answer whose body is one `error` line naming the HTTP port, and the
# connection is closed: no traceback in the simulator's output.
# This file is copied only into simulator builds; real boards never carry it.
import asyncio
import gc
import sys
from time import ticks_us

from pinsock.compat import ticks_ms

_FLOATING = 0xFF
_CONTROL_USAGE = "set <io> <0|1> | tset <io> <0|1> | get <io> | heap | alloc | gc <on|off>"
_DIR_OUT = 1
_PULL_UP = 1


class SimHardware:
    # Longest control line read; longer lines are refused.
    max_control_line = 64
    # Header lines of a stray HTTP request read away before it is answered (so that
    # closing does not reset the connection and lose the answer); more are not waited for.
    max_http_head_lines = 32

    def __init__(self, board):
        # What it needs of the board config, copied: the config itself is freed.
        ios = board["ios"]
        self.labels = [spec["label"] for spec in ios]
        self.host = board["host"]
        self._host_names = () if self.host in ("0.0.0.0", "::", "") else (self.host,)
        self.control_port = board.get("control_port", 8081)
        self.http_port = board.get("http_port", 8080)
        # --unique-id's (tools/sim.py derives one from the state folder when it is not
        # given); without, the one that names it pinsock-c0de, as in the docs.
        self.unique_id = board.get("unique_id") or "5153a1b0c0de"
        n = len(ios)
        self.count = n
        self.direction = bytearray(n)
        self.pull = bytearray(n)
        self.out_level = bytearray(n)
        self.outside = bytearray(_FLOATING for _ in range(n))
        self._edge = None

    # --- the hardware-layer interface the firmware uses -----------------------
    def setup(self, io, direction, pull, level):
        before = self.read(io)
        self.direction[io] = direction
        self.pull[io] = pull
        self.out_level[io] = level
        self._changed(io, before)

    def read(self, io):
        if self.direction[io] == _DIR_OUT:
            return self.out_level[io]
        if self.outside[io] != _FLOATING:
            return self.outside[io]
        return 1 if self.pull[io] == _PULL_UP else 0

    def write(self, io, level):
        self.out_level[io] = level

    def watch(self, edge):
        self._edge = edge  # like Pin.irq(trigger=RISING | FALLING) on every input

    def special(self):
        """Analog inputs, PWM outputs, counters (simkinds.py, loaded when first used)."""
        import simkinds

        return simkinds.of(self)

    def wake_flag(self):
        # Simulated edges come from the control port, in the asyncio thread, so a
        # plain Event will do. (asyncio.ThreadSafeFlag in the unix port's poll set
        # crashes the 1.28/1.29 unix port with SIGSEGV once a few sockets are open.)
        return asyncio.Event()

    def host_names(self):
        # The address it listens on (board.json host, --host): the simulator has no
        # name of its own on the network. 0.0.0.0 (every interface) is none.
        return self._host_names

    def unique_id_hex(self):
        return self.unique_id

    def add_routes(self, app):
        """HTTP endpoint for the page's simulator panel (simulator builds only).

        GET /sim/pins                       every pin: level, output?, outside drive
        GET /sim/set?io=<io>&level=<0|1>    drive a simulated input, like `set` on
                                            the control port; io: 0..15 or a hex digit
        JSON answers; bad input -> 400, an output pin -> 409, both {"error": reason}.
        """
        from pinsock.transport.http import Response

        reasons = {200: "OK", 400: "Bad Request", 409: "Conflict"}

        def reply(answer, status=200):
            return Response(answer, status, {"Cache-Control": "no-store"},
                            reason=reasons[status])

        @app.get("/sim/pins")
        async def sim_pins(request):
            return reply(self.pins())

        @app.route("/sim/set", methods=["GET", "POST"])
        async def sim_set(request):
            return reply(*self.http_set(request.args.get("io"), request.args.get("level")))

    def pins(self):
        """Every pin as the simulator sees it, for GET /sim/pins."""
        labels = self.labels
        out = []
        for io in range(self.count):
            outside = self.outside[io]
            out.append({"io": "%x" % io, "label": labels[io], "level": self.read(io),
                        "output": self.direction[io] == _DIR_OUT,
                        "driven": None if outside == _FLOATING else outside})
        return {"pins": out}

    def http_set(self, io_text, level_text):
        """GET /sim/set -> (JSON answer, HTTP status)."""
        last = self.count - 1
        if io_text is None or level_text is None:
            return {"error": "usage: /sim/set?io=<0..%d>&level=<0|1>" % last}, 400
        text = io_text.strip().lower()
        # A decimal number, or one hex digit as the WebSocket protocol names IOs.
        if len(text) == 1 and text in "abcdef":
            io = "abcdef".index(text) + 10
        elif 0 < len(text) <= 2 and text.isdigit():
            io = int(text)
        else:
            io = -1
        if not 0 <= io <= last:
            return {"error": "no io %r; this board has 0..%d" % (io_text[:8], last)}, 400
        level = level_text.strip()
        if level not in ("0", "1"):
            return {"error": "level must be 0 or 1"}, 400
        if self.direction[io] == _DIR_OUT:
            return {"error": "io %d is an output driven by the firmware" % io}, 409
        answer = self.control("set %d %s" % (io, level))
        if answer != "ok":
            return {"error": answer[6:] if answer.startswith("error ") else answer}, 400
        return {"io": "%x" % io, "level": self.read(io)}, 200

    async def start(self, conf):
        self.wifi_conf = (conf["wifi_ssid"], conf["hostname"])
        self.wifi().announce()
        await asyncio.start_server(self._serve_control, self.host, self.control_port)

    def wifi(self):
        """The simulated radio (simwifi.py, loaded for a Wi-Fi setup request only)."""
        import simwifi

        del sys.modules["simwifi"]  # freed with the request's SimWifi
        return simwifi.SimWifi(self)

    # --- the outside world -------------------------------------------------------
    def drive_outside(self, io, level):
        before = self.read(io)
        self.outside[io] = level
        self._changed(io, before)

    def _changed(self, io, before):
        level = self.read(io)
        if level != before and self.direction[io] != _DIR_OUT and self._edge:
            self._edge(io, level, ticks_ms())

    def control(self, line):
        """One control-port command -> its one-line answer."""
        words = line.split()
        if not words:
            return "error empty command; use: " + _CONTROL_USAGE
        verb = words[0]
        if verb in ("heap", "alloc", "gc"):
            return self._heap_control(words)
        if verb not in ("set", "tset", "get"):  # (press answers with a coroutine)
            return self.special().control(words, _CONTROL_USAGE)
        if len(words) != (2 if verb == "get" else 3):
            return "error usage: set <io> <0|1> | tset <io> <0|1> | get <io>"
        try:
            io = int(words[1])
        except ValueError:
            io = -1
        if not 0 <= io < self.count:
            return "error no io %r; this board has 0..%d" % (words[1][:8], self.count - 1)
        if verb == "get":
            return str(self.read(io))
        if words[2] not in ("0", "1"):
            return "error level must be 0 or 1"
        if self.direction[io] == _DIR_OUT:
            return "error io %d is an output driven by the firmware" % io
        at = ticks_us()
        self.drive_outside(io, int(words[2]))
        return "ok %d" % at if verb == "tset" else "ok"

    def _heap_control(self, words):
        # Heap figures for the memory tests and the benchmark (tools/bench.py).
        verb = words[0]
        if verb == "gc":
            if len(words) != 2 or words[1] not in ("on", "off"):
                return "error usage: gc <on|off>"
            if words[1] == "on":
                gc.enable()
            else:
                gc.disable()
            return "ok"
        if len(words) != 1:
            return "error usage: %s (no arguments)" % verb
        if verb == "alloc":
            return str(gc.mem_alloc())
        gc.collect()
        return "%d %d" % (gc.mem_free(), gc.mem_alloc())

    def wrong_port_answer(self):
        """The answer to an HTTP request on the control port: HTTP, so that a browser
        or curl shows it, with one `error` line saying where HTTP is."""
        line = ("error this is the simulator's control port (%s), not HTTP; the page and"
                " /action.cgi are on http://%s:%d/\n" % (
                    _CONTROL_USAGE, self.host, self.http_port)).encode()
        return (b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(line)) + line

    async def _serve_control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if is_http_request_line(line):
                    # Read the head away, answer once, close.
                    for _ in range(self.max_http_head_lines):
                        if (await reader.readline()).strip() == b"":
                            break
                    await writer.awrite(self.wrong_port_answer())
                    break
                if len(line) > self.max_control_line:
                    answer = "error line too long"
                else:
                    try:
                        answer = self.control(line.decode())
                    except UnicodeError:
                        answer = "error not text"
                    if not isinstance(answer, str):
                        answer = await answer
                await writer.awrite(answer.encode() + b"\n")
        except OSError:
            pass  # the peer went away (reset, broken pipe): nothing to say
        except Exception as exc:
            sys.print_exception(exc)
        try:
            await writer.aclose()
        except Exception:
            pass


def is_http_request_line(line):
    """Whether a control-port line is an HTTP request line (`GET / HTTP/1.1`)."""
    words = line.split()
    return len(words) == 3 and words[2].startswith(b"HTTP/")
