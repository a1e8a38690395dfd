"""The factories make data as production makes it: through the services, with history, audit
events and the Cognito outbox row; and the personas are who conftest.py says they are."""

import pytest
from django.contrib.auth.hashers import check_password

from accounts.models import CognitoSync, User
from audit.models import AuditEvent
from identifiers.checks import validate_hpii
from organizations.models import Organization
from tests.factories import ApiClientFactory, OrganizationFactory, StaffFactory, UserFactory, valid_hpii

pytestmark = pytest.mark.django_db


def _actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("occurred_at", "id").values_list("action", flat=True))


def test_an_organization_is_created_by_the_service_with_its_audit_event_and_history():
    organization = OrganizationFactory(name="Harbour Medical")
    assert Organization.objects.get(pk=organization.pk).name == "Harbour Medical"
    assert _actions(organization_id=organization.pk) == [AuditEvent.Action.ORGANIZATION_CREATED]
    assert organization.history.count() == 1


def test_an_api_client_comes_with_its_one_time_secret_and_audit_event():
    organization = OrganizationFactory()
    api_client, secret = ApiClientFactory(organization=organization, scopes=("read:users",))
    assert api_client.scopes == {"read:users"}
    assert check_password(secret, api_client.application.client_secret)
    assert AuditEvent.Action.API_CLIENT_CREATED in _actions(organization_id=organization.pk)


def test_a_user_has_history_audit_event_and_outbox_row_like_one_made_through_the_api():
    user = UserFactory()
    assert user.roles == ["member"] and user.is_active
    assert _actions(user_id=user.pk) == [AuditEvent.Action.USER_CREATED]
    assert user.history.count() == 1
    assert CognitoSync.objects.filter(pk=user.pk).exists()


def test_the_provider_trait_gives_complete_details_with_a_valid_and_distinct_hpii():
    organization = OrganizationFactory()
    first = UserFactory(organization=organization, provider=True)
    second = UserFactory(organization=organization, provider=True)
    for user in (first, second):
        stored = User.objects.get(pk=user.pk)
        assert stored.roles == ["provider"]
        assert stored.provider_details.is_complete
        assert validate_hpii(stored.provider_details.hpii_number)
    assert first.provider_details.hpii_number != second.provider_details.hpii_number
    assert _actions(user_id=first.pk) == [AuditEvent.Action.USER_CREATED, AuditEvent.Action.PROVIDER_DETAILS_UPDATED]


def test_valid_hpii_passes_the_check_and_differs_each_call():
    numbers = {valid_hpii() for _ in range(50)}
    assert len(numbers) == 50
    assert all(validate_hpii(number) == number for number in numbers)


def test_the_disabled_trait_disables_through_the_service_with_its_reason():
    user = UserFactory(disabled=True, disable_reason="left the practice", roles=["admin"])
    stored = User.objects.get(pk=user.pk)
    assert stored.is_disabled and stored.disabled_at is not None and stored.roles == ["member"]
    assert _actions(user_id=user.pk) == [AuditEvent.Action.USER_CREATED, AuditEvent.Action.USER_DISABLED]
    disabled = AuditEvent.objects.get(user_id=user.pk, action=AuditEvent.Action.USER_DISABLED)
    assert disabled.changes["reason"] == {"from": None, "to": "left the practice"}


def test_invalid_data_is_refused_by_the_service_rules_not_saved_raw():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        UserFactory(provider=True, provider_details={"hpii_number": "8003614900000000"})  # fails Luhn
    assert not User.objects.filter(organization__isnull=False).exists()


def test_build_is_refused_an_unsaved_object_would_skip_the_rules():
    with pytest.raises(TypeError, match="services only"):
        UserFactory.build()


def test_staff_is_a_superuser_by_default_and_one_with_permissions_is_audited():
    sam = StaffFactory()
    assert sam.is_staff and sam.is_superuser and sam.organization_id is None
    assert sam.check_password("correct horse battery")
    vera = StaffFactory(actor=sam, given_name="Vera", permissions=["view_user", "view_auditevent"])
    assert vera.is_staff and not vera.is_superuser
    assert sorted(vera.user_permissions.values_list("codename", flat=True)) == ["view_auditevent", "view_user"]
    event = AuditEvent.objects.get(user_id=vera.pk, action=AuditEvent.Action.STAFF_PRIVILEGES_CHANGED)
    assert event.actor_id == str(sam.pk) and event.organization_id is None


def test_staff_with_permissions_needs_a_superuser_actor():
    with pytest.raises(TypeError, match="actor"):
        StaffFactory(permissions=["view_user"])


def test_the_personas(alice, bob, charlie, organization, other_organization):
    assert alice.organization_id == bob.organization_id == organization.pk
    assert alice.roles == ["admin"] and bob.roles == ["member"]
    assert charlie.organization_id == other_organization.pk != organization.pk
    assert organization.name == "Alice's Practice" and other_organization.name == "Charlie's Clinic"
