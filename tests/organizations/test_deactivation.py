"""Deactivating an organization: its API clients get 401, every one of its users' Cognito accounts is
disabled and signed out through the outbox (nothing lost while Cognito is down), the users' own status
and roles don't change; activation re-enables only the active users; reconcile_cognito calls any other
state drift."""

import base64
import contextlib

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services
from accounts.cognito import sync
from accounts.models import CognitoSync, User
from audit.context import Actor
from organizations import services as organization_services
from tests.api.support import assert_problem
from tests.organizations.conftest import SETUP

pytestmark = pytest.mark.django_db(transaction=True)

OPS = Actor.system("tests")


@pytest.fixture
def practice(make_user, other_organization):
    """Alice's practice: an admin, a provider-ish rx_reader, a receptionist, one disabled user; all
    synced to Cognito before anything happens. Charlie's clinic has one user too."""
    users = {
        "alice": make_user("alice@practice.example", roles=["admin"]),
        "ben": make_user("ben@practice.example", roles=["rx_reader"]),
        "dana": make_user("dana@practice.example", roles=["receptionist"]),
        "erin": make_user("erin@practice.example", roles=["rx_reader"]),
    }
    services.user_disable(user=users["erin"], actor=SETUP)
    users["charlie"] = make_user("charlie@clinic.example", roles=["admin"], organization=other_organization)
    call_command("sync_cognito")
    assert not CognitoSync.objects.exclude(state=CognitoSync.State.SYNCED).exists()
    return {name: User.objects.get(pk=user.pk) for name, user in users.items()}


def _snapshot(users):
    return {name: (u.status, list(u.roles)) for name, u in ((n, User.objects.get(pk=u.pk)) for n, u in users.items())}


def _alices(practice):
    return [user for name, user in practice.items() if name != "charlie"]


def test_deactivation_queues_every_users_account_disabled_and_the_worker_applies_it(
    organization, practice, account_enabled, raw_cognito, pool_id
):
    before = _snapshot(practice)
    versions = dict(CognitoSync.objects.values_list("pk", "desired_version"))

    organization_services.organization_deactivate(organization=organization, actor=OPS, reason="contract ended")

    # Recorded, not applied: the request made no Cognito call; every account of Alice's practice is pending.
    for user in _alices(practice):
        row = CognitoSync.objects.get(pk=user.pk)
        assert row.state == CognitoSync.State.PENDING
        assert row.desired["enabled"] is False
        assert row.desired_version == versions[user.pk] + 1
        assert account_enabled(user) is (user.status == User.Status.ACTIVE)
    charlies_row = CognitoSync.objects.get(pk=practice["charlie"].pk)
    assert charlies_row.state == CognitoSync.State.SYNCED and charlies_row.desired["enabled"] is True

    call_command("sync_cognito")

    for user in _alices(practice):
        assert account_enabled(user) is False
        assert CognitoSync.objects.get(pk=user.pk).state == CognitoSync.State.SYNCED
    assert account_enabled(practice["charlie"]) is True
    # The groups still mirror the roles: only the account's flag reflects the organization.
    groups = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=str(practice["alice"].pk))
    assert {g["GroupName"] for g in groups["Groups"]} == {"admin"}
    assert _snapshot(practice) == before  # status and roles untouched


def test_deactivation_signs_the_accounts_out(organization, practice, monkeypatch):
    from accounts.cognito.gateway import CognitoGateway, get_client
    from tests.cognito.conftest import RecordingClient

    recorder = RecordingClient(get_client())
    monkeypatch.setattr(sync, "get_gateway", lambda **kwargs: CognitoGateway(client=recorder))
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    call_command("sync_cognito")
    active = {str(u.pk) for u in _alices(practice) if u.status == User.Status.ACTIVE}
    assert set(recorder.per_user("admin_disable_user")) == active  # the disabled user needs no call
    assert set(recorder.per_user("admin_user_global_sign_out")) == active
    assert not recorder.in_transaction


