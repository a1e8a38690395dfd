import json as _json

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from audit.context import Actor
from core.commands import OperatorCommand, invalid_fields
from core.errors import ApplicationError
from organizations.management.operator import active_organization_from_option
from organizations.services import api_client_create


class Command(OperatorCommand):
    help = (
        "Create an OAuth 2.0 client-credentials API client for one organization. The client secret "
        "is printed once and stored hashed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="The organization's id.")
        parser.add_argument("--name", required=True, help="A name for the client, e.g. the practice software.")
        parser.add_argument(
            "--scopes",
            required=True,
            help='Space-separated scopes, e.g. "read:users create:user update:user delete:user read:audit".',
        )
        parser.add_argument("--json", action="store_true", help='Print only {"client_id": ..., "client_secret": ...}.')

    def handle(self, *args, organization, name, scopes, json: bool, **options):
        org = active_organization_from_option(organization, refused="its clients could get no token")
        try:
            api_client, secret = api_client_create(
                organization=org, actor=Actor.system("create_api_client"), name=name, scopes=scopes.split()
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        except ValidationError as error:
            raise invalid_fields(error) from error
        credentials = {"client_id": api_client.application.client_id, "client_secret": secret}
        if json:
            self.stdout.write(_json.dumps(credentials))
            return
        self.stdout.write(f"API client {name!r} for {org.name!r} with scopes: {api_client.allowed_scopes}")
        self.stdout.write(f"client_id:     {credentials['client_id']}")
        self.stdout.write(f"client_secret: {credentials['client_secret']}  (shown once; stored hashed)")
