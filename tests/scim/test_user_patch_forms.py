"""PATCH of Users in the forms Entra ID and Okta send: a path-less value keyed by a filtered path is
applied like the path form, and what the service can't keep is refused, never a 2xx that did nothing."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.scim.conftest import EXT, assert_scim_error, patch_body, scim_user


@pytest.fixture
def ben(scim) -> str:
    response = scim.post("Users", scim_user(phoneNumbers=[{"value": "0432333333", "type": "work"}]))
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.mark.parametrize("form", ["path", "path-less"])
@pytest.mark.parametrize(
    ("path", "value", "field", "stored"),
    [
        ('emails[type eq "work"].value', "ben.smith@my-practice.com", "email", "ben.smith@my-practice.com"),
        ('phoneNumbers[type eq "work"].value', "0455666777", "phone", "+61455666777"),
        ("name.familyName", "Jones", "family_name", "Jones"),
        ("title", "Dr", "title", "Dr"),
    ],
)
def test_replace_by_filtered_and_dotted_paths_is_applied_in_both_forms(scim, ben, form, path, value, field, stored):
    operation = (
        {"op": "Replace", "path": path, "value": value} if form == "path" else {"op": "Replace", "value": {path: value}}
    )
    response = scim.patch(f"Users/{ben}", patch_body(operation))
    assert response.status_code == 200, response.content
    assert getattr(User.objects.get(pk=ben), field) == stored
    assert AuditEvent.objects.filter(user_id=ben, action="user.updated", actor_type="scim").count() == 1


def test_entra_path_less_replace_with_several_keys_applies_each(scim, ben):
    response = scim.patch(
        f"Users/{ben}",
        patch_body(
            {
                "op": "Replace",
                "value": {
                    'emails[type eq "work"].value': "b.smith@my-practice.com",
                    "name.givenName": "Benjamin",
                    'phoneNumbers[type eq "work"].value': "0455666777",
                    "title": "Dr",
                },
            }
        ),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=ben)
    assert (user.email, user.given_name, user.phone, user.title) == (
        "b.smith@my-practice.com",
        "Benjamin",
        "+61455666777",
        "Dr",
    )


def test_a_work_phone_is_added_by_filter_when_there_is_none(scim):
    created = scim.post("Users", scim_user()).json()["id"]
    response = scim.patch(
        f"Users/{created}", patch_body({"op": "add", "value": {'phoneNumbers[type eq "work"].value': "0455666777"}})
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=created).phone == "+61455666777"


@pytest.mark.parametrize(
    "operation",
    [
        # Entra ID's default mobile mapping: the service keeps one phone number, the work one.
        {"op": "add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "0455666777"},
        {"op": "add", "value": {'phoneNumbers[type eq "mobile"].value': "0455666777"}},
        {"op": "add", "path": "emails", "value": [{"value": "other@my-practice.com", "type": "home"}]},
        {"op": "add", "path": "emails", "value": [{"value": "other@my-practice.com"}]},
        {"op": "replace", "path": "emails.type", "value": "home"},
        {"op": "remove", "path": "emails.type"},
        {"op": "replace", "path": "phoneNumbers.primary", "value": False},
        {"op": "replace", "value": {"phoneNumbers.type": "fax"}},
        {"op": "remove", "path": "active"},
        {"op": "replace", "path": "active", "value": None},
        {"op": "remove", "path": EXT},
    ],
)
def test_what_the_user_cant_keep_is_refused_and_nothing_changes(scim, ben, operation):
    if operation.get("path") == EXT:
        scim.patch(f"Users/{ben}", patch_body({"op": "add", "path": f"{EXT}:sex", "value": "F"}))
    before = scim.get(f"Users/{ben}").json()
    events = AuditEvent.objects.count()
    response = scim.patch(f"Users/{ben}", patch_body(operation))
    assert_scim_error(response, 400)
    assert response.json()["scimType"] in ("invalidValue", "mutability")
    assert scim.get(f"Users/{ben}").json() == before
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("path", "value"), [("userName", "someone.else@my-practice.com"), ("externalId", "entra-object-2")]
)
def test_a_disabled_users_identity_cant_be_replaced(scim, ben, path, value):
    scim.patch(f"Users/{ben}", patch_body({"op": "replace", "path": "active", "value": False}))
    before = scim.get(f"Users/{ben}").json()
    for operation in ({"op": "replace", "path": path, "value": value}, {"op": "replace", "value": {path: value}}):
        response = scim.patch(f"Users/{ben}", patch_body(operation))
        body = assert_scim_error(response, 400, "mutability")
        assert body["detail"].startswith(f"{path}:")
    assert_scim_error(scim.put(f"Users/{ben}", {**scim_user(), path: value, "active": False}), 400, "mutability")
    assert scim.get(f"Users/{ben}").json() == before
    # Unchanged values are no change: the identity provider's PUT of what it holds goes through.
    assert (
        scim.put(
            f"Users/{ben}", {**scim_user(), "active": False, "phoneNumbers": [{"value": "0432333333"}]}
        ).status_code
        == 200
    )
