"""Admin sign-in throttling: after 5 failed attempts for one username from one address within
15 minutes, further attempts are refused (without even checking the password) until the window
has passed. Counted in the default cache; a successful sign-in clears the count."""

import hashlib

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts for this account from your address. "
    "Wait 15 minutes before trying again, or ask another administrator to help."
)


def _key(request, username: str) -> str:
    address = (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"
    # Hashed: the cache key must not carry the typed username (it may be a mistyped password).
    digest = hashlib.sha256(f"{address}\n{username.strip().lower()}".encode()).hexdigest()
    return f"admin-login-failures:{digest}"


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username") or ""
        key = _key(self.request, username)
        if cache.get(key, 0) >= MAX_FAILURES:
            raise ValidationError(LOCKED_OUT_MESSAGE, code="too_many_attempts")
        try:
            cleaned = super().clean()
        except ValidationError:
            try:
                cache.incr(key)
            except ValueError:  # first failure in this window: the window starts now
                cache.add(key, 1, timeout=WINDOW_SECONDS)
            raise
        cache.delete(key)
        return cleaned
