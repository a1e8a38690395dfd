"""Input shapes (type checks only; the rules live in the models and services). The user resource
(the output) is defined in accounts/api/resource.py."""

import datetime
import re

from rest_framework import serializers
from rest_framework.settings import api_settings
from rest_framework.utils.serializer_helpers import BindingDict

from accounts.api.resource import (  # noqa: F401  (the user resource, defined there; imported from here)
    USER_ROW_FIELDS,
    UserSerializer,
    user_row_representation,
)
from accounts.models import PROVIDER_FIELDS, ProviderDetails
from core.api.fields import StrictCharField


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


class SharedFieldsMixin:
    """The field set built once per class, not per request: DRF deep-copies every declared field
    for each serializer instance, which costs a create more CPU than its conflict checks. These
    input serializers check types and lengths only: their fields keep no state between calls and
    never read the serializer's context, so one bound set serves every instance and thread."""

    @property
    def fields(self):
        shared = type(self).__dict__.get("_shared_fields")
        if shared is None:
            shared = BindingDict(self)
            for name, field in self.get_fields().items():
                shared[name] = field
            type(self)._shared_fields = shared  # a race builds it twice; either copy serves
        return shared


class RejectUnknownFieldsMixin(SharedFieldsMixin):
    """A misspelt field (`hpi_number`) is an error, not silently ignored."""

    unknown_field_messages: dict = {}
    read_only_keys: frozenset = frozenset()  # keys of the resource that input drops rather than refuses

    def to_internal_value(self, data):
        if isinstance(data, dict):
            if self.read_only_keys & set(data):
                data = {key: value for key, value in data.items() if key not in self.read_only_keys}
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


# Input lengths wider than the stored ones: the identifier fields normalise (spaces, dashes) first.
_PROVIDER_INPUT_MAX_LENGTH = {"phone": 32, "hpii_number": 32, "prescriber_number": 16, "provider_number": 16,
                              "ahpra_number": 16}


class UnknownAsNullCodeField(StrictCharField):
    """A code (sex, prescriber type): one of its choices, or null for unknown, as the user resource
    reads it back. Stored as "" (the model's blank); "" itself is not a code, so it is refused."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, allow_blank=False, trim_whitespace=True, **kwargs)

    def validate_empty_values(self, data):
        if data is None:
            return True, ""  # unknown: the model's blank
        return super().validate_empty_values(data)


def _provider_input_field(name: str) -> serializers.Field:
    field = ProviderDetails._meta.get_field(name)
    if field.get_internal_type() == "DateField":
        return serializers.DateField(required=False, allow_null=True, input_formats=["iso-8601"])
    if field.choices:
        codes = ", ".join(code for code, _ in field.choices)
        return UnknownAsNullCodeField(
            required=False, max_length=field.max_length,
            error_messages={"blank": f"Give one of {codes}, or null when it is not known."},
        )
    extra = {"allow_null": True} if field.null else {}
    return _text(_PROVIDER_INPUT_MAX_LENGTH.get(name, field.max_length), **extra)


# One input field per PROVIDER_FIELDS entry (accounts/models.py). `verification` is the register's
# answer, read-only: details read from the resource can be sent back as they are (it is dropped).
ProviderDetailsInputSerializer = serializers.SerializerMetaclass(
    "ProviderDetailsInputSerializer",
    (RejectUnknownFieldsMixin, serializers.Serializer),
    {"__module__": __name__, "__qualname__": "ProviderDetailsInputSerializer",
     **{name: _provider_input_field(name) for name in PROVIDER_FIELDS},
     "read_only_keys": frozenset({"verification"})},
)


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
    """PUT /disable's optional body. No body at all is the same as {}; JSON null is not a body."""

    null_body_message = 'The body must be a JSON object such as {"reason": "..."}, or no body at all; not null.'

    def run_validation(self, data=serializers.empty):
        if data is None:  # DRF would say "No data provided", which reads as "send a body"
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [serializers.ErrorDetail(self.null_body_message, code="null")]}
            )
        return super().run_validation(data)

    reason = _text(500, allow_null=True, help_text="Why the user is disabled; recorded in the audit event.")
