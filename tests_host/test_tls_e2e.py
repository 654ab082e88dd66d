"""End-to-end: optional TLS (tlskeys.py). With cert.der and key.der in its state folder
the simulator serves HTTPS and WSS, and its plain-HTTP port redirects every request to
HTTPS; a missing, broken or mismatched file is logged and plain HTTP goes on serving.

The certificate is made here with openssl (tools/setup_system.sh installs it): a
self-signed P-256 one for IP 127.0.0.1, which the clients trust as their only CA and
verify, host name included. Without openssl these tests skip, saying why; with
CI=true they fail instead.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect

from conftest import ROOT
from simclient import (client_frame, exchange, read_to_end, split_answer, split_frame,
                       upgrade_request)


def raw_http(port, head, body=b""):
    """One request of raw bytes: (status, {lower-case header: value}, body)."""
    return split_answer(exchange(port, head.encode() + body, timeout=30))


def need_openssl():
    if shutil.which("openssl"):
        return
    reason = "openssl is not installed (tools/setup_system.sh installs it as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; on CI this is a failure")
    pytest.skip(reason)


def make_pair(folder, name, subject_alt_name="IP:127.0.0.1"):
    """(cert.der, key.der) paths of a fresh self-signed P-256 pair, made by openssl."""
    need_openssl()
    folder.mkdir(parents=True, exist_ok=True)
    cert, pem, key = folder / (name + "_cert.der"), folder / (name + ".pem"), folder / (
        name + "_key.der")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                    "/CN=pinsock-test", "-addext", "subjectAltName=" + subject_alt_name,
                    "-outform", "DER", "-out", str(cert), "-keyout", str(pem)],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["openssl", "pkey", "-in", str(pem), "-outform", "DER", "-out", str(key)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("tls"), "device")


def client_context(cert):
    """Trusts only the device's own certificate, and checks the host name is in it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=cert.read_bytes())
    return context


def start_tls(start_sim, tmp_path, cert_bytes, key_bytes, **options):
    state = tmp_path / "flash"
    state.mkdir(exist_ok=True)
    if cert_bytes is not None:
        (state / "cert.der").write_bytes(cert_bytes)
    if key_bytes is not None:
        (state / "key.der").write_bytes(key_bytes)
    return start_sim(state_dir=state, **options)


@pytest.fixture
def tls_sim(start_sim, tmp_path, pair):
    cert, key = pair
    return start_tls(start_sim, tmp_path, cert.read_bytes(), key.read_bytes(), debounce_ms=0)


def https_get(sim, cert, path, headers=None):
    req = urllib.request.Request(sim.https_url + path, headers=headers or {})
    with urllib.request.urlopen(req, context=client_context(cert), timeout=30) as response:
        return response.status, response.headers, response.read()


def test_https_serves_the_page_and_board_verified_against_the_certificate(tls_sim, pair):
    cert, _ = pair
    status, headers, body = https_get(tls_sim, cert, "/board")
    assert status == 200
    assert json.loads(body)["board"] == "UNIX_SIM"
    status, headers, body = https_get(tls_sim, cert, "/", {"Accept-Encoding": "identity"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<!doctype html>" in body.lower()[:200]
    assert "serving on https://127.0.0.1:%d" % tls_sim.https_port in "".join(tls_sim.output)


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_sim):
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(tls_sim.https_url + "/board",
                               context=ssl.create_default_context(), timeout=30)
    # The failed handshake harms no one: the next client is served.
    assert tls_sim.alive()


def test_wss_gets_the_switch_report_answers_commands_and_pushes_flips(tls_sim, pair):
    cert, _ = pair
    with connect(tls_sim.wss_url("/ws"), ssl=client_context(cert), open_timeout=30) as ws:
        report = json.loads(ws.recv(timeout=10))
        assert report["dipSwitches"]["dip1"] == "Off"
        ws.send("v3")
        assert json.loads(ws.recv(timeout=10)) == {"v": {"3": "1"}}
        assert tls_sim.control("set 0 0") == "ok"
        report = json.loads(ws.recv(timeout=10))
        assert report["dipSwitches"]["dip1"] == "On"
    # The NetBurner path too.
    with connect(tls_sim.wss_url("/INDEX"), ssl=client_context(cert), open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=10))["dipSwitches"]["dip1"] == "On"


