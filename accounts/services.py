"""Every write to a user goes through here: the API, the admin and the commands alike.

Each service runs in one transaction: it locks the user, validates with the models' own rules
(full_clean), saves through save() so django-simple-history records it, writes the audit event,
and sends the domain signal. Work outside the database (Cognito) happens after commit.
"""

import datetime
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, router, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts import roles as role_names
from accounts import signals
from accounts.models import (
    PERSON_IDENTIFYING_FIELDS,
    PROVIDER_FIELDS,
    ProviderDetails,
    User,
    VerificationStatus,
    verification_status_when_asked,
)
from audit.changes import changes_between, save_with_history, snapshot, validated_reason
from audit.context import Actor
from audit.models import AuditEvent
from audit.services import audit_event_record
from core.db import PreparedQuery
from core.errors import ApplicationError
from organizations.models import Organization

USER_FIELDS = ("email", "given_name", "family_name", "title", "phone", "partner_user_id", "access_expires_at")
# Needed when a user is created with the provider role (the workflow page's "from scratch").
PROVIDER_FIELDS_REQUIRED_AT_CREATE = ("date_of_birth", "sex", "hpii_number", "prescriber_type", "qualifications")
# Stored as NULL when empty, so the partial unique constraints ignore them.
_NULLABLE_WHEN_EMPTY = {"partner_user_id", "hpii_number", "date_of_birth"}

# Constraint names from the models, mapped to the contract's conflict codes (for races that pass
# the explicit checks and meet the database constraint instead).
_CONFLICTS = {
    "user_email_ci_unique": ("email", "user_already_exists", "A user with this email already exists."),
    "user_partner_id_per_org_unique": (
        "partner_user_id",
        "partner_user_id_conflict",
        "Another user of this organization already has this partner_user_id.",
    ),
    # Not a database constraint: checked under login_name_lock (see _check_conflicts).
    "scim_user_name": (
        "email",
        "user_already_exists",
        "Another user of this organization signs in through the identity provider with this email as its userName.",
    ),
    "provider_hpii_per_org_unique": (
        "provider_details.hpii_number",
        "hpii_conflict",
        "Another user of this organization already has this HPI-I.",
    ),
}
# SQLite names the columns instead of the constraint.
_SQLITE_CONFLICT_COLUMNS = {
    "accounts_user.organization_id, accounts_user.partner_user_id": "user_partner_id_per_org_unique",
    "accounts_providerdetails.organization_id, accounts_providerdetails.hpii_number": "provider_hpii_per_org_unique",
}


# --- public services ---------------------------------------------------------------------------


def user_create(
    *,
    organization,
    actor: Actor,
    email: str,
    given_name: str,
    family_name: str,
    title: str = "",
    phone: str = "",
    partner_user_id: str | None = None,
    roles=None,
    provider_details: dict | None = None,
    access_expires_at: datetime.datetime | None = None,
) -> User:
    roles = _validated_roles(role_names.DEFAULT_ROLES if roles is None else roles)
    user = User(
        organization=organization,
        email=email,
        given_name=given_name,
        family_name=family_name,
        title=title,
        phone=phone,
        partner_user_id=partner_user_id,
        roles=roles,
        access_expires_at=access_expires_at,
    )
    _blank_to_null(user, USER_FIELDS)
    user.set_unusable_password()
    # The organization comes from the caller's principal, not the body: checking it exists again
    # would cost a query per create (the foreign key still guards it).
    errors = _clean(user, exclude=["password", "last_login", "organization"])
    errors.update(_expiry_errors(user, changed=access_expires_at is not None))

    details = None
    if provider_details or role_names.PROVIDER in roles:
        details = ProviderDetails(user=user, organization=organization, **(provider_details or {}))
        _fill_details_from_user(details, user, given=provider_details or {}, user_errors=errors)
        _blank_to_null(details, PROVIDER_FIELDS)
        errors.update(_clean(details, exclude=["user", "organization"], prefix="provider_details."))
        if role_names.PROVIDER in roles:
            errors.update(_missing_required_provider_fields(details, already_invalid=errors))
    if errors:
        raise ValidationError(errors)

    identity_given = details is not None and any(getattr(details, f) for f in PERSON_IDENTIFYING_FIELDS)
    if identity_given:
        _mark_identity_changed(details)
    with transaction.atomic():
        login_name_lock(organization_id=organization.pk, names=[user.email])
        _check_conflicts(user, details, claims_login_name=True)
        with _conflicts_as_409():
            save_with_history(user, actor)
            if details is not None:
                save_with_history(details, actor)
        audit_event_record(
            action=AuditEvent.Action.USER_CREATED,
            actor=actor,
            organization_id=organization.pk,
            user_id=user.pk,
            changes=changes_between({}, snapshot(user, USER_FIELDS + ("roles",)), rename={"roles": "access_roles"}),
        )
        if details is not None:
            audit_event_record(
                action=AuditEvent.Action.PROVIDER_DETAILS_UPDATED,
                actor=actor,
                organization_id=organization.pk,
                user_id=user.pk,
                changes=changes_between({}, snapshot(details, PROVIDER_FIELDS)),
            )
        signals.user_created.send(sender=User, user=user)
        if identity_given:
            signals.provider_identity_changed.send(
                sender=User, user=user, previous_status=VerificationStatus.UNVERIFIED, actor=actor, new_details=True
            )
    return user


