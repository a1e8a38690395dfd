"""The admin and the API make the same writes: the same audit events (bar who and which user) and
the same Cognito outcome, through the real after-commit sync."""

import pytest

from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from tests.admin.conftest import PROVIDER_DETAILS, change_url, user_form_data

pytestmark = pytest.mark.django_db(transaction=True)


def _trail(user):
    events = AuditEvent.objects.filter(user=user).order_by("id")
    return [(e.action, _without_email(e.changes)) for e in events], {e.actor_type for e in events}


def _without_email(changes):
    return {field: change for field, change in changes.items() if field not in ("email", "organization_id")}


def test_admin_and_api_write_the_same_trail_and_cognito_state(
    api, users_url, staff_client, other_organization, cognito
):
    # The documented workflow through the API ...
    created = api.post(
        users_url,
        {"given_name": "Ben", "family_name": "Smith", "email": "api@practice.example", "access_roles": ["rx_reader"]},
        format="json",
    ).json()
    api.put(f"{users_url}/{created['id']}/roles", {"access_roles": ["provider"]}, format="json")
    api.patch(f"{users_url}/{created['id']}", {"provider_details": PROVIDER_DETAILS}, format="json")
    api.put(f"{users_url}/{created['id']}/disable")
    via_api = User.objects.get(pk=created["id"])

    # ... and the same steps through the admin.
    staff_client.post(
        "/admin/accounts/user/add/",
        {
            "organization": other_organization.pk,  # an HPI-I is unique per organization
            "email": "admin@practice.example",
            "given_name": "Ben",
            "family_name": "Smith",
            "roles": ["rx_reader"],
        },
    )
    via_admin = User.objects.get(email="admin@practice.example")
    staff_client.post(f"/admin/accounts/user/{via_admin.pk}/roles/", {"roles": ["provider"], "apply": "1"})
    response = staff_client.post(
        change_url(via_admin),
        user_form_data(via_admin, **{f"provider_{k}": v for k, v in PROVIDER_DETAILS.items()}),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    staff_client.post(f"/admin/accounts/user/{via_admin.pk}/disable/", {"confirm": "1"})

    api_trail, api_actors = _trail(via_api)
    admin_trail, admin_actors = _trail(via_admin)
    assert [action for action, _ in admin_trail] == [
        "user.created",
        "user.roles_changed",
        "provider_details.updated",
        "user.disabled",
    ]
    # disabled_at differs by the clock only.
    for trail in (api_trail, admin_trail):
        trail[-1][1]["disabled_at"]["to"] = "(time)"
    assert admin_trail == api_trail
    assert (api_actors, admin_actors) == ({"api_client"}, {"staff"})

    for user in (via_api, via_admin):
        row = CognitoSync.objects.get(pk=user.pk)
        assert row.state == CognitoSync.State.SYNCED
        account = cognito.describe(username=str(user.pk))
        assert account["enabled"] is False and account["groups"] == set()
    assert _without_email(CognitoSync.objects.get(pk=via_api.pk).desired) == _without_email(
        CognitoSync.objects.get(pk=via_admin.pk).desired
    )
