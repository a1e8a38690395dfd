from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.context import Actor
from organizations.models import Organization
from scim.services import scim_token_create


class Command(BaseCommand):
    help = (
        "Make a SCIM bearer token for an organization's identity provider (Entra ID, Okta). "
        "Prints the token once, as the last line; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="The organization's id.")
        parser.add_argument("--name", default="SCIM provisioning", help="What the token is for (shown in the admin).")

    def handle(self, *args, organization, name, **options):
        if not name.strip():
            raise CommandError("--name must not be empty.")
        try:
            org = Organization.objects.get(pk=organization)
        except (Organization.DoesNotExist, ValidationError, ValueError):
            raise CommandError(f"No organization with id {organization!r}.") from None
        if not org.is_active:
            raise CommandError(f"Organization {org.name!r} is deactivated: its SCIM token would be refused.")
        try:
            token, raw = scim_token_create(organization=org, name=name, actor=Actor.system("create_scim_token"))
        except ValidationError as error:
            problems = (f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            raise CommandError("; ".join(problems)) from error
        self.stdout.write(f"Created SCIM token {token.pk} for {org.name!r}. It is shown once; store it now:")
        self.stdout.write(raw)
