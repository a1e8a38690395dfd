"""PUT and PATCH /v1/organizations/{org}/users/{id}: partial updates, merged provider details."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.api.support import (
    HPII_A,
    HPII_B,
    assert_problem,
    create_user,
    error_fields,
    error_for,
    provider_body,
    provider_fields,
)

pytestmark = pytest.mark.django_db

METHODS = ["put", "patch"]


def _send(api, method, url, body):
    return getattr(api, method)(url, body, format="json")


@pytest.mark.parametrize("method", METHODS)
def test_only_the_fields_sent_change(api, users_url, method):
    user = create_user(api, users_url, title="Dr", phone="0432333333", partner_user_id="pms-1")
    response = _send(api, method, f"{users_url}/{user['id']}", {"family_name": "Smythe"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["family_name"] == "Smythe"
    for unchanged in ("given_name", "email", "title", "phone", "partner_user_id", "access_roles", "created_at"):
        assert body[unchanged] == user[unchanged], unchanged
    assert body["updated_at"] > user["updated_at"]
    event = AuditEvent.objects.get(user_id=user["id"], action="user.updated")
    assert event.changes == {"family_name": {"from": "Smith", "to": "Smythe"}}


@pytest.mark.parametrize("method", METHODS)
def test_update_normalises_like_create(api, users_url, method):
    user = create_user(api, users_url)
    body = _send(api, method, f"{users_url}/{user['id']}", {"phone": "0432 333 333", "title": "Prof"}).json()
    assert body["phone"] == "+61432333333"
    assert body["title"] == "Prof"


def test_clearing_optional_fields(api, users_url):
    user = create_user(api, users_url, title="Dr", phone="0432333333", partner_user_id="pms-1")
    body = api.patch(f"{users_url}/{user['id']}", {"title": "", "phone": "", "partner_user_id": None}, format="json")
    assert body.status_code == 200, body.content
    assert body.json()["title"] == ""
    assert body.json()["phone"] == ""
    assert body.json()["partner_user_id"] is None


@pytest.mark.parametrize(("field", "value"), [("given_name", ""), ("family_name", None), ("email", "")])
def test_required_fields_cannot_be_blanked(api, users_url, field, value):
    user = create_user(api, users_url)
    problem = assert_problem(api.patch(f"{users_url}/{user['id']}", {field: value}, format="json"), 400, "validation_error")
    assert error_fields(problem) == {field}


def test_invalid_values_are_400_and_change_nothing(api, users_url):
    user = create_user(api, users_url)
    problem = assert_problem(
        api.patch(f"{users_url}/{user['id']}", {"phone": "123", "given_name": "Benjamin"}, format="json"),
        400,
        "validation_error",
    )
    assert error_fields(problem) == {"phone"}
    assert User.objects.get(pk=user["id"]).given_name == "Ben"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_unknown_field_is_400(api, users_url):
    user = create_user(api, users_url)
    problem = assert_problem(api.patch(f"{users_url}/{user['id']}", {"nickname": "B"}, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"nickname"}


@pytest.mark.parametrize("method", METHODS)
def test_access_roles_are_refused_with_a_pointer_to_roles(api, users_url, method):
    user = create_user(api, users_url)
    problem = assert_problem(
        _send(api, method, f"{users_url}/{user['id']}", {"access_roles": ["admin"]}), 400, "validation_error"
    )
    assert error_fields(problem) == {"access_roles"}
    assert "/roles" in error_for(problem, "access_roles")["message"]
    assert User.objects.get(pk=user["id"]).roles == ["member"]


# --- email --------------------------------------------------------------------------------------------


def test_email_change_is_lower_cased(api, users_url):
    user = create_user(api, users_url)
    body = api.patch(f"{users_url}/{user['id']}", {"email": "Ben.New@Practice.COM"}, format="json").json()
    assert body["email"] == "ben.new@practice.com"
    event = AuditEvent.objects.get(user_id=user["id"], action="user.updated")
    assert event.changes == {"email": {"from": "ben@my-practice.com", "to": "ben.new@practice.com"}}


def test_email_change_to_another_users_email_is_409(api, users_url):
    create_user(api, users_url, email="taken@x.com")
    user = create_user(api, users_url, email="ben@x.com")
    problem = assert_problem(
        api.patch(f"{users_url}/{user['id']}", {"email": "TAKEN@x.com"}, format="json"), 409, "user_already_exists"
    )
    assert error_fields(problem) == {"email"}
    assert User.objects.get(pk=user["id"]).email == "ben@x.com"


def test_email_change_to_own_email_in_other_case_is_a_no_op(api, users_url):
    user = create_user(api, users_url, email="ben@x.com")
    response = api.patch(f"{users_url}/{user['id']}", {"email": "BEN@X.COM"}, format="json")
    assert response.status_code == 200
    assert response.json()["email"] == "ben@x.com"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_partner_user_id_change_to_a_taken_one_is_409(api, users_url):
    create_user(api, users_url, email="a@x.com", partner_user_id="pms-1")
    user = create_user(api, users_url, email="b@x.com", partner_user_id="pms-2")
    assert_problem(
        api.patch(f"{users_url}/{user['id']}", {"partner_user_id": "pms-1"}, format="json"),
        409,
        "partner_user_id_conflict",
    )


@pytest.mark.django_db(transaction=True)
def test_email_change_is_synced_to_cognito(api, users_url, cognito):
    user = create_user(api, users_url, email="ben@x.com")
    assert cognito.describe(username=user["id"])["attributes"]["email"] == "ben@x.com"
    response = api.put(f"{users_url}/{user['id']}", {"email": "Ben.Smith@X.com", "given_name": "Benjamin"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["cognito"] == {"status": "synced"}
    attributes = cognito.describe(username=user["id"])["attributes"]
    assert attributes["email"] == "ben.smith@x.com"
    assert attributes["given_name"] == "Benjamin"


# --- provider details -------------------------------------------------------------------------------


def test_provider_details_are_created_when_absent(api, users_url):
    user = create_user(api, users_url, title="Dr", phone="0432333333")
    response = api.put(
        f"{users_url}/{user['id']}", {"provider_details": {"hpii_number": HPII_A, "qualifications": "MD"}}, format="json"
    )
    assert response.status_code == 200, response.content
    details = response.json()["provider_details"]
    assert details["hpii_number"] == HPII_A
    assert details["qualifications"] == "MD"
    # The provider's own name and phone default to the user's.
    assert (details["given_name"], details["family_name"], details["phone"]) == ("Ben", "Smith", "+61432333333")
    assert response.json()["access_roles"] == ["member"]
    assert response.json()["can_prescribe"] is False
    event = AuditEvent.objects.get(user_id=user["id"], action="provider_details.updated")
    assert event.changes["hpii_number"] == {"from": None, "to": HPII_A}


def test_provider_details_are_merged_into_the_stored_ones(api, users_url):
    user = create_user(api, users_url, **provider_body(provider_number="2123451T"))
    response = api.patch(
        f"{users_url}/{user['id']}",
        {"provider_details": {"qualifications": "MBBS FRACGP", "hpii_number": HPII_A}},
        format="json",
    )
    assert response.status_code == 200, response.content
    details = response.json()["provider_details"]
    expected = {**user["provider_details"], "qualifications": "MBBS FRACGP", "hpii_number": HPII_A}
    assert details == expected
    event = AuditEvent.objects.filter(user_id=user["id"], action="provider_details.updated").latest("id")
    assert event.changes == {
        "qualifications": {"from": "MBBS", "to": "MBBS FRACGP"},
        "hpii_number": {"from": HPII_B, "to": HPII_A},
    }


def test_provider_fields_given_flat_in_an_update(api, users_url):
    user = create_user(api, users_url, **provider_body())
    response = api.patch(f"{users_url}/{user['id']}", {"prescriber_number": "7654321"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["provider_details"]["prescriber_number"] == "7654321"


def test_completing_details_of_a_provider_turns_on_can_prescribe(api, users_url):
    user = create_user(api, users_url)
    api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["provider"]}, format="json")
    partial = api.patch(f"{users_url}/{user['id']}", {"provider_details": {"hpii_number": HPII_A}}, format="json")
    assert partial.json()["can_prescribe"] is False
    complete = api.patch(
        f"{users_url}/{user['id']}", {"provider_details": provider_fields(hpii_number=HPII_A)}, format="json"
    )
    assert complete.json()["can_prescribe"] is True


def test_invalid_nested_detail_is_named_with_its_path(api, users_url):
    user = create_user(api, users_url)
    problem = assert_problem(
        api.patch(f"{users_url}/{user['id']}", {"provider_details": {"hpii_number": "8003614900000000"}}, format="json"),
        400,
        "validation_error",
    )
    assert error_fields(problem) == {"provider_details.hpii_number"}
    assert "should be 9" in error_for(problem, "provider_details.hpii_number")["message"]
    assert not hasattr(User.objects.get(pk=user["id"]), "provider_details")


def test_hpii_of_another_user_is_409(api, users_url):
    create_user(api, users_url, **provider_body(email="a@x.com"))
    user = create_user(api, users_url, email="b@x.com")
    problem = assert_problem(
        api.patch(f"{users_url}/{user['id']}", {"provider_details": {"hpii_number": HPII_B}}, format="json"),
        409,
        "hpii_conflict",
    )
    assert error_fields(problem) == {"provider_details.hpii_number"}


def test_keeping_ones_own_hpii_is_no_conflict(api, users_url):
    user = create_user(api, users_url, **provider_body())
    response = api.patch(
        f"{users_url}/{user['id']}", {"provider_details": {"hpii_number": HPII_B, "qualifications": "MD"}}, format="json"
    )
    assert response.status_code == 200, response.content


# --- no-ops and disabled users ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"given_name": "Sarah", "email": "BEN@my-practice.com"},
        {"phone": "+61432333333"},
        {"provider_details": {}},
        {"provider_details": {"hpii_number": HPII_B, "date_of_birth": "1980-03-15", "phone": "0432333333"}},
    ],
)
def test_an_update_that_changes_nothing_writes_no_audit_event(api, users_url, body):
    user = create_user(api, users_url, **provider_body(email="ben@my-practice.com", phone="0432333333"))
    before = AuditEvent.objects.count()
    history_before = User.history.filter(id=user["id"]).count()
    response = api.put(f"{users_url}/{user['id']}", body, format="json")
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.count() == before
    assert User.history.filter(id=user["id"]).count() == history_before
    assert response.json()["updated_at"] == user["updated_at"]


@pytest.mark.parametrize("method", METHODS)
def test_a_disabled_user_cannot_be_updated(api, users_url, method):
    user = create_user(api, users_url)
    api.put(f"{users_url}/{user['id']}/disable")
    problem = assert_problem(
        _send(api, method, f"{users_url}/{user['id']}", {"given_name": "Benjamin"}), 409, "user_disabled"
    )
    assert problem["detail"]
    assert User.objects.get(pk=user["id"]).given_name == "Ben"


def test_unknown_user_is_404(api, users_url):
    assert_problem(
        api.patch(f"{users_url}/00000000-0000-4000-8000-000000000000", {"given_name": "X"}, format="json"), 404, "not_found"
    )


@pytest.mark.parametrize("method", METHODS)
def test_updated_at_moves_when_only_provider_details_change(api, users_url, method):
    """The user resource shows the details, so a change to them is a change to the user."""
    user = create_user(api, users_url, **provider_body())
    before = User.objects.get(pk=user["id"])
    response = _send(api, method, f"{users_url}/{user['id']}", {"provider_details": {"qualifications": "FRACGP"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["provider_details"]["qualifications"] == "FRACGP"
    assert body["updated_at"] > user["updated_at"]
    stored = User.objects.get(pk=user["id"])
    assert stored.updated_at > before.updated_at
    assert stored.updated_at == stored.provider_details.updated_at
    assert stored.history.count() == before.history.count()  # no user field changed: no user history row
    assert api.get(f"{users_url}/{user['id']}").json()["updated_at"] == body["updated_at"]
    listed = api.get(users_url).json()["results"][0]
    assert listed["updated_at"] == body["updated_at"]


def test_updated_at_stays_when_nothing_changes(api, users_url):
    user = create_user(api, users_url, **provider_body())
    same = api.patch(f"{users_url}/{user['id']}", {"provider_details": {"qualifications": "MBBS"}}, format="json")
    assert same.json()["updated_at"] == user["updated_at"]
