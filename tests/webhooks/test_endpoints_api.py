"""The webhook-endpoint API: create (secret once), list, read, patch, delete, rotate; tenancy and scope."""

import pytest

from audit.models import AuditEvent
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _create(api, url, **body):
    return api.post(url, {"url": body.pop("target"), "events": body.pop("events", ["*"]), **body}, format="json")


def test_create_returns_the_secret_once_and_reads_never_show_it(webhooks_api, endpoints_url, receiver):
    response = _create(
        webhooks_api, endpoints_url, target=receiver.url, events=["user.disabled", "user.created"], description="PMS"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["user.created", "user.disabled"]
    assert created["status"] == "enabled"
    assert {"id", "url", "events", "status", "created_at", "description"} <= set(created)
    assert response["Location"].endswith(f"/webhook-endpoints/{created['id']}")

    detail = webhooks_api.get(f"{endpoints_url}/{created['id']}")
    assert detail.status_code == 200
    assert "secret" not in detail.json() and created["secret"] not in detail.content.decode()
    listed = webhooks_api.get(endpoints_url)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["results"]] == [created["id"]]
    assert created["secret"] not in listed.content.decode()
    assert listed.json()["next"] is None
    # Stored encrypted, not as given.
    assert created["secret"] not in WebhookEndpoint.objects.get().secret_encrypted

    event = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert event.actor_type == "api_client" and event.user_id is None
    assert created["secret"] not in str(event.changes)


def test_list_is_paginated_newest_first(webhooks_api, endpoints_url, receiver):
    ids = [_create(webhooks_api, endpoints_url, target=f"{receiver.url}/{n}").json()["id"] for n in range(3)]
    page = webhooks_api.get(f"{endpoints_url}?limit=2").json()
    assert [e["id"] for e in page["results"]] == ids[::-1][:2]
    rest = webhooks_api.get(page["next"]).json()
    assert [e["id"] for e in rest["results"]] == ids[:1]


