"""The user resource and the provider field list are defined once (accounts/api/resource.py,
accounts.models.PROVIDER_FIELDS); everything that renders, describes or accepts them is derived."""

import json

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast

from accounts import importing
from accounts.api import resource, user_json
from accounts.api.serializers import FLAT_PROVIDER_FIELDS, ProviderDetailsInputSerializer, UserCreateSerializer
from accounts.forms import PracticeUserAdminForm, provider_form_field_name
from accounts.models import PROVIDER_FIELDS, VERIFICATION_FIELDS, ProviderDetails, User
from accounts.selectors import user_get
from accounts.services import user_create
from audit.context import Actor

pytestmark = pytest.mark.django_db


def test_the_provider_field_list_is_the_models_own_columns():
    own = [f.name for f in ProviderDetails._meta.concrete_fields]
    assert list(VERIFICATION_FIELDS) == [f for f in own if f.startswith("verification_")]
    not_set_by_callers = ("user", "organization", "created_at", "updated_at", *VERIFICATION_FIELDS)
    assert list(PROVIDER_FIELDS) == [f for f in own if f not in not_set_by_callers]


# The provider details as rendered: the provider fields, then the register's verification state.
RENDERED_PROVIDER_KEYS = [*PROVIDER_FIELDS, "verification"]


def test_every_provider_field_is_accepted_nested_flat_imported_and_in_the_admin_form():
    assert list(ProviderDetailsInputSerializer().fields) == list(PROVIDER_FIELDS)
    flat = set(PROVIDER_FIELDS) - {"given_name", "family_name", "phone"}  # those are the user's own
    assert set(FLAT_PROVIDER_FIELDS) == flat <= set(UserCreateSerializer().fields)
    assert flat <= set(importing.COLUMNS)
    form_fields = set(PracticeUserAdminForm.base_fields)
    assert {provider_form_field_name(name) for name in PROVIDER_FIELDS} <= form_fields


def test_the_schema_serializers_declare_the_resource_keys_in_order():
    assert list(resource.UserSerializer().fields) == [key.name for key in resource.USER_RESOURCE]
    assert list(resource.ProviderDetailsSerializer().fields) == RENDERED_PROVIDER_KEYS
    assert list(resource.VerificationSerializer().fields) == [key.name for key in resource.VERIFICATION_RESOURCE]


def test_the_served_schema_lists_the_resource_keys(client):
    schema = client.get("/v1/schema?format=json").json()["components"]["schemas"]
    assert list(schema["User"]["properties"]) == [key.name for key in resource.USER_RESOURCE]
    assert list(schema["ProviderDetails"]["properties"]) == RENDERED_PROVIDER_KEYS
    assert list(schema["Verification"]["properties"]) == [key.name for key in resource.VERIFICATION_RESOURCE]


def test_the_row_fields_are_the_sources_of_the_resource_keys():
    sources = {key.source for key in resource.USER_RESOURCE if key.source}
    details = {f"provider_details__{name}" for name in (*PROVIDER_FIELDS, *VERIFICATION_FIELDS)}
    assert set(resource.USER_ROW_FIELDS) == sources | details
    assert len(resource.USER_ROW_FIELDS) == len(set(resource.USER_ROW_FIELDS))


def _provider(organization):
    return user_create(
        organization=organization,
        actor=Actor.system("test"),
        email="alice@example.com",
        given_name="Alice",
        family_name="Nguyen",
        roles=["provider"],
        provider_details={
            "date_of_birth": "1980-03-15", "sex": "F", "hpii_number": "8003614900029560",
            "prescriber_type": "M", "prescriber_number": "2345678", "qualifications": "MBBS",
        },
    )


def test_the_rendering_writes_the_resource_keys_in_order(organization):
    user = _provider(organization)
    row = user_get(organization_id=organization.pk, user_id=user.pk, fields=resource.USER_ROW_FIELDS)

    document = resource.user_row_representation(row)

    assert list(document) == [key.name for key in resource.USER_RESOURCE]
    assert list(document["provider_details"]) == RENDERED_PROVIDER_KEYS
    assert document["can_prescribe"] is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL document is built by PostgreSQL")
def test_a_key_added_to_the_table_is_in_the_sql_document_and_the_python_rendering_alike(organization):
    """The SQL is generated, not written beside the table: a table with an extra key of every kind
    gives both renderings that key, with the same value."""
    extra = (
        resource.Key("email_again", "email", resource.EMAIL),
        resource.Key("created_again", "created_at", resource.TIMESTAMP),
        resource.Key("expiry_again", "access_expires_at", resource.TIMESTAMP, nullable=True),
        resource.Key("organization_again", "organization_id", resource.UUID),
        resource.Key("roles_again", "roles", resource.ROLES),
        resource.Key("details_again", resource.PROVIDER_DETAILS_PRESENT, resource.PROVIDER_DETAILS, nullable=True),
        resource.Key("birth_again", "provider_details__date_of_birth", resource.DATE, nullable=True),
        resource.Key("prescribes_again", None, resource.CAN_PRESCRIBE),
        resource.Key("cognito_again", "cognito_sync__state", resource.COGNITO),
    )
    keys = (*resource.USER_RESOURCE, *extra)
    user = _provider(organization)
    row = user_get(organization_id=organization.pk, user_id=user.pk, fields=resource.USER_ROW_FIELDS)

    python = resource.python_renderer(keys)(row)
    (text,) = User.objects.filter(pk=user.pk).values_list(Cast(user_json._document(keys), TextField()), flat=True)
    sql = json.loads(text)

    assert sql == python
    assert list(sql) == [key.name for key in keys]
    assert sql["birth_again"] == "1980-03-15" and sql["prescribes_again"] is True
