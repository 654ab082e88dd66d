"""What pinsock relies on of microdot beyond its public API, pinned.

firmware/pinsock/transport/http.py is the only module that imports microdot. It reads
requests, dispatches them and writes answers itself, and lets microdot register the
routes and hooks and find the route (find_route), as microdot's own wsgi.py and
asgi.py build on it; for that it needs more than microdot documents.
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
    assert md.Response("text").body == b"text"
    assert isinstance(md.Response.already_handled, md.Response)


class Spy(http.LeanRequest):
    """A LeanRequest that writes down every attribute microdot reads of it."""

    def __getattribute__(self, name):
        if not name.startswith("__"):
            object.__getattribute__(self, "read").add(name)
        return object.__getattribute__(self, name)


def spy(method, url):
    request = Spy(method, url, md.NoCaseDict({"Host": "x"}), (None, None), "http")
    object.__setattr__(request, "read", set())
    return request


def test_find_route_reads_only_what_a_lean_request_has():
    # http.App.dispatch_request is pinsock's own; microdot still finds the route.
    app = http.App()

    @app.get("/x")
    async def x(request):
        return "x"

    for method, url, found in (("GET", "/x", x), ("HEAD", "/x", x), ("POST", "/x", 405),
                               ("GET", "/y", 404)):
        request = spy(method, url)
        assert app.find_route(request)[0] == found, (method, url)
        read = object.__getattribute__(request, "read") - {"read"}
        assert read <= {"method", "path", "url_args"}, (method, url, sorted(read))
    options = app.find_route(spy("OPTIONS", "/x"))[0]
    assert options == {"Allow": "GET, HEAD, OPTIONS"}  # default_options_handler


def test_hooks_and_error_handlers_land_where_dispatch_request_looks():
    app = http.App()

    @app.before_request
    async def hook(request):
        return None

    @app.errorhandler(404)
    async def not_found(request):
        return "gone", 404

    assert app.before_request_handlers == [hook] and app.error_handlers == {404: not_found}


def test_http_exception_carries_status_and_reason():
    assert issubclass(md.HTTPException, Exception)
    exc = md.HTTPException(418, "teapot")
    assert (exc.status_code, exc.reason) == (418, "teapot")


def test_dispatch_answers_through_the_routes_and_hooks():
    app = http.App()

    @app.get("/x")
    async def x(request):
        return http.Response("x")

    def answer(method, url, length=0):
        request = http.LeanRequest(method, url, md.NoCaseDict({"Host": "x"}), (None, None),
                                   "http")
        request.content_length = length
        return asyncio.run(app.dispatch_request(request))

    assert answer("GET", "/x").status_code == 200
    head = answer("HEAD", "/x")
    assert head.is_head and head.status_code == 200
    assert answer("POST", "/x").status_code == 405
    assert answer("GET", "/nowhere").status_code == 404
    assert answer("POST", "/x", http.LeanRequest.max_content_length + 1).status_code == 413

    # A plain function as a route or hook is called, as microdot's invoke_handler
    # would; a hook's answer answers in the route's stead.
    @app.get("/plain")
    def plain(request):
        return http.Response("p", 202)

    assert answer("GET", "/plain").status_code == 202
    app.before_request(lambda request: http.Response("hooked", 418)
                       if request.path == "/x" else None)
    assert answer("GET", "/x").status_code == 418
    assert answer("GET", "/plain").status_code == 202


def test_an_unreadable_request_is_answered_400():
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
    used = {"Microdot.__init__", "Microdot.find_route", "Microdot.default_options_handler",
            "Microdot.get", "Microdot.post", "Microdot.before_request",
            "Microdot.errorhandler", "HTTPException",
            "Request._parse_urlencoded", "Request.form", "Request.body", "Request.G",
            "Response.__init__", "NoCaseDict", "urldecode", "MultiDict"}
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
