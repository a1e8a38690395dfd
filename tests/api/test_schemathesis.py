"""Contract fuzzing: schemathesis drives every documented operation of the live WSGI app, with a
real token, and checks that nothing answers 5xx, every status code, header and body conforms to
/v1/schema, and every error is problem+json. A bounded example count keeps it to about a minute."""

import base64
import copy
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.context import Actor

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TOKEN_PATH = "/v1/oauth/token"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id", "errors"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def every_error_is_problem_json(ctx, response, case):
    if response.status_code < 400 or case.operation.path == TOKEN_PATH:
        return None  # the token endpoint's errors are RFC 6749 §5.2 (documented as such)
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), f"{response.status_code} as {content_type}"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == response.status_code
    return True


def call_live_app(case, headers):
    """case.call() through the real WSGI handler, whose request signals would close the connection
    holding the test's transaction (on PostgreSQL). Django's test client unhooks them the same way,
    and hooks them back after each of its own requests, so this is done per call."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return case.call(headers=headers)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def caller(organization, api):
    """Alice's practice software and one user of hers, so generated ids sometimes hit a real user."""
    from organizations.models import ApiClient
    from organizations.services import api_client_create

    created = api.post(
        f"/v1/organizations/{organization.pk}/users",
        {"given_name": "Ben", "family_name": "Smith", "email": "ben@my-practice.com", "access_roles": ["rx_reader"]},
        format="json",
    )
    assert created.status_code == 201
    token = api._credentials["HTTP_AUTHORIZATION"]
    assert ApiClient.objects.count() == 1
    client, secret = api_client_create(actor=Actor.system("tests"), organization=organization, name="Token fuzzing", scopes=("read:users",))
    basic = base64.b64encode(f"{client.application.client_id}:{secret}".encode()).decode()
    return {
        "organization_id": str(organization.pk),
        "user_id": created.json()["id"],
        "bearer": token,
        "basic": f"Basic {basic}",
    }


def _load_schema():
    # Loaded at collection (pytest-django has configured Django by then): the schema view needs no
    # database. schemathesis' lazy from_fixture loader doesn't work with this pytest version.
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/v1/schema?format=json", application)


schema = _load_schema()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_honours_its_contract(case, caller):
    if case.operation.path == TOKEN_PATH:
        headers = {"Authorization": caller["basic"]}
    else:
        headers = {"Authorization": caller["bearer"]}
        if "organization_id" in (case.path_parameters or {}):
            case.path_parameters["organization_id"] = caller["organization_id"]
        # Half the generated user ids become the real user; the rest exercise the 404 path.
        if "id" in (case.path_parameters or {}) and zlib.crc32(repr(case.path_parameters["id"]).encode()) % 2:
            case.path_parameters["id"] = caller["user_id"]
    response = call_live_app(case, headers)
    case.validate_response(
        response, checks=CHECKS, additional_checks=[every_error_is_problem_json], headers=headers
    )


# The run above passes because every status it meets is documented. These show the check bites:
# with one documented status removed from the schema, the same request fails conformance.
USERS = "/v1/organizations/{organization_id}/users"
USER = USERS + "/{id}"
DOCUMENTED_STATUSES = [
    # (path, method, status, request: query / body / which token)
    (USER, "GET", "404", {}),
    (USERS, "GET", "400", {"query": {"limit": "0"}}),
    (USERS, "POST", "409", {"body": {"given_name": "Ben", "family_name": "Smith", "email": "ben@my-practice.com"}}),
    (USERS, "POST", "400", {"body": {"given_name": "Ben", "family_name": "Smith", "email": "not-an-email"}}),
    (USERS, "GET", "401", {"token": None}),
    (USERS, "POST", "403", {"token": "read-only", "body": {"given_name": "A", "family_name": "B", "email": "a@b.com"}}),
]


