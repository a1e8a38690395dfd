"""The OpenAPI document and the server agree both ways, item by item: what the server refuses the
schema refuses where a schema can say it, and what the schema refuses the server refuses. (The
schemathesis pass in test_schemathesis.py checks the same across generated requests.)"""

import re

import pytest
import yaml
from rest_framework.test import APIClient

from tests.api.support import HPII_A, assert_problem, create_user, error_fields, error_for, user_body

pytestmark = pytest.mark.django_db

ORG = "/v1/organizations/{organization_id}"


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(APIClient().get("/v1/schema").content)


def _component(schema, name):
    return schema["components"]["schemas"][name]


def _enum_of(schema, property_schema) -> list:
    """The values a property's enum admits, following drf-spectacular's oneOf of enum components."""
    values = list(property_schema.get("enum", []))
    for option in property_schema.get("oneOf", []) + property_schema.get("allOf", []):
        target = _component(schema, option["$ref"].rsplit("/", 1)[1]) if "$ref" in option else option
        values += target.get("enum", [])
        if target.get("type") == "null":
            values.append(None)
    return values


# --- unknown sex / prescriber type: null on both sides ------------------------------------------


def test_unknown_codes_read_as_null_and_the_schema_says_so(api, users_url, schema):
    user = create_user(api, users_url, provider_details={"qualifications": "MBBS"})
    assert user["provider_details"]["sex"] is None
    assert user["provider_details"]["prescriber_type"] is None
    listed = api.get(users_url).json()["results"][0]  # the SQL rendering
    assert listed["provider_details"]["sex"] is None and listed["provider_details"]["prescriber_type"] is None

    for component in ("ProviderDetails", "ProviderDetailsInputRequest", "UserCreateRequest"):
        for name in ("sex", "prescriber_type"):
            values = _enum_of(schema, _component(schema, component)["properties"][name])
            assert None in values and "" not in values, (component, name, values)


def test_what_was_read_can_be_sent_back(api, users_url):
    user = create_user(api, users_url, provider_details={"qualifications": "MBBS"})
    details = {key: value for key, value in user["provider_details"].items()}
    response = api.patch(f"{users_url}/{user['id']}", {"provider_details": details}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["provider_details"] == user["provider_details"]


@pytest.mark.parametrize("field", ["sex", "prescriber_type"])
def test_null_clears_a_code_and_blank_is_refused(api, users_url, field):
    user = create_user(api, users_url, provider_details={"sex": "F", "prescriber_type": "M"})
    url = f"{users_url}/{user['id']}"
    cleared = api.patch(url, {"provider_details": {field: None}}, format="json")
    assert cleared.status_code == 200 and cleared.json()["provider_details"][field] is None

    problem = assert_problem(api.patch(url, {field: ""}, format="json"), 400, "validation_error")
    assert "null" in error_for(problem, field)["message"]


# --- the schema states what the server refuses ---------------------------------------------------


def test_identifier_patterns_match_what_the_server_takes(schema):
    provider = _component(schema, "ProviderDetailsInputRequest")["properties"]
    cases = {
        "hpii_number": (["8003614900000009", ""], ["800361490000000", "8003624900000009", "80036149000000090"]),
        "prescriber_number": (["2345678", ""], ["234567", "23456789", "234567a"]),
        "provider_number": (["2123451T", "212345aw", ""], ["2123451", "212345IT", "2123451Z"]),
        "ahpra_number": (["MED0001234567", "nmw1234567890", ""], ["ME10001234567", "MED123456789"]),
    }
    for name, (good, bad) in cases.items():
        pattern = provider[name]["pattern"]
        for value in good:
            assert re.search(pattern, value), (name, value)
        for value in bad:
            assert not re.search(pattern, value), (name, value)
    assert _component(schema, "Organization")["properties"]["hpio_number"]["pattern"].startswith("^(800362")


def test_text_fields_refuse_control_characters_in_schema_and_server(api, users_url, schema):
    create = _component(schema, "UserCreateRequest")["properties"]
    for name in ("given_name", "family_name", "title", "partner_user_id"):
        pattern = create[name]["pattern"]
        assert re.search(pattern, "Zoë O'Brien-Smith")
        for bad in ("Ben\nSmith", "\tBen", "Ben\x1b[31m", "Ben\u202e"):
            assert not re.search(pattern, bad), (name, bad)
    # Blank after trimming is refused for a required name, and the pattern says so.
    assert not re.search(create["given_name"]["pattern"], "   ")

    for value in ("\tBen", "Ben\n"):  # a control character at either end, not only inside
        problem = assert_problem(api.post(users_url, user_body(given_name=value), format="json"), 400,
                                 "validation_error")
        assert error_fields(problem) == {"given_name"}


def test_roles_and_webhook_events_need_one_item(schema, api, users_url):
    for component in ("UserCreateRequest", "UserRolesRequest", "User"):
        assert _component(schema, component)["properties"]["access_roles"]["minItems"] == 1
    for component in ("WebhookEndpointCreateRequest", "PatchedWebhookEndpointUpdateRequest"):
        assert _component(schema, component)["properties"]["events"]["minItems"] == 1
    # The server's answer to an empty list stays the contract's code.
    assert_problem(api.post(users_url, user_body(access_roles=[]), format="json"), 400, "invalid_role")


def test_a_201_documents_and_sends_location(schema, api, users_url):
    headers = schema["paths"][ORG + "/users"]["post"]["responses"]["201"]["headers"]
    assert headers["Location"]["required"] is True
    response = api.post(users_url, user_body(), format="json")
    assert response.status_code == 201
    assert response["Location"].endswith(f"{users_url}/{response.json()['id']}")


def test_every_201_documents_its_location(schema):
    created = [
        (path, operation["responses"]["201"])
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict) and "201" in operation.get("responses", {})
    ]
    assert {path for path, _ in created} >= {ORG + "/users", ORG + "/webhook-endpoints"}
    for path, response in created:
        assert response.get("headers", {}).get("Location", {}).get("required") is True, path


