"""Tests for accounts.cognito.gateway against moto's server over real HTTP.

No database is used: these are plain functions without the ``db`` fixture.
"""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import time
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.cognito import gateway as gw
from accounts.cognito.gateway import (
    CognitoBudgetExceeded,
    CognitoConfigurationError,
    CognitoError,
    CognitoGateway,
    get_client,
    get_gateway,
    reset_client,
)
from tests.cognito_server import DEFAULT_REGION, CognitoServer, create_user_pool, make_client

MUTATING_CALLS = {
    "admin_create_user",
    "admin_update_user_attributes",
    "admin_add_user_to_group",
    "admin_remove_user_from_group",
    "create_group",
    "admin_disable_user",
    "admin_enable_user",
    "admin_user_global_sign_out",
}

EMAIL = "jane.citizen@example.com.au"
GIVEN = "Jane"
FAMILY = "Citizen"


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_server(cognito_server):
    """This module's own moto server (tests here stop and restart it). It asks for the suite's
    `cognito_server` by name, not in its place: that one also sets the AWS test credentials
    the clients here read, and without it the module passes only after another module ran."""
    server = CognitoServer()
    server.start()
    yield server
    server.close()


def _point_at(settings, endpoint_url: str, **tuning) -> None:
    """The gateway's settings for a server (credentials: the session's, in os.environ)."""
    settings.COGNITO_ENDPOINT_URL = endpoint_url
    settings.COGNITO_REGION = DEFAULT_REGION
    for name, value in tuning.items():
        setattr(settings, name, value)


@pytest.fixture
def env(settings, gateway_server):
    # The client cache is keyed on the settings' values, so no reset_client() needed.
    gateway_server.start()  # no-op if running
    _point_at(settings, gateway_server.endpoint_url)
    return gateway_server


@pytest.fixture(scope="module")
def shared_pool(gateway_server):
    # moto needs ~0.3 s per create_user_pool; tests use fresh UUID usernames,
    # so one pool per module is enough unless a test inspects pool-wide state.
    return create_user_pool(gateway_server.endpoint_url)


@pytest.fixture
def pool_id(env, settings, shared_pool):
    settings.COGNITO_USER_POOL_ID = shared_pool
    return shared_pool


@pytest.fixture
def fresh_pool_id(env, settings):
    pool = create_user_pool(env.endpoint_url)
    settings.COGNITO_USER_POOL_ID = pool
    return pool


@pytest.fixture
def admin(env):
    """Independent client used to set up / inspect state behind the gateway."""
    return make_client(env.endpoint_url)


@pytest.fixture
def gateway(pool_id):
    return get_gateway()


class RecordingClient:
    """Proxy around a boto3 client recording the names of API calls."""

    def __init__(self, client, before=None):
        self._client = client
        self._before = before or {}
        self.calls: list[str] = []
        self.params: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(**kwargs):
            self.calls.append(name)
            self.params.append((name, kwargs))
            if name in self._before:
                self._before[name](**kwargs)
            return attr(**kwargs)

        return call

    def mutations(self) -> list[str]:
        return [c for c in self.calls if c in MUTATING_CALLS]


@pytest.fixture
def recorder(pool_id):
    client = RecordingClient(get_client())
    return client, CognitoGateway(client=client, user_pool_id=pool_id)


def new_username() -> str:
    return str(uuid.uuid4())


def create_account(gateway, username, *, send_invitation=False, **overrides):
    """A new enabled account without groups, through the gateway's full convergence."""
    gateway.apply_state(
        username=username, groups=set(), enabled=True, send_invitation=send_invitation, **account_kwargs(**overrides)
    )


def account_kwargs(**overrides):
    values = {
        "email": EMAIL,
        "given_name": GIVEN,
        "family_name": FAMILY,
        "organization_id": str(uuid.uuid4()),
    }
    values.update(overrides)
    return values


# --------------------------------------------------------------------------
# configuration / client factory
# --------------------------------------------------------------------------


