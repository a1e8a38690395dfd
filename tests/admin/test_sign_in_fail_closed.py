"""When the shared cache can't be reached, admin sign-in is refused (503 with Retry-After): the
failure limits can't be kept, so no password is checked."""

import logging

import pytest

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def test_sign_in_is_refused_while_its_limits_cannot_be_kept(client, staff, unreachable_cache, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/admin/login/?next=/admin/", {"username": staff.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7"
        )

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert "Sign-in is paused" in response.text
    assert "_auth_user_id" not in client.session
    assert "failure-limit cache is unreachable" in caplog.text
    assert PASSWORD not in caplog.text and staff.email not in caplog.text


def test_the_sign_in_page_itself_still_shows(client, unreachable_cache):
    assert client.get("/admin/login/").status_code == 200
