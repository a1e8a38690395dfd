"""GET /v1/organizations/{org}/users (cursor pages, filters) and GET .../users/{id}."""

import pytest

from tests.api.support import assert_problem, create_user, error_fields, provider_body

pytestmark = pytest.mark.django_db


def _ids(page):
    return [user["id"] for user in page["results"]]


def _walk(api, url, direction="next"):
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.json())
        url = response.json()[direction]
    return pages


@pytest.fixture
def seven_users(api, users_url):
    """Created oldest first; the list answers newest first."""
    return [create_user(api, users_url, email=f"user{n}@x.com")["id"] for n in range(7)]


def test_the_list_is_newest_first_with_the_page_shape(api, users_url, seven_users):
    response = api.get(users_url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    assert _ids(body) == list(reversed(seven_users))
    assert body["next"] is None and body["previous"] is None
    assert body["results"][0] == api.get(f"{users_url}/{seven_users[-1]}").json()


def test_next_links_walk_the_whole_set_without_duplicates_or_gaps(api, users_url, seven_users):
    pages = _walk(api, f"{users_url}?limit=3")
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    walked = [user_id for page in pages for user_id in _ids(page)]
    assert walked == list(reversed(seven_users))
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None


def test_previous_links_walk_back_to_the_start(api, users_url, seven_users):
    last = _walk(api, f"{users_url}?limit=3")[-1]
    back = _walk(api, last["previous"], direction="previous")
    walked = [user_id for page in back for user_id in _ids(page)]
    assert walked == list(reversed(seven_users))[:6][3:] + list(reversed(seven_users))[:3]
    assert back[-1]["previous"] is None


def test_a_user_created_while_paging_does_not_shift_the_pages(api, users_url, seven_users):
    first = api.get(f"{users_url}?limit=3").json()
    create_user(api, users_url, email="late@x.com")
    rest = _walk(api, first["next"])
    walked = _ids(first) + [user_id for page in rest for user_id in _ids(page)]
    assert walked == list(reversed(seven_users))


def test_limit_bounds(api, users_url, seven_users):
    assert len(api.get(f"{users_url}?limit=1").json()["results"]) == 1
    assert len(api.get(f"{users_url}?limit=100").json()["results"]) == 7


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "2.5"])
def test_limit_outside_1_to_100_is_400(api, users_url, limit):
    problem = assert_problem(api.get(f"{users_url}?limit={limit}"), 400, "validation_error")
    assert error_fields(problem) == {"limit"}


@pytest.mark.parametrize("cursor", ["garbage", "cD0yMDI0", "%%%", "cD1ub3QtYS1kYXRl", "cj0x!"])
def test_a_bad_cursor_is_400(api, users_url, cursor):
    problem = assert_problem(api.get(f"{users_url}?cursor={cursor}"), 400, "validation_error")
    assert error_fields(problem) == {"cursor"}


def test_default_page_size_is_50(api, users_url, organization):
    from accounts.services import user_create
    from audit.context import Actor

    for n in range(51):
        user_create(organization=organization, actor=Actor.system(), email=f"u{n}@x.com", given_name="U", family_name="N")
    page = api.get(users_url).json()
    assert len(page["results"]) == 50
    assert page["next"] is not None


# --- filters ----------------------------------------------------------------------------------------


@pytest.fixture
def cast(api, users_url):
    ben = create_user(api, users_url, email="ben@x.com", access_roles=["rx_reader"], partner_user_id="pms-ben")
    sarah = create_user(api, users_url, **provider_body(email="Sarah.Johnson@clinic.com"))
    carol = create_user(
        api, users_url, email="carol@x.com", given_name="Carol", family_name="Bennett", access_roles=["admin", "rx_reader"]
    )
    dave = create_user(api, users_url, email="dave@x.com", given_name="Dave", family_name="Jones")
    api.put(f"{users_url}/{dave['id']}/disable")
    return {"ben": ben["id"], "sarah": sarah["id"], "carol": carol["id"], "dave": dave["id"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("role=rx_reader", ["carol", "ben"]),
        ("role=provider", ["sarah"]),
        ("role=admin", ["carol"]),
        ("role=member", ["dave"]),
        ("status=disabled", ["dave"]),
        ("status=active", ["carol", "sarah", "ben"]),
        ("email=sarah.johnson@clinic.com", ["sarah"]),
        ("email=SARAH.JOHNSON@CLINIC.COM", ["sarah"]),
        ("email=sarah", []),
        ("partner_user_id=pms-ben", ["ben"]),
        ("partner_user_id=pms", []),
        ("search=ben", ["carol", "ben"]),  # Bennett, and ben@x.com / Ben
        ("search=JOHN", ["sarah"]),
        ("search=clinic.com", ["sarah"]),
        ("search=jones", ["dave"]),
        ("role=rx_reader&status=active&search=carol", ["carol"]),
    ],
)
def test_filters(api, users_url, cast, query, expected):
    response = api.get(f"{users_url}?{query}")
    assert response.status_code == 200, response.content
    assert _ids(response.json()) == [cast[name] for name in expected]


@pytest.mark.parametrize(("query", "field"), [("role=owner", "role"), ("status=gone", "status")])
def test_invalid_filter_values_are_400(api, users_url, query, field):
    problem = assert_problem(api.get(f"{users_url}?{query}"), 400, "validation_error")
    assert error_fields(problem) == {field}


def test_filters_keep_their_pagination(api, users_url, seven_users):
    pages = _walk(api, f"{users_url}?search=user&limit=2")
    assert [user_id for page in pages for user_id in _ids(page)] == list(reversed(seven_users))
    assert all("search=user" in page["next"] for page in pages[:-1])


def test_the_list_shows_only_the_organizations_users(api, api_for, users_url, other_organization):
    mine = create_user(api, users_url, email="mine@x.com")
    api_for(other_organization).post(
        f"/v1/organizations/{other_organization.pk}/users",
        {"given_name": "T", "family_name": "O", "email": "theirs@x.com"},
        format="json",
    )
    assert _ids(api.get(users_url).json()) == [mine["id"]]
    assert api.get(f"{users_url}?email=theirs@x.com").json()["results"] == []


# --- detail -----------------------------------------------------------------------------------------


def test_get_one_user(api, users_url):
    created = create_user(api, users_url, **provider_body())
    response = api.get(f"{users_url}/{created['id']}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == created


@pytest.mark.parametrize("user_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "1"])
def test_unknown_or_malformed_user_id_is_404(api, users_url, user_id):
    assert_problem(api.get(f"{users_url}/{user_id}"), 404, "not_found")
