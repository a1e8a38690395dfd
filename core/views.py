import sys

from django.db import connection
from django.http import JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found, server_error

from core.errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable_response,
    is_database_unavailable,
    is_scim,
    problem_response,
    scim_error_response,
)
from core.health import health_details


def healthz(request):
    """200 when the database answers, 503 otherwise (for load balancers and orchestrators), with the
    details the apps register (core/health.py: the worker's heartbeat). No version, no host, no
    error text. Served by HealthCheckMiddleware ahead of the host check and the HTTPS redirect
    (core/middleware.py)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        response = JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    else:
        response = JsonResponse({"status": "ok", "database": "ok", **health_details()})
    response["Cache-Control"] = "no-store"
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/v1/") or request.path == "/v1"


# Exempt: the catch-all changes nothing, and a POST to a path that doesn't exist is a 404 like any
# other method (not Django's HTML CSRF page). The API itself is token-authenticated, never by cookie.
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return problem_response(404, code="not_found", detail="There is no such resource.")


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a problem under /v1 (no API view relies on CSRF, but nothing under /v1
    answers an HTML page); the admin keeps Django's page."""
    if _is_api(request):
        return problem_response(
            403, code="csrf_failed", detail="The request was refused by the CSRF check: use a bearer token."
        )
    return django_csrf_failure(request, reason=reason)


def bad_request(request, exception=None):
    # A SuspiciousOperation outside DRF (too many form fields at the token endpoint, a bad Host
    # header) would be Django's HTML page; under /v1 it is a problem too.
    if _is_api(request):
        return problem_response(400, code="bad_request", detail="The request was malformed and is refused.")
    return django_bad_request(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return api_not_found(request)
    if is_scim(request):
        return scim_error_response(404, detail="There is no such resource.")
    return page_not_found(request, exception)


def internal_error(request):
    # Django calls this handler inside its `except` block, so the failure is still at hand: an
    # unreachable database (raised in middleware or a non-DRF view like the token endpoint) is 503.
    if is_scim(request):  # identity providers parse the SCIM error schema, whatever failed
        if is_database_unavailable(sys.exc_info()[1]):
            return scim_error_response(
                503, detail="The service can't reach its database right now. Retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return scim_error_response(500, detail="Something went wrong on our side.")
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable_response()
    if _is_api(request):
        return problem_response(
            500,
            code="internal_error",
            detail="Something went wrong on our side. Quote the request id when you contact support.",
        )
    return server_error(request)
