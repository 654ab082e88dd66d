"""Command console for a pinsock device: send commands over its WebSocket or HTTP.

    python tools/console.py ws://127.0.0.1:8080/ws v3 d9=1 v9=1   one-shot
    python tools/console.py ws://127.0.0.1:8080/ws                interactive

One-shot: sends each command in turn, prints each reply as one line of JSON and exits
0 once all are answered (error replies included); switch reports and updates are left
out. It takes nobody's session: a device serves max_clients WebSockets (1 by default)
and a newcomer replaces the oldest, so a console on the WebSocket would push the page
off. Commands that need no connection go one by one as `GET /action.cgi?<command>`
to the URL's host and port, which is no WebSocket client (not counted in `sc`). Only
when a command is a trigger (`t`, `tu`, `tuv<h>`, read or write: triggers belong to a
connection) does it take a WebSocket, for the whole run; --websocket always does.
Interactive: opens the WebSocket (a session: it replaces the oldest client when the
device is full), reads commands from standard input, one per line, and prints every
message the device sends (replies, updates, switch reports) as one line of JSON, until
end of input or Ctrl-C. The commands are in docs/PROTOCOL.md. Options may come
anywhere, before or after the URL and the commands.

A device with a password (config.json) answers the WebSocket with 401 until you log
in. The console then logs in with the password from --password-file (its first line),
else from the environment variable PINSOCK_PASSWORD, else by asking on the terminal;
never from the command line, where `ps` would show it. It logs out when it ends, so
the device's few session slots are not used up by scripts.

A wss:// device with a self-signed certificate (docs/SECURITY.md): --cafile
cert.der (or .pem) trusts that certificate alone, checking the host name is in it;
--insecure checks nothing (anyone in the middle could read along).

Exit status: 0 done; 1 cannot connect, wrong password, the device closed the
connection, or a reply did not come within --timeout; 2 bad arguments.
"""

import argparse
import getpass
import html
import http.client
import json
import os
import queue
import ssl
import sys
import threading
import time
import urllib.parse

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import connect

# Top-level keys of messages the device sends without being asked (a report also
# carries "seq"); anything else is the reply to the oldest command not yet answered.
UNSOLICITED = ("u", "dipSwitches")
SESSION_COOKIE = "pinsock_session"
PASSWORD_ENV = "PINSOCK_PASSWORD"


class ConsoleError(Exception):
    pass


def is_reply(text):
    try:
        message = json.loads(text)
    except ValueError:
        return True  # not ours to judge: show it as the reply it answers
    return not (isinstance(message, dict) and any(key in message for key in UNSOLICITED))


class LoginRequired(Exception):
    pass


def needs_websocket(commands):
    """Whether one-shot `commands` need a connection: a trigger command (t, tu, tuv<h>)
    holds or reads state that lives as long as its WebSocket; over /action.cgi it would
    read all off and end with the request (docs/PROTOCOL.md). Every other command is
    answered the same over HTTP."""
    return any(command.startswith("t") for command in commands)


def with_path(url, path):
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def refused_handshake(url, status, location=None):
    """What to tell the user when the device answers a WebSocket handshake with
    `status`: a hint for the usual mistakes (the page's URL, a wrong path, TLS)."""
    path = urllib.parse.urlsplit(url).path or "/"
    if status == 200:
        return ("%s is not the WebSocket (HTTP 200: a page answered); add /ws: %s"
                % (url, with_path(url, "/ws")))
    if status == 404:
        return "no WebSocket at %s (HTTP 404); the device's is /ws: %s" % (
            path, with_path(url, "/ws"))
    if status in (301, 302, 303, 307, 308) and location:
        return ("the device redirects to %s (HTTP %d): it serves TLS, use wss:// and its"
                " HTTPS port" % (location, status))
    return "the device refused the WebSocket: HTTP %d" % status


def open_connection(url, timeout, cookie=None, context=None):
    headers = {"Cookie": "%s=%s" % (SESSION_COOKIE, cookie)} if cookie else None
    tls = {"ssl": context} if context else {}  # websockets refuses ssl= for ws://
    try:
        # No compression: the device does not offer it, and one less round of
        # negotiation to go wrong. max_size bounds what a confused peer can send us.
        return connect(url, open_timeout=timeout, close_timeout=1, compression=None,
                       max_size=2**16, additional_headers=headers, **tls)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401 and not cookie:
            raise LoginRequired()
        raise ConsoleError("cannot connect to %s: %s" % (
            url, refused_handshake(url, status, exc.response.headers.get("Location"))))
    except InvalidURI as exc:
        raise ConsoleError("not a WebSocket URL: %s (%s)" % (url, exc))
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise ConsoleError("cannot connect to %s: %s" % (url, describe(exc)))


