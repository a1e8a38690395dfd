from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model
from oauth2_provider.scopes import get_scopes_backend

from config.errors import ApplicationError
from organizations.models import ApiClient, Organization


def organization_create(*, name: str, hpio_number: str | None = None) -> Organization:
    organization = Organization(name=name, hpio_number=hpio_number or None)
    organization.full_clean()
    organization.save()
    return organization


def api_client_create(*, organization: Organization, name: str, scopes) -> tuple[ApiClient, str]:
    """A client-credentials client for one organization. Returns the client and its secret, which is
    stored hashed and can't be shown again."""
    scopes = sorted(set(scopes))
    known = set(get_scopes_backend().get_all_scopes())
    unknown = [scope for scope in scopes if scope not in known]
    if not scopes or unknown:
        raise ApplicationError(
            f"Unknown scope(s): {', '.join(unknown) or '(none given)'}. Known: {', '.join(sorted(known))}.",
            code="invalid_scope",
            field="scopes",
        )
    secret = generate_client_secret()
    Application = get_application_model()
    with transaction.atomic():
        application = Application(
            name=name,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
        )
        application.full_clean()
        application.save()
        api_client = ApiClient(
            application=application, organization=organization, name=name, allowed_scopes=" ".join(scopes)
        )
        api_client.full_clean()
        api_client.save()
    return api_client, secret


def api_client_revoke(*, api_client: ApiClient) -> ApiClient:
    """Revoked clients get no new tokens and their existing tokens stop working at once."""
    with transaction.atomic():
        if api_client.revoked_at is None:
            api_client.revoked_at = timezone.now()
            api_client.save(update_fields=["revoked_at"])
    return api_client
