import math
import time

from django.core.cache import cache as default_cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from config.client_address import client_address


class ApiClientRateThrottle(BaseThrottle):
    """One budget per API client, whichever token it uses.

    The budget is a bucket of `rate` requests that refills continuously (`6000/min`: a burst of
    6,000, then one more every 10 ms), kept as one number per client: the generic cell rate
    algorithm's "theoretical arrival time". DRF's SimpleRateThrottle keeps a timestamp per request
    of the window instead and rewrites the whole list on every request; at 6,000/min that was a
    pickle of thousands of floats per request, a measurable part of a GET. A clock-aligned fixed
    window would be as cheap but refills the whole budget at once on the minute.
    """

    scope = "api_client"
    cache = default_cache
    timer = time.time

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view):
        # Read live, not at import: a changed setting (and the tests' override) takes effect.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if rate is None:
            return True
        requests, period = SimpleRateThrottle.parse_rate(self, rate)  # DRF's reading of "6000/min"
        if requests <= 0:  # "0/min": nothing gets through, as with DRF's own throttles
            self._wait = period
            return False
        interval = period / requests
        key = self.get_cache_key(request)
        now = self.timer()
        # When the bucket would be empty again with every request so far; `now` if it is full.
        arrival = max(self.cache.get(key, now), now)
        if arrival - now > period - interval:
            self._wait = arrival - now - (period - interval)
            return False
        arrival += interval
        self.cache.set(key, arrival, timeout=math.ceil(arrival - now))
        return True

    def wait(self):
        return self._wait

    def get_ident(self, request):
        # Not DRF's: with NUM_PROXIES unset it keys on X-Forwarded-For, which the client writes.
        return client_address(request)

    def get_cache_key(self, request):
        ident = getattr(request.user, "client_id", None) or self.get_ident(request)
        return f"throttle_{self.scope}_{ident}"
