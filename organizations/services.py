"""Every change to an organization or an API client goes through here: the admin and the commands alike.

Like accounts.services: keyword-only, full_clean, one transaction, the audit event in it
(`user_id` null, so `GET /v1/organizations/{org}/audit-events` lists it among the organization's own).
What a deactivation means for the users (their Cognito accounts) is accounts' business: it receives
`organization_active_changed`, sent in the same transaction.
"""

from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model
from oauth2_provider.scopes import get_scopes_backend

from audit.changes import changes_between, save_with_history, snapshot, validated_reason
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.errors import ApplicationError
from organizations.models import ApiClient, Organization
from organizations.signals import organization_active_changed

ORGANIZATION_FIELDS = ("name", "hpio_number")
API_CLIENT_FIELDS = ("name", "allowed_scopes")
_UNSET = object()


# --- organizations ------------------------------------------------------------------------------


def organization_create(*, actor: Actor, name: str, hpio_number: str | None = None) -> Organization:
    organization = Organization(name=name, hpio_number=hpio_number or None)
    organization.full_clean()
    with transaction.atomic():
        save_with_history(organization, actor)
        audit_event_record(
            action=AuditEvent.Action.ORGANIZATION_CREATED,
            actor=actor,
            organization_id=organization.pk,
            changes=changes_between({}, snapshot(organization, (*ORGANIZATION_FIELDS, "is_active"))),
        )
    return organization


def organization_update(*, organization: Organization, actor: Actor, name=_UNSET, hpio_number=_UNSET) -> Organization:
    """Name and HPI-O. Activation has its own services (they change the users' Cognito accounts)."""
    with transaction.atomic():
        organization = _lock_organization(organization)
        before = snapshot(organization, ORGANIZATION_FIELDS)
        if name is not _UNSET:
            organization.name = name
        if hpio_number is not _UNSET:
            organization.hpio_number = hpio_number or None
        organization.full_clean()
        changes = changes_between(before, snapshot(organization, ORGANIZATION_FIELDS))
        if not changes:
            return organization
        save_with_history(organization, actor)
        audit_event_record(
            action=AuditEvent.Action.ORGANIZATION_UPDATED,
            actor=actor,
            organization_id=organization.pk,
            changes=changes,
        )
    return organization


def organization_deactivate(*, organization: Organization, actor: Actor, reason: str = "") -> Organization:
    """Switch the organization off: its API clients get 401 at once, and every one of its users'
    Cognito accounts is disabled and signed out through the outbox (the worker applies it; nothing
    is lost while Cognito is down). The users' own status and roles don't change.

    Idempotent: an inactive organization is returned unchanged, with no event."""
    reason = validated_reason(reason)
    return _set_active(organization=organization, actor=actor, active=False, reason=reason)


def organization_activate(*, organization: Organization, actor: Actor, reason: str = "") -> Organization:
    """Switch it on again: the accounts of the users whose own status is active are enabled again
    (through the outbox); disabled users stay disabled. Idempotent like deactivation."""
    reason = validated_reason(reason)
    return _set_active(organization=organization, actor=actor, active=True, reason=reason)


def _set_active(*, organization: Organization, actor: Actor, active: bool, reason: str) -> Organization:
    with transaction.atomic():
        organization = _lock_organization(organization)
        if organization.is_active == active:
            return organization
        organization.is_active = active
        organization.full_clean()
        save_with_history(organization, actor)
        changes = {"is_active": {"from": not active, "to": active}}
        if reason:
            changes["reason"] = {"from": None, "to": reason}
        audit_event_record(
            action=AuditEvent.Action.ORGANIZATION_ACTIVATED if active else AuditEvent.Action.ORGANIZATION_DEACTIVATED,
            actor=actor,
            organization_id=organization.pk,
            changes=changes,
        )
        organization_active_changed.send(sender=Organization, organization=organization)
    return organization


