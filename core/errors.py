"""Every error shape, once: the business-rule error services raise, RFC 9457 problem details (the one
error shape under /v1), the SCIM error schema under /scim, the database outage (503 with
Retry-After), and the DRF exception handler that maps every failure in a view to a problem."""

import logging
import traceback
from http import HTTPStatus

import orjson
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.request_id import get_request_id


class ApplicationError(Exception):
    """A business rule said no. Carries the contract's machine-readable code and an HTTP status."""

    def __init__(self, message: str, *, code: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field


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


DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
_DETAIL = "The service can't reach its database right now. Retry shortly."


def is_database_unavailable(exc) -> bool:
    return isinstance(exc, DATABASE_ERRORS)


def database_unavailable_body() -> dict:
    return problem_body(503, code="database_unavailable", detail=_DETAIL)


def database_unavailable_response():
    """For errors raised outside a DRF view (the token endpoint, middleware)."""
    return problem_response(
        503, code="database_unavailable", detail=_DETAIL, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "insufficient_scope",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def flatten_errors(detail, prefix: str = "") -> list[dict]:
    """DRF's nested error dicts and lists become one entry per problem with a dotted field path."""
    entries = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            path = f"{prefix}.{field}" if prefix and field else (prefix or field)
            entries.extend(flatten_errors(value, path))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                entries.extend(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
            else:
                entries.extend(flatten_errors(value, prefix))
    else:
        code = getattr(detail, "code", None) or "invalid"
        entries.append({"field": prefix or None, "message": str(detail), "code": code})
    return entries


def django_validation_errors(error: DjangoValidationError) -> list[dict]:
    if hasattr(error, "error_dict"):
        return [
            {"field": None if field == "__all__" else field, "message": message, "code": e.code or "invalid"}
            for field, errors in error.error_dict.items()
            for e in errors
            for message in e.messages
        ]
    return [{"field": None, "message": m, "code": e.code or "invalid"} for e in error.error_list for m in e.messages]


def _response(body: dict, headers=None) -> Response:
    response = Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)
    return response


def validation_summary(errors: list[dict], *, shown: int = 5) -> str:
    """One readable sentence for `detail`: "email: Enter a valid email address; sex: Must be one of M, F."
    (each message's own full stop dropped, so the joins don't read ".;")."""
    parts = [(f"{e['field']}: " if e["field"] else "") + e["message"].rstrip(". ") for e in errors[:shown]]
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more + "."


# A body of 75,000 unknown keys would otherwise be answered with every one of them listed (5 MB).
MAX_LISTED_ERRORS = 20


def validation_problem(errors: list[dict]) -> Response:
    detail = validation_summary(errors)
    if len(errors) > MAX_LISTED_ERRORS:
        detail += f" {len(errors)} errors in all; `errors` lists the first {MAX_LISTED_ERRORS}."
    return _response(
        problem_body(
            400, code="validation_error", title="Invalid request", detail=detail, errors=errors[:MAX_LISTED_ERRORS]
        )
    )


def _challenge(exc) -> str:
    """The WWW-Authenticate value: the authenticator's challenge, with the RFC 6750 §3.1 error
    code (and its description) an exception names in `bearer_error`."""
    challenge = exc.auth_header
    error = getattr(exc, "bearer_error", None)
    if error and challenge.startswith("Bearer"):
        description = str(exc.detail).replace("\\", "").replace('"', "'")
        challenge += f', error="{error}", error_description="{description}"'
    return challenge


def problem_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        errors = [{"field": exc.field, "message": exc.message, "code": exc.code}] if exc.field else []
        return _response(problem_body(exc.status, code=exc.code, detail=exc.message, errors=errors))
    if isinstance(exc, DjangoValidationError):
        return validation_problem(django_validation_errors(exc))
    if isinstance(exc, exceptions.ValidationError):
        return validation_problem(flatten_errors(exc.detail))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return _response(problem_body(413, code="payload_too_large", detail="The request body exceeds 1 MiB."))
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = _challenge(exc)
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        code = getattr(exc, "problem_code", None) or _CODES.get(type(exc)) or str(exc.default_code)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
        return _response(problem_body(exc.status_code, code=code, detail=str(detail)), headers=headers)
    if is_database_unavailable(exc):
        logger.warning("Database unavailable in %s: %s", context["view"].__class__.__name__, type(exc).__name__)
        return _response(database_unavailable_body(), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, DataError):
        # PostgreSQL's "data exception" class: a value the checks let through but the column can't
        # hold. The caller's input, so a 400; logged (type only, no values) to tighten the check.
        logger.warning("Database refused a value in %s: %s", context["view"].__class__.__name__, type(exc).__name__)
        return validation_problem([{"field": None, "message": "A value is out of range.", "code": "out_of_range"}])
    # The exception's text can carry stored values (a psycopg DETAIL names the key and its value),
    # so the log gets its type and where it happened, never its message.
    logger.error(
        "Unhandled %s in %s (request %s)\n%s",
        type(exc).__name__,
        context["view"].__class__.__name__,
        get_request_id(),
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return _response(
        problem_body(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            code="internal_error",
            detail="Something went wrong on our side. Quote the request id when you contact support.",
        )
    )
