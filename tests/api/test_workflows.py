"""Every request on the public workflow page, through a real token (with valid HPI-Is)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_upgrading_a_user_to_prescriber(api, users_url, cognito):
    created = api.post(
        users_url,
        {"given_name": "Ben", "family_name": "Smith", "email": "user-email@my-practice.com", "access_roles": ["rx_reader"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    user = created.json()
    assert user["access_roles"] == ["rx_reader"]
    assert user["can_prescribe"] is False
    assert user["provider_details"] is None
    assert user["cognito"] == {"status": "synced"}
    assert created["Location"].endswith(f"{users_url}/{user['id']}")

    upgraded = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["provider"]}, format="json")
    assert upgraded.status_code == 200, upgraded.content
    assert upgraded.json()["access_roles"] == ["provider"]
    assert upgraded.json()["can_prescribe"] is False  # step 2 comes before the details

    detailed = api.put(
        f"{users_url}/{user['id']}",
        {
            "provider_details": {
                "given_name": "Ben",
                "family_name": "Smith",
                "date_of_birth": "1975-12-25",
                "sex": "M",
                "phone": "0432333333",
                "hpii_number": "8003614900000009",
                "prescriber_type": "M",
                "prescriber_number": "1234567",
                "qualifications": "MD",
            }
        },
        format="json",
    )
    assert detailed.status_code == 200, detailed.content
    body = detailed.json()
    assert body["can_prescribe"] is True
    assert body["provider_details"]["phone"] == "+61432333333"
    assert body["provider_details"]["date_of_birth"] == "1975-12-25"

    account = cognito.describe(username=user["id"])
    assert account["enabled"] is True
    assert account["groups"] == {"provider"}
    assert account["attributes"]["email"] == "user-email@my-practice.com"


def test_creating_a_provider_from_scratch(api, users_url):
    response = api.post(
        users_url,
        {
            "given_name": "Sarah",
            "family_name": "Johnson",
            "email": "sarah.johnson@clinic.com",
            "access_roles": ["provider"],
            "date_of_birth": "1980-03-15",
            "sex": "F",
            "phone": "0455666777",
            "hpii_number": "8003614900000017",
            "prescriber_type": "M",
            "prescriber_number": "2345678",
            "qualifications": "MBBS",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["can_prescribe"] is True
    assert body["phone"] == "+61455666777"
    assert body["provider_details"]["given_name"] == "Sarah"
    assert body["provider_details"]["family_name"] == "Johnson"
    assert body["provider_details"]["phone"] == "+61455666777"
    assert body["provider_details"]["hpii_number"] == "8003614900000017"


def test_downgrading_keeps_details_and_upgrading_again_restores_prescribing(api, users_url, cognito):
    user = api.post(
        users_url,
        {
            "given_name": "Sarah",
            "family_name": "Johnson",
            "email": "sarah.johnson@clinic.com",
            "access_roles": ["provider"],
            "date_of_birth": "1980-03-15",
            "sex": "F",
            "hpii_number": "8003614900000017",
            "prescriber_type": "M",
            "prescriber_number": "2345678",
            "qualifications": "MBBS",
        },
        format="json",
    ).json()
    down = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["rx_reader"]}, format="json").json()
    assert down["access_roles"] == ["rx_reader"]
    assert down["can_prescribe"] is False
    assert down["provider_details"] == user["provider_details"]
    assert cognito.describe(username=user["id"])["groups"] == {"rx_reader"}

    up = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["provider"]}, format="json").json()
    assert up["can_prescribe"] is True
    assert up["provider_details"] == user["provider_details"]
    assert cognito.describe(username=user["id"])["groups"] == {"provider"}


def test_disabling_a_user(api, users_url, cognito):
    user = api.post(
        users_url,
        {"given_name": "Ben", "family_name": "Smith", "email": "ben@my-practice.com", "access_roles": ["admin", "rx_reader"]},
        format="json",
    ).json()
    response = api.put(f"{users_url}/{user['id']}/disable")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "disabled"
    assert body["disabled_at"] is not None
    assert body["access_roles"] == ["member"]
    account = cognito.describe(username=user["id"])
    assert account["enabled"] is False
    assert account["groups"] == set()
