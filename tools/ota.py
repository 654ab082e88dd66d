"""Update boards over the network with a bundle (tools/bundle.py; docs/OTA.md).

    python tools/ota.py <device-url> [<device-url> ...] <bundle> [--password-file F]

For each device in turn: log in as tools/console.py does (the password from
--password-file, PINSOCK_PASSWORD or the terminal), read the running version (`sv`),
stream the bundle to POST /ota with its progress, then wait for the device to restart
into the new version and confirm it (`so`: off trial, within --confirm-timeout). It
stops at the first device that refuses the bundle, rolls it back or does not confirm,
and prints per device the old version, the new one and the time taken.

A device URL is http://host[:port] (or https://, ws://, wss://; the path is ignored).
Exit status: 0 every device updated; 1 one failed (said why); 2 bad arguments.
"""

import argparse
import http.client
import json
import ssl
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle as bundle_format  # noqa: E402
from console import ConsoleError, alert_text, read_password  # noqa: E402

SESSION_COOKIE = "pinsock_session"
PIECE_BYTES = 4096
CONFIRM_TIMEOUT_S = 120
POLL_S = 0.3


class Failed(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status  # the device's HTTP status, when it refused


class Device:
    """One device's HTTP side: login, commands, the upload."""

    def __init__(self, url, password, timeout=10, insecure=False):
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        self.tls = parts.scheme in ("https", "wss")
        self.netloc = parts.netloc
        self.url = "%s://%s" % ("https" if self.tls else "http", self.netloc)
        self.password = password
        self.timeout = timeout
        self.context = ssl._create_unverified_context() if insecure else None
        self.cookie = None

    def connection(self):
        if self.tls:
            return http.client.HTTPSConnection(self.netloc, timeout=self.timeout,
                                               context=self.context)
        return http.client.HTTPConnection(self.netloc, timeout=self.timeout)

    def headers(self):
        return {"Cookie": "%s=%s" % (SESSION_COOKIE, self.cookie)} if self.cookie else {}

    def request(self, method, path, body=None, headers=None):
        conn = self.connection()
        try:
            conn.request(method, path, body, dict(self.headers(), **(headers or {})))
            response = conn.getresponse()
            return response.status, response.read(), response
        finally:
            conn.close()

    def log_in(self):
        if self.password is None:
            return
        status, body, response = self.request(
            "POST", "/login", urllib.parse.urlencode({"password": self.password}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        if status == 401:
            raise Failed("wrong password")
        if status == 404:  # no password on the device: nothing to log in to
            self.password = None
            return
        if status != 303:
            raise Failed("login: HTTP %d %s" % (status, alert_text(body)))
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, rest = header.partition("=")
            if name.strip() == SESSION_COOKIE:
                self.cookie = rest.split(";", 1)[0]
                return
        raise Failed("login: no session cookie")

    def ask(self, command):
        """The JSON reply to a command over GET /action.cgi, logging in when asked to."""
        for attempt in (1, 2):
            status, body, _ = self.request("GET", "/action.cgi?" + command)
            if status == 401 and attempt == 1:
                self.log_in()
                continue
            if status != 200:
                raise Failed("%s: HTTP %d %s" % (command, status, body[:200]))
            return json.loads(body)
        raise Failed("%s: login required" % command)

    def version(self):
        return self.ask("sv")["s"]["v"]

    def upload(self, data, progress=None, headers=None):
        """POST /ota with the bundle; returns the device's JSON answer (raises Failed
        with the device's reason when it refuses). `headers`: more of them (tests)."""
        conn = self.connection()
        try:
            conn.putrequest("POST", "/ota")
            for name, value in dict(self.headers(), **{
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(data))}, **(headers or {})).items():
                conn.putheader(name, value)
            conn.endheaders()
            sent = 0
            try:
                while sent < len(data):
                    conn.send(data[sent:sent + PIECE_BYTES])
                    sent += min(PIECE_BYTES, len(data) - sent)
                    if progress:
                        progress(sent, len(data))
            except OSError:  # refused part way: its answer says why
                pass
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Failed("upload: %s" % exc)
        finally:
            conn.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"error": body.decode("utf-8", "replace")[:200]}
        if response.status != 200:
            raise Failed("refused (HTTP %d): %s" % (response.status, answer.get("error")),
                         response.status)
        return answer

    def uptime(self):
        return int(self.ask("st")["s"]["t"])

    def wait_confirmed(self, new_version, timeout, uptime):
        """Wait for the restart, the try and the confirmation of new_version (`uptime`:
        the device's before the upload). Raises Failed when the device comes back
        rolled back, or not in time."""
        deadline = time.monotonic() + timeout
        seen_down = False
        last = "no answer"
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            try:
                reply = self.ask("s")["s"]  # logs in again after the restart
                ota = self.ask("so")["s"]["o"]
            except (OSError, http.client.HTTPException, ValueError) as exc:
                seen_down = True
                last = "no answer (%s)" % type(exc).__name__
                continue
            version = reply["v"]
            seen_down = seen_down or int(reply["t"]) < uptime
            last = "running %s%s" % (version, ", on trial" if ota["t"] == "1" else "")
            if version == new_version and ota["t"] == "0":
                return
            if seen_down and ota["r"] and version != new_version and ota["t"] == "0":
                raise Failed("rolled back to %s: %s" % (version, ota["r"]))
        raise Failed("not confirmed within %d s (%s)" % (timeout, last))


def update(device, data, new_version, confirm_timeout, out=sys.stdout):
    """Update one device; returns (old version, seconds)."""
    started = time.monotonic()
    device.log_in()
    old = device.version()
    uptime = device.uptime()
    marks = [0]

    def progress(sent, total):
        tenth = sent * 10 // total
        if tenth > marks[0]:
            marks[0] = tenth
            print("%s: %d%% (%d of %d bytes)" % (device.url, tenth * 10, sent, total),
                  file=out, flush=True)

    answer = device.upload(data, progress)
    print("%s: written to slot %s; restarting" % (device.url, answer.get("slot")), file=out,
          flush=True)
    device.wait_confirmed(new_version, confirm_timeout, uptime)
    return old, time.monotonic() - started


def main(argv=None, out=sys.stdout):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", metavar="device-url ... bundle")
    parser.add_argument("--password-file", metavar="FILE")
    parser.add_argument("--confirm-timeout", type=float, default=CONFIRM_TIMEOUT_S,
                        help="seconds to wait for each device to confirm (default %(default)s)")
    parser.add_argument("--insecure", action="store_true",
                        help="https: accept the device's self-signed certificate")
    args = parser.parse_args(argv)
    if len(args.targets) < 2:
        parser.error("give one device URL or more, then the bundle")
    *urls, bundle_path = args.targets
    try:
        data = Path(bundle_path).read_bytes()
        head, files, _ = bundle_format.read_manifest(data)
    except (OSError, ValueError) as exc:
        print("ota: %s: %s" % (bundle_path, exc), file=sys.stderr)
        return 2
    try:
        password = read_password(args.password_file)
    except ConsoleError as exc:
        print("ota: %s" % exc, file=sys.stderr)
        return 2
    print("bundle %s: %s %s, %d files, %d bytes" % (bundle_path, head["board"],
                                                     head["version"], len(files), len(data)),
          file=out)
    results = []
    for url in urls:
        device = Device(url, password or None, insecure=args.insecure)
        try:
            old, seconds = update(device, data, head["version"], args.confirm_timeout, out)
        except (Failed, OSError, http.client.HTTPException) as exc:
            print("%s: FAILED: %s" % (device.url, exc), file=out)
            skipped = urls[len(results) + 1:]
            if skipped:
                print("ota: stopped; not updated: %s" % " ".join(skipped), file=out)
            return 1
        results.append((device.url, old, head["version"], seconds))
        print("%s: %s -> %s in %.1f s" % results[-1], file=out, flush=True)
    print("ota: %d device%s updated" % (len(results), "" if len(results) == 1 else "s"),
          file=out)
    for row in results:
        print("  %-28s %-10s -> %-10s %6.1f s" % row, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
