"""Admin sign-in limits, per account and per client address.

- Per account: after 5 failed sign-ins for one username within 15 minutes, from any addresses,
  that username's sign-ins are refused (the right password too, without checking it) until the
  window has passed. A successful sign-in clears the account's count.
- Per address: after 20 failed sign-ins from one client address within 15 minutes, across any
  usernames, that address's sign-ins are refused until the window has passed. A success does not
  clear it: one valid account must not buy an address more guesses at the others.

The address is core.client_address (the proxy's forwarded one behind DJANGO_TRUSTED_PROXY_COUNT
proxies, the socket's otherwise). Counted in the default cache, so one budget across processes
when DJANGO_CACHE_URL is a shared cache. A window starts at its first failure (fixed, not sliding).
Keys are hashed: a typed username may be a mistyped password, and it never reaches a log or a key.

When the cache can't be reached no budget can be kept, so sign-in is refused (503 with Retry-After,
`sign_in`) rather than let every guess through.
"""

import hashlib
import logging

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from core.client_address import client_address
from core.limits import RETRY_AFTER_SECONDS, STORE_ERRORS, LimitStoreUnavailable

logger = logging.getLogger(__name__)

MAX_ACCOUNT_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
WINDOW_SECONDS = 15 * 60
LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts. Wait 15 minutes before trying again, or ask another administrator to help."
)


def _hashed(kind: str, value: str) -> str:
    return f"admin-login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


def _account_key(username: str) -> str:
    return _hashed("account", username.strip().lower())


def _address_key(request) -> str:
    return _hashed("address", client_address(request) if request is not None else "unknown")


def _count_failure(key: str) -> None:
    # add() starts the window only if none is open; incr() is atomic on Redis and locmem.
    cache.add(key, 0, timeout=WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # the window closed between the two calls: this failure opens the next
        cache.add(key, 1, timeout=WINDOW_SECONDS)


def sign_in_locked(request, username: str) -> bool:
    counts = cache.get_many([_account_key(username), _address_key(request)])
    return (
        counts.get(_account_key(username), 0) >= MAX_ACCOUNT_FAILURES
        or counts.get(_address_key(request), 0) >= MAX_ADDRESS_FAILURES
    )


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        try:
            return self._clean_within_limits()
        except STORE_ERRORS as exc:
            logger.warning("Admin sign-in refused: the failure-limit cache is unreachable (%s)", type(exc).__name__)
            raise LimitStoreUnavailable from exc

    def _clean_within_limits(self):
        username = self.cleaned_data.get("username") or ""
        if sign_in_locked(self.request, username):
            raise ValidationError(LOCKED_OUT_MESSAGE, code="too_many_attempts")
        try:
            cleaned = super().clean()
        except ValidationError:
            _count_failure(_account_key(username))
            _count_failure(_address_key(self.request))
            raise
        cache.delete(_account_key(username))
        return cleaned


def sign_in(request, extra_context=None):
    """The admin's sign-in view (config/urls.py routes /admin/login/ here): the admin's own, or a
    503 page while the sign-in limits can't be kept. The session is untouched: nobody signed in."""
    try:
        return admin.site.login(request, extra_context)
    except LimitStoreUnavailable:
        response = TemplateResponse(
            request, "admin/sign_in_unavailable.html", {**admin.site.each_context(request),
                                                         "retry_after": RETRY_AFTER_SECONDS}, status=503
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
