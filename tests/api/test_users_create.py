"""POST /v1/organizations/{org}/users: the contract's "Creating users" rules, through a real token."""

import datetime

import pytest

from accounts.models import ProviderDetails, User
from audit.models import AuditEvent
from tests.api.support import (
    HPII_A,
    HPII_B,
    assert_problem,
    create_user,
    error_fields,
    error_for,
    provider_body,
    provider_fields,
    user_body,
)

pytestmark = pytest.mark.django_db

USER_KEYS = {
    "id", "organization_id", "email", "given_name", "family_name", "title", "phone", "partner_user_id",
    "access_roles", "status", "disabled_at", "access_expires_at", "provider_details", "can_prescribe", "cognito",
    "created_at", "updated_at",
}
PROVIDER_KEYS = {
    "given_name", "family_name", "date_of_birth", "sex", "phone", "hpii_number", "prescriber_type",
    "prescriber_number", "qualifications", "provider_number", "ahpra_number", "hospital_provider_number",
    "verification",
}


# --- required fields and defaults ---------------------------------------------------------------


@pytest.mark.parametrize("missing", ["given_name", "family_name", "email"])
def test_each_required_field_missing_is_400_naming_it(api, users_url, missing):
    body = user_body()
    del body[missing]
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {missing}
    assert error_for(problem, missing)["code"] == "required"
    assert not User.objects.exists()


def test_empty_body_names_every_required_field(api, users_url):
    problem = assert_problem(api.post(users_url, {}, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"given_name", "family_name", "email"}


def test_minimal_user_defaults_to_member(api, users_url, organization):
    response = api.post(users_url, user_body(), format="json")
    assert response.status_code == 201, response.content
    user = response.json()
    assert set(user) == USER_KEYS
    assert user["access_roles"] == ["member"]
    assert user["status"] == "active"
    assert user["disabled_at"] is None
    assert user["provider_details"] is None
    assert user["can_prescribe"] is False
    assert user["organization_id"] == str(organization.pk)
    assert user["title"] == ""
    assert user["partner_user_id"] is None
    assert user["cognito"]["status"] in {"synced", "pending", "failed"}
    assert User.objects.get(pk=user["id"]).organization_id == organization.pk


def test_organization_comes_from_the_url_not_the_body(api, users_url, other_organization):
    body = user_body(organization_id=str(other_organization.pk))
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"organization_id"}


def test_optional_fields_are_stored(api, users_url):
    user = create_user(api, users_url, title="Dr", phone="0432333333", partner_user_id="pms-17")
    assert user["title"] == "Dr"
    assert user["phone"] == "+61432333333"
    assert user["partner_user_id"] == "pms-17"


@pytest.mark.parametrize("phone", ["0432333333", "+61432333333", "0432 333 333"])
def test_phone_is_returned_in_e164(api, users_url, phone):
    assert create_user(api, users_url, phone=phone)["phone"] == "+61432333333"


@pytest.mark.parametrize("phone", ["12345", "+14155552671", "04323333330000", "0432abc333"])
def test_phone_that_is_not_australian_is_400(api, users_url, phone):
    problem = assert_problem(api.post(users_url, user_body(phone=phone), format="json"), 400, "validation_error")
    assert error_fields(problem) == {"phone"}


def test_email_is_stored_lower_cased(api, users_url):
    user = create_user(api, users_url, email="  Ben.Smith@My-Practice.COM ")
    assert user["email"] == "ben.smith@my-practice.com"
    assert User.objects.get(pk=user["id"]).email == "ben.smith@my-practice.com"


@pytest.mark.parametrize("email", ["not-an-email", "ben@", ""])
def test_invalid_email_is_400(api, users_url, email):
    problem = assert_problem(api.post(users_url, user_body(email=email), format="json"), 400, "validation_error")
    assert error_fields(problem) == {"email"}


def test_access_roles_come_back_sorted_without_duplicates(api, users_url):
    user = create_user(api, users_url, access_roles=["rx_reader", "admin", "rx_reader", "receptionist"])
    assert user["access_roles"] == ["admin", "receptionist", "rx_reader"]
    assert User.objects.get(pk=user["id"]).roles == ["admin", "receptionist", "rx_reader"]


@pytest.mark.parametrize("roles", [["owner"], ["support"], ["superuser"], ["admin", "owner"], ["Provider"], []])
def test_invalid_or_unassignable_role_is_400_invalid_role(api, users_url, roles):
    problem = assert_problem(
        api.post(users_url, user_body(access_roles=roles), format="json"), 400, "invalid_role"
    )
    assert error_fields(problem) == {"access_roles"}
    assert not User.objects.exists()


