"""PUT /v1/organizations/{org}/users/{id}/roles: replace the roles, one audit event per change."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.api.support import assert_problem, create_user, error_fields, provider_body

pytestmark = pytest.mark.django_db


def _roles_url(users_url, user):
    return f"{users_url}/{user['id']}/roles"


def _role_events(user):
    return list(AuditEvent.objects.filter(user_id=user["id"], action="user.roles_changed").order_by("id"))


def test_roles_are_replaced(api, users_url):
    user = create_user(api, users_url, access_roles=["admin", "rx_reader"])
    response = api.put(_roles_url(users_url, user), {"access_roles": ["receptionist", "provider"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["access_roles"] == ["provider", "receptionist"]
    assert User.objects.get(pk=user["id"]).roles == ["provider", "receptionist"]


def test_roles_come_back_sorted_without_duplicates(api, users_url):
    user = create_user(api, users_url)
    body = api.put(
        _roles_url(users_url, user), {"access_roles": ["rx_reader", "admin", "admin"]}, format="json"
    ).json()
    assert body["access_roles"] == ["admin", "rx_reader"]


def test_member_alone_strips_every_other_role(api, users_url):
    user = create_user(api, users_url, **provider_body(access_roles=["admin", "provider", "receptionist", "rx_reader"]))
    body = api.put(_roles_url(users_url, user), {"access_roles": ["member"]}, format="json").json()
    assert body["access_roles"] == ["member"]
    assert body["can_prescribe"] is False
    assert body["provider_details"] == user["provider_details"]


def test_upgrading_to_provider_needs_no_details(api, users_url):
    user = create_user(api, users_url, access_roles=["rx_reader"])
    response = api.put(_roles_url(users_url, user), {"access_roles": ["provider"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["access_roles"] == ["provider"]
    assert response.json()["provider_details"] is None
    assert response.json()["can_prescribe"] is False


@pytest.mark.parametrize("roles", [[], ["owner"], ["support"], ["admin", "superadmin"], ["PROVIDER"], [""], [" admin"]])
def test_empty_unknown_or_unassignable_roles_are_400_invalid_role(api, users_url, roles):
    user = create_user(api, users_url, access_roles=["admin"])
    problem = assert_problem(api.put(_roles_url(users_url, user), {"access_roles": roles}, format="json"), 400, "invalid_role")
    assert error_fields(problem) == {"access_roles"}
    assert User.objects.get(pk=user["id"]).roles == ["admin"]
    assert _role_events(user) == []


@pytest.mark.parametrize(
    "body", [{}, {"access_roles": "provider"}, {"access_roles": None}, {"access_roles": [1]}, {"roles": ["admin"]}]
)
def test_malformed_roles_body_is_400(api, users_url, body):
    user = create_user(api, users_url)
    response = api.put(_roles_url(users_url, user), body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"]


def test_each_change_writes_one_audit_event_with_from_and_to(api, users_url):
    user = create_user(api, users_url, access_roles=["rx_reader"])
    api.put(_roles_url(users_url, user), {"access_roles": ["provider"]}, format="json")
    api.put(_roles_url(users_url, user), {"access_roles": ["admin", "provider"]}, format="json")
    events = _role_events(user)
    assert [event.changes for event in events] == [
        {"access_roles": {"from": ["rx_reader"], "to": ["provider"]}},
        {"access_roles": {"from": ["provider"], "to": ["admin", "provider"]}},
    ]
    assert {event.actor_type for event in events} == {"api_client"}


def test_setting_the_same_roles_again_writes_no_event(api, users_url):
    user = create_user(api, users_url, access_roles=["admin", "rx_reader"])
    history = User.history.filter(id=user["id"]).count()
    response = api.put(_roles_url(users_url, user), {"access_roles": ["rx_reader", "admin", "rx_reader"]}, format="json")
    assert response.status_code == 200
    assert response.json()["access_roles"] == ["admin", "rx_reader"]
    assert _role_events(user) == []
    assert User.history.filter(id=user["id"]).count() == history


def test_a_disabled_user_cannot_have_roles_set(api, users_url):
    user = create_user(api, users_url, access_roles=["admin"])
    api.put(f"{users_url}/{user['id']}/disable")
    assert_problem(api.put(_roles_url(users_url, user), {"access_roles": ["admin"]}, format="json"), 409, "user_disabled")
    assert User.objects.get(pk=user["id"]).roles == ["member"]


def test_toggling_provider_keeps_details_and_history(api, users_url):
    user = create_user(api, users_url, **provider_body())
    sequence = [["rx_reader"], ["provider"], ["receptionist"], ["provider", "rx_reader"], ["provider"]]
    for roles in sequence:
        body = api.put(_roles_url(users_url, user), {"access_roles": roles}, format="json").json()
        assert body["access_roles"] == roles
        assert body["provider_details"] == user["provider_details"]
        assert body["can_prescribe"] is ("provider" in roles)
    changes = [event.changes["access_roles"] for event in _role_events(user)]
    assert [change["to"] for change in changes] == sequence
    assert [change["from"] for change in changes] == [["provider"], *sequence[:-1]]
    roles_in_history = [row.roles for row in User.history.filter(id=user["id"]).order_by("history_id")]
    assert roles_in_history == [["provider"], *sequence]


@pytest.mark.django_db(transaction=True)
def test_toggling_provider_keeps_cognito_groups_right(api, users_url, cognito):
    user = create_user(api, users_url, **provider_body())
    assert cognito.describe(username=user["id"])["groups"] == {"provider"}
    for roles in (["rx_reader"], ["provider"], ["admin", "rx_reader"], ["provider"], ["member"]):
        response = api.put(_roles_url(users_url, user), {"access_roles": roles}, format="json")
        assert response.json()["cognito"] == {"status": "synced"}
        assert cognito.describe(username=user["id"])["groups"] == set(roles) - {"member"}
    assert User.objects.get(pk=user["id"]).provider_details.hpii_number == user["provider_details"]["hpii_number"]


def test_a_disabled_user_refuses_roles_before_the_roles_are_checked(api, users_url):
    user = create_user(api, users_url)
    api.put(f"{users_url}/{user['id']}/disable")
    response = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["owner"]}, format="json")
    assert_problem(response, 409, "user_disabled")
