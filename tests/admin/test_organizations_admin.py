"""Organizations and API clients in the admin."""

import base64

import pytest
from oauth2_provider.models import get_application_model

from audit.context import Actor
from organizations.models import ApiClient, Organization

pytestmark = pytest.mark.django_db

VALID_HPIO = "8003620000000005"


def test_create_organization_with_a_bad_hpio_is_a_field_error(staff_client):
    response = staff_client.post(
        "/admin/organizations/organization/add/", {"name": "Harbour", "hpio_number": "8003620000000001"}
    )
    assert response.status_code == 200
    assert "hpio_number" in response.context["adminform"].form.errors
    assert not Organization.objects.filter(name="Harbour").exists()


def test_create_and_edit_an_organization(staff_client, staff):
    response = staff_client.post(
        "/admin/organizations/organization/add/", {"name": "Harbour", "hpio_number": VALID_HPIO}
    )
    assert response.status_code == 302
    organization = Organization.objects.get(name="Harbour")
    assert response["Location"].endswith(f"/admin/organizations/organization/{organization.pk}/change/") or response[
        "Location"
    ].endswith("/admin/organizations/organization/")
    assert organization.hpio_number == VALID_HPIO

    edit = staff_client.post(
        f"/admin/organizations/organization/{organization.pk}/change/",
        {
            "name": "Harbour Medical",
            "hpio_number": VALID_HPIO,
            "is_active": "on",
            "users-TOTAL_FORMS": "0",
            "users-INITIAL_FORMS": "0",
            "api_clients-TOTAL_FORMS": "0",
            "api_clients-INITIAL_FORMS": "0",
        },
    )
    assert edit.status_code == 302, edit.context["adminform"].form.errors
    organization.refresh_from_db()
    assert organization.name == "Harbour Medical"
    assert organization.history.latest().history_user_id == staff.pk


