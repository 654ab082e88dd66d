# The plain-HTTP port while HTTPS is served (startup.serve). Imported only then: a
# device without a certificate carries none of it in its heap.
import asyncio

from .http import RequestHeadReader


class HttpsRedirect:
    """The plain-HTTP port while HTTPS is served: every request, whatever its method
    and path, is answered with a redirect to the same path over HTTPS, so a password,
    a session cookie or a command never crosses the network in clear because someone
    typed http://. 307, not 301/308: browsers cache a permanent redirect for good,
    and the owner who removes the certificate must get the plain page back.
    """

    def __init__(self, https_port):
        self.port_suffix = "" if https_port == 443 else ":%d" % https_port

    async def handle_request(self, reader, writer):
        try:
            answer = await self._answer(reader)
        except Exception:  # a head too long, or not HTTP
            answer = _REDIRECT_BAD_REQUEST
        await writer.awrite(answer)
        await writer.aclose()

    async def _answer(self, reader):
        request_line = (await reader.readline()).split()
        host = None
        body = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            name = name.strip().lower()
            if name == "host":
                host = value.strip()
            elif name == "content-length":
                body = int(value)
        if 0 < body <= RequestHeadReader.max_skipped_bytes:
            # Read a body we will not use, so closing does not reset the connection
            # before the client has read the redirect.
            await asyncio.wait_for(reader.readexactly(body), RequestHeadReader.skip_wait_ms
                                   / 1000)
        reader.complete = True  # no longer pending (http.Listener)
        # Checked only now: the whole head is read, so the 400 is not lost to a reset.
        location = self.location(host, request_line[1].decode()) \
            if len(request_line) == 3 else None
        if location is None:
            return _REDIRECT_BAD_REQUEST
        return ("HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n" % location).encode()

    def location(self, host, target):
        """https://<host>[:port]<target>; None when Host is missing or not a host name
        or address. A target that is not a plain path becomes "/"."""
        if not host:
            return None
        if host[0] == "[":  # an IPv6 address, maybe with a port
            host = host[:host.find("]") + 1]
        else:
            host = host.split(":")[0]
        for ch in host:
            if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in ".-[]:"):
                return None
        if not host or host == "[]":
            return None
        if target[:1] != "/" or target[:2] == "//":
            target = "/"
        for ch in target:
            if not "!" <= ch <= "~":
                target = "/"
                break
        return "https://" + host + self.port_suffix + target


_REDIRECT_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                         b"Connection: close\r\n\r\nBad request: this port redirects to"
                         b" HTTPS and needs a Host header\n")
