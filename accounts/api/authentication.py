import hashlib
from dataclasses import dataclass

from oauth2_provider.models import AccessToken, Application
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from audit.context import Actor
from core.db import PreparedQuery
from organizations.models import ApiClient, Organization


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


REALM = "api"


class InvalidToken(AuthenticationFailed):
    """A bearer token was sent and is no good: RFC 6750 §3.1's `invalid_token`, named in the
    challenge (core/errors.py adds `bearer_error` to the WWW-Authenticate header)."""

    bearer_error = "invalid_token"
    problem_code = "not_authenticated"


class ApiClientTokenAuthentication(BaseAuthentication):
    """Bearer tokens from /v1/oauth/token. Tokens are stored only as SHA-256 checksums, so the
    lookup hashes what the caller sent; one query fetches the token, its client and organization."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise InvalidToken("Malformed Authorization header: expected `Bearer <token>`.")
        try:
            raw_token = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise InvalidToken("The access token is invalid.") from error
        checksum = hashlib.sha256(raw_token.encode("ascii")).hexdigest()
        token = _token_with_client(checksum)
        if token is None or token.is_expired():
            raise InvalidToken("The access token is invalid or has expired.")
        api_client = getattr(token.application, "api_client", None) if token.application else None
        if api_client is None or api_client.is_revoked or not api_client.organization.is_active:
            raise InvalidToken("The API client behind this token is no longer active.")
        principal = ApiClientPrincipal(
            api_client=api_client,
            organization=api_client.organization,
            scopes=frozenset(token.scope.split()) & api_client.scopes,
        )
        return principal, token

    def authenticate_header(self, request):
        # No error code when no token was sent (RFC 6750 §3.1); InvalidToken adds its own.
        return f'Bearer realm="{REALM}"'


# Every API request runs this lookup: the token, its application, API client and organization in
# one query, compiled once (core/db.py). The instances are built from the row as the ORM's
# select_related would build them.
_TOKEN_PATHS = (
    (AccessToken, ""),
    (Application, "application__"),
    (ApiClient, "application__api_client__"),
    (Organization, "application__api_client__organization__"),
)
_TOKEN_LOOKUP = PreparedQuery(
    lambda checksum: AccessToken.objects.filter(token_checksum=checksum).values(
        *(f"{prefix}{field.attname}" for model, prefix in _TOKEN_PATHS for field in model._meta.concrete_fields)
    ),
    checksum=str,
)


def _instance(model, prefix: str, row: dict):
    names = [field.attname for field in model._meta.concrete_fields]
    if row[f"{prefix}{model._meta.pk.attname}"] is None:  # no such related row (a LEFT JOIN)
        return None
    return model.from_db("default", names, [row[f"{prefix}{name}"] for name in names])


def _token_with_client(checksum: str):
    """The access token with that checksum, its application, API client and organization attached
    (None where there is none), or None."""
    rows = _TOKEN_LOOKUP.rows(checksum=checksum)
    if not rows:
        return None
    token, application, api_client, organization = (_instance(model, prefix, rows[0]) for model, prefix in _TOKEN_PATHS)
    token.application = application
    if application is not None and api_client is not None:
        api_client.organization = organization
        application.api_client = api_client  # the reverse one-to-one's cache, as select_related sets it
    return token
