"""How many Cognito calls each change makes, through the real sync path (the inline attempt after
commit) against moto's server. Before the outbox kept the last applied state, every apply read the
account and its groups first: a create was 4 calls, a role change 3 to 4, a disable 5."""

import contextlib

import pytest

from accounts import services
from accounts.cognito import sync
from accounts.cognito.gateway import CognitoBudgetExceeded, CognitoGateway
from accounts.models import CognitoSync, User
from tests.cognito.conftest import ACTOR, PROVIDER, row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _groups_exist(raw_cognito, pool_id):
    """The role groups exist, as they do in any pool after its first users (no create_group)."""
    for group in ("admin", "provider", "receptionist", "rx_reader"):
        with contextlib.suppress(raw_cognito.exceptions.GroupExistsException):
            raw_cognito.create_group(UserPoolId=pool_id, GroupName=group)


@pytest.fixture
def calls(recording_client):
    """calls(step) -> the Cognito operations the step made, in order."""

    def run(step):
        recording_client.calls.clear()
        step()
        return [operation for operation, _ in recording_client.calls]

    return run


def fresh(user):
    return User.objects.get(pk=user.pk)


def test_a_create_is_one_create_and_one_call_per_group(make_user, calls):
    assert calls(lambda: make_user(1)) == ["admin_create_user"]
    assert calls(lambda: make_user(2, roles=["rx_reader", "admin"])) == [
        "admin_create_user",
        "admin_add_user_to_group",
        "admin_add_user_to_group",
    ]


def test_a_role_change_makes_only_the_group_calls_that_differ(make_user, calls):
    user = make_user(1, roles=["rx_reader"])
    swap = calls(lambda: services.user_roles_set(user=fresh(user), actor=ACTOR, roles=["provider"]))
    assert swap == ["admin_add_user_to_group", "admin_remove_user_from_group"]
    added = calls(lambda: services.user_roles_set(user=fresh(user), actor=ACTOR, roles=["provider", "admin"]))
    assert added == ["admin_add_user_to_group"]
    assert row(user.pk).state == CognitoSync.State.SYNCED


def test_an_attribute_change_is_one_call(make_user, calls):
    user = make_user(1, roles=["admin"])
    rename = calls(lambda: services.user_update(user=fresh(user), actor=ACTOR, data={"given_name": "Renamed"}))
    assert rename == ["admin_update_user_attributes"]
    both = calls(
        lambda: services.user_update(
            user=fresh(user), actor=ACTOR, data={"email": "new@alice-practice.example"}, provider_details=PROVIDER
        )
    )
    assert both == ["admin_update_user_attributes"]


def test_changes_cognito_does_not_carry_make_no_call(make_user, calls):
    user = make_user(1)
    assert calls(lambda: services.user_update(user=fresh(user), actor=ACTOR, data={"title": "Dr"})) == []
    assert calls(lambda: services.user_update(user=fresh(user), actor=ACTOR, data={}, provider_details=PROVIDER)) == []


def test_a_disable_is_disable_sign_out_and_the_group_removals(make_user, calls):
    user = make_user(1, roles=["admin", "rx_reader"])
    assert calls(lambda: services.user_disable(user=fresh(user), actor=ACTOR)) == [
        "admin_disable_user",
        "admin_user_global_sign_out",
        "admin_remove_user_from_group",
        "admin_remove_user_from_group",
    ]
    assert calls(lambda: services.user_enable(user=fresh(user), actor=ACTOR)) == ["admin_enable_user"]


def test_an_unknown_last_state_reads_the_account_first(make_user, calls):
    """After a failure that may have written (or a lapsed lease, or reconcile --fix), the next
    apply can't trust the last applied state and converges on what it reads."""
    user = make_user(1, roles=["rx_reader"])
    CognitoSync.objects.filter(pk=user.pk).update(synced=None)
    made = calls(lambda: services.user_roles_set(user=fresh(user), actor=ACTOR, roles=["admin"]))
    assert made[:2] == ["admin_get_user", "admin_list_groups_for_user"]
    assert made[2:] == ["admin_add_user_to_group", "admin_remove_user_from_group"]


def test_a_failure_after_a_write_forgets_the_last_applied_state(make_user, recording_client, monkeypatch):
    user = make_user(1, roles=["rx_reader"])
    assert row(user.pk).synced is not None
    real = recording_client._client.admin_remove_user_from_group

    def fails_after_the_add(**params):
        raise recording_client._client.exceptions.InternalErrorException(
            {"Error": {"Code": "InternalErrorException"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "op"
        )

    monkeypatch.setattr(recording_client._client, "admin_remove_user_from_group", fails_after_the_add)
    services.user_roles_set(user=fresh(user), actor=ACTOR, roles=["admin"])  # add admin lands, remove fails
    failed = row(user.pk)
    assert failed.state == CognitoSync.State.PENDING
    assert failed.synced is None  # the account is somewhere between two states: read it next time

    monkeypatch.setattr(recording_client._client, "admin_remove_user_from_group", real)
    sync._inline_paused_until = 0.0
    assert sync.sync_user(user.pk) is None
    assert row(user.pk).state == CognitoSync.State.SYNCED
    assert row(user.pk).synced["groups"] == ["admin"]


@pytest.mark.parametrize("wrote", [True, False], ids=["after-a-write", "before-any-write"])
def test_a_spent_budget_forgets_the_last_applied_state_only_after_a_write(make_user, monkeypatch, wrote):
    user = make_user(1, roles=["rx_reader"])
    applied = row(user.pk).synced

    class SpentBudget(CognitoGateway):
        def apply_state(self, **kwargs):
            self.wrote = wrote
            raise CognitoBudgetExceeded("admin_add_user_to_group")

    monkeypatch.setattr(sync, "get_gateway", SpentBudget)
    services.user_roles_set(user=fresh(user), actor=ACTOR, roles=["admin"])
    deferred = row(user.pk)
    assert (deferred.state, deferred.attempts) == (CognitoSync.State.PENDING, 0)
    assert deferred.synced == (None if wrote else applied)
