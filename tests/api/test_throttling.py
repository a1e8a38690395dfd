"""Rate limits per API client: 429 problem+json with Retry-After, one budget per client."""

import base64

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from audit.context import Actor
from core.api.throttling import ApiClientRateThrottle
from organizations.services import api_client_create
from tests.isolation import redis_key_prefix

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_rate(settings):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {"api_client": "3/min"}
    settings.REST_FRAMEWORK = rest_framework
    cache.clear()
    yield
    cache.clear()


def test_the_request_over_the_limit_is_a_429_problem_with_retry_after(tiny_rate, api, users_url):
    for _ in range(3):
        assert api.get(users_url).status_code == 200

    throttled = api.get(users_url)

    assert throttled.status_code == 429
    assert throttled["Content-Type"] == "application/problem+json"
    body = throttled.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60


def test_every_endpoint_draws_on_the_same_budget(tiny_rate, api, users_url, organization):
    api.get(users_url)
    api.get(f"/v1/organizations/{organization.pk}")
    api.get(f"/v1/organizations/{organization.pk}/audit-events")

    assert api.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@b.com"}, format="json").status_code == 429


def test_another_api_client_has_its_own_budget(tiny_rate, api, api_for, organization, users_url):
    for _ in range(4):
        api.get(users_url)
    assert api.get(users_url).status_code == 429

    assert api_for(organization).get(users_url).status_code == 200


def _token(client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_new_tokens_of_one_client_do_not_reset_its_budget(tiny_rate, organization, users_url):
    api_client, secret = api_client_create(actor=Actor.system("tests"), organization=organization, name="PMS", scopes=("read:users",))
    client_id = api_client.application.client_id
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {_token(client_id, secret)}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {_token(client_id, secret)}")

    for _ in range(3):
        assert first.get(users_url).status_code == 200

    assert second.get(users_url).status_code == 429


def test_the_budget_refills_continuously_not_all_at_once(tiny_rate, api, users_url, monkeypatch):
    # 3/min: a burst of 3, then one more every 20 seconds.
    clock = [1_000_000.0]
    monkeypatch.setattr(ApiClientRateThrottle, "timer", lambda self: clock[0])
    for _ in range(3):
        assert api.get(users_url).status_code == 200
    refused = api.get(users_url)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "20"

    clock[0] += 19
    assert api.get(users_url)["Retry-After"] == "1"

    clock[0] += 1
    assert api.get(users_url).status_code == 200
    assert api.get(users_url).status_code == 429

    clock[0] += 60  # a quiet minute fills the bucket again, and no further
    assert [api.get(users_url).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_zero_rate_refuses_everything_rather_than_failing(settings, api, users_url):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {"api_client": "0/min"}
    settings.REST_FRAMEWORK = rest_framework

    response = api.get(users_url)

    assert response.status_code == 429
    assert response["Retry-After"] == "60"


# --- exact across threads and processes -----------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/6"  # the suite's Redis database; each test's keys under its own prefix


def _redis_answers():
    import redis

    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_answers(), reason=f"needs Redis at {REDIS_URL}")


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": redis_key_prefix("test-throttle"),
        }
    }


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/6", "rediss://cache.internal:6379/0", "rediscache://h:6379/1"])
def test_a_redis_cache_url_is_djangos_own_redis_cache(url):
    import environ

    assert environ.Env.cache_url_config(url)["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


@needs_redis
def test_with_redis_the_budget_and_retry_after_are_the_same(redis_cache, tiny_rate, api, users_url):
    assert [api.get(users_url).status_code for _ in range(3)] == [200, 200, 200]

    throttled = api.get(users_url)

    assert throttled.status_code == 429
    assert throttled.json()["code"] == "rate_limited"
    assert 19 <= int(throttled["Retry-After"]) <= 20  # 3/min: the next one fits 20 s after the first


def _race(count, take):
    """`count` threads call take() at once; the results."""
    import threading

    barrier = threading.Barrier(count)
    results = []

    def run():
        barrier.wait()
        results.append(take())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_k_allowed_of_many_at_once_are_exactly_k(backend, request, settings):
    if backend == "redis":
        if not _redis_answers():
            pytest.skip(f"needs Redis at {REDIS_URL}")
        request.getfixturevalue("redis_cache")
    import time
    import uuid

    from core.api.throttling import gcra_take

    key = f"race-{uuid.uuid4().hex}"
    # 7 an hour: a burst of 7, and no refill within the test.
    results = _race(60, lambda: gcra_take(key, interval=3600 / 7, period=3600, now=time.time()))

    assert sum(wait is None for wait in results) == 7
    assert all(wait > 0 for wait in results if wait is not None)


def test_an_unreachable_redis_lets_requests_through_and_says_so(settings, api, users_url, caplog):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {"api_client": "1/min"}
    settings.REST_FRAMEWORK = rest_framework
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/6",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    assert [api.get(users_url).status_code for _ in range(2)] == [200, 200]
    assert "Rate limit not applied: Redis unavailable (ConnectionError)" in caplog.text
    assert "127.0.0.1:1" not in caplog.text


@needs_redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_server_processes_sharing_redis_allow_exactly_k(organization, issue_token, tmp_path):
    import os

    from django.db import connection

    from bench.stack import Stack, request

    if connection.vendor != "postgresql" or not os.environ.get("DATABASE_URL"):
        pytest.skip("needs PostgreSQL: the servers read the test database")
    token = issue_token(organization, scopes=("read:users",))
    s = connection.settings_dict
    database_url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    stack = Stack(database_url, log_dir=tmp_path,
                  extra_env={"DJANGO_CACHE_URL": f"{REDIS_URL}?key_prefix={redis_key_prefix('test-servers')}",
                             "API_THROTTLE_RATE": "10/hour"})
    try:
        bases = [stack.start_app("a"), stack.start_app("b")]  # one process each, 16 threads (gunicorn.conf.py)
        urls = [f"{base}/v1/organizations/{organization.pk}" for base in bases]
        counter = iter(range(1000))
        statuses = _race(48, lambda: request("GET", urls[next(counter) % 2], token=token)[0])
    finally:
        stack.close()

    assert sorted(set(statuses)) == [200, 429], statuses
    assert statuses.count(200) == 10


@needs_redis
def test_a_threads_redis_client_goes_with_its_cache(redis_cache):
    """One client per thread's cache backend, not one per thread kept for the process's life."""
    import gc
    import threading
    import weakref

    from django.core.cache import caches

    from core.api.throttling import _redis_client, gcra_take

    clients = []

    def throttle_once():
        gcra_take("thread-client", interval=0.001, period=1.0, now=0.0)
        clients.append(weakref.ref(_redis_client(caches["default"])))

    for _ in range(5):
        thread = threading.Thread(target=throttle_once)
        thread.start()
        thread.join()
    gc.collect()

    assert len(clients) == 5
    assert [ref() for ref in clients] == [None] * 5
