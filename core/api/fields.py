"""Input fields of the API that take a JSON value as it is, never coerced.

DRF's CharField turns 123 into "123" and, before it even checks the type, calls `str()` on
whatever it was given: a list nested a thousand deep is a RecursionError there (a 500). The
strict field refuses anything but a string first, in `run_validation`, before DRF looks at it.
"""

import re

from rest_framework import serializers

# Every text field is one line. Control characters forge log lines and terminal output; bidi
# overrides and isolates make a name display as something else ("Trojan Source"); surrogates
# can't be stored. Joiners, combining marks and right-to-left scripts themselves are fine.
# The class as regular-expression source, so the OpenAPI document states the same rule.
_FORBIDDEN_CLASS = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
FORBIDDEN_CHARACTERS = re.compile(f"[{_FORBIDDEN_CLASS}\\ud800-\\udfff]")
# What str.strip() trims besides the control characters: a field that may not be blank needs one
# character that is neither.
_SPACE_CLASS = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# The same rules for the schema (ECMA-262 and Python read these patterns alike). Surrogates are
# left out: JSON text can't carry one to the schema's validators.
TEXT_PATTERN = f"^[^{_FORBIDDEN_CLASS}]*$"
NON_BLANK_TEXT_PATTERN = f"^[^{_FORBIDDEN_CLASS}]*[^{_FORBIDDEN_CLASS}{_SPACE_CLASS}][^{_FORBIDDEN_CLASS}]*$"


def text_pattern(field) -> str:
    """The schema pattern of a StrictCharField: no control characters, and a visible character
    when it may not be blank (the field trims whitespace first)."""
    return TEXT_PATTERN if field.allow_blank or not field.trim_whitespace else NON_BLANK_TEXT_PATTERN


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: 123, true, a list or an object is "Must be a string.",
    not a silently coerced "123" (nor a RecursionError for a deeply nested list)."""

    default_error_messages = {"invalid": "Must be a string."}

    def run_validation(self, data=serializers.empty):
        # Before DRF's own checks: CharField.run_validation calls str(data) on any value.
        if data is not serializers.empty and data is not None and not isinstance(data, str):
            self.fail("invalid")
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("Must not contain NUL characters.", code="invalid")
        value = super().to_internal_value(data)
        # The value as sent, not as trimmed: a tab or line break at either end is refused too,
        # as the schema's pattern says.
        if FORBIDDEN_CHARACTERS.search(data):
            raise serializers.ValidationError(
                "Must not contain control characters (line breaks, tabs, escapes) or bidirectional overrides.",
                code="invalid",
            )
        return value
