from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ApiClientRateThrottle(SimpleRateThrottle):
    """One budget per API client, whichever token it uses."""

    scope = "api_client"

    def get_rate(self):
        # DRF copies the rates into a class attribute at import; read them live so a changed
        # setting (and the tests' override) takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        principal = request.user
        client_id = getattr(principal, "client_id", None)
        if client_id is None:
            return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": client_id}
