"""Admin forms. Practice users are written only through accounts.services, so these forms collect
input and hand it to a service; the service's ValidationError / ApplicationError come back as
field errors on the same form, so staff see exactly the rules the API enforces."""

from django import forms
from django.contrib.admin.widgets import AdminDateWidget
from django.contrib.auth.forms import BaseUserCreationForm, ReadOnlyPasswordHashField
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from django.utils.functional import lazy

from accounts import roles as role_names
from accounts import services
from accounts.models import PROVIDER_FIELDS, ProviderDetails, StaffUser, User
from audit.changes import REASON_MAX_LENGTH
from core.errors import ApplicationError
from core.operator_time import zone_help

PROVIDER_PREFIX = "provider_"
ROLE_CHOICES = [
    (role_names.ADMIN, "admin"),
    (role_names.PROVIDER, "provider"),
    (role_names.RECEPTIONIST, "receptionist"),
    (role_names.RX_READER, "rx_reader"),
    (role_names.MEMBER, "member"),
]


def provider_form_field_name(field: str) -> str:
    return f"{PROVIDER_PREFIX}{field}"


def _provider_form_fields() -> dict:
    """ProviderDetails' own form fields (labels, choices, lengths), under prefixed names."""
    fields = {}
    for name in PROVIDER_FIELDS:
        field = ProviderDetails._meta.get_field(name).formfield(required=False)
        if name == "date_of_birth":
            field.widget = AdminDateWidget()
        fields[provider_form_field_name(name)] = field
    return fields


class ServiceErrorsMixin:
    """Maps a service's error keys (`email`, `provider_details.hpii_number`, `access_roles`) onto
    this form's fields; anything without a field becomes a non-field error."""

    service_field_names: dict = {}

    def _form_field_for(self, key: str | None) -> str | None:
        if not key:
            return None
        if key.startswith("provider_details."):
            key = provider_form_field_name(key.removeprefix("provider_details."))
        key = self.service_field_names.get(key, key)
        return key if key in self.fields else None

    def add_service_error(self, error: Exception) -> None:
        if isinstance(error, ApplicationError):
            self.add_error(self._form_field_for(error.field), ValidationError(error.message, code=error.code))
            return
        if hasattr(error, "error_dict"):
            for key, messages in error.error_dict.items():
                field = self._form_field_for(key)
                if field is None and key != NON_FIELD_ERRORS:
                    # A rule on a field this form doesn't show: still say which one.
                    messages = [ValidationError(f"{key}: {'; '.join(e.messages)}") for e in messages]
                self.add_error(field, messages)
        else:
            self.add_error(None, error)


# ProviderDetails' fields, declared on a base so the metaclass collects them like hand-written ones.
_ProviderDetailsFields = type(
    "_ProviderDetailsFields", (forms.Form,), {"__module__": __name__, **_provider_form_fields()}
)


def _expiry_help_text() -> str:
    # Read in TIME_ZONE, as Django's admin reads every date-time; the API takes RFC 3339.
    return (
        f"In {zone_help()}, as every time in the admin. The user is disabled automatically at this moment. "
        "Empty: never."
    )


# Lazy: the zone's current abbreviation and offset, at each rendering.
_expiry_help = lazy(_expiry_help_text, str)


