from audit.context import new_request_id, reset_request_id, set_request_id


class RequestIdMiddleware:
    """Gives every request an id (the caller's if sane), returned as X-Request-ID and stored in audit rows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response