def user_update(*, user: User, actor: Actor, data: dict, provider_details: dict | None = None) -> User:
    """Partial update: only the fields given change; provider_details merge into the stored ones."""
    unknown = set(data) - set(USER_FIELDS)
    if unknown:
        raise ValueError(f"user_update does not change {sorted(unknown)}")
    with transaction.atomic():
        user = _lock(user)
        refuse_if_disabled(user)

        before = snapshot(user, USER_FIELDS)
        expires_before = user.access_expires_at
        for field, value in data.items():
            setattr(user, field, value)
        _blank_to_null(user, data)
        if expires_before is not None and expires_before <= timezone.now() and user.access_expires_at != expires_before:
            # Cleared or moved, a passed expiry would hand back access that has ended: staff
            # re-enable the user instead (user_enable), which is audited as such.
            raise ApplicationError(
                f"Access expired at {expires_before.astimezone(datetime.UTC).isoformat()}: it can't be cleared or "
                "moved. The user is disabled within a minute; platform staff re-enable them.",
                code="access_expired",
                status=409,
                field="access_expires_at",
            )
        errors = _clean(user, exclude=["password", "last_login", "organization"])  # not changeable here
        errors.update(_expiry_errors(user, changed=user.access_expires_at != expires_before))

        details = getattr(user, "provider_details", None)
        details_before = snapshot(details, PROVIDER_FIELDS) if details else {}
        if provider_details:
            if details is None:
                details = ProviderDetails(user=user, organization_id=user.organization_id)
            for field, value in provider_details.items():
                setattr(details, field, value)
            _fill_details_from_user(details, user, given=provider_details, user_errors=errors)
            _blank_to_null(details, provider_details)
            errors.update(_clean(details, exclude=["user", "organization"], prefix="provider_details."))
        if errors:
            raise ValidationError(errors)

        user_changes = changes_between(before, snapshot(user, USER_FIELDS))
        details_changes = (
            changes_between(details_before, snapshot(details, PROVIDER_FIELDS)) if provider_details else {}
        )
        if "email" in user_changes:
            login_name_lock(organization_id=user.organization_id, names=[user.email])
        identity_changed = bool(details_changes) and not set(PERSON_IDENTIFYING_FIELDS).isdisjoint(details_changes)
        previous_verification = details.verification_status if details is not None else None
        if identity_changed:
            # Can't prescribe on the old answer: these details are not what the register was asked about.
            _mark_identity_changed(details)
        _check_conflicts(
            user if user_changes else None,
            details if "hpii_number" in details_changes else None,
            claims_login_name="email" in user_changes,
        )
        with _conflicts_as_409():
            if user_changes:
                save_with_history(user, actor)
            if details_changes:
                save_with_history(details, actor)
        if details_changes and not user_changes:
            # The user resource shows the details, so its updated_at moves with them. No user field
            # changed, so no user history row: a plain UPDATE of the one column.
            user.updated_at = details.updated_at
            User.objects.filter(pk=user.pk).update(updated_at=user.updated_at)
        if user_changes:
            audit_event_record(
                action=AuditEvent.Action.USER_UPDATED,
                actor=actor,
                organization_id=user.organization_id,
                user_id=user.pk,
                changes=user_changes,
            )
        if details_changes:
            user.provider_details = details
            audit_event_record(
                action=AuditEvent.Action.PROVIDER_DETAILS_UPDATED,
                actor=actor,
                organization_id=user.organization_id,
                user_id=user.pk,
                changes=details_changes,
            )
        # One domain signal per call, whatever changed (one outbox write, one inline sync).
        if user_changes:
            signals.user_updated.send(
                sender=User,
                user=user,
                fields=tuple(sorted(user_changes)),
                provider_details_changed=bool(details_changes),
            )
        elif details_changes:
            signals.provider_details_updated.send(sender=User, user=user)
        if identity_changed:
            signals.provider_identity_changed.send(
                sender=User, user=user, previous_status=previous_verification, actor=actor
            )
    return user


