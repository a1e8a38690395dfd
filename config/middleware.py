from django.conf import settings

from config.api.problems import is_scim, problem_response, scim_error_response
from config.views import healthz
from config.write_gate import get_write_gate

HEALTHZ_PATH = "/healthz"


class HealthCheckMiddleware:
    """Answers /healthz before the host check (CommonMiddleware, CSRF) and the HTTPS redirect
    (SecurityMiddleware): load balancers probe it over plain HTTP, by address, with whatever Host
    header. The answer uses no header of the request, so skipping those checks exposes nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == HEALTHZ_PATH:
            return healthz(request)
        return self.get_response(request)


class BodySizeLimitMiddleware:
    """Refuse an over-size body up front with 413, before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BODY_BYTES:
            if is_scim(request):  # SCIM speaks its own error schema (RFC 7644 §3.12)
                return scim_error_response(413, detail="The request body exceeds 1 MiB.")
            return problem_response(413, code="payload_too_large", detail="The request body exceeds 1 MiB.")
        return self.get_response(request)


class WriteGateMiddleware:
    """Writes (any method but GET, HEAD, OPTIONS) take one of the process's write slots for their
    whole request; see config/write_gate.py. A write that waits too long for one gets 503."""

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        gate = get_write_gate()
        if gate is None or request.method in self.SAFE_METHODS:
            return self.get_response(request)
        if not gate.enter():
            detail = "The server is busy with other writes; nothing was changed. Retry after Retry-After seconds."
            headers = {"Retry-After": "1"}
            if is_scim(request):
                return scim_error_response(503, detail=detail, headers=headers)
            return problem_response(503, code="server_busy", detail=detail, headers=headers)
        try:
            return self.get_response(request)
        finally:
            gate.leave()
