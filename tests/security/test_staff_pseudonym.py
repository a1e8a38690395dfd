"""A practice sees platform staff by a stable pseudonym, never their e-mail or name; staff, in the
admin, see the person. Sam (platform staff) disables and re-enables Bob, a user of Alice's practice."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from accounts import services
from audit.context import Actor
from audit.models import AuditEvent
from tests.factories import StaffFactory
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db

SAM = "sam.secret-name@platform.example"


@pytest.fixture
def sam(db):
    return StaffFactory(email=SAM, given_name="Samantha", family_name="Staffer")


@pytest.fixture
def staff_changes(settings, organization, bob, sam):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    webhook_endpoint_create(
        organization=organization, actor=Actor.system("tests"), url="https://127.0.0.1:9/hook", events=["*"]
    )
    services.user_disable(user=bob, actor=Actor.staff(sam), reason="left the practice")
    services.user_enable(user=bob, actor=Actor.staff(sam))
    return list(AuditEvent.objects.filter(user=bob, actor_type="staff").order_by("id"))


def _no_trace_of_sam(text: str, sam) -> None:
    for revealing in (SAM, "sam.secret-name", "Samantha", "Staffer", str(sam.pk)):
        assert revealing not in text


def test_the_api_shows_staff_by_one_stable_pseudonym(api, users_url, organization, bob, sam, staff_changes):
    for url in (f"/v1/organizations/{organization.pk}/audit-events", f"{users_url}/{bob.pk}/history"):
        response = api.get(url)
        assert response.status_code == 200, response.content
        _no_trace_of_sam(response.content.decode(), sam)
        actors = [event["actor"] for event in response.json()["results"] if event["actor"]["type"] == "staff"]
        assert len(actors) == 2
        assert actors[0] == actors[1]
        assert actors[0]["name"].startswith("staff-") and actors[0]["id"] == actors[0]["name"]
    # Another staff member is another pseudonym.
    olga = StaffFactory(email="olga@platform.example")
    services.user_disable(user=bob, actor=Actor.staff(olga))
    newest = api.get(f"{users_url}/{bob.pk}/history").json()["results"][0]
    assert newest["actor"]["name"].startswith("staff-") and newest["actor"]["name"] != actors[0]["name"]


def test_webhook_payloads_show_staff_by_pseudonym(bob, sam, staff_changes):
    payloads = [event.payload for event in WebhookEvent.objects.filter(audit_event__in=staff_changes)]
    assert len(payloads) == 2
    _no_trace_of_sam(json.dumps(payloads), sam)
    assert {p["data"]["actor"]["name"] for p in payloads} == {staff_changes[0].actor_for_practice()["name"]}


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_a_practices_audit_export_shows_staff_by_pseudonym(organization, sam, staff_changes, format):
    out = io.StringIO()
    call_command("export_audit", organization=str(organization.pk), format=format, stdout=out, stderr=io.StringIO())
    _no_trace_of_sam(out.getvalue(), sam)
    pseudonym = staff_changes[0].actor_for_practice()["name"]
    if format == "jsonl":
        names = [json.loads(line)["actor"]["name"] for line in out.getvalue().splitlines()]
    else:
        names = [row["actor_name"] for row in csv.DictReader(io.StringIO(out.getvalue()))]
    assert names.count(pseudonym) == 2


def test_platform_staff_see_the_person_in_the_admin(client, sam, staff_changes):
    client.force_login(sam)
    page = client.get("/admin/audit/auditevent/")
    assert SAM in page.content.decode()
    exported = client.get("/admin/audit/auditevent/export.csv")
    assert exported.status_code == 200
    assert SAM in b"".join(exported.streaming_content).decode()
