"""PostgreSQL, committed data: a worker's pass that found work keeps looking for newly due work
(`linger`), so changes arriving at a steady rate go out in the pass rather than waiting for the
idle poll; a pass that finds nothing at first ends at once."""

import threading

import pytest
from django.db import connection, connections

from tests.waiting import wait_until
from webhooks import delivery
from webhooks.delivery import deliver_due

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the claim's SQL needs PostgreSQL"),
]


def test_a_lingering_pass_sends_a_change_committed_after_it_found_nothing_more(
    endpoint, receiver, make_change, monkeypatch
):
    make_change()
    stop = threading.Event()
    results, claims = [], []
    claim = delivery._claim

    def counted_claim(*args, **kwargs):
        rows = claim(*args, **kwargs)
        claims.append(len(rows))
        return rows

    monkeypatch.setattr(delivery, "_claim", counted_claim)

    def run():
        try:
            results.append(deliver_due(limit=100, should_stop=stop.is_set, linger=60.0))
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        # The first change went out, and a later look found nothing: a pass without linger ends here.
        wait_until(lambda: claims and claims[0] == 1 and 0 in claims[1:], timeout=30, what="an empty look")
        make_change()  # committed while the pass is still looking
        wait_until(lambda: len(receiver.requests) == 2, timeout=30, what="the second change, in the same pass")
    finally:
        stop.set()
        worker.join(30)
    assert results and results[0].delivered == 2


def test_without_linger_the_pass_ends_when_nothing_more_is_due(endpoint, receiver, make_change):
    make_change()
    assert deliver_due(limit=100).delivered == 1
    make_change()
    assert deliver_due(limit=100).delivered == 1


def test_a_pass_that_finds_nothing_ends_at_once_whatever_its_linger(endpoint, receiver):
    finished = []
    worker = threading.Thread(
        target=lambda: (finished.append(deliver_due(limit=100, linger=3600.0)), connections.close_all())
    )
    worker.start()
    worker.join(30)  # a pass that lingered would still be running (for an hour)
    assert finished and finished[0].delivered == 0