def test_client_config_from_settings_and_caching(env, settings):
    settings.COGNITO_CONNECT_TIMEOUT, settings.COGNITO_READ_TIMEOUT, settings.COGNITO_MAX_ATTEMPTS = 2.0, 5.0, 3
    reset_client()
    client = get_client()
    assert get_client() is client
    assert client.meta.region_name == "ap-southeast-2"
    assert client.meta.endpoint_url == env.endpoint_url
    assert client.meta.config.connect_timeout == 2
    assert client.meta.config.read_timeout == 5
    # total_max_attempts counts the first request too (botocore's own
    # "max_attempts" key would mean retries, i.e. one request more).
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}

    settings.COGNITO_READ_TIMEOUT, settings.COGNITO_MAX_ATTEMPTS = 1.5, 1
    other = get_client()
    assert other is not client
    assert other.meta.config.read_timeout == 1.5
    assert other.meta.config.retries["total_max_attempts"] == 1

    reset_client()
    assert get_client() is not other


@pytest.mark.parametrize(
    "name, value",
    [("COGNITO_CONNECT_TIMEOUT", "soon"), ("COGNITO_READ_TIMEOUT", "0"), ("COGNITO_MAX_ATTEMPTS", "-1"),
     ("COGNITO_SYNC_LEASE_SECONDS", "2.5")],
)
def test_a_nonsensical_cognito_tuning_stops_the_service_at_start(name, value, monkeypatch):
    with pytest.raises(ImproperlyConfigured) as refused:
        _production_settings_with(monkeypatch, **{name: value})
    assert str(refused.value) == f"{name} must be a number above 0, not '{value}'."


def test_the_cognito_tuning_defaults_to_2_s_5_s_and_3_requests(monkeypatch):
    loaded = _production_settings_with(monkeypatch)
    assert (loaded["COGNITO_CONNECT_TIMEOUT"], loaded["COGNITO_READ_TIMEOUT"], loaded["COGNITO_MAX_ATTEMPTS"]) == (
        2.0, 5.0, 3
    )


def _production_settings_with(monkeypatch, **environment) -> dict:
    """config/settings.py read as a starting process reads it (manage.py turns its ImproperlyConfigured
    into exit status 2: tests/commands/test_missing_settings.py), the COGNITO_* tuning unset but for
    `environment`. In this process: a start-up of Django costs seconds."""
    for name in [name for name in os.environ if name.startswith("COGNITO_")]:
        monkeypatch.delenv(name)
    for name, value in {"DJANGO_SECRET_KEY": "x", "DJANGO_DEBUG": "true", **environment}.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "config" / "settings.py"))


def test_missing_pool_id_is_a_configuration_error(env, settings):
    settings.COGNITO_USER_POOL_ID = ""
    with pytest.raises(CognitoConfigurationError) as excinfo:
        get_gateway().describe(username=new_username())
    assert excinfo.value.code == "MissingUserPoolId"


# --------------------------------------------------------------------------
# creating and updating accounts
# --------------------------------------------------------------------------


def test_apply_state_creates_the_account_with_its_email_verified(gateway):
    username = new_username()
    org = str(uuid.uuid4())
    create_account(gateway, username, organization_id=org)

    state = gateway.describe(username=username)
    assert state is not None
    assert state["username"] == username
    assert state["enabled"] is True
    assert state["groups"] == set()
    attrs = state["attributes"]
    assert attrs["email"] == EMAIL
    assert attrs["email_verified"] == "true"
    assert attrs["given_name"] == GIVEN
    assert attrs["family_name"] == FAMILY
    assert attrs["custom:organization_id"] == org


