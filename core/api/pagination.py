from base64 import b64decode
from datetime import UTC, datetime

from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response


class NewestFirstCursorPagination(CursorPagination):
    """Keyset pages, newest first, with no COUNT: the cost of page 10,000 is the cost of page 1."""

    page_size = 50
    max_page_size = 100
    page_size_query_param = "limit"
    cursor_query_param = "cursor"
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"limit": [f"Must be a whole number from 1 to {self.max_page_size}."]})
        return size

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded == "":
                raise ValueError("an empty cursor")  # not page one: the caller lost its link
            if encoded is not None:
                # DRF's own decoding drops stray characters, so "%%%" would silently mean page one.
                b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                # A forged position would otherwise reach the query and fail there without a field.
                self.parse_position(cursor.position)
            return cursor
        except Exception as error:  # DRF answers 404; a bad cursor is the caller's input error
            message = "Invalid cursor: pass the `next` or `previous` link as given."
            raise ValidationError({"cursor": [message]}) from error

    def parse_position(self, position: str):
        # The position is a created_at; it must also survive conversion to UTC for the query
        # (year 1 or 9999 with an offset overflows).
        value = datetime.fromisoformat(position)
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(UTC)

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next", "previous"],
            "properties": {
                "results": schema,
                "next": {"type": ["string", "null"], "format": "uri"},
                "previous": {"type": ["string", "null"], "format": "uri"},
            },
        }


class AuditEventCursorPagination(NewestFirstCursorPagination):
    ordering = ("-id",)

    def parse_position(self, position: str):
        return int(position)
