"""The user resource as JSON built by PostgreSQL, for the users list.

A page of 50 users rendered in Python spent most of its time turning columns into Python values
and back into JSON: parsing every timestamp, decoding every roles list, building three dicts a row.
PostgreSQL builds each document instead (json_build_object keeps the keys in order; jsonb would sort
them) and the response embeds them as they are (orjson.Fragment). The list finds its page's ids
with the ORM (filters, cursor) and then fetches their documents with one fixed statement.

`user_row_representation` (serializers.py) stays the definition of the resource: the detail and
every write render with it, and so does the list on SQLite. tests/api/test_user_json.py holds the
two to the same output for every kind of user.
"""

import uuid

from django.db import connections
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Func, Q, TextField, Value, When
from django.db.models.functions import Cast, Coalesce

from accounts import roles as role_names
from accounts.api.serializers import PROVIDER_DETAILS_ROW_FIELDS
from accounts.models import PROVIDER_DETAILS_REQUIRED, User
from config.db import PreparedQuery


class _JSONObject(Func):
    """json_build_object('key', value, ...). The keys are this module's constants, written into the
    SQL as literals rather than parameters (PostgreSQL can't type a parameter in a variadic call)."""

    function = "json_build_object"
    output_field = TextField()

    def __init__(self, **fields):
        self.keys = tuple(fields)
        for key in self.keys:
            if not key.isidentifier():
                raise ValueError(f"not a plain key: {key!r}")
        super().__init__(*fields.values())

    def as_sql(self, compiler, connection, **extra_context):
        parts, params = [], []
        for key, expression in zip(self.keys, self.get_source_expressions(), strict=True):
            sql, expression_params = compiler.compile(expression)
            parts.append(f"'{key}', {sql}")
            params.extend(expression_params)
        return f"json_build_object({', '.join(parts)})", params


class _IsoTimestamp(Func):
    """A timestamptz as Python's isoformat() writes an aware UTC datetime: '2026-11-25T12:50:16.123456+00:00',
    with no fraction when it is zero (PostgreSQL's own JSON drops trailing zeros instead)."""

    output_field = TextField()
    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', %(expressions)s) = %(expressions)s "
        """THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)"""
    )


class _IsoDate(Func):
    """A date as isoformat() writes it, whatever the session's DateStyle: '1980-01-01'."""

    output_field = TextField()
    template = "to_char(%(expressions)s, 'YYYY-MM-DD')"


class _NormalizedRoles(Func):
    """normalize_roles() in SQL: distinct, sorted by code point (COLLATE "C"), a JSON array. A list
    of one role (most users) is already that and skips the sort."""

    output_field = TextField()
    template = (
        "CASE WHEN jsonb_array_length(%(expressions)s) <= 1 THEN (%(expressions)s)::json ELSE "
        '(SELECT COALESCE(json_agg(DISTINCT role COLLATE "C" ORDER BY role COLLATE "C"), \'[]\'::json) '
        "FROM jsonb_array_elements_text(%(expressions)s) AS role) END"
    )


def _details_complete() -> Q:
    """provider_details_complete() (accounts/models.py) as a condition on the joined row."""
    present = Q()
    for field in PROVIDER_DETAILS_REQUIRED:
        if field == "date_of_birth":
            present &= Q(provider_details__date_of_birth__isnull=False)
        else:
            present &= Q(**{f"provider_details__{field}__gt": ""})  # not NULL and not empty
    return present & (Q(provider_details__prescriber_type="T") | Q(provider_details__prescriber_number__gt=""))


_DETAILS_TEXT_FIELDS = (
    "given_name", "family_name", "sex", "phone", "hpii_number", "prescriber_type", "prescriber_number",
    "qualifications", "provider_number", "ahpra_number", "hospital_provider_number",
)


def user_json():
    """An expression for the user's JSON document as text; needs the provider_details and
    cognito_sync joins that user_queryset() sets up."""
    details = {field: F(f"provider_details__{field}") for field in _DETAILS_TEXT_FIELDS}
    details["date_of_birth"] = _IsoDate("provider_details__date_of_birth")
    return Cast(
        _JSONObject(
            id=F("id"),
            organization_id=F("organization_id"),
            email=F("email"),
            given_name=F("given_name"),
            family_name=F("family_name"),
            title=F("title"),
            phone=F("phone"),
            partner_user_id=F("partner_user_id"),
            access_roles=_NormalizedRoles("roles"),
            status=F("status"),
            disabled_at=_IsoTimestamp("disabled_at"),
            provider_details=Case(
                When(provider_details__user_id__isnull=True, then=Value(None)),
                default=_JSONObject(**{name: details[name] for name in PROVIDER_DETAILS_ROW_FIELDS}),
            ),
            can_prescribe=Coalesce(
                ExpressionWrapper(
                    Q(status="active") & Q(roles__contains=[role_names.PROVIDER]) & _details_complete(),
                    output_field=BooleanField(),
                ),
                Value(False),
            ),
            cognito=_JSONObject(status=Coalesce("cognito_sync__state", Value("pending"))),
            created_at=_IsoTimestamp("created_at"),
            updated_at=_IsoTimestamp("updated_at"),
        ),
        TextField(),
    )


def renders_users(alias: str) -> bool:
    """Whether that database can build the documents (PostgreSQL); otherwise the list renders in Python."""
    return connections[alias].vendor == "postgresql"


def user_documents(*, organization_id: uuid.UUID, user_ids: list) -> list[str]:
    """The JSON documents of those users of the organization, in the order of `user_ids`."""
    if not user_ids:
        return []
    rows = _DOCUMENTS.rows(organization_id=organization_id, user_ids=list(user_ids))
    documents = {row["id"]: row["document"] for row in rows}
    return [documents[user_id] for user_id in user_ids]


class _InArray(Func):
    """`column = ANY(%s)` with one array parameter: the same SQL for any number of ids (IN (...) is not)."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        column, array = (compiler.compile(expression) for expression in self.get_source_expressions())
        return f"{column[0]} = ANY({array[0]})", [*column[1], *array[1]]


# A fixed statement, so it is compiled once (config/db.py) and PostgreSQL plans it once per
# connection: with the cursor and the filters in it, the query was planned anew on every request
# (a custom plan for each cursor position, about 1 ms for an expression this size).
_DOCUMENTS = PreparedQuery(
    lambda organization_id, user_ids: User.objects.filter(
        _InArray(F("pk"), Value(user_ids)), organization_id=organization_id
    ).values("id", document=user_json()),
    organization_id=uuid.UUID,
    user_ids=list,
)