def test_search_and_a_link_to_the_organizations_users_not_an_unbounded_inline(staff_client, organization, ben):
    listing = staff_client.get("/admin/organizations/organization/", {"q": "Alice"})
    assert organization.name in listing.text.replace("&#x27;", "'")
    page = staff_client.get(f"/admin/organizations/organization/{organization.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/accounts/user/{ben.pk}/change/" not in page.text  # no per-user rows
    assert f"/admin/accounts/user/?organization__id__exact={organization.pk}" in page.text
    assert "1 user of this organization" in page.text


def test_create_an_api_client_and_see_its_secret_once(staff_client, client, organization):
    response = staff_client.post(
        "/admin/organizations/apiclient/add/",
        {"organization": organization.pk, "name": "PMS", "scopes": ["read:users", "read:audit"]},
    )
    assert response.status_code == 200
    api_client = ApiClient.objects.get(name="PMS")
    assert api_client.organization == organization
    assert api_client.scopes == {"read:users", "read:audit"}
    secret = response.context["client_secret"]
    assert secret in response.text
    assert "no-store" in response["Cache-Control"]
    # The secret works at the token endpoint ...
    basic = base64.b64encode(f"{api_client.application.client_id}:{secret}".encode()).decode()
    token = client.post("/v1/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert token.status_code == 200, token.content
    # ... is stored hashed, and no admin page shows it again.
    assert get_application_model().objects.get(pk=api_client.application_id).client_secret != secret
    for url in (
        f"/admin/organizations/apiclient/{api_client.pk}/change/",
        "/admin/organizations/apiclient/",
        f"/admin/organizations/organization/{organization.pk}/change/",
    ):
        assert secret not in staff_client.get(url).text


def test_revoke_action(staff_client, organization):
    from organizations.services import api_client_create

    api_client, _ = api_client_create(actor=Actor.system("tests"), organization=organization, name="Old PMS", scopes=["read:users"])
    response = staff_client.post(
        "/admin/organizations/apiclient/", {"action": "revoke_action", "_selected_action": [api_client.pk]}
    )
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert api_client.is_revoked


def test_view_only_staff_cant_revoke_or_create(viewer_client, organization):
    from organizations.services import api_client_create

    api_client, _ = api_client_create(actor=Actor.system("tests"), organization=organization, name="PMS", scopes=["read:users"])
    assert viewer_client.get("/admin/organizations/apiclient/add/").status_code == 403
    listing = viewer_client.get("/admin/organizations/apiclient/")
    assert "revoke_action" not in listing.text
    viewer_client.post(
        "/admin/organizations/apiclient/", {"action": "revoke_action", "_selected_action": [api_client.pk]}
    )
    api_client.refresh_from_db()
    assert not api_client.is_revoked


def test_oauth_toolkit_pages_are_not_in_the_admin():
    """An OAuth application made there would belong to no organization; clients are made above."""
    from django.contrib import admin
    from oauth2_provider.models import get_access_token_model, get_application_model

    assert not admin.site.is_registered(get_application_model())
    assert not admin.site.is_registered(get_access_token_model())


# --- every change through organizations.services, with the staff member as the actor --------------------


def _org_form(organization, **overrides) -> dict:
    data = {
        "name": organization.name,
        "hpio_number": organization.hpio_number or "",
        "users-TOTAL_FORMS": "0",
        "users-INITIAL_FORMS": "0",
        "api_clients-TOTAL_FORMS": "0",
        "api_clients-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_creating_and_editing_in_the_admin_write_audit_events_under_the_staff_member(staff_client, staff):
    from audit.models import AuditEvent

    staff_client.post("/admin/organizations/organization/add/", {"name": "Harbour", "hpio_number": ""})
    organization = Organization.objects.get(name="Harbour")
    created = AuditEvent.objects.get(action="organization.created", organization=organization)
    assert (created.actor_type, created.actor_id) == ("staff", str(staff.pk))

    response = staff_client.post(
        f"/admin/organizations/organization/{organization.pk}/change/", _org_form(organization, name="Harbour Medical")
    )
    assert response.status_code == 302
    updated = AuditEvent.objects.get(action="organization.updated", organization=organization)
    assert (updated.actor_type, updated.actor_id) == ("staff", str(staff.pk))
    assert updated.changes == {"name": {"from": "Harbour", "to": "Harbour Medical"}}


def test_the_change_form_cannot_flip_is_active(staff_client, organization):
    from audit.models import AuditEvent

    page = staff_client.get(f"/admin/organizations/organization/{organization.pk}/change/")
    assert 'name="is_active"' not in page.text
    assert f"/admin/organizations/organization/{organization.pk}/deactivate/" in page.text
    # A hand-made POST that leaves the checkbox out (the browser's "unchecked") changes nothing.
    staff_client.post(f"/admin/organizations/organization/{organization.pk}/change/", _org_form(organization))
    organization.refresh_from_db()
    assert organization.is_active
    assert not AuditEvent.objects.filter(action="organization.deactivated").exists()


def test_deactivate_action_asks_for_confirmation_then_deactivates_through_the_service(
    staff_client, staff, organization, other_organization, ben
):
    from accounts.models import CognitoSync
    from audit.models import AuditEvent

    selected = {"action": "deactivate_action", "_selected_action": [organization.pk]}
    page = staff_client.post("/admin/organizations/organization/", selected)
    assert page.status_code == 200
    assert page.templates[0].name == "admin/organizations/organization/deactivate_confirmation.html"
    assert 'name="reason"' in page.text and 'name="confirm"' in page.text
    assert "get 401" in page.text and "sign them out" in page.text
    organization.refresh_from_db()
    assert organization.is_active  # nothing until confirmed

    done = staff_client.post(
        "/admin/organizations/organization/", {**selected, "confirm": "yes", "reason": "ticket 42"}
    )
    assert done.status_code == 302
    organization.refresh_from_db()
    other_organization.refresh_from_db()
    assert not organization.is_active and other_organization.is_active
    event = AuditEvent.objects.get(action="organization.deactivated")
    assert (event.actor_type, event.actor_id, event.user_id) == ("staff", str(staff.pk), None)
    assert event.changes["reason"] == {"from": None, "to": "ticket 42"}
    row = CognitoSync.objects.get(pk=ben.pk)
    assert row.state == CognitoSync.State.PENDING and row.desired["enabled"] is False
    ben.refresh_from_db()
    assert ben.status == "active" and ben.roles == ["rx_reader"]
    assert organization.history.latest().history_user_id == staff.pk


def test_a_too_long_reason_is_a_form_error(staff_client, organization):
    response = staff_client.post(
        f"/admin/organizations/organization/{organization.pk}/deactivate/", {"confirm": "yes", "reason": "x" * 501}
    )
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    organization.refresh_from_db()
    assert organization.is_active


def test_the_per_organization_pages_deactivate_and_activate(staff_client, organization):
    from audit.models import AuditEvent

    url = f"/admin/organizations/organization/{organization.pk}"
    assert staff_client.get(f"{url}/deactivate/").status_code == 200
    assert staff_client.post(f"{url}/deactivate/", {"confirm": "yes"}).status_code == 302
    organization.refresh_from_db()
    assert not organization.is_active
    page = staff_client.get(f"{url}/change/")
    assert "is deactivated" in page.text and f"{url}/activate/" in page.text

    confirm = staff_client.get(f"{url}/activate/")
    assert confirm.status_code == 200 and "re-enable the Cognito accounts" in confirm.text
    assert staff_client.post(f"{url}/activate/", {"confirm": "yes", "reason": "back"}).status_code == 302
    organization.refresh_from_db()
    assert organization.is_active
    assert AuditEvent.objects.get(action="organization.activated").changes["reason"] == {"from": None, "to": "back"}


def test_view_only_staff_can_neither_deactivate_nor_activate(viewer_client, organization):
    from audit.models import AuditEvent

    listing = viewer_client.get("/admin/organizations/organization/")
    assert listing.status_code == 200
    assert "deactivate_action" not in listing.text
    viewer_client.post(
        "/admin/organizations/organization/",
        {"action": "deactivate_action", "_selected_action": [organization.pk], "confirm": "yes"},
    )
    url = f"/admin/organizations/organization/{organization.pk}"
    assert viewer_client.get(f"{url}/deactivate/").status_code == 403
    assert viewer_client.post(f"{url}/deactivate/", {"confirm": "yes"}).status_code == 403
    assert viewer_client.post(f"{url}/activate/", {"confirm": "yes"}).status_code == 403
    organization.refresh_from_db()
    assert organization.is_active
    assert not AuditEvent.objects.filter(action="organization.deactivated").exists()


def test_staff_with_every_permission_but_change_organization_cannot_deactivate(client, organization, django_user_model):
    from django.contrib.auth.models import Permission

    mallory = django_user_model.objects.create_superuser(
        email="mallory@platform.example", password="correct horse battery", given_name="M", family_name="X"
    )
    mallory.is_superuser = False
    mallory.save()
    mallory.user_permissions.set(Permission.objects.exclude(codename="change_organization"))
    client.force_login(mallory)
    url = f"/admin/organizations/organization/{organization.pk}"
    assert client.post(f"{url}/deactivate/", {"confirm": "yes"}).status_code == 403
    client.post(
        "/admin/organizations/organization/",
        {"action": "deactivate_action", "_selected_action": [organization.pk], "confirm": "yes"},
    )
    organization.refresh_from_db()
    assert organization.is_active


def test_api_client_admin_create_edit_and_revoke_write_events_under_the_staff_member(staff_client, staff, organization):
    from audit.models import AuditEvent

    staff_client.post(
        "/admin/organizations/apiclient/add/",
        {"organization": organization.pk, "name": "PMS", "scopes": ["read:users", "read:audit"]},
    )
    api_client = ApiClient.objects.get(name="PMS")
    edit = staff_client.post(
        f"/admin/organizations/apiclient/{api_client.pk}/change/", {"name": "PMS v2", "scopes": ["read:users"]}
    )
    assert edit.status_code == 302, edit.context["adminform"].form.errors
    api_client.refresh_from_db()
    assert api_client.name == "PMS v2" and api_client.scopes == {"read:users"}
    staff_client.post(
        "/admin/organizations/apiclient/", {"action": "revoke_action", "_selected_action": [api_client.pk]}
    )
    events = AuditEvent.objects.filter(organization=organization, action__startswith="api_client.").order_by("id")
    assert [e.action for e in events] == ["api_client.created", "api_client.updated", "api_client.revoked"]
    assert {(e.actor_type, e.actor_id) for e in events} == {("staff", str(staff.pk))}
    assert events[1].changes["allowed_scopes"] == {"from": "read:audit read:users", "to": "read:users"}
    # Revoked: read-only from now on.
    page = staff_client.get(f"/admin/organizations/apiclient/{api_client.pk}/change/")
    assert 'name="name"' not in page.text


def test_a_malformed_or_unknown_organization_id_is_404(staff_client):
    assert staff_client.get("/admin/organizations/organization/not-a-uuid/deactivate/").status_code == 404
    unknown = "00000000-0000-4000-8000-000000000000"
    assert staff_client.post(f"/admin/organizations/organization/{unknown}/activate/", {"confirm": "y"}).status_code == 404


def test_the_admin_names_api_clients_as_the_docs_do(staff_client):
    index = staff_client.get("/admin/").content.decode()
    assert "API clients" in index
    assert "Api clients" not in index
