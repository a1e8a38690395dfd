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

import logging
import ssl
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from cryptography import x509

from hi_service import soap

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
logger = logging.getLogger(__name__)


# What is searched for: the request body's fields (hi_service/soap.py), one dataclass for both.
ProviderSearch = soap.Search


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
    After ``failures_before_pause`` (``settings.HI_FAILURES_BEFORE_PAUSE``) consecutive ``error``
    outcomes that a retry could cure (transport, timeout, an HTTP error without a SOAP answer),
    the client answers ``error`` ("paused after failures") without calling for ``pause_seconds``
    (``settings.HI_PAUSE_SECONDS``): a register that is down is not hammered and a write does not
    wait on it. Any answer from the register ends the run of failures."""

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
        self.url = url
        self.client_cert, self.client_key = client_cert, client_key
        self.signing_cert = signing_cert or client_cert
        self.signing_key = signing_key or client_key
        self.ca_bundle = ca_bundle or None
        self.reply_signing_cert = reply_signing_cert or None
        self.product = dict(product or {})
        self.user_qualifier = user_qualifier
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.failures_before_pause, self.pause_seconds = failures_before_pause, pause_seconds
        self.mismatch_codes = frozenset(mismatch_codes)
        self._lock = threading.Lock()
        self._failures = 0
        self._paused_until = 0.0
        self._http: httpx.Client | None = None
        self._setup_error = ""
        try:
            self._signing_key_pem = Path(self.signing_key).read_bytes()
            self._signing_cert_pem = Path(self.signing_cert).read_bytes()
            self._reply_cert_pem = Path(self.reply_signing_cert).read_bytes() if self.reply_signing_cert else None
            self._expiries = _expiries(self.client_cert, self.signing_cert)
            context = ssl.create_default_context(cafile=self.ca_bundle)
            context.load_cert_chain(self.client_cert, self.client_key)
            self._http = httpx.Client(verify=context, trust_env=False, follow_redirects=False)
        except (OSError, ValueError, ssl.SSLError) as exc:
            # The reason names the setting's kind of file, never its content.
            self._setup_error = f"the HI Service certificates or keys can't be loaded ({type(exc).__name__})"
        if not self._setup_error and not (self.reply_signing_cert or self.ca_bundle):
            self._setup_error = (
                "neither HI_SERVICE_REPLY_SIGNING_CERT nor HI_SERVICE_CA_BUNDLE is set: replies can't be verified"
            )

    # -- the pause ----------------------------------------------------------------------------

    def paused_for(self) -> float:
        """Seconds left in the pause after failures (0.0 when calls go through)."""
        with self._lock:
            return max(0.0, self._paused_until - time.monotonic())

    def _record(self, *, failed: bool) -> None:
        with self._lock:
            if not failed:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self.failures_before_pause:
                self._paused_until = time.monotonic() + self.pause_seconds
                self._failures = 0

    # -- the call -----------------------------------------------------------------------------

    def search_provider_individual(
        self, *, hpio: str, user_id: str, search: ProviderSearch, timeout: float | None = None
    ) -> SearchResult:
        """Ask the register; never raises for its behaviour.

        ``hpio`` is the organization's HPI-O (16 digits) sent in the ``hpio`` header; ``user_id``
        the local user making the search (sent in the ``user`` header with
        ``settings.HI_USER_QUALIFIER``); ``timeout`` (seconds) caps this call as a whole,
        connection included, below the configured timeouts."""
        started = time.monotonic()
        result = self._search(hpio=hpio, user_id=user_id, search=search, timeout=timeout, started=started)
        result = _with_duration(result, started)
        logger.info("hi service search outcome=%s reason=%s duration_ms=%s",
                    result.outcome, result.reason, result.duration_ms)
        return result

    def _search(self, *, hpio, user_id, search, timeout, started) -> SearchResult:
        if self._setup_error or self._http is None:
            return SearchResult("error", reason=self._setup_error or "the HI Service client is not set up")
        now = datetime.now(UTC)
        for label, not_after in self._expiries:
            if not_after <= now:
                return SearchResult("error", reason=f"the {label} expired on {not_after:%Y-%m-%d}")
        paused = self.paused_for()
        if paused > 0:
            return SearchResult("error", reason=f"paused after failures ({paused:.0f} s left)")
        if not (search.hpii or search.registration_id) or not search.family_name:
            return SearchResult("error", reason="a search needs an HPI-I or an AHPRA number, and a family name")
        try:
            envelope, request_id = soap.build_request(
                to=self.url, hpio=hpio, user_id=user_id, user_qualifier=self.user_qualifier, product=self.product,
                search=replace(search, given_names=tuple(search.given_names)),
            )
            soap.sign_request(envelope, key_pem=self._signing_key_pem, cert_pem=self._signing_cert_pem)
        except (ValueError, TypeError) as exc:
            return SearchResult("error", reason=f"the request could not be signed ({type(exc).__name__})")
        data = soap.serialize(envelope)
        total = self.connect_timeout + self.read_timeout
        connect = self.connect_timeout
        if timeout is not None:
            total, connect = min(total, timeout), min(connect, timeout)
        deadline = started + total
        if deadline <= time.monotonic():
            return SearchResult("error", reason="no time was left for the call")
        try:
            status, reply = self._post(data, connect=connect, deadline=deadline)
        except _TooLarge:
            self._record(failed=False)  # the register answered; retrying gets the same
            return SearchResult("error", reason="the reply is larger than allowed")
        except httpx.TimeoutException:
            self._record(failed=True)
            return SearchResult("error", reason="the HI Service did not answer in time")
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            self._record(failed=True)
            return SearchResult("error", reason=f"the HI Service could not be reached ({type(exc).__name__})")
        try:
            result = self._read(status, reply, search, request_id)
        except Exception as exc:  # the contract: nothing the reply holds makes the search raise
            # The class name only: a message could echo the reply's values.
            logger.warning("hi service reply could not be read: %s", type(exc).__name__)
            result = SearchResult("error", reason=f"unusable reply ({type(exc).__name__})")
        self._record(failed=result.outcome == "error" and status >= 500 and result.reason == _NOT_SOAP)
        return result

    def _post(self, data: bytes, *, connect: float, deadline: float) -> tuple[int, bytes]:
        remaining = max(0.001, deadline - time.monotonic())
        # Each phase has its own limit, and none may run past the call's deadline.
        timeouts = httpx.Timeout(min(self.read_timeout, remaining), connect=min(connect, remaining))
        headers = {"Content-Type": soap.CONTENT_TYPE, "Accept": "application/soap+xml"}
        with self._http.stream("POST", self.url, content=data, headers=headers, timeout=timeouts) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > soap.MAX_BYTES:
                raise _TooLarge
            chunks, size = [], 0
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > soap.MAX_BYTES:
                    raise _TooLarge
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the reply took longer than the call's timeout")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _read(self, status: int, reply: bytes, search: ProviderSearch, request_id: str) -> SearchResult:
        try:
            envelope = soap.parse(reply)
        except soap.UnsafeXML as exc:
            return SearchResult("error", reason=_NOT_SOAP if status >= 500 else f"unusable reply: {exc}")
        if envelope.tag != soap.q(soap.SOAP, "Envelope"):
            reason = _NOT_SOAP if status >= 500 else "unusable reply: not a SOAP 1.2 envelope"
            return SearchResult("error", reason=reason)
        try:
            parts = soap.verified_parts(envelope, x509_cert=self._reply_cert_pem,
                                        ca_pem_file=None if self._reply_cert_pem else self.ca_bundle)
        except soap.BadSignature as exc:
            return SearchResult("error", reason=f"the reply can't be trusted: {exc}")
        body = parts.get("Body")
        if body is None:
            return SearchResult("error", reason="the reply can't be trusted: its body is not signed")
        message_id = None
        if "MessageID" in parts:
            message_id = (parts["MessageID"].text or "").strip() or None
        # A signed answer to another request (a replayed "Active", say) is not this answer.
        if "RelatesTo" in parts and (parts["RelatesTo"].text or "").strip() != request_id:
            return SearchResult("error", message_id=message_id, reason="the reply answers another request")
        fault = body.find(soap.q(soap.SOAP, "Fault"))
        if fault is not None:
            messages = _messages(fault.find(f"{soap.q(soap.SOAP, 'Detail')}/{soap.q(soap.CCE, 'serviceMessages')}"))
            codes = ", ".join(m.code for m in messages) or "no service message"
            return SearchResult("fault", service_messages=messages, message_id=message_id,
                                reason=f"the HI Service refused the request ({codes})")
        result = body.find(f"{soap.q(soap.SVC, 'searchForProviderIndividualResponse')}/"
                           f"{soap.q(soap.SI, 'searchForProviderIndividualResult')}")
        if result is None:
            return SearchResult("error", message_id=message_id, reason="unusable reply: no search result")
        messages = _messages(result.find(soap.q(soap.CCE, "serviceMessages")))
        hpii_uri = soap.text(result, soap.PCE, "hpiiNumber")
        if not hpii_uri:
            if any(m.code in self.mismatch_codes for m in messages):
                return SearchResult("mismatch", service_messages=messages, message_id=message_id,
                                    reason="the register knows the identifier, not with these details")
            return SearchResult("not_found", service_messages=messages, message_id=message_id,
                                reason="the register has no provider for these details")
        if not hpii_uri.startswith(soap.HPII_URI_PREFIX) or not _is_hpii(hpii_uri[len(soap.HPII_URI_PREFIX):]):
            return SearchResult("error", message_id=message_id, reason="unusable reply: the HPI-I is malformed")
        hpii = hpii_uri[len(soap.HPII_URI_PREFIX):]
        registration_id = soap.text(result, soap.PT, "registrationId")
        if search.hpii and hpii != search.hpii:
            return SearchResult("error", message_id=message_id, reason="the reply is about another HPI-I than asked")
        if (search.registration_id and registration_id
                and registration_id.upper() != search.registration_id.upper()):
            return SearchResult("error", message_id=message_id,
                                reason="the reply is about another registration than asked")
        try:
            born = soap.text(result, soap.PD, "dateOfBirth")
            date_of_birth = date.fromisoformat(born) if born else None
        except ValueError:
            return SearchResult("error", message_id=message_id, reason="unusable reply: the date of birth is malformed")
        return SearchResult(
            "found",
            hpii=hpii,
            hpii_status=soap.text(result, soap.PCE, "status"),
            registration_id=registration_id,
            family_name=soap.text(result, soap.INC, "familyName"),
            given_names=tuple((g.text or "").strip() for g in result.findall(soap.q(soap.INC, "givenName"))),
            date_of_birth=date_of_birth,
            sex=soap.text(result, soap.CCE, "sex"),
            service_messages=messages,
            message_id=message_id,
            reason="the register has this HPI-I for these details",
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


_NOT_SOAP = "the HI Service answered with an error and no SOAP reply"


class _TooLarge(Exception):
    pass


def _is_hpii(value: str) -> bool:
    return len(value) == 16 and value.isdigit() and value.startswith("800361")


def _messages(container) -> tuple[ServiceMessage, ...]:
    return tuple(ServiceMessage(code, severity, reason, details)
                 for code, severity, reason, details in soap.read_service_messages(container))


def _with_duration(result: SearchResult, started: float) -> SearchResult:
    return replace(result, duration_ms=int((time.monotonic() - started) * 1000))


def _not_after(path: str) -> datetime | None:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def _expiries(client_cert: str, signing_cert: str) -> list[tuple[str, datetime]]:
    found = []
    for label, path in (("HI Service TLS client certificate", client_cert),
                        ("HI Service signing certificate", signing_cert)):
        if not path or (label.endswith("signing certificate") and path == client_cert):
            continue
        not_after = _not_after(path)
        if not_after is not None:
            found.append((label, not_after))
    return found


_client: HIServiceClient | None = None
_client_lock = threading.Lock()


def configured() -> bool:
    """Whether the register can be asked at all (``HI_SERVICE_URL`` is set)."""
    from django.conf import settings

    return bool(getattr(settings, "HI_SERVICE_URL", ""))


def _from_settings() -> HIServiceClient:
    from django.conf import settings

    return HIServiceClient(
        url=settings.HI_SERVICE_URL,
        client_cert=settings.HI_SERVICE_CLIENT_CERT,
        client_key=settings.HI_SERVICE_CLIENT_KEY,
        signing_cert=settings.HI_SERVICE_SIGNING_CERT or None,
        signing_key=settings.HI_SERVICE_SIGNING_KEY or None,
        ca_bundle=settings.HI_SERVICE_CA_BUNDLE or None,
        reply_signing_cert=settings.HI_SERVICE_REPLY_SIGNING_CERT or None,
        product={
            "vendor_qualifier": settings.HI_PRODUCT_VENDOR_QUALIFIER,
            "vendor_id": settings.HI_PRODUCT_VENDOR_ID,
            "name": settings.HI_PRODUCT_NAME,
            "version": settings.HI_PRODUCT_VERSION,
            "platform": settings.HI_PRODUCT_PLATFORM,
        },
        user_qualifier=settings.HI_USER_QUALIFIER,
        connect_timeout=settings.HI_CONNECT_TIMEOUT,
        read_timeout=settings.HI_READ_TIMEOUT,
        failures_before_pause=settings.HI_FAILURES_BEFORE_PAUSE,
        pause_seconds=settings.HI_PAUSE_SECONDS,
        mismatch_codes=frozenset(settings.HI_MISMATCH_CODES),
    )


class _NotConfigured(HIServiceClient):
    """What :func:`get_client` gives without ``HI_SERVICE_URL``: every search is ``error``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._http = None
        self._setup_error = "the HI Service is not configured (HI_SERVICE_URL is not set)"

    def search_provider_individual(self, *, hpio, user_id, search, timeout=None) -> SearchResult:
        return SearchResult("error", reason=self._setup_error)


def get_client() -> HIServiceClient:
    """The process's client, made from settings on first use (see :func:`reset_client`).

    Without ``HI_SERVICE_URL`` it is a client whose every search is ``error`` ("not configured"):
    callers that should not ask at all check :func:`configured` first."""
    global _client
    with _client_lock:
        if _client is None:
            _client = _from_settings() if configured() else _NotConfigured()
        return _client


def reset_client() -> None:
    """Forget the process's client and its pause (tests, or after the settings or certificates change)."""
    global _client
    with _client_lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def certificate_expiry() -> list[tuple[str, datetime]]:
    """``(label, not_after)`` of the TLS client and the signing certificates configured.

    Labels: ``"HI Service TLS client certificate"``, ``"HI Service signing certificate"`` (the
    signing pair is listed once when it is the client pair). ``not_after`` is timezone-aware UTC.
    An unreadable certificate is skipped; nothing is listed when the client is not configured."""
    from django.conf import settings

    if not configured():
        return []
    client_cert = settings.HI_SERVICE_CLIENT_CERT
    return _expiries(client_cert, settings.HI_SERVICE_SIGNING_CERT or client_cert)
