"""disable_user, set_roles, export_audit and seed_demo: the API's behaviour from the shell."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from organizations.models import ApiClient, Organization
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOBODY = "00000000-0000-0000-0000-000000000000"


def make_user(organization, email="ben@practice.example", roles=("rx_reader",)):
    return UserFactory(organization=organization, actor=Actor.system("test"), email=email, roles=roles)


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- disable_user ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_disable_user_by_email_disables_audits_with_the_reason_and_syncs_cognito(organization, cognito):
    user = make_user(organization)

    out, _ = run("disable_user", "BEN@practice.example", "--organization", str(organization.pk),
                 "--reason", "left the practice")

    user.refresh_from_db()
    assert (user.status, user.roles) == ("disabled", ["member"])
    event = AuditEvent.objects.get(user=user, action="user.disabled")
    assert (event.actor_type, event.actor_name) == ("system", "disable_user: left the practice")
    assert f"Disabled user {user.pk}" in out and "Cognito: synced" in out
    assert cognito.describe(username=str(user.pk))["enabled"] is False


def test_disable_user_by_id_twice_changes_nothing_the_second_time(organization):
    user = make_user(organization)
    run("disable_user", str(user.pk), "--organization", str(organization.pk))

    out, _ = run("disable_user", str(user.pk), "--organization", str(organization.pk))

    assert "already disabled" in out
    assert AuditEvent.objects.filter(user=user, action="user.disabled").count() == 1
    assert AuditEvent.objects.get(user=user, action="user.disabled").actor_name == "disable_user"


def test_disable_user_of_another_organization_is_not_found(organization, other_organization):
    charlies = make_user(other_organization, email="charlie@clinic.example")

    for needle in (str(charlies.pk), "charlie@clinic.example", NOBODY, "nobody@practice.example"):
        with pytest.raises(CommandError, match="No user with"):
            run("disable_user", needle, "--organization", str(organization.pk))
    charlies.refresh_from_db()
    assert charlies.is_active


def test_disable_user_refuses_an_unknown_organization(organization):
    user = make_user(organization)
    with pytest.raises(CommandError, match="No organization with id"):
        run("disable_user", str(user.pk), "--organization", NOBODY)


# --- set_roles ------------------------------------------------------------------------------------


def test_set_roles_replaces_the_roles_and_audits_old_and_new(organization):
    user = make_user(organization)

    out, _ = run("set_roles", "ben@practice.example", "--organization", str(organization.pk),
                 "--roles", "provider rx_reader", "--reason", "ticket 42")

    user.refresh_from_db()
    assert user.roles == ["provider", "rx_reader"]
    event = AuditEvent.objects.get(user=user, action="user.roles_changed")
    assert event.changes == {"access_roles": {"from": ["rx_reader"], "to": ["provider", "rx_reader"]}}
    assert event.actor_name == "set_roles: ticket 42"
    assert "rx_reader -> provider, rx_reader" in out
    assert "can't prescribe" in out  # provider without details yet


def test_set_roles_to_the_same_roles_changes_nothing(organization):
    user = make_user(organization)
    out, _ = run("set_roles", str(user.pk), "--organization", str(organization.pk), "--roles", "rx_reader")
    assert "nothing changed" in out
    assert not AuditEvent.objects.filter(user=user, action="user.roles_changed").exists()


@pytest.mark.parametrize(("roles", "message"), [("owner", "owner"), ("", "non-empty"), ("admin support", "support")])
def test_set_roles_refuses_unknown_roles(organization, roles, message):
    user = make_user(organization)
    with pytest.raises(CommandError, match=message):
        run("set_roles", str(user.pk), "--organization", str(organization.pk), "--roles", roles)
    user.refresh_from_db()
    assert user.roles == ["rx_reader"]


def test_set_roles_refuses_a_disabled_user_and_outsiders(organization, other_organization):
    user = make_user(organization)
    services.user_disable(user=user, actor=Actor.system("test"))
    with pytest.raises(CommandError, match="user_disabled"):
        run("set_roles", str(user.pk), "--organization", str(organization.pk), "--roles", "admin")
    with pytest.raises(CommandError, match="No user with id"):
        run("set_roles", str(user.pk), "--organization", str(other_organization.pk), "--roles", "admin")


# --- export_audit ---------------------------------------------------------------------------------


def test_export_audit_jsonl_has_the_api_shape_oldest_first_and_only_this_organization(
    organization, other_organization
):
    user = make_user(organization)
    services.user_roles_set(user=user, actor=Actor.system("test"), roles=["admin"])
    make_user(other_organization, email="charlie@clinic.example")

    out, err = run("export_audit", "--organization", str(organization.pk))

    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["action"] for line in lines] == ["organization.created", "user.created", "user.roles_changed"]
    assert lines.pop(0)["user_id"] is None
    assert set(lines[0]) == {"id", "occurred_at", "action", "actor", "user_id", "changes", "request_id"}
    assert lines[0]["actor"] == {"type": "system", "id": "", "name": "test"}
    assert lines[0]["user_id"] == str(user.pk)
    assert lines[1]["changes"] == {"access_roles": {"from": ["rx_reader"], "to": ["admin"]}}
    assert lines[0]["occurred_at"].endswith("+00:00")  # ISO 8601 with the offset
    assert "3 audit events written" in err


def test_export_audit_csv_to_a_file_filtered_by_date(organization, tmp_path):
    user = make_user(organization)
    services.user_roles_set(user=user, actor=Actor.system("test"), roles=["admin"])
    created, first, second = AuditEvent.objects.order_by("id")  # organization.created, then the user's
    # Audit rows are append-only, so move time through the filter instead of the rows.
    since = second.occurred_at.isoformat()
    path = tmp_path / "audit.csv"

    run("export_audit", "--organization", str(organization.pk), "--format", "csv", "--output", str(path),
        "--since", since)

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == [str(second.pk)]
    assert rows[0]["actor_type"] == "system" and json.loads(rows[0]["changes"])["access_roles"]["to"] == ["admin"]

    out, _ = run("export_audit", "--organization", str(organization.pk), "--until", "2000-01-01")
    assert out == ""
    out, _ = run("export_audit", "--organization", str(organization.pk), "--since", "2000-01-01",
                 "--until", first.occurred_at.isoformat())
    assert [json.loads(line)["id"] for line in out.splitlines()] == [created.pk, first.pk]


def test_export_audit_streams_with_an_iterator(organization, monkeypatch):
    make_user(organization)
    from django.db.models.query import QuerySet

    chunk_sizes = []
    real_iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return real_iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    out, _ = run("export_audit", "--organization", str(organization.pk))
    assert chunk_sizes == [2000] and len(out.splitlines()) == 2  # organization.created, user.created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--organization", NOBODY], "No organization with id"),
        (["--organization", "{org}", "--since", "yesterday"], "not an ISO date"),
        (["--organization", "{org}", "--since", "2025-02-01", "--until", "2025-01-01"], "after --until"),
        (["--organization", "{org}", "--output", "/nonexistent/dir/audit.jsonl"], "Can't write"),
    ],
)
def test_export_audit_bad_arguments(organization, args, message):
    args = [arg.replace("{org}", str(organization.pk)) for arg in args]
    with pytest.raises(CommandError, match=message):
        run("export_audit", *args)


def test_export_audit_refuses_an_unknown_format(organization):
    with pytest.raises(CommandError, match="invalid choice"):
        run("export_audit", "--organization", str(organization.pk), "--format", "xml")


# --- seed_demo ------------------------------------------------------------------------------------


def test_seed_demo_is_idempotent_and_covers_every_state():
    out, _ = run("seed_demo", "--staff-password", "demo-pass-1")
    # A rerun without kept credentials resets the client's secret: that one change is audited.
    not_the_reset = AuditEvent.objects.exclude(action="api_client.updated")
    counts = (Organization.objects.count(), User.objects.count(), ApiClient.objects.count(),
              not_the_reset.count())

    out_again, _ = run("seed_demo", "--staff-password", "demo-pass-2")

    assert (Organization.objects.count(), User.objects.count(), ApiClient.objects.count(),
            not_the_reset.count()) == counts
    assert AuditEvent.objects.filter(action="api_client.updated").count() == 1
    for text in (out, out_again):
        assert "Staff login:   staff@demo.example / " in text
        assert "API client_id: " in text and "client_secret: " in text
    staff = User.objects.get(email="staff@demo.example")
    assert staff.is_superuser and staff.check_password("demo-pass-2")  # the fresh password works

    users = list(User.objects.filter(organization__name="Demo Practice").select_related("provider_details"))
    assert any(u.is_active and u.roles == ["member"] for u in users)
    assert any(u.is_active and u.roles == ["rx_reader"] for u in users)
    assert any(u.can_prescribe for u in users)
    assert any(u.has_provider_role and u.is_active and not u.can_prescribe for u in users)
    assert any(u.is_active and {"admin", "receptionist"} <= set(u.roles) for u in users)
    assert any(u.is_disabled for u in users)


def test_every_command_explains_itself(capsys):
    for command in ("import_users", "export_audit", "disable_user", "set_roles", "seed_demo"):
        with pytest.raises(SystemExit):
            call_command(command, "--help")
        text = capsys.readouterr().out
        assert len(text.split("\n\n")[1].split()) > 15, command  # a real description, not a stub


@pytest.mark.parametrize("command", ["import_users", "export_audit", "disable_user", "set_roles"])
def test_missing_required_arguments_are_errors(command):
    with pytest.raises(CommandError, match="required"):
        call_command(command)


def test_create_scim_token_refuses_a_deactivated_organization_as_create_api_client_does(organization):
    from organizations.models import Organization
    from scim.models import ScimToken

    Organization.objects.filter(pk=organization.pk).update(is_active=False)
    for command, extra in (("create_scim_token", ()), ("create_api_client", ("--name", "PMS", "--scopes", "read:users"))):
        out = io.StringIO()
        with pytest.raises(CommandError, match="is deactivated"):
            call_command(command, "--organization", str(organization.pk), *extra, stdout=out)
        assert out.getvalue() == ""  # no token printed
    assert not ScimToken.objects.exists()
