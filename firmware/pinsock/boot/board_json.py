# The board config (boards/<BOARD>/board.json on the host, board.json on the device),
# with the run-time overrides the simulator takes on its command line.
import json

# Settings a board file may leave out. A limit's default is the class attribute that
# holds it (IoBank.debounce_ms, ClientHub.max_clients, ...: tests_host/device/
# test_config.py checks they agree), documented there and in README.md.
DEFAULTS = {
    "host": "0.0.0.0",  # address the HTTP server listens on
    "http_port": 80,
    "https_port": 443,  # HTTPS and WSS, when cert.der and key.der are there (tlskeys.py)
    "max_clients": 1,  # WebSocket sessions; a newcomer replaces the oldest
    "debounce_ms": 30,  # an input level must hold this long to count
    "poll_ms": 50,  # inputs are also re-read this often, in case an IRQ was missed
    "max_frame_len": 256,  # longest WebSocket text frame accepted (close 1009 beyond)
    "state_dir": "",  # folder of the flash where settings are kept
    "log_size": 256,  # input transitions the event log keeps (GET /log)
    "ping_interval_ms": 15000,  # a WebSocket ping to every client this often
    "idle_timeout_ms": 45000,  # a client heard from for this long is closed
    "stuck_timeout_ms": 10000,  # a client whose outbox stays full this long: close 1013
    "max_commands_per_s": 50,  # more get "rate limited" error replies
    "tcp_send_buffer": 0,  # bytes of unsent data a connection's socket holds; 0: the stack's
    # How the owner fixes an unreadable config.json, ending the login page's message
    # (boot/config_json.py): a board is fixed over USB; the simulator says where its file is.
    "config_fix": "fix it over USB with make deploy",
    "leds": [],  # IO of NetBurner's LED 0, 1, ... (protocol/leds.py), at most MAX_LEDS
}

# Command-line overrides: flag -> (config key, parser).
_FLAGS = {
    "--http-port": ("http_port", int),
    "--https-port": ("https_port", int),
    "--control-port": ("control_port", int),
    "--max-clients": ("max_clients", int),
    "--debounce-ms": ("debounce_ms", int),
    "--state-dir": ("state_dir", str),
    "--host": ("host", str),
    "--ping-interval-ms": ("ping_interval_ms", int),
    "--idle-timeout-ms": ("idle_timeout_ms", int),
    "--stuck-timeout-ms": ("stuck_timeout_ms", int),
    "--max-commands-per-s": ("max_commands_per_s", int),
    "--log-size": ("log_size", int),
    # The simulator's unique id, in hex (boards/UNIX_SIM/simhw.py): several simulators
    # are several boards. Without it a simulator derives one from its state folder.
    "--unique-id": ("unique_id", str),
    # Updates over the network (docs/OTA.md): seconds of serving before a new version
    # confirms itself (pinsock/otastate.py CONFIRM_S), bytes an update must leave free
    # on the flash (transport/ota.py reserve_bytes).
    "--ota-confirm-s": ("ota_confirm_s", int),
    "--ota-reserve-bytes": ("ota_reserve_bytes", int),
}

MAX_IOS = 16
# What an IO can be, one letter each (docs/PROTOCOL.md, `f<h>`): digital (the default),
# analog in, PWM out, counter, button. An IO's "fns" lists those it allows (absent:
# "d"), its "fn" the one it boots with (absent: "d"). An IO is a GPIO ("pin"), or an
# ADC input that no GPIO reaches ("adc": its channel, e.g. the RP2040's temperature
# sensor, 4), which is analog only.
FUNCTIONS = "dawcb"
MAX_LEDS = 8  # NetBurner's ledcb0 .. ledcb7 (protocol/leds.py)


class ConfigError(Exception):
    pass


def parse_args(argv):
    """['--http-port', '8080', ...] -> {'http_port': 8080, ...}"""
    overrides = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag not in _FLAGS or i + 1 >= len(argv):
            raise ConfigError("unknown option or missing value: %s" % flag)
        key, parse = _FLAGS[flag]
        try:
            overrides[key] = parse(argv[i + 1])
        except ValueError:
            raise ConfigError("bad value for %s: %s" % (flag, argv[i + 1]))
        i += 2
    return overrides


def load_board(path, overrides=None):
    try:
        with open(path) as f:
            board = json.load(f)
    except OSError:
        raise ConfigError("cannot read board config %s" % path)
    except ValueError:
        raise ConfigError("board config %s is not valid JSON" % path)
    if not isinstance(board, dict):
        raise ConfigError("board config must be a JSON object")
    for key, value in DEFAULTS.items():
        board.setdefault(key, value)
    if overrides:
        board.update(overrides)
    check_board(board)
    return board


