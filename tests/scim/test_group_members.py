"""Groups membership as identity providers send it: member value objects with "$ref", filters,
sub-attributes, full replacement by PUT, and the cap on members per change."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.scim.conftest import assert_scim_error, patch_body, scim_user

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def create(scim, user_name="ben@my-practice.com", **extra) -> str:
    response = scim.post("Users", scim_user(user_name, **extra))
    assert response.status_code == 201, response.content
    return response.json()["id"]


def roles_changed(user_id) -> int:
    return AuditEvent.objects.filter(user_id=user_id, action="user.roles_changed", actor_type="scim").count()


def uri(user_id) -> str:
    return f"http://testserver/scim/v2/Users/{user_id}"


@pytest.mark.parametrize(
    "ref", [None, "uri", "/scim/v2/Users/{id}", "Users/{id}"], ids=["null", "absolute", "path", "relative"]
)
def test_a_remove_whose_member_carries_ref_removes_it(scim, ref):
    ben = create(scim, roles=[{"value": "admin"}])
    member = {"value": ben, "$ref": uri(ben) if ref == "uri" else ref and ref.format(id=ben)}
    response = scim.patch("Groups/admin", patch_body({"op": "remove", "path": "members", "value": [member]}))
    assert response.status_code == 200, response.content
    assert "members" not in response.json()
    assert User.objects.get(pk=ben).roles == ["member"]
    assert roles_changed(ben) == 1


def test_add_replace_and_put_take_ref_too(scim):
    ben, amy = create(scim), create(scim, "amy@my-practice.com")
    response = scim.patch(
        "Groups/provider",
        patch_body({"op": "add", "path": "members", "value": [{"value": ben, "$ref": None, "type": "User"}]}),
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=ben).roles == ["provider"]
    response = scim.patch(
        "Groups/provider",
        patch_body({"op": "replace", "path": "members", "value": [{"value": amy, "$ref": uri(amy)}]}),
    )
    assert response.status_code == 200, response.content
    assert (User.objects.get(pk=ben).roles, User.objects.get(pk=amy).roles) == (["member"], ["provider"])
    response = scim.put(
        "Groups/provider",
        {"schemas": [GROUP_SCHEMA], "displayName": "provider", "members": [{"value": ben, "$ref": uri(ben)}]},
    )
    assert response.status_code == 200, response.content
    assert (User.objects.get(pk=ben).roles, User.objects.get(pk=amy).roles) == (["provider"], ["member"])


@pytest.mark.parametrize("ref", [None, "Users/{id}", "/scim/v2/Users/{id}"])
def test_put_takes_every_form_of_ref(scim, ref):
    ben, amy = create(scim, roles=[{"value": "admin"}]), create(scim, "amy@my-practice.com")
    members = [{"value": user, "$ref": ref and ref.format(id=user), "type": "User"} for user in (amy,)]
    response = scim.put("Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": members})
    assert response.status_code == 200, response.content
    assert (User.objects.get(pk=ben).roles, User.objects.get(pk=amy).roles) == (["member"], ["admin"])
    assert (roles_changed(ben), roles_changed(amy)) == (1, 1)


def test_put_refuses_a_ref_to_another_member(scim):
    ben, amy = create(scim, roles=[{"value": "admin"}]), create(scim, "amy@my-practice.com")
    members = [{"value": ben, "$ref": uri(amy)}]
    response = scim.put("Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": members})
    assert_scim_error(response, 400, "invalidValue")
    assert User.objects.get(pk=ben).roles == ["admin"]


@pytest.mark.parametrize(
    "ref",
    [
        "http://testserver/scim/v2/Users/6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11",  # another user
        "http://testserver/scim/v2/Groups/{id}",
        "urn:example:{id}",
        "{id}",
    ],
)
def test_a_ref_naming_something_else_is_refused_and_nothing_changes(scim, ref):
    ben = create(scim, roles=[{"value": "admin"}])
    response = scim.patch(
        "Groups/admin",
        patch_body({"op": "remove", "path": "members", "value": [{"value": ben, "$ref": ref.format(id=ben)}]}),
    )
    body = assert_scim_error(response, 400, "invalidValue")
    assert "members.$ref" in body["detail"]
    assert User.objects.get(pk=ben).roles == ["admin"]


def test_a_member_of_another_type_is_refused(scim):
    ben = create(scim)
    response = scim.patch(
        "Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": ben, "type": "Group"}]})
    )
    assert_scim_error(response, 400, "invalidValue")


def test_path_less_forms_and_or_filters(scim):
    ben, amy = create(scim), create(scim, "amy@my-practice.com")
    response = scim.patch(
        "Groups/rx_reader",
        patch_body({"op": "add", "value": {"members": [{"value": ben, "$ref": None}, {"value": amy}]}}),
    )
    assert response.status_code == 200, response.content
    assert {m["value"] for m in response.json()["members"]} == {ben, amy}
    response = scim.patch(
        "Groups/rx_reader", patch_body({"op": "remove", "path": f'members[value eq "{ben}" or value eq "{amy}"]'})
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=ben).roles == User.objects.get(pk=amy).roles == ["member"]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "members.display", "value": "Someone else"},
        {"op": "replace", "path": "members.value", "value": "6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11"},
        {"op": "remove", "path": "members.$ref"},
        {"op": "add", "path": 'members[value eq "x"]', "value": {"display": "x"}},
        {"op": "remove", "path": 'members[display eq "Ben Smith"]'},
        {"op": "remove", "path": "displayName"},
        {"op": "replace", "path": "externalId", "value": "entra-group-1"},
        {"op": "replace", "value": {'members[value eq "x"].display': "x"}},
    ],
)
def test_what_the_membership_cant_keep_is_refused(scim, operation):
    ben = create(scim, roles=[{"value": "admin"}])
    response = scim.patch("Groups/admin", patch_body(operation))
    assert 400 <= response.status_code < 500 or response.status_code == 501, response.content
    assert_scim_error(response, response.status_code)
    assert User.objects.get(pk=ben).roles == ["admin"]


def test_okta_put_with_no_members_empties_the_group_and_audits_each_user(scim):
    admins = [
        create(scim, f"admin{i}@my-practice.com", roles=[{"value": "admin"}, {"value": "rx_reader"}]) for i in range(3)
    ]
    bystander = create(scim, "amy@my-practice.com", roles=[{"value": "rx_reader"}])
    response = scim.put("Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": []})
    assert response.status_code == 200, response.content
    assert "members" not in response.json()
    for user_id in admins:
        assert User.objects.get(pk=user_id).roles == ["rx_reader"]
        event = AuditEvent.objects.get(user_id=user_id, action="user.roles_changed", actor_type="scim")
        assert event.changes["access_roles"] == {"from": ["admin", "rx_reader"], "to": ["rx_reader"]}
    assert roles_changed(bystander) == 0


def test_a_group_push_sends_each_changed_user_its_own_roles_webhook(scim, settings, organization):
    from audit.context import Actor
    from webhooks.models import WebhookEvent
    from webhooks.services import webhook_endpoint_create

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    webhook_endpoint_create(organization=organization, actor=Actor.system("test setup"),
                            url="http://127.0.0.1:9/hooks", events=["user.roles_changed"])
    ben, amy = create(scim, roles=[{"value": "admin"}]), create(scim, "amy@my-practice.com", roles=[{"value": "admin"}])
    keeper = create(scim, "kim@my-practice.com", roles=[{"value": "admin"}])
    response = scim.put("Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": [{"value": keeper}]})
    assert response.status_code == 200, response.content

    events = {event.payload["data"]["user_id"]: event.payload["data"]
              for event in WebhookEvent.objects.filter(type="user.roles_changed")}
    assert set(events) == {ben, amy}  # the member the push keeps changes nothing, and hears nothing
    for user_id in (ben, amy):
        assert events[user_id]["changes"]["access_roles"] == {"from": ["admin"], "to": ["member"]}
        assert events[user_id]["user"]["access_roles"] == ["member"]
        assert events[user_id]["actor"]["type"] == "scim"


def test_too_many_members_in_one_change_is_refused_before_any_work(scim, settings):
    settings.SCIM_MAX_GROUP_MEMBERS = 2
    ids = [create(scim, f"u{i}@my-practice.com") for i in range(3)]
    before = AuditEvent.objects.count()
    for response in (
        scim.patch("Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": i} for i in ids]})),
        scim.patch(
            "Groups/admin",
            patch_body(*({"op": "add", "path": "members", "value": [{"value": i}]} for i in ids)),
        ),
        scim.put(
            "Groups/admin", {"schemas": [GROUP_SCHEMA], "displayName": "admin", "members": [{"value": i} for i in ids]}
        ),
    ):
        body = assert_scim_error(response, 400, "invalidValue")
        assert "at most 2 members" in body["detail"]
    assert AuditEvent.objects.count() == before
    assert all(User.objects.get(pk=i).roles == ["member"] for i in ids)
    response = scim.patch(
        "Groups/admin", patch_body({"op": "add", "path": "members", "value": [{"value": i} for i in ids[:2]]})
    )
    assert response.status_code == 200
