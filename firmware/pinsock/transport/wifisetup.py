# Wi-Fi setup over HTTP (GET and POST /wifi, docs/PROTOCOL.md): what the board's
# Wi-Fi is doing and the networks it can see; a new network to join, saved to
# config.json, then a restart. Imported by routes.py for a request and forgotten after
# it: setup is rare, and a board that loads .mpy files would otherwise keep this
# bytecode in its heap. The hardware layer does the radio (hardware.wifi(): describe(),
# scan(), restart()); this module checks the answer and writes the file.
import json
import os

#: Longest SSID, in bytes (IEEE 802.11).
MAX_SSID_BYTES = 32
#: A WPA2 passphrase is 8 to 63 printable ASCII characters (or 64 hex digits, the key
#: itself); an open network has none.
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 64
#: Networks listed at most, strongest first.
max_networks = 20
#: Time between the answer to a saved setup and the restart (ms): the answer, and the
#: page's last look at it, get out first.
restart_delay_ms = 1500

_TMP_SUFFIX = ".tmp"
_BAD_SUFFIX = ".bad"


def state(radio, scan=True):
    """GET /wifi's answer (a dict): the state, and with `scan` the networks seen now."""
    answer = radio.describe()
    if not scan:
        return answer
    seen = {}
    for ssid, rssi, secure in radio.scan():
        if ssid and (ssid not in seen or seen[ssid][0] < rssi):
            seen[ssid] = (rssi, secure)
    networks = sorted(seen.items(), key=lambda item: -item[1][0])[:max_networks]
    answer["networks"] = [{"ssid": ssid, "rssi": rssi, "secure": secure}
                          for ssid, (rssi, secure) in networks]
    return answer


def value_error(ssid, password):
    """What is wrong with a network to join, as a sentence; None when it will do."""
    if not isinstance(ssid, str) or not ssid:
        return "give the network's name (ssid)"
    if len(ssid.encode()) > MAX_SSID_BYTES:
        return "a network name is at most %d bytes" % MAX_SSID_BYTES
    for ch in ssid:
        if ch < " ":
            return "a network name has no control characters"
    if not isinstance(password, str):
        return "the password must be text"
    if password:
        if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
            return "a Wi-Fi password is %d to %d characters, or empty for an open network" \
                % (MIN_PASSWORD_LEN, MAX_PASSWORD_LEN)
        for ch in password:
            if not " " <= ch <= "~":
                return "a Wi-Fi password is printable ASCII"
        if len(password) == MAX_PASSWORD_LEN:
            for ch in password:
                if ch not in "0123456789abcdefABCDEF":
                    return "a 64-character Wi-Fi key is hex digits"
    return None


def save(path, ssid, password, log=print):
    """Write ssid and password into config.json at `path`, atomically, keeping every
    other key. A file that is not a JSON object is kept beside it as config.json.bad
    (it may hold what its owner wants back) and a new one begun. Raises OSError when
    the flash cannot be written; the old file is then as it was."""
    data = {}
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError:  # none yet
        pass
    except Exception:  # ValueError: not JSON; MemoryError
        data = None
    if not isinstance(data, dict):
        os.rename(path, path + _BAD_SUFFIX)
        log("wifi: %s was not a JSON object; kept as %s%s" % (path, path, _BAD_SUFFIX))
        data = {}
    data["wifi_ssid"] = ssid
    data["wifi_password"] = password
    tmp = path + _TMP_SUFFIX
    with open(tmp, "w") as f:
        json.dump(data, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT's rename refuses to replace a file: remove it first. The boot
        # (boot/config_json.py) reads the temporary file when it is all there is.
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)


def respond(request, hardware, path):
    """The Response to GET or POST /wifi: JSON, never cached."""
    from .http import Response

    status, data = answer(request, hardware.wifi(), path)
    return Response(json.dumps(data), status, {"Content-Type": "application/json",
                                               "Cache-Control": "no-store"},
                    reason=_REASONS[status])


_REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error",
            503: "Service Unavailable"}


def answer(request, radio, path):
    """(status, dict) for GET or POST /wifi; `radio` is the hardware layer's Wi-Fi."""
    if radio is None:  # a board whose network is not up yet
        return 503, {"error": "the Wi-Fi is starting; try again in a moment"}
    if request.method != "POST":
        # The scan only when asked (?scan): on a board it holds everything for ~2 s.
        return 200, state(radio, "scan" in request.args)
    try:
        form = request.form or {}
    except Exception:  # a bad %-escape, not UTF-8, or not a form
        return 400, {"error": "send ssid and password as a form"
                              " (application/x-www-form-urlencoded)"}
    ssid = form.get("ssid")
    password = form.get("password", "")
    problem = value_error(ssid, password)
    if problem:
        return 400, {"error": problem}
    try:
        save(path, ssid, password)
    except OSError as exc:
        return 500, {"error": "cannot write %s: %s" % (path, exc)}
    hostname = radio.describe().get("hostname", "")
    print("wifi: saved %s to %s; restarting to join it" % (ssid, path))
    radio.restart(restart_delay_ms)
    return 200, {"saved": ssid, "restarting": True,
                 "url": "http://%s.local/" % hostname if hostname else ""}