def test_frames_split_across_tls_records_and_packets_are_read_whole(tls_sim, pair):
    # A TLS record can arrive in pieces (the socket is readable, the record is not
    # complete yet) and several frames can share one record: neither may lose a frame
    # or be taken for the end of the connection.
    cert, _ = pair
    link = TlsByHand(tls_sim.https_port, client_context(cert))
    try:
        link.send(upgrade_request())
        assert link.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101")
        link.read_frame()  # the switch report
        link.send(client_frame(1, b"v3") + client_frame(1, b"v9"))  # one record, two frames
        assert link.read_frame() == b'{"v":{"3":"1"}}'
        assert link.read_frame() == b'{"v":{"9":"0"}}'
        link.send(client_frame(1, b"v3"), split_after=7)  # one record, in two packets
        assert link.read_frame() == b'{"v":{"3":"1"}}'
        frame = client_frame(1, b"v9")
        link.send(frame[:6])  # the header in one record,
        link.send(frame[6:], split_after=7)  # the payload in another, in two packets
        assert link.read_frame() == b'{"v":{"9":"0"}}'
    finally:
        link.close()


def test_plain_http_redirects_every_request_to_https(tls_sim):
    port = tls_sim.https_port
    for method, target, body in (("GET", "/", b""), ("GET", "/board", b""),
                                 ("GET", "/action.cgi?v9=1", b""),
                                 ("POST", "/login", b"password=not-in-clear")):
        status, headers, answer = raw_http(tls_sim.http_port, "%s %s HTTP/1.1\r\nHost: "
                                           "127.0.0.1:%d\r\nContent-Length: %d\r\n\r\n"
                                           % (method, target, tls_sim.http_port, len(body)),
                                           body)
        assert status == 307, (method, target, answer)
        assert headers["location"] == "https://127.0.0.1:%d%s" % (port, target)
        assert headers["cache-control"] == "no-store"
    # A WebSocket handshake is redirected, not upgraded; /action.cgi ran nothing.
    status, headers, _ = raw_http(tls_sim.http_port, upgrade_request(
        host="127.0.0.1:%d" % tls_sim.http_port).decode())
    assert status == 307 and headers["location"] == "https://127.0.0.1:%d/ws" % port
    assert tls_sim.control("get 9") == "0"
    # The name the browser used is kept; an absolute or odd target becomes /.
    status, headers, _ = raw_http(tls_sim.http_port, "GET http://evil.example/x HTTP/1.1\r\n"
                                  "Host: pinsock.local\r\n\r\n")
    assert headers["location"] == "https://pinsock.local:%d/" % port
    status, headers, _ = raw_http(tls_sim.http_port, "GET //evil.example HTTP/1.1\r\n"
                                  "Host: [fe80::1]:80\r\n\r\n")
    assert headers["location"] == "https://[fe80::1]:%d/" % port
    # No Host, or one that is no host name: 400.
    for head in ("GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: a b\"<x>\r\n\r\n",
                 "garbage\r\n\r\n"):
        status, _, answer = raw_http(tls_sim.http_port, head)
        assert status == 400, (head, answer)
    assert "serving on http://127.0.0.1:%d, redirecting to https" % tls_sim.http_port in \
        "".join(tls_sim.output)


