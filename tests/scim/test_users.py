"""SCIM Users: create, read, filter, page, replace, patch, delete, and the rules they share with the REST API."""

import pytest

from accounts.models import CognitoSync, ProviderDetails, User
from audit.models import AuditEvent
from scim.models import ScimIdentity
from tests.api.support import HPII_A, HPII_B
from tests.scim.conftest import EXT, USER_SCHEMA, assert_scim_error, patch_body, scim_user

PROVIDER_EXT = {
    "dateOfBirth": "1980-03-15",
    "sex": "F",
    "hpiiNumber": HPII_B,
    "prescriberType": "M",
    "prescriberNumber": "2345678",
    "qualifications": "MBBS",
}


def provider_user(user_name="sarah.johnson@clinic.com", **extra):
    fields = {
        "schemas": [USER_SCHEMA, EXT],
        "name": {"givenName": "Sarah", "familyName": "Johnson"},
        "phoneNumbers": [{"value": "0455666777", "type": "work"}],
        "roles": [{"value": "provider"}],
        EXT: PROVIDER_EXT,
    }
    return scim_user(user_name, **{**fields, **extra})


def create(scim, body=None) -> dict:
    response = scim.post("Users", body or scim_user())
    assert response.status_code == 201, response.content
    return response.json()


# --- create ---------------------------------------------------------------------------------------


def test_create_makes_the_user_through_the_services(scim, organization, scim_token):
    response = scim.post("Users", scim_user(title="Dr", externalId="entra-object-1"))
    assert response.status_code == 201, response.content
    assert response["Content-Type"].startswith("application/scim+json")
    body = response.json()
    assert response["Location"] == body["meta"]["location"] == f"http://testserver/scim/v2/Users/{body['id']}"
    assert response["ETag"] == body["meta"]["version"]
    assert body["userName"] == "ben@my-practice.com"
    assert body["externalId"] == "entra-object-1"
    assert body["active"] is True
    assert body["meta"]["resourceType"] == "User" and body["meta"]["created"] and body["meta"]["lastModified"]
    user = User.objects.get(pk=body["id"])
    assert (user.organization_id, user.email, user.given_name, user.family_name, user.title) == (
        organization.pk,
        "ben@my-practice.com",
        "Ben",
        "Smith",
        "Dr",
    )
    assert user.roles == ["member"]
    assert user.partner_user_id is None  # externalId is kept apart
    assert ScimIdentity.objects.get(user=user).external_id == "entra-object-1"
    event = AuditEvent.objects.get(user_id=user.pk, action="user.created")
    assert (event.actor_type, event.actor_id, event.actor_name) == ("scim", str(scim_token[0].pk), "Entra ID")
    assert CognitoSync.objects.filter(user=user).exists()


def test_create_a_provider_with_the_extension(scim):
    body = create(scim, provider_user())
    assert body["roles"] == [{"value": "provider"}]
    assert body["groups"][0]["value"] == "provider"
    assert body["phoneNumbers"][0]["value"] == "+61455666777"
    # No register in these tests: nobody asked it (read-only, set by the HI Service check).
    assert body[EXT] == {**PROVIDER_EXT, "verificationStatus": "unverified"}
    details = ProviderDetails.objects.get(user_id=body["id"])
    # The provider's names and phone follow the user's.
    assert (details.given_name, details.family_name, details.phone) == ("Sarah", "Johnson", "+61455666777")
    assert User.objects.get(pk=body["id"]).can_prescribe


def test_email_is_the_primary_emails_value(scim):
    body = create(
        scim,
        scim_user(
            "bsmith",
            emails=[
                {"value": "other@my-practice.com", "type": "home"},
                {"value": "Ben@My-Practice.com", "type": "work", "primary": True},
            ],
        ),
    )
    assert User.objects.get(pk=body["id"]).email == "ben@my-practice.com"
    assert body["userName"] == "bsmith"


def test_an_email_shaped_user_name_is_the_email_when_no_emails_are_sent(scim):
    payload = scim_user("Ben@My-Practice.com")
    del payload["emails"]
    body = create(scim, payload)
    assert User.objects.get(pk=body["id"]).email == "ben@my-practice.com"


def test_no_email_at_all_is_invalid_value(scim):
    payload = scim_user("bsmith")
    del payload["emails"]
    assert_scim_error(scim.post("Users", payload), 400, "invalidValue")
    assert not User.objects.exists()


def test_attributes_the_service_does_not_keep_are_ignored(scim):
    body = create(
        scim,
        scim_user(
            nickName="Benny",
            locale="en-AU",
            addresses=[{"streetAddress": "1 George St", "type": "work"}],
            **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "GP"}},
        ),
    )
    assert "nickName" not in body and "addresses" not in body


