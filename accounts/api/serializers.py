"""Input shapes (type checks only; the rules live in the models and services) and the user resource."""

import datetime
import re

from rest_framework import serializers

from accounts import roles as role_names
from accounts.models import provider_details_complete
from accounts.services import PROVIDER_FIELDS
from config.api.fields import StrictCharField


class Rfc3339DateTimeField(serializers.DateTimeField):
    """An RFC 3339 date-time: a JSON string with a date, a time and a UTC offset (`Z` or `+10:00`),
    returned in UTC. A moment without an offset is ambiguous, so it is refused, not guessed."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 date-time with a UTC offset, e.g. 2027-01-31T17:00:00Z.",
        "out_of_range": "The date-time is out of range.",
    }

    def __init__(self, **kwargs):
        super().__init__(input_formats=["iso-8601"], **kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _RFC3339.match(value):
            self.fail("invalid")
        moment = super().to_internal_value(value)
        try:
            return moment.astimezone(datetime.UTC)
        except (OverflowError, ValueError):  # year 1 or 9999 with an offset leaves the calendar
            self.fail("out_of_range")


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})\Z")


def _text(max_length, **kwargs):
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    return StrictCharField(max_length=max_length, trim_whitespace=True, **kwargs)


def _role():
    # "" is an unknown role like any other: the service answers it with the contract's invalid_role.
    return StrictCharField(max_length=32, allow_blank=True, trim_whitespace=False)


class RejectUnknownFieldsMixin:
    """A misspelt field (`hpi_number`) is an error, not silently ignored."""

    unknown_field_messages: dict = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {
                        field: [
                            serializers.ErrorDetail(
                                self.unknown_field_messages.get(field, "Unknown field."), code="unknown_field"
                            )
                        ]
                        for field in sorted(unknown)
                    }
                )
        return super().to_internal_value(data)


class ProviderDetailsInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    given_name = _text(100)
    family_name = _text(100)
    date_of_birth = serializers.DateField(required=False, allow_null=True, input_formats=["iso-8601"])
    sex = _text(1)
    phone = _text(32)
    hpii_number = _text(32, allow_null=True)
    prescriber_type = _text(1)
    prescriber_number = _text(16)
    qualifications = _text(200)
    provider_number = _text(16)
    ahpra_number = _text(16)
    hospital_provider_number = _text(32)


# Provider fields that may also be given flat in a user body (names and phone are the user's own).
FLAT_PROVIDER_FIELDS = tuple(f for f in PROVIDER_FIELDS if f not in ("given_name", "family_name", "phone"))


class _UserInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    # Type and length only: the model's EmailValidator checks the address, so a bad email is
    # reported together with every other rule the body breaks, not on its own first.
    email = _text(254, allow_blank=False)
    given_name = _text(100, allow_blank=False)
    family_name = _text(100, allow_blank=False)
    title = _text(50)
    phone = _text(32)
    partner_user_id = _text(128, allow_null=True)
    # In the future (the services check it, so every entry point does), or null for no expiry.
    access_expires_at = Rfc3339DateTimeField(required=False, allow_null=True)
    provider_details = ProviderDetailsInputSerializer(required=False)

    def get_fields(self):
        fields = super().get_fields()
        provider_fields = ProviderDetailsInputSerializer().get_fields()
        for name in FLAT_PROVIDER_FIELDS:
            fields[name] = provider_fields[name]
        return fields

    def split(self) -> tuple[dict, dict | None, frozenset]:
        """(user fields, provider details, the provider fields whose errors are named flat).

        Errors name a field as the caller sent it. Without a nested object every provider field is
        named flat, the documented form, so a missing one is reported as `hpii_number`.
        """
        data = dict(self.validated_data)
        nested = data.pop("provider_details", None)
        flat = {name: data.pop(name) for name in FLAT_PROVIDER_FIELDS if name in data}
        flat_names = frozenset(FLAT_PROVIDER_FIELDS) if nested is None else frozenset(flat) - set(nested)
        if nested is None and not flat:
            return data, None, flat_names
        return data, {**flat, **(nested or {})}, flat_names


class UserCreateSerializer(_UserInputSerializer):
    email = _text(254, required=True, allow_blank=False)
    given_name = _text(100, required=True, allow_blank=False)
    family_name = _text(100, required=True, allow_blank=False)
    access_roles = serializers.ListField(child=_role(), required=False, max_length=20)


class UserUpdateSerializer(_UserInputSerializer):
    unknown_field_messages = {
        "access_roles": "Roles can't be changed here: use PUT /v1/organizations/{org}/users/{id}/roles.",
    }


class UserRolesSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    access_roles = serializers.ListField(child=_role(), max_length=20)


class UserDisableSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """PUT /disable's optional body. No body at all is the same as {}."""

    reason = _text(500, allow_null=True, help_text="Why the user is disabled; recorded in the audit event.")


