import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ApiClientRateThrottle(SimpleRateThrottle):
    """One budget per API client, whichever token it uses.

    A fixed-window counter (cache.add + cache.incr) rather than DRF's sliding log: the log keeps
    and rewrites one timestamp per request, so at 6,000/min every request would pickle thousands
    of floats. A window can admit up to twice the rate across its boundary; that is accepted.
    """

    scope = "api_client"
    cache = cache

    def get_rate(self):
        # DRF copies the rates into a class attribute at import; read them live so a changed
        # setting (and the tests' override) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        principal = request.user
        client_id = getattr(principal, "client_id", None)
        ident = client_id if client_id is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window_start = int(now // self.duration) * self.duration
        self.wait_seconds = window_start + self.duration - now
        window_key = f"{key}:{window_start}"
        if self.cache.add(window_key, 1, timeout=self.duration + 1):
            return True
        try:
            count = self.cache.incr(window_key)
        except ValueError:  # expired between add and incr: this request opens the next window
            self.cache.add(window_key, 1, timeout=self.duration + 1)
            return True
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds
