"""Tests for identifiers.checks (pure Python; no database needed)."""

import ast
import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identifiers.checks import (
    PRESCRIBER_TYPES,
    PROVIDER_CHECK_CHARACTERS,
    PROVIDER_LOCATION_CHARACTERS,
    SEXES,
    IdentifierError,
    luhn_check_digit,
    luhn_is_valid,
    provider_number_check_character,
    validate_ahpra_number,
    validate_au_phone,
    validate_date_of_birth,
    validate_hpii,
    validate_hpio,
    validate_prescriber_number,
    validate_prescriber_type,
    validate_provider_number,
    validate_sex,
)

ALL_VALIDATORS = [
    validate_hpii,
    validate_hpio,
    validate_prescriber_number,
    validate_prescriber_type,
    validate_sex,
    validate_date_of_birth,
    validate_au_phone,
    validate_provider_number,
    validate_ahpra_number,
]

# Wrong types must surface as IdentifierError, never TypeError/AttributeError.
NON_STRINGS = [
    None,
    8003614900000009,
    12.5,
    ["8003614900000009"],
    b"8003614900000009",
    {},
]


def error_for(validator, value, **kwargs):
    with pytest.raises(IdentifierError) as excinfo:
        validator(value, **kwargs)
    return excinfo.value


# --- module contract ---------------------------------------------------------


def test_module_does_not_import_django():
    # Keeps the rules usable outside Django (scripts, feeds, property tests).
    import identifiers.checks as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    }
    assert not any(name.split(".")[0] == "django" for name in imported)


# --- IdentifierError ---------------------------------------------------------


def test_identifier_error_is_a_value_error_with_message_and_code():
    err = IdentifierError("Bad number.")
    assert isinstance(err, ValueError)
    assert err.message == "Bad number."
    assert err.code == "invalid"
    assert str(err) == "Bad number."
    assert IdentifierError("x", code="other").code == "other"


@pytest.mark.parametrize("validator", ALL_VALIDATORS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("value", NON_STRINGS, ids=repr)
def test_non_string_input_raises_identifier_error(validator, value):
    err = error_for(validator, value)
    assert err.code == "invalid"
    assert err.message


@pytest.mark.parametrize("validator", ALL_VALIDATORS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_blank_input_is_reported_as_required(validator, value):
    assert "is required" in error_for(validator, value).message


# --- Luhn --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [("7992739871", 3), ("800361490000000", 9), ("800361490000001", 7), ("0", 0)],
)
def test_luhn_check_digit(payload, expected):
    assert luhn_check_digit(payload) == expected


@pytest.mark.parametrize("payload", ["", "12a", " 12", 123, None])
def test_luhn_check_digit_rejects_non_digit_payload(payload):
    with pytest.raises(IdentifierError):
        luhn_check_digit(payload)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("79927398713", True),
        ("79927398710", False),
        ("8003614900000009", True),
        ("", False),
        ("7", False),
        ("7992 7398 713", False),
        (79927398713, False),
        (None, False),
    ],
)
def test_luhn_is_valid(number, expected):
    assert luhn_is_valid(number) is expected


# --- HPI-I / HPI-O -----------------------------------------------------------


@pytest.mark.parametrize(
    "hpii", ["8003614900000009", "8003614900000017", "8003614900029560"]
)
def test_hpii_valid_samples(hpii):
    assert validate_hpii(hpii) == hpii


@pytest.mark.parametrize("hpii", ["8003614900000000", "8003614900000001"])
def test_hpii_bad_check_digit_names_expected_digit(hpii):
    message = error_for(validate_hpii, hpii).message
    assert message.startswith(
        f"HPI-I {hpii} fails its check digit: the last digit should be 9."
    )


def test_hpii_strips_surrounding_whitespace():
    assert validate_hpii("  8003614900000009\n") == "8003614900000009"


@pytest.mark.parametrize(
    "value",
    [
        "8003 6149 0000 0009",
        "8003-6149-0000-0009",
        "800361490000000X",
        "８００３６１４９００００００９",
    ],
)
def test_hpii_rejects_anything_but_ascii_digits(value):
    assert "only the digits 0-9" in error_for(validate_hpii, value).message


@pytest.mark.parametrize("value", ["800361490000009", "80036149000000090"])
def test_hpii_wrong_length(value):
    message = error_for(validate_hpii, value).message
    assert "exactly 16 digits" in message
    assert str(len(value)) in message


def test_hpii_wrong_prefix_says_required_prefix():
    message = error_for(validate_hpii, "1234564900000009").message
    assert "must start with 800361" in message


def test_hpii_given_an_hpio_explains_the_mix_up():
    message = error_for(validate_hpii, "8003624900000008").message
    assert "must start with 800361" in message
    assert "HPI-O" in message


def test_hpio_valid():
    assert validate_hpio(" 8003624900000008 ") == "8003624900000008"
    assert validate_hpio("8003620000123450") == "8003620000123450"


