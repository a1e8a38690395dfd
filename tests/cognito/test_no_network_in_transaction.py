"""No Cognito call ever runs inside a database transaction: for every domain signal, the call
happens, and it happens after commit."""

import pytest

from accounts import services, signals
from accounts.models import CognitoSync, User
from tests.cognito.conftest import ACTOR, PROVIDER, row

pytestmark = pytest.mark.django_db(transaction=True)


def fires(signal):
    """Count the sends of one domain signal (to show each step really exercised it)."""
    sent = []

    def receiver(sender, user, **kwargs):
        sent.append(user.pk)

    signal.connect(receiver, weak=False, dispatch_uid=f"test-counter-{id(receiver)}")
    return sent, lambda: signal.disconnect(dispatch_uid=f"test-counter-{id(receiver)}")


STEPS = [
    ("user_created", lambda user, org: None),
    ("user_updated", lambda user, org: services.user_update(user=user, actor=ACTOR, data={"given_name": "Renamed"})),
    (
        "provider_details_updated",
        lambda user, org: services.user_update(user=user, actor=ACTOR, data={}, provider_details=PROVIDER),
    ),
    ("user_roles_changed", lambda user, org: services.user_roles_set(user=user, actor=ACTOR, roles=["provider"])),
    ("user_disabled", lambda user, org: services.user_disable(user=user, actor=ACTOR)),
    ("user_enabled", lambda user, org: services.user_enable(user=user, actor=ACTOR)),
]


@pytest.mark.parametrize("signal_name", [name for name, _ in STEPS])
def test_each_signal_reaches_cognito_only_after_commit(signal_name, organization, make_user, recording_client):
    sent, disconnect = fires(getattr(signals, signal_name))
    try:
        user = make_user(1, roles=["rx_reader"])
        for name, step in STEPS[1:]:
            before = recording_client.count()
            version = row(user.pk).desired_version
            step(User.objects.get(pk=user.pk), organization)
            if name == signal_name:
                break
        else:
            before, version = 0, 0  # user_created: the creation itself is the step
    finally:
        disconnect()

    assert sent == [user.pk]
    if signal_name == "provider_details_updated":
        # Cognito carries no provider details: no work recorded, no call made.
        assert row(user.pk).desired_version == version
        assert recording_client.count() == before
    else:
        assert row(user.pk).desired_version > version  # the receiver recorded the work...
        assert recording_client.count() > before  # ...the Cognito calls for it happened...
    assert recording_client.in_transaction == []  # ...and none inside a transaction
    assert row(user.pk).state == CognitoSync.State.SYNCED


@pytest.fixture
def every_signal():
    """Every domain signal sent, by name, while the test runs."""
    sent, disconnects = [], []
    for name in [n for n, _ in STEPS]:

        def receiver(sender, user, name=name, **kwargs):
            sent.append(name)

        getattr(signals, name).connect(receiver, weak=False, dispatch_uid=f"test-every-{name}")
        disconnects.append(lambda name=name: getattr(signals, name).disconnect(dispatch_uid=f"test-every-{name}"))
    yield sent
    for disconnect in disconnects:
        disconnect()


@pytest.fixture
def inline_syncs(monkeypatch):
    """The inline syncs that ran after commit, by user id."""
    from accounts.cognito import sync

    ran, real = [], sync._apply_inline

    def counting(user_id):
        ran.append(user_id)
        return real(user_id)

    monkeypatch.setattr(sync, "_apply_inline", counting)
    return ran


def test_an_update_of_profile_and_provider_details_is_one_signal_one_outbox_write_one_sync(
    make_user, every_signal, inline_syncs, recording_client
):
    user = make_user(1, roles=["rx_reader"])
    version = row(user.pk).desired_version
    every_signal.clear(), inline_syncs.clear()
    services.user_update(
        user=User.objects.get(pk=user.pk), actor=ACTOR, data={"given_name": "Renamed"}, provider_details=PROVIDER
    )
    assert every_signal == ["user_updated"]
    assert row(user.pk).desired_version == version + 1
    assert inline_syncs == [user.pk]
    assert row(user.pk).state == CognitoSync.State.SYNCED


@pytest.mark.parametrize(
    "data, provider_details",
    [({"title": "Dr", "phone": "0432333333", "partner_user_id": "p-1"}, None), ({}, PROVIDER)],
    ids=["fields-cognito-does-not-carry", "provider-details-only"],
)
def test_a_change_cognito_does_not_carry_schedules_nothing(
    make_user, every_signal, inline_syncs, recording_client, data, provider_details
):
    user = make_user(1)
    version, calls = row(user.pk).desired_version, recording_client.count()
    every_signal.clear(), inline_syncs.clear()
    services.user_update(user=User.objects.get(pk=user.pk), actor=ACTOR, data=data, provider_details=provider_details)
    assert len(every_signal) == 1  # the domain event still happens, once
    assert row(user.pk).desired_version == version
    assert inline_syncs == []
    assert recording_client.count() == calls


def test_the_recorder_does_see_a_call_inside_a_transaction(recording_client):
    """The check above can fail: a call made inside atomic() is noticed."""
    from django.db import transaction

    from accounts.cognito import sync

    with transaction.atomic():
        sync.get_gateway().describe(username="00000000-0000-0000-0000-000000000000")
    assert recording_client.in_transaction == ["admin_get_user"]
