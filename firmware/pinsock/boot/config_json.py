# The owner's settings: config.json in the device's state folder (a real board's
# root, beside board.json; the simulator's --state-dir).
#
#   {"wifi_ssid": "home", "wifi_password": "...", "hostname": "pinsock",
#    "country": "DE", "ap_password": "", "watchdog_ms": 8000, "password": "...",
#    "allowed_origins": ["http://dashboard.lan:8000"],
#    "mqtt": {"host": "192.168.1.5", "port": 1883, "prefix": "pinsock", ...}}
#
# It holds passwords, so it lives outside www/ and no route serves it. It is made from
# config.example.json, by hand or with `python tools/configure.py` (which checks
# answers with device_value_error below). Pure code, like config.py. The Wi-Fi keys
# matter only on real boards; the security keys on every board, the simulator too.
#
# One rule for the file on both sides: strict JSON (RFC 8259), checked by strict_error
# below before MicroPython's json reads it. MicroPython's json skips stray commas and
# colons, so {"password": "x",} reads, and so does {"password" "x"}; CPython's json
# (tools/configure.py) refuses both. Reading leniently would be the riskier choice: a
# slip can pair a key with the wrong value (a missing value makes the next key the
# password). So the device refuses what CPython refuses, as unreadable: defaults, and
# no login until the file is fixed (fail closed: it may have set a password). That
# never locks the owner out for good: the file is fixed where it lives (over USB on a
# board, in the state folder on the simulator), and the device says so (`fix`).
# configure.py reads the file with parse() below, this very code.
import json

FILE_NAME = "config.json"
DEFAULTS = {
    "wifi_ssid": "",  # network to join; "" opens the board's own access point instead
    "wifi_password": "",
    "hostname": "",  # name on the network (http://<hostname>.local/); "" = pinsock-<MAC>
    "country": "",  # Wi-Fi country code, e.g. "DE"; "" keeps the firmware's default
    "ap_password": "",  # "" = an open access point; else WPA2, 8 to 63 characters
    "watchdog_ms": 8000,  # restart the board when it hangs this long; 0 = no watchdog
    "password": "",  # "" = no login; else every page and socket needs a session (SECURITY.md)
    # Pages on other origins (e.g. "http://dashboard.lan:8000") allowed to open the
    # WebSocket and use /action.cgi; the device's own page always may.
    "allowed_origins": [],
}
# "mqtt" (docs/MQTT.md) is not in DEFAULTS: absent means no MQTT, and load() gives the
# key only when the block is usable (boot/mqtt_json.py reads it, and is loaded only
# then: a device without MQTT does not load its code).
MAX_HOSTNAME_LEN = 32  # what ESP-IDF and the Pico W's lwIP accept
_KIND = {str: "text", int: "a whole number", list: "a list"}
# The password when config.json could not be read: no login succeeds until it is fixed.
LOCKED = None
# How the owner fixes an unreadable config.json, for the login page and the log: the
# board config's "config_fix" (boot/board_json.py; the simulator's says where its file is).
FIX = "fix it over USB with make deploy"


def path_in(state_dir):
    """Where config.json is for a board whose state folder is `state_dir`."""
    return state_dir.rstrip("/") + "/" + FILE_NAME if state_dir else FILE_NAME


def load(path=FILE_NAME, log=print, fix=FIX):
    """config.json merged over DEFAULTS. Never raises: a board must come up.

    A missing file gives the defaults (no SSID: a real board opens its access point;
    no password), unless the Wi-Fi setup's config.json.tmp is there instead. An
    unreadable file (not strict JSON, not an object, a read error) gives the defaults
    too, but with the password LOCKED: it may have set one; then
    conf["locked_message"] is what the login page says, ending in `fix`. A value of the
    wrong kind is replaced by its default, and the log says so. A password that is not
    text (`"password": 1234`) is used as its text: dropping it would leave the device
    open. The password is never logged.
    """
    conf = dict(DEFAULTS)
    try:
        f = open(path)
    except OSError:
        try:
            # The Wi-Fi setup (transport/wifisetup.py) writes config.json.tmp and
            # renames it over config.json; where rename cannot replace a file (FAT) it
            # removes the old one first, and a power cut right then leaves the new
            # one only there.
            f = open(path + ".tmp")
            log("config: no %s, using %s.tmp" % (path, path))
        except OSError:
            log("config: no %s, using defaults" % path)
            return conf
    try:
        with f:
            data = parse(f.read())
    except ValueError as exc:  # not strict JSON: says where, never what (a password)
        data = "not valid JSON (%s)" % exc
    except Exception:  # OSError, MemoryError, too deep: still boot
        data = "not readable"
    if not isinstance(data, dict):
        # It may have held a password: fail closed, and say how to get back in.
        conf["password"] = LOCKED
        conf["locked_message"] = "config.json could not be read; %s." % fix
        log("config: %s is %s; using defaults, and refusing logins until it is fixed (%s)"
            % (path, data if type(data) is str else "not an object", fix))
        return conf
    for key, default in DEFAULTS.items():
        value = data.get(key, default)
        if key == "password" and value is not None and type(value) is not str:
            log("config: password in %s is not text; using it as text" % path)
            value = str(value)
        # `type() is` also refuses true for a number, which isinstance would let in.
        if type(value) is not type(default):
            problem = _KIND.get(type(default))
        else:
            problem = device_value_error(key, value)
        if problem:
            log("config: ignoring %s in %s: must be %s" % (key, path, problem))
        else:
            conf[key] = value
    if data.get("mqtt") is not None:
        from .mqtt_json import mqtt_block

        mqtt = mqtt_block(data["mqtt"], path, log)
        if mqtt is not None:
            conf["mqtt"] = mqtt
    return conf


