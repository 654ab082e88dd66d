# hashlib for the qemu port (tools/qemu_device.py): the built-in one, plus SHA-1 in
# Python, which the boards take from mbedtls and the qemu port does not build.
from uhashlib import *  # noqa: F403 (the built-in module this one extends)


class sha1:
    def __init__(self, data=b""):
        self._h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
        self._buf = b""
        self._len = 0
        self.update(data)

    def update(self, data):
        self._buf += bytes(data)
        self._len += len(data)
        while len(self._buf) >= 64:
            self._block(self._buf[:64])
            self._buf = self._buf[64:]

    def _block(self, chunk):
        w = [int.from_bytes(chunk[i:i + 4], "big") for i in range(0, 64, 4)]
        for i in range(16, 80):
            x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w.append(((x << 1) | (x >> 31)) & 0xFFFFFFFF)
        a, b, c, d, e = self._h
        for i in range(80):
            if i < 20:
                f, k = (b & c) | (~b & d), 0x5A827999
            elif i < 40:
                f, k = b ^ c ^ d, 0x6ED9EBA1
            elif i < 60:
                f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
            else:
                f, k = b ^ c ^ d, 0xCA62C1D6
            t = (((a << 5) | (a >> 27)) + f + e + k + w[i]) & 0xFFFFFFFF
            a, b, c, d, e = t, a, ((b << 30) | (b >> 2)) & 0xFFFFFFFF, c, d
        self._h = [(x + y) & 0xFFFFFFFF for x, y in zip(self._h, (a, b, c, d, e))]

    def digest(self):
        h, buf, length = list(self._h), self._buf, self._len
        tail = buf + b"\x80" + b"\x00" * ((55 - len(buf)) % 64) + (length * 8).to_bytes(8, "big")
        for i in range(0, len(tail), 64):
            self._block(tail[i:i + 64])
        out = b"".join(x.to_bytes(4, "big") for x in self._h)
        self._h = h
        return out
