"""core/db.py: a values() queryset compiled once and run with fresh parameters must return what
the ORM returns for those parameters, counted as a query like any other."""

import datetime as dt
import secrets
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from rest_framework.test import APIClient

from accounts.models import User
from accounts.selectors import user_queryset
from core.db import PreparedQuery
from tests.api.support import assert_problem, create_user, provider_body

pytestmark = pytest.mark.django_db

FIELDS = ("id", "email", "roles", "created_at", "provider_details__date_of_birth", "cognito_sync__state")


def _users_by_email():
    return PreparedQuery(
        lambda organization_id, email: user_queryset(organization_id=organization_id)
        .filter(email=email)
        .values(*FIELDS),
        organization_id=uuid.UUID,
        email=str,
    )


def test_rows_are_what_the_orm_returns_for_the_same_values(api, users_url, organization):
    create_user(api, users_url, **provider_body(email="sarah@clinic.com"))
    query = _users_by_email()

    rows = query.rows(organization_id=organization.pk, email="sarah@clinic.com")

    expected = list(user_queryset(organization_id=organization.pk).filter(email="sarah@clinic.com").values(*FIELDS))
    assert rows == expected
    assert rows[0]["roles"] == ["provider"]  # the JSON field's converter ran
    assert isinstance(rows[0]["provider_details__date_of_birth"], dt.date)
    assert timezone.is_aware(rows[0]["created_at"])


def test_each_run_uses_its_own_values(api, users_url, organization, other_organization, api_for):
    create_user(api, users_url, email="one@clinic.com", given_name="One", family_name="A")
    create_user(api, users_url, email="two@clinic.com", given_name="Two", family_name="B")
    other_url = f"/v1/organizations/{other_organization.pk}/users"
    create_user(api_for(other_organization), other_url, email="uno@clinic.com", given_name="Other", family_name="C")
    query = _users_by_email()

    first = query.rows(organization_id=organization.pk, email="one@clinic.com")
    second = query.rows(organization_id=organization.pk, email="two@clinic.com")
    other = query.rows(organization_id=other_organization.pk, email="uno@clinic.com")

    assert [row["email"] for row in first + second + other] == ["one@clinic.com", "two@clinic.com", "uno@clinic.com"]
    assert len({row["id"] for row in first + second + other}) == 3
    assert query.rows(organization_id=organization.pk, email="three@clinic.com") == []
    assert query.rows(organization_id=other_organization.pk, email="one@clinic.com") == []


def test_a_run_is_one_counted_query(api, users_url, organization, django_assert_num_queries):
    create_user(api, users_url, email="one@clinic.com", given_name="One", family_name="A")
    query = _users_by_email()
    query.rows(organization_id=organization.pk, email="one@clinic.com")  # compiles

    with django_assert_num_queries(1):
        query.rows(organization_id=organization.pk, email="one@clinic.com")


def test_values_of_the_wrong_type_or_name_are_refused(organization):
    query = _users_by_email()

    with pytest.raises(TypeError, match="organization_id must be UUID"):
        query.rows(organization_id=str(organization.pk), email="a@b.com")
    with pytest.raises(TypeError):
        query.rows(organization_id=organization.pk)
    with pytest.raises(TypeError):
        query.rows(organization_id=organization.pk, email="a@b.com", status="active")


def test_a_parameter_the_query_does_not_use_is_a_configuration_error(organization):
    query = PreparedQuery(lambda email: User.objects.values("id"), email=str)

    with pytest.raises(ImproperlyConfigured, match="email"):
        query.rows(email="a@b.com")


def test_only_values_querysets_and_plain_parameter_types(organization):
    with pytest.raises(ImproperlyConfigured, match="values"):
        PreparedQuery(lambda email: User.objects.filter(email=email), email=str).rows(email="a@b.com")
    with pytest.raises(ImproperlyConfigured, match=r"str or uuid\.UUID"):
        PreparedQuery(lambda number: User.objects.values("id"), number=int)


def test_a_token_of_an_application_that_is_no_api_client_is_401(organization):
    # An OAuth application made outside api_client_create (say, in a shell) has no organization.
    application = Application.objects.create(
        name="stray", client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    raw = secrets.token_urlsafe(30)
    AccessToken.objects.create(
        application=application, token=raw, scope="read:users", expires=timezone.now() + dt.timedelta(hours=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert_problem(client.get(f"/v1/organizations/{organization.pk}/users"), 401, "not_authenticated")
