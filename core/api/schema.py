"""What every /v1 operation's OpenAPI description shares: the OAuth 2.0 security scheme and the
scope each operation needs, the problem document and the problem responses an operation can give,
request bodies that refuse unknown fields, the documented limits of the list parameters.

Plumbing only: it knows no app. An app states its own field rules by subclassing ApiAutoSchema
(REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS names the subclass) and its endpoints' annotations with
drf-spectacular's view extensions; the scopes come from settings.OAUTH2_PROVIDER.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from core.api.fields import StrictCharField, text_pattern
from core.api.scopes import required_scope
from core.errors import PROBLEM_CONTENT_TYPE

OAUTH2 = "oauth2"
TOKEN_URL = "/v1/oauth/token"  # noqa: S105 (a URL, not a secret)
PROBLEM_MEDIA_TYPE = PROBLEM_CONTENT_TYPE


# --- security: OAuth 2.0 client credentials, one scope per operation -------------------------


class OAuth2ClientCredentialsScheme(OpenApiAuthenticationExtension):
    """The bearer tokens of the token endpoint. Inert until a subclass names the authentication
    class it documents in `target_class`."""

    target_class = None
    name = OAUTH2

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": (
                "OAuth 2.0 client credentials (RFC 6749 §4.4): POST /v1/oauth/token with HTTP Basic "
                "client authentication, then send `Authorization: Bearer <access_token>`."
            ),
            "flows": {
                "clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": dict(settings.OAUTH2_PROVIDER["SCOPES"])}
            },
        }

    def get_security_requirement(self, auto_schema):
        scope = required_scope(auto_schema.view)
        return {OAUTH2: [scope] if scope else []}


# --- the problem document ---------------------------------------------------------------------


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="Dotted path, e.g. `provider_details.hpii_number`.")
    message = serializers.CharField()
    code = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details: the body of every error under /v1."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. `validation_error`, `user_already_exists`.")
    request_id = serializers.CharField(allow_null=True)
    errors = ProblemFieldErrorSerializer(many=True)

    class Meta:
        ref_name = "Problem"


def problem_example(status, code, detail, errors=()):
    """An example problem document, for a view's `problem_examples` ({action: {status: {name: {"value": ...}}}})."""
    return {
        "type": f"https://errors.e-prescribing.example/{code}",
        "title": {400: "Invalid request", 409: "Conflict"}.get(status, ""),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": "9f1c2d3e4b5a69788796a5b4c3d2e1f0",
        "errors": list(errors),
    }


PROBLEMS = {
    400: "Invalid input: `errors` has one entry per problem, naming the field.",
    401: "No token, or an invalid or expired one (`not_authenticated`); `WWW-Authenticate` says which.",
    403: "The token lacks the scope this operation needs (`insufficient_scope`); `WWW-Authenticate` names it.",
    404: "No such organization or user for this token (another organization's ids are 404 too).",
    409: "Conflicts with the current state (`user_already_exists`, `partner_user_id_conflict`, "
    "`hpii_conflict`, `user_disabled`, `access_expired`, `idempotency_key_reused`, "
    "`idempotency_key_in_progress`).",
    405: "This path does not take this method (`method_not_allowed`); `Allow` lists the ones it takes.",
    406: "The `Accept` header asks for a media type other than JSON (`not_acceptable`).",
    408: "The request body did not arrive whole within the server's deadline (`request_timeout`); nothing "
    "was changed.",
    413: "The request body exceeds 1 MiB (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    429: "Too many requests for this API client (`rate_limited`); retry after `Retry-After` seconds.",
    503: "The database is unavailable (`database_unavailable`); retry after `Retry-After` seconds.",
}
# A write can also find every write slot of the server process taken (core/write_gate.py).
WRITE_503 = (
    "The database is unavailable (`database_unavailable`), or the server is busy with other writes "
    "(`server_busy`: nothing was changed); retry after `Retry-After` seconds."
)

# RFC 6750 §3: a 401 challenges for a bearer token (`error="invalid_token"` when one was sent);
# a 403 names the scope the token lacks.
CHALLENGES = {
    401: {
        "WWW-Authenticate": {
            "description": (
                'The bearer challenge: `Bearer realm="api"`, with `error="invalid_token"` when a token was sent.'
            ),
            "schema": {"type": "string"},
        }
    },
    403: {
        "WWW-Authenticate": {
            "description": '`Bearer realm="api", error="insufficient_scope", scope="<the scope needed>"`.',
            "schema": {"type": "string"},
        }
    },
}

def location_header(description: str) -> OpenApiParameter:
    """The `Location` header of a 201: the created resource's URL."""
    return OpenApiParameter(
        "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[201], required=True, description=description
    )


RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}
}