def test_cognito_down_during_deactivation_loses_nothing(
    organization, practice, cognito_server, account_enabled, capsys
):
    cognito_server.stop()
    try:
        organization_services.organization_deactivate(organization=organization, actor=OPS)
        call_command("sync_cognito")  # Cognito is down: the pass gives the rows back
        pending = CognitoSync.objects.filter(pk__in=[u.pk for u in _alices(practice)])
        assert set(pending.values_list("state", flat=True)) == {CognitoSync.State.PENDING}
        assert all(row.desired["enabled"] is False for row in pending)
    finally:
        cognito_server.start()
    CognitoSync.objects.update(next_attempt_at=CognitoSync.objects.order_by("created_at").first().created_at)
    capsys.readouterr()
    call_command("sync_cognito")
    assert "still pending: 0" in capsys.readouterr().out
    assert all(account_enabled(user) is False for user in _alices(practice))


def test_activation_re_enables_only_the_active_users(organization, practice, account_enabled):
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    call_command("sync_cognito")
    before = _snapshot(practice)

    organization_services.organization_activate(organization=organization, actor=OPS)
    rows = {row.pk: row for row in CognitoSync.objects.all()}
    assert rows[practice["alice"].pk].desired["enabled"] is True
    assert rows[practice["erin"].pk].desired["enabled"] is False
    call_command("sync_cognito")

    for name in ("alice", "ben", "dana"):
        assert account_enabled(practice[name]) is True
    assert account_enabled(practice["erin"]) is False  # disabled users stay disabled
    assert _snapshot(practice) == before


def test_a_user_changed_while_the_organization_is_inactive_stays_disabled_in_cognito(
    organization, practice, account_enabled
):
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    services.user_roles_set(user=practice["ben"], actor=OPS, roles=["admin"])
    services.user_create(
        organization=User.objects.get(pk=practice["ben"].pk).organization,
        actor=OPS,
        email="new@practice.example",
        given_name="New",
        family_name="Hire",
    )
    call_command("sync_cognito")
    assert account_enabled(practice["ben"]) is False
    assert account_enabled(User.objects.get(email="new@practice.example")) is False


def test_an_inactive_organizations_bearer_tokens_are_401_and_it_gets_no_new_token(
    organization, other_organization, api_for, practice
):
    alices, charlies = api_for(organization), api_for(other_organization)
    assert alices.get(f"/v1/organizations/{organization.pk}/users").status_code == 200

    organization_services.organization_deactivate(organization=organization, actor=OPS)

    for method, path in [
        ("get", ""),
        ("get", "/users"),
        ("get", f"/users/{practice['ben'].pk}"),
        ("get", "/audit-events"),
        ("put", f"/users/{practice['ben'].pk}/disable"),
    ]:
        response = getattr(alices, method)(f"/v1/organizations/{organization.pk}{path}")
        assert_problem(response, 401, "not_authenticated")
    assert User.objects.get(pk=practice["ben"].pk).status == User.Status.ACTIVE
    assert charlies.get(f"/v1/organizations/{other_organization.pk}/users").status_code == 200

    # Activated again: the same token works again (it was never revoked).
    organization_services.organization_activate(organization=organization, actor=OPS)
    assert alices.get(f"/v1/organizations/{organization.pk}/users").status_code == 200


