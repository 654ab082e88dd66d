# Updates over the network: POST /ota takes a bundle (tools/bundle.py has the format;
# docs/OTA.md the whole story) into the slot that does not run, then switches the next
# boot to it and restarts. Imported by routes.py for an upload and forgotten after it:
# a board that loads .mpy files would otherwise keep this bytecode in its heap.
#
# In this order, and nothing is written to the slot before the first four pass:
#   1. the head and the manifest, streamed to ota.manifest in the root, HMAC'd on the way
#   2. board, sys.implementation._mpy, then the HMAC (key from config.json's password)
#   3. the file system replaces a file by rename atomically (not FAT), and has room
#   4. the slot emptied, each file streamed into it through one buffer, hashed as it is
#      written; then read back and hashed again
#   5. ota.json replaced by one rename: the next boot tries the new slot; a restart
# Any refusal is answered at once (JSON {"error": ...}); the rest of the body is read
# away so that the client gets the answer, and the running version goes on serving.
# The upload runs in one task, with one more that ends it at its deadline.
import asyncio
import json
import os
import sys
from binascii import hexlify
from hashlib import sha256

from .. import otastate
from ..compat import forget_module
from .http import Response, already_handled, take_connection, write_response

#: Bytes read and written at a time: the upload's one buffer.
piece_bytes = 512
#: Longest manifest a bundle may have (bytes; a line per file, ~100 bytes each).
max_manifest_bytes = 16384
#: An upload must be in whole within this many ms (head to last byte).
upload_timeout_ms = 120000
#: Time between the answer to an upload and the restart (ms).
restart_delay_ms = 1000
#: Bytes the flash must keep free beyond the new version (board config
#: ota_reserve_bytes): settings.json and the state are saved there later.
reserve_bytes = 16384

MAGIC = b"pinsock-bundle 1 "
_HEAD_BYTES = 26  # MAGIC, 8 digits, newline
_MANIFEST = "ota.manifest"  # in the root while an upload runs; then in its slot
_KEY_PREFIX = b"pinsock-ota\n"
_NOT_ATOMIC = ("this file system cannot replace a file by rename atomically (FAT): an"
               " update there could leave half an app; use littlefs")
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./"
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 409: "Conflict",
            413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
            507: "Insufficient Storage"}


class Refused(Exception):
    def __init__(self, status, message):
        self.status = status
        self.message = message


def answer(status, data):
    """The JSON answer: a refusal before the upload starts (the HTTP exchange writes
    it), or the upload's own."""
    return Response(json.dumps(data), status, {"Content-Type": "application/json",
                                               "Cache-Control": "no-store"},
                    reason=_REASONS[status])


def hmac_key(password):
    return sha256(_KEY_PREFIX + password.encode()).digest()


class Hmac:
    """HMAC-SHA256 (RFC 2104), fed piece by piece: MicroPython has hashlib's sha256
    but no hmac module."""

    def __init__(self, key):
        key = key + bytes(64 - len(key))  # a key of 32 bytes: padded to the block
        self.outer = bytes(b ^ 0x5C for b in key)
        self.inner = sha256(bytes(b ^ 0x36 for b in key))

    def update(self, data):
        self.inner.update(data)

    def hexdigest(self):
        return hexlify(sha256(self.outer + self.inner.digest()).digest()).decode()


