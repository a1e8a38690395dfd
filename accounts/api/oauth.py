"""django-oauth-toolkit wiring: an API client may only ask for the scopes it was given."""

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.views import TokenView

from config.api.problems import problem_response


def _api_client(application):
    return getattr(application, "api_client", None) if application is not None else None


class ApiClientScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        api_client = _api_client(application)
        if api_client is None:
            return []
        return sorted(api_client.scopes & set(super().get_available_scopes()))

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        # No `scope` parameter: the token gets everything the client is allowed.
        return self.get_available_scopes(application, request)


class ApiClientOAuth2Validator(OAuth2Validator):
    def _load_application(self, client_id, request):
        # PostgreSQL can't even compare a text column with a NUL byte (a DataError, so a 500): such
        # a client_id names no client, and authentication fails like any other unknown id.
        if client_id is None or "\x00" in str(client_id):
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        api_client = _api_client(request.client)
        # A revoked client, or one whose organization is switched off, authenticates as nobody.
        return api_client is not None and not api_client.is_revoked and api_client.organization.is_active


class ApiTokenView(TokenView):
    """POST /v1/oauth/token. Its own errors follow RFC 6749 §5.2; a wrong method gets the API's
    problem response instead of Django's empty text/html 405."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        return problem_response(
            405,
            code="method_not_allowed",
            detail=f"Method {request.method} is not allowed here: request a token with POST.",
            headers={"Allow": "POST"},
        )
