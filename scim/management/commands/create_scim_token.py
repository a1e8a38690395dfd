from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.context import Actor
from core.commands import invalid_fields
from organizations.management.operator import active_organization_from_option
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
        org = active_organization_from_option(organization, refused="its SCIM token would be refused")
        try:
            token, raw = scim_token_create(organization=org, name=name, actor=Actor.system("create_scim_token"))
        except ValidationError as error:
            raise invalid_fields(error) from error
        self.stdout.write(f"Created SCIM token {token.pk} for {org.name!r}. It is shown once; store it now:")
        self.stdout.write(raw)
