import json

import pytest

from audit.context import Actor

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
EXT = "urn:ietf:params:scim:schemas:extension:au-prescriber:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ScimClient:
    """A Django test client speaking SCIM with one bearer token."""

    def __init__(self, client, raw_token):
        self.client = client
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {raw_token}"}

    def _send(self, method, path, body=None, **headers):
        kwargs = {**self.auth, **headers}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = SCIM
        return getattr(self.client, method)(f"/scim/v2/{path}", **kwargs)

    def get(self, path, **headers):
        return self._send("get", path, **headers)

    def post(self, path, body, **headers):
        return self._send("post", path, body, **headers)

    def put(self, path, body, **headers):
        return self._send("put", path, body, **headers)

    def patch(self, path, body, **headers):
        return self._send("patch", path, body, **headers)

    def delete(self, path, **headers):
        return self._send("delete", path, **headers)


@pytest.fixture
def make_scim_token(db):
    from scim.services import scim_token_create

    def make(organization, name="Entra ID"):
        return scim_token_create(organization=organization, name=name, actor=Actor.system("test"))

    return make


@pytest.fixture
def scim_token(make_scim_token, organization):
    return make_scim_token(organization)


@pytest.fixture
def scim(client, scim_token):
    """Alice's practice's identity provider."""
    return ScimClient(client, scim_token[1])


@pytest.fixture
def charlie_scim(client, make_scim_token, other_organization):
    return ScimClient(client, make_scim_token(other_organization, name="Okta")[1])


def scim_user(user_name="ben@my-practice.com", **extra) -> dict:
    body = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ben", "familyName": "Smith"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
    }
    body.update(extra)
    return body


def patch_body(*operations) -> dict:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def assert_scim_error(response, status, scim_type=None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(SCIM), response["Content-Type"]
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert str(body["status"]) == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body
