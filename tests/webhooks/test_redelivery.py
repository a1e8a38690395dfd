"""Redelivery is limited and audited: one pending redelivery per delivery, a rate per API client,
and an audit event `webhook_delivery.redelivered` written with it (API and admin)."""

import pytest

from audit.models import AuditEvent
from webhooks import services
from webhooks.models import WebhookDelivery

from .conftest import USER_SCOPES, deliver_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(endpoint, receiver, make_change):
    """Three events delivered to Alice's endpoint: their deliveries, oldest first."""
    for _ in range(3):
        make_change()
    deliver_all()
    return list(WebhookDelivery.objects.order_by("id"))


def _redeliver_url(endpoints_url, delivery):
    return f"{endpoints_url}/{delivery.endpoint_id}/deliveries/{delivery.pk}/redeliver"


def test_a_second_redelivery_while_one_is_pending_is_409_and_sends_once(
    webhooks_api, endpoints_url, delivered, receiver
):
    first = webhooks_api.post(_redeliver_url(endpoints_url, delivered[0]))
    assert first.status_code == 202, first.content
    again = webhooks_api.post(_redeliver_url(endpoints_url, delivered[0]))
    assert again.status_code == 409, again.content
    assert again["Content-Type"].startswith("application/problem+json")
    assert again.json()["code"] == "webhook_redelivery_pending"
    assert str(first.json()["id"]) in again.json()["detail"]

    deliver_all()
    event_id = delivered[0].event.webhook_id
    assert [r.headers["webhook-id"] for r in receiver.requests].count(event_id) == 2  # the first, and one again

    later = webhooks_api.post(_redeliver_url(endpoints_url, delivered[0]))  # nothing pending now
    assert later.status_code == 202, later.content


def test_redelivering_an_event_still_being_retried_is_409(webhooks_api, endpoints_url, endpoint, receiver, make_change):
    receiver.answer(500)
    make_change()
    deliver_all(rounds=1)  # failed once; its retry is pending
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    response = webhooks_api.post(_redeliver_url(endpoints_url, delivery))
    assert response.status_code == 409 and response.json()["code"] == "webhook_redelivery_pending"
    assert WebhookDelivery.objects.count() == 1


def test_each_redelivery_is_audited_with_its_client(webhooks_api, endpoints_url, delivered):
    response = webhooks_api.post(_redeliver_url(endpoints_url, delivered[1]))
    assert response.status_code == 202
    webhooks_api.post(_redeliver_url(endpoints_url, delivered[1]))  # refused: no second audit event

    events = AuditEvent.objects.filter(action="webhook_delivery.redelivered")
    assert events.count() == 1
    event = events.get()
    assert event.actor_type == "api_client" and event.organization_id == delivered[1].endpoint.organization_id
    assert event.changes == {
        "webhook_endpoint_id": str(delivered[1].endpoint_id),
        "event_id": delivered[1].event.webhook_id,
        "event_type": "user.created",
        "webhook_delivery_id": {"from": delivered[1].pk, "to": response.json()["id"]},
    }
    listed = webhooks_api.get(
        f"/v1/organizations/{event.organization_id}/audit-events", {"action": "webhook_delivery.redelivered"}
    )
    assert [e["id"] for e in listed.json()["results"]] == [event.pk]


def test_the_audit_event_and_the_redelivery_commit_together(delivered, monkeypatch):
    from audit.context import Actor

    def failing(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_event_record", failing)
    with pytest.raises(RuntimeError):
        services.webhook_delivery_redeliver(delivery=delivered[0], actor=Actor.system("test"))
    assert WebhookDelivery.objects.count() == 3  # no redelivery without its audit event


def test_redeliveries_are_limited_per_api_client(settings, api_for, organization, endpoints_url, delivered):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "webhook_redelivery": "2/min"},
    }
    mine = api_for(organization, (*USER_SCOPES, "manage:webhooks"))
    assert mine.post(_redeliver_url(endpoints_url, delivered[0])).status_code == 202
    assert mine.post(_redeliver_url(endpoints_url, delivered[1])).status_code == 202
    refused = mine.post(_redeliver_url(endpoints_url, delivered[2]))
    assert refused.status_code == 429, refused.content
    assert refused.json()["code"] == "rate_limited" and int(refused["Retry-After"]) > 0
    assert mine.get(endpoints_url).status_code == 200  # only redeliveries are held back

    another = api_for(organization, ("manage:webhooks",))  # the practice's other client has its own budget
    assert another.post(_redeliver_url(endpoints_url, delivered[2])).status_code == 202
    assert WebhookDelivery.objects.count() == 6


def test_another_practice_cannot_redeliver(api_for, other_organization, endpoints_url, delivered):
    charlie = api_for(other_organization, ("manage:webhooks",))
    assert charlie.post(_redeliver_url(endpoints_url, delivered[0])).status_code == 404
    assert WebhookDelivery.objects.count() == 3


def test_the_admin_action_skips_pending_ones_and_audits_the_rest(staff_client, staff, delivered):
    selected = [delivered[0].pk, delivered[1].pk]
    response = staff_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver_action", "_selected_action": selected}, follow=True
    )
    assert "Queued 2 redelivery(ies)." in response.content.decode()
    again = staff_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver_action", "_selected_action": selected}, follow=True
    )
    assert "Queued 0 redelivery(ies); skipped 2 already pending." in again.content.decode()
    assert WebhookDelivery.objects.count() == 5
    events = AuditEvent.objects.filter(action="webhook_delivery.redelivered")
    assert events.count() == 2 and set(events.values_list("actor_type", "actor_id")) == {("staff", str(staff.pk))}
