# The login on HTTP, when config.json sets a password: the login page, POST /login and
# POST /logout, the session cookie, and the answer to a request without a session.
# Sessions and the throttle are logic/sessions.py. routes.make_app imports this module
# only when there is a password, so a device without one spends no RAM on it.
#
# The password is only ever read from the POST body, and never printed.
import asyncio

from ..logic.sessions import BUSY, RIGHT, LoginThrottle, Sessions, now_s
from .http import App, Response, already_handled, take_connection, write_response

SESSION_COOKIE = "pinsock_session"
LOCKED = None  # the password when config.json was unreadable (boot/config_json.py)
OPEN_PATHS = ("/login", "/logout")  # the only routes open without a session
# What the login page says then, on a board; boot/config_json.py makes each board's
# (the board config's "config_fix").
LOCKED_MESSAGE = "config.json could not be read; fix it over USB with make deploy."
# The page's look in a few hundred bytes: its colours (light and dark), a card; no
# favicon to ask for (a 404).
_HEAD = (b'<!doctype html><meta charset="utf-8"><meta name="viewport" content='
         b'"width=device-width"><meta name="color-scheme" content="light dark">'
         b'<link rel="icon" href="data:,"><title>pinsock: log in</title><style>'
         b'body{font:16px system-ui,sans-serif;margin:0;min-height:90vh;display:grid;'
         b'place-items:center;background:#8881}main,form{display:grid;gap:.7em}'
         b'main{width:min(20em,90vw);padding:1.4em;border:1px solid #8886;'
         b'border-radius:.6em}h1{margin:0;font-size:1.3em}p{margin:0;color:#d33}'
         b'p:empty{display:none}input,button{font:inherit;padding:.5em;'
         b'border-radius:.4em;border:1px solid #8888}button{background:#0b63ce;'
         b'color:#fff}</style><main><h1>pinsock</h1><p role="alert">')
_TAIL = (b'</p><form method="post" action="/login"><label for="p">Password</label><input'
         b' type="password" name="password" id="p" autocomplete="current-password" '
         b'autofocus required><button>Log in</button></form></main>\n')
_REQUIRED = b'{"error":"login required: POST /login with password=..."}\n'
_REQUIRED_HEADERS = {"Content-Type": "application/json",
                     "WWW-Authenticate": 'Cookie realm="pinsock"'}


def page(message, status, reason):
    return Response(_HEAD + message.encode() + _TAIL, status,
                    {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
                    reason=reason)


def see_other(location):
    return Response(b"", 303, {"Location": location}, reason="See Other")


def login_required(request):
    """The answer to a request without a valid session (to a WebSocket handshake, too:
    http.write_response writes that one as HTTP/1.1)."""
    path = request.path
    # A browser opening the page, or one of the user's pages, goes to the login page.
    if path == "/" or path.endswith(".html") or path.endswith(".htm"):
        return see_other("/login")
    return Response(_REQUIRED, 401, _REQUIRED_HEADERS, reason="Unauthorized")


def session_cookie(scheme, value, extra=""):
    # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it;
    # Secure over TLS. No Max-Age: it ends with the browser session (or idle_s).
    secure = "; Secure" if scheme == "https" else ""
    return "%s=%s; Path=/; HttpOnly; SameSite=Strict%s%s" % (SESSION_COOKIE, value, extra,
                                                              secure)


def form_password(request):
    """The password field of a form-urlencoded body, as bytes; None when there is none."""
    try:
        form = request.form
        value = form.get("password") if form is not None else None
    except Exception:  # a bad %-escape or not UTF-8; its message holds body bytes: not logged
        return None
    return None if value is None else value.encode()


def add_routes(app, password, locked_message=None):
    """Add GET /login, POST /login and POST /logout to `app`.

    `password` is config.json's; None (LOCKED) when it was unreadable, and then
    `locked_message` (boot/config_json.py: how to fix it on this board) is what the
    login page says, LOCKED_MESSAGE when not given. Returns the
    gate for before_request: gate(request) is None when the request may go on, else
    the answer to send instead."""
    sessions = Sessions()
    throttle = LoginThrottle(password)
    locked_message = locked_message or LOCKED_MESSAGE
    # A login's answer comes within this many ms: its turn, a wrong one's delay, and
    # the request deadline again for writing the answer.
    login_deadline_ms = (throttle.worst_wait_ms() + throttle.max_delay_ms
                         + App.request_timeout_ms)

    def has_session(request):
        return sessions.valid(request.cookies.get(SESSION_COOKIE), now_s())

    def gate(request):
        if request.path in OPEN_PATHS or has_session(request):
            return None
        return login_required(request)

    @app.get("/login")
    async def login_form(request):
        if has_session(request):
            return see_other("/")
        return page(locked_message if password is LOCKED else "", 200, "OK")

    @app.post("/login")
    async def log_in(request):
        if password is LOCKED:
            return page(locked_message, 403, "Forbidden")
        guess = form_password(request)
        if guess is None:
            return page("Send the password as the form field password"
                        " (application/x-www-form-urlencoded).", 400, "Bad Request")
        if throttle.busy():
            return busy_page()
        # The check waits its turn for up to LoginThrottle.worst_wait_ms() (16 s), and
        # a wrong one's answer for the delay after it: longer than the deadline of an
        # HTTP exchange (App.request_timeout_ms), which would drop the answer.
        # The request has been read whole, so the connection is handed to a task of
        # its own (as a WebSocket session is), bounded by login_deadline_ms.
        stream = take_connection(request)
        asyncio.create_task(answer(stream, guess, request.scheme))
        return already_handled

    async def answer(stream, guess, scheme):
        try:
            await asyncio.wait_for(respond(stream, guess, scheme), login_deadline_ms / 1000)
        except Exception:  # the peer went away, or does not read
            pass
        stream.close()

    async def respond(stream, guess, scheme):
        result = await throttle.attempt(guess)
        if result == RIGHT:
            response = see_other("/")
            response.headers["Set-Cookie"] = session_cookie(scheme, sessions.open(now_s()))
            print("login: session opened")
        elif result == BUSY:
            response = busy_page()
        else:
            print("login: wrong password, %d in a row" % throttle.failures)
            response = page("Wrong password.", 401, "Unauthorized")
        await write_response(response, stream)

    def busy_page():
        response = page("Too many logins at once; try again in a few seconds.", 429,
                        "Too Many Requests")
        response.headers["Retry-After"] = str(throttle.max_delay_ms // 1000)
        return response

    @app.post("/logout")
    async def log_out(request):
        sessions.close(request.cookies.get(SESSION_COOKIE))
        response = see_other("/login")
        response.headers["Set-Cookie"] = session_cookie(request.scheme, "", "; Max-Age=0")
        return response

    return gate
