import hashlib
from dataclasses import dataclass

from oauth2_provider.models import AccessToken
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from audit.context import Actor


@dataclass(frozen=True)
class ApiClientPrincipal:
    """The caller of an API request: one API client of one organization, holding some scopes."""

    api_client: object
    organization: object
    scopes: frozenset
    is_authenticated: bool = True

    @property
    def client_id(self) -> str:
        return self.api_client.application.client_id

    @property
    def actor(self) -> Actor:
        return Actor.api_client(self.api_client)


class ApiClientTokenAuthentication(BaseAuthentication):
    """Bearer tokens from /v1/oauth/token. Tokens are stored only as SHA-256 checksums, so the
    lookup hashes what the caller sent; one query fetches the token, its client and organization."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Malformed Authorization header: expected `Bearer <token>`.")
        try:
            raw_token = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise AuthenticationFailed("The access token is invalid.") from error
        checksum = hashlib.sha256(raw_token.encode("ascii")).hexdigest()
        # A slice, not .first(): no ORDER BY to compile or run for a lookup by a unique column.
        token = next(
            iter(
                AccessToken.objects.select_related("application__api_client__organization").filter(
                    token_checksum=checksum
                )[:1]
            ),
            None,
        )
        if token is None or token.is_expired():
            raise AuthenticationFailed("The access token is invalid or has expired.")
        api_client = getattr(token.application, "api_client", None) if token.application else None
        if api_client is None or api_client.is_revoked or not api_client.organization.is_active:
            raise AuthenticationFailed("The API client behind this token is no longer active.")
        principal = ApiClientPrincipal(
            api_client=api_client,
            organization=api_client.organization,
            scopes=frozenset(token.scope.split()) & api_client.scopes,
        )
        return principal, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