# --- provider fields ------------------------------------------------------------------------------


def test_provider_from_flat_fields(api, users_url):
    user = create_user(api, users_url, **provider_body(phone="0455666777"))
    assert user["can_prescribe"] is True
    details = user["provider_details"]
    assert set(details) == PROVIDER_KEYS
    assert details == {
        "given_name": "Sarah",
        "family_name": "Johnson",
        "date_of_birth": "1980-03-15",
        "sex": "F",
        "phone": "+61455666777",
        "hpii_number": HPII_B,
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
        "provider_number": "",
        "ahpra_number": "",
        "hospital_provider_number": "",
        # No HI_SERVICE_URL in these tests: nobody asked the register.
        "verification": {
            "status": "unverified", "hpii_status": None, "checked_at": None, "next_check_at": None,
            "message": "", "found_hpii": None,
        },
    }


def test_provider_from_nested_details_with_its_own_name_and_phone(api, users_url):
    body = {
        **user_body(email="sarah@clinic.com", access_roles=["provider"]),
        "provider_details": {
            **provider_fields(),
            "given_name": "Sarah-Jane",
            "family_name": "Johnson-Smith",
            "phone": "+61455666777",
            "provider_number": "2123451t",
            "ahpra_number": "med0001234567",
        },
    }
    user = create_user(api, users_url, **body)
    assert user["given_name"] == "Ben"
    assert user["phone"] == ""
    details = user["provider_details"]
    assert details["given_name"] == "Sarah-Jane"
    assert details["family_name"] == "Johnson-Smith"
    assert details["phone"] == "+61455666777"
    assert details["provider_number"] == "2123451T"
    assert details["ahpra_number"] == "MED0001234567"
    assert user["can_prescribe"] is True


@pytest.mark.parametrize(
    "missing", ["date_of_birth", "sex", "hpii_number", "prescriber_type", "prescriber_number", "qualifications"]
)
def test_provider_role_requires_each_flat_field_named_as_sent(api, users_url, missing):
    problem = assert_problem(
        api.post(users_url, provider_body(**{missing: None}), format="json"), 400, "validation_error"
    )
    assert error_fields(problem) == {missing}
    assert error_for(problem, missing)["code"] == "required"
    assert not User.objects.exists()


@pytest.mark.parametrize("missing", ["date_of_birth", "hpii_number", "prescriber_number"])
def test_provider_role_requires_each_nested_field_named_as_sent(api, users_url, missing):
    body = {**user_body(access_roles=["provider"]), "provider_details": provider_fields(**{missing: None})}
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {f"provider_details.{missing}"}


def test_provider_role_with_no_details_names_the_documented_flat_fields(api, users_url):
    # The documented "from scratch" request sends the provider fields flat, so a caller who sent
    # none is told the flat names it should add.
    problem = assert_problem(
        api.post(users_url, user_body(access_roles=["provider"]), format="json"), 400, "validation_error"
    )
    assert error_fields(problem) == {
        "date_of_birth", "sex", "hpii_number", "prescriber_type", "prescriber_number", "qualifications"
    }


def test_prescriber_number_not_required_for_type_t(api, users_url):
    user = create_user(api, users_url, **provider_body(prescriber_type="T", prescriber_number=None))
    assert user["provider_details"]["prescriber_type"] == "T"
    assert user["provider_details"]["prescriber_number"] == ""
    assert user["can_prescribe"] is True


def test_provider_details_without_provider_role(api, users_url):
    user = create_user(api, users_url, hpii_number=HPII_A, qualifications="RN")
    assert user["access_roles"] == ["member"]
    assert user["provider_details"]["hpii_number"] == HPII_A
    assert user["can_prescribe"] is False


def test_creating_a_provider_writes_user_and_details_audit_events(api, users_url):
    user = create_user(api, users_url, **provider_body())
    events = AuditEvent.objects.filter(user_id=user["id"]).order_by("id")
    assert [e.action for e in events] == ["user.created", "provider_details.updated"]
    assert events[0].changes["access_roles"] == {"from": None, "to": ["provider"]}
    assert events[0].changes["email"] == {"from": None, "to": "sarah.johnson@clinic.com"}
    assert events[1].changes["hpii_number"] == {"from": None, "to": HPII_B}


# --- identifier rules (one failing and one passing case each) --------------------------------


@pytest.mark.parametrize("hpii", ["8003614900000000", "8003614900000001"])
def test_the_documentation_pages_hpii_samples_are_rejected(api, users_url, hpii):
    problem = assert_problem(
        api.post(users_url, provider_body(hpii_number=hpii), format="json"), 400, "validation_error"
    )
    assert error_fields(problem) == {"hpii_number"}
    assert "should be 9" in error_for(problem, "hpii_number")["message"]


