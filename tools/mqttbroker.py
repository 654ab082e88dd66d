"""A Mosquitto broker of its own on 127.0.0.1, and a paho-mqtt observer of it (the MQTT
tests; docs/MQTT.md).

    broker = Broker(folder).start()           # a free port, its own config file
    watch = Observer(broker.port, "pinsock/#")
    watch.wait_for("pinsock/pinsock-c0de/status", "online")
    broker.restart(); broker.stop()

Mosquitto is Debian's package (tools/setup_system.sh installs it); mosquitto_command()
is None where it is not installed.
"""

import getpass
import os
import queue
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho

from simclient import HOST, free_port

# Every wait here is bounded by this (seconds) unless a caller says.
TIMEOUT_S = 10


def mosquitto_command():
    """The mosquitto binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


class Broker:
    """One mosquitto process on HOST, with a config file written for it: anonymous,
    or with `users` {name: password} only; TLS with `tls`; retained messages kept in
    memory only (a restart forgets them, so what is retained after one was published
    again)."""

    def __init__(self, folder, users=None, port=None, tls=None, options=()):
        self.folder = Path(folder)
        self.options = list(options)  # more lines for its config file (make bench's)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.tls = tls  # (certificate PEM path, key PEM path): the listener speaks TLS only
        self.proc = None
        self.log_path = self.folder / "mosquitto.log"

    def config_text(self):
        # Started by root, mosquitto would become the user `mosquitto`, who cannot read
        # this folder: it stays who started it.
        lines = ["listener %d %s" % (self.port, HOST), "persistence false",
                 "user %s" % getpass.getuser(),
                 "log_dest file %s" % self.log_path, "log_type all"]
        if self.tls:
            lines += ["certfile %s" % self.tls[0], "keyfile %s" % self.tls[1]]
        if self.users:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, password],
                               check=True, capture_output=True, timeout=TIMEOUT_S)
            os.chmod(passwd, 0o600)
            lines += ["allow_anonymous false", "password_file %s" % passwd]
        else:
            lines.append("allow_anonymous true")
        lines += self.options
        return "\n".join(lines) + "\n"

    def start(self):
        conf = self.folder / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.proc = subprocess.Popen([mosquitto_command(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto did not start: " + self.log())
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("mosquitto did not listen on %d: %s" % (self.port, self.log()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            return self.log_path.read_text()[-2000:]
        except OSError:
            return ""


class Observer:
    """A paho-mqtt 2.x client subscribed to `topics` (a filter or a list) at QoS 1:
    every message it gets is kept as (topic, payload text, retained)."""

    def __init__(self, port, topics, client_id=None, user=None, password=None):
        self.messages = queue.Queue()
        self.seen = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or "observer-%d" % free_port())
        if user:
            self.client.username_pw_set(user, password)
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        subscribed = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: subscribed.put(True)
        self.client.on_message = self._on_message
        self.client.connect(HOST, port, keepalive=30)
        self.client.loop_start()
        subscribed.get(timeout=TIMEOUT_S)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client, userdata, msg):
        self.messages.put((msg.topic, msg.payload.decode(errors="replace"), bool(msg.retain)))

    def publish(self, topic, payload, retain=False):
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT_S)

    def next(self, timeout=TIMEOUT_S):
        """The next message (topic, payload, retained); queue.Empty after `timeout`."""
        message = self.messages.get(timeout=timeout)
        self.seen.append(message)
        return message

    def wait_for(self, topic, payload=None, timeout=TIMEOUT_S, retained=None):
        """The first message on `topic` (with `payload`, and the retain flag, when
        given); AssertionError naming what came instead after `timeout`."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.next(max(left, 0.01))
            except queue.Empty:
                raise AssertionError("no %s %r within %.0f s; got %r"
                                     % (topic, payload, timeout, skipped[-20:])) from None
            got_topic, got_payload, got_retained = message
            if (got_topic == topic and (payload is None or got_payload == payload)
                    and (retained is None or got_retained == retained)):
                return message
            skipped.append(message)

    def drain(self, quiet_s=0.3):
        """Every message until none has come for quiet_s."""
        got = []
        while True:
            try:
                got.append(self.next(quiet_s))
            except queue.Empty:
                return got

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained(port, topic_filter, quiet_s=0.5):
    """{topic: payload} of what the broker holds retained under `topic_filter`, as a
    newcomer gets it."""
    watch = Observer(port, topic_filter)
    try:
        return {topic: payload for topic, payload, kept in watch.drain(quiet_s) if kept}
    finally:
        watch.close()
