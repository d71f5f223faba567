"""The webhook address guard (``chalicelib/netguard.py``): which URLs an endpoint may have, which resolved
addresses a delivery may reach, and the connection pinned to the address that was checked.

Resolution is stubbed (``netguard.getaddrinfo``): no test resolves a public name or connects anywhere but
127.0.0.1. The connection tests run their own servers on 127.0.0.1 and stop them."""
from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from types import SimpleNamespace

import pytest

from chalicelib.webhooks import netguard

from .localhttp import HANG_GUARD

HTTPS, LOOPBACK = "https", "loopback"


def resolving(*addresses):
    """A stub ``getaddrinfo`` answering ``addresses`` for any name (as getaddrinfo shapes its answer)."""
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]

    getaddrinfo.calls = calls
    return getaddrinfo


@pytest.fixture
def resolver(monkeypatch):
    """Install a stub resolver: ``resolver("1.2.3.4", ...)``."""
    def install(*addresses):
        stub = resolving(*addresses)
        monkeypatch.setattr(netguard, "getaddrinfo", stub)
        return stub

    install()  # by default nothing resolves: a test that forgets to say resolves nothing for real
    return install


# -- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, host, port, path", [
    ("https://hooks.example.com/sms", "hooks.example.com", 443, "/sms"),
    ("https://Hooks.Example.COM:8443/a/b?x=1&y=2#frag", "hooks.example.com", 8443, "/a/b?x=1&y=2"),
    ("https://hooks.example.com", "hooks.example.com", 443, "/"),
    ("https://hooks.example.com./x", "hooks.example.com", 443, "/x"),
    ("https://bücher.de/hook", "xn--bcher-kva.de", 443, "/hook"),
    ("HTTPS://sub-1.my_hooks.example.co.uk/x", "sub-1.my_hooks.example.co.uk", 443, "/x"),
])
def test_a_deployed_stage_takes_https_urls_with_a_dns_name(url, host, port, path):
    target = netguard.parse(url, HTTPS)
    assert (target.scheme, target.host, target.port, target.path) == ("https", host, port, path)


@pytest.mark.parametrize("url, why", [
    ("http://hooks.example.com/x", "https"),
    ("ftp://hooks.example.com/x", "https"),
    ("hooks.example.com/x", "host"),
    ("https:///x", "host"),
    ("https://user:secret@hooks.example.com/x", "user info"),
    ("https://user@hooks.example.com/x", "user info"),
    ("https://hooks.example.com@127.0.0.1/x", "user info"),
    ("https://evil.example\\@hooks.example.com/x", "backslash"),
    ("https://hooks.example.com/a b", "spaces"),
    ("https://hooks.example.com/\r\nX-Injected: 1", "control"),
    ("https://hooks.example.com:0/x", "port 0"),
    ("https://hooks.example.com:99999/x", "port"),
    ("https://hooks.example.com/é", "ASCII"),
    ("https://" + "a" * 2040 + ".com/", "2048"),
    # IP literals, in every spelling a resolver takes
    ("https://127.0.0.1/x", "IP address"),
    ("https://8.8.8.8/x", "IP address"),
    ("https://169.254.169.254/latest/meta-data/", "IP address"),
    ("https://[::1]/x", "IP address"),
    ("https://[::ffff:127.0.0.1]/x", "IP address"),
    ("https://[::ffff:7f00:1]/x", "IP address"),
    ("https://[fd00:ec2::254]/x", "IP address"),
    ("https://2130706433/x", "IP address"),  # 127.0.0.1 in decimal
    ("https://0x7f000001/x", "IP address"),  # in hex
    ("https://0177.0.0.1/x", "IP address"),  # octal
    ("https://0x7f.1/x", "IP address"),
    ("https://127.1/x", "IP address"),
    ("https://1.2.3/x", "IP address"),
    ("https://08.1.1.1/x", "public DNS name"),  # not an address to inet_aton, and no name either
    # names that are not public
    ("https://localhost/x", "public DNS name"),
    ("https://metadata/x", "public DNS name"),
    ("https://hooks.localhost/x", ".localhost"),
    ("https://printer.local/x", ".local"),
    ("https://metadata.google.internal/x", ".internal"),
    ("https://a..example.com/x", "public DNS name"),
    ("https://-a.example.com/x", "public DNS name"),
    ("https://example.123/x", "public DNS name"),
    ("https://" + "a" * 64 + ".example.com/x", "public DNS name"),
])
def test_a_deployed_stage_refuses_every_other_url(url, why):
    with pytest.raises(netguard.Refused) as refused:
        netguard.parse(url, HTTPS)
    assert why.lower() in refused.value.reason.lower(), refused.value.reason