def test_hpio_bad_check_digit_names_expected_digit():
    message = error_for(validate_hpio, "8003624900000009").message
    assert "HPI-O 8003624900000009 fails its check digit" in message
    assert "should be 8" in message


def test_hpio_given_an_hpii_explains_the_mix_up():
    message = error_for(validate_hpio, "8003614900000009").message
    assert "must start with 800362" in message
    assert "HPI-I" in message


# --- PBS prescriber ----------------------------------------------------------


def test_prescriber_number_valid():
    assert validate_prescriber_number(" 0123456 ") == "0123456"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("123456", "exactly 7 digits"),
        ("12345678", "exactly 7 digits"),
        ("123 4567", "only the digits 0-9"),
        ("12345A7", "only the digits 0-9"),
    ],
)
def test_prescriber_number_invalid(value, fragment):
    assert fragment in error_for(validate_prescriber_number, value).message


def test_prescriber_types_contract():
    assert [code for code, _ in PRESCRIBER_TYPES] == ["M", "N", "D", "P", "T"]
    assert dict(PRESCRIBER_TYPES)["M"] == "Medical practitioner"


@pytest.mark.parametrize("code", ["M", "N", "D", "P", "T"])
def test_prescriber_type_valid(code):
    assert validate_prescriber_type(code) == code
    assert validate_prescriber_type(f" {code} ") == code


@pytest.mark.parametrize("value", ["m", "X", "MN", "O"])
def test_prescriber_type_invalid_lists_allowed_values(value):
    message = error_for(validate_prescriber_type, value).message
    for code, label in PRESCRIBER_TYPES:
        assert f"{code} ({label})" in message


# --- sex ---------------------------------------------------------------------


def test_sexes_contract():
    assert SEXES == (
        ("M", "Male"),
        ("F", "Female"),
        ("I", "Intersex or indeterminate"),
        ("N", "Not stated"),
    )


@pytest.mark.parametrize("code", ["M", "F", "I", "N"])
def test_sex_valid(code):
    assert validate_sex(code) == code
    assert validate_sex(f"{code}\n") == code


@pytest.mark.parametrize("value", ["f", "X", "Male", "U"])
def test_sex_invalid_lists_allowed_values(value):
    message = error_for(validate_sex, value).message
    for code, label in SEXES:
        assert f"{code} ({label})" in message


# --- date of birth -----------------------------------------------------------

TODAY = datetime.date(2024, 6, 15)


@pytest.mark.parametrize(
    "value",
    [
        TODAY - datetime.timedelta(days=1),
        datetime.date(1900, 1, 1),
        datetime.date(1980, 7, 31),
    ],
)
def test_date_of_birth_valid_dates(value):
    assert validate_date_of_birth(value, today=TODAY) == value


def test_date_of_birth_accepts_iso_string():
    assert validate_date_of_birth(" 1900-01-01 ", today=TODAY) == datetime.date(
        1900, 1, 1
    )
    assert validate_date_of_birth("2024-06-14", today=TODAY) == datetime.date(
        2024, 6, 14
    )


@pytest.mark.parametrize(
    "value", [TODAY, TODAY + datetime.timedelta(days=1), "2024-06-15"]
)
def test_date_of_birth_must_be_in_the_past(value):
    assert (
        "must be in the past"
        in error_for(validate_date_of_birth, value, today=TODAY).message
    )


@pytest.mark.parametrize(
    "value", [datetime.date(1899, 12, 31), "1899-12-31", "0001-01-01"]
)
def test_date_of_birth_not_before_1900(value):
    message = error_for(validate_date_of_birth, value, today=TODAY).message
    assert "on or after 1900-01-01" in message


@pytest.mark.parametrize(
    "value", ["20000101", "01/02/2000", "2000-1-1", "2000-01-01T00:00"]
)
def test_date_of_birth_rejects_other_formats(value):
    message = error_for(validate_date_of_birth, value, today=TODAY).message
    assert "YYYY-MM-DD" in message


def test_date_of_birth_rejects_impossible_date():
    message = error_for(validate_date_of_birth, "2001-02-29", today=TODAY).message
    assert "not a real calendar date" in message


def test_date_of_birth_rejects_datetime():
    value = datetime.datetime(1980, 7, 31, 12, 0)
    assert (
        "without a time of day"
        in error_for(validate_date_of_birth, value, today=TODAY).message
    )


def test_date_of_birth_defaults_to_the_system_date():
    today = datetime.date.today()
    assert validate_date_of_birth(today - datetime.timedelta(days=1))
    with pytest.raises(IdentifierError):
        validate_date_of_birth(today)


# --- phone -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "0432333333",
        "+61432333333",
        "0432 333 333",
        "+61 432 333 333",
        " +61 432-333-333 ",
    ],
)
def test_au_phone_normalises_to_e164(value):
    assert validate_au_phone(value) == "+61432333333"