@pytest.mark.parametrize(("path", "method", "status", "request_data"), DOCUMENTED_STATUSES)
def test_removing_a_documented_status_code_makes_the_contract_check_fail(
    path, method, status, request_data, caller, api_for, organization
):
    from schemathesis.core.failures import FailureGroup

    from config.wsgi import application

    document = copy.deepcopy(schema.raw_schema)

    def call(raw):
        loaded = schemathesis.openapi.from_dict(raw)
        loaded.app = application
        operation = loaded[path][method]
        token = request_data.get("token", "full")
        headers = {}
        if token == "full":
            headers["Authorization"] = caller["bearer"]
        elif token == "read-only":
            headers["Authorization"] = api_for(organization, scopes=("read:users",))._credentials["HTTP_AUTHORIZATION"]
        path_parameters = {"organization_id": caller["organization_id"]}
        if "{id}" in path:
            path_parameters["id"] = "00000000-0000-4000-8000-000000000000"
        kwargs = {"body": request_data["body"], "media_type": "application/json"} if "body" in request_data else {}
        case = operation.Case(path_parameters=path_parameters, query=request_data.get("query"), headers=headers, **kwargs)
        response = call_live_app(case, headers)
        assert str(response.status_code) == status, response.text
        case.validate_response(response, checks=[status_code_conformance], headers=headers)

    call(document)  # documented: conforms

    document["paths"][path][method.lower()]["responses"].pop(status)
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        call(document)


# --- both ways: schema-valid requests are accepted, schema-violating ones refused ------------------
#
# The same live app, generating requests that conform to the schema (positive) and requests that
# break it (negative). A schema-violating request the server accepts is always a failure. A
# schema-valid request the server refuses (400) must be refused only for rules no schema can state,
# each named here with why; anything else means the schema is looser than the server.
INEXPRESSIBLE = {
    # field (the last part of the dotted path) → what the server checks beyond the schema
    "cursor": "an opaque token: only the `next`/`previous` links the server wrote decode",
    "access_expires_at": "in the future, as of the request",
    "date_of_birth": "in the past, as of the request (and a real calendar date)",
    "hpii_number": "the Luhn check digit",
    "provider_number": "the check character",
    "phone": "a number Australia actually issues (libphonenumber's ranges)",
    "email": "the address rules of Django's EmailValidator (stricter than format: email)",
    "url": "https and a host that resolves to public addresses, checked when it is registered",
    "events": "the event types the service knows",
}
# Provider fields become required when the roles include `provider`: a condition between fields.
CONDITIONALLY_REQUIRED = "is required when access_roles includes provider"


def _refusal_is_inexpressible(response) -> list[str]:
    """The reasons a schema can't state, or raise: a 400 for any other reason means the schema
    admits something the server refuses."""
    body = response.json()
    assert response.status_code == 400 and body.get("errors"), body
    reasons = []
    for error in body["errors"]:
        field = (error["field"] or "").rsplit(".", 1)[-1]
        if CONDITIONALLY_REQUIRED in error["message"]:
            reasons.append(f"{field}: required with the provider role")
            continue
        assert field in INEXPRESSIBLE, f"schema-valid {field!r} refused: {error}"
        reasons.append(f"{field}: {INEXPRESSIBLE[field]}")
    return reasons


def _load_both_ways():
    from schemathesis.config import SchemathesisConfig

    from config.wsgi import application

    config = SchemathesisConfig.from_dict({"generation": {"mode": "all"}})
    return schemathesis.openapi.from_wsgi("/v1/schema?format=json", application, config=config)


both_ways = _load_both_ways()


@both_ways.exclude(path=TOKEN_PATH).parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_schema_and_the_server_agree_both_ways(case, caller):
    from schemathesis.core.failures import FailureGroup
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

    headers = {"Authorization": caller["bearer"]}
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    # A path made to break the schema is sent as generated (404); otherwise the real ids, so the
    # rest of the request reaches the view.
    if path is None or not path.mode.is_negative:
        if "organization_id" in (case.path_parameters or {}):
            case.path_parameters["organization_id"] = caller["organization_id"]
        if "id" in (case.path_parameters or {}) and zlib.crc32(repr(case.path_parameters["id"]).encode()) % 2:
            case.path_parameters["id"] = caller["user_id"]
    response = call_live_app(case, headers)
    try:
        case.validate_response(response, checks=[positive_data_acceptance, negative_data_rejection], headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            if type(failure).__name__ != "RejectedPositiveData":
                raise
        _refusal_is_inexpressible(response)
