"""JSON bodies parsed by orjson: strict where the stdlib is lenient, and bounded where it is not.

The stdlib decoder recurses once per nesting level, so a body of 10,000 `[` reaches Python's
recursion limit and becomes a RecursionError (a 500). orjson stops at depth 1024 with a decode
error, refuses lone surrogates (`"\\ud800"`, which no database column can store) and NaN/Infinity;
every one of those is the caller's malformed JSON: 400.

No request of this API nests more than a few levels, and a value nested hundreds deep still costs
every later step that walks it (validation, `str()`, error messages) a recursion per level; so a
body nested deeper than `MAX_JSON_DEPTH` is refused here, before anything else sees it.
"""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

MAX_JSON_DEPTH = 32


def json_depth_exceeds(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` deep (`{}` and `[1]` are depth 1, a scalar 0).
    Iterative: the walk itself must not recurse."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ParseError(f"The request body is not valid JSON: {error}") from None
        if json_depth_exceeds(data):
            raise ParseError(f"The request body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep.")
        return data
