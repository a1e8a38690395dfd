"""Helpers shared by the reliability tests (not a test module)."""

import base64

from rest_framework.test import APIClient

from audit.context import Actor
from tests.factories import ApiClientFactory

ALL_SCOPES = ("read:users", "create:user", "update:user", "delete:user", "read:audit", "manage:webhooks")
PROBLEM = "application/problem+json"


def client_and_token(organization, scopes=ALL_SCOPES, name="Practice software"):
    """(ApiClient, bearer token) through the real token endpoint."""
    api_client, secret = ApiClientFactory(actor=Actor.system("tests"), organization=organization, name=name, scopes=scopes)
    basic = base64.b64encode(f"{api_client.application.client_id}:{secret}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart", HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200, response.content
    return api_client, response.json()["access_token"]


def assert_problem(response, status):
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith(PROBLEM), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["code"] and body["title"] and body["type"]
    return body
