"""The OpenAPI description of /v1: security, problem responses, request bodies and examples.

Kept out of the views so they stay thin: view extensions annotate the viewsets during schema
generation only, and the AutoSchema adds what every operation shares (scope, problem responses).
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from accounts.api.serializers import (
    RejectUnknownFieldsMixin,
    UserCreateSerializer,
    UserDisableSerializer,
    UserRolesSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from accounts.models import User
from accounts.roles import ALL_ROLES
from audit.api import AuditEventSerializer
from audit.models import AuditEvent
from identifiers.checks import PRESCRIBER_TYPES, SEXES

OAUTH2 = "oauth2"
TOKEN_URL = "/v1/oauth/token"  # noqa: S105 (a URL, not a secret)
PROBLEM_MEDIA_TYPE = "application/problem+json"


# --- security: OAuth 2.0 client credentials, one scope per operation -------------------------


class ApiClientTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiClientTokenAuthentication"
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


def required_scope(view) -> str | None:
    """The scope HasRequiredScope demands for this view's action (one source of truth)."""
    return getattr(view, "required_scopes", {}).get(getattr(view, "action", None))


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


def _problem_example(status, code, detail, errors=()):
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
    401: "No token, or an invalid or expired one (`not_authenticated`).",
    403: "The token lacks the scope this operation needs (`insufficient_scope`).",
    404: "No such organization or user for this token (another organization's ids are 404 too).",
    409: "Conflicts with the current state (`user_already_exists`, `partner_user_id_conflict`, "
    "`hpii_conflict`, `user_disabled`, `idempotency_key_reused`, `idempotency_key_in_progress`).",
    405: "This path does not take this method (`method_not_allowed`); `Allow` lists the ones it takes.",
    406: "The `Accept` header asks for a media type other than JSON (`not_acceptable`).",
    413: "The request body exceeds 1 MiB (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    429: "Too many requests for this API client (`rate_limited`); retry after `Retry-After` seconds.",
    503: "The database is unavailable (`database_unavailable`); retry after `Retry-After` seconds.",
}

RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}
}