def parse(text):
    """The JSON value `text` holds, by the one rule for config.json: strict JSON, as
    CPython's json reads it (NaN and Infinity aside, which neither side writes).
    ValueError says what is wrong and where (line and column), quoting nothing."""
    problem = strict_error(text)
    if problem:
        raise ValueError(problem)
    return json.loads(text)


def strict_error(text):
    """None when `text` is exactly one JSON value (RFC 8259), surrounded by nothing but
    whitespace; else what is wrong and where."""
    try:
        end = _space(text, _value(text, _space(text, 0)))
        if end < len(text):
            _fail("text after the end", text, end)
    except _NotJson as exc:
        return exc.args[0]
    return None


class _NotJson(Exception):
    pass


_SPACE = " \t\n\r"
_DIGITS = "0123456789"
_ESCAPES = '"\\/bfnrt'
_HEX = "0123456789abcdefABCDEF"


def _fail(what, text, i):
    line = text.count("\n", 0, i) + 1
    raise _NotJson("%s at line %d, column %d" % (what, line, i - text.rfind("\n", 0, i)))


def _space(text, i):
    while text[i:i + 1] in _SPACE and i < len(text):
        i += 1
    return i


def _value(text, i):
    """The end of the JSON value at text[i] (where no whitespace is)."""
    c = text[i:i + 1]
    if c == "{":
        return _members(text, _space(text, i + 1), "}")
    if c == "[":
        return _members(text, _space(text, i + 1), "]")
    if c == '"':
        return _string(text, i)
    for word in ("true", "false", "null"):
        if text.startswith(word, i):
            return i + len(word)
    return _number(text, i)


def _members(text, i, close):
    # An object's "name": value pairs or an array's values, each after a single
    # comma: a comma before the close, two in a row, or none between, is not JSON.
    if text[i:i + 1] == close:
        return i + 1
    while True:
        if close == "}":
            if text[i:i + 1] != '"':
                _fail('expected a "name"', text, i)
            i = _space(text, _string(text, i))
            if text[i:i + 1] != ":":
                _fail("expected ':'", text, i)
            i = _space(text, i + 1)
        i = _space(text, _value(text, i))
        c = text[i:i + 1]
        if c == close:
            return i + 1
        if c != ",":
            _fail("expected ',' or '%s'" % close, text, i)
        i = _space(text, i + 1)


def _string(text, i):
    j = i + 1
    while True:
        c = text[j:j + 1]
        if c == '"':
            return j + 1
        if c == "":
            _fail("a string not closed", text, i)
        if c == "\\":
            e = text[j + 1:j + 2]
            if e == "u" and len(text) >= j + 6 and all(h in _HEX for h in text[j + 2:j + 6]):
                j += 6
                continue
            if e == "" or e not in _ESCAPES:
                _fail("a bad escape", text, j)
            j += 2
            continue
        if ord(c) < 0x20:
            _fail("a control character in a string", text, j)
        j += 1


def _digits(text, i):
    while text[i:i + 1] in _DIGITS and i < len(text):
        i += 1
    return i


def _number(text, i):
    j = i + 1 if text[i:i + 1] == "-" else i
    k = _digits(text, j)
    if k == j:
        _fail("expected a value", text, i)
    if text[j] == "0" and k > j + 1:
        _fail("a number with a leading 0", text, j)
    if text[k:k + 1] == ".":
        j = _digits(text, k + 1)
        if j == k + 1:
            _fail("expected a digit after '.'", text, j)
        k = j
    if text[k:k + 1] in ("e", "E"):
        k += 1
        if text[k:k + 1] in ("+", "-"):
            k += 1
        j = _digits(text, k)
        if j == k:
            _fail("expected a digit in the exponent", text, j)
        k = j
    return k


def device_value_error(key, value):
    """What `value` must be instead, for `key` of config.json; None when it is fine."""
    if key == "hostname" and value and not is_hostname(value):
        return "letters, digits and inner '-', at most %d" % MAX_HOSTNAME_LEN
    if key == "ap_password" and value and not 8 <= len(value) <= 63:
        return "8 to 63 characters, or empty for an open access point"
    if key == "watchdog_ms" and value and not 1000 <= value <= 8000:
        return "0 (off) or 1000 to 8000"
    if key == "country" and value and not (len(value) == 2 and value.isalpha()):
        return "two letters, e.g. DE"
    if key == "allowed_origins":
        for origin in value:
            if type(origin) is not str or "://" not in origin:
                return "a list of origins like \"http://dashboard.lan:8000\""
    return None


def is_hostname(name):
    # One DNS label (RFC 1123): letters, digits and inner hyphens.
    if not 0 < len(name) <= MAX_HOSTNAME_LEN or name[0] == "-" or name[-1] == "-":
        return False
    for ch in name:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True
