"""Inputs a review found could reach a 500, and ordering/identity details of the contract."""

import base64
import logging

import pytest

from tests.api.support import assert_problem, create_user, error_fields

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["since=0001-01-01T00:00:00%2B01:00", "until=0001-01-01T00:00:00"])
def test_audit_dates_that_overflow_in_utc_are_400(api, organization, query):
    response = api.get(f"/v1/organizations/{organization.pk}/audit-events?{query}")
    problem = assert_problem(response, 400, "validation_error")
    assert error_fields(problem) <= {"since", "until"}


@pytest.mark.parametrize("position", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-05:00"])
def test_a_forged_cursor_at_the_edge_of_time_is_400(api, users_url, position):
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    problem = assert_problem(api.get(f"{users_url}?cursor={cursor}"), 400, "validation_error")
    assert error_fields(problem) == {"cursor"}


def test_a_disabled_user_refuses_roles_before_the_roles_are_checked(api, users_url):
    user = create_user(api, users_url)
    api.put(f"{users_url}/{user['id']}/disable")
    response = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": ["owner"]}, format="json")
    assert_problem(response, 409, "user_disabled")


def test_the_organization_id_is_a_uuid_in_any_case(api, organization):
    response = api.get(f"/v1/organizations/{str(organization.pk).upper()}")
    assert response.status_code == 200
    assert response.json()["id"] == str(organization.pk)


def test_an_unexpected_failure_logs_its_type_but_not_its_message(api, users_url, monkeypatch, caplog):
    detail = "DETAIL: Key (email)=(jane.citizen@example.com) already exists"

    def explode(**kwargs):
        raise RuntimeError(detail)  # the traceback shows this line; the value is only in the message

    monkeypatch.setattr("accounts.services.user_create", explode)
    api.raise_request_exception = False
    with caplog.at_level(logging.DEBUG):
        response = api.post(users_url, {"given_name": "J", "family_name": "C", "email": "x@example.com"}, format="json")
    assert response.status_code == 500
    assert "RuntimeError" in caplog.text
    assert "jane.citizen" not in caplog.text
