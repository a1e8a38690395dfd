"""Fixtures shared by the whole suite.

A real Cognito HTTP endpoint (moto's server on 127.0.0.1) runs for the whole session, so every
API test exercises the real sync path.

Personas (made through the services by tests/factories.py, so each has its history, audit events
and Cognito outbox row): `organization` is Alice's practice, the caller's organization; `alice` is
its admin and `bob` a member of it. `other_organization` is Charlie's clinic, another tenant, and
`charlie` one of its users: they must see nothing of Alice's.
"""

import base64
import os

import pytest

from audit.context import Actor
from tests.cognito_server import CognitoServer, cognito_env, create_user_pool


@pytest.fixture(scope="session", autouse=True)
def cognito_server():
    server = CognitoServer()
    endpoint = server.start()
    saved = dict(os.environ)
    os.environ.update(cognito_env(endpoint))
    os.environ["COGNITO_USER_POOL_ID"] = create_user_pool(endpoint)
    os.environ["COGNITO_MAX_ATTEMPTS"] = "1"
    os.environ["COGNITO_CONNECT_TIMEOUT"] = "1"
    os.environ["COGNITO_READ_TIMEOUT"] = "2"
    from accounts.cognito.gateway import reset_client

    reset_client()
    yield server
    server.close()
    os.environ.clear()
    os.environ.update(saved)
    reset_client()


@pytest.fixture(autouse=True)
def _cognito_up(cognito_server):
    """A test that takes Cognito down can't leak the outage into the next one."""
    from accounts.cognito import sync

    cognito_server.start()
    sync._inline_paused_until = 0.0
    yield
    cognito_server.start()
    sync._inline_paused_until = 0.0


@pytest.fixture
def cognito(cognito_server):
    from accounts.cognito.gateway import get_gateway

    return get_gateway()


@pytest.fixture
def organization(db):
    """Alice's practice."""
    from tests.factories import OrganizationFactory

    return OrganizationFactory(actor=Actor.system("tests"), name="Alice's Practice")


@pytest.fixture
def other_organization(db):
    """Charlie's clinic: another tenant."""
    from tests.factories import OrganizationFactory

    return OrganizationFactory(actor=Actor.system("tests"), name="Charlie's Clinic")


@pytest.fixture
def alice(organization):
    """The admin of her practice."""
    from tests.factories import UserFactory

    return UserFactory(
        organization=organization, email="alice@alice-practice.example", given_name="Alice", family_name="Owner",
        roles=["admin"],
    )


@pytest.fixture
def bob(organization):
    """A member of Alice's practice."""
    from tests.factories import UserFactory

    return UserFactory(
        organization=organization, email="bob@alice-practice.example", given_name="Bob", family_name="Member"
    )


@pytest.fixture
def charlie(other_organization):
    """A user of Charlie's clinic."""
    from tests.factories import UserFactory

    return UserFactory(
        organization=other_organization, email="charlie@charlie-clinic.example", given_name="Charlie",
        family_name="Clinic",
    )


ALL_SCOPES = ("read:users", "create:user", "update:user", "delete:user", "read:audit")


@pytest.fixture
def issue_token(db):
    """issue_token(organization, scopes=ALL_SCOPES) -> a bearer token from the real token endpoint."""
    from rest_framework.test import APIClient

    from organizations.services import api_client_create

    def issue(organization, scopes=ALL_SCOPES, name="Practice software"):
        api_client, secret = api_client_create(
            actor=Actor.system("tests"), organization=organization, name=name, scopes=scopes
        )
        basic = base64.b64encode(f"{api_client.application.client_id}:{secret}".encode()).decode()
        response = APIClient().post(
            "/v1/oauth/token",
            {"grant_type": "client_credentials"},
            format="multipart",
            HTTP_AUTHORIZATION=f"Basic {basic}",
        )
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue


@pytest.fixture
def api_for(issue_token):
    """api_for(organization, scopes=ALL_SCOPES) -> an APIClient holding a bearer token."""
    from rest_framework.test import APIClient

    def make(organization, scopes=ALL_SCOPES):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(organization, scopes)}")
        return client

    return make


@pytest.fixture
def api(api_for, organization):
    """Alice's practice software, with every scope."""
    return api_for(organization)


@pytest.fixture
def users_url(organization):
    return f"/v1/organizations/{organization.pk}/users"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (the API throttle, the token endpoint's failed authentications) live in the
    per-process cache: one test's failures must not lock the next test's client out."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


from tests.hi_service_server import hi_service, hi_service_server  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _verification_not_required(settings):
    """Tests that are not about the register: can_prescribe needs complete provider details only
    (no HI_SERVICE_URL, so nobody is asked). tests/verification turns it on against the emulator."""
    settings.HI_VERIFICATION_REQUIRED = False


@pytest.fixture
def unreachable_cache(settings):
    """The default cache is a Redis at a port where nothing listens (the shared store is down)."""
    import socket

    with socket.socket() as probe:  # a port the OS just handed out and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    return port
