"""django-oauth-toolkit wiring: the token endpoint serves the client-credentials grant only, to active
clients of active organizations, within a budget of failed client authentications; an API client may
only ask for the scopes it was given; expired tokens are deleted by the worker."""

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import math
import time
from urllib.parse import unquote_plus

from django.core.cache import cache
from django.db.models import Q
from django.http import HttpResponse
from django.utils import timezone
from oauth2_provider.models import clear_expired, get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.views import TokenView

from core.client_address import client_address
from core.errors import PROBLEM_CONTENT_TYPE, problem_body, problem_response
from core.limits import RETRY_AFTER_SECONDS as LIMITS_RETRY_AFTER_SECONDS
from core.limits import STORE_ERRORS

logger = logging.getLogger(__name__)

GRANT_TYPE = "client_credentials"

# Failed client authentications: 10 per client id and 100 per client address in a window of 10
# minutes; past either, that client id's (or address's) token requests are 429 until the window
# ends, the right secret included. Each wrong secret costs a password hash (about 225 ms).
FAILURE_WINDOW_SECONDS = 600
MAX_FAILURES_PER_CLIENT_ID = 10
MAX_FAILURES_PER_ADDRESS = 100


def _api_client(application):
    return getattr(application, "api_client", None) if application is not None else None


class ApiClientScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        api_client = _api_client(application)
        if api_client is None:
            return []
        return sorted(api_client.scopes & set(super().get_available_scopes()))

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        # No `scope` parameter: the token gets everything the client is allowed.
        return self.get_available_scopes(application, request)


class ApiClientOAuth2Validator(OAuth2Validator):
    def _load_application(self, client_id, request):
        # PostgreSQL can't even compare a text column with a NUL byte (a DataError, so a 500): such
        # a client_id names no client, and authentication fails like any other unknown id.
        if client_id is None or "\x00" in str(client_id):
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        api_client = _api_client(request.client)
        # A revoked client, or one whose organization is switched off, authenticates as nobody.
        return api_client is not None and not api_client.is_revoked and api_client.organization.is_active

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type == GRANT_TYPE and super().validate_grant_type(
            client_id, grant_type, client, request, *args, **kwargs
        )

    def validate_user(self, username, password, client, request, *args, **kwargs):
        # No resource-owner credentials are ever checked here (the view refuses the password grant
        # before this point): looking the user up would tell a caller whose password is right.
        return False


# --- the budget of failed client authentications --------------------------------------------------
#
# Counted in the default cache with atomic add/incr, so with Redis it is one budget across every
# process. A window starts with the first attempt and lasts FAILURE_WINDOW_SECONDS; its start is a key
# of its own and names the counter, so a backend whose incr resets a key's timeout (the database
# cache) can't stretch a window. An attempt is counted before the secret is checked and given back
# when the client authenticates: concurrent guesses can't overrun the budget between check and count.


def _ident_key(scope: str, ident: str) -> str:
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"oauth_token_failures:{scope}:{digest}"


class _Counter:
    def __init__(self, scope: str, ident: str, limit: int):
        self.key = _ident_key(scope, ident)
        self.limit = limit
        self.count_key = None
        self.window_end = None

    def reserve(self, now: float) -> bool:
        """Count one attempt in the current window; False when the window's budget was already spent."""
        start_key = f"{self.key}:start"
        start = cache.get(start_key)
        if start is None or now >= start + FAILURE_WINDOW_SECONDS:
            if start is None:
                cache.add(start_key, now, FAILURE_WINDOW_SECONDS)
            else:  # the key outlived its window by a rounding of the backend's expiry
                cache.set(start_key, now, FAILURE_WINDOW_SECONDS)
            start = cache.get(start_key, now)  # whoever added first decides the window
        self.window_end = start + FAILURE_WINDOW_SECONDS
        self.count_key = f"{self.key}:{int(start * 1000)}"
        timeout = max(1, math.ceil(self.window_end - now))
        cache.add(self.count_key, 0, timeout)
        try:
            count = cache.incr(self.count_key)
        except ValueError:  # expired between add and incr: a new counter
            cache.add(self.count_key, 1, timeout)
            count = 1
        return count <= self.limit

    def release(self) -> None:
        """Give back a reservation: the attempt authenticated, or never got to the secret."""
        if self.count_key is None:
            return
        with contextlib.suppress(ValueError):  # the window (and its counter) already expired
            cache.decr(self.count_key)
        self.count_key = None


def _basic_client_id(request) -> str | None:
    """The client id of an HTTP Basic header, read as the toolkit reads it; None if there is none."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials).decode(request.encoding or "utf-8")
    except (binascii.Error, ValueError, LookupError):  # LookupError: a charset Python doesn't know
        return None
    client_id, separator, _ = decoded.partition(":")
    return unquote_plus(client_id) if separator else None


def claimed_client_ids(request) -> set[str]:
    """Every client id the request names. The toolkit tries HTTP Basic and, when that fails (a
    malformed header, an unknown id), the form's client_id: both are counted, so a throwaway Basic
    header can't take a guess at another client's secret off that client's budget."""
    ids = set(request.POST.getlist("client_id"))
    basic = _basic_client_id(request)
    if basic is not None:
        ids.add(basic)
    return ids