def user_roles_set(*, user: User, actor: Actor, roles) -> User:
    """Replace the roles. Provider details are never touched: they apply again if provider returns."""
    with transaction.atomic():
        user = _lock(user)
        refuse_if_disabled(user)  # before the body's checks, as user_update does
        roles = _validated_roles(roles)
        if user.roles == roles:
            return user
        old_roles, user.roles = user.roles, roles
        save_with_history(user, actor)
        audit_event_record(
            action=AuditEvent.Action.USER_ROLES_CHANGED,
            actor=actor,
            organization_id=user.organization_id,
            user_id=user.pk,
            changes={"access_roles": {"from": old_roles, "to": roles}},
        )
        signals.user_roles_changed.send(sender=User, user=user)
    return user


def user_disable(*, user: User, actor: Actor, reason: str | None = None) -> User:
    """Disable, drop to member, and (after commit) disable and sign out the Cognito account.
    `reason` (optional, up to 500 characters) is recorded in the audit event's changes.

    Idempotent: an already disabled user is returned unchanged, with no event and no signal.
    """
    reason = validated_reason(reason)
    with transaction.atomic():
        user = _lock(user)
        if user.is_disabled:
            return user
        before = snapshot(user, ("status", "roles", "disabled_at"))
        user.status = User.Status.DISABLED
        user.disabled_at = timezone.now()
        user.roles = list(role_names.DEFAULT_ROLES)
        save_with_history(user, actor)
        audit_event_record(
            action=AuditEvent.Action.USER_DISABLED,
            actor=actor,
            organization_id=user.organization_id,
            user_id=user.pk,
            changes={
                **changes_between(
                    before, snapshot(user, ("status", "roles", "disabled_at")), rename={"roles": "access_roles"}
                ),
                **({"reason": {"from": None, "to": reason}} if reason else {}),
            },
        )
        signals.user_disabled.send(sender=User, user=user)
    return user


def user_enable(*, user: User, actor: Actor) -> User:
    """Staff only (admin): re-enable a disabled user. Roles stay member; they are granted again explicitly."""
    with transaction.atomic():
        user = _lock(user)
        if user.is_active:
            return user
        fields = ("status", "disabled_at", "access_expires_at")
        before = snapshot(user, fields)
        user.status = User.Status.ACTIVE
        user.disabled_at = None
        if user.access_expires_at is not None and user.access_expires_at <= timezone.now():
            # An expiry already past would have the worker disable the user again within seconds:
            # re-enabling means access without that end date (staff set a new one if needed).
            user.access_expires_at = None
        save_with_history(user, actor)
        audit_event_record(
            action=AuditEvent.Action.USER_ENABLED,
            actor=actor,
            organization_id=user.organization_id,
            user_id=user.pk,
            changes=changes_between(before, snapshot(user, fields)),
        )
        signals.user_enabled.send(sender=User, user=user)
    return user


# --- rules ---------------------------------------------------------------------------------------


def _mark_identity_changed(details: ProviderDetails) -> None:
    """Details with an HPI-I or AHPRA number are asked about (pending); without either there is
    nothing to search the register by (unverified). The old answer was about other details: its
    HPI-I status, message, HPI-I found and next check go (checked_at stays: when it last answered)."""
    details.verification_status = (
        verification_status_when_asked() if details.has_identity else VerificationStatus.UNVERIFIED
    )
    details.verification_hpii_status = None
    details.verification_message = ""
    details.verification_found_hpii = None
    details.verification_next_check_at = None