def test_hpii_check_digit_message_names_the_expected_digit_nested(api, users_url):
    body = {**user_body(access_roles=["provider"]), "provider_details": provider_fields(hpii_number="8003614900029561")}
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert "should be 0" in error_for(problem, "provider_details.hpii_number")["message"]


@pytest.mark.parametrize(
    ("hpii", "fragment"),
    [
        ("8003624900000008", "800361"),  # an HPI-O
        ("800361490000000", "16"),  # 15 digits
        ("80036149000000091", "16"),
        ("80036149000000O9", "digit"),
    ],
)
def test_hpii_prefix_and_length(api, users_url, hpii, fragment):
    problem = assert_problem(
        api.post(users_url, provider_body(hpii_number=hpii), format="json"), 400, "validation_error"
    )
    assert fragment in error_for(problem, "hpii_number")["message"]


@pytest.mark.parametrize("hpii", [HPII_A, HPII_B, "8003614900029560"])
def test_valid_hpii_passes(api, users_url, hpii):
    assert create_user(api, users_url, **provider_body(hpii_number=hpii))["provider_details"]["hpii_number"] == hpii


@pytest.mark.parametrize(
    ("field", "bad", "good", "stored"),
    [
        ("prescriber_number", "123456", "0123456", "0123456"),
        ("prescriber_number", "12345678", "1234567", "1234567"),
        ("prescriber_number", "12a4567", "7654321", "7654321"),
        ("prescriber_type", "X", "N", "N"),
        ("prescriber_type", "m", "D", "D"),
        ("sex", "X", "M", "M"),
        ("sex", "f", "I", "I"),
        ("sex", "", "N", "N"),
        ("date_of_birth", "1899-12-31", "1900-01-01", "1900-01-01"),
        ("date_of_birth", "1980-02-30", "1980-02-28", "1980-02-28"),
        ("date_of_birth", "15/03/1980", "1980-03-15", "1980-03-15"),
        ("provider_number", "2123451K", "2123451T", "2123451T"),
        ("provider_number", "212345IT", "486674YB", "486674YB"),
        ("provider_number", "123451T", "212345aw", "212345AW"),
        ("ahpra_number", "MED123456789", "MED0001234567", "MED0001234567"),
        ("ahpra_number", "ME10001234567", "nmw1234567890", "NMW1234567890"),
        ("qualifications", "", "FRACGP", "FRACGP"),
    ],
)
def test_provider_identifier_rules(api, users_url, field, bad, good, stored):
    problem = assert_problem(
        api.post(users_url, provider_body(**{field: bad}), format="json"), 400, "validation_error"
    )
    assert error_fields(problem) == {field}
    assert error_for(problem, field)["message"]

    user = create_user(api, users_url, **provider_body(**{field: good}))
    assert user["provider_details"][field] == stored


def test_provider_number_message_names_the_expected_check_character(api, users_url):
    problem = assert_problem(
        api.post(users_url, provider_body(provider_number="2123451K"), format="json"), 400, "validation_error"
    )
    assert "should be T" in error_for(problem, "provider_number")["message"]


@pytest.mark.parametrize("days_ahead", [0, 1])
def test_date_of_birth_must_be_in_the_past(api, users_url, days_ahead):
    when = (datetime.date.today() + datetime.timedelta(days=days_ahead + 1)).isoformat()
    problem = assert_problem(
        api.post(users_url, provider_body(date_of_birth=when), format="json"), 400, "validation_error"
    )
    assert "past" in error_for(problem, "date_of_birth")["message"]


@pytest.mark.parametrize("phone", ["1234", "+442071838750"])
def test_provider_phone_is_checked_nested(api, users_url, phone):
    body = {**user_body(access_roles=["provider"]), "provider_details": provider_fields(phone=phone)}
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"provider_details.phone"}


def test_every_problem_is_reported_at_once(api, users_url):
    body = provider_body(email="nope", phone="123", sex="Q", hpii_number="8003614900000000")
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"email", "phone", "sex", "hpii_number"}


def test_mixed_flat_and_nested_fields_are_named_as_each_was_sent(api, users_url):
    body = {
        **provider_body(hpii_number="8003614900000000"),
        "provider_details": {"prescriber_number": "12"},
    }
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"hpii_number", "provider_details.prescriber_number"}


# --- uniqueness -------------------------------------------------------------------------------------


