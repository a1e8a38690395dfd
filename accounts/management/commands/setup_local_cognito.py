from urllib.parse import urlparse

import boto3
from django.conf import settings
from django.core.management.base import CommandError

from core.commands import OperatorCommand

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Command(OperatorCommand):
    help = (
        "Development only: create a user pool on the local Cognito emulator (moto's server) and print "
        "its id. Refuses any endpoint that is not on this machine."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="user-management-dev")

    def handle(self, *args, name, **options):
        endpoint = settings.COGNITO_ENDPOINT_URL
        if not endpoint or urlparse(endpoint).hostname not in LOOPBACK:
            raise CommandError("Set AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER to the local emulator (127.0.0.1).")
        region = settings.COGNITO_REGION or "ap-southeast-2"
        client = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=region)
        pools = client.list_user_pools(MaxResults=60)["UserPools"]
        pool_id = next((pool["Id"] for pool in pools if pool["Name"] == name), None)
        if pool_id is None:
            pool_id = client.create_user_pool(
                PoolName=name,
                UsernameAttributes=[],
                Schema=[{"Name": "organization_id", "AttributeDataType": "String", "Mutable": True}],
            )["UserPool"]["Id"]
        self.stdout.write(pool_id)
