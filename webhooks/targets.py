"""Where a webhook may be sent: an https:// URL whose host resolves only to global unicast addresses.

Checked at registration and again at each delivery, and the delivery connects to the address that
was checked (no second DNS lookup an attacker could answer differently). WEBHOOK_ALLOW_PRIVATE_TARGETS
(development and tests only) also allows http:// and loopback or private addresses.

Resolution waits at most WEBHOOK_DNS_TIMEOUT_SECONDS (or less, when the caller's deadline is nearer):
a hostile receiver's name server could otherwise hold the caller for the resolver's own timeouts."""

import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from core.errors import ApplicationError

NOT_ALLOWED = "webhook_url_not_allowed"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
# IANA's special-purpose registries (RFC 6890 and successors): none of these is a receiver on the
# internet, even where the registry (and Python's `is_global`) calls a block globally reachable
# (anycast services, relays, Teredo, whose far end is whatever client address it embeds).
_IPV4_SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24",
        "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
    )
)
_IPV6_SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(block)
    for block in ("2001::/23", "2001:db8::/32", "2620:4f:8000::/48", "3fff::/20")
)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (for Host and TLS SNI)
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


class ResolutionTimeout(ApplicationError):
    """The host name did not resolve in time (a 400 naming `url` at registration, a failed attempt at delivery)."""

    def __init__(self, seconds: float):
        super().__init__(f"The URL's host name did not resolve within {seconds:.3g} s.", code=NOT_ALLOWED, field="url")
        self.seconds = seconds


def _refuse(message: str):
    raise ApplicationError(message, code=NOT_ALLOWED, field="url")


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (a seam for tests)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """resolve(), waiting at most `seconds`. getaddrinfo can't be interrupted, so it runs in a daemon
    thread of its own that we stop waiting for: a hung lookup ends with the resolver's timeouts and
    never blocks a worker's exit (a ThreadPoolExecutor joins its threads at exit, and a shared pool
    would let one hostile name server occupy every other endpoint's lookups)."""
    outcome = {}
    done = threading.Event()

    def run():
        try:
            outcome["addresses"] = resolve(host, port)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="webhook-dns", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        raise ResolutionTimeout(seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["addresses"]


def is_public(address: str) -> bool:
    """Global unicast only. An IPv6 address that carries an IPv4 one (IPv4-mapped, NAT64 64:ff9b::/96,
    6to4) is judged by the IPv4 address it reaches."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        else:
            return ip in _IPV6_GLOBAL_UNICAST and not _in_any(ip, _IPV6_SPECIAL_PURPOSE) and ip.is_global
    return not _in_any(ip, _IPV4_SPECIAL_PURPOSE) and ip.is_global


def _in_any(ip, networks) -> bool:
    return any(ip in network for network in networks)


def check(url: str, *, dns_timeout: float | None = None) -> Target:
    """The target to connect to, or ApplicationError 400 `webhook_url_not_allowed` naming `url`
    (ResolutionTimeout when the host did not resolve within `dns_timeout`, by default
    WEBHOOK_DNS_TIMEOUT_SECONDS)."""
    seconds = settings.WEBHOOK_DNS_TIMEOUT_SECONDS if dns_timeout is None else dns_timeout
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
        addresses = _resolve_within(host, port, seconds)
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


def redacted(url: str) -> str:
    """The URL for audit events, which every `read:audit` client can read: no userinfo, and the
    query and fragment (where a receiver may put its credential) shown only as `?…` / `#…`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(not a valid URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", "…" if parts.fragment else ""))