@pytest.mark.parametrize(
    ("payload_change", "attribute", "message"),
    [
        ({"phoneNumbers": [{"value": "12345", "type": "work"}]}, "phoneNumbers", "not a valid Australian phone"),
        ({"roles": [{"value": "owner"}]}, "roles", "Unknown or unassignable role(s): owner"),
        (
            {EXT: {**PROVIDER_EXT, "hpiiNumber": "8003614900000001"}},
            f"{EXT}:hpiiNumber",
            "fails its check digit: the last digit should be 9",
        ),
        ({EXT: {**PROVIDER_EXT, "sex": "X"}}, f"{EXT}:sex", "is not a valid choice"),
        ({"name": {"givenName": "", "familyName": "Smith"}}, "name.givenName", "may not be blank"),
    ],
)
def test_values_that_break_a_rule_are_invalid_value_naming_the_attribute(scim, payload_change, attribute, message):
    body = assert_scim_error(scim.post("Users", provider_user(**payload_change)), 400, "invalidValue")
    assert body["detail"].startswith(f"{attribute}: "), body
    assert message in body["detail"], body
    assert not User.objects.exists()


def test_the_messages_are_the_rest_apis(scim, api, users_url):
    rest = api.post(
        users_url, {"given_name": "Ben", "family_name": "Smith", "email": "b@x.com", "phone": "12345"}, format="json"
    ).json()
    scim_body = scim.post("Users", scim_user(phoneNumbers=[{"value": "12345"}])).json()
    assert scim_body["detail"] == f"phoneNumbers: {rest['errors'][0]['message']}"


def test_a_provider_without_its_details_names_the_extension(scim):
    payload = provider_user()
    del payload[EXT]
    body = assert_scim_error(scim.post("Users", payload), 400, "invalidValue")
    assert f"{EXT}:hpiiNumber: This field is required" in body["detail"]


def test_duplicate_user_name_is_409_uniqueness_case_insensitively(scim):
    create(scim, scim_user("bsmith", emails=[{"value": "ben@my-practice.com", "primary": True}]))
    payload = scim_user("BSmith", emails=[{"value": "ben2@my-practice.com", "primary": True}])
    body = assert_scim_error(scim.post("Users", payload), 409, "uniqueness")
    assert body["detail"].startswith("userName: ")


def test_duplicate_email_is_409_uniqueness(scim, charlie_scim):
    create(scim)
    # E-mail is unique across the platform, so another organization's IdP meets it too.
    body = assert_scim_error(charlie_scim.post("Users", scim_user("BEN@my-practice.com")), 409, "uniqueness")
    assert body["detail"].startswith("emails: ")


def test_duplicate_hpii_is_409_uniqueness(scim):
    create(scim, provider_user())
    body = assert_scim_error(scim.post("Users", provider_user("other@clinic.com")), 409, "uniqueness")
    assert body["detail"].startswith(f"{EXT}:hpiiNumber: ")


def test_a_user_made_through_the_rest_api_is_seen_with_its_email_as_user_name(scim, api, users_url):
    api.post(users_url, {"given_name": "Ben", "family_name": "Smith", "email": "ben@my-practice.com"}, format="json")
    listed = scim.get('Users?filter=userName eq "Ben@My-Practice.com"').json()
    assert listed["totalResults"] == 1
    assert listed["Resources"][0]["userName"] == "ben@my-practice.com"
    # ...and so that userName is taken.
    assert_scim_error(scim.post("Users", scim_user("ben@my-practice.com")), 409, "uniqueness")


def test_malformed_json_is_invalid_syntax(scim, client, scim_token):
    response = client.post(
        "/scim/v2/Users",
        data="{not json",
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim_token[1]}",
    )
    assert_scim_error(response, 400, "invalidSyntax")


def test_deeply_nested_json_is_a_400_not_a_500(scim, client, scim_token):
    response = client.post(
        "/scim/v2/Users",
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim_token[1]}",
    )
    assert_scim_error(response, 400)


@pytest.mark.parametrize("value", [123, ["x"], {"a": 1}, "a\u202eb"])
def test_hostile_values_are_400_never_500(scim, value):
    response = scim.post("Users", scim_user(title=value))
    assert_scim_error(response, 400)


# --- read, filter, page ---------------------------------------------------------------------------


