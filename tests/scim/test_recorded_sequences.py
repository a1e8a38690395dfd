"""The provisioning calls Microsoft Entra ID and Okta document, replayed in order, bodies as they send
them: the users, audit trail, Cognito accounts (moto) and outbox rows they must leave behind.

Entra ID: learn.microsoft.com "Tutorial: Develop and plan provisioning for a SCIM endpoint"
(request/response examples). Okta: developer.okta.com "SCIM 2.0 protocol reference"."""

import pytest

from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from tests.scim.conftest import PATCH_SCHEMA, USER_SCHEMA, assert_scim_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def actions(user_id) -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(user_id=user_id).order_by("id").values_list("action", "actor_type"))


def test_entra_id_sequence(scim, cognito, scim_token):
    # 1. Is the user there already?
    found = scim.get('Users?filter=userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"').json()
    assert found["totalResults"] == 0 and found["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]

    # 2. Create it.
    response = scim.post(
        "Users",
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": True,
            "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            ENTERPRISE: {"department": "GP", "manager": {"value": "boss"}},
        },
    )
    assert response.status_code == 201, response.content
    user_id = response.json()["id"]

    # 3. Get it by filter (Entra matches on userName) and by id.
    found = scim.get('Users?filter=userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"').json()
    assert [r["id"] for r in found["Resources"]] == [user_id]
    assert scim.get(f"Users/{user_id}").json()["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"

    # 4. Update attributes (capitalised ops, value filters, a manager we don't keep).
    response = scim.patch(
        f"Users/{user_id}",
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": [{"$ref": None, "value": "boss2"}]},
            ],
        },
    )
    assert response.status_code == 200, response.content

    # 5. Grant a role through its group (Entra looks the group up first).
    group = scim.get('Groups?excludedAttributes=members&filter=displayName eq "admin"').json()["Resources"][0]
    response = scim.patch(
        f"Groups/{group['id']}",
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}],
        },
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=user_id)
    assert (user.email, user.family_name, user.roles) == ("updatedemail@microsoft.com", "updatedFamilyName", ["admin"])
    account = cognito.describe(username=user_id)
    assert account["enabled"] is True and account["groups"] == {"admin"}
    assert account["attributes"]["email"] == "updatedemail@microsoft.com"
    assert account["attributes"]["family_name"] == "updatedFamilyName"

    # 6. Remove the membership (Entra sends the member as a value list).
    scim.patch(
        f"Groups/{group['id']}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": user_id}]}]},
    )
    assert cognito.describe(username=user_id)["groups"] == set()

    # 7. Soft-delete: Entra sets active to "False" (a string) with a path-less Replace.
    response = scim.patch(
        f"Users/{user_id}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "value": {"active": "False"}}]},
    )
    assert response.status_code == 200 and response.json()["active"] is False
    assert cognito.describe(username=user_id)["enabled"] is False

    # 8. Hard delete.
    assert scim.delete(f"Users/{user_id}").status_code == 204
    assert_scim_error(scim.get(f"Users/{user_id}"), 404)

    assert actions(user_id) == [
        ("user.created", "scim"),
        ("user.updated", "scim"),
        ("user.roles_changed", "scim"),
        ("user.roles_changed", "scim"),
        ("user.disabled", "scim"),
    ]
    assert set(AuditEvent.objects.filter(user_id=user_id).values_list("actor_id", flat=True)) == {str(scim_token[0].pk)}
    assert User.objects.get(pk=user_id).is_disabled
    outbox = CognitoSync.objects.get(user_id=user_id)
    assert outbox.state == "synced" and outbox.synced_version == outbox.desired_version


def test_okta_sequence(scim, cognito):
    # 1. Look the user up.
    found = scim.get('Users?filter=userName eq "test.user@okta.local"&startIndex=1&count=100').json()
    assert found["totalResults"] == 0

    # 2. Create it (Okta sends a password and a locale, which the service doesn't keep).
    response = scim.post(
        "Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
    )
    assert response.status_code == 201, response.content
    user_id = response.json()["id"]
    assert "password" not in response.json()

    # 3. Read it back.
    assert scim.get(f"Users/{user_id}").json()["userName"] == "test.user@okta.local"

    # 4. Profile update: Okta PUTs the whole user.
    response = scim.put(
        f"Users/{user_id}",
        {
            "schemas": [USER_SCHEMA],
            "id": user_id,
            "userName": "test.user@okta.local",
            "name": {"givenName": "Another", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "phoneNumbers": [{"value": "0432333333", "type": "mobile", "primary": True}],
            "displayName": "Another User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "active": True,
            "meta": {"resourceType": "User"},
        },
    )
    assert response.status_code == 200, response.content

    # 5. Group push onto the existing role group: add, then remove by value filter.
    response = scim.patch(
        "Groups/rx_reader",
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": user_id, "display": "test.user@okta.local"}]}
            ],
        },
    )
    assert response.status_code == 200, response.content
    assert cognito.describe(username=user_id)["groups"] == {"rx_reader"}
    # Okta also replaces a group's members wholesale with a path-less replace.
    response = scim.patch(
        "Groups/receptionist",
        {
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {
                    "op": "replace",
                    "value": {"displayName": "receptionist", "members": [{"value": user_id, "display": "Another"}]},
                }
            ],
        },
    )
    assert response.status_code == 200, response.content
    scim.patch(
        "Groups/rx_reader",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}]},
    )
    user = User.objects.get(pk=user_id)
    assert (user.given_name, user.phone, user.roles) == ("Another", "+61432333333", ["receptionist"])
    assert cognito.describe(username=user_id)["groups"] == {"receptionist"}

    # 6. Deactivate.
    response = scim.patch(
        f"Users/{user_id}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert response.status_code == 200 and response.json()["active"] is False
    account = cognito.describe(username=user_id)
    assert account["enabled"] is False and account["groups"] == set()

    # 7. Reactivation is for staff: Okta's attempt is refused, the account stays disabled.
    response = scim.patch(
        f"Users/{user_id}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": True}}]},
    )
    assert_scim_error(response, 400, "mutability")
    assert cognito.describe(username=user_id)["enabled"] is False

    assert [action for action, _actor in actions(user_id)] == [
        "user.created",
        "user.updated",
        "user.roles_changed",
        "user.roles_changed",
        "user.roles_changed",
        "user.disabled",
    ]
    outbox = CognitoSync.objects.get(user_id=user_id)
    assert outbox.state == "synced" and outbox.synced_version == outbox.desired_version
