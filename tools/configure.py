"""Write config.json, the device config `make deploy` copies to a real board and
`make sim` to the simulator's state folder (tools/sim.py).

    python tools/configure.py [--out config.json]

Asks for the Wi-Fi network name (SSID) and password, the board's hostname and the
optional settings, then the MQTT broker (host[:port], user, password, TLS; an empty
host turns MQTT off), offering the current values (or config.example.json's) as
defaults; Enter keeps a default. config.json holds the Wi-Fi password: it is
git-ignored, and the firmware never serves it. The keys, and what the firmware does
with each, are in firmware/pinsock/boot/config_json.py and, for the `mqtt` block,
boot/mqtt_json.py (docs/MQTT.md).

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


def firmware_module(name):
    # The firmware's own module for the file: one set of rules on both sides.
    spec = importlib.util.spec_from_file_location(
        "_pinsock_" + name, ROOT / "firmware" / "pinsock" / "boot" / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def firmware_config():
    return firmware_module("config_json")


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
# Blocks of the file configure.py does not ask about and keeps as they are when there.
KEPT_BLOCKS = ()
# The mqtt block's questions (boot/mqtt_json.py MQTT_DEFAULTS); its other keys (prefix,
# node_id, keepalive, discovery) are kept as they are in the file, edited by hand.
MQTT_HOST_QUESTION = "MQTT broker, host[:port]; none: MQTT off (- removes one)"
MQTT_USER_QUESTION = "MQTT user name; none: connect without (- removes one)"
MQTT_PASSWORD_QUESTION = "MQTT password"
MQTT_TLS_QUESTION = ("MQTT over TLS (the broker's CA certificate goes in mqtt_ca.der"
                     " beside config.json), y or n")


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


def split_broker(answer):
    """(host, port) of "host[:port]"; port 0 when not given. ValueError for a port
    that is not a number."""
    host, colon, port = answer.rpartition(":")
    if not colon:
        return answer, 0
    return host, int(port)


def ask_mqtt(block, mqtt_json, read=input, read_secret=getpass.getpass):
    """The mqtt block after asking for the broker, or None for MQTT off. `block` is
    the file's (or None); what it has beyond the questions is kept."""
    block = dict(block) if isinstance(block, dict) else {}
    host = block.get("host", "") if isinstance(block.get("host"), str) else ""
    port = block.get("port", 0) if type(block.get("port")) is int else 0
    default = host + (":%d" % port if host and port else "")
    while True:
        answer = read("%s [%s]: " % (MQTT_HOST_QUESTION, default)).strip() or default
        if answer in ("", "-"):
            return None
        try:
            host, port = split_broker(answer)
        except ValueError:
            print("  the port after ':' must be a whole number")
            continue
        problem = mqtt_json.mqtt_value_error("host", host)
        if problem:
            print("  the host must be " + problem)
        elif ":" in answer and not (port and mqtt_json.mqtt_value_error("port", port) is None):
            print("  the port must be 1 to 65535")
        else:
            break
    block["host"] = host
    if port:
        block["port"] = port
    else:
        block.pop("port", None)
    user = block.get("user", "") if isinstance(block.get("user"), str) else ""
    user = read("%s [%s]: " % (MQTT_USER_QUESTION, user)).strip() or user
    if user == "-":
        user = ""
    if user:
        block["user"] = user
        kept = block.get("password", "")
        shown = " [keep current]" if kept else ""
        block["password"] = read_secret("%s%s: " % (MQTT_PASSWORD_QUESTION, shown)) or kept
    else:  # MQTT 3.1.1 sends no password without a user name
        block.pop("user", None)
        block.pop("password", None)
    tls = block.get("tls") is True
    while True:
        answer = read("%s [%s]: " % (MQTT_TLS_QUESTION, "y" if tls else "n")).strip().lower()
        if answer in ("", "y", "yes", "n", "no"):
            break
        print("  y or n")
    if answer:
        tls = answer[0] == "y"
    if tls:
        block["tls"] = True
    else:
        block.pop("tls", None)
    # The firmware's own reading of the block: what it would log, configure says now.
    said = []
    if mqtt_json.mqtt_block(block, "config.json", said.append) is None:
        raise ConfigureError("mqtt block refused: %s" % "; ".join(said))
    for line in said:
        print("  " + line)
    return block


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
    mqtt = ask_mqtt(current.get("mqtt"), firmware_module("mqtt_json"), read, read_secret)
    if mqtt is not None:
        values["mqtt"] = mqtt
    out.write_text(json.dumps(values, indent=2) + "\n")
    print("Wrote %s. `make sim` uses it (restart a running simulator); `make deploy"
          " BOARD=<board> PORT=<port>` copies it to the board." % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
