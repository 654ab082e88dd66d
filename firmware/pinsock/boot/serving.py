# Serving: the listening sockets, once the device is built. A module of its own, so
# that start-up's bulk (startup.py) and the board config are forgotten before the
# sockets and their tasks are made: the heap is at its fullest here.


def listen(handler, host, port, ssl=None, send_buffer_bytes=0):
    """A transport/http.py Listener on host:port giving every connection to
    handler(reader, writer); each accepted connection's socket holds send_buffer_bytes
    of unsent data when that is not 0 (Listener.send_buffer_bytes). OSError when the
    port is taken."""
    import socket

    from ..transport.http import Listener

    addr = socket.getaddrinfo(host, port)[0]
    sock = socket.socket(addr[0])
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes:
        # SO_SNDBUF, which the unix port does not name (Linux: 7). An accepted
        # connection inherits it from the listening socket.
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_SNDBUF", 7),
                        send_buffer_bytes)
    sock.bind(addr[-1])
    sock.listen(Listener.backlog)
    return Listener(handler, sock, ssl)


async def serve(app, plan, context):
    """Serve HTTP, or HTTPS with plain HTTP redirecting to it when `context`
    (startup.tls_context) is an SSLContext. Any TLS trouble, a bad file or a port that cannot
    be opened, is logged and leaves plain HTTP serving: the owner is never locked out.
    Returns the Listener whose task (accepting connections) never ends."""

    host, http_port, https_port, send_buffer = plan  # startup.serving_plan
    if context is not None:
        try:
            # The TLS handshake happens at the first read, within the request deadline.
            app.scheme = "https"
            srv = listen(app.exchange, host, https_port, context, send_buffer)
        except Exception as exc:  # OSError: the port is taken
            app.scheme = "http"
            print("tls: error: cannot serve HTTPS on port %d: %r; serving plain HTTP only"
                  % (https_port, exc))
        else:
            print("serving on https://%s:%d" % (host, https_port))
            from ..transport.redirect import HttpsRedirect

            redirect = HttpsRedirect(https_port)
            listen(redirect.handle_request, host, http_port, None, send_buffer)
            print("serving on http://%s:%d, redirecting to https" % (host, http_port))
            return srv
    srv = listen(app.exchange, host, http_port, None, send_buffer)
    print("serving on http://%s:%d" % (host, http_port))
    return srv
