import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Now
from django.utils import timezone
from simple_history.models import HistoricalRecords

from accounts import roles as role_names
from core.outbox import LeasedRow
from identifiers.checks import PRESCRIBER_TYPES, SEXES
from identifiers.fields import (
    AhpraNumberField,
    AustralianPhoneField,
    HpiiField,
    PrescriberNumberField,
    ProviderNumberField,
    validate_date_of_birth,
)


class UserManager(BaseUserManager):
    """Only platform staff are created here; practice users go through accounts.services.user_create."""

    def create_superuser(self, email, password=None, **extra_fields):
        user = self.model(
            email=email.strip().lower(),
            is_staff=True,
            is_superuser=True,
            roles=list(role_names.DEFAULT_ROLES),
            **extra_fields,
        )
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        return self.get(email=username.strip().lower())


def validate_ascii_email(value: str) -> None:
    """E-mail addresses are ASCII only. An internationalised address (`demo@example.org` with a
    Cyrillic e, or a Unicode domain) can look exactly like another user's and reach Cognito beside
    it. A Unicode domain's ASCII (punycode, xn--) form is accepted: it is what mail uses anyway."""
    if not value.isascii():
        raise ValidationError(
            "Enter the address in ASCII: internationalised addresses (letters outside A-Z, such as "
            "accented or Cyrillic ones) aren't accepted; write a Unicode domain in its punycode (xn--) form.",
            code="invalid",
        )


def has_role(role: str) -> Q:
    """Users holding `role`. Roles are a JSON list; the quoted name can't match a longer role's name,
    and it works on PostgreSQL and SQLite alike. The one spelling of this condition: the per-role
    partial indexes are used only when a query's condition is exactly the index's."""
    return Q(roles__icontains=f'"{role}"')


class User(AbstractBaseUser, PermissionsMixin):
    """A person: a practice's staff member (one organization) or platform staff (admin only)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    # Stored lower-cased (clean()); ASCII only, whatever the entry point (full_clean runs the validator).
    email = models.EmailField(max_length=254, validators=[validate_ascii_email])
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    title = models.CharField(max_length=50, blank=True)
    phone = AustralianPhoneField(max_length=16, blank=True)
    partner_user_id = models.CharField(max_length=128, null=True, blank=True)
    roles = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # When set, the worker disables the user once it passes (accounts/expiry.py). Set through the
    # services, which refuse a moment in the past.
    access_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The user is disabled automatically at this moment (UTC). Empty: never."
    )
    is_staff = models.BooleanField(default=False, help_text="Platform staff: may sign in to the admin.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["password", "last_login"])
    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["given_name", "family_name"]

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.UniqueConstraint(
                fields=["organization", "partner_user_id"],
                condition=Q(partner_user_id__isnull=False),
                name="user_partner_id_per_org_unique",
            ),
            # Practice users belong to exactly one organization; only platform staff have none.
            models.CheckConstraint(
                condition=Q(organization__isnull=False) | Q(is_staff=True), name="user_org_unless_staff"
            ),
            models.CheckConstraint(
                condition=Q(status="active", disabled_at__isnull=True)
                | Q(status="disabled", disabled_at__isnull=False),
                name="user_disabled_at_matches_status",
            ),
        ]
        indexes = [
            # The users list: one organization, newest first (also the cursor order).
            models.Index(fields=["organization", "-created_at", "-id"], name="user_org_newest_idx"),
            # ?status= within an organization, newest first.
            models.Index(fields=["organization", "status", "-created_at"], name="user_org_status_idx"),
            # ?role=<role>: one partial index per role, in the cursor order, so a filtered page (deep
            # ones too) is a keyset range scan however rare the role. The condition is the filter's
            # own expression (UserFilter.filter_role), which is what lets the planner use it.
            *(
                models.Index(
                    fields=["organization", "-created_at", "-id"],
                    condition=has_role(role),
                    name=f"user_org_role_{role}_idx",
                )
                for role in sorted(role_names.ALL_ROLES)
            ),
            # The expiry worker's claim (accounts/expiry.py): active users whose access has an end.
            models.Index(
                fields=["access_expires_at"],
                condition=Q(status="active", access_expires_at__isnull=False),
                name="user_access_expiry_due_idx",
            ),
            # ?search= (substring of a name or email) is the PostgreSQL-only trigram index
            # user_search_trgm_idx, created in migration 0004_performance_indexes.
        ]

    def __str__(self):
        return self.email

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def is_disabled(self) -> bool:
        return self.status == self.Status.DISABLED

    @property
    def has_provider_role(self) -> bool:
        return role_names.PROVIDER in self.roles

    def get_full_name(self):
        return f"{self.given_name} {self.family_name}".strip()

    def get_short_name(self):
        return self.given_name

    @property
    def access_expired(self) -> bool:
        """The expiry has passed: the user counts as expired now, whether or not the worker has
        disabled them yet."""
        return self.access_expires_at is not None and self.access_expires_at <= timezone.now()

    @property
    def can_prescribe(self) -> bool:
        details = getattr(self, "provider_details", None)
        return (
            self.is_active
            and not self.access_expired
            and self.has_provider_role
            and details is not None
            and details.is_prescribable
        )

    def clean(self):
        super().clean()
        self.email = self.email.strip().lower()


class StaffUser(User):
    """Platform staff, as the admin manages them: no organization, no Cognito account, no audit trail
    of the practice kind, so they get their own admin page beside the practice users'."""

    class Meta:
        proxy = True
        verbose_name = "platform staff member"
        verbose_name_plural = "platform staff"


