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
