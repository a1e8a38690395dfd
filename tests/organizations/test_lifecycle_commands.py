"""deactivate_organization and activate_organization: what an operator sees, exit codes, audit actor."""

import pytest
from django.core.management import CommandError, ManagementUtility, call_command

from accounts import services
from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from organizations.models import Organization
from tests.organizations.conftest import SETUP

pytestmark = pytest.mark.django_db

NOBODY = "00000000-0000-4000-8000-000000000000"


def _run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_deactivate_organization_prints_what_it_did_and_audits_the_command(organization, make_user):
    ben = make_user("ben@practice.example", roles=["rx_reader"])
    make_user("dana@practice.example")
    output = _run("deactivate_organization", str(organization.pk), "--reason", "contract ended")
    assert output.splitlines() == [
        f"Deactivated organization \"Alice's Practice\" ({organization.pk}).",
        "Its API clients get 401 from now on.",
        "Cognito: 2 user account(s) queued to be disabled and signed out (sync_cognito or the worker applies it).",
    ]
    organization.refresh_from_db()
    assert not organization.is_active
    event = AuditEvent.objects.get(action="organization.deactivated")
    assert (event.actor_type, event.actor_name) == ("system", "deactivate_organization")
    assert event.changes["reason"] == {"from": None, "to": "contract ended"}
    assert CognitoSync.objects.get(pk=ben.pk).desired["enabled"] is False
    assert User.objects.get(pk=ben.pk).roles == ["rx_reader"]


def test_deactivating_twice_changes_nothing_the_second_time(organization):
    _run("deactivate_organization", str(organization.pk))
    output = _run("deactivate_organization", str(organization.pk))
    assert output.strip() == "Organization \"Alice's Practice\" was already deactivated; nothing changed."
    assert AuditEvent.objects.filter(action="organization.deactivated").count() == 1


def test_activate_organization_reverses_it(organization, make_user):
    make_user("ben@practice.example")
    erin = make_user("erin@practice.example")
    services.user_disable(user=erin, actor=SETUP)
    _run("deactivate_organization", str(organization.pk))
    output = _run("activate_organization", str(organization.pk))
    assert output.splitlines() == [
        f"Activated organization \"Alice's Practice\" ({organization.pk}).",
        "Cognito: 1 active user account(s) queued to be enabled again (sync_cognito or the worker applies it); "
        "disabled users stay disabled.",
    ]
    organization.refresh_from_db()
    assert organization.is_active
    event = AuditEvent.objects.get(action="organization.activated")
    assert (event.actor_type, event.actor_name) == ("system", "activate_organization")
    assert CognitoSync.objects.get(pk=erin.pk).desired["enabled"] is False
    again = _run("activate_organization", str(organization.pk))
    assert again.strip() == "Organization \"Alice's Practice\" is already active; nothing changed."
    assert AuditEvent.objects.filter(action="organization.activated").count() == 1


@pytest.mark.parametrize("command", ["deactivate_organization", "activate_organization"])
@pytest.mark.parametrize("value", [NOBODY, "not-a-uuid", ""])
def test_an_unknown_organization_is_a_clear_one_line_error(command, value, organization):
    with pytest.raises(CommandError) as error:
        _run(command, value)
    message = str(error.value)
    assert message.startswith("No organization with id") and "\n" not in message
    organization.refresh_from_db()
    assert organization.is_active
    assert not AuditEvent.objects.filter(action__startswith="organization.", action__endswith="activated").exists()


def test_a_too_long_reason_is_refused(organization):
    with pytest.raises(CommandError, match="at most 500"):
        _run("deactivate_organization", str(organization.pk), "--reason", "x" * 501)
    assert Organization.objects.get(pk=organization.pk).is_active


@pytest.mark.parametrize(
    "argv",
    [
        ["deactivate_organization", NOBODY],
        ["deactivate_organization"],  # ORG_ID is required
        ["activate_organization", "not-a-uuid"],
    ],
)
def test_errors_exit_non_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", *argv]).execute()
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(("CommandError:", "manage.py"))


def test_create_organization_and_api_client_commands_audit_as_the_command(organization):
    _run("create_organization", "--name", "Harbour Medical")
    created = AuditEvent.objects.get(action="organization.created", organization__name="Harbour Medical")
    assert (created.actor_type, created.actor_name, created.user_id) == ("system", "create_organization", None)
    _run("create_api_client", "--organization", str(organization.pk), "--name", "PMS", "--scopes", "read:users", "--json")
    event = AuditEvent.objects.get(action="api_client.created")
    assert (event.actor_type, event.actor_name, event.organization_id) == ("system", "create_api_client", organization.pk)


def test_create_api_client_refuses_an_inactive_organization(organization):
    _run("deactivate_organization", str(organization.pk))
    with pytest.raises(CommandError, match="deactivated"):
        _run("create_api_client", "--organization", str(organization.pk), "--name", "PMS", "--scopes", "read:users")
