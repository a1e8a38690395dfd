"""sync_cognito and the outbox under faults: abandoned leases, stale results, failures, stopping."""

import os
import signal
import threading
import time

import pytest
from django.core.management import CommandError, ManagementUtility, call_command
from django.utils import timezone

from accounts import services
from accounts.cognito import sync
from accounts.cognito.gateway import CognitoError, CognitoGateway
from accounts.models import CognitoSync
from audit.models import AuditEvent
from tests.cognito.conftest import ACTOR, row
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def queued(make_user):
    """queued(n) -> n users whose Cognito work is recorded but not applied (inline attempt off)."""

    def make(count, start=0, roles=("receptionist",)):
        with sync.inline_sync_disabled():
            return [make_user(n, roles=list(roles)) for n in range(start, start + count)]

    return make


def groups_of(raw_cognito, pool_id, user_id):
    groups = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=str(user_id))["Groups"]
    return {g["GroupName"] for g in groups}


def test_rows_of_a_worker_that_died_mid_batch_are_completed_after_the_lease(
    queued, settings, capsys, raw_cognito, pool_id
):
    users = queued(5)
    settings.COGNITO_SYNC_LEASE_SECONDS = 1
    abandoned = sync.claim_batch(10)  # a worker claims the batch, then dies without finishing
    assert len(abandoned) == 5

    call_command("sync_cognito")
    assert "applied: 0" in capsys.readouterr().out  # the lease still holds: no one else touches them
    assert CognitoSync.objects.filter(state=CognitoSync.State.PENDING).count() == 5

    wait_until(lambda: not CognitoSync.objects.filter(claimed_until__gt=timezone.now()).exists(), timeout=10,
               what="the dead worker's lease to lapse")
    call_command("sync_cognito")
    assert "applied: 5  failed: 0  still pending: 0" in capsys.readouterr().out
    for user in users:
        assert groups_of(raw_cognito, pool_id, user.pk) == {"receptionist"}


def test_a_failure_after_a_newer_change_does_not_count_against_it(queued, monkeypatch, settings, raw_cognito, pool_id):
    (user,) = queued(1)
    settings.COGNITO_SYNC_INLINE = False

    class ChangedMidwayThenFails(CognitoGateway):
        def apply_state(self, **kwargs):
            services.user_roles_set(user=user, actor=ACTOR, roles=["admin"])  # commits a newer state
            raise CognitoError("admin_get_user", "InvalidParameterException")

    monkeypatch.setattr(sync, "MAX_ATTEMPTS", 1)  # a counted failure would make the row failed at once
    monkeypatch.setattr(sync, "get_gateway", ChangedMidwayThenFails)
    result = sync.process_due()
    assert result.failed == 1

    sync_row = row(user.pk)
    assert sync_row.state == CognitoSync.State.PENDING
    assert sync_row.attempts == 0
    assert sync_row.next_attempt_at <= sync_row.updated_at  # due now, no backoff from the stale failure
    assert sync_row.claim_token is None
    assert "InvalidParameterException" in sync_row.last_error

    monkeypatch.undo()
    assert sync.process_due().applied == 1
    assert groups_of(raw_cognito, pool_id, user.pk) == {"admin"}
    assert row(user.pk).state == CognitoSync.State.SYNCED


def test_a_success_with_an_older_state_is_not_synced_and_the_newer_state_follows(
    queued, monkeypatch, settings, raw_cognito, pool_id
):
    (user,) = queued(1)
    settings.COGNITO_SYNC_INLINE = False
    seen = []

    class ChangedMidway(CognitoGateway):
        def apply_state(self, **kwargs):
            seen.append(sorted(kwargs["groups"]))
            if len(seen) == 1:
                services.user_roles_set(user=user, actor=ACTOR, roles=["rx_reader"])
            return super().apply_state(**kwargs)

    monkeypatch.setattr(sync, "get_gateway", ChangedMidway)
    assert sync.process_due().applied == 1
    # The first apply carried the old state; the worker applied the newer one right after.
    assert seen == [["receptionist"], ["rx_reader"]]
    assert groups_of(raw_cognito, pool_id, user.pk) == {"rx_reader"}
    sync_row = row(user.pk)
    assert sync_row.state == CognitoSync.State.SYNCED
    assert sync_row.synced_version == sync_row.desired_version


