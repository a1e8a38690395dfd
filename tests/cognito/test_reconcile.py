"""reconcile_cognito: drift made behind the service's back (with a plain boto3 client) is reported by
user id and kind, and --fix repairs it through the outbox."""

import contextlib

import pytest
from django.core.management import CommandError, call_command

from accounts import services
from tests.cognito.conftest import ACTOR

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def drifted(make_user, other_organization, raw_cognito, pool_id):
    """Users of Alice's practice, each with one kind of drift, one in step, and Charlie's drifted user."""
    missing = make_user(1)
    renamed = make_user(2)
    extra_group = make_user(3, roles=["rx_reader"])
    still_enabled = make_user(4)
    services.user_disable(user=still_enabled, actor=ACTOR)
    wrongly_disabled = make_user(5)
    in_step = make_user(6, roles=["receptionist"])
    charlies = make_user(7, organization=other_organization)

    raw_cognito.admin_delete_user(UserPoolId=pool_id, Username=str(missing.pk))
    raw_cognito.admin_update_user_attributes(
        UserPoolId=pool_id, Username=str(renamed.pk), UserAttributes=[{"Name": "given_name", "Value": "Mallory"}]
    )
    with contextlib.suppress(raw_cognito.exceptions.GroupExistsException):
        raw_cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    raw_cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=str(extra_group.pk), GroupName="admin")
    raw_cognito.admin_enable_user(UserPoolId=pool_id, Username=str(still_enabled.pk))
    raw_cognito.admin_disable_user(UserPoolId=pool_id, Username=str(wrongly_disabled.pk))
    raw_cognito.admin_delete_user(UserPoolId=pool_id, Username=str(charlies.pk))
    return {
        "missing": missing,
        "renamed": renamed,
        "extra_group": extra_group,
        "still_enabled": still_enabled,
        "wrongly_disabled": wrongly_disabled,
        "in_step": in_step,
        "charlies": charlies,
    }


def test_drift_is_reported_by_user_id_and_kind_without_pii(drifted, capsys):
    with pytest.raises(CommandError) as failed:
        call_command("reconcile_cognito")
    assert failed.value.returncode == 1
    lines = set(capsys.readouterr().out.splitlines())
    u = {name: str(user.pk) for name, user in drifted.items()}
    assert {
        f"{u['missing']} missing_account",
        f"{u['renamed']} attributes given_name",
        f"{u['extra_group']} groups extra=admin",
        f"{u['still_enabled']} enabled_when_disabled",
        f"{u['wrongly_disabled']} disabled_when_enabled",
        f"{u['charlies']} missing_account",
    } <= lines
    assert "checked: 7  drifted: 6  fixed: 0  remaining: 6" in lines
    text = "\n".join(lines)
    assert u["in_step"] not in text
    assert not any(user.email in text or user.given_name in text for user in drifted.values())


def test_fix_repairs_the_drift_of_one_organization(drifted, organization, raw_cognito, pool_id, capsys):
    call_command("reconcile_cognito", "--organization", str(organization.pk), "--fix")  # exit 0: no raise
    out = capsys.readouterr().out
    assert "checked: 6  drifted: 5  fixed: 5  remaining: 0" in out

    def account(user):
        return raw_cognito.admin_get_user(UserPoolId=pool_id, Username=str(user.pk))

    assert account(drifted["missing"])["Enabled"] is True
    attributes = {a["Name"]: a["Value"] for a in account(drifted["renamed"])["UserAttributes"]}
    assert attributes["given_name"] == drifted["renamed"].given_name
    groups = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=str(drifted["extra_group"].pk))
    assert {g["GroupName"] for g in groups["Groups"]} == {"rx_reader"}
    assert account(drifted["still_enabled"])["Enabled"] is False
    assert account(drifted["wrongly_disabled"])["Enabled"] is True

    call_command("reconcile_cognito", "--organization", str(organization.pk))  # nothing left: no raise
    # Charlie's practice was outside --organization: its drift is still there.
    with pytest.raises(CommandError):
        call_command("reconcile_cognito")
    assert f"{drifted['charlies'].pk} missing_account" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_organization_is_refused(value, db):
    with pytest.raises(CommandError, match="organization"):
        call_command("reconcile_cognito", "--organization", value)


def test_unreachable_cognito_counts_as_remaining_drift(make_user, cognito_server, capsys):
    user = make_user(1)
    cognito_server.stop()
    try:
        with pytest.raises(CommandError):
            call_command("reconcile_cognito")
    finally:
        cognito_server.start()
    assert f"{user.pk} unreachable EndpointConnectionError" in capsys.readouterr().out