def test_apply_state_updates_attributes_a_new_email_unverified_and_is_idempotent(recorder):
    client, gateway = recorder
    username = new_username()
    create_account(gateway, username)

    new_org = str(uuid.uuid4())
    changed = account_kwargs(email="j.citizen@example.org", family_name="Citizen-Smith", organization_id=new_org)
    client.calls.clear()
    gateway.apply_state(username=username, groups=set(), enabled=True, **changed)
    assert client.mutations() == ["admin_update_user_attributes"]

    attrs = gateway.describe(username=username)["attributes"]
    assert attrs["email"] == "j.citizen@example.org"
    assert attrs["email_verified"] == "false"  # the owner proves the new address first
    assert attrs["family_name"] == "Citizen-Smith"
    assert attrs["custom:organization_id"] == new_org

    # Same desired state again: nothing to write, and email_verified is left alone.
    client.calls.clear()
    gateway.apply_state(username=username, groups=set(), enabled=True, send_invitation=True, **changed)
    assert client.mutations() == []


@pytest.mark.parametrize("send_invitation", [False, True])
def test_invitation_flag(recorder, send_invitation):
    client, gateway = recorder
    username = new_username()
    gateway.apply_state(
        username=username, groups=set(), enabled=True, send_invitation=send_invitation, never_applied=True,
        **account_kwargs(),
    )
    [(_, params)] = [p for p in client.params if p[0] == "admin_create_user"]
    if send_invitation:
        assert "MessageAction" not in params
        assert params["DesiredDeliveryMediums"] == ["EMAIL"]
    else:
        assert params["MessageAction"] == "SUPPRESS"
    assert gateway.describe(username=username)["status"] == "FORCE_CHANGE_PASSWORD"


def test_lost_creation_race_falls_back_to_update(pool_id, admin):
    username = new_username()

    def create_concurrently(**kwargs):
        admin.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "given_name", "Value": "Other"}],
        )

    client = RecordingClient(get_client(), before={"admin_create_user": create_concurrently})
    gateway = CognitoGateway(client=client, user_pool_id=pool_id)
    create_account(gateway, username)

    assert client.mutations() == ["admin_create_user", "admin_update_user_attributes"]
    assert gateway.describe(username=username)["attributes"]["given_name"] == GIVEN


# --------------------------------------------------------------------------
# fewer calls: a never-applied account, and the differences from the last applied state
# --------------------------------------------------------------------------


ORGANIZATION = str(uuid.uuid4())


def _state(**overrides):
    state = {**account_kwargs(organization_id=ORGANIZATION), "groups": {"admin", "provider"}, "enabled": True}
    state.update(overrides)
    return state


def test_a_never_applied_account_is_created_without_reading_first(recorder, admin, pool_id):
    client, gateway = recorder
    username = new_username()
    gateway.apply_state(username=username, never_applied=True, **_state())
    assert sorted(set(client.calls) - {"create_group"}) == ["admin_add_user_to_group", "admin_create_user"]
    assert client.calls[0] == "admin_create_user"
    assert client.calls.count("admin_add_user_to_group") == 2 + client.calls.count("create_group")
    state = gateway.describe(username=username)
    assert (state["enabled"], state["groups"], state["attributes"]["email_verified"]) == (True, {"admin", "provider"}, "true")


def test_a_never_applied_disabled_account_is_created_then_disabled_first(recorder):
    client, gateway = recorder
    username = new_username()
    gateway.apply_state(username=username, never_applied=True, **_state(groups=set(), enabled=False))
    assert client.calls == ["admin_create_user", "admin_disable_user"]  # no session yet to sign out
    assert gateway.describe(username=username)["enabled"] is False


