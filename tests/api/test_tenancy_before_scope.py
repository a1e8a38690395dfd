"""Tenancy before scope: a token of Alice's practice that may only read users
learns nothing about Charlie's: every method on Charlie's URLs, and on Charlie's users under
Alice's URL, is 404, never the 403 that would say "this exists, you may not touch it". OPTIONS
describes no request schema anywhere."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.api.support import assert_problem

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete", "options"]
# Paths under /v1 with {org} and {user}.
PATHS = [
    "organizations/{org}",
    "organizations/{org}/users",
    "organizations/{org}/users/{user}",
    "organizations/{org}/users/{user}/roles",
    "organizations/{org}/users/{user}/disable",
    "organizations/{org}/users/{user}/history",
    "organizations/{org}/audit-events",
]
USER_PATHS = [path for path in PATHS if "{user}" in path]
BODY = {"given_name": "Eve", "family_name": "V", "email": "eve@x.com", "access_roles": ["admin"]}


@pytest.fixture
def reader(api_for, organization):
    """Alice's practice software with the read-only scope."""
    return api_for(organization, scopes=["read:users"])


def _call(client, method, path, org, user):
    url = "/v1/" + path.format(org=org.pk, user=user.pk)
    if method in ("get", "options", "delete"):
        return getattr(client, method)(url)
    return getattr(client, method)(url, BODY, format="json")


def _untouched(user):
    fresh = User.objects.get(pk=user.pk)
    return (fresh.given_name, fresh.roles, fresh.status) == (user.given_name, ["member"], "active")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_a_read_only_token_on_another_organizations_urls_is_404(
    reader, method, path, other_organization, charlie
):
    events = AuditEvent.objects.count()
    response = _call(reader, method, path, other_organization, charlie)
    assert_problem(response, 404, "not_found")
    assert "actions" not in response.json()
    assert _untouched(charlie) and AuditEvent.objects.count() == events
    assert not User.objects.filter(email="eve@x.com").exists()


@pytest.mark.parametrize("path", USER_PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_a_read_only_token_on_another_organizations_user_under_its_own_url_is_404(
    reader, method, path, organization, charlie
):
    response = _call(reader, method, path, organization, charlie)
    assert_problem(response, 404, "not_found")
    assert _untouched(charlie)


@pytest.mark.parametrize("path", USER_PATHS)
def test_a_read_only_token_on_its_own_user_still_gets_403_for_a_write(reader, path, organization, bob):
    """The scope still decides once the user is the caller's own (history needs read:audit)."""
    method = "get" if path.endswith("history") else "put"
    assert_problem(_call(reader, method, path, organization, bob), 403, "insufficient_scope")


@pytest.mark.parametrize("path", PATHS)
def test_options_on_the_own_organization_answers_no_schema(api, path, organization, bob):
    response = api.options("/v1/" + path.format(org=organization.pk, user=bob.pk))
    assert response.status_code == 200, response.content
    body = response.json() if response.content else {}
    assert body == {}, body  # no actions, no POST/PUT field list, no view description
    assert "Allow" in response