class VerificationStatus(models.TextChoices):
    """What the HI Service said about the person-identifying provider details (CONTRACT.md, third part)."""

    UNVERIFIED = "unverified", "unverified (nothing asked yet)"
    PENDING = "pending", "pending (asked, no answer yet)"
    VERIFIED = "verified", "verified"
    MISMATCH = "mismatch", "mismatch (the register knows the number, not with these details)"
    NOT_FOUND = "not_found", "not found"
    INACTIVE = "inactive", "inactive (deactivated or retired)"
    ERROR = "error", "error (the register could not be asked)"


# The provider fields that say who the person is: a change to any of them asks the register again.
PERSON_IDENTIFYING_FIELDS = ("hpii_number", "ahpra_number", "family_name", "given_name", "date_of_birth", "sex")


def verification_status_when_asked() -> str:
    """The state of details whose register check is queued: `pending`, or `unverified` while no
    register is configured (HI_SERVICE_URL unset: nobody asks it)."""
    if getattr(settings, "HI_SERVICE_URL", ""):
        return VerificationStatus.PENDING
    return VerificationStatus.UNVERIFIED


class ProviderDetails(models.Model):
    """What makes a user a prescriber. Kept when the provider role goes; applies again when it returns.

    The `verification_*` columns are the HI Service's answer about these details, written by the
    verification app (and set `pending` by accounts.services when an identifying field changes).
    They are not provider fields a caller sets (PROVIDER_FIELDS leaves them out)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="provider_details", primary_key=True)
    # Copied from the user so HPI-I uniqueness per organization is a plain database constraint.
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    given_name = models.CharField(max_length=100, blank=True)
    family_name = models.CharField(max_length=100, blank=True)
    date_of_birth = models.DateField(null=True, blank=True, validators=[validate_date_of_birth])
    sex = models.CharField(max_length=1, choices=SEXES, blank=True)
    phone = AustralianPhoneField(max_length=16, blank=True)
    hpii_number = HpiiField("HPI-I", max_length=16, null=True, blank=True)
    prescriber_type = models.CharField(max_length=1, choices=PRESCRIBER_TYPES, blank=True)
    prescriber_number = PrescriberNumberField(max_length=7, blank=True)
    qualifications = models.CharField(max_length=200, blank=True)
    provider_number = ProviderNumberField("Medicare provider number", max_length=8, blank=True)
    ahpra_number = AhpraNumberField("AHPRA number", max_length=13, blank=True)
    hospital_provider_number = models.CharField(max_length=32, blank=True)
    verification_status = models.CharField(
        "verification", max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.UNVERIFIED
    )
    # The register's own value for the HPI-I's status (e.g. "A", "Active", "Deactivated"), as sent.
    verification_hpii_status = models.CharField("HPI-I status (register)", max_length=32, null=True, blank=True)
    verification_checked_at = models.DateTimeField("last check", null=True, blank=True)
    verification_next_check_at = models.DateTimeField("next check", null=True, blank=True)
    # The register's service-message codes and reasons, or why it could not be asked.
    verification_message = models.CharField("verification message", max_length=500, blank=True)
    # The HPI-I the register gave for a search by AHPRA number: shown, never copied into hpii_number.
    verification_found_hpii = models.CharField("HPI-I found (register)", max_length=16, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "provider details"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "hpii_number"],
                condition=Q(hpii_number__isnull=False),
                name="provider_hpii_per_org_unique",
            ),
        ]
        indexes = [
            # The revalidation sweep (verification/schedule.py): details whose next check is due.
            models.Index(
                fields=["verification_next_check_at"],
                condition=Q(verification_next_check_at__isnull=False),
                name="provider_next_check_idx",
            ),
            # The admin's filter by verification state.
            models.Index(fields=["verification_status"], name="provider_verification_idx"),
        ]

    def __str__(self):
        return f"Provider details of {self.user_id}"

    @property
    def is_complete(self) -> bool:
        return provider_details_complete(lambda field: getattr(self, field))

    @property
    def is_prescribable(self) -> bool:
        return provider_details_prescribable(lambda field: getattr(self, field))

    @property
    def has_identity(self) -> bool:
        """Something the register can be searched by: an HPI-I or an AHPRA number."""
        return bool(self.hpii_number or self.ahpra_number)


# The verification state's columns, in the model's order: written by the verification app only.
VERIFICATION_FIELDS = tuple(
    field.name for field in ProviderDetails._meta.concrete_fields if field.name.startswith("verification_")
)

# THE provider field list: ProviderDetails' own columns, in the model's order (everything but the
# key, the organization copy, the verification state and the timestamps). The services, the API's input and output, the
# users list's SQL, the importer's columns and the admin's forms all read it, so a field added to
# the model (and its migration) is everywhere at once.
PROVIDER_FIELDS = tuple(
    field.name
    for field in ProviderDetails._meta.concrete_fields
    if field.name not in ("user", "organization", "created_at", "updated_at") and field.name not in VERIFICATION_FIELDS
)

# What a prescriber needs on file; prescriber_number too unless the prescriber type is T.
PROVIDER_DETAILS_REQUIRED = (
    "given_name", "family_name", "date_of_birth", "sex", "hpii_number", "prescriber_type", "qualifications"
)


def provider_details_complete(get) -> bool:
    """`get(field)` gives a provider-details value: the one rule for ProviderDetails.is_complete and
    for the users list, which renders from database rows rather than model instances."""
    return not provider_details_missing(get)


def provider_details_missing(get) -> list[str]:
    """The required fields `get(field)` has no value for, in PROVIDER_DETAILS_REQUIRED order
    (prescriber_number last, unless the prescriber type is T)."""
    missing = [field for field in PROVIDER_DETAILS_REQUIRED if not get(field)]
    if get("prescriber_type") != "T" and not get("prescriber_number"):
        missing.append("prescriber_number")
    return missing


def access_not_expired_q() -> Q:
    """not User.access_expired, as a query condition on User."""
    return Q(access_expires_at__isnull=True) | Q(access_expires_at__gt=Now())


def verification_required() -> bool:
    """HI_VERIFICATION_REQUIRED (default on): prescribing needs the register's `verified`. Off only
    while an operator watches the first outcomes (check --deploy warns)."""
    return getattr(settings, "HI_VERIFICATION_REQUIRED", True)


def provider_details_prescribable(get) -> bool:
    """THE rule for what provider details let a provider prescribe: complete, and verified by the
    register (unless HI_VERIFICATION_REQUIRED is off). provider_details_prescribable_q is the same in SQL."""
    if not provider_details_complete(get):
        return False
    return not verification_required() or get("verification_status") == VerificationStatus.VERIFIED


def provider_details_prescribable_q(prefix: str = "", *, required: bool | None = None) -> Q:
    """provider_details_prescribable() as a query condition (`required`: the setting, read now if None)."""
    condition = provider_details_complete_q(prefix)
    if verification_required() if required is None else required:
        condition &= Q(**{f"{prefix}verification_status": VerificationStatus.VERIFIED})
    return condition


def provider_details_complete_q(prefix: str = "") -> Q:
    """provider_details_complete() as a query condition on ProviderDetails (`prefix` "") or through
    a relation to it (`prefix` "provider_details__")."""
    present = Q()
    for field in PROVIDER_DETAILS_REQUIRED:
        if field == "date_of_birth":
            present &= Q(**{f"{prefix}date_of_birth__isnull": False})
        else:
            present &= Q(**{f"{prefix}{field}__gt": ""})  # neither NULL nor empty
    return present & (Q(**{f"{prefix}prescriber_type": "T"}) | Q(**{f"{prefix}prescriber_number__gt": ""}))


class CognitoSync(LeasedRow):
    """The user's desired Cognito state and how far the sync has got: the outbox of the sync.

    Every change Cognito carries records the complete desired state and bumps `desired_version`
    in the same transaction as the change. Workers apply the latest desired state and mark the version they
    applied, so a task run twice, late, or after a crash converges on the same account; tasks for
    one user can't reorder because there is only ever one, and it always carries the newest state.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SYNCED = "synced"
        FAILED = "failed"

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="cognito_sync")
    desired = models.JSONField(default=dict)
    desired_version = models.PositiveBigIntegerField(default=1)
    synced_version = models.PositiveBigIntegerField(default=0)
    # The state last applied in full, so the next apply sends only what differs from it. NULL when
    # unknown (never applied, or an apply that failed after writing, or a lapsed lease): the next
    # apply then reads the account first. Drift made behind the service's back is
    # reconcile_cognito's to find.
    synced = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Failures since the last success.")
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "Cognito sync task"
        indexes = [
            # sync_cognito's claim: pending rows whose next attempt is due.
            models.Index(
                fields=["next_attempt_at"], condition=Q(state="pending"), name="cognito_sync_due_idx"
            ),
            # The admin's and `sync_cognito --status`'s failed list.
            models.Index(fields=["state"], condition=~Q(state="synced"), name="cognito_sync_open_idx"),
        ]

    def __str__(self):
        return f"Cognito sync of {self.user_id} ({self.state})"