def test_the_session_cookie_is_secure_over_tls(start_sim, tmp_path, pair):
    cert, key = pair
    state = tmp_path / "flash"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"password": "tls test password"}))
    sim = start_tls(start_sim, tmp_path, cert.read_bytes(), key.read_bytes())
    context = client_context(cert)
    with socket.create_connection(("127.0.0.1", sim.https_port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            body = b"password=tls+test+password"
            s.sendall(b"POST /login HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/"
                      b"x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" % (len(body),
                                                                                   body))
            answer = read_to_end(s)
    head = answer.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.0 303"), head
    cookie = [line for line in head.split("\r\n") if line.lower().startswith("set-cookie:")]
    assert len(cookie) == 1 and "; Secure" in cookie[0], head


@pytest.mark.parametrize("case", ["garbage cert", "garbage key", "key of another cert",
                                  "cert without key", "key without cert"])
def test_a_missing_or_broken_file_is_logged_and_plain_http_goes_on(start_sim, tmp_path, pair,
                                                                  case):
    cert, key = pair
    if case == "garbage cert":
        files = (b"\x30\x82\x01\x00" + os.urandom(256), key.read_bytes())
    elif case == "garbage key":
        files = (cert.read_bytes(), b"not a key at all")
    elif case == "key of another cert":
        _, other_key = make_pair(tmp_path / "other", "other")
        files = (cert.read_bytes(), other_key.read_bytes())
    elif case == "cert without key":
        files = (cert.read_bytes(), None)
    else:
        files = (None, key.read_bytes())
    sim = start_tls(start_sim, tmp_path, *files, debounce_ms=0)
    output = "".join(sim.output)
    assert "tls: error: " in output and "serving plain HTTP only" in output, output
    assert "serving on https" not in output
    # Plain HTTP serves as if there were no certificate: the page and the WebSocket.
    status, _, body = raw_http(sim.http_port, "GET /board HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200 and json.loads(body)["board"] == "UNIX_SIM"
    with connect(sim.ws_url("/ws"), open_timeout=30) as ws:
        assert "dipSwitches" in json.loads(ws.recv(timeout=10))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.https_port), timeout=5).close()


def test_two_wss_clients_and_the_page_fit_in_192k_of_heap(start_sim, tmp_path, pair):
    # The heap test_memory.py holds plain HTTP to. Smallest heaps measured (November
    # 2026, unix port, .mpy build, noisy to about 4 KiB): 1 / 2 / 4 TLS clients with
    # the page 172 / 178 / 187 KiB, plain 162 / 172 / 172 KiB. mbedtls's own buffers
    # come from malloc on the unix port, not from this heap (SECURITY.md: on the Pico W
    # they come from the MicroPython heap).
    cert, key = pair
    sim = start_tls(start_sim, tmp_path, cert.read_bytes(), key.read_bytes(),
                    heapsize="192K", max_clients=2, debounce_ms=0)
    context = client_context(cert)
    with connect(sim.wss_url(), ssl=context, open_timeout=30) as one, \
            connect(sim.wss_url(), ssl=context, open_timeout=30) as two:
        for ws in (one, two):
            assert "dipSwitches" in json.loads(ws.recv(timeout=10))
        for level in (0, 1, 0, 1):
            assert sim.control("set 0 %d" % level) == "ok"
            for ws in (one, two):
                report = json.loads(ws.recv(timeout=10))
                assert report["dipSwitches"]["dip1"] == ("Off" if level else "On")
        status, headers, body = https_get(sim, cert, "/", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and len(body) > 1000
    assert sim.alive()


def test_console_talks_wss_trusting_the_device_certificate(tls_sim, pair, tmp_path):
    cert, _ = pair
    console = [sys.executable, str(ROOT / "tools" / "console.py")]
    url = tls_sim.wss_url("/ws")
    done = subprocess.run(console + ["--cafile", str(cert), url, "v3", "v9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"v": {"3": "1"}}, {"v": {"9": "0"}}]
    # Without --cafile the self-signed certificate is refused; --insecure takes it.
    done = subprocess.run(console + [url, "v3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr
    done = subprocess.run(console + ["--insecure", url, "v3"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == {"v": {"3": "1"}}, done.stderr


def test_deploy_copies_cert_and_key_together_or_not_at_all(tmp_path, capsys):
    import deploy

    assert deploy.tls_files_to_copy(tmp_path) == ()
    (tmp_path / "cert.der").write_bytes(b"c")
    assert deploy.tls_files_to_copy(tmp_path) == ()
    assert "cert.der without key.der: copying neither" in capsys.readouterr().out
    (tmp_path / "key.der").write_bytes(b"k")
    files = deploy.tls_files_to_copy(tmp_path)
    assert files == (tmp_path / "cert.der", tmp_path / "key.der")
    cmd, _ = deploy.deploy_commands(tmp_path, "/dev/ttyACM0", tls_files=files)
    text = " ".join(cmd)
    assert "+ fs cp %s :cert.der + fs cp %s :key.der" % files in text


# --- helpers ---------------------------------------------------------------------------
class TlsByHand:
    """A TLS client over memory buffers, so the test decides how the encrypted bytes
    are cut into TCP packets."""

    def __init__(self, port, context):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.buffer = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._flush()

    def _flush(self, split_after=None):
        data = self.outgoing.read()
        if split_after:
            self.sock.sendall(data[:split_after])
            time.sleep(0.3)  # the device sees a readable socket and half a record
            data = data[split_after:]
        self.sock.sendall(data)

    def _receive(self):
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError("the device closed the connection")
        self.incoming.write(chunk)

    def send(self, data, split_after=None):
        self.tls.write(data.encode() if isinstance(data, str) else data)
        self._flush(split_after)

    def read_until(self, end):
        while end not in self.buffer:
            try:
                self.buffer += self.tls.read(4096)
            except ssl.SSLWantReadError:
                self._receive()
        head, self.buffer = self.buffer.split(end, 1)
        return head + end

    def read_frame(self):
        """The payload of the device's next frame."""
        while True:
            payload = self._split_frame()
            if payload is not None:
                return payload
            try:
                self.buffer += self.tls.read(4096)
            except ssl.SSLWantReadError:
                self._receive()

    def _split_frame(self):
        frame = split_frame(self.buffer)
        if frame is None:
            return None
        _, payload, self.buffer = frame
        return payload

    def close(self):
        self.sock.close()
