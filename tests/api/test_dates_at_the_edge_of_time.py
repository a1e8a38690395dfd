"""Dates and cursors at the edge of time (year 1, year 9999) are a 400 naming the field, not a 500 from an
overflow when they are turned into UTC."""

import base64

import pytest

from tests.api.support import assert_problem, error_fields

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
