"""JSON bodies parsed by orjson: strict where the stdlib is lenient, and bounded where it is not.

The stdlib decoder recurses once per nesting level, so a body of 10,000 `[` reaches Python's
recursion limit and becomes a RecursionError (a 500). orjson stops at depth 1024 with a decode
error, refuses lone surrogates (`"\\ud800"`, which no database column can store) and NaN/Infinity;
every one of those is the caller's malformed JSON: 400.
"""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ParseError(f"The request body is not valid JSON: {error}") from None
