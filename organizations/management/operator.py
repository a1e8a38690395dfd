"""What the organization commands share: finding the organization named on the command line."""

import uuid

from django.core.management.base import CommandError

from organizations.models import Organization


def organization_from_option(value: str) -> Organization:
    try:
        return Organization.objects.get(pk=uuid.UUID(value.strip()))
    except (ValueError, Organization.DoesNotExist) as error:
        raise CommandError(f"No organization with id {value!r} (give the organization's id).") from error


def active_organization_from_option(value: str, *, refused: str) -> Organization:
    """The organization, refused when deactivated: `refused` says what would not work for it."""
    organization = organization_from_option(value)
    if not organization.is_active:
        raise CommandError(f"Organization {organization.name!r} is deactivated: {refused}.")
    return organization
