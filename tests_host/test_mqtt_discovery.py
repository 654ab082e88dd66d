"""Home Assistant discovery (transport/mqttdiscovery.py): the one device-based message
for UNIX_SIM, held in a golden file (tests_host/golden/discovery_UNIX_SIM.json).

The golden file is compared as JSON (MicroPython's dicts do not keep the order keys
were added in, so the text's order may differ). After a deliberate change, rewrite it
with `PINSOCK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests_host/test_mqtt_discovery.py`
and review the diff.
"""

import json
import os

from conftest import ROOT
from pinsock.logic.iobank import IoBank
from pinsock.transport.mqttdiscovery import discovery_pieces, discovery_topic

GOLDEN = ROOT / "tests_host" / "golden" / "discovery_UNIX_SIM.json"


class Pins:
    """Pins that read their pull: what the simulator's read at boot."""

    def setup(self, io, direction, pull, level):
        pass

    def read(self, io):
        return 0

    def watch(self, edge):
        pass


def unix_sim_message(directions=None, functions=None):
    board = json.loads((ROOT / "boards" / "UNIX_SIM" / "board.json").read_text())
    bank = IoBank(Pins(), board["ios"], board["debounce_ms"])
    for io, direction in (directions or {}).items():
        bank.direction[io] = direction
    for io, letter in (functions or {}).items():  # what f<h>= makes them
        bank.function[io] = "dawcb".index(letter)
    active_level = 0 if board["dip"]["active_low"] else 1
    return json.loads("".join(discovery_pieces("pinsock-c0de", "pinsock/pinsock-c0de/",
                                               "kitchen", board["name"], "0.1.0", bank,
                                               active_level)))


# IO 9 an output (a switch), 8 analog, a PWM, c a counter, e a button.
GOLDEN_FUNCTIONS = {8: "a", 10: "w", 12: "c", 14: "b"}


def test_the_discovery_message_for_unix_sim_is_the_golden_one():
    message = unix_sim_message({9: 1}, GOLDEN_FUNCTIONS)
    if os.environ.get("PINSOCK_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(message, indent=2) + "\n")
    assert message == json.loads(GOLDEN.read_text())
    assert discovery_topic("homeassistant", "pinsock-c0de") == (
        "homeassistant/device/pinsock-c0de/config")


def test_entities_follow_the_board():
    message = unix_sim_message()
    components = message["cmps"]
    assert len(components) == 16
    # A DIP switch is On when closed, at the active level (low): pl_on "0".
    assert components["io0"] == {"p": "binary_sensor", "name": "DIP 1",
                                 "uniq_id": "pinsock-c0de_0",
                                 "stat_t": "pinsock/pinsock-c0de/io/0",
                                 "pl_on": "0", "pl_off": "1"}
    assert components["iof"]["p"] == "binary_sensor" and components["iof"]["pl_on"] == "1"
    assert "cmd_t" not in components["io9"]
    switch = unix_sim_message({9: 1})["cmps"]["io9"]
    assert switch["p"] == "switch" and switch["cmd_t"] == "pinsock/pinsock-c0de/io/9/set"
    assert message["dev"]["ids"] == "pinsock-c0de" and message["dev"]["name"] == "kitchen"
    assert message["avty_t"] == "pinsock/pinsock-c0de/status"


def test_each_function_is_the_entity_home_assistant_has_for_it():
    components = unix_sim_message(functions=GOLDEN_FUNCTIONS)["cmps"]
    topic = "pinsock/pinsock-c0de/io/"
    assert components["io8"] == {"p": "sensor", "name": "GPIO 8", "uniq_id": "pinsock-c0de_8",
                                 "stat_t": topic + "8", "stat_cla": "measurement"}
    assert components["ioa"] == {"p": "number", "name": "GPIO 10",
                                 "uniq_id": "pinsock-c0de_a", "stat_t": topic + "a",
                                 "cmd_t": topic + "a/set", "min": 0, "max": 1023, "step": 1,
                                 "mode": "slider"}
    assert components["ioc"]["p"] == "sensor"
    assert components["ioc"]["stat_cla"] == "total_increasing"
    # deCONZ's five events, in the order of their codes (1000..1004).
    assert components["ioe"] == {"p": "event", "name": "GPIO 14", "uniq_id": "pinsock-c0de_e",
                                 "stat_t": topic + "e",
                                 "evt_typ": ["press", "hold", "short_release", "long_release",
                                             "double_press"]}
    assert components["iof"]["p"] == "binary_sensor"  # still digital
