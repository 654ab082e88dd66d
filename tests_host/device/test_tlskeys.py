# The TLS certificate and key check (tlskeys.py): which files count, which pairs
# belong together, and that every problem is logged and ends in plain HTTP, never in
# an exception. Runs on CPython and the unix port. The key files in tls/ are
# throwaway test keys (tls/README.md says how they were made); the good pair is
# served for real by the simulator in test_tls_e2e.py.
from fakes import scratch_dir
from pinsock.boot import tlskeys

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def sample(name):
    with open(_HERE + "/tls/" + name, "rb") as f:
        return f.read()


def flash(name, files):
    """A state folder holding `files` ({name: bytes})."""
    folder = scratch_dir(name)
    for file_name, data in files.items():
        with open(folder + "/" + file_name, "wb") as f:
            f.write(data)
    return folder


def test_each_key_form_matches_its_certificate():
    for cert, key in (("ec_cert.der", "ec_key_sec1.der"), ("ec_cert.der", "ec_key_pkcs8.der"),
                      ("rsa_cert.der", "rsa_key_pkcs1.der"),
                      ("rsa_cert.der", "rsa_key_pkcs8.der")):
        assert tlskeys.pair_error(sample(cert), sample(key)) is None, key


def test_public_part_of_an_ec_key_is_its_point_and_of_an_rsa_key_its_modulus():
    point = tlskeys.public_key(sample("ec_key_sec1.der"))
    # BIT STRING value: 0 unused bits, then an uncompressed P-256 point (0x04, X, Y).
    assert len(point) == 66 and point[0] == 0 and point[1] == 4
    assert tlskeys.public_key(sample("ec_key_pkcs8.der")) == point
    modulus = tlskeys.public_key(sample("rsa_key_pkcs1.der"))
    # INTEGER value of a 2048-bit modulus: a 0 byte keeps it positive, then 256 bytes.
    assert len(modulus) == 257 and modulus[0] == 0 and modulus[1] & 0x80
    assert tlskeys.public_key(sample("rsa_key_pkcs8.der")) == modulus


def test_key_of_another_certificate_is_refused():
    for cert, key in (("ec_cert.der", "rsa_key_pkcs1.der"), ("rsa_cert.der", "ec_key_sec1.der"),
                      ("rsa_cert.der", "ec_key_pkcs8.der")):
        problem = tlskeys.pair_error(sample(cert), sample(key))
        assert problem == "key.der does not belong to cert.der (its public key is not in it)"


def test_ec_key_saved_without_its_public_part_cannot_be_checked_and_is_left_to_mbedtls():
    assert tlskeys.public_key(sample("ec_key_nopublic.der")) is None
    assert tlskeys.pair_error(sample("ec_cert.der"), sample("ec_key_nopublic.der")) is None


def test_pem_files_are_refused_with_the_command_that_converts_them():
    pem_key = sample("ec_key.pem")
    assert tlskeys.pair_error(sample("ec_cert.der"), pem_key) == (
        "key.der is PEM; convert it to DER: openssl pkey -in <file> -outform DER")
    pem_cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert tlskeys.pair_error(pem_cert, sample("ec_key_sec1.der")) == (
        "cert.der is PEM; convert it to DER: openssl x509 -in <file> -outform DER")


def test_garbage_truncated_and_empty_files_are_refused():
    cert = sample("ec_cert.der")
    key = sample("ec_key_sec1.der")
    for bad_key in (b"", b"garbage bytes", key[:40], b"\x30\x83\xff\xff\xff", b"\x30\x02\x02\x00"):
        assert tlskeys.pair_error(cert, bad_key) == (
            "key.der is not a DER private key (PKCS#8, PKCS#1 RSA or SEC1 EC)"), bad_key
    for bad_cert in (b"", b"garbage bytes", b"\x02\x01\x00"):
        assert tlskeys.pair_error(bad_cert, key) == "cert.der is not a DER certificate"


def test_oversized_file_is_refused_unparsed():
    big = b"\x30" + b"\x00" * tlskeys.MAX_FILE_BYTES
    assert tlskeys.pair_error(big, sample("ec_key_sec1.der")) == (
        "cert.der is larger than %d bytes" % tlskeys.MAX_FILE_BYTES)


def test_no_files_is_plain_http_without_a_word():
    log = []
    assert tlskeys.context(flash("tls_none", {}), log.append) is None
    assert log == []


def test_one_file_alone_is_logged_and_plain_http():
    for present, missing in (("cert.der", "key.der"), ("key.der", "cert.der")):
        folder = flash("tls_one", {present: sample("ec_cert.der")})
        log = []
        assert tlskeys.context(folder, log.append) is None
        assert log == ["tls: error: %s/%s without %s/%s; serving plain HTTP only" % (
            folder, present, folder, missing)]


def test_a_bad_pair_is_logged_and_plain_http():
    folder = flash("tls_bad", {"cert.der": sample("ec_cert.der"),
                               "key.der": sample("rsa_key_pkcs1.der")})
    log = []
    assert tlskeys.context(folder, log.append) is None
    assert log == ["tls: error: cannot use %s/cert.der and %s/key.der: key.der does not belong"
                   " to cert.der (its public key is not in it); serving plain HTTP only"
                   % (folder, folder)]


def test_files_are_found_in_the_state_folder_or_the_root():
    assert tlskeys.path_in("", tlskeys.CERT_FILE) == "cert.der"
    assert tlskeys.path_in("/flash/", tlskeys.KEY_FILE) == "/flash/key.der"


def test_an_oversized_file_is_logged_unread_and_plain_http():
    folder = flash("tls_big", {"cert.der": b"\x30" * (tlskeys.MAX_FILE_BYTES + 1),
                               "key.der": sample("ec_key_sec1.der")})
    log = []
    assert tlskeys.context(folder, log.append) is None
    assert log == ["tls: error: cannot use %s/cert.der and %s/key.der: %s/cert.der is larger"
                   " than %d bytes; serving plain HTTP only"
                   % (folder, folder, folder, tlskeys.MAX_FILE_BYTES)]
