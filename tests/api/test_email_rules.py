"""E-mail addresses: stored lower-cased, ASCII only, at every entry point.

A homoglyph (`demo@example.org` with a Cyrillic e) or a Unicode domain looks exactly like another
user's address; it is 400 naming `email` through the API, and refused by the model's own field
validator, so the admin and import_users (which call full_clean through the services) refuse it too.
"""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.models import User
from audit.context import Actor
from tests.api.support import assert_problem, create_user, error_fields, user_body

pytestmark = pytest.mark.django_db

CYRILLIC_E = "\u0435"
INTERNATIONALISED = [
    f"d{CYRILLIC_E}mo@example.org",  # homoglyph in the local part
    f"demo@{CYRILLIC_E}xample.org",  # homoglyph in the domain (Django's validator accepts IDN domains)
    "demo@b\u00fccher.de",  # a Unicode domain
    "d\u00e9mo@example.org",  # an accented local part
    "demo@example.\u043e\u0440\u0433",  # a Unicode top-level domain
    "demo\uff20example.org",  # a fullwidth at sign
]


@pytest.mark.parametrize("email", INTERNATIONALISED)
def test_create_refuses_an_internationalised_address_naming_email(api, users_url, email):
    create_user(api, users_url, email="demo@example.org")  # the real one
    response = api.post(users_url, user_body(email=email), format="json")
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"email"}
    assert User.objects.count() == 1


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("email", INTERNATIONALISED[:3])
def test_update_refuses_an_internationalised_address_naming_email(api, users_url, method, email):
    user = create_user(api, users_url, email="ben@example.org")
    response = getattr(api, method)(f"{users_url}/{user['id']}", {"email": email}, format="json")
    body = assert_problem(response, 400, "validation_error")
    assert error_fields(body) == {"email"}
    assert User.objects.get(pk=user["id"]).email == "ben@example.org"


def test_the_punycode_form_of_a_unicode_domain_is_accepted(api, users_url):
    user = create_user(api, users_url, email="demo@xn--bcher-kva.de")
    assert user["email"] == "demo@xn--bcher-kva.de"


def test_an_upper_case_address_is_stored_lower_cased(api, users_url):
    user = create_user(api, users_url, email="Ben.Smith@My-Practice.COM")
    assert user["email"] == "ben.smith@my-practice.com"
    assert User.objects.get(pk=user["id"]).email == "ben.smith@my-practice.com"
    updated = api.patch(f"{users_url}/{user['id']}", {"email": "BEN@NEW.example"}, format="json")
    assert updated.json()["email"] == "ben@new.example"
    assert User.objects.get(pk=user["id"]).email == "ben@new.example"


def test_an_upper_case_spelling_of_an_existing_address_is_a_conflict(api, users_url):
    create_user(api, users_url, email="ben@my-practice.com")
    assert_problem(api.post(users_url, user_body(email="BEN@My-Practice.com"), format="json"), 409, "user_already_exists")


@pytest.mark.parametrize("email", INTERNATIONALISED)
def test_the_model_field_refuses_it_for_every_entry_point(organization, email):
    """The admin's form and import_users reach the same full_clean through the services."""
    with pytest.raises(ValidationError) as raised:
        services.user_create(
            organization=organization, actor=Actor.system("test"), email=email, given_name="Ben", family_name="Smith"
        )
    assert set(raised.value.error_dict) == {"email"}
    user = User(organization=organization, email=email, given_name="Ben", family_name="Smith", roles=["member"])
    with pytest.raises(ValidationError) as raised:
        user.full_clean(exclude=["password"])
    assert "email" in raised.value.error_dict


def test_the_model_lower_cases_on_full_clean(organization):
    user = services.user_create(
        organization=organization, actor=Actor.system("test"), email="Ann@Example.ORG", given_name="A", family_name="B"
    )
    assert User.objects.get(pk=user.pk).email == "ann@example.org"


def test_import_users_rejects_the_row_naming_email(organization, tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text(
        f"email,given_name,family_name\nd{CYRILLIC_E}mo@example.org,Ben,Smith\nreal@example.org,Ann,Lee\n",
        encoding="utf-8",
    )
    report = tmp_path / "rejected.csv"
    with pytest.raises(CommandError):
        call_command("import_users", str(path), "--organization", str(organization.pk), "--report", str(report),
                     stdout=io.StringIO())
    assert list(User.objects.values_list("email", flat=True)) == ["real@example.org"]
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("2,email,")