class ProviderDetailsSerializer(serializers.Serializer):
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    date_of_birth = serializers.DateField(allow_null=True)
    sex = serializers.CharField()
    phone = serializers.CharField()
    hpii_number = serializers.CharField(allow_null=True)
    prescriber_type = serializers.CharField()
    prescriber_number = serializers.CharField()
    qualifications = serializers.CharField()
    provider_number = serializers.CharField()
    ahpra_number = serializers.CharField()
    hospital_provider_number = serializers.CharField()


class CognitoStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["synced", "pending", "failed"])


class UserSerializer(serializers.Serializer):
    """The user resource. Rendered by hand in to_representation: the list endpoint renders 100 of
    these per request, and DRF's per-field machinery costs more than the query does. The declared
    fields document the shape for the OpenAPI schema."""

    id = serializers.UUIDField()
    organization_id = serializers.UUIDField()
    email = serializers.EmailField()
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    title = serializers.CharField()
    phone = serializers.CharField()
    partner_user_id = serializers.CharField(allow_null=True)
    access_roles = serializers.ListField(child=serializers.ChoiceField(choices=sorted(role_names.ALL_ROLES)))
    status = serializers.ChoiceField(choices=["active", "disabled"])
    disabled_at = serializers.DateTimeField(allow_null=True)
    access_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the user is disabled automatically (the worker, within a minute); null: never."
    )
    provider_details = ProviderDetailsSerializer(allow_null=True)
    can_prescribe = serializers.BooleanField()
    cognito = CognitoStatusSerializer()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, row):
        return user_row_representation(row)


def _iso(value):
    return value.isoformat() if value is not None else None


# The user resource renders from database rows (QuerySet.values()), not model instances: building a
# User, a ProviderDetails and a CognitoSync per row cost more than the query itself on the list.
# Still one query (the reverse one-to-ones become LEFT JOINs); the detail uses the same rows, so the
# list and the detail can't drift apart.
_ROW_USER_FIELDS = (
    "id", "organization_id", "email", "given_name", "family_name", "title", "phone", "partner_user_id",
    "roles", "status", "disabled_at", "access_expires_at", "created_at", "updated_at",
)
PROVIDER_DETAILS_ROW_FIELDS = (
    "given_name", "family_name", "date_of_birth", "sex", "phone", "hpii_number", "prescriber_type",
    "prescriber_number", "qualifications", "provider_number", "ahpra_number", "hospital_provider_number",
)
USER_ROW_FIELDS = (
    *_ROW_USER_FIELDS,
    "provider_details__user_id",
    *(f"provider_details__{field}" for field in PROVIDER_DETAILS_ROW_FIELDS),
    "cognito_sync__state",
)


def user_row_representation(row: dict) -> dict:
    if row["provider_details__user_id"] is None:
        details = None
        can_prescribe = False
    else:
        details = {field: row[f"provider_details__{field}"] for field in PROVIDER_DETAILS_ROW_FIELDS}
        can_prescribe = (
            row["status"] == "active"
            and role_names.PROVIDER in row["roles"]
            and provider_details_complete(details.get)
        )
        details["date_of_birth"] = _iso(details["date_of_birth"])
    return {
        "id": str(row["id"]),
        "organization_id": str(row["organization_id"]),
        "email": row["email"],
        "given_name": row["given_name"],
        "family_name": row["family_name"],
        "title": row["title"],
        "phone": row["phone"],
        "partner_user_id": row["partner_user_id"],
        "access_roles": role_names.normalize_roles(row["roles"]),
        "status": row["status"],
        "disabled_at": _iso(row["disabled_at"]),
        "access_expires_at": _iso(row["access_expires_at"]),
        "provider_details": details,
        "can_prescribe": can_prescribe,
        "cognito": {"status": row["cognito_sync__state"] or "pending"},
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }
