"""SCIM Groups: one per assignable role; membership sets the members' roles."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.scim.conftest import assert_scim_error, patch_body, scim_user

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def create(scim, user_name="ben@my-practice.com", **extra) -> str:
    response = scim.post("Users", scim_user(user_name, **extra))
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_the_groups_are_the_assignable_roles(scim):
    body = scim.get("Groups").json()
    assert body["totalResults"] == 4
    assert [g["id"] for g in body["Resources"]] == ["admin", "provider", "receptionist", "rx_reader"]
    assert [g["displayName"] for g in body["Resources"]] == ["admin", "provider", "receptionist", "rx_reader"]
    assert all(g["meta"]["location"].endswith(f"/scim/v2/Groups/{g['id']}") for g in body["Resources"])


def test_get_a_group_lists_its_members(scim):
    ben = create(scim, roles=[{"value": "admin"}])
    create(scim, "amy@my-practice.com")
    response = scim.get("Groups/admin")
    assert response.status_code == 200
    group = response.json()
    assert group["schemas"] == [GROUP_SCHEMA]
    assert [m["value"] for m in group["members"]] == [ben]
    assert group["members"][0]["display"] == "Ben Smith"
    assert response["ETag"] == group["meta"]["version"]


def test_filter_by_display_name_and_excluded_members(scim):
    create(scim, roles=[{"value": "receptionist"}])
    body = scim.get('Groups?filter=displayName eq "receptionist"&excludedAttributes=members').json()
    assert body["totalResults"] == 1
    assert body["Resources"][0]["id"] == "receptionist" and "members" not in body["Resources"][0]
    assert scim.get('Groups?filter=displayName eq "owner"').json()["totalResults"] == 0
    assert_scim_error(scim.get('Groups?filter=displayName co "p"'), 400, "invalidFilter")


@pytest.mark.parametrize("group_id", ["member", "owner", "support", "nope"])
def test_other_groups_are_404(scim, group_id):
    assert_scim_error(scim.get(f"Groups/{group_id}"), 404)


def test_entra_adds_and_removes_members(scim):
    ben, amy = create(scim), create(scim, "amy@my-practice.com", roles=[{"value": "rx_reader"}])
    response = scim.patch(
        "Groups/provider",
        patch_body({"op": "Add", "path": "members", "value": [{"value": ben}, {"value": amy}]}),
    )
    assert response.status_code == 200, response.content
    assert {m["value"] for m in response.json()["members"]} == {ben, amy}
    assert User.objects.get(pk=ben).roles == ["provider"]
    assert User.objects.get(pk=amy).roles == ["provider", "rx_reader"]
    # Entra removes with a value list; Okta with a value filter.
    scim.patch("Groups/provider", patch_body({"op": "Remove", "path": "members", "value": [{"value": ben}]}))
    scim.patch("Groups/provider", patch_body({"op": "remove", "path": f'members[value eq "{amy}"]'}))
    assert User.objects.get(pk=ben).roles == ["member"]
    assert User.objects.get(pk=amy).roles == ["rx_reader"]
    events = AuditEvent.objects.filter(action="user.roles_changed", actor_type="scim")
    assert events.count() == 4


def test_okta_replaces_members_with_put(scim):
    ben, amy = create(scim, roles=[{"value": "admin"}]), create(scim, "amy@my-practice.com")
    response = scim.put(
        "Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": [{"value": amy}]}
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=ben).roles == ["member"]
    assert User.objects.get(pk=amy).roles == ["admin"]


def test_adding_an_existing_member_writes_nothing(scim):
    ben = create(scim, roles=[{"value": "admin"}])
    before = AuditEvent.objects.count()
    scim.patch("Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": ben}]}))
    assert AuditEvent.objects.count() == before


def test_unknown_or_other_organizations_members_are_invalid_value(scim, charlie_scim):
    charlies = charlie_scim.post("Users", scim_user("c@charlie.example")).json()["id"]
    for member in (charlies, "6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11", "not-a-uuid"):
        response = scim.patch(
            "Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": member}]})
        )
        assert_scim_error(response, 400, "invalidValue")
    assert User.objects.get(pk=charlies).roles == ["member"]


def test_a_failed_member_change_changes_no_one(scim):
    ben = create(scim)
    response = scim.patch(
        "Groups/admin",
        patch_body(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": ben}, {"value": "6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11"}],
            }
        ),
    )
    assert_scim_error(response, 400, "invalidValue")
    assert User.objects.get(pk=ben).roles == ["member"]


def test_adding_a_disabled_user_is_400_mutability(scim):
    ben = create(scim)
    scim.patch(f"Users/{ben}", patch_body({"op": "replace", "value": {"active": False}}))
    response = scim.patch("Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": ben}]}))
    assert_scim_error(response, 400, "mutability")


def test_creating_renaming_and_deleting_groups_is_501(scim):
    assert_scim_error(scim.post("Groups", {"schemas": [GROUP_SCHEMA], "displayName": "nurses"}), 501)
    assert_scim_error(
        scim.patch("Groups/admin", patch_body({"op": "replace", "path": "displayName", "value": "admins"})), 501
    )
    assert_scim_error(scim.put("Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admins"}), 501)
    assert_scim_error(scim.delete("Groups/admin"), 501)
    assert scim.get("Groups").json()["totalResults"] == 4


def test_deleted_users_are_no_members(scim):
    ben = create(scim, roles=[{"value": "admin"}])
    scim.delete(f"Users/{ben}")
    assert "members" not in scim.get("Groups/admin").json()
