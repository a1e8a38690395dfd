"""Rate limits per API client: 429 problem+json with Retry-After, one budget per client."""

import base64

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tenancy import api_client_create
from audit.context import Actor
from config.api.throttling import ApiClientRateThrottle

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
