"""MQTT end to end: the simulator (the real build on the unix port) publishing to a real
Mosquitto, started here on a free port of 127.0.0.1 with its own config file, and
paho-mqtt observing (tools/mqttbroker.py). docs/MQTT.md is what is checked.

Needs mosquitto (tools/setup_system.sh installs it; `make test` runs that). Without it
these tests skip, saying why; with CI=true they fail instead.
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from mqttbroker import Broker, Observer, mosquitto_command, retained
from simclient import Control, next_message, ws_connect

UNIQUE_ID = "00000000beef"
NODE = "pinsock-beef"
BASE = "pinsock/%s/" % NODE
WAIT_S = 15  # a reconnect after a broker restart waits a backoff of up to a few seconds
ALL_IOS = "0123456789abcdef"


@pytest.fixture
def broker(tmp_path):
    if mosquitto_command() is None:
        reason = ("mosquitto is not installed (the MQTT tests start a broker;"
                  " `bash tools/setup_system.sh` installs it)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; on CI this is a failure")
        pytest.skip(reason)
    started = []

    def start(**options):
        b = Broker(tmp_path / ("broker%d" % len(started)), **options).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def observers():
    made = []

    def observe(port, topics="pinsock/#", **options):
        watch = Observer(port, topics, **options)
        made.append(watch)
        return watch

    yield observe
    for watch in made:
        watch.close()


def mqtt_sim(start_sim, tmp_path, port, name="sim", unique_id=UNIQUE_ID, files=None, **mqtt):
    """A simulator whose config.json points at the broker on `port` (`files`: more
    {name: bytes} for its state folder)."""
    state = tmp_path / name
    state.mkdir()
    for file_name, data in (files or {}).items():
        (state / file_name).write_bytes(data)
    block = {"host": "127.0.0.1", "port": port, "keepalive": 10}
    block.update(mqtt)
    (state / "config.json").write_text(json.dumps({"mqtt": block}))
    return start_sim(state_dir=state, debounce_ms=0, unique_id=unique_id)


def wait_output(sim, pattern, timeout=WAIT_S):
    """The first line of the simulator's output matching `pattern` (a regex)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in sim.output:
            if re.search(pattern, line):
                return line
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r in:\n%s" % (pattern, "".join(sim.output)[-3000:]))
        try:
            sim.lines.get(timeout=min(left, 0.2))
        except queue.Empty:
            pass


def connects(sim):
    return sum(1 for line in sim.output if line.startswith("mqtt: connected to"))


def ws_report(sim):
    with ws_connect(sim.http_port) as ws:
        report = ws.recv(timeout=5)
    return report


