from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.models import User


def user_queryset(*, organization_id):
    """The users of one organization, with everything the user resource shows in the same query."""
    return User.objects.filter(organization_id=organization_id).select_related("provider_details", "cognito_sync")


def user_get(*, organization_id, user_id) -> User:
    """The one way to fetch another user: scoped to the caller's organization, 404 to outsiders."""
    try:
        return user_queryset(organization_id=organization_id).get(pk=user_id)
    except (User.DoesNotExist, ValidationError, ValueError, TypeError) as error:  # ValidationError: not a UUID
        raise Http404("No such user in this organization.") from error

