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


def path_in(state_dir):
    """Where config.json is for a board whose state folder is `state_dir`."""
    return state_dir.rstrip("/") + "/" + FILE_NAME if state_dir else FILE_NAME


def load(path=FILE_NAME, log=print):
    """config.json merged over DEFAULTS. Never raises: a board must come up.

    A missing file gives the defaults (no SSID: a real board opens its access point;
    no password). An unreadable file gives the defaults too, but with the password
    LOCKED: it may have set one. A value of the wrong kind is replaced by its default,
    and the log says so. A password that is not text (`"password": 1234`) is used as
    its text: dropping it would leave the device open. The password is never logged.
    """
    conf = dict(DEFAULTS)
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:
        log("config: no %s, using defaults" % path)
        return conf
    except Exception:  # ValueError, MemoryError: still boot
        data = "not valid JSON"
    if not isinstance(data, dict):
        # It may have held a password: fail closed, and say how to get back in.
        conf["password"] = LOCKED
        log("config: %s is %s; using defaults, and refusing logins until it is fixed"
            " over USB (make deploy)" % (path, data if type(data) is str else "not an object"))
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