def test_put_says_it_merges_like_patch(schema, api, users_url):
    assert "merges exactly as PATCH" in schema["paths"][ORG + "/users/{id}"]["put"]["description"]
    user = create_user(api, users_url, title="Dr", phone="0432333333")
    updated = api.put(f"{users_url}/{user['id']}", {"title": "Prof"}, format="json").json()
    assert updated["title"] == "Prof" and updated["phone"] == "+61432333333"


# --- the server refuses what the schema refuses ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/users", "expiring_before"),
        ("/users", "email"),
        ("/users", "role"),
        ("/users", "status"),
        ("/users", "partner_user_id"),
        ("/users", "search"),
        ("/users", "cursor"),
        ("/audit-events", "user_id"),
        ("/audit-events", "action"),
        ("/audit-events", "since"),
        ("/audit-events", "until"),
    ],
)
def test_an_empty_query_parameter_is_400_naming_it(api, organization, schema, path, parameter):
    url = f"/v1/organizations/{organization.pk}{path}"
    problem = assert_problem(api.get(f"{url}?{parameter}="), 400, "validation_error")
    assert error_fields(problem) == {parameter}
    declared = {p["name"]: p["schema"] for p in schema["paths"][ORG + path]["get"]["parameters"]}
    assert declared[parameter].get("minLength") == 1 or "enum" in declared[parameter]


def test_an_empty_filter_on_a_users_history_is_400_too(api, users_url):
    user = create_user(api, users_url)
    problem = assert_problem(api.get(f"{users_url}/{user['id']}/history?since="), 400, "validation_error")
    assert error_fields(problem) == {"since"}


def test_a_json_null_body_on_disable_is_400_and_no_body_still_works(api, users_url, schema):
    user = create_user(api, users_url, provider_details={"hpii_number": HPII_A})
    url = f"{users_url}/{user['id']}/disable"
    problem = assert_problem(api.put(url, "null", content_type="application/json"), 400, "validation_error")
    assert problem["errors"][0]["field"] is None and "not null" in problem["errors"][0]["message"]
    assert api.get(f"{users_url}/{user['id']}").json()["status"] == "active"

    assert api.put(url).json()["status"] == "disabled"
    assert "null` body is 400" in schema["paths"][ORG + "/users/{id}/disable"]["put"]["description"]


def test_the_idempotency_key_pattern_is_the_servers(schema, api, users_url):
    declared = next(p for p in schema["paths"][ORG + "/users"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    assert not re.search(declared["schema"]["pattern"], "two words")  # the server refuses a space
    problem = assert_problem(api.post(users_url, user_body(), format="json", HTTP_IDEMPOTENCY_KEY="two words"), 400,
                             "validation_error")
    assert error_fields(problem) == {"Idempotency-Key"}
    assert re.search(declared["schema"]["pattern"], "3f2b8c1e-5d4a-4b6f-9e21-7a0c9d8e6f51")
