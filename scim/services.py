"""SCIM's writes. Tokens are services of their own (with their audit events); users are changed only
through accounts.services, validated first by the REST API's own input serializers, so a SCIM write
meets exactly the rules, messages, audit events, Cognito work and webhooks of the REST API.

Each SCIM request is one transaction: the SCIM identity, the profile, the roles and the disabling
commit together or not at all."""

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework import serializers as drf_serializers

from accounts import roles as role_names
from accounts import services as account_services
from accounts.api.serializers import (
    StrictCharField,
    UserCreateSerializer,
    UserRolesSerializer,
    UserUpdateSerializer,
)
from accounts.models import User
from accounts.services import USER_FIELDS
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.errors import ApplicationError, django_validation_errors, flatten_errors
from identifiers.checks import IdentifierError, validate_au_phone
from scim import resources
from scim.models import ScimIdentity, ScimToken

TOKEN_PREFIX = "scim_"  # noqa: S105 (a marker that makes leaked tokens greppable, not a secret)


class ScimError(Exception):
    """A SCIM error response (RFC 7644 §3.12): status, scimType and a detail naming the attribute."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


# --- tokens ----------------------------------------------------------------------------------------


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def scim_token_create(*, organization, name: str, actor: Actor) -> tuple[ScimToken, str]:
    """Make a token for one organization's identity provider; returns it and the secret (shown once)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken(organization=organization, name=name.strip(), token_hash=token_hash(raw), prefix=raw[:12])
    token.full_clean()
    with transaction.atomic():
        token.save()
        audit_event_record(
            action=AuditEvent.Action.SCIM_TOKEN_CREATED,
            actor=actor,
            organization_id=organization.pk,
            changes={"scim_token": {"from": None, "to": {"id": str(token.pk), "name": token.name}}},
        )
    return token, raw


def scim_token_revoke(*, token: ScimToken, actor: Actor) -> ScimToken:
    """Revoke a token: from then on it gets 401. Idempotent (no second event)."""
    with transaction.atomic():
        token = ScimToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_event_record(
            action=AuditEvent.Action.SCIM_TOKEN_REVOKED,
            actor=actor,
            organization_id=token.organization_id,
            changes={"revoked_at": {"from": None, "to": token.revoked_at.isoformat()}},
        )
    return token


# --- users -----------------------------------------------------------------------------------------


class _IdentityInput(drf_serializers.Serializer):
    """SCIM's own attributes, held to the REST API's rules for every text field."""

    userName = StrictCharField(max_length=254, allow_blank=False)  # named as SCIM names them, for the errors
    externalId = StrictCharField(max_length=254, required=False, allow_blank=True, allow_null=True)


def _identity_fields(resource) -> tuple[str, str]:
    serializer = _valid(_IdentityInput, {"userName": resource.user_name, "externalId": resource.external_id})
    return serializer.validated_data["userName"], serializer.validated_data.get("externalId") or ""


def scim_user_create(*, token: ScimToken, resource) -> User:
    actor = Actor.scim(token)
    organization = token.organization
    user_name, external_id = _identity_fields(resource)
    body = resources.desired_fields(resource)
    serializer = _valid(UserCreateSerializer, body)
    fields, provider_details, _flat = serializer.split()
    roles = fields.pop("access_roles", None)
    try:
        with transaction.atomic():
            # Both names up front, in one order: the create below claims the e-mail too.
            account_services.login_name_lock(organization_id=organization.pk, names=[user_name, fields.get("email")])
            _check_user_name_free(organization.pk, user_name, exclude_user_id=None)
            with _as_scim_errors():
                user = account_services.user_create(
                    organization=organization, actor=actor, roles=roles, provider_details=provider_details, **fields
                )
                if resource.active is False:  # provisioned ahead of access: no working account until staff enable it
                    user = account_services.user_disable(user=user, actor=actor)
            ScimIdentity.objects.create(
                user=user,
                organization=organization,
                user_name=user_name,
                external_id=external_id,
            )
    except IntegrityError as error:
        raise _user_name_taken() from error
    return user