def test_a_never_applied_account_that_exists_converges_instead(recorder, admin, pool_id):
    client, gateway = recorder
    username = new_username()
    _make_prior(admin, pool_id, username, "enabled")
    gateway.apply_state(username=username, never_applied=True, **_state(groups={"prescriber"}))
    assert client.calls[:2] == ["admin_create_user", "admin_get_user"]  # UsernameExists: read, converge
    state = gateway.describe(username=username)
    assert state["groups"] == {"prescriber"}
    assert state["attributes"]["email"] == EMAIL
    # The existing account had another address: ours replaces it, so it is a changed address and goes
    # in unverified (marking it verified would let whoever holds it reset the password).
    assert state["attributes"]["email_verified"] == "false"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"groups": {"admin", "rx_reader"}}, ["admin_add_user_to_group", "admin_remove_user_from_group"]),
        ({"groups": {"admin", "provider", "rx_reader"}}, ["admin_add_user_to_group"]),
        ({"given_name": "Janet"}, ["admin_update_user_attributes"]),
        ({"enabled": False, "groups": set()}, [
            "admin_disable_user", "admin_user_global_sign_out",
            "admin_remove_user_from_group", "admin_remove_user_from_group",
        ]),
        ({}, []),
    ],
    ids=["role-swap", "role-added", "rename", "disable", "nothing"],
)
def test_only_the_differences_from_the_last_applied_state_are_sent(recorder, admin, pool_id, change, expected):
    client, gateway = recorder
    for group in ("admin", "provider", "rx_reader"):  # existing groups: no create_group in the count
        with contextlib.suppress(admin.exceptions.GroupExistsException):
            admin.create_group(UserPoolId=pool_id, GroupName=group)
    username = new_username()
    applied = _state()
    gateway.apply_state(username=username, never_applied=True, **applied)
    client.calls.clear()
    desired = {**applied, **change}
    gateway.apply_state(username=username, applied={**applied, "groups": sorted(applied["groups"])}, **desired)
    assert client.calls == expected
    state = gateway.describe(username=username)
    assert state["groups"] == desired["groups"]
    assert state["enabled"] is desired["enabled"]
    assert state["attributes"]["given_name"] == desired["given_name"]


def test_an_email_change_from_the_last_applied_state_is_sent_unverified(recorder):
    client, gateway = recorder
    username = new_username()
    applied = _state()
    gateway.apply_state(username=username, never_applied=True, **applied)
    client.calls.clear()
    gateway.apply_state(username=username, applied=applied, **{**applied, "email": "new@example.org"})
    [(_, params)] = client.params[-1:]
    assert client.calls == ["admin_update_user_attributes"]
    assert {a["Name"]: a["Value"] for a in params["UserAttributes"]} == {
        "email": "new@example.org",
        "email_verified": "false",
    }


def test_re_enabling_from_the_last_applied_state_enables_last(recorder):
    client, gateway = recorder
    username = new_username()
    applied = _state(enabled=False, groups=set())
    gateway.apply_state(username=username, never_applied=True, **applied)
    client.calls.clear()
    gateway.apply_state(username=username, applied=applied, **_state(groups={"admin"}))
    assert [c for c in client.calls if c != "create_group"] == ["admin_add_user_to_group", "admin_enable_user"]


def test_an_account_deleted_behind_the_service_is_recreated(recorder, admin, pool_id):
    _, gateway = recorder
    username = new_username()
    applied = _state()
    gateway.apply_state(username=username, never_applied=True, **applied)
    admin.admin_delete_user(UserPoolId=pool_id, Username=username)
    gateway.apply_state(username=username, applied=applied, **_state(groups={"admin"}))
    state = gateway.describe(username=username)
    assert (state["enabled"], state["groups"]) == (True, {"admin"})


def test_wrote_says_whether_a_write_was_sent(recorder):
    _, gateway = recorder
    gateway.describe(username=new_username())
    assert gateway.wrote is False
    create_account(gateway, new_username())
    assert gateway.wrote is True


# --------------------------------------------------------------------------
# set_groups
# --------------------------------------------------------------------------


