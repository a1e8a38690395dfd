"""Personas for the organization lifecycle: Alice's practice (the one deactivated) with its staff made
through the real services, Charlie's clinic (must be untouched), and Sam, platform staff."""

import os

import pytest

from audit.context import Actor
from tests.cognito_server import make_client
from tests.factories import StaffFactory, UserFactory

SETUP = Actor.system("test setup")


@pytest.fixture
def sam(db):
    return StaffFactory(email="sam@platform.example")


@pytest.fixture
def make_user(organization):
    """make_user(email, roles=..., org=...) -> a practice user made by user_create, as the API makes it."""

    def make(email, *, roles=None, org=None):
        return UserFactory(
            organization=org or organization, actor=SETUP, email=email, given_name=email.split("@")[0].title(),
            roles=roles,
        )

    return make


@pytest.fixture
def raw_cognito(cognito_server):
    """A plain boto3 client on the moto server, independent of the gateway under test."""
    return make_client(cognito_server.endpoint_url)


@pytest.fixture
def pool_id():
    return os.environ["COGNITO_USER_POOL_ID"]


@pytest.fixture
def account_enabled(raw_cognito, pool_id):
    """account_enabled(user) -> AdminGetUser's Enabled flag of the user's Cognito account."""

    def enabled(user) -> bool:
        return raw_cognito.admin_get_user(UserPoolId=pool_id, Username=str(user.pk))["Enabled"]

    return enabled
