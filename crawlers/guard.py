"""SSRF guard: addresses a scan may connect to, decided after DNS resolution.

A hostile page can link to ``http://169.254.169.254/`` (cloud metadata), to
``http://10.0.0.1/admin`` or to a name that resolves to ``127.0.0.1``. The guard resolves
every host itself, classifies each address (:func:`classify`), refuses the URL when any
address is not public unless an allow-list names it, and hands the fetcher the checked
address to connect to, so that a second DNS answer cannot differ from the checked one
(DNS rebinding). The fetcher asks again on every redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from crawlers.errors import BlockedAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, Alibaba Cloud, AWS IPv6).
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254", "169.254.170.2")
)
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "64:ff9b:1::/48",  # local-use NAT64
        "2001:db8::/32",  # documentation
    )
)

Resolver = Callable[[str, int], list[str]]


def classify(address: str | IPAddress) -> str | None:
    """Why ``address`` must not be connected to, or ``None`` for a public address.

    IPv4-mapped (``::ffff:10.0.0.1``), IPv4-compatible and 6to4/NAT64 forms are judged by
    the IPv4 address they carry.

    Parameters
    ----------
    address : str or ip address
        A literal address; this function never resolves or connects.

    Returns
    -------
    str or None
        ``"metadata"``, ``"loopback"``, ``"private"``, ``"link-local"``, ``"multicast"``,
        ``"unspecified"``, ``"reserved"``, or ``None``.

    Examples
    --------
    >>> classify("169.254.169.254"), classify("::ffff:127.0.0.1"), classify("8.8.8.8")
    ('metadata', 'loopback', None)
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return classify(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return classify(ip.sixtofour)
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return classify(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            return classify(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip in METADATA:
        return "metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return "reserved"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Addresses of ``host`` from the system resolver (literal addresses returned as given)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BlockedAddressError(f"cannot resolve {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


@dataclass
class AddressGuard:
    """Resolves hosts and refuses addresses that are not public, unless allow-listed.

    Parameters
    ----------
    allow : iterable of str
        Addresses or networks (``"127.0.0.1"``, ``"10.1.0.0/16"``) a scan may reach although
        :func:`classify` refuses them. Empty by default.
    resolver : callable, optional
        ``(host, port) -> [address, ...]``; the system resolver by default (tests pass a
        table so that no lookup leaves the machine).
    """

    allow: Iterable[str] = ()
    resolver: Resolver = field(default=system_resolver)

    def __post_init__(self) -> None:
        try:
            self._allowed: tuple[IPNetwork, ...] = tuple(
                ipaddress.ip_network(a, strict=False) for a in self.allow
            )
        except ValueError as exc:
            raise BlockedAddressError(f"bad allow-list entry: {exc}") from None

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused (its class) or ``None`` when it may be connected to."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "not an address"
        if any(ip.version == net.version and ip in net for net in self._allowed):
            return None
        return classify(ip)

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: resolved, every answer checked.

        Raises
        ------
        BlockedAddressError
            The host does not resolve, or any of its addresses is refused (one bad answer
            refuses the host: a name that resolves to a public and a private address is a
            rebinding attempt).
        """
        addresses = self.resolver(host, port)
        if not addresses:
            raise BlockedAddressError(f"{host!r} resolves to no address")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise BlockedAddressError(f"{host!r} resolves to {address}, a {why} address; refused")
        return addresses[0]
