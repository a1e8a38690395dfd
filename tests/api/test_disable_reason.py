"""PUT .../disable takes an optional {"reason": "..."} (issue 17 d), recorded in the audit event's
changes as {"reason": {"from": null, "to": "..."}}; the admin's page and disable_user take one too."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from tests.api.support import assert_problem, create_user, error_fields
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _disabled_event(user_id):
    return AuditEvent.objects.get(user_id=user_id, action="user.disabled")


def test_the_reason_is_recorded_in_the_audit_event(api, users_url):
    user = create_user(api, users_url, access_roles=["admin"])
    response = api.put(f"{users_url}/{user['id']}/disable", {"reason": "Left the practice"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "disabled"
    changes = _disabled_event(user["id"]).changes
    assert changes["reason"] == {"from": None, "to": "Left the practice"}
    assert changes["status"] == {"from": "active", "to": "disabled"}  # the rest of the event as before
    history = api.get(f"{users_url}/{user['id']}/history").json()["results"]
    assert history[0]["changes"]["reason"]["to"] == "Left the practice"


@pytest.mark.parametrize("body", [None, {}, {"reason": None}, {"reason": ""}, {"reason": "   "}])
def test_no_reason_works_as_before(api, users_url, body):
    user = create_user(api, users_url)
    url = f"{users_url}/{user['id']}/disable"
    response = api.put(url) if body is None else api.put(url, body, format="json")
    assert response.status_code == 200, response.content
    assert "reason" not in _disabled_event(user["id"]).changes


def test_500_characters_is_the_limit(api, users_url):
    user = create_user(api, users_url)
    assert api.put(f"{users_url}/{user['id']}/disable", {"reason": "x" * 500}, format="json").status_code == 200
    assert _disabled_event(user["id"]).changes["reason"]["to"] == "x" * 500


@pytest.mark.parametrize(
    "body",
    [{"reason": "x" * 501}, {"reason": 42}, {"reason": ["a"]}, {"reason": "line\nbreak"}],
)
def test_a_bad_reason_is_400_naming_it_and_disables_nothing(api, users_url, body):
    user = create_user(api, users_url)
    response = api.put(f"{users_url}/{user['id']}/disable", body, format="json")
    assert error_fields(assert_problem(response, 400, "validation_error")) == {"reason"}
    assert User.objects.get(pk=user["id"]).is_active


def test_an_unknown_field_or_a_non_object_body_is_400(api, users_url):
    user = create_user(api, users_url)
    url = f"{users_url}/{user['id']}/disable"
    assert error_fields(assert_problem(api.put(url, {"reasons": "x"}, format="json"), 400, "validation_error")) == {
        "reasons"
    }
    assert api.put(url, ["x"], format="json").status_code == 400
    assert User.objects.get(pk=user["id"]).is_active


def test_disabling_again_with_a_reason_changes_nothing(api, users_url):
    user = create_user(api, users_url)
    url = f"{users_url}/{user['id']}/disable"
    api.put(url, {"reason": "first"}, format="json")
    assert api.put(url, {"reason": "second"}, format="json").status_code == 200
    assert _disabled_event(user["id"]).changes["reason"]["to"] == "first"


def test_the_service_refuses_a_long_reason(bob):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        services.user_disable(user=bob, actor=Actor.system("t"), reason="x" * 501)
    assert set(raised.value.error_dict) == {"reason"}
    assert User.objects.get(pk=bob.pk).is_active


def test_disable_user_command_records_the_reason(organization, bob):
    call_command("disable_user", str(bob.pk), "--organization", str(organization.pk), "--reason", "left",
                 stdout=io.StringIO())
    event = _disabled_event(bob.pk)
    assert event.changes["reason"] == {"from": None, "to": "left"}
    assert event.actor_name == "disable_user: left"


def test_disable_user_command_refuses_a_long_reason(organization, bob):
    with pytest.raises(CommandError, match="500"):
        call_command("disable_user", str(bob.pk), "--organization", str(organization.pk), "--reason", "x" * 501,
                     stdout=io.StringIO())
    assert User.objects.get(pk=bob.pk).is_active


def test_the_admin_disable_page_takes_a_reason_and_shows_it(staff_client, bob):
    page = staff_client.get(f"/admin/accounts/user/{bob.pk}/disable/")
    assert page.status_code == 200 and 'name="reason"' in page.text

    response = staff_client.post(
        f"/admin/accounts/user/{bob.pk}/disable/", {"confirm": "Yes, disable", "reason": "Contract ended"}
    )
    assert response.status_code == 302
    event = _disabled_event(bob.pk)
    assert event.changes["reason"] == {"from": None, "to": "Contract ended"}
    assert event.actor_type == "staff"
    change = staff_client.get(f"/admin/accounts/user/{bob.pk}/change/")
    assert "Contract ended" in change.text


def test_the_admin_refuses_a_long_reason(staff_client, bob):
    response = staff_client.post(f"/admin/accounts/user/{bob.pk}/disable/", {"confirm": "1", "reason": "x" * 501})
    assert response.status_code == 200  # the page again, with the error
    assert "Ensure this value has at most 500 characters (it has 501)." in response.text  # not a "500" of an id
    assert User.objects.get(pk=bob.pk).is_active


def test_the_admin_bulk_disable_takes_a_reason(staff_client, organization):
    users = UserFactory.create_batch(2, organization=organization)
    response = staff_client.post(
        "/admin/accounts/user/",
        {"action": "disable_action", "_selected_action": [str(u.pk) for u in users], "confirm": "1",
         "reason": "Practice closed"},
    )
    assert response.status_code == 302
    for user in users:
        assert _disabled_event(user.pk).changes["reason"]["to"] == "Practice closed"