def http_connection(url, timeout, context=None):
    """An HTTP connection to the device behind a ws:// or wss:// URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "wss":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout, context=context)
    return http.client.HTTPConnection(parts.netloc, timeout=timeout)


def log_in(url, password, timeout, context=None):
    """POST /login; returns the session token. The password goes only in the body."""
    body = urllib.parse.urlencode({"password": password})
    conn = http_connection(url, timeout, context)
    try:
        conn.request("POST", "/login", body,
                     {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ConsoleError("cannot log in to %s: %s" % (url, describe(exc)))
    finally:
        conn.close()
    if response.status == 401:
        raise ConsoleError("wrong password")
    if response.status == 403:
        # The device's login page says why and how to fix it where it runs.
        raise ConsoleError("the device refuses every login: %s"
                           % (alert_text(body) or "HTTP 403"))
    if response.status == 429:
        raise ConsoleError("too many logins at once; try again in a few seconds")
    for header in response.headers.get_all("Set-Cookie") or ():
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    raise ConsoleError("login failed: HTTP %d without a session" % response.status)


def alert_text(page):
    """The message of the device's login page (its role="alert" paragraph), or ""."""
    text = page.decode("utf-8", "replace")
    start = text.find('role="alert">')
    end = text.find("</p>", start)
    if not 0 <= start < end:
        return ""
    return html.unescape(text[start + len('role="alert">'):end]).strip()


def log_out(url, cookie, timeout, context=None):
    """POST /logout, best effort: the session would end by itself anyway."""
    conn = http_connection(url, timeout, context)
    try:
        conn.request("POST", "/logout", "", {"Cookie": "%s=%s" % (SESSION_COOKIE, cookie)})
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


def tls_context(cafile, insecure):
    """The TLS settings for wss://: trust `cafile` (DER or PEM), or check nothing."""
    context = ssl.create_default_context()
    if cafile:
        try:
            with open(cafile, "rb") as f:
                data = f.read()
            context.load_verify_locations(cadata=data.decode() if b"-----BEGIN" in data
                                          else data)
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise ConsoleError("cannot use --cafile %s: %s" % (cafile, exc))
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def read_password(password_file):
    """The password: from the file, the environment, or the terminal."""
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as exc:
            raise ConsoleError("cannot read the password file: %s" % exc)
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    try:
        tty = open("/dev/tty")
        tty.close()
    except OSError:
        raise ConsoleError("the device wants a password: give --password-file or set %s"
                           % PASSWORD_ENV)
    try:
        return getpass.getpass("password for the device: ")
    except EOFError:
        raise ConsoleError("no password given")


def describe(exc):
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        text = "connection refused (is the device running, and is the port right?)"
    return text


def closed_message(ws):
    code = ws.close_code
    if code is None or code == 1006:
        return "connection lost"
    reason = (": " + ws.close_reason) if ws.close_reason else ""
    return "device closed the connection (%d%s)" % (code, reason)


def one_shot(ws, commands, timeout, out):
    """Send each command, print its reply. Returns the replies."""
    replies = []
    for command in commands:
        ws.send(command)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                text = ws.recv(timeout=max(left, 0))
            except TimeoutError:
                raise ConsoleError("no reply to %r within %g s" % (command, timeout))
            if is_reply(text):
                break
        print(text, file=out, flush=True)
        replies.append(text)
    return replies


def http_one_shot(url, commands, timeout, out, cookie=None, context=None):
    """Send each command as GET /action.cgi?<command> to the device behind `url`, print
    its reply. Raises LoginRequired when the device wants a session and `cookie` is
    None (before anything is printed: the first command is the first to hear it)."""
    for command in commands:
        # Everything is %-escaped, "=" too: the device decodes the query as one message.
        target = "/action.cgi?" + urllib.parse.quote(command, safe="")
        headers = {"Cookie": "%s=%s" % (SESSION_COOKIE, cookie)} if cookie else {}
        deadline = time.monotonic() + timeout
        while True:
            conn = http_connection(url, timeout, context)
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise ConsoleError("cannot connect to %s: %s" % (url, describe(exc)))
            finally:
                conn.close()
            # 503: the device had no memory for the request just then (Retry-After: 1).
            if response.status != 503 or time.monotonic() + 1 > deadline:
                break
            time.sleep(1)
        kind = response.headers.get("Content-Type", "")
        if response.status in (200, 400) and kind.startswith("application/json"):
            text = body.decode("utf-8", "replace").strip()
            print(text, file=out, flush=True)
            continue
        if response.status == 401:
            if cookie is None:
                raise LoginRequired()
            raise ConsoleError("the device ended the console's session")
        if response.status in (301, 302, 303, 307, 308):
            raise ConsoleError("the device redirects to %s (HTTP %d): it serves TLS, use"
                               " wss:// and its HTTPS port"
                               % (response.headers.get("Location"), response.status))
        first = body.decode("utf-8", "replace").strip().splitlines()[:1]
        raise ConsoleError("HTTP %d %s to %r%s" % (response.status, response.reason, command,
                                                   (": " + first[0][:200]) if first else ""))


