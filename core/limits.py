"""Limits that can't weaken silently.

The API's rate limit, the token endpoint's failure budget and the admin sign-in's all count in
Django's default cache. A per-process cache gives every server process a budget of its own, so
"10 wrong secrets" silently becomes 10 per process. With DEBUG off, several processes over such a
cache are refused at start (gunicorn.conf.py's on_starting) and by `check --deploy`; one explicit
process (WEB_CONCURRENCY=1) may keep memory.

When the shared cache can't be reached, the credential-guessing budgets (token endpoint, admin
sign-in) refuse with 503 and Retry-After rather than let every guess through
(`LimitStoreUnavailable`); the API's rate limit, a fairness guard, serves on and logs
(core/api/throttling.py).
"""

from django.core import checks
from django.db import DatabaseError
from redis.exceptions import RedisError

# Caches whose counters every process and server see, with an atomic incr.
SHARED_CACHE_BACKENDS = frozenset(
    {
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.db.DatabaseCache",
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "django.core.cache.backends.memcached.PyLibMCCache",
    }
)

# What a cache backend raises when its store is unreachable: redis-py's errors, the database
# cache's DatabaseError, a socket's OSError (memcached clients).
STORE_ERRORS = (RedisError, DatabaseError, OSError)
RETRY_AFTER_SECONDS = 10


class LimitStoreUnavailable(Exception):
    """The shared cache holding a failure budget can't be reached: the attempt is refused."""


def per_process_limits_refusal(*, debug: bool, processes: int, cache_backend: str) -> str | None:
    """The one line that stops the service, or None when its limits hold across processes."""
    if debug or processes <= 1 or cache_backend in SHARED_CACHE_BACKENDS:
        return None
    return (
        f"Refusing to start: {processes} server processes would each keep their own rate limits in a "
        f"per-process cache ({cache_backend.rsplit('.', 1)[-1]}); set DJANGO_CACHE_URL to a shared cache "
        "(redis://host:6379/1), or WEB_CONCURRENCY=1 for a single process."
    )


def check_limits_are_shared(app_configs=None, **kwargs):
    """`check --deploy`: the same refusal, for the processes gunicorn.conf.py would start."""
    from django.conf import settings

    from config.serving import web_processes

    refusal = per_process_limits_refusal(
        debug=settings.DEBUG, processes=web_processes(), cache_backend=settings.CACHES["default"]["BACKEND"]
    )
    return [checks.Error(refusal, id="limits.E001")] if refusal else []
