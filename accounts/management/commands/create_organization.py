from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.tenancy import organization_create
from audit.context import Actor


class Command(BaseCommand):
    help = "Create an organization (a practice or clinic). Prints its id as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The organization's name.")
        parser.add_argument("--hpio", default=None, help="Its HPI-O (16 digits, prefix 800362, Luhn check digit).")

    def handle(self, *args, name, hpio, **options):
        if not name.strip():
            raise CommandError("--name must not be empty.")
        try:
            organization = organization_create(
                actor=Actor.system("create_organization"), name=name.strip(), hpio_number=hpio
            )
        except ValidationError as error:
            problems = (f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
            raise CommandError("; ".join(problems)) from error
        self.stdout.write(f"Created organization {organization.name!r}.")
        self.stdout.write(str(organization.pk))