@pytest.mark.parametrize("url, host, port", [
    ("http://127.0.0.1:8080/hooks", "127.0.0.1", 8080),
    ("http://localhost:9000/", "localhost", 9000),
    ("http://LOCALHOST:9000", "localhost", 9000),
])
def test_make_dev_takes_only_loopback_http_urls_with_a_port(url, host, port):
    target = netguard.parse(url, LOOPBACK)
    assert (target.scheme, target.host, target.port) == ("http", host, port)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hooks",  # no port
    "https://127.0.0.1:8443/hooks",
    "http://127.0.0.2:8080/hooks",
    "http://[::1]:8080/hooks",
    "http://2130706433:8080/hooks",
    "http://hooks.example.com:8080/hooks",
    "https://hooks.example.com/hooks",
    "http://user@127.0.0.1:8080/hooks",
    "http://localhost.example.com:8080/",
])
def test_make_dev_refuses_anything_else(url):
    with pytest.raises(netguard.Refused) as refused:
        netguard.parse(url, LOOPBACK)
    assert "127.0.0.1" in refused.value.reason or "user info" in refused.value.reason


@pytest.mark.parametrize("value", [None, 42, ["https://hooks.example.com/"], {"url": "x"}, ""])
def test_a_url_that_is_not_a_string_is_refused(value):
    with pytest.raises(netguard.Refused):
        netguard.parse(value, HTTPS)


# -- resolved addresses --------------------------------------------------------------------------
PUBLIC = ["8.8.8.8", "1.1.1.1", "52.94.236.248", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]
INTERNAL = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "169.254.169.254",  # the instance metadata service
    "169.254.170.2",  # the ECS/Lambda container credentials endpoint
    "100.64.0.1", "100.127.255.254",  # shared address space (carrier-grade NAT)
    "0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "192.0.0.8", "192.0.0.171", "192.0.2.1", "198.51.100.1", "203.0.113.1", "198.18.0.1", "192.88.99.1",
    "::1", "::", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::ffff:169.254.169.254", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 of 127.0.0.1 and 169.254.169.254
    "fd00:ec2::254",  # the instance metadata service over IPv6
    "fc00::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1", "ff0e::1", "100::1",
    "2002:7f00:1::1", "2002:a9fe:a9fe::1",  # 6to4 carrying 127.0.0.1 and 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
    "not an address",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed_deployed(address):
    assert netguard.allowed(address, HTTPS)


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_and_special_addresses_are_refused_deployed(address):
    assert not netguard.allowed(address, HTTPS)


@pytest.mark.parametrize("address, ok", [("127.0.0.1", True), ("127.0.0.53", True), ("::1", True),
                                         ("8.8.8.8", False), ("10.0.0.1", False), ("::ffff:127.0.0.1", False)])
def test_make_dev_reaches_loopback_only(address, ok):
    assert netguard.allowed(address, LOOPBACK) is ok


