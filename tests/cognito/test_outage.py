"""Cognito down while users are disabled: the requests succeed, the work waits, sync_cognito finishes it."""

import pytest
from django.core.management import call_command

from accounts.cognito import sync
from accounts.models import CognitoSync, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

USERS = 20  # more than one, fewer than a batch: the pass while Cognito is down gives them all back


def test_disables_while_cognito_is_down_complete_after_it_returns(
    api, users_url, make_user, cognito_server, raw_cognito, pool_id, capsys
):
    with sync.inline_sync_disabled():
        users = [make_user(n, roles=["receptionist"]) for n in range(USERS)]
    call_command("sync_cognito")  # every account exists, enabled, before the outage
    assert CognitoSync.objects.filter(state=CognitoSync.State.SYNCED).count() == USERS

    cognito_server.stop()
    try:
        for user in users:
            response = api.put(f"{users_url}/{user.pk}/disable")
            assert response.status_code == 200, response.content
            assert response.json()["status"] == "disabled"
            assert response.json()["cognito"] == {"status": "pending"}

        assert User.objects.filter(pk__in=[u.pk for u in users], status=User.Status.DISABLED).count() == USERS
        pending = CognitoSync.objects.filter(state=CognitoSync.State.PENDING)
        assert pending.count() == USERS
        assert not pending.filter(last_error="").exists()
        assert "EndpointConnectionError" in pending.first().last_error
        listed = api.get(f"{users_url}?status=disabled&limit=100").json()["results"]
        assert {u["cognito"]["status"] for u in listed} == {"pending"}

        # A worker pass while Cognito is still down gives the batch back, losing nothing.
        capsys.readouterr()
        call_command("sync_cognito")
        assert f"still pending: {USERS}" in capsys.readouterr().out
        assert CognitoSync.objects.filter(state=CognitoSync.State.PENDING).count() == USERS
    finally:
        cognito_server.start()

    CognitoSync.objects.update(next_attempt_at=CognitoSync.objects.first().created_at)  # skip the backoff
    capsys.readouterr()
    call_command("sync_cognito")
    out = capsys.readouterr().out
    assert f"applied: {USERS}" in out
    assert "still pending: 0" in out
    assert CognitoSync.objects.exclude(state=CognitoSync.State.SYNCED).count() == 0
    for user in users:
        account = raw_cognito.admin_get_user(UserPoolId=pool_id, Username=str(user.pk))
        assert account["Enabled"] is False
        groups = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=str(user.pk))["Groups"]
        assert groups == []