def check_board(board):
    """Raise ConfigError naming the first thing wrong with a board config."""
    for key in ("name", "hal", "ios", "dip"):
        if key not in board:
            raise ConfigError("board config lacks %r" % key)
    ios = board["ios"]
    if not isinstance(ios, list) or not 0 < len(ios) <= MAX_IOS:
        raise ConfigError("'ios' must list 1 to %d IOs" % MAX_IOS)
    dips = []
    for io, spec in enumerate(ios):
        where = "io %d: " % io
        for key in ("label", "dirs", "pulls", "dir", "pull"):
            if key not in spec:
                raise ConfigError(where + "lacks %r" % key)
        if not spec["dirs"] or any(d not in (0, 1) for d in spec["dirs"]):
            raise ConfigError(where + "'dirs' must be a non-empty subset of [0, 1]")
        if not spec["pulls"] or any(p not in (0, 1, 2) for p in spec["pulls"]):
            raise ConfigError(where + "'pulls' must be a non-empty subset of [0, 1, 2]")
        if spec["dir"] not in spec["dirs"] or spec["pull"] not in spec["pulls"]:
            raise ConfigError(where + "default 'dir'/'pull' not among the allowed ones")
        fns = spec.get("fns", "d")
        if not isinstance(fns, str) or not fns or any(
                f not in FUNCTIONS or fns.count(f) > 1 for f in fns) or \
                spec.get("fn", "d") not in fns:
            raise ConfigError(where + "'fns' must be letters of %r, each once, with 'fn'"
                              % FUNCTIONS)
        if "w" in fns and 1 not in spec["dirs"] or (
                "a" in fns or "c" in fns or "b" in fns) and 0 not in spec["dirs"]:
            raise ConfigError(where + "PWM needs an output, analog, counter and button an input")
        if ("pin" in spec) == ("adc" in spec):
            raise ConfigError(where + "needs a 'pin' (a GPIO) or an 'adc' (a channel), not both")
        if "adc" in spec and (fns != "a" or spec.get("fn") != "a" or spec["dirs"] != [0]
                              or spec.get("dip", 0)):
            raise ConfigError(where + "an ADC channel is analog only: 'fns' and 'fn' 'a',"
                              " 'dirs' [0]")
        dip = spec.get("dip", 0)
        if dip:
            if fns != "d":
                raise ConfigError(where + "a DIP switch is digital: 'fns' must be 'd'")
            if spec["dirs"] != [0]:
                raise ConfigError(where + "a DIP switch is a fixed input: 'dirs' must be [0]")
            dips.append(dip)
    if sorted(dips) != list(range(1, len(dips) + 1)):
        raise ConfigError("DIP switches must be numbered 1..N, each once")
    leds = board.get("leds", [])
    if not isinstance(leds, list) or len(leds) > MAX_LEDS or \
            any(not isinstance(io, int) or not 0 <= io < len(ios) or ios[io].get("dip", 0)
                or 1 not in ios[io]["dirs"] for io in leds) or len(set(leds)) != len(leds):
        raise ConfigError("'leds' must list at most %d distinct IOs that may be outputs"
                          % MAX_LEDS)
    if "pwm_freqs" in board and (type(board["pwm_freqs"]) is not int or board["pwm_freqs"] < 1):
        raise ConfigError("'pwm_freqs' must be a positive integer")
    for key in ("max_clients", "http_port", "https_port", "max_frame_len", "log_size",
                "ping_interval_ms", "idle_timeout_ms", "stuck_timeout_ms", "max_commands_per_s"):
        value = board.get(key, DEFAULTS[key])
        if not isinstance(value, int) or value < 1:
            raise ConfigError("%r must be a positive integer" % key)
    unique_id = board.get("unique_id")
    if unique_id is not None and not is_hex_id(unique_id):
        raise ConfigError("'unique_id' must be 4 to 32 hex digits")
    for key in ("debounce_ms", "poll_ms", "tcp_send_buffer"):
        value = board.get(key, DEFAULTS[key])
        if not isinstance(value, int) or value < 0:
            raise ConfigError("%r must be an integer >= 0" % key)


def is_hex_id(text):
    if not isinstance(text, str) or not 4 <= len(text) <= 32:
        return False
    for ch in text.lower():
        if ch not in "0123456789abcdef":
            return False
    return True