class ApiAutoSchema(AutoSchema):
    """Adds the shared parts of every /v1 operation: the problem responses it can give, request
    bodies that reject unknown fields, and the documented limits of the list parameters."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None or not operation.get("security"):
            return operation
        problem_ref = self.resolve_serializer(ProblemSerializer, "response").ref
        examples = getattr(self.view, "problem_examples", {}).get(self.view.action, {})
        for status in self._problem_statuses(method):
            content = {"schema": problem_ref}
            if status in examples:
                content["examples"] = examples[status]
            response = {"description": PROBLEMS[status], "content": {PROBLEM_MEDIA_TYPE: content}}
            if status in (429, 503):
                response["headers"] = RETRY_AFTER
            operation["responses"].setdefault(str(status), response)
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "limit" and parameter["in"] == "query":
                parameter["schema"].update({"minimum": 1, "maximum": 100, "default": 50})
                parameter["description"] = "Page size, 1 to 100 (default 50)."
        return operation

    def _problem_statuses(self, method):
        # Any operation can meet a wrong method on its path, an Accept it can't serve, or a database outage.
        statuses = [401, 404, 405, 406, 429, 503]
        if required_scope(self.view):
            statuses.append(403)
        if self._is_list_view() or self.view.action == "history":
            statuses.append(400)  # bad limit, cursor or filter
        if method in ("POST", "PUT", "PATCH"):
            statuses.append(413)  # the body limit applies before the view, body or not (PUT .../disable)
            if self.get_request_serializer() is not None:
                statuses += [400, 415, 409]
        return sorted(set(statuses))

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, RejectUnknownFieldsMixin):
            schema["additionalProperties"] = False  # a misspelt field is a 400, never ignored
            if schema.get("description") == (RejectUnknownFieldsMixin.__doc__ or "").strip():
                schema["description"] = "Unknown fields are refused with 400 (`unknown_field`)."
            for name, text in FIELD_RULES.items():
                if name in schema.get("properties", {}):
                    schema["properties"][name].setdefault("description", text)
        for name, rule in FIELD_FORMATS.items():
            if name in schema.get("properties", {}):
                if direction == "response" and name in BLANK_UNTIL_GIVEN:
                    rule = {**rule, "enum": [*rule["enum"], ""]}
                _declare(schema["properties"][name], rule)
        return schema


def _declare(property_schema: dict, rule: dict) -> None:
    """Put an enum or format on a property, on its items when it is an array."""
    is_array = property_schema.get("type") == "array"
    target = property_schema.get("items", property_schema) if is_array else property_schema
    for key, value in rule.items():
        if key == "enum" and None in (target.get("enum") or []):
            value = [*value, None]  # a nullable choice keeps null
        target[key] = value


# What the services check, so an integrator can get it right the first time.
FIELD_RULES = {
    "email": "Unique across the platform, case-insensitively; stored lower-cased.",
    "phone": "Australian number, `0432333333` or `+61432333333`; returned in E.164.",
    "partner_user_id": "Your own id for the user; unique within the organization.",
    "access_roles": "`admin`, `provider`, `receptionist`, `rx_reader`, or `member` alone. Default `[\"member\"]`.",
    "date_of_birth": "ISO date in the past, not before 1900.",
    "sex": "`M`, `F`, `I` or `N`.",
    "hpii_number": "HPI-I: 16 digits starting 800361 with a Luhn check digit (e.g. 8003614900000009).",
    "prescriber_type": "`M`, `N`, `D`, `P` or `T`.",
    "prescriber_number": "PBS prescriber number: 7 digits. Not required for prescriber type `T`.",
    "qualifications": "E.g. `MBBS`, `MD`, `RN`.",
    "provider_number": "Medicare provider number: 6-digit stem, location character, check character.",
    "ahpra_number": "Three letters and ten digits.",
}


# The checks the services make that a schema can state: enums and formats, for request and response.
FIELD_FORMATS = {
    "email": {"format": "email"},
    "access_roles": {"enum": sorted(ALL_ROLES)},
    "sex": {"enum": [code for code, _ in SEXES]},
    "prescriber_type": {"enum": [code for code, _ in PRESCRIBER_TYPES]},
}
# Provider details may be stored before they are complete: these read back as "" until given.
BLANK_UNTIL_GIVEN = {"sex", "prescriber_type"}


# --- per-endpoint annotations -----------------------------------------------------------------

ORGANIZATION_ID = OpenApiParameter(
    "organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Your organization's id."
)
USER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's id.")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x20-\x7E]+$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retried create safe: a request with the same key and the same body within 24 hours "
        "returns the first response (same status and user) and creates nothing. The same key with a "
        "different body is 409 `idempotency_key_reused`; while the first request is still running, a "
        "retry waits for it or gets 409 `idempotency_key_in_progress`. Keys are per API client; "
        "1 to 255 printable ASCII characters (a UUID is a good choice)."
    ),
)

VALID_HPII_BEN = "8003614900000009"
VALID_HPII_SARAH = "8003614900000017"

USER_EXAMPLE = {
    "id": "3f2b8c1e-5d4a-4b6f-9e21-7a0c9d8e6f51",
    "organization_id": "0b7e6d5c-4a39-4821-9f0e-1d2c3b4a5968",
    "email": "sarah.johnson@clinic.com",
    "given_name": "Sarah",
    "family_name": "Johnson",
    "title": "",
    "phone": "+61455666777",
    "partner_user_id": None,
    "access_roles": ["provider"],
    "status": "active",
    "disabled_at": None,
    "access_expires_at": None,
    "provider_details": {
        "given_name": "Sarah",
        "family_name": "Johnson",
        "date_of_birth": "1980-03-15",
        "sex": "F",
        "phone": "+61455666777",
        "hpii_number": VALID_HPII_SARAH,
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
        "provider_number": "",
        "ahpra_number": "",
        "hospital_provider_number": "",
    },
    "can_prescribe": True,
    "cognito": {"status": "synced"},
    "created_at": "2025-03-01T09:30:00.000000+11:00",
    "updated_at": "2025-03-01T09:30:00.000000+11:00",
}

CREATE_EXAMPLES = [
    OpenApiExample(
        "Create a user with basic access",
        summary="rx_reader (workflow step 1)",
        value={
            "given_name": "Ben",
            "family_name": "Smith",
            "email": "user-email@my-practice.com",
            "access_roles": ["rx_reader"],
        },
        request_only=True,
    ),
    OpenApiExample(
        "Create a provider from scratch",
        summary="provider, details given flat",
        value={
            "given_name": "Sarah",
            "family_name": "Johnson",
            "email": "sarah.johnson@clinic.com",
            "access_roles": ["provider"],
            "date_of_birth": "1980-03-15",
            "sex": "F",
            "phone": "0455666777",
            "hpii_number": VALID_HPII_SARAH,
            "prescriber_type": "M",
            "prescriber_number": "2345678",
            "qualifications": "MBBS",
        },
        request_only=True,
    ),
    OpenApiExample("The created user", value=USER_EXAMPLE, response_only=True, status_codes=["201"]),
]

UPDATE_EXAMPLES = [
    OpenApiExample(
        "Add provider details",
        summary="workflow step 3",
        value={
            "provider_details": {
                "given_name": "Ben",
                "family_name": "Smith",
                "date_of_birth": "1975-12-25",
                "sex": "M",
                "phone": "0432333333",
                "hpii_number": VALID_HPII_BEN,
                "prescriber_type": "M",
                "prescriber_number": "1234567",
                "qualifications": "MD",
            }
        },
        request_only=True,
    ),
]

ROLES_EXAMPLES = [
    OpenApiExample("Upgrade to provider", value={"access_roles": ["provider"]}, request_only=True),
    OpenApiExample("Downgrade to rx_reader", value={"access_roles": ["rx_reader"]}, request_only=True),
]

_HPII_MESSAGE = (
    "HPI-I 8003614900000001 fails its check digit: the last digit should be 9. "
    "Check the number for typing mistakes."
)
CREATE_PROBLEM_EXAMPLES = {
    400: {
        "hpii_check_digit": _problem_example(
            400,
            "validation_error",
            f"hpii_number: {_HPII_MESSAGE}",
            [{"field": "hpii_number", "message": _HPII_MESSAGE, "code": "invalid"}],
        ),
    },
    409: {
        "user_already_exists": _problem_example(
            409, "user_already_exists", "A user with this email already exists."
        ),
        "idempotency_key_reused": _problem_example(
            409, "idempotency_key_reused", "This Idempotency-Key was already used with a different request."
        ),
    },
}


def _as_examples(problems: dict) -> dict:
    return {status: {name: {"value": value} for name, value in named.items()} for status, named in problems.items()}


class UserViewSetSchema(OpenApiViewExtension):
    target_class = "accounts.api.views.UserViewSet"

    def view_replacement(self):
        @extend_schema_view(
            list=extend_schema(
                summary="List users",
                description="A page of the organization's users, newest first. Filters combine.",
                parameters=[ORGANIZATION_ID],
                tags=["users"],
            ),
            retrieve=extend_schema(summary="Get a user", parameters=[ORGANIZATION_ID, USER_ID], tags=["users"]),
            create=extend_schema(
                summary="Create a user",
                description=(
                    "`given_name`, `family_name` and `email` are required; `access_roles` defaults to "
                    '`["member"]`. With the `provider` role, the provider fields are required, given flat '
                    "in the body (or as a nested `provider_details` object): `date_of_birth`, `sex`, "
                    "`hpii_number`, `prescriber_type`, `qualifications`, and `prescriber_number` unless "
                    "`prescriber_type` is `T`."
                ),
                parameters=[ORGANIZATION_ID, IDEMPOTENCY_KEY],
                request=UserCreateSerializer,
                responses={
                    201: OpenApiResponse(
                        UserSerializer,
                        description="The created user; `Location` names it.",
                        # Headers are documented on the response; schemathesis checks them too.
                    )
                },
                examples=CREATE_EXAMPLES,
                tags=["users"],
            ),
            update=extend_schema(
                summary="Update a user (partial)",
                description=(
                    "Only the fields sent change. `provider_details` is merged into the stored details. "
                    "Roles are changed with PUT .../roles."
                ),
                parameters=[ORGANIZATION_ID, USER_ID],
                request=UserUpdateSerializer,
                responses={200: UserSerializer},
                examples=UPDATE_EXAMPLES,
                tags=["users"],
            ),
            partial_update=extend_schema(
                summary="Update a user (partial)",
                parameters=[ORGANIZATION_ID, USER_ID],
                request=UserUpdateSerializer,
                responses={200: UserSerializer},
                examples=UPDATE_EXAMPLES,
                tags=["users"],
            ),
            roles=extend_schema(
                summary="Replace a user's roles",
                description=(
                    "Assignable: `admin`, `provider`, `receptionist`, `rx_reader`; `[\"member\"]` alone strips "
                    "every other role. Anything else is 400 `invalid_role`."
                ),
                parameters=[ORGANIZATION_ID, USER_ID],
                request=UserRolesSerializer,
                responses={200: UserSerializer},
                examples=ROLES_EXAMPLES,
                tags=["users"],
            ),
            disable=extend_schema(
                summary="Disable a user",
                description=(
                    'Marks the user disabled, sets roles to `["member"]` and disables the Cognito account. '
                    'Optional body `{"reason": "..."}` (up to 500 characters), recorded in the audit event; '
                    "no body works too. Idempotent; not reversible through the API."
                ),
                parameters=[ORGANIZATION_ID, USER_ID],
                request=UserDisableSerializer,
                responses={200: UserSerializer},
                tags=["users"],
            ),
            history=extend_schema(
                summary="A user's audit history",
                parameters=[ORGANIZATION_ID, USER_ID],
                responses={200: AuditEventSerializer(many=True)},
                tags=["audit"],
            ),
        )
        class Annotated(self.target_class):
            problem_examples = {"create": _as_examples(CREATE_PROBLEM_EXAMPLES)}

            def get_queryset(self):
                # Schema generation has no organization; only the model matters (for the filters).
                return AuditEvent.objects.none() if self.action == "history" else User.objects.none()

        return Annotated


class AuditEventViewSetSchema(OpenApiViewExtension):
    target_class = "audit.api.AuditEventViewSet"

    def view_replacement(self):
        @extend_schema_view(
            list=extend_schema(
                summary="List the organization's audit events",
                description="Newest first. `since` and `until` are ISO 8601 date-times.",
                parameters=[ORGANIZATION_ID],
                tags=["audit"],
            )
        )
        class Annotated(self.target_class):
            def get_queryset(self):
                return AuditEvent.objects.none()

        return Annotated


class OrganizationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    hpio_number = serializers.CharField(allow_null=True)
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Organization"


class OrganizationViewSetSchema(OpenApiViewExtension):
    target_class = "accounts.api.views.OrganizationViewSet"

    def view_replacement(self):
        @extend_schema_view(
            retrieve=extend_schema(
                summary="Get your organization",
                description="Any valid token of the organization; no particular scope.",
                parameters=[ORGANIZATION_ID],
                responses={200: OrganizationSerializer},
                tags=["organizations"],
            )
        )
        class Annotated(self.target_class):
            serializer_class = OrganizationSerializer

        return Annotated


# --- the token endpoint (django-oauth-toolkit's plain Django view, invisible to the generator) ---

_TOKEN_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": ["invalid_request", "unsupported_grant_type", "invalid_scope", "invalid_client", "rate_limited"],
            "example": "invalid_client",
        },
        "error_description": {"type": "string"},
    },
    "description": "RFC 6749 §5.2 error (`rate_limited` for 429).",
}


def _token_error_content(*examples):
    return {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/TokenError"},
            "examples": {
                error: {"value": {"error": error, "error_description": description}}
                for error, description in examples
            },
        }
    }


def add_token_endpoint(result, generator, request, public):
    """Postprocessing hook: document POST /v1/oauth/token (RFC 6749 §4.4)."""
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {})["clientBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "The API client's id and secret, for the token endpoint only.",
    }
    components.setdefault("schemas", {}).update(
        {
            "TokenRequest": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                    "scope": {
                        "type": "string",
                        "description": "Space-separated subset of the client's scopes; all of them when omitted.",
                        "example": "read:users create:user",
                    },
                },
            },
            "TokenResponse": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "scope"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer", "example": 3600},
                    "scope": {"type": "string", "example": "read:users create:user update:user"},
                },
            },
            "TokenError": _TOKEN_ERROR,
        }
    )
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    result["paths"][TOKEN_URL] = {
        "post": {
            "operationId": "oauth_token_create",
            "summary": "Get an access token",
            "description": (
                "OAuth 2.0 client credentials grant. Authenticate the client with HTTP Basic "
                "(client id and secret from `create_api_client`); the token carries the scopes asked "
                "for, or all of the client's scopes. Only `grant_type=client_credentials` is served.\n\n"
                "After 10 failed client authentications for one client id within 10 minutes, that client "
                "id's requests are 429 until the 10 minutes have passed, the right secret included; one "
                "client address gets at most 100 failed authentications in 10 minutes."
            ),
            "tags": ["oauth"],
            "security": [{"clientBasic": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"$ref": "#/components/schemas/TokenRequest"},
                        "examples": {"all scopes": {"value": {"grant_type": "client_credentials"}}},
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "An access token (RFC 6749 §5.1).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}},
                },
                "400": {
                    "description": (
                        "`unsupported_grant_type`: any grant but `client_credentials` (answered before any "
                        "credential is looked at); `invalid_request`: no or several `grant_type`; "
                        "`invalid_scope`: a scope the client was not given."
                    ),
                    "content": _token_error_content(
                        ("unsupported_grant_type", "Only grant_type=client_credentials is served."),
                        ("invalid_request", "Send exactly one grant_type: client_credentials."),
                        ("invalid_scope", "The requested scope is invalid, unknown, or malformed."),
                    ),
                },
                "401": {
                    "description": (
                        "`invalid_client`: unknown client, wrong secret, no client authentication, a revoked "
                        "client, or a client of an inactive organization."
                    ),
                    "content": _token_error_content(("invalid_client", "Client authentication failed.")),
                },
                "413": {"description": "The request body exceeds 1 MiB (`payload_too_large`).", "content": problem},
                "429": {
                    "description": (
                        "`rate_limited`: too many failed client authentications for this client id or "
                        "address; retry after `Retry-After` seconds."
                    ),
                    "headers": RETRY_AFTER,
                    "content": _token_error_content(
                        ("rate_limited", "Too many failed client authentications. Retry after 412 seconds.")
                    ),
                },
                "503": {
                    "description": "The database is unreachable (`database_unavailable`); retry after `Retry-After`.",
                    "headers": RETRY_AFTER,
                    "content": problem,
                },
            },
        }
    }
    return result
