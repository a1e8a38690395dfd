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


def test_search_and_users_inline_with_links(staff_client, organization, ben):
    listing = staff_client.get("/admin/organizations/organization/", {"q": "Alice"})
    assert organization.name in listing.text.replace("&#x27;", "'")
    page = staff_client.get(f"/admin/organizations/organization/{organization.pk}/change/")
    assert page.status_code == 200
    assert f"/admin/accounts/user/{ben.pk}/change/" in page.text
    assert 'name="users-0-email"' not in page.text  # a summary, not a form


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
    from accounts.tenancy import api_client_create

    api_client, _ = api_client_create(actor=Actor.system("tests"), organization=organization, name="Old PMS", scopes=["read:users"])
    response = staff_client.post(
        "/admin/organizations/apiclient/", {"action": "revoke_action", "_selected_action": [api_client.pk]}
    )
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert api_client.is_revoked


def test_view_only_staff_cant_revoke_or_create(viewer_client, organization):
    from accounts.tenancy import api_client_create

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