class PracticeUserAdminForm(ServiceErrorsMixin, _ProviderDetailsFields, forms.ModelForm):
    """One form for the user and their provider details, saved by user_create / user_update.

    The write happens when the form validates (in `_post_clean`, which for a ModelForm is where the
    model's own validation would run): that is the only point at which the service's verdict can
    still be shown as field errors. The admin's save_model is then a no-op. The admin sets `actor`
    and `readonly_names` on the class it builds per request.
    """

    actor = None
    readonly_names: frozenset = frozenset()
    service_field_names = {"access_roles": "roles"}

    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[role_names.MEMBER],
        help_text="Provider needs the provider details below. Member alone is the baseline.",
    )

    class Meta:
        model = User
        fields = [
            "organization", "email", "given_name", "family_name", "title", "phone", "partner_user_id",
            "access_expires_at",
        ]
        # Also what a read-only page shows beside the value (Django reads Meta.help_texts there).
        help_texts = {"access_expires_at": _expiry_help()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.readonly_names:
            self.fields.pop(name, None)
        self.adding = self.instance._state.adding
        if self.adding:
            if "organization" in self.fields:
                self.fields["organization"].required = True
        else:
            self.fields.pop("roles", None)  # changed through "Set roles", which has its own audit event
            details = getattr(self.instance, "provider_details", None)
            if details is not None:
                for name in PROVIDER_FIELDS:
                    self.initial[provider_form_field_name(name)] = getattr(details, name)

    def _provider_values(self, *, changed_only: bool) -> dict:
        values = {}
        for name in PROVIDER_FIELDS:
            form_name = provider_form_field_name(name)
            if form_name not in self.cleaned_data:
                continue
            value = self.cleaned_data[form_name]
            if changed_only and form_name not in self.changed_data:
                continue
            if not changed_only and value in (None, ""):
                continue  # at create, let the service fill the provider's name and phone from the user's
            values[name] = "" if value is None and name != "date_of_birth" else value
        return values

    def _post_clean(self):
        if self.errors:
            return
        if self.actor is None:
            raise RuntimeError("PracticeUserAdminForm needs an actor (set by the admin).")
        data = self.cleaned_data
        try:
            if self.adding:
                self.instance = services.user_create(
                    organization=data["organization"],
                    actor=self.actor,
                    email=data["email"],
                    given_name=data["given_name"],
                    family_name=data["family_name"],
                    title=data.get("title") or "",
                    phone=data.get("phone") or "",
                    partner_user_id=data.get("partner_user_id") or None,
                    access_expires_at=data.get("access_expires_at"),
                    roles=data.get("roles") or [role_names.MEMBER],
                    provider_details=self._provider_values(changed_only=False) or None,
                )
            else:
                changes = {f: data[f] for f in services.USER_FIELDS if f in self.changed_data and f in data}
                self.instance = services.user_update(
                    user=self.instance,
                    actor=self.actor,
                    data=changes,
                    provider_details=self._provider_values(changed_only=True) or None,
                )
        except (ValidationError, ApplicationError) as error:
            self.add_service_error(error)


class RolesForm(ServiceErrorsMixin, forms.Form):
    """The roles page: the chosen set replaces the user's roles (user_roles_set)."""

    service_field_names = {"access_roles": "roles"}

    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,  # an empty choice reaches the service, which explains the rule
        help_text="The chosen roles replace the current ones. Member alone removes every other role.",
    )


class DisableForm(forms.Form):
    """The disable confirmation page: an optional reason, recorded in the audit event (user_disable)."""

    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=f"Optional, up to {REASON_MAX_LENGTH} characters: why (e.g. left the practice). "
        "Recorded in the audit event.",
    )


class StaffUserCreationForm(BaseUserCreationForm):
    """A new platform staff member: no organization, admin access, a password."""

    class Meta:
        model = StaffUser
        fields = ("email", "given_name", "family_name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.is_staff = True  # the model's check: no organization unless staff
        self.instance.roles = list(role_names.DEFAULT_ROLES)


class StaffUserChangeForm(forms.ModelForm):
    password = ReadOnlyPasswordHashField(
        label="Password",
        help_text='Raw passwords are not stored. <a href="../password/">Set a new password</a>.',
    )

    class Meta:
        model = StaffUser
        fields = ("email", "given_name", "family_name", "status", "is_superuser", "groups", "user_permissions")

    def clean(self):
        cleaned = super().clean()
        # Keep disabled_at in step with status (a database check enforces the pair).
        status = cleaned.get("status")
        if status == User.Status.DISABLED and self.instance.disabled_at is None:
            self.instance.disabled_at = timezone.now()
        elif status == User.Status.ACTIVE:
            self.instance.disabled_at = None
        return cleaned