def _lock_organization(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


# --- API clients --------------------------------------------------------------------------------


def api_client_create(*, organization: Organization, actor: Actor, name: str, scopes) -> tuple[ApiClient, str]:
    """A client-credentials client for one organization. Returns the client and its secret, which is
    stored hashed and can't be shown again."""
    scopes = _validated_scopes(scopes)
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
        save_with_history(api_client, actor)
        audit_event_record(
            action=AuditEvent.Action.API_CLIENT_CREATED,
            actor=actor,
            organization_id=organization.pk,
            changes={
                "client_id": {"from": None, "to": application.client_id},
                **changes_between({}, snapshot(api_client, API_CLIENT_FIELDS)),
            },
        )
    return api_client, secret


def api_client_update(*, api_client: ApiClient, actor: Actor, name=_UNSET, scopes=_UNSET) -> ApiClient:
    """Rename, or change the scopes it may ask for. Narrowed scopes apply to its live tokens at once
    (a token's scopes are intersected with the client's on every request)."""
    with transaction.atomic():
        api_client = _lock_api_client(api_client)
        if api_client.is_revoked:
            raise ApplicationError(
                "A revoked API client can't be changed; create a new one.", code="api_client_revoked", status=409
            )
        before = snapshot(api_client, API_CLIENT_FIELDS)
        if name is not _UNSET:
            api_client.name = name
        if scopes is not _UNSET:
            api_client.allowed_scopes = " ".join(_validated_scopes(scopes))
        api_client.full_clean()
        changes = changes_between(before, snapshot(api_client, API_CLIENT_FIELDS))
        if not changes:
            return api_client
        save_with_history(api_client, actor)
        if "name" in changes:
            application = api_client.application
            application.name = api_client.name
            application.save(update_fields=["name", "updated"])
        audit_event_record(
            action=AuditEvent.Action.API_CLIENT_UPDATED,
            actor=actor,
            organization_id=api_client.organization_id,
            changes={"client_id": {"from": api_client.application.client_id, "to": api_client.application.client_id}}
            | changes,
        )
    return api_client


def api_client_secret_reset(*, api_client: ApiClient, actor: Actor) -> str:
    """A new secret for the client (returned once; stored hashed); the old one stops working at once.
    Audited as `api_client.updated` (no secret in the event)."""
    with transaction.atomic():
        api_client = _lock_api_client(api_client)
        if api_client.is_revoked:
            raise ApplicationError(
                "A revoked API client can't be changed; create a new one.", code="api_client_revoked", status=409
            )
        secret = generate_client_secret()
        application = api_client.application
        application.client_secret = secret
        application.save(update_fields=["client_secret", "updated"])
        audit_event_record(
            action=AuditEvent.Action.API_CLIENT_UPDATED,
            actor=actor,
            organization_id=api_client.organization_id,
            changes={
                "client_id": {"from": application.client_id, "to": application.client_id},
                "client_secret": {"from": "(hidden)", "to": "(reset)"},
            },
        )
    return secret


def api_client_revoke(*, api_client: ApiClient, actor: Actor) -> ApiClient:
    """Revoked clients get no new tokens and their existing tokens stop working at once. Idempotent."""
    with transaction.atomic():
        api_client = _lock_api_client(api_client)
        if api_client.is_revoked:
            return api_client
        api_client.revoked_at = timezone.now()
        save_with_history(api_client, actor)
        audit_event_record(
            action=AuditEvent.Action.API_CLIENT_REVOKED,
            actor=actor,
            organization_id=api_client.organization_id,
            changes={
                "client_id": {"from": api_client.application.client_id, "to": api_client.application.client_id},
                "revoked_at": {"from": None, "to": api_client.revoked_at.isoformat()},
            },
        )
    return api_client


def _lock_api_client(api_client: ApiClient) -> ApiClient:
    return ApiClient.objects.select_for_update(of=("self",)).select_related("application").get(pk=api_client.pk)


def _validated_scopes(scopes) -> list[str]:
    if isinstance(scopes, str):
        scopes = scopes.split()
    scopes = sorted(set(scopes))
    known = set(get_scopes_backend().get_all_scopes())
    unknown = [scope for scope in scopes if scope not in known]
    if not scopes or unknown:
        raise ApplicationError(
            f"Unknown scope(s): {', '.join(unknown) or '(none given)'}. Known: {', '.join(sorted(known))}.",
            code="invalid_scope",
            field="scopes",
        )
    return scopes
