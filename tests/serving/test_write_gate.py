"""core/write_gate.py: a process runs API_CONCURRENT_WRITES writes at once, shares the turns among
tenants in rotation, caps each tenant's writes, lends a write's turn while it waits on Cognito, and
answers 503 `server_busy` (changing nothing) when it refuses one."""

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
from audit.context import Actor
from core.write_gate import WriteGate, get_write_gate, reset_write_gate
from tests.api.support import user_body

ALICE, BOB, CAROL = ("organization", "alice"), ("organization", "bob"), ("organization", "carol")


def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Writer:
    """A thread that enters the gate as `tenant`, records whether it got in (and in which order, in
    `order`), and leaves when told."""

    def __init__(self, gate: WriteGate, tenant, name: str = "", order: list | None = None):
        self.gate, self.tenant, self.name = gate, tenant, name
        self.order = order if order is not None else []
        self.outcome: list[bool] = []
        self._leave = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        entered = self.gate.enter(self.tenant)
        if entered:
            self.order.append(self.name)
        self.outcome.append(entered)
        if entered:
            self._leave.wait(30)
            self.gate.leave()

    def leave(self):
        self._leave.set()
        self.thread.join(10)


def _queued(gate, tenant, names, order, count_before):
    """Start writers one by one, each waiting in the gate before the next starts (their order in
    the tenant's queue is then known)."""
    writers = []
    for index, name in enumerate(names, start=1):
        writers.append(Writer(gate, tenant, name, order))
        _wait_for(lambda index=index: gate.waiting(tenant) == count_before + index)
    return writers


def _another_write_gets_in(gate: WriteGate, tenant=CAROL) -> bool:
    """Whether a write from another thread gets a turn (within the gate's timeout)."""
    writer = Writer(gate, tenant)
    _wait_for(lambda: writer.outcome)
    writer.leave()
    return writer.outcome[0]


def test_no_more_than_slots_writes_run_at_once_and_the_next_gets_in_when_one_leaves():
    gate = WriteGate(2, timeout=10, per_tenant=10)
    first, second = Writer(gate, ALICE), Writer(gate, ALICE)
    _wait_for(lambda: first.outcome and second.outcome)

    third = Writer(gate, ALICE)
    _wait_for(lambda: gate.waiting(ALICE) == 1)
    assert third.outcome == []  # waiting at the door

    first.leave()
    _wait_for(lambda: third.outcome == [True])
    second.leave()
    third.leave()
    assert gate.free_turns == 2


