"""SCIM's limits: operations per PATCH and members per group change, refused at once and advertised
in ServiceProviderConfig; a rate limit per SCIM token."""

import pytest
from django.core.cache import cache

from accounts.models import User
from audit.models import AuditEvent
from tests.scim.conftest import ScimClient, assert_scim_error, patch_body, scim_user


def test_service_provider_config_advertises_the_limits(scim, settings):
    settings.SCIM_MAX_PATCH_OPERATIONS = 321
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"] == {"supported": True}
    assert config["bulk"] == {"supported": False, "maxOperations": 321, "maxPayloadSize": 1024 * 1024}
    assert config["filter"] == {"supported": True, "maxResults": 200}


def test_the_group_schema_states_the_member_cap(scim, settings):
    settings.SCIM_MAX_GROUP_MEMBERS = 123
    group = scim.get("Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").json()
    members = next(attribute for attribute in group["attributes"] if attribute["name"] == "members")
    assert "At most 123 members in one request" in members["description"]


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_a_patch_over_the_operation_cap_is_refused_before_any_work(scim, settings, resource):
    settings.SCIM_MAX_PATCH_OPERATIONS = 3
    ben = scim.post("Users", scim_user()).json()["id"]
    path = f"Users/{ben}" if resource == "Users" else "Groups/admin"
    operation = (
        {"op": "replace", "path": "title", "value": "Dr"}
        if resource == "Users"
        else {"op": "add", "path": "members", "value": [{"value": ben}]}
    )
    events = AuditEvent.objects.count()
    # Even operations that would not validate are not read: the count is checked first.
    body = assert_scim_error(scim.patch(path, patch_body(*[operation] * 3, {"op": "explode"})), 400, "invalidValue")
    assert "at most 3 operations" in body["detail"]
    assert AuditEvent.objects.count() == events
    assert User.objects.get(pk=ben).title == "" and User.objects.get(pk=ben).roles == ["member"]
    assert scim.patch(path, patch_body(*[operation] * 3)).status_code == 200


@pytest.fixture
def tiny_rate(settings):
    rest_framework = dict(settings.REST_FRAMEWORK)
    rest_framework["DEFAULT_THROTTLE_RATES"] = {**rest_framework["DEFAULT_THROTTLE_RATES"], "scim_token": "3/min"}
    settings.REST_FRAMEWORK = rest_framework
    cache.clear()
    yield
    cache.clear()


def test_each_scim_token_has_its_own_rate_limit(tiny_rate, scim, client, make_scim_token, organization):
    for _ in range(3):
        assert scim.get("Users").status_code == 200
    throttled = scim.post("Users", scim_user())
    assert_scim_error(throttled, 429)
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert not User.objects.filter(email="ben@my-practice.com").exists()
    # Another connection of the same organization has its own budget.
    other = ScimClient(client, make_scim_token(organization, name="Okta")[1])
    assert other.get("Users").status_code == 200