def test_a_worker_that_outlived_its_lease_forces_one_more_apply(queued, settings):
    (user,) = queued(1)
    settings.COGNITO_SYNC_LEASE_SECONDS = 0
    slow = sync.claim_batch(1)[0]  # this worker stalls past its lease...
    fast = sync.claim_batch(1)[0]  # ...so another takes the row and finishes first
    assert sync._apply(fast) is None
    assert row(user.pk).state == CognitoSync.State.SYNCED

    # The slow one's writes may have landed after the fast one's: the row must be applied again.
    assert sync._apply(slow) is None
    sync_row = row(user.pk)
    assert sync_row.state == CognitoSync.State.PENDING
    assert sync_row.desired_version > sync_row.synced_version
    assert sync.process_due().applied == 1
    assert row(user.pk).state == CognitoSync.State.SYNCED


class AlwaysRefused(CognitoGateway):
    """Cognito answers that this can never succeed."""

    def apply_state(self, **kwargs):
        raise CognitoError("admin_create_user", "InvalidParameterException")


class AlwaysUnavailable(CognitoGateway):
    """Cognito keeps failing in a way a later attempt may not."""

    def apply_state(self, **kwargs):
        raise CognitoError("admin_create_user", "InternalErrorException", retryable=True, http_status=500)


def failed_events(user):
    return list(AuditEvent.objects.filter(user_id=user.pk, action=AuditEvent.Action.USER_COGNITO_SYNC_FAILED))