class Upload:
    """One upload: the body of `stream` (length bytes, nothing read yet) into `slot`."""

    def __init__(self, stream, length, root, slot, password):
        self.stream = stream
        self.left = length
        self.root = root
        self.slot = slot
        self.password = password
        self.buf = bytearray(piece_bytes)
        self.view = memoryview(self.buf)

    def path(self, name):
        return self.root.rstrip("/") + "/" + name if self.root else name

    async def read(self, n):
        """n bytes of the body into the buffer (n <= piece_bytes); a view of them."""
        if n > self.left:
            raise Refused(400, "the bundle is cut short (Content-Length)")
        view = self.view
        whole = n == len(view)  # a whole piece: the view itself, no slice of it
        got = 0
        while got < n:
            k = await self.stream.readinto(view if whole and not got else view[got:n])
            if not k:
                raise Refused(400, "the connection ended before the bundle did")
            got += k
        self.left -= n
        return view if whole else view[:n]

    async def manifest(self, board, mpy):
        """Steps 1 and 2: the manifest, in ota.manifest and checked. Returns its head's
        (version, files, bytes)."""
        head = bytes(await self.read(_HEAD_BYTES))
        if not head.startswith(MAGIC) or not head[17:25].isdigit():
            raise Refused(400, "not a pinsock bundle (make bundle makes them)")
        length = int(head[17:25])
        if length > max_manifest_bytes:
            raise Refused(413, "manifest over %d bytes" % max_manifest_bytes)
        mac = Hmac(hmac_key(self.password))
        with open(self.path(_MANIFEST), "wb") as f:
            while length:
                piece = await self.read(min(length, piece_bytes))
                mac.update(piece)
                f.write(piece)
                length -= len(piece)
        tag = bytes(await self.read(65))
        with open(self.path(_MANIFEST)) as f:
            try:
                info = json.loads(f.readline())
                info["board"], info["version"], info["mpy"], info["files"], info["bytes"]
            except (ValueError, KeyError, TypeError):
                raise Refused(400, "the manifest's first line is not the bundle's head")
        if info["board"] != board:
            raise Refused(422, "the bundle is for board %s; this is %s" % (
                info["board"], board))
        if info["mpy"] != mpy:
            raise Refused(422, "the bundle's .mpy files are for sys.implementation._mpy %s;"
                          " this MicroPython's is %s" % (info["mpy"], mpy))
        if tag[:64].decode() != mac.hexdigest():
            raise Refused(403, "the bundle's HMAC does not match: it was not made with this"
                          " device's password (make bundle PASSWORD_FILE=...)")
        if info["bytes"] != self.left:
            raise Refused(400, "the manifest's files are %d bytes; %d follow it" % (
                info["bytes"], self.left))
        return info["version"], info["files"], info["bytes"]

    def check_flash(self, head):
        """Step 3. FAT is told by its type: MicroPython's VfsFat.rename replaces a file
        by removing it, then renaming (extmod/vfs_fat.c), two steps a power cut can
        split, so a probe rename passes there. The probe is for a file system whose
        rename refuses to replace a file outright."""
        root = self.root or "/"
        if not root.startswith("/"):
            root = os.getcwd().rstrip("/") + "/" + root
        if file_system(root) == "VfsFat":
            raise Refused(409, _NOT_ATOMIC)
        probe = self.path("ota.probe")
        for name in (probe, probe + "2"):
            with open(name, "w") as f:
                f.write("x")
        try:
            os.rename(probe + "2", probe)
            atomic = True
        except OSError:  # cannot rename over a file
            atomic = False
        for name in (probe, probe + "2"):
            try:
                os.remove(name)
            except OSError:
                pass
        if not atomic:
            raise Refused(409, _NOT_ATOMIC)
        stat = os.statvfs(self.root or "/")
        block = stat[1] or stat[0]
        free = stat[1] * stat[4] + usage(self.path(self.slot), block)
        _, count, size = head
        need = size + (count + 4) * block + reserve_bytes
        if need > free:
            raise Refused(507, "not enough space: the update needs %d bytes (%d of files,"
                          " %d kept free), the flash has %d" % (
                              need, size, reserve_bytes, free))

    async def files(self, count):
        """Step 4: the manifest's `count` files."""
        slot = self.path(self.slot)
        remove_tree(slot)
        os.mkdir(slot)
        with open(self.path(_MANIFEST)) as manifest:
            manifest.readline()
            for _ in range(count):
                name, size, digest = entry(manifest.readline())
                end = name.find("/")
                while end > 0:  # its folders, each made by the first file in it
                    try:
                        os.mkdir(slot + "/" + name[:end])
                    except OSError:  # there already
                        pass
                    end = name.find("/", end + 1)
                hash = sha256()
                with open(slot + "/" + name, "wb") as f:
                    while size:
                        piece = await self.read(min(size, piece_bytes))
                        hash.update(piece)
                        f.write(piece)
                        size -= len(piece)
                if hexlify(hash.digest()).decode() != digest:
                    raise Refused(422, "%s: its SHA-256 does not match the manifest's (a"
                                  " changed byte)" % name)
        if self.left:
            raise Refused(400, "%d bytes after the last file" % self.left)
        # Read back what the flash holds.
        buf = self.buf
        with open(self.path(_MANIFEST)) as manifest:
            manifest.readline()
            for _ in range(count):
                name, size, digest = entry(manifest.readline())
                hash = sha256()
                with open(slot + "/" + name, "rb") as f:
                    while True:
                        n = f.readinto(buf)
                        if not n:
                            break
                        hash.update(buf if n == len(buf) else self.view[:n])
                if hexlify(hash.digest()).decode() != digest:
                    raise Refused(500, "%s reads back wrong from the flash" % name)
        os.rename(self.path(_MANIFEST), slot + "/manifest")


