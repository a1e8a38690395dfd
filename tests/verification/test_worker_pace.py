"""How the worker keeps pace with the register: several calls in flight in one pass, the register
job in a lane of its own, and the inline attempt's budget counted from the request's arrival."""

import threading
import time

import pytest
from django.db import OperationalError

from accounts.models import ProviderDetails
from identifiers.checks import luhn_check_digit
from tests.verification.conftest import provider_of
from verification import queue
from verification.models import RegisterCall, VerificationTask
from worker.jobs import Job
from worker.runner import run_lanes

pytestmark = pytest.mark.django_db(transaction=True)


def unknown_hpii(number: int) -> str:
    payload = f"800361{number:09d}"
    return f"{payload}{luhn_check_digit(payload)}"


def test_one_pass_has_several_register_calls_in_flight(hi_register, practice_api, practice_users_url, settings):
    settings.HI_VERIFY_INLINE = False
    hi_register.unknown_active = True
    for n in range(6):
        body = provider_of("active", email=f"pace{n}@register.example", hpii_number=unknown_hpii(900 + n))
        assert practice_api.post(practice_users_url, body, format="json").status_code == 201
    hi_register.delay_seconds = 0.5  # every call outlasts the moments between the calls' starts

    counts = queue.process_due(limit=10, concurrency=3)

    assert counts[queue.DONE] == 6
    assert hi_register.peak_in_flight >= 2  # one at a time would never overlap
    assert RegisterCall.objects.count() == 6 and not VerificationTask.objects.exists()
    assert set(ProviderDetails.objects.values_list("verification_status", flat=True)) == {"verified"}


def test_a_pass_given_one_thread_asks_one_at_a_time(hi_register, practice_api, practice_users_url, settings):
    settings.HI_VERIFY_INLINE = False
    hi_register.unknown_active = True
    for n in range(3):
        body = provider_of("active", email=f"serial{n}@register.example", hpii_number=unknown_hpii(950 + n))
        practice_api.post(practice_users_url, body, format="json")
    hi_register.delay_seconds = 0.2

    assert queue.process_due(limit=10, concurrency=1)[queue.DONE] == 3
    assert hi_register.peak_in_flight == 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_database_error_in_a_pass_reaches_the_worker_and_stops_the_pass(
    hi_register, practice_api, practice_users_url, settings, monkeypatch, concurrency
):
    """The worker's shared database back-off sees it (raised in the pass's own thread, not lost in
    a register thread's hook), and the pass starts nothing more."""
    settings.HI_VERIFY_INLINE = False
    hi_register.unknown_active = True
    for n in range(4):
        body = provider_of("active", email=f"dberror{n}@register.example", hpii_number=unknown_hpii(970 + n))
        assert practice_api.post(practice_users_url, body, format="json").status_code == 201
    renewals = []

    class DatabaseGoneOnRenew:  # the queue's outbox, but the database goes when a lease is renewed
        def __getattr__(self, name):
            return getattr(outbox, name)

        def renew(self, pk, token):
            renewals.append(pk)
            raise OperationalError("the database went away")

    outbox = queue.OUTBOX
    monkeypatch.setattr(queue, "OUTBOX", DatabaseGoneOnRenew())

    with pytest.raises(OperationalError):
        queue.process_due(limit=10, concurrency=concurrency)
    assert len(renewals) <= concurrency  # each thread stops at its first error
    assert not RegisterCall.objects.exists()


def test_the_register_lane_runs_beside_the_main_lane():
    # The register job waits for the main lane's job: in one thread it would wait in vain.
    main_ran = threading.Event()
    seen = []

    def register_job(should_stop):
        seen.append(main_ran.wait(timeout=30))
        return 0

    def main_job(should_stop):
        main_ran.set()
        return 0

    jobs = (Job("register_job", register_job, 1.0, lane="register"), Job("main_job", main_job, 1.0))
    handled = run_lanes(jobs, stop=threading.Event(), once=True)

    assert seen == [True]
    assert handled == {"register_job": 0, "main_job": 0}


def test_the_inline_attempt_ends_within_the_budget_counted_from_the_requests_arrival(
    hi_register, practice_api, practice_users_url, settings, monkeypatch
):
    settings.HI_VERIFY_INLINE_BUDGET_SECONDS = 2.0
    # The request arrived a whole budget ago (it waited for a write turn, say): no time is left.
    monkeypatch.setattr(queue, "request_started_at", lambda: time.monotonic() - 2.0)

    response = practice_api.post(practice_users_url, provider_of("active"), format="json")

    assert response.status_code == 201
    assert response.json()["provider_details"]["verification"]["status"] == "pending"
    assert hi_register.received == []  # not asked inline
    task = VerificationTask.objects.get(pk=response.json()["id"])
    assert task.attempts == 0 and task.claimed_until is None  # due for the worker at once
