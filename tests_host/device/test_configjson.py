# config.json's one reading rule (boot/config_json.py parse, strict_error): strict JSON
# on the device as in tools/configure.py (CPython's json). MicroPython's json skips
# stray commas and colons; the device must not. Runs on CPython and the unix port,
# where these files were read before (issue 16).
from fakes import scratch_dir
from pinsock.boot import config_json

# Each is refused by CPython's json; MicroPython's json reads every one of them.
LENIENT = (
    '{"password": "x",}',  # a comma before the close
    '{"password": "x",, "hostname": "h"}',  # two commas
    '{"password": "x" "hostname": "h"}',  # no comma
    '{"password" "x"}',  # no colon
    '{"password":: "x"}',
    '{, "password": "x"}',
    '{"watchdog_ms": 01000}',
    '{"watchdog_ms": 1.}',
    '{"password": "a\\qb"}',  # an escape JSON has not
    '{"password": "tab\there"}',  # a control character in a string
    '{"allowed_origins": ["http://a.lan",]}',
)
GOOD = (
    ('{"password": "x"}', {"password": "x"}),
    (' {"watchdog_ms": 0, "allowed_origins": ["http://a.lan"]}\n',
     {"watchdog_ms": 0, "allowed_origins": ["http://a.lan"]}),
    ('{"hostname": "k\\u00fcche", "n": -1.5e3, "t": true, "f": false, "z": null}',
     {"hostname": "k\u00fcche", "n": -1500.0, "t": True, "f": False, "z": None}),
    ("{}", {}),
)


def load(name, text):
    path = scratch_dir(name) + "/config.json"
    with open(path, "w") as f:
        f.write(text)
    log = []
    return config_json.load(path, log.append, fix="fix it here"), log


def test_what_cpython_refuses_the_device_refuses_and_locks_logins():
    for n, text in enumerate(LENIENT):
        conf, log = load("cj%d" % n, text)
        assert conf["password"] is config_json.LOCKED, text
        assert conf["locked_message"] == "config.json could not be read; fix it here.", text
        assert "not valid JSON (" in log[0] and "refusing logins" in log[0], log
        assert "(fix it here)" in log[0], log
        # Where, never what: a password must not reach the log.
        assert " at line 1, column " in log[0] and '"x"' not in log[0], log


def test_strict_json_reads_as_before():
    for text, data in GOOD:
        assert config_json.strict_error(text) is None, text
        assert config_json.parse(text) == data


def test_parse_says_what_and_where():
    try:
        config_json.parse('{\n  "password": "x",\n}\n')
    except ValueError as exc:
        assert str(exc) == 'expected a "name" at line 3, column 1', str(exc)
    else:
        raise AssertionError("read a trailing comma")
    for text, why in (("", "expected a value"), ('{"a": 1} x', "text after the end"),
                      ('{"a": "b', "a string not closed"), ("[1 2]", "expected ',' or ']'")):
        assert config_json.strict_error(text).startswith(why), text


def test_a_good_file_is_not_locked():
    conf, log = load("cjgood", '{"password": "x", "hostname": "kitchen"}')
    assert conf["password"] == "x" and "locked_message" not in conf and log == []


def test_only_the_wifi_setups_temporary_file_left_is_used():
    # A power cut between the Wi-Fi setup's removing config.json and its rename (FAT).
    d = scratch_dir("configjson_tmp")
    with open(d + "/config.json.tmp", "w") as f:
        f.write('{"wifi_ssid": "home", "password": "owner"}')
    log = []
    conf = config_json.load(d + "/config.json", log.append)
    assert conf["wifi_ssid"] == "home" and conf["password"] == "owner"
    assert log == ["config: no %s/config.json, using %s/config.json.tmp" % (d, d)], log
