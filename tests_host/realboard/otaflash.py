# An upload (transport/ota.py's run(), the code POST /ota runs) onto the file systems a
# board's flash can hold, each mounted on a RAM block device with MicroPython's own
# driver: FAT (vfs.VfsFat, FatFs) must be refused before anything is written, littlefs
# (vfs.VfsLfs2, the default on ESP32 and RP2040) must take the update; one that stalls
# is ended at ota.upload_timeout_ms and switches nothing. Run by
# tests_host/test_ota_e2e.py through tests_host/device/mpyrun.py, on the unix port with
# the UNIX_SIM build on the path; PINSOCK_BUNDLE names a bundle for it (its _mpy).
import asyncio
import json
import os
import time
import vfs

from pinsock.transport import ota

PASSWORD = "ota test password"
MOUNT = "/flash"


class RamDisk:
    """A block device in RAM (the protocol of MicroPython's vfs drivers). Reads and
    writes copy through a memoryview: a driver may call them while the heap is
    locked (a file closed by the garbage collector)."""

    def __init__(self, blocks, block_bytes):
        self.block_bytes = block_bytes
        self.data = bytearray(blocks * block_bytes)
        self.view = memoryview(self.data)

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_bytes + offset
        buf[:] = self.view[start:start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        start = block * self.block_bytes + (offset or 0)
        self.view[start:start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.data) // self.block_bytes
        if op == 5:  # block size
            return self.block_bytes
        if op == 6:  # erase (littlefs): nothing to do in RAM
            return 0
        return None


class Stream:
    """The connection as ota.run() sees it: the request's body in, the answer out."""

    def __init__(self, body, stall_at=None):
        self.body = body
        self.at = 0
        self.out = []
        self.closed = False
        self.stall_at = stall_at  # from this byte on the client sends nothing

    async def readinto(self, view):
        if self.at == self.stall_at:  # ... for 5 s, then it goes away
            await asyncio.sleep(5)
            return 0
        end = len(self.body) if self.stall_at is None else self.stall_at
        n = min(len(view), end - self.at, 700)  # pieces of any size
        view[:n] = self.body[self.at:self.at + n]
        self.at += n
        return n

    def write(self, data):
        self.out.append(bytes(data))

    async def drain(self):
        pass

    async def awrite(self, data):
        self.write(data)

    def close(self):
        self.closed = True


class Status:
    board = "UNIX_SIM"
    version = "0.1.0"


def bundle():
    with open(os.getenv("PINSOCK_BUNDLE"), "rb") as f:
        return f.read()


def upload(body, restarts, stall_at=None):
    """ota.run() of `body` onto MOUNT, as POST /ota starts it: in a task of its own.
    Returns the stream."""
    stream = Stream(body, stall_at)

    async def serve():
        await asyncio.create_task(ota.run(stream, (len(body), False), PASSWORD,
                                          (MOUNT, "a"), Status(), restarts.append))

    asyncio.run(serve())
    assert stream.closed
    return stream


def flash_state():
    """(the flash's root listing, ota.json or None)."""
    names = sorted(os.listdir(MOUNT))
    state = None
    if "ota.json" in names:
        with open(MOUNT + "/ota.json") as f:
            state = json.load(f)
    return names, state


def upload_onto(fs_class, blocks, block_bytes):
    """(the answer's bytes, the flash's root listing, ota.json or None, restarts)."""
    body = bundle()
    disk = RamDisk(blocks, block_bytes)
    fs_class.mkfs(disk)
    vfs.mount(fs_class(disk), MOUNT)
    restarts = []
    try:
        stream = upload(body, restarts)
        return (b"".join(stream.out),) + flash_state() + (restarts,)
    finally:
        vfs.umount(MOUNT)


def test_fat_is_refused_before_anything_is_written():
    assert ota.file_system("/") == "VfsPosix"  # the unix port's own root
    answer, names, state, restarts = upload_onto(vfs.VfsFat, 2048, 512)  # 1 MiB
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 409 Conflict"), answer
    assert json.loads(body) == {"error": "this file system cannot replace a file by rename"
                                " atomically (FAT): an update there could leave half an"
                                " app; use littlefs"}, body
    # Nothing of the update stays: no slot, no state, no manifest, no probe.
    assert (names, state, restarts) == ([], None, []), names


def test_littlefs_takes_the_update():
    answer, names, state, restarts = upload_onto(vfs.VfsLfs2, 256, 4096)  # 1 MiB
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK"), answer
    reply = json.loads(body)
    assert (reply["slot"], reply["restarting"]) == ("b", True), reply
    assert names == ["b", "ota.json"], names
    assert (state["active"], state["pending"], state["tries"]) == ("a", "b", 0), state
    assert state["versions"] == {"a": "0.1.0", "b": reply["version"]}, state
    assert restarts == [ota.restart_delay_ms], restarts


def test_a_stalled_upload_ends_at_its_deadline_and_switches_nothing():
    body = bundle()
    disk = RamDisk(256, 4096)
    vfs.VfsLfs2.mkfs(disk)
    vfs.mount(vfs.VfsLfs2(disk), MOUNT)
    timeout = ota.upload_timeout_ms
    ota.upload_timeout_ms = 300
    restarts = []
    try:
        # The client stops sending halfway through the files: no answer, the connection
        # closed at the deadline, ota.json untouched (the next boot runs the old version).
        started = time.ticks_ms()
        stream = upload(body, restarts, stall_at=len(body) // 2)
        took = time.ticks_diff(time.ticks_ms(), started)
        assert 300 <= took < 2000, took
        assert (stream.out, restarts) == ([], []), stream.out
        names, state = flash_state()
        assert state is None and "ota.json" not in names, names
        # A whole upload after it takes (the half-written slot is emptied first).
        stream = upload(body, restarts)
        assert b"".join(stream.out).startswith(b"HTTP/1.0 200 OK"), stream.out
        names, state = flash_state()
        assert (state["active"], state["pending"]) == ("a", "b"), state
        assert restarts == [ota.restart_delay_ms], restarts
    finally:
        ota.upload_timeout_ms = timeout
        vfs.umount(MOUNT)
