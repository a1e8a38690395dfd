from django.contrib.auth import get_user_model

from audit.context import Actor
from core.commands import OperatorCommand
from organizations.management.operator import organization_from_option
from organizations.services import organization_activate


class Command(OperatorCommand):
    help = (
        "Activate a deactivated organization again: its API clients may get tokens again, and the Cognito "
        "accounts of its users whose own status is active are enabled again (queued in the outbox; "
        "sync_cognito or the worker applies it). Disabled users stay disabled. Recorded as an "
        "organization.activated audit event."
    )

    def add_arguments(self, parser):
        parser.add_argument("organization", metavar="ORG_ID", help="The organization's id.")

    def handle(self, *args, organization, **options):
        organization = organization_from_option(organization)
        if organization.is_active:
            self.stdout.write(f"Organization {organization.name!r} is already active; nothing changed.")
            return
        organization = organization_activate(organization=organization, actor=Actor.system("activate_organization"))
        active = organization.users.filter(status=get_user_model().Status.ACTIVE).count()
        self.stdout.write(f"Activated organization {organization.name!r} ({organization.pk}).")
        self.stdout.write(
            f"Cognito: {active} active user account(s) queued to be enabled again (sync_cognito or the worker "
            "applies it); disabled users stay disabled."
        )