def test_status_is_retained_online_and_the_will_says_offline_after_sigkill(
        broker, observers, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch = observers(b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    # A newcomer gets everything retained: status, state exactly as a WebSocket client
    # gets it, and the level of every IO.
    held = retained(b.port, BASE + "#")
    assert held[BASE + "status"] == "online"
    assert held[BASE + "state"] == ws_report(sim)
    assert json.loads(held[BASE + "state"])["seq"] == 0
    assert {topic for topic in held if "/io/" in topic} == {BASE + "io/" + h for h in ALL_IOS}
    assert held[BASE + "io/0"] == "1" and held[BASE + "io/9"] == "0"  # pull-up, none
    # Killed without a word: the broker publishes the will.
    sim.proc.send_signal(signal.SIGKILL)
    sim.proc.wait(timeout=5)
    watch.wait_for(BASE + "status", "offline", WAIT_S)
    assert retained(b.port, BASE + "status")[BASE + "status"] == "offline"


def test_io_set_and_cmd_drive_the_pin_the_retained_io_and_the_websocket(
        broker, observers, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch = observers(b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    watch.publish(BASE + "cmd", "d9=1")  # IO 9 becomes an output
    watch.wait_for(BASE + "reply", '{"d":{"9":"1"}}')
    with ws_connect(sim.http_port) as ws:
        next_message(ws, "dipSwitches")
        ws.send("tuv9=3")
        assert json.loads(ws.recv(timeout=5)) == {"t": {"u": {"v": {"9": "3"}}}}
        watch.publish(BASE + "io/9/set", "1")
        watch.wait_for(BASE + "io/9", "1")
        assert sim.control("get 9") == "1"
        assert json.loads(ws.recv(timeout=5)) == {"u": {"v": {"9": "1"}}}
        assert retained(b.port, BASE + "io/9") == {BASE + "io/9": "1"}
        watch.publish(BASE + "cmd", "v9=0")  # the change goes out first, then the reply
        watch.wait_for(BASE + "io/9", "0")
        watch.wait_for(BASE + "reply", '{"v":{"9":"0"}}')
        assert sim.control("get 9") == "0"
        assert json.loads(ws.recv(timeout=5)) == {"u": {"v": {"9": "0"}}}
    assert retained(b.port, BASE + "io/9") == {BASE + "io/9": "0"}
    # An input refuses io/<h>/set, and the error is the reply; a trigger means nothing
    # here and says so; pinsock/all/cmd reaches the board too.
    watch.publish(BASE + "io/8/set", "1")
    watch.wait_for(BASE + "reply", '{"e":{"c":"v8","m":"io is an input"}}')
    watch.publish(BASE + "cmd", "tuv0=3")
    watch.wait_for(BASE + "reply",
                   '{"e":{"c":"tuv0","m":"no triggers over mqtt: every io is published"}}')
    watch.publish("pinsock/all/cmd", "sn")
    watch.wait_for(BASE + "reply", '{"s":{"n":"%s"}}' % NODE)
    assert sim.control("get 8") == "0"


def test_a_retained_command_is_ignored_and_logged(broker, observers, start_sim, tmp_path):
    b = broker()
    watch = observers(b.port)
    watch.publish(BASE + "cmd", "d9=1", retain=True)
    watch.publish(BASE + "io/9/set", "1", retain=True)
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    wait_output(sim, r"ignoring a retained message on %scmd" % BASE)
    wait_output(sim, r"ignoring a retained message on %sio/9/set" % BASE)
    watch.publish(BASE + "cmd", "d9")  # what runs after the retained ones
    _, reply, _ = watch.wait_for(BASE + "reply")
    assert reply == '{"d":{"9":"0"}}'  # d9=1 did not run
    assert sim.control("get 9") == "0"


def test_a_broker_restart_ends_in_reconnect_resubscribe_and_a_full_republish(
        broker, observers, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch = observers(b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    assert sim.control("set 2 0") == "ok"  # DIP 3 On: seq 1
    watch.wait_for(BASE + "event")
    watch.close()
    b.restart()  # it keeps nothing: what is retained afterwards was published again
    wait_output(sim, r"retrying in")
    watch = observers(b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    assert connects(sim) == 2
    held = retained(b.port, BASE + "#")
    state = json.loads(held[BASE + "state"])
    assert state["seq"] == 1 and state["dipSwitches"]["dip3"] == "On"
    assert held[BASE + "state"] == ws_report(sim)
    assert {topic for topic in held if "/io/" in topic} == {BASE + "io/" + h for h in ALL_IOS}
    assert held[BASE + "io/2"] == "0"
    watch.publish(BASE + "cmd", "v2")  # subscribed again
    watch.wait_for(BASE + "reply", '{"v":{"2":"0"}}')


def test_every_transition_is_an_event_with_consecutive_seq(broker, observers, start_sim,
                                                           tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch = observers(b.port, BASE + "event")
    wait_output(sim, r"mqtt: connected")
    transitions = 500
    with Control(sim.control_port) as ctl:
        levels = [1] * 8
        for n in range(transitions):
            io = n % 8
            levels[io] ^= 1
            assert ctl.ask("set %d %d" % (io, levels[io])) == "ok"
    events = [json.loads(watch.wait_for(BASE + "event")[1]) for _ in range(transitions)]
    assert [e["seq"] for e in events] == list(range(1, transitions + 1))
    for n, event in enumerate(events):
        assert event["io"] == "%x" % (n % 8) and event["v"] == "%d" % (n // 8 % 2), n
    # Each is the record GET /log gives.
    with urllib.request.urlopen(sim.base_url + "/log?since=%d" % (transitions - 3),
                                timeout=5) as answer:
        assert json.loads(answer.read()) == events[-3:]


def test_a_mqtt_block_wrong_in_several_ways_is_logged_and_the_rest_serves(
        start_sim, tmp_path):
    state = tmp_path / "bad"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"mqtt": {
        "host": "", "port": "1883", "keepalive": -1, "prefix": "a/#", "node_id": "x/y",
        "tls": "yes", "colour": "blue", "password": "hunter2"}}))
    sim = start_sim(state_dir=state, debounce_ms=0)
    output = "".join(sim.output)
    for said in ("ignoring port: must be a whole number", "ignoring keepalive: must be 0 to",
                 "ignoring prefix: must be topic levels", "ignoring node_id: must be one",
                 "ignoring tls: must be true or false", "ignoring unknown key colour",
                 "no host; MQTT is off"):
        assert said in output, output
    assert "hunter2" not in output and "mqtt: publishing" not in output
    assert json.loads(ws_report(sim))["seq"] == 0  # everything else serves


def test_the_broker_refusing_the_password_is_logged_once_and_the_rest_serves(
        broker, observers, start_sim, tmp_path):
    b = broker(users={"board": "right"})
    sim = mqtt_sim(start_sim, tmp_path, b.port, user="board", password="wrong")
    wait_output(sim, r"refused the connection: (not authorized|bad user name or password)")
    assert json.loads(ws_report(sim))["seq"] == 0
    assert "wrong" not in "".join(sim.output)
    good = mqtt_sim(start_sim, tmp_path, b.port, name="good", unique_id="00000000cafe",
                    user="board", password="right")
    wait_output(good, r"mqtt: connected")
    watch = observers(b.port, user="board", password="right")
    watch.wait_for("pinsock/pinsock-cafe/status", "online")
    wait_output(sim, r"retrying in")
    refusals = [line for line in sim.output if "refused the connection" in line]
    assert len(refusals) == 1, sim.output


def test_two_boards_with_one_client_id_back_off_and_say_so_once(broker, start_sim, tmp_path):
    # The broker closes the older of two connections with one client id: the two
    # would kick each other off for ever. Each says so once and slows down.
    b = broker()
    one = mqtt_sim(start_sim, tmp_path, b.port, name="one")
    two = mqtt_sim(start_sim, tmp_path, b.port, name="two")
    pattern = "is another device using the client id '%s'? Retrying every 60 s" % NODE
    deadline = time.monotonic() + 45
    while not any(pattern in line for sim in (one, two) for line in sim.output):
        assert time.monotonic() < deadline, "".join(one.output + two.output)[-3000:]
        time.sleep(0.2)
    time.sleep(3)  # no second time
    for sim in (one, two):
        assert sum(pattern in line for line in sim.output) <= 1, sim.output


def test_stopping_with_ctrl_c_says_offline_and_disconnects_cleanly(broker, observers,
                                                                   start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    watch = observers(b.port)
    watch.wait_for(BASE + "status", "online", WAIT_S)
    sim.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert sim.proc.wait(timeout=10) == 0
    watch.wait_for(BASE + "status", "offline", WAIT_S)
    # The device said it, then DISCONNECT: the broker did not have to send the will.
    deadline = time.monotonic() + 5
    while "Client %s disconnected." % NODE not in b.log():
        assert time.monotonic() < deadline, b.log()
        time.sleep(0.1)
    assert "Sending will" not in b.log() and "closed its connection" not in b.log()


def test_discovery_arrives_after_connect_after_the_birth_message_and_on_a_direction_change(
        broker, observers, start_sim, tmp_path):
    b = broker()
    watch = observers(b.port, ["pinsock/#", "homeassistant/#"])
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    topic = "homeassistant/device/%s/config" % NODE
    _, text, kept = watch.wait_for(topic, None, WAIT_S)
    message = json.loads(text)
    assert not kept  # not retained by default
    assert message["dev"]["ids"] == NODE and message["dev"]["mdl"] == "UNIX_SIM"
    assert message["avty_t"] == BASE + "status"
    assert message["cmps"]["io9"]["p"] == "binary_sensor"
    # Home Assistant's birth message: discovery again within 0-5 s (and the tick).
    started = time.monotonic()
    watch.publish("homeassistant/status", "online")
    watch.wait_for(topic, None, 8)
    assert time.monotonic() - started <= 7
    # IO 9 becomes an output, over the WebSocket: a switch now.
    with ws_connect(sim.http_port) as ws:
        next_message(ws, "dipSwitches")
        ws.send("d9=1")
        _, text, _ = watch.wait_for(topic, None, 5)
    switch = json.loads(text)["cmps"]["io9"]
    assert switch["p"] == "switch" and switch["cmd_t"] == BASE + "io/9/set"


def test_analog_pwm_counter_and_button_ios_on_mqtt_and_in_home_assistant(
        broker, observers, start_sim, tmp_path):
    # Issue 18, point 8: each function on io/<h> and as its Home Assistant entity.
    b = broker()
    watch = observers(b.port, ["pinsock/#", "homeassistant/#"])
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    topic = "homeassistant/device/%s/config" % NODE
    watch.wait_for(topic, None, WAIT_S)
    for command in ("f8=a", "fa=w", "fc=c", "fe=b"):
        watch.publish(BASE + "cmd", command)
        watch.wait_for(BASE + "reply", '{"f":{"%s":"%s"}}' % (command[1], command[3]))
    # Discovery again (once a second at most), until it has all four.
    deadline = time.monotonic() + 5
    while True:
        _, text, _ = watch.wait_for(topic, None, max(0.1, deadline - time.monotonic()))
        cmps = json.loads(text)["cmps"]
        if cmps["ioe"]["p"] == "event":
            break
    assert cmps["io8"]["p"] == "sensor" and cmps["io8"]["stat_cla"] == "measurement"
    assert cmps["ioa"]["p"] == "number" and cmps["ioa"]["cmd_t"] == BASE + "io/a/set"
    assert cmps["ioc"]["p"] == "sensor" and cmps["ioc"]["stat_cla"] == "total_increasing"
    assert cmps["ioe"]["evt_typ"][2] == "short_release"
    # An analog input: its 0..1023 value, past the deadband.
    assert sim.control("analog 8 65535") == "ok"
    watch.wait_for(BASE + "io/8", "1023", 5)
    # A PWM duty from Home Assistant's number: on the pin, and published back.
    watch.publish(BASE + "io/a/set", "512")
    watch.wait_for(BASE + "io/a", "512", 5)
    assert sim.control("pwm 10") == "%d 1000" % ((512 * 65535 + 511) // 1023)
    # A counter counts, and io/<h>/set 0 resets it (an event-log record too).
    assert sim.control("pulse 12 5") == "ok"
    watch.wait_for(BASE + "io/c", "5", 5)
    watch.publish(BASE + "io/c/set", "0")
    _, record, _ = watch.wait_for(BASE + "event", None, 5)  # logged first
    assert json.loads(record)["c"] == "0" and json.loads(record)["io"] == "c"
    watch.wait_for(BASE + "io/c", "0", 5)
    # A button: its events, as Home Assistant's event entity reads them.
    assert sim.control("press 14 150") == "ok"
    watch.wait_for(BASE + "io/e", '{"event_type":"press","code":"1000"}', 5)
    watch.wait_for(BASE + "io/e", '{"event_type":"short_release","code":"1002"}', 5)
    held = retained(b.port, BASE + "io/#")
    assert (held[BASE + "io/8"], held[BASE + "io/a"], held[BASE + "io/c"]) == ("1023", "512", "0")
    assert BASE + "io/e" not in held  # events are not retained, and the old level is gone
    assert held[BASE + "io/9"] == "0"  # digital: a level


def test_events_the_broker_never_acknowledged_are_sent_again_after_the_reconnect(
        broker, observers, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    wait_output(sim, r"mqtt: connected")
    # The broker freezes: it reads nothing and acknowledges nothing; then it dies.
    b.proc.send_signal(signal.SIGSTOP)
    for io in (0, 1, 2):
        assert sim.control("set %d 0" % io) == "ok"  # events 1, 2, 3, never acknowledged
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(timeout=5)
    b.start()  # the same port, nothing retained
    # After the reconnect the three come again, marked as sent again (DUP), in order.
    # (The broker's log says so; an observer could subscribe too late to see them.)
    pattern = (r"Received PUBLISH from %s \(d1, q1, r0, m\d+, '%sevent', \.\.\. \((\d+)"
               r" bytes\)\)" % (NODE, BASE))
    deadline = time.monotonic() + WAIT_S + 10
    while len(re.findall(pattern, b.log())) < 3:
        assert time.monotonic() < deadline, b.log()
        time.sleep(0.1)
    assert connects(sim) == 2
    # Then what is new goes out as before, with the seq after them.
    watch = observers(b.port, BASE + "event")
    assert sim.control("set 3 0") == "ok"
    assert json.loads(watch.wait_for(BASE + "event")[1])["seq"] == 4


def make_certificate(folder, name):
    """(certificate DER, certificate PEM, key PEM) of a fresh self-signed P-256 pair for
    127.0.0.1, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (tools/setup_system.sh installs it as root)")
    folder.mkdir(parents=True, exist_ok=True)
    pem, key, der = (folder / (name + ".pem"), folder / (name + "_key.pem"),
                     folder / (name + ".der"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-out", str(pem), "-keyout", str(key)],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "x509", "-in", str(pem), "-outform", "DER", "-out", str(der)],
                   check=True, capture_output=True, timeout=30)
    return der, pem, key


def test_tls_connects_with_the_brokers_ca_and_refuses_another(broker, start_sim, tmp_path):
    der, pem, key = make_certificate(tmp_path / "certs", "broker")
    other, _, _ = make_certificate(tmp_path / "certs", "other")
    b = broker(tls=(pem, key))
    sim = mqtt_sim(start_sim, tmp_path, b.port, name="good", tls=True,
                   files={"mqtt_ca.der": der.read_bytes()})
    wait_output(sim, r"mqtt: connected to 127.0.0.1:%d" % b.port)
    # A broker whose certificate the CA does not sign: no connection, and it says why.
    bad = mqtt_sim(start_sim, tmp_path, b.port, name="bad", unique_id="00000000dead",
                   tls=True)
    assert "tls needs the broker's CA certificate" in "".join(bad.output)  # none there
    bad.stop()
    (tmp_path / "bad" / "mqtt_ca.der").write_bytes(other.read_bytes())
    bad.start()
    wait_output(bad, r"mqtt: .*retrying in")
    assert not any(line.startswith("mqtt: connected") for line in bad.output)
    assert json.loads(ws_report(bad))["seq"] == 0


def link_update(ws, timeout=WAIT_S):
    """The next MQTT link update ({"u":{"s":{"q":...}}}) on a WebSocket: its sq."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if "s" in msg.get("u", {}):
            return msg["u"]["s"]["q"]


def test_sq_and_its_update_say_connected_broker_gone_with_error_and_retry_then_back(
        broker, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port)
    wait_output(sim, r"mqtt: connected to")
    broker_name = "127.0.0.1:%d" % b.port
    with ws_connect(sim.http_port) as ws:
        next_message(ws, "dipSwitches")
        ws.send("tusq=1")
        assert json.loads(ws.recv(timeout=5)) == {"t": {"u": {"s": {"q": "1"}}}}
        ws.send("sq")
        assert json.loads(ws.recv(timeout=5)) == {"s": {"q": {
            "c": "1", "b": broker_name, "e": "", "r": "0", "n": "1", "h": "1"}}}
        # The broker stops: told at once, with why and when the next try is.
        b.stop()
        q = link_update(ws)
        assert q["c"] == "0" and q["b"] == broker_name and q["n"] == "1"
        assert q["e"] == "the broker closed the connection"
        assert 0 <= int(q["r"]) <= 1  # the first backoff: up to 1 s
        # The tries that fail say so too (nothing listens: connection refused).
        q = link_update(ws)
        assert q["c"] == "0" and q["e"] and q["e"] != "the broker closed the connection"
        ws.send("sqe")
        assert json.loads(ws.recv(timeout=5)) == {"s": {"q": {"e": q["e"]}}}
        ws.send("sqr")
        assert 0 <= int(json.loads(ws.recv(timeout=5))["s"]["q"]["r"]) <= 2
        # Back: connected again, the second connect since boot.
        b.start()
        while True:
            q = link_update(ws, WAIT_S + 60)
            if q["c"] == "1":
                break
        assert q == {"c": "1", "b": broker_name, "e": "", "r": "0", "n": "2", "h": "1"}
    # Over HTTP and over MQTT's cmd, the same leaf.
    with urllib.request.urlopen("http://127.0.0.1:%d/action.cgi?sqc" % sim.http_port,
                                timeout=5) as answer:
        assert json.loads(answer.read()) == {"s": {"q": {"c": "1"}}}


def test_sq_is_off_without_an_mqtt_block(sim):
    with urllib.request.urlopen("http://127.0.0.1:%d/action.cgi?sq" % sim.http_port,
                                timeout=5) as answer:
        assert json.loads(answer.read()) == {"s": {"q": "off"}}


def test_sqh_0_removes_the_board_from_home_assistant_until_sqh_1(
        broker, observers, start_sim, tmp_path):
    b = broker()
    sim = mqtt_sim(start_sim, tmp_path, b.port, retain_discovery=True)
    topic = "homeassistant/device/%s/config" % NODE
    watch = observers(b.port, ["pinsock/#", "homeassistant/#"])
    watch.wait_for(topic, None, WAIT_S)
    held = retained(b.port, "homeassistant/#")
    assert json.loads(held[topic])["dev"]["ids"] == NODE
    # The command, here on the board's cmd topic (any channel will do).
    watch.publish(BASE + "cmd", "sqh=0")
    watch.wait_for(BASE + "reply", '{"s":{"q":{"h":"0"}}}')
    assert retained(b.port, "homeassistant/#") == {}
    # Kept on flash: after a restart of the board it stays removed.
    settings = tmp_path / "sim" / "settings.json"
    deadline = time.monotonic() + 5
    while '"ha": 0' not in (settings.read_text() if settings.exists() else ""):
        assert time.monotonic() < deadline, "settings.json never said \"ha\": 0"
        time.sleep(0.1)
    sim.restart()
    watch.wait_for(BASE + "status", "online", WAIT_S)
    watch.publish(BASE + "cmd", "sqh")
    watch.wait_for(BASE + "reply", '{"s":{"q":{"h":"0"}}}')
    assert retained(b.port, "homeassistant/#") == {}
    # Home Assistant's birth message brings nothing back either (0-5 s jitter).
    watch.drain()
    watch.publish("homeassistant/status", "online")
    came = [m for m in watch.drain(6) if m[0] == topic]
    assert all(payload == "" for _, payload, _ in came), came
    # Asked back: announced again, retained.
    watch.publish(BASE + "cmd", "sqh=1")
    watch.wait_for(topic, None, 5)
    assert json.loads(retained(b.port, "homeassistant/#")[topic])["dev"]["ids"] == NODE
