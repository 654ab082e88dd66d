# The Wi-Fi setup's rules and its write of config.json (transport/wifisetup.py): what a
# network to join must be, and that saving keeps every other key, is atomic, and keeps
# a file it cannot read beside the new one. Runs on CPython and the unix port.
import json
import os

from fakes import scratch_dir
from pinsock.transport import wifisetup
from pinsock.transport.wifisetup import value_error


def read_json(path):
    with open(path) as f:
        return json.load(f)


def test_what_a_network_to_join_must_be():
    assert value_error("home", "") is None  # an open network
    assert value_error("home", "12345678") is None
    assert value_error("h" * 32, "p" * 63) is None
    assert value_error("Café ☕", "correct horse") is None  # 9 bytes of UTF-8
    assert value_error("home", "0123456789abcdef" * 4) is None  # the key itself
    assert "name" in value_error("", "12345678")
    assert "name" in value_error(None, "12345678")
    assert "32 bytes" in value_error("é" * 17, "")  # 34 bytes
    assert "control" in value_error("home\n", "")
    assert "8 to 64" in value_error("home", "short")
    assert "8 to 64" in value_error("home", "x" * 65)
    assert "hex" in value_error("home", "g" * 64)
    assert "printable" in value_error("home", "pass\tword")


def test_save_keeps_every_other_key_and_leaves_no_temporary_file():
    d = scratch_dir("wifisetup1")
    path = d + "/config.json"
    with open(path, "w") as f:
        json.dump({"wifi_ssid": "old", "wifi_password": "oldpassword", "password": "owner",
                   "mqtt": {"host": "192.168.1.5"}}, f)
    wifisetup.save(path, "home", "correct horse")
    assert read_json(path) == {"wifi_ssid": "home", "wifi_password": "correct horse",
                               "password": "owner", "mqtt": {"host": "192.168.1.5"}}
    assert sorted(os.listdir(d)) == ["config.json"]


def test_save_without_a_file_makes_one():
    d = scratch_dir("wifisetup2")
    wifisetup.save(d + "/config.json", "home", "")
    assert read_json(d + "/config.json") == {"wifi_ssid": "home", "wifi_password": ""}


def test_a_file_that_is_not_an_object_is_kept_beside_the_new_one():
    d = scratch_dir("wifisetup3")
    path = d + "/config.json"
    with open(path, "w") as f:
        f.write('{"password": "owner",,')
    said = []
    wifisetup.save(path, "home", "12345678", said.append)
    assert read_json(path) == {"wifi_ssid": "home", "wifi_password": "12345678"}
    with open(path + ".bad") as f:
        assert f.read() == '{"password": "owner",,'
    assert said and "kept as" in said[0]


class FakeRadio:
    """The hardware layer's Wi-Fi side, as wifisetup uses it."""

    def __init__(self, seen):
        self.seen = seen
        self.restarts = []

    def describe(self):
        return {"mode": "access point", "ssid": "pinsock-c0de", "hostname": "pinsock-c0de"}

    def scan(self):
        return self.seen

    def restart(self, delay_ms):
        self.restarts.append(delay_ms)


def test_a_board_whose_network_is_not_up_says_so():
    status, answer = wifisetup.answer(FakeRequest("GET"), None, "config.json")
    assert status == 503 and "starting" in answer["error"]


def test_networks_are_listed_once_each_strongest_first():
    radio = FakeRadio([("b", -70, True), ("a", -80, False), ("b", -40, True), ("", -30, True),
                       ("c", -60, False)])
    assert "networks" not in wifisetup.state(radio, scan=False)
    state = wifisetup.state(radio)
    assert state["mode"] == "access point"
    assert state["networks"] == [{"ssid": "b", "rssi": -40, "secure": True},
                                 {"ssid": "c", "rssi": -60, "secure": False},
                                 {"ssid": "a", "rssi": -80, "secure": False}]


class FakeRequest:
    def __init__(self, method, form=None, args=()):
        self.method = method
        self.form = form
        self.args = dict.fromkeys(args, "")


def test_get_scans_only_when_asked():
    radio = FakeRadio([("b", -70, True)])
    assert "networks" not in wifisetup.answer(FakeRequest("GET"), radio, "x")[1]
    assert wifisetup.answer(FakeRequest("GET", args=["scan"]), radio, "x")[1]["networks"]


def test_a_good_answer_is_saved_then_the_board_restarts_a_bad_one_changes_nothing():
    d = scratch_dir("wifisetup4")
    path = d + "/config.json"
    radio = FakeRadio([])
    status, answer = wifisetup.answer(FakeRequest("POST", {"ssid": "home", "password": "x"}),
                                      radio, path)
    assert status == 400 and "8 to 64" in answer["error"]
    assert os.listdir(d) == [] and radio.restarts == []
    status, answer = wifisetup.answer(
        FakeRequest("POST", {"ssid": "home", "password": "12345678"}), radio, path)
    assert status == 200 and answer == {"saved": "home", "restarting": True,
                                        "url": "http://pinsock-c0de.local/"}
    assert read_json(path)["wifi_ssid"] == "home"
    assert radio.restarts == [wifisetup.restart_delay_ms]
