"""Concurrent writers on PostgreSQL: row locks queue them, constraints settle races, nothing is lost."""

import itertools
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.cognito import sync
from accounts.models import User
from audit.models import AuditEvent
from tests.api.support import HPII_A, create_user, provider_body, user_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL (SQLite serialises all writers)")


@pytest.fixture
def token_client(api):
    """A factory of fresh clients holding the same token (APIClient is not thread-safe)."""
    authorization = api._credentials["HTTP_AUTHORIZATION"]

    def make():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        return client

    return make


def _run_concurrently(count, work):
    """work(index) in `count` threads released together; returns the results in index order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as error:  # reported to the test, not lost in the thread
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


ROLE_SETS = [
    ["provider"],
    ["rx_reader"],
    ["admin", "provider"],
    ["member"],
    ["provider"],
    ["receptionist", "rx_reader"],
    ["provider", "rx_reader"],
    ["admin"],
]


def test_concurrent_role_changes_lose_nothing_and_audit_each_change_once(api, users_url, token_client, cognito):
    user = create_user(api, users_url, **provider_body())
    url = f"{users_url}/{user['id']}/roles"

    def change_roles(index):
        client = token_client()
        statuses = []
        for round_ in range(3):
            roles = ROLE_SETS[(index + round_) % len(ROLE_SETS)]
            statuses.append(client.put(url, {"access_roles": roles}, format="json").status_code)
        return statuses

    results = _run_concurrently(8, change_roles)
    assert results == [[200, 200, 200]] * 8, results

    events = list(AuditEvent.objects.filter(user_id=user["id"], action="user.roles_changed").order_by("id"))
    changes = [event.changes["access_roles"] for event in events]
    assert 1 <= len(changes) <= 24
    # One unbroken chain: each event starts where the previous one ended, and each is a real change.
    assert changes[0]["from"] == ["provider"]
    for previous, current in itertools.pairwise(changes):
        assert current["from"] == previous["to"]
    assert all(change["from"] != change["to"] for change in changes)

    final = User.objects.get(pk=user["id"])
    assert final.roles == changes[-1]["to"]
    history = [row.roles for row in User.history.filter(id=user["id"]).order_by("history_id")]
    assert history == [["provider"]] + [change["to"] for change in changes]
    assert final.provider_details.hpii_number == user["provider_details"]["hpii_number"]

    # Whatever the inline syncs left behind, one worker pass converges Cognito on the final roles.
    sync.process_due()
    assert cognito.describe(username=user["id"])["groups"] == set(final.roles) - {"member"}


def test_concurrent_creates_with_one_email_give_one_201_and_409s(users_url, token_client):
    def create(index):
        email = "Same.Person@x.com" if index % 2 else "same.person@x.com"
        response = token_client().post(users_url, user_body(email=email, given_name=f"T{index}"), format="json")
        return response.status_code, response.json().get("code")

    results = _run_concurrently(4, create)
    assert sorted(status for status, _ in results) == [201, 409, 409, 409], results
    assert {code for status, code in results if status == 409} == {"user_already_exists"}
    assert User.objects.filter(email="same.person@x.com").count() == 1
    assert AuditEvent.objects.filter(action="user.created").count() == 1


def test_concurrent_creates_with_one_partner_user_id(users_url, token_client):
    def create(index):
        body = user_body(email=f"p{index}@x.com", partner_user_id="pms-7")
        response = token_client().post(users_url, body, format="json")
        return response.status_code, response.json().get("code")

    results = _run_concurrently(3, create)
    assert sorted(results, key=lambda result: result[0]) == [
        (201, None), (409, "partner_user_id_conflict"), (409, "partner_user_id_conflict")
    ], results


def test_concurrent_hpii_claims_give_one_winner(api, users_url, token_client):
    users = [create_user(api, users_url, email=f"d{index}@x.com")["id"] for index in range(3)]

    def claim(index):
        response = token_client().patch(
            f"{users_url}/{users[index]}", {"provider_details": {"hpii_number": HPII_A}}, format="json"
        )
        return response.status_code, response.json().get("code")

    results = _run_concurrently(3, claim)
    assert sorted(status for status, _ in results) == [200, 409, 409], results
    assert {code for status, code in results if status == 409} == {"hpii_conflict"}


def test_concurrent_disables_write_one_event(api, users_url, token_client, cognito):
    user = create_user(api, users_url, access_roles=["admin"])

    def disable(index):
        return token_client().put(f"{users_url}/{user['id']}/disable").status_code

    assert _run_concurrently(4, disable) == [200] * 4
    assert AuditEvent.objects.filter(user_id=user["id"], action="user.disabled").count() == 1
    sync.process_due()
    assert cognito.describe(username=user["id"])["enabled"] is False


def test_concurrent_updates_and_role_changes_both_land(api, users_url, token_client):
    user = create_user(api, users_url)

    def write(index):
        client = token_client()
        if index % 2:
            return client.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["admin"]}, format="json").status_code
        return client.patch(f"{users_url}/{user['id']}", {"title": "Dr"}, format="json").status_code

    assert _run_concurrently(4, write) == [200] * 4
    final = User.objects.get(pk=user["id"])
    assert (final.roles, final.title) == (["admin"], "Dr")
    assert AuditEvent.objects.filter(user_id=user["id"], action="user.roles_changed").count() == 1
    assert AuditEvent.objects.filter(user_id=user["id"], action="user.updated").count() == 1
