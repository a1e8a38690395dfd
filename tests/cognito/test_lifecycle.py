"""Every lifecycle step shows up in Cognito (moto's server over HTTP), checked with a plain boto3
client that does not go through the gateway under test."""

import pytest
from botocore.exceptions import ClientError

from accounts import services
from accounts.models import CognitoSync, User
from tests.cognito.conftest import ACTOR, row

pytestmark = pytest.mark.django_db(transaction=True)


def account(raw_cognito, pool_id, user_id):
    user = raw_cognito.admin_get_user(UserPoolId=pool_id, Username=user_id)
    groups = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=user_id)["Groups"]
    return {
        "enabled": user["Enabled"],
        "attributes": {a["Name"]: a["Value"] for a in user["UserAttributes"]},
        "groups": {g["GroupName"] for g in groups},
    }


def sign_in(raw_cognito, pool_id, user_id) -> str:
    """Give the account a password and a session; return its refresh token."""
    client_id = raw_cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="test-app",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    raw_cognito.admin_set_user_password(UserPoolId=pool_id, Username=user_id, Password="Pa55word!x", Permanent=True)
    tokens = raw_cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user_id, "PASSWORD": "Pa55word!x"},
    )["AuthenticationResult"]
    return client_id, tokens["RefreshToken"]


def refresh(raw_cognito, pool_id, client_id, refresh_token):
    return raw_cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": refresh_token},
    )


