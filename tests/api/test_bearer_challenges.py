"""RFC 6750 §3: the API's 401 and 403 say in WWW-Authenticate what is wrong with the token."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Bearer two parts", "Bearer caf\u00e9"])
def test_a_bad_token_is_401_invalid_token(users_url, authorization):
    response = APIClient().get(users_url, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert response.json()["code"] == "not_authenticated"


def test_an_expired_token_is_401_invalid_token(api, users_url):
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    AccessToken.objects.update(expires=timezone.now())
    assert 'error="invalid_token"' in api.get(users_url)["WWW-Authenticate"]


@pytest.mark.parametrize("what", ["revoked client", "deactivated organization"])
def test_a_token_whose_client_or_organization_is_no_longer_active_is_401_invalid_token(
    api, users_url, organization, what
):
    from audit.context import Actor
    from organizations import services
    from organizations.models import ApiClient

    assert api.get(users_url).status_code == 200
    if what == "revoked client":
        services.api_client_revoke(api_client=ApiClient.objects.get(organization=organization), actor=Actor.system("t"))
    else:
        services.organization_deactivate(organization=organization, actor=Actor.system("t"))
    response = api.get(users_url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token", error_description="')


def test_no_token_is_a_bare_challenge(users_url):
    # §3.1: a request without any authentication gets no error code.
    response = APIClient().get(users_url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_missing_scope_is_403_insufficient_scope_naming_the_scope(api_for, organization, users_url):
    reader = api_for(organization, scopes=("read:users",))
    response = reader.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@b.com"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert response["WWW-Authenticate"] == 'Bearer realm="api", error="insufficient_scope", scope="create:user"'


def test_another_organizations_url_stays_404_without_a_challenge(api_for, organization, other_organization):
    reader = api_for(organization, scopes=("read:users",))
    response = reader.post(f"/v1/organizations/{other_organization.pk}/users", {}, format="json")
    assert response.status_code == 404
    assert "WWW-Authenticate" not in response
