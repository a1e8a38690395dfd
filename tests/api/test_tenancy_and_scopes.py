"""Every endpoint: another tenant's resources are 404, missing scope 403, no or bad token 401."""

import base64
import datetime

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_create
from audit.context import Actor
from audit.models import AuditEvent
from organizations.services import api_client_create, api_client_revoke
from tests.api.support import assert_problem

pytestmark = pytest.mark.django_db

ALL_SCOPES = ("read:users", "create:user", "update:user", "delete:user", "read:audit")

# (method, path under /v1 with {org} and {user}, scope, body)
ENDPOINTS = [
    ("get", "organizations/{org}", None, None),
    ("post", "organizations/{org}/users", "create:user", {"given_name": "E", "family_name": "V", "email": "eve@x.com"}),
    ("get", "organizations/{org}/users", "read:users", None),
    ("get", "organizations/{org}/users/{user}", "read:users", None),
    ("put", "organizations/{org}/users/{user}", "update:user", {"given_name": "Eve"}),
    ("patch", "organizations/{org}/users/{user}", "update:user", {"given_name": "Eve"}),
    ("put", "organizations/{org}/users/{user}/roles", "update:user", {"access_roles": ["admin"]}),
    ("put", "organizations/{org}/users/{user}/disable", "delete:user", None),
    ("get", "organizations/{org}/users/{user}/history", "read:audit", None),
    ("get", "organizations/{org}/audit-events", "read:audit", None),
]
USER_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if "{user}" in endpoint[1]]
SCOPED_ENDPOINTS = [endpoint for endpoint in ENDPOINTS if endpoint[2]]


def _id(endpoint):
    return f"{endpoint[0].upper()} {endpoint[1]}"


def _call(client, endpoint, org, user=None):
    method, path, _, body = endpoint
    url = "/v1/" + path.format(org=org.pk, user=user.pk if user else "x")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def _member(organization, email):
    return user_create(
        organization=organization, actor=Actor.system(), email=email, given_name="Ann", family_name="Member"
    )


@pytest.fixture
def alice_user(organization):
    return _member(organization, "alice.member@x.com")


@pytest.fixture
def charlie_user(other_organization):
    return _member(other_organization, "charlie.member@x.com")


def _unchanged(user):
    fresh = User.objects.get(pk=user.pk)
    return (fresh.given_name, fresh.roles, fresh.status) == ("Ann", ["member"], "active")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_another_organizations_id_is_404(api, endpoint, other_organization, charlie_user):
    events_before = AuditEvent.objects.count()
    response = _call(api, endpoint, other_organization, charlie_user)
    assert_problem(response, 404, "not_found")
    assert _unchanged(charlie_user)
    assert AuditEvent.objects.count() == events_before
    assert not User.objects.filter(email="eve@x.com").exists()


@pytest.mark.parametrize("endpoint", USER_ENDPOINTS, ids=_id)
def test_a_user_of_another_organization_is_404(api, endpoint, organization, charlie_user):
    events_before = AuditEvent.objects.count()
    assert_problem(_call(api, endpoint, organization, charlie_user), 404, "not_found")
    assert _unchanged(charlie_user)
    assert AuditEvent.objects.count() == events_before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_an_organization_that_does_not_exist_is_404(api, endpoint, alice_user):
    class Missing:
        pk = "00000000-0000-4000-8000-000000000000"

    assert_problem(_call(api, endpoint, Missing, alice_user), 404, "not_found")


@pytest.mark.parametrize("endpoint", SCOPED_ENDPOINTS, ids=_id)
def test_a_token_without_the_needed_scope_is_403(api_for, endpoint, organization, alice_user):
    scope = endpoint[2]
    client = api_for(organization, scopes=[s for s in ALL_SCOPES if s != scope])
    problem = assert_problem(_call(client, endpoint, organization, alice_user), 403, "insufficient_scope")
    assert scope in problem["detail"]
    assert _unchanged(alice_user)


@pytest.mark.parametrize("endpoint", SCOPED_ENDPOINTS, ids=_id)
def test_the_needed_scope_alone_is_enough(api_for, endpoint, organization, alice_user):
    client = api_for(organization, scopes=[endpoint[2]])
    response = _call(client, endpoint, organization, alice_user)
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_the_organization_is_readable_with_any_scope(api_for, organization, scope):
    response = api_for(organization, scopes=[scope]).get(f"/v1/organizations/{organization.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(organization.pk)
    assert body["name"] == "Alice's Practice"
    assert body["active"] is True


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_no_token_is_401(endpoint, organization, alice_user):
    response = _call(APIClient(), endpoint, organization, alice_user)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _unchanged(alice_user)


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-real-token", "Bearer ", "Bearer a b", "Bearer \u00e9t\u00e9", "Basic dXNlcjpwYXNz", "Token abc"],
)
@pytest.mark.parametrize("endpoint", [ENDPOINTS[0], ENDPOINTS[2], ENDPOINTS[4]], ids=_id)
def test_a_garbage_token_is_401(endpoint, organization, alice_user, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_problem(_call(client, endpoint, organization, alice_user), 401, "not_authenticated")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=_id)
def test_a_revoked_clients_token_is_401(endpoint, organization, alice_user):
    api_client, secret = api_client_create(actor=Actor.system("tests"), organization=organization, name="Old PMS", scopes=ALL_SCOPES)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_token(api_client, secret)}")
    assert _call(client, ENDPOINTS[0], organization).status_code == 200
    api_client_revoke(actor=Actor.system("tests"), api_client=api_client)
    assert_problem(_call(client, endpoint, organization, alice_user), 401, "not_authenticated")
    assert _unchanged(alice_user)


def test_an_expired_token_is_401(api_for, organization):
    client = api_for(organization)
    AccessToken.objects.update(expires=timezone.now() - datetime.timedelta(seconds=1))
    assert_problem(client.get(f"/v1/organizations/{organization.pk}/users"), 401, "not_authenticated")


def test_a_deactivated_organizations_token_is_401(api_for, organization):
    client = api_for(organization)
    organization.is_active = False
    organization.save()
    assert_problem(client.get(f"/v1/organizations/{organization.pk}"), 401, "not_authenticated")


def _token(api_client, secret):
    basic = base64.b64encode(f"{api_client.application.client_id}:{secret}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart", HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_the_organization_id_is_a_uuid_in_any_case(api, organization):
    response = api.get(f"/v1/organizations/{str(organization.pk).upper()}")
    assert response.status_code == 200
    assert response.json()["id"] == str(organization.pk)
