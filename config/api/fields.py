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
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


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
        if FORBIDDEN_CHARACTERS.search(value):
            raise serializers.ValidationError(
                "Must not contain control characters (line breaks, tabs, escapes) or bidirectional overrides.",
                code="invalid",
            )
        return value
