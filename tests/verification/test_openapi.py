"""The register check's answers validate against the served OpenAPI document (openapi-core, as in
tests/api/test_openapi_responses.py): the user resource in each verification state, the verify
endpoint's 202 and 409, the register log's page. Against the emulator over TLS."""

import json

import pytest
from openapi_core import Config, OpenAPI
from rest_framework.test import APIClient

from accounts.models import VerificationStatus
from tests.api.test_openapi_responses import check
from tests.verification.conftest import provider_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def openapi():
    document = json.loads(APIClient().get("/v1/schema?format=json").content)
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(document, config=config), document


def test_the_schema_lists_every_verification_state(openapi):
    _, document = openapi
    schemas = document["components"]["schemas"]
    assert schemas["VerificationStatusEnum"]["enum"] == list(VerificationStatus.values)
    assert set(schemas["Verification"]["properties"]) == {
        "status", "hpii_status", "checked_at", "next_check_at", "message", "found_hpii"
    }


def test_each_state_and_the_verify_endpoints_answer_as_documented(
    openapi, hi_register, practice_api, practice_users_url
):
    validator, _ = openapi
    created = {}
    for key, body in {
        "verified": provider_of("active"),
        "inactive": provider_of("retired"),
        "mismatch": provider_of("mismatch", family_name="Someone-Else"),
        "not_found": provider_of("not_found"),
        "error": provider_of("fault"),
        "found by AHPRA number": provider_of(
            "by_ahpra", hpii_number=None, access_roles=["member"], ahpra_number="NMW0000000004"
        ),
    }.items():
        response = check(validator, practice_api.post(practice_users_url, body, format="json"))
        assert response.status_code == 201, (key, response.content)
        created[key] = response.json()
    assert created["found by AHPRA number"]["provider_details"]["verification"]["found_hpii"]

    fault = created["error"]["id"]
    url = f"{practice_users_url}/{fault}/provider-details"
    asked = check(validator, practice_api.post(f"{url}/verify"))
    assert asked.status_code == 202
    listed = check(validator, practice_api.get(f"{url}/verifications"))
    assert listed.status_code == 200
    assert listed.json()["results"][0]["service_messages"]  # the fault's messages, as documented

    member = practice_api.post(
        practice_users_url, {"given_name": "M", "family_name": "M", "email": "m@x.example"}, format="json"
    ).json()
    refused = check(validator, practice_api.post(f"{practice_users_url}/{member['id']}/provider-details/verify"))
    assert refused.status_code == 409
