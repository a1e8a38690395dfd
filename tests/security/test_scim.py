"""A rogue identity provider holding a SCIM token."""

from tests.scim.conftest import assert_scim_error


def test_an_oversize_body_is_a_scim_error(client, organization):
    from audit.context import Actor
    from scim.services import scim_token_create

    _token, raw = scim_token_create(organization=organization, name="Entra ID", actor=Actor.system("test"))
    response = client.post(
        "/scim/v2/Users",
        data="{" + " " * (2 * 1024 * 1024) + "}",
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert_scim_error(response, 413)


def test_a_user_provisioned_inactive_is_created_disabled(client, organization):
    """Identity providers create users with `active: false` (pre-provisioned, not yet starting):
    the service must not hand out a working account the identity provider withheld."""
    from accounts.models import User
    from audit.context import Actor
    from scim.services import scim_token_create
    from tests.scim.conftest import ScimClient, scim_user

    _token, raw = scim_token_create(organization=organization, name="Entra ID", actor=Actor.system("test"))
    scim = ScimClient(client, raw)
    response = scim.post("Users", scim_user(active=False))
    assert response.status_code == 201, response.content
    assert response.json()["active"] is False
    assert User.objects.get(pk=response.json()["id"]).is_disabled
