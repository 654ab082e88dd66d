# The mqtt block of config.json (boot/mqtt_json.py, through boot/config_json.py's
# load). Runs on CPython and the unix port.
import json

from fakes import scratch_dir
from pinsock.boot import config_json, mqtt_json


def load(name, data):
    path = scratch_dir(name) + "/config.json"
    with open(path, "w") as f:
        f.write(json.dumps(data))
    log = []
    return config_json.load(path, log.append), log


def test_absent_means_off_and_no_key():
    conf, log = load("mqtt1", {"hostname": "pinsock"})
    assert "mqtt" not in conf and log == []
    conf, log = load("mqtt2", {"mqtt": None})
    assert "mqtt" not in conf and log == []


def test_a_host_alone_takes_every_default():
    conf, log = load("mqtt3", {"mqtt": {"host": "192.168.1.5"}})
    assert log == []
    assert conf["mqtt"] == dict(mqtt_json.MQTT_DEFAULTS, host="192.168.1.5", port=1883)
    conf, _ = load("mqtt4", {"mqtt": {"host": "broker.lan", "tls": True}})
    assert conf["mqtt"]["port"] == 8883  # the mqtts port when none is given


def test_the_issue_example_is_read_as_it_is():
    block = {"host": "192.168.1.5", "port": 1883, "user": "", "password": "", "tls": False,
             "prefix": "pinsock", "discovery_prefix": "homeassistant",
             "node_id": "pinsock-c0de", "keepalive": 30}
    conf, log = load("mqtt5", {"mqtt": block})
    assert log == [] and conf["mqtt"] == dict(block, retain_discovery=False)


def test_each_bad_value_is_logged_and_replaced_by_its_default():
    conf, log = load("mqtt6", {"mqtt": {
        "host": "b", "port": 70000, "keepalive": "30", "prefix": "a//b", "node_id": "all",
        "discovery_prefix": "$SYS", "tls": 1, "user": 7, "password": ["hunter2"],
        "colour": "blue"}})
    mqtt = conf["mqtt"]
    assert mqtt == dict(mqtt_json.MQTT_DEFAULTS, host="b", port=1883), mqtt
    said = "\n".join(log)
    for key in ("port", "keepalive", "prefix", "node_id", "discovery_prefix", "tls", "user",
                "password"):
        assert "ignoring %s: must be" % key in said, (key, said)
    assert "ignoring unknown key colour" in said
    assert "hunter2" not in said
    assert conf["hostname"] == "" and conf["password"] == ""  # the rest is as it was


def test_no_usable_host_or_not_an_object_turns_mqtt_off_and_says_so():
    for name, block in (("mqtt7", {"port": 1883}), ("mqtt8", {"host": "a b"}),
                        ("mqtt9", "broker.lan"), ("mqtt10", [1])):
        conf, log = load(name, {"mqtt": block, "watchdog_ms": 0})
        assert "mqtt" not in conf, block
        assert "MQTT is off" in log[-1], log
        assert conf["watchdog_ms"] == 0  # everything else is still read


def test_topic_rules():
    for text, slashes, ok in (("pinsock", False, True), ("home/boards", True, True),
                              ("home/boards", False, False), ("a/", True, False),
                              ("/a", True, False), ("a+b", True, False), ("#", True, False),
                              ("$SYS", True, False), ("", True, False), ("x" * 65, True, False),
                              ("k\u00fcche", False, True)):
        assert mqtt_json.is_topic(text, slashes) is ok, text
