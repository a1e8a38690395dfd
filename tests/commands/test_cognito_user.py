"""`cognito_user EMAIL`: the account as Cognito (moto's server here) holds it, beside what the
database wants; and operator commands keep the Cognito client's INFO lines off stderr."""

import io
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.context import Actor
from tests.factories import StaffFactory, UserFactory


def _run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_it_shows_an_account_in_step_and_says_what_differs(organization, cognito):
    user = UserFactory(organization=organization, actor=Actor.system("test"), email="ben@practice.example",
                       given_name="Ben", family_name="Smith", roles=["rx_reader"])
    out = _run("cognito_user", "BEN@practice.example")
    assert f"User {user.pk} in \"Alice's Practice\", Cognito user pool " in out
    assert "  sync: synced" in out
    assert "  enabled: True" in out and "  email: ben@practice.example" in out
    assert "In step with the database." in out

    cognito.disable(username=str(user.pk))  # drift behind the service's back
    out = io.StringIO()
    with pytest.raises(CommandError, match="differs in enabled") as raised:
        call_command("cognito_user", "ben@practice.example", stdout=out, stderr=io.StringIO())
    assert raised.value.returncode == 1
    assert "  enabled: False   (the database wants True)" in out.getvalue()


@pytest.mark.django_db
def test_unknown_and_staff_addresses_are_one_line_errors(organization):
    with pytest.raises(CommandError, match=r"No user with email 'nobody@x\.example'"):
        _run("cognito_user", "nobody@x.example")
    StaffFactory(email="sam@platform.example")
    with pytest.raises(CommandError, match="platform staff"):
        _run("cognito_user", "sam@platform.example")


@pytest.mark.django_db(transaction=True)
def test_operator_commands_keep_the_cognito_clients_info_lines_off_stderr(organization, cognito, caplog):
    UserFactory(organization=organization, actor=Actor.system("test"), email="ben@practice.example")
    caplog.set_level(logging.INFO)
    caplog.clear()

    def cognito_lines():
        return [r for r in caplog.records if r.name.startswith("accounts.cognito") and r.levelno == logging.INFO]

    _run("disable_user", "ben@practice.example", "--organization", str(organization.pk))
    assert cognito_lines() == []
    # -v 2 shows them, and the service's own logs (the worker, the server) keep them.
    from accounts import services
    from accounts.models import User

    services.user_enable(user=User.objects.get(email="ben@practice.example"), actor=Actor.system("test"))
    assert any("cognito account enabled" in r.getMessage() for r in cognito_lines()), [
        (r.name, r.getMessage()) for r in caplog.records]
    caplog.clear()
    call_command("set_roles", "ben@practice.example", "--organization", str(organization.pk), "--roles", "admin",
                 verbosity=2, stdout=io.StringIO(), stderr=io.StringIO())
    assert any("cognito groups set" in r.getMessage() for r in cognito_lines())
