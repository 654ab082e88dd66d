# The device's TLS certificate and private key: two DER files in the state folder (a
# real board's root, beside config.json; the simulator's --state-dir). When both are
# there and belong together, app.py serves HTTPS and WSS; otherwise plain HTTP, and
# the log says why. Never raises: a bad file must not lock the owner out.
#
#   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
#     -subj /CN=pinsock -addext subjectAltName=DNS:pinsock.local,IP:192.168.4.1 \
#     -outform DER -out cert.der -keyout key.pem
#   openssl pkey -in key.pem -outform DER -out key.der
#
# DER, not PEM: MicroPython's mbedtls takes DER everywhere (PEM parsing is not in every
# port's build), and it is smaller. The check here is pure code (CPython and the unix
# port run its tests); only context() imports `tls`.

import os

CERT_FILE = "cert.der"
KEY_FILE = "key.der"
# Larger files are refused unread: a P-256 pair is under 1 KiB, an RSA-2048 one 2 KiB.
MAX_FILE_BYTES = 8192

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_BIT_STRING = 0x03
_PUBLIC_KEY_TAG = 0xA1  # [1] in SEC1's ECPrivateKey


def path_in(state_dir, name):
    return state_dir.rstrip("/") + "/" + name if state_dir else name


def read(path):
    """The file's bytes; None when there is no such file. ValueError, the file unread,
    when it is larger than MAX_FILE_BYTES."""
    try:
        size = os.stat(path)[6]
    except OSError:
        return None
    if size > MAX_FILE_BYTES:
        raise ValueError("%s is larger than %d bytes" % (path, MAX_FILE_BYTES))
    with open(path, "rb") as f:
        return f.read(size)


def _element(data, pos):
    """(tag, value start, value end) of the DER element at `pos`; ValueError if broken."""
    if pos + 2 > len(data):
        raise ValueError
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        size = n & 0x7F
        if not 0 < size <= 3:
            raise ValueError
        n = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if pos + n > len(data):
        raise ValueError
    return tag, pos, pos + n


def _children(data, start, end):
    """The elements inside a constructed element's value, as (tag, start, end)."""
    out = []
    while start < end:
        element = _element(data, start)
        out.append(element)
        start = element[2]
    return out


def public_key(key):
    """The public part of a DER private key, as it also appears in its certificate:
    the RSA modulus (PKCS#1) or the EC point (SEC1), either maybe wrapped in PKCS#8.
    None for a key whose public part is not in it (an EC key saved without it)."""
    tag, start, end = _element(key, 0)
    if tag != _SEQUENCE:
        raise ValueError
    parts = _children(key, start, end)
    if len(parts) < 3 or parts[0][0] != _INTEGER:
        raise ValueError
    second = parts[1]
    if second[0] == _SEQUENCE:  # PKCS#8: version, algorithm, OCTET STRING with the key
        tag, start, end = parts[2]
        if tag != _OCTET_STRING:
            raise ValueError
        return public_key(key[start:end])
    if second[0] == _INTEGER:  # PKCS#1 RSA: version, modulus, exponent, ...
        return key[second[1]:second[2]]
    if second[0] == _OCTET_STRING:  # SEC1 EC: version, secret, [0] curve, [1] public
        for tag, start, end in parts[2:]:
            if tag == _PUBLIC_KEY_TAG:
                tag, start, end = _element(key, start)
                if tag == _BIT_STRING:
                    return key[start:end]
        return None
    raise ValueError


def pair_error(cert, key):
    """Why this certificate and key cannot serve TLS; None when they look right.

    mbedtls loads a key that does not belong to the certificate without a word, and
    then every handshake fails: so the key's public part must be in the certificate.
    """
    for name, data, tool in ((CERT_FILE, cert, "x509"), (KEY_FILE, key, "pkey")):
        if len(data) > MAX_FILE_BYTES:
            return "%s is larger than %d bytes" % (name, MAX_FILE_BYTES)
        if data.startswith(b"-----BEGIN"):
            return "%s is PEM; convert it to DER: openssl %s -in <file> -outform DER" % (
                name, tool)
    try:
        if _element(cert, 0)[0] != _SEQUENCE:
            raise ValueError
    except ValueError:
        return "%s is not a DER certificate" % CERT_FILE
    try:
        public = public_key(key)
    except ValueError:
        return "%s is not a DER private key (PKCS#8, PKCS#1 RSA or SEC1 EC)" % KEY_FILE
    if public is not None and public not in cert:
        return "%s does not belong to %s (its public key is not in it)" % (KEY_FILE, CERT_FILE)
    return None


def context(state_dir, log=print):
    """An SSLContext serving this device's certificate; None (plain HTTP) when there is
    no certificate and key, or they cannot be used: the log says which and why."""
    cert_path = path_in(state_dir, CERT_FILE)
    key_path = path_in(state_dir, KEY_FILE)
    try:
        cert = read(cert_path)
        key = read(key_path)
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            log("tls: error: %s without %s; serving plain HTTP only" % (
                key_path if cert is None else cert_path,
                cert_path if cert is None else key_path))
            return None
        problem = pair_error(cert, key)
        if problem is None:
            import tls  # MicroPython's mbedtls binding (the ESP32 and rp2 ports have it)

            ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
            try:
                ctx.load_cert_chain(cert, key)
                return ctx
            except ValueError as exc:  # "invalid cert", "invalid key"
                problem = "mbedtls refused them: %s" % (exc.args[0] if exc.args else exc)
    except ValueError as exc:  # a file too large
        problem = exc.args[0]
    except Exception as exc:  # OSError, MemoryError, no `tls` in this MicroPython
        problem = repr(exc)
    log("tls: error: cannot use %s and %s: %s; serving plain HTTP only" % (
        cert_path, key_path, problem))
    return None
