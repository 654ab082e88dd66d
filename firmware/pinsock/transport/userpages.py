# Transport: the user's own pages. A file <name> in the pages folder of the flash (the
# simulator: <state-dir>/pages/; a board: pages/, boot/startup.py pages_dir) is served at
# /<name>, from the device's own origin, so a page's WebSocket passes the cross-site
# check (routes.cross_site) like the built-in page's.
#
#   GET /<name>   200 with the type of its extension (TYPES), Content-Length, and
#                 <name>.gz instead, Content-Encoding: gzip, when that is there and the
#                 client takes gzip; 404 for a name that is not a page's; 406 when
#                 there is only the .gz and the client does not take gzip; 403 for
#                 a file over UserPages.max_page_bytes
#
# routes.make_app sends here only what no route has, after the Host check and the
# login, so a page can never stand in for the built-in page or an API path; and a name
# is one path segment of [a-z0-9._-], not starting with ".", so nothing outside the
# folder can be named. docs/SECURITY.md, "Your own pages".
#
# Loaded the first time a request finds the folder (routes.make_app), and the file
# goes out through write_response's one buffer: a page costs no more heap than the
# built-in one, however big.
from os import stat

from .http import Response, text_response

# Extension -> Content-Type. Any other extension is not served (404), so a stray file
# in the folder (a backup, a .gz twin itself) is never given out.
TYPES = {
    "html": "text/html",
    "htm": "text/html",
    "js": "text/javascript",
    "css": "text/css",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
}
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-"
_REGULAR_FILE = 0x8000  # stat's S_IFREG


class UserPages:
    #: Largest page file served, in bytes (its .gz twin is checked alone). A bigger
    #: one is answered 403: served in 256-byte pieces it costs no more heap, but it
    #: holds a connection (and its slot, http.Listener) for as long as it takes, within
    #: App.request_timeout_ms. tools/deploy.py refuses to copy one.
    max_page_bytes = 65536
    #: Longest page name, in characters.
    max_name_len = 64


def is_page_name(name):
    """True for a name a page may have: 1 to max_name_len of [a-z0-9._-], not starting
    with "." (no "..", no hidden file), with an extension of TYPES."""
    if not 0 < len(name) <= UserPages.max_name_len or name[0] == ".":
        return False
    for ch in name:
        if ch not in _NAME_CHARS:
            return False
    dot = name.rfind(".")
    return dot > 0 and name[dot + 1 :] in TYPES


def file_size(path):
    """The size of the regular file at `path`; -1 when there is none."""
    try:
        st = stat(path)
    except OSError:
        return -1
    return st[6] if st[0] & _REGULAR_FILE else -1


def serve(request, folder):
    """The answer to a GET (or HEAD) of /<name> from the pages in `folder`."""
    name = request.path[1:]
    if not is_page_name(name):
        return text_response("Not found\n", 404, "Not Found")
    path = folder + "/" + name
    headers = {"Content-Type": TYPES[name[name.rfind(".") + 1 :]], "Cache-Control": "max-age=0"}
    size = file_size(path + ".gz")
    if size >= 0:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            path += ".gz"
        else:
            size = file_size(path)
            if size < 0:
                return text_response("Not acceptable: this page is stored gzip-compressed"
                                     " only; send Accept-Encoding: gzip\n", 406,
                                     "Not Acceptable")
    else:
        size = file_size(path)
        if size < 0:
            return text_response("Not found\n", 404, "Not Found")
    if size > UserPages.max_page_bytes:
        return text_response("Forbidden: a page over %d bytes is not served"
                             " (UserPages.max_page_bytes)\n" % UserPages.max_page_bytes,
                             403, "Forbidden")
    headers["Content-Length"] = str(size)
    return Response(open(path, "rb"), 200, headers)
