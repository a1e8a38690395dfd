"""config/write_gate.py: a process runs API_CONCURRENT_WRITES writes at once, lends a write's slot
while it waits on Cognito, and answers 503 `server_busy` (changing nothing) when writes pile up."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import transaction

from accounts.cognito.gateway import CognitoGateway
from accounts.models import User
from config.write_gate import WriteGate, get_write_gate, reset_write_gate
from tests.api.support import user_body


def _in_thread(gate: WriteGate) -> tuple[threading.Thread, threading.Event, list]:
    """A thread that enters the gate, records whether it got in, and leaves when told."""
    leave, outcome = threading.Event(), []

    def run():
        outcome.append(gate.enter())
        leave.wait(10)
        gate.leave()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, leave, outcome


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _another_write_gets_in(gate: WriteGate) -> bool:
    """Whether a write from another thread gets a slot (within the gate's timeout)."""
    thread, leave, outcome = _in_thread(gate)
    _wait_for(lambda: outcome)
    leave.set()
    thread.join(5)
    return outcome[0]


def test_no_more_than_slots_writes_run_at_once_and_the_next_gets_in_when_one_leaves():
    gate = WriteGate(2, timeout=5)
    first, leave_first, got_first = _in_thread(gate)
    second, leave_second, got_second = _in_thread(gate)
    _wait_for(lambda: got_first and got_second)

    third, leave_third, got_third = _in_thread(gate)
    time.sleep(0.2)
    assert got_third == []  # waiting at the door

    leave_first.set()
    _wait_for(lambda: got_third == [True])
    leave_second.set()
    leave_third.set()
    for thread in (first, second, third):
        thread.join(5)


def test_a_write_whose_turn_does_not_come_within_the_timeout_is_refused():
    gate = WriteGate(1, timeout=0.2)
    holder, leave, _ = _in_thread(gate)
    _wait_for(lambda: gate._semaphore._value == 0)

    started = time.monotonic()
    assert gate.enter() is False
    assert 0.15 < time.monotonic() - started < 2
    leave.set()
    holder.join(5)
    assert gate.enter() is True  # the refused attempt held nothing
    gate.leave()


@pytest.mark.django_db(transaction=True)
def test_a_write_lends_its_slot_while_it_waits_and_takes_it_back_after():
    gate = WriteGate(1, timeout=0.2)
    assert gate.enter()
    with gate.released():
        assert _another_write_gets_in(gate)  # another write ran meanwhile
    # Back in this thread's hands: a newcomer waits out its timeout.
    assert not _another_write_gets_in(gate)
    gate.leave()
    assert gate.enter()
    gate.leave()


@pytest.mark.django_db(transaction=True)
def test_a_write_inside_a_transaction_keeps_its_slot():
    """Waiting for a slot back while holding row locks could wait on the slot holders' waits for
    those same locks: inside a transaction the slot is not lent."""
    gate = WriteGate(1, timeout=0.2)
    assert gate.enter()
    with transaction.atomic(), gate.released():
        assert not _another_write_gets_in(gate)
    gate.leave()


@pytest.fixture
def one_slot(settings):
    settings.API_CONCURRENT_WRITES = 1
    settings.API_WRITE_QUEUE_TIMEOUT_SECONDS = 0.3
    reset_write_gate()
    yield get_write_gate()
    reset_write_gate()


def test_a_cognito_call_is_made_with_the_slot_lent_to_other_writes(one_slot):
    seen = []

    class Client:
        def admin_get_user(self, **params):
            seen.append(one_slot._semaphore._value)  # a slot is free while AWS is being waited on
            return {"Username": params["Username"]}

    assert one_slot.enter()
    CognitoGateway(client=Client(), user_pool_id="pool")._call("admin_get_user", "u", Username="u")
    assert seen == [1]
    assert one_slot._semaphore._value == 0  # and taken back
    one_slot.leave()


@pytest.mark.django_db(transaction=True)
def test_a_write_that_finds_every_slot_taken_gets_503_server_busy_and_changes_nothing(one_slot, api, users_url):
    holder, leave, _ = _in_thread(one_slot)
    _wait_for(lambda: one_slot._semaphore._value == 0)
    try:
        response = api.post(users_url, user_body(email="busy@alice-practice.example"), format="json")
        read = api.get(users_url)  # reads never wait at the gate
    finally:
        leave.set()
        holder.join(5)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "server_busy"
    assert response["Retry-After"] == "1"
    assert not User.objects.filter(email="busy@alice-practice.example").exists()
    assert read.status_code == 200

    again = api.post(users_url, user_body(email="busy@alice-practice.example"), format="json")
    assert again.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_create_lends_its_turn_during_each_inline_cognito_call(one_slot, api, users_url, settings):
    """End to end: the inline sync runs after commit (outside any transaction), so every call to
    Cognito is made with the write's one slot free for another write."""
    from accounts.cognito.clients import Budget, get_inline_client

    free_slots = []

    def record(**kwargs):
        free_slots.append(one_slot._semaphore._value)

    client = get_inline_client(Budget(settings.COGNITO_SYNC_INLINE_BUDGET_SECONDS).connect_timeout)
    client.meta.events.register("before-send.cognito-idp", record, unique_id="test_write_gate:record")
    try:
        response = api.post(users_url, user_body(email="lends@alice-practice.example"), format="json")
    finally:
        client.meta.events.unregister("before-send.cognito-idp", unique_id="test_write_gate:record")

    assert response.status_code == 201, response.content
    assert response.json()["cognito"]["status"] == "synced"
    assert free_slots and set(free_slots) == {1}
    assert one_slot._semaphore._value == 1  # given back when the request ended


@pytest.mark.parametrize("name, value", [("API_CONCURRENT_WRITES", "-1"), ("API_WRITE_QUEUE_TIMEOUT_SECONDS", "0")])
def test_a_nonsensical_write_limit_stops_the_service_at_start(name, value):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x", "DJANGO_DEBUG": "true"}
    env[name] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=Path(__file__).resolve().parents[2], env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "API_CONCURRENT_WRITES must be 0 (no limit) or more" in result.stderr
