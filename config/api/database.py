"""A database that can't be reached is an outage, not a bug: 503 with Retry-After, not 500."""

from django.db import InterfaceError, OperationalError

from config.api.problems import problem_body, problem_response

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