def file_system(path):
    """The type name of the file system the absolute `path` is on ("VfsFat", "VfsLfs2",
    "VfsPosix"), or "" where MicroPython cannot list its mounts (before 1.23; CPython)."""
    try:
        from vfs import mount

        mounts = mount()  # [(file system, mount point)]
    except (ImportError, TypeError):
        return ""
    name, longest = "", -1
    for fs, point in mounts:
        point = point.rstrip("/")
        if (path == point or path.startswith(point + "/")) and len(point) > longest:
            name, longest = type(fs).__name__, len(point)
    return name


def entry(line):
    """(path, size, sha256 hex) of a manifest line; a path that leaves its slot (or that
    the flash may not take) is refused."""
    name, size, digest = "", 0, ""
    try:
        name, size, digest = json.loads(line)
        ok = isinstance(name, str) and 0 < len(name) <= 96 and isinstance(size, int)
    except (ValueError, TypeError):
        ok = False
    if ok and isinstance(name, str):
        for part in name.split("/"):
            if part in ("", ".", ".."):
                ok = False
        for ch in name:
            if ch not in _PATH_CHARS:
                ok = False
    if not ok:
        raise Refused(400, "bad manifest line: %s" % line[:60])
    return name, size, digest


def is_dir(path):
    return os.stat(path)[0] & 0x4000


def usage(path, block):
    """Bytes the files under `path` take on the flash (whole blocks)."""
    try:
        if not is_dir(path):
            return (os.stat(path)[6] + block - 1) // block * block
    except OSError:
        return 0
    return sum(usage(path + "/" + name, block) for name in os.listdir(path))


def remove_tree(path):
    try:
        if not is_dir(path):
            os.remove(path)
            return
    except OSError:
        return
    for name in os.listdir(path):
        remove_tree(path + "/" + name)
    os.rmdir(path)


def switch(root, running, target, version, new_version):
    """Step 5: the next boot tries `target`."""
    state = otastate.load(root) or otastate.fresh(running)
    versions = state.get("versions") or {}
    versions[running] = version
    versions[target] = new_version
    state.update(active=running, pending=target, tries=0, versions=versions, why="",
                 failed="")
    otastate.save(root, state)


_uploads = [0]  # uploads running (while one runs, this module stays loaded)


