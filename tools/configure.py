"""Write config.json, the device config `make deploy` copies to a real board and
`make sim` to the simulator's state folder (tools/sim.py).

    python tools/configure.py [--out config.json]

Asks for the Wi-Fi network name (SSID) and password, the board's hostname and the
optional settings, offering the current values (or config.example.json's) as
defaults; Enter keeps a default. config.json holds the Wi-Fi password: it is
git-ignored, and the firmware never serves it. The keys, and what the firmware does
with each, are in firmware/pinsock/boot/config_json.py.

An existing file is read by the firmware's own rule (config_json.parse: strict JSON),
so a file the device would refuse is refused here too, saying where; end of input
(stdin closed) or Ctrl-C stops it without writing anything. Exit status: 0 written,
1 not written.
"""

import argparse
import getpass
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.json"


def firmware_config():
    # The firmware's own module for the file: one set of rules on both sides.
    spec = importlib.util.spec_from_file_location(
        "_pinsock_config_json", ROOT / "firmware" / "pinsock" / "boot" / "config_json.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (key, question, secret); every key of config_json.DEFAULTS but EDITED_BY_HAND, in
# asking order.
QUESTIONS = (
    ("wifi_ssid", "Wi-Fi network name (SSID); empty: the board opens its own access point",
     False),
    ("wifi_password", "Wi-Fi password", True),
    ("hostname", "Hostname (http://<hostname>.local/); empty: pinsock-<last 4 hex of MAC>",
     False),
    ("country", "Wi-Fi country code, e.g. DE or US; empty: the firmware's default", False),
    ("ap_password", "Access point password, 8-63 characters; empty: an open access point",
     True),
    ("watchdog_ms", "Watchdog timeout in ms, 1000-8000; 0: no watchdog", False),
    ("password", "Password for the page and the WebSocket; empty: no login", True),
)
# Settings configure.py keeps as they are in the file (docs/SECURITY.md explains them).
EDITED_BY_HAND = ("allowed_origins",)
# Blocks of the file configure.py does not ask about yet and keeps as they are when
# there (docs/MQTT.md).
KEPT_BLOCKS = ("mqtt",)


def ask(key, question, secret, default, config_json, read=input, read_secret=getpass.getpass):
    """Ask until the answer is valid; returns the value."""
    while True:
        if secret:
            shown = " [keep current]" if default else ""
            answer = read_secret("%s%s: " % (question, shown))
        else:
            answer = read("%s [%s]: " % (question, default))
        if answer == "":
            return default
        value = answer.strip()
        if isinstance(config_json.DEFAULTS[key], int):
            try:
                value = int(value)
            except ValueError:
                print("  a whole number, please")
                continue
        problem = config_json.device_value_error(key, value)
        if problem is None:
            return value
        print("  " + problem)


class ConfigureError(Exception):
    pass


def read_config(path, config_json):
    """The settings in `path`, read as the device reads them (config_json.parse)."""
    try:
        data = config_json.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigureError("cannot read %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:  # UnicodeDecodeError too
        raise ConfigureError("%s is not valid JSON (%s), so the device would not read it"
                             " either. Fix it, or move it away to start again from"
                             " config.example.json." % (path, exc))
    if not isinstance(data, dict):
        raise ConfigureError("%s is not a JSON object ({...}). Fix it, or move it away to"
                             " start again from config.example.json." % path)
    return data


def main(argv=None, read=input, read_secret=getpass.getpass):
    try:
        return configure(argv, read, read_secret)
    except ConfigureError as exc:
        print("configure: %s" % exc, file=sys.stderr)
    except EOFError:
        print("\nconfigure: end of input; nothing written", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nconfigure: interrupted; nothing written", file=sys.stderr)
    return 1


def configure(argv=None, read=input, read_secret=getpass.getpass):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "config.json"))
    args = parser.parse_args(argv)
    config_json = firmware_config()
    out = Path(args.out)
    current = dict(config_json.DEFAULTS)
    source = out if out.exists() else EXAMPLE
    current.update(read_config(source, config_json))
    if source == EXAMPLE:
        current["wifi_ssid"] = current["wifi_password"] = ""
    print("Writing %s (Enter keeps the value in brackets)." % out)
    values = {key: current[key] for key in EDITED_BY_HAND + KEPT_BLOCKS if key in current}
    for key, question, secret in QUESTIONS:
        values[key] = ask(key, question, secret, current.get(key, ""), config_json, read,
                          read_secret)
    out.write_text(json.dumps(values, indent=2) + "\n")
    print("Wrote %s. `make sim` uses it (restart a running simulator); `make deploy"
          " BOARD=<board> PORT=<port>` copies it to the board." % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
