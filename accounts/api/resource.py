"""THE definition of the user resource: one table, each output key with its source and its JSON kind.

Everything that renders or describes a user is derived from USER_RESOURCE:
- USER_ROW_FIELDS, the values() the detail, every write's response and the webhook payloads read;
- user_row_representation(row), the Python rendering of such a row;
- the users list's SQL document on PostgreSQL (accounts/api/user_json.py generates it from this table);
- the OpenAPI schema's output serializers (UserSerializer, ProviderDetailsSerializer).

The provider details are ProviderDetails' own PROVIDER_FIELDS (accounts/models.py), so a field added
to the model is in the resource too. Adding a user key is one line in USER_RESOURCE (and, for a new
column, the model field and its migration).
"""

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import serializers

from accounts import roles as role_names
from accounts.models import PROVIDER_FIELDS, ProviderDetails, VerificationStatus, provider_details_prescribable

# The JSON kinds a key can have.
TEXT = "text"  # a string as stored (optionally with `choices` for the schema)
EMAIL = "email"  # a string; the schema says format: email
UUID = "uuid"  # a UUID as its canonical string
TIMESTAMP = "timestamp"  # an aware datetime as isoformat() writes it, or null
DATE = "date"  # a date as isoformat() writes it, or null
ROLES = "roles"  # the roles list, normalised (accounts.roles.normalize_roles)
PROVIDER_DETAILS = "provider_details"  # the nested provider details (PROVIDER_DETAILS_RESOURCE), or null
CAN_PRESCRIBE = "can_prescribe"  # computed: active, not expired, provider role, complete and verified provider details
VERIFICATION = "verification"  # the nested verification state of the provider details (VERIFICATION_RESOURCE)
COGNITO = "cognito"  # {"status": the Cognito sync state, "pending" when there is no sync row}

# The related rows the resource reads, as values() paths.
PROVIDER_DETAILS_PREFIX = "provider_details__"
PROVIDER_DETAILS_PRESENT = "provider_details__user_id"  # None: the user has no provider details


@dataclass(frozen=True)
class Key:
    """One output key: its name, the values() path it reads (None for a computed key), its kind."""

    name: str
    source: str | None
    kind: str
    nullable: bool = False
    choices: tuple = ()
    help_text: str = ""
    # A code stored as "" until it is given reads as null: the one form for "unknown" that the
    # input takes back (a generated client can send what it read).
    blank_as_null: bool = False


def _provider_details_key(name: str) -> Key:
    field = ProviderDetails._meta.get_field(name)
    kind = DATE if field.get_internal_type() == "DateField" else TEXT
    if field.choices:
        return Key(name, f"{PROVIDER_DETAILS_PREFIX}{name}", kind, nullable=True, blank_as_null=True)
    return Key(name, f"{PROVIDER_DETAILS_PREFIX}{name}", kind, nullable=field.null)


_V = f"{PROVIDER_DETAILS_PREFIX}verification_"
VERIFICATION_RESOURCE = (
    Key(
        "status", f"{_V}status", TEXT, choices=tuple(VerificationStatus.values),
        help_text="What the HI Service said about these details; can_prescribe needs `verified`.",
    ),
    Key("hpii_status", f"{_V}hpii_status", TEXT, nullable=True, help_text="The register's HPI-I status, as sent."),
    Key("checked_at", f"{_V}checked_at", TIMESTAMP, nullable=True, help_text="When the register last answered."),
    Key("next_check_at", f"{_V}next_check_at", TIMESTAMP, nullable=True, help_text="When it is asked again."),
    Key(
        "message", f"{_V}message", TEXT,
        help_text="The register's service-message code and reason, or why it could not be asked.",
    ),
    Key(
        "found_hpii", f"{_V}found_hpii", TEXT, nullable=True,
        help_text="The HPI-I the register gave for a search by AHPRA number (never copied into hpii_number).",
    ),
)

PROVIDER_DETAILS_RESOURCE = (
    *(_provider_details_key(name) for name in PROVIDER_FIELDS),
    Key("verification", None, VERIFICATION),
)

USER_RESOURCE = (
    Key("id", "id", UUID),
    Key("organization_id", "organization_id", UUID),
    Key("email", "email", EMAIL),
    Key("given_name", "given_name", TEXT),
    Key("family_name", "family_name", TEXT),
    Key("title", "title", TEXT),
    Key("phone", "phone", TEXT),
    Key("partner_user_id", "partner_user_id", TEXT, nullable=True),
    Key("access_roles", "roles", ROLES),
    Key("status", "status", TEXT, choices=("active", "disabled")),
    Key("disabled_at", "disabled_at", TIMESTAMP, nullable=True),
    Key(
        "access_expires_at", "access_expires_at", TIMESTAMP, nullable=True,
        help_text="When the user is disabled automatically (the worker, within a minute); null: never.",
    ),
    Key("provider_details", PROVIDER_DETAILS_PRESENT, PROVIDER_DETAILS, nullable=True),
    Key("can_prescribe", None, CAN_PRESCRIBE),
    Key("cognito", "cognito_sync__state", COGNITO),
    Key("created_at", "created_at", TIMESTAMP),
    Key("updated_at", "updated_at", TIMESTAMP),
)


