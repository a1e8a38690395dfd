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
