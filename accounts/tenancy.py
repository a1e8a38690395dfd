"""Every change to an organization or an API client goes through here: the admin and the commands alike.

They live in accounts, not organizations, because they write audit events and (for deactivation)
the users' Cognito work, and organizations is the base layer that imports neither audit nor accounts.
Like accounts.services: keyword-only, full_clean, one transaction, the audit event in it
(`user_id` null, so `GET /v1/organizations/{org}/audit-events` lists it among the organization's own).
"""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model
from oauth2_provider.scopes import get_scopes_backend

from accounts.cognito import sync
from accounts.models import CognitoSync, User
from accounts.services import _diff, _save, _snapshot
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from config.errors import ApplicationError
from organizations.models import ApiClient, Organization

ORGANIZATION_FIELDS = ("name", "hpio_number")
API_CLIENT_FIELDS = ("name", "allowed_scopes")
REASON_MAX_LENGTH = 500
# Deactivation records the Cognito state of an organization's users this many at a time.
_USERS_PER_CHUNK = 1000
_UNSET = object()


# --- organizations ------------------------------------------------------------------------------


def organization_create(*, actor: Actor, name: str, hpio_number: str | None = None) -> Organization:
    organization = Organization(name=name, hpio_number=hpio_number or None)
    organization.full_clean()
    with transaction.atomic():
        _save(organization, actor)
        audit_event_record(
            action=AuditEvent.Action.ORGANIZATION_CREATED,
            actor=actor,
            organization_id=organization.pk,
            changes=_diff({}, _snapshot(organization, (*ORGANIZATION_FIELDS, "is_active"))),
        )
    return organization


def organization_update(*, organization: Organization, actor: Actor, name=_UNSET, hpio_number=_UNSET) -> Organization:
    """Name and HPI-O. Activation has its own services (they change the users' Cognito accounts)."""
    with transaction.atomic():
        organization = _lock_organization(organization)
        before = _snapshot(organization, ORGANIZATION_FIELDS)
        if name is not _UNSET:
            organization.name = name
        if hpio_number is not _UNSET:
            organization.hpio_number = hpio_number or None
        organization.full_clean()
        changes = _diff(before, _snapshot(organization, ORGANIZATION_FIELDS))
        if not changes:
            return organization
        _save(organization, actor)
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
    reason = _validated_reason(reason)
    return _set_active(organization=organization, actor=actor, active=False, reason=reason)


def organization_activate(*, organization: Organization, actor: Actor, reason: str = "") -> Organization:
    """Switch it on again: the accounts of the users whose own status is active are enabled again
    (through the outbox); disabled users stay disabled. Idempotent like deactivation."""
    reason = _validated_reason(reason)
    return _set_active(organization=organization, actor=actor, active=True, reason=reason)


def _set_active(*, organization: Organization, actor: Actor, active: bool, reason: str) -> Organization:
    with transaction.atomic():
        organization = _lock_organization(organization)
        if organization.is_active == active:
            return organization
        organization.is_active = active
        organization.full_clean()
        _save(organization, actor)
        changes = {"is_active": {"from": not active, "to": active}}
        if reason:
            changes["reason"] = {"from": None, "to": reason}
        audit_event_record(
            action=AuditEvent.Action.ORGANIZATION_ACTIVATED if active else AuditEvent.Action.ORGANIZATION_DEACTIVATED,
            actor=actor,
            organization_id=organization.pk,
            changes=changes,
        )
        _record_users_cognito_state(organization)
    return organization


def _record_users_cognito_state(organization: Organization) -> None:
    """In the caller's transaction: every user's newest desired Cognito state, enabled only when the
    user and the organization are both active, with its version bumped and due now, as
    sync.record_desired_state records one user's. An organization can have 100k users: no per-user
    round trip and no inline Cognito call (the worker applies the rows)."""
    if connection.vendor == "postgresql":
        _record_in_two_statements(organization)
    else:  # SQLite: the local demo's small organizations
        _record_row_by_row(organization)
    # A user without an outbox row (none, unless one was lost) gets one with its complete state.
    now = timezone.now()
    missing = User.objects.filter(organization=organization, cognito_sync__isnull=True)
    for chunk in _chunks(missing.iterator(chunk_size=_USERS_PER_CHUNK), _USERS_PER_CHUNK):
        for user in chunk:
            user.organization = organization
        CognitoSync.objects.bulk_create(
            [CognitoSync(user=user, desired=sync.desired_state(user), next_attempt_at=now) for user in chunk]
        )


def _record_in_two_statements(organization: Organization) -> None:
    """100,000 users in about 3 s. The outbox row always holds the user's complete newest state, so
    only its `enabled` changes; the expression is desired_state's rule, in SQL.

    The users are locked first: a change of one of them in flight commits before the UPDATE reads
    the user's status and outbox row, so the UPDATE neither misses it nor overwrites it."""
    users, outbox = User._meta.db_table, CognitoSync._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {users} WHERE organization_id = %s "  # noqa: S608 (our tables)
            "FOR NO KEY UPDATE) AS locked",
            [organization.pk],
        )
        cursor.execute(
            f"UPDATE {outbox} AS outbox SET "  # noqa: S608 (our tables)
            "desired = jsonb_set(outbox.desired, '{enabled}', to_jsonb(member.status = %s AND %s)), "
            "desired_version = outbox.desired_version + 1, state = %s, attempts = 0, next_attempt_at = %s, "
            f"updated_at = %s FROM {users} AS member "
            "WHERE member.organization_id = %s AND member.id = outbox.user_id",
            [User.Status.ACTIVE, organization.is_active, CognitoSync.State.PENDING, now, now, organization.pk],
        )


def _record_row_by_row(organization: Organization) -> None:
    now = timezone.now()
    users = User.objects.filter(organization=organization).select_for_update(of=("self",))
    for user in list(users):
        user.organization = organization  # the locked row in hand, with its new flag
        CognitoSync.objects.filter(pk=user.pk).update(
            desired=sync.desired_state(user),
            desired_version=F("desired_version") + 1,
            state=CognitoSync.State.PENDING,
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _lock_organization(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _validated_reason(reason) -> str:
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ApplicationError(
            f"The reason may be at most {REASON_MAX_LENGTH} characters (it has {len(reason)}).",
            code="validation_error",
            field="reason",
        )
    return reason


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
        _save(api_client, actor)
        audit_event_record(
            action=AuditEvent.Action.API_CLIENT_CREATED,
            actor=actor,
            organization_id=organization.pk,
            changes={
                "client_id": {"from": None, "to": application.client_id},
                **_diff({}, _snapshot(api_client, API_CLIENT_FIELDS)),
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
        before = _snapshot(api_client, API_CLIENT_FIELDS)
        if name is not _UNSET:
            api_client.name = name
        if scopes is not _UNSET:
            api_client.allowed_scopes = " ".join(_validated_scopes(scopes))
        api_client.full_clean()
        changes = _diff(before, _snapshot(api_client, API_CLIENT_FIELDS))
        if not changes:
            return api_client
        _save(api_client, actor)
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
        _save(api_client, actor)
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
