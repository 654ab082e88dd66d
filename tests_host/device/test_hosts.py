# The Host headers the device answers to (transport/routes.py host_name, make_app; the
# names from boot/startup.py own_names), against DNS rebinding. Runs on CPython and
# the unix port.
from pinsock.boot.startup import own_names
from pinsock.transport.routes import host_name

NAMES = own_names("Pinsock-C0DE", ["http://dashboard.lan:8000", "https://Dash.Example/"])
ADDRESSES = ("192.168.1.40",)


def allows(host):
    # What make_app's check_request does with a Host header.
    name = host_name(host)
    return name in NAMES or name in ADDRESSES


def test_a_host_without_its_port_in_lower_case():
    assert host_name("Pinsock.local:80") == "pinsock.local"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert host_name("127.0.0.1:8080") == "127.0.0.1"
    assert host_name("[fe80::1]:80") == "fe80::1"
    assert host_name("[::1]") == "::1"
    assert host_name("pinsock.local.") == "pinsock.local"
    assert host_name("pinsock:") == "pinsock"
    assert host_name("") == "" and host_name("[") == ""


def test_the_names_are_the_hostname_local_loopback_and_the_allowed_origins_hosts():
    assert NAMES == ("localhost", "127.0.0.1", "pinsock-c0de", "pinsock-c0de.local",
                     "dashboard.lan", "dash.example")


def test_the_devices_names_and_addresses_with_or_without_a_port():
    for host in ("pinsock-c0de", "PINSOCK-C0DE:80", "pinsock-c0de.local",
                 "pinsock-c0de.local:8080", "pinsock-c0de.local.", "192.168.1.40",
                 "192.168.1.40:80", "localhost", "localhost:8080", "127.0.0.1",
                 "127.0.0.1:8080", "dashboard.lan", "dashboard.lan:8000"):
        assert allows(host), host


def test_any_other_name_is_refused_as_a_rebinding_page_would_send_it():
    for host in ("evil.example", "evil.example:8080", "pinsock-c0de.evil.example",
                 "192.168.1.41", "192.168.1.400", "127.0.0.2", "0.0.0.0", "[::1]", "",
                 "x", "pinsock-c0de.localhost", "localhost.evil.example", "c0de",
                 "127.0.0.1:80:80", "evil.example:8080:127.0.0.1"):
        assert not allows(host), host
