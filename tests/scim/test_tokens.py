"""SCIM bearer tokens: made by the command (printed once, stored hashed), revoked in the admin, and
the only way in."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from audit.context import Actor
from audit.models import AuditEvent
from scim.models import ScimToken
from scim.services import scim_token_revoke
from tests.scim.conftest import ScimClient, assert_scim_error

ENDPOINTS = ["ServiceProviderConfig", "Schemas", "ResourceTypes", "Users", "Groups", "Users/x", "Groups/admin"]


def test_command_prints_the_token_once_and_stores_only_its_hash(organization):
    out = io.StringIO()
    call_command("create_scim_token", "--organization", str(organization.pk), "--name", "Entra ID", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("scim_") and len(raw) > 40
    token = ScimToken.objects.get()
    assert (token.organization, token.name) == (organization, "Entra ID")
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.token_hash, token.prefix}
    assert not any(raw in str(getattr(token, field.attname)) for field in ScimToken._meta.concrete_fields)
    event = AuditEvent.objects.get(action="scim_token.created")
    assert (event.organization_id, event.actor_type, event.actor_name) == (
        organization.pk,
        "system",
        "create_scim_token",
    )
    assert raw not in str(event.changes)


@pytest.mark.parametrize("organization_id", ["6f1b7cbe-8f4e-4a8e-9d53-7d2bcb0f9a11", "not-a-uuid"])
def test_command_refuses_an_unknown_organization(db, organization_id):
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_scim_token", "--organization", organization_id)


def test_the_token_works(scim):
    assert scim.get("ServiceProviderConfig").status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 500])
def test_without_a_valid_token_every_endpoint_is_401(client, db, endpoint, header):
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(f"/scim/v2/{endpoint}", **kwargs)
    assert_scim_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_is_401(client, scim_token):
    token, raw = scim_token
    scim = ScimClient(client, raw)
    assert scim.get("Users").status_code == 200
    scim_token_revoke(token=token, actor=Actor.system("test"))
    assert_scim_error(scim.get("Users"), 401)
    assert AuditEvent.objects.filter(action="scim_token.revoked", organization=token.organization).count() == 1
    scim_token_revoke(token=token, actor=Actor.system("test"))  # idempotent
    assert AuditEvent.objects.filter(action="scim_token.revoked").count() == 1


def test_an_inactive_organizations_token_is_401(scim, organization):
    organization.is_active = False
    organization.save()
    assert_scim_error(scim.get("Users"), 401)


def test_last_use_is_recorded(scim, scim_token):
    assert ScimToken.objects.get(pk=scim_token[0].pk).last_used_at is None
    scim.get("Users")
    assert ScimToken.objects.get(pk=scim_token[0].pk).last_used_at is not None


def test_posts_need_no_csrf_token(scim_token):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = ScimClient(client, scim_token[1]).post(
        "Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ben@my-practice.com",
            "name": {"givenName": "Ben", "familyName": "Smith"},
        },
    )
    assert response.status_code == 201, response.content


def test_unknown_scim_paths_are_scim_404s(scim):
    assert_scim_error(scim.get("Bulk"), 404)
    assert_scim_error(scim.get("Users/x/y"), 404)


def test_admin_lists_tokens_with_last_use_and_revokes_them(client, django_user_model, scim, scim_token):
    staff = django_user_model.objects.create_superuser(
        email="sam@platform.example", password="correct horse battery", given_name="Sam", family_name="Staff"
    )
    client.force_login(staff)
    scim.get("Users")
    listing = client.get("/admin/scim/scimtoken/")
    assert listing.status_code == 200
    assert b"Entra ID" in listing.content and scim_token[0].prefix.encode() in listing.content
    assert scim_token[1].encode() not in listing.content
    assert client.get("/admin/scim/scimtoken/add/").status_code == 403
    response = client.post(
        "/admin/scim/scimtoken/", {"action": "revoke_action", "_selected_action": [str(scim_token[0].pk)]}
    )
    assert response.status_code == 302
    assert ScimToken.objects.get(pk=scim_token[0].pk).revoked_at is not None
    event = AuditEvent.objects.get(action="scim_token.revoked")
    assert (event.actor_type, event.actor_name) == ("staff", "sam@platform.example")
    client.logout()
    assert_scim_error(scim.get("Users"), 401)


def test_staff_without_change_permission_cannot_revoke(client, django_user_model, scim_token):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_superuser(
        email="vera@platform.example", password="correct horse battery", given_name="Vera", family_name="Viewer"
    )
    viewer.is_superuser = False
    viewer.save()
    viewer.user_permissions.set(Permission.objects.filter(codename="view_scimtoken"))
    client.force_login(viewer)
    assert client.get("/admin/scim/scimtoken/").status_code == 200
    client.post("/admin/scim/scimtoken/", {"action": "revoke_action", "_selected_action": [str(scim_token[0].pk)]})
    assert ScimToken.objects.get(pk=scim_token[0].pk).revoked_at is None
