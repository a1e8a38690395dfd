"""Real responses, successes and errors, of every operation validate against the served schema.

An independent validator (openapi-core) reads GET /v1/schema and checks each response the service
actually gave: status listed, body and content type as documented. A client generated from the schema
must be able to parse whatever the service answers.
"""

import json

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from rest_framework.test import APIClient

from tests.api.support import HPII_A, provider_body, user_body

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi():
    document = json.loads(APIClient().get("/v1/schema?format=json").content)
    # Problem bodies are JSON under their own media type (RFC 9457).
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(document, config=config)


def check(openapi, response, *, as_method=None):
    """Validate one response against the operation its request matched (or, for a 405, another
    operation of the same path, where the 405 is documented); return the response."""
    wsgi = response.wsgi_request
    request = MockRequest(
        "http://testserver", as_method or wsgi.method.lower(), wsgi.path, args=dict(wsgi.GET.items()),
        content_type="application/json",
    )
    content_type = response.get("Content-Type", "").split(";")[0]
    openapi.validate_response(
        request,
        MockResponse(response.content, status_code=response.status_code, headers=dict(response.headers),
                     content_type=content_type),
    )
    return response


def test_every_operation_answers_as_documented(openapi, api, users_url, organization, other_organization):
    org_url = f"/v1/organizations/{organization.pk}"
    seen = set()

    def call(method, url, body=None, status=None, **headers):
        kwargs = {"format": "json"} if body is not None else {}
        response = getattr(api, method)(url, body, **kwargs, **headers) if body is not None else getattr(
            api, method
        )(url, **headers)
        if status is not None:
            assert response.status_code == status, response.content
        seen.add(response.status_code)
        return check(openapi, response)

    call("get", org_url, status=200)
    member = call("post", users_url, user_body(), status=201).json()
    provider = call("post", users_url, provider_body(), status=201).json()
    assert provider["provider_details"] is not None and member["provider_details"] is None
    call("post", users_url, user_body(), status=409)  # the same e-mail again
    call("post", users_url, user_body(email="x@example.org", phone="12"), status=400)
    call("post", users_url, user_body(email="k@example.org"), status=201, HTTP_IDEMPOTENCY_KEY="key-1")
    call("get", users_url, status=200)
    call("get", f"{users_url}?limit=0", status=400)
    call("get", f"{users_url}?role=provider&limit=1", status=200)
    user_url = f"{users_url}/{member['id']}"
    call("get", user_url, status=200)
    call("get", f"{users_url}/{provider['id']}", status=200)
    call("patch", user_url, {"title": "Dr"}, status=200)
    call("put", user_url, {"provider_details": {"hpii_number": HPII_A}}, status=200)
    call("patch", user_url, {"access_roles": ["admin"]}, status=400)
    call("put", f"{user_url}/roles", {"access_roles": ["provider"]}, status=200)
    call("put", f"{user_url}/roles", {"access_roles": ["owner"]}, status=400)
    call("get", f"{user_url}/history", status=200)
    call("get", f"{org_url}/audit-events", status=200)
    call("get", f"{org_url}/audit-events?since=yesterday", status=400)
    call("put", f"{user_url}/disable", status=200)
    call("patch", user_url, {"title": "Prof"}, status=409)
    call("get", f"/v1/organizations/{other_organization.pk}/users", status=404)
    call("get", f"{users_url}/{other_organization.pk}", status=404)

    assert {200, 201, 400, 404, 409} <= seen


def test_errors_from_the_framework_validate_too(openapi, api, api_for, organization, users_url):
    no_scope = api_for(organization, scopes=("read:audit",))
    check(openapi, APIClient().get(users_url))  # 401
    check(openapi, no_scope.get(users_url))  # 403
    check(openapi, api.post(users_url, "not json", content_type="application/json"))  # 400
    check(openapi, api.post(users_url, "a=b", content_type="application/x-www-form-urlencoded"))  # 415
    check(openapi, api.delete(users_url), as_method="get")  # 405
    check(openapi, api.get(users_url, HTTP_ACCEPT="application/xml"))  # 406
    check(openapi, api.put(f"{users_url}/{organization.pk}/disable", "x" * (1024 * 1024 + 1),
                           content_type="application/json"))  # 413 on an operation without a body