def test_au_phone_landline():
    assert validate_au_phone("(02) 9876 5432") == "+61298765432"


@pytest.mark.parametrize(
    "value", ["+44 20 7946 0958", "+64 21 123 4567", "+1 650 253 0000"]
)
def test_au_phone_rejects_foreign_numbers(value):
    assert (
        "An Australian number is expected"
        in error_for(validate_au_phone, value).message
    )


@pytest.mark.parametrize("value", ["043233333", "04323333333", "0032 333 333"])
def test_au_phone_rejects_invalid_au_numbers(value):
    assert (
        "not a valid Australian phone number"
        in error_for(validate_au_phone, value).message
    )


@pytest.mark.parametrize("value", ["1300 FLOWERS", "0432333333 ext 12", "call me"])
def test_au_phone_rejects_letters(value):
    assert "may contain only digits" in error_for(validate_au_phone, value).message


# --- Medicare provider number ------------------------------------------------


def test_provider_check_character_reference_example():
    # Worked example published with the algorithm: 486674 + location Y -> B.
    assert provider_number_check_character("486674", "Y") == "B"


def test_provider_check_character_known_values():
    assert provider_number_check_character("212345", "1") == "T"
    assert provider_number_check_character("212345", "a") == "W"


@pytest.mark.parametrize(
    ("stem", "location"),
    [
        ("21234", "1"),
        ("2123456", "1"),
        ("21234A", "1"),
        ("212345", "I"),
        ("212345", "12"),
        (212345, "1"),
    ],
)
def test_provider_check_character_rejects_bad_input(stem, location):
    with pytest.raises(IdentifierError):
        provider_number_check_character(stem, location)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("486674YB", "486674YB"),
        ("2123451T", "2123451T"),
        (" 2123451t ", "2123451T"),
        ("212345aw", "212345AW"),
    ],
)
def test_provider_number_valid(value, expected):
    assert validate_provider_number(value) == expected


def test_provider_number_bad_check_character_names_expected():
    message = error_for(validate_provider_number, "2123451K").message
    assert "Provider number 2123451K fails its check character" in message
    assert "should be T" in message


@pytest.mark.parametrize("location", ["I", "O", "S", "Z"])
def test_provider_number_rejects_ambiguous_location_characters(location):
    message = error_for(validate_provider_number, f"212345{location}T").message
    assert "practice location" in message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("123451T", "exactly 8 characters"),
        ("21234561T", "exactly 8 characters"),
        ("21234A1T", "6 digits"),
    ],
)
def test_provider_number_format(value, fragment):
    assert fragment in error_for(validate_provider_number, value).message


# --- AHPRA -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("MED0001234567", "MED0001234567"),
        (" med0001234567 ", "MED0001234567"),
        ("NmW1234567890", "NMW1234567890"),
    ],
)
def test_ahpra_number_valid(value, expected):
    assert validate_ahpra_number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "ME0001234567",
        "MED000123456",
        "MED00012345678",
        "MED 0001234567",
        "1230001234567",
        "MÉD0001234567",
    ],
)
def test_ahpra_number_invalid(value):
    assert (
        "3 letters followed by 10 digits"
        in error_for(validate_ahpra_number, value).message
    )


# --- properties --------------------------------------------------------------

digit_strings = st.text(alphabet="0123456789", min_size=9, max_size=9)


def _replace(text, index, char):
    return text[:index] + char + text[index + 1 :]


@settings(max_examples=200)
@given(payload=digit_strings)
def test_generated_hpii_passes(payload):
    body = "800361" + payload
    hpii = body + str(luhn_check_digit(body))
    assert validate_hpii(hpii) == hpii


@settings(max_examples=200)
@given(payload=digit_strings, data=st.data())
def test_any_single_digit_change_breaks_hpii(payload, data):
    body = "800361" + payload
    hpii = body + str(luhn_check_digit(body))
    index = data.draw(st.integers(min_value=0, max_value=15), label="index")
    replacement = data.draw(
        st.sampled_from([d for d in "0123456789" if d != hpii[index]]), label="digit"
    )
    assert not luhn_is_valid(_replace(hpii, index, replacement))
    with pytest.raises(IdentifierError):
        validate_hpii(_replace(hpii, index, replacement))


@settings(max_examples=200)
@given(
    stem=st.text(alphabet="0123456789", min_size=6, max_size=6),
    location=st.sampled_from(PROVIDER_LOCATION_CHARACTERS),
    data=st.data(),
)
def test_generated_provider_number_passes_and_other_check_characters_fail(
    stem, location, data
):
    check = provider_number_check_character(stem, location)
    assert validate_provider_number(stem + location + check) == stem + location + check
    wrong = data.draw(
        st.sampled_from([c for c in PROVIDER_CHECK_CHARACTERS if c != check]),
        label="wrong",
    )
    with pytest.raises(IdentifierError, match=f"should be {check}"):
        validate_provider_number(stem + location + wrong)
