"""Personas for the admin besides the root conftest's (Sam, `staff`, a superuser): Vera is staff who
may only view; Ben a reader with a partner id."""

import pytest

VALID_HPII = "8003614900000009"
OTHER_VALID_HPII = "8003614900000017"
BAD_HPII = "8003614900000000"  # the documentation's sample: fails the Luhn check (expects 9)

PROVIDER_DETAILS = {
    "date_of_birth": "1975-12-25",
    "sex": "M",
    "hpii_number": VALID_HPII,
    "prescriber_type": "M",
    "prescriber_number": "1234567",
    "qualifications": "MBBS",
}


@pytest.fixture
def viewer(db, django_user_model):
    """Staff with view permissions only."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_superuser(
        email="vera@platform.example", password="correct horse battery", given_name="Vera", family_name="Viewer"
    )
    user.is_superuser = False
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_user",
                "view_providerdetails",
                "view_cognitosync",
                "view_auditevent",
                "view_organization",
                "view_apiclient",
            ]
        )
    )
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def ben(make_user):
    return make_user("ben@practice.example", roles=["rx_reader"], partner_user_id="pms-42")


def change_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def user_form_data(user, **overrides) -> dict:
    """The change form's POST body for a user, as the browser would send it unchanged."""
    details = getattr(user, "provider_details", None)
    data = {
        "email": user.email,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "title": user.title,
        "phone": user.phone,
        "partner_user_id": user.partner_user_id or "",
    }
    from accounts.models import PROVIDER_FIELDS

    for name in PROVIDER_FIELDS:
        value = getattr(details, name) if details is not None else ""
        data[f"provider_{name}"] = "" if value is None else str(value)
    data.update(overrides)
    return data