def scim_user_apply(*, token: ScimToken, user: User, identity: ScimIdentity | None, resource) -> User:
    """Make the user what `resource` says (PUT, or a PATCH applied to the current resource)."""
    actor = Actor.scim(token)
    user_name, external_id = _identity_fields(resource)
    desired = resources.desired_fields(resource)
    current = resources.current_fields(user)

    if resource.active is True and user.is_disabled:
        raise ScimError(
            400,
            "active: a disabled user can't be re-enabled through SCIM; platform staff re-enable users.",
            "mutability",
        )

    profile = {field: desired[field] for field in USER_FIELDS if field in desired and _differs(field, desired, current)}
    details = _details_changes(desired, current, user)
    roles = desired.get("access_roles")
    if roles is not None and sorted(set(roles)) == current["access_roles"]:
        roles = None
    disabling = resource.active is False and user.is_active
    if disabling:
        roles = None  # disabling drops every role to member anyway

    try:
        with transaction.atomic():
            account_services.login_name_lock(
                organization_id=user.organization_id, names=[user_name, profile.get("email")]
            )
            _identity_update(user=user, identity=identity, user_name=user_name, external_id=external_id, actor=actor)
            with _as_scim_errors():
                if profile or details:
                    serializer = _valid(
                        UserUpdateSerializer, {**profile, **({"provider_details": details} if details else {})}
                    )
                    fields, provider_details, _flat = serializer.split()
                    user = account_services.user_update(
                        user=user, actor=actor, data=fields, provider_details=provider_details
                    )
                if roles is not None:
                    serializer = _valid(UserRolesSerializer, {"access_roles": roles})
                    user = account_services.user_roles_set(
                        user=user, actor=actor, roles=serializer.validated_data["access_roles"]
                    )
                if disabling:
                    user = account_services.user_disable(user=user, actor=actor)
    except IntegrityError as error:
        raise _user_name_taken() from error
    return user


def scim_user_delete(*, token: ScimToken, user: User, identity: ScimIdentity | None) -> None:
    """SCIM DELETE: disable the user (the REST API's disable) and hide it from SCIM from now on."""
    actor = Actor.scim(token)
    with transaction.atomic():
        if identity is None:
            identity = ScimIdentity(user=user, organization_id=user.organization_id, user_name=user.email)
        identity.deleted_at = timezone.now()
        identity.save()
        account_services.user_disable(user=user, actor=actor)


# --- groups (one per assignable role) --------------------------------------------------------------


def scim_group_members_change(*, token: ScimToken, role: str, add: list[User], remove: list[User]) -> None:
    """Adding a member grants the role; removing one takes it away (member stays the baseline)."""
    actor = Actor.scim(token)
    with transaction.atomic(), _as_scim_errors(members=True):
        # Read the roles under a row lock (in id order, so two changes can't deadlock): an identity
        # provider sends one group's changes in parallel with another's, and each must keep the other's role.
        locked = {
            user.pk: user
            for user in User.objects.select_for_update(of=("self",))
            .filter(pk__in=[user.pk for user in [*add, *remove]])
            .order_by("pk")
        }
        add = [locked[user.pk] for user in add]
        remove = [locked[user.pk] for user in remove]
        for user in add:
            if role not in user.roles:
                granted = [r for r in user.roles if r in role_names.ASSIGNABLE_ROLES]  # member is implied
                account_services.user_roles_set(user=user, actor=actor, roles=[*granted, role])
        for user in remove:
            if role in user.roles:
                remaining = [r for r in user.roles if r != role] or list(role_names.DEFAULT_ROLES)
                account_services.user_roles_set(user=user, actor=actor, roles=remaining)


# --- helpers ---------------------------------------------------------------------------------------


def _valid(serializer_class, body):
    serializer = serializer_class(data=body)
    if not serializer.is_valid():
        raise _invalid_value(flatten_errors(serializer.errors))
    return serializer


def _invalid_value(errors: list[dict]) -> ScimError:
    parts = []
    for error in errors[:5]:
        attribute = resources.scim_attribute(error["field"])
        parts.append(f"{attribute}: {error['message']}" if attribute else error["message"])
    return ScimError(400, "; ".join(parts), "invalidValue")


