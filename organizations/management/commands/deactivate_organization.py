from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from audit.changes import REASON_MAX_LENGTH
from audit.context import Actor
from core.commands import OperatorCommand
from organizations.management.operator import organization_from_option
from organizations.services import organization_deactivate


class Command(OperatorCommand):
    help = (
        "Deactivate an organization: its API clients get 401 from now on, and every one of its users' "
        "Cognito accounts is disabled and signed out (queued in the outbox; sync_cognito or the worker "
        "applies it). The users' own status and roles don't change. Recorded as an "
        "organization.deactivated audit event. activate_organization reverses it."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", metavar="ORG_ID", help="The organization's id.")
        parser.add_argument(
            "--reason", default="", help=f"Why (up to {REASON_MAX_LENGTH} characters); stored in the audit event."
        )

    def handle(self, *args, organization, reason, **options):
        organization = organization_from_option(organization)
        if not organization.is_active:
            self.stdout.write(f"Organization {organization.name!r} was already deactivated; nothing changed.")
            return
        try:
            organization = organization_deactivate(
                organization=organization, actor=Actor.system("deactivate_organization"), reason=reason
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        users = organization.users.count()
        self.stdout.write(f"Deactivated organization {organization.name!r} ({organization.pk}).")
        self.stdout.write("Its API clients get 401 from now on.")
        self.stdout.write(
            f"Cognito: {users} user account(s) queued to be disabled and signed out (sync_cognito or the worker "
            "applies it)."
        )
