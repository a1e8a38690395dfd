"""organizations.services: every change of an organization or an API client writes its audit event, with the
acting staff member or command, and the organization's audit trail in the API lists it (user_id null)."""

import pytest
from django.core.exceptions import ValidationError

from audit.context import Actor
from audit.models import AuditEvent, staff_pseudonym
from core.errors import ApplicationError
from organizations import services as organization_services
from organizations.models import ApiClient, Organization

pytestmark = pytest.mark.django_db

VALID_HPIO = "8003620000000005"
OTHER_HPIO = "8003624900000008"


def _event(action, organization) -> AuditEvent:
    return AuditEvent.objects.filter(action=action, organization_id=organization.pk).get()


def _listed(api_for, organization, action) -> list[dict]:
    """The organization's events of that kind, as GET /v1/organizations/{org}/audit-events lists them."""
    response = api_for(organization, scopes=("read:audit",)).get(
        f"/v1/organizations/{organization.pk}/audit-events", {"action": action}
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_organization_create_writes_organization_created(staff, api_for):
    organization = organization_services.organization_create(actor=Actor.staff(staff), name="Harbour Medical", hpio_number=VALID_HPIO)
    event = _event("organization.created", organization)
    assert (event.actor_type, event.actor_id, event.actor_name) == ("staff", str(staff.pk), staff.email)
    assert event.user_id is None
    assert event.changes == {
        "name": {"from": None, "to": "Harbour Medical"},
        "hpio_number": {"from": None, "to": VALID_HPIO},
        "is_active": {"from": None, "to": True},
    }
    [listed] = _listed(api_for, organization, "organization.created")
    assert listed["user_id"] is None
    # The practice sees platform staff by pseudonym.
    assert listed["actor"] == {"type": "staff", "id": staff_pseudonym(str(staff.pk)), "name": staff_pseudonym(str(staff.pk))}
    assert listed["changes"]["name"] == {"from": None, "to": "Harbour Medical"}
    assert organization.history.latest().history_user_id == staff.pk


def test_organization_create_validates_and_writes_nothing_when_invalid():
    with pytest.raises(ValidationError) as error:
        organization_services.organization_create(actor=Actor.system("t"), name="Harbour", hpio_number="8003620000000001")
    assert "hpio_number" in error.value.message_dict
    assert not Organization.objects.exists()
    assert not AuditEvent.objects.exists()


def test_organization_update_writes_the_changed_fields_only(organization, api_for):
    actor = Actor.system("ops")
    organization_services.organization_update(organization=organization, actor=actor, name="Alice's Medical", hpio_number=VALID_HPIO)
    event = _event("organization.updated", organization)
    assert event.actor_name == "ops" and event.user_id is None
    assert event.changes == {
        "name": {"from": "Alice's Practice", "to": "Alice's Medical"},
        "hpio_number": {"from": None, "to": VALID_HPIO},
    }
    # Nothing changed: no second event.
    organization_services.organization_update(organization=organization, actor=actor, name="Alice's Medical")
    assert AuditEvent.objects.filter(action="organization.updated").count() == 1
    [listed] = _listed(api_for, organization, "organization.updated")
    assert listed["changes"]["name"]["to"] == "Alice's Medical"


def test_organization_update_refuses_another_organizations_hpio(organization, other_organization):
    organization_services.organization_update(organization=other_organization, actor=Actor.system("t"), hpio_number=OTHER_HPIO)
    with pytest.raises(ValidationError) as error:
        organization_services.organization_update(organization=organization, actor=Actor.system("t"), hpio_number=OTHER_HPIO)
    assert "hpio_number" in error.value.message_dict
    organization.refresh_from_db()
    assert organization.hpio_number is None
    assert not AuditEvent.objects.filter(action="organization.updated", organization=organization).exists()


def test_deactivate_and_activate_write_their_events_once(organization, staff, api_for):
    organization_services.organization_deactivate(organization=organization, actor=Actor.staff(staff), reason="left the platform")
    organization_services.organization_deactivate(organization=organization, actor=Actor.staff(staff))  # idempotent
    event = _event("organization.deactivated", organization)
    assert event.actor_type == "staff" and event.actor_id == str(staff.pk) and event.user_id is None
    assert event.changes == {
        "is_active": {"from": True, "to": False},
        "reason": {"from": None, "to": "left the platform"},
    }
    organization_services.organization_activate(organization=organization, actor=Actor.system("activate_organization"))
    organization_services.organization_activate(organization=organization, actor=Actor.system("activate_organization"))
    event = _event("organization.activated", organization)
    assert event.actor_name == "activate_organization"
    assert event.changes == {"is_active": {"from": False, "to": True}}
    # Active again, so its clients may read its trail: both events are there, newest first.
    assert [e["action"] for e in _listed(api_for, organization, "organization.deactivated")] == [
        "organization.deactivated"
    ]
    [activated] = _listed(api_for, organization, "organization.activated")
    assert activated["user_id"] is None


def test_a_reason_over_500_characters_is_refused_and_changes_nothing(organization):
    with pytest.raises(ValidationError) as error:
        organization_services.organization_deactivate(organization=organization, actor=Actor.system("t"), reason="x" * 501)
    assert list(error.value.message_dict) == ["reason"]
    organization.refresh_from_db()
    assert organization.is_active
    assert not AuditEvent.objects.filter(action="organization.deactivated").exists()


def test_api_client_create_update_revoke_write_their_events(organization, staff, api_for):
    actor = Actor.staff(staff)
    api_client, _ = organization_services.api_client_create(
        organization=organization, actor=actor, name="PMS", scopes=["read:users", "read:users", "read:audit"]
    )
    client_id = api_client.application.client_id
    created = _event("api_client.created", organization)
    assert (created.actor_type, created.actor_id, created.user_id) == ("staff", str(staff.pk), None)
    assert created.changes == {
        "client_id": {"from": None, "to": client_id},
        "name": {"from": None, "to": "PMS"},
        "allowed_scopes": {"from": None, "to": "read:audit read:users"},
    }
    assert "secret" not in str(created.changes).lower()

    organization_services.api_client_update(api_client=api_client, actor=actor, name="PMS v2", scopes=["read:users"])
    updated = _event("api_client.updated", organization)
    assert updated.changes == {
        "client_id": {"from": client_id, "to": client_id},
        "name": {"from": "PMS", "to": "PMS v2"},
        "allowed_scopes": {"from": "read:audit read:users", "to": "read:users"},
    }
    api_client.refresh_from_db()
    assert api_client.name == api_client.application.name == "PMS v2"
    assert api_client.scopes == {"read:users"}
    # The same values again: no event.
    organization_services.api_client_update(api_client=api_client, actor=actor, name="PMS v2", scopes=["read:users"])
    assert AuditEvent.objects.filter(action="api_client.updated").count() == 1

    organization_services.api_client_revoke(api_client=api_client, actor=actor)
    organization_services.api_client_revoke(api_client=api_client, actor=actor)  # idempotent
    revoked = _event("api_client.revoked", organization)
    assert revoked.changes["client_id"] == {"from": client_id, "to": client_id}
    assert revoked.changes["revoked_at"]["from"] is None and revoked.changes["revoked_at"]["to"]
    assert api_client.history.latest().history_user_id == staff.pk

    listed = {e["action"]: e for e in _listed(api_for, organization, "api_client.created")}
    assert listed["api_client.created"]["user_id"] is None
    assert [e["action"] for e in _listed(api_for, organization, "api_client.revoked")] == ["api_client.revoked"]


def test_api_client_update_refuses_unknown_scopes_and_a_revoked_client(organization):
    actor = Actor.system("t")
    api_client, _ = organization_services.api_client_create(organization=organization, actor=actor, name="PMS", scopes=["read:users"])
    for scopes in ([], ["read:users", "write:everything"]):
        with pytest.raises(ApplicationError) as error:
            organization_services.api_client_update(api_client=api_client, actor=actor, scopes=scopes)
        assert error.value.code == "invalid_scope" and error.value.field == "scopes"
    organization_services.api_client_revoke(api_client=api_client, actor=actor)
    with pytest.raises(ApplicationError) as error:
        organization_services.api_client_update(api_client=api_client, actor=actor, name="Reborn")
    assert error.value.code == "api_client_revoked"
    assert ApiClient.objects.get().name == "PMS"
    assert not AuditEvent.objects.filter(action="api_client.updated").exists()


def test_narrowed_scopes_apply_to_a_live_token_at_once(organization, issue_token):
    from rest_framework.test import APIClient

    token = issue_token(organization, scopes=("read:users", "read:audit"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    audit_url = f"/v1/organizations/{organization.pk}/audit-events"
    assert client.get(audit_url).status_code == 200
    api_client = ApiClient.objects.get(name="Practice software")
    organization_services.api_client_update(api_client=api_client, actor=Actor.system("t"), scopes=["read:users"])
    assert client.get(audit_url).status_code == 403
    assert client.get(f"/v1/organizations/{organization.pk}/users").status_code == 200


def test_an_api_client_event_is_not_visible_to_another_organization(organization, other_organization, api_for):
    organization_services.api_client_create(organization=organization, actor=Actor.system("t"), name="Alice's PMS", scopes=["read:users"])
    charlies = _listed(api_for, other_organization, "api_client.created")
    assert all("Alice" not in str(event["changes"]) for event in charlies)