class _as_scim_errors:
    """The services' ValidationError and ApplicationError, as SCIM errors naming the SCIM attribute."""

    def __init__(self, members: bool = False):
        self.members = members

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        if issubclass(exc_type, ValidationError):
            raise _invalid_value(django_validation_errors(exc)) from exc
        if issubclass(exc_type, drf_serializers.ValidationError):
            raise _invalid_value(flatten_errors(exc.detail)) from exc
        if issubclass(exc_type, ApplicationError):
            attribute = "members" if self.members else resources.scim_attribute(exc.field)
            detail = f"{attribute}: {exc.message}" if attribute else exc.message
            if exc.code in ("user_already_exists", "hpii_conflict", "partner_user_id_conflict"):
                raise ScimError(409, detail, "uniqueness") from exc
            if exc.code == "invalid_role":
                raise ScimError(400, detail, "invalidValue") from exc
            if exc.code == "user_disabled":
                raise ScimError(400, f"{attribute or 'active'}: {exc.message}", "mutability") from exc
            raise ScimError(exc.status, detail) from exc
        return False


def _user_name_taken() -> ScimError:
    return ScimError(409, "userName: another user of this organization already has this userName.", "uniqueness")


def _check_user_name_free(organization_id, user_name: str, *, exclude_user_id) -> None:
    # The REST API's creates and e-mail changes take the same lock for the e-mail they claim
    # (accounts.services.login_name_lock): between the check and the commit, nobody takes the name.
    account_services.login_name_lock(organization_id=organization_id, names=[user_name])
    key = user_name.lower()
    identities = (
        ScimIdentity.objects.alias(key=Lower("user_name"))
        .filter(organization_id=organization_id, key=key, deleted_at__isnull=True)
        .exclude(user_id=exclude_user_id)
    )
    # A user SCIM never wrote is seen with its e-mail as userName.
    unclaimed = (
        User.objects.alias(email_lower=Lower("email"))
        .filter(organization_id=organization_id, email_lower=key, scim_identity__isnull=True)
        .exclude(pk=exclude_user_id)
    )
    if identities.exists() or unclaimed.exists():
        raise _user_name_taken()


def _identity_update(*, user: User, identity: ScimIdentity | None, user_name: str, external_id: str, actor) -> None:
    before = {
        "scim.userName": identity.user_name if identity else user.email,
        "scim.externalId": identity.external_id if identity else "",
    }
    after = {"scim.userName": user_name, "scim.externalId": external_id}
    if identity is not None and before == after:
        return
    changed = [key for key in after if before[key] != after[key]]
    if changed and user.is_disabled:
        # As for every other attribute: an identity provider re-pointing a disabled user's login name
        # could make it answer for someone else.
        attribute = changed[0].removeprefix("scim.")
        raise ScimError(400, f"{attribute}: this user is disabled and can't be changed through SCIM.", "mutability")
    if user_name.lower() != before["scim.userName"].lower():
        _check_user_name_free(user.organization_id, user_name, exclude_user_id=user.pk)
    if identity is None:
        identity = ScimIdentity(user=user, organization_id=user.organization_id)
    identity.user_name, identity.external_id = user_name, external_id
    identity.save()
    changes = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
    if changes:
        audit_event_record(
            action=AuditEvent.Action.USER_UPDATED,
            actor=actor,
            organization_id=user.organization_id,
            user_id=user.pk,
            changes=changes,
        )


def _normalized(field: str, value):
    if field == "email":
        return (value or "").strip().lower()
    if field == "phone" and value:
        try:
            return validate_au_phone(value)
        except IdentifierError:
            return value
    return value


def _differs(field: str, desired: dict, current: dict) -> bool:
    return _normalized(field, desired[field]) != _normalized(field, current.get(field))


def _details_changes(desired: dict, current: dict, user: User) -> dict:
    """The provider-details fields to change: what the extension sends, and the provider's names and
    phone following the user's whenever the user has (or is getting) provider details."""
    stored = current.get("provider_details")
    wanted = dict(desired.get("provider_details") or {})
    if stored is None and not wanted:
        return {}
    if stored is None and not any(value not in (None, "") for value in wanted.values()):
        return {}  # an empty extension for a user without details creates none
    for field in ("given_name", "family_name", "phone"):
        wanted[field] = desired.get(field, current[field])
    stored = stored or {}
    return {
        field: value
        for field, value in wanted.items()
        if _normalized(field, value) != _normalized(field, stored.get(field, "" if field != "date_of_birth" else None))
        and not (value in (None, "") and stored.get(field) in (None, ""))
    }
