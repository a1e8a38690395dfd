"""The worker's jobs and its loop, in process: what each job does, and how the loop takes errors."""

import logging
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from oauth2_provider.models import AccessToken

from accounts.models import CognitoSync
from organizations.models import ApiClient, IdempotencyKey
from worker import jobs
from worker.jobs import JOBS, Job
from worker.runner import BACKOFF_MAX, Worker

pytestmark = pytest.mark.django_db


def test_the_job_table_names_each_job_once_with_an_interval():
    names = [job.name for job in JOBS]
    assert names == [
        "heartbeat",
        "cognito_sync",
        "expired_tokens",
        "expired_idempotency_keys",
        "webhook_delivery",
        "access_expiry",
        "webhook_retention",
        "hi_verification",
    ]
    assert all(job.interval > 0 for job in JOBS)


def test_one_pass_syncs_cognito_and_deletes_expired_tokens_and_keys(queued, issue_token, organization, monkeypatch):
    # Not the pass's time limit (its own test below): on a loaded machine three syncs can outlast 3 s.
    monkeypatch.setattr(jobs, "COGNITO_PASS_SECONDS", 60.0)
    users = queued(3)
    issue_token(organization)
    issue_token(organization)
    AccessToken.objects.filter(pk=AccessToken.objects.order_by("pk").first().pk).update(
        expires=timezone.now() - timedelta(seconds=1)
    )
    api_client = ApiClient.objects.first()
    old = IdempotencyKey.objects.create(api_client=api_client, key="old", request_hash="x")
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyKey.objects.create(api_client=api_client, key="fresh", request_hash="y")

    worker = Worker()
    worker.run(once=True)

    assert set(CognitoSync.objects.filter(user__in=users).values_list("state", flat=True)) == {"synced"}
    assert worker.handled["cognito_sync"] == 3
    assert AccessToken.objects.count() == 1  # the live one stays
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh"]


def test_the_purge_command_and_the_worker_share_one_function(organization, issue_token):
    issue_token(organization)
    key = IdempotencyKey.objects.create(api_client=ApiClient.objects.get(), key="k", request_hash="h")
    IdempotencyKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(hours=24, seconds=1))

    call_command("purge_idempotency_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert not IdempotencyKey.objects.exists()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_database_error_backs_off_every_job_and_logs_no_detail(caplog, monkeypatch):
    monkeypatch.setattr("worker.runner.connections.close_all", lambda: None)  # keep the test's transaction
    clock = Clock()
    calls = []

    def database_down(should_stop):
        calls.append("db")
        raise OperationalError('connection to server failed: password="hunter2" for user alice@example.com')

    def other(should_stop):
        calls.append("other")
        return 0

    worker = Worker([Job("sync", database_down, 1.0), Job("other", other, 1.0)], clock=clock)
    with caplog.at_level(logging.INFO, logger="worker"):
        worker._run(worker.jobs[0])
    assert worker._due == {"sync": 1001.0, "other": 1001.0}  # 1 s: both wait for the database
    worker._run(worker.jobs[0])
    assert worker._due["sync"] == 1002.0  # doubling
    for _ in range(10):
        worker._run(worker.jobs[0])
    assert worker._due["sync"] == 1000.0 + BACKOFF_MAX

    assert "OperationalError" in caplog.text
    assert "hunter2" not in caplog.text and "alice@example.com" not in caplog.text

    clock.now = 1100.0
    worker._run(worker.jobs[1])  # the database answers again: the backoff starts over
    assert "Database reachable again" in caplog.text
    worker._run(worker.jobs[0])
    assert worker._due["sync"] == 1101.0


def test_a_failing_job_does_not_stop_the_others(caplog):
    ran = []

    def broken(should_stop):
        raise ValueError("secret value 8003614900000009")

    def fine(should_stop):
        ran.append(1)
        return 0

    with caplog.at_level(logging.ERROR, logger="worker"):
        Worker([Job("broken", broken, 1.0), Job("fine", fine, 1.0)]).run(once=True)

    assert ran == [1]
    assert "Job broken failed (ValueError)" in caplog.text
    assert "8003614900000009" not in caplog.text


def test_a_job_that_handled_something_runs_again_at_once_and_an_idle_one_waits():
    clock = Clock()
    results = iter([5, 0])
    worker = Worker([Job("j", lambda should_stop: next(results), 60.0)], clock=clock)
    worker._run(worker.jobs[0])
    assert worker._due["j"] == 1000.0
    worker._run(worker.jobs[0])
    assert worker._due["j"] == 1060.0
    assert worker.handled["j"] == 5


def test_stop_ends_the_loop_between_jobs():
    stop = threading.Event()
    ran = []

    def first(should_stop):
        ran.append("first")
        stop.set()
        return 1

    Worker([Job("first", first, 1.0), Job("second", lambda s: ran.append("second") or 0, 1.0)], stop=stop).run()

    assert ran == ["first"]


def test_the_cognito_job_hands_its_stop_check_to_the_sync(monkeypatch):
    seen = {}

    def process_due(limit, should_stop=None):
        seen["limit"], seen["should_stop"] = limit, should_stop
        from accounts.cognito.sync import PassResult

        return PassResult(applied=2, failed=1, released=0)

    monkeypatch.setattr(jobs.sync, "process_due", process_due)
    stopping = {"now": False}
    assert jobs.cognito_sync(lambda: stopping["now"]) == 3
    assert seen["limit"] == jobs.COGNITO_BATCH_SIZE
    assert seen["should_stop"]() is False
    stopping["now"] = True  # SIGTERM reaches the sync through the pass's own check
    assert seen["should_stop"]() is True


@pytest.mark.django_db(transaction=True)
def test_a_cognito_backlog_pass_gives_the_rest_back_after_its_budget(queued, monkeypatch):
    import time

    from accounts.cognito import sync

    users = queued(6)
    real_settle = sync._settle

    def slow_settle(claim, *args, **kwargs):
        time.sleep(0.3)  # a slow Cognito: each user takes a while
        return real_settle(claim, *args, **kwargs)

    monkeypatch.setattr(sync, "_settle", slow_settle)
    monkeypatch.setattr(jobs, "COGNITO_PASS_SECONDS", 0.5)

    started = time.monotonic()
    handled = jobs.cognito_sync(lambda: False)

    assert time.monotonic() - started < 1.5  # not 6 x 0.3 s
    assert 0 < handled < 6  # some done; the worker runs the pass again after its other jobs
    states = list(CognitoSync.objects.filter(user__in=users).values_list("state", "claimed_until"))
    assert [s for s, _ in states].count("pending") == 6 - handled
    assert all(claimed is None for s, claimed in states if s == "pending")  # given back, not leased
