"""Admin sign-in limits, per account and per client address.

- Per account: after 5 failed sign-ins for one username within 15 minutes, from any addresses,
  that username's sign-ins are refused (the right password too, without checking it) until the
  window has passed. A successful sign-in clears the account's count.
- Per address: after 20 failed sign-ins from one client address within 15 minutes, across any
  usernames, that address's sign-ins are refused until the window has passed. A success does not
  clear it: one valid account must not buy an address more guesses at the others.

The address is config.client_address (the proxy's forwarded one behind DJANGO_TRUSTED_PROXY_COUNT
proxies, the socket's otherwise). Counted in the default cache, so one budget across processes
when DJANGO_CACHE_URL is a shared cache. A window starts at its first failure (fixed, not sliding).
Keys are hashed: a typed username may be a mistyped password, and it never reaches a log or a key.
"""

import hashlib

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

from config.client_address import client_address

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
