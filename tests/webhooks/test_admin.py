"""Staff manage endpoints in the admin through the same services: secret shown once, audit events,
the delivery log, rotation and redelivery."""

import re

import pytest
from standardwebhooks import Webhook

from audit.models import AuditEvent
from webhooks.models import WebhookDelivery, WebhookEndpoint

from .conftest import deliver_all

pytestmark = pytest.mark.django_db


def _secret(response) -> str:
    match = re.search(r'id="webhook-secret">(whsec_[^<]+)<', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def test_staff_create_an_endpoint_and_see_the_secret_once(staff_client, staff, organization, receiver, make_change):
    response = staff_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"organization": organization.pk, "url": receiver.url, "events": ["user.created"], "description": "PMS"},
    )
    assert response.status_code == 200, response.content.decode()[:3000]
    secret = _secret(response)
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["user.created"] and endpoint.organization == organization
    event = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert event.actor_type == "staff" and event.actor_id == str(staff.pk)
    page = staff_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and secret not in page.content.decode()

    make_change()
    deliver_all()
    Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    page = staff_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert receiver.requests[0].headers["webhook-id"] in page.content.decode()  # the delivery log


def test_the_admin_refuses_a_private_target(staff_client, organization, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = staff_client.post(
        "/admin/webhooks/webhookendpoint/add/",
        {"organization": organization.pk, "url": "https://169.254.169.254/", "events": ["*"]},
    )
    assert response.status_code == 200
    assert "public internet addresses" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_staff_edit_disable_rotate_and_delete_through_the_services(staff_client, endpoint, receiver):
    mine, old = endpoint
    change_url = f"/admin/webhooks/webhookendpoint/{mine.pk}/change/"
    response = staff_client.post(
        change_url,
        {"url": receiver.url, "events": ["user.disabled"], "description": "", "status": "disabled", **_empty_inline()},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    mine.refresh_from_db()
    assert mine.status == "disabled" and mine.events == ["user.disabled"]
    assert AuditEvent.objects.filter(action="webhook_endpoint.updated", actor_type="staff").count() == 1

    rotate_url = f"/admin/webhooks/webhookendpoint/{mine.pk}/rotate-secret/"
    confirmation = staff_client.get(rotate_url)
    assert confirmation.status_code == 200
    # The admin's one page base for actions (admin/object_page.html): breadcrumbs down to the endpoint.
    breadcrumbs = confirmation.content.decode().split('<div class="breadcrumbs">')[1].split("</div>")[0]
    assert f'href="/admin/webhooks/webhookendpoint/{mine.pk}/change/"' in breadcrumbs
    new = _secret(staff_client.post(rotate_url))
    assert new != old
    assert AuditEvent.objects.filter(action="webhook_endpoint.secret_rotated", actor_type="staff").count() == 1

    response = staff_client.post(f"/admin/webhooks/webhookendpoint/{mine.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook_endpoint.deleted", actor_type="staff").count() == 1


def test_the_redeliver_action_sends_the_event_again(staff_client, endpoint, receiver, make_change):
    make_change()
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    response = staff_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver_action", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    deliver_all()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.event.webhook_id] * 2


def test_view_only_staff_can_neither_redeliver_nor_rotate(client, django_user_model, endpoint, make_change):
    from django.contrib.auth.models import Permission

    vera = django_user_model.objects.create_superuser(
        email="vera@platform.example", password="correct horse battery", given_name="Vera", family_name="Viewer"
    )
    vera.is_superuser = False
    vera.save()
    vera.user_permissions.set(Permission.objects.filter(codename__in=["view_webhookendpoint", "view_webhookdelivery"]))
    client.force_login(vera)
    make_change()
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    client.post("/admin/webhooks/webhookdelivery/", {"action": "redeliver_action", "_selected_action": [delivery.pk]})
    assert WebhookDelivery.objects.count() == 1
    mine, _ = endpoint
    assert client.post(f"/admin/webhooks/webhookendpoint/{mine.pk}/rotate-secret/").status_code == 403
    page = client.get(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/")
    assert page.status_code == 200 and "whsec_" not in page.content.decode()


def _empty_inline() -> dict:
    prefix = "attempts"
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "0",
    }


CREDENTIAL = "s3cr3t-receiver-credential"


@pytest.fixture
def vera_client(client, django_user_model):
    """Staff who may only view endpoints and deliveries."""
    from django.contrib.auth.models import Permission

    vera = django_user_model.objects.create_superuser(
        email="vera@platform.example", password="correct horse battery", given_name="Vera", family_name="Viewer"
    )
    vera.is_superuser = False
    vera.save()
    vera.user_permissions.set(Permission.objects.filter(codename__in=["view_webhookendpoint", "view_webhookdelivery"]))
    client.force_login(vera)
    return client


def test_view_only_staff_see_the_url_without_its_query_credential(vera_client, make_endpoint, receiver, make_change):
    endpoint, _ = make_endpoint(f"{receiver.url}?token={CREDENTIAL}")
    make_change()
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    pages = [
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        "/admin/webhooks/webhookdelivery/",
        f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
    ]
    for url in pages:
        page = vera_client.get(url)
        assert page.status_code == 200, url
        text = page.content.decode()
        assert CREDENTIAL not in text, url
    assert "?…" in vera_client.get(pages[1]).content.decode()
    # The URL can't be searched a letter at a time either.
    found = vera_client.get("/admin/webhooks/webhookendpoint/", {"q": CREDENTIAL[:6]}).content.decode()
    assert f"/{endpoint.pk}/change/" not in found


def test_staff_who_may_change_the_endpoint_see_the_whole_url(staff_client, make_endpoint, receiver):
    endpoint, _ = make_endpoint(f"{receiver.url}?token={CREDENTIAL}")
    assert CREDENTIAL in staff_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    found = staff_client.get("/admin/webhooks/webhookendpoint/", {"q": CREDENTIAL[:6]}).content.decode()
    assert f"/{endpoint.pk}/change/" in found