def test_every_lifecycle_step_reaches_cognito(api, users_url, organization, raw_cognito, pool_id):
    created = api.post(
        users_url,
        {
            "given_name": "Ben",
            "family_name": "Smith",
            "email": "Ben.Smith@My-Practice.com",
            "access_roles": ["receptionist", "rx_reader"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    user_id = created.json()["id"]
    assert created.json()["cognito"] == {"status": "synced"}, row(user_id).last_error
    state = account(raw_cognito, pool_id, user_id)
    assert state["enabled"] is True
    assert state["groups"] == {"receptionist", "rx_reader"}
    assert state["attributes"]["email"] == "ben.smith@my-practice.com"
    assert state["attributes"]["email_verified"] == "true"
    assert state["attributes"]["given_name"] == "Ben"
    assert state["attributes"]["family_name"] == "Smith"
    assert state["attributes"]["custom:organization_id"] == str(organization.pk)

    # Roles -> groups: added and removed; member is no group.
    roles = api.put(f"{users_url}/{user_id}/roles", {"access_roles": ["admin", "provider", "member"]}, format="json")
    assert roles.status_code == 200, roles.content
    assert roles.json()["cognito"] == {"status": "synced"}
    assert account(raw_cognito, pool_id, user_id)["groups"] == {"admin", "provider"}

    # Email and name -> attributes; the new address is unverified until its owner proves it.
    updated = api.patch(
        f"{users_url}/{user_id}", {"email": "ben@new-practice.com", "given_name": "Benjamin"}, format="json"
    )
    assert updated.status_code == 200, updated.content
    attributes = account(raw_cognito, pool_id, user_id)["attributes"]
    assert attributes["email"] == "ben@new-practice.com"
    assert attributes["email_verified"] == "false"
    assert attributes["given_name"] == "Benjamin"

    # Disable -> disabled, no groups, and signed out everywhere.
    client_id, refresh_token = sign_in(raw_cognito, pool_id, user_id)
    refresh(raw_cognito, pool_id, client_id, refresh_token)  # the session works before
    disabled = api.put(f"{users_url}/{user_id}/disable")
    assert disabled.status_code == 200, disabled.content
    assert disabled.json()["cognito"] == {"status": "synced"}
    state = account(raw_cognito, pool_id, user_id)
    assert state["enabled"] is False
    assert state["groups"] == set()
    # moto lets a disabled user's refresh token through; only the global sign-out revokes it.
    with pytest.raises(ClientError) as revoked:
        refresh(raw_cognito, pool_id, client_id, refresh_token)
    assert revoked.value.response["Error"]["Code"] == "NotAuthorizedException"

    # Staff re-enable (the admin's service): enabled again, roles stay member.
    services.user_enable(user=User.objects.get(pk=user_id), actor=ACTOR)
    state = account(raw_cognito, pool_id, user_id)
    assert state["enabled"] is True
    assert state["groups"] == set()
    assert row(user_id).state == CognitoSync.State.SYNCED


def test_disabling_twice_makes_no_second_cognito_call(api, users_url, recording_client):
    user_id = api.post(
        users_url, {"given_name": "Jo", "family_name": "Former", "email": "jo@my-practice.com"}, format="json"
    ).json()["id"]
    assert api.put(f"{users_url}/{user_id}/disable").status_code == 200
    assert recording_client.count("admin_disable_user") == 1
    calls_before = recording_client.count()
    version = row(user_id).desired_version

    again = api.put(f"{users_url}/{user_id}/disable")
    assert again.status_code == 200
    assert recording_client.count() == calls_before
    assert row(user_id).desired_version == version


@pytest.mark.slow
def test_provider_toggle_twenty_times_converges(api, users_url, raw_cognito, pool_id):
    created = api.post(
        users_url,
        {
            "given_name": "Sarah",
            "family_name": "Johnson",
            "email": "sarah.johnson@clinic.com",
            "access_roles": ["provider"],
            "date_of_birth": "1980-03-15",
            "sex": "F",
            "hpii_number": "8003614900000017",
            "prescriber_type": "M",
            "prescriber_number": "2345678",
            "qualifications": "MBBS",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    user = created.json()
    for _ in range(20):
        for roles in (["rx_reader"], ["provider"]):
            response = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": roles}, format="json")
            assert response.status_code == 200, response.content

    assert account(raw_cognito, pool_id, user["id"])["groups"] == {"provider"}
    final = api.get(f"{users_url}/{user['id']}").json()
    assert final["provider_details"] == user["provider_details"]
    assert final["can_prescribe"] is True
    assert final["cognito"] == {"status": "synced"}
    sync_row = row(user["id"])
    assert sync_row.state == CognitoSync.State.SYNCED
    assert sync_row.synced_version == sync_row.desired_version == 41  # created + 40 role changes


@pytest.mark.slow
def test_toggles_queued_while_inline_is_off_apply_only_the_latest_state(
    api, users_url, raw_cognito, pool_id, settings, applied_per_user
):
    from django.core.management import call_command

    user_id = api.post(
        users_url,
        {"given_name": "Priya", "family_name": "Patel", "email": "priya@clinic.com", "access_roles": ["rx_reader"]},
        format="json",
    ).json()["id"]
    settings.COGNITO_SYNC_INLINE = False
    for _ in range(20):
        for roles in (["provider"], ["rx_reader", "admin"]):
            assert api.put(f"{users_url}/{user_id}/roles", {"access_roles": roles}, format="json").status_code == 200
    assert api.get(f"{users_url}/{user_id}").json()["cognito"] == {"status": "pending"}
    applied_before = applied_per_user[user_id]

    call_command("sync_cognito")
    # Forty queued changes, one task: the worker applies the newest state once.
    assert applied_per_user[user_id] - applied_before == 1
    assert account(raw_cognito, pool_id, user_id)["groups"] == {"admin", "rx_reader"}
    assert row(user_id).state == CognitoSync.State.SYNCED


def test_a_changed_email_stays_unverified_until_proven_and_proven_stays_proven(
    api, users_url, raw_cognito, pool_id
):
    user_id = api.post(
        users_url, {"given_name": "Ana", "family_name": "Lee", "email": "ana@my-practice.com"}, format="json"
    ).json()["id"]
    assert account(raw_cognito, pool_id, user_id)["attributes"]["email_verified"] == "true"  # created: verified

    assert api.patch(f"{users_url}/{user_id}", {"email": "ana.lee@my-practice.com"}, format="json").status_code == 200
    assert account(raw_cognito, pool_id, user_id)["attributes"]["email_verified"] == "false"

    # Later changes that don't touch the address leave it unverified: a rename, roles, a reconcile.
    assert api.patch(f"{users_url}/{user_id}", {"family_name": "Lee-Wong"}, format="json").status_code == 200
    assert api.put(f"{users_url}/{user_id}/roles", {"access_roles": ["admin"]}, format="json").status_code == 200
    from django.core.management import call_command

    call_command("reconcile_cognito")  # no drift reported, so no raise
    attributes = account(raw_cognito, pool_id, user_id)["attributes"]
    assert (attributes["email"], attributes["family_name"]) == ("ana.lee@my-practice.com", "Lee-Wong")
    assert attributes["email_verified"] == "false"

    # The person proves the address in Cognito; a later change does not undo that either.
    raw_cognito.admin_update_user_attributes(
        UserPoolId=pool_id, Username=user_id, UserAttributes=[{"Name": "email_verified", "Value": "true"}]
    )
    assert api.patch(f"{users_url}/{user_id}", {"given_name": "Anna"}, format="json").status_code == 200
    assert account(raw_cognito, pool_id, user_id)["attributes"]["email_verified"] == "true"


@pytest.mark.django_db(transaction=True)
def test_a_changed_email_stays_unverified_when_the_first_create_landed_unrecorded(organization, raw_cognito, pool_id):
    """The inline budget ran out after AdminCreateUser landed: the row says never applied. The next
    apply finds the account exists; the address it then writes is a changed one, so unverified."""
    from accounts.cognito import sync

    user = services.user_create(
        organization=organization, actor=ACTOR, email="first@alice.example", given_name="A", family_name="B"
    )
    CognitoSync.objects.filter(pk=user.pk).update(synced=None, synced_version=0, state="pending")
    with sync.inline_sync_disabled():
        services.user_update(user=user, actor=ACTOR, data={"email": "second@alice.example"})

    sync.process_due()

    account = raw_cognito.admin_get_user(UserPoolId=pool_id, Username=str(user.pk))
    attributes = {a["Name"]: a["Value"] for a in account["UserAttributes"]}
    assert (attributes["email"], attributes["email_verified"]) == ("second@alice.example", "false")
