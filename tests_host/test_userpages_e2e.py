"""End-to-end: the user's own pages, files in <state-dir>/pages/ served at /<name> by the
simulator (transport/userpages.py; docs/PROTOCOL.md "Your own pages", SECURITY.md).
"""

import gzip
import json
import urllib.parse

import pytest

from simclient import http_get, split_answer

PASSWORD = "pages behind a password"
PAGE = b"<!doctype html><title>mine</title><p>my page</p>\n"
SCRIPT = b"console.log('mine');\n"


def pages_sim(start_sim, tmp_path, files, password=None):
    state = tmp_path / "flash"
    (state / "pages").mkdir(parents=True)
    for name, data in files.items():
        path = state / "pages" / name
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
    if password:
        (state / "config.json").write_text(json.dumps({"password": password}))
    return start_sim(state_dir=state)


def get(sim, path, **headers):
    return http_get(sim.http_port, path, headers)


@pytest.fixture
def sim(start_sim, tmp_path):
    return pages_sim(start_sim, tmp_path, {
        "mine.html": PAGE, "app.js": SCRIPT, "app.js.gz": gzip.compress(SCRIPT),
        "only.css.gz": gzip.compress(b"p{}"), "notes.txt": b"not a page type",
        "index.html": b"<p>the user's index.html</p>", "sub.html": None,
        "big.json": b"[" + b"0," * 40000 + b"0]"})


def test_a_page_is_served_with_its_type_and_length(sim):
    status, headers, body = get(sim, "/mine.html")
    assert (status, body) == (200, PAGE)
    assert headers["content-type"] == "text/html"
    assert headers["content-length"] == str(len(PAGE))
    assert "content-encoding" not in headers


def test_the_gz_twin_is_preferred_when_the_client_takes_gzip(sim):
    status, headers, body = get(sim, "/app.js", **{"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "text/javascript"
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(body) and gzip.decompress(body) == SCRIPT
    # Without gzip: the plain file; with only the .gz there, 406.
    status, headers, body = get(sim, "/app.js")
    assert (status, body) == (200, SCRIPT) and "content-encoding" not in headers
    assert get(sim, "/only.css")[0] == 406
    status, headers, body = get(sim, "/only.css", **{"Accept-Encoding": "gzip"})
    assert status == 200 and gzip.decompress(body) == b"p{}"
    assert headers["content-type"] == "text/css"


def test_head_answers_the_head_only(sim):
    answer = sim.http(b"HEAD /mine.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    status, headers, body = split_answer(answer)
    assert status == 200 and headers["content-length"] == str(len(PAGE)) and body == b""


@pytest.mark.parametrize("path", [
    "/notes.txt",  # not a page type
    "/app.js.gz",  # the twin itself
    "/sub.html",  # a folder
    "/Mine.html", "/MINE.HTML",  # names are lower case
    "/.mine.html", "/..", "/../config.json", "/%2e%2e/config.json", "/pages/mine.html",
    "/a%20b.html", "/missing.html", "/config.json", "/settings.json", "/board.json",
    "/" + "a" * 70 + ".html",
])
def test_what_is_not_a_page_is_404(sim, path):
    answer = sim.http(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    assert answer.startswith(b"HTTP/1.0 404"), (path, answer[:80])


def test_a_page_over_the_size_cap_is_refused(sim):
    status, _, body = get(sim, "/big.json")
    assert status == 403 and b"UserPages.max_page_bytes" in body


def test_the_built_in_page_and_the_api_cannot_be_shadowed(sim):
    # The user's index.html is at /index.html; / is still the built-in page.
    status, headers, body = get(sim, "/", **{"Accept-Encoding": "gzip"})
    assert status == 200 and b"pinsock" in gzip.decompress(body)
    assert get(sim, "/index.html")[2] == b"<p>the user's index.html</p>"
    assert json.loads(get(sim, "/board")[2])["board"] == "UNIX_SIM"
    assert get(sim, "/action.cgi?v3")[2] == b'{"v":{"3":"1"}}'


def test_another_host_gets_421(sim):
    answer = sim.http(b"GET /mine.html HTTP/1.0\r\nHost: evil.example\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 421")


def test_without_a_pages_folder_everything_is_404_as_before(start_sim, tmp_path):
    sim = start_sim(state_dir=tmp_path / "empty")
    assert get(sim, "/mine.html")[0] == 404
    assert get(sim, "/nope")[0] == 404


def test_pages_are_behind_the_password(start_sim, tmp_path):
    sim = pages_sim(start_sim, tmp_path, {"mine.html": PAGE, "app.js": SCRIPT}, PASSWORD)
    status, headers, _ = get(sim, "/mine.html")
    assert status == 303 and headers["location"] == "/login"  # a browser goes to log in
    assert get(sim, "/app.js")[0] == 401
    assert get(sim, "/missing.js")[0] == 401  # nothing said about what is there
    body = urllib.parse.urlencode({"password": PASSWORD}).encode()
    answer = sim.http(b"POST /login HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body), timeout=30)
    status, headers, _ = split_answer(answer)
    assert status == 303
    cookie = headers["set-cookie"].split(";")[0]
    assert get(sim, "/mine.html", Cookie=cookie)[1:] == (
        {"content-type": "text/html", "cache-control": "max-age=0",
         "content-length": str(len(PAGE))}, PAGE)
    assert get(sim, "/missing.js", Cookie=cookie)[0] == 404
