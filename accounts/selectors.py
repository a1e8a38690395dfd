from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.models import User


def user_queryset(*, organization_id):
    """The users of one organization, with everything the user resource shows in the same query."""
    return User.objects.filter(organization_id=organization_id).select_related("provider_details", "cognito_sync")


def user_get(*, organization_id, user_id, fields=None):
    """The one way to fetch another user: scoped to the caller's organization, 404 to outsiders.
    With `fields`, the row as a dict of those values (what the API renders) instead of a User."""
    users = user_queryset(organization_id=organization_id)
    if fields is not None:
        users = users.values(*fields)
    try:
        return users.get(pk=user_id)
    except (User.DoesNotExist, ValidationError, ValueError, TypeError) as error:  # ValidationError: not a UUID
        raise Http404("No such user in this organization.") from error

