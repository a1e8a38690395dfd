"""SCIM's extension shows verificationStatus read-only: an identity provider can't set it."""

import pytest
from rest_framework.test import APIClient

from audit.context import Actor
from tests.verification.conftest import provider_of

pytestmark = pytest.mark.django_db(transaction=True)

EXT = "urn:ietf:params:scim:schemas:extension:au-prescriber:2.0:User"


@pytest.fixture
def scim(practice):
    from scim.services import scim_token_create

    _token, raw = scim_token_create(organization=practice, name="Entra", actor=Actor.system("tests"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_verification_status_is_shown_and_cant_be_written(hi_register, practice_api, practice_users_url, scim):
    user = practice_api.post(practice_users_url, provider_of("retired"), format="json").json()
    url = f"/scim/v2/Users/{user['id']}"
    assert scim.get(url).json()[EXT]["verificationStatus"] == "inactive"

    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": f"{EXT}:verificationStatus", "value": "verified"}],
    }
    response = scim.patch(url, patch, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["scimType"] == "mutability"
    assert scim.get(url).json()[EXT]["verificationStatus"] == "inactive"

    # A PUT carrying it (as read back) changes nothing about it.
    body = scim.get(url).json()
    body[EXT]["verificationStatus"] = "verified"
    assert scim.put(url, body, format="json").status_code == 200
    assert scim.get(url).json()[EXT]["verificationStatus"] == "inactive"
    assert practice_api.get(f"{practice_users_url}/{user['id']}").json()["can_prescribe"] is False
