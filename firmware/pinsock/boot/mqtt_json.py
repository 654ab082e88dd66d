# Start-up of MQTT (docs/MQTT.md): the `mqtt` block of config.json checked, and the
# MQTT sink added to the device. Imported only when config.json has the block: a
# device without MQTT never loads this, nor anything of MQTT. Like all of boot/, it is
# forgotten once the device serves.
_KIND = {str: "text", int: "a whole number", bool: "true or false"}
MQTT_DEFAULTS = {
    "host": "",  # the broker's name or address; required
    "port": 0,  # 0: 1883, or 8883 with TLS
    "user": "",  # "" = connect without a user name
    "password": "",
    "tls": False,  # mqtts: the broker's CA certificate is mqtt_ca.der in the state folder
    "prefix": "pinsock",  # topics are <prefix>/<node_id>/...
    "discovery_prefix": "homeassistant",  # Home Assistant discovery; "" = none
    "node_id": "",  # "" = the device's default name, pinsock-<last 4 hex of unique id>
    "keepalive": 30,  # seconds; 0 = no keepalive
    "retain_discovery": False,
}
MQTT_CA_FILE = "mqtt_ca.der"


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
    if key == "prefix" and not is_topic(value, True):
        return "topic levels without + # or empty ones, e.g. \"pinsock\""
    if key == "discovery_prefix" and value and not is_topic(value, True):
        return "topic levels without + # or empty ones, or empty for no discovery"
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


def start(device, mqtt, default_name, state_dir):
    """Add the MQTT sink (transport/mqttsink.py) to the device and start its link's
    task (boot/startup.py's build(), when config.json has a usable `mqtt` block).
    Returns the sink; None when TLS was asked for and cannot be had (logged)."""
    import asyncio

    from ..transport.mqttsink import MqttSink

    ssl = None
    if mqtt["tls"]:
        ssl = tls_context(state_dir)
        if ssl is None:
            return None
    # The node id does not follow `sn`: renaming a device must not change its topics.
    node_id = mqtt["node_id"] or default_name
    sink = MqttSink(device, mqtt["prefix"], node_id, mqtt["discovery_prefix"],
                    mqtt["retain_discovery"])
    link = sink.connect_to(mqtt["host"], mqtt["port"], mqtt["keepalive"], mqtt["user"],
                           mqtt["password"], ssl)
    device.add_sink(sink)
    device.status.mqtt = sink  # `sq` reads the link through it
    asyncio.create_task(link.run())
    # When the firmware stops (Ctrl-C), a goodbye: `offline`, then DISCONNECT. Where the
    # port has no sys.atexit (the chips' builds), the will says `offline` instead.
    import sys

    atexit = getattr(sys, "atexit", None)
    if atexit is not None:
        atexit(sink.goodbye)
    print("mqtt: publishing to %s:%d as %s/%s/" % (mqtt["host"], mqtt["port"],
                                                    mqtt["prefix"], node_id))
    return sink


def tls_context(state_dir):
    """An SSLContext that checks the broker against mqtt_ca.der (DER) in the state
    folder; None, logged, when there is none."""
    path = (state_dir.rstrip("/") + "/" if state_dir else "") + MQTT_CA_FILE
    try:
        import ssl

        with open(path, "rb") as f:
            ca = f.read()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=ca)
    except Exception as exc:  # OSError: no file; ValueError: not a certificate
        print("mqtt: error: tls needs the broker's CA certificate in %s (DER): %r;"
              " MQTT is off" % (path, exc))
        return None
    return context