def _validated_roles(roles) -> list[str]:
    if not isinstance(roles, (list, tuple)) or not roles:
        raise ApplicationError(
            "access_roles must be a non-empty list; send [\"member\"] to remove every other role.",
            code="invalid_role",
            field="access_roles",
        )
    invalid = sorted({str(role) for role in roles if role not in role_names.ALL_ROLES})
    if invalid:
        allowed = ", ".join(sorted(role_names.ALL_ROLES))
        raise ApplicationError(
            f"Unknown or unassignable role(s): {', '.join(invalid)}. Allowed: {allowed}.",
            code="invalid_role",
            field="access_roles",
        )
    return role_names.normalize_roles(roles)


def _expiry_errors(user: User, *, changed: bool) -> dict:
    """A new access_expires_at must be in the future (a stored one that has just passed is the
    worker's to act on, and doesn't block other changes). Null means no expiry."""
    if not changed or not isinstance(user.access_expires_at, datetime.datetime):
        return {}  # unchanged, null, or not a date-time (full_clean reports that one)
    if user.access_expires_at <= timezone.now():
        return {
            "access_expires_at": [
                ValidationError("Must be in the future (or null for no expiry).", code="invalid")
            ]
        }
    if timezone.is_aware(user.access_expires_at):  # the audit trail shows it in UTC, as the API does
        user.access_expires_at = user.access_expires_at.astimezone(datetime.UTC)
    return {}


def refuse_if_disabled(user: User) -> None:
    """409 user_disabled: a disabled user can't be changed (or asked about) through the API."""
    if user.is_disabled:
        raise ApplicationError(
            "This user is disabled and can't be changed; platform staff re-enable them in the admin.",
            code="user_disabled",
            status=409,
        )


def _missing_required_provider_fields(details: ProviderDetails, *, already_invalid: dict) -> dict:
    required = list(PROVIDER_FIELDS_REQUIRED_AT_CREATE)
    if details.prescriber_type != "T":
        required.append("prescriber_number")
    message = "This field is required when access_roles includes provider."
    return {
        f"provider_details.{field}": [ValidationError(message, code="required")]
        for field in required
        if getattr(details, field) in (None, "") and f"provider_details.{field}" not in already_invalid
    }


def _fill_details_from_user(details: ProviderDetails, user: User, *, given: dict, user_errors: dict) -> None:
    """The provider's own name and phone default to the user's when not given. An invalid one is not
    copied: the caller sent it once, so it is reported once, under the user's field."""
    for field in ("given_name", "family_name", "phone"):
        if field not in given and field not in user_errors and not getattr(details, field):
            setattr(details, field, getattr(user, field) or "")


def _check_conflicts(user: User | None, details: ProviderDetails | None, *, claims_login_name: bool = False) -> None:
    if user is not None:
        # One query for the user-level rules (_user_clashes). An identity provider finds users by
        # SCIM userName, and a user SCIM never wrote answers to its e-mail: with claims_login_name,
        # no user's e-mail may be another user's userName in the organization, or the identity
        # provider could update or disable the wrong one. The caller holds login_name_lock for the
        # e-mail, which SCIM takes too before it checks a userName.
        email = user.email.lower()
        with_partner = bool(user.partner_user_id)
        values = {"email": email, "user_id": _as_uuid(user.pk)}
        if with_partner or claims_login_name:
            values["organization_id"] = _as_uuid(user.organization_id)
        if with_partner:
            values["partner_user_id"] = user.partner_user_id
        clashes = _user_clashes(with_partner, claims_login_name).rows(**values)
        if any(row["email"].lower() == email for row in clashes):
            _raise_conflict("user_email_ci_unique")
        if with_partner and any(
            row["organization_id"] == user.organization_id and row["partner_user_id"] == user.partner_user_id
            for row in clashes
        ):
            _raise_conflict("user_partner_id_per_org_unique")
        if clashes:
            _raise_conflict("scim_user_name")
    if (
        details is not None
        and details.hpii_number
        and ProviderDetails.objects.filter(organization_id=details.organization_id, hpii_number=details.hpii_number)
        .exclude(user_id=details.user_id)
        .exists()
    ):
        _raise_conflict("provider_hpii_per_org_unique")


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


_USER_CLASHES: dict[tuple[bool, bool], PreparedQuery] = {}