# RFC 6749 §5.2 makes error_description optional; the toolkit leaves these without one, and an
# integrator staring at a bare "invalid_client" can't tell what to fix.
_ERROR_DESCRIPTIONS = {
    "invalid_client": (
        "Client authentication failed: send the client id and secret from create_api_client with HTTP "
        "Basic. An unknown client, a wrong secret, a revoked client and one of an inactive organization "
        "all answer this."
    ),
    "invalid_scope": "Ask only for scopes this client was given (space-separated), or leave scope out for all of them.",
    "invalid_request": "The request is missing a parameter, repeats one, or is otherwise malformed.",
    "unauthorized_client": "This client may not use this grant type: use grant_type=client_credentials.",
    "unsupported_grant_type": "Only grant_type=client_credentials is served.",
}
# RFC 6749 §5.2: a 401 names the scheme the client authenticated with (HTTP Basic, the only one
# this endpoint documents); the toolkit answers with a Bearer challenge, the resource servers' scheme.
CLIENT_CHALLENGE = 'Basic realm="oauth", charset="UTF-8"'


def _token_error(status: int, error: str, description: str, headers=None) -> HttpResponse:
    """An RFC 6749 §5.2 error body, as the toolkit's own errors at this endpoint."""
    response = HttpResponse(
        json.dumps({"error": error, "error_description": description}),
        status=status,
        content_type="application/json",
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiTokenView(TokenView):
    """POST /v1/oauth/token. Its own errors follow RFC 6749 §5.2; a wrong method gets the API's
    problem response instead of Django's empty text/html 405."""

    timer = time.time

    def post(self, request, *args, **kwargs):
        # Before anything else reads a credential: any other grant is refused whatever its
        # username and password are, so the answer can't say which of them are right.
        grant_types = request.POST.getlist("grant_type")
        if len(grant_types) != 1 or not grant_types[0]:
            return _token_error(400, "invalid_request", "Send exactly one grant_type: client_credentials.")
        if grant_types[0] != GRANT_TYPE:
            return _token_error(400, "unsupported_grant_type", "Only grant_type=client_credentials is served.")

        # RFC 6749 §3.2: no parameter is sent twice (which scope would count?).
        repeated = sorted(name for name in request.POST if len(request.POST.getlist(name)) > 1)
        if repeated:
            return _token_error(400, "invalid_request", f"Send each parameter at most once: {', '.join(repeated)}.")
        # RFC 6749 §2.3: one client authentication method per request. Authorization header and a
        # secret in the body, or a body client_id naming another client than the header's, leave
        # it open which client is asking.
        if "HTTP_AUTHORIZATION" in request.META:
            basic_id = _basic_client_id(request)
            body_id = request.POST.get("client_id")
            if "client_secret" in request.POST or (body_id is not None and body_id != basic_id):
                return _token_error(
                    400,
                    "invalid_request",
                    "Use one client authentication method: HTTP Basic, without client_id or client_secret in the body.",
                )
        counters = [_Counter("address", client_address(request), MAX_FAILURES_PER_ADDRESS)]
        for client_id in sorted(claimed_client_ids(request)):
            counters.append(_Counter("client", client_id, MAX_FAILURES_PER_CLIENT_ID))
        now = self.timer()
        try:
            refused = [counter for counter in counters if not counter.reserve(now)]
        except STORE_ERRORS as exc:
            # No budget can be kept: refuse rather than let every guess at a secret through.
            _release_all(counters)
            logger.warning("Token request refused: the failure-limit cache is unreachable (%s)", type(exc).__name__)
            return _limits_unavailable()
        if refused:
            _release_all(counters)  # a refused request is no authentication attempt
            retry_after = max(1, math.ceil(max(counter.window_end for counter in refused) - now))
            return _token_error(
                429,
                "rate_limited",
                f"Too many failed client authentications. Retry after {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )

        failed = False
        try:
            response = super().post(request, *args, **kwargs)
            failed = response.status_code == 401
            return _described(response)
        finally:
            if not failed:
                _release_all(counters)

    def http_method_not_allowed(self, request, *args, **kwargs):
        return problem_response(
            405,
            code="method_not_allowed",
            detail=f"Method {request.method} is not allowed here: request a token with POST.",
            headers={"Allow": "POST"},
        )


def _release_all(counters) -> None:
    try:
        for counter in counters:
            counter.release()
    except STORE_ERRORS as exc:  # the reservation stays counted: the safe side
        logger.warning("Token failure budget not released: the cache is unreachable (%s)", type(exc).__name__)


def _limits_unavailable() -> HttpResponse:
    """503: a problem document that is also an RFC 6749 §5.2 error, for OAuth client libraries."""
    detail = "Token requests are paused: the failure limits can't be checked right now. Retry shortly."
    body = {
        **problem_body(503, code="limits_unavailable", detail=detail),
        "error": "temporarily_unavailable",
        "error_description": detail,
    }
    response = HttpResponse(json.dumps(body), status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = str(LIMITS_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _described(response: HttpResponse) -> HttpResponse:
    """The toolkit's error response with an error_description, and a 401's challenge for HTTP Basic."""
    if response.status_code < 400:
        return response
    if response.status_code == 401:
        response["WWW-Authenticate"] = CLIENT_CHALLENGE
    try:
        body = json.loads(response.content)
    except ValueError:
        return response
    if isinstance(body, dict) and body.get("error") in _ERROR_DESCRIPTIONS and not body.get("error_description"):
        body["error_description"] = _ERROR_DESCRIPTIONS[body["error"]]
        response.content = json.dumps(body)
    return response


def delete_expired_tokens() -> int:
    """Delete expired access tokens (and the toolkit's other expired grants) with django-oauth-toolkit's
    own `clear_expired`; returns how many access tokens were deleted. For the worker."""
    AccessToken = get_access_token_model()
    expired = Q(refresh_token__isnull=True, expires__lt=timezone.now())
    before = AccessToken.objects.filter(expired).count()
    if not before:
        return 0
    clear_expired()
    return before - AccessToken.objects.filter(expired).count()
