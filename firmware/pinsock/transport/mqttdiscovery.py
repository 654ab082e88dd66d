# Home Assistant MQTT discovery (docs/MQTT.md): the one device-based discovery message
# on <discovery_prefix>/device/<node_id>/config that makes a board appear in Home
# Assistant with an entity per IO. Made when it is sent (after every connect, after
# Home Assistant's birth message, after a direction change), not kept: a board that is
# connected holds none of it. Pure: tests_host/test_mqtt_discovery.py holds the golden
# message for UNIX_SIM.
import json

from ..logic.iobank import DIR_OUT
from .mqttsink import FN_ANALOG, FN_BUTTON, FN_COUNTER, FN_PWM, BUTTON_EVENTS

_HEX = "0123456789abcdef"


def discovery_topic(discovery_prefix, node_id):
    return "%s/device/%s/config" % (discovery_prefix, node_id)


def discovery_message(node_id, base, name, board, version, bank, active_level):
    """The discovery payload (text): `dev` the board (ids = node_id, so renaming it
    keeps what Home Assistant knows), `o` the origin, availability on `status`, and in
    `cmps` a binary_sensor per DIP switch (on at the active level) and per input, a
    switch per output; by the IO's function, a sensor per analog input (a measurement)
    and per counter (total_increasing), a number (0..1023, a slider) per PWM output and
    an event per button (deCONZ's events). `base` is "<prefix>/<node_id>/"; `name` the
    device name (`sn`)."""
    components = {}
    for io in range(bank.count):
        h = _HEX[io]
        component = {"name": bank.labels[io], "uniq_id": "%s_%s" % (node_id, h),
                     "stat_t": base + "io/" + h}
        fn = bank.function[io]
        if fn == FN_ANALOG or fn == FN_COUNTER:
            component["p"] = "sensor"
            component["stat_cla"] = "measurement" if fn == FN_ANALOG else "total_increasing"
        elif fn == FN_PWM:
            component["p"] = "number"
            component["cmd_t"] = base + "io/" + h + "/set"
            component["min"] = 0
            component["max"] = 1023
            component["step"] = 1
            component["mode"] = "slider"
        elif fn == FN_BUTTON:
            component["p"] = "event"
            component["evt_typ"] = list(BUTTON_EVENTS)
        elif bank.dip_number[io]:
            component["p"] = "binary_sensor"
            component["pl_on"] = "%d" % active_level
            component["pl_off"] = "%d" % (1 - active_level)
        elif bank.direction[io] == DIR_OUT:
            component["p"] = "switch"
            component["cmd_t"] = base + "io/" + h + "/set"
            component["pl_on"] = "1"
            component["pl_off"] = "0"
        else:
            component["p"] = "binary_sensor"
            component["pl_on"] = "1"
            component["pl_off"] = "0"
        components["io" + h] = component
    return json.dumps({
        "dev": {"ids": node_id, "name": name, "mf": "pinsock", "mdl": board, "sw": version},
        "o": {"name": "pinsock", "sw": version},
        "avty_t": base + "status",
        "qos": 1,
        "cmps": components,
    })
