"""PostgreSQL, committed data: concurrent workers, a killed worker, and outages of Cognito and the
receiver at once. Nothing is lost and no attempt is made twice."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.db.models import Q

from accounts.models import CognitoSync
from tests.waiting import wait_until
from webhooks import delivery as delivery_module
from webhooks.delivery import deliver_due
from webhooks.models import WebhookAttempt, WebhookDelivery

from .conftest import deliver_all

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED and leases need PostgreSQL"),
]

ROOT = Path(__file__).resolve().parents[2]


def test_two_concurrent_workers_never_deliver_one_attempt_twice(endpoint, receiver, make_change):
    for _ in range(40):
        make_change()
    errors = []

    def worker():
        try:
            while deliver_due(limit=3).delivered:
                pass
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert WebhookAttempt.objects.count() == 40
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_loses_nothing(endpoint, receiver, make_change):
    make_change()
    receiver.answer("hang")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": _database_url(),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_LEASE_SECONDS": "2",
        "WEBHOOK_TIMEOUT_SECONDS": "30",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.hung.wait(30), "the worker never reached the receiver"
        worker.send_signal(signal.SIGKILL)  # mid-delivery: the POST is out, no answer yet
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.claimed_until is not None and delivery.attempts == 0
    assert deliver_due().delivered == 0  # its lease is live: nobody else takes it yet
    # Once the lease lapses, the next worker's pass delivers it (once: counted below).
    wait_until(lambda: deliver_due().delivered, timeout=15, what="the lapsed lease's delivery")
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_cognito_and_the_receiver_down_together_lose_nothing(
    webhooks_api, users_url, endpoint, receiver, cognito_server
):
    _, secret = endpoint
    cognito_server.stop()
    receiver.stop()
    ids = []
    for n in range(5):
        response = webhooks_api.post(
            users_url,
            {"given_name": "Pat", "family_name": f"Lee{n}", "email": f"pat{n}@practice.example"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["cognito"]["status"] == "pending"
        ids.append(response.json()["id"])
    for user_id in ids[:2]:
        assert webhooks_api.put(f"{users_url}/{user_id}/disable").status_code == 200
    deliver_all(rounds=2)  # every attempt is refused: retried later
    # A pass stops sending to an endpoint once an attempt to it failed: one attempt a round, not seven.
    assert WebhookAttempt.objects.filter(succeeded=False).count() == 2
    assert not WebhookAttempt.objects.filter(succeeded=True).exists()

    cognito_server.start()
    receiver.start()
    call_command("sync_cognito")
    deliver_all()
    assert set(CognitoSync.objects.values_list("state", flat=True)) == {"synced"}
    from standardwebhooks import Webhook

    delivered = Counter()
    for received in receiver.requests:
        body = Webhook(secret).verify(received.body, received.headers)
        delivered[(body["type"], body["data"]["user"]["id"])] += 1
    assert delivered == Counter(
        {**{("user.created", user_id): 1 for user_id in ids}, **{("user.disabled", user_id): 1 for user_id in ids[:2]}}
    )


def _other_connections() -> int:
    """Sessions on the test database besides this test's own (a worker's, once it has polled)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _database_url() -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


@pytest.mark.slow
def test_a_running_worker_delivers_within_five_seconds_of_the_commit_and_stops_on_sigterm(
    endpoint, receiver, make_change
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": _database_url(),
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks", "--loop"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _other_connections() >= 1, timeout=30, what="the worker's first pass")  # up and polling
        committed = time.monotonic()
        make_change()  # committed (transactional test)
        wait_until(lambda: receiver.requests, timeout=10, what="the delivery")
        assert receiver.requests[0].at - committed < 5
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=10)
        assert worker.returncode == 0
        assert b"1 delivered" in out
    finally:
        if worker.poll() is None:
            worker.kill()


def test_a_delivery_whose_endpoint_is_deleted_mid_attempt_is_dropped_quietly(endpoint, receiver, make_change):
    from audit.context import Actor
    from webhooks.delivery import attempt, outbox
    from webhooks.services import webhook_endpoint_delete

    mine, _ = endpoint
    make_change()
    token, pks = outbox().claim_due(Q(status="pending"))
    receiver.answer(200)
    original_post = delivery_module._post

    def post_then_delete(*args, **kwargs):
        status = original_post(*args, **kwargs)
        webhook_endpoint_delete(endpoint=mine, actor=Actor.system("t"))
        return status

    delivery_module._post = post_then_delete
    try:
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=pks[0])
        assert attempt(delivery, token) is False
    finally:
        delivery_module._post = original_post
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()


def test_a_long_batch_keeps_its_leases_so_a_second_worker_takes_none_of_it(endpoint, receiver, make_change, settings):
    settings.WEBHOOK_LEASE_SECONDS = 1.5  # renewed every 0.5 s of the batch
    for _ in range(5):
        make_change()
    receiver.answer(*[("slow", 0.6)] * 5)  # the batch takes ~3 s, twice the lease
    first = threading.Thread(target=lambda: (deliver_due(limit=10), connections.close_all()))
    first.start()
    # Three answers in (1.8 s or more since the claim): past the first lease, so only renewals keep
    # the rest of the batch ours.
    wait_until(lambda: len(receiver.requests) >= 3, timeout=30, what="three slow answers")
    assert deliver_due(limit=10).delivered == 0
    first.join(30)
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == 5 and set(ids.values()) == {1}
