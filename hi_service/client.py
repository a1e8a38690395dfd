"""A client for the HI Service's provider-individual search (TECH.SIS.HI.31, version 5.0.0).

One operation: ``searchForProviderIndividual``, SOAP 1.2 over HTTPS with a client certificate,
each request signed (XML Signature, signxml) over its body and headers, each reply's signature
verified against the register's certificate. :meth:`HIServiceClient.search_provider_individual`
never raises for anything the register does: it answers a :class:`SearchResult` whose ``outcome``
says what happened and whose ``reason`` says why (never an identifier value).

Privacy: nothing here logs an identifier value, a name or a date of birth; logs carry the
outcome, the reason and the duration only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "ACTIVE_STATUSES",
    "INACTIVE_STATUSES",
    "HIServiceClient",
    "ProviderSearch",
    "SearchResult",
    "ServiceMessage",
    "certificate_expiry",
    "configured",
    "get_client",
    "hpii_status_kind",
    "reset_client",
]

# The HPI-I statuses the register sends (``status`` in the search result), by what they mean for
# prescribing. Compared case-insensitively; any other value is "unknown" (never "active").
ACTIVE_STATUSES = frozenset({"active"})
INACTIVE_STATUSES = frozenset({"deactivated", "retired"})

OUTCOMES = ("found", "not_found", "mismatch", "fault", "error")


@dataclass(frozen=True)
class ProviderSearch:
    """What is searched for: an HPI-I or an AHPRA registration number, with the family name.

    With ``hpii`` the register is asked whether that HPI-I belongs to this person; with
    ``registration_id`` only (the Agency's recommended search) it answers the HPI-I it holds for
    that registration. ``sex`` is one of F, I, M, N. ``given_names`` and ``date_of_birth`` narrow
    the match when given."""

    hpii: str | None
    registration_id: str | None
    family_name: str
    given_names: tuple[str, ...] = ()
    date_of_birth: date | None = None
    sex: str | None = None


@dataclass(frozen=True)
class ServiceMessage:
    """One ``serviceMessage`` of the register: ``severity`` Fatal, Error, Warning or Informational."""

    code: str
    severity: str
    reason: str
    details: str = ""


@dataclass(frozen=True)
class SearchResult:
    """The register's answer to one search.

    ``outcome``:
    - ``found``: the register answered with an HPI-I for these details (``hpii``, ``hpii_status``
      and the details as the register holds them are set);
    - ``not_found``: the register answered, without an HPI-I, and no service message says it knows
      the identifier;
    - ``mismatch``: the register knows the HPI-I or AHPRA number but not with these details: an
      answer without an HPI-I whose service messages carry one of the codes in
      ``settings.HI_MISMATCH_CODES`` (the licensed SIS's table names them; the emulator's are the
      default, see ``hi_service/fixtures.py``);
    - ``fault``: the register refused the request (a SOAP fault, its service messages kept);
    - ``error``: the register could not be asked or its answer can't be trusted: transport error,
      timeout, garbage or unsafe XML, a reply too large or too deep, a missing or bad signature on
      the reply, an answer about another HPI-I (or registration) than asked, an expired
      certificate, not configured, or paused after consecutive failures.

    ``reason`` is short and never holds an identifier value. ``message_id`` is the register's own
    id of the reply (its ``wsa:MessageID``), when it sent one. ``duration_ms`` covers the call."""

    outcome: str
    hpii: str | None = None
    hpii_status: str | None = None
    registration_id: str | None = None
    family_name: str | None = None
    given_names: tuple[str, ...] = ()
    date_of_birth: date | None = None
    sex: str | None = None
    service_messages: tuple[ServiceMessage, ...] = ()
    message_id: str | None = None
    reason: str = ""
    duration_ms: int = 0

    @property
    def hpii_status_kind(self) -> str:
        return hpii_status_kind(self.hpii_status)


def hpii_status_kind(status: str | None) -> str:
    """``active``, ``inactive`` (deactivated, retired) or ``unknown`` for the register's status value."""
    value = (status or "").strip().lower()
    if value in ACTIVE_STATUSES:
        return "active"
    if value in INACTIVE_STATUSES:
        return "inactive"
    return "unknown"


class HIServiceClient:
    """The provider-individual search over mutual TLS, with per-call timeouts and a pause.

    Made from ``settings`` by :func:`get_client`; thread-safe (one httpx client with a pool).
    After ``settings.HI_FAILURES_BEFORE_PAUSE`` consecutive ``error`` outcomes that a retry could
    cure (transport, timeout, a 5xx), the client answers ``error`` ("paused after failures")
    without calling for ``settings.HI_PAUSE_SECONDS``: a register that is down is not hammered and
    a write does not wait on it. Any answer from the register ends the run of failures."""

    def __init__(
        self,
        *,
        url: str,
        client_cert: str,
        client_key: str,
        signing_cert: str | None = None,
        signing_key: str | None = None,
        ca_bundle: str | None = None,
        reply_signing_cert: str | None = None,
        product: dict[str, str] | None = None,
        user_qualifier: str = "",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        failures_before_pause: int = 3,
        pause_seconds: float = 30.0,
        mismatch_codes: frozenset[str] = frozenset(),
    ) -> None:
        raise NotImplementedError

    def search_provider_individual(
        self, *, hpio: str, user_id: str, search: ProviderSearch, timeout: float | None = None
    ) -> SearchResult:
        """Ask the register; never raises for its behaviour.

        ``hpio`` is the organization's HPI-O (16 digits) sent in the ``hpio`` header; ``user_id``
        the local user making the search (sent in the ``user`` header with
        ``settings.HI_USER_QUALIFIER``); ``timeout`` (seconds) caps this call as a whole,
        connection included, below the configured timeouts."""
        raise NotImplementedError

    def paused_for(self) -> float:
        """Seconds left in the pause after failures (0.0 when calls go through)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


_client: HIServiceClient | None = None
_client_lock = threading.Lock()


def configured() -> bool:
    """Whether the register can be asked at all (``HI_SERVICE_URL`` is set)."""
    from django.conf import settings

    return bool(getattr(settings, "HI_SERVICE_URL", ""))


def get_client() -> HIServiceClient:
    """The process's client, made from settings on first use (see :func:`reset_client`)."""
    raise NotImplementedError


def reset_client() -> None:
    """Forget the process's client (tests, or after the settings or certificates change)."""
    raise NotImplementedError


def certificate_expiry() -> list[tuple[str, datetime]]:
    """``(label, not_after)`` of the TLS client and the signing certificates configured.

    Labels: ``"HI Service TLS client certificate"``, ``"HI Service signing certificate"`` (the
    signing pair is listed once when it is the client pair). ``not_after`` is timezone-aware UTC.
    An unreadable certificate is skipped; nothing is listed when the client is not configured."""
    raise NotImplementedError
