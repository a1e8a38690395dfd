"""GET /v1/schema and /v1/docs: public, complete, valid, and its examples really work."""

import json
import re

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from identifiers.checks import validate_hpii

pytestmark = pytest.mark.django_db

ORG = "/v1/organizations/{organization_id}"
USER = ORG + "/users/{id}"
# The contract's endpoint table: every operation and the scope it needs (None: any valid token).
OPERATIONS = {
    (ORG, "get"): None,
    (ORG + "/users", "post"): "create:user",
    (ORG + "/users", "get"): "read:users",
    (USER, "get"): "read:users",
    (USER, "put"): "update:user",
    (USER, "patch"): "update:user",
    (USER + "/roles", "put"): "update:user",
    (USER + "/disable", "put"): "delete:user",
    (USER + "/history", "get"): "read:audit",
    (USER + "/provider-details/verify", "post"): "update:user",
    (USER + "/provider-details/verifications", "get"): "read:audit",
    (ORG + "/audit-events", "get"): "read:audit",
    **{
        (ORG + "/webhook-endpoints" + path, method): "manage:webhooks"
        for path, method in [
            ("", "get"),
            ("", "post"),
            ("/{id}", "get"),
            ("/{id}", "patch"),
            ("/{id}", "delete"),
            ("/{id}/rotate-secret", "post"),
            ("/{id}/deliveries", "get"),
            ("/{id}/deliveries/{delivery_id}/redeliver", "post"),
        ]
    },
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(APIClient().get("/v1/schema").content)


def operations(schema):
    return {
        (path, method): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_the_schema_is_public_yaml_by_default_and_json_on_request():
    client = APIClient()
    as_yaml = client.get("/v1/schema")
    assert as_yaml.status_code == 200
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(as_yaml.content)
    assert document["openapi"].startswith("3.")

    for response in (client.get("/v1/schema?format=json"), client.get("/v1/schema", HTTP_ACCEPT="application/json")):
        assert response.status_code == 200
        assert json.loads(response.content) == document


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text())["paths"]


def test_every_endpoint_is_documented_with_its_scope(schema):
    documented = operations(schema)
    assert set(OPERATIONS) | {("/v1/oauth/token", "post")} == set(documented)
    for key, scope in OPERATIONS.items():
        assert documented[key]["security"] == [{"oauth2": [scope] if scope else []}], key


def test_the_security_scheme_is_oauth2_client_credentials_with_the_five_scopes(schema):
    scheme = schema["components"]["securitySchemes"]["oauth2"]
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/oauth/token"
    assert set(flow["scopes"]) == {
        "read:users", "create:user", "update:user", "delete:user", "read:audit", "manage:webhooks"
    }


def test_every_operation_documents_its_problem_responses(schema):
    documented = operations(schema)
    for key in OPERATIONS:
        responses = documented[key]["responses"]
        expected = {"401", "404", "429"} | ({"403"} if OPERATIONS[key] else set())
        if key[1] in {"post", "put", "patch"} and "requestBody" in documented[key]:
            expected |= {"400", "409", "413", "415"}
        assert expected <= set(responses), key
        for status in expected:
            assert responses[status]["content"]["application/problem+json"]["schema"] == PROBLEM_REF
        assert "Retry-After" in responses["429"]["headers"]
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "request_id", "errors"}


def test_lists_document_pagination_and_filters(schema):
    documented = operations(schema)
    users = {p["name"]: p for p in documented[(ORG + "/users", "get")]["parameters"]}
    assert {"limit", "cursor", "role", "status", "email", "partner_user_id", "search"} <= set(users)
    assert (users["limit"]["schema"]["minimum"], users["limit"]["schema"]["maximum"]) == (1, 100)
    events = {p["name"] for p in documented[(ORG + "/audit-events", "get")]["parameters"]}
    assert {"limit", "cursor", "user_id", "action", "since", "until"} <= events


def test_request_bodies_reject_unknown_fields_and_accept_flat_provider_fields(schema):
    create = schema["components"]["schemas"]["UserCreateRequest"]
    assert create["additionalProperties"] is False
    assert {"date_of_birth", "sex", "hpii_number", "prescriber_type", "prescriber_number", "qualifications"} <= set(
        create["properties"]
    )
    assert set(create["required"]) == {"given_name", "family_name", "email"}