def test_set_groups_mirrors_exactly_and_creates_missing_groups(admin, fresh_pool_id):
    pool_id = fresh_pool_id
    gateway = get_gateway()
    admin.create_group(UserPoolId=pool_id, GroupName="prescriber")
    username = new_username()
    create_account(gateway, username)

    gateway.set_groups(username=username, groups={"prescriber", "org_admin"})
    assert gateway.describe(username=username)["groups"] == {"prescriber", "org_admin"}
    pool_groups = {g["GroupName"] for g in admin.list_groups(UserPoolId=pool_id)["Groups"]}
    assert pool_groups == {"prescriber", "org_admin"}

    gateway.set_groups(username=username, groups={"org_admin", "pharmacist"})
    assert gateway.describe(username=username)["groups"] == {"org_admin", "pharmacist"}

    gateway.set_groups(username=username, groups=set())
    assert gateway.describe(username=username)["groups"] == set()
    # Removing memberships never deletes the groups themselves.
    pool_groups = {g["GroupName"] for g in admin.list_groups(UserPoolId=pool_id)["Groups"]}
    assert pool_groups == {"prescriber", "org_admin", "pharmacist"}


def test_set_groups_is_idempotent(recorder):
    client, gateway = recorder
    username = new_username()
    create_account(gateway, username)
    gateway.set_groups(username=username, groups={"a", "b"})
    client.calls.clear()
    gateway.set_groups(username=username, groups={"b", "a"})
    assert client.mutations() == []


def test_set_groups_tolerates_group_created_concurrently(pool_id, admin):
    def create_concurrently(**kwargs):
        admin.create_group(UserPoolId=pool_id, GroupName=kwargs["GroupName"])

    client = RecordingClient(get_client(), before={"create_group": create_concurrently})
    gateway = CognitoGateway(client=client, user_pool_id=pool_id)
    username = new_username()
    create_account(gateway, username)

    gateway.set_groups(username=username, groups={"racy"})
    assert gateway.describe(username=username)["groups"] == {"racy"}
    assert client.calls.count("create_group") == 1


def test_set_groups_paginates_current_groups(gateway, pool_id, admin):
    username = new_username()
    create_account(gateway, username)
    many = {f"page-{i:03d}" for i in range(61)}  # > one page of 60
    gateway.set_groups(username=username, groups=many)
    assert gateway.describe(username=username)["groups"] == many
    gateway.set_groups(username=username, groups={"page-000"})
    assert gateway.describe(username=username)["groups"] == {"page-000"}


# --------------------------------------------------------------------------
# disable / enable
# --------------------------------------------------------------------------


def _sign_in(admin, pool_id: str, username: str) -> str:
    app = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="test",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    admin.admin_set_user_password(UserPoolId=pool_id, Username=username, Password="Very-s3cret-pass!", Permanent=True)
    result = admin.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=app,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": "Very-s3cret-pass!"},
    )
    return result["AuthenticationResult"]["AccessToken"]


def test_disable_signs_out_and_is_idempotent(gateway, admin, pool_id):
    username = new_username()
    create_account(gateway, username)
    token = _sign_in(admin, pool_id, username)
    assert admin.get_user(AccessToken=token)["Username"] == username

    gateway.disable(username=username)
    assert gateway.describe(username=username)["enabled"] is False
    gateway.disable(username=username)  # again: no error
    assert gateway.describe(username=username)["enabled"] is False

    # Re-enabling does not resurrect the old session: global sign-out ran.
    gateway.enable(username=username)
    with pytest.raises(admin.exceptions.NotAuthorizedException):
        admin.get_user(AccessToken=token)


def test_enable(gateway):
    username = new_username()
    create_account(gateway, username)
    gateway.disable(username=username)
    gateway.enable(username=username)
    assert gateway.describe(username=username)["enabled"] is True
    gateway.enable(username=username)
    assert gateway.describe(username=username)["enabled"] is True


def test_disable_missing_user_raises(gateway):
    with pytest.raises(CognitoError) as excinfo:
        gateway.disable(username=new_username())
    assert excinfo.value.code == "UserNotFoundException"
    assert excinfo.value.retryable is False


# --------------------------------------------------------------------------
# apply_state
# --------------------------------------------------------------------------


