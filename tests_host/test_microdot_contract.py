"""What pinsock relies on of microdot beyond its public API, pinned.

firmware/pinsock/transport/http.py is the only module that imports microdot. It reads
requests and writes answers itself and lets microdot route them (dispatch_request), as
microdot's own wsgi.py and asgi.py do; for that it needs more than microdot documents.
Each test here names one such thing. After an upgrade of the pinned microdot
(requirements.txt), a failure here says what changed and where http.py must follow.
The build compiles the same source for the boards (tools/build.py).
"""

import asyncio
import inspect
import re
from pathlib import Path

import microdot
import microdot.microdot as md
import pytest

import build
from conftest import ROOT
from pinsock.transport import http

PINNED = re.search(r"^microdot==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)


def test_the_installed_microdot_is_the_pinned_one():
    assert microdot.__version__ == PINNED


def test_the_names_http_imports_exist():
    for name in ("Microdot", "Request", "Response"):
        assert hasattr(microdot, name), "microdot no longer exports " + name
    for name in ("NoCaseDict", "urldecode", "MultiDict"):
        assert hasattr(md, name), "microdot.microdot no longer has " + name
    assert md.urldecode("a%20b+c") == "a b c"
    headers = md.NoCaseDict()
    headers["Content-Type"] = "x"
    assert headers.get("content-type") == "x" and "CONTENT-TYPE" in headers


def test_url_map_holds_five_tuples_that_find_route_unpacks():
    # http.App.route appends (methods, pattern, handler, url prefix, sub-application);
    # find_route calls pattern.match(path) and takes None for no match.
    source = inspect.getsource(md.Microdot.find_route)
    assert "for route_methods, route_pattern, route_handler, url_prefix, subapp" in source
    app = http.App()

    @app.get("/x")
    async def x(request):
        return "x"

    (entry,) = app.url_map
    assert len(entry) == 5 and entry[0] == ["GET"] and entry[2] is x
    assert entry[1].match("/x") == {} and entry[1].match("/y") is None


def test_request_internals_lean_request_relies_on():
    # LeanRequest replaces Request.__init__: what it does not set must be a class
    # default, and _parse_urlencoded and G must still be there.
    assert callable(md.Request._parse_urlencoded)
    args = md.Request._parse_urlencoded(None, "a=1&b=%41")
    assert isinstance(args, md.MultiDict) and args["a"] == "1" and args["b"] == "A"
    assert isinstance(md.Request.G(), object)
    assert isinstance(inspect.getattr_static(md.Request, "form"), property)
    assert isinstance(inspect.getattr_static(md.Request, "body"), property)
    assert "self._form" in inspect.getsource(md.Request.form.fget)
    assert "self._body" in inspect.getsource(md.Request.body.fget)


def test_response_internals_write_response_relies_on():
    params = list(inspect.signature(md.Response.__init__).parameters)
    assert params == ["self", "body", "status_code", "headers", "reason"]
    response = md.Response(b"x", 201, {"A": "b"}, reason="Made")
    assert (response.body, response.status_code, response.reason) == (b"x", 201, "Made")
    assert response.headers["a"] == "b" and response.is_head is False
    assert isinstance(md.Response.already_handled, md.Response)
    sent = md.Response.send_file(__file__, 200, "text/plain", max_age=0)
    assert hasattr(sent.body, "readinto") and sent.headers["Cache-Control"] == "max-age=0"
    sent.body.close()


class Spy(http.LeanRequest):
    """A LeanRequest that writes down every attribute microdot reads of it."""

    def __getattribute__(self, name):
        if not name.startswith("__"):
            object.__getattribute__(self, "read").add(name)
        return object.__getattribute__(self, name)


def dispatch(app, method, url, body_length=0):
    request = Spy(method, url, md.NoCaseDict({"Host": "x"}), (None, None), "http")
    object.__setattr__(request, "read", set())
    request.content_length = body_length
    response = asyncio.run(app.dispatch_request(request))
    return response, object.__getattribute__(request, "read")


# What dispatch_request reads of a request, by the kind of request. A new name here
# means microdot reads an attribute LeanRequest may not set (it only sets what a
# request has; see http.LeanRequest).
READS = {"routed": {"after_request_handlers", "content_length", "g", "max_content_length",
                    "method", "path", "subapp", "url_args"},
         "not found": {"content_length", "g", "max_content_length", "method", "path",
                       "subapp", "url_args"},
         "too large": {"content_length", "g", "max_content_length", "method", "subapp"}}


def test_what_dispatch_request_reads_of_a_request():
    app = http.App()

    @app.before_request
    async def check(request):
        return None

    @app.get("/x")
    async def x(request):
        return http.Response("x")

    cases = {"routed": ("GET", "/x", 0), "not found": ("GET", "/nowhere", 0),
             "too large": ("POST", "/x", http.LeanRequest.max_content_length + 1)}
    for kind, (method, url, length) in cases.items():
        response, read = dispatch(app, method, url, length)
        assert read - {"read"} == READS[kind], (kind, sorted(read - {"read"}))
    head, _ = dispatch(app, "HEAD", "/x")
    assert head.is_head and head.status_code == 200
    wrong, _ = dispatch(app, "POST", "/x")
    assert wrong.status_code == 405


def test_dispatch_request_answers_an_unreadable_request_with_400():
    response = asyncio.run(http.App().dispatch_request(None))
    assert response.status_code == 400


def test_what_the_build_leaves_out_of_microdot_still_exists():
    # tools/build.py removes these from microdot's source for the .mpy build; a name
    # that is gone means the list is stale (and what replaced it may be needed).
    package = Path(md.__file__).parent
    for module, names in build.MICRODOT_UNUSED.items():
        source = (package / module).read_text()
        for name in names:
            leaf = name.rsplit(".", 1)[-1]
            assert re.search(r"\b%s\b" % re.escape(leaf), source), (
                "%s: %s is no longer in microdot" % (module, name))


def test_nothing_the_firmware_calls_is_left_out_of_the_build():
    used = {"Microdot.dispatch_request", "Microdot.find_route", "Microdot.error_response",
            "Microdot.get_request_handlers", "Microdot.get",
            "Microdot.post", "Microdot.before_request", "Microdot.errorhandler",
            "Request._parse_urlencoded", "Request.form", "Request.body", "Request.G",
            "Response.__init__", "Response.send_file", "NoCaseDict", "urldecode",
            "MultiDict"}
    assert not used & set(build.MICRODOT_UNUSED["microdot.py"])


@pytest.mark.parametrize("path", ["transport/http.py"])
def test_only_the_adapter_imports_microdot(path):
    firmware = ROOT / "firmware"
    importers = sorted(str(p.relative_to(firmware)) for p in firmware.rglob("*.py")
                       if re.search(r"^\s*(from|import) microdot", p.read_text(), re.M))
    boards = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "boards").rglob("*.py")
                    if p.name != "microdot_manifest.py"
                    and re.search(r"^\s*(from|import) microdot", p.read_text(), re.M))
    assert importers == ["pinsock/" + path] and boards == []


def test_no_module_outside_the_websocket_transport_imports_wsframe():
    firmware = ROOT / "firmware" / "pinsock"
    importers = sorted(str(p.relative_to(firmware)) for p in firmware.rglob("*.py")
                       if re.search(r"\bwsframe\b", p.read_text())
                       and not p.name == "wsframe.py")
    assert importers == ["transport/hub.py", "transport/websocket.py"]
