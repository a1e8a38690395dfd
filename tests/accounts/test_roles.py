"""Roles have one spelling each: `member` is the baseline and appears only alone."""

import importlib

import pytest
from django.apps import apps as django_apps

from accounts import roles as role_names
from accounts import services
from accounts.models import User
from audit.context import Actor
from audit.models import AuditEvent
from tests.api.support import create_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        (["member"], ["member"]),
        (["member", "member"], ["member"]),
        (["admin", "member"], ["admin"]),
        (["member", "provider", "admin", "provider"], ["admin", "provider"]),
        (["rx_reader"], ["rx_reader"]),
        ([], []),
    ],
)
def test_member_appears_only_alone(given, normalized):
    assert role_names.normalize_roles(given) == normalized


def test_setting_member_beside_a_role_stores_the_role_alone(api, users_url):
    user = create_user(api, users_url)
    response = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["admin", "member"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["access_roles"] == ["admin"]
    assert User.objects.get(pk=user["id"]).roles == ["admin"]


def test_switching_between_the_two_spellings_writes_no_roles_event(api, users_url):
    user = create_user(api, users_url, access_roles=["admin"])
    url = f"{users_url}/{user['id']}/roles"
    for roles in (["admin", "member"], ["admin"], ["member", "admin"]):
        assert api.put(url, {"access_roles": roles}, format="json").json()["access_roles"] == ["admin"]
    assert not AuditEvent.objects.filter(user_id=user["id"], action="user.roles_changed").exists()


def test_create_with_member_beside_a_role(api, users_url):
    assert create_user(api, users_url, access_roles=["member", "rx_reader"])["access_roles"] == ["rx_reader"]


def test_the_service_normalizes_too(organization):
    user = services.user_create(
        organization=organization, actor=Actor.system("test"), email="a@x.example", given_name="A",
        family_name="B", roles=["member", "receptionist"],
    )
    assert User.objects.get(pk=user.pk).roles == ["receptionist"]


def test_the_data_migration_rewrites_stored_rows(organization):
    migration = importlib.import_module("accounts.migrations.0006_member_only_alone")
    users = {}
    for email, roles in [
        ("two@x.example", ["admin", "member"]),
        ("alone@x.example", ["member"]),
        ("twice@x.example", ["member", "member"]),
        ("plain@x.example", ["provider"]),
    ]:
        users[email] = services.user_create(
            organization=organization, actor=Actor.system("test"), email=email, given_name="A", family_name="B"
        )
        User.objects.filter(pk=users[email].pk).update(roles=roles)  # as stored before normalisation
    history_rows = User.history.count()

    migration.forwards(django_apps, None)

    stored = dict(User.objects.values_list("email", "roles"))
    assert stored == {
        "two@x.example": ["admin"],
        "alone@x.example": ["member"],
        "twice@x.example": ["member"],
        "plain@x.example": ["provider"],
    }
    assert User.history.count() == history_rows  # a spelling, not a change of access
    assert migration._normalized(["b", "member", "a"]) == role_names.normalize_roles(["b", "member", "a"])