def _user_clashes(with_partner: bool, claims_login_name: bool) -> PreparedQuery:
    """Up to three other users whose e-mail is this one (lower(email), served by the unique index
    user_email_ci_unique; iexact's UPPER() is not), or with this partner id in the organization
    (its per-organization constraint), or, when claiming the login name, whose live SCIM userName
    is this e-mail (the SCIM identity is named by its relation: accounts doesn't import the scim
    app). Compiled once per shape: every create and every e-mail change runs it."""
    key = (with_partner, claims_login_name)
    query = _USER_CLASHES.get(key)
    if query is not None:
        return query

    def build(email, user_id, organization_id=None, partner_user_id=None):
        same = Q(email_lower=email)
        if with_partner:
            same |= Q(organization_id=organization_id, partner_user_id=partner_user_id)
        users = User.objects.alias(email_lower=Lower("email"))
        if claims_login_name:
            same |= Q(organization_id=organization_id, user_name_lower=email, scim_identity__deleted_at__isnull=True)
            users = users.alias(user_name_lower=Lower("scim_identity__user_name"))
        return users.filter(same).exclude(pk=user_id).values("email", "organization_id", "partner_user_id")[:3]

    parameters = {"email": str, "user_id": uuid.UUID}
    if with_partner or claims_login_name:
        parameters["organization_id"] = uuid.UUID
    if with_partner:
        parameters["partner_user_id"] = str
    return _USER_CLASHES.setdefault(key, PreparedQuery(build, **parameters))


def login_name_lock(*, organization_id, names) -> None:
    """Hold, until the transaction ends, the organization's lock on each of these login names
    (case-insensitive): the SCIM userNames and the e-mail addresses an identity provider matches
    users by. Taken in one order, so two writers claiming each other's names can't deadlock."""
    if connection.vendor != "postgresql":
        return  # SQLite runs one writer at a time anyway
    keys = sorted({f"login-name:{organization_id}:{name.strip().lower()}" for name in names if name})
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _raise_conflict(constraint: str):
    field, code, message = _CONFLICTS[constraint]
    raise ApplicationError(message, code=code, status=409, field=field)


class _conflicts_as_409:
    """Two requests can pass the explicit checks at once; the database constraint decides, and the
    loser gets the same 409 as if the check had caught it."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, IntegrityError):
            text = str(exc)
            for constraint in _CONFLICTS:
                if constraint in text:
                    _raise_conflict(constraint)
            for columns, constraint in _SQLITE_CONFLICT_COLUMNS.items():
                if columns in text:
                    _raise_conflict(constraint)
        return False


# --- mechanics -------------------------------------------------------------------------------------


def _lock(user: User) -> User:
    """Re-read the user under a row lock: concurrent writers to one user queue up, none is lost.
    The user comes with its organization and provider details attached (None where there are none),
    as select_related would attach them; the query is compiled once (every write runs it)."""
    rows = _LOCKED_USER.rows(user_id=user.pk if isinstance(user.pk, uuid.UUID) else uuid.UUID(str(user.pk)))
    if not rows:
        raise User.DoesNotExist("No such user.")
    row = rows[0]
    locked = _instance(User, "", row)
    organization = _instance(Organization, "organization__", row)
    details = _instance(ProviderDetails, "provider_details__", row)
    User._meta.get_field("organization").set_cached_value(locked, organization)
    User._meta.get_field("provider_details").set_cached_value(locked, details)
    if details is not None:
        ProviderDetails._meta.get_field("user").set_cached_value(details, locked)
    return locked


_LOCKED_PATHS = ((User, ""), (Organization, "organization__"), (ProviderDetails, "provider_details__"))
_LOCKED_USER = PreparedQuery(
    lambda user_id: User.objects.filter(pk=user_id).values(
        *(f"{prefix}{field.attname}" for model, prefix in _LOCKED_PATHS for field in model._meta.concrete_fields)
    ),
    for_update_of=User,
    user_id=uuid.UUID,
)


def _instance(model, prefix: str, row: dict):
    names = [field.attname for field in model._meta.concrete_fields]
    if row[f"{prefix}{model._meta.pk.attname}"] is None:  # no such related row (a LEFT JOIN)
        return None
    return model.from_db(router.db_for_write(User), names, [row[f"{prefix}{name}"] for name in names])


def _clean(instance, *, exclude, prefix: str = "") -> dict:
    try:
        # Uniqueness is checked explicitly (for the contract's 409 codes), not as a validation error.
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        return {f"{prefix}{field}": messages for field, messages in error.error_dict.items()}
    return {}


def _blank_to_null(instance, fields) -> None:
    for field in fields:
        if field in _NULLABLE_WHEN_EMPTY and getattr(instance, field) == "":
            setattr(instance, field, None)
