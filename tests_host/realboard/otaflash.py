# An upload (transport/ota.py's run(), the code POST /ota runs) onto the file systems a
# board's flash can hold, each mounted on a RAM block device with MicroPython's own
# driver: FAT (vfs.VfsFat, FatFs) must be refused before anything is written, littlefs
# (vfs.VfsLfs2, the default on ESP32 and RP2040) must take the update. Run by
# tests_host/test_ota_e2e.py through tests_host/device/mpyrun.py, on the unix port with
# the UNIX_SIM build on the path; PINSOCK_BUNDLE names a bundle for it (its _mpy).
import asyncio
import json
import os
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

    def __init__(self, body):
        self.body = body
        self.at = 0
        self.out = []

    async def readinto(self, view):
        n = min(len(view), len(self.body) - self.at, 700)  # pieces of any size
        view[:n] = self.body[self.at:self.at + n]
        self.at += n
        return n

    def write(self, data):
        self.out.append(bytes(data))

    async def drain(self):
        pass

    async def awrite(self, data):
        self.write(data)


class Status:
    board = "UNIX_SIM"
    version = "0.1.0"


def upload_onto(fs_class, blocks, block_bytes):
    """(the answer's bytes, the flash's root listing, ota.json or None, restarts)."""
    with open(os.getenv("PINSOCK_BUNDLE"), "rb") as f:
        body = f.read()
    disk = RamDisk(blocks, block_bytes)
    fs_class.mkfs(disk)
    vfs.mount(fs_class(disk), MOUNT)
    restarts = []
    try:
        stream = Stream(body)
        asyncio.run(ota.run(stream, (len(body), False), PASSWORD, (MOUNT, "a"), Status(),
                            restarts.append))
        names = sorted(os.listdir(MOUNT))
        state = None
        if "ota.json" in names:
            with open(MOUNT + "/ota.json") as f:
                state = json.load(f)
        return b"".join(stream.out), names, state, restarts
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