def test_patch_changes_url_events_description_status_with_an_audit_event(webhooks_api, endpoints_url, receiver):
    created = _create(webhooks_api, endpoints_url, target=receiver.url).json()
    url = f"{endpoints_url}/{created['id']}"
    response = webhooks_api.patch(
        url,
        {
            "events": ["user.roles_changed"],
            "description": "roles only",
            "status": "disabled",
            "url": f"{receiver.url}/v2",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["events"] == ["user.roles_changed"] and body["status"] == "disabled"
    assert body["description"] == "roles only" and body["url"].endswith("/v2")
    assert "secret" not in body
    event = AuditEvent.objects.get(action="webhook_endpoint.updated")
    assert set(event.changes) >= {"events", "status", "description", "url"}


def test_bad_input_is_400_naming_the_field(webhooks_api, endpoints_url, receiver):
    for body, field in [
        ({"url": receiver.url, "events": ["user.exploded"]}, "events"),
        ({"url": receiver.url, "events": []}, "events"),
        ({"url": receiver.url, "events": ["*", "user.created"]}, "events"),
        ({"url": receiver.url}, "events"),
        ({"events": ["*"]}, "url"),
        ({"url": receiver.url, "events": ["*"], "secret": "whsec_mine"}, "secret"),
        ({"url": 42, "events": ["*"]}, "url"),
    ]:
        response = webhooks_api.post(endpoints_url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response["Content-Type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (body, response.json())
    assert not WebhookEndpoint.objects.exists()
    created = _create(webhooks_api, endpoints_url, target=receiver.url).json()
    response = webhooks_api.patch(f"{endpoints_url}/{created['id']}", {"status": "paused"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "status"


def test_delete_is_204_and_audited(webhooks_api, endpoints_url, receiver):
    created = _create(webhooks_api, endpoints_url, target=receiver.url).json()
    response = webhooks_api.delete(f"{endpoints_url}/{created['id']}")
    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert webhooks_api.get(f"{endpoints_url}/{created['id']}").status_code == 404
    assert AuditEvent.objects.filter(action="webhook_endpoint.deleted").count() == 1


def test_rotate_secret_returns_a_new_secret(webhooks_api, endpoints_url, receiver):
    created = _create(webhooks_api, endpoints_url, target=receiver.url).json()
    response = webhooks_api.post(f"{endpoints_url}/{created['id']}/rotate-secret")
    assert response.status_code == 200, response.content
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"]
    assert AuditEvent.objects.filter(action="webhook_endpoint.secret_rotated").count() == 1


def test_another_organizations_endpoint_is_404_whatever_the_scope(
    api_for, organization, other_organization, make_endpoint, receiver
):
    theirs, _ = make_endpoint(receiver.url, org=other_organization)
    base = f"/v1/organizations/{other_organization.pk}/webhook-endpoints"
    for scopes in [("manage:webhooks",), ("read:users",)]:
        alice = api_for(organization, scopes)
        for method, url in [
            ("get", base),
            ("post", base),
            ("get", f"{base}/{theirs.pk}"),
            ("patch", f"{base}/{theirs.pk}"),
            ("delete", f"{base}/{theirs.pk}"),
            ("post", f"{base}/{theirs.pk}/rotate-secret"),
            ("get", f"{base}/{theirs.pk}/deliveries"),
            ("post", f"{base}/{theirs.pk}/deliveries/1/redeliver"),
        ]:
            response = getattr(alice, method)(url, {}, format="json")
            assert response.status_code == 404, (scopes, method, url, response.status_code)
    # Their endpoint under Alice's own organization's URL is 404 too.
    alice = api_for(organization, ("manage:webhooks",))
    own = f"/v1/organizations/{organization.pk}/webhook-endpoints/{theirs.pk}"
    assert alice.get(own).status_code == 404
    assert alice.delete(own).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


def test_missing_scope_is_403(api_for, organization, endpoints_url, make_endpoint, receiver):
    mine, _ = make_endpoint(receiver.url)
    reader = api_for(organization, ("read:users", "update:user", "read:audit"))
    for method, url in [
        ("get", endpoints_url),
        ("post", endpoints_url),
        ("get", f"{endpoints_url}/{mine.pk}"),
        ("patch", f"{endpoints_url}/{mine.pk}"),
        ("delete", f"{endpoints_url}/{mine.pk}"),
        ("post", f"{endpoints_url}/{mine.pk}/rotate-secret"),
        ("get", f"{endpoints_url}/{mine.pk}/deliveries"),
    ]:
        response = getattr(reader, method)(url, {}, format="json")
        assert response.status_code == 403, (method, url, response.content)
        assert response.json()["code"] == "insufficient_scope"


def test_create_api_client_accepts_the_new_scope(organization):
    from audit.context import Actor
    from organizations.services import api_client_create

    api_client, _ = api_client_create(
        actor=Actor.system("test"), organization=organization, name="PMS", scopes=["manage:webhooks"]
    )
    assert api_client.scopes == {"manage:webhooks"}


def test_audit_events_record_the_url_without_its_query_secret(webhooks_api, endpoints_url, organization, receiver):
    """read:audit clients read audit events; only manage:webhooks holders see the endpoint's full URL."""
    first, second = f"{receiver.url}?token=first-s3cret#frag", f"{receiver.url}?token=second-s3cret"
    created = _create(webhooks_api, endpoints_url, target=first)
    assert created.status_code == 201, created.content
    url = f"{endpoints_url}/{created.json()['id']}"
    assert webhooks_api.patch(url, {"url": second}, format="json").status_code == 200
    assert webhooks_api.get(url).json()["url"] == second  # the endpoint keeps its full URL
    assert webhooks_api.delete(url).status_code == 204

    events = AuditEvent.objects.filter(action__startswith="webhook_endpoint.").order_by("id")
    assert [e.action for e in events] == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
    ]
    assert events[0].changes["url"] == {"from": None, "to": f"{receiver.url}?…#…"}
    # A new query string alone is still recorded as a change of the URL.
    assert events[1].changes["url"] == {"from": f"{receiver.url}?…#…", "to": f"{receiver.url}?…"}
    assert events[2].changes["url"] == {"from": f"{receiver.url}?…", "to": None}
    listed = webhooks_api.get(f"/v1/organizations/{organization.pk}/audit-events")
    assert listed.status_code == 200
    text = listed.content.decode()
    assert receiver.url in text
    assert "s3cret" not in text and "frag" not in text


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("https://hooks.example/x?token=abc", "https://hooks.example/x?…"),
        ("https://user:pass@hooks.example:8443/x#k", "https://hooks.example:8443/x#…"),
        ("https://[2001:db8::1]/in", "https://[2001:db8::1]/in"),
        ("https://hooks.example/in", "https://hooks.example/in"),
    ],
)
def test_redacted(url, recorded):
    from webhooks.targets import redacted

    assert redacted(url) == recorded
