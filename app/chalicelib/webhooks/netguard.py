"""The address guard for webhook URLs: which URLs an endpoint may have, which addresses a delivery may
reach, and a connection pinned to the address that was checked.

Deployed (``WEBHOOK_URLS=https``) a URL is ``https://<DNS name>[:port]/...``: no user info, no IP
literal in any spelling (``127.1``, ``2130706433``, ``0x7f.1``, ``[::1]``: every form ``inet_aton``
and ``getaddrinfo`` accept), and every address the name resolves to must be global unicast. Loopback,
private, link-local (169.254.169.254 included), shared (100.64/10), multicast, reserved, documentation
and unspecified addresses are refused, and so is any IPv6 address outside 2000::/3 (IPv4-mapped,
NAT64, unique-local...) or one that carries an IPv4 address inside (6to4, Teredo).

The check runs when an endpoint is created and again at every delivery, after resolution; the delivery
then connects to the address it checked (``post``), with the URL's host in the ``Host`` header, in TLS
SNI and in the certificate check, so a name that resolves elsewhere a second time (DNS rebinding) gains
nothing.

Under ``make dev`` and in the tests (``WEBHOOK_URLS=loopback``) only ``http://127.0.0.1:<port>`` and
``http://localhost:<port>`` are allowed, and they must reach a loopback address.
"""
from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

MAX_URL = 2048
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
# What the resolver is (tests replace it: no test resolves or reaches a name off this machine).
getaddrinfo = socket.getaddrinfo

# IPv4 blocks refused beyond what ``is_global`` says (IANA's special-purpose registry; Python's view of
# some of them has changed between versions, so they are listed).
_REFUSED_V4 = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")
# Inside 2000::/3 but carrying an IPv4 address that the far end would reach: 6to4 and Teredo.
_REFUSED_V6 = tuple(ipaddress.ip_network(n) for n in ("2002::/16", "2001::/32", "2001:db8::/32"))
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|xn--[a-z0-9-]{1,59}")
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


class Refused(Exception):
    """The URL or an address it resolves to is not allowed. ``reason`` is a sentence for the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Target(NamedTuple):
    """A checked URL: what the connection needs."""

    scheme: str
    host: str  # ASCII (IDNA), lower case: the Host header, TLS SNI and the certificate's name
    port: int
    path: str  # path and query, as written

    @property
    def default_port(self) -> bool:
        return self.port == (443 if self.scheme == "https" else 80)


def parse(url, mode: str) -> Target:
    """The URL as a ``Target``, or ``Refused``. ``mode`` is ``https`` (deployed) or ``loopback``."""
    if not isinstance(url, str) or not url:
        raise Refused("'url' must be a URL.")
    if len(url) > MAX_URL:
        raise Refused(f"'url' may be at most {MAX_URL} characters.")
    if _UNSAFE.search(url):
        raise Refused("'url' holds spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("'url' is not a valid URL (host or port).") from None
    if "@" in parts.netloc:
        raise Refused("'url' may not hold user info (user:password@).")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("'url' has no host.")
    if port == 0:
        raise Refused("'url' has port 0.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        raise Refused("'url' has characters outside ASCII in its path or query: percent-encode them.")
    scheme = parts.scheme.lower()
    if mode == "loopback":
        if scheme != "http" or host not in LOOPBACK_HOSTS or port is None or "[" in parts.netloc:
            raise Refused("This stage takes only http://127.0.0.1:<port>/... and http://localhost:<port>/... "
                          "webhook URLs (WEBHOOK_URLS=loopback: the local stack).")
        return Target("http", host, port, path)
    if scheme != "https":
        raise Refused("'url' must be an https URL.")
    return Target("https", dns_name(host, bracketed="[" in parts.netloc), port or 443, path)


def dns_name(host: str, *, bracketed: bool = False) -> str:
    """``host`` as an ASCII DNS name of at least two labels ending in an alphabetic top-level label,
    or ``Refused``: an IP literal, in any form a resolver would take, is not a name."""
    if bracketed or _is_ip_literal(host):
        raise Refused("'url' must name its host, not an IP address.")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise Refused("'url' has a host name that is not a valid international domain name.") from None
    host = host.lower()
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) \
            or not _TLD.fullmatch(labels[-1]):
        raise Refused("'url' must have a public DNS name as its host (such as hooks.example.com).")
    if labels[-1] in ("localhost", "local", "internal", "invalid", "test", "example", "onion", "arpa"):
        raise Refused(f"'url' has a host under .{labels[-1]}, which is not a public name.")
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # 127.1, 2130706433, 0x7f.1, 0177.0.0.1: what getaddrinfo also takes
        return True
    except (OSError, ValueError):
        return False


def allowed(address: str, mode: str) -> bool:
    """Whether a delivery may connect to ``address`` (a resolved IP address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if mode == "loopback":
        return ip.is_loopback
    if ip.version == 4:
        return ip.is_global and not ip.is_multicast and not any(ip in net for net in _REFUSED_V4)
    return (ip in _GLOBAL_V6 and ip.is_global and not ip.is_multicast
            and not any(ip in net for net in _REFUSED_V6))


def resolve(target: Target, mode: str) -> str:
    """The address to connect to: every address the host resolves to must be allowed (one that is not
    refuses the URL, so no answer can mix a public address with an internal one), and the first is
    used (in loopback mode an IPv4 one where there is one)."""
    if target.host == "127.0.0.1":
        return "127.0.0.1"
    try:
        answers = getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Refused(f"The host {target.host} does not resolve.") from None
    addresses = list(dict.fromkeys(info[4][0] for info in answers))
    if not addresses:
        raise Refused(f"The host {target.host} does not resolve.")
    refused = [a for a in addresses if not allowed(a, mode)]
    if refused:
        kind = "a loopback" if mode == "loopback" else "a public (global unicast)"
        raise Refused(f"The host {target.host} resolves to an address that is not {kind} address.")
    if mode == "loopback":
        addresses.sort(key=lambda a: ":" in a)
    return addresses[0]


def check(url, mode: str) -> tuple[Target, str]:
    """``parse`` then ``resolve``: the target and the checked address, or ``Refused``."""
    target = parse(url, mode)
    return target, resolve(target, mode)


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # certificate and host name checked


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``address``, whatever ``host`` resolves to now."""

    def __init__(self, target: Target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def _open(self):
        return socket.create_connection((self.address, self.port), self.timeout)

    def connect(self):
        self.sock = self._open()


class _PinnedHTTPS(_PinnedHTTP):
    default_port = 443

    def connect(self):
        # SNI and the certificate check use the URL's host, not the address connected to.
        self.sock = _tls().wrap_socket(self._open(), server_hostname=self.host)


class TimedOut(Exception):
    """The receiver did not answer within the time allowed."""


def post(target: Target, address: str, body: bytes, headers: dict, timeout: float) -> tuple[int, str | None]:
    """POST ``body`` to the checked ``address``; (HTTP status, its ``Retry-After`` or None). Redirects are
    not followed. The whole exchange, connection included, is cut at ``timeout`` seconds (``TimedOut``),
    however slowly the receiver drips its answer. Connection errors raise ``OSError`` or
    ``http.client.HTTPException``."""
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, address, timeout)
    expired = threading.Event()

    def cut():
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # wakes the blocked read
            except OSError:
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        if expired.is_set():  # cut mid-answer: what was read of it is not an answer
            raise TimedOut()
        return response.status, response.getheader("retry-after")
    except (OSError, http.client.HTTPException) as err:
        if expired.is_set() or isinstance(err, TimeoutError):
            raise TimedOut() from None
        raise
    finally:
        timer.cancel()
        connection.close()