def _make_prior(admin, pool_id: str, username: str, prior: str) -> None:
    if prior == "missing":
        return
    admin.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": "old@example.net"},
            {"Name": "given_name", "Value": "Old"},
            {"Name": "custom:organization_id", "Value": "old-org"},
        ],
    )
    for group in ("stale", "prescriber"):
        with contextlib.suppress(admin.exceptions.GroupExistsException):
            admin.create_group(UserPoolId=pool_id, GroupName=group)
        admin.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    if prior == "disabled":
        admin.admin_disable_user(UserPoolId=pool_id, Username=username)


@pytest.mark.parametrize("prior", ["missing", "enabled", "disabled"])
@pytest.mark.parametrize("enabled", [True, False])
def test_apply_state_converges_and_is_idempotent(recorder, admin, pool_id, prior, enabled):
    client, gateway = recorder
    username = new_username()
    _make_prior(admin, pool_id, username, prior)
    org = str(uuid.uuid4())
    desired = dict(
        username=username,
        groups={"prescriber", "org_admin"},
        enabled=enabled,
        **account_kwargs(organization_id=org),
    )

    gateway.apply_state(**desired)
    first = gateway.describe(username=username)
    assert first["enabled"] is enabled
    assert first["groups"] == {"prescriber", "org_admin"}
    assert first["attributes"]["email"] == EMAIL
    # Created: verified; an existing account's changed address: unverified until proven.
    assert first["attributes"]["email_verified"] == ("true" if prior == "missing" else "false")
    assert first["attributes"]["given_name"] == GIVEN
    assert first["attributes"]["family_name"] == FAMILY
    assert first["attributes"]["custom:organization_id"] == org

    mutations = client.mutations()
    was_enabled = prior != "disabled"
    if enabled:
        assert "admin_disable_user" not in mutations
        assert ("admin_enable_user" in mutations) == (not was_enabled)
        if "admin_enable_user" in mutations:
            assert mutations[-1] == "admin_enable_user"  # enabled only at the end
    else:
        assert "admin_enable_user" not in mutations
        if was_enabled:
            assert mutations.count("admin_disable_user") == 1
            # A brand-new account has no session to sign out.
            assert mutations.count("admin_user_global_sign_out") == (0 if prior == "missing" else 1)
        else:
            assert "admin_disable_user" not in mutations
            assert "admin_user_global_sign_out" not in mutations
        if prior == "enabled":
            assert mutations[0] == "admin_disable_user"  # disabled before anything else

    # Second run: same result and nothing to write.
    client.calls.clear()
    gateway.apply_state(**desired)
    assert client.mutations() == []
    assert gateway.describe(username=username) == first


def test_apply_state_moves_between_states(gateway):
    username = new_username()
    base = account_kwargs()
    gateway.apply_state(username=username, groups={"a"}, enabled=True, **base)
    gateway.apply_state(username=username, groups={"b"}, enabled=False, **base)
    state = gateway.describe(username=username)
    assert (state["enabled"], state["groups"]) == (False, {"b"})
    gateway.apply_state(username=username, groups=set(), enabled=True, **base)
    state = gateway.describe(username=username)
    assert (state["enabled"], state["groups"]) == (True, set())


# --------------------------------------------------------------------------
# describe
# --------------------------------------------------------------------------


def test_describe_missing_user_returns_none(gateway):
    assert gateway.describe(username=new_username()) is None


# --------------------------------------------------------------------------
# errors, privacy, faults
# --------------------------------------------------------------------------


def test_errors_and_logs_contain_no_pii(env, settings, caplog):
    settings.COGNITO_USER_POOL_ID = "ap-southeast-2_doesnotexist"
    gateway = get_gateway()
    username = new_username()
    caplog.set_level(logging.DEBUG, logger=gw.__name__)
    with pytest.raises(CognitoError) as excinfo:
        create_account(gateway, username)
    err = excinfo.value
    assert err.code == "ResourceNotFoundException"
    assert "ResourceNotFoundException" in str(err)
    assert err.__cause__ is None and err.__context__ is None
    for text in (str(err), repr(err), caplog.text):
        for pii in (EMAIL, GIVEN, FAMILY):
            assert pii not in text