def test_get_by_id(scim):
    created = create(scim)
    response = scim.get(f"Users/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response["ETag"] == created["meta"]["version"]


def test_unknown_and_malformed_ids_are_404(scim):
    assert_scim_error(scim.get("Users/6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11"), 404)
    assert_scim_error(scim.get("Users/not-a-uuid"), 404)


def test_filters(scim):
    ben = create(scim, scim_user(externalId="ext-1"))
    create(scim, scim_user("amy@my-practice.com", externalId="ext-2"))
    assert [r["id"] for r in scim.get('Users?filter=userName eq "BEN@my-practice.COM"').json()["Resources"]] == [
        ben["id"]
    ]
    assert [r["id"] for r in scim.get('Users?filter=externalId eq "ext-1"').json()["Resources"]] == [ben["id"]]
    assert [r["id"] for r in scim.get(f'Users?filter=id eq "{ben["id"]}"').json()["Resources"]] == [ben["id"]]
    empty = scim.get('Users?filter=userName eq "nobody"').json()
    assert empty["totalResults"] == 0 and empty.get("Resources", []) == []
    assert scim.get('Users?filter=id eq "not-a-uuid"').json()["totalResults"] == 0


@pytest.mark.parametrize(
    "expression",
    ['userName co "ben"', 'name.givenName eq "Ben"', 'userName eq "a" or userName eq "b"', "userName pr", "((("],
)
def test_other_filters_are_invalid_filter(scim, expression):
    assert_scim_error(scim.get(f"Users?filter={expression}"), 400, "invalidFilter")


def test_start_index_and_count_pages(scim):
    ids = [create(scim, scim_user(f"user{i}@my-practice.com"))["id"] for i in range(5)]
    page = scim.get("Users?startIndex=2&count=2").json()
    assert page["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["id"] for r in page["Resources"]] == ids[1:3]
    assert scim.get("Users?startIndex=0&count=1").json()["startIndex"] == 1
    assert scim.get("Users?count=0").json()["itemsPerPage"] == 0
    assert_scim_error(scim.get("Users?count=abc"), 400, "invalidValue")


def test_attributes_and_excluded_attributes(scim):
    create(scim)
    only = scim.get("Users?attributes=userName").json()["Resources"][0]
    assert "userName" in only and "emails" not in only and "id" in only
    without = scim.get("Users?excludedAttributes=emails").json()["Resources"][0]
    assert "emails" not in without and "userName" in without


# --- replace (PUT) ---------------------------------------------------------------------------------


def test_put_replaces_the_profile_through_user_update(scim):
    created = create(scim, scim_user(title="Dr", phoneNumbers=[{"value": "0432333333"}]))
    payload = scim_user(name={"givenName": "Benjamin", "familyName": "Smith"}, externalId="ext-9")
    response = scim.put(f"Users/{created['id']}", payload)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == {"givenName": "Benjamin", "familyName": "Smith"}
    assert "title" not in body and "phoneNumbers" not in body  # replaced: what was not sent is cleared
    assert body["externalId"] == "ext-9"
    assert body["meta"]["version"] != created["meta"]["version"]
    changes = AuditEvent.objects.filter(user_id=created["id"], action="user.updated").values_list("changes", flat=True)
    merged = {key: value for change in changes for key, value in change.items()}
    assert merged["given_name"] == {"from": "Ben", "to": "Benjamin"}
    assert merged["title"] == {"from": "Dr", "to": ""}
    assert merged["scim.externalId"] == {"from": "", "to": "ext-9"}


def test_put_without_roles_or_extension_leaves_them(scim):
    created = create(scim, provider_user())
    payload = provider_user()
    del payload["roles"], payload[EXT]
    body = scim.put(f"Users/{created['id']}", payload).json()
    assert body["roles"] == [{"value": "provider"}]
    assert body[EXT] == {**PROVIDER_EXT, "verificationStatus": "unverified"}


def test_put_that_changes_nothing_writes_no_audit_event(scim):
    created = create(scim)
    before = AuditEvent.objects.count()
    assert scim.put(f"Users/{created['id']}", scim_user()).status_code == 200
    assert AuditEvent.objects.count() == before


def test_put_with_if_match_of_an_old_version_is_412(scim):
    created = create(scim)
    scim.put(f"Users/{created['id']}", scim_user(title="Dr"))
    response = scim.put(f"Users/{created['id']}", scim_user(title="Prof"), HTTP_IF_MATCH=created["meta"]["version"])
    assert_scim_error(response, 412)
    assert User.objects.get(pk=created["id"]).title == "Dr"


def test_a_failing_write_changes_nothing(scim):
    """Profile, roles and SCIM identity commit together or not at all."""
    created = create(scim)
    payload = scim_user("renamed", name={"givenName": "Benjamin", "familyName": "Smith"}, roles=[{"value": "owner"}])
    assert_scim_error(scim.put(f"Users/{created['id']}", payload), 400, "invalidValue")
    user = User.objects.get(pk=created["id"])
    assert user.given_name == "Ben"
    assert ScimIdentity.objects.get(user=user).user_name == "ben@my-practice.com"


def test_changing_user_name_to_a_taken_one_is_409(scim):
    create(scim, scim_user("amy@my-practice.com"))
    ben = create(scim)
    payload = scim_user("AMY@my-practice.com", emails=[{"value": "ben@my-practice.com", "primary": True}])
    assert_scim_error(scim.put(f"Users/{ben['id']}", payload), 409, "uniqueness")


# --- patch ---------------------------------------------------------------------------------------


def test_patch_entra_path_less_replace_with_string_false_disables(scim, cognito, transactional_db):
    created = create(scim, scim_user(roles=[{"value": "admin"}]))
    response = scim.patch(f"Users/{created['id']}", patch_body({"op": "Replace", "value": {"active": "False"}}))
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    user = User.objects.get(pk=created["id"])
    assert user.is_disabled and user.roles == ["member"]
    assert AuditEvent.objects.filter(user_id=user.pk, action="user.disabled", actor_type="scim").count() == 1
    assert cognito.describe(username=created["id"])["enabled"] is False


def test_patch_entra_attribute_forms(scim):
    created = create(scim)
    response = scim.patch(
        f"Users/{created['id']}",
        patch_body(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ben.smith@my-practice.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Benjamin"},
            {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "0432333333"},
            {"op": "Add", "path": "title", "value": "Dr"},
            {"op": "Replace", "path": "externalId", "value": "entra-1"},
        ),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=created["id"])
    assert (user.email, user.given_name, user.phone, user.title) == (
        "ben.smith@my-practice.com",
        "Benjamin",
        "+61432333333",
        "Dr",
    )
    assert ScimIdentity.objects.get(user=user).external_id == "entra-1"


def test_patch_okta_active_false(scim):
    created = create(scim)
    response = scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "value": {"active": False}}))
    assert response.json()["active"] is False


