"""What the operator commands share: finding the organization and the user named on the command line."""

import uuid

from django.core.management.base import CommandError
from django.http import Http404

from accounts.models import User
from accounts.selectors import user_get
from organizations.models import Organization


def user_from_argument(value: str, organization: Organization) -> User:
    """A user id or an email, looked up within the organization only: another organization's user
    is "not found", exactly as the API answers 404."""
    value = value.strip()
    try:
        user_id = uuid.UUID(value)
    except ValueError:
        user = (
            User.objects.filter(organization=organization, email=value.lower())
            .select_related("provider_details", "cognito_sync")
            .first()
        )
        if user is None:
            raise CommandError(f"No user with email {value!r} in organization {organization.name!r}.") from None
        return user
    try:
        return user_get(organization_id=organization.pk, user_id=user_id)
    except Http404 as error:
        raise CommandError(f"No user with id {value} in organization {organization.name!r}.") from error


def system_actor_name(command: str, reason: str | None) -> str:
    """The audit actor's name carries the operator's reason (the column holds 200 characters)."""
    name = f"{command}: {reason.strip()}" if reason and reason.strip() else command
    return name[:200]
