"""Under /scim, failures outside the views speak the SCIM error schema too (RFC 7644 §3.12): an
unknown path, an unexpected error, a database that doesn't answer."""

import pytest
from django.db import OperationalError
from django.test import Client

pytestmark = pytest.mark.django_db

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _assert_scim_error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [SCIM_ERROR] and body["status"] == str(status)
    return body


def test_an_unknown_scim_path_is_a_scim_404():
    _assert_scim_error(Client().get("/scim/Users"), 404)


@pytest.mark.parametrize(
    ("raised", "status"),
    [(RuntimeError("internal detail"), 500), (OperationalError("connection refused"), 503)],
)
def test_an_unexpected_error_is_a_scim_error_without_internals(monkeypatch, raised, status):
    def explode(request):
        raise raised

    monkeypatch.setattr("scim.views.authenticate", explode)
    response = Client(raise_request_exception=False).get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer x")
    body = _assert_scim_error(response, status)
    assert "internal detail" not in body["detail"] and "refused" not in body["detail"]
    if status == 503:
        assert response["Retry-After"]
