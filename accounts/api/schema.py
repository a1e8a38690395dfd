"""The OpenAPI description of the users API: its field rules, and the annotations and examples of
its endpoints (users, their history, audit events, the organization).

Kept out of the views so they stay thin: view extensions annotate the viewsets during schema
generation only. What every operation shares is core.api.schema's ApiAutoSchema; the token
endpoint is documented in accounts.api.token_schema.
"""

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from accounts.api.audit_events import AuditEventSerializer
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
from audit.models import AuditEvent
from core.api.schema import ApiAutoSchema, OAuth2ClientCredentialsScheme, location_header, problem_example
from identifiers.checks import (
    HPII_PREFIX,
    HPIO_PREFIX,
    PRESCRIBER_TYPES,
    PROVIDER_CHECK_CHARACTERS,
    PROVIDER_LOCATION_CHARACTERS,
    SEXES,
)


class ApiClientTokenScheme(OAuth2ClientCredentialsScheme):
    target_class = "accounts.api.authentication.ApiClientTokenAuthentication"


# What the services check, so an integrator can get it right the first time.
FIELD_RULES = {
    "email": "Unique across the platform, case-insensitively; stored lower-cased.",
    "phone": "Australian number, `0432333333` or `+61432333333`; returned in E.164.",
    "partner_user_id": "Your own id for the user; unique within the organization.",
    "access_roles": "`admin`, `provider`, `receptionist`, `rx_reader`, or `member` alone. Default `[\"member\"]`.",
    "date_of_birth": "ISO date in the past, not before 1900.",
    "sex": "`M`, `F`, `I` or `N`; null when not known.",
    "hpii_number": "HPI-I: 16 digits starting 800361 with a Luhn check digit (e.g. 8003614900000009).",
    "prescriber_type": "`M`, `N`, `D`, `P` or `T`; null when not known.",
    "prescriber_number": "PBS prescriber number: 7 digits. Not required for prescriber type `T`.",
    "qualifications": "E.g. `MBBS`, `MD`, `RN`.",
    "provider_number": "Medicare provider number: 6-digit stem, location character, check character.",
    "ahpra_number": "Three letters and ten digits.",
}


# The checks the services make that a schema can state: enums, formats, lengths and patterns, for
# request and response. What it can't (a check digit, a phone number's validity, a date in the past)
# is in FIELD_RULES' words.
_HPII = f"{HPII_PREFIX}[0-9]{{10}}"
_PROVIDER_NUMBER = "[0-9]{{6}}[{location}][{check}]"
FIELD_FORMATS = {
    "email": {"format": "email"},
    "access_roles": {"enum": sorted(ALL_ROLES), "minItems": 1},
    # null: not known yet (stored details may be incomplete); the input takes null back.
    "sex": {"enum": [code for code, _ in SEXES]},
    "prescriber_type": {"enum": [code for code, _ in PRESCRIBER_TYPES]},
    "hpii_number": {"pattern": f"^({_HPII})?$", "maxLength": 16},
    "prescriber_number": {"pattern": "^([0-9]{7})?$", "maxLength": 7},
    "hpio_number": {"pattern": f"^({HPIO_PREFIX}[0-9]{{10}})?$"},
}
# The input takes lower-case letters (stored upper-case) and a phone number in the forms people type.
REQUEST_FORMATS = {
    "provider_number": {
        "pattern": "^(" + _PROVIDER_NUMBER.format(
            location=PROVIDER_LOCATION_CHARACTERS + PROVIDER_LOCATION_CHARACTERS.lower(),
            check=PROVIDER_CHECK_CHARACTERS + PROVIDER_CHECK_CHARACTERS.lower(),
        ) + ")?$",
        "maxLength": 8,
    },
    "ahpra_number": {"pattern": "^([A-Za-z]{3}[0-9]{10})?$", "maxLength": 13},
    "phone": {"pattern": r"^(\+?[0-9 ()-]+)?$"},
}
RESPONSE_FORMATS = {
    "provider_number": {
        "pattern": "^(" + _PROVIDER_NUMBER.format(
            location=PROVIDER_LOCATION_CHARACTERS, check=PROVIDER_CHECK_CHARACTERS
        ) + ")?$"
    },
    "ahpra_number": {"pattern": "^([A-Z]{3}[0-9]{10})?$"},
    "phone": {"pattern": r"^(\+61[0-9]{9})?$"},
}


class AccountsApiAutoSchema(ApiAutoSchema):
    """The /v1 schema class (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS): the shared parts, and the users' fields."""

    strict_request_serializer = RejectUnknownFieldsMixin
    field_rules = FIELD_RULES
    field_formats = FIELD_FORMATS
    request_formats = REQUEST_FORMATS
    response_formats = RESPONSE_FORMATS
    # The date-time filters (since, until, expiring_before) take UTC offsets from -14:00 to +14:00
    # (audit.api._TimestampField: what PostgreSQL and every real zone allow).
    query_date_time_pattern = r"([Zz]|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"


# --- per-endpoint annotations -----------------------------------------------------------------

ORGANIZATION_ID = OpenApiParameter(
    "organization_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Your organization's id."
)
USER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's id.")
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # The server's rule (accounts/api/idempotency.py _VALID_KEY): printable ASCII without spaces.
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x21-\x7E]+$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retried create safe: a request with the same key and the same body within 24 hours "
        "returns the first response (same status and user) and creates nothing. The same key with a "
        "different body is 409 `idempotency_key_reused`; while the first request is still running, a "
        "retry waits for it or gets 409 `idempotency_key_in_progress`. Keys are per API client; "
        "1 to 255 printable ASCII characters without spaces (a UUID is a good choice)."
    ),
)

LOCATION = location_header("The created user's URL (GET it for the user).")

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
        "hpii_check_digit": problem_example(
            400,
            "validation_error",
            f"hpii_number: {_HPII_MESSAGE}",
            [{"field": "hpii_number", "message": _HPII_MESSAGE, "code": "invalid"}],
        ),
    },
    409: {
        "user_already_exists": problem_example(
            409, "user_already_exists", "A user with this email already exists."
        ),
        "idempotency_key_reused": problem_example(
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
                parameters=[ORGANIZATION_ID, IDEMPOTENCY_KEY, LOCATION],
                request=UserCreateSerializer,
                responses={201: OpenApiResponse(UserSerializer, description="The created user; `Location` names it.")},
                examples=CREATE_EXAMPLES,
                tags=["users"],
            ),
            update=extend_schema(
                summary="Update a user (partial, as PATCH)",
                description=(
                    "PUT merges exactly as PATCH does: only the fields sent change, and a field left out "
                    "keeps its value (send `null` or `\"\"` to clear one). `provider_details` is merged "
                    "into the stored details. Roles are changed with PUT .../roles. An `access_expires_at` "
                    "that has passed can't be cleared or moved (409 `access_expired`): platform staff "
                    "re-enable the user."
                ),
                parameters=[ORGANIZATION_ID, USER_ID],
                request=UserUpdateSerializer,
                responses={200: UserSerializer},
                examples=UPDATE_EXAMPLES,
                tags=["users"],
            ),
            partial_update=extend_schema(
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
                    "no body works too (a JSON `null` body is 400). Idempotent; not reversible through the API."
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
    target_class = "accounts.api.audit_events.AuditEventViewSet"

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
