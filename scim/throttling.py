"""The rate limit of SCIM: one budget per SCIM token, the REST API's own throttle keyed by the token.

An identity provider's connection is one token, so its budget is the connection's whatever address
its requests come from (Entra ID spreads them over many)."""

from core.api.throttling import ApiClientRateThrottle


class ScimTokenRateThrottle(ApiClientRateThrottle):
    scope = "scim_token"

    def get_cache_key(self, request):
        return f"throttle_{self.scope}_{request.scim_token.pk}"
