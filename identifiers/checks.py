"""Validation of Australian healthcare identifiers and related person details.

Pure Python on purpose (no Django import) so the rules can be reused by models,
forms, serializers, management commands and property tests alike.

Every ``validate_*`` function takes the raw value a user or a feed supplied and
either returns the normalised value or raises :class:`IdentifierError` with a
message a person can act on. Non-string input raises ``IdentifierError`` too,
never ``TypeError``, so callers only need to handle one exception type.
"""

from __future__ import annotations

import datetime
import re

import phonenumbers

__all__ = [
    "HPII_PREFIX",
    "HPIO_PREFIX",
    "PRESCRIBER_TYPES",
    "PROVIDER_CHECK_CHARACTERS",
    "PROVIDER_LOCATION_CHARACTERS",
    "SEXES",
    "IdentifierError",
    "luhn_check_digit",
    "luhn_is_valid",
    "provider_number_check_character",
    "validate_ahpra_number",
    "validate_au_phone",
    "validate_date_of_birth",
    "validate_hpii",
    "validate_hpio",
    "validate_prescriber_number",
    "validate_prescriber_type",
    "validate_provider_number",
    "validate_sex",
]


class IdentifierError(ValueError):
    """A value is not a valid identifier; ``message`` says how to fix it."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- shared helpers -----------------------------------------------------------

# ASCII only: str.isdigit() would also accept e.g. Arabic-Indic or superscript digits.
_DIGITS = re.compile(r"[0-9]+")


def _clean_text(value: object, label: str) -> str:
    """Return ``value`` stripped of surrounding whitespace, or raise if unusable."""
    if value is None:
        raise IdentifierError(f"{label} is required.")
    if not isinstance(value, str):
        # Ints would silently lose leading zeros, so insist on text.
        raise IdentifierError(
            f"{label} must be given as text, not as {type(value).__name__}."
        )
    cleaned = value.strip()
    if not cleaned:
        raise IdentifierError(f"{label} is required.")
    return cleaned


def _require_digits(value: str, label: str, length: int) -> None:
    if not _DIGITS.fullmatch(value):
        raise IdentifierError(
            f"{label} must contain only the digits 0-9, with no spaces or other "
            f"characters."
        )
    if len(value) != length:
        raise IdentifierError(
            f"{label} must be exactly {length} digits; {len(value)} were entered."
        )


def _describe_choices(choices: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{code} ({label})" for code, label in choices)


# --- Luhn ---------------------------------------------------------------------


def _luhn_sum(digits: str, double_rightmost: bool) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        # Every second digit is doubled, counting from the right-hand end.
        if (position % 2 == 0) == double_rightmost:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def luhn_check_digit(payload: str) -> int:
    """Return the digit to append to ``payload`` so the result passes Luhn."""
    if not isinstance(payload, str) or not _DIGITS.fullmatch(payload):
        raise IdentifierError("A Luhn payload must be a non-empty string of digits.")
    # The check digit will sit to the right, so the payload's last digit is doubled.
    return (10 - _luhn_sum(payload, double_rightmost=True) % 10) % 10


def luhn_is_valid(number: str) -> bool:
    """True if ``number`` is a string of at least two digits that passes Luhn."""
    if not isinstance(number, str) or not _DIGITS.fullmatch(number) or len(number) < 2:
        return False
    return _luhn_sum(number, double_rightmost=False) % 10 == 0


# --- HPI-I / HPI-O ------------------------------------------------------------

HPII_PREFIX = "800361"
HPIO_PREFIX = "800362"
_HPI_LENGTH = 16
_HPI_KINDS = {
    HPII_PREFIX: "an HPI-I (individual healthcare provider)",
    HPIO_PREFIX: "an HPI-O (healthcare organisation)",
    "800360": "an IHI (individual healthcare identifier for a patient)",
}


def _validate_hpi(value: object, label: str, prefix: str) -> str:
    number = _clean_text(value, label)
    _require_digits(number, label, _HPI_LENGTH)
    if not number.startswith(prefix):
        message = f"{label} must start with {prefix}."
        other_kind = _HPI_KINDS.get(number[:6])
        if other_kind:
            # Pasting the wrong kind of identifier is the likely mistake; say so.
            message += f" {number} starts with {number[:6]}, so it is {other_kind}."
        raise IdentifierError(message)
    if not luhn_is_valid(number):
        expected = luhn_check_digit(number[:-1])
        raise IdentifierError(
            f"{label} {number} fails its check digit: the last digit should be "
            f"{expected}. Check the number for typing mistakes."
        )
    return number


def validate_hpii(value: object) -> str:
    """Validate a Healthcare Provider Identifier - Individual (16 digits, 800361...)."""
    return _validate_hpi(value, "HPI-I", HPII_PREFIX)


def validate_hpio(value: object) -> str:
    """Validate a Healthcare Provider Identifier - Organisation (16 digits, 800362...)."""
    return _validate_hpi(value, "HPI-O", HPIO_PREFIX)


# --- PBS prescriber -----------------------------------------------------------

PRESCRIBER_TYPES: tuple[tuple[str, str], ...] = (
    ("M", "Medical practitioner"),
    ("N", "Nurse practitioner"),
    ("D", "Dentist"),
    ("P", "Pharmacist"),
    ("T", "Other (no PBS prescriber number)"),
)


def validate_prescriber_number(value: object) -> str:
    """Validate a PBS prescriber number: exactly 7 digits."""
    number = _clean_text(value, "Prescriber number")
    _require_digits(number, "Prescriber number", 7)
    return number


def validate_prescriber_type(value: object) -> str:
    """Validate a prescriber type code (case-sensitive, one of PRESCRIBER_TYPES)."""
    code = _clean_text(value, "Prescriber type")
    if code not in dict(PRESCRIBER_TYPES):
        raise IdentifierError(
            f"Prescriber type {code!r} is not recognised. Use one of: "
            f"{_describe_choices(PRESCRIBER_TYPES)}."
        )
    return code


# --- patient details ----------------------------------------------------------

SEXES: tuple[tuple[str, str], ...] = (
    ("M", "Male"),
    ("F", "Female"),
    ("I", "Intersex or indeterminate"),
    ("N", "Not stated"),
)


def validate_sex(value: object) -> str:
    """Validate a sex code (case-sensitive, one of SEXES)."""
    code = _clean_text(value, "Sex")
    if code not in dict(SEXES):
        raise IdentifierError(
            f"Sex {code!r} is not recognised. Use one of: {_describe_choices(SEXES)}."
        )
    return code


EARLIEST_DATE_OF_BIRTH = datetime.date(1900, 1, 1)
# date.fromisoformat() also takes forms like 20000101 or 2000-W01-1; only allow one.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def validate_date_of_birth(
    value: object, today: datetime.date | None = None
) -> datetime.date:
    """Validate a date of birth given as a ``date`` or a ``YYYY-MM-DD`` string.

    ``today`` lets callers pass their own local date (e.g. Django's
    ``timezone.localdate()``); it defaults to the system's local date.
    """
    if today is None:
        today = datetime.date.today()
    born = _parse_date(value)
    if born >= today:
        raise IdentifierError(
            f"Date of birth {born.isoformat()} must be in the past (before "
            f"{today.isoformat()})."
        )
    if born < EARLIEST_DATE_OF_BIRTH:
        raise IdentifierError(
            f"Date of birth {born.isoformat()} is too early; it must be on or after "
            f"{EARLIEST_DATE_OF_BIRTH.isoformat()}."
        )
    return born


def _parse_date(value: object) -> datetime.date:
    # datetime is a subclass of date; a time of day would hide a timezone mistake.
    if isinstance(value, datetime.datetime):
        raise IdentifierError(
            "Date of birth must be a date without a time of day, e.g. 1980-07-31."
        )
    if isinstance(value, datetime.date):
        return value
    text = _clean_text(value, "Date of birth")
    if not _ISO_DATE.fullmatch(text):
        raise IdentifierError(
            f"Date of birth {text!r} is not in the format YYYY-MM-DD, e.g. 1980-07-31."
        )
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise IdentifierError(
            f"Date of birth {text} is not a real calendar date."
        ) from None


# --- phone --------------------------------------------------------------------

_PHONE_EXAMPLE = "e.g. 0412 345 678 or +61 412 345 678"
# phonenumbers would also accept letters ("1300 FLOWERS") and extensions; we don't.
_PHONE_CHARACTERS = re.compile(r"\+?[0-9 ()-]+")


def validate_au_phone(value: object) -> str:
    """Validate an Australian phone number and return it in E.164 form (+61...)."""
    text = _clean_text(value, "Phone number")
    if not _PHONE_CHARACTERS.fullmatch(text):
        raise IdentifierError(
            f"Phone number {text!r} may contain only digits, spaces, brackets, "
            f"hyphens and a leading +, {_PHONE_EXAMPLE}."
        )
    try:
        number = phonenumbers.parse(text, "AU")
    except phonenumbers.NumberParseException:
        raise IdentifierError(
            f"{text!r} is not a phone number. Enter an Australian phone number, "
            f"{_PHONE_EXAMPLE}."
        ) from None
    if number.country_code != 61:
        raise IdentifierError(
            f"{text} is not an Australian phone number. An Australian number is "
            f"expected, {_PHONE_EXAMPLE}."
        )
    # Region check too: +61 is shared with Christmas Island and Cocos Islands.
    if not phonenumbers.is_valid_number_for_region(number, "AU"):
        raise IdentifierError(
            f"{text} is not a valid Australian phone number; check the digits, "
            f"{_PHONE_EXAMPLE}."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Medicare provider number -------------------------------------------------

# I, O, S and Z are deliberately absent: they are too easily confused with 1, 0, 5, 2.
PROVIDER_LOCATION_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUVWXY"
PROVIDER_CHECK_CHARACTERS = "YXWTLKJHFBA"
_PROVIDER_STEM_WEIGHTS = (3, 5, 8, 4, 2, 1)
_PROVIDER_LOCATION_WEIGHT = 6
_PROVIDER_STEM = re.compile(r"[0-9]{6}")


def provider_number_check_character(stem: str, location: str) -> str:
    """Return the Medicare check character for a 6-digit stem and location character."""
    if not isinstance(stem, str) or not _PROVIDER_STEM.fullmatch(stem):
        raise IdentifierError("A provider number stem must be exactly 6 digits.")
    if not isinstance(location, str) or len(location) != 1:
        raise IdentifierError("A practice location must be a single character.")
    location = location.upper()
    if location not in PROVIDER_LOCATION_CHARACTERS:
        raise IdentifierError(
            f"Practice location character {location!r} is not allowed; use 0-9 or a "
            f"letter other than I, O, S or Z."
        )
    total = sum(int(d) * w for d, w in zip(stem, _PROVIDER_STEM_WEIGHTS, strict=True))
    total += PROVIDER_LOCATION_CHARACTERS.index(location) * _PROVIDER_LOCATION_WEIGHT
    return PROVIDER_CHECK_CHARACTERS[total % 11]


def validate_provider_number(value: object) -> str:
    """Validate a Medicare provider number (6 digits, location, check character)."""
    number = _clean_text(value, "Provider number").upper()
    if len(number) != 8:
        raise IdentifierError(
            f"Provider number must be exactly 8 characters (6 digits, a practice "
            f"location character and a check letter, e.g. 2123451T); "
            f"{len(number)} were entered."
        )
    stem, location, check = number[:6], number[6], number[7]
    if not _PROVIDER_STEM.fullmatch(stem):
        raise IdentifierError(f"Provider number {number} must start with 6 digits.")
    if location not in PROVIDER_LOCATION_CHARACTERS:
        raise IdentifierError(
            f"Provider number {number} has {location!r} as its 7th (practice "
            f"location) character; use 0-9 or a letter other than I, O, S or Z."
        )
    expected = provider_number_check_character(stem, location)
    if check != expected:
        raise IdentifierError(
            f"Provider number {number} fails its check character: the last "
            f"character should be {expected}. Check the number for typing mistakes."
        )
    return number


# --- AHPRA registration -------------------------------------------------------

_AHPRA = re.compile(r"[A-Za-z]{3}[0-9]{10}")


def validate_ahpra_number(value: object) -> str:
    """Validate an AHPRA registration number: 3 letters then 10 digits."""
    number = _clean_text(value, "AHPRA registration number")
    if not _AHPRA.fullmatch(number):
        raise IdentifierError(
            f"AHPRA registration number {number!r} must be 3 letters followed by "
            f"10 digits, e.g. MED0001234567."
        )
    return number[:3].upper() + number[3:]
