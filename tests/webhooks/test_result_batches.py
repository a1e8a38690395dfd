"""PostgreSQL, committed data: a worker records the outcomes of the attempts that answered together in
one transaction (webhooks.delivery.record_all). Every attempt is recorded once, with its delivery's
next state, whatever else is in the batch; a delivery that vanished mid-batch loses only its own
record; an error mid-batch records nothing, so the deliveries come back."""

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from audit.context import Actor
from webhooks import delivery
from webhooks.delivery import Outcome, deliver_due, outbox, record_all
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_delete

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the batched UPDATE needs PostgreSQL"),
]


def _claimed(token) -> dict:
    """Claim every due delivery for `token`: endpoint path -> its deliveries in sequence order."""
    rows = delivery._claim(outbox(), token, endpoints=10, deliveries=100)
    by_path = {}
    for row in rows:
        by_path.setdefault(row.endpoint.url.rsplit("/", 1)[1], []).append(row)
    return by_path


def _ok():
    return Outcome(timezone.now(), 204, "", 5)


def _down():
    return Outcome(timezone.now(), 500, "HTTP 500", 5)


@pytest.fixture
def three_endpoints(make_endpoint, receiver, make_change):
    endpoints = {name: make_endpoint(f"{receiver.url}/{name}")[0] for name in ("ok", "down", "gone")}
    make_change()
    make_change()
    return endpoints


def test_successes_and_failures_in_one_batch_each_get_their_own_next_state(three_endpoints, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [30, 60]
    token = uuid.uuid4()
    claimed = _claimed(token)
    ok, down = claimed["ok"][0], claimed["down"][0]

    recorded = record_all([(ok, _ok()), (down, _down())], token)

    assert recorded == (1, 1)
    ok.refresh_from_db()
    down.refresh_from_db()
    assert (ok.status, ok.attempts, ok.claim_token) == ("succeeded", 1, None)
    assert (down.status, down.attempts, down.claim_token) == ("pending", 1, None)
    assert timedelta(seconds=25) < down.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    attempts = {a.delivery_id: a for a in WebhookAttempt.objects.all()}
    assert set(attempts) == {ok.pk, down.pk}
    assert attempts[ok.pk].succeeded and attempts[ok.pk].status_code == 204
    assert not attempts[down.pk].succeeded and attempts[down.pk].error == "HTTP 500"
    assert attempts[down.pk].next_attempt_at == down.next_attempt_at
    # The endpoint's health: the failing one is marked, and the copy the lane holds learns it too.
    assert WebhookEndpoint.objects.get(pk=three_endpoints["down"].pk).failing_since is not None
    assert WebhookEndpoint.objects.get(pk=three_endpoints["ok"].pk).failing_since is None
    assert down.endpoint.failing_since is not None
    # The batch's other claimed deliveries are still held (they were not in it).
    others = WebhookDelivery.objects.exclude(pk__in=[ok.pk, down.pk])
    assert others.count() == 4 and all(d.claim_token == token and d.attempts == 0 for d in others)


@pytest.mark.parametrize("with_failure", [True, False], ids=["a health change too", "one statement"])
def test_a_delivery_deleted_mid_batch_loses_only_its_own_record(three_endpoints, with_failure):
    token = uuid.uuid4()
    claimed = _claimed(token)
    last = (claimed["down"][0], _down() if with_failure else _ok())
    batch = [(claimed["ok"][0], _ok()), (claimed["gone"][0], _ok()), last]
    webhook_endpoint_delete(endpoint=three_endpoints["gone"], actor=Actor.system("t"))  # its POST was out

    # The one that vanished counts as not delivered.
    assert record_all(batch, token) == ((1, 2) if with_failure else (2, 1))

    assert Counter(a.delivery_id for a in WebhookAttempt.objects.all()) == {
        claimed["ok"][0].pk: 1,
        claimed["down"][0].pk: 1,
    }
    assert WebhookDelivery.objects.get(pk=claimed["ok"][0].pk).status == "succeeded"
    assert WebhookDelivery.objects.get(pk=claimed["down"][0].pk).attempts == 1
    assert (WebhookEndpoint.objects.get(pk=three_endpoints["down"].pk).failing_since is not None) == with_failure


def test_an_error_mid_batch_records_nothing_and_the_deliveries_come_back(three_endpoints, monkeypatch):
    token = uuid.uuid4()
    claimed = _claimed(token)
    batch = [(claimed["ok"][0], _ok()), (claimed["down"][0], _down())]

    def database_gone(endpoint_id, change):
        raise DatabaseError("connection lost")

    # The failing endpoint's health is written after the batch's deliveries and attempts.
    monkeypatch.setattr(delivery, "_store_health", database_gone)
    with pytest.raises(DatabaseError):
        record_all(batch, token)
    monkeypatch.undo()

    assert not WebhookAttempt.objects.exists()
    assert all(d.attempts == 0 and d.status == "pending" for d in WebhookDelivery.objects.all())
    # Their lease lapses and they are due again: each sent and recorded once, in order.
    WebhookDelivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert deliver_due(limit=100).delivered == 6
    assert Counter(a.delivery_id for a in WebhookAttempt.objects.all()) == dict.fromkeys(
        WebhookDelivery.objects.values_list("pk", flat=True), 1
    )


def test_a_lapsed_lease_leaves_the_new_holders_state_alone(three_endpoints):
    token = uuid.uuid4()
    claimed = _claimed(token)
    ok, lapsed = claimed["ok"][0], claimed["down"][0]
    WebhookDelivery.objects.filter(pk=lapsed.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    new_token = uuid.uuid4()
    assert WebhookDelivery.objects.filter(pk=lapsed.pk).update(
        claim_token=new_token, claimed_until=timezone.now() + timedelta(minutes=1)
    )

    record_all([(ok, _ok()), (lapsed, _ok())], token)

    lapsed.refresh_from_db()
    assert (lapsed.status, lapsed.attempts, lapsed.claim_token) == ("pending", 0, new_token)
    assert WebhookDelivery.objects.get(pk=ok.pk).status == "succeeded"


def test_concurrent_batches_keep_each_endpoints_sequence_order(settings, make_endpoint, receiver, make_change):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 4
    for name in ("a", "b", "c"):
        make_endpoint(f"{receiver.url}/{name}")
    for _ in range(12):
        make_change()
    receiver.answer(*[200] * 20, 500, *[200] * 20)  # one failure among the batches: retried, in order

    made = 0
    for _ in range(5):
        result = deliver_due(limit=100)
        made += result.delivered + result.failed
    assert made == 37

    for path in ("/hooks/a", "/hooks/b", "/hooks/c"):
        sequences = receiver.sequences(path)
        assert sequences == sorted(sequences)  # a retry goes out before that endpoint's later events
        assert len(set(sequences)) == 12
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 36
    assert Counter(
        WebhookAttempt.objects.filter(succeeded=True).values_list("delivery_id", flat=True)
    ) == dict.fromkeys(WebhookDelivery.objects.values_list("pk", flat=True), 1)
