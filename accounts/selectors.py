import uuid

from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.models import User
from core.db import PreparedQuery


def user_queryset(*, organization_id):
    """The users of one organization, with everything the user resource shows in the same query."""
    return User.objects.filter(organization_id=organization_id).select_related("provider_details", "cognito_sync")


def user_get(*, organization_id, user_id, fields=None):
    """The one way to fetch another user: scoped to the caller's organization, 404 to outsiders.
    With `fields`, the row as a dict of those values (what the API renders) instead of a User."""
    if fields is not None:
        return _user_row_get(organization_id=organization_id, user_id=user_id, fields=tuple(fields))
    try:
        return user_queryset(organization_id=organization_id).get(pk=user_id)
    except (User.DoesNotExist, ValidationError, ValueError, TypeError) as error:  # ValidationError: not a UUID
        raise Http404("No such user in this organization.") from error


_USER_EXISTS = PreparedQuery(
    lambda organization_id, user_id: User.objects.filter(organization_id=organization_id, pk=user_id).values("pk"),
    organization_id=uuid.UUID,
    user_id=uuid.UUID,
)


def user_reference(*, organization_id, user_id) -> User:
    """The user by id, scoped as user_get is (404 to outsiders), as a reference that carries only its
    id and organization: for a service that locks and re-reads the row anyway (every write does),
    so the check costs one small prepared query rather than a second full read."""
    try:
        organization_id, user_id = _uuid(organization_id), _uuid(user_id)
    except ValueError as error:  # not a UUID
        raise Http404("No such user in this organization.") from error
    if not _USER_EXISTS.rows(organization_id=organization_id, user_id=user_id):
        raise Http404("No such user in this organization.")
    return User(pk=user_id, organization_id=organization_id)


# One prepared query per field list (the API asks for one): GET /users/{id} and every write's
# response read a user this way, and compiling the three-table values() query cost more than
# running it.
_USER_ROW_QUERIES: dict[tuple, PreparedQuery] = {}


def _user_row_get(*, organization_id, user_id, fields: tuple) -> dict:
    query = _USER_ROW_QUERIES.get(fields)
    if query is None:
        query = _USER_ROW_QUERIES.setdefault(
            fields,
            PreparedQuery(
                lambda organization_id, user_id: user_queryset(organization_id=organization_id)
                .filter(pk=user_id)
                .values(*fields),
                organization_id=uuid.UUID,
                user_id=uuid.UUID,
            ),
        )
    try:
        organization_id, user_id = _uuid(organization_id), _uuid(user_id)
    except ValueError as error:  # not a UUID
        raise Http404("No such user in this organization.") from error
    rows = query.rows(organization_id=organization_id, user_id=user_id)
    if not rows:
        raise Http404("No such user in this organization.")
    return rows[0]


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