def interactive(ws, lines, timeout, out):
    """Send each line of `lines`; print every message the device sends. Ends when the
    input ends and the last command is answered, or when the device hangs up."""
    events = queue.Queue()  # ("line", text) | ("eof",) | ("reply",) | ("closed",)

    def read_input():
        for line in lines:
            events.put(("line", line))
        events.put(("eof",))

    def receive():
        try:
            for text in ws:
                print(text, file=out, flush=True)
                if is_reply(text):
                    events.put(("reply",))
        except ConnectionClosed:
            pass
        events.put(("closed",))

    # Daemon threads: a console blocked on a terminal still ends when the device
    # closes the connection.
    threading.Thread(target=read_input, daemon=True).start()
    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    pending = 0
    deadline = None  # set at end of input: how long the last replies may take
    while deadline is None or pending:
        wait = None if deadline is None else deadline - time.monotonic()
        try:
            event = events.get(timeout=None if wait is None else max(wait, 0))
        except queue.Empty:
            raise ConsoleError("%d command(s) not answered within %g s" % (pending, timeout))
        kind = event[0]
        if kind == "line":
            command = event[1].rstrip("\r\n")
            if command.strip():
                pending += 1
                ws.send(command)
        elif kind == "reply":
            pending = max(0, pending - 1)
        elif kind == "eof":
            deadline = time.monotonic() + timeout
        else:
            receiver.join(1)
            raise ConsoleError(closed_message(ws))


def main(argv=None, stdin=None, out=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="With commands: one-shot (over HTTP, or the WebSocket for triggers)."
               " Without: interactive on the WebSocket, commands from stdin."
               " Options may come anywhere.")
    parser.add_argument("url", help="the device's WebSocket, e.g. ws://192.168.0.2/ws")
    parser.add_argument("commands", nargs="*", help="commands to send, e.g. v3 d9=1 tuv9=3")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for the connection and for each reply")
    parser.add_argument("--websocket", action="store_true",
                        help="one-shot on the WebSocket even without a trigger command"
                             " (a session: it may replace the page)")
    parser.add_argument("--password-file", metavar="FILE",
                        help="where the device's password is (first line), if it has one;"
                             " else $%s, else asked for" % PASSWORD_ENV)
    parser.add_argument("--cafile", metavar="FILE",
                        help="wss://: trust this certificate (the device's own, DER or PEM)")
    parser.add_argument("--insecure", action="store_true",
                        help="wss://: do not check the device's certificate at all")
    # Intermixed: `console.py ws://.../ws --password-file pw v3 sc` as well as options
    # first or last.
    args = parser.parse_intermixed_args(argv)
    stdin = stdin if stdin is not None else sys.stdin
    out = out if out is not None else sys.stdout
    if not args.url.startswith(("ws://", "wss://")):
        parser.error("the URL must start with ws://, e.g. ws://127.0.0.1:8080/ws")
    over_http = bool(args.commands) and not args.websocket and not needs_websocket(
        args.commands)
    cookie = None
    context = None

    def run(cookie):
        if over_http:
            http_one_shot(args.url, args.commands, args.timeout, out, cookie, context)
            return
        ws = open_connection(args.url, args.timeout, cookie, context)
        with ws:
            try:
                if args.commands:
                    one_shot(ws, args.commands, args.timeout, out)
                else:
                    if stdin.isatty():
                        print("connected to %s; type a command per line, Ctrl-D to end"
                              % args.url, file=sys.stderr)
                    interactive(ws, stdin, args.timeout, out)
            except ConnectionClosed:
                raise ConsoleError(closed_message(ws))

    try:
        if args.url.startswith("wss://"):
            context = tls_context(args.cafile, args.insecure)
        try:
            run(None)
        except LoginRequired:
            cookie = log_in(args.url, read_password(args.password_file), args.timeout,
                            context)
            run(cookie)
    except ConsoleError as exc:
        print("console: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if cookie:
            log_out(args.url, cookie, args.timeout, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