def _row_fields() -> tuple:
    fields = []
    for key in USER_RESOURCE:
        if key.kind == CAN_PRESCRIBE:  # reads status, roles and the provider details, all read anyway
            continue
        fields.append(key.source)
        if key.kind == PROVIDER_DETAILS:
            fields.extend(detail.source for detail in PROVIDER_DETAILS_RESOURCE if detail.kind != VERIFICATION)
            fields.extend(part.source for part in VERIFICATION_RESOURCE)
    return tuple(fields)


# What the Python rendering reads: a user's row from QuerySet.values(*USER_ROW_FIELDS).
USER_ROW_FIELDS = _row_fields()


# --- the Python rendering ------------------------------------------------------------------------
# Rows (QuerySet.values()), not model instances: building a User, a ProviderDetails and a CognitoSync
# per row cost more than the query itself on the list. The rendering is generated from the table as
# one function, a dict display with an expression per key (as collections.namedtuple generates its
# class): a renderer call per key cost 60% more a row (12 against 7.5 microseconds a provider).


def _iso(value):
    return value.isoformat() if value is not None else None


def _can_prescribe(row) -> bool:
    return (
        row[PROVIDER_DETAILS_PRESENT] is not None
        and row["status"] == "active"
        and (row["access_expires_at"] is None or row["access_expires_at"] > timezone.now())
        and role_names.PROVIDER in row["roles"]
        and provider_details_prescribable(lambda field: row[f"{PROVIDER_DETAILS_PREFIX}{field}"])
    )


def _python_expression(key: Key) -> str:
    """One key's value as a Python expression on `row` (the names and sources are this module's own
    constants; repr() quotes them)."""
    source = f"row[{key.source!r}]" if key.source else None
    if key.kind in (TEXT, EMAIL):
        return f"({source} or None)" if key.blank_as_null else source
    if key.kind == UUID:
        return f"str({source})"
    if key.kind in (TIMESTAMP, DATE):
        return f"_iso({source})"
    if key.kind == ROLES:
        return f"_normalize_roles({source})"
    if key.kind == PROVIDER_DETAILS:
        return f"(None if {source} is None else {_python_document(PROVIDER_DETAILS_RESOURCE)})"
    if key.kind == CAN_PRESCRIBE:
        return "_can_prescribe(row)"
    if key.kind == VERIFICATION:
        return _python_document(VERIFICATION_RESOURCE)
    if key.kind == COGNITO:
        return f'{{"status": {source} or "pending"}}'
    raise ValueError(f"unknown kind {key.kind!r} of {key.name!r}")


def _python_document(keys) -> str:
    return "{" + ", ".join(f"{key.name!r}: {_python_expression(key)}" for key in keys) + "}"


def python_renderer(keys):
    """A function rendering a row into the document of `keys` (USER_RESOURCE, or a test's table)."""
    namespace = {"_iso": _iso, "_normalize_roles": role_names.normalize_roles, "_can_prescribe": _can_prescribe}
    exec(f"def render(row):\n    return {_python_document(keys)}\n", namespace)  # noqa: S102
    return namespace["render"]


_render_user = python_renderer(USER_RESOURCE)


def user_row_representation(row: dict) -> dict:
    """The user resource from a row of values(*USER_ROW_FIELDS)."""
    return _render_user(row)


# --- the schema's output serializers -------------------------------------------------------------


class CognitoStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["synced", "pending", "failed"])


def _schema_field(key: Key) -> serializers.Field:
    extra = {"help_text": key.help_text} if key.help_text else {}
    if key.nullable:
        extra["allow_null"] = True
    if key.kind == TEXT:
        if key.choices:
            return serializers.ChoiceField(choices=list(key.choices), **extra)
        return serializers.CharField(**extra)
    if key.kind == EMAIL:
        return serializers.EmailField(**extra)
    if key.kind == UUID:
        return serializers.UUIDField(**extra)
    if key.kind == TIMESTAMP:
        return serializers.DateTimeField(**extra)
    if key.kind == DATE:
        return serializers.DateField(**extra)
    if key.kind == ROLES:
        return serializers.ListField(child=serializers.ChoiceField(choices=sorted(role_names.ALL_ROLES)), **extra)
    if key.kind == PROVIDER_DETAILS:
        return ProviderDetailsSerializer(**extra)
    if key.kind == CAN_PRESCRIBE:
        return serializers.BooleanField(**extra)
    if key.kind == VERIFICATION:
        return VerificationSerializer(**extra)
    if key.kind == COGNITO:
        return CognitoStatusSerializer(**extra)
    raise ValueError(f"unknown kind {key.kind!r} of {key.name!r}")


def _serializer_class(name: str, keys, doc: str, **attrs):
    fields = {key.name: _schema_field(key) for key in keys}
    namespace = {"__module__": __name__, "__qualname__": name, "__doc__": doc, **fields, **attrs}
    return serializers.SerializerMetaclass(name, (serializers.Serializer,), namespace)


VerificationSerializer = _serializer_class(
    "VerificationSerializer",
    VERIFICATION_RESOURCE,
    """The HI Service's answer about the provider's person-identifying details (read-only).""",
)
ProviderDetailsSerializer = _serializer_class("ProviderDetailsSerializer", PROVIDER_DETAILS_RESOURCE, None)

UserSerializer = _serializer_class(
    "UserSerializer",
    USER_RESOURCE,
    """The user resource. Rendered by hand in to_representation: the list endpoint renders 100 of
    these per request, and DRF's per-field machinery costs more than the query does. The declared
    fields document the shape for the OpenAPI schema.""",
    to_representation=lambda self, row: user_row_representation(row),
)