def test_duplicate_email_is_409_case_insensitively(api, users_url):
    create_user(api, users_url, email="ben@my-practice.com")
    problem = assert_problem(
        api.post(users_url, user_body(email="BEN@My-Practice.com"), format="json"), 409, "user_already_exists"
    )
    assert error_fields(problem) == {"email"}
    assert User.objects.count() == 1


def test_email_is_unique_across_organizations(api, api_for, users_url, other_organization):
    create_user(api, users_url, email="ben@my-practice.com")
    response = api_for(other_organization).post(
        f"/v1/organizations/{other_organization.pk}/users", user_body(email="ben@my-practice.com"), format="json"
    )
    assert_problem(response, 409, "user_already_exists")


def test_duplicate_partner_user_id_is_409(api, users_url):
    create_user(api, users_url, email="a@x.com", partner_user_id="pms-1")
    problem = assert_problem(
        api.post(users_url, user_body(email="b@x.com", partner_user_id="pms-1"), format="json"),
        409,
        "partner_user_id_conflict",
    )
    assert error_fields(problem) == {"partner_user_id"}


def test_same_partner_user_id_in_another_organization_is_fine(api, api_for, users_url, other_organization):
    create_user(api, users_url, email="a@x.com", partner_user_id="pms-1")
    response = api_for(other_organization).post(
        f"/v1/organizations/{other_organization.pk}/users",
        user_body(email="b@x.com", partner_user_id="pms-1"),
        format="json",
    )
    assert response.status_code == 201, response.content


def test_users_without_partner_user_id_do_not_conflict(api, users_url):
    create_user(api, users_url, email="a@x.com")
    create_user(api, users_url, email="b@x.com", partner_user_id="")
    assert list(User.objects.values_list("partner_user_id", flat=True)) == [None, None]


def test_duplicate_hpii_in_the_organization_is_409(api, users_url):
    create_user(api, users_url, **provider_body(email="a@x.com"))
    problem = assert_problem(
        api.post(users_url, provider_body(email="b@x.com"), format="json"), 409, "hpii_conflict"
    )
    assert error_fields(problem) == {"hpii_number"}
    assert ProviderDetails.objects.count() == 1
    assert User.objects.count() == 1


def test_duplicate_hpii_nested_names_the_nested_field(api, users_url):
    create_user(api, users_url, **provider_body(email="a@x.com"))
    body = {**user_body(email="b@x.com"), "provider_details": {"hpii_number": HPII_B}}
    problem = assert_problem(api.post(users_url, body, format="json"), 409, "hpii_conflict")
    assert error_fields(problem) == {"provider_details.hpii_number"}


def test_same_hpii_in_another_organization_is_fine(api, api_for, users_url, other_organization):
    create_user(api, users_url, **provider_body(email="a@x.com"))
    response = api_for(other_organization).post(
        f"/v1/organizations/{other_organization.pk}/users", provider_body(email="b@x.com"), format="json"
    )
    assert response.status_code == 201, response.content


# --- input shape ------------------------------------------------------------------------------------


def test_unknown_field_is_400(api, users_url):
    problem = assert_problem(
        api.post(users_url, user_body(hpi_number=HPII_A), format="json"), 400, "validation_error"
    )
    assert error_fields(problem) == {"hpi_number"}


def test_unknown_nested_field_is_400(api, users_url):
    body = {**user_body(), "provider_details": {"hpi_number": HPII_A}}
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert error_fields(problem) == {"provider_details.hpi_number"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("given_name", 123),
        ("given_name", None),
        ("family_name", ["Smith"]),
        ("email", {"a": 1}),
        ("title", True),
        ("partner_user_id", 17),
        ("access_roles", "provider"),
        ("access_roles", [1]),
        ("access_roles", None),
        ("provider_details", "yes"),
        ("provider_details", [1]),
        ("date_of_birth", 19800315),
        ("hpii_number", 8003614900000009),
        ("sex", 1),
    ],
)
def test_wrong_json_types_are_400(api, users_url, field, value):
    problem = assert_problem(api.post(users_url, user_body(**{field: value}), format="json"), 400, "validation_error")
    assert error_fields(problem) == {field}
    assert not User.objects.exists()


@pytest.mark.parametrize("body", ["[]", "null", '"text"', "42"])
def test_a_body_that_is_not_an_object_is_400(api, users_url, body):
    response = api.post(users_url, body, content_type="application/json")
    assert_problem(response, 400, "validation_error")


def test_location_header_points_at_the_new_user(api, users_url):
    response = api.post(users_url, user_body(), format="json")
    assert response["Location"].endswith(f"{users_url}/{response.json()['id']}")
    assert api.get(response["Location"]).status_code == 200