def test_turns_go_round_the_tenants_with_writes_waiting_whatever_one_of_them_has_queued():
    """Alice queued four writes before Bob's two and Carol's one: each free turn goes to the next
    tenant in rotation, so Bob and Carol are not behind Alice's whole queue, and Alice's writes
    all get their turn too (nobody starves)."""
    gate = WriteGate(1, timeout=30, per_tenant=10)
    order: list[str] = []
    holder = Writer(gate, ("staff", 1), "holder", order)
    _wait_for(lambda: holder.outcome == [True])
    writers = _queued(gate, ALICE, ["a1", "a2", "a3", "a4"], order, 0)
    writers += _queued(gate, BOB, ["b1", "b2"], order, 0)
    writers += _queued(gate, CAROL, ["c1"], order, 0)
    by_name = {w.name: w for w in writers}

    holder.leave()
    for served in range(1, len(writers) + 1):
        _wait_for(lambda served=served: len(order) == served + 1)
        by_name[order[-1]].leave()

    assert order == ["holder", "a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    assert all(w.outcome == [True] for w in writers)
    assert gate.free_turns == 1


def test_a_tenant_past_its_cap_is_refused_at_once_and_the_others_still_wait_for_their_turn():
    gate = WriteGate(1, timeout=30, per_tenant=2)
    running = Writer(gate, ALICE)
    _wait_for(lambda: running.outcome == [True])
    waiting = Writer(gate, ALICE)
    _wait_for(lambda: gate.waiting(ALICE) == 1)

    # Alice holds two writes (one running, one waiting): a third is refused without waiting out
    # the 30 s timeout, while Bob's write, behind the same running one, waits and then gets in.
    refused = Writer(gate, ALICE)
    bob = Writer(gate, BOB)
    _wait_for(lambda: refused.outcome)
    assert refused.outcome == [False]
    _wait_for(lambda: gate.waiting(BOB) == 1)
    assert bob.outcome == []

    running.leave()
    _wait_for(lambda: waiting.outcome == [True])
    waiting.leave()
    _wait_for(lambda: bob.outcome == [True])
    bob.leave()
    assert _another_write_gets_in(gate, ALICE)  # the refusal held nothing of Alice's share


def test_a_write_whose_turn_does_not_come_within_the_timeout_is_refused_and_holds_nothing():
    gate = WriteGate(1, timeout=0.2, per_tenant=1)
    holder = Writer(gate, ALICE)
    _wait_for(lambda: holder.outcome == [True])

    assert gate.enter(BOB) is False
    assert gate.waiting(BOB) == 0
    holder.leave()
    assert gate.enter(BOB) is True  # Bob's timed-out write left no count behind (cap 1)
    gate.leave()


@pytest.mark.django_db(transaction=True)
def test_a_write_lends_its_turn_while_it_waits_and_takes_it_back_ahead_of_its_tenants_new_writes():
    gate = WriteGate(1, timeout=5, per_tenant=10)
    assert gate.enter(ALICE)
    with gate.released():
        assert _another_write_gets_in(gate)  # another write ran meanwhile
        running = Writer(gate, ALICE)
        _wait_for(lambda: running.outcome == [True])
        newer = Writer(gate, ALICE)
        _wait_for(lambda: gate.waiting(ALICE) == 1)

        def end_running_once_this_write_is_back_in_the_queue():
            _wait_for(lambda: gate.waiting(ALICE) == 2)
            running.leave()

        threading.Thread(target=end_running_once_this_write_is_back_in_the_queue, daemon=True).start()
    # Back from Cognito, this write got the turn `running` gave up, ahead of Alice's newer write.
    assert gate.holder() == ALICE
    assert newer.outcome == []
    gate.leave()
    _wait_for(lambda: newer.outcome == [True])
    newer.leave()
    assert gate.free_turns == 1


@pytest.mark.django_db(transaction=True)
def test_a_write_inside_a_transaction_keeps_its_turn():
    """Waiting for a turn back while holding row locks could wait on the turn holders' waits for
    those same locks: inside a transaction the turn is not lent."""
    gate = WriteGate(1, timeout=0.2, per_tenant=10)
    assert gate.enter(ALICE)
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


def test_a_cognito_call_is_made_with_the_turn_lent_to_other_writes(one_slot):
    seen = []

    class Client:
        def admin_get_user(self, **params):
            seen.append(one_slot.free_turns)  # a turn is free while AWS is being waited on
            return {"Username": params["Username"]}

    assert one_slot.enter(ALICE)
    CognitoGateway(client=Client(), user_pool_id="pool")._call("admin_get_user", "u", Username="u")
    assert seen == [1]
    assert one_slot.free_turns == 0  # and taken back
    one_slot.leave()


@pytest.mark.django_db(transaction=True)
def test_a_write_that_finds_every_turn_taken_gets_503_server_busy_and_changes_nothing(one_slot, api, users_url):
    holder = Writer(one_slot, CAROL)
    _wait_for(lambda: holder.outcome == [True])
    try:
        response = api.post(users_url, user_body(email="busy@alice-practice.example"), format="json")
        read = api.get(users_url)  # reads never wait at the gate
    finally:
        holder.leave()

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "server_busy"
    assert response["Retry-After"] == "1"
    assert not User.objects.filter(email="busy@alice-practice.example").exists()
    assert read.status_code == 200

    again = api.post(users_url, user_body(email="busy@alice-practice.example"), format="json")
    assert again.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_practice_over_its_cap_gets_503_at_once_and_another_practice_is_served(
    settings, api, users_url, api_for, organization, other_organization
):
    settings.API_CONCURRENT_WRITES = 2
    settings.API_WRITE_QUEUE_TIMEOUT_SECONDS = 30
    settings.API_WRITES_PER_ORGANIZATION = 1
    reset_write_gate()
    gate = get_write_gate()
    try:
        alice_write = Writer(gate, ("organization", organization.pk))
        _wait_for(lambda: alice_write.outcome == [True])
        try:
            refused = api.post(users_url, user_body(email="capped@alice-practice.example"), format="json")
            charlie = api_for(other_organization).post(
                f"/v1/organizations/{other_organization.pk}/users",
                user_body(email="served@charlie-clinic.example"), format="json",
            )
        finally:
            alice_write.leave()
    finally:
        reset_write_gate()

    assert refused.status_code == 503, refused.content  # at once: the queue timeout is 30 s
    assert refused.json()["code"] == "server_busy"
    assert refused["Retry-After"] == "1"
    assert not User.objects.filter(email="capped@alice-practice.example").exists()
    assert charlie.status_code == 201, charlie.content


@pytest.mark.django_db(transaction=True)
def test_a_write_refused_by_its_scope_or_tenancy_never_waits_for_a_turn(one_slot, api_for, organization, users_url):
    """The turn is taken after DRF's checks: a 403 or a 404 is answered while every turn is held."""
    holder = Writer(one_slot, CAROL)
    _wait_for(lambda: holder.outcome == [True])
    try:
        no_scope = api_for(organization, scopes=("read:users",)).post(users_url, user_body(), format="json")
        elsewhere = api_for(organization).post(
            "/v1/organizations/00000000-0000-0000-0000-000000000000/users", user_body(), format="json"
        )
    finally:
        holder.leave()
    assert no_scope.status_code == 403
    assert elsewhere.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_scim_write_takes_its_organizations_turn_and_is_refused_in_scims_error_shape(one_slot, client, organization):
    from scim.services import scim_token_create
    from tests.scim.conftest import ScimClient, scim_user

    _, raw = scim_token_create(organization=organization, name="Entra ID", actor=Actor.system("test"))
    scim = ScimClient(client, raw)
    holder = Writer(one_slot, CAROL)
    _wait_for(lambda: holder.outcome == [True])
    try:
        refused = scim.post("Users", scim_user(user_name="busy@alice-practice.example"))
        listed = scim.get("Users")  # reads never wait
    finally:
        holder.leave()
    assert refused.status_code == 503
    assert refused["Content-Type"].startswith("application/scim+json")
    assert refused.json()["status"] == "503"
    assert refused["Retry-After"] == "1"
    assert listed.status_code == 200
    assert not User.objects.filter(email="busy@alice-practice.example").exists()
    assert scim.post("Users", scim_user(user_name="busy@alice-practice.example")).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_staff_writes_in_the_admin_take_a_turn_and_the_sign_in_never_waits_for_one(one_slot, client):
    from tests.factories import StaffFactory

    staff = StaffFactory(email="sam@platform.example")
    holder = Writer(one_slot, CAROL)
    _wait_for(lambda: holder.outcome == [True])
    try:
        # Anyone may try to sign in: that never waits for (or holds) a write turn.
        sign_in = client.post("/admin/login/", {"username": "nobody@platform.example", "password": "wrong"})
        client.force_login(staff)
        staff_write = client.post("/admin/logout/")
    finally:
        holder.leave()
    assert sign_in.status_code == 200  # the form again, with its error
    assert staff_write.status_code == 503
    assert staff_write.json()["code"] == "server_busy"
    assert staff_write["Retry-After"] == "1"


@pytest.mark.django_db(transaction=True)
def test_a_create_lends_its_turn_during_each_inline_cognito_call(one_slot, api, users_url, settings):
    """End to end: the inline sync runs after commit (outside any transaction), so every call to
    Cognito is made with the write's one turn free for another write."""
    from accounts.cognito.clients import Budget, get_inline_client

    free_turns = []

    def record(**kwargs):
        free_turns.append(one_slot.free_turns)

    client = get_inline_client(Budget(settings.COGNITO_SYNC_INLINE_BUDGET_SECONDS).connect_timeout)
    client.meta.events.register("before-send.cognito-idp", record, unique_id="test_write_gate:record")
    try:
        response = api.post(users_url, user_body(email="lends@alice-practice.example"), format="json")
    finally:
        client.meta.events.unregister("before-send.cognito-idp", unique_id="test_write_gate:record")

    assert response.status_code == 201, response.content
    assert response.json()["cognito"]["status"] == "synced"
    assert free_turns and set(free_turns) == {1}
    assert one_slot.free_turns == 1  # given back when the request ended


@pytest.mark.parametrize(
    "name, value",
    [("API_CONCURRENT_WRITES", "-1"), ("API_WRITE_QUEUE_TIMEOUT_SECONDS", "0"), ("API_WRITES_PER_ORGANIZATION", "0")],
)
def test_a_nonsensical_write_limit_stops_the_service_at_start(name, value):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "x", "DJANGO_DEBUG": "true"}
    env[name] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=Path(__file__).resolve().parents[2], env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "API_CONCURRENT_WRITES must be 0 (no limit) or more" in result.stderr
