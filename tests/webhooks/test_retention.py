"""Retention: finished deliveries (with their attempts) and events left without a delivery go after
WEBHOOK_RETENTION_DAYS; pending ones, recent ones and audit events stay."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from webhooks.retention import purge_webhook_history
from worker.jobs import JOBS
from worker.runner import Worker

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def history(make_endpoint, make_change):
    """history(status, age, attempts=1) -> a delivery of a fresh event (its own audited change) whose
    last change, and its event's creation, were `age` ago."""
    endpoint, _ = make_endpoint("http://127.0.0.1:9/hooks")

    def make(status, age, *, attempts=1):
        make_change()
        delivery = WebhookDelivery.objects.filter(endpoint=endpoint).latest("id")
        then = timezone.now() - age
        for number in range(1, attempts + 1):
            WebhookAttempt.objects.create(
                delivery=delivery,
                endpoint=endpoint,
                number=number,
                attempted_at=then,
                succeeded=status == "succeeded" and number == attempts,
                status_code=200,
                duration_ms=5,
            )
        retrying = status == "pending" and attempts
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status,
            attempts=attempts,
            updated_at=then,
            next_attempt_at=timezone.now() + timedelta(hours=1) if retrying else then,
        )
        WebhookEvent.objects.filter(pk=delivery.event_id).update(created_at=then)
        return delivery

    return make


def test_old_finished_deliveries_go_with_their_attempts_and_events(history):
    delivered = history("succeeded", 31 * DAY, attempts=2)
    failed = history("failed", 31 * DAY, attempts=11)
    audit_events = AuditEvent.objects.count()

    result = purge_webhook_history()

    assert (result.deliveries, result.attempts, result.events) == (2, 13, 2)
    assert not WebhookDelivery.objects.filter(pk__in=[delivered.pk, failed.pk]).exists()
    assert not WebhookAttempt.objects.exists()
    assert not WebhookEvent.objects.filter(pk__in=[delivered.event_id, failed.event_id]).exists()
    assert AuditEvent.objects.count() == audit_events  # the audit record is never touched


def test_recent_and_pending_deliveries_stay_whatever_their_age(history):
    kept = [
        history("succeeded", 29 * DAY),
        history("failed", 29 * DAY, attempts=11),
        history("pending", 400 * DAY, attempts=0),  # never tried (its endpoint disabled, say)
        history("pending", 400 * DAY, attempts=3),  # waiting for its next retry
    ]

    assert purge_webhook_history().total == 0

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {d.pk for d in kept}
    assert WebhookAttempt.objects.count() == 1 + 11 + 3
    assert WebhookEvent.objects.count() == 4


def test_an_event_with_a_kept_delivery_stays(history, make_endpoint):
    old = history("succeeded", 40 * DAY)
    event = old.event
    # The same old event redelivered a day ago, to a second endpoint.
    second, _ = make_endpoint("http://127.0.0.1:9/other")
    WebhookDelivery.objects.create(event=event, endpoint=second, status="succeeded", next_attempt_at=timezone.now())
    WebhookDelivery.objects.filter(event=event, endpoint=second).update(updated_at=timezone.now() - DAY)

    result = purge_webhook_history()

    assert (result.deliveries, result.events) == (1, 0)
    assert WebhookEvent.objects.filter(pk=event.pk).exists()
    assert list(WebhookDelivery.objects.filter(event=event).values_list("endpoint", flat=True)) == [second.pk]


def test_the_retention_setting_is_the_age(history, settings):
    settings.WEBHOOK_RETENTION_DAYS = 7
    gone = history("succeeded", 8 * DAY)
    kept = history("succeeded", 6 * DAY)

    purge_webhook_history()

    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not WebhookEvent.objects.filter(pk=gone.event_id).exists()


def test_deletes_go_in_batches_and_stop_between_them(history):
    old = [history("succeeded", 31 * DAY) for _ in range(5)]
    asked = []

    def stop_after_two_batches():
        asked.append(True)
        return len(asked) > 2

    with CaptureQueriesContext(connection) as queries:
        first = purge_webhook_history(batch_size=2, should_stop=stop_after_two_batches)
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "webhooks_webhookdelivery"')]

    assert first.deliveries == 4  # two batches of two, then asked to stop
    assert len(deletes) == 2
    assert WebhookDelivery.objects.count() == 1
    rest = purge_webhook_history(batch_size=2)
    assert (rest.deliveries, rest.events) == (1, 5)
    assert not WebhookEvent.objects.filter(pk__in=[d.event_id for d in old]).exists()


def test_the_worker_runs_it_every_15_minutes_and_the_command_shares_it(history):
    job = {job.name: job for job in JOBS}["webhook_retention"]
    assert job.interval == 15 * 60
    history("failed", 31 * DAY)

    worker = Worker([job])
    worker.run(once=True)

    assert worker.handled["webhook_retention"] == 2  # a delivery and its event
    assert not WebhookDelivery.objects.exists()
    history("succeeded", 31 * DAY)
    call_command("purge_webhook_history", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not WebhookDelivery.objects.exists() and not WebhookEvent.objects.exists()


def test_redelivering_a_delivery_whose_history_was_purged_meanwhile_is_404_not_a_crash(history):
    from audit.context import Actor
    from core.errors import ApplicationError
    from webhooks.services import webhook_delivery_redeliver

    delivery = history("failed", 31 * DAY)
    loaded = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery.pk)  # the view's copy
    purge_webhook_history()  # retention runs between the view's lookup and the service

    with pytest.raises(ApplicationError) as raised:
        webhook_delivery_redeliver(delivery=loaded, actor=Actor.system("test"))
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert not WebhookDelivery.objects.filter(event_id=delivery.event_id).exists()