def test_resolution_returns_the_checked_address(resolver):
    stub = resolver("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    target, address = netguard.check("https://hooks.example.com/x", HTTPS)
    assert address == "93.184.215.14" and stub.calls == ["hooks.example.com"]


@pytest.mark.parametrize("answer", [
    ["169.254.169.254"], ["127.0.0.1"], ["10.1.2.3"], ["::1"], ["::ffff:10.0.0.1"],
    ["93.184.215.14", "10.0.0.1"],  # one internal address among public ones is enough to refuse
    ["2606:2800:21f:cb07::1", "fd00:ec2::254"],
])
def test_a_name_resolving_to_any_internal_address_is_refused(resolver, answer):
    resolver(*answer)
    with pytest.raises(netguard.Refused) as refused:
        netguard.check("https://hooks.example.com/x", HTTPS)
    assert "hooks.example.com resolves to an address that is not a public" in refused.value.reason


def test_a_name_that_does_not_resolve_is_refused(resolver):
    resolver()  # NXDOMAIN
    with pytest.raises(netguard.Refused, match="does not resolve"):
        netguard.check("https://hooks.example.com/x", HTTPS)


def test_make_dev_prefers_ipv4_loopback_and_refuses_a_localhost_that_leaves_the_machine(resolver):
    resolver("::1", "127.0.0.1")
    assert netguard.check("http://localhost:8080/", LOOPBACK)[1] == "127.0.0.1"
    resolver("10.0.0.5")
    with pytest.raises(netguard.Refused):
        netguard.check("http://localhost:8080/", LOOPBACK)
    stub = resolver()  # 127.0.0.1 itself is never looked up
    assert netguard.check("http://127.0.0.1:8080/", LOOPBACK)[1] == "127.0.0.1" and stub.calls == []


# -- the pinned connection (servers on 127.0.0.1 only) ----------------------------------------------
class RawServer:
    """A one-purpose TCP server on 127.0.0.1: ``serve(connection)`` runs for each connection."""

    def __init__(self, serve, tls: ssl.SSLContext | None = None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.serve, self.tls = serve, tls
        self.requests: list[bytes] = []
        self.errors: list[Exception] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection):
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:  # read it all: closing on unread bytes would reset the connection
                body += connection.recv(65536)
            self.requests.append(request)
            self.serve(connection)
        except (OSError, ssl.SSLError) as err:
            self.errors.append(err)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


def answer(status=200, headers=b""):
    def serve(connection):
        connection.sendall(b"HTTP/1.1 %d X\r\n%sContent-Length: 0\r\n\r\n" % (status, headers))
    return serve


def test_the_post_goes_to_the_checked_address_with_the_urls_host_and_never_resolves_again(resolver):
    """DNS rebinding: whatever the name resolves to by now, the connection goes to the address that was
    checked, and the request names the URL's host."""
    stub = resolver("10.0.0.1")  # what a rebinding name would answer the second time
    with RawServer(answer(204)) as server:
        target = netguard.Target("http", "hooks.example.com", server.port, "/in?x=1")
        status, _ = netguard.post(target, "127.0.0.1", b"{}", {"content-type": "application/json"}, 5)
    assert status == 204 and stub.calls == []
    head = server.requests[0].decode()
    assert head.startswith("POST /in?x=1 HTTP/1.1\r\n")
    assert f"Host: hooks.example.com:{server.port}\r\n" in head


def test_redirects_are_not_followed():
    with RawServer(answer(302, b"Location: http://169.254.169.254/latest/meta-data/\r\n")) as server:
        status, _ = netguard.post(netguard.Target("http", "127.0.0.1", server.port, "/"), "127.0.0.1", b"{}", {}, 5)
    assert status == 302 and len(server.requests) == 1


def test_retry_after_is_returned():
    with RawServer(answer(429, b"Retry-After: 120\r\n")) as server:
        assert netguard.post(netguard.Target("http", "127.0.0.1", server.port, "/"), "127.0.0.1", b"{}", {}, 5) \
            == (429, "120")


@pytest.mark.parametrize("behaviour", ["silent", "drip"])
def test_the_whole_exchange_is_cut_at_the_timeout(behaviour, monkeypatch):
    """A receiver that never answers, or drips its answer a byte at a time for as long as it is let, is cut:
    the post arms one timer for the whole exchange, with the timeout it is given, and ends in TimedOut
    while the receiver is still at it (it keeps on until the test lets it go, after the post has ended).
    A drip never lets a read time out, so only that timer ends it. How soon after the timeout the cut
    comes is no business of a test: the join below only catches a post that never ends."""
    released = threading.Event()

    def serve(connection):
        if behaviour == "silent":
            released.wait(HANG_GUARD)
        else:
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")  # a header line that never ends
            while not released.wait(0.05):
                connection.sendall(b"a")

    armed = []

    def timer(interval, function):
        armed.append(interval)
        return threading.Timer(interval, function)

    monkeypatch.setattr(netguard, "threading", SimpleNamespace(Event=threading.Event, Timer=timer))
    outcome: dict = {}

    def attempt():
        started = time.monotonic()
        try:
            netguard.post(netguard.Target("http", "127.0.0.1", server.port, "/"), "127.0.0.1", b"{}", {}, 0.6)
        except Exception as err:  # noqa: BLE001 (asserted below)
            outcome["error"] = err
        outcome["seconds"] = time.monotonic() - started

    with RawServer(serve) as server:
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(HANG_GUARD)
        ended_while_held = not worker.is_alive() and not released.is_set()
        released.set()
    assert ended_while_held, f"the post did not end within {HANG_GUARD:.0f} s (a hang guard)"
    assert isinstance(outcome.get("error"), netguard.TimedOut), outcome
    assert armed == [0.6]
    assert outcome["seconds"] >= 0.59  # not before the timeout (a lower bound: a busy machine only adds)


def test_a_refused_connection_is_a_connection_error():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        netguard.post(netguard.Target("http", "127.0.0.1", port, "/"), "127.0.0.1", b"{}", {}, 2)


def _certificate(tmp_path, name):
    """A self-signed certificate for ``name`` (key and cert files), and a client context that trusts it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_tls_sends_the_urls_host_as_sni_and_checks_the_certificate_against_it(tmp_path, monkeypatch):
    server_tls, client_tls = _certificate(tmp_path, "hooks.example.com")
    monkeypatch.setattr(netguard, "_tls", lambda: client_tls)  # trust the test's own certificate only
    names = []
    server_tls.sni_callback = lambda sock, name, context: names.append(name)
    with RawServer(answer(200), tls=server_tls) as server:
        target = netguard.Target("https", "hooks.example.com", server.port, "/x")
        assert netguard.post(target, "127.0.0.1", b"{}", {}, 5)[0] == 200, server.errors
        assert names == ["hooks.example.com"]
        # The same server for another name: its certificate does not match, so nothing is posted.
        with pytest.raises(ssl.SSLCertVerificationError):
            netguard.post(netguard.Target("https", "other.example.com", server.port, "/x"), "127.0.0.1",
                          b"{}", {}, 5)
    assert len(server.requests) == 1, server.errors


def test_the_default_tls_context_verifies_certificates_and_names():
    context = netguard._tls()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
