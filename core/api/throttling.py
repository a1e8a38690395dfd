import logging
import math
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from core.client_address import client_address

logger = logging.getLogger(__name__)

# The GCRA step in Redis, run atomically by the server (a Lua script is one command): read the
# client's theoretical arrival time, refuse or advance it, write it back. With the same step done
# as GET then SET from two processes, both could read the same time and both be let through.
# Redis's own clock is the one clock every app server shares.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or '0')
if arrival < now then arrival = now end
if arrival - now > burst then
  return string.format('%.6f', arrival - now - burst)
end
arrival = arrival + interval
redis.call('SET', KEYS[1], string.format('%.6f', arrival), 'PX', math.ceil((arrival - now) * 1000))
return false
"""
_gcra_script = None  # redis-py's Script: EVALSHA, loading the script on the server when it is missing
_local_lock = threading.Lock()  # the same step, atomic between the threads of one process


def _redis_client(cache):
    """A client on the cache backend's write pool, built once per backend and kept on it, so it
    goes when the backend does (Django's caches are per thread). Django's RedisCache builds a new
    redis.Redis on every call (get_client), which costs more CPU than the script's round trip; a
    client is a thin, thread-safe wrapper around its pool. Django offers no public hook for this,
    so it reads RedisCacheClient's pool and client class (Django 5.2, pinned)."""
    backend = cache._cache
    client = getattr(backend, "_gcra_client", None)
    if client is None:
        client = backend._gcra_client = backend._client(connection_pool=backend._get_connection_pool(True))
    return client


def gcra_take(key: str, *, interval: float, period: float, now: float, alias: str = "default") -> float | None:
    """Take one request from `key`'s bucket (`period / interval` requests, one more every
    `interval` seconds). None when allowed; else the seconds until one would be.

    Exact across every process and server with Django's RedisCache (one Lua script); exact
    within a process with LocMemCache; other caches are read then written (best effort).
    """
    global _gcra_script
    cache = caches[alias]
    if isinstance(cache, RedisCache):
        cache_key = cache.make_and_validate_key(key)
        client = _redis_client(cache)
        if _gcra_script is None:
            _gcra_script = client.register_script(_GCRA_LUA)
        try:
            wait = _gcra_script(keys=[cache_key], args=[repr(interval), repr(period - interval)], client=client)
        except RedisError as exc:
            # Redis unreachable: serve rather than fail every request (the limit is a fairness
            # guard here, not the authentication's); say so, without the address or the key.
            logger.warning("Rate limit not applied: Redis unavailable (%s)", type(exc).__name__)
            return None
        return None if wait is None else float(wait)
    if isinstance(cache, LocMemCache):
        with _local_lock:
            return _gcra_step(cache, key, interval=interval, period=period, now=now)
    return _gcra_step(cache, key, interval=interval, period=period, now=now)


def _gcra_step(cache, key, *, interval, period, now):
    # When the bucket would be empty again with every request so far; `now` if it is full.
    arrival = max(cache.get(key, now), now)
    if arrival - now > period - interval:
        return arrival - now - (period - interval)
    arrival += interval
    cache.set(key, arrival, timeout=math.ceil(arrival - now))
    return None


class ApiClientRateThrottle(BaseThrottle):
    """One budget per API client, whichever token it uses.

    The budget is a bucket of `rate` requests that refills continuously (`6000/min`: a burst of
    6,000, then one more every 10 ms), kept as one number per client: the generic cell rate
    algorithm's "theoretical arrival time". DRF's SimpleRateThrottle keeps a timestamp per request
    of the window instead and rewrites the whole list on every request; at 6,000/min that was a
    pickle of thousands of floats per request, a measurable part of a GET. A clock-aligned fixed
    window would be as cheap but refills the whole budget at once on the minute. The check and
    the update are one atomic step (`gcra_take`): K allowed requests are K, however many arrive
    at once, across processes too when the cache is Redis.
    """

    scope = "api_client"
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
        wait = gcra_take(self.get_cache_key(request), interval=period / requests, period=period, now=self.timer())
        if wait is not None:
            self._wait = wait
            return False
        return True

    def wait(self):
        return self._wait

    def get_ident(self, request):
        # Not DRF's: with NUM_PROXIES unset it keys on X-Forwarded-For, which the client writes.
        return client_address(request)

    def get_cache_key(self, request):
        ident = getattr(request.user, "client_id", None) or self.get_ident(request)
        return f"throttle_{self.scope}_{ident}"
