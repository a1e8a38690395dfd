"""RFC 9457 problem details: the one error shape of everything under /v1."""

from http import HTTPStatus

import orjson
from django.http import HttpResponse

from config.request_id import get_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(status: int, *, code: str, detail: str, title: str | None = None, errors=None) -> dict:
    return {
        "type": f"https://errors.e-prescribing.example/{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": get_request_id(),
        "errors": errors or [],
    }


def problem_response(status: int, *, code: str, detail: str, errors=None, headers=None) -> HttpResponse:
    """A problem response built without DRF, for errors raised outside a view (404 route, 413, 500)."""
    response = HttpResponse(
        orjson.dumps(problem_body(status, code=code, detail=detail, errors=errors)),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_CONTENT_TYPE = "application/scim+json"


def is_scim(request) -> bool:
    return request.path.startswith("/scim/")


def scim_error_response(status: int, *, detail: str, headers=None) -> HttpResponse:
    """The SCIM error schema (RFC 7644 §3.12), for errors under /scim raised outside its views."""
    body = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(status), "detail": detail}
    response = HttpResponse(orjson.dumps(body), status=status, content_type=SCIM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
