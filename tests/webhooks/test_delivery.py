"""Events from every entry point reach a real receiver, signed; retries, timeouts, rotation, the log."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from accounts.services import user_disable, user_roles_set, user_update
from audit.context import Actor
from audit.models import AuditEvent, staff_pseudonym
from audit.services import audit_event_record
from tests.factories import UserFactory
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .conftest import deliver_all

pytestmark = pytest.mark.django_db

VALID_HPII = "8003614900000009"
PROVIDER = {
    "date_of_birth": "1975-12-25",
    "sex": "M",
    "phone": "0432333333",
    "hpii_number": VALID_HPII,
    "prescriber_type": "M",
    "prescriber_number": "1234567",
    "qualifications": "MD",
}


def _verified(received, secret) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def test_every_user_event_from_the_api_is_delivered_signed_with_the_user_after_the_change(
    webhooks_api, users_url, endpoint, receiver
):
    _, secret = endpoint
    created = webhooks_api.post(
        users_url,
        {"given_name": "Ben", "family_name": "Smith", "email": "ben@practice.example", "access_roles": ["rx_reader"]},
        format="json",
    ).json()
    user_url = f"{users_url}/{created['id']}"
    assert webhooks_api.put(f"{user_url}/roles", {"access_roles": ["provider"]}, format="json").status_code == 200
    assert webhooks_api.put(user_url, {"provider_details": PROVIDER}, format="json").status_code == 200
    assert webhooks_api.put(user_url, {"title": "Dr"}, format="json").status_code == 200
    assert webhooks_api.put(f"{user_url}/disable").status_code == 200
    deliver_all()

    bodies = [_verified(r, secret) for r in receiver.requests]
    assert [b["type"] for b in bodies] == [
        "user.created",
        "user.roles_changed",
        "provider_details.updated",
        "user.updated",
        "user.disabled",
    ]
    sequences = [b["data"]["sequence"] for b in bodies]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    for received, body in zip(receiver.requests, bodies, strict=True):
        data = body["data"]
        assert data["event_id"] == received.headers["webhook-id"]
        assert data["organization_id"] == created["organization_id"]
        assert data["actor"]["type"] == "api_client" and data["actor"]["id"]
        assert data["user"]["id"] == created["id"]
        assert set(body) == {"type", "timestamp", "data"}
    assert bodies[1]["data"]["changes"] == {"access_roles": {"from": ["rx_reader"], "to": ["provider"]}}
    assert bodies[1]["data"]["user"]["access_roles"] == ["provider"]  # after the change
    assert bodies[2]["data"]["user"]["can_prescribe"] is True
    final = bodies[-1]["data"]["user"]
    current = webhooks_api.get(user_url).json()
    # The same renderer as the API: the same document (only the Cognito status moves after commit).
    assert {k: v for k, v in final.items() if k != "cognito"} == {k: v for k, v in current.items() if k != "cognito"}
    assert final["status"] == "disabled"


def test_staff_and_command_changes_send_events_too(organization, endpoint, receiver, staff_client, staff):
    _, secret = endpoint
    user = UserFactory(organization=organization)
    call_command("disable_user", str(user.pk), "--organization", str(organization.pk), "--reason", "left")
    # The admin's re-enable page (staff), through the same service.
    response = staff_client.post(f"/admin/accounts/user/{user.pk}/enable/", {"confirm": "yes"})
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    user_roles_set(user=user, actor=Actor.staff(staff), roles=["admin"])
    deliver_all()
    bodies = [_verified(r, secret) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["user.created", "user.disabled", "user.enabled", "user.roles_changed"]
    assert bodies[1]["data"]["actor"]["type"] == "system"
    assert bodies[1]["data"]["actor"]["name"].startswith("disable_user")
    # A practice sees platform staff by pseudonym (tests/security/test_staff_pseudonym.py).
    pseudonym = staff_pseudonym(str(staff.pk))
    assert bodies[2]["data"]["actor"] == {"type": "staff", "id": pseudonym, "name": pseudonym}
    assert bodies[2]["data"]["user"]["status"] == "active"


@pytest.mark.parametrize("action", ["user.cognito_sync_failed", "organization.deactivated", "organization.activated"])
def test_the_other_event_types_map_one_to_one_from_their_audit_actions(organization, endpoint, receiver, action):
    _, secret = endpoint
    user = None
    if action.startswith("user."):
        user = UserFactory(organization=organization)
    audit_event_record(
        action=action, actor=Actor.system("worker"), organization_id=organization.pk, user_id=user and user.pk
    )
    deliver_all()
    body = _verified(receiver.requests[-1], secret)
    assert body["type"] == action
    assert ("user" in body["data"]) is (user is not None)


def test_unmapped_actions_and_unwanted_types_send_nothing(organization, make_endpoint, receiver):
    make_endpoint(receiver.url, events=["user.disabled"])
    user = UserFactory(organization=organization)
    audit_event_record(
        action=AuditEvent.Action.API_CLIENT_CREATED, actor=Actor.system("t"), organization_id=organization.pk
    )
    assert deliver_all() == 0
    user_disable(user=user, actor=Actor.system("t"))
    deliver_all()
    assert receiver.types() == ["user.disabled"]


def test_a_disabled_endpoint_gets_nothing_and_other_organizations_events_stay_theirs(
    organization, other_organization, make_endpoint, receiver
):
    mine, _ = make_endpoint(receiver.url)
    from webhooks.services import webhook_endpoint_update

    webhook_endpoint_update(endpoint=mine, actor=Actor.system("t"), data={"status": "disabled"})
    UserFactory(organization=organization)
    make_endpoint(f"{receiver.url}/charlie", org=other_organization)
    UserFactory(organization=other_organization)
    deliver_all()
    assert [r.path for r in receiver.requests] == ["/hooks/charlie"]
    assert receiver.requests[0].json["data"]["organization_id"] == str(other_organization.pk)


def test_a_500_then_2xx_is_retried_with_the_same_webhook_id(endpoint, receiver, make_change):
    _, secret = endpoint
    receiver.answer(500)
    make_change()
    deliver_all()
    assert len(receiver.requests) == 2
    attempts = list(WebhookAttempt.objects.order_by("id"))
    assert [(a.number, a.succeeded, a.status_code) for a in attempts] == [(1, False, 500), (2, True, 200)]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.event.webhook_id] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    _verified(receiver.requests[1], secret)


def test_a_receiver_that_hangs_times_out_and_is_retried(endpoint, receiver, make_change, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.answer("hang")
    make_change()
    deliver_all()
    attempts = list(WebhookAttempt.objects.order_by("id"))
    assert not attempts[0].succeeded and attempts[0].error.startswith("Timed out")
    assert attempts[0].duration_ms < 3000
    assert attempts[1].succeeded
    assert len(receiver.requests) == 1


def test_backoff_follows_the_schedule_then_the_delivery_fails(endpoint, receiver, make_change, settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 30]
    receiver.answer(503, 503, 503, 503)
    make_change()
    from webhooks.delivery import deliver_due

    delivery = WebhookDelivery.objects.get()
    for expected_gap in (5, 30):
        before = timezone.now()
        deliver_due()
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        gap = (delivery.next_attempt_at - before).total_seconds()
        assert expected_gap <= gap < expected_gap + 5
        assert deliver_due().delivered + deliver_due().failed == 0  # not due yet
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 3
    assert WebhookAttempt.objects.order_by("-id").first().next_attempt_at is None


def test_an_endpoint_failing_for_three_days_is_disabled_with_an_audit_event(endpoint, receiver, make_change):
    mine, _ = endpoint
    receiver.answer(500, 500)
    make_change()
    deliver_all(rounds=1)
    mine.refresh_from_db()
    assert mine.failing_since is not None and mine.status == "enabled"
    WebhookEndpoint.objects.filter(pk=mine.pk).update(failing_since=timezone.now() - timedelta(days=3, minutes=1))
    deliver_all(rounds=1)
    mine.refresh_from_db()
    assert mine.status == "disabled" and mine.disabled_reason
    event = AuditEvent.objects.get(action="webhook_endpoint.disabled")
    assert event.actor_type == "system" and event.organization_id == mine.organization_id


def test_a_success_resets_the_failing_clock(endpoint, receiver, make_change):
    mine, _ = endpoint
    receiver.answer(500)
    make_change()
    deliver_all()
    mine.refresh_from_db()
    assert mine.failing_since is None and mine.status == "enabled"


def test_rotation_signs_with_both_secrets_for_24_hours_then_only_the_new(endpoint, receiver, make_change):
    mine, old = endpoint
    from webhooks.services import webhook_endpoint_rotate_secret

    mine, new = webhook_endpoint_rotate_secret(endpoint=mine, actor=Actor.system("t"))
    make_change()
    deliver_all()
    first = receiver.requests[-1]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    _verified(first, old)
    _verified(first, new)

    WebhookEndpoint.objects.filter(pk=mine.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    make_change()
    deliver_all()
    later = receiver.requests[-1]
    _verified(later, new)
    with pytest.raises(WebhookVerificationError):
        _verified(later, old)


def test_a_tampered_body_fails_verification(endpoint, receiver, make_change):
    _, secret = endpoint
    make_change()
    deliver_all()
    received = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(received.body.replace(b"Pat", b"Mal"), received.headers)


def test_the_delivery_log_and_redeliver_through_the_api(webhooks_api, endpoints_url, endpoint, receiver, make_change):
    mine, secret = endpoint
    receiver.answer(500)
    make_change()
    deliver_all()
    log = webhooks_api.get(f"{endpoints_url}/{mine.pk}/deliveries")
    assert log.status_code == 200, log.content
    rows = log.json()["results"]
    assert [(r["attempt"], r["status_code"], r["succeeded"]) for r in rows] == [(2, 200, True), (1, 500, False)]
    assert rows[1]["error"] == "HTTP 500" and rows[1]["next_attempt_at"] is not None
    assert rows[0]["event_type"] == "user.created" and rows[0]["event_id"] == receiver.requests[0].headers["webhook-id"]
    assert all(isinstance(r["duration_ms"], int) for r in rows)

    again = webhooks_api.post(f"{endpoints_url}/{mine.pk}/deliveries/{rows[0]['delivery_id']}/redeliver")
    assert again.status_code == 202, again.content
    deliver_all()
    assert len(receiver.requests) == 3
    assert receiver.requests[2].headers["webhook-id"] == receiver.requests[0].headers["webhook-id"]
    _verified(receiver.requests[2], secret)
    assert webhooks_api.post(f"{endpoints_url}/{mine.pk}/deliveries/999999/redeliver").status_code == 404
    assert webhooks_api.post(f"{endpoints_url}/{mine.pk}/deliveries/abc/redeliver").status_code == 404


def test_deliver_webhooks_command_runs_one_pass(endpoint, receiver, make_change, capsys):
    make_change()
    make_change()
    call_command("deliver_webhooks")
    assert "2 delivered, 0 failed" in capsys.readouterr().out
    assert receiver.types() == ["user.created", "user.created"]


def test_update_events_carry_the_changes(organization, endpoint, receiver):
    user = UserFactory(organization=organization, given_name="M")
    user_update(user=user, actor=Actor.system("t"), data={"given_name": "Max"})
    deliver_all()
    assert receiver.bodies()[-1]["data"]["changes"] == {"given_name": {"from": "M", "to": "Max"}}
