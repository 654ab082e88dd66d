# The device's own settings: config.json on a real board's flash, beside board.json.
#
#   {"wifi_ssid": "home", "wifi_password": "...", "hostname": "pinsock",
#    "country": "DE", "ap_password": "", "watchdog_ms": 8000}
#
# It holds the Wi-Fi password, so it lives outside www/ and no route serves it. It is
# made from config.example.json, by hand or with `python tools/configure.py` (which
# checks answers with device_value_error below). Pure code, like config.py, but only
# real boards carry it: the simulator has no Wi-Fi.
import json

FILE_NAME = "config.json"
DEFAULTS = {
    "wifi_ssid": "",  # network to join; "" opens the board's own access point instead
    "wifi_password": "",
    "hostname": "",  # name on the network (http://<hostname>.local/); "" = pinsock-<MAC>
    "country": "",  # Wi-Fi country code, e.g. "DE"; "" keeps the firmware's default
    "ap_password": "",  # "" = an open access point; else WPA2, 8 to 63 characters
    "watchdog_ms": 8000,  # restart the board when it hangs this long; 0 = no watchdog
}
MAX_HOSTNAME_LEN = 32  # what ESP-IDF and the Pico W's lwIP accept


def load(path=FILE_NAME, log=print):
    """config.json merged over DEFAULTS. Never raises: a board must come up.

    A missing file gives the defaults (no SSID: the access point opens); a value of
    the wrong kind is replaced by its default, and the log says so.
    """
    conf = dict(DEFAULTS)
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:
        log("config: no %s, opening the access point" % path)
        return conf
    except Exception:  # ValueError, MemoryError: still boot
        log("config: %s is not valid JSON, using defaults" % path)
        return conf
    if not isinstance(data, dict):
        log("config: %s is not an object, using defaults" % path)
        return conf
    for key, default in DEFAULTS.items():
        value = data.get(key, default)
        # `type() is` also refuses true for a number, which isinstance would let in.
        if type(value) is not type(default):
            problem = "text" if type(default) is str else "a whole number"
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
    return None


def is_hostname(name):
    # One DNS label (RFC 1123): letters, digits and inner hyphens.
    if not 0 < len(name) <= MAX_HOSTNAME_LEN or name[0] == "-" or name[-1] == "-":
        return False
    for ch in name:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
            return False
    return True