def start(request, ota):
    """POST /ota (routes.py): refused at once, or the upload started in a task of its
    own; `ota` is (root, running slot, ota_reserve_bytes or None, password, the
    device's Status, the hardware layer)."""
    password, status, hardware = ota[3:]
    response = refusal(request, password, ota)
    if response is not None:
        if not _uploads[0]:
            forget()
        return response
    if ota[2] is not None:
        global reserve_bytes
        reserve_bytes = ota[2]
    request.sock[0].complete = True  # the body is the upload's: the server must not read it
    stream = take_connection(request)
    _uploads[0] += 1
    # What the upload needs of the request, not the request: its headers and the
    # coroutines that served it are freed while the upload runs.
    body = (request.content_length,
            request.headers.get("Expect", "").lower() == "100-continue")
    asyncio.create_task(run(stream, body, password, ota[:2], status,
                            hardware.wifi().restart))
    return already_handled


def refusal(request, password, ota):
    """The answer that refuses an upload before its body is read, or None."""
    if not password:  # "" none; None: config.json unreadable (login_routes.LOCKED)
        return answer(403, {"error": "updates need a password: set one in config.json"
                                     " (make configure); docs/OTA.md"})
    if _uploads[0]:
        return answer(409, {"error": "an upload is running already"})
    if otastate.on_trial(otastate.load(ota[0]), ota[1]):
        return answer(409, {"error": "the running version is on trial: an update can"
                                     " come once it has confirmed itself (so)"})
    if request.content_length <= request.max_content_length:
        return answer(400, {"error": "not a pinsock bundle (too short)"})
    return None


def forget():
    # This module and the state's, both loaded for the upload only.
    forget_module(otastate.__name__)
    forget_module(__name__)


async def _expire(upload):
    """Cancels the task `upload` once upload_timeout_ms have passed (cancelled itself
    when the upload is over before)."""
    await asyncio.sleep_ms(upload_timeout_ms)
    upload.cancel()


async def run(stream, body, password, where, status, restart):
    """Serve one upload on `stream` (taken over from the HTTP exchange), in the task
    that runs it, and close `stream` after it. `body`: (its Content-Length, whether the
    client expects 100 Continue); `where`: (root, running slot); `restart(ms)` after
    an update is written. The upload must be in whole within upload_timeout_ms: a task
    of its own (_expire) cancels it then."""
    deadline = asyncio.create_task(_expire(asyncio.current_task()))
    root, running = where
    length, expect_continue = body
    target = otastate.other_slot(running)
    upload = Upload(stream, length, root, target, password)
    restarting = False
    try:
        if expect_continue:
            await stream.awrite(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            head = await upload.manifest(status.board,
                                         getattr(sys.implementation, "_mpy", 0))
            upload.check_flash(head)
            version, count, _ = head
            await upload.files(count)
            switch(root, running, target, status.version, version)
        except Refused as exc:
            print("ota: refused: %s" % exc.message)
            code, data = exc.status, {"error": exc.message}
        except OSError as exc:
            print("ota: flash error: %r" % exc)
            code, data = 500, {"error": "flash error: %r" % exc}
        else:
            print("ota: %s written to slot %s (%d files); restarting to try it" % (
                version, target, count))
            code, data = 200, {"version": version, "slot": target, "files": count,
                               "restarting": True}
            restarting = True
        del upload.view, upload.buf  # the buffer is freed before the answer is made
        try:
            os.remove(upload.path(_MANIFEST))
        except OSError:
            pass
        _uploads[0] = 0  # over: the next may begin once this answer is out
        await write_response(answer(code, data), stream)
        # What the client still sends is read away: closing with unread input would
        # reset the connection, and the reset can overtake the answer.
        buf = bytearray(128)
        while upload.left > 0:
            k = await stream.readinto(buf)
            if not k:
                break
            upload.left -= k
    except asyncio.CancelledError:  # by _expire
        print("ota: upload ended: not in whole within %d ms" % upload_timeout_ms)
    except Exception as exc:  # the peer went away
        print("ota: upload ended: %r" % exc)
    finally:
        deadline.cancel()
        stream.close()
        _uploads[0] = 0  # one at a time: this one is over, whatever ended it
        if restarting:
            restart(restart_delay_ms)
        forget()
