from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from audit.context import Actor
from core.commands import OperatorCommand, invalid_fields
from organizations.models import Organization
from organizations.services import organization_create


class Command(OperatorCommand):
    help = "Create an organization (a practice or clinic). Prints its id as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The organization's name.")
        parser.add_argument("--hpio", default=None, help="Its HPI-O (16 digits, prefix 800362, Luhn check digit).")
        parser.add_argument(
            "--allow-duplicate",
            action="store_true",
            help="Create it even if an organization of the same name (ignoring case) exists.",
        )

    def handle(self, *args, name, hpio, allow_duplicate, **options):
        if not name.strip():
            raise CommandError("--name must not be empty.")
        # Running the same command twice must not make two practices silently.
        same = Organization.objects.filter(name__iexact=name.strip()).order_by("created_at").first()
        if same is not None and not allow_duplicate:
            raise CommandError(
                f"An organization named {same.name!r} exists already (id {same.pk}); "
                "pass --allow-duplicate to create another."
            )
        try:
            organization = organization_create(
                actor=Actor.system("create_organization"), name=name.strip(), hpio_number=hpio
            )
        except ValidationError as error:
            raise invalid_fields(error) from error
        self.stdout.write(f"Created organization {organization.name!r}.")
        self.stdout.write(str(organization.pk))
