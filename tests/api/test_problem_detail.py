"""A 400's `detail` is one readable sentence built from its `errors`."""

import pytest

from core.errors import validation_summary
from tests.api.support import assert_problem, user_body

pytestmark = pytest.mark.django_db


def test_detail_joins_messages_without_doubled_punctuation(api, users_url):
    body = user_body(access_roles=["provider"], sex="Q")
    problem = assert_problem(api.post(users_url, body, format="json"), 400, "validation_error")
    assert len(problem["errors"]) >= 2
    assert ".;" not in problem["detail"]
    assert problem["detail"].endswith(".")
    assert problem["detail"].startswith(f"{problem['errors'][0]['field']}: ")


def test_detail_names_how_many_more_problems_there_are():
    errors = [{"field": f"f{i}", "message": "Bad.", "code": "invalid"} for i in range(7)]
    assert validation_summary(errors) == "f0: Bad; f1: Bad; f2: Bad; f3: Bad; f4: Bad (and 2 more)."
