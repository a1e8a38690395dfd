"""The register check against the HI Service emulator over real TLS (tests/hi_service_server.py).

`hi_register` points the client at the emulator and makes can_prescribe need `verified`.
`practice` is an organization with the emulator's HPI-O; `provider_of(key)` is a create body for
the fixture practitioner `key` (hi_service/fixtures.py), with the person's own details."""

import pytest

from audit.context import Actor
from hi_service import fixtures
from tests.hi_service_server import hi_service_hung  # noqa: F401


@pytest.fixture
def hi_register(hi_service, settings, transactional_db):
    from verification.models import RequestBudget

    settings.HI_VERIFICATION_REQUIRED = True
    settings.HI_MAX_REQUESTS_PER_SECOND = 50.0  # tests that measure the rate set their own
    RequestBudget.objects.update_or_create(pk=1)
    return hi_service


@pytest.fixture
def practice(db):
    from tests.factories import OrganizationFactory

    return OrganizationFactory(actor=Actor.system("tests"), name="Register Practice", hpio_number=fixtures.FIXTURE_HPIO)


@pytest.fixture
def practice_api(api_for, practice):
    return api_for(practice)


@pytest.fixture
def practice_users_url(practice):
    return f"/v1/organizations/{practice.pk}/users"


def provider_of(key: str, email: str | None = None, **overrides) -> dict:
    person = fixtures.PRACTITIONERS[key]
    body = {
        "given_name": person.given_names[0],
        "family_name": person.family_name,
        "email": email or f"{key}@register.example",
        "access_roles": ["provider"],
        "date_of_birth": person.date_of_birth.isoformat(),
        "sex": person.sex,
        "hpii_number": person.hpii,
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}
