"""What the operator commands share: finding the organization and the user named on the command line."""

import contextlib
import logging
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from accounts.models import User
from accounts.selectors import user_get
from organizations.models import Organization

# The Cognito client logs each call at INFO for the server's and the worker's logs.
COGNITO_LOGGER = "accounts.cognito"


class OperatorCommand(BaseCommand):
    """A command an operator runs at a terminal: its own output says what happened, so the Cognito
    client's per-call INFO lines stay off stderr (warnings and errors still show; -v 2 shows all)."""

    def execute(self, *args, **options):
        quiet = options.get("verbosity", 1) < 2
        with _cognito_logs_at(logging.WARNING) if quiet else contextlib.nullcontext():
            return super().execute(*args, **options)


@contextlib.contextmanager
def _cognito_logs_at(level: int):
    logger = logging.getLogger(COGNITO_LOGGER)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def organization_from_option(value: str) -> Organization:
    try:
        return Organization.objects.get(pk=uuid.UUID(value.strip()))
    except (ValueError, Organization.DoesNotExist) as error:
        raise CommandError(f"No organization with id {value!r} (give the organization's id).") from error


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
