"""Outgoing requests to addresses someone else chose (a webhook endpoint, a customer's URL):
safe from server-side request forgery.

:func:`check_url` accepts only ``https`` (``http`` when allowed), refuses credentials in the URL
and IP addresses written in disguise (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), resolves the
host and refuses every address that is not on the public internet — loopback, private,
link-local (the cloud metadata service at 169.254.169.254), multicast, reserved, unspecified
(``0.0.0.0``, ``::``), shared (100.64/10) and IPv4 hidden in IPv6 (``::ffff:127.0.0.1``, 6to4,
Teredo, NAT64) — unless ``allow_private`` is set for a provider that really lives inside.

:class:`PinnedTransport` is the httpx transport that connects only to the addresses a check
found: the request keeps its host name (``Host`` header, TLS SNI and certificate check) but the
TCP connection goes to the checked IP, so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot point it elsewhere. A connection it was not told about is
resolved and checked on the spot.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

from trato.core.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# Ranges Python does not flag but that must never be reached from here.
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 embedded in the low 32 bits (RFC 6052)
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeURL(InvalidInput):
    """An outgoing URL that may not be called: wrong scheme, credentials, or a non-public address."""

    code = "unsafe_url"


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed :func:`check_url`, with the addresses its host resolved to then."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached from here (a short reason), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour is not None else None)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is None and (ip in _NAT64 or ip in _NAT64_LOCAL):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{inner} (IPv4 inside IPv6)" if inner else None
    if ip in _METADATA:
        return "the cloud metadata service"
    for attribute, reason in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                              ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                              ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(ip, attribute):
            return reason
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared address space (carrier-grade NAT)"
    if not ip.is_global:
        return "not a public internet address"
    return None


def _literal_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is written as one, in any notation the C library accepts."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:
            packed = socket.inet_aton(host)  # 2130706433, 0x7f000001, 0177.1, 127.1 …
        except OSError:
            return None
        return ipaddress.IPv4Address(packed)
    return None


def _split(url: str, *, allow_http: bool) -> SplitResult:
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c in url for c in "\r\n\t\x00 "):
        raise UnsafeURL("the URL is empty, too long or contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UnsafeURL(f"the URL cannot be read: {exc}") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UnsafeURL(f"the URL must start with {' or '.join(s + '://' for s in schemes)}",
                        details={"reason": "scheme", "scheme": parts.scheme})
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("the URL may not carry a user name or password", details={"reason": "credentials"})
    if not parts.hostname:
        raise UnsafeURL("the URL has no host", details={"reason": "host"})
    return parts


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver | None = None) -> CheckedURL:
    """Check an outgoing URL and resolve its host (see the module's docstring); UnsafeURL names the
    reason. With ``allow_private`` plain ``http`` and any address are allowed (a system inside)."""
    parts = _split(url, allow_http=allow_private)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    literal = _literal_ip(host)
    if literal is not None and isinstance(literal, ipaddress.IPv4Address) and str(literal) != host:
        # Whatever it means to the resolver, a number in disguise is refused: say what it is.
        raise UnsafeURL(f"the host {host!r} is the IP address {literal} written in another notation",
                        details={"reason": "ip_notation", "address": str(literal)})
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list((resolver or system_resolver)(host, port))
        except (OSError, UnicodeError) as exc:
            raise UnsafeURL(f"the host {host!r} cannot be resolved: {exc}",
                            details={"reason": "resolve", "host": host}) from None
        if not addresses:
            raise UnsafeURL(f"the host {host!r} has no address", details={"reason": "resolve", "host": host})
    if not allow_private:
        for address in addresses:
            problem = address_problem(ipaddress.ip_address(address))
            if problem:
                where = f"is {address}" if literal is not None else f"resolves to {address}"
                raise UnsafeURL(f"the host {host!r} {where}, which is {problem}; only public "
                                "internet addresses may be called",
                                details={"reason": "address", "host": host, "address": address, "problem": problem})
    return CheckedURL(url=url, host=host.lower(), port=port, addresses=tuple(addresses))


# -- connecting to the checked address --------------------------------------------------------------


class _PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections to the pinned addresses of a host, never to a fresh DNS answer."""

    def __init__(self, transport: PinnedTransport) -> None:
        self._transport = transport
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        addresses = self._transport.addresses_for(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except httpcore.ConnectError as exc:  # the next address the check allowed
                last = exc
        raise httpcore.ConnectError(str(last) if last else f"no address to connect to {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not outgoing URLs")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go only to checked addresses (see the module's docstring).

    ``with transport.pin(checked): client.post(checked.url, …)`` connects to ``checked.addresses``;
    without a pin the host is resolved and checked when the connection opens, and an unsafe one
    fails as a connection error (nothing was sent).
    """

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_private = allow_private
        self.resolver = resolver
        self._pins = threading.local()
        pool = self._pool
        # httpx builds the pool without a way to pass a network backend: rebuild it with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=pool._ssl_context, max_connections=pool._max_connections,
            max_keepalive_connections=pool._max_keepalive_connections, keepalive_expiry=pool._keepalive_expiry,
            http1=pool._http1, http2=pool._http2, retries=pool._retries, socket_options=pool._socket_options,
            network_backend=_PinnedBackend(self),
        )

    @contextmanager
    def pin(self, checked: CheckedURL) -> Iterator[None]:
        """Connections opened by this thread to ``checked.host`` go to its checked addresses."""
        previous = getattr(self._pins, "current", None)
        self._pins.current = checked
        try:
            yield
        finally:
            self._pins.current = previous

    def addresses_for(self, host: str, port: int) -> tuple[str, ...]:
        checked: CheckedURL | None = getattr(self._pins, "current", None)
        if checked is not None and checked.host == host.lower().strip("[]") and checked.port == port:
            return checked.addresses
        url = f"{'http' if self.allow_private else 'https'}://{_bracket(host)}:{port}/"
        try:
            found = check_url(url, allow_private=self.allow_private, resolver=self.resolver)
        except UnsafeURL as exc:
            raise httpcore.ConnectError(exc.message) from None
        return found.addresses


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