def test_patch_remove_title(scim):
    created = create(scim, scim_user(title="Dr"))
    response = scim.patch(f"Users/{created['id']}", patch_body({"op": "remove", "path": "title"}))
    assert "title" not in response.json()
    assert User.objects.get(pk=created["id"]).title == ""


def test_patch_extension_attribute(scim):
    created = create(scim, provider_user())
    response = scim.patch(
        f"Users/{created['id']}", patch_body({"op": "replace", "path": f"{EXT}:qualifications", "value": "FRACGP"})
    )
    assert response.json()[EXT]["qualifications"] == "FRACGP"
    assert AuditEvent.objects.filter(user_id=created["id"], action="provider_details.updated").count() == 2


def test_patch_roles(scim):
    created = create(scim)
    response = scim.patch(
        f"Users/{created['id']}", patch_body({"op": "add", "path": "roles", "value": [{"value": "rx_reader"}]})
    )
    assert response.json()["roles"] == [{"value": "rx_reader"}]
    event = AuditEvent.objects.get(user_id=created["id"], action="user.roles_changed")
    assert event.changes == {"access_roles": {"from": ["member"], "to": ["rx_reader"]}}


def test_patch_name_follows_into_the_provider_details(scim):
    created = create(scim, provider_user())
    scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "name.familyName", "value": "Lee"}))
    assert ProviderDetails.objects.get(user_id=created["id"]).family_name == "Lee"


def test_patch_invalid_value_names_the_attribute(scim):
    created = create(scim, provider_user())
    response = scim.patch(
        f"Users/{created['id']}",
        patch_body({"op": "replace", "path": f"{EXT}:hpiiNumber", "value": "8003614900000000"}),
    )
    body = assert_scim_error(response, 400, "invalidValue")
    assert body["detail"].startswith(f"{EXT}:hpiiNumber: HPI-I 8003614900000000 fails its check digit")
    assert ProviderDetails.objects.get(user_id=created["id"]).hpii_number == HPII_B


def test_patch_hpii_of_another_user_is_409(scim):
    create(scim, provider_user())
    other = create(scim, provider_user("other@clinic.com", **{EXT: {**PROVIDER_EXT, "hpiiNumber": HPII_A}}))
    response = scim.patch(
        f"Users/{other['id']}", patch_body({"op": "replace", "path": f"{EXT}:hpiiNumber", "value": HPII_B})
    )
    assert_scim_error(response, 409, "uniqueness")


