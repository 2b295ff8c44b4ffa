"""Egress policy for destinations a tenant names (webhook URLs, alert URLs).

A tenant-chosen URL must not turn the system into a proxy onto its own network: loopback,
private, link-local, multicast, reserved and unspecified addresses are refused (IPv4, IPv6,
IPv4 embedded in IPv6, ``localhost`` names, legacy decimal/octal/hex IPv4 spellings), unless an
operator opens a host with ``TANDEM_EGRESS_ALLOW_HOSTS``. The check runs twice: on the URL when
it is submitted (:func:`check_url`, a clear 422) and again when connecting
(:class:`EgressTransport`), because DNS can answer differently between the two: the transport
resolves the name itself, checks every address, and connects to the checked one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

# Re-exported: callers take the policy's settings from the package, with its checks.
from shared.egress.settings import EgressSettings as EgressSettings
from shared.egress.settings import get_egress_settings as get_egress_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
U = TypeVar("U")

# IPv6 prefixes that carry an IPv4 destination in their low 32 bits (NAT64, RFC 6052/8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class EgressRefused(ValueError):
    """A destination the egress policy does not allow; the message says why, for the tenant."""


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an address, also in the legacy spellings resolvers accept (``2130706433``,
    ``0177.0.0.1``, ``0x7f.1``, ``127.1``); None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 destination an IPv6 address really reaches (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def is_allowed_host(host: str, allow: Iterable[str]) -> bool:
    """Whether the operator opened ``host`` (by name, address, or a network containing it)."""
    name = _normal_host(host)
    address = parse_ip(name)
    for entry in allow:
        entry = _normal_host(entry)
        if entry == name:
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def check_address(address: IPAddress) -> None:
    if not is_public(address):
        raise EgressRefused(
            f"destination address {address} is not public (loopback, private, link-local, "
            "multicast, reserved or unspecified addresses are refused)"
        )


def check_url(url: str, settings: EgressSettings | None = None) -> None:
    """Refuse a URL whose host is not a public destination; names are checked again when
    connecting (:class:`EgressTransport`), since what they resolve to can change."""
    settings = settings or get_egress_settings()
    try:
        parsed = urlsplit(url)
        host = _normal_host(parsed.hostname or "")
    except ValueError as error:
        raise EgressRefused("not a valid URL") from error
    if parsed.scheme not in ("http", "https"):
        raise EgressRefused("only http and https destinations are allowed")
    if not host:
        raise EgressRefused("the URL has no host")
    if is_allowed_host(host, settings.egress_allow_hosts):
        return
    address = parse_ip(host)
    if address is not None:
        check_address(address)
    elif host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise EgressRefused(f"destination host {host} is local")


def public_url(url: U) -> U:
    """:func:`check_url` as a pydantic ``AfterValidator``: the URL back, or a ValueError."""
    check_url(str(url))
    return url


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressTransport(httpx.HTTPTransport):
    """An httpx transport that connects only to checked addresses.

    The host is resolved here; if any address it resolves to is not public the request is
    refused (a name mixing public and private answers is a rebinding attempt), and the
    connection goes to the first checked address, with the original name kept for the Host
    header and TLS (SNI and certificate verification).
    """

    def __init__(
        self,
        settings: EgressSettings | None = None,
        resolver: Resolver = resolve,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings or get_egress_settings()
        self.resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            check_url(str(url), self.settings)
        except EgressRefused as refused:
            raise EgressBlocked(str(refused), request=request) from refused
        host = _normal_host(url.host)
        if is_allowed_host(host, self.settings.egress_allow_hosts):
            return super().handle_request(request)
        literal = parse_ip(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                answers = self.resolver(host, port)
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
            except OSError as error:
                raise httpx.ConnectError(f"cannot resolve {host}", request=request) from error
            if not addresses:
                raise httpx.ConnectError(f"{host} has no address", request=request)
        for address in addresses:
            if is_allowed_host(str(address), self.settings.egress_allow_hosts):
                continue
            try:
                check_address(address)
            except EgressRefused as refused:
                raise EgressBlocked(str(refused), request=request) from refused
        request.url = url.copy_with(host=str(addresses[0]))
        request.headers.setdefault("Host", url.netloc.decode("ascii"))
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return super().handle_request(request)


class EgressBlocked(httpx.TransportError):
    """Raised at connect time for a destination the policy refuses; never retried."""
