"""The inline sync's budget (COGNITO_SYNC_INLINE_BUDGET_SECONDS): when Cognito hangs or is slow, a
request answers within the budget with the work pending, and the worker finishes it."""

import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.cognito import gateway, sync
from accounts.models import CognitoSync
from tests.cognito.conftest import row
from tests.cognito.latency_proxy import LatencyProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def production_timeouts(settings):
    """The client tuning and inline budget of a deployment (2 s connect, 5 s read, 3 attempts; 1.5 s),
    not the suite's."""
    settings.COGNITO_CONNECT_TIMEOUT, settings.COGNITO_READ_TIMEOUT, settings.COGNITO_MAX_ATTEMPTS = 2.0, 5.0, 3
    settings.COGNITO_SYNC_INLINE_BUDGET_SECONDS = 1.5
    assert (gateway.get_client().meta.config.read_timeout, gateway.get_client().meta.config.retries) == (
        5,
        {"mode": "adaptive", "total_max_attempts": 3},
    )


def body(n, roles=("rx_reader",)):
    return {"given_name": "Ben", "family_name": f"Smith{n}", "email": f"ben{n}@my-practice.com", "access_roles": roles}


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def groups_of(raw_cognito, pool_id, user_id):
    found = raw_cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=user_id)["Groups"]
    return {g["GroupName"] for g in found}


def test_a_create_answers_within_the_budget_when_cognito_hangs_and_the_worker_completes_it(
    api, users_url, cognito_server, production_timeouts, raw_cognito, pool_id
):
    cognito_server.stall()  # connects are accepted, no answer ever comes
    try:
        response, elapsed = timed(lambda: api.post(users_url, body(1), format="json"))
        assert response.status_code == 201, response.content
        assert response.json()["cognito"] == {"status": "pending"}
        user_id = response.json()["id"]
        sync_row = row(user_id)
        assert "InlineBudgetExceeded" in sync_row.last_error
        assert sync_row.attempts == 0  # the budget running out is not the change's failure
        assert sync_row.next_attempt_at <= timezone.now()  # due at once for the worker
        assert sync_row.claim_token is None

        # This process now leaves the work to the worker for a while: the next request doesn't call
        # Cognito at all, so its time is the request's own on this machine right now.
        second, own_time = timed(lambda: api.post(users_url, body(2), format="json"))
        assert second.json()["cognito"] == {"status": "pending"}
        assert "inline sync paused" in row(second.json()["id"]).last_error
        # The first waited the 1.5 s budget on top of that (and a second's slack for a loaded machine),
        # not the 15 s the worker's client would (5 s read timeout x 3 attempts).
        assert elapsed - own_time < 1.5 + 1.0, (elapsed, own_time)
    finally:
        cognito_server.start()

    call_command("sync_cognito")
    for created in (response, second):
        assert row(created.json()["id"]).state == CognitoSync.State.SYNCED
        assert groups_of(raw_cognito, pool_id, created.json()["id"]) == {"rx_reader"}


def test_a_slow_cognito_uses_up_the_budget_and_pauses_inline_syncs(
    api, users_url, cognito_server, production_timeouts, settings, raw_cognito, pool_id
):
    with LatencyProxy(cognito_server.port, delay=0.6) as proxy:
        settings.COGNITO_ENDPOINT_URL = proxy.endpoint_url
        # Build the clients first: their one-off creation is not what this test measures.
        gateway.get_client(), gateway.get_inline_client(gateway.Budget(1.5).connect_timeout)
        response, elapsed = timed(lambda: api.post(users_url, body(1, ["admin", "rx_reader"]), format="json"))
        assert response.status_code == 201, response.content
        # Three or more calls of 0.6 s each don't fit in 1.5 s: the request stops at the budget.
        assert response.json()["cognito"] == {"status": "pending"}
        assert elapsed < 1.5 + 0.5
        user_id = response.json()["id"]
        assert "InlineBudgetExceeded" in row(user_id).last_error
        assert row(user_id).attempts == 0
        assert sync._inline_paused_until > time.monotonic()  # slowness pauses like a timeout

        call_command("sync_cognito")  # the worker's full timeouts: slow is fine
    assert row(user_id).state == CognitoSync.State.SYNCED
    assert groups_of(raw_cognito, pool_id, user_id) == {"admin", "rx_reader"}


def test_the_budget_is_the_setting(api, users_url, cognito_server, production_timeouts, settings):
    settings.COGNITO_SYNC_INLINE_BUDGET_SECONDS = 0.6
    gateway.get_inline_client(gateway.Budget(0.6).connect_timeout)  # built once per process, not measured
    cognito_server.stall()
    try:
        response, elapsed = timed(lambda: api.post(users_url, body(1), format="json"))
    finally:
        cognito_server.start()
    assert response.json()["cognito"] == {"status": "pending"}
    assert elapsed < 1.2  # 0.6 s of waiting on Cognito, the rest is the request itself on a busy machine


def test_with_80_ms_more_per_call_a_create_and_a_role_change_still_sync_inline(
    api, users_url, cognito_server, production_timeouts, settings
):
    with LatencyProxy(cognito_server.port, delay=0.08) as proxy:
        settings.COGNITO_ENDPOINT_URL = proxy.endpoint_url
        gateway.get_inline_client(gateway.Budget(1.5).connect_timeout)
        created = api.post(users_url, body(1), format="json")
        assert created.json()["cognito"] == {"status": "synced"}, row(created.json()["id"]).last_error
        user_url = f"{users_url}/{created.json()['id']}"
        roles = api.put(f"{user_url}/roles", {"access_roles": ["rx_reader", "admin"]}, format="json")
        assert roles.json()["cognito"] == {"status": "synced"}
    assert sync._inline_paused_until == 0.0