def test_malformed_patch_is_400(scim):
    created = create(scim)
    assert_scim_error(scim.patch(f"Users/{created['id']}", {"schemas": [], "Operations": []}), 400)
    assert_scim_error(scim.patch(f"Users/{created['id']}", patch_body({"op": "explode", "path": "title"})), 400)


def test_reenabling_a_disabled_user_is_400_mutability(scim):
    created = create(scim)
    scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "active", "value": False}))
    response = scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "active", "value": "True"}))
    assert_scim_error(response, 400, "mutability")
    assert User.objects.get(pk=created["id"]).is_disabled
    payload = scim_user()
    assert_scim_error(scim.put(f"Users/{created['id']}", payload), 400, "mutability")


def test_disabling_again_is_a_no_op(scim):
    created = create(scim)
    for _ in range(2):
        response = scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "value": {"active": "False"}}))
        assert response.status_code == 200
    assert AuditEvent.objects.filter(user_id=created["id"], action="user.disabled").count() == 1


def test_changing_a_disabled_user_is_400_mutability(scim):
    created = create(scim)
    scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "active", "value": False}))
    response = scim.patch(f"Users/{created['id']}", patch_body({"op": "replace", "path": "title", "value": "Dr"}))
    assert_scim_error(response, 400, "mutability")


# --- delete --------------------------------------------------------------------------------------


def test_delete_disables_and_hides_the_user_from_scim(scim, api, users_url):
    created = create(scim, scim_user(roles=[{"value": "admin"}]))
    response = scim.delete(f"Users/{created['id']}")
    assert response.status_code == 204
    url = f"Users/{created['id']}"
    assert_scim_error(scim.get(url), 404)
    assert_scim_error(scim.put(url, scim_user()), 404)
    assert_scim_error(scim.patch(url, patch_body({"op": "replace", "path": "title", "value": "x"})), 404)
    assert_scim_error(scim.delete(url), 404)
    assert scim.get('Users?filter=userName eq "ben@my-practice.com"').json()["totalResults"] == 0
    assert scim.get("Users").json()["totalResults"] == 0
    # Still in the REST API, as disabled.
    rest = api.get(f"{users_url}/{created['id']}").json()
    assert rest["status"] == "disabled" and rest["access_roles"] == ["member"]
    assert AuditEvent.objects.filter(user_id=created["id"], action="user.disabled", actor_type="scim").count() == 1


def test_delete_of_a_rest_made_user(scim, api, users_url):
    user = api.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@b.com"}, format="json").json()
    assert scim.delete(f"Users/{user['id']}").status_code == 204
    assert_scim_error(scim.get(f"Users/{user['id']}"), 404)
    assert api.get(f"{users_url}/{user['id']}").json()["status"] == "disabled"


# --- tenancy -------------------------------------------------------------------------------------


def test_another_organizations_users_are_404_to_every_operation(scim, charlie_scim):
    created = create(scim)
    url = f"Users/{created['id']}"
    assert_scim_error(charlie_scim.get(url), 404)
    assert_scim_error(charlie_scim.put(url, scim_user()), 404)
    assert_scim_error(charlie_scim.patch(url, patch_body({"op": "replace", "value": {"active": False}})), 404)
    assert_scim_error(charlie_scim.delete(url), 404)
    assert charlie_scim.get("Users").json()["totalResults"] == 0
    assert charlie_scim.get(f'Users?filter=id eq "{created["id"]}"').json()["totalResults"] == 0
    assert charlie_scim.get('Users?filter=userName eq "ben@my-practice.com"').json()["totalResults"] == 0
    assert User.objects.get(pk=created["id"]).is_active


def test_staff_are_not_scim_users(scim, django_user_model):
    django_user_model.objects.create_superuser(
        email="root@platform.example", password="x", given_name="R", family_name="S"
    )
    assert scim.get("Users").json()["totalResults"] == 0


@pytest.mark.parametrize("field", ["userName", "externalId"])
@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\u202eb", "x" * 300, 42])
def test_scims_own_attributes_are_checked_like_every_text_field(scim, field, value):
    body = assert_scim_error(scim.post("Users", scim_user(**{field: value})), 400)
    assert body["detail"].startswith(f"{field}") or field in body["detail"], body
    assert not User.objects.exists()


def test_another_organizations_user_is_404_even_with_a_bad_body(scim, charlie_scim):
    created = create(scim)
    assert_scim_error(charlie_scim.put(f"Users/{created['id']}", {"schemas": ["nope"]}), 404)
    assert_scim_error(charlie_scim.patch(f"Users/{created['id']}", {"Operations": "x"}), 404)
