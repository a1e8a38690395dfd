"""PUT /v1/organizations/{org}/users/{id}/disable: destructive, idempotent, no body."""

import pytest

from accounts.cognito import gateway
from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from tests.api.support import assert_problem, create_user, provider_body

pytestmark = pytest.mark.django_db


def test_disable_marks_the_user_disabled_and_drops_roles_to_member(api, users_url):
    user = create_user(api, users_url, **provider_body(access_roles=["admin", "provider"]))
    response = api.put(f"{users_url}/{user['id']}/disable")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "disabled"
    assert body["disabled_at"] is not None
    assert body["access_roles"] == ["member"]
    assert body["can_prescribe"] is False
    assert body["provider_details"] == user["provider_details"]
    stored = User.objects.get(pk=user["id"])
    assert stored.is_disabled and stored.disabled_at is not None and stored.roles == ["member"]
    event = AuditEvent.objects.get(user_id=user["id"], action="user.disabled")
    assert event.changes["status"] == {"from": "active", "to": "disabled"}
    assert event.changes["access_roles"] == {"from": ["admin", "provider"], "to": ["member"]}
    assert event.changes["disabled_at"]["from"] is None


def test_disable_needs_no_body_and_ignores_one(api, users_url):
    first = create_user(api, users_url, email="a@x.com")
    second = create_user(api, users_url, email="b@x.com")
    assert api.put(f"{users_url}/{first['id']}/disable").status_code == 200
    assert api.put(f"{users_url}/{second['id']}/disable", {}, format="json").status_code == 200


def test_disable_is_idempotent(api, users_url):
    user = create_user(api, users_url, access_roles=["admin"])
    first = api.put(f"{users_url}/{user['id']}/disable").json()
    sync_version = CognitoSync.objects.get(pk=user["id"]).desired_version
    second = api.put(f"{users_url}/{user['id']}/disable")
    assert second.status_code == 200
    assert second.json() == first
    assert AuditEvent.objects.filter(user_id=user["id"], action="user.disabled").count() == 1
    # No new Cognito work was queued for the second call.
    assert CognitoSync.objects.get(pk=user["id"]).desired_version == sync_version


@pytest.mark.django_db(transaction=True)
def test_disable_disables_the_cognito_account_once(api, users_url, cognito, monkeypatch):
    user = create_user(api, users_url, access_roles=["admin", "rx_reader"])
    assert cognito.describe(username=user["id"])["enabled"] is True
    calls = []
    real_disable = gateway.CognitoGateway.disable

    def counting_disable(self, *, username):
        calls.append(username)
        return real_disable(self, username=username)

    monkeypatch.setattr(gateway.CognitoGateway, "disable", counting_disable)
    assert api.put(f"{users_url}/{user['id']}/disable").json()["cognito"] == {"status": "synced"}
    account = cognito.describe(username=user["id"])
    assert account["enabled"] is False
    assert account["groups"] == set()
    assert api.put(f"{users_url}/{user['id']}/disable").status_code == 200
    assert calls == [user["id"]]


def test_disabled_user_is_still_readable(api, users_url):
    user = create_user(api, users_url)
    api.put(f"{users_url}/{user['id']}/disable")
    body = api.get(f"{users_url}/{user['id']}").json()
    assert body["status"] == "disabled"


def test_disable_of_unknown_user_is_404(api, users_url):
    assert_problem(api.put(f"{users_url}/00000000-0000-4000-8000-000000000000/disable"), 404, "not_found")