def test_a_row_that_keeps_failing_becomes_failed_and_retry_failed_revives_it(
    queued, monkeypatch, capsys, raw_cognito, pool_id
):
    (user,) = queued(1)
    monkeypatch.setattr(sync, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(sync, "_BACKOFF_BASE_SECONDS", 0)  # each run finds the row due again
    monkeypatch.setattr(sync, "get_gateway", AlwaysUnavailable)

    for attempt in (1, 2):
        call_command("sync_cognito")
        assert (row(user.pk).state, row(user.pk).attempts) == (CognitoSync.State.PENDING, attempt)
    call_command("sync_cognito")
    failed = row(user.pk)
    assert (failed.state, failed.attempts) == (CognitoSync.State.FAILED, 3)
    assert "failed: 1  still pending: 0  failed total: 1" in capsys.readouterr().out

    call_command("sync_cognito")  # failed rows wait for an operator
    assert row(user.pk).attempts == 3

    assert len(failed_events(user)) == 1  # written when the row became failed, not per attempt

    call_command("sync_cognito", "--status")
    status = capsys.readouterr().out
    assert "failed: 1" in status
    assert f"failed user={user.pk} attempts=3" in status
    assert "InternalErrorException" in status
    assert user.email not in status and user.given_name not in status

    call_command("sync_cognito", "--retry-failed")
    assert "1 failed task(s) are pending again." in capsys.readouterr().out
    assert (row(user.pk).state, row(user.pk).attempts) == (CognitoSync.State.PENDING, 0)

    monkeypatch.undo()
    call_command("sync_cognito")
    assert row(user.pk).state == CognitoSync.State.SYNCED
    assert groups_of(raw_cognito, pool_id, user.pk) == {"receptionist"}


def test_an_error_that_can_never_succeed_fails_the_row_at_once_with_an_audit_event(queued, monkeypatch, capsys):
    (user,) = queued(1)
    monkeypatch.setattr(sync, "get_gateway", AlwaysRefused)
    call_command("sync_cognito")
    failed = row(user.pk)
    assert (failed.state, failed.attempts) == (CognitoSync.State.FAILED, 1)  # not after 8 attempts
    assert "failed: 1  still pending: 0  failed total: 1" in capsys.readouterr().out
    (event,) = failed_events(user)
    assert str(event.organization_id) == str(user.organization_id)
    assert (event.actor_type, event.actor_name) == ("system", "cognito sync")
    assert event.changes["error"] == {"from": None, "to": "admin_create_user: InvalidParameterException"}
    text = str(event.changes)
    assert user.email not in text and user.given_name not in text


def test_the_failed_event_is_written_in_the_same_transaction_as_the_state(queued, monkeypatch):
    """If the audit row can't be written, the row does not become failed either."""
    (user,) = queued(1)
    monkeypatch.setattr(sync, "get_gateway", AlwaysRefused)

    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(sync, "audit_event_record", broken)
    with pytest.raises(RuntimeError):
        sync.process_due()
    assert row(user.pk).state == CognitoSync.State.PENDING
    assert row(user.pk).attempts == 0


@pytest.mark.parametrize(
    "code", ["InvalidParameterException", "AliasExistsException", "UserNotFoundException", "UnknownError"]
)
def test_real_cognito_refusals_are_permanent(queued, monkeypatch, code):
    """Through the real gateway: a refusal from Cognito (not an outage) fails the row at once."""
    (user,) = queued(1)

    def refuse(self, operation, username=None, **params):
        raise CognitoError(operation, code, http_status=400)

    monkeypatch.setattr(CognitoGateway, "_call", refuse)
    assert sync.process_due().failed == 1
    assert row(user.pk).state == CognitoSync.State.FAILED
    assert len(failed_events(user)) == 1


def test_a_new_change_revives_a_failed_row(queued, monkeypatch):
    (user,) = queued(1)
    monkeypatch.setattr(sync, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(sync, "get_gateway", AlwaysRefused)
    call_command("sync_cognito")
    assert row(user.pk).state == CognitoSync.State.FAILED

    monkeypatch.undo()
    services.user_roles_set(user=user, actor=ACTOR, roles=["admin"])  # inline sync applies it
    assert row(user.pk).state == CognitoSync.State.SYNCED


@pytest.mark.parametrize(
    "args",
    [
        ["--batch-size", "0"],
        ["--iterations", "2"],  # only with --loop
        ["--loop", "--iterations", "0"],
        ["--loop", "--status"],
        ["--status", "--retry-failed"],
        ["--batch-size", "many"],
    ],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(CommandError):
        call_command("sync_cognito", *args)


def test_bad_arguments_exit_non_zero_from_the_shell(capsys):
    # manage.py's own path (ManagementUtility), in this process: a fresh interpreter costs seconds.
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "sync_cognito", "--batch-size", "0"]).execute()
    assert exited.value.code != 0
    assert "--batch-size" in capsys.readouterr().err


def test_loop_works_through_the_queue_and_stops_when_idle(queued, capsys):
    queued(7)
    call_command("sync_cognito", "--loop", "--batch-size", "3", "--max-idle-seconds", "0")
    out = capsys.readouterr().out
    assert "worker stopped" in out
    assert "applied: 7  failed: 0  still pending: 0" in out


def test_loop_stops_after_the_current_task_on_sigterm(queued, monkeypatch, capsys):
    queued(5)
    applied = []

    class TerminatedDuringFirst(CognitoGateway):
        def apply_state(self, **kwargs):
            if not applied:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives while this task runs
            applied.append(kwargs["username"])
            return super().apply_state(**kwargs)

    monkeypatch.setattr(sync, "get_gateway", TerminatedDuringFirst)
    previous = signal.getsignal(signal.SIGTERM)
    call_command("sync_cognito", "--loop", "--max-idle-seconds", "60")
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
    assert len(applied) == 1  # the current task finished, no further one started
    assert CognitoSync.objects.filter(state=CognitoSync.State.SYNCED).count() == 1
    # The rest of the batch is given back at once, not left to a lease.
    rest = CognitoSync.objects.filter(state=CognitoSync.State.PENDING)
    assert rest.count() == 4
    assert not rest.filter(claimed_until__isnull=False).exists()
    assert "applied: 1  failed: 0  still pending: 4" in capsys.readouterr().out


def test_loop_stops_on_sigterm_while_idle():
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    try:
        call_command("sync_cognito", "--loop", "--max-idle-seconds", "60")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
