"""One exception handler maps every failure in a view to a problem response (HackSoft style)."""

import logging
import traceback

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from config.api.database import RETRY_AFTER_SECONDS, database_unavailable_body, is_database_unavailable
from config.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from config.errors import ApplicationError
from config.request_id import get_request_id

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