def test_the_create_operation_documents_the_idempotency_key(schema):
    create = operations(schema)[(ORG + "/users", "post")]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    assert "idempotency_key_reused" in header["description"]


def test_the_description_states_the_rate_limit(schema):
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_client"]
    assert f"{rate} requests per API client" in schema["info"]["description"]


def test_the_token_endpoint_is_documented_as_rfc_6749(schema):
    token = operations(schema)[("/v1/oauth/token", "post")]
    assert token["security"] == [{"clientBasic": []}]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    response = schema["components"]["schemas"]["TokenResponse"]
    assert set(response["required"]) == {"access_token", "token_type", "expires_in", "scope"}
    assert {"200", "400", "401"} <= set(token["responses"])


def _example_bodies(operation):
    return {name: example["value"] for name, example in operation["requestBody"]["content"]["application/json"]["examples"].items()}


def test_the_documented_examples_use_valid_hpiis_and_really_work(schema, api, users_url):
    documented = operations(schema)
    creates = _example_bodies(documented[(ORG + "/users", "post")])
    updates = _example_bodies(documented[(USER, "put")])
    roles = _example_bodies(documented[(USER + "/roles", "put")])
    hpiis = [b["hpii_number"] for b in creates.values() if "hpii_number" in b]
    hpiis += [b["provider_details"]["hpii_number"] for b in updates.values()]
    assert hpiis and all(validate_hpii(h) == h for h in hpiis)

    created = {name: api.post(users_url, body, format="json") for name, body in creates.items()}
    assert {r.status_code for r in created.values()} == {201}, [r.content for r in created.values()]
    ben = created["CreateAUserWithBasicAccess"].json()["id"]
    for body in roles.values():
        assert api.put(f"{users_url}/{ben}/roles", body, format="json").status_code == 200
    assert api.put(f"{users_url}/{ben}/roles", {"access_roles": ["provider"]}, format="json").status_code == 200
    for body in updates.values():
        updated = api.put(f"{users_url}/{ben}", body, format="json")
        assert updated.status_code == 200, updated.content
    assert updated.json()["can_prescribe"] is True


def test_the_documented_user_example_has_the_resource_shape(schema, api, users_url):
    create = operations(schema)[(ORG + "/users", "post")]
    example = next(iter(create["responses"]["201"]["content"]["application/json"]["examples"].values()))["value"]
    real = api.post(users_url, {"given_name": "A", "family_name": "B", "email": "a@b.com"}, format="json").json()
    assert set(example) == set(real)


def test_the_docs_page_is_public_and_uses_only_our_own_static_assets():
    response = APIClient().get("/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/v1/schema" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1)", html)


@pytest.mark.browser
def test_swagger_ui_renders_every_operation_with_no_network_beyond_the_service(live_server):
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    outside = []

    def only_the_service(route):
        if route.request.url.startswith(live_server.url):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_the_service)
            page.goto(f"{live_server.url}/v1/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            rendered = {
                (method.strip().lower(), path.replace("\u200b", ""))
                for method, path in zip(
                    page.locator(".opblock-summary-method").all_inner_texts(),
                    page.locator(".opblock-summary-path").all_inner_texts(),
                    strict=True,
                )
            }
        finally:
            browser.close()
    assert outside == []
    assert {(method, path) for path, method in OPERATIONS} | {("post", "/v1/oauth/token")} == rendered


def test_the_token_endpoint_documents_its_refusals(schema):
    token = operations(schema)[("/v1/oauth/token", "post")]
    responses = token["responses"]
    assert {"200", "400", "401", "413", "429", "503"} <= set(responses)
    assert set(responses["400"]["content"]["application/json"]["examples"]) >= {
        "unsupported_grant_type", "invalid_request"
    }
    assert set(responses["401"]["content"]["application/json"]["examples"]) == {"invalid_client"}
    assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    errors = schema["components"]["schemas"]["TokenError"]["properties"]["error"]["enum"]
    assert {"unsupported_grant_type", "invalid_request", "invalid_client", "rate_limited"} <= set(errors)