def test_successful_calls_log_no_pii(gateway, caplog):
    caplog.set_level(logging.DEBUG, logger=gw.__name__)
    username = new_username()
    gateway.apply_state(username=username, groups={"x"}, enabled=False, **account_kwargs())
    gateway.apply_state(
        username=username, groups={"x"}, enabled=False, **account_kwargs(email="other@example.com", given_name="Zed")
    )
    assert username in caplog.text
    for pii in (EMAIL, GIVEN, FAMILY, "other@example.com", "Zed"):
        assert pii not in caplog.text


@pytest.fixture
def fault_server(settings):
    """A private server so stopping it does not disturb the other tests."""
    server = CognitoServer()
    server.start()
    _point_at(
        settings,
        server.endpoint_url,
        COGNITO_CONNECT_TIMEOUT=0.5,
        COGNITO_READ_TIMEOUT=1.0,
        COGNITO_MAX_ATTEMPTS=1,
        COGNITO_USER_POOL_ID=create_user_pool(server.endpoint_url),
    )
    reset_client()
    yield server
    server.close()
    reset_client()


def test_stopped_server_raises_quickly_and_recovers(fault_server):
    gateway = get_gateway()
    username = new_username()
    create_account(gateway, username)

    fault_server.stop()
    started = time.monotonic()
    with pytest.raises(CognitoError) as excinfo:
        gateway.disable(username=username)
    assert time.monotonic() - started < 3
    assert excinfo.value.code == "EndpointConnectionError"
    assert excinfo.value.retryable is True

    # Back up on the same port; moto state survived the restart.
    fault_server.start()
    gateway.disable(username=username)
    assert gateway.describe(username=username)["enabled"] is False


def test_unresponsive_server_times_out(fault_server):
    gateway = get_gateway()
    attempts = []
    gateway.client.meta.events.register("before-send.cognito-idp", lambda **kwargs: attempts.append(1))
    fault_server.stall()
    started = time.monotonic()
    with pytest.raises(CognitoError) as excinfo:
        gateway.describe(username=new_username())
    elapsed = time.monotonic() - started
    # read_timeout=1 and exactly one attempt (counted: on a loaded machine one attempt can take 2 s).
    assert len(attempts) == 1
    assert 0.9 < elapsed < 5
    assert excinfo.value.code == "ReadTimeoutError"
    assert excinfo.value.retryable is True

    fault_server.start()
    assert gateway.describe(username=new_username()) is None


# --------------------------------------------------------------------------
# the inline budget
# --------------------------------------------------------------------------


def test_a_spent_budget_starts_no_call(recorder):
    client, _ = recorder
    spent = CognitoGateway(client=client, budget=gw.Budget(1.0, start=time.monotonic() - 1.0))
    with pytest.raises(CognitoBudgetExceeded) as excinfo:
        spent.describe(username=new_username())
    assert client.calls == []
    assert excinfo.value.retryable is True
    assert excinfo.value.code == "InlineBudgetExceeded"


def test_the_inline_client_makes_one_attempt_and_ends_within_the_budget(fault_server, settings):
    # A deployment's tuning: the worker's client would wait 5 s, three times.
    settings.COGNITO_READ_TIMEOUT, settings.COGNITO_MAX_ATTEMPTS = 5.0, 3
    budget = gw.Budget(1.0)
    inline = gw.get_inline_client(budget.connect_timeout)
    assert inline.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert inline.meta.config.connect_timeout == 0.3  # a third of the budget
    assert get_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 3}
    attempts = []
    inline.meta.events.register("before-send.cognito-idp", lambda **kwargs: attempts.append(1))
    fault_server.stall()
    budget = gw.Budget(1.0)
    with pytest.raises(CognitoBudgetExceeded):
        CognitoGateway(budget=budget).describe(username=new_username())
    elapsed = time.monotonic() - budget.start
    assert len(attempts) == 1
    assert 0.5 < elapsed < 1.3  # the read timeout was cut to what the budget had left (0.7 s)
