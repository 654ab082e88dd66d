# Home Assistant MQTT discovery (docs/MQTT.md): the one device-based discovery message
# on <discovery_prefix>/device/<node_id>/config that makes a board appear in Home
# Assistant with an entity per IO. Made when it is sent (after every connect, after
# Home Assistant's birth message, after a direction change), not kept: a board that is
# connected holds none of it, and it is made in pieces (discovery_pieces).
# Pure: tests_host/test_mqtt_discovery.py holds the golden message for UNIX_SIM.
import json

from ..logic.iobank import DIR_OUT
from .mqttsink import FN_ANALOG, FN_BUTTON, FN_COUNTER, FN_PWM, BUTTON_EVENTS

_HEX = "0123456789abcdef"


def discovery_topic(discovery_prefix, node_id):
    return "%s/device/%s/config" % (discovery_prefix, node_id)


def discovery_pieces(node_id, base, name, board, version, bank, active_level):
    """The discovery payload as pieces of JSON text (a generator; joined, one object),
    made one IO at a time so that neither a tree of dicts nor the whole text is ever
    in the heap: the sink counts them, then writes them into the PUBLISH.

    `dev` the board (ids = node_id, so renaming it keeps what Home Assistant knows),
    `o` the origin, availability on `status`, and in `cmps` a binary_sensor per DIP
    switch (on at the active level) and per input, a switch per output; by the IO's
    function, a sensor per analog input (a measurement) and per counter
    (total_increasing), a number (0..1023, a slider) per PWM output and an event per
    button (deCONZ's events). `base` is "<prefix>/<node_id>/"; `name` the device name
    (`sn`)."""
    q = json.dumps  # each string the user may name (labels, the name) escaped
    yield ('{"dev":{"ids":%s,"name":%s,"mf":"pinsock","mdl":%s,"sw":%s},'
           '"o":{"name":"pinsock","sw":%s},"avty_t":%s,"qos":1,"cmps":{' % (
               q(node_id), q(name), q(board), q(version), q(version), q(base + "status")))
    for io in range(bank.count):
        h = _HEX[io]
        topic = base + "io/" + h
        yield '%s"io%s":{"name":%s,"uniq_id":%s,"stat_t":%s,' % (
            "," if io else "", h, q(bank.labels[io]), q(node_id + "_" + h), q(topic))
        fn = bank.function[io]
        if fn == FN_ANALOG:
            yield '"p":"sensor","stat_cla":"measurement"}'
        elif fn == FN_COUNTER:
            yield '"p":"sensor","stat_cla":"total_increasing"}'
        elif fn == FN_PWM:
            yield ('"p":"number","cmd_t":%s,"min":0,"max":1023,"step":1,"mode":"slider"}'
                   % q(topic + "/set"))
        elif fn == FN_BUTTON:
            yield '"p":"event","evt_typ":%s}' % q(list(BUTTON_EVENTS))
        elif bank.dip_number[io]:
            yield '"p":"binary_sensor","pl_on":"%d","pl_off":"%d"}' % (
                active_level, 1 - active_level)
        elif bank.direction[io] == DIR_OUT:
            yield '"p":"switch","cmd_t":%s,"pl_on":"1","pl_off":"0"}' % q(topic + "/set")
        else:
            yield '"p":"binary_sensor","pl_on":"1","pl_off":"0"}'
    yield "}}"
