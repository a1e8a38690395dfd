"""Deliveries go out concurrently and fairly: organizations take turns for the slots, each endpoint
gets one attempt at a time in order of `sequence`, and slow or failing endpoints hold back only
themselves. What is sent, and in which order; no timings."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.factories import UserFactory
from webhooks import delivery
from webhooks.delivery import deliver_due
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .conftest import deliver_all

pytestmark = pytest.mark.django_db


def _changes(organization, count):
    for _ in range(count):
        UserFactory(organization=organization, given_name="Pat", family_name="Lee")


def test_another_practices_event_goes_between_a_flooded_endpoints_deliveries(
    settings, organization, other_organization, make_endpoint, receiver
):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 1  # one slot: the order of turns is the order of arrival
    make_endpoint(f"{receiver.url}/alice")
    make_endpoint(f"{receiver.url}/charlie", org=other_organization)
    _changes(organization, 30)
    _changes(other_organization, 1)  # committed after all 30 of Alice's

    deliver_all()

    paths = [r.path for r in receiver.requests]
    assert len(paths) == 31
    assert paths.index("/hooks/charlie") <= 1  # its turn came after at most one of Alice's, not 30


def test_an_organizations_endpoints_take_turns_too(
    settings, organization, other_organization, make_endpoint, receiver, monkeypatch
):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 1
    monkeypatch.setattr(delivery, "LANES_PER_SLOT", 3)  # the worker holds all three endpoints' work
    make_endpoint(f"{receiver.url}/one")
    make_endpoint(f"{receiver.url}/two")
    make_endpoint(f"{receiver.url}/other", org=other_organization)
    _changes(organization, 3)  # three deliveries to each of Alice's two endpoints
    _changes(other_organization, 2)

    deliver_all()

    paths = [r.path.removeprefix("/hooks/") for r in receiver.requests]
    # Organizations alternate; within Alice's turns, her two endpoints alternate.
    assert paths[1] == paths[3] == "other" and {paths[0], paths[2]} == {"one", "two"}
    assert Counter(paths) == {"one": 3, "two": 3, "other": 2}


def test_one_endpoint_gets_one_attempt_at_a_time_in_sequence_order(settings, endpoint, receiver, make_change):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 4
    for _ in range(8):
        make_change()
    receiver.answer(*[("slow", 0.05)] * 8)

    deliver_all()

    sequences = receiver.sequences()
    assert len(sequences) == 8 and sequences == sorted(sequences)
    assert receiver.most_at_once("/hooks") == 1


def test_different_endpoints_are_sent_to_at_once(settings, organization, other_organization, make_endpoint, receiver):
    """Each receiver answers 200 only once the other's request is being answered at the same time
    (500 otherwise): sent one after the other, both would fail."""
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 2
    make_endpoint(f"{receiver.url}/alice")
    make_endpoint(f"{receiver.url}/charlie", org=other_organization)
    receiver.answer(("meet", 2), ("meet", 2))
    _changes(organization, 1)
    _changes(other_organization, 1)

    deliver_due(limit=10)

    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert receiver.most_at_once() == 2


def test_after_a_failed_attempt_the_endpoints_next_events_wait_behind_its_retry(endpoint, receiver, make_change):
    """A retry due at once goes before the endpoint's later events, so they arrive in sequence order."""
    for _ in range(3):
        make_change()
    receiver.answer(500)

    deliver_all()

    first, second, third = sorted(set(receiver.sequences()))
    assert receiver.sequences() == [first, first, second, third]


def test_a_slow_2xx_succeeds_and_marks_the_endpoint_slow_until_a_quick_one(settings, endpoint, receiver, make_change):
    settings.WEBHOOK_SLOW_SECONDS = 0.2
    mine, _ = endpoint
    make_change()
    receiver.answer(("slow", 0.4))
    deliver_all()
    mine.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 1  # a 2xx within the timeout: not resent
    assert mine.slow_since is not None and mine.failing_since is None

    make_change()
    deliver_all()
    mine.refresh_from_db()
    assert mine.slow_since is None


def test_slow_endpoints_share_at_most_half_the_slots(
    settings, organization, other_organization, make_endpoint, receiver
):
    """Three slots: a healthy endpoint and two slow ones have work. The slow ones get one slot between
    them (the third stays free for healthy work), never two."""
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 3
    settings.WEBHOOK_SLOW_SECONDS = 0.1
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0  # a 0.3 s answer on a loaded machine is slow, not timed out (then resent)
    slow_a, _ = make_endpoint(f"{receiver.url}/slow-a")
    slow_b, _ = make_endpoint(f"{receiver.url}/slow-b")
    make_endpoint(f"{receiver.url}/healthy", org=other_organization)
    WebhookEndpoint.objects.filter(pk__in=[slow_a.pk, slow_b.pk]).update(slow_since=timezone.now())
    _changes(organization, 2)
    _changes(other_organization, 2)
    for path in ("/hooks/slow-a", "/hooks/slow-b"):
        receiver.answer_on(path, ("slow", 0.3), ("slow", 0.3))

    deliver_all()

    assert len(receiver.requests) == 6
    assert receiver.most_at_once("/hooks/slow-a", "/hooks/slow-b") == 1


def test_failing_endpoints_go_after_healthy_ones(settings, organization, other_organization, make_endpoint, receiver):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 1
    failing, _ = make_endpoint(f"{receiver.url}/failing")
    make_endpoint(f"{receiver.url}/healthy", org=other_organization)
    WebhookEndpoint.objects.filter(pk=failing.pk).update(failing_since=timezone.now())
    _changes(organization, 2)
    _changes(other_organization, 2)

    deliver_all()

    assert [r.path for r in receiver.requests][:2] == ["/hooks/healthy", "/hooks/healthy"]


def test_stopping_finishes_the_attempt_in_flight_and_gives_the_rest_back(settings, endpoint, receiver, make_change):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 1
    for _ in range(3):
        make_change()

    result = deliver_due(limit=10, should_stop=lambda: bool(receiver.requests))

    assert result == (1, 0, 2)
    assert Counter(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded": 1, "pending": 2}
    assert not WebhookDelivery.objects.filter(claim_token__isnull=False).exists()  # due again at once
    assert deliver_all() == 2 and len(receiver.requests) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED and row locks need PostgreSQL")
def test_two_workers_never_send_to_one_endpoint_at_once(settings, organization, make_endpoint, receiver):
    settings.WEBHOOK_DELIVERY_CONCURRENCY = 2
    make_endpoint(f"{receiver.url}/one")
    make_endpoint(f"{receiver.url}/two")
    _changes(organization, 15)
    receiver.answer(*[("slow", 0.02)] * 30)
    errors = []

    def worker():
        try:
            while sum(deliver_due(limit=4)[:2]):
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
    deliver_all()  # whatever a worker gave back when it found nothing more
    ids = Counter((r.path, r.headers["webhook-id"]) for r in receiver.requests)
    assert len(ids) == 30 and set(ids.values()) == {1}
    for path in ("/hooks/one", "/hooks/two"):
        assert receiver.most_at_once(path) == 1
        assert receiver.sequences(path) == sorted(receiver.sequences(path))
