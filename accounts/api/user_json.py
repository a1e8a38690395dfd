"""The user resource as JSON built by PostgreSQL, for the users list.

A page of 50 users rendered in Python spent most of its time turning columns into Python values
and back into JSON: parsing every timestamp, decoding every roles list, building three dicts a row.
PostgreSQL builds each row's document in the same query instead (json_build_object keeps the keys
in order; jsonb would sort them), and the response embeds the documents as they are
(orjson.Fragment).

The document is generated from the one definition of the resource, accounts/api/resource.py
(USER_RESOURCE: each key's source and JSON kind), as is the Python rendering the detail, every
write and the list on SQLite use. tests/api/test_user_json.py holds the two to the same output for
every kind of user.
"""

import functools

from django.db import connections
from django.db.models import BooleanField, Case, ExpressionWrapper, F, Func, Q, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, NullIf

from accounts import roles as role_names
from accounts.api import resource
from accounts.models import User, access_not_expired_q, provider_details_prescribable_q, verification_required


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


class _CompiledOnce(Func):
    """Its expression compiled once per database and reused. The document is the same SQL on every
    request (its column references were resolved once, in _all_user_documents), and compiling
    its hundred-odd nodes took about 2 ms a request under the profiler."""

    template = "%(expressions)s"

    def as_sql(self, compiler, connection, **extra_context):
        compiled = self.__dict__.setdefault("_compiled", {})
        if connection.alias not in compiled:
            compiled[connection.alias] = super().as_sql(compiler, connection, **extra_context)
        return compiled[connection.alias]

    def resolve_expression(self, *args, **kwargs):
        return self._forget(super().resolve_expression(*args, **kwargs))

    def relabeled_clone(self, change_map):  # other table aliases: other SQL
        return self._forget(super().relabeled_clone(change_map))

    @staticmethod
    def _forget(clone):
        clone.__dict__.pop("_compiled", None)
        return clone


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
    """normalize_roles() in SQL: distinct, sorted by code point (COLLATE "C"), a JSON array, with
    `member` only when it is alone. A list of one role (most users) is already that and skips the
    sort. A longer list drops member; if that leaves nothing, every entry was member: ["member"]."""

    output_field = TextField()
    template = (
        "CASE WHEN jsonb_array_length(%(expressions)s) <= 1 THEN (%(expressions)s)::json ELSE "
        '(SELECT COALESCE(json_agg(DISTINCT role COLLATE "C" ORDER BY role COLLATE "C") '
        "FILTER (WHERE role <> 'member'), '[\"member\"]'::json) "  # roles.MEMBER
        "FROM jsonb_array_elements_text(%(expressions)s) AS role) END"
    )


def _expression(key: resource.Key, required: bool):
    """One key's value in SQL, as the Python rendering (accounts/api/resource.py) writes it."""
    source = key.source
    if key.kind in (resource.TEXT, resource.EMAIL, resource.UUID):  # json_build_object writes a uuid as its text
        return NullIf(F(source), Value("")) if key.blank_as_null else F(source)
    if key.kind == resource.TIMESTAMP:
        return _IsoTimestamp(source)
    if key.kind == resource.DATE:
        return _IsoDate(source)
    if key.kind == resource.ROLES:
        return _NormalizedRoles(source)
    if key.kind == resource.PROVIDER_DETAILS:
        return Case(
            When(**{f"{source}__isnull": True}, then=Value(None)),
            default=_document(resource.PROVIDER_DETAILS_RESOURCE, required),
        )
    if key.kind == resource.CAN_PRESCRIBE:
        return Coalesce(
            ExpressionWrapper(
                Q(status="active")
                & access_not_expired_q()
                & Q(roles__contains=[role_names.PROVIDER])  # list membership, exactly as in Python
                & provider_details_prescribable_q(resource.PROVIDER_DETAILS_PREFIX, required=required),
                output_field=BooleanField(),
            ),
            Value(False),
        )
    if key.kind == resource.VERIFICATION:
        return _document(resource.VERIFICATION_RESOURCE, required)
    if key.kind == resource.COGNITO:
        return _JSONObject(status=Coalesce(source, Value("pending")))
    raise ValueError(f"unknown kind {key.kind!r} of {key.name!r}")


def _document(keys, required: bool | None = None) -> "_JSONObject":
    required = verification_required() if required is None else required
    return _JSONObject(**{key.name: _expression(key, required) for key in keys})


def user_json(required: bool | None = None):
    """An expression for the user's JSON document as text, on a User queryset, generated from
    resource.USER_RESOURCE; its references to provider_details and cognito_sync add the LEFT JOINs
    it needs. `required`: whether can_prescribe needs the register's `verified` (the setting if None)."""
    required = verification_required() if required is None else required
    return _CompiledOnce(Cast(_document(resource.USER_RESOURCE, required), TextField()), output_field=TextField())


def renders_users(alias: str) -> bool:
    """Whether that database can build the documents (PostgreSQL); otherwise the list renders in Python."""
    return connections[alias].vendor == "postgresql"


def user_documents(*, organization_id):
    """The organization's users as rows of `created_at` (for the cursor) and `document` (the JSON)."""
    return _all_user_documents(verification_required()).filter(organization_id=organization_id)


@functools.cache
def _all_user_documents(required: bool):
    # Resolving the document's thirty-odd column references (and their joins) took about 4 ms a
    # request under the profiler; resolved once per process, each request clones the result and
    # adds its filters.
    return User.objects.values("created_at", document=user_json(required))
