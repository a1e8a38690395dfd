"""Fixtures shared by the whole suite.

A real Cognito HTTP endpoint (moto's server on 127.0.0.1) runs for the whole session, so every
API test exercises the real sync path.

Personas (made through the services by tests/factories.py, so each has its history, audit events
and Cognito outbox row): `organization` is Alice's practice, the caller's organization; `alice` is
its admin and `bob` a member of it. `other_organization` is Charlie's clinic, another tenant, and
`charlie` one of its users: they must see nothing of Alice's. `staff` is Sam, platform staff (a
superuser), signed in to the admin as `staff_client`. `make_user` makes any other practice user.

Fixtures used by more than one directory live here, once; a directory's conftest keeps only its own.
"""

import base64
import os

import pytest

from audit.context import Actor
from tests.cognito_server import CognitoServer, cognito_env, create_user_pool
from tests.isolation import claim_database_name


@pytest.fixture(scope="session")
def django_db_modify_db_settings_xdist_suffix(request):
    """The test database's name: per xdist worker (as pytest-django does), and per run when another
    run holds the usual name (tests/isolation.py)."""
    from django.conf import settings
    from pytest_django.fixtures import _set_suffix_to_test_databases

    worker = getattr(request.config, "workerinput", {}).get("workerid")
    suffix, reusable = claim_database_name(settings.DATABASES["default"], worker)
    request.config.stash[_REUSABLE_DATABASE] = reusable
    if suffix:
        _set_suffix_to_test_databases(suffix=suffix)


_REUSABLE_DATABASE = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Slow tests first: xdist's workers then end the run on short tests spread over them, not one
    worker on a long test that started last. Before pytest-django's stable sort into its groups
    (database tests, transactional ones, the rest), so slow tests lead within each group."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def django_db_keepdb(request, django_db_modify_db_settings):
    """--reuse-db keeps the usual database between runs; a run-unique one is dropped at the end."""
    return bool(request.config.getvalue("reuse_db")) and request.config.stash.get(_REUSABLE_DATABASE, True)


@pytest.fixture(scope="session", autouse=True)
def cognito_server():
    """This process's moto Cognito: its settings here, and the same in os.environ for the processes
    a test starts (workers, servers), whose config/settings.py reads them."""
    from django.test.utils import override_settings

    from accounts.cognito.gateway import reset_client

    server = CognitoServer()
    endpoint = server.start()
    pool_id = create_user_pool(endpoint)
    saved = dict(os.environ)
    os.environ.update(cognito_env(endpoint))
    tuning = {"COGNITO_MAX_ATTEMPTS": 1, "COGNITO_CONNECT_TIMEOUT": 1.0, "COGNITO_READ_TIMEOUT": 2.0}
    os.environ.update({name: str(value) for name, value in tuning.items()}, COGNITO_USER_POOL_ID=pool_id)
    overridden = override_settings(
        COGNITO_ENDPOINT_URL=endpoint, COGNITO_REGION=os.environ["AWS_REGION"], COGNITO_USER_POOL_ID=pool_id,
        **tuning,
    )
    overridden.enable()
    reset_client()
    yield server
    server.close()
    overridden.disable()
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


@pytest.fixture
def make_user(organization):
    """make_user(email, **fields) -> a practice user made by user_create (tests/factories.py), in Alice's
    practice unless organization= says otherwise. A number instead of an e-mail is a numbered person:
    make_user(3) is person3@alice-practice.example, Given3 Family3."""
    from tests.factories import UserFactory

    def make(email, *, organization=organization, **fields):
        if isinstance(email, int):
            fields = {"given_name": f"Given{email}", "family_name": f"Family{email}", **fields}
            email = f"person{email}@alice-practice.example"
        return UserFactory(organization=organization, email=email, **fields)

    return make


@pytest.fixture
def staff(db):
    """Sam, platform staff: a superuser."""
    from tests.factories import StaffFactory

    return StaffFactory(email="sam@platform.example")


@pytest.fixture
def staff_client(client, staff):
    """The admin, signed in as Sam."""
    client.force_login(staff)
    return client


@pytest.fixture
def raw_cognito(cognito_server):
    """A plain boto3 client on the session's moto server, independent of the gateway under test."""
    from tests.cognito_server import make_client

    return make_client(cognito_server.endpoint_url)


@pytest.fixture
def pool_id(cognito_server):
    """The session's Cognito user pool."""
    from django.conf import settings

    return settings.COGNITO_USER_POOL_ID


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