def test_the_token_endpoint_refuses_an_inactive_organizations_client(organization):
    api_client, secret = organization_services.api_client_create(
        organization=organization, actor=OPS, name="PMS", scopes=["read:users"]
    )
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    basic = base64.b64encode(f"{api_client.application.client_id}:{secret}".encode()).decode()
    response = APIClient().post(
        "/v1/oauth/token", {"grant_type": "client_credentials"}, format="multipart", HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_reconcile_reports_an_enabled_account_of_an_inactive_organization_as_drift(
    organization, practice, raw_cognito, pool_id, capsys
):
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    # The worker has not run: the accounts are still enabled.
    with pytest.raises(CommandError) as failed:
        call_command("reconcile_cognito", "--organization", str(organization.pk))
    assert failed.value.returncode == 1
    lines = set(capsys.readouterr().out.splitlines())
    for name in ("alice", "ben", "dana"):
        assert f"{practice[name].pk} enabled_when_disabled organization_inactive" in lines
    assert not any(str(practice["erin"].pk) in line for line in lines)  # already disabled: in step

    call_command("reconcile_cognito", "--organization", str(organization.pk), "--fix")  # exit 0
    assert "remaining: 0" in capsys.readouterr().out
    call_command("reconcile_cognito")  # nothing left anywhere

    # An account switched on behind the service's back while the organization is off is drift too.
    raw_cognito.admin_enable_user(UserPoolId=pool_id, Username=str(practice["ben"].pk))
    with pytest.raises(CommandError):
        call_command("reconcile_cognito")
    assert f"{practice['ben'].pk} enabled_when_disabled organization_inactive" in capsys.readouterr().out


def test_reconcile_after_activation_reports_an_account_left_disabled(organization, practice, capsys):
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    call_command("sync_cognito")
    with contextlib.suppress(CommandError):
        call_command("reconcile_cognito")
    assert "drifted: 0" in capsys.readouterr().out
    organization_services.organization_activate(organization=organization, actor=OPS)  # not yet applied
    with pytest.raises(CommandError):
        call_command("reconcile_cognito")
    lines = set(capsys.readouterr().out.splitlines())
    assert f"{practice['alice'].pk} disabled_when_enabled" in lines
    assert not any(str(practice["erin"].pk) in line for line in lines)


def test_deactivation_costs_the_same_statements_for_ten_users_or_forty(organization):
    """No per-user round trips (PostgreSQL; the local SQLite demo writes row by row)."""
    if connection.vendor != "postgresql":
        pytest.skip("set-based on PostgreSQL only")

    def users(n, prefix):
        with sync.inline_sync_disabled():
            for index in range(n):
                services.user_create(
                    organization=organization, actor=OPS, email=f"{prefix}{index}@practice.example",
                    given_name="P", family_name="Q",
                )

    def deactivation_queries():
        with CaptureQueriesContext(connection) as queries:
            organization_services.organization_deactivate(organization=organization, actor=OPS)
        organization_services.organization_activate(organization=organization, actor=OPS)
        return len(queries)

    users(10, "a")
    ten = deactivation_queries()
    users(30, "b")
    assert deactivation_queries() == ten
    assert CognitoSync.objects.filter(desired__enabled=True).count() == 40


def test_the_recorded_state_is_each_users_complete_desired_state(organization, practice):
    """The set-based write changes only `enabled`; the row must equal sync.desired_state afterwards."""
    services.user_update(user=practice["ben"], actor=OPS, data={"email": "ben.new@practice.example"})
    for service in (organization_services.organization_deactivate, organization_services.organization_activate):
        service(organization=organization, actor=OPS)
        for user in User.objects.filter(organization=organization).select_related("organization"):
            assert CognitoSync.objects.get(pk=user.pk).desired == sync.desired_state(user)


def test_a_user_without_an_outbox_row_gets_one(organization, practice):
    CognitoSync.objects.filter(pk=practice["dana"].pk).delete()
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    row = CognitoSync.objects.get(pk=practice["dana"].pk)
    assert row.state == CognitoSync.State.PENDING and row.desired["enabled"] is False
    assert row.desired["groups"] == ["receptionist"]


def test_a_write_holding_a_stale_copy_of_the_organization_still_records_a_disabled_account(organization):
    from organizations.models import Organization

    stale = Organization.objects.get(pk=organization.pk)  # as a request's principal loaded it
    organization_services.organization_deactivate(organization=organization, actor=OPS)
    with sync.inline_sync_disabled():
        user = services.user_create(
            organization=stale, actor=OPS, email="late@practice.example", given_name="Late", family_name="Write"
        )
    assert CognitoSync.objects.get(pk=user.pk).desired["enabled"] is False
