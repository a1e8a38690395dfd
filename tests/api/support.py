"""Request bodies and assertions shared by the API tests (no fixtures: those live in conftest.py)."""

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id", "errors"}

# Valid HPI-Is (prefix 800361, Luhn over all 16 digits); the workflow page's samples are not.
HPII_A = "8003614900000009"
HPII_B = "8003614900000017"
HPII_C = "8003614900029560"


def provider_fields(**overrides) -> dict:
    """The provider fields of "Creating a Provider from Scratch", with a valid HPI-I."""
    fields = {
        "date_of_birth": "1980-03-15",
        "sex": "F",
        "hpii_number": HPII_B,
        "prescriber_type": "M",
        "prescriber_number": "2345678",
        "qualifications": "MBBS",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def user_body(email="ben@my-practice.com", **overrides) -> dict:
    body = {"given_name": "Ben", "family_name": "Smith", "email": email}
    body.update(overrides)
    return body


def provider_body(email="sarah.johnson@clinic.com", **overrides) -> dict:
    body = {
        "given_name": "Sarah",
        "family_name": "Johnson",
        "email": email,
        "access_roles": ["provider"],
        **provider_fields(),
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def create_user(api, users_url, **body) -> dict:
    """POST a user (defaults to a plain member) and return the created resource."""
    response = api.post(users_url, {**user_body(), **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def assert_problem(response, status: int, code: str) -> dict:
    """An RFC 9457 problem response with the contract's fields; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["request_id"] == response["X-Request-ID"]
    assert isinstance(body["errors"], list)
    return body


def error_fields(body: dict) -> set:
    return {error["field"] for error in body["errors"]}


def error_for(body: dict, field: str) -> dict:
    matches = [error for error in body["errors"] if error["field"] == field]
    assert matches, f"no error for {field!r} in {body['errors']}"
    return matches[0]
