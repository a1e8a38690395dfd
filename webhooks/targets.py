"""Where a webhook may be sent: an https:// URL whose host resolves only to public addresses.

Checked at registration and again at each delivery, and the delivery connects to the address that
was checked (no second DNS lookup an attacker could answer differently). WEBHOOK_ALLOW_PRIVATE_TARGETS
(development and tests only) also allows http:// and loopback or private addresses."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from config.errors import ApplicationError

NOT_ALLOWED = "webhook_url_not_allowed"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for Host and TLS SNI)
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _refuse(message: str):
    raise ApplicationError(message, code=NOT_ALLOWED, field="url")


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a seam for tests)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip.teredo is not None:
            ip = ip.teredo[1]
    return ip.is_global and not (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def check(url: str) -> Target:
    """The target to connect to, or ApplicationError 400 `webhook_url_not_allowed` naming `url`."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        _refuse("The URL is not valid.")
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        _refuse("Webhook URLs must use https://.")
    if not parts.hostname:
        _refuse("The URL needs a host name.")
    if parts.username is not None or parts.password is not None:
        _refuse("The URL must not carry credentials.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        _refuse("The URL's host name does not resolve.")
    if not addresses:
        _refuse("The URL's host name does not resolve.")
    if not allow_private and not all(is_public(address) for address in addresses):
        _refuse("The URL must resolve to public internet addresses only.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])
