"""POST /v1/oauth/token: client credentials (RFC 6749 §4.4), errors per §5.2."""

import base64

import pytest
from rest_framework.test import APIClient

from accounts.tenancy import api_client_create, api_client_revoke
from audit.context import Actor

pytestmark = pytest.mark.django_db

TOKEN_URL = "/v1/oauth/token"


@pytest.fixture
def credentials(organization):
    api_client, secret = api_client_create(actor=Actor.system("tests"),
        organization=organization, name="PMS", scopes=["read:users", "create:user"]
    )
    return api_client, api_client.application.client_id, secret


def _basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _token_request(client_id, secret, **form):
    form.setdefault("grant_type", "client_credentials")
    return APIClient().post(TOKEN_URL, form, format="multipart", HTTP_AUTHORIZATION=_basic(client_id, secret))


def _bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_token_response_shape(credentials):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert "refresh_token" not in body  # §4.4.3: no refresh token for client credentials
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert sorted(body["scope"].split()) == ["create:user", "read:users"]
    assert response["Cache-Control"] == "no-store"
    assert response["X-Request-ID"]


def test_the_token_works_against_the_api(credentials, organization):
    _, client_id, secret = credentials
    token = _token_request(client_id, secret).json()["access_token"]
    assert _bearer(token).get(f"/v1/organizations/{organization.pk}/users").status_code == 200


def test_form_encoded_body_works_too(credentials):
    _, client_id, secret = credentials
    response = APIClient().post(
        TOKEN_URL,
        "grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=_basic(client_id, secret),
    )
    assert response.status_code == 200, response.content


def test_a_token_is_limited_to_the_requested_scope(credentials, organization):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, scope="read:users")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "read:users"
    client = _bearer(response.json()["access_token"])
    users_url = f"/v1/organizations/{organization.pk}/users"
    assert client.get(users_url).status_code == 200
    denied = client.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@x.com"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"


@pytest.mark.parametrize("scope", ["delete:user", "read:users delete:user", "admin:everything"])
def test_asking_for_a_scope_the_client_does_not_have_is_invalid_scope(credentials, scope):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, scope=scope)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("wrong", ["secret", "client"])
def test_bad_secret_or_unknown_client_is_401_invalid_client(credentials, wrong):
    _, client_id, secret = credentials
    if wrong == "secret":
        response = _token_request(client_id, secret + "x")
    else:
        response = _token_request("no-such-client", secret)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


def test_no_client_authentication_is_401(credentials):
    response = APIClient().post(TOKEN_URL, {"grant_type": "client_credentials"}, format="multipart")
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


def test_a_revoked_client_gets_no_token(credentials):
    api_client, client_id, secret = credentials
    api_client_revoke(actor=Actor.system("tests"), api_client=api_client)
    response = _token_request(client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "", "nonsense"])
def test_other_grant_types_are_refused(credentials, grant_type):
    _, client_id, secret = credentials
    response = _token_request(client_id, secret, grant_type=grant_type)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in {"unsupported_grant_type", "invalid_request", "unauthorized_client"}
    assert "access_token" not in response.json()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_wrong_method_is_a_problem_405(method):
    response = getattr(APIClient(), method)(TOKEN_URL)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response["Allow"] == "POST"
    assert response.json()["code"] == "method_not_allowed"


def test_the_token_is_stored_only_as_a_checksum(credentials):
    from oauth2_provider.models import AccessToken

    _, client_id, secret = credentials
    token = _token_request(client_id, secret).json()["access_token"]
    assert not AccessToken.objects.filter(token=token).exists()
    assert AccessToken.objects.count() == 1