class ApiAutoSchema(AutoSchema):
    """Adds the shared parts of every /v1 operation: the problem responses it can give, request
    bodies that reject unknown fields, and the documented limits of the list parameters.

    An app's subclass states what its services check, by field name, in the class attributes."""

    # Request bodies of this serializer class (a mixin) refuse unknown fields with 400 `unknown_field`.
    strict_request_serializer: type | None = None
    # Field name → the rule the services check, as the description of a request body's property.
    field_rules: dict[str, str] = {}
    # Field name → the enum, format, pattern or item count the services check, stated on request
    # and response properties alike; request_formats and response_formats add to it (or override
    # it) for one direction: an input may be lenient (lower case) where the output is canonical.
    field_formats: dict[str, dict] = {}
    request_formats: dict[str, dict] = {}
    response_formats: dict[str, dict] = {}
    # What a date-time query filter takes beyond `format: date-time` (its UTC offsets), if anything.
    query_date_time_pattern: str | None = None

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not operation.get("security"):
            return operation
        problem_ref = self.resolve_serializer(ProblemSerializer, "response").ref
        examples = getattr(self.view, "problem_examples", {}).get(self.view.action, {})
        for status in self._problem_statuses(method, operation):
            content = {"schema": problem_ref}
            if status in examples:
                content["examples"] = examples[status]
            description = WRITE_503 if status == 503 and method not in ("GET", "HEAD", "OPTIONS") else PROBLEMS[status]
            response = {"description": description, "content": {PROBLEM_MEDIA_TYPE: content}}
            if status in (429, 503):
                response["headers"] = RETRY_AFTER
            elif status in CHALLENGES:
                response["headers"] = CHALLENGES[status]
            operation["responses"].setdefault(str(status), response)
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            if parameter["name"] == "limit":
                parameter["schema"].update({"minimum": 1, "maximum": 100, "default": 50})
                parameter["description"] = "Page size, 1 to 100 (default 50)."
            elif parameter["schema"].get("type") == "string" and "enum" not in parameter["schema"]:
                # `?email=` is 400 naming it (core/api/filtering.py), not "no filter".
                parameter["schema"]["minLength"] = 1
                if parameter["schema"].get("format") == "date-time" and self.query_date_time_pattern:
                    parameter["schema"]["pattern"] = self.query_date_time_pattern
        return operation

    def _problem_statuses(self, method, operation):
        # Any operation can meet a wrong method on its path, an Accept it can't serve, or a database outage.
        statuses = [401, 404, 405, 406, 429, 503]
        if required_scope(self.view):
            statuses.append(403)
        if self._is_list_view() or any(p["in"] == "query" for p in operation.get("parameters", [])):
            statuses.append(400)  # bad limit, cursor or filter
        if method in ("POST", "PUT", "PATCH"):
            # The body limit and its deadline apply before the view, body or not (PUT .../disable).
            statuses += [408, 413]
            if self.get_request_serializer() is not None:
                statuses += [400, 415, 409]
        return sorted(set(statuses))

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        strict = self.strict_request_serializer
        if direction == "request" and strict is not None and isinstance(serializer, strict):
            schema["additionalProperties"] = False  # a misspelt field is a 400, never ignored
            if schema.get("description") == (strict.__doc__ or "").strip():
                schema["description"] = "Unknown fields are refused with 400 (`unknown_field`)."
            for name, text in self.field_rules.items():
                if name in schema.get("properties", {}):
                    schema["properties"][name].setdefault("description", text)
        if direction == "request":
            _declare_text_patterns(serializer, schema)
        one_way = self.request_formats if direction == "request" else self.response_formats
        for name in schema.get("properties", {}):
            rule = {**self.field_formats.get(name, {}), **one_way.get(name, {})}
            if rule:
                _declare(schema["properties"][name], rule)
        return schema


def _declare_text_patterns(serializer, schema: dict) -> None:
    """Every StrictCharField of a request body states its refusal of control characters (and of
    a blank value, where it has one) as a pattern; a field rule's own pattern replaces it."""
    for name, field in serializer.fields.items():
        property_schema = schema.get("properties", {}).get(name)
        if property_schema is None:
            continue
        child = getattr(field, "child", None)
        if isinstance(field, StrictCharField):
            property_schema["pattern"] = text_pattern(field)
        elif isinstance(child, StrictCharField) and isinstance(property_schema.get("items"), dict):
            property_schema["items"]["pattern"] = text_pattern(child)


_ARRAY_KEYWORDS = frozenset({"minItems", "maxItems", "uniqueItems"})


def _declare(property_schema: dict, rule: dict) -> None:
    """Put an enum, format or pattern on a property (on its items when it is an array; item counts
    on the array itself). A nullable property's enum keeps null."""
    is_array = property_schema.get("type") == "array"
    for key, value in rule.items():
        on_items = is_array and key not in _ARRAY_KEYWORDS
        target = property_schema.get("items", property_schema) if on_items else property_schema
        if key == "enum":
            for implied in ("pattern", "minLength", "maxLength"):  # the enum says it all
                target.pop(implied, None)
            if _is_nullable(target):
                value = [*value, None]
        target[key] = value


def _is_nullable(property_schema: dict) -> bool:
    types = property_schema.get("type")
    return (
        None in (property_schema.get("enum") or [])
        or property_schema.get("nullable") is True
        or (isinstance(types, list) and "null" in types)
    )
