from django.conf import settings

from core.body_deadline import BodyNotReceived, read_body_within
from core.errors import is_scim, problem_response, scim_error_response
from core.views import healthz
from core.write_gate import RETRY_AFTER_SECONDS, SAFE_METHODS, WriteTurnRefused, get_write_gate, take_write_turn

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


class RequestBodyMiddleware:
    """Read a write's whole body within REQUEST_BODY_TIMEOUT_SECONDS before anything waits or works
    on it (core/body_deadline.py): a client that sends headers and holds the body back is
    answered 408 and holds nothing, neither a write turn nor, past the deadline, a thread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("CONTENT_LENGTH") not in (None, "", "0"):
            try:
                read_body_within(request, settings.REQUEST_BODY_TIMEOUT_SECONDS)
            except BodyNotReceived:
                detail = f"The request body did not arrive within {settings.REQUEST_BODY_TIMEOUT_SECONDS:g} seconds."
                if is_scim(request):
                    return scim_error_response(408, detail=detail)
                return problem_response(408, code="request_timeout", detail=detail)
        return self.get_response(request)


class WriteGateMiddleware:
    """Gives back the write turn a request took (core/write_gate.py) when it ends, and answers a
    refused one. Turns are taken once the caller is known: API clients after DRF's checks
    (`WriteTurnThrottle`), SCIM tokens in scim/auth.py, and staff signed in to the admin here,
    before the view. Unauthenticated requests (the token endpoint, the admin's sign-in) take none:
    their failures are budgeted by their own limits."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        gate = get_write_gate()
        if gate is None or request.method in SAFE_METHODS:
            return self.get_response(request)
        try:
            return self.get_response(request)
        finally:
            gate.leave()

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS:
            return None
        user = getattr(request, "user", None)  # the session's user (AuthenticationMiddleware)
        if user is not None and user.is_authenticated and user.is_staff:
            try:
                take_write_turn(request, ("staff", user.pk))
            except WriteTurnRefused:
                return self._busy(request)
        return None

    def process_exception(self, request, exception):
        # A refusal raised outside DRF (SCIM's authentication); DRF's views answer their own.
        return self._busy(request) if isinstance(exception, WriteTurnRefused) else None

    @staticmethod
    def _busy(request):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        detail = str(WriteTurnRefused.default_detail)
        if is_scim(request):
            return scim_error_response(503, detail=detail, headers=headers)
        return problem_response(503, code="server_busy", detail=detail, headers=headers)
