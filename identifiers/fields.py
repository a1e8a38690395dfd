"""Model fields that normalise through the identifier rules, so the API, the admin and the
commands store the same canonical value (full_clean runs to_python and sets it back)."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from identifiers import checks as identifiers


class IdentifierField(models.CharField):
    normalize = None  # set by subclasses to one of identifiers.checks' validators

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return type(self).normalize(value)
        except identifiers.IdentifierError as error:
            raise ValidationError(error.message, code=error.code) from error


class HpiiField(IdentifierField):
    normalize = staticmethod(identifiers.validate_hpii)


class HpioField(IdentifierField):
    normalize = staticmethod(identifiers.validate_hpio)


class AustralianPhoneField(IdentifierField):
    normalize = staticmethod(identifiers.validate_au_phone)


class PrescriberNumberField(IdentifierField):
    normalize = staticmethod(identifiers.validate_prescriber_number)


class ProviderNumberField(IdentifierField):
    normalize = staticmethod(identifiers.validate_provider_number)


class AhpraNumberField(IdentifierField):
    normalize = staticmethod(identifiers.validate_ahpra_number)


def validate_date_of_birth(value):
    try:
        identifiers.validate_date_of_birth(value, today=timezone.localdate())
    except identifiers.IdentifierError as error:
        # Not code "invalid": Django swaps a validator's message for the field's own message of the
        # same code, and DateField's "invalid" says "invalid date format" (unformatted) instead.
        raise ValidationError(error.message, code="invalid_date_of_birth") from error
