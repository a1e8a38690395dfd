"""A write to a user that isn't the caller's answers 404 whatever its body: the user named by the
URL is looked up before the body is read, so a bad body never tells an outsider more than a good one."""

import pytest

from tests.api.support import assert_problem, create_user

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("put", "", {"hpi_number": "x"}),  # unknown field
        ("patch", "", {"email": 5}),  # wrong type
        ("put", "/roles", {"access_roles": "admin"}),  # not a list
        ("put", "/roles", {}),  # missing
        ("put", "/disable", {"reason": ["x"]}),  # wrong type
    ],
)
def test_a_bad_body_to_an_unknown_user_is_404(api, users_url, method, suffix, body):
    response = getattr(api, method)(f"{users_url}/{UNKNOWN}{suffix}", body, format="json")
    assert_problem(response, 404, "not_found")


def test_a_bad_body_to_another_organizations_user_is_404(api, api_for, other_organization):
    other_url = f"/v1/organizations/{other_organization.pk}/users"
    user = create_user(api_for(other_organization), other_url, email="out@elsewhere.example",
                       given_name="Out", family_name="Side")
    response = api.put(f"{other_url}/{user['id']}/roles", {"access_roles": "admin"}, format="json")
    assert response.status_code in (403, 404)  # another tenant's path: never the body's 400


def test_the_same_bad_body_to_a_known_user_is_400(api, users_url):
    user = create_user(api, users_url, email="known@clinic.example", given_name="Known", family_name="User")
    response = api.put(f"{users_url}/{user['id']}/roles", {"access_roles": "admin"}, format="json")
    assert response.status_code == 400
