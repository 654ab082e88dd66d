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
    # The MQTT broker to publish to (docs/MQTT.md), MQTT_DEFAULTS below; absent (None)
    # = no MQTT, and none of its code loaded.
    "mqtt": None,
}
MQTT_DEFAULTS = {
    "host": "",  # the broker's name or address; required
    "port": 0,  # 0: 1883, or 8883 with TLS
    "user": "",  # "" = connect without a user name
    "password": "",
    "tls": False,  # mqtts: the broker's CA certificate is mqtt_ca.der in the state folder
    "prefix": "pinsock",  # topics are <prefix>/<node_id>/...
    "discovery_prefix": "homeassistant",
    "node_id": "",  # "" = the device's default name, pinsock-<last 4 hex of unique id>
    "keepalive": 30,  # seconds; 0 = no keepalive
    "retain_discovery": False,
}
MQTT_CA_FILE = "mqtt_ca.der"
MAX_HOSTNAME_LEN = 32  # what ESP-IDF and the Pico W's lwIP accept
_KIND = {str: "text", int: "a whole number", list: "a list", bool: "true or false"}
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
        if key == "mqtt":
            conf[key] = None if value is None else mqtt_block(value, path, log)
            continue
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


def mqtt_block(block, path="config.json", log=print):
    """The `mqtt` block merged over MQTT_DEFAULTS, or None (MQTT off) when it is
    unusable. Each problem is logged; a bad value but the host's is replaced by its
    default, as in the rest of config.json. The password is never logged."""
    where = "config: mqtt in %s" % path
    if not isinstance(block, dict):
        log("%s is not an object; MQTT is off" % where)
        return None
    conf = dict(MQTT_DEFAULTS)
    for key in block:
        if key not in MQTT_DEFAULTS:
            log("%s: ignoring unknown key %s" % (where, key))
    for key, default in MQTT_DEFAULTS.items():
        value = block.get(key, default)
        if type(value) is not type(default):
            problem = _KIND.get(type(default))
        else:
            problem = mqtt_value_error(key, value)
        if problem:
            log("%s: ignoring %s: must be %s" % (where, key, problem))
        else:
            conf[key] = value
    if not conf["host"]:
        log("%s: no host; MQTT is off" % where)
        return None
    if not conf["port"]:
        conf["port"] = 8883 if conf["tls"] else 1883
    return conf


def mqtt_value_error(key, value):
    """What `value` must be instead, for `key` of the mqtt block; None when it is fine."""
    if key == "host" and (not value or " " in value or "/" in value):
        return "a host name or address"
    if key == "port" and not 0 <= value <= 65535:
        return "1 to 65535, or 0 for the default"
    if key == "keepalive" and not 0 <= value <= 65535:
        return "0 to 65535 seconds"
    if key in ("prefix", "discovery_prefix") and not is_topic(value, True):
        return "topic levels without + # or empty ones, e.g. \"pinsock\""
    if key == "node_id" and value and (not is_topic(value, False) or value == "all"):
        return "one topic level without + # / (not \"all\"), or empty for the default"
    return None


def is_topic(text, slashes):
    """A topic name of one level (or several, with `slashes`) that is safe to publish
    under: no wildcards, no empty level, not $-prefixed, at most 64 characters."""
    if not 0 < len(text) <= 64 or text[0] == "$":
        return False
    for level in text.split("/"):
        if not level:
            return False
    if not slashes and "/" in text:
        return False
    for ch in text:
        if ch in "+#" or ord(ch) < 0x20:
            return False
    return True


def is_hostname(name):
    # One DNS label (RFC 1123): letters, digits and inner hyphens.
    if not 0 < len(name) <= MAX_HOSTNAME_LEN or name[0] == "-" or name[-1] == "-":
        return False
    for ch in name:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True
