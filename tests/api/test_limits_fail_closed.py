"""When the shared cache can't be reached, the token endpoint's failure budget refuses (503 with
Retry-After) instead of letting every guess at a secret through; the API's rate limit serves on."""

import base64
import logging

import pytest
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from audit.context import Actor
from organizations.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_credentials(organization):
    api_client, secret = api_client_create(
        actor=Actor.system("tests"), organization=organization, name="PMS", scopes=["read:users"]
    )
    return api_client.application.client_id, secret


def _token_request(client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart", HTTP_AUTHORIZATION=f"Basic {basic}"
    )


@pytest.mark.parametrize("right_secret", [True, False])
def test_the_token_endpoint_refuses_while_its_failure_limits_cannot_be_kept(
    client_credentials, unreachable_cache, caplog, right_secret
):
    client_id, secret = client_credentials
    with caplog.at_level(logging.WARNING):
        response = _token_request(client_id, secret if right_secret else "a-guess")

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "limits_unavailable" and body["status"] == 503
    assert body["error"] == "temporarily_unavailable" and body["error_description"]
    assert not AccessToken.objects.exists()  # nothing issued, no secret checked
    assert "failure-limit cache is unreachable" in caplog.text
    assert secret not in caplog.text and client_id not in caplog.text
    assert str(unreachable_cache) not in caplog.text  # nor where the cache lives


def test_the_api_rate_limit_lets_requests_through_and_says_so(api, users_url, unreachable_cache, caplog):
    with caplog.at_level(logging.WARNING):
        response = api.get(users_url)

    assert response.status_code == 200
    assert "Rate limit not applied" in caplog.text
    assert api._credentials["HTTP_AUTHORIZATION"].split()[1] not in caplog.text
